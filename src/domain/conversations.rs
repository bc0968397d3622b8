//! Where each conversation lives: its one live session, on one node at a time.
//!
//! Every command for a conversation (a visitor's or agent's message, typing, a takeover, …) goes
//! through [`Conversations::dispatch`]. On a single node that is the node's session registry,
//! and nothing else: the single-node path never touches [`crate::cluster`]. With Redis, the
//! command goes to the node that owns the conversation ([`crate::cluster::ownership`]).
//!
//! Retrying a command is safe: messages carry their `client_msg_id`, and every other command is
//! idempotent, so a command whose answer was lost is simply sent again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk_actors::{
    AgentMessage, AgentTyping, CloseConversation, EventBus, HandBack, MarkRead, Posted, RequestHandoff, SessionError,
    SessionRegistry, StoredMessage, TakeOver, UpdateVariables, VisitorMessage, VisitorTyping,
};
use serde::{Deserialize, Serialize};

use crate::cluster::ownership::{Owners, OwnershipStats};
use crate::cluster::redis::Redis;
use crate::storage::Db;

/// Something to do in a conversation, as one node asks another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum Command {
    Visitor(VisitorMessage),
    VisitorTyping(VisitorTyping),
    Close(CloseConversation),
    TakeOver(TakeOver),
    HandBack(HandBack),
    RequestHandoff(RequestHandoff),
    Agent(AgentMessage),
    AgentTyping(AgentTyping),
    MarkRead(MarkRead),
    UpdateVariables(UpdateVariables),
}

/// What a command did.
#[derive(Debug)]
pub enum Outcome {
    /// A visitor's message is stored; its reply comes through `Posted::reply`.
    Posted(Posted),
    /// An agent's message is stored (`true`: it repeated an earlier `client_msg_id`).
    AgentMessage(StoredMessage, bool),
    /// How far the reader has now read.
    Read(i64),
    /// The conversation's variables as they now stand.
    Variables(serde_json::Value),
    Done,
}

impl Outcome {
    fn unexpected(self) -> SessionError {
        SessionError::Failed(format!("unexpected answer from the conversation: {self:?}"))
    }

    pub fn posted(self) -> Result<Posted, SessionError> {
        match self {
            Outcome::Posted(posted) => Ok(posted),
            other => Err(other.unexpected()),
        }
    }

    pub fn agent_message(self) -> Result<(StoredMessage, bool), SessionError> {
        match self {
            Outcome::AgentMessage(message, duplicate) => Ok((message, duplicate)),
            other => Err(other.unexpected()),
        }
    }

    pub fn read(self) -> Result<i64, SessionError> {
        match self {
            Outcome::Read(seq) => Ok(seq),
            other => Err(other.unexpected()),
        }
    }

    pub fn variables(self) -> Result<serde_json::Value, SessionError> {
        match self {
            Outcome::Variables(variables) => Ok(variables),
            other => Err(other.unexpected()),
        }
    }

    pub fn done(self) -> Result<(), SessionError> {
        match self {
            Outcome::Done => Ok(()),
            other => Err(other.unexpected()),
        }
    }
}

/// The conversations of this node: the session registry, and with Redis the leases.
pub struct Conversations {
    registry: SessionRegistry,
    cluster: Option<Arc<Owners>>,
}

impl Conversations {
    /// A single node's conversations: every session is local.
    pub fn single(registry: SessionRegistry) -> Conversations {
        Conversations { registry, cluster: None }
    }

    /// A cluster node's conversations; starts listening for other nodes' commands and renewing
    /// this node's leases (on the current runtime). The registry gets a stop hook that gives a
    /// conversation's lease back when its session stops.
    pub fn clustered(
        registry: SessionRegistry,
        redis: Arc<Redis>,
        db: Db,
        bus: Arc<dyn EventBus>,
        lease: Duration,
    ) -> Conversations {
        let owners = Owners::start(registry, redis, db, bus, lease);
        Conversations { registry: owners.registry(), cluster: Some(owners) }
    }

    /// The node's session registry.
    pub fn registry(&self) -> &SessionRegistry {
        &self.registry
    }

    /// How many conversations this node holds the lease of (`None` on a single node).
    pub fn leases_held(&self) -> Option<usize> {
        self.cluster.as_ref().map(|owners| owners.held())
    }

    pub fn stats(&self) -> Option<Arc<OwnershipStats>> {
        self.cluster.as_ref().map(|owners| owners.stats())
    }

    /// Runs `command` in the conversation's session, wherever it lives.
    pub async fn dispatch(&self, conversation_id: &str, command: Command) -> Result<Outcome, SessionError> {
        match &self.cluster {
            None => run_local(&self.registry, conversation_id, None, command).await,
            Some(owners) => owners.dispatch(conversation_id, command).await,
        }
    }

    /// The node is shutting down: every session finishes its turn and stops (giving its lease
    /// back); after `within`, whatever is still held is released anyway.
    pub async fn drain(&self, within: Duration) {
        if let Some(owners) = &self.cluster {
            owners.start_draining();
        }
        let asked = self.registry.drain();
        tracing::info!(sessions = asked, "live conversations finish their replies and hand over");
        let deadline = Instant::now() + within;
        while self.registry.live() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(owners) = &self.cluster {
            owners.give_all_back().await;
        }
    }
}

/// Runs a command in this node's session of the conversation.
pub(crate) async fn run_local(
    registry: &SessionRegistry,
    conversation_id: &str,
    fence: Option<i64>,
    command: Command,
) -> Result<Outcome, SessionError> {
    let id = conversation_id;
    Ok(match command {
        Command::Visitor(m) => Outcome::Posted(registry.send_fenced(id, fence, m).await?),
        Command::Agent(m) => {
            let (message, duplicate) = registry.send_fenced(id, fence, m).await?;
            Outcome::AgentMessage(message, duplicate)
        }
        Command::MarkRead(m) => Outcome::Read(registry.send_fenced(id, fence, m).await?),
        Command::UpdateVariables(m) => Outcome::Variables(registry.send_fenced(id, fence, m).await?),
        Command::VisitorTyping(m) => registry.send_fenced(id, fence, m).await.map(|()| Outcome::Done)?,
        Command::Close(m) => registry.send_fenced(id, fence, m).await.map(|()| Outcome::Done)?,
        Command::TakeOver(m) => registry.send_fenced(id, fence, m).await.map(|()| Outcome::Done)?,
        Command::HandBack(m) => registry.send_fenced(id, fence, m).await.map(|()| Outcome::Done)?,
        Command::RequestHandoff(m) => registry.send_fenced(id, fence, m).await.map(|()| Outcome::Done)?,
        Command::AgentTyping(m) => registry.send_fenced(id, fence, m).await.map(|()| Outcome::Done)?,
    })
}
