//! Conversations: creation (with the bot's welcome as message 1), lookups scoped by workspace
//! or by bot, closing, and the snapshot a session rehydrates from.

use diesel::prelude::*;
use frontdesk_actors::{ConversationSnapshot, ConversationStatus, Sender};
use serde::Serialize;

use super::schema::{bots, conversations, messages};
use super::{messages as message_rows, write_tx, DbConn, DbError};
use crate::on_backend;
use crate::webhooks::outbox;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = conversations)]
pub struct ConversationRow {
    pub id: String,
    pub workspace_id: i64,
    pub bot_id: i64,
    pub contact_id: Option<i64>,
    pub external_id: Option<String>,
    pub channel: String,
    pub status: String,
    pub owner: String,
    pub variables: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

/// A conversation as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    pub id: String,
    pub bot_id: String,
    pub status: String,
    pub owner: String,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub variables: serde_json::Value,
    pub last_seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

/// What starting a conversation needs.
pub struct NewConversation<'a> {
    pub workspace_id: i64,
    pub bot_id: i64,
    pub bot_public_id: &'a str,
    pub external_id: Option<&'a str>,
    pub channel: &'a str,
    pub variables: &'a serde_json::Value,
    pub welcome: Option<&'a str>,
    pub now: i64,
}

/// Creates the conversation and, in the same transaction, the welcome message as `seq` 1.
pub fn create(conn: &mut DbConn, new: NewConversation<'_>) -> Result<ConversationRow, DbError> {
    // Time-ordered (v7, still 74 random bits): conversations active at the same time sit side by
    // side in the messages indexes, so a group commit dirties a few index pages instead of one
    // random page per conversation.
    let id = uuid::Uuid::now_v7().to_string();
    write_tx(conn, |conn| {
        let variables = new.variables.to_string();
        on_backend!(conn, c => diesel::insert_into(conversations::table)
            .values((
                conversations::id.eq(&id),
                conversations::workspace_id.eq(new.workspace_id),
                conversations::bot_id.eq(new.bot_id),
                conversations::external_id.eq(new.external_id),
                conversations::channel.eq(new.channel),
                conversations::variables.eq(&variables),
                conversations::created_at.eq(new.now),
                conversations::updated_at.eq(new.now),
            ))
            .execute(c))?;
        if let Some(welcome) = new.welcome.filter(|w| !w.trim().is_empty()) {
            on_backend!(conn, c => diesel::insert_into(messages::table)
                .values((
                    messages::workspace_id.eq(new.workspace_id),
                    messages::conversation_id.eq(&id),
                    messages::seq.eq(1i64),
                    messages::sender.eq(Sender::Bot.as_str()),
                    messages::content.eq(welcome),
                    messages::created_at.eq(new.now),
                ))
                .execute(c))?;
        }
        let data = serde_json::json!({
            "conversation_id": id,
            "bot_id": new.bot_public_id,
            "channel": new.channel,
            "external_id": new.external_id,
            "variables": new.variables,
            "created_at": new.now,
        });
        outbox::emit(conn, new.workspace_id, "conversation_started", data, new.now)?;
        get(conn, new.workspace_id, &id)?.ok_or_else(|| DbError::Invalid("conversation vanished".into()))
    })
}

/// A conversation of the workspace.
pub fn get(conn: &mut DbConn, workspace_id: i64, id: &str) -> Result<Option<ConversationRow>, DbError> {
    Ok(on_backend!(conn, c => conversations::table
        .filter(conversations::workspace_id.eq(workspace_id))
        .filter(conversations::id.eq(id))
        .select(ConversationRow::as_select())
        .first(c)
        .optional())?)
}

/// A conversation of the bot (the widget's scope: it knows only the bot).
pub fn get_for_bot(conn: &mut DbConn, bot_id: i64, id: &str) -> Result<Option<ConversationRow>, DbError> {
    Ok(on_backend!(conn, c => conversations::table
        .filter(conversations::bot_id.eq(bot_id))
        .filter(conversations::id.eq(id))
        .select(ConversationRow::as_select())
        .first(c)
        .optional())?)
}

