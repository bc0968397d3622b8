//! `/api/webhooks` (endpoints, secrets, the delivery log, redelivery, replay) and Zapier-style
//! REST hooks (`/api/hooks/subscribe`, `DELETE /api/hooks/{id}`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::domain::chat::Chat;
use crate::domain::webhooks::endpoints::{self, DeliveryFilter, EndpointChanges, EndpointRow, EndpointSpec, Secrets};
use crate::error::{ApiError, JsonBody, NoFields, OptionalJsonBody, QueryParams};
use crate::ids::WorkspaceId;
use crate::status::DeliveryStatus;
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;

pub use crate::domain::webhooks::endpoints::WebhookAdmin;

#[derive(Debug, Serialize)]
pub struct EndpointView {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub active: bool,
    /// Why the endpoint was turned off automatically (410, or failing too long), if it was.
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Shown only when the endpoint is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<EndpointRow> for EndpointView {
    fn from(row: EndpointRow) -> Self {
        EndpointView {
            id: row.id,
            url: row.url,
            events: serde_json::from_str(&row.events).unwrap_or_default(),
            description: row.description,
            active: row.active,
            disabled_reason: row.disabled_reason,
            failing_since: row.failing_since,
            created_at: row.created_at,
            updated_at: row.updated_at,
            secret: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    pub url: String,
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub active: bool,
}

fn all_events() -> Vec<String> {
    vec!["*".into()]
}

fn yes() -> bool {
    true
}

async fn create_endpoint(
    chat: &Chat,
    admin: &WebhookAdmin,
    workspace_id: WorkspaceId,
    body: CreateEndpoint,
) -> Result<EndpointView, ApiError> {
    let spec = EndpointSpec { url: body.url, events: body.events, description: body.description, active: body.active };
    let (row, secret) = endpoints::create(&chat.db, admin, workspace_id, spec).await?;
    Ok(EndpointView { secret: Some(secret), ..EndpointView::from(row) })
}

pub async fn create(
    req: HttpRequest,
    chat: web::Data<Chat>,
    admin: web::Data<WebhookAdmin>,
    caller: Caller,
    body: JsonBody<CreateEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body, digest) = body;
    let key = idempotency::key_of(&req)?;
    // The stored (replayable) response leaves the secret out; it is read back from the
    // encrypted endpoint row for the first answer and for every replay alike.
    let created = idempotency::once(&chat.db, caller.workspace_id, "webhooks", key, &digest, || async {
        let view = create_endpoint(&chat, &admin, caller.workspace_id, body).await?;
        Ok((StatusCode::CREATED, EndpointView { secret: None, ..view }))
    })
    .await?;
    let id = created.body["id"].as_i64().ok_or_else(|| ApiError::internal("created endpoint without id"))?;
    let row = endpoints::endpoint(&chat.db, caller.workspace_id, id).await?;
    let mut answer = created;
    answer.body["secret"] = serde_json::Value::String(endpoints::secrets(&admin, &row)?.secret);
    Ok(idempotency::respond(answer))
}

pub async fn list(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let rows = endpoints::list(&chat.db, caller.workspace_id).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "data": rows.into_iter().map(EndpointView::from).collect::<Vec<_>>() })))
}

