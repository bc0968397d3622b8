//! Conversations across nodes ([`crate::domain::conversations`] routes a command here when the
//! node is clustered). With Redis, a conversation is owned by the node that holds its lease (`lease:<id>`, taken
//! with `SET NX PX`, renewed every third of its time to live, released when the session stops):
//!
//! - a node that needs a conversation nobody holds takes the lease, then claims the
//!   conversation in the database, which raises its fencing token; the session it starts writes
//!   with that token, and the database refuses every write carrying an older one, so a node that
//!   lost its lease (paused, cut off) can never write over the new owner;
//! - a node that finds another node holding the lease forwards the command to it over Redis
//!   (`node:<id>` channels) and answers with the owner's answer; a visitor's message gets its
//!   reply through the conversation's events, which every node hears;
//! - when the owner died, nobody hears the forwarded command: the node waits until the lease
//!   expires, takes it, and the new session rehydrates from the database (answering a question
//!   the dead node never answered);
//! - while Redis is unreachable, a node takes a conversation by claiming it in the database
//!   alone: writes stay fenced, so two nodes passing one conversation back and forth are slower
//!   but never write over each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frontdesk_actors::{ConversationEvent, EventBus, Posted, Sender, SessionError, SessionRegistry, StoredMessage};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};

use super::redis::{Kind, Redis};
use crate::domain::conversations::{run_local, Command, Outcome};
use crate::ids::ConversationId;
use crate::storage::{conversations, Db};

/// How long a forwarded command may wait for the owner's answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after a lease should have expired a command keeps trying to reach the conversation.
const TAKEOVER_GRACE: Duration = Duration::from_secs(3);
/// How long a forwarded visitor message's caller may wait for the reply through the events.
const REPLY_WAIT: Duration = Duration::from_secs(300);

/// An [`Outcome`] as it travels between nodes (a reply already stored travels with it).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireOutcome {
    Posted { message: Box<StoredMessage>, duplicate: bool, reply: Option<Box<StoredMessage>> },
    AgentMessage { message: Box<StoredMessage>, duplicate: bool },
    Read { seq: i64 },
    Variables { variables: serde_json::Value },
    Done,
}

/// The version of what nodes say to each other ([`Envelope`] here, the events' envelope in
/// `bus.rs`). A change to their shapes raises it; a node answers a request it cannot read (in
/// another version, or a command it does not know) with an error at once, so the asking node
/// does not wait out its timeout, and tells apart an answer it cannot read the same way.
pub const NODE_PROTOCOL: u32 = 1;

/// A message written before versions existed is version 1.
pub(crate) fn first_version() -> u32 {
    1
}

/// What one node says to another on its `node:<id>` channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Envelope {
    Request {
        #[serde(default = "first_version")]
        v: u32,
        id: u64,
        from: String,
        conversation_id: ConversationId,
        command: Command,
    },
    Response {
        #[serde(default = "first_version")]
        v: u32,
        id: u64,
        answer: Answer,
    },
}

/// A message on a node's channel that it cannot act on.
#[derive(Debug, PartialEq)]
enum Unreadable {
    /// A request whose asker can be told (its `id` and `from` are readable).
    Request { id: u64, from: String, reason: String },
    /// An answer whose waiting request can be told.
    Response { id: u64, reason: String },
    /// Nothing to answer to.
    Garbage(String),
}

