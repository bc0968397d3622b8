//! Agents' presence: how many sockets each agent has open, on this node and (with Redis) on
//! every live node. The agent socket counts its own; the housekeeping sweep asks whether an
//! agent shown online still has one anywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cluster::redis::Redis;

/// How many sockets each agent has open on this node. An agent goes offline with their last
/// socket: on one node, the last socket there; clustered, the last on any live node (each node
/// notes in Redis that it has the agent's sockets, and a node that died stops counting once its
/// heartbeat is gone).
#[derive(Default)]
pub struct AgentSockets {
    open: Mutex<HashMap<i64, usize>>,
    redis: Option<Arc<Redis>>,
}

impl AgentSockets {
    pub fn new(redis: Option<Arc<Redis>>) -> Self {
        Self { open: Mutex::default(), redis }
    }

    fn key(agent_id: i64) -> String {
        format!("agent-sockets:{agent_id}")
    }

    /// Counts a socket; the first on this node tells the cluster.
    pub(crate) fn opened(self: &Arc<Self>, agent_id: i64) {
        let first = {
            let mut open = self.lock();
            let count = open.entry(agent_id).or_default();
            *count += 1;
            *count == 1
        };
        if let (true, Some(redis)) = (first, self.redis.clone()) {
            actix::spawn(async move {
                if let Err(error) = redis.mark(&Self::key(agent_id), true).await {
                    tracing::debug!(%error, "agent's sockets on this node not noted in Redis");
                }
            });
        }
    }

    /// Uncounts a socket; true when it was the agent's last anywhere (so they go offline).
    pub(crate) async fn closed(&self, agent_id: i64) -> bool {
        let last_here = {
            let mut open = self.lock();
            let left = open.get_mut(&agent_id).map(|n| {
                *n = n.saturating_sub(1);
                *n
            });
            if left == Some(0) {
                open.remove(&agent_id);
            }
            left.unwrap_or(0) == 0
        };
        if !last_here {
            return false;
        }
        let Some(redis) = &self.redis else { return true };
        // Without Redis's word, this node's count decides.
        let _ = redis.mark(&Self::key(agent_id), false).await;
        match redis.marked_by_live_nodes(&Self::key(agent_id)).await {
            Ok(elsewhere) => elsewhere.is_empty(),
            Err(_) => true,
        }
    }

    /// Whether the agent has a socket open on this node or, clustered, on any live node (when
    /// Redis cannot say, they are taken to have one: presence is never cleared on a guess).
    pub async fn connected_anywhere(&self, agent_id: i64) -> bool {
        if self.lock().get(&agent_id).is_some_and(|n| *n > 0) {
            return true;
        }
        let Some(redis) = &self.redis else { return false };
        match redis.marked_by_live_nodes(&Self::key(agent_id)).await {
            Ok(nodes) => !nodes.is_empty(),
            Err(_) => true,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, usize>> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
