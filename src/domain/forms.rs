//! Intake and consent forms: their definitions (checked field by field) and submissions,
//! checked against their form; a submission links or creates the patient through the one
//! contact rule and queues `form_submitted` ([`crate::domain::crm::submit_form`]).

use actix_web::http::StatusCode;

use crate::domain::crm::signals::{normalize_email, normalize_phone};
use crate::domain::idempotency::{self, Created, Idempotent};
use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::storage::forms;
use crate::storage::{now_ms, Db};

pub use crate::storage::forms::{FormField, FormView, SubmissionView};

/// A form to create.
#[derive(Debug)]
pub struct NewForm {
    pub name: String,
    pub kind: String,
    pub fields: Vec<FormField>,
}

fn check_form(form: &NewForm) -> Result<(), ApiError> {
    if form.name.trim().is_empty() || form.name.chars().count() > 200 {
        return Err(ApiError::unprocessable("name must be 1 to 200 characters"));
    }
    if !forms::KINDS.contains(&form.kind.as_str()) {
        return Err(ApiError::unprocessable(format!("kind must be one of {}", forms::KINDS.join(", "))));
    }
    if form.fields.is_empty() || form.fields.len() > 100 {
        return Err(ApiError::unprocessable("fields must list 1 to 100 fields"));
    }
    for (i, field) in form.fields.iter().enumerate() {
        let valid_name = !field.name.is_empty()
            && field.name.len() <= 64
            && field.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(ApiError::unprocessable(format!(
                "fields[{i}].name must be 1 to 64 letters, digits or underscores"
            )));
        }
        if form.fields[..i].iter().any(|f| f.name == field.name) {
            return Err(ApiError::unprocessable(format!("fields[{i}].name `{}` is used twice", field.name)));
        }
        if !forms::FIELD_TYPES.contains(&field.kind.as_str()) {
            return Err(ApiError::unprocessable(format!(
                "fields[{i}].type must be one of {}",
                forms::FIELD_TYPES.join(", ")
            )));
        }
        if field.kind == "select" && field.options.is_empty() {
            return Err(ApiError::unprocessable(format!("fields[{i}].options must list the choices of a select")));
        }
    }
    Ok(())
}

/// Creates a form once per idempotency key.
pub async fn create(
    db: &Db,
    workspace_id: WorkspaceId,
    form: NewForm,
    request: Idempotent,
) -> Result<Created, ApiError> {
    check_form(&form)?;
    idempotency::create_once(db, workspace_id, "forms", request, move |conn| {
        Ok((
            StatusCode::CREATED,
            forms::create(conn, workspace_id, form.name.trim(), &form.kind, &form.fields, now_ms())?,
        ))
    })
    .await
}

pub async fn list(db: &Db, workspace_id: WorkspaceId) -> Result<Vec<FormView>, ApiError> {
    Ok(db.run(move |conn| forms::list(conn, workspace_id)).await?)
}

pub async fn get(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<FormView, ApiError> {
    db.run(move |conn| forms::get(conn, workspace_id, id)).await?.ok_or_else(|| ApiError::not_found("form not found"))
}

pub async fn delete(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<(), ApiError> {
    if !db.run(move |conn| forms::delete(conn, workspace_id, id)).await? {
        return Err(ApiError::not_found("form not found"));
    }
    Ok(())
}

/// Checks answers against the form: required fields present, values of the declared type,
/// no field the form does not have.
fn check_answers(fields: &[FormField], data: &serde_json::Map<String, serde_json::Value>) -> Result<(), ApiError> {
    for name in data.keys() {
        if !fields.iter().any(|f| &f.name == name) {
            return Err(ApiError::unprocessable(format!("data.{name} is not a field of this form")));
        }
    }
    for field in fields {
        let value = data.get(&field.name).filter(|v| !v.is_null() && v.as_str() != Some(""));
        let Some(value) = value else {
            if field.required {
                return Err(ApiError::unprocessable(format!("data.{} is required", field.name)));
            }
            continue;
        };
        let text = value.as_str();
        let ok = match field.kind.as_str() {
            // A required checkbox (a consent) must be ticked, not merely answered.
            "checkbox" => value.is_boolean() && (!field.required || value.as_bool() == Some(true)),
            "number" => value.is_number(),
            "email" => text.and_then(normalize_email).is_some(),
            "phone" => text.and_then(normalize_phone).is_some(),
            "date" => text.and_then(crate::domain::booking::parse_date).is_some(),
            "select" => text.is_some_and(|t| field.options.iter().any(|o| o == t)),
            _ => text.is_some_and(|t| t.chars().count() <= 5000),
        };
        if !ok {
            let expected = match field.kind.as_str() {
                "checkbox" if field.required => "true (it is required)".to_owned(),
                "checkbox" => "true or false".to_owned(),
                "number" => "a number".to_owned(),
                "email" => "an email address".to_owned(),
                "phone" => "a phone number".to_owned(),
                "date" => "a date as YYYY-MM-DD".to_owned(),
                "select" => format!("one of {}", field.options.join(", ")),
                _ => "text of at most 5000 characters".to_owned(),
            };
            return Err(ApiError::unprocessable(format!("data.{} must be {expected}", field.name)));
        }
    }
    Ok(())
}

/// Stores a submission of the workspace's form `form_id` once per idempotency key (one key
/// space per form: the same key and body sent to two forms are two submissions), linking or
/// creating its patient (`new_patient`) and queueing `form_submitted`, in one transaction.
pub async fn submit(
    db: &Db,
    workspace_id: WorkspaceId,
    form_id: i64,
    patient_id: Option<i64>,
    data: serde_json::Map<String, serde_json::Value>,
    request: Idempotent,
) -> Result<Created, ApiError> {
    let form = get(db, workspace_id, form_id).await?;
    check_answers(&form.fields, &data)?;
    let key = request.key.map(|key| format!("{form_id}:{key}"));
    idempotency::once(db, workspace_id, "form_submissions", key, &request.digest, || async {
        let data = serde_json::Value::Object(data);
        let view = db
            .run(move |conn| crate::domain::crm::submit_form(conn, workspace_id, &form, patient_id, &data, now_ms()))
            .await?;
        Ok((StatusCode::CREATED, view))
    })
    .await
}

/// A form's submissions; 404 for another workspace's form.
pub async fn submissions(db: &Db, workspace_id: WorkspaceId, form_id: i64) -> Result<Vec<SubmissionView>, ApiError> {
    db.run(move |conn| match forms::get(conn, workspace_id, form_id)? {
        Some(_) => forms::submissions(conn, workspace_id, form_id).map(Some),
        None => Ok(None),
    })
    .await?
    .ok_or_else(|| ApiError::not_found("form not found"))
}
