//! The console's sign-in: agents' password hashes, their sessions (a secret held by an
//! HTTP-only cookie, stored as a hash, with the CSRF token the console sends back) and the
//! one-time links that set a password (invites and resets, stored as hashes).

use diesel::prelude::*;

use super::agents::AgentRow;
use super::schema::{agent_sessions, agents, password_links};
use super::{write_tx, DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;
use crate::secrets;

/// Prefix of a session's secret (the cookie's value).
pub const SESSION_PREFIX: &str = "fds_";
/// Prefix of a set-password link's token.
pub const LINK_PREFIX: &str = "fdp_";

/// A signed-in agent: the session and who it is now (name and role as they stand today).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session_id: i64,
    pub csrf_token: String,
    pub expires_at: i64,
    pub agent: AgentRow,
}

/// The workspace agents with this email (several workspaces may share a person), with their
/// password hashes.
pub fn agents_by_email(conn: &mut DbConn, email: &str) -> Result<Vec<(AgentRow, Option<String>)>, DbError> {
    Ok(on_backend!(conn, c => agents::table
        .filter(agents::email.eq(email))
        .select((AgentRow::as_select(), agents::password_hash))
        .order(agents::id.asc())
        .load(c))?)
}

/// Starts a session; returns its secret (the cookie's value, never stored) and the session.
pub fn create(conn: &mut DbConn, agent: &AgentRow, lifetime_ms: i64, now: i64) -> Result<(String, SignedIn), DbError> {
    let secret = secrets::generate(SESSION_PREFIX);
    let csrf_token = secrets::generate("");
    let expires_at = now + lifetime_ms;
    let id: i64 = on_backend!(conn, c => diesel::insert_into(agent_sessions::table)
        .values((
            agent_sessions::workspace_id.eq(agent.workspace_id),
            agent_sessions::agent_id.eq(agent.id),
            agent_sessions::secret_hash.eq(secrets::hash(&secret)),
            agent_sessions::csrf_token.eq(&csrf_token),
            agent_sessions::created_at.eq(now),
            agent_sessions::expires_at.eq(expires_at),
            agent_sessions::last_seen_at.eq(now),
        ))
        .returning(agent_sessions::id)
        .get_result(c))?;
    Ok((secret, SignedIn { session_id: id, csrf_token, expires_at, agent: agent.clone() }))
}

/// The live session a cookie's secret opens, with its agent; `None` when unknown or expired.
pub fn authenticate(conn: &mut DbConn, secret: &str, now: i64) -> Result<Option<SignedIn>, DbError> {
    if !secret.starts_with(SESSION_PREFIX) {
        return Ok(None);
    }
    let found: Option<(i64, String, i64, AgentRow)> = on_backend!(conn, c => agent_sessions::table
        .inner_join(agents::table)
        .filter(agent_sessions::secret_hash.eq(secrets::hash(secret)))
        .filter(agent_sessions::expires_at.gt(now))
        .select((agent_sessions::id, agent_sessions::csrf_token, agent_sessions::expires_at, AgentRow::as_select()))
        .first(c)
        .optional())?;
    Ok(found.map(|(session_id, csrf_token, expires_at, agent)| SignedIn { session_id, csrf_token, expires_at, agent }))
}

pub fn delete(conn: &mut DbConn, session_id: i64) -> Result<(), DbError> {
    on_backend!(conn, c => diesel::delete(agent_sessions::table.filter(agent_sessions::id.eq(session_id))).execute(c))?;
    Ok(())
}

/// Ends every session of an agent (a new password, a deactivation).
pub fn delete_for_agent(conn: &mut DbConn, workspace_id: WorkspaceId, agent_id: i64) -> Result<usize, DbError> {
    let target = agent_sessions::table
        .filter(agent_sessions::workspace_id.eq(workspace_id))
        .filter(agent_sessions::agent_id.eq(agent_id));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))?)
}

/// Which of these sessions still open the console (for the connections they hold).
pub fn active_among(conn: &mut DbConn, ids: &[i64], now: i64) -> Result<Vec<i64>, DbError> {
    Ok(on_backend!(conn, c => agent_sessions::table
        .filter(agent_sessions::id.eq_any(ids))
        .filter(agent_sessions::expires_at.gt(now))
        .select(agent_sessions::id)
        .load(c))?)
}

/// Forgets sessions that have expired.
pub fn purge_expired(conn: &mut DbConn, now: i64) -> Result<usize, DbError> {
    Ok(
        on_backend!(conn, c => diesel::delete(agent_sessions::table.filter(agent_sessions::expires_at.le(now))).execute(c))?,
    )
}

/// A one-time link that sets the agent's password; returns its token (shown once).
pub fn create_link(conn: &mut DbConn, agent: &AgentRow, lifetime_ms: i64, now: i64) -> Result<(String, i64), DbError> {
    let token = secrets::generate(LINK_PREFIX);
    let expires_at = now + lifetime_ms;
    on_backend!(conn, c => diesel::insert_into(password_links::table)
        .values((
            password_links::workspace_id.eq(agent.workspace_id),
            password_links::agent_id.eq(agent.id),
            password_links::token_hash.eq(secrets::hash(&token)),
            password_links::created_at.eq(now),
            password_links::expires_at.eq(expires_at),
        ))
        .execute(c))?;
    Ok((token, expires_at))
}

/// Why a link cannot set a password.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkRefused {
    Unknown,
    Used,
    Expired,
}

/// Sets the password of the link's agent and uses the link up, in one transaction; every
/// session the agent had ends.
pub fn use_link(
    conn: &mut DbConn,
    token: &str,
    password_hash: &str,
    now: i64,
) -> Result<Result<AgentRow, LinkRefused>, DbError> {
    write_tx(conn, |conn| {
        let found: Option<(i64, WorkspaceId, i64, i64, Option<i64>)> = on_backend!(conn, c => password_links::table
            .filter(password_links::token_hash.eq(secrets::hash(token)))
            .select((
                password_links::id,
                password_links::workspace_id,
                password_links::agent_id,
                password_links::expires_at,
                password_links::used_at,
            ))
            .first(c)
            .optional())?;
        let Some((link_id, workspace_id, agent_id, expires_at, used_at)) = found else {
            return Ok(Err(LinkRefused::Unknown));
        };
        if used_at.is_some() {
            return Ok(Err(LinkRefused::Used));
        }
        if expires_at <= now {
            return Ok(Err(LinkRefused::Expired));
        }
        on_backend!(conn, c => diesel::update(password_links::table.filter(password_links::id.eq(link_id)))
            .set(password_links::used_at.eq(now))
            .execute(c))?;
        let target = agents::table.filter(agents::workspace_id.eq(workspace_id)).filter(agents::id.eq(agent_id));
        let agent = on_backend!(conn, c => diesel::update(target)
            .set((agents::password_hash.eq(password_hash), agents::updated_at.eq(now)))
            .returning(AgentRow::as_returning())
            .get_result(c)
            .optional())?;
        let Some(agent) = agent else { return Ok(Err(LinkRefused::Unknown)) };
        delete_for_agent(conn, workspace_id, agent_id)?;
        Ok(Ok(agent))
    })
}
