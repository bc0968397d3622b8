//! Messages: insert (deduplicated by `client_msg_id`), and reads by `seq`.

use diesel::prelude::*;
use diesel::query_builder::DecoratableTarget;
use frontdesk_actors::{Appended, NewMessage, Sender, StoredMessage};

use super::schema::messages;
use super::{DbConn, DbError};
use crate::ids::{ConversationId, WorkspaceId};
use crate::on_backend;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub seq: i64,
    pub sender: Sender,
    pub agent_id: Option<i64>,
    pub content: String,
    pub media: Option<String>,
    pub client_msg_id: Option<String>,
    pub reply_to: Option<i64>,
    pub created_at: i64,
    pub metadata: Option<String>,
}

impl From<MessageRow> for StoredMessage {
    fn from(row: MessageRow) -> Self {
        StoredMessage {
            id: row.id,
            conversation_id: row.conversation_id,
            seq: row.seq,
            sender: row.sender,
            agent_id: row.agent_id,
            content: row.content,
            media: row.media.and_then(|m| serde_json::from_str(&m).ok()),
            client_msg_id: row.client_msg_id,
            reply_to: row.reply_to,
            created_at: row.created_at,
            metadata: row.metadata.and_then(|m| serde_json::from_str(&m).ok()),
        }
    }
}

/// The values of one row. Nullable columns are bound explicitly (NULL, never DEFAULT), which
/// lets SQLite take a whole batch as one multi-row INSERT.
#[allow(clippy::type_complexity)]
fn row_of(
    message: &NewMessage,
) -> (
    diesel::dsl::Eq<messages::workspace_id, i64>,
    diesel::dsl::Eq<messages::conversation_id, &str>,
    diesel::dsl::Eq<messages::seq, i64>,
    diesel::dsl::Eq<messages::sender, Sender>,
    diesel::dsl::Eq<messages::agent_id, Option<i64>>,
    diesel::dsl::Eq<messages::content, &str>,
    diesel::dsl::Eq<messages::media, Option<String>>,
    diesel::dsl::Eq<messages::client_msg_id, Option<&str>>,
    diesel::dsl::Eq<messages::reply_to, Option<i64>>,
    diesel::dsl::Eq<messages::created_at, i64>,
    diesel::dsl::Eq<messages::metadata, Option<String>>,
) {
    (
        messages::workspace_id.eq(message.workspace_id),
        messages::conversation_id.eq(message.conversation_id.as_str()),
        messages::seq.eq(message.seq),
        messages::sender.eq(message.sender),
        messages::agent_id.eq(message.agent_id),
        messages::content.eq(message.content.as_str()),
        messages::media.eq(message.media.as_ref().map(|m| m.to_string())),
        messages::client_msg_id.eq(message.client_msg_id.as_deref()),
        messages::reply_to.eq(message.reply_to),
        messages::created_at.eq(message.created_at),
        messages::metadata.eq(message.metadata.as_ref().map(|m| m.to_string())),
    )
}

fn stored(id: i64, message: &NewMessage) -> StoredMessage {
    StoredMessage {
        id,
        conversation_id: message.conversation_id.clone(),
        seq: message.seq,
        sender: message.sender,
        agent_id: message.agent_id,
        content: message.content.clone(),
        media: message.media.clone(),
        client_msg_id: message.client_msg_id.clone(),
        reply_to: message.reply_to,
        created_at: message.created_at,
        metadata: message.metadata.clone(),
    }
}

/// Inserts the message, or returns the one stored earlier with the same `client_msg_id`.
pub fn insert_or_find(conn: &mut DbConn, message: &NewMessage) -> Result<Appended, DbError> {
    Ok(insert_batch_or_find(conn, std::slice::from_ref(message))?.remove(0))
}