/// The bot's conversation with this caller-chosen id (a seed API's `session_id`).
pub fn by_external_id(conn: &mut DbConn, bot_id: i64, external_id: &str) -> Result<Option<ConversationRow>, DbError> {
    Ok(on_backend!(conn, c => conversations::table
        .filter(conversations::bot_id.eq(bot_id))
        .filter(conversations::external_id.eq(external_id))
        .select(ConversationRow::as_select())
        .first(c)
        .optional())?)
}

/// The API view of a conversation: its bot's public id and its last `seq` included.
pub fn view(conn: &mut DbConn, row: &ConversationRow) -> Result<ConversationView, DbError> {
    let bot_public_id: String = on_backend!(conn, c => bots::table
        .filter(bots::id.eq(row.bot_id))
        .select(bots::public_id)
        .first(c))?;
    Ok(ConversationView {
        id: row.id.clone(),
        bot_id: bot_public_id,
        status: row.status.clone(),
        owner: row.owner.clone(),
        channel: row.channel.clone(),
        external_id: row.external_id.clone(),
        variables: serde_json::from_str(&row.variables).unwrap_or_default(),
        last_seq: message_rows::last_seq(conn, &row.id)?,
        created_at: row.created_at,
        updated_at: row.updated_at,
        closed_at: row.closed_at,
    })
}

/// Closes the conversation and queues `conversation_closed`, in one transaction.
pub fn close(conn: &mut DbConn, workspace_id: i64, id: &str, at: i64) -> Result<bool, DbError> {
    write_tx(conn, |conn| {
        let target = conversations::table
            .filter(conversations::workspace_id.eq(workspace_id))
            .filter(conversations::id.eq(id))
            .filter(conversations::status.ne("closed"));
        let changed = on_backend!(conn, c => diesel::update(target)
            .set((conversations::status.eq("closed"), conversations::closed_at.eq(at), conversations::updated_at.eq(at)))
            .execute(c))?;
        if changed == 0 {
            return Ok(false);
        }
        let data = serde_json::json!({ "conversation_id": id, "closed_at": at });
        outbox::emit(conn, workspace_id, "conversation_closed", data, at)
    })
}

/// What a session needs to resume the conversation.
pub fn snapshot(conn: &mut DbConn, id: &str, window: i64) -> Result<Option<ConversationSnapshot>, DbError> {
    let row: Option<ConversationRow> = on_backend!(conn, c => conversations::table
        .filter(conversations::id.eq(id))
        .select(ConversationRow::as_select())
        .first(c)
        .optional())?;
    let Some(row) = row else { return Ok(None) };
    let recent = message_rows::recent(conn, id, window)?;
    let last_seq = recent.last().map(|m| m.seq).unwrap_or(0);
    Ok(Some(ConversationSnapshot {
        id: row.id,
        workspace_id: row.workspace_id,
        bot_id: row.bot_id,
        status: if row.status == "closed" { ConversationStatus::Closed } else { ConversationStatus::Open },
        variables: serde_json::from_str(&row.variables).unwrap_or_default(),
        last_seq,
        recent,
    }))
}

/// Replaces a conversation's variables (the brain's dialog state lives there).
pub fn set_variables(
    conn: &mut DbConn,
    workspace_id: i64,
    id: &str,
    variables: &serde_json::Value,
    now: i64,
) -> Result<(), DbError> {
    let target =
        conversations::table.filter(conversations::workspace_id.eq(workspace_id)).filter(conversations::id.eq(id));
    on_backend!(conn, c => diesel::update(target)
        .set((conversations::variables.eq(variables.to_string()), conversations::updated_at.eq(now)))
        .execute(c))?;
    Ok(())
}

/// Links a conversation to the patient it turned out to be.
pub fn set_contact(conn: &mut DbConn, workspace_id: i64, id: &str, contact_id: i64) -> Result<(), DbError> {
    let target =
        conversations::table.filter(conversations::workspace_id.eq(workspace_id)).filter(conversations::id.eq(id));
    on_backend!(conn, c => diesel::update(target).set(conversations::contact_id.eq(contact_id)).execute(c))?;
    Ok(())
}
