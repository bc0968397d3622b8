//! Creating something once per `Idempotency-Key`: a retried request with the same key and body
//! gets the first response again and creates nothing new; the same key with another body gets
//! 422; a retry while the first is still running gets 409.
//!
//! A creation that is one database transaction goes through [`create_once`]: the key, the
//! creation and its stored response commit together or not at all, so no crash can leave a
//! thing created whose key a retry would not find. [`once`] is for creations that cross
//! several transactions or actors (a conversation's first message): its key is claimed first
//! and completed after, and a claim left by a request that died expires.

use std::future::Future;

use actix_web::http::StatusCode;
use serde::Serialize;

use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::storage::idempotency::{self, Claim};
use crate::storage::{write_tx, Db, DbConn, DbError};

/// A creating request's `Idempotency-Key` (if it sent one) and the digest of its body.
#[derive(Debug, Clone)]
pub struct Idempotent {
    pub key: Option<String>,
    pub digest: String,
}

/// What [`once`] answers: the status and body, and whether they are a replay.
#[derive(Debug)]
pub struct Created {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub replayed: bool,
}

/// Runs `create` once per key: the first call does the work and stores its response, repeats
/// replay it. Without a key, `create` simply runs. What is stored is exactly what `create`
/// returns, so it must hold no secret.
pub async fn once<T, F, Fut>(
    db: &Db,
    workspace_id: WorkspaceId,
    scope: &'static str,
    key: Option<String>,
    body_digest: &str,
    create: F,
) -> Result<Created, ApiError>
where
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, T), ApiError>>,
{
    let run = |status: StatusCode, body: T| -> Result<Created, ApiError> {
        Ok(Created { status, body: serde_json::to_value(body).map_err(ApiError::internal)?, replayed: false })
    };
    let Some(key) = key else {
        let (status, body) = create().await?;
        return run(status, body);
    };
    let (claim_key, hash) = (key.clone(), body_digest.to_owned());
    let claim = db.run(move |conn| idempotency::claim(conn, workspace_id, scope, &claim_key, &hash)).await?;
    if let Some(answered) = answered_by(claim)? {
        return Ok(answered);
    }
    match create().await {
        Ok((status, body)) => {
            let created = run(status, body)?;
            let stored = created.body.to_string();
            let completed = db
                .run(move |conn| idempotency::complete(conn, workspace_id, scope, &key, status.as_u16(), &stored))
                .await;
            if let Err(err) = completed {
                // The thing exists but its key is still "in progress": a retry after the stale
                // claim expires would create it again. Say so loudly; the client got its answer.
                tracing::error!(error = %err, scope, "created, but could not store the idempotent response");
            }
            Ok(created)
        }
        Err(err) => {
            // Nothing was created: free the key so a corrected retry can use it.
            let _ = db.run(move |conn| idempotency::release(conn, workspace_id, scope, &key)).await;
            Err(err)
        }
    }
}

/// What a claim that is not fresh answers: the stored response, or why the request is refused.
/// `None` for a fresh claim: do the work.
fn answered_by(claim: Claim) -> Result<Option<Created>, ApiError> {
    match claim {
        Claim::Fresh => Ok(None),
        Claim::Replay { status, body } => Ok(Some(Created {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            body: serde_json::from_str(&body).map_err(ApiError::internal)?,
            replayed: true,
        })),
        Claim::Mismatch => {
            Err(ApiError::unprocessable("Idempotency-Key was already used with a different request body"))
        }
        Claim::InProgress => Err(ApiError::conflict("a request with this Idempotency-Key is still being processed")),
    }
}

/// Why a [`create_once`] transaction rolled back.
enum RolledBack {
    Db(DbError),
    Api(ApiError),
}

impl From<diesel::result::Error> for RolledBack {
    fn from(err: diesel::result::Error) -> Self {
        RolledBack::Db(err.into())
    }
}

impl From<DbError> for RolledBack {
    fn from(err: DbError) -> Self {
        RolledBack::Db(err)
    }
}

/// Runs `create` once per key, in one write transaction with the key and its stored response
/// (zero-to-production's pattern): a retry finds the first response, or, if the first is still
/// running, waits for its transaction and then finds it. Without a key, `create` simply runs in
/// the transaction. An error from `create` rolls everything back, key included.
pub async fn create_once<T, F>(
    db: &Db,
    workspace_id: WorkspaceId,
    scope: &'static str,
    request: Idempotent,
    create: F,
) -> Result<Created, ApiError>
where
    T: Serialize,
    F: FnOnce(&mut DbConn) -> Result<(StatusCode, T), ApiError> + Send + 'static,
{
    let Idempotent { key, digest } = request;
    db.run(move |conn| Ok(in_transaction(conn, workspace_id, scope, key.as_deref(), &digest, create))).await?
}

/// [`create_once`] on a connection the caller holds (the booking desk's).
pub fn in_transaction<T, F>(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    scope: &str,
    key: Option<&str>,
    digest: &str,
    create: F,
) -> Result<Created, ApiError>
where
    T: Serialize,
    F: FnOnce(&mut DbConn) -> Result<(StatusCode, T), ApiError>,
{
    let done = write_tx(conn, |conn| {
        if let Some(key) = key {
            let claim = idempotency::claim(conn, workspace_id, scope, key, digest)?;
            if let Some(answered) = answered_by(claim).map_err(RolledBack::Api)? {
                return Ok(answered);
            }
        }
        let (status, body) = create(conn).map_err(RolledBack::Api)?;
        let body = serde_json::to_value(body).map_err(|e| RolledBack::Api(ApiError::internal(e)))?;
        if let Some(key) = key {
            idempotency::complete(conn, workspace_id, scope, key, status.as_u16(), &body.to_string())?;
        }
        Ok(Created { status, body, replayed: false })
    });
    match done {
        Ok(created) => Ok(created),
        Err(RolledBack::Db(err)) => Err(err.into()),
        Err(RolledBack::Api(err)) => Err(err),
    }
}