pub async fn get(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(EndpointView::from(endpoints::endpoint(&chat.db, caller.workspace_id, *path).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub active: Option<bool>,
}

pub async fn update(
    chat: web::Data<Chat>,
    admin: web::Data<WebhookAdmin>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<UpdateEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let changes =
        EndpointChanges { url: body.url, events: body.events, description: body.description, active: body.active };
    let row = endpoints::update(&chat.db, &admin, caller.workspace_id, *path, changes).await?;
    Ok(HttpResponse::Ok().json(EndpointView::from(row)))
}

pub async fn delete(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    if !endpoints::delete(&chat.db, caller.workspace_id, *path).await? {
        return Err(ApiError::not_found("webhook endpoint not found"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize)]
pub struct SecretView {
    pub secret: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<i64>,
}

impl From<Secrets> for SecretView {
    fn from(secrets: Secrets) -> Self {
        SecretView {
            secret: secrets.secret,
            previous_secret_expires_at: secrets.previous.as_ref().map(|(_, until)| *until),
            previous_secret: secrets.previous.map(|(secret, _)| secret),
        }
    }
}

/// `POST /api/webhooks/{id}/secret/reveal`: the signing secret (and, during a rotation, the old one).
pub async fn reveal(
    chat: web::Data<Chat>,
    admin: web::Data<WebhookAdmin>,
    caller: Caller,
    path: web::Path<i64>,
    _body: OptionalJsonBody<NoFields>,
) -> Result<HttpResponse, ApiError> {
    let row = endpoints::endpoint(&chat.db, caller.workspace_id, *path).await?;
    Ok(HttpResponse::Ok().json(SecretView::from(endpoints::secrets(&admin, &row)?)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// Seconds the old secret stays valid (and keeps signing); default one day.
    pub overlap_secs: Option<u64>,
}

pub async fn rotate(
    chat: web::Data<Chat>,
    admin: web::Data<WebhookAdmin>,
    caller: Caller,
    path: web::Path<i64>,
    body: OptionalJsonBody<Rotate>,
) -> Result<HttpResponse, ApiError> {
    let overlap = body.0.unwrap_or_default().overlap_secs.unwrap_or(24 * 3600);
    let secrets = endpoints::rotate(&chat.db, &admin, caller.workspace_id, *path, overlap).await?;
    Ok(HttpResponse::Ok().json(SecretView::from(secrets)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    pub status: Option<DeliveryStatus>,
    pub event: Option<String>,
    /// Cursor: deliveries with a smaller id (the log is newest first).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

pub async fn deliveries(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    query: QueryParams<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    let limit = query.limit.unwrap_or(50);
    if !(1..=chat.limits.max_page_size).contains(&limit) {
        return Err(ApiError::unprocessable(format!("limit must be between 1 and {}", chat.limits.max_page_size)));
    }
    let filter = DeliveryFilter { status: query.status, event: query.event, before: query.before, limit };
    let page = endpoints::deliveries(&chat.db, caller.workspace_id, *path, filter).await?;
    let next_before = (page.len() as i64 == limit).then(|| page.last().map(|d| d.id)).flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": page, "next_before": next_before })))
}

pub async fn delivery(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (endpoint_id, delivery_id) = path.into_inner();
    let delivery = endpoints::delivery(&chat.db, caller.workspace_id, endpoint_id, delivery_id).await?;
    Ok(HttpResponse::Ok().json(delivery))
}

pub async fn redeliver(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
    _body: OptionalJsonBody<NoFields>,
) -> Result<HttpResponse, ApiError> {
    let (endpoint_id, delivery_id) = path.into_inner();
    endpoints::redeliver(&chat.db, caller.workspace_id, endpoint_id, delivery_id).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "id": delivery_id, "status": DeliveryStatus::Pending })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// Milliseconds since the epoch, or an RFC 3339 time.
    pub since: serde_json::Value,
}

pub async fn replay(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<Replay>,
) -> Result<HttpResponse, ApiError> {
    let since = match &body.0.since {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis()),
        _ => None,
    }
    .ok_or_else(|| ApiError::bad_request("invalid field `since`: milliseconds since the epoch or an RFC 3339 time"))?;
    let queued = endpoints::replay(&chat.db, caller.workspace_id, *path, since).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "queued": queued })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    pub target_url: String,
    pub event: String,
}

/// Zapier-style subscribe: one endpoint for one event; answers its id (and its secret).
pub async fn subscribe(
    chat: web::Data<Chat>,
    admin: web::Data<WebhookAdmin>,
    caller: Caller,
    body: JsonBody<Subscribe>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let created = create_endpoint(
        &chat,
        &admin,
        caller.workspace_id,
        CreateEndpoint { url: body.target_url, events: vec![body.event], description: "zapier".into(), active: true },
    )
    .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": created.id,
        "target_url": created.url,
        "event": created.events.first(),
        "secret": created.secret,
    })))
}

/// Zapier-style unsubscribe.
pub async fn unsubscribe(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = *path;
    if !endpoints::delete(&chat.db, caller.workspace_id, id).await? {
        return Err(ApiError::not_found("subscription not found"));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "id": id, "unsubscribed": true })))
}
