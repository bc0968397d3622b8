//! Conversations: creation (with the bot's welcome as message 1), lookups scoped by workspace
//! or by bot, closing, and the snapshot a session rehydrates from.

use diesel::prelude::*;
use frontdesk_actors::{
    AgentRef, ConversationSnapshot, ConversationStatus, Owner, OwnershipChange, OwnershipOutcome, Sender,
};
use serde::Serialize;

use super::schema::{agents, bots, conversation_transitions, conversations, messages};
use super::{like_escape, messages as message_rows, write_tx, DbConn, DbError};
use crate::ids::{ConversationId, WorkspaceId};
use crate::on_backend;
use crate::storage::outbox;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = conversations)]
pub struct ConversationRow {
    pub id: ConversationId,
    pub workspace_id: WorkspaceId,
    pub bot_id: i64,
    pub contact_id: Option<i64>,
    pub external_id: Option<String>,
    pub channel: String,
    pub status: ConversationStatus,
    pub owner: Owner,
    pub assigned_agent_id: Option<i64>,
    pub variables: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
    pub owner_changed_at: Option<i64>,
    pub handoff_requested_at: Option<i64>,
    pub agent_active_at: Option<i64>,
    pub agent_read_seq: i64,
    pub visitor_read_seq: i64,
}

/// A conversation as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    pub id: ConversationId,
    pub bot_id: String,
    pub status: ConversationStatus,
    /// `bot`, `queued` (a person was asked for) or `agent`.
    pub owner: Owner,
    /// The agent who owns it, when an agent does.
    pub agent: Option<AgentRef>,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The CRM contact (patient or customer) the conversation is linked to, once known.
    pub contact_id: Option<i64>,
    pub variables: serde_json::Value,
    pub last_seq: i64,
    /// Highest `seq` the agents and the visitor have read.
    pub agent_read_seq: i64,
    pub visitor_read_seq: i64,
    pub owner_changed_at: Option<i64>,
    pub handoff_requested_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

/// What starting a conversation needs.
pub struct NewConversation<'a> {
    pub workspace_id: WorkspaceId,
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
    let id = ConversationId::from(uuid::Uuid::now_v7().to_string());
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
                    messages::sender.eq(Sender::Bot),
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
pub fn get(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: &ConversationId,
) -> Result<Option<ConversationRow>, DbError> {
    Ok(on_backend!(conn, c => conversations::table
        .filter(conversations::workspace_id.eq(workspace_id))
        .filter(conversations::id.eq(id))
        .select(ConversationRow::as_select())
        .first(c)
        .optional())?)
}

/// A conversation of the bot (the widget's scope: it knows only the bot).
pub fn get_for_bot(conn: &mut DbConn, bot_id: i64, id: &ConversationId) -> Result<Option<ConversationRow>, DbError> {
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
    let agent = agent_ref(conn, row.workspace_id, row.assigned_agent_id)?;
    let last_seq = message_rows::last_seq(conn, &row.id)?;
    Ok(view_of(row, bot_public_id, agent, last_seq))
}

/// The view of a conversation whose bot, agent and last `seq` were read already (for many
/// conversations at once, see `inbox`).
pub fn view_of(
    row: &ConversationRow,
    bot_public_id: String,
    agent: Option<AgentRef>,
    last_seq: i64,
) -> ConversationView {
    ConversationView {
        id: row.id.clone(),
        bot_id: bot_public_id,
        status: row.status,
        owner: row.owner,
        agent,
        contact_id: row.contact_id,
        channel: row.channel.clone(),
        external_id: row.external_id.clone(),
        variables: serde_json::from_str(&row.variables).unwrap_or_default(),
        last_seq,
        agent_read_seq: row.agent_read_seq,
        visitor_read_seq: row.visitor_read_seq,
        owner_changed_at: row.owner_changed_at,
        handoff_requested_at: row.handoff_requested_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        closed_at: row.closed_at,
    }
}

/// Makes the caller the conversation's owner across nodes: raises its fencing token, so every
/// session writing with an older one is refused from now on, and answers the new token
/// (`None` for an unknown conversation). Called by a node that has just taken the
/// conversation's lease, before its session loads the conversation.
pub fn claim(conn: &mut DbConn, id: &ConversationId) -> Result<Option<i64>, DbError> {
    let target = conversations::table.filter(conversations::id.eq(id));
    Ok(on_backend!(conn, c => diesel::update(target)
        .set(conversations::fence.eq(conversations::fence + 1))
        .returning(conversations::fence)
        .get_result(c)
        .optional())?)
}

