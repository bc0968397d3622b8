//! The practice's schedule: doctors (or staff), services, weekly working hours, and the
//! sample practice a demo workspace starts with. Availability and bookings build on these.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::{doctors, services, working_hours, workspaces};
use super::{now_ms, write_tx, DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = doctors)]
pub struct DoctorRow {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub specialty: String,
    pub bio: String,
    pub photo_url: String,
    pub availability: String,
    pub active: bool,
    pub created_at: i64,
}

/// A doctor's fields, all present (creation) or optional (update).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoctorFields {
    pub name: Option<String>,
    pub specialty: Option<String>,
    pub bio: Option<String>,
    pub photo_url: Option<String>,
    pub availability: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = services)]
pub struct ServiceRow {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub duration_min: i32,
    pub buffer_min: i32,
    pub price_cents: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFields {
    pub name: Option<String>,
    pub duration_min: Option<i32>,
    pub buffer_min: Option<i32>,
    pub price_cents: Option<i64>,
}

/// One weekly opening window of a doctor: weekday 1 (Monday) to 7 (Sunday), minutes after
/// midnight in the workspace's time zone, `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable, Serialize, Deserialize)]
pub struct HoursRow {
    pub weekday: i32,
    pub start_minute: i32,
    pub end_minute: i32,
}

pub fn create_doctor(conn: &mut DbConn, workspace_id: WorkspaceId, f: &DoctorFields) -> Result<DoctorRow, DbError> {
    Ok(on_backend!(conn, c => diesel::insert_into(doctors::table)
        .values((
            doctors::workspace_id.eq(workspace_id),
            doctors::name.eq(f.name.clone().unwrap_or_default()),
            doctors::specialty.eq(f.specialty.clone().unwrap_or_default()),
            doctors::bio.eq(f.bio.clone().unwrap_or_default()),
            doctors::photo_url.eq(f.photo_url.clone().unwrap_or_default()),
            doctors::availability.eq(f.availability.clone().unwrap_or_default()),
            doctors::active.eq(f.active.unwrap_or(true)),
            doctors::created_at.eq(now_ms()),
        ))
        .returning(DoctorRow::as_returning())
        .get_result(c))?)
}

pub fn doctors(conn: &mut DbConn, workspace_id: WorkspaceId, only_active: bool) -> Result<Vec<DoctorRow>, DbError> {
    Ok(on_backend!(conn, c => {
        let mut query = doctors::table.filter(doctors::workspace_id.eq(workspace_id)).into_boxed();
        if only_active {
            query = query.filter(doctors::active.eq(true));
        }
        query.order(doctors::id.asc()).select(DoctorRow::as_select()).load(c)?
    }))
}

pub fn doctor(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<DoctorRow>, DbError> {
    Ok(on_backend!(conn, c => doctors::table
        .filter(doctors::workspace_id.eq(workspace_id))
        .filter(doctors::id.eq(id))
        .select(DoctorRow::as_select())
        .first(c)
        .optional())?)
}

pub fn update_doctor(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    f: &DoctorFields,
) -> Result<Option<DoctorRow>, DbError> {
    let target = doctors::table.filter(doctors::workspace_id.eq(workspace_id)).filter(doctors::id.eq(id));
    let changed = on_backend!(conn, c => diesel::update(target)
        .set((
            f.name.clone().map(|v| doctors::name.eq(v)),
            f.specialty.clone().map(|v| doctors::specialty.eq(v)),
            f.bio.clone().map(|v| doctors::bio.eq(v)),
            f.photo_url.clone().map(|v| doctors::photo_url.eq(v)),
            f.availability.clone().map(|v| doctors::availability.eq(v)),
            f.active.map(|v| doctors::active.eq(v)),
        ))
        .execute(c))?;
    if changed == 0 {
        return Ok(None);
    }
    doctor(conn, workspace_id, id)
}

pub fn delete_doctor(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<bool, DbError> {
    let target = doctors::table.filter(doctors::workspace_id.eq(workspace_id)).filter(doctors::id.eq(id));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))? == 1)
}

pub fn hours(conn: &mut DbConn, workspace_id: WorkspaceId, doctor_id: i64) -> Result<Vec<HoursRow>, DbError> {
    Ok(on_backend!(conn, c => working_hours::table
        .filter(working_hours::workspace_id.eq(workspace_id))
        .filter(working_hours::doctor_id.eq(doctor_id))
        .order((working_hours::weekday.asc(), working_hours::start_minute.asc()))
        .select((working_hours::weekday, working_hours::start_minute, working_hours::end_minute))
        .load(c))?)
}

/// Replaces a doctor's weekly hours (already validated) in one transaction.
pub fn set_hours(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    doctor_id: i64,
    windows: &[HoursRow],
) -> Result<(), DbError> {
    write_tx(conn, |conn| {
        let old = working_hours::table
            .filter(working_hours::workspace_id.eq(workspace_id))
            .filter(working_hours::doctor_id.eq(doctor_id));
        on_backend!(conn, c => diesel::delete(old).execute(c))?;
        let rows: Vec<_> = windows
            .iter()
            .map(|w| {
                (
                    working_hours::workspace_id.eq(workspace_id),
                    working_hours::doctor_id.eq(doctor_id),
                    working_hours::weekday.eq(w.weekday),
                    working_hours::start_minute.eq(w.start_minute),
                    working_hours::end_minute.eq(w.end_minute),
                )
            })
            .collect();
        if !rows.is_empty() {
            on_backend!(conn, c => diesel::insert_into(working_hours::table).values(&rows).execute(c))?;
        }
        Ok(())
    })
}

