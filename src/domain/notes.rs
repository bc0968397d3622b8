//! Agents' internal notes on a conversation (never shown to the visitor) and the workspace's
//! canned replies: their limits and their storage.

use crate::error::ApiError;
use crate::ids::{ConversationId, WorkspaceId};
use crate::storage::notes::{self, CannedReply, NoteView};
use crate::storage::{now_ms, Db};

const MAX_NOTE_CHARS: usize = 4000;
const MAX_NOTES: i64 = 500;

/// `text` trimmed, or 422 naming `field` when it is empty or longer than `max` characters.
fn check_text(text: &str, field: &str, max: usize) -> Result<String, ApiError> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > max {
        return Err(ApiError::unprocessable(format!("{field} must be 1 to {max} characters")));
    }
    Ok(text.to_owned())
}

/// The conversation's notes, oldest first (the caller has checked the conversation is the
/// workspace's).
pub async fn list(
    db: &Db,
    workspace_id: WorkspaceId,
    conversation_id: ConversationId,
) -> Result<Vec<NoteView>, ApiError> {
    let rows = db.run(move |conn| notes::notes(conn, workspace_id, &conversation_id, MAX_NOTES)).await?;
    Ok(rows.into_iter().map(NoteView::from).collect())
}

/// Adds a note signed by `agent` (`None`: written with an API key).
pub async fn add(
    db: &Db,
    workspace_id: WorkspaceId,
    conversation_id: ConversationId,
    agent: Option<(i64, String)>,
    text: &str,
) -> Result<NoteView, ApiError> {
    let text = check_text(text, "text", MAX_NOTE_CHARS)?;
    let note = db
        .run(move |conn| {
            let agent = agent.as_ref().map(|(id, name)| (*id, name.as_str()));
            notes::add_note(conn, workspace_id, &conversation_id, agent, &text, now_ms())
        })
        .await?;
    Ok(NoteView::from(note))
}

pub async fn canned(db: &Db, workspace_id: WorkspaceId) -> Result<Vec<CannedReply>, ApiError> {
    Ok(db.run(move |conn| notes::canned(conn, workspace_id)).await?)
}

/// Adds a canned reply; its shortcut is lower-cased without a leading `/`; 409 when taken.
pub async fn add_canned(
    db: &Db,
    workspace_id: WorkspaceId,
    shortcut: &str,
    text: &str,
) -> Result<CannedReply, ApiError> {
    let shortcut = shortcut.trim().trim_start_matches('/').to_lowercase();
    let valid = !shortcut.is_empty()
        && shortcut.len() <= 40
        && shortcut.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ApiError::unprocessable("shortcut must be 1 to 40 letters, digits, - or _"));
    }
    let text = check_text(text, "text", MAX_NOTE_CHARS)?;
    let taken = shortcut.clone();
    let row = db.run(move |conn| notes::add_canned(conn, workspace_id, &shortcut, &text, now_ms())).await?;
    row.ok_or_else(|| ApiError::conflict(format!("the shortcut /{taken} is already used")))
}

/// Deletes a canned reply; 404 for another workspace's.
pub async fn delete_canned(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<(), ApiError> {
    if db.run(move |conn| notes::delete_canned(conn, workspace_id, id)).await? {
        Ok(())
    } else {
        Err(ApiError::not_found("canned reply not found"))
    }
}
