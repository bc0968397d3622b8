//! A workspace's webhook endpoints as its integrators manage them: where they point (checked
//! against the operator's target policy: a tenant never picks where the server sends from its
//! private network), what they subscribe to, their signing secrets (sealed at rest, rotated
//! with an overlap), and their delivery log, redelivery and replay.

use crate::crypto::SecretBox;
use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::net_guard::{self, TargetPolicy};
use crate::status::DeliveryStatus;
use crate::storage::webhooks::{self as store, NewEndpoint};
use crate::storage::{now_ms, Db};

use super::{signing, validate_events};

pub use crate::storage::webhooks::{DeliveryView, EndpointChanges, EndpointRow};

/// The longest rotation overlap accepted (seven days).
const MAX_OVERLAP_SECS: u64 = 7 * 24 * 3600;

/// What managing endpoints needs beyond the database: the key that seals their secrets and
/// the operator's policy for their targets.
pub struct WebhookAdmin {
    pub secrets: SecretBox,
    pub policy: TargetPolicy,
}

/// An endpoint to create.
#[derive(Debug)]
pub struct EndpointSpec {
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub active: bool,
}

/// An endpoint's signing secrets in the clear: the current one, and during a rotation the old
/// one with when it stops signing.
pub struct Secrets {
    pub secret: String,
    pub previous: Option<(String, i64)>,
}

fn check_target(url: &str, policy: TargetPolicy) -> Result<(), ApiError> {
    net_guard::check_url(url, policy).map(|_| ()).map_err(|err| ApiError::bad_request(format!("invalid `url`: {err}")))
}

fn check_events(events: &[String]) -> Result<(), ApiError> {
    validate_events(events).map_err(|err| ApiError::unprocessable(format!("invalid `events`: {err}")))
}

fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > 500 {
        return Err(ApiError::unprocessable("description must be at most 500 characters"));
    }
    Ok(())
}

fn not_found() -> ApiError {
    ApiError::not_found("webhook endpoint not found")
}