pub fn create_service(conn: &mut DbConn, workspace_id: WorkspaceId, f: &ServiceFields) -> Result<ServiceRow, DbError> {
    Ok(on_backend!(conn, c => diesel::insert_into(services::table)
        .values((
            services::workspace_id.eq(workspace_id),
            services::name.eq(f.name.clone().unwrap_or_default()),
            services::duration_min.eq(f.duration_min.unwrap_or(30)),
            services::buffer_min.eq(f.buffer_min.unwrap_or(0)),
            services::price_cents.eq(f.price_cents),
            services::created_at.eq(now_ms()),
        ))
        .returning(ServiceRow::as_returning())
        .get_result(c))?)
}

pub fn services(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<Vec<ServiceRow>, DbError> {
    Ok(on_backend!(conn, c => services::table
        .filter(services::workspace_id.eq(workspace_id))
        .order(services::id.asc())
        .select(ServiceRow::as_select())
        .load(c))?)
}

pub fn service(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<ServiceRow>, DbError> {
    Ok(on_backend!(conn, c => services::table
        .filter(services::workspace_id.eq(workspace_id))
        .filter(services::id.eq(id))
        .select(ServiceRow::as_select())
        .first(c)
        .optional())?)
}

pub fn update_service(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    f: &ServiceFields,
) -> Result<Option<ServiceRow>, DbError> {
    let target = services::table.filter(services::workspace_id.eq(workspace_id)).filter(services::id.eq(id));
    let changed = on_backend!(conn, c => diesel::update(target)
        .set((
            f.name.clone().map(|v| services::name.eq(v)),
            f.duration_min.map(|v| services::duration_min.eq(v)),
            f.buffer_min.map(|v| services::buffer_min.eq(v)),
            f.price_cents.map(|v| services::price_cents.eq(Some(v))),
        ))
        .execute(c))?;
    if changed == 0 {
        return Ok(None);
    }
    service(conn, workspace_id, id)
}

pub fn delete_service(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<bool, DbError> {
    let target = services::table.filter(services::workspace_id.eq(workspace_id)).filter(services::id.eq(id));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))? == 1)
}

/// The workspace behind a public id (the embed code's `admin_id`).
pub fn workspace_by_public_id(conn: &mut DbConn, public_id: &str) -> Result<Option<WorkspaceId>, DbError> {
    Ok(on_backend!(conn, c => workspaces::table
        .filter(workspaces::public_id.eq(public_id))
        .select(workspaces::id)
        .first(c)
        .optional())?)
}

pub fn set_timezone(conn: &mut DbConn, workspace_id: WorkspaceId, timezone: &str) -> Result<(), DbError> {
    let target = workspaces::table.filter(workspaces::id.eq(workspace_id));
    on_backend!(conn, c => diesel::update(target).set(workspaces::timezone.eq(timezone)).execute(c))?;
    Ok(())
}

/// The sample practice's doctors: name, specialty, biography.
pub const DEMO_DOCTORS: [(&str, &str, &str); 3] = [
    ("Dr. Sarah Johnson", "General Dentist", "15 years of experience in family and preventive dentistry."),
    ("Dr. Michael Chen", "Orthodontist", "Braces and clear aligners for teens and adults."),
    ("Dr. Emily Davis", "Pediatric Dentist", "Gentle care for our youngest patients."),
];

/// The sample practice's services: name, minutes, price in cents.
pub const DEMO_SERVICES: [(&str, i32, i64); 3] =
    [("General Consultation", 30, 8000), ("Teeth Cleaning", 45, 12000), ("Teeth Whitening", 60, 35000)];

/// The sample practice of a demo workspace, with the ChatGenius document's own names.
pub fn seed_demo_practice(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<(), DbError> {
    let weekdays: Vec<HoursRow> =
        (1..=5).map(|weekday| HoursRow { weekday, start_minute: 9 * 60, end_minute: 17 * 60 }).collect();
    for (name, specialty, bio) in DEMO_DOCTORS {
        let fields = DoctorFields {
            name: Some(name.into()),
            specialty: Some(specialty.into()),
            bio: Some(bio.into()),
            availability: Some("Mon-Fri".into()),
            ..DoctorFields::default()
        };
        let doctor = create_doctor(conn, workspace_id, &fields)?;
        set_hours(conn, workspace_id, doctor.id, &weekdays)?;
    }
    for (name, duration, price) in DEMO_SERVICES {
        let fields = ServiceFields {
            name: Some(name.into()),
            duration_min: Some(duration),
            buffer_min: Some(10),
            price_cents: Some(price),
        };
        create_service(conn, workspace_id, &fields)?;
    }
    Ok(())
}
