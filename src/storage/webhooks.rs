//! Webhook endpoints and deliveries: CRUD scoped by workspace, claiming due deliveries (row
//! locks with `SKIP LOCKED` on PostgreSQL; on SQLite, whose writers are serialised, a lease
//! written in an immediate transaction), recording attempts, the delivery log, redelivery and
//! replay.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{webhook_attempts, webhook_deliveries, webhook_endpoints, webhook_events};
use super::{write_tx, DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;
use crate::status::DeliveryStatus;
use crate::storage::outbox;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
pub struct EndpointRow {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub url: String,
    pub events: String,
    pub description: String,
    pub active: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewEndpoint<'a> {
    pub url: &'a str,
    pub events: &'a [String],
    pub description: &'a str,
    pub active: bool,
    pub sealed_secret: &'a str,
}

pub fn create(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    new: NewEndpoint<'_>,
    now: i64,
) -> Result<EndpointRow, DbError> {
    let events = serde_json::to_string(new.events).map_err(|e| DbError::Invalid(e.to_string()))?;
    Ok(on_backend!(conn, c => diesel::insert_into(webhook_endpoints::table)
        .values((
            webhook_endpoints::workspace_id.eq(workspace_id),
            webhook_endpoints::url.eq(new.url),
            webhook_endpoints::events.eq(&events),
            webhook_endpoints::description.eq(new.description),
            webhook_endpoints::active.eq(new.active),
            webhook_endpoints::secret.eq(new.sealed_secret),
            webhook_endpoints::created_at.eq(now),
            webhook_endpoints::updated_at.eq(now),
        ))
        .returning(EndpointRow::as_returning())
        .get_result(c))?)
}

pub fn list(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<Vec<EndpointRow>, DbError> {
    Ok(on_backend!(conn, c => webhook_endpoints::table
        .filter(webhook_endpoints::workspace_id.eq(workspace_id))
        .order(webhook_endpoints::id.asc())
        .select(EndpointRow::as_select())
        .load(c))?)
}

pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<EndpointRow>, DbError> {
    Ok(on_backend!(conn, c => webhook_endpoints::table
        .filter(webhook_endpoints::workspace_id.eq(workspace_id))
        .filter(webhook_endpoints::id.eq(id))
        .select(EndpointRow::as_select())
        .first(c)
        .optional())?)
}

#[derive(Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub active: Option<bool>,
}

pub fn update(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    changes: EndpointChanges,
    now: i64,
) -> Result<Option<EndpointRow>, DbError> {
    let events =
        changes.events.map(|e| serde_json::to_string(&e)).transpose().map_err(|e| DbError::Invalid(e.to_string()))?;
    let target = webhook_endpoints::table
        .filter(webhook_endpoints::workspace_id.eq(workspace_id))
        .filter(webhook_endpoints::id.eq(id));
    let reenabled = changes.active == Some(true);
    let changed = on_backend!(conn, c => diesel::update(target)
        .set((
            changes.url.map(|u| webhook_endpoints::url.eq(u)),
            events.map(|e| webhook_endpoints::events.eq(e)),
            changes.description.map(|d| webhook_endpoints::description.eq(d)),
            changes.active.map(|a| webhook_endpoints::active.eq(a)),
            webhook_endpoints::updated_at.eq(now),
        ))
        .execute(c))?;
    if changed == 0 {
        return Ok(None);
    }
    if reenabled {
        // Turning an endpoint back on forgives its past failures.
        on_backend!(conn, c => diesel::update(target)
            .set((
                webhook_endpoints::disabled_reason.eq(None::<String>),
                webhook_endpoints::failing_since.eq(None::<i64>),
            ))
            .execute(c))?;
    }
    let row = get(conn, workspace_id, id)?;
    if row.as_ref().is_some_and(|r| r.active) {
        // Deliveries held back while it was off (or failing) are due again.
        outbox::deliveries_due();
    }
    Ok(row)
}

pub fn delete(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<bool, DbError> {
    let target = webhook_endpoints::table
        .filter(webhook_endpoints::workspace_id.eq(workspace_id))
        .filter(webhook_endpoints::id.eq(id));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))? == 1)
}

