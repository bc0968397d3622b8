//! Internal notes on a conversation (`/api/conversations/{id}/notes`: agents only, never the
//! visitor) and the workspace's canned replies (`/api/canned-replies`: every agent reads them,
//! admins manage them).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::domain::chat::Chat;
use crate::error::{ApiError, JsonBody};
use crate::storage::notes::{self, NoteView};
use crate::storage::now_ms;
use crate::transport::http::auth::Caller;

const MAX_NOTE_CHARS: usize = 4000;
const MAX_NOTES: i64 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    pub text: String,
}

fn check_text(text: &str, field: &str, max: usize) -> Result<String, ApiError> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > max {
        return Err(ApiError::unprocessable(format!("{field} must be 1 to {max} characters")));
    }
    Ok(text.to_owned())
}

/// `GET /api/conversations/{id}/notes`: `{"notes": [...]}`, oldest first.
pub async fn list_notes(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = chat.conversation(caller.workspace_id, &path).await?;
    let workspace_id = caller.workspace_id;
    let rows = chat.db.run(move |conn| notes::notes(conn, workspace_id, &row.id, MAX_NOTES)).await?;
    let views: Vec<NoteView> = rows.into_iter().map(NoteView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "notes": views })))
}

/// `POST /api/conversations/{id}/notes`: `{text}` → 201 the note, signed by the agent.
pub async fn add_note(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody<NewNote>,
) -> Result<HttpResponse, ApiError> {
    let text = check_text(&body.0.text, "text", MAX_NOTE_CHARS)?;
    let row = chat.conversation(caller.workspace_id, &path).await?;
    let workspace_id = caller.workspace_id;
    let agent = caller.agent.clone();
    let note = chat
        .db
        .run(move |conn| {
            notes::add_note(
                conn,
                workspace_id,
                &row.id,
                agent.as_ref().map(|a| (a.id, a.name.as_str())),
                &text,
                now_ms(),
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(NoteView::from(note)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCanned {
    pub shortcut: String,
    pub text: String,
}

/// `GET /api/canned-replies`.
pub async fn list_canned(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let workspace_id = caller.workspace_id;
    let rows = chat.db.run(move |conn| notes::canned(conn, workspace_id)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "canned_replies": rows })))
}

/// `POST /api/canned-replies`: `{shortcut, text}` → 201; 409 when the shortcut is taken.
pub async fn add_canned(
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<NewCanned>,
) -> Result<HttpResponse, ApiError> {
    let NewCanned { shortcut, text } = body.0;
    let shortcut = shortcut.trim().trim_start_matches('/').to_lowercase();
    let valid = !shortcut.is_empty()
        && shortcut.len() <= 40
        && shortcut.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ApiError::unprocessable("shortcut must be 1 to 40 letters, digits, - or _"));
    }
    let text = check_text(&text, "text", MAX_NOTE_CHARS)?;
    let workspace_id = caller.workspace_id;
    let taken = shortcut.clone();
    let row = chat.db.run(move |conn| notes::add_canned(conn, workspace_id, &shortcut, &text, now_ms())).await?;
    let row = row.ok_or_else(|| ApiError::conflict(format!("the shortcut /{taken} is already used")))?;
    Ok(HttpResponse::Created().json(row))
}

/// `DELETE /api/canned-replies/{id}`: 204; 404 for another workspace's.
pub async fn delete_canned(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    if chat.db.run(move |conn| notes::delete_canned(conn, workspace_id, id)).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("canned reply not found"))
    }
}
