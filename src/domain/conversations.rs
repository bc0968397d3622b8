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

use frontdesk_actors as session;
use frontdesk_actors::{AgentRef, ChangedBy, EventBus, Posted, Sender, SessionError, SessionRegistry, StoredMessage};
use serde::{Deserialize, Serialize};

use crate::cluster::ownership::{Owners, OwnershipStats};
use crate::cluster::redis::Redis;
use crate::ids::ConversationId;
use crate::storage::Db;

/// Something to do in a conversation, wherever it lives. It is also what one node asks another
/// (inside [`crate::cluster::ownership`]'s versioned envelope): its bodies are this module's own
/// types, not the session actor's messages, so that changing an actor message cannot change
/// what nodes say to each other (the wire form of every command is pinned by a snapshot test).
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

/// A visitor's message: the client's id for it (resending it never makes a second message),
/// its words, attachments, and context for answering this one message only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisitorMessage {
    pub client_msg_id: String,
    pub text: String,
    pub media: Option<serde_json::Value>,
    pub context: Option<serde_json::Value>,
}

/// The visitor started or stopped typing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisitorTyping {
    pub on: bool,
}

/// Close the conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloseConversation;

/// Queue the conversation for a person.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestHandoff {
    pub actor: ChangedBy,
    pub reason: Option<String>,
}

/// An agent takes the conversation over.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TakeOver {
    pub agent: AgentRef,
    pub actor: ChangedBy,
}

/// The conversation goes back to the bot (only if the owning agent has been silent since
/// before `silent_before`, when it is given).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandBack {
    pub agent: Option<AgentRef>,
    pub actor: ChangedBy,
    pub reason: Option<String>,
    pub silent_before: Option<i64>,
}

/// A message from the owning agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentMessage {
    pub agent: AgentRef,
    pub client_msg_id: String,
    pub text: String,
    pub media: Option<serde_json::Value>,
}

/// The owning agent started or stopped typing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentTyping {
    pub agent: AgentRef,
    pub on: bool,
}

/// `reader` has read up to `seq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MarkRead {
    pub reader: Sender,
    pub seq: i64,
}

/// A patch merged into the conversation's variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateVariables {
    pub patch: serde_json::Value,
}

impl From<VisitorMessage> for session::VisitorMessage {
    fn from(m: VisitorMessage) -> Self {
        session::VisitorMessage { client_msg_id: m.client_msg_id, text: m.text, media: m.media, context: m.context }
    }
}

impl From<VisitorTyping> for session::VisitorTyping {
    fn from(m: VisitorTyping) -> Self {
        session::VisitorTyping { on: m.on }
    }
}

impl From<CloseConversation> for session::CloseConversation {
    fn from(_: CloseConversation) -> Self {
        session::CloseConversation
    }
}

impl From<RequestHandoff> for session::RequestHandoff {
    fn from(m: RequestHandoff) -> Self {
        session::RequestHandoff { actor: m.actor, reason: m.reason }
    }
}

impl From<TakeOver> for session::TakeOver {
    fn from(m: TakeOver) -> Self {
        session::TakeOver { agent: m.agent, actor: m.actor }
    }
}

impl From<HandBack> for session::HandBack {
    fn from(m: HandBack) -> Self {
        session::HandBack { agent: m.agent, actor: m.actor, reason: m.reason, silent_before: m.silent_before }
    }
}

impl From<AgentMessage> for session::AgentMessage {
    fn from(m: AgentMessage) -> Self {
        session::AgentMessage { agent: m.agent, client_msg_id: m.client_msg_id, text: m.text, media: m.media }
    }
}

impl From<AgentTyping> for session::AgentTyping {
    fn from(m: AgentTyping) -> Self {
        session::AgentTyping { agent: m.agent, on: m.on }
    }
}

impl From<MarkRead> for session::MarkRead {
    fn from(m: MarkRead) -> Self {
        session::MarkRead { reader: m.reader, seq: m.seq }
    }
}

impl From<UpdateVariables> for session::UpdateVariables {
    fn from(m: UpdateVariables) -> Self {
        session::UpdateVariables { patch: m.patch }
    }
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
    pub async fn dispatch(&self, conversation_id: &ConversationId, command: Command) -> Result<Outcome, SessionError> {
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
    conversation_id: &ConversationId,
    fence: Option<i64>,
    command: Command,
) -> Result<Outcome, SessionError> {
    let id = conversation_id;
    type Visitor = session::VisitorMessage;
    type Agent = session::AgentMessage;
    type Read = session::MarkRead;
    type Variables = session::UpdateVariables;
    type VisitorTypes = session::VisitorTyping;
    type Close = session::CloseConversation;
    type Take = session::TakeOver;
    type Back = session::HandBack;
    type Handoff = session::RequestHandoff;
    type AgentTypes = session::AgentTyping;
    Ok(match command {
        Command::Visitor(m) => Outcome::Posted(registry.send_fenced(id, fence, Visitor::from(m)).await?),
        Command::Agent(m) => {
            let (message, duplicate) = registry.send_fenced(id, fence, Agent::from(m)).await?;
            Outcome::AgentMessage(message, duplicate)
        }
        Command::MarkRead(m) => Outcome::Read(registry.send_fenced(id, fence, Read::from(m)).await?),
        Command::UpdateVariables(m) => Outcome::Variables(registry.send_fenced(id, fence, Variables::from(m)).await?),
        Command::VisitorTyping(m) => {
            registry.send_fenced(id, fence, VisitorTypes::from(m)).await.map(|()| Outcome::Done)?
        }
        Command::Close(m) => registry.send_fenced(id, fence, Close::from(m)).await.map(|()| Outcome::Done)?,
        Command::TakeOver(m) => registry.send_fenced(id, fence, Take::from(m)).await.map(|()| Outcome::Done)?,
        Command::HandBack(m) => registry.send_fenced(id, fence, Back::from(m)).await.map(|()| Outcome::Done)?,
        Command::RequestHandoff(m) => {
            registry.send_fenced(id, fence, Handoff::from(m)).await.map(|()| Outcome::Done)?
        }
        Command::AgentTyping(m) => {
            registry.send_fenced(id, fence, AgentTypes::from(m)).await.map(|()| Outcome::Done)?
        }
    })
}
