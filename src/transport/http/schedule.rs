//! The practice's schedule over REST: doctors, their weekly hours and time off, services, and
//! the workspace's time zone.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::domain::chat::Chat;
use crate::error::{ApiError, JsonBody};
use crate::storage::schedule::{self, DoctorFields, HoursRow, ServiceFields};
use crate::storage::{bookings, workspaces, DbError};
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;

fn check_text(field: &str, value: &Option<String>, required: bool, max: usize) -> Result<(), ApiError> {
    match value {
        None if required => Err(ApiError::bad_request(format!("invalid body: missing field `{field}`"))),
        Some(v) if v.chars().count() > max => {
            Err(ApiError::unprocessable(format!("{field} must be at most {max} characters")))
        }
        _ => Ok(()),
    }
}

/// A name: required when creating, never blank, at most 200 characters.
fn check_name(name: &Option<String>, creating: bool) -> Result<(), ApiError> {
    check_text("name", name, creating, 200)?;
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::unprocessable("name must not be empty"));
    }
    Ok(())
}

fn check_doctor(fields: &DoctorFields, creating: bool) -> Result<(), ApiError> {
    check_name(&fields.name, creating)?;
    check_text("specialty", &fields.specialty, false, 200)?;
    check_text("bio", &fields.bio, false, 2000)?;
    check_text("availability", &fields.availability, false, 200)?;
    check_text("photo_url", &fields.photo_url, false, 2000)?;
    if let Some(url) = fields.photo_url.as_deref().filter(|u| !u.is_empty()) {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ApiError::unprocessable("photo_url must be an http(s) URL or empty"));
        }
    }
    Ok(())
}

