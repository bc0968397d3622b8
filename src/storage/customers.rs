//! CX Genie's customers and sessions, read from frontdesk's own tables: a customer is a row of
//! `contacts` (patients included), a session is a `conversations` row linked to it by
//! `contact_id`, and a session's messages are its `messages`. Also the upsert behind CX Genie's
//! `customer_info` (match by external id, then email, then phone; otherwise create).
//!
//! A customer's external id and metadata live in the contact's `attributes` JSON document
//! (`{"external_id": "…", "metadata": {…}}`).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::contacts::{Authority, Person};
use super::schema::{agents, contacts, conversations, messages};
use super::{like_escape, lower, write_tx, DbConn, DbError};
use crate::ids::{ConversationId, WorkspaceId};
use crate::on_backend;
use crate::status::Presence;
use frontdesk_actors::{ConversationStatus, Owner};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = contacts)]
pub struct ContactRow {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub kind: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub attributes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ContactRow {
    pub fn attributes(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.attributes).unwrap_or_default()
    }

    pub fn external_id(&self) -> Option<String> {
        self.attributes().get("external_id").and_then(|v| v.as_str()).map(str::to_owned)
    }

    pub fn metadata(&self) -> serde_json::Value {
        match self.attributes().remove("metadata") {
            Some(value @ serde_json::Value::Object(_)) => value,
            _ => serde_json::json!({}),
        }
    }
}

/// A conversation, as CX Genie calls it.
pub type SessionRow = super::conversations::ConversationRow;

pub use super::messages::MessageRow;

/// Where a customer list page starts (it runs newest first, by `created_at` then `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// A bare date (CX Genie's documented cursor): customers created strictly before it.
    Before(i64),
    /// frontdesk's `next_cursor`: customers after this one in the list's order.
    After { created_at: i64, id: i64 },
}

/// The filters of `customer-list`.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub search: Option<String>,
    /// Only customers with a conversation with one of these bots (internal ids); `None`: with
    /// any bot. A contact who never chatted is never a customer.
    pub bot_ids: Option<Vec<i64>>,
    /// Only customers with both an email and a phone (`users`), or only those without both
    /// (`lead`); `None` for both kinds.
    pub users: Option<bool>,
    pub cursor: Option<Cursor>,
    pub limit: i64,
}

/// The boxed query of the workspace's customers that pass the filter (cursor excepted).
macro_rules! customers_matching {
    ($workspace_id:expr, $filter:expr) => {{
        let workspace_id: WorkspaceId = $workspace_id;
        let filter: &CustomerFilter = $filter;
        let mut q = contacts::table.filter(contacts::workspace_id.eq(workspace_id)).into_boxed();
        let search = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
        if let Some(search) = search {
            let pattern = format!("%{}%", like_escape(&search.to_lowercase()));
            let digits: String = search.chars().filter(char::is_ascii_digit).collect();
            let by_text = lower(contacts::name)
                .like(pattern.clone())
                .escape('\\')
                .or(contacts::email_normalized.like(pattern).escape('\\'));
            q = if digits.len() >= 3 {
                q.filter(by_text.or(contacts::phone_normalized.like(format!("%{digits}%"))))
            } else {
                q.filter(by_text)
            };
        }
        match filter.users {
            Some(true) => q = q.filter(contacts::email.is_not_null().and(contacts::phone.is_not_null())),
            Some(false) => q = q.filter(contacts::email.is_null().or(contacts::phone.is_null())),
            None => {}
        }
        // Only people who chatted are customers: a contact from a booking or the CRM alone has
        // no bot, session or message for the documented non-null fields.
        q = match &filter.bot_ids {
            Some(bot_ids) => q.filter(
                contacts::id.nullable().eq_any(
                    conversations::table
                        .filter(conversations::workspace_id.eq(workspace_id))
                        .filter(conversations::bot_id.eq_any(bot_ids.clone()))
                        .select(conversations::contact_id),
                ),
            ),
            None => q.filter(
                contacts::id.nullable().eq_any(
                    conversations::table
                        .filter(conversations::workspace_id.eq(workspace_id))
                        .select(conversations::contact_id),
                ),
            ),
        };
        q
    }};
}

