//! The agents' view of a workspace's conversations: filtered, newest first, each with its last
//! message, how many visitor messages the agents have not read, and how long the visitor has
//! been waiting. Pages are cut by a cursor on `(created_at, id)`, so walking them returns every
//! conversation once even while new ones start (they sort before the first page).

use diesel::prelude::*;
use frontdesk_actors::{Sender, StoredMessage};
use serde::Serialize;

use super::conversations::{self, ConversationRow, ConversationView};
use super::messages::MessageRow;
use super::schema::{conversations as c_table, messages};
use super::{DbConn, DbError};
use crate::on_backend;

/// What a list of conversations may be narrowed to.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    pub status: Option<String>,
    pub owner: Option<String>,
    pub agent_id: Option<i64>,
    /// Only conversations with (`true`) or without (`false`) visitor messages no agent has read.
    pub unread: Option<bool>,
    /// Started at or after / before these times (ms).
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// Where the next page starts: after this conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

impl Cursor {
    /// `<created_at>.<id>`: opaque to clients, readable in logs.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (created_at, id) = text.split_once('.')?;
        let created_at = created_at.parse().ok()?;
        (!id.is_empty() && id.len() <= 64).then(|| Cursor { created_at, id: id.to_owned() })
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
    workspace_id: i64,
    filter: &InboxFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<(Vec<InboxItem>, Option<Cursor>), DbError> {
    let mut items = Vec::with_capacity(limit);
    let mut cursor = after.cloned();
    // The unread filter is applied to each row after it is read, so a page may need more rows.
    let batch = (limit * 2).clamp(10, 500) as i64;
    loop {
        let rows = rows_after(conn, workspace_id, filter, cursor.as_ref(), batch)?;
        let exhausted = (rows.len() as i64) < batch;
        for row in rows {
            cursor = Some(Cursor { created_at: row.created_at, id: row.id.clone() });
            let item = item(conn, row)?;
            if filter.unread.is_none_or(|wanted| (item.unread > 0) == wanted) {
                items.push(item);
                if items.len() == limit {
                    return Ok((items, cursor));
                }
            }
        }
        if exhausted {
            return Ok((items, None));
        }
    }
}

fn rows_after(
    conn: &mut DbConn,
    workspace_id: i64,
    filter: &InboxFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<ConversationRow>, DbError> {
    Ok(on_backend!(conn, c => {
        let mut q = c_table::table.filter(c_table::workspace_id.eq(workspace_id)).into_boxed();
        if let Some(status) = &filter.status {
            q = q.filter(c_table::status.eq(status.clone()));
        }
        if let Some(owner) = &filter.owner {
            q = q.filter(c_table::owner.eq(owner.clone()));
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
    let last: Option<MessageRow> = on_backend!(conn, c => messages::table
        .filter(messages::workspace_id.eq(row.workspace_id))
        .filter(messages::conversation_id.eq(&row.id))
        .order(messages::seq.desc())
        .select(MessageRow::as_select())
        .first(c)
        .optional())?;
    let unread: i64 = on_backend!(conn, c => messages::table
        .filter(messages::workspace_id.eq(row.workspace_id))
        .filter(messages::conversation_id.eq(&row.id))
        .filter(messages::sender.eq(Sender::Visitor.as_str()))
        .filter(messages::seq.gt(row.agent_read_seq))
        .count()
        .get_result(c))?;
    let last_message: Option<StoredMessage> = last.map(Into::into);
    let waiting_since = if row.status == "closed" {
        None
    } else if row.owner == "queued" {
        row.handoff_requested_at
    } else {
        last_message.as_ref().filter(|m| m.sender == Sender::Visitor).map(|m| m.created_at)
    };
    let conversation = conversations::view(conn, &row)?;
    Ok(InboxItem { conversation, last_message, unread, waiting_since })
}

/// The workspace's open conversations, newest first, at most `limit`: an agent's first view.
pub fn open_conversations(conn: &mut DbConn, workspace_id: i64, limit: usize) -> Result<Vec<InboxItem>, DbError> {
    let filter = InboxFilter { status: Some("open".into()), ..InboxFilter::default() };
    Ok(page(conn, workspace_id, &filter, None, limit)?.0)
}

/// The conversation's ownership history, oldest first.
pub fn transitions(conn: &mut DbConn, workspace_id: i64, id: &str) -> Result<Vec<Transition>, DbError> {
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
