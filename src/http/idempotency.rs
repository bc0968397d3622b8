//! `Idempotency-Key` on every POST that creates something: a retried request with the same key
//! and body gets the first response again and creates nothing new; the same key with another
//! body gets 422; a retry while the first is still running gets 409.

use std::future::Future;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::chat::Chat;
use crate::db::idempotency::{self, Claim};
use crate::error::ApiError;

const HEADER: &str = "Idempotency-Key";
const MAX_KEY_LEN: usize = 255;

/// The request's `Idempotency-Key`, if it sent one.
pub fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else { return Ok(None) };
    let key = value.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(ApiError::unprocessable(format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} characters")));
    }
    Ok(Some(key.to_owned()))
}

/// Runs `create` once per key: the first call does the work and stores its response, repeats
/// replay it. Without a key, `create` simply runs.
pub async fn once<T, F, Fut>(
    chat: &Chat,
    workspace_id: i64,
    scope: &'static str,
    key: Option<String>,
    body_digest: &str,
    create: F,
) -> Result<HttpResponse, ApiError>
where
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, T), ApiError>>,
{
    let Some(key) = key else {
        let (status, body) = create().await?;
        return Ok(HttpResponse::build(status).json(body));
    };
    let (claim_key, hash) = (key.clone(), body_digest.to_owned());
    let claim = chat.db.run(move |conn| idempotency::claim(conn, workspace_id, scope, &claim_key, &hash)).await?;
    match claim {
        Claim::Replay { status, body } => {
            Ok(HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                .insert_header(("Idempotent-Replayed", "true"))
                .content_type("application/json")
                .body(body))
        }
        Claim::Mismatch => {
            Err(ApiError::unprocessable("Idempotency-Key was already used with a different request body"))
        }
        Claim::InProgress => Err(ApiError::conflict("a request with this Idempotency-Key is still being processed")),
        Claim::Fresh => match create().await {
            Ok((status, body)) => {
                let text = serde_json::to_string(&body).map_err(ApiError::internal)?;
                let stored = text.clone();
                chat.db
                    .run(move |conn| idempotency::complete(conn, workspace_id, scope, &key, status.as_u16(), &stored))
                    .await?;
                Ok(HttpResponse::build(status).content_type("application/json").body(text))
            }
            Err(err) => {
                // Nothing was created: free the key so a corrected retry can use it.
                let _ = chat.db.run(move |conn| idempotency::release(conn, workspace_id, scope, &key)).await;
                Err(err)
            }
        },
    }
}