/// Refuses, inside a write's transaction, a write whose fencing token is older than the
/// conversation's (`None`: a single node's write, never stale). On PostgreSQL the row is
/// share-locked until the write commits, so a [`claim`] made meanwhile waits for it, and the
/// new owner's session then reads what was written.
pub fn check_fence(conn: &mut DbConn, id: &ConversationId, fence: Option<i64>) -> Result<(), DbError> {
    let Some(token) = fence else { return Ok(()) };
    let current = conversations::table.filter(conversations::id.eq(id)).select(conversations::fence);
    let current: Option<i64> = match conn {
        DbConn::Postgres(c) => current.for_share().first(c).optional()?,
        DbConn::Sqlite(c) => current.first(c).optional()?,
    };
    match current {
        Some(current) if current > token => Err(DbError::Fenced(token)),
        _ => Ok(()),
    }
}

/// Closes the conversation and queues `conversation_closed`, in one transaction.
pub fn close(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: &ConversationId,
    at: i64,
    fence: Option<i64>,
) -> Result<bool, DbError> {
    write_tx(conn, |conn| {
        check_fence(conn, id, fence)?;
        let target = conversations::table
            .filter(conversations::workspace_id.eq(workspace_id))
            .filter(conversations::id.eq(id))
            .filter(conversations::status.ne(ConversationStatus::Closed));
        let owner: Option<Owner> = on_backend!(conn, c => diesel::update(target)
            .set((conversations::status.eq(ConversationStatus::Closed), conversations::closed_at.eq(at), conversations::updated_at.eq(at)))
            .returning(conversations::owner)
            .get_result(c)
            .optional())?;
        let Some(owner) = owner else { return Ok(false) };
        record_transition(conn, workspace_id, id, owner.as_str(), "closed", None, "api", None, at)?;
        let data = serde_json::json!({ "conversation_id": id, "closed_at": at });
        outbox::emit(conn, workspace_id, "conversation_closed", data, at)
    })
}

/// What a session needs to resume the conversation.
pub fn snapshot(conn: &mut DbConn, id: &ConversationId, window: i64) -> Result<Option<ConversationSnapshot>, DbError> {
    let row: Option<ConversationRow> = on_backend!(conn, c => conversations::table
        .filter(conversations::id.eq(id))
        .select(ConversationRow::as_select())
        .first(c)
        .optional())?;
    let Some(row) = row else { return Ok(None) };
    let recent = message_rows::recent(conn, id, window)?;
    let last_seq = recent.last().map(|m| m.seq).unwrap_or(0);
    let owner = row.owner;
    let agent = if owner == Owner::Agent { agent_ref(conn, row.workspace_id, row.assigned_agent_id)? } else { None };
    Ok(Some(ConversationSnapshot {
        id: row.id,
        workspace_id: row.workspace_id.get(),
        bot_id: row.bot_id,
        channel: row.channel,
        status: row.status,
        owner,
        agent,
        variables: serde_json::from_str(&row.variables).unwrap_or_default(),
        last_seq,
        recent,
    }))
}

/// Replaces a conversation's variables. Private: the conversation's session is their one
/// writer, through [`merge_variables`] with its fencing token.
fn set_variables(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: &ConversationId,
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

/// Which conversation an outside session continues: the one way a seed API's caller (a
/// session id, a visitor, a customer) finds its conversation or starts one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutsideSession {
    /// The bot's conversation whose external id is the new conversation's, whatever its status
    /// (ChatSupport's and ChatGenius' session ids).
    Named,
    /// The bot's open conversation whose external id starts with this prefix (ChatAIBot's
    /// visitor: one open conversation each).
    OpenWithPrefix(String),
    /// The bot's open conversation linked to this contact, however it was linked; a new one is
    /// linked to it (CX Genie's customer).
    OpenOfContact(i64),
}

/// What [`find_or_start`] did.
#[derive(Debug, Clone)]
pub enum Continued {
    Found(ConversationRow),
    Started(ConversationRow),
}

/// The conversation `session` names, or `new` created (linked to the session's contact), checked
/// and created in one write transaction: two first messages of one session start one
/// conversation. SQLite's write transaction already holds the database; on PostgreSQL the bot's
/// row lock serialises the check-then-insert.
pub fn find_or_start(
    conn: &mut DbConn,
    new: NewConversation<'_>,
    session: &OutsideSession,
) -> Result<Continued, DbError> {
    write_tx(conn, |conn| {
        if let DbConn::Postgres(c) = conn {
            bots::table.filter(bots::id.eq(new.bot_id)).select(bots::id).for_update().first::<i64>(c)?;
        }
        let bot_id = new.bot_id;
        // The bot's open conversations, newest first.
        macro_rules! open {
            () => {
                conversations::table
                    .filter(conversations::bot_id.eq(bot_id))
                    .filter(conversations::status.eq(ConversationStatus::Open))
                    .order((conversations::created_at.desc(), conversations::id.desc()))
                    .select(ConversationRow::as_select())
            };
        }
        let found: Option<ConversationRow> = match session {
            OutsideSession::Named => match new.external_id {
                Some(external_id) => by_external_id(conn, bot_id, external_id)?,
                None => return Err(DbError::Invalid("a named session needs its external id".into())),
            },
            OutsideSession::OpenWithPrefix(prefix) => {
                let pattern = format!("{}%", like_escape(prefix));
                on_backend!(conn, c => open!()
                    .filter(conversations::external_id.like(&pattern).escape('\\'))
                    .first(c)
                    .optional())?
            }
            OutsideSession::OpenOfContact(contact_id) => on_backend!(conn, c => open!()
                .filter(conversations::contact_id.eq(*contact_id))
                .first(c)
                .optional())?,
        };
        if let Some(found) = found {
            return Ok(Continued::Found(found));
        }
        let workspace_id = new.workspace_id;
        let mut row = create(conn, new)?;
        if let OutsideSession::OpenOfContact(contact_id) = session {
            set_contact(conn, workspace_id, &row.id, *contact_id)?;
            row.contact_id = Some(*contact_id);
        }
        Ok(Continued::Started(row))
    })
}

