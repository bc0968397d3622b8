//! The agents' view of a workspace's conversations: filtered, newest first, each with its last
//! message, how many visitor messages the agents have not read, and how long the visitor has
//! been waiting. Pages are cut by a cursor on `(created_at, id)`, so walking them returns every
//! conversation once even while new ones start (they sort before the first page).

use std::collections::HashMap;

use diesel::prelude::*;
use frontdesk_actors::{AgentRef, ConversationStatus, Owner, Sender, StoredMessage};
use serde::Serialize;

use super::conversations::{self, ConversationRow, ConversationView};
use super::messages::MessageRow;
use super::schema::{agents, bots, contacts, conversations as c_table, messages};
use super::{lower, DbConn, DbError};
use crate::ids::{ConversationId, WorkspaceId};
use crate::on_backend;

/// What a list of conversations may be narrowed to.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    pub status: Option<ConversationStatus>,
    pub owner: Option<Owner>,
    pub agent_id: Option<i64>,
    /// Only conversations with (`true`) or without (`false`) visitor messages no agent has read.
    pub unread: Option<bool>,
    /// Started at or after / before these times (ms).
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only the conversations of this bot (its row id).
    pub bot_id: Option<i64>,
    /// Only the conversations linked to this CRM contact.
    pub contact_id: Option<i64>,
    /// Words to find, case-insensitively, in the contact's name or email or in what the visitor
    /// or an agent wrote.
    pub search: Option<String>,
}

/// A `LIKE` pattern matching `text` anywhere, its own `%`, `_` and `\` taken literally.
fn contains_pattern(text: &str) -> String {
    let escaped: String = text
        .to_lowercase()
        .chars()
        .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
        .collect();
    format!("%{escaped}%")
}

/// Where the next page starts: after this conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: ConversationId,
}

