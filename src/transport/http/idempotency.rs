//! `Idempotency-Key` on every POST that creates something: this module reads the header and
//! answers with what [`crate::domain::idempotency`] decided (a replay says
//! `Idempotent-Replayed: true`).

use actix_web::{HttpRequest, HttpResponse};

use crate::error::ApiError;

pub use crate::domain::idempotency::{once, Created, Idempotent};

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

/// The request's key with the digest of its body.
pub fn idempotent(req: &HttpRequest, digest: &str) -> Result<Idempotent, ApiError> {
    Ok(Idempotent { key: key_of(req)?, digest: digest.to_owned() })
}

/// The answer to a creation: its status and body, marked when it is a replay.
pub fn respond(created: Created) -> HttpResponse {
    let mut response = HttpResponse::build(created.status);
    if created.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.json(created.body)
}