/// Merges `patch` into the conversation's variables in one transaction (see
/// [`frontdesk_actors::merge_variables`]); `None`-safe: an unknown conversation is an error.
pub fn merge_variables(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: &ConversationId,
    patch: serde_json::Value,
    now: i64,
    fence: Option<i64>,
) -> Result<serde_json::Value, DbError> {
    write_tx(conn, |conn| {
        check_fence(conn, id, fence)?;
        let row = get(conn, workspace_id, id)?.ok_or_else(|| DbError::Invalid("conversation not found".into()))?;
        let mut variables: serde_json::Value = serde_json::from_str(&row.variables).unwrap_or_default();
        frontdesk_actors::merge_variables(&mut variables, patch);
        set_variables(conn, workspace_id, id, &variables, now)?;
        Ok(variables)
    })
}

/// Links a conversation to the patient it turned out to be.
pub fn set_contact(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: &ConversationId,
    contact_id: i64,
) -> Result<(), DbError> {
    let target =
        conversations::table.filter(conversations::workspace_id.eq(workspace_id)).filter(conversations::id.eq(id));
    on_backend!(conn, c => diesel::update(target).set(conversations::contact_id.eq(contact_id)).execute(c))?;
    Ok(())
}

/// The agent as conversations show them, if it (still) exists in the workspace.
fn agent_ref(conn: &mut DbConn, workspace_id: WorkspaceId, agent_id: Option<i64>) -> Result<Option<AgentRef>, DbError> {
    let Some(agent_id) = agent_id else { return Ok(None) };
    let name: Option<String> = on_backend!(conn, c => agents::table
        .filter(agents::workspace_id.eq(workspace_id))
        .filter(agents::id.eq(agent_id))
        .select(agents::name)
        .first(c)
        .optional())?;
    Ok(name.map(|name| AgentRef { id: agent_id, name }))
}

#[allow(clippy::too_many_arguments)]
fn record_transition(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    conversation_id: &ConversationId,
    from: &str,
    to: &str,
    agent_id: Option<i64>,
    actor: &str,
    reason: Option<&str>,
    at: i64,
) -> Result<(), DbError> {
    on_backend!(conn, c => diesel::insert_into(conversation_transitions::table)
        .values((
            conversation_transitions::workspace_id.eq(workspace_id),
            conversation_transitions::conversation_id.eq(conversation_id),
            conversation_transitions::from_owner.eq(from),
            conversation_transitions::to_owner.eq(to),
            conversation_transitions::agent_id.eq(agent_id),
            conversation_transitions::actor.eq(actor),
            conversation_transitions::reason.eq(reason),
            conversation_transitions::created_at.eq(at),
        ))
        .execute(c))?;
    Ok(())
}