impl Cursor {
    /// `<created_at>.<id>`: opaque to clients, readable in logs.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (created_at, id) = text.split_once('.')?;
        let created_at = created_at.parse().ok()?;
        (!id.is_empty() && id.len() <= 64).then(|| Cursor { created_at, id: id.into() })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct InboxItem {
    #[serde(flatten)]
    pub conversation: ConversationView,
    pub last_message: Option<StoredMessage>,
    /// Visitor messages after the agents' read position.
    pub unread: i64,
    /// Since when the visitor has been waiting for a person (queued) or for any answer (their
    /// message is the last one); null when nobody is waiting.
    pub waiting_since: Option<i64>,
}

/// One page of conversations, and the cursor of the next page when there may be one.
pub fn page(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    filter: &InboxFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<(Vec<InboxItem>, Option<Cursor>), DbError> {
    let mut page = Vec::with_capacity(limit);
    let mut cursor = after.cloned();
    // The unread filter is applied to each row after it is read, so a page may need more rows.
    let batch = (limit * 2).clamp(10, 500) as i64;
    loop {
        let rows = rows_after(conn, workspace_id, filter, cursor.as_ref(), batch)?;
        let exhausted = (rows.len() as i64) < batch;
        for item in items(conn, workspace_id, rows)? {
            cursor = Some(Cursor { created_at: item.conversation.created_at, id: item.conversation.id.clone() });
            if filter.unread.is_none_or(|wanted| (item.unread > 0) == wanted) {
                page.push(item);
                if page.len() == limit {
                    return Ok((page, cursor));
                }
            }
        }
        if exhausted {
            return Ok((page, None));
        }
    }
}

fn rows_after(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    filter: &InboxFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<ConversationRow>, DbError> {
    Ok(on_backend!(conn, c => {
        let mut q = c_table::table.filter(c_table::workspace_id.eq(workspace_id)).into_boxed();
        if let Some(status) = &filter.status {
            q = q.filter(c_table::status.eq(*status));
        }
        if let Some(owner) = &filter.owner {
            q = q.filter(c_table::owner.eq(*owner));
        }
        if let Some(agent_id) = filter.agent_id {
            q = q.filter(c_table::assigned_agent_id.eq(agent_id));
        }
        if let Some(from) = filter.from {
            q = q.filter(c_table::created_at.ge(from));
        }
        if let Some(to) = filter.to {
            q = q.filter(c_table::created_at.lt(to));
        }
        if let Some(bot_id) = filter.bot_id {
            q = q.filter(c_table::bot_id.eq(bot_id));
        }
        if let Some(contact_id) = filter.contact_id {
            q = q.filter(c_table::contact_id.eq(contact_id));
        }
        if let Some(search) = &filter.search {
            let pattern = contains_pattern(search);
            let contacts_found = contacts::table
                .filter(contacts::workspace_id.eq(workspace_id))
                .filter(
                    lower(contacts::name.nullable())
                        .like(pattern.clone())
                        .escape('\\')
                        .or(lower(contacts::email.nullable()).like(pattern.clone()).escape('\\')),
                )
                .select(contacts::id.nullable());
            let messages_found = messages::table
                .filter(messages::workspace_id.eq(workspace_id))
                // What people wrote: the bot's words (its welcome, above all) would match everywhere.
                .filter(messages::sender.eq_any(["visitor", "agent"]))
                .filter(lower(messages::content.nullable()).like(pattern).escape('\\'))
                .select(messages::conversation_id);
            q = q.filter(c_table::contact_id.eq_any(contacts_found).or(c_table::id.eq_any(messages_found)));
        }
        if let Some(cursor) = after {
            q = q.filter(
                c_table::created_at
                    .lt(cursor.created_at)
                    .or(c_table::created_at.eq(cursor.created_at).and(c_table::id.lt(cursor.id.clone()))),
            );
        }
        q.order((c_table::created_at.desc(), c_table::id.desc()))
            .limit(limit)
            .select(ConversationRow::as_select())
            .load(c)?
    }))
}

/// A conversation with what an inbox shows about it.
pub fn item(conn: &mut DbConn, row: ConversationRow) -> Result<InboxItem, DbError> {
    let workspace_id = row.workspace_id;
    let item = items(conn, workspace_id, vec![row])?.pop();
    item.ok_or_else(|| DbError::Invalid("conversation not found".into()))
}

/// Conversations of one workspace with what an inbox shows about each, in the order given. A
/// fixed number of queries whatever the number of conversations (bots, agents, last messages,
/// unread counts), not a handful per conversation.
pub fn items(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    rows: Vec<ConversationRow>,
) -> Result<Vec<InboxItem>, DbError> {
    let rows: Vec<ConversationRow> = rows.into_iter().filter(|row| row.workspace_id == workspace_id).collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&ConversationId> = rows.iter().map(|row| &row.id).collect();
    let bot_ids: Vec<i64> = rows.iter().map(|row| row.bot_id).collect();
    let bots: HashMap<i64, String> = on_backend!(conn, c => bots::table
        .filter(bots::workspace_id.eq(workspace_id))
        .filter(bots::id.eq_any(&bot_ids))
        .select((bots::id, bots::public_id))
        .load::<(i64, String)>(c))?
    .into_iter()
    .collect();
    let agent_ids: Vec<i64> = rows.iter().filter_map(|row| row.assigned_agent_id).collect();
    let agents: HashMap<i64, String> = match agent_ids.is_empty() {
        true => HashMap::new(),
        false => on_backend!(conn, c => agents::table
            .filter(agents::workspace_id.eq(workspace_id))
            .filter(agents::id.eq_any(&agent_ids))
            .select((agents::id, agents::name))
            .load::<(i64, String)>(c))?
        .into_iter()
        .collect(),
    };
    let last = last_messages(conn, workspace_id, &ids)?;
    let unread: HashMap<ConversationId, i64> = on_backend!(conn, c => messages::table
        .inner_join(c_table::table)
        .filter(messages::workspace_id.eq(workspace_id))
        .filter(messages::conversation_id.eq_any(&ids))
        .filter(messages::sender.eq(Sender::Visitor))
        .filter(messages::seq.gt(c_table::agent_read_seq))
        .group_by(messages::conversation_id)
        .select((messages::conversation_id, diesel::dsl::count_star()))
        .load::<(ConversationId, i64)>(c))?
    .into_iter()
    .collect();
    rows.into_iter()
        .map(|row| {
            let last_message = last.get(&row.id).cloned();
            let waiting_since = if row.status == ConversationStatus::Closed {
                None
            } else if row.owner == Owner::Queued {
                row.handoff_requested_at
            } else {
                last_message.as_ref().filter(|m| m.sender == Sender::Visitor).map(|m| m.created_at)
            };
            let bot = bots.get(&row.bot_id).cloned().ok_or_else(|| DbError::Invalid("bot not found".into()))?;
            let agent =
                row.assigned_agent_id.and_then(|id| agents.get(&id).map(|name| AgentRef { id, name: name.clone() }));
            let last_seq = last_message.as_ref().map_or(0, |m| m.seq);
            let conversation = conversations::view_of(&row, bot, agent, last_seq);
            Ok(InboxItem {
                conversation,
                last_message,
                unread: unread.get(&row.id).copied().unwrap_or(0),
                waiting_since,
            })
        })
        .collect()
}

/// Each conversation's last message (its highest `seq`), in one query whose text does not grow
/// with the number of conversations: the messages of these conversations that no later message
/// of the same conversation follows. SQLite's parser overflows on an expression nested once per
/// conversation, so the ids go into one `IN` list and the "last" condition is a correlated
/// `NOT EXISTS` answered from the `(conversation_id, seq)` unique index. One statement also
/// means one snapshot: a message arriving meanwhile cannot leave a conversation without one.
fn last_messages(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    ids: &[&ConversationId],
) -> Result<HashMap<ConversationId, StoredMessage>, DbError> {
    let later = diesel::alias!(messages as later);
    let found: Vec<MessageRow> = on_backend!(conn, c => messages::table
        .filter(messages::workspace_id.eq(workspace_id))
        .filter(messages::conversation_id.eq_any(ids))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            later
                .filter(later.field(messages::conversation_id).eq(messages::conversation_id))
                .filter(later.field(messages::seq).gt(messages::seq)),
        )))
        .select(MessageRow::as_select())
        .load(c))?;
    Ok(found
        .into_iter()
        .map(|message| {
            let message: StoredMessage = message.into();
            (message.conversation_id.clone(), message)
        })
        .collect())
}

