//! The practice's schedule over REST: doctors, their weekly hours and time off, services, and
//! the workspace's time zone.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::domain::chat::Chat;
use crate::domain::schedule::{self, DoctorFields, HoursRow, ServiceFields, TimeOff, TimeOffRow, WorkspaceSettings};
use crate::error::{ApiError, JsonBody};
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;

pub async fn list_doctors(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let rows = schedule::doctors(&chat.db, caller.workspace_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": rows })))
}

pub async fn create_doctor(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<DoctorFields>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(fields, digest) = body;
    let request = idempotency::idempotent(&req, &digest)?;
    schedule::create_doctor(&chat.db, caller.workspace_id, fields, request).await.map(idempotency::respond)
}

pub async fn get_doctor(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(schedule::doctor(&chat.db, caller.workspace_id, *path).await?))
}

pub async fn update_doctor(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<DoctorFields>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(schedule::update_doctor(&chat.db, caller.workspace_id, *path, body.0).await?))
}

pub async fn delete_doctor(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    schedule::delete_doctor(&chat.db, caller.workspace_id, *path).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One opening window as the API takes and shows it: weekday 1 (Monday) to 7 (Sunday), times
/// as `HH:MM` in the workspace's time zone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub weekday: i32,
    pub start: String,
    pub end: String,
}

fn minutes(field: &str, text: &str) -> Result<i32, ApiError> {
    let bad = || ApiError::unprocessable(format!("{field} `{text}` must be a time of day as HH:MM"));
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if (0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= 24 * 60 {
        Ok(h * 60 + m)
    } else {
        Err(bad())
    }
}

fn clock(minute: i32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Validates windows: weekdays 1–7, start before end, no two overlapping on the same day.
pub fn parse_windows(windows: &[Window]) -> Result<Vec<HoursRow>, ApiError> {
    let mut rows = Vec::with_capacity(windows.len());
    for (i, w) in windows.iter().enumerate() {
        if !(1..=7).contains(&w.weekday) {
            return Err(ApiError::unprocessable(format!("[{i}].weekday must be 1 (Monday) to 7 (Sunday)")));
        }
        let (start, end) = (minutes(&format!("[{i}].start"), &w.start)?, minutes(&format!("[{i}].end"), &w.end)?);
        if start >= end {
            return Err(ApiError::unprocessable(format!("[{i}]: start must be before end")));
        }
        rows.push(HoursRow { weekday: w.weekday, start_minute: start, end_minute: end });
    }
    rows.sort_by_key(|r| (r.weekday, r.start_minute));
    for pair in rows.windows(2) {
        if pair[0].weekday == pair[1].weekday && pair[1].start_minute < pair[0].end_minute {
            return Err(ApiError::unprocessable(format!(
                "windows overlap on weekday {}: {}–{} and {}–{}",
                pair[0].weekday,
                clock(pair[0].start_minute),
                clock(pair[0].end_minute),
                clock(pair[1].start_minute),
                clock(pair[1].end_minute)
            )));
        }
    }
    Ok(rows)
}

fn windows_of(rows: Vec<HoursRow>) -> Vec<Window> {
    rows.into_iter()
        .map(|r| Window { weekday: r.weekday, start: clock(r.start_minute), end: clock(r.end_minute) })
        .collect()
}

pub async fn get_hours(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let rows = schedule::hours(&chat.db, caller.workspace_id, *path).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": windows_of(rows) })))
}

pub async fn set_hours(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<Vec<Window>>,
) -> Result<HttpResponse, ApiError> {
    let rows = parse_windows(&body.0)?;
    let saved = schedule::set_hours(&chat.db, caller.workspace_id, *path, rows).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": windows_of(saved) })))
}

pub async fn list_services(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let rows = schedule::services(&chat.db, caller.workspace_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": rows })))
}

pub async fn create_service(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<ServiceFields>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(fields, digest) = body;
    let request = idempotency::idempotent(&req, &digest)?;
    schedule::create_service(&chat.db, caller.workspace_id, fields, request).await.map(idempotency::respond)
}

pub async fn get_service(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(schedule::service(&chat.db, caller.workspace_id, *path).await?))
}

pub async fn update_service(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<ServiceFields>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(schedule::update_service(&chat.db, caller.workspace_id, *path, body.0).await?))
}

pub async fn delete_service(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    schedule::delete_service(&chat.db, caller.workspace_id, *path).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceChanges {
    /// An IANA time zone, e.g. `America/New_York`: hours and dates are read in it.
    pub timezone: Option<String>,
    /// ISO 3166 country whose national phone numbers visitors write (`US`: "(555) 123-4567" is
    /// "+1 555 123 4567"); `null` removes it.
    #[serde(default, deserialize_with = "present_text")]
    pub country: Option<Option<String>>,
    /// Requests per minute per API key for this workspace; `null` returns to the server's.
    #[serde(default, deserialize_with = "present")]
    pub rate_limit_per_minute: Option<Option<u32>>,
    /// Messages per minute per session on `POST /chat`; `null` returns to the server's.
    #[serde(default, deserialize_with = "present")]
    pub chat_rate_limit_per_minute: Option<Option<u32>>,
}

/// A text field that was sent (`Some`, possibly `null`) as opposed to left out (`None`).
fn present_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A field that was sent (`Some`, possibly `null`) as opposed to left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(deserializer).map(Some)
}

pub async fn update_workspace(
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<WorkspaceChanges>,
) -> Result<HttpResponse, ApiError> {
    let WorkspaceChanges { timezone, country, rate_limit_per_minute, chat_rate_limit_per_minute } = body.0;
    let changes = WorkspaceSettings { timezone, country, rate_limit_per_minute, chat_rate_limit_per_minute };
    schedule::update_workspace(&chat.db, caller.workspace_id, changes).await?;
    crate::transport::http::bots::workspace_view(&chat, caller.workspace_id).await
}

/// Time off: an exact range (`starts_at`/`ends_at`, RFC 3339), or whole days at the practice
/// (`from`/`to`, YYYY-MM-DD, inclusive).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeOffBody {
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Serialize)]
struct TimeOffView {
    id: i64,
    doctor_id: i64,
    starts_at: String,
    ends_at: String,
    reason: String,
}

