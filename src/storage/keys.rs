//! API keys: created (shown once), stored as hashes, resolved to their workspace, listed
//! (prefix and dates, never the secret) and revoked. A revoked key keeps its row, so the list
//! shows when it was revoked; it never authenticates again.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{api_keys, workspaces};
use super::workspaces::Quotas;
use super::{lock_workspace, now_ms, write_tx, DbConn, DbError, Guarded};
use crate::ids::WorkspaceId;
use crate::on_backend;
use crate::secrets;

/// Creates an API key for the workspace; returns the key in clear, the only time it exists so.
pub fn create(conn: &mut DbConn, workspace_id: WorkspaceId, name: &str) -> Result<String, DbError> {
    let exists: i64 =
        on_backend!(conn, c => workspaces::table.filter(workspaces::id.eq(workspace_id)).count().get_result(c))?;
    if exists == 0 {
        return Err(DbError::Invalid(format!("workspace {workspace_id} does not exist")));
    }
    let key = secrets::generate(secrets::API_KEY_PREFIX);
    let prefix = secrets::display_prefix(&key);
    let key_hash = secrets::hash(&key);
    on_backend!(conn, c => diesel::insert_into(api_keys::table)
        .values((
            api_keys::workspace_id.eq(workspace_id),
            api_keys::prefix.eq(&prefix),
            api_keys::key_hash.eq(&key_hash),
            api_keys::name.eq(name),
            api_keys::created_at.eq(now_ms()),
        ))
        .execute(c))?;
    Ok(key)
}

/// The workspace an active API key belongs to, and the key's own id.
pub fn authenticate(conn: &mut DbConn, key: &str) -> Result<Option<(WorkspaceId, i64)>, DbError> {
    Ok(authenticate_with_quotas(conn, key)?.map(|(workspace_id, key_id, _)| (workspace_id, key_id)))
}

/// Like [`authenticate`], with the workspace's own quotas read in the same query.
pub fn authenticate_with_quotas(conn: &mut DbConn, key: &str) -> Result<Option<(WorkspaceId, i64, Quotas)>, DbError> {
    if !key.starts_with(secrets::API_KEY_PREFIX) {
        return Ok(None);
    }
    let wanted = secrets::hash(key);
    // The lookup is by hash, so its timing says nothing about the key; the final comparison
    // is constant-time all the same.
    let found: Option<(WorkspaceId, i64, String, String, Option<i64>)> = on_backend!(conn, c => api_keys::table
        .inner_join(workspaces::table)
        .filter(api_keys::key_hash.eq(&wanted))
        .filter(api_keys::revoked_at.is_null())
        .select((api_keys::workspace_id, api_keys::id, api_keys::key_hash, workspaces::settings, api_keys::last_used_at))
        .first(c)
        .optional())?;
    let Some((workspace_id, key_id, _, settings, last_used)) =
        found.filter(|(_, _, stored, _, _)| secrets::verify(key, stored))
    else {
        return Ok(None);
    };
    let now = now_ms();
    if last_used.is_none_or(|at| now - at >= LAST_USED_PRECISION_MS) {
        // A failed note of use must not fail the request it came with.
        if let Err(err) = touch(conn, key_id, now) {
            tracing::debug!(error = %err, key_id, "API key's last use not noted");
        }
    }
    Ok(Some((workspace_id, key_id, Quotas::of_settings(&settings))))
}

/// `last_used_at` is noted at most this often per key (and node): reading it costs nothing, a
/// write per request would.
pub const LAST_USED_PRECISION_MS: i64 = 60_000;

fn touch(conn: &mut DbConn, key_id: i64, now: i64) -> Result<(), DbError> {
    // Conditional, so that nodes racing to note the same minute write once.
    let target = api_keys::table
        .filter(api_keys::id.eq(key_id))
        .filter(api_keys::last_used_at.is_null().or(api_keys::last_used_at.lt(now - LAST_USED_PRECISION_MS)));
    on_backend!(conn, c => diesel::update(target).set(api_keys::last_used_at.eq(now)).execute(c))?;
    Ok(())
}

/// A key as it may be shown after its creation: never the secret nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = api_keys)]
pub struct KeyRow {
    pub id: i64,
    pub name: String,
    /// The key's first characters, to recognise it by.
    pub prefix: String,
    pub created_at: i64,
    /// Within [`LAST_USED_PRECISION_MS`].
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The workspace's keys, revoked ones included, oldest first.
pub fn list(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<Vec<KeyRow>, DbError> {
    Ok(on_backend!(conn, c => api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .order(api_keys::id.asc())
        .select(KeyRow::as_select())
        .load(c))?)
}

/// What became of a revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// Revoked now, or it already was (the first revocation's time stays).
    Done(KeyRow),
    /// Not a key of this workspace.
    NotFound,
    /// Refused: the workspace's last active key (only when `keep_last` asked for that).
    LastKey,
}

/// Revokes one of the workspace's keys. With `keep_last`, the workspace's last active key is
/// refused, atomically: two revocations at once cannot leave it without one.
pub fn revoke(conn: &mut DbConn, workspace_id: WorkspaceId, key_id: i64, keep_last: bool) -> Result<Revoked, DbError> {
    write_tx(conn, |conn| {
        lock_workspace(conn, Guarded::ApiKeys, workspace_id)?;
        let mine = || api_keys::table.filter(api_keys::workspace_id.eq(workspace_id));
        let Some(key) = on_backend!(conn, c => mine()
            .filter(api_keys::id.eq(key_id))
            .select(KeyRow::as_select())
            .first(c)
            .optional())?
        else {
            return Ok(Revoked::NotFound);
        };
        if key.revoked_at.is_some() {
            return Ok(Revoked::Done(key));
        }
        if keep_last {
            let active: i64 =
                on_backend!(conn, c => mine().filter(api_keys::revoked_at.is_null()).count().get_result(c))?;
            if active <= 1 {
                return Ok(Revoked::LastKey);
            }
        }
        let row = on_backend!(conn, c => diesel::update(mine().filter(api_keys::id.eq(key_id)))
            .set(api_keys::revoked_at.eq(now_ms()))
            .returning(KeyRow::as_returning())
            .get_result(c))?;
        Ok(Revoked::Done(row))
    })
}

/// Which of these keys still authenticate (exist and are not revoked).
pub fn active_among(conn: &mut DbConn, ids: &[i64]) -> Result<Vec<i64>, DbError> {
    Ok(on_backend!(conn, c => api_keys::table
        .filter(api_keys::id.eq_any(ids))
        .filter(api_keys::revoked_at.is_null())
        .select(api_keys::id)
        .load(c))?)
}