/// Replaces the secret; the old one stays valid (and is signed with too) until `previous_until`.
pub fn rotate(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    sealed_secret: &str,
    previous_until: i64,
    now: i64,
) -> Result<Option<EndpointRow>, DbError> {
    write_tx(conn, |conn| {
        let Some(current) = get(conn, workspace_id, id)? else { return Ok(None) };
        let target = webhook_endpoints::table
            .filter(webhook_endpoints::workspace_id.eq(workspace_id))
            .filter(webhook_endpoints::id.eq(id));
        on_backend!(conn, c => diesel::update(target)
            .set((
                webhook_endpoints::previous_secret.eq(Some(current.secret)),
                webhook_endpoints::previous_secret_expires_at.eq(Some(previous_until)),
                webhook_endpoints::secret.eq(sealed_secret),
                webhook_endpoints::updated_at.eq(now),
            ))
            .execute(c))?;
        get(conn, workspace_id, id)
    })
}

/// A delivery claimed for sending, with what sending needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub endpoint_id: i64,
    pub event_id: i64,
    pub attempts: i32,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub event: String,
    pub payload: String,
    /// The lease this claim wrote: a record only counts while the claim is still this one.
    pub claimed_until: i64,
}

/// Claims up to `limit` due deliveries of active endpoints for `lease_ms`, oldest first.
pub fn claim_due(
    conn: &mut DbConn,
    node: &str,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<DueDelivery>, DbError> {
    write_tx(conn, |conn| {
        // Active endpoints as a subquery rather than a join: the row lock below then covers
        // delivery rows only. Locking endpoint rows would collide with the key-share locks every
        // new delivery's foreign key takes, and the claim would skip due work while events flow.
        let active = webhook_endpoints::table.filter(webhook_endpoints::active.eq(true)).select(webhook_endpoints::id);
        let due = webhook_deliveries::table
            .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending))
            .filter(webhook_deliveries::next_attempt_at.le(now))
            .filter(webhook_deliveries::claimed_until.is_null().or(webhook_deliveries::claimed_until.lt(now)))
            .filter(webhook_deliveries::endpoint_id.eq_any(active))
            .order(webhook_deliveries::id.asc())
            .limit(limit)
            .select(webhook_deliveries::id);
        let ids: Vec<i64> = match conn {
            // Other nodes skip the rows this one has locked instead of waiting for them.
            DbConn::Postgres(c) => due.for_update().skip_locked().load(c)?,
            DbConn::Sqlite(c) => due.load(c)?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let claimed = webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids));
        on_backend!(conn, c => diesel::update(claimed)
            .set((webhook_deliveries::claimed_by.eq(node), webhook_deliveries::claimed_until.eq(now + lease_ms)))
            .execute(c))?;
        type Row = (i64, WorkspaceId, i64, i64, i32, String, String, Option<String>, Option<i64>, String, String);
        let rows: Vec<Row> = on_backend!(conn, c => webhook_deliveries::table
            .inner_join(webhook_endpoints::table)
            .inner_join(webhook_events::table)
            .filter(webhook_deliveries::id.eq_any(&ids))
            .order(webhook_deliveries::id.asc())
            .select((
                webhook_deliveries::id,
                webhook_deliveries::workspace_id,
                webhook_deliveries::endpoint_id,
                webhook_deliveries::event_id,
                webhook_deliveries::attempts,
                webhook_endpoints::url,
                webhook_endpoints::secret,
                webhook_endpoints::previous_secret,
                webhook_endpoints::previous_secret_expires_at,
                webhook_events::event_type,
                webhook_events::payload,
            ))
            .load(c))?;
        Ok(rows
            .into_iter()
            .map(|r| DueDelivery {
                id: r.0,
                workspace_id: r.1,
                endpoint_id: r.2,
                event_id: r.3,
                attempts: r.4,
                url: r.5,
                secret: r.6,
                previous_secret: r.7,
                previous_secret_expires_at: r.8,
                event: r.9,
                payload: r.10,
                claimed_until: now + lease_ms,
            })
            .collect())
    })
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub attempted_at: i64,
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