/// The workspace's open conversations, newest first, at most `limit`: an agent's first view.
pub fn open_conversations(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    limit: usize,
) -> Result<Vec<InboxItem>, DbError> {
    let filter = InboxFilter { status: Some(ConversationStatus::Open), ..InboxFilter::default() };
    Ok(page(conn, workspace_id, &filter, None, limit)?.0)
}

/// The conversation's ownership history, oldest first.
pub fn transitions(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: &ConversationId,
) -> Result<Vec<Transition>, DbError> {
    use super::schema::conversation_transitions as t;
    Ok(on_backend!(conn, c => t::table
        .filter(t::workspace_id.eq(workspace_id))
        .filter(t::conversation_id.eq(id))
        .order(t::id.asc())
        .select(Transition::as_select())
        .load(c))?)
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = super::schema::conversation_transitions)]
pub struct Transition {
    #[serde(rename = "from")]
    pub from_owner: String,
    #[serde(rename = "to")]
    pub to_owner: String,
    pub agent_id: Option<i64>,
    #[serde(rename = "by")]
    pub actor: String,
    pub reason: Option<String>,
    #[serde(rename = "at")]
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let cursor = Cursor { created_at: 1_795_000_000_123, id: "01a1fe5c-1614-7045-befa-ec0cd5ee158f".into() };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for junk in ["", "abc", "12", "x.y", "12."] {
            assert_eq!(Cursor::decode(junk), None, "{junk}");
        }
    }
}
