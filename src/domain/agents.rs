//! The team: agents (their names, roles and presence), their API tokens, and the one-time
//! links that set a console password. Deleting an agent or rotating a token ends what it
//! opened; the caller tells the transports' revocations.

use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::status::{AgentRole, Presence};
use crate::storage::agents;
use crate::storage::{now_ms, sessions, write_tx, Db};

pub use crate::storage::agents::AgentRow;

/// How long a set-password link is valid.
pub const LINK_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::unprocessable("`name` must be 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

fn not_found() -> ApiError {
    ApiError::not_found("agent not found")
}

/// Adds an agent (role `agent` unless given): the agent and their token, shown only now; 409
/// when the email is taken in the workspace.
pub async fn create(
    db: &Db,
    workspace_id: WorkspaceId,
    name: &str,
    email: &str,
    role: Option<AgentRole>,
) -> Result<(AgentRow, String), ApiError> {
    let name = check_name(name)?;
    let email = email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 || email.contains(char::is_whitespace) {
        return Err(ApiError::unprocessable("`email` must be an email address"));
    }
    let role = role.unwrap_or(AgentRole::Agent);
    let created = db.run(move |conn| agents::create(conn, workspace_id, &name, &email, role, now_ms())).await?;
    created.ok_or_else(|| ApiError::conflict("an agent with this email already exists"))
}

pub async fn list(db: &Db, workspace_id: WorkspaceId) -> Result<Vec<AgentRow>, ApiError> {
    Ok(db.run(move |conn| agents::list(conn, workspace_id)).await?)
}

pub async fn get(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<AgentRow, ApiError> {
    db.run(move |conn| agents::get(conn, workspace_id, id)).await?.ok_or_else(not_found)
}

/// A change to an agent: only what is `Some` changes.
#[derive(Debug, Default)]
pub struct AgentChanges {
    pub name: Option<String>,
    pub role: Option<AgentRole>,
    pub presence: Option<Presence>,
}

/// Applies `changes`, each checked before anything is written.
pub async fn update(db: &Db, workspace_id: WorkspaceId, id: i64, changes: AgentChanges) -> Result<AgentRow, ApiError> {
    let name = changes.name.as_deref().map(check_name).transpose()?;
    db.run(move |conn| {
        agents::update(conn, workspace_id, id, name.as_deref(), changes.role, changes.presence, now_ms())
    })
    .await?
    .ok_or_else(not_found)
}

/// Sets an agent's presence as their socket comes and goes; `None` when the agent is gone.
pub async fn set_presence(
    db: &Db,
    workspace_id: WorkspaceId,
    id: i64,
    presence: Presence,
) -> Result<Option<AgentRow>, ApiError> {
    Ok(db.run(move |conn| agents::update(conn, workspace_id, id, None, None, Some(presence), now_ms())).await?)
}

/// Deletes an agent with their console sessions; `false` when the workspace has no such agent.
pub async fn delete(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<bool, ApiError> {
    Ok(db
        .run(move |conn| {
            write_tx(conn, |conn| {
                sessions::delete_for_agent(conn, workspace_id, id)?;
                agents::delete(conn, workspace_id, id)
            })
        })
        .await?)
}

/// Gives the agent a new token (shown only now); the old one stops working.
pub async fn rotate_token(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<(AgentRow, String), ApiError> {
    db.run(move |conn| agents::rotate_token(conn, workspace_id, id, now_ms())).await?.ok_or_else(not_found)
}

/// A one-time link token that sets the agent's console password, valid for
/// [`LINK_LIFETIME`], and when it expires.
pub async fn invite(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<(String, i64), ApiError> {
    let lifetime = LINK_LIFETIME.as_millis() as i64;
    db.run(move |conn| match agents::get(conn, workspace_id, id)? {
        Some(agent) => sessions::create_link(conn, &agent, lifetime, now_ms()).map(Some),
        None => Ok(None),
    })
    .await?
    .ok_or_else(not_found)
}
