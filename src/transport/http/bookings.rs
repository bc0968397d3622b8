//! Bookings over REST: availability, creation, the list, one booking, reschedule, cancel,
//! complete and no-show. Every write goes through the workspace's booking actor. (ChatGenius's
//! external booking, with its key in the body, is in [`crate::transport::compat::chatgenius`].)

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::domain::booking::{self, AvailabilityRequest, BookingError, BookingRequest, BookingView, Named, Start};
use crate::domain::chat::Chat;
use crate::error::{ApiError, JsonBody, OptionalJsonBody, QueryParams};
use crate::storage::bookings::{self as rows, BookingFilter};
use crate::storage::now_ms;
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;

impl From<BookingError> for ApiError {
    fn from(err: BookingError) -> Self {
        match err {
            BookingError::Invalid(message) => ApiError::bad_request(message),
            BookingError::Unprocessable(message) => ApiError::unprocessable(message),
            BookingError::Conflict { message, alternatives } => {
                ApiError::conflict(message).with("alternatives", serde_json::to_value(alternatives).unwrap_or_default())
            }
            BookingError::State(message) => ApiError::conflict(message),
            BookingError::BeyondHorizon { field, .. } => {
                ApiError::unprocessable(err.to_string()).with("field", serde_json::Value::from(field))
            }
            BookingError::NotFound => ApiError::not_found("booking not found"),
            BookingError::Db(err) => err.into(),
        }
    }
}

/// A booking as a client describes it: ChatGenius's fields, with ids and an RFC 3339
/// `starts_at` accepted as alternatives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingBody {
    /// ChatGenius's external booking carries the key in the body; nowhere else is it allowed.
    #[serde(default)]
    pub api_key: Option<String>,
    pub customer_name: String,
    #[serde(default)]
    pub customer_email: Option<String>,
    #[serde(default)]
    pub customer_phone: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub service_id: Option<i64>,
    #[serde(default)]
    pub doctor_name: Option<String>,
    #[serde(default)]
    pub doctor_id: Option<i64>,
    #[serde(default)]
    pub notes: Option<String>,
}

fn parse_date(field: &str, value: &str) -> Result<NaiveDate, ApiError> {
    booking::parse_date(value)
        .ok_or_else(|| ApiError::bad_request(format!("invalid field `{field}`: expected a date as YYYY-MM-DD")))
}

fn parse_time(value: &str) -> Result<NaiveTime, ApiError> {
    NaiveTime::parse_from_str(value.trim(), "%H:%M")
        .map_err(|_| ApiError::bad_request("invalid field `time`: expected a time as HH:MM (24-hour)"))
}

/// `date` + `time` (at the practice), or `starts_at` (an instant).
fn start_of(date: Option<&str>, time: Option<&str>, starts_at: Option<&str>) -> Result<Start, ApiError> {
    match (date, time, starts_at) {
        (_, _, Some(at)) if date.is_none() && time.is_none() => DateTime::parse_from_rfc3339(at.trim())
            .map(|t| Start::At(t.timestamp_millis()))
            .map_err(|_| ApiError::bad_request("invalid field `starts_at`: expected an RFC 3339 time")),
        (Some(date), Some(time), None) => Ok(Start::Local(parse_date("date", date)?.and_time(parse_time(time)?))),
        (None, _, None) => Err(ApiError::bad_request("invalid body: missing field `date`")),
        (_, None, None) => Err(ApiError::bad_request("invalid body: missing field `time`")),
        _ => Err(ApiError::bad_request("give either `date` and `time`, or `starts_at`, not both")),
    }
}

fn named(field: &str, name: Option<&String>, id: Option<i64>) -> Result<Option<Named>, ApiError> {
    match (name.map(|n| n.trim()).filter(|n| !n.is_empty()), id) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(format!("give either `{field}` or `{field}_id`, not both"))),
        (Some(name), None) => Ok(Some(Named::Name(name.to_owned()))),
        (None, Some(id)) => Ok(Some(Named::Id(id))),
        (None, None) => Ok(None),
    }
}

fn check_text(field: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > max => {
            Err(ApiError::unprocessable(format!("{field} must be at most {max} characters")))
        }
        _ => Ok(()),
    }
}