/// Applies a conditional change of owner: the conversation's row is locked (PostgreSQL) or the
/// database is (SQLite's writers are serialised), its state checked against the change, and
/// the update, its record and its webhook event committed together. Of two agents racing to
/// take over, the second finds the first's ownership and is refused.
pub fn change_owner(conn: &mut DbConn, change: &OwnershipChange) -> Result<OwnershipOutcome, DbError> {
    write_tx(conn, |conn| {
        check_fence(conn, &change.conversation_id, change.fence)?;
        let mine = conversations::table
            .filter(conversations::workspace_id.eq(change.workspace_id))
            .filter(conversations::id.eq(&change.conversation_id));
        let row: ConversationRow = match conn {
            DbConn::Postgres(c) => mine.select(ConversationRow::as_select()).for_update().first(c)?,
            DbConn::Sqlite(c) => mine.select(ConversationRow::as_select()).first(c)?,
        };
        let owner = row.owner;
        let current_agent =
            if owner == Owner::Agent { agent_ref(conn, row.workspace_id, row.assigned_agent_id)? } else { None };
        let silent_enough = match change.silent_before {
            Some(cutoff) => row.agent_active_at.is_none_or(|active| active < cutoff),
            None => true,
        };
        if row.status == ConversationStatus::Closed || !change.from.contains(&owner) || !silent_enough {
            return Ok(OwnershipOutcome::Refused {
                owner,
                agent: current_agent,
                closed: row.status == ConversationStatus::Closed,
            });
        }
        let at = change.at;
        let agent_id = change.agent.as_ref().map(|a| a.id);
        let assigned = if change.to == Owner::Agent { agent_id } else { None };
        let handoff_at = match change.to {
            Owner::Queued => Some(at),
            Owner::Agent => row.handoff_requested_at,
            Owner::Bot => None,
        };
        on_backend!(conn, c => diesel::update(mine)
            .set((
                conversations::owner.eq(change.to),
                conversations::assigned_agent_id.eq(assigned),
                conversations::owner_changed_at.eq(at),
                conversations::handoff_requested_at.eq(handoff_at),
                conversations::agent_active_at.eq(assigned.map(|_| at)),
                conversations::updated_at.eq(at),
            ))
            .execute(c))?;
        record_transition(
            conn,
            WorkspaceId(change.workspace_id),
            &change.conversation_id,
            owner.as_str(),
            change.to.as_str(),
            agent_id,
            change.actor.as_str(),
            change.reason.as_deref(),
            at,
        )?;
        let event = match change.to {
            Owner::Queued => "handoff_requested",
            Owner::Agent => "agent_assigned",
            Owner::Bot => "handed_back",
        };
        let data = serde_json::json!({
            "conversation_id": change.conversation_id,
            "owner": change.to,
            "previous_owner": owner,
            "agent": change.agent,
            "previous_agent": current_agent,
            "by": change.actor,
            "reason": change.reason,
            "at": at,
        });
        outbox::emit(conn, WorkspaceId(change.workspace_id), event, data, at)?;
        Ok(OwnershipOutcome::Changed { previous: owner, previous_agent: current_agent })
    })
}

/// Moves the visitor's or the agents' read position forward (never back).
pub fn mark_read(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: &ConversationId,
    reader: Sender,
    seq: i64,
    at: i64,
) -> Result<(), DbError> {
    let mine =
        conversations::table.filter(conversations::workspace_id.eq(workspace_id)).filter(conversations::id.eq(id));
    match reader {
        Sender::Visitor => {
            on_backend!(conn, c => diesel::update(mine.filter(conversations::visitor_read_seq.lt(seq)))
                .set(conversations::visitor_read_seq.eq(seq))
                .execute(c))?;
        }
        _ => {
            on_backend!(conn, c => diesel::update(mine.filter(conversations::agent_read_seq.lt(seq)))
                .set((conversations::agent_read_seq.eq(seq), conversations::agent_active_at.eq(at)))
                .execute(c))?;
        }
    }
    Ok(())
}

/// Notes the owning agent's activity, which keeps the silence rule from handing back.
pub fn agent_active(conn: &mut DbConn, workspace_id: WorkspaceId, id: &ConversationId, at: i64) -> Result<(), DbError> {
    let mine = conversations::table
        .filter(conversations::workspace_id.eq(workspace_id))
        .filter(conversations::id.eq(id))
        .filter(conversations::owner.eq(Owner::Agent));
    on_backend!(conn, c => diesel::update(mine).set(conversations::agent_active_at.eq(at)).execute(c))?;
    Ok(())
}

/// Conversations whose agent has been silent since before `cutoff`, of every workspace, as
/// `(workspace_id, conversation_id)`: the silence rule's work list.
pub fn silent_agents(
    conn: &mut DbConn,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<(WorkspaceId, ConversationId)>, DbError> {
    Ok(on_backend!(conn, c => conversations::table
        .filter(conversations::owner.eq(Owner::Agent))
        .filter(conversations::status.ne(ConversationStatus::Closed))
        .filter(conversations::agent_active_at.lt(cutoff))
        .order(conversations::agent_active_at.asc())
        .limit(limit)
        .select((conversations::workspace_id, conversations::id))
        .load(c))?)
}

/// Open conversations waiting for a person, oldest request first, of every workspace, as
/// `(workspace_id, conversation_id)`: the round-robin's work list.
pub fn queued(conn: &mut DbConn, limit: i64) -> Result<Vec<(WorkspaceId, ConversationId)>, DbError> {
    Ok(on_backend!(conn, c => conversations::table
        .filter(conversations::owner.eq(Owner::Queued))
        .filter(conversations::status.ne(ConversationStatus::Closed))
        .order(conversations::handoff_requested_at.asc())
        .limit(limit)
        .select((conversations::workspace_id, conversations::id))
        .load(c))?)
}
