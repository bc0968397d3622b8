//! Internal notes on a conversation (`/api/conversations/{id}/notes`: agents only, never the
//! visitor) and the workspace's canned replies (`/api/canned-replies`: every agent reads them,
//! admins manage them).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::domain::chat::Chat;
use crate::domain::notes;
use crate::error::{ApiError, JsonBody};
use crate::ids::ConversationId;
use crate::transport::http::auth::Caller;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    pub text: String,
}

/// `GET /api/conversations/{id}/notes`: `{"notes": [...]}`, oldest first.
pub async fn list_notes(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let row = chat.conversation(caller.workspace_id, &path).await?;
    let views = notes::list(&chat.db, caller.workspace_id, row.id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "notes": views })))
}

/// `POST /api/conversations/{id}/notes`: `{text}` → 201 the note, signed by the agent.
pub async fn add_note(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
    body: JsonBody<NewNote>,
) -> Result<HttpResponse, ApiError> {
    let row = chat.conversation(caller.workspace_id, &path).await?;
    let agent = caller.agent.as_ref().map(|a| (a.id, a.name.clone()));
    let note = notes::add(&chat.db, caller.workspace_id, row.id, agent, &body.0.text).await?;
    Ok(HttpResponse::Created().json(note))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCanned {
    pub shortcut: String,
    pub text: String,
}

/// `GET /api/canned-replies`.
pub async fn list_canned(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let rows = notes::canned(&chat.db, caller.workspace_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "canned_replies": rows })))
}

/// `POST /api/canned-replies`: `{shortcut, text}` → 201; 409 when the shortcut is taken.
pub async fn add_canned(
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<NewCanned>,
) -> Result<HttpResponse, ApiError> {
    let row = notes::add_canned(&chat.db, caller.workspace_id, &body.0.shortcut, &body.0.text).await?;
    Ok(HttpResponse::Created().json(row))
}

/// `DELETE /api/canned-replies/{id}`: 204; 404 for another workspace's.
pub async fn delete_canned(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    notes::delete_canned(&chat.db, caller.workspace_id, *path).await?;
    Ok(HttpResponse::NoContent().finish())
}