/// One page of the workspace's customers, newest first (`created_at`, then `id`, both
/// descending), at most `limit + 1` rows so the caller can tell whether more follow; and how
/// many customers pass the filter in all.
pub fn list(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    filter: &CustomerFilter,
) -> Result<(Vec<ContactRow>, i64), DbError> {
    let rows = on_backend!(conn, c => {
        let mut q = customers_matching!(workspace_id, filter);
        match filter.cursor {
            Some(Cursor::Before(at)) => q = q.filter(contacts::created_at.lt(at)),
            Some(Cursor::After { created_at, id }) => {
                q = q.filter(
                    contacts::created_at
                        .lt(created_at)
                        .or(contacts::created_at.eq(created_at).and(contacts::id.lt(id))),
                )
            }
            None => {}
        }
        q.order((contacts::created_at.desc(), contacts::id.desc()))
            .limit(filter.limit + 1)
            .select(ContactRow::as_select())
            .load(c)?
    });
    let total: i64 = on_backend!(conn, c => customers_matching!(workspace_id, filter).count().get_result(c)?);
    Ok((rows, total))
}

pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<ContactRow>, DbError> {
    Ok(on_backend!(conn, c => contacts::table
        .filter(contacts::workspace_id.eq(workspace_id))
        .filter(contacts::id.eq(id))
        .select(ContactRow::as_select())
        .first(c)
        .optional())?)
}

/// The internal ids of the workspace's bots with these public ids (unknown ones are left out).
pub fn bot_ids(conn: &mut DbConn, workspace_id: WorkspaceId, public_ids: &[String]) -> Result<Vec<i64>, DbError> {
    use super::schema::bots;
    Ok(on_backend!(conn, c => bots::table
        .filter(bots::workspace_id.eq(workspace_id))
        .filter(bots::public_id.eq_any(public_ids))
        .select(bots::id)
        .load(c))?)
}

/// Every session of these customers, newest first.
pub fn sessions_of(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    contact_ids: &[i64],
) -> Result<Vec<SessionRow>, DbError> {
    if contact_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Option<i64>> = contact_ids.iter().copied().map(Some).collect();
    Ok(on_backend!(conn, c => conversations::table
        .filter(conversations::workspace_id.eq(workspace_id))
        .filter(conversations::contact_id.eq_any(ids))
        .order((conversations::created_at.desc(), conversations::id.desc()))
        .select(SessionRow::as_select())
        .load(c))?)
}

pub fn session(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: &ConversationId,
) -> Result<Option<SessionRow>, DbError> {
    Ok(on_backend!(conn, c => conversations::table
        .filter(conversations::workspace_id.eq(workspace_id))
        .filter(conversations::id.eq(id))
        .select(SessionRow::as_select())
        .first(c)
        .optional())?)
}

/// CX Genie's `reply_status` of a session, decided from its messages alone. With V the `seq` of
/// the customer's last message and R that of the last bot or agent message (0 when none):
/// `Unread` when V > R (the customer's last message is unanswered) and no agent has taken the
/// session; `Read` when V > R but an agent owns the session (a person has it open), or when the
/// customer has written nothing; `Replied` when R > V > 0. Each session is exactly one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyStatus {
    Unread,
    Read,
    Replied,
}

const LAST_VISITOR: &str = "COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.conversation_id = conversations.id \
                            AND m.sender = 'visitor'), 0)";
const LAST_REPLY: &str = "COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.conversation_id = conversations.id \
                          AND m.sender IN ('bot', 'agent')), 0)";

impl Activity {
    /// Whether the bot answered the customer in this session (its welcome alone does not count).
    pub fn bot_replied(&self) -> bool {
        self.first_visitor_seq > 0 && self.last_bot_seq > self.first_visitor_seq
    }
}

impl ReplyStatus {
    /// The same rule as [`ReplyStatus::of`], as SQL on a `conversations` row.
    fn sql(self) -> String {
        let (v, r) = (LAST_VISITOR, LAST_REPLY);
        match self {
            ReplyStatus::Unread => format!("({v} > {r} AND conversations.owner <> 'agent')"),
            ReplyStatus::Read => format!("(({v} > {r} AND conversations.owner = 'agent') OR {v} = 0)"),
            ReplyStatus::Replied => format!("({v} > 0 AND {r} > {v})"),
        }
    }

    pub fn of(owner: Owner, activity: &Activity) -> ReplyStatus {
        let (v, r) = (activity.last_visitor_seq, activity.last_reply_seq);
        if v > r {
            if owner == Owner::Agent {
                ReplyStatus::Read
            } else {
                ReplyStatus::Unread
            }
        } else if v == 0 {
            ReplyStatus::Read
        } else {
            ReplyStatus::Replied
        }
    }
}