/// What happens to the delivery after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Delivered,
    RetryAt(i64),
    Dead,
}

/// One attempt and what follows from it, ready to be recorded.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery: DueDelivery,
    pub attempt: Attempt,
    pub next: Next,
    /// Disable the endpoint for this reason (a 410).
    pub disable: Option<String>,
}

/// Records one endpoint's attempts, in order, in one transaction: each delivery's new state,
/// the endpoint's failure streak, and disabling it (with a `webhook_endpoint_disabled` event)
/// when an outcome says so or when it has been failing for longer than `disable_after_ms`.
/// Returns whether the endpoint got disabled.
pub fn record_attempts(
    conn: &mut DbConn,
    node: &str,
    endpoint_id: i64,
    outcomes: &[Outcome],
    disable_after_ms: i64,
    now: i64,
) -> Result<bool, DbError> {
    let Some(first) = outcomes.first() else { return Ok(false) };
    let (workspace_id, url) = (first.delivery.workspace_id, first.delivery.url.clone());
    write_tx(conn, |conn| {
        // The endpoint's row first, as deleting an endpoint takes it before its deliveries: one
        // lock order, so a delete racing an attempt waits instead of deadlocking. NO KEY UPDATE
        // still excludes that delete, but not the key-share locks of deliveries being queued.
        let endpoint_row = webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(endpoint_id))
            .select((webhook_endpoints::active, webhook_endpoints::failing_since));
        let current: Option<(bool, Option<i64>)> = match conn {
            DbConn::Postgres(c) => endpoint_row.for_no_key_update().first(c).optional()?,
            DbConn::Sqlite(c) => endpoint_row.first(c).optional()?,
        };
        let Some((active, mut failing_since)) = current else { return Ok(false) };
        let mut reason = None;
        for outcome in outcomes {
            record_one(conn, node, outcome, now)?;
            if outcome.next == Next::Delivered {
                failing_since = None;
            } else {
                failing_since = failing_since.or(Some(outcome.attempt.attempted_at));
            }
            if reason.is_none() {
                reason = outcome.disable.clone();
            }
        }
        if reason.is_none() {
            if let Some(since) = failing_since.filter(|since| now - since >= disable_after_ms) {
                reason = Some(format!("deliveries have failed for {} s without a success", (now - since) / 1000));
            }
        }
        let endpoint = webhook_endpoints::table.filter(webhook_endpoints::id.eq(endpoint_id));
        on_backend!(conn, c => diesel::update(endpoint).set(webhook_endpoints::failing_since.eq(failing_since)).execute(c))?;
        let Some(reason) = reason.filter(|_| active) else { return Ok(false) };
        on_backend!(conn, c => diesel::update(endpoint)
            .set((
                webhook_endpoints::active.eq(false),
                webhook_endpoints::disabled_reason.eq(Some(reason.clone())),
                webhook_endpoints::updated_at.eq(now),
            ))
            .execute(c))?;
        outbox::emit(
            conn,
            workspace_id,
            "webhook_endpoint_disabled",
            serde_json::json!({ "endpoint_id": endpoint_id, "url": url, "reason": reason }),
            now,
        )?;
        Ok(true)
    })
}

