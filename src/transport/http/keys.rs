//! `/api/keys`: the workspace's API keys, listed without their secrets, and revoked.
//!
//! Revoking is immediate: the next request with the key gets 401 on every node (requests
//! authenticate against the database), and the streams it has open end (see
//! [`crate::transport::revocation`]). A caller may revoke the key it calls with; the API refuses to
//! revoke the workspace's last active key (409), which would lock its API clients out: the
//! operator's `frontdesk key revoke` can.

use actix_web::{web, HttpResponse};

use crate::domain::access::{self, Revoked};
use crate::domain::chat::Chat;
use crate::error::ApiError;
use crate::transport::http::auth::Caller;
use crate::transport::revocation::{Credential, Revocations};

/// `GET /api/keys`: `{"keys": [{id, name, prefix, created_at, last_used_at, revoked_at}]}`.
pub async fn list(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let rows = access::keys(&chat.db, caller.workspace_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "keys": rows })))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
}

/// `POST /api/keys`: `{name}` → 201 `{id, name, prefix, created_at, key}`; the key is shown
/// only now.
pub async fn create(
    chat: web::Data<Chat>,
    caller: Caller,
    body: crate::error::JsonBody<NewKey>,
) -> Result<HttpResponse, ApiError> {
    let (key, row) = access::create_key(&chat.db, caller.workspace_id, &body.0.name).await?;
    let mut body = serde_json::to_value(row).map_err(ApiError::internal)?;
    body["key"] = serde_json::json!(key);
    Ok(HttpResponse::Created().json(body))
}

/// `DELETE /api/keys/{id}`: 204; 404 for another workspace's key; 409 for the last active one.
pub async fn revoke(
    chat: web::Data<Chat>,
    revocations: web::Data<Revocations>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, key_id) = (caller.workspace_id, *path);
    match access::revoke_key(&chat.db, workspace_id, key_id).await? {
        Revoked::Done(_) => {
            revocations.revoke(workspace_id, Credential::ApiKey(key_id));
            Ok(HttpResponse::NoContent().finish())
        }
        Revoked::NotFound => Err(ApiError::not_found("API key not found")),
        Revoked::LastKey => Err(ApiError::conflict(
            "this is the workspace's last active API key: create another (`frontdesk key create`) before revoking it",
        )),
    }
}
