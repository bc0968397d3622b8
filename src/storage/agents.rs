//! Agents: the people of a workspace who answer conversations. Each has a role (`admin` or
//! `agent`), a token of their own (shown once, stored as a hash like API keys) and a presence
//! (`online`, `away`, `offline`) that their sockets keep current.

use diesel::prelude::*;
use frontdesk_actors::AgentRef;
use serde::Serialize;

use super::schema::agents;
use super::{DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;
use crate::secrets;
use crate::status::{AgentRole, Presence};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = agents)]
pub struct AgentRow {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub email: String,
    pub role: AgentRole,
    pub presence: Presence,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_seen_at: Option<i64>,
}

impl AgentRow {
    pub fn as_ref(&self) -> AgentRef {
        AgentRef { id: self.id, name: self.name.clone() }
    }
}

/// Creates an agent; returns it and its token in clear, the only time the token exists so.
/// `None` when the workspace already has an agent with this email.
pub fn create(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    name: &str,
    email: &str,
    role: AgentRole,
    now: i64,
) -> Result<Option<(AgentRow, String)>, DbError> {
    let token = secrets::generate(secrets::AGENT_TOKEN_PREFIX);
    let inserted = on_backend!(conn, c => diesel::insert_into(agents::table)
        .values((
            agents::workspace_id.eq(workspace_id),
            agents::name.eq(name),
            agents::email.eq(email),
            agents::role.eq(role),
            agents::token_hash.eq(secrets::hash(&token)),
            agents::presence.eq(Presence::Offline),
            agents::created_at.eq(now),
            agents::updated_at.eq(now),
        ))
        .returning(AgentRow::as_returning())
        .get_result(c));
    match inserted {
        Ok(row) => Ok(Some((row, token))),
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<AgentRow>, DbError> {
    Ok(on_backend!(conn, c => agents::table
        .filter(agents::workspace_id.eq(workspace_id))
        .filter(agents::id.eq(id))
        .select(AgentRow::as_select())
        .first(c)
        .optional())?)
}

pub fn list(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<Vec<AgentRow>, DbError> {
    Ok(on_backend!(conn, c => agents::table
        .filter(agents::workspace_id.eq(workspace_id))
        .order(agents::id.asc())
        .select(AgentRow::as_select())
        .load(c))?)
}

/// The agent a token belongs to.
pub fn authenticate(conn: &mut DbConn, token: &str) -> Result<Option<AgentRow>, DbError> {
    if !token.starts_with(secrets::AGENT_TOKEN_PREFIX) {
        return Ok(None);
    }
    let wanted = secrets::hash(token);
    let found: Option<(AgentRow, Option<String>)> = on_backend!(conn, c => agents::table
        .filter(agents::token_hash.eq(&wanted))
        .select((AgentRow::as_select(), agents::token_hash))
        .first(c)
        .optional())?;
    Ok(found.filter(|(_, stored)| stored.as_deref().is_some_and(|s| secrets::verify(token, s))).map(|(row, _)| row))
}

/// Changes name, role or presence; `None` when the agent is not the workspace's.
pub fn update(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    name: Option<&str>,
    role: Option<AgentRole>,
    presence: Option<Presence>,
    now: i64,
) -> Result<Option<AgentRow>, DbError> {
    let Some(current) = get(conn, workspace_id, id)? else { return Ok(None) };
    let target = agents::table.filter(agents::workspace_id.eq(workspace_id)).filter(agents::id.eq(id));
    let seen = if presence.is_some_and(|p| p != Presence::Offline) { Some(now) } else { current.last_seen_at };
    Ok(Some(on_backend!(conn, c => diesel::update(target)
        .set((
            agents::name.eq(name.unwrap_or(&current.name)),
            agents::role.eq(role.unwrap_or(current.role)),
            agents::presence.eq(presence.unwrap_or(current.presence)),
            agents::last_seen_at.eq(seen),
            agents::updated_at.eq(now),
        ))
        .returning(AgentRow::as_returning())
        .get_result(c))?))
}

/// Gives the agent a new token; returns it in clear (the only time it exists so). `None` when
/// the agent is not the workspace's.
pub fn rotate_token(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    now: i64,
) -> Result<Option<(AgentRow, String)>, DbError> {
    let token = secrets::generate(secrets::AGENT_TOKEN_PREFIX);
    let target = agents::table.filter(agents::workspace_id.eq(workspace_id)).filter(agents::id.eq(id));
    let row = on_backend!(conn, c => diesel::update(target)
        .set((agents::token_hash.eq(secrets::hash(&token)), agents::updated_at.eq(now)))
        .returning(AgentRow::as_returning())
        .get_result(c)
        .optional())?;
    Ok(row.map(|row| (row, token)))
}

/// Deletes an agent; the conversations they owned keep their history (the owner stays
/// recorded in their transitions).
pub fn delete(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<bool, DbError> {
    let target = agents::table.filter(agents::workspace_id.eq(workspace_id)).filter(agents::id.eq(id));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))? == 1)
}

/// The workspace's agents who are online, the one assigned longest ago first (round-robin).
pub fn online(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<Vec<AgentRow>, DbError> {
    let mut rows: Vec<(AgentRow, Option<i64>)> = on_backend!(conn, c => agents::table
        .filter(agents::workspace_id.eq(workspace_id))
        .filter(agents::presence.eq(Presence::Online))
        .select((AgentRow::as_select(), agents::last_assigned_at))
        .load(c))?;
    rows.sort_by_key(|(row, assigned)| (assigned.unwrap_or(0), row.id));
    Ok(rows.into_iter().map(|(row, _)| row).collect())
}

/// Agents of every workspace shown present (online or away) and not seen since `seen_before`:
/// a housekeeping sweep checks that someone still holds a socket for them.
pub fn present_unseen_since(
    conn: &mut DbConn,
    seen_before: i64,
    limit: i64,
) -> Result<Vec<(WorkspaceId, i64)>, DbError> {
    Ok(on_backend!(conn, c => agents::table
        .filter(agents::presence.ne(Presence::Offline))
        .filter(agents::last_seen_at.is_null().or(agents::last_seen_at.lt(seen_before)))
        .order(agents::id.asc())
        .limit(limit)
        .select((agents::workspace_id, agents::id))
        .load(c))?)
}

/// Sets the agent offline unless they were seen since `seen_before` (a socket that opened
/// meanwhile set them present again); answers whether it did.
pub fn set_offline_if_unseen(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    seen_before: i64,
    now: i64,
) -> Result<bool, DbError> {
    let target = agents::table
        .filter(agents::workspace_id.eq(workspace_id))
        .filter(agents::id.eq(id))
        .filter(agents::presence.ne(Presence::Offline))
        .filter(agents::last_seen_at.is_null().or(agents::last_seen_at.lt(seen_before)));
    let changed = on_backend!(conn, c => diesel::update(target)
        .set((agents::presence.eq(Presence::Offline), agents::updated_at.eq(now)))
        .execute(c))?;
    Ok(changed == 1)
}

/// Notes that the agent was just given a conversation (round-robin moves past them).
pub fn assigned(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64, now: i64) -> Result<(), DbError> {
    let target = agents::table.filter(agents::workspace_id.eq(workspace_id)).filter(agents::id.eq(id));
    on_backend!(conn, c => diesel::update(target).set(agents::last_assigned_at.eq(now)).execute(c))?;
    Ok(())
}

/// The token hash of each of these agents that still exists (`None`: the agent has no token).
pub fn token_hashes(conn: &mut DbConn, ids: &[i64]) -> Result<Vec<(i64, Option<String>)>, DbError> {
    Ok(on_backend!(conn, c => agents::table
        .filter(agents::id.eq_any(ids))
        .select((agents::id, agents::token_hash))
        .load(c))?)
}