pub async fn list_doctors(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let id = caller.workspace_id;
    let rows = chat.db.run(move |conn| schedule::doctors(conn, id, false)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": rows })))
}

pub async fn create_doctor(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<DoctorFields>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(fields, digest) = body;
    check_doctor(&fields, true)?;
    let workspace_id = caller.workspace_id;
    let key = idempotency::key_of(&req)?;
    idempotency::create_once(&chat, workspace_id, "doctors", key, &digest, move |conn| {
        Ok((StatusCode::CREATED, schedule::create_doctor(conn, workspace_id, &fields)?))
    })
    .await
    .map(idempotency::Created::respond)
}

pub async fn get_doctor(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    let row = chat.db.run(move |conn| schedule::doctor(conn, workspace_id, id)).await?;
    Ok(HttpResponse::Ok().json(row.ok_or_else(|| ApiError::not_found("doctor not found"))?))
}

pub async fn update_doctor(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<DoctorFields>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.0;
    check_doctor(&fields, false)?;
    let (workspace_id, id) = (caller.workspace_id, *path);
    let row = chat.db.run(move |conn| schedule::update_doctor(conn, workspace_id, id, &fields)).await?;
    Ok(HttpResponse::Ok().json(row.ok_or_else(|| ApiError::not_found("doctor not found"))?))
}

pub async fn delete_doctor(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    if !chat.db.run(move |conn| schedule::delete_doctor(conn, workspace_id, id)).await? {
        return Err(ApiError::not_found("doctor not found"));
    }
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
    let (workspace_id, id) = (caller.workspace_id, *path);
    let rows = chat
        .db
        .run(move |conn| match schedule::doctor(conn, workspace_id, id)? {
            Some(_) => schedule::hours(conn, workspace_id, id).map(Some),
            None => Ok(None),
        })
        .await?
        .ok_or_else(|| ApiError::not_found("doctor not found"))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": windows_of(rows) })))
}

pub async fn set_hours(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<Vec<Window>>,
) -> Result<HttpResponse, ApiError> {
    let rows = parse_windows(&body.0)?;
    let (workspace_id, id) = (caller.workspace_id, *path);
    let saved = chat
        .db
        .run(move |conn| match schedule::doctor(conn, workspace_id, id)? {
            Some(_) => {
                schedule::set_hours(conn, workspace_id, id, &rows)?;
                schedule::hours(conn, workspace_id, id).map(Some)
            }
            None => Ok(None),
        })
        .await?
        .ok_or_else(|| ApiError::not_found("doctor not found"))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": windows_of(saved) })))
}

fn check_service(fields: &ServiceFields, creating: bool) -> Result<(), ApiError> {
    check_name(&fields.name, creating)?;
    if fields.duration_min.is_some_and(|d| !(5..=480).contains(&d)) {
        return Err(ApiError::unprocessable("duration_min must be between 5 and 480"));
    }
    if fields.buffer_min.is_some_and(|b| !(0..=240).contains(&b)) {
        return Err(ApiError::unprocessable("buffer_min must be between 0 and 240"));
    }
    if fields.price_cents.is_some_and(|p| p < 0) {
        return Err(ApiError::unprocessable("price_cents must not be negative"));
    }
    Ok(())
}

fn duplicate_name(err: crate::storage::DbError) -> ApiError {
    if err.is_unique_violation() {
        ApiError::conflict("a service with this name already exists")
    } else {
        err.into()
    }
}

pub async fn list_services(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let id = caller.workspace_id;
    let rows = chat.db.run(move |conn| schedule::services(conn, id)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": rows })))
}

pub async fn create_service(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<ServiceFields>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(fields, digest) = body;
    check_service(&fields, true)?;
    let workspace_id = caller.workspace_id;
    let key = idempotency::key_of(&req)?;
    idempotency::create_once(&chat, workspace_id, "services", key, &digest, move |conn| {
        Ok((StatusCode::CREATED, schedule::create_service(conn, workspace_id, &fields).map_err(duplicate_name)?))
    })
    .await
    .map(idempotency::Created::respond)
}

pub async fn get_service(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    let row = chat.db.run(move |conn| schedule::service(conn, workspace_id, id)).await?;
    Ok(HttpResponse::Ok().json(row.ok_or_else(|| ApiError::not_found("service not found"))?))
}

pub async fn update_service(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<ServiceFields>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.0;
    check_service(&fields, false)?;
    let (workspace_id, id) = (caller.workspace_id, *path);
    let row = chat
        .db
        .run(move |conn| schedule::update_service(conn, workspace_id, id, &fields))
        .await
        .map_err(duplicate_name)?;
    Ok(HttpResponse::Ok().json(row.ok_or_else(|| ApiError::not_found("service not found"))?))
}

pub async fn delete_service(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    if !chat.db.run(move |conn| schedule::delete_service(conn, workspace_id, id)).await? {
        return Err(ApiError::not_found("service not found"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceChanges {
    /// An IANA time zone, e.g. `America/New_York`: hours and dates are read in it.
    pub timezone: Option<String>,
    /// Requests per minute per API key for this workspace; `null` returns to the server's.
    #[serde(default, deserialize_with = "present")]
    pub rate_limit_per_minute: Option<Option<u32>>,
    /// Messages per minute per session on `POST /chat`; `null` returns to the server's.
    #[serde(default, deserialize_with = "present")]
    pub chat_rate_limit_per_minute: Option<Option<u32>>,
}

/// A field that was sent (`Some`, possibly `null`) as opposed to left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(deserializer).map(Some)
}

/// Most requests per minute a workspace's quota may be set to.
const MAX_QUOTA: u32 = 100_000;

pub async fn update_workspace(
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<WorkspaceChanges>,
) -> Result<HttpResponse, ApiError> {
    let workspace_id = caller.workspace_id;
    let changes = body.0;
    for (name, quota) in [
        ("rate_limit_per_minute", changes.rate_limit_per_minute),
        ("chat_rate_limit_per_minute", changes.chat_rate_limit_per_minute),
    ] {
        if let Some(Some(n)) = quota {
            if !(1..=MAX_QUOTA).contains(&n) {
                return Err(ApiError::unprocessable(format!("{name} must be 1 to {MAX_QUOTA}, or null")));
            }
        }
    }
    if changes.rate_limit_per_minute.is_some() || changes.chat_rate_limit_per_minute.is_some() {
        chat.db
            .run(move |conn| {
                let mut quotas = workspaces::quotas(conn, workspace_id)?;
                if let Some(quota) = changes.rate_limit_per_minute {
                    quotas.rate_limit_per_minute = quota;
                }
                if let Some(quota) = changes.chat_rate_limit_per_minute {
                    quotas.chat_rate_limit_per_minute = quota;
                }
                workspaces::set_quotas(conn, workspace_id, quotas)
            })
            .await?;
    }
    if let Some(timezone) = changes.timezone {
        let tz: chrono_tz::Tz = timezone.parse().map_err(|_| {
            ApiError::unprocessable(format!("unknown time zone `{timezone}`: use an IANA name such as Europe/London"))
        })?;
        let name = tz.name().to_owned();
        chat.db.run(move |conn| schedule::set_timezone(conn, workspace_id, &name)).await?;
    }
    crate::transport::http::bots::workspace_view(&chat, workspace_id).await
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

impl From<bookings::TimeOffRow> for TimeOffView {
    fn from(row: bookings::TimeOffRow) -> Self {
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

async fn doctor_exists(chat: &Chat, workspace_id: i64, doctor_id: i64) -> Result<(), ApiError> {
    let found = chat.db.run(move |conn| schedule::doctor(conn, workspace_id, doctor_id)).await?;
    found.map(|_| ()).ok_or_else(|| ApiError::not_found("doctor not found"))
}

pub async fn add_time_off(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<TimeOffBody>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, doctor_id, body) = (caller.workspace_id, *path, body.0);
    check_text("reason", &Some(body.reason.clone()), false, 500)?;
    doctor_exists(&chat, workspace_id, doctor_id).await?;
    enum Range {
        Exact(i64, i64),
        Days(chrono::NaiveDate, chrono::NaiveDate),
    }
    let range = match (&body.starts_at, &body.ends_at, &body.from, &body.to) {
        (Some(s), Some(e), None, None) => Range::Exact(instant("starts_at", s)?, instant("ends_at", e)?),
        (None, None, Some(f), to) => {
            let from = day("from", f)?;
            Range::Days(from, to.as_deref().map(|t| day("to", t)).transpose()?.unwrap_or(from))
        }
        _ => {
            return Err(ApiError::bad_request(
                "give either `starts_at` and `ends_at` (RFC 3339), or `from` and optionally `to` (YYYY-MM-DD)",
            ))
        }
    };
    let reason = body.reason.trim().to_owned();
    let row = chat
        .db
        .run(move |conn| {
            let (start, end) = match range {
                Range::Exact(start, end) => (start, end),
                Range::Days(from, to) => {
                    let tz = crate::domain::booking::workspace_tz(conn, workspace_id)?;
                    let after = to.succ_opt().unwrap_or(to);
                    (crate::domain::booking::start_of_day(tz, from), crate::domain::booking::start_of_day(tz, after))
                }
            };
            if end <= start {
                return Err(DbError::Invalid("time off must end after it starts".into()));
            }
            if end - start > 366 * 86_400_000 {
                return Err(DbError::Invalid("time off spans at most 366 days".into()));
            }
            bookings::add_time_off(conn, workspace_id, doctor_id, (start, end), &reason)
        })
        .await?;
    Ok(HttpResponse::Created().json(TimeOffView::from(row)))
}

pub async fn list_time_off(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, doctor_id) = (caller.workspace_id, *path);
    doctor_exists(&chat, workspace_id, doctor_id).await?;
    let rows = chat.db.run(move |conn| bookings::time_off(conn, workspace_id, doctor_id)).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "data": rows.into_iter().map(TimeOffView::from).collect::<Vec<_>>() })))
}

pub async fn delete_time_off(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, (doctor_id, id)) = (caller.workspace_id, *path);
    if !chat.db.run(move |conn| bookings::delete_time_off(conn, workspace_id, doctor_id, id)).await? {
        return Err(ApiError::not_found("time off not found"));
    }
    Ok(HttpResponse::NoContent().finish())
}
