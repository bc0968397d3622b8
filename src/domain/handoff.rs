//! The rules that move conversations between people and the bot without anyone asking: an
//! agent silent for too long hands their conversation back to the bot, and (when turned on)
//! queued conversations go to online agents in turn.
//!
//! With Redis, one node of the cluster leads these rules at a time (a lead renewed every check,
//! lost after a few missed ones), and the agents' turns are taken in Redis by one atomic script,
//! so assignments go round the agents in one order for the whole cluster even while two nodes
//! assign at once. Without Redis, or while it is down, every node runs them and the database's
//! record of assignments gives the order: each change still goes through the conversation's
//! session and the store's conditional update, so a conversation is moved once and the second
//! node to try is refused.

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use frontdesk_actors::ChangedBy;
use futures::future::LocalBoxFuture;

use crate::cluster::redis::Redis;
use crate::domain::chat::Chat;
use crate::domain::conversations::{Command, HandBack, TakeOver};
use crate::ids::WorkspaceId;
use crate::jobs::{BackgroundJob, JobRunner, Round, Schedule};
use crate::storage::{agents, conversations, now_ms};

/// How often the rules are checked.
const EVERY: Duration = Duration::from_secs(1);
/// Conversations looked at per check.
const BATCH: i64 = 100;

pub struct HandoffRules {
    pub chat: Arc<Chat>,
    pub silence: Option<Duration>,
    pub auto_assign: bool,
    pub redis: Option<Arc<Redis>>,
}

impl BackgroundJob for HandoffRules {
    const NAME: &'static str = "handoff_rules";

    fn round(self: Arc<Self>) -> LocalBoxFuture<'static, Result<Round, String>> {
        Box::pin(async move {
            if let Some(silence) = self.silence {
                self.hand_back_silent(silence).await;
            }
            if self.auto_assign {
                self.assign_queued().await;
            }
            Ok(Round::Idle)
        })
    }
}

/// The name of the lead these rules take in Redis.
pub const ROLE: &str = "handoff";

impl HandoffRules {
    /// Runs the rules as a background job, led by one node of a cluster.
    pub fn start(self) {
        if self.silence.is_none() && !self.auto_assign {
            return;
        }
        let schedule = Schedule::every(EVERY).led(self.redis.clone(), ROLE);
        JobRunner::new(self, schedule).start();
    }

    async fn hand_back_silent(&self, silence: Duration) {
        let cutoff = now_ms() - silence.as_millis() as i64;
        let silent = match self.chat.db.run(move |conn| conversations::silent_agents(conn, cutoff, BATCH)).await {
            Ok(silent) => silent,
            Err(err) => return tracing::warn!(error = %err, "silent agents not checked"),
        };
        for (_, conversation_id) in silent {
            let hand_back = HandBack {
                agent: None,
                actor: ChangedBy::System,
                reason: Some(format!("the agent was silent for {} s", silence.as_secs())),
                silent_before: Some(cutoff),
            };
            match self.chat.conversations.dispatch(&conversation_id, Command::HandBack(hand_back)).await {
                Ok(_) => tracing::info!(%conversation_id, "handed back to the bot after the agent's silence"),
                // The agent spoke, or someone else moved it, in the meantime.
                Err(err) => tracing::debug!(%conversation_id, error = %err, "not handed back"),
            }
        }
    }

    async fn assign_queued(&self) {
        let queued = match self.chat.db.run(move |conn| conversations::queued(conn, BATCH)).await {
            Ok(queued) => queued,
            Err(err) => return tracing::warn!(error = %err, "queued conversations not checked"),
        };
        for (workspace_id, conversation_id) in queued {
            let online = match self.chat.db.run(move |conn| agents::online(conn, workspace_id)).await {
                Ok(online) => online,
                Err(err) => return tracing::warn!(error = %err, "online agents not read"),
            };
            let Some(agent) = self.next_in_turn(workspace_id, online).await else { continue };
            let take_over = TakeOver { agent: agent.as_ref(), actor: ChangedBy::System };
            if self.chat.conversations.dispatch(&conversation_id, Command::TakeOver(take_over)).await.is_ok() {
                let id = agent.id;
                if let Err(err) = self.chat.db.run(move |conn| agents::assigned(conn, workspace_id, id, now_ms())).await
                {
                    tracing::warn!(error = %err, "round-robin position not saved");
                }
                tracing::info!(%conversation_id, agent_id = id, "queued conversation assigned");
            }
        }
    }

    /// The online agent whose turn it is: the one given a conversation longest ago. With Redis
    /// the turns are taken in Redis, one at a time for the whole cluster, so two nodes
    /// assigning at once (a lead changing hands, Redis briefly cut off) still go round the
    /// agents; without it (or while it is down), the database's record of assignments decides.
    async fn next_in_turn(&self, workspace_id: WorkspaceId, online: Vec<agents::AgentRow>) -> Option<agents::AgentRow> {
        if let (Some(redis), false) = (&self.redis, online.is_empty()) {
            let ids: Vec<i64> = online.iter().map(|agent| agent.id).collect();
            match redis.take_turn(&format!("{{rr:{workspace_id}}}"), &ids).await {
                Ok(Some(id)) => return online.into_iter().find(|agent| agent.id == id),
                Ok(None) => return None,
                Err(error) => tracing::debug!(%error, "round-robin from the database's order"),
            }
        }
        online.into_iter().next()
    }
}
