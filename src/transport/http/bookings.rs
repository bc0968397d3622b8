//! Bookings over REST: availability, creation, the list, one booking, reschedule, cancel,
//! complete and no-show. Every write goes through the workspace's booking actor. (ChatGenius's
//! external booking, with its key in the body, is in [`crate::transport::compat::chatgenius`].)

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, NaiveTime};
use serde::Deserialize;

use crate::domain::booking::desk::{BookingQuery, SlotSearch};
use crate::domain::booking::{self, BookingRequest, Named, Start};
use crate::domain::chat::Chat;
use crate::error::{ApiError, JsonBody, OptionalJsonBody, QueryParams};
use crate::ids::WorkspaceId;
use crate::status::BookingStatus;
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;
use crate::transport::http::listing::{self, Listing};

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
    let booking = body.request("api")?;
    let request = idempotency::idempotent(&req, &digest)?;
    chat.desk
        .reserve_once(caller.workspace_id, booking, "bookings", request, |view| view)
        .await
        .map(idempotency::respond)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// First local date included (YYYY-MM-DD).
    pub from: Option<String>,
    /// Last local date included (YYYY-MM-DD).
    pub to: Option<String>,
    pub status: Option<BookingStatus>,
    pub doctor_id: Option<i64>,
    pub patient_id: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// `GET /api/bookings`: newest appointment first, as a bare array (ChatGenius's shape).
pub async fn list(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let which = Listing::of(q.limit, q.offset)?;
    let filter = BookingQuery {
        from: q.from.as_deref().map(|d| parse_date("from", d)).transpose()?,
        to: q.to.as_deref().map(|d| parse_date("to", d)).transpose()?,
        status: q.status,
        doctor_id: q.doctor_id,
        patient_id: q.patient_id,
        limit: 0,
        offset: 0,
    };
    let workspace_id = caller.workspace_id;
    let fetch = move |limit, offset| {
        let (chat, query) = (chat.clone(), BookingQuery { limit, offset, ..filter.clone() });
        async move { chat.desk.list(workspace_id, query).await }
    };
    listing::respond(&req, which, fetch).await
}

pub async fn get(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(chat.desk.get(caller.workspace_id, *path).await?))
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
    let body = body.0;
    let start = start_of(body.date.as_deref(), body.time.as_deref(), body.starts_at.as_deref())?;
    let doctor = named("doctor_name", body.doctor_name.as_ref(), body.doctor_id)?;
    Ok(HttpResponse::Ok().json(chat.desk.reschedule(caller.workspace_id, *path, start, doctor).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishBody {
    pub reason: Option<String>,
}

async fn finish(
    chat: &Chat,
    workspace_id: WorkspaceId,
    id: i64,
    status: BookingStatus,
    body: OptionalJsonBody<FinishBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.0.unwrap_or_default().reason;
    Ok(HttpResponse::Ok().json(chat.desk.finish(workspace_id, id, status, reason).await?))
}

pub async fn cancel(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: OptionalJsonBody<FinishBody>,
) -> Result<HttpResponse, ApiError> {
    finish(&chat, caller.workspace_id, *path, BookingStatus::Cancelled, body).await
}

pub async fn complete(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: OptionalJsonBody<FinishBody>,
) -> Result<HttpResponse, ApiError> {
    finish(&chat, caller.workspace_id, *path, BookingStatus::Completed, body).await
}

pub async fn no_show(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: OptionalJsonBody<FinishBody>,
) -> Result<HttpResponse, ApiError> {
    finish(&chat, caller.workspace_id, *path, BookingStatus::NoShow, body).await
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
    let search = SlotSearch {
        service,
        doctor,
        from: q.from.as_deref().map(|d| parse_date("from", d)).transpose()?,
        to: q.to.as_deref().map(|d| parse_date("to", d)).transpose()?,
        step_min: q.step.unwrap_or(booking::DEFAULT_STEP_MIN),
    };
    let (slots, tz) = chat.desk.availability(caller.workspace_id, search).await?;
    // Serialised straight from the slots: a month of 20 doctors is thousands of them, too many
    // to build as a `serde_json::Value` first.
    #[derive(serde::Serialize)]
    struct Availability<'a> {
        timezone: &'a str,
        data: Vec<booking::SlotView>,
    }
    Ok(HttpResponse::Ok().json(Availability { timezone: tz.name(), data: slots }))
}
