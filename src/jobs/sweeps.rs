//! Housekeeping, as one background job on every node: node-local structures forget what they
//! no longer need (full rate-limit quotas, the bus's idle channels), and the database loses
//! what expired (console sessions, booking holds, idempotency keys past their retention) and
//! the presence a node that died left behind (an agent shown online with no socket anywhere).
//! Every change is conditional, so nodes sweeping at once change each thing once.

use std::sync::Arc;

use futures::future::LocalBoxFuture;

use crate::domain::presence::AgentSockets;
use crate::jobs::{BackgroundJob, Round};
use crate::storage::{agents, bookings, idempotency, now_ms, sessions, Db};

/// Agents checked per round (the rest are next round's).
const PRESENCE_BATCH: i64 = 500;

pub struct Sweeps {
    pub db: Db,
    pub agent_sockets: Arc<AgentSockets>,
    /// An agent unseen this long with no socket on any live node is set offline.
    pub presence_grace: std::time::Duration,
    /// Node-local structures' `shrink`s.
    pub shrink: Vec<Box<dyn Fn()>>,
}

impl BackgroundJob for Sweeps {
    const NAME: &'static str = "sweeps";

    fn round(self: Arc<Self>) -> LocalBoxFuture<'static, Result<Round, String>> {
        Box::pin(async move {
            for shrink in &self.shrink {
                shrink();
            }
            self.db
                .run(|conn| {
                    let now = now_ms();
                    sessions::purge_expired(conn, now)?;
                    bookings::purge_expired_holds(conn, now)?;
                    idempotency::purge_before(conn, now - idempotency::RETENTION_MS)
                })
                .await
                .map_err(|err| format!("expired rows not purged: {err}"))?;
            self.stale_presence().await
        })
    }
}

impl Sweeps {
    async fn stale_presence(&self) -> Result<Round, String> {
        let seen_before = now_ms() - self.presence_grace.as_millis() as i64;
        let present = self
            .db
            .run(move |conn| agents::present_unseen_since(conn, seen_before, PRESENCE_BATCH))
            .await
            .map_err(|err| format!("presence not checked: {err}"))?;
        for (workspace_id, agent_id) in present {
            if self.agent_sockets.connected_anywhere(agent_id).await {
                continue;
            }
            let offline = self
                .db
                .run(move |conn| agents::set_offline_if_unseen(conn, workspace_id, agent_id, seen_before, now_ms()))
                .await
                .map_err(|err| format!("presence not cleared: {err}"))?;
            if offline {
                tracing::info!(agent_id, %workspace_id, "agent with no open socket anywhere set offline");
            }
        }
        Ok(Round::Idle)
    }
}