/// The filters of `sessions-by-customer`.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub contact_id: i64,
    pub bot_ids: Option<Vec<i64>>,
    pub statuses: Option<Vec<ConversationStatus>>,
    pub reply: Option<Vec<ReplyStatus>>,
    /// Sessions created in this range (ms, both ends included).
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

macro_rules! sessions_matching {
    ($workspace_id:expr, $filter:expr) => {{
        let workspace_id: WorkspaceId = $workspace_id;
        let filter: &SessionFilter = $filter;
        let mut q = conversations::table
            .filter(conversations::workspace_id.eq(workspace_id))
            .filter(conversations::contact_id.eq(filter.contact_id))
            .into_boxed();
        if let Some(bot_ids) = &filter.bot_ids {
            q = q.filter(conversations::bot_id.eq_any(bot_ids.clone()));
        }
        if let Some(statuses) = &filter.statuses {
            q = q.filter(conversations::status.eq_any(statuses.clone()));
        }
        if let Some(reply) = &filter.reply {
            let any = reply.iter().map(|r| r.sql()).collect::<Vec<_>>().join(" OR ");
            q = q.filter(diesel::dsl::sql::<Bool>(&format!("({any})")));
        }
        if let Some(from) = filter.created_from {
            q = q.filter(conversations::created_at.ge(from));
        }
        if let Some(to) = filter.created_to {
            q = q.filter(conversations::created_at.le(to));
        }
        q
    }};
}

/// A page of a customer's sessions, newest first, and how many pass the filter in all.
pub fn sessions(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    filter: &SessionFilter,
) -> Result<(Vec<SessionRow>, i64), DbError> {
    let rows = on_backend!(conn, c => sessions_matching!(workspace_id, filter)
        .order((conversations::created_at.desc(), conversations::id.desc()))
        .limit(filter.limit)
        .offset(filter.offset)
        .select(SessionRow::as_select())
        .load(c)?);
    let total: i64 = on_backend!(conn, c => sessions_matching!(workspace_id, filter).count().get_result(c)?);
    Ok((rows, total))
}

/// What a session's messages say about it.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// `seq` of the customer's last message (0: none).
    pub last_visitor_seq: i64,
    /// `seq` of the customer's first message (0: none).
    pub first_visitor_seq: i64,
    /// `seq` of the last bot or agent message (0: none).
    pub last_reply_seq: i64,
    /// `seq` of the bot's last message (0: none).
    pub last_bot_seq: i64,
    /// The agents who wrote in it.
    pub agent_ids: Vec<i64>,
    /// The last message that is not a system message (or the last system message when there is
    /// nothing else).
    pub last_message: Option<MessageRow>,
}

/// The [`Activity`] of each of these sessions (those without messages get none).
pub fn activity(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    session_ids: &[ConversationId],
) -> Result<HashMap<ConversationId, Activity>, DbError> {
    if session_ids.is_empty() {
        return Ok(HashMap::new());
    }
    type Group = (ConversationId, String, Option<i64>, Option<i64>, Option<i64>);
    let groups: Vec<Group> = on_backend!(conn, c => messages::table
        .filter(messages::workspace_id.eq(workspace_id))
        .filter(messages::conversation_id.eq_any(session_ids))
        .group_by((messages::conversation_id, messages::sender, messages::agent_id))
        .select((
            messages::conversation_id,
            messages::sender,
            messages::agent_id,
            diesel::dsl::min(messages::seq),
            diesel::dsl::max(messages::seq),
        ))
        .load(c))?;
    let mut found: HashMap<ConversationId, Activity> = HashMap::new();
    // The seq of each session's last message: not a system one if there is any other.
    let mut last: HashMap<ConversationId, (bool, i64)> = HashMap::new();
    for (session, sender, agent_id, first, seq) in groups {
        let (first, seq) = (first.unwrap_or(0), seq.unwrap_or(0));
        let entry = found.entry(session.clone()).or_default();
        match sender.as_str() {
            "visitor" => {
                entry.last_visitor_seq = entry.last_visitor_seq.max(seq);
                entry.first_visitor_seq = first;
            }
            "bot" => {
                entry.last_reply_seq = entry.last_reply_seq.max(seq);
                entry.last_bot_seq = seq;
            }
            "agent" => {
                entry.last_reply_seq = entry.last_reply_seq.max(seq);
                if let Some(agent) = agent_id.filter(|a| !entry.agent_ids.contains(a)) {
                    entry.agent_ids.push(agent);
                }
            }
            _ => {}
        }
        let candidate = (sender != "system", seq);
        let best = last.entry(session).or_insert(candidate);
        if candidate > *best {
            *best = candidate;
        }
    }
    let seqs: Vec<i64> = last.values().map(|(_, seq)| *seq).collect();
    let rows: Vec<MessageRow> = on_backend!(conn, c => messages::table
        .filter(messages::workspace_id.eq(workspace_id))
        .filter(messages::conversation_id.eq_any(session_ids))
        .filter(messages::seq.eq_any(seqs))
        .select(MessageRow::as_select())
        .load(c))?;
    for row in rows {
        if last.get(&row.conversation_id).is_some_and(|(_, seq)| *seq == row.seq) {
            if let Some(entry) = found.get_mut(&row.conversation_id) {
                entry.last_message = Some(row);
            }
        }
    }
    Ok(found)
}