/// Logs the attempt and, if this node still holds the delivery's claim, moves the delivery on.
/// A claim that was taken back meanwhile (a redelivery, or a lapsed lease another node took)
/// keeps its newer state: the attempt is history, not a decision.
fn record_one(conn: &mut DbConn, node: &str, outcome: &Outcome, now: i64) -> Result<(), DbError> {
    let (delivery, attempt) = (&outcome.delivery, &outcome.attempt);
    on_backend!(conn, c => diesel::insert_into(webhook_attempts::table)
        .values((
            webhook_attempts::workspace_id.eq(delivery.workspace_id),
            webhook_attempts::delivery_id.eq(delivery.id),
            webhook_attempts::attempted_at.eq(attempt.attempted_at),
            webhook_attempts::status_code.eq(attempt.status_code),
            webhook_attempts::latency_ms.eq(attempt.latency_ms),
            webhook_attempts::response_excerpt.eq(attempt.response_excerpt.as_deref()),
            webhook_attempts::error.eq(attempt.error.as_deref()),
        ))
        .execute(c))?;
    let (status, next_at) = match outcome.next {
        Next::Delivered => (DeliveryStatus::Delivered, now),
        Next::RetryAt(at) => (DeliveryStatus::Pending, at),
        Next::Dead => (DeliveryStatus::Dead, now),
    };
    let target = webhook_deliveries::table
        .filter(webhook_deliveries::id.eq(delivery.id))
        .filter(webhook_deliveries::claimed_by.eq(node))
        .filter(webhook_deliveries::claimed_until.eq(delivery.claimed_until));
    on_backend!(conn, c => diesel::update(target)
        .set((
            webhook_deliveries::status.eq(status),
            webhook_deliveries::attempts.eq(delivery.attempts + 1),
            webhook_deliveries::next_attempt_at.eq(next_at),
            webhook_deliveries::claimed_by.eq(None::<String>),
            webhook_deliveries::claimed_until.eq(None::<i64>),
            webhook_deliveries::updated_at.eq(now),
        ))
        .execute(c))?;
    Ok(())
}

/// Gives back claims this node will not use (a lane that stopped early), so the next round takes
/// them first, in order.
pub fn release_claims(conn: &mut DbConn, node: &str, deliveries: &[(i64, i64)]) -> Result<(), DbError> {
    for (id, claimed_until) in deliveries {
        let target = webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(id))
            .filter(webhook_deliveries::claimed_by.eq(node))
            .filter(webhook_deliveries::claimed_until.eq(claimed_until));
        on_backend!(conn, c => diesel::update(target)
            .set((webhook_deliveries::claimed_by.eq(None::<String>), webhook_deliveries::claimed_until.eq(None::<i64>)))
            .execute(c))?;
    }
    Ok(())
}

/// A delivery and its attempts, as the log shows them.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    /// The `webhook-id` header of every attempt of this delivery.
    pub webhook_id: String,
    pub event: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub log: Vec<AttemptView>,
}