impl From<TimeOffRow> for TimeOffView {
    fn from(row: TimeOffRow) -> Self {
        TimeOffView {
            id: row.id,
            doctor_id: row.doctor_id,
            starts_at: crate::domain::booking::rfc3339(row.starts_at),
            ends_at: crate::domain::booking::rfc3339(row.ends_at),
            reason: row.reason,
        }
    }
}

fn instant(field: &str, value: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| ApiError::bad_request(format!("invalid field `{field}`: expected an RFC 3339 time")))
}

fn day(field: &str, value: &str) -> Result<chrono::NaiveDate, ApiError> {
    crate::domain::booking::parse_date(value)
        .ok_or_else(|| ApiError::bad_request(format!("invalid field `{field}`: expected a date as YYYY-MM-DD")))
}

pub async fn add_time_off(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<TimeOffBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let range = match (&body.starts_at, &body.ends_at, &body.from, &body.to) {
        (Some(s), Some(e), None, None) => TimeOff::Exact(instant("starts_at", s)?, instant("ends_at", e)?),
        (None, None, Some(f), to) => {
            let from = day("from", f)?;
            TimeOff::Days(from, to.as_deref().map(|t| day("to", t)).transpose()?.unwrap_or(from))
        }
        _ => {
            return Err(ApiError::bad_request(
                "give either `starts_at` and `ends_at` (RFC 3339), or `from` and optionally `to` (YYYY-MM-DD)",
            ))
        }
    };
    let row = schedule::add_time_off(&chat.db, caller.workspace_id, *path, range, &body.reason).await?;
    Ok(HttpResponse::Created().json(TimeOffView::from(row)))
}

pub async fn list_time_off(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let rows = schedule::time_off(&chat.db, caller.workspace_id, *path).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "data": rows.into_iter().map(TimeOffView::from).collect::<Vec<_>>() })))
}

pub async fn delete_time_off(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (doctor_id, id) = *path;
    schedule::delete_time_off(&chat.db, caller.workspace_id, doctor_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