/// Reads a message from another node: the envelope, or what to answer when it cannot be read.
fn read_envelope(bytes: &[u8]) -> Result<Envelope, Unreadable> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Unreadable::Garbage(e.to_string()))?;
    let version = value.get("v").map_or(Some(1), serde_json::Value::as_u64);
    let id = value.get("id").and_then(serde_json::Value::as_u64);
    let reason = match version {
        Some(v) if v == u64::from(NODE_PROTOCOL) => match serde_json::from_value::<Envelope>(value.clone()) {
            Ok(envelope) => return Ok(envelope),
            Err(error) => format!("unreadable in node protocol {NODE_PROTOCOL}: {error}"),
        },
        other => format!(
            "node protocol {} is not spoken here (this node speaks {NODE_PROTOCOL})",
            other.map_or_else(|| "?".to_owned(), |v| v.to_string())
        ),
    };
    match (value.get("type").and_then(serde_json::Value::as_str), id) {
        (Some("request"), Some(id)) => match value.get("from").and_then(serde_json::Value::as_str) {
            Some(from) => Err(Unreadable::Request { id, from: from.to_owned(), reason }),
            None => Err(Unreadable::Garbage(reason)),
        },
        (Some("response"), Some(id)) => Err(Unreadable::Response { id, reason }),
        _ => Err(Unreadable::Garbage(reason)),
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Answer {
    Done {
        result: Result<WireOutcome, SessionError>,
    },
    /// The node does not (or no longer) own the conversation: ask again from the start.
    NotOwner,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct OwnershipStats {
    /// Commands this node sent to the owning node.
    pub forwarded: AtomicU64,
    /// Commands other nodes sent here as the owner.
    pub served: AtomicU64,
    /// Conversations this node took (a fresh lease and claim).
    pub acquired: AtomicU64,
    /// Leases this node found taken by another node when renewing (its sessions stopped).
    pub lost: AtomicU64,
}

/// This node's side of conversation ownership across nodes.
pub(crate) struct Owners {
    redis: Arc<Redis>,
    db: Db,
    bus: Arc<dyn EventBus>,
    registry: SessionRegistry,
    lease: Duration,
    /// The conversations this node holds, with the fencing token its sessions write with.
    held: Mutex<HashMap<ConversationId, i64>>,
    /// Forwarded commands waiting for the owner's answer, by request id.
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    next_request: AtomicU64,
    draining: AtomicBool,
    stats: Arc<OwnershipStats>,
}

/// Where a command for a conversation goes.
enum Route {
    /// This node owns it, writing with this fencing token.
    Here(i64),
    /// Another node owns it.
    There(String),
    /// No such conversation.
    Missing,
    /// Redis just stopped answering: ask again shortly.
    Wait,
}

/// How forwarding a command went.
enum Forwarded {
    Answered(Box<Result<Outcome, SessionError>>),
    NotOwner,
    /// Nobody heard it, or the owner did not answer: it may be dead.
    Unanswered,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lease_key(conversation_id: &ConversationId) -> String {
    format!("lease:{conversation_id}")
}

fn node_channel(node_id: &str) -> String {
    format!("node:{node_id}")
}

impl Owners {
    /// This node's side of ownership; starts listening for other nodes' commands and renewing
    /// this node's leases (on the current runtime). The registry gets a stop hook that gives a
    /// conversation's lease back when its session stops.
    pub(crate) fn start(
        registry: SessionRegistry,
        redis: Arc<Redis>,
        db: Db,
        bus: Arc<dyn EventBus>,
        lease: Duration,
    ) -> Arc<Owners> {
        let owners = Arc::new_cyclic(|me: &std::sync::Weak<Owners>| {
            let me = me.clone();
            // A session that stops gives its conversation's lease back at once.
            let registry = registry.clone().on_stop(Arc::new(move |conversation_id: &ConversationId| {
                if let Some(owners) = me.upgrade() {
                    owners.session_stopped(conversation_id);
                }
            }));
            Owners {
                redis,
                db,
                bus,
                registry,
                lease,
                held: Mutex::default(),
                pending: Mutex::default(),
                next_request: AtomicU64::new(1),
                draining: AtomicBool::new(false),
                stats: Arc::default(),
            }
        });
        owners.clone().listen();
        owners.clone().renew();
        owners
    }

    /// The registry, with its stop hook.
    pub(crate) fn registry(&self) -> SessionRegistry {
        self.registry.clone()
    }

    /// How many conversations this node holds the lease of.
    pub(crate) fn held(&self) -> usize {
        lock(&self.held).len()
    }

    pub(crate) fn stats(&self) -> Arc<OwnershipStats> {
        self.stats.clone()
    }

    /// The node is shutting down: it takes no new conversation.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Gives back every lease still held.
    pub(crate) async fn give_all_back(&self) {
        let held: Vec<ConversationId> = lock(&self.held).keys().cloned().collect();
        for conversation_id in held {
            self.give_back(&conversation_id).await;
        }
    }

    pub(crate) async fn dispatch(
        self: &Arc<Self>,
        conversation_id: &ConversationId,
        command: Command,
    ) -> Result<Outcome, SessionError> {
        let deadline = Instant::now() + self.lease + TAKEOVER_GRACE;
        loop {
            match self.route(conversation_id).await? {
                Route::Missing => return Err(SessionError::NotFound),
                Route::Wait => tokio::time::sleep(Duration::from_millis(100)).await,
                Route::Here(fence) => {
                    match run_local(&self.registry, conversation_id, Some(fence), command.clone()).await {
                        // Another node claimed it since: forget it and find the new owner.
                        Err(SessionError::Moved) => self.forget(conversation_id, fence),
                        other => return other,
                    }
                }
                Route::There(node) => match self.forward(&node, conversation_id, &command).await {
                    Forwarded::Answered(result) => return *result,
                    Forwarded::NotOwner => tokio::time::sleep(Duration::from_millis(20)).await,
                    // The owner may be dead: its lease runs out within `lease`, then this node
                    // takes the conversation.
                    Forwarded::Unanswered => tokio::time::sleep(Duration::from_millis(200)).await,
                },
            }
            if Instant::now() >= deadline {
                return Err(SessionError::Unavailable("the node that owns this conversation does not answer".into()));
            }
        }
    }

    /// Which node runs the conversation, taking it for this node if nobody does.
    async fn route(&self, conversation_id: &ConversationId) -> Result<Route, SessionError> {
        let draining = self.draining.load(Ordering::Relaxed);
        let fence = lock(&self.held).get(conversation_id).copied();
        if let Some(fence) = fence {
            // Shutting down, a conversation whose session has stopped is given back, not restarted.
            if !draining || self.registry.is_live(conversation_id) {
                return Ok(Route::Here(fence));
            }
            self.give_back(conversation_id).await;
        }
        if draining {
            return match self.redis.holder(&lease_key(conversation_id)).await {
                Ok(Some(holder)) if holder != self.redis.node_id() => Ok(Route::There(holder)),
                _ => Err(SessionError::Unavailable("this node is shutting down".into())),
            };
        }
        let holder = match self.redis.acquire(&lease_key(conversation_id), self.lease).await {
            Ok(holder) if holder != self.redis.node_id() => return Ok(Route::There(holder)),
            Ok(_) => true,
            // A blip (a call timing out on a saturated node) must not move conversations around:
            // wait for Redis for a lease's time, then go on by the database's fence alone.
            Err(_) if self.redis.failing_for(Kind::Lease).is_none_or(|failing| failing < self.lease) => {
                return Ok(Route::Wait)
            }
            Err(error) => {
                tracing::debug!(%error, %conversation_id, "Redis unreachable: taking the conversation by its fence alone");
                false
            }
        };
        let id = conversation_id.clone();
        let claimed = self.db.run(move |conn| conversations::claim(conn, &id)).await;
        match claimed {
            Ok(Some(fence)) => {
                lock(&self.held).insert(conversation_id.clone(), fence);
                self.stats.acquired.fetch_add(1, Ordering::Relaxed);
                Ok(Route::Here(fence))
            }
            Ok(None) => {
                if holder {
                    let _ = self.redis.release(&lease_key(conversation_id)).await;
                }
                Ok(Route::Missing)
            }
            Err(err) => {
                if holder {
                    let _ = self.redis.release(&lease_key(conversation_id)).await;
                }
                Err(SessionError::Unavailable(err.to_string()))
            }
        }
    }

    /// Releases this node's hold on a conversation.
    async fn give_back(&self, conversation_id: &ConversationId) {
        if lock(&self.held).remove(conversation_id).is_some() {
            let _ = self.redis.release(&lease_key(conversation_id)).await;
        }
    }

    /// Drops this node's hold on a conversation it lost (if the hold is still `fence`).
    fn forget(&self, conversation_id: &ConversationId, fence: i64) {
        let mut held = lock(&self.held);
        if held.get(conversation_id) == Some(&fence) {
            held.remove(conversation_id);
        }
    }

    /// A session of this node stopped: its conversation's lease goes back, unless a session
    /// was started again meanwhile.
    fn session_stopped(self: &Arc<Self>, conversation_id: &ConversationId) {
        let owners = self.clone();
        let conversation_id = conversation_id.to_owned();
        actix_rt::spawn(async move {
            let released = {
                let mut held = lock(&owners.held);
                match owners.registry.is_live(&conversation_id) {
                    true => false,
                    false => held.remove(&conversation_id).is_some(),
                }
            };
            if released {
                let _ = owners.redis.release(&lease_key(&conversation_id)).await;
            }
        });
    }

    /// Sends the command to the owning node and waits for its answer.
    async fn forward(&self, node: &str, conversation_id: &ConversationId, command: &Command) -> Forwarded {
        // Listen before asking, so the reply to a visitor's message cannot slip past.
        let events = matches!(command, Command::Visitor(_)).then(|| self.bus.subscribe(conversation_id.as_str()));
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let request = Envelope::Request {
            v: NODE_PROTOCOL,
            id,
            from: self.redis.node_id().to_owned(),
            conversation_id: conversation_id.to_owned(),
            command: command.clone(),
        };
        let payload = serde_json::to_string(&request).expect("a command serialises");
        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        let heard = self.redis.publish(&node_channel(node), &payload).await;
        let wait = match heard {
            Ok(Some(listeners)) if listeners > 0 => Some(FORWARD_TIMEOUT),
            // A Redis Cluster cannot say whether the owner heard: a dead owner is noticed by its
            // silence, within a lease's time (a live one answers in milliseconds).
            Ok(None) => Some(self.lease.clamp(Duration::from_secs(1), FORWARD_TIMEOUT)),
            _ => None,
        };
        let answer = match wait {
            Some(wait) => tokio::time::timeout(wait, rx).await.ok().and_then(Result::ok),
            None => None,
        };
        lock(&self.pending).remove(&id);
        match answer {
            None => Forwarded::Unanswered,
            Some(Answer::NotOwner) => Forwarded::NotOwner,
            Some(Answer::Done { result }) => {
                Forwarded::Answered(Box::new(result.map(|outcome| self.arrived(conversation_id, outcome, events))))
            }
        }
    }

    /// An owner's answer, made whole on this node: a visitor's message gets a reply handle fed
    /// by the conversation's events.
    fn arrived(
        &self,
        conversation_id: &ConversationId,
        outcome: WireOutcome,
        events: Option<broadcast::Receiver<Arc<ConversationEvent>>>,
    ) -> Outcome {
        match outcome {
            WireOutcome::Posted { message, duplicate, reply } => {
                let (tx, rx) = oneshot::channel();
                match (reply, events) {
                    (Some(reply), _) => {
                        let _ = tx.send(*reply);
                    }
                    (None, Some(events)) => {
                        let question = (*message).clone();
                        let id = conversation_id.to_owned();
                        actix_rt::spawn(async move { await_reply(id, question, events, tx).await });
                    }
                    (None, None) => {}
                }
                Outcome::Posted(Posted { message: *message, duplicate, reply: rx })
            }
            WireOutcome::AgentMessage { message, duplicate } => Outcome::AgentMessage(*message, duplicate),
            WireOutcome::Read { seq } => Outcome::Read(seq),
            WireOutcome::Variables { variables } => Outcome::Variables(variables),
            WireOutcome::Done => Outcome::Done,
        }
    }

    /// Hears the commands other nodes forward here, and their answers to this node's.
    fn listen(self: Arc<Self>) {
        actix_rt::spawn(async move {
            let channel = node_channel(self.redis.node_id());
            loop {
                match self.redis.subscription(&channel).await {
                    Ok(mut messages) => {
                        while let Some(message) = messages.next().await {
                            match read_envelope(message.get_payload_bytes()) {
                                Ok(Envelope::Response { id, answer, .. }) => {
                                    if let Some(waiter) = lock(&self.pending).remove(&id) {
                                        let _ = waiter.send(answer);
                                    }
                                }
                                Ok(Envelope::Request { id, from, conversation_id, command, .. }) => {
                                    let owners = self.clone();
                                    actix_rt::spawn(async move {
                                        owners.serve(id, from, conversation_id, command).await;
                                    });
                                }
                                Err(Unreadable::Request { id, from, reason }) => {
                                    tracing::warn!(%from, %reason, "a request from another node could not be read");
                                    let owners = self.clone();
                                    actix_rt::spawn(async move {
                                        let answer = Answer::Done { result: Err(SessionError::Failed(reason)) };
                                        owners.answer(id, &from, answer).await;
                                    });
                                }
                                Err(Unreadable::Response { id, reason }) => {
                                    tracing::warn!(%reason, "an answer from another node could not be read");
                                    if let Some(waiter) = lock(&self.pending).remove(&id) {
                                        let _ = waiter.send(Answer::Done { result: Err(SessionError::Failed(reason)) });
                                    }
                                }
                                Err(Unreadable::Garbage(reason)) => {
                                    tracing::warn!(%reason, "unreadable message from another node");
                                }
                            }
                        }
                        tracing::warn!("lost the channel other nodes forward commands on; reconnecting");
                    }
                    Err(error) => tracing::debug!(%error, "cannot hear other nodes' commands yet"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Runs a command another node forwarded, if this node still owns the conversation.
    async fn serve(&self, id: u64, from: String, conversation_id: ConversationId, command: Command) {
        self.stats.served.fetch_add(1, Ordering::Relaxed);
        let fence = lock(&self.held).get(&conversation_id).copied();
        let answer = match fence {
            // Shutting down: a conversation whose session already stopped is given back.
            Some(_) if self.draining.load(Ordering::Relaxed) && !self.registry.is_live(&conversation_id) => {
                self.give_back(&conversation_id).await;
                Answer::NotOwner
            }
            Some(fence) => match run_local(&self.registry, &conversation_id, Some(fence), command).await {
                Err(SessionError::Moved) => {
                    self.forget(&conversation_id, fence);
                    Answer::NotOwner
                }
                result => Answer::Done { result: result.map(wire) },
            },
            None => Answer::NotOwner,
        };
        self.answer(id, &from, answer).await;
    }

    async fn answer(&self, id: u64, to: &str, answer: Answer) {
        let response = Envelope::Response { v: NODE_PROTOCOL, id, answer };
        let payload = serde_json::to_string(&response).expect("an answer serialises");
        if let Err(error) = self.redis.publish(&node_channel(to), &payload).await {
            tracing::warn!(%error, "an answer to another node was lost; it will ask again");
        }
    }

    /// Keeps this node's leases alive; a lease another node took stops its session here.
    fn renew(self: Arc<Self>) {
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(self.lease / 3);
            loop {
                tick.tick().await;
                let held: Vec<(ConversationId, i64)> =
                    lock(&self.held).iter().map(|(id, fence)| (id.clone(), *fence)).collect();
                // The connection is multiplexed: these go out as one pipeline.
                let keys: Vec<String> = held.iter().map(|(id, _)| lease_key(id)).collect();
                let renewals = keys.iter().map(|key| self.redis.hold(key, self.lease));
                let outcomes = futures::future::join_all(renewals).await;
                for ((conversation_id, fence), outcome) in held.into_iter().zip(outcomes) {
                    if let Ok(false) = outcome {
                        tracing::warn!(%conversation_id, "another node took this conversation; its session here stops");
                        self.stats.lost.fetch_add(1, Ordering::Relaxed);
                        self.forget(&conversation_id, fence);
                        self.registry.evict(&conversation_id);
                    }
                }
            }
        });
    }
}

/// An outcome as it leaves the owner: a reply already stored goes with a visitor's message.
fn wire(outcome: Outcome) -> WireOutcome {
    match outcome {
        Outcome::Posted(mut posted) => {
            let reply = posted.reply.try_recv().ok().map(Box::new);
            WireOutcome::Posted { message: Box::new(posted.message), duplicate: posted.duplicate, reply }
        }
        Outcome::AgentMessage(message, duplicate) => {
            WireOutcome::AgentMessage { message: Box::new(message), duplicate }
        }
        Outcome::Read(seq) => WireOutcome::Read { seq },
        Outcome::Variables(variables) => WireOutcome::Variables { variables },
        Outcome::Done => WireOutcome::Done,
    }
}

/// Feeds `reply` with the answer to `question` as the conversation's events bring it: the bot's
/// reply to it, or an agent's next message (what the owning session answers its own callers).
async fn await_reply(
    conversation_id: ConversationId,
    question: StoredMessage,
    mut events: broadcast::Receiver<Arc<ConversationEvent>>,
    mut reply: oneshot::Sender<StoredMessage>,
) {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) => match event.as_ref() {
                    ConversationEvent::Done { message } if message.reply_to == Some(question.id) => {
                        return Some(message.clone())
                    }
                    ConversationEvent::Message { message }
                        if message.sender == Sender::Agent && message.seq > question.seq =>
                    {
                        return Some(message.clone())
                    }
                    _ => {}
                },
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    };
    tokio::select! {
        answered = tokio::time::timeout(REPLY_WAIT, wait) => {
            if let Ok(Some(message)) = answered {
                let _ = reply.send(message);
            } else {
                tracing::debug!(%conversation_id, "no reply heard for a forwarded message");
            }
        }
        // The caller stopped waiting.
        _ = reply.closed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversations::{
        AgentMessage, AgentTyping, CloseConversation, HandBack, MarkRead, RequestHandoff, TakeOver, UpdateVariables,
        VisitorMessage, VisitorTyping,
    };
    use frontdesk_actors::{AgentRef, ChangedBy};

    fn stored(id: i64, seq: i64, sender: Sender) -> StoredMessage {
        StoredMessage {
            id,
            conversation_id: "c".into(),
            seq,
            sender,
            agent_id: None,
            content: format!("message {id}"),
            media: None,
            client_msg_id: Some(format!("m{id}")),
            reply_to: None,
            created_at: 1,
            metadata: None,
        }
    }

    #[test]
    fn a_request_this_node_cannot_read_is_answered_not_dropped() {
        let from_newer = br#"{"type":"request","v":2,"id":9,"from":"n2","conversation_id":"c","command":{"kind":"x"}}"#;
        let Err(Unreadable::Request { id: 9, from, reason }) = read_envelope(from_newer) else { panic!("answerable") };
        assert_eq!(from, "n2");
        assert!(reason.contains("node protocol 2 is not spoken here"), "{reason}");
        // This version, but a command this node does not know.
        let unknown = br#"{"type":"request","v":1,"id":4,"from":"n2","conversation_id":"c","command":{"kind":"teleport","body":{}}}"#;
        assert!(matches!(read_envelope(unknown), Err(Unreadable::Request { id: 4, .. })));
        let answer = br#"{"type":"response","v":3,"id":12,"answer":{"status":"done"}}"#;
        assert!(matches!(read_envelope(answer), Err(Unreadable::Response { id: 12, .. })));
        assert!(matches!(read_envelope(b"{not json"), Err(Unreadable::Garbage(_))));
        assert!(matches!(read_envelope(br#"{"type":"request","v":2,"id":1}"#), Err(Unreadable::Garbage(_))));
        // Written before versions existed: version 1, read as before.
        let old =
            br#"{"type":"request","id":1,"from":"n0","conversation_id":"c","command":{"kind":"close","body":null}}"#;
        assert!(matches!(read_envelope(old), Ok(Envelope::Request { v: 1, id: 1, .. })), "{:?}", read_envelope(old));
    }

    fn every_command() -> Vec<Command> {
        let agent = AgentRef { id: 7, name: "Dana".into() };
        vec![
            Command::Visitor(VisitorMessage {
                client_msg_id: "m1".into(),
                text: "hi".into(),
                media: Some(serde_json::json!([{"url": "https://x.test/a.png"}])),
                context: Some(serde_json::json!({"page": "/pricing"})),
            }),
            Command::VisitorTyping(VisitorTyping { on: true }),
            Command::Close(CloseConversation),
            Command::TakeOver(TakeOver { agent: agent.clone(), actor: ChangedBy::Agent }),
            Command::HandBack(HandBack {
                agent: Some(agent.clone()),
                actor: ChangedBy::System,
                reason: Some("silent".into()),
                silent_before: Some(42),
            }),
            Command::RequestHandoff(RequestHandoff { actor: ChangedBy::Visitor, reason: None }),
            Command::Agent(AgentMessage {
                agent: agent.clone(),
                client_msg_id: "a1".into(),
                text: "hello".into(),
                media: None,
            }),
            Command::AgentTyping(AgentTyping { agent, on: false }),
            Command::MarkRead(MarkRead { reader: Sender::Visitor, seq: 9 }),
            Command::UpdateVariables(UpdateVariables { patch: serde_json::json!({"contact": {"name": "Ana"}}) }),
        ]
    }

    #[test]
    fn every_command_crosses_between_nodes_unchanged() {
        for command in every_command() {
            let request =
                Envelope::Request { v: NODE_PROTOCOL, id: 3, from: "n1".into(), conversation_id: "c".into(), command };
            let text = serde_json::to_string(&request).unwrap();
            let back: Envelope = serde_json::from_str(&text).unwrap();
            assert_eq!(format!("{back:?}"), format!("{request:?}"), "{text}");
        }
    }

    /// What nodes say to each other is a contract between versions of frontdesk (a rolling
    /// upgrade runs two at once): a change to it must be deliberate, with `NODE_PROTOCOL` raised
    /// when an older node could not read it.
    #[test]
    fn the_wire_form_of_every_command_is_pinned() {
        let wire: Vec<serde_json::Value> =
            every_command().into_iter().map(|command| serde_json::to_value(command).unwrap()).collect();
        insta::assert_json_snapshot!("node_commands", wire);
    }

    #[test]
    fn an_answer_carries_a_reply_already_stored_and_errors_keep_their_kind() {
        let (tx, rx) = oneshot::channel();
        tx.send(stored(2, 3, Sender::Bot)).unwrap();
        let posted = Outcome::Posted(Posted { message: stored(1, 2, Sender::Visitor), duplicate: true, reply: rx });
        let answer = Answer::Done { result: Ok(wire(posted)) };
        let text = serde_json::to_string(&Envelope::Response { v: NODE_PROTOCOL, id: 5, answer }).unwrap();
        let Envelope::Response { id: 5, answer: Answer::Done { result: Ok(outcome) }, .. } =
            serde_json::from_str(&text).unwrap()
        else {
            panic!("{text}")
        };
        let WireOutcome::Posted { message, duplicate: true, reply: Some(reply) } = outcome else { panic!("{text}") };
        assert_eq!((message.id, reply.id), (1, 2));

        for error in [SessionError::NotFound, SessionError::Closed, SessionError::Conflict("taken".into())] {
            let answer = Answer::Done { result: Err(error.clone()) };
            let text = serde_json::to_string(&answer).unwrap();
            let Answer::Done { result: Err(back) } = serde_json::from_str(&text).unwrap() else { panic!("{text}") };
            assert_eq!(back, error);
        }
    }

    #[actix_rt::test]
    async fn a_forwarded_message_gets_its_reply_from_the_conversations_events() {
        let (events, receiver) = broadcast::channel(16);
        let question = stored(10, 4, Sender::Visitor);
        let (tx, rx) = oneshot::channel();
        let waiting = actix_rt::spawn(await_reply("c".into(), question, receiver, tx));
        let mut other = stored(11, 5, Sender::Bot);
        other.reply_to = Some(9);
        events.send(Arc::new(ConversationEvent::Done { message: other })).unwrap();
        let mut reply = stored(12, 6, Sender::Bot);
        reply.reply_to = Some(10);
        events.send(Arc::new(ConversationEvent::Done { message: reply })).unwrap();
        assert_eq!(rx.await.unwrap().id, 12, "the reply to this question, not another one");
        waiting.await.unwrap();
    }
}
