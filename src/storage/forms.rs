//! Intake and consent forms: definitions per workspace and their submissions.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::{form_submissions, forms};
use super::{DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;

/// The kinds of form a practice keeps.
pub const KINDS: &[&str] = &["intake", "consent", "registration", "other"];
/// The types a form field may take; a submission's value is checked against it.
pub const FIELD_TYPES: &[&str] = &["text", "email", "phone", "date", "number", "checkbox", "select"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormField {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type", default = "text_type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    /// The choices of a `select` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

fn text_type() -> String {
    "text".into()
}

#[derive(Debug, Clone, Serialize)]
pub struct FormView {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub fields: Vec<FormField>,
    pub created_at: i64,
}

type FormTuple = (i64, String, String, String, i64);

fn view((id, name, kind, fields, created_at): FormTuple) -> FormView {
    FormView { id, name, kind, fields: serde_json::from_str(&fields).unwrap_or_default(), created_at }
}

pub fn create(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    name: &str,
    kind: &str,
    fields: &[FormField],
    now: i64,
) -> Result<FormView, DbError> {
    let fields = serde_json::to_string(fields).unwrap_or_else(|_| "[]".into());
    let row: FormTuple = on_backend!(conn, c => diesel::insert_into(forms::table)
        .values((
            forms::workspace_id.eq(workspace_id),
            forms::name.eq(name),
            forms::kind.eq(kind),
            forms::fields.eq(&fields),
            forms::created_at.eq(now),
        ))
        .returning((forms::id, forms::name, forms::kind, forms::fields, forms::created_at))
        .get_result(c))?;
    Ok(view(row))
}

pub fn list(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<Vec<FormView>, DbError> {
    let rows: Vec<FormTuple> = on_backend!(conn, c => forms::table
        .filter(forms::workspace_id.eq(workspace_id))
        .order(forms::id.asc())
        .select((forms::id, forms::name, forms::kind, forms::fields, forms::created_at))
        .load(c))?;
    Ok(rows.into_iter().map(view).collect())
}

pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<FormView>, DbError> {
    let row: Option<FormTuple> = on_backend!(conn, c => forms::table
        .filter(forms::workspace_id.eq(workspace_id))
        .filter(forms::id.eq(id))
        .select((forms::id, forms::name, forms::kind, forms::fields, forms::created_at))
        .first(c)
        .optional())?;
    Ok(row.map(view))
}

pub fn delete(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<bool, DbError> {
    let target = forms::table.filter(forms::workspace_id.eq(workspace_id)).filter(forms::id.eq(id));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))? == 1)
}

#[derive(Debug, Clone, Serialize)]
pub struct SubmissionView {
    pub id: i64,
    pub form_id: i64,
    pub patient_id: Option<i64>,
    pub data: serde_json::Value,
    pub created_at: i64,
}

type SubmissionTuple = (i64, i64, Option<i64>, String, i64);

fn submission((id, form_id, patient_id, data, created_at): SubmissionTuple) -> SubmissionView {
    SubmissionView { id, form_id, patient_id, data: serde_json::from_str(&data).unwrap_or_default(), created_at }
}

pub fn submit(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    form_id: i64,
    patient_id: Option<i64>,
    data: &serde_json::Value,
    now: i64,
) -> Result<SubmissionView, DbError> {
    let row: SubmissionTuple = on_backend!(conn, c => diesel::insert_into(form_submissions::table)
        .values((
            form_submissions::workspace_id.eq(workspace_id),
            form_submissions::form_id.eq(form_id),
            form_submissions::contact_id.eq(patient_id),
            form_submissions::data.eq(data.to_string()),
            form_submissions::created_at.eq(now),
        ))
        .returning((
            form_submissions::id,
            form_submissions::form_id,
            form_submissions::contact_id,
            form_submissions::data,
            form_submissions::created_at,
        ))
        .get_result(c))?;
    Ok(submission(row))
}

pub fn submissions(conn: &mut DbConn, workspace_id: WorkspaceId, form_id: i64) -> Result<Vec<SubmissionView>, DbError> {
    let rows: Vec<SubmissionTuple> = on_backend!(conn, c => form_submissions::table
        .filter(form_submissions::workspace_id.eq(workspace_id))
        .filter(form_submissions::form_id.eq(form_id))
        .order(form_submissions::id.desc())
        .select((
            form_submissions::id,
            form_submissions::form_id,
            form_submissions::contact_id,
            form_submissions::data,
            form_submissions::created_at,
        ))
        .load(c))?;
    Ok(rows.into_iter().map(submission).collect())
}
