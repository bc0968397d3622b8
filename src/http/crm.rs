//! The CRM over REST: patients (search, profile with booking history, partial update), leads
//! (by score, stage and score changes, history) and intake/consent forms with submissions.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::booking::{self, BookingView};
use crate::chat::Chat;
use crate::crm::signals::{normalize_email, normalize_phone};
use crate::db::bookings::{self as booking_rows, BookingFilter};
use crate::db::forms::{self, FormField};
use crate::db::leads::{self, LeadView};
use crate::db::patients::{self, PatientChanges, Person};
use crate::db::{now_ms, write_tx, DbError};
use crate::error::{ApiError, JsonBody, QueryParams};
use crate::http::auth::Caller;
use crate::http::idempotency;
use crate::webhooks::outbox;

const MAX_PAGE: i64 = 500;

fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("invalid query parameter `limit`: 1 to {MAX_PAGE}")));
    }
    Ok((limit, offset.unwrap_or(0).max(0)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientQuery {
    pub search: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// `GET /api/patients?search=`: a bare array (ChatGenius's shape), newest first.
pub async fn list_patients(
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<PatientQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let (limit, offset) = page(q.limit, q.offset)?;
    if q.search.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(ApiError::bad_request("invalid query parameter `search`: at most 200 characters"));
    }
    let workspace_id = caller.workspace_id;
    let rows =
        chat.db.run(move |conn| patients::search(conn, workspace_id, q.search.as_deref(), limit, offset)).await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// `GET /api/patients/:id`: the profile with its bookings (newest first) and lead.
pub async fn get_patient(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    let found = chat
        .db
        .run(move |conn| {
            let Some(patient) = patients::get(conn, workspace_id, id)? else { return Ok(None) };
            let tz = booking::workspace_tz(conn, workspace_id)?;
            let filter = BookingFilter { contact_id: Some(id), limit: MAX_PAGE, ..Default::default() };
            let bookings: Vec<BookingView> =
                booking_rows::list(conn, workspace_id, &filter)?.iter().map(|r| BookingView::new(r, tz)).collect();
            let lead = leads::for_contact(conn, workspace_id, id)?.map(LeadView::from);
            Ok(Some((patient, bookings, lead)))
        })
        .await?;
    let (patient, bookings, lead) = found.ok_or_else(|| ApiError::not_found("patient not found"))?;
    let mut body = serde_json::to_value(patient).map_err(ApiError::internal)?;
    body["bookings"] = serde_json::to_value(bookings).map_err(ApiError::internal)?;
    body["lead"] = serde_json::to_value(lead).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(body))
}

fn check_patient(changes: &PatientChanges) -> Result<(), ApiError> {
    if changes.is_empty() {
        return Err(ApiError::unprocessable(
            "send at least one of name, email, phone, date_of_birth, insurance_provider, notes",
        ));
    }
    for (field, value, max) in [
        ("name", &changes.name, 200),
        ("email", &changes.email, 320),
        ("phone", &changes.phone, 40),
        ("date_of_birth", &changes.date_of_birth, 10),
        ("insurance_provider", &changes.insurance_provider, 200),
        ("notes", &changes.notes, 5000),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            return Err(ApiError::unprocessable(format!("{field} must be at most {max} characters")));
        }
    }
    if let Some(email) = changes.email.as_deref().filter(|e| !e.trim().is_empty()) {
        if normalize_email(email).is_none() {
            return Err(ApiError::unprocessable("email is not a valid email address"));
        }
    }
    if let Some(phone) = changes.phone.as_deref().filter(|p| !p.trim().is_empty()) {
        if normalize_phone(phone).is_none() {
            return Err(ApiError::unprocessable("phone must have 7 to 15 digits"));
        }
    }
    if let Some(dob) = changes.date_of_birth.as_deref().filter(|d| !d.trim().is_empty()) {
        let date = crate::booking::parse_date(dob)
            .ok_or_else(|| ApiError::unprocessable("date_of_birth must be a date as YYYY-MM-DD"))?;
        if date > chrono::Utc::now().date_naive() {
            return Err(ApiError::unprocessable("date_of_birth must not be in the future"));
        }
    }
    Ok(())
}

/// `PUT /api/patients/:id`: changes only the fields sent (ChatGenius: "only send the fields you
/// want to change"); an empty string clears a field.
pub async fn update_patient(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<PatientChanges>,
) -> Result<HttpResponse, ApiError> {
    let changes = body.0;
    check_patient(&changes)?;
    let (workspace_id, id) = (caller.workspace_id, *path);
    let row = chat.db.run(move |conn| patients::update(conn, workspace_id, id, &changes, now_ms())).await?;
    Ok(HttpResponse::Ok().json(row.ok_or_else(|| ApiError::not_found("patient not found"))?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadQuery {
    pub stage: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

fn check_stage(stage: &str) -> Result<(), ApiError> {
    if leads::STAGES.contains(&stage) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("invalid stage `{stage}`: valid stages are {}", leads::STAGES.join(", "))))
    }
}

/// `GET /api/leads`: highest score first, as a bare array, each with its temperature.
pub async fn list_leads(
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<LeadQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    if let Some(stage) = &q.stage {
        check_stage(stage)?;
    }
    let (limit, offset) = page(q.limit, q.offset)?;
    let workspace_id = caller.workspace_id;
    let rows = chat.db.run(move |conn| leads::list(conn, workspace_id, q.stage.as_deref(), limit, offset)).await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(LeadView::from).collect::<Vec<_>>()))
}

