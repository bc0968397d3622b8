//! Patients (the `contacts` table): matching a person by normalised email or phone, creating
//! them with their `new_patient` event, search, and partial updates.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::contacts;
use super::{lock_workspace, lower, DbConn, DbError, Guarded};
use crate::crm::signals::{normalize_email, normalize_phone};
use crate::on_backend;
use crate::webhooks::outbox;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = contacts)]
pub struct PatientRow {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: i64,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub date_of_birth: Option<String>,
    pub insurance_provider: Option<String>,
    pub notes: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Who a booking, a chat or a form names.
#[derive(Debug, Clone, Default)]
pub struct Person<'a> {
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
}

/// The patient with this email (checked first) or phone, both compared normalised.
pub fn find(conn: &mut DbConn, workspace_id: i64, person: &Person<'_>) -> Result<Option<PatientRow>, DbError> {
    if let Some(email) = person.email.and_then(normalize_email) {
        let found = on_backend!(conn, c => contacts::table
            .filter(contacts::workspace_id.eq(workspace_id))
            .filter(contacts::email_normalized.eq(&email))
            .order(contacts::id.asc())
            .select(PatientRow::as_select())
            .first(c)
            .optional())?;
        if found.is_some() {
            return Ok(found);
        }
    }
    if let Some(phone) = person.phone.and_then(normalize_phone) {
        return Ok(on_backend!(conn, c => contacts::table
            .filter(contacts::workspace_id.eq(workspace_id))
            .filter(contacts::phone_normalized.eq(&phone))
            .order(contacts::id.asc())
            .select(PatientRow::as_select())
            .first(c)
            .optional())?);
    }
    Ok(None)
}

/// The matching patient, completed with details they did not have yet, or a new patient (with
/// its `new_patient` event, in the caller's transaction, which must be a write transaction:
/// on PostgreSQL it holds the workspace's patient lock until it ends). `None` when the person gives neither
/// a usable email nor phone: a name alone identifies nobody.
pub fn match_or_create(
    conn: &mut DbConn,
    workspace_id: i64,
    person: &Person<'_>,
    source: &str,
    now: i64,
) -> Result<Option<(PatientRow, bool)>, DbError> {
    let email = person.email.filter(|e| normalize_email(e).is_some());
    let phone = person.phone.filter(|p| normalize_phone(p).is_some());
    if email.is_none() && phone.is_none() {
        return Ok(None);
    }
    let name = person.name.map(str::trim).filter(|n| !n.is_empty());
    lock_workspace(conn, Guarded::Patients, workspace_id)?;
    if let Some(existing) = find(conn, workspace_id, person)? {
        let fill = PatientChanges {
            name: name.filter(|_| existing.name.is_none()).map(str::to_owned),
            email: email.filter(|_| existing.email.is_none()).map(str::to_owned),
            phone: phone.filter(|_| existing.phone.is_none()).map(str::to_owned),
            ..PatientChanges::default()
        };
        if fill.is_empty() {
            return Ok(Some((existing, false)));
        }
        let updated = update(conn, workspace_id, existing.id, &fill, now)?.unwrap_or(existing);
        return Ok(Some((updated, false)));
    }
    let row = on_backend!(conn, c => diesel::insert_into(contacts::table)
        .values((
            contacts::workspace_id.eq(workspace_id),
            contacts::kind.eq("patient"),
            contacts::name.eq(name),
            contacts::email.eq(email.map(str::trim)),
            contacts::email_normalized.eq(email.and_then(normalize_email)),
            contacts::phone.eq(phone.map(str::trim)),
            contacts::phone_normalized.eq(phone.and_then(normalize_phone)),
            contacts::created_at.eq(now),
            contacts::updated_at.eq(now),
        ))
        .returning(PatientRow::as_returning())
        .get_result(c))?;
    let mut data = serde_json::to_value(&row).unwrap_or_default();
    data["patient_id"] = row.id.into();
    data["source"] = source.into();
    outbox::emit(conn, workspace_id, "new_patient", data, now)?;
    Ok(Some((row, true)))
}

pub fn get(conn: &mut DbConn, workspace_id: i64, id: i64) -> Result<Option<PatientRow>, DbError> {
    Ok(on_backend!(conn, c => contacts::table
        .filter(contacts::workspace_id.eq(workspace_id))
        .filter(contacts::id.eq(id))
        .select(PatientRow::as_select())
        .first(c)
        .optional())?)
}

/// Patients whose name, email or phone contains `search` (case-insensitive; phone compared by
/// digits), newest first.
pub fn search(
    conn: &mut DbConn,
    workspace_id: i64,
    search: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<PatientRow>, DbError> {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let text = search.map(str::trim).filter(|s| !s.is_empty()).map(|s| format!("%{}%", escape(&s.to_lowercase())));
    let digits: String = search.unwrap_or_default().chars().filter(char::is_ascii_digit).collect();
    Ok(on_backend!(conn, c => {
        let mut q = contacts::table.filter(contacts::workspace_id.eq(workspace_id)).into_boxed();
        if let Some(pattern) = &text {
            let by_text = lower(contacts::name.nullable())
                .like(pattern.clone())
                .escape('\\')
                .or(contacts::email_normalized.like(pattern.clone()).escape('\\'));
            q = if digits.len() >= 3 {
                q.filter(by_text.or(contacts::phone_normalized.like(format!("%{digits}%"))))
            } else {
                q.filter(by_text)
            };
        }
        q.order(contacts::id.desc()).limit(limit).offset(offset).select(PatientRow::as_select()).load(c)?
    }))
}

/// Fields of `PUT /api/patients/:id`: only those sent change. An empty string clears a field.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub date_of_birth: Option<String>,
    pub insurance_provider: Option<String>,
    pub notes: Option<String>,
}

impl PatientChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.phone.is_none()
            && self.date_of_birth.is_none()
            && self.insurance_provider.is_none()
            && self.notes.is_none()
    }
}

fn blank_is_null(value: &Option<String>) -> Option<Option<String>> {
    value.as_ref().map(|v| Some(v.trim().to_owned()).filter(|v| !v.is_empty()))
}

pub fn update(
    conn: &mut DbConn,
    workspace_id: i64,
    id: i64,
    changes: &PatientChanges,
    now: i64,
) -> Result<Option<PatientRow>, DbError> {
    let target = contacts::table.filter(contacts::workspace_id.eq(workspace_id)).filter(contacts::id.eq(id));
    let email = blank_is_null(&changes.email);
    let phone = blank_is_null(&changes.phone);
    Ok(on_backend!(conn, c => diesel::update(target)
        .set((
            blank_is_null(&changes.name).map(|v| contacts::name.eq(v)),
            email.clone().map(|v| contacts::email.eq(v)),
            email.map(|v| contacts::email_normalized.eq(v.as_deref().and_then(normalize_email))),
            phone.clone().map(|v| contacts::phone.eq(v)),
            phone.map(|v| contacts::phone_normalized.eq(v.as_deref().and_then(normalize_phone))),
            blank_is_null(&changes.date_of_birth).map(|v| contacts::date_of_birth.eq(v)),
            blank_is_null(&changes.insurance_provider).map(|v| contacts::insurance_provider.eq(v)),
            blank_is_null(&changes.notes).map(|v| contacts::notes.eq(v)),
            contacts::updated_at.eq(now),
        ))
        .returning(PatientRow::as_returning())
        .get_result(c)
        .optional())?)
}