/// A page of a session's messages by `seq` (ascending or descending), optionally without system
/// messages, and how many there are in all.
pub fn messages(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    session_id: &ConversationId,
    descending: bool,
    without_system: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<MessageRow>, i64), DbError> {
    macro_rules! matching {
        () => {{
            let mut q = messages::table
                .filter(messages::workspace_id.eq(workspace_id))
                .filter(messages::conversation_id.eq(session_id))
                .into_boxed();
            if without_system {
                q = q.filter(messages::sender.ne("system"));
            }
            q
        }};
    }
    let rows = on_backend!(conn, c => {
        let q = matching!();
        let q = if descending { q.order(messages::seq.desc()) } else { q.order(messages::seq.asc()) };
        q.limit(limit).offset(offset).select(MessageRow::as_select()).load(c)?
    });
    let total: i64 = on_backend!(conn, c => matching!().count().get_result(c)?);
    Ok((rows, total))
}

/// An agent as CX Genie's `replied_by` shows them.
#[derive(Debug, Clone, Queryable)]
pub struct AgentBrief {
    pub id: i64,
    pub name: String,
    pub presence: Presence,
}

pub fn agents(conn: &mut DbConn, workspace_id: WorkspaceId, ids: &[i64]) -> Result<HashMap<i64, AgentBrief>, DbError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<AgentBrief> = on_backend!(conn, c => agents::table
        .filter(agents::workspace_id.eq(workspace_id))
        .filter(agents::id.eq_any(ids))
        .select((agents::id, agents::name, agents::presence))
        .load(c))?;
    Ok(rows.into_iter().map(|a| (a.id, a)).collect())
}

/// What a customer told about themselves (CX Genie's `customer_info`), already trimmed and
/// checked: an email or phone given is a valid one.
#[derive(Debug, Clone, Default)]
pub struct CustomerInfo {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
}

impl CustomerInfo {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none() && self.phone.is_none() && self.external_id.is_none()
    }
}

impl CustomerInfo {
    pub fn person(&self) -> Person<'_> {
        Person {
            name: self.name.as_deref(),
            email: self.email.as_deref(),
            phone: self.phone.as_deref(),
            external_id: self.external_id.as_deref(),
        }
    }
}

/// Creates or updates the customer `info` describes, in one write transaction, by the
/// integrator's rule of [`contacts::merge`]: a match takes every detail given (what a customer
/// enters now is what is true now) and `metadata`'s keys; a name alone makes a new customer.
pub fn upsert(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    info: &CustomerInfo,
    metadata: Option<&serde_json::Map<String, serde_json::Value>>,
    now: i64,
) -> Result<ContactRow, DbError> {
    write_tx(conn, |conn| {
        super::contacts::merge(conn, workspace_id, &info.person(), metadata, Authority::Integrator, "cxgenie", now)?
            .map(|merged| merged.contact)
            .ok_or_else(|| DbError::Invalid("customer_info names nobody".into()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(v: i64, r: i64) -> Activity {
        Activity { last_visitor_seq: v, last_reply_seq: r, ..Activity::default() }
    }

    #[test]
    fn reply_status_partitions_sessions() {
        assert_eq!(ReplyStatus::of(Owner::Bot, &activity(3, 2)), ReplyStatus::Unread);
        assert_eq!(ReplyStatus::of(Owner::Queued, &activity(3, 2)), ReplyStatus::Unread);
        assert_eq!(ReplyStatus::of(Owner::Agent, &activity(3, 2)), ReplyStatus::Read);
        assert_eq!(ReplyStatus::of(Owner::Bot, &activity(0, 1)), ReplyStatus::Read);
        assert_eq!(ReplyStatus::of(Owner::Bot, &activity(2, 3)), ReplyStatus::Replied);
        assert_eq!(ReplyStatus::of(Owner::Agent, &activity(2, 5)), ReplyStatus::Replied);
    }
}