/// Inserts messages of several conversations in one statement; each one that repeats a stored
/// `client_msg_id` comes back as that stored message instead.
pub fn insert_batch_or_find(conn: &mut DbConn, batch: &[NewMessage]) -> Result<Vec<Appended>, DbError> {
    let rows: Vec<_> = batch.iter().map(row_of).collect();
    let returned = (messages::id, messages::conversation_id, messages::seq);
    let inserted: Vec<(i64, String, i64)> = match conn {
        DbConn::Postgres(c) => diesel::insert_into(messages::table)
            .values(&rows)
            .on_conflict((messages::conversation_id, messages::client_msg_id))
            .filter_target(messages::client_msg_id.is_not_null())
            .do_nothing()
            .returning(returned)
            .get_results(c)?,
        // SQLite cannot name a partial index as the conflict target. Its only other unique key
        // here is (conversation_id, seq), which one owner never repeats; were it ever hit, the
        // duplicate lookup below finds nothing and the write fails loudly.
        DbConn::Sqlite(c) => diesel::insert_into(messages::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .returning(returned)
            .get_results(c)?,
    };
    let ids: std::collections::HashMap<(&str, i64), i64> =
        inserted.iter().map(|(id, conversation, seq)| ((conversation.as_str(), *seq), *id)).collect();
    batch
        .iter()
        .map(|message| match ids.get(&(message.conversation_id.as_str(), message.seq)) {
            Some(id) => Ok(Appended::Inserted(stored(*id, message))),
            None => find_duplicate(conn, message).map(Appended::Duplicate),
        })
        .collect()
}

fn find_duplicate(conn: &mut DbConn, message: &NewMessage) -> Result<StoredMessage, DbError> {
    let client_msg_id = message.client_msg_id.clone().unwrap_or_default();
    let original: MessageRow = on_backend!(conn, c => messages::table
        .filter(messages::workspace_id.eq(message.workspace_id))
        .filter(messages::conversation_id.eq(&message.conversation_id))
        .filter(messages::client_msg_id.eq(&client_msg_id))
        .select(MessageRow::as_select())
        .first(c))?;
    Ok(original.into())
}

/// Messages with `seq` greater than `after`, in order, at most `limit`.
pub fn after(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    conversation_id: &ConversationId,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredMessage>, DbError> {
    let rows: Vec<MessageRow> = on_backend!(conn, c => messages::table
        .filter(messages::workspace_id.eq(workspace_id))
        .filter(messages::conversation_id.eq(conversation_id))
        .filter(messages::seq.gt(after))
        .order(messages::seq.asc())
        .limit(limit)
        .select(MessageRow::as_select())
        .load(c))?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The most recent `limit` messages, oldest first.
pub fn recent(conn: &mut DbConn, conversation_id: &ConversationId, limit: i64) -> Result<Vec<StoredMessage>, DbError> {
    let mut rows: Vec<MessageRow> = on_backend!(conn, c => messages::table
        .filter(messages::conversation_id.eq(conversation_id))
        .order(messages::seq.desc())
        .limit(limit)
        .select(MessageRow::as_select())
        .load(c))?;
    rows.reverse();
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The highest `seq` of the conversation, 0 when it has no message.
pub fn last_seq(conn: &mut DbConn, conversation_id: &ConversationId) -> Result<i64, DbError> {
    let max: Option<i64> = on_backend!(conn, c => messages::table
        .filter(messages::conversation_id.eq(conversation_id))
        .select(diesel::dsl::max(messages::seq))
        .first(c))?;
    Ok(max.unwrap_or(0))
}

/// The first message stored in answer to `message_id`.
pub fn reply_to(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    conversation_id: &ConversationId,
    message_id: i64,
) -> Result<Option<StoredMessage>, DbError> {
    let row: Option<MessageRow> = on_backend!(conn, c => messages::table
        .filter(messages::workspace_id.eq(workspace_id))
        .filter(messages::conversation_id.eq(conversation_id))
        .filter(messages::reply_to.eq(message_id))
        .order(messages::seq.asc())
        .select(MessageRow::as_select())
        .first(c)
        .optional())?;
    Ok(row.map(Into::into))
}

/// Counts the conversation's messages (used by tests and the CLI's checks).
pub fn count(conn: &mut DbConn, workspace_id: WorkspaceId, conversation_id: &ConversationId) -> Result<i64, DbError> {
    Ok(on_backend!(conn, c => messages::table
        .filter(messages::workspace_id.eq(workspace_id))
        .filter(messages::conversation_id.eq(conversation_id))
        .count()
        .get_result(c))?)
}

/// The visitor's most recent `limit` messages' text, oldest first.
pub fn visitor_texts(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    conversation_id: &ConversationId,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    let mut texts: Vec<String> = on_backend!(conn, c => messages::table
        .filter(messages::workspace_id.eq(workspace_id))
        .filter(messages::conversation_id.eq(conversation_id))
        .filter(messages::sender.eq(Sender::Visitor))
        .order(messages::seq.desc())
        .limit(limit)
        .select(messages::content)
        .load(c))?;
    texts.reverse();
    Ok(texts)
}

/// Model tokens spent on the conversation's replies, from each reply's `metadata.model.usage`:
/// `(prompt_tokens, completion_tokens, replies)`.
pub fn model_tokens(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    conversation_id: &ConversationId,
) -> Result<(i64, i64, i64), DbError> {
    let metadata: Vec<Option<String>> = on_backend!(conn, c => messages::table
        .filter(messages::workspace_id.eq(workspace_id))
        .filter(messages::conversation_id.eq(conversation_id))
        .filter(messages::sender.eq(Sender::Bot))
        .filter(messages::metadata.is_not_null())
        .select(messages::metadata)
        .load(c))?;
    let mut totals = (0, 0, 0);
    for usage in metadata.iter().flatten().filter_map(|m| serde_json::from_str::<serde_json::Value>(m).ok()) {
        let usage = &usage["model"]["usage"];
        if let (Some(prompt), Some(completion)) = (usage["prompt_tokens"].as_i64(), usage["completion_tokens"].as_i64())
        {
            totals = (totals.0 + prompt, totals.1 + completion, totals.2 + 1);
        }
    }
    Ok(totals)
}