/// The workspace's endpoint with this id.
pub async fn endpoint(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<EndpointRow, ApiError> {
    db.run(move |conn| store::get(conn, workspace_id, id)).await?.ok_or_else(not_found)
}

/// Creates an endpoint with a new secret: the row and the secret in the clear.
pub async fn create(
    db: &Db,
    admin: &WebhookAdmin,
    workspace_id: WorkspaceId,
    spec: EndpointSpec,
) -> Result<(EndpointRow, String), ApiError> {
    check_target(&spec.url, admin.policy.clone())?;
    check_events(&spec.events)?;
    check_description(&spec.description)?;
    let secret = signing::new_secret();
    let sealed = admin.secrets.seal(&secret);
    let row = db
        .run(move |conn| {
            let new = NewEndpoint {
                url: &spec.url,
                events: &spec.events,
                description: &spec.description,
                active: spec.active,
                sealed_secret: &sealed,
            };
            store::create(conn, workspace_id, new, now_ms())
        })
        .await?;
    Ok((row, secret))
}

pub async fn list(db: &Db, workspace_id: WorkspaceId) -> Result<Vec<EndpointRow>, ApiError> {
    Ok(db.run(move |conn| store::list(conn, workspace_id)).await?)
}

/// Changes what is `Some`, each checked before anything is written.
pub async fn update(
    db: &Db,
    admin: &WebhookAdmin,
    workspace_id: WorkspaceId,
    id: i64,
    changes: EndpointChanges,
) -> Result<EndpointRow, ApiError> {
    if let Some(url) = &changes.url {
        check_target(url, admin.policy.clone())?;
    }
    if let Some(events) = &changes.events {
        check_events(events)?;
    }
    if let Some(description) = &changes.description {
        check_description(description)?;
    }
    db.run(move |conn| store::update(conn, workspace_id, id, changes, now_ms())).await?.ok_or_else(not_found)
}

/// Deletes an endpoint; `false` when the workspace has none with this id.
pub async fn delete(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<bool, ApiError> {
    Ok(db.run(move |conn| store::delete(conn, workspace_id, id)).await?)
}

/// The endpoint's secrets in the clear.
pub fn secrets(admin: &WebhookAdmin, row: &EndpointRow) -> Result<Secrets, ApiError> {
    let now = now_ms();
    let previous = match (&row.previous_secret, row.previous_secret_expires_at) {
        (Some(sealed), Some(until)) if until > now => {
            Some((admin.secrets.open(sealed).map_err(ApiError::internal)?, until))
        }
        _ => None,
    };
    Ok(Secrets { secret: admin.secrets.open(&row.secret).map_err(ApiError::internal)?, previous })
}

/// Gives the endpoint a new secret; the old one keeps signing (beside it) for `overlap_secs`.
pub async fn rotate(
    db: &Db,
    admin: &WebhookAdmin,
    workspace_id: WorkspaceId,
    id: i64,
    overlap_secs: u64,
) -> Result<Secrets, ApiError> {
    if overlap_secs > MAX_OVERLAP_SECS {
        return Err(ApiError::unprocessable(format!("overlap_secs must be at most {MAX_OVERLAP_SECS}")));
    }
    let sealed = admin.secrets.seal(&signing::new_secret());
    let now = now_ms();
    let until = now + (overlap_secs as i64) * 1000;
    let row =
        db.run(move |conn| store::rotate(conn, workspace_id, id, &sealed, until, now)).await?.ok_or_else(not_found)?;
    secrets(admin, &row)
}

/// Which deliveries of the log to read, newest first.
#[derive(Debug, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub event: Option<String>,
    /// Deliveries with a smaller id.
    pub before: Option<i64>,
    pub limit: i64,
}

/// A page of the endpoint's delivery log.
pub async fn deliveries(
    db: &Db,
    workspace_id: WorkspaceId,
    endpoint_id: i64,
    filter: DeliveryFilter,
) -> Result<Vec<DeliveryView>, ApiError> {
    let endpoint = endpoint(db, workspace_id, endpoint_id).await?;
    Ok(db
        .run(move |conn| {
            store::deliveries(
                conn,
                workspace_id,
                endpoint.id,
                None,
                filter.status,
                filter.event.as_deref(),
                filter.before,
                filter.limit,
            )
        })
        .await?)
}

/// One delivery with its attempts.
pub async fn delivery(
    db: &Db,
    workspace_id: WorkspaceId,
    endpoint_id: i64,
    delivery_id: i64,
) -> Result<DeliveryView, ApiError> {
    let found = db
        .run(move |conn| store::deliveries(conn, workspace_id, endpoint_id, Some(delivery_id), None, None, None, 1))
        .await?;
    found.into_iter().next().ok_or_else(|| ApiError::not_found("delivery not found"))
}

/// Sending waits for an active endpoint; asking a disabled one to send would be a silent no-op.
fn require_active(endpoint: &EndpointRow) -> Result<(), ApiError> {
    if endpoint.active {
        return Ok(());
    }
    Err(ApiError::conflict("the endpoint is disabled: turn it back on (PATCH active: true) first"))
}

/// Queues a delivery again.
pub async fn redeliver(db: &Db, workspace_id: WorkspaceId, endpoint_id: i64, delivery_id: i64) -> Result<(), ApiError> {
    require_active(&endpoint(db, workspace_id, endpoint_id).await?)?;
    if !db.run(move |conn| store::redeliver(conn, workspace_id, endpoint_id, delivery_id, now_ms())).await? {
        return Err(ApiError::not_found("delivery not found"));
    }
    Ok(())
}

/// Queues again every event since `since` (epoch ms) the endpoint subscribes to: how many.
pub async fn replay(db: &Db, workspace_id: WorkspaceId, endpoint_id: i64, since: i64) -> Result<usize, ApiError> {
    let endpoint = endpoint(db, workspace_id, endpoint_id).await?;
    require_active(&endpoint)?;
    Ok(db.run(move |conn| store::replay(conn, workspace_id, &endpoint, since, now_ms())).await?)
}
