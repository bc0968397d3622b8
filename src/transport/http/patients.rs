//! Patients over REST (ChatGenius's patients API): search, the profile with its booking history
//! and lead, and partial updates.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::domain::booking::{self, BookingView};
use crate::domain::chat::Chat;
use crate::domain::crm::signals::{normalize_email, normalize_phone};
use crate::error::{ApiError, JsonBody, QueryParams};
use crate::storage::bookings::{self as booking_rows, BookingFilter};
use crate::storage::leads::{self, LeadView};
use crate::storage::now_ms;
use crate::storage::patients::{self, PatientChanges};
use crate::transport::http::auth::Caller;
use crate::transport::http::{page, MAX_PAGE};

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
        let date = crate::domain::booking::parse_date(dob)
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
