//! The practice's schedule as staff keep it: doctors (with their rules for names, texts and
//! photo links), their weekly hours and time off, services, and the workspace's time zone and
//! quotas. Bookings against it are [`crate::domain::booking`]'s.

use actix_web::http::StatusCode;
use chrono::NaiveDate;

use crate::domain::booking;
use crate::domain::idempotency::{self, Created, Idempotent};
use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::storage::{bookings, schedule, workspaces, Db, DbError};

pub use crate::storage::bookings::TimeOffRow;
pub use crate::storage::schedule::{DoctorFields, DoctorRow, HoursRow, ServiceFields, ServiceRow};

/// The longest time off, in days.
const MAX_TIME_OFF_DAYS: i64 = 366;
/// Most requests per minute a workspace's quota may be set to.
const MAX_QUOTA: u32 = 100_000;

/// `value` is present when `required` and at most `max` characters.
pub fn check_text(field: &str, value: &Option<String>, required: bool, max: usize) -> Result<(), ApiError> {
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

fn duplicate_name(err: DbError) -> ApiError {
    if err.is_unique_violation() {
        ApiError::conflict("a service with this name already exists")
    } else {
        err.into()
    }
}

fn doctor_not_found() -> ApiError {
    ApiError::not_found("doctor not found")
}

/// Every doctor of the workspace, active or not.
pub async fn doctors(db: &Db, workspace_id: WorkspaceId) -> Result<Vec<DoctorRow>, ApiError> {
    Ok(db.run(move |conn| schedule::doctors(conn, workspace_id, false)).await?)
}

pub async fn create_doctor(
    db: &Db,
    workspace_id: WorkspaceId,
    fields: DoctorFields,
    request: Idempotent,
) -> Result<Created, ApiError> {
    check_doctor(&fields, true)?;
    idempotency::create_once(db, workspace_id, "doctors", request, move |conn| {
        Ok((StatusCode::CREATED, schedule::create_doctor(conn, workspace_id, &fields)?))
    })
    .await
}

pub async fn doctor(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<DoctorRow, ApiError> {
    db.run(move |conn| schedule::doctor(conn, workspace_id, id)).await?.ok_or_else(doctor_not_found)
}

pub async fn update_doctor(
    db: &Db,
    workspace_id: WorkspaceId,
    id: i64,
    fields: DoctorFields,
) -> Result<DoctorRow, ApiError> {
    check_doctor(&fields, false)?;
    db.run(move |conn| schedule::update_doctor(conn, workspace_id, id, &fields)).await?.ok_or_else(doctor_not_found)
}

pub async fn delete_doctor(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<(), ApiError> {
    if !db.run(move |conn| schedule::delete_doctor(conn, workspace_id, id)).await? {
        return Err(doctor_not_found());
    }
    Ok(())
}

/// A doctor's weekly opening windows.
pub async fn hours(db: &Db, workspace_id: WorkspaceId, doctor_id: i64) -> Result<Vec<HoursRow>, ApiError> {
    db.run(move |conn| match schedule::doctor(conn, workspace_id, doctor_id)? {
        Some(_) => schedule::hours(conn, workspace_id, doctor_id).map(Some),
        None => Ok(None),
    })
    .await?
    .ok_or_else(doctor_not_found)
}

/// Replaces a doctor's weekly windows (already checked: weekdays 1–7, no overlaps) and answers
/// with them as stored.
pub async fn set_hours(
    db: &Db,
    workspace_id: WorkspaceId,
    doctor_id: i64,
    windows: Vec<HoursRow>,
) -> Result<Vec<HoursRow>, ApiError> {
    db.run(move |conn| match schedule::doctor(conn, workspace_id, doctor_id)? {
        Some(_) => {
            schedule::set_hours(conn, workspace_id, doctor_id, &windows)?;
            schedule::hours(conn, workspace_id, doctor_id).map(Some)
        }
        None => Ok(None),
    })
    .await?
    .ok_or_else(doctor_not_found)
}

pub async fn services(db: &Db, workspace_id: WorkspaceId) -> Result<Vec<ServiceRow>, ApiError> {
    Ok(db.run(move |conn| schedule::services(conn, workspace_id)).await?)
}

/// Creates a service once per idempotency key; 409 when its name is taken.
pub async fn create_service(
    db: &Db,
    workspace_id: WorkspaceId,
    fields: ServiceFields,
    request: Idempotent,
) -> Result<Created, ApiError> {
    check_service(&fields, true)?;
    idempotency::create_once(db, workspace_id, "services", request, move |conn| {
        Ok((StatusCode::CREATED, schedule::create_service(conn, workspace_id, &fields).map_err(duplicate_name)?))
    })
    .await
}

pub async fn service(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<ServiceRow, ApiError> {
    db.run(move |conn| schedule::service(conn, workspace_id, id))
        .await?
        .ok_or_else(|| ApiError::not_found("service not found"))
}

pub async fn update_service(
    db: &Db,
    workspace_id: WorkspaceId,
    id: i64,
    fields: ServiceFields,
) -> Result<ServiceRow, ApiError> {
    check_service(&fields, false)?;
    db.run(move |conn| schedule::update_service(conn, workspace_id, id, &fields))
        .await
        .map_err(duplicate_name)?
        .ok_or_else(|| ApiError::not_found("service not found"))
}

pub async fn delete_service(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<(), ApiError> {
    if !db.run(move |conn| schedule::delete_service(conn, workspace_id, id)).await? {
        return Err(ApiError::not_found("service not found"));
    }
    Ok(())
}

/// A change to the workspace's settings: only what is `Some` changes; a quota of `Some(None)`
/// returns to the server's.
#[derive(Debug, Default)]
pub struct WorkspaceSettings {
    pub timezone: Option<String>,
    /// `Some(None)` removes the country.
    pub country: Option<Option<String>>,
    pub rate_limit_per_minute: Option<Option<u32>>,
    pub chat_rate_limit_per_minute: Option<Option<u32>>,
}

/// Applies `changes`, each checked before anything is written.
pub async fn update_workspace(db: &Db, workspace_id: WorkspaceId, changes: WorkspaceSettings) -> Result<(), ApiError> {
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
    let timezone = match changes.timezone {
        Some(timezone) => {
            let tz: chrono_tz::Tz = timezone.parse().map_err(|_| {
                ApiError::unprocessable(format!(
                    "unknown time zone `{timezone}`: use an IANA name such as Europe/London"
                ))
            })?;
            Some(tz.name().to_owned())
        }
        None => None,
    };
    let country = match changes.country {
        Some(Some(code)) => {
            let code = code.trim().to_ascii_uppercase();
            let known = code.len() == 2 && code.parse::<phonenumber::country::Id>().is_ok();
            if !known {
                return Err(ApiError::unprocessable(format!(
                    "unknown country `{code}`: use a two-letter ISO 3166 code such as US, GB or DE, or null"
                )));
            }
            Some(Some(code))
        }
        other => other,
    };
    let (rate, chat_rate) = (changes.rate_limit_per_minute, changes.chat_rate_limit_per_minute);
    db.run(move |conn| {
        if let Some(country) = &country {
            workspaces::set_country(conn, workspace_id, country.as_deref())?;
        }
        if rate.is_some() || chat_rate.is_some() {
            let mut quotas = workspaces::quotas(conn, workspace_id)?;
            if let Some(quota) = rate {
                quotas.rate_limit_per_minute = quota;
            }
            if let Some(quota) = chat_rate {
                quotas.chat_rate_limit_per_minute = quota;
            }
            workspaces::set_quotas(conn, workspace_id, quotas)?;
        }
        if let Some(name) = &timezone {
            schedule::set_timezone(conn, workspace_id, name)?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// When a doctor is away: an exact range (epoch ms), or whole days at the practice
/// (inclusive), read in the workspace's time zone.
#[derive(Debug, Clone, Copy)]
pub enum TimeOff {
    Exact(i64, i64),
    Days(NaiveDate, NaiveDate),
}

/// Adds time off for the workspace's doctor; 422 when it ends before it starts or spans
/// more than a year.
pub async fn add_time_off(
    db: &Db,
    workspace_id: WorkspaceId,
    doctor_id: i64,
    range: TimeOff,
    reason: &str,
) -> Result<TimeOffRow, ApiError> {
    check_text("reason", &Some(reason.to_owned()), false, 500)?;
    doctor(db, workspace_id, doctor_id).await?;
    let reason = reason.trim().to_owned();
    Ok(db
        .run(move |conn| {
            let (start, end) = match range {
                TimeOff::Exact(start, end) => (start, end),
                TimeOff::Days(from, to) => {
                    let tz = booking::workspace_tz(conn, workspace_id)?;
                    let after = to.succ_opt().unwrap_or(to);
                    (booking::start_of_day(tz, from), booking::start_of_day(tz, after))
                }
            };
            if end <= start {
                return Err(DbError::Invalid("time off must end after it starts".into()));
            }
            if end - start > MAX_TIME_OFF_DAYS * 86_400_000 {
                return Err(DbError::Invalid(format!("time off spans at most {MAX_TIME_OFF_DAYS} days")));
            }
            bookings::add_time_off(conn, workspace_id, doctor_id, (start, end), &reason)
        })
        .await?)
}

pub async fn time_off(db: &Db, workspace_id: WorkspaceId, doctor_id: i64) -> Result<Vec<TimeOffRow>, ApiError> {
    doctor(db, workspace_id, doctor_id).await?;
    Ok(db.run(move |conn| bookings::time_off(conn, workspace_id, doctor_id)).await?)
}

pub async fn delete_time_off(db: &Db, workspace_id: WorkspaceId, doctor_id: i64, id: i64) -> Result<(), ApiError> {
    if !db.run(move |conn| bookings::delete_time_off(conn, workspace_id, doctor_id, id)).await? {
        return Err(ApiError::not_found("time off not found"));
    }
    Ok(())
}
