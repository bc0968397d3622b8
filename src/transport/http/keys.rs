//! `/api/keys`: the workspace's API keys, listed without their secrets, and revoked.
//!
//! Revoking is immediate: the next request with the key gets 401 on every node (requests
//! authenticate against the database), and the streams it has open end (see
//! [`crate::transport::revocation`]). A caller may revoke the key it calls with; the API refuses to
//! revoke the workspace's last active key (409), which would lock its API clients out: the
//! operator's `frontdesk key revoke` can.

use actix_web::{web, HttpResponse};

use crate::domain::chat::Chat;
use crate::error::ApiError;
use crate::storage::keys::{self, Revoked};
use crate::transport::http::auth::Caller;
use crate::transport::revocation::{Credential, Revocations};

/// `GET /api/keys`: `{"keys": [{id, name, prefix, created_at, last_used_at, revoked_at}]}`.
pub async fn list(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let workspace_id = caller.workspace_id;
    let rows = chat.db.run(move |conn| keys::list(conn, workspace_id)).await?;
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
    let name = body.0.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::unprocessable("name must be 1 to 100 characters"));
    }
    let workspace_id = caller.workspace_id;
    let (key, row) = chat
        .db
        .run(move |conn| {
            let key = keys::create(conn, workspace_id, &name)?;
            let row = keys::list(conn, workspace_id)?
                .into_iter()
                .filter(|row| key.starts_with(&row.prefix))
                .max_by_key(|row| row.id);
            Ok((key, row))
        })
        .await?;
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
    match chat.db.run(move |conn| keys::revoke(conn, workspace_id, key_id, true)).await? {
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
