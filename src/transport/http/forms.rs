//! Intake and consent forms over REST: definitions, and submissions that are checked against
//! their form, link or create the patient and queue `form_submitted`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::domain::chat::Chat;
use crate::domain::forms::{self, FormField, NewForm};
use crate::error::{ApiError, JsonBody};
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormBody {
    pub name: String,
    #[serde(default = "intake")]
    pub kind: String,
    pub fields: Vec<FormField>,
}

fn intake() -> String {
    "intake".into()
}

pub async fn create_form(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<FormBody>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(FormBody { name, kind, fields }, digest) = body;
    let request = idempotency::idempotent(&req, &digest)?;
    let created = forms::create(&chat.db, caller.workspace_id, NewForm { name, kind, fields }, request).await?;
    Ok(idempotency::respond(created))
}

pub async fn list_forms(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let rows = forms::list(&chat.db, caller.workspace_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": rows })))
}

pub async fn get_form(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(forms::get(&chat.db, caller.workspace_id, *path).await?))
}

pub async fn delete_form(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    forms::delete(&chat.db, caller.workspace_id, *path).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionBody {
    /// The patient submitting, when known; otherwise the answers' `email`/`phone` fields find
    /// or create them.
    pub patient_id: Option<i64>,
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// `POST /api/forms/:id/submissions`: stores the answers, links or creates the patient
/// (`new_patient`) and queues `form_submitted`, in one transaction.
pub async fn submit_form(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<SubmissionBody>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(submission, digest) = body;
    let request = idempotency::idempotent(&req, &digest)?;
    let created =
        forms::submit(&chat.db, caller.workspace_id, *path, submission.patient_id, submission.data, request).await?;
    Ok(idempotency::respond(created))
}

pub async fn list_submissions(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let rows = forms::submissions(&chat.db, caller.workspace_id, *path).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": rows })))
}
