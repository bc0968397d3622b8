//! What agents keep for one another: internal notes on a conversation (never shown to the
//! visitor) and the workspace's canned replies (snippets an agent inserts with `/shortcut`).

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{canned_replies, conversation_notes};
use super::{DbConn, DbError};
use crate::ids::{ConversationId, WorkspaceId};
use crate::on_backend;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = conversation_notes)]
pub struct NoteRow {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub conversation_id: ConversationId,
    pub agent_id: Option<i64>,
    pub agent_name: String,
    pub text: String,
    pub created_at: i64,
}

/// A note as the API shows it.
#[derive(Debug, Serialize)]
pub struct NoteView {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub agent: Option<serde_json::Value>,
    pub text: String,
    pub created_at: i64,
}

impl From<NoteRow> for NoteView {
    fn from(row: NoteRow) -> Self {
        NoteView {
            id: row.id,
            agent: row.agent_id.map(|id| serde_json::json!({ "id": id, "name": row.agent_name })),
            conversation_id: row.conversation_id,
            text: row.text,
            created_at: row.created_at,
        }
    }
}

pub fn add_note(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    conversation_id: &ConversationId,
    agent: Option<(i64, &str)>,
    text: &str,
    now: i64,
) -> Result<NoteRow, DbError> {
    Ok(on_backend!(conn, c => diesel::insert_into(conversation_notes::table)
        .values((
            conversation_notes::workspace_id.eq(workspace_id),
            conversation_notes::conversation_id.eq(conversation_id),
            conversation_notes::agent_id.eq(agent.map(|(id, _)| id)),
            conversation_notes::agent_name.eq(agent.map(|(_, name)| name).unwrap_or("API")),
            conversation_notes::text.eq(text),
            conversation_notes::created_at.eq(now),
        ))
        .returning(NoteRow::as_returning())
        .get_result(c))?)
}

/// The conversation's notes, oldest first (at most `limit`, the newest ones).
pub fn notes(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    conversation_id: &ConversationId,
    limit: i64,
) -> Result<Vec<NoteRow>, DbError> {
    let mut rows: Vec<NoteRow> = on_backend!(conn, c => conversation_notes::table
        .filter(conversation_notes::workspace_id.eq(workspace_id))
        .filter(conversation_notes::conversation_id.eq(conversation_id))
        .order(conversation_notes::id.desc())
        .limit(limit)
        .select(NoteRow::as_select())
        .load(c))?;
    rows.reverse();
    Ok(rows)
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = canned_replies)]
pub struct CannedReply {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub shortcut: String,
    pub text: String,
    pub created_at: i64,
}

/// `None` when the workspace already has this shortcut.
pub fn add_canned(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    shortcut: &str,
    text: &str,
    now: i64,
) -> Result<Option<CannedReply>, DbError> {
    let inserted = on_backend!(conn, c => diesel::insert_into(canned_replies::table)
        .values((
            canned_replies::workspace_id.eq(workspace_id),
            canned_replies::shortcut.eq(shortcut),
            canned_replies::text.eq(text),
            canned_replies::created_at.eq(now),
        ))
        .returning(CannedReply::as_returning())
        .get_result(c));
    match inserted {
        Ok(row) => Ok(Some(row)),
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

pub fn canned(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<Vec<CannedReply>, DbError> {
    Ok(on_backend!(conn, c => canned_replies::table
        .filter(canned_replies::workspace_id.eq(workspace_id))
        .order(canned_replies::shortcut.asc())
        .select(CannedReply::as_select())
        .load(c))?)
}

pub fn delete_canned(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<bool, DbError> {
    let target =
        canned_replies::table.filter(canned_replies::workspace_id.eq(workspace_id)).filter(canned_replies::id.eq(id));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))? == 1)
}
