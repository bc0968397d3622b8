//! Idempotency keys: the first request with a key claims it, later ones with the same key and
//! the same body get the stored response, and a different body under the same key is refused.

use diesel::prelude::*;

use super::schema::idempotency_keys as keys;
use super::{now_ms, DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;

/// How long a key is remembered: a retry later than this is a new request.
pub const RETENTION_MS: i64 = 24 * 3600 * 1000;

/// A claim older than this is taken to belong to a request that died, and may be taken over.
const STALE_CLAIM_MS: i64 = 5 * 60 * 1000;

/// What a request holding an idempotency key should do.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use of the key: do the work, then `complete` (or `release` on failure).
    Fresh,
    /// Done before with the same body: answer this.
    Replay { status: u16, body: String },
    /// Another request with this key is still running.
    InProgress,
    /// The key was used with a different body.
    Mismatch,
}

pub fn claim(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    scope: &str,
    key: &str,
    request_hash: &str,
) -> Result<Claim, DbError> {
    let now = now_ms();
    let inserted = on_backend!(conn, c => diesel::insert_into(keys::table)
        .values((
            keys::workspace_id.eq(workspace_id),
            keys::scope.eq(scope),
            keys::idem_key.eq(key),
            keys::request_hash.eq(request_hash),
            keys::status_code.eq(0),
            keys::response_body.eq(""),
            keys::created_at.eq(now),
        ))
        .on_conflict((keys::workspace_id, keys::scope, keys::idem_key))
        .do_nothing()
        .execute(c))?;
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let target = keys::table
        .filter(keys::workspace_id.eq(workspace_id))
        .filter(keys::scope.eq(scope))
        .filter(keys::idem_key.eq(key));
    let (hash, status, body, created_at): (String, i32, String, i64) = on_backend!(conn, c => target
        .select((keys::request_hash, keys::status_code, keys::response_body, keys::created_at))
        .first(c))?;
    if hash != request_hash {
        return Ok(Claim::Mismatch);
    }
    if status != 0 {
        return Ok(Claim::Replay { status: status as u16, body });
    }
    if now - created_at < STALE_CLAIM_MS {
        return Ok(Claim::InProgress);
    }
    // Take over a dead request's claim, unless somebody else just did.
    let taken = on_backend!(conn, c => diesel::update(target.filter(keys::created_at.eq(created_at)))
        .set(keys::created_at.eq(now))
        .execute(c))?;
    Ok(if taken == 1 { Claim::Fresh } else { Claim::InProgress })
}

pub fn complete(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    scope: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), DbError> {
    let target = keys::table
        .filter(keys::workspace_id.eq(workspace_id))
        .filter(keys::scope.eq(scope))
        .filter(keys::idem_key.eq(key));
    on_backend!(conn, c => diesel::update(target)
        .set((keys::status_code.eq(status as i32), keys::response_body.eq(body)))
        .execute(c))?;
    Ok(())
}

pub fn release(conn: &mut DbConn, workspace_id: WorkspaceId, scope: &str, key: &str) -> Result<(), DbError> {
    let target = keys::table
        .filter(keys::workspace_id.eq(workspace_id))
        .filter(keys::scope.eq(scope))
        .filter(keys::idem_key.eq(key))
        .filter(keys::status_code.eq(0));
    on_backend!(conn, c => diesel::delete(target).execute(c))?;
    Ok(())
}

/// Forgets the keys used before `before` (a housekeeping sweep); returns how many.
pub fn purge_before(conn: &mut DbConn, before: i64) -> Result<usize, DbError> {
    Ok(on_backend!(conn, c => diesel::delete(keys::table.filter(keys::created_at.lt(before))).execute(c))?)
}