impl BookingBody {
    pub(crate) fn request(&self, source: &str) -> Result<BookingRequest, ApiError> {
        let name = self.customer_name.trim();
        if name.is_empty() {
            return Err(ApiError::unprocessable("customer_name must not be empty"));
        }
        check_text("customer_name", Some(name), 200)?;
        check_text("customer_email", self.customer_email.as_deref(), 320)?;
        check_text("customer_phone", self.customer_phone.as_deref(), 40)?;
        check_text("notes", self.notes.as_deref(), 2000)?;
        let email = self.customer_email.as_deref().map(str::trim).filter(|e| !e.is_empty());
        if email.is_some_and(|e| crate::domain::crm::signals::normalize_email(e).is_none()) {
            return Err(ApiError::unprocessable("customer_email is not a valid email address"));
        }
        let phone = self.customer_phone.as_deref().map(str::trim).filter(|p| !p.is_empty());
        if phone.is_some_and(|p| crate::domain::crm::signals::normalize_phone(p).is_none()) {
            return Err(ApiError::unprocessable("customer_phone must have 7 to 15 digits"));
        }
        let service = named("service", self.service.as_ref(), self.service_id)?
            .ok_or_else(|| ApiError::bad_request("invalid body: missing field `service`"))?;
        let doctor = match (&self.doctor_name, self.doctor_id) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request("give either `doctor_name` or `doctor_id`, not both"))
            }
            (Some(name), None) if !name.trim().is_empty() => Some(Named::Name(name.trim().to_owned())),
            (_, Some(id)) => Some(Named::Id(id)),
            _ => None,
        };
        Ok(BookingRequest {
            service,
            doctor,
            start: start_of(self.date.as_deref(), self.time.as_deref(), self.starts_at.as_deref())?,
            customer_name: name.to_owned(),
            customer_email: email.map(str::to_owned),
            customer_phone: phone.map(str::to_owned),
            notes: self.notes.clone().unwrap_or_default(),
            source: source.into(),
            conversation_id: None,
        })
    }
}

/// Reserves on the booking desk, once per idempotency key: the key, the booking and the stored
/// response commit together. `respond` shapes the answer from the booking.
pub(crate) async fn reserve_once<T: Serialize + Send + 'static>(
    chat: &Chat,
    workspace_id: i64,
    request: BookingRequest,
    (scope, key, digest): (&'static str, Option<String>, String),
    respond: fn(BookingView) -> T,
) -> Result<idempotency::Created, ApiError> {
    let horizon = chat.desk.horizon();
    chat.desk
        .run(workspace_id, move |conn| {
            idempotency::in_transaction(conn, workspace_id, scope, key.as_deref(), &digest, |conn| {
                let row = booking::reserve(conn, workspace_id, &request, now_ms(), horizon)?;
                let tz = booking::workspace_tz(conn, workspace_id)?;
                Ok((StatusCode::CREATED, respond(BookingView::new(&row, tz))))
            })
        })
        .await?
}

/// `POST /api/bookings`: a booking made from the dashboard; answers the booking.
pub async fn create(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<BookingBody>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body, digest) = body;
    if body.api_key.is_some() {
        return Err(ApiError::bad_request(
            "invalid body: `api_key` belongs to POST /api/external/booking; here the bearer key authenticates",
        ));
    }
    let request = body.request("api")?;
    let workspace_id = caller.workspace_id;
    let key = idempotency::key_of(&req)?;
    reserve_once(&chat, workspace_id, request, ("bookings", key, digest), |view| view)
        .await
        .map(idempotency::Created::respond)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// First local date included (YYYY-MM-DD).
    pub from: Option<String>,
    /// Last local date included (YYYY-MM-DD).
    pub to: Option<String>,
    pub status: Option<String>,
    pub doctor_id: Option<i64>,
    pub patient_id: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// `GET /api/bookings`: newest appointment first, as a bare array (ChatGenius's shape).
