//! API keys: created (shown once), stored as hashes, and resolved to their workspace.

use diesel::prelude::*;

use super::schema::{api_keys, workspaces};
use super::workspaces::Quotas;
use super::{now_ms, DbConn, DbError};
use crate::on_backend;
use crate::secrets;

/// Creates an API key for the workspace; returns the key in clear, the only time it exists so.
pub fn create(conn: &mut DbConn, workspace_id: i64, name: &str) -> Result<String, DbError> {
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
pub fn authenticate(conn: &mut DbConn, key: &str) -> Result<Option<(i64, i64)>, DbError> {
    Ok(authenticate_with_quotas(conn, key)?.map(|(workspace_id, key_id, _)| (workspace_id, key_id)))
}

/// Like [`authenticate`], with the workspace's own quotas read in the same query.
pub fn authenticate_with_quotas(conn: &mut DbConn, key: &str) -> Result<Option<(i64, i64, Quotas)>, DbError> {
    if !key.starts_with(secrets::API_KEY_PREFIX) {
        return Ok(None);
    }
    let wanted = secrets::hash(key);
    // The lookup is by hash, so its timing says nothing about the key; the final comparison
    // is constant-time all the same.
    let found: Option<(i64, i64, String, String)> = on_backend!(conn, c => api_keys::table
        .inner_join(workspaces::table)
        .filter(api_keys::key_hash.eq(&wanted))
        .filter(api_keys::revoked_at.is_null())
        .select((api_keys::workspace_id, api_keys::id, api_keys::key_hash, workspaces::settings))
        .first(c)
        .optional())?;
    Ok(found
        .filter(|(_, _, stored, _)| secrets::verify(key, stored))
        .map(|(workspace_id, key_id, _, settings)| (workspace_id, key_id, Quotas::of_settings(&settings))))
}