pub async fn get_lead(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    let row = chat.db.run(move |conn| leads::get(conn, workspace_id, id)).await?;
    Ok(HttpResponse::Ok().json(LeadView::from(row.ok_or_else(|| ApiError::not_found("lead not found"))?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageBody {
    pub stage: String,
}

/// `PATCH /api/leads/:id/stage`.
pub async fn set_stage(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<StageBody>,
) -> Result<HttpResponse, ApiError> {
    let stage = body.0.stage;
    check_stage(&stage)?;
    let (workspace_id, id) = (caller.workspace_id, *path);
    let row = chat
        .db
        .run(move |conn| write_tx(conn, |conn| leads::set_stage(conn, workspace_id, id, &stage, now_ms())))
        .await?;
    outbox::committed();
    Ok(HttpResponse::Ok().json(LeadView::from(row.ok_or_else(|| ApiError::not_found("lead not found"))?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    pub score: serde_json::Value,
    pub reason: Option<String>,
}

/// `PATCH /api/leads/:id/score`: any finite number from 0 to 1000 (12.5 allowed).
pub async fn set_score(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<ScoreBody>,
) -> Result<HttpResponse, ApiError> {
    let ScoreBody { score, reason } = body.0;
    let score = score
        .as_f64()
        .filter(|_| score.is_number())
        .ok_or_else(|| ApiError::bad_request("invalid field `score`: expected a number"))?;
    if !score.is_finite() || !(0.0..=1000.0).contains(&score) {
        return Err(ApiError::unprocessable("score must be a number from 0 to 1000"));
    }
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::unprocessable("reason must be at most 500 characters"));
    }
    let reason = reason.filter(|r| !r.trim().is_empty()).unwrap_or_else(|| "set by API".into());
    let (workspace_id, id) = (caller.workspace_id, *path);
    let row = chat
        .db
        .run(move |conn| write_tx(conn, |conn| leads::set_score(conn, workspace_id, id, score, &reason, now_ms())))
        .await?;
    Ok(HttpResponse::Ok().json(LeadView::from(row.ok_or_else(|| ApiError::not_found("lead not found"))?)))
}

/// `GET /api/leads/:id/history`: every change with its reason, oldest first.
pub async fn lead_history(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    let events = chat
        .db
        .run(move |conn| match leads::get(conn, workspace_id, id)? {
            Some(_) => leads::history(conn, workspace_id, id).map(Some),
            None => Ok(None),
        })
        .await?
        .ok_or_else(|| ApiError::not_found("lead not found"))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "lead_id": id, "data": events })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormBody {
    pub name: String,
    #[serde(default = "intake")]
    pub kind: String,
    pub fields: Vec<FormField>,
}

fn intake() -> String {
    "intake".into()
}

fn check_form(form: &FormBody) -> Result<(), ApiError> {
    if form.name.trim().is_empty() || form.name.chars().count() > 200 {
        return Err(ApiError::unprocessable("name must be 1 to 200 characters"));
    }
    if !forms::KINDS.contains(&form.kind.as_str()) {
        return Err(ApiError::unprocessable(format!("kind must be one of {}", forms::KINDS.join(", "))));
    }
    if form.fields.is_empty() || form.fields.len() > 100 {
        return Err(ApiError::unprocessable("fields must list 1 to 100 fields"));
    }
    for (i, field) in form.fields.iter().enumerate() {
        let valid_name = !field.name.is_empty()
            && field.name.len() <= 64
            && field.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(ApiError::unprocessable(format!(
                "fields[{i}].name must be 1 to 64 letters, digits or underscores"
            )));
        }
        if form.fields[..i].iter().any(|f| f.name == field.name) {
            return Err(ApiError::unprocessable(format!("fields[{i}].name `{}` is used twice", field.name)));
        }
        if !forms::FIELD_TYPES.contains(&field.kind.as_str()) {
            return Err(ApiError::unprocessable(format!(
                "fields[{i}].type must be one of {}",
                forms::FIELD_TYPES.join(", ")
            )));
        }
        if field.kind == "select" && field.options.is_empty() {
            return Err(ApiError::unprocessable(format!("fields[{i}].options must list the choices of a select")));
        }
    }
    Ok(())
}

pub async fn create_form(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<FormBody>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(form, digest) = body;
    check_form(&form)?;
    let workspace_id = caller.workspace_id;
    let key = idempotency::key_of(&req)?;
    idempotency::once(&chat, workspace_id, "forms", key, &digest, || async {
        let view = chat
            .db
            .run(move |conn| forms::create(conn, workspace_id, form.name.trim(), &form.kind, &form.fields, now_ms()))
            .await?;
        Ok((StatusCode::CREATED, view))
    })
    .await
    .map(idempotency::Created::respond)
}

pub async fn list_forms(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let workspace_id = caller.workspace_id;
    let rows = chat.db.run(move |conn| forms::list(conn, workspace_id)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": rows })))
}

pub async fn get_form(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    let form = chat.db.run(move |conn| forms::get(conn, workspace_id, id)).await?;
    Ok(HttpResponse::Ok().json(form.ok_or_else(|| ApiError::not_found("form not found"))?))
}

pub async fn delete_form(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    if !chat.db.run(move |conn| forms::delete(conn, workspace_id, id)).await? {
        return Err(ApiError::not_found("form not found"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionBody {
    /// The patient submitting, when known; otherwise the answers' `email`/`phone` fields find
    /// or create them.
    pub patient_id: Option<i64>,
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// Checks answers against the form: required fields present, values of the declared type,
/// no field the form does not have.
fn check_answers(fields: &[FormField], data: &serde_json::Map<String, serde_json::Value>) -> Result<(), ApiError> {
    for name in data.keys() {
        if !fields.iter().any(|f| &f.name == name) {
            return Err(ApiError::unprocessable(format!("data.{name} is not a field of this form")));
        }
    }
    for field in fields {
        let value = data.get(&field.name).filter(|v| !v.is_null() && v.as_str() != Some(""));
        let Some(value) = value else {
            if field.required {
                return Err(ApiError::unprocessable(format!("data.{} is required", field.name)));
            }
            continue;
        };
        let text = value.as_str();
        let ok = match field.kind.as_str() {
            // A required checkbox (a consent) must be ticked, not merely answered.
            "checkbox" => value.is_boolean() && (!field.required || value.as_bool() == Some(true)),
            "number" => value.is_number(),
            "email" => text.and_then(normalize_email).is_some(),
            "phone" => text.and_then(normalize_phone).is_some(),
            "date" => text.and_then(crate::booking::parse_date).is_some(),
            "select" => text.is_some_and(|t| field.options.iter().any(|o| o == t)),
            _ => text.is_some_and(|t| t.chars().count() <= 5000),
        };
        if !ok {
            let expected = match field.kind.as_str() {
                "checkbox" if field.required => "true (it is required)".to_owned(),
                "checkbox" => "true or false".to_owned(),
                "number" => "a number".to_owned(),
                "email" => "an email address".to_owned(),
                "phone" => "a phone number".to_owned(),
                "date" => "a date as YYYY-MM-DD".to_owned(),
                "select" => format!("one of {}", field.options.join(", ")),
                _ => "text of at most 5000 characters".to_owned(),
            };
            return Err(ApiError::unprocessable(format!("data.{} must be {expected}", field.name)));
        }
    }
    Ok(())
}

/// `POST /api/forms/:id/submissions`: stores the answers, links or creates the patient
/// (`new_patient`) and queues `form_submitted`, in one transaction.
pub async fn submit_form(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<SubmissionBody>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(submission, digest) = body;
    let (workspace_id, form_id) = (caller.workspace_id, *path);
    let form = chat
        .db
        .run(move |conn| forms::get(conn, workspace_id, form_id))
        .await?
        .ok_or_else(|| ApiError::not_found("form not found"))?;
    check_answers(&form.fields, &submission.data)?;
    let key = idempotency::key_of(&req)?;
    let scope = "form_submissions";
    let created = idempotency::once(&chat, workspace_id, scope, key, &digest, || async {
        let view = chat
            .db
            .run(move |conn| {
                write_tx(conn, |conn| {
                    let now = now_ms();
                    let text = |name: &str| submission.data.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                    let patient_id = match submission.patient_id {
                        Some(id) => Some(
                            patients::get(conn, workspace_id, id)?
                                .ok_or_else(|| DbError::Invalid(format!("patient {id} not found")))?
                                .id,
                        ),
                        None => {
                            let (name, email, phone) = (text("name"), text("email"), text("phone"));
                            let person =
                                Person { name: name.as_deref(), email: email.as_deref(), phone: phone.as_deref() };
                            patients::match_or_create(conn, workspace_id, &person, "form", now)?.map(|(p, _)| p.id)
                        }
                    };
                    let data = serde_json::Value::Object(submission.data.clone());
                    let view = forms::submit(conn, workspace_id, form.id, patient_id, &data, now)?;
                    let event = serde_json::json!({
                        "submission_id": view.id,
                        "form_id": form.id,
                        "form_name": form.name,
                        "form_kind": form.kind,
                        "patient_id": patient_id,
                        "data": data,
                    });
                    outbox::emit(conn, workspace_id, "form_submitted", event, now)?;
                    Ok(view)
                })
            })
            .await?;
        outbox::committed();
        Ok((StatusCode::CREATED, view))
    })
    .await?;
    Ok(created.respond())
}

pub async fn list_submissions(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, form_id) = (caller.workspace_id, *path);
    let rows = chat
        .db
        .run(move |conn| match forms::get(conn, workspace_id, form_id)? {
            Some(_) => forms::submissions(conn, workspace_id, form_id).map(Some),
            None => Ok(None),
        })
        .await?
        .ok_or_else(|| ApiError::not_found("form not found"))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": rows })))
}
