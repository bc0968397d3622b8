//! Intake and consent forms over REST: definitions, and submissions that are checked against
//! their form, link or create the patient and queue `form_submitted`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::domain::chat::Chat;
use crate::domain::crm::signals::{normalize_email, normalize_phone};
use crate::error::{ApiError, JsonBody};
use crate::storage::forms::{self, FormField};
use crate::storage::now_ms;
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;

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
    idempotency::create_once(&chat, workspace_id, "forms", key, &digest, move |conn| {
        Ok((
            StatusCode::CREATED,
            forms::create(conn, workspace_id, form.name.trim(), &form.kind, &form.fields, now_ms())?,
        ))
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
            "date" => text.and_then(crate::domain::booking::parse_date).is_some(),
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
    // One key space per form: the same key and body sent to two forms are two submissions.
    let key = idempotency::key_of(&req)?.map(|key| format!("{form_id}:{key}"));
    let scope = "form_submissions";
    let created = idempotency::once(&chat, workspace_id, scope, key, &digest, || async {
        let (patient_id, data) = (submission.patient_id, serde_json::Value::Object(submission.data));
        let view = chat
            .db
            .run(move |conn| crate::domain::crm::submit_form(conn, workspace_id, &form, patient_id, &data, now_ms()))
            .await?;
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
