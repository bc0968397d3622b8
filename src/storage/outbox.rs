//! The outbox: `emit` records an event and one pending delivery per subscribed endpoint, on the
//! caller's connection, inside the caller's transaction. A change that rolls back takes its
//! events with it; a change that commits has them durably queued. Events are recorded only for
//! workspaces with at least one active subscribed endpoint, so chat traffic costs nothing extra
//! where nobody listens.
//!
//! Nobody wakes the dispatcher by hand: an emit that queued deliveries marks the unit of work
//! running on this thread ([`Db::run`](super::Db::run)'s closure, or a group commit of the
//! message writer), and the unit of work wakes the dispatcher when it ends well
//! ([`end_unit_of_work`]). A unit that rolled back wakes nobody; the dispatcher also polls, so
//! a wake-up lost to a crash only costs latency.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use diesel::prelude::*;
use tokio::sync::Notify;

use super::schema::{webhook_deliveries, webhook_endpoints, webhook_events};
use super::{DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;
use crate::status::DeliveryStatus;

/// Wakes the dispatcher when new deliveries have been committed (it also polls, so a missed
/// wake-up only costs latency).
pub fn committed_signal() -> Arc<Notify> {
    static COMMITTED: OnceLock<Arc<Notify>> = OnceLock::new();
    COMMITTED.get_or_init(Default::default).clone()
}

thread_local! {
    /// Deliveries were queued by the unit of work running on this thread.
    static QUEUED: Cell<bool> = const { Cell::new(false) };
}

/// Ends the unit of work running on this thread: if it queued deliveries and `committed`, the
/// dispatcher is woken to send them.
pub fn end_unit_of_work(committed: bool) {
    if QUEUED.with(|queued| queued.replace(false)) && committed {
        committed_signal().notify_one();
    }
}

/// One event to record.
pub struct Event<'a> {
    pub workspace_id: WorkspaceId,
    pub event: &'a str,
    pub data: serde_json::Value,
}

/// Records `event` for the workspace's subscribed endpoints; returns whether anything was queued.
pub fn emit(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    event: &str,
    data: serde_json::Value,
    now: i64,
) -> Result<bool, DbError> {
    emit_many(conn, vec![Event { workspace_id, event, data }], now).map(|queued| queued > 0)
}

/// Records several events with one look-up of endpoints; returns how many deliveries were queued.
pub fn emit_many(conn: &mut DbConn, events: Vec<Event<'_>>, now: i64) -> Result<usize, DbError> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut workspaces: Vec<WorkspaceId> = events.iter().map(|e| e.workspace_id).collect();
    workspaces.sort_unstable();
    workspaces.dedup();
    let endpoints: Vec<(i64, WorkspaceId, String)> = on_backend!(conn, c => webhook_endpoints::table
        .filter(webhook_endpoints::workspace_id.eq_any(&workspaces))
        .filter(webhook_endpoints::active.eq(true))
        .select((webhook_endpoints::id, webhook_endpoints::workspace_id, webhook_endpoints::events))
        .load(c))?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    let mut by_workspace: HashMap<WorkspaceId, Vec<(i64, &str)>> = HashMap::new();
    for (id, workspace_id, subscribed) in &endpoints {
        by_workspace.entry(*workspace_id).or_default().push((*id, subscribed.as_str()));
    }
    let mut queued = 0;
    for event in events {
        let targets: Vec<i64> = by_workspace
            .get(&event.workspace_id)
            .into_iter()
            .flatten()
            .filter(|(_, subscribed)| subscribes(subscribed, event.event))
            .map(|(id, _)| *id)
            .collect();
        if targets.is_empty() {
            continue;
        }
        let event_id = insert_event(conn, event.workspace_id, event.event, &event.data.to_string(), now)?;
        queued += queue(conn, event.workspace_id, event_id, &targets, now)?;
    }
    Ok(queued)
}

fn insert_event(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    event: &str,
    payload: &str,
    now: i64,
) -> Result<i64, DbError> {
    Ok(on_backend!(conn, c => diesel::insert_into(webhook_events::table)
        .values((
            webhook_events::workspace_id.eq(workspace_id),
            webhook_events::event_type.eq(event),
            webhook_events::payload.eq(payload),
            webhook_events::created_at.eq(now),
        ))
        .returning(webhook_events::id)
        .get_result(c))?)
}

/// Queues a delivery of a stored event to each endpoint, due now.
pub fn queue(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    event_id: i64,
    endpoints: &[i64],
    now: i64,
) -> Result<usize, DbError> {
    let rows: Vec<_> = endpoints
        .iter()
        .map(|endpoint_id| {
            (
                webhook_deliveries::workspace_id.eq(workspace_id),
                webhook_deliveries::endpoint_id.eq(*endpoint_id),
                webhook_deliveries::event_id.eq(event_id),
                webhook_deliveries::status.eq(DeliveryStatus::Pending),
                webhook_deliveries::attempts.eq(0),
                webhook_deliveries::next_attempt_at.eq(now),
                webhook_deliveries::created_at.eq(now),
                webhook_deliveries::updated_at.eq(now),
            )
        })
        .collect();
    let queued = on_backend!(conn, c => diesel::insert_into(webhook_deliveries::table).values(&rows).execute(c))?;
    if queued > 0 {
        deliveries_due();
    }
    Ok(queued)
}

/// Tells this thread's unit of work that it made deliveries due (queued them, or made old ones
/// sendable again), so that its end wakes the dispatcher.
pub fn deliveries_due() {
    QUEUED.with(|flag| flag.set(true));
}

/// Whether a subscription list (stored as JSON) takes `event`.
pub fn subscribes(events_json: &str, event: &str) -> bool {
    serde_json::from_str::<Vec<String>>(events_json)
        .map(|events| events.iter().any(|e| e == "*" || e == event))
        .unwrap_or(false)
}