#[derive(Debug, Clone, Serialize, Queryable)]
pub struct AttemptView {
    pub attempted_at: i64,
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

/// The `webhook-id` of an event: the same on every attempt and for every endpoint.
pub fn webhook_id(event_id: i64) -> String {
    format!("msg_{event_id}")
}

/// The endpoint's deliveries, newest first, optionally of one status or event, before a cursor.
#[allow(clippy::too_many_arguments)]
pub fn deliveries(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    endpoint_id: i64,
    delivery_id: Option<i64>,
    status: Option<DeliveryStatus>,
    event: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryView>, DbError> {
    type Row = (i64, i64, i64, String, DeliveryStatus, i32, i64, i64, i64);
    let rows: Vec<Row> = on_backend!(conn, c => {
        let mut query = webhook_deliveries::table
            .inner_join(webhook_events::table)
            .filter(webhook_deliveries::workspace_id.eq(workspace_id))
            .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
            .into_boxed();
        if let Some(id) = delivery_id {
            query = query.filter(webhook_deliveries::id.eq(id));
        }
        if let Some(status) = status {
            query = query.filter(webhook_deliveries::status.eq(status));
        }
        if let Some(event) = event {
            query = query.filter(webhook_events::event_type.eq(event.to_owned()));
        }
        if let Some(before) = before {
            query = query.filter(webhook_deliveries::id.lt(before));
        }
        query
            .order(webhook_deliveries::id.desc())
            .limit(limit)
            .select((
                webhook_deliveries::id,
                webhook_deliveries::endpoint_id,
                webhook_deliveries::event_id,
                webhook_events::event_type,
                webhook_deliveries::status,
                webhook_deliveries::attempts,
                webhook_deliveries::next_attempt_at,
                webhook_deliveries::created_at,
                webhook_deliveries::updated_at,
            ))
            .load(c)?
    });
    rows.into_iter()
        .map(|r| {
            let log = attempts_of(conn, workspace_id, r.0)?;
            Ok(DeliveryView {
                id: r.0,
                endpoint_id: r.1,
                event_id: r.2,
                webhook_id: webhook_id(r.2),
                event: r.3,
                next_attempt_at: (r.4 == DeliveryStatus::Pending).then_some(r.6),
                status: r.4,
                attempts: r.5,
                created_at: r.7,
                updated_at: r.8,
                log,
            })
        })
        .collect()
}

fn attempts_of(conn: &mut DbConn, workspace_id: WorkspaceId, delivery_id: i64) -> Result<Vec<AttemptView>, DbError> {
    Ok(on_backend!(conn, c => webhook_attempts::table
        .filter(webhook_attempts::workspace_id.eq(workspace_id))
        .filter(webhook_attempts::delivery_id.eq(delivery_id))
        .order(webhook_attempts::id.asc())
        .select((
            webhook_attempts::attempted_at,
            webhook_attempts::status_code,
            webhook_attempts::latency_ms,
            webhook_attempts::response_excerpt,
            webhook_attempts::error,
        ))
        .load(c))?)
}

/// Sends a delivery again from the start of the retry schedule; false if it is not the
/// endpoint's.
/// Deliveries waiting to be sent (due now or later), for the job's queue depth.
pub fn pending_count(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(on_backend!(conn, c => webhook_deliveries::table
        .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending))
        .count()
        .get_result(c))?)
}

pub fn redeliver(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    endpoint_id: i64,
    delivery_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let target = webhook_deliveries::table
        .filter(webhook_deliveries::workspace_id.eq(workspace_id))
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .filter(webhook_deliveries::id.eq(delivery_id));
    let changed = on_backend!(conn, c => diesel::update(target)
        .set((
            webhook_deliveries::status.eq(DeliveryStatus::Pending),
            webhook_deliveries::attempts.eq(0),
            webhook_deliveries::next_attempt_at.eq(now),
            webhook_deliveries::claimed_by.eq(None::<String>),
            webhook_deliveries::claimed_until.eq(None::<i64>),
            webhook_deliveries::updated_at.eq(now),
        ))
        .execute(c))?;
    if changed == 1 {
        outbox::deliveries_due();
    }
    Ok(changed == 1)
}

/// Queues a new delivery to the endpoint of every stored event since `since` that it subscribes
/// to; returns how many.
pub fn replay(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    endpoint: &EndpointRow,
    since: i64,
    now: i64,
) -> Result<usize, DbError> {
    write_tx(conn, |conn| {
        let events: Vec<(i64, String)> = on_backend!(conn, c => webhook_events::table
            .filter(webhook_events::workspace_id.eq(workspace_id))
            .filter(webhook_events::created_at.ge(since))
            .order(webhook_events::id.asc())
            .select((webhook_events::id, webhook_events::event_type))
            .load(c))?;
        let mut queued = 0;
        for (event_id, event) in events {
            if super::outbox::subscribes(&endpoint.events, &event) {
                queued += outbox::queue(conn, workspace_id, event_id, &[endpoint.id], now)?;
            }
        }
        Ok(queued)
    })
}
