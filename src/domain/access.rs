//! Who is calling: API keys, agents' tokens, console sessions and their one-time links, CX
//! Genie's workspace tokens. Every credential is checked against the database (so a revocation
//! is immediate on every node); this module is the one place that reads and changes them.

use std::collections::{HashMap, HashSet};

use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::storage::workspaces::{self, Quotas};
use crate::storage::{agents, keys, now_ms, sessions, Db, DbError};

pub use crate::storage::agents::AgentRow;
pub use crate::storage::keys::{KeyRow, Revoked};
pub use crate::storage::sessions::{LinkRefused, SignedIn};
pub use crate::storage::workspaces::WorkspaceRow;

/// How many ids one credential check reads at a time.
const CHECK_CHUNK: usize = 500;

/// The workspace, key id and quotas of an API key; `None` for an unknown or revoked key.
pub async fn api_key(db: &Db, key: String) -> Result<Option<(WorkspaceId, i64, Quotas)>, DbError> {
    db.run(move |conn| keys::authenticate_with_quotas(conn, &key)).await
}

/// The agent an agent token belongs to; `None` for an unknown or rotated token.
pub async fn agent_token(db: &Db, token: String) -> Result<Option<AgentRow>, DbError> {
    db.run(move |conn| agents::authenticate(conn, &token)).await
}

/// The workspace of a CX Genie `workspace_token`.
pub async fn workspace_token(db: &Db, token: String) -> Result<Option<WorkspaceId>, DbError> {
    db.run(move |conn| workspaces::by_token(conn, &token)).await
}

pub async fn workspace(db: &Db, workspace_id: WorkspaceId) -> Result<Option<WorkspaceRow>, DbError> {
    db.run(move |conn| workspaces::get(conn, workspace_id)).await
}

/// The live console session a cookie's secret opens.
pub async fn session(db: &Db, secret: String) -> Result<Option<SignedIn>, DbError> {
    db.run(move |conn| sessions::authenticate(conn, &secret, now_ms())).await
}

/// Starts a console session for `agent`: its secret (for the cookie) and what it opens.
pub async fn start_session(db: &Db, agent: AgentRow, lifetime_ms: i64) -> Result<(String, SignedIn), DbError> {
    db.run(move |conn| sessions::create(conn, &agent, lifetime_ms, now_ms())).await
}

pub async fn end_session(db: &Db, session_id: i64) -> Result<(), DbError> {
    db.run(move |conn| sessions::delete(conn, session_id)).await
}

/// The agents signing in with `email` (one per workspace they belong to) and their password
/// hashes.
pub async fn agents_by_email(db: &Db, email: String) -> Result<Vec<(AgentRow, Option<String>)>, DbError> {
    db.run(move |conn| sessions::agents_by_email(conn, &email)).await
}

/// Uses a one-time set-password link: sets the password's hash and ends the agent's sessions.
pub async fn use_link(db: &Db, token: String, password_hash: String) -> Result<Result<AgentRow, LinkRefused>, DbError> {
    db.run(move |conn| sessions::use_link(conn, &token, &password_hash, now_ms())).await
}

/// The workspace's API keys, without their secrets.
pub async fn keys(db: &Db, workspace_id: WorkspaceId) -> Result<Vec<KeyRow>, DbError> {
    db.run(move |conn| keys::list(conn, workspace_id)).await
}

/// Creates an API key named `name`: the key (shown only now) and its listing.
pub async fn create_key(db: &Db, workspace_id: WorkspaceId, name: &str) -> Result<(String, Option<KeyRow>), ApiError> {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::unprocessable("name must be 1 to 100 characters"));
    }
    let created = db
        .run(move |conn| {
            let key = keys::create(conn, workspace_id, &name)?;
            let row = keys::list(conn, workspace_id)?
                .into_iter()
                .filter(|row| key.starts_with(&row.prefix))
                .max_by_key(|row| row.id);
            Ok((key, row))
        })
        .await?;
    Ok(created)
}

/// Revokes an API key; over the API the workspace's last active key is kept.
pub async fn revoke_key(db: &Db, workspace_id: WorkspaceId, key_id: i64) -> Result<Revoked, DbError> {
    db.run(move |conn| keys::revoke(conn, workspace_id, key_id, true)).await
}

/// Which of the watched credentials still authenticate: the active key ids, each agent's
/// current token hash (`None`: the agent is gone or has no token), the live session ids.
pub struct StillActive {
    pub keys: HashSet<i64>,
    pub agent_tokens: HashMap<i64, Option<String>>,
    pub sessions: HashSet<i64>,
}

/// Reads [`StillActive`] for these ids, a bounded chunk at a time.
pub async fn still_active(
    db: &Db,
    key_ids: Vec<i64>,
    agent_ids: Vec<i64>,
    session_ids: Vec<i64>,
) -> Result<StillActive, DbError> {
    db.run(move |conn| {
        let mut active = StillActive { keys: HashSet::new(), agent_tokens: HashMap::new(), sessions: HashSet::new() };
        for chunk in key_ids.chunks(CHECK_CHUNK) {
            active.keys.extend(keys::active_among(conn, chunk)?);
        }
        for chunk in agent_ids.chunks(CHECK_CHUNK) {
            active.agent_tokens.extend(agents::token_hashes(conn, chunk)?);
        }
        let now = now_ms();
        for chunk in session_ids.chunks(CHECK_CHUNK) {
            active.sessions.extend(sessions::active_among(conn, chunk, now)?);
        }
        Ok(active)
    })
    .await
}
