//! Patients as staff and integrators see and correct them: search, the profile with its
//! bookings and lead, and partial updates with the same field rules as everywhere else a
//! contact is written ([`crate::storage::contacts`]).

use crate::domain::booking::{self, BookingView};
use crate::domain::crm::signals::{normalize_email, normalize_phone};
use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::storage::bookings::{self as booking_rows, BookingFilter};
use crate::storage::leads::{self, LeadView};
use crate::storage::patients;
use crate::storage::{now_ms, Db};

pub use crate::storage::patients::{PatientChanges, PatientRow};

/// The most bookings a profile lists.
const PROFILE_BOOKINGS: i64 = 500;

/// A patient with their bookings (newest first) and lead.
pub struct Profile {
    pub patient: PatientRow,
    pub bookings: Vec<BookingView>,
    pub lead: Option<LeadView>,
}

/// Patients matching `search` (name, email or phone), newest first.
pub async fn search(
    db: &Db,
    workspace_id: WorkspaceId,
    search: Option<String>,
    limit: i64,
    offset: i64,
) -> Result<Vec<PatientRow>, ApiError> {
    if search.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(ApiError::bad_request("invalid query parameter `search`: at most 200 characters"));
    }
    Ok(db.run(move |conn| patients::search(conn, workspace_id, search.as_deref(), limit, offset)).await?)
}

pub async fn profile(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<Profile, ApiError> {
    let found = db
        .run(move |conn| {
            let Some(patient) = patients::get(conn, workspace_id, id)? else { return Ok(None) };
            let tz = booking::workspace_tz(conn, workspace_id)?;
            let filter = BookingFilter { contact_id: Some(id), limit: PROFILE_BOOKINGS, ..Default::default() };
            let bookings =
                booking_rows::list(conn, workspace_id, &filter)?.iter().map(|r| BookingView::new(r, tz)).collect();
            let lead = leads::for_contact(conn, workspace_id, id)?.map(LeadView::from);
            Ok(Some(Profile { patient, bookings, lead }))
        })
        .await?;
    found.ok_or_else(|| ApiError::not_found("patient not found"))
}

/// 422 naming the first field of `changes` that breaks a rule.
fn check(changes: &PatientChanges) -> Result<(), ApiError> {
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
        let date = booking::parse_date(dob)
            .ok_or_else(|| ApiError::unprocessable("date_of_birth must be a date as YYYY-MM-DD"))?;
        if date > chrono::Utc::now().date_naive() {
            return Err(ApiError::unprocessable("date_of_birth must not be in the future"));
        }
    }
    Ok(())
}

/// Changes only the fields given; an empty string clears a field.
pub async fn update(
    db: &Db,
    workspace_id: WorkspaceId,
    id: i64,
    changes: PatientChanges,
) -> Result<PatientRow, ApiError> {
    check(&changes)?;
    let row = db.run(move |conn| patients::update(conn, workspace_id, id, &changes, now_ms())).await?;
    row.ok_or_else(|| ApiError::not_found("patient not found"))
}