pub async fn list(
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    if let Some(status) = &q.status {
        if !rows::STATUSES.contains(&status.as_str()) {
            return Err(ApiError::bad_request(format!(
                "invalid query parameter `status`: expected one of {}",
                rows::STATUSES.join(", ")
            )));
        }
    }
    let (limit, offset) = crate::transport::http::page(q.limit, q.offset)?;
    let from = q.from.as_deref().map(|d| parse_date("from", d)).transpose()?;
    let to = q.to.as_deref().map(|d| parse_date("to", d)).transpose()?;
    let workspace_id = caller.workspace_id;
    let views = chat
        .db
        .run(move |conn| {
            let tz = booking::workspace_tz(conn, workspace_id)?;
            let filter = BookingFilter {
                from: from.map(|d| booking::start_of_day(tz, d)),
                to: to.and_then(|d| d.succ_opt()).map(|d| booking::start_of_day(tz, d)),
                status: q.status.clone(),
                doctor_id: q.doctor_id,
                contact_id: q.patient_id,
                conversation_id: None,
                limit,
                offset,
            };
            Ok(rows::list(conn, workspace_id, &filter)?.iter().map(|r| BookingView::new(r, tz)).collect::<Vec<_>>())
        })
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

pub async fn get(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    let view = chat
        .db
        .run(move |conn| {
            let tz = booking::workspace_tz(conn, workspace_id)?;
            Ok(rows::get(conn, workspace_id, id)?.map(|r| BookingView::new(&r, tz)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("booking not found"))?;
    Ok(HttpResponse::Ok().json(view))
}

/// `PATCH /api/bookings/:id`: a new time (`date` + `time`, or `starts_at`), optionally with
/// another doctor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBody {
    pub date: Option<String>,
    pub time: Option<String>,
    pub starts_at: Option<String>,
    pub doctor_name: Option<String>,
    pub doctor_id: Option<i64>,
}

pub async fn reschedule(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<RescheduleBody>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id, body) = (caller.workspace_id, *path, body.0);
    let start = start_of(body.date.as_deref(), body.time.as_deref(), body.starts_at.as_deref())?;
    let doctor = named("doctor_name", body.doctor_name.as_ref(), body.doctor_id)?;
    let horizon = chat.desk.horizon();
    let view = chat
        .desk
        .run(workspace_id, move |conn| {
            let row = booking::reschedule(conn, workspace_id, id, start, doctor.as_ref(), now_ms(), horizon)?;
            Ok::<_, BookingError>(BookingView::new(&row, booking::workspace_tz(conn, workspace_id)?))
        })
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishBody {
    pub reason: Option<String>,
}

async fn finish(
    chat: &Chat,
    workspace_id: i64,
    id: i64,
    status: &'static str,
    body: OptionalJsonBody<FinishBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.0.unwrap_or_default().reason;
    check_text("reason", reason.as_deref(), 500)?;
    let view = chat
        .desk
        .run(workspace_id, move |conn| {
            let row = booking::finish(conn, workspace_id, id, status, reason.as_deref(), now_ms())?;
            Ok::<_, BookingError>(BookingView::new(&row, booking::workspace_tz(conn, workspace_id)?))
        })
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

pub async fn cancel(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: OptionalJsonBody<FinishBody>,
) -> Result<HttpResponse, ApiError> {
    finish(&chat, caller.workspace_id, *path, "cancelled", body).await
}

pub async fn complete(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: OptionalJsonBody<FinishBody>,
) -> Result<HttpResponse, ApiError> {
    finish(&chat, caller.workspace_id, *path, "completed", body).await
}

pub async fn no_show(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: OptionalJsonBody<FinishBody>,
) -> Result<HttpResponse, ApiError> {
    finish(&chat, caller.workspace_id, *path, "no_show", body).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityQuery {
    pub service: Option<String>,
    pub service_id: Option<i64>,
    pub doctor_name: Option<String>,
    pub doctor_id: Option<i64>,
    /// First local date (YYYY-MM-DD) [default: today at the practice].
    pub from: Option<String>,
    /// Last local date, inclusive [default: `from`].
    pub to: Option<String>,
    /// Minutes between offered start times [default: 15].
    pub step: Option<i64>,
}

/// `GET /api/availability`: free slots for a service, per doctor or any.
pub async fn availability(
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<AvailabilityQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let service = named("service", q.service.as_ref(), q.service_id)?
        .ok_or_else(|| ApiError::bad_request("missing query parameter `service` (a name) or `service_id`"))?;
    let doctor = named("doctor_name", q.doctor_name.as_ref(), q.doctor_id)?;
    let step = q.step.unwrap_or(booking::DEFAULT_STEP_MIN);
    if !(5..=240).contains(&step) {
        return Err(ApiError::bad_request("invalid query parameter `step`: 5 to 240 minutes"));
    }
    let from = q.from.as_deref().map(|d| parse_date("from", d)).transpose()?;
    let to = q.to.as_deref().map(|d| parse_date("to", d)).transpose()?;
    let workspace_id = caller.workspace_id;
    let (slots, tz) = chat
        .db
        .run(move |conn| {
            let tz = booking::workspace_tz(conn, workspace_id)?;
            let now = now_ms();
            let today = DateTime::from_timestamp_millis(now).unwrap_or_default().with_timezone(&tz).date_naive();
            let from = from.unwrap_or(today);
            let request = AvailabilityRequest {
                service,
                doctor,
                from,
                to: to.unwrap_or(from),
                step_min: step,
                conversation_id: None,
                moving: None,
            };
            Ok((booking::availability(conn, workspace_id, &request, now), tz))
        })
        .await?;
    // Serialised straight from the slots: a month of 20 doctors is thousands of them, too many
    // to build as a `serde_json::Value` first.
    #[derive(serde::Serialize)]
    struct Availability<'a> {
        timezone: &'a str,
        data: Vec<booking::SlotView>,
    }
    Ok(HttpResponse::Ok().json(Availability { timezone: tz.name(), data: slots? }))
}
