//! Patients (the `contacts` table as the console and the REST API show it): reading, search
//! and partial updates. Finding or creating a person is [`super::contacts`]' one rule.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::contacts::{normalize_email, normalize_phone_in, phone_country};
use super::schema::contacts;
use super::{like_escape, lower, DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = contacts)]
pub struct PatientRow {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub date_of_birth: Option<String>,
    pub insurance_provider: Option<String>,
    pub notes: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<PatientRow>, DbError> {
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
    workspace_id: WorkspaceId,
    search: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<PatientRow>, DbError> {
    let text = search.map(str::trim).filter(|s| !s.is_empty()).map(|s| format!("%{}%", like_escape(&s.to_lowercase())));
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
    workspace_id: WorkspaceId,
    id: i64,
    changes: &PatientChanges,
    now: i64,
) -> Result<Option<PatientRow>, DbError> {
    let target = contacts::table.filter(contacts::workspace_id.eq(workspace_id)).filter(contacts::id.eq(id));
    let email = blank_is_null(&changes.email);
    let phone = blank_is_null(&changes.phone);
    let country = if phone.is_some() { phone_country(conn, workspace_id)? } else { None };
    Ok(on_backend!(conn, c => diesel::update(target)
        .set((
            blank_is_null(&changes.name).map(|v| contacts::name.eq(v)),
            email.clone().map(|v| contacts::email.eq(v)),
            email.map(|v| contacts::email_normalized.eq(v.as_deref().and_then(normalize_email))),
            phone.clone().map(|v| contacts::phone.eq(v)),
            phone.map(|v| contacts::phone_normalized.eq(v.as_deref().and_then(|p| normalize_phone_in(p, country)))),
            blank_is_null(&changes.date_of_birth).map(|v| contacts::date_of_birth.eq(v)),
            blank_is_null(&changes.insurance_provider).map(|v| contacts::insurance_provider.eq(v)),
            blank_is_null(&changes.notes).map(|v| contacts::notes.eq(v)),
            contacts::updated_at.eq(now),
        ))
        .returning(PatientRow::as_returning())
        .get_result(c)
        .optional())?)
}
