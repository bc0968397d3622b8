//! `ConversationSession`: the one live actor of a conversation.
//!
//! It serialises everything that happens in its conversation: a visitor message is persisted
//! with the next `seq` while the mailbox waits (so `seq` is gap-free and ordered), acknowledged
//! only after the store says it is durable, published to every subscriber through the bus, and
//! then answered by the brain one turn at a time. Chunks of the reply go out as `Delta` events;
//! the finished reply is persisted with its own `seq` and published as `Done`.
//!
//! It also holds who answers the conversation (the bot, the queue for a person, or one agent).
//! Ownership changes go through the store as conditional updates, one at a time in this
//! mailbox, so two agents racing to take over get one winner and one clear conflict. While an
//! agent owns the conversation the bot never starts a turn, and a reply streaming at the moment
//! of takeover is cut off: its stream is dropped and what it had said is stored marked
//! `interrupted`.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::future::AbortHandle;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::ports::{
    inbox_topic, AgentRef, Appended, BrainError, BrainOutput, BrainRequest, ChangedBy, ConversationEvent,
    ConversationId, ConversationSnapshot, ConversationStatus, NewMessage, Owner, OwnershipChange, OwnershipOutcome,
    Ports, Sender, StateWriter, StoreError, StoredMessage, TurnState,
};
use crate::registry::Registration;

/// Tuning of a session, shared by every session of a node.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// A session with no activity for this long stops; the next message rehydrates it.
    pub idle_timeout: Duration,
    /// How many recent messages a session keeps as the brain's context.
    pub context_window: usize,
    /// What the bot says when its brain fails before producing anything.
    pub brain_failure_reply: String,
    /// Brain turns that may wait behind the running one. A visitor message past this is still
    /// stored and acknowledged, but answered together with the last waiting turn (that turn's
    /// question becomes the newest message; the brain sees the earlier ones in its history),
    /// so a flood costs at most this many brain calls more, each possibly a paid model call.
    pub max_queued_turns: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            context_window: 20,
            brain_failure_reply: "Sorry, I can't answer that right now. Please try again in a moment.".into(),
            max_queued_turns: 5,
        }
    }
}

/// Why a session could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SessionError {
    #[error("conversation not found")]
    NotFound,
    #[error("conversation is closed")]
    Closed,
    #[error("conversation temporarily unavailable: {0}")]
    Unavailable(String),
    /// The store refused the write for a reason other than being unreachable.
    #[error("conversation storage failed: {0}")]
    Failed(String),
    /// The conversation is not in a state that allows this (another agent owns it, …).
    #[error("{0}")]
    Conflict(String),
    /// Another node's session owns the conversation now (this one's writes were fenced off);
    /// asking again reaches the owner.
    #[error("conversation moved to another node; send again")]
    Moved,
}

/// A visitor's message, as every transport hands it to the session.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Posted, SessionError>")]
pub struct VisitorMessage {
    /// The client's id for this message: resending it never creates a second message.
    pub client_msg_id: String,
    pub text: String,
    pub media: Option<serde_json::Value>,
    /// Context for answering this one message only (ChatSupport AI's per-request `context`).
    pub context: Option<serde_json::Value>,
}

/// The acknowledgement of a visitor message.
#[derive(Debug)]
pub struct Posted {
    pub message: StoredMessage,
    /// True when the message had been stored before under the same `client_msg_id`.
    pub duplicate: bool,
    /// Resolves with the bot's stored reply (dropped if the bot does not answer).
    pub reply: oneshot::Receiver<StoredMessage>,
}

/// The visitor started or stopped typing.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), SessionError>")]
pub struct VisitorTyping {
    pub on: bool,
}

/// Close the conversation: no message is taken after it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), SessionError>")]
pub struct CloseConversation;

/// Put the conversation in the queue for a person (idempotent while it waits there).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), SessionError>")]
pub struct RequestHandoff {
    pub actor: ChangedBy,
    pub reason: Option<String>,
}

/// An agent takes the conversation over from the bot or the queue; the bot falls silent at once.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), SessionError>")]
pub struct TakeOver {
    pub agent: AgentRef,
    pub actor: ChangedBy,
}

/// The conversation goes back to the bot, from an agent or the queue.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), SessionError>")]
pub struct HandBack {
    /// The agent handing back, when one does.
    pub agent: Option<AgentRef>,
    pub actor: ChangedBy,
    pub reason: Option<String>,
    /// Only if the owning agent has been silent since before this time (ms): the silence rule.
    pub silent_before: Option<i64>,
}

/// A message from the agent who owns the conversation.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(StoredMessage, bool), SessionError>")]
pub struct AgentMessage {
    pub agent: AgentRef,
    pub client_msg_id: String,
    pub text: String,
    pub media: Option<serde_json::Value>,
}

/// The owning agent started or stopped typing.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), SessionError>")]
pub struct AgentTyping {
    pub agent: AgentRef,
    pub on: bool,
}

/// `reader` (the visitor, or an agent) has read up to `seq`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<i64, SessionError>")]
pub struct MarkRead {
    pub reader: Sender,
    pub seq: i64,
}

/// Merge a patch into the conversation's variables (the API's and agents' edits); answers the
/// variables as they now stand.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<serde_json::Value, SessionError>")]
pub struct UpdateVariables {
    pub patch: serde_json::Value,
}

/// The node is shutting down: finish the turn in progress (and what is queued), then stop, so
/// the conversation's lease is released and another node takes it from the database.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Drain;

/// A chunk of the running turn's reply (sent by the turn's task to its session).
#[derive(Message)]
#[rtype(result = "()")]
struct TurnChunk {
    turn: u64,
    text: String,
}

/// The running turn's brain changes the conversation's variables (through its [`TurnState`]).
#[derive(Message)]
#[rtype(result = "Result<serde_json::Value, SessionError>")]
struct TurnVariables {
    turn: u64,
    patch: serde_json::Value,
}

/// The [`StateWriter`] a session gives each turn: its patches go back to the session, tagged
/// with the turn, so a turn that is over can no longer write.
struct SessionState {
    session: Addr<ConversationSession>,
    turn: u64,
}

#[async_trait::async_trait]
impl StateWriter for SessionState {
    async fn merge(&self, patch: serde_json::Value) -> Result<serde_json::Value, BrainError> {
        match self.session.send(TurnVariables { turn: self.turn, patch }).await {
            Ok(Ok(variables)) => Ok(variables),
            Ok(Err(err)) => Err(BrainError(format!("the conversation's variables were not stored: {err}"))),
            Err(_) => Err(BrainError("the conversation's session has stopped".into())),
        }
    }
}

/// What the running turn's reply is based on (its citations).
#[derive(Message)]
#[rtype(result = "()")]
struct TurnMetadata {
    turn: u64,
    metadata: serde_json::Value,
}

/// The running turn's brain asked for a person once its reply is out.
#[derive(Message)]
#[rtype(result = "()")]
struct TurnHandoff {
    turn: u64,
    actor: ChangedBy,
    reason: String,
}

/// The running turn's stream ended; `failed` when the brain erred or panicked.
#[derive(Message)]
#[rtype(result = "()")]
struct TurnFinished {
    turn: u64,
    failed: bool,
}

/// The conversation as the live session holds it.
struct Context {
    workspace_id: i64,
    bot_id: i64,
    channel: String,
    status: ConversationStatus,
    owner: Owner,
    agent: Option<AgentRef>,
    variables: serde_json::Value,
    next_seq: i64,
    recent: VecDeque<StoredMessage>,
}

enum State {
    Loading,
    Ready(Box<Context>),
    Missing,
    Failed(String),
}

/// Visitor messages answered together with a later one since start (every session of the
/// process), for the metrics.
static COALESCED_TURNS: AtomicU64 = AtomicU64::new(0);

/// How many visitor messages were answered together with a later one (queued-turn cap).
pub fn coalesced_turns() -> u64 {
    COALESCED_TURNS.load(Ordering::Relaxed)
}

/// The bot's reply in progress.
struct Turn {
    id: u64,
    question: StoredMessage,
    /// Earlier questions this turn answers too (merged in by the queued-turn cap).
    also: Vec<i64>,
    text: String,
    metadata: Option<serde_json::Value>,
    /// Stops the brain's stream when the turn is cut off.
    abort: AbortHandle,
    handoff: Option<(ChangedBy, String)>,
}

/// A visitor message waiting for its answer, with the context given for it alone.
struct QueuedTurn {
    question: StoredMessage,
    context: Option<serde_json::Value>,
    /// Earlier questions answered by this turn's reply (see `SessionConfig::max_queued_turns`).
    also: Vec<i64>,
}

pub struct ConversationSession {
    id: ConversationId,
    /// Everything the session logs is inside this span (conversation and workspace ids).
    span: tracing::Span,
    ports: Ports,
    config: SessionConfig,
    registration: Registration,
    state: State,
    last_activity: Instant,
    next_turn_id: u64,
    turn: Option<Turn>,
    queued_turns: VecDeque<QueuedTurn>,
    /// Callers waiting for the reply to a visitor message, by that message's id.
    reply_waiters: HashMap<i64, Vec<oneshot::Sender<StoredMessage>>>,
    /// The fencing token every write carries (`None` on a single node).
    fence: Option<i64>,
    /// Asked to stop once its turn is done (the node is shutting down).
    draining: bool,
}

impl ConversationSession {
    pub(crate) fn new(
        id: ConversationId,
        ports: Ports,
        config: SessionConfig,
        registration: Registration,
        fence: Option<i64>,
    ) -> Self {
        let span = tracing::info_span!("conversation", conversation_id = %id, workspace_id = tracing::field::Empty);
        Self {
            id,
            span,
            ports,
            config,
            registration,
            state: State::Loading,
            last_activity: Instant::now(),
            next_turn_id: 1,
            turn: None,
            queued_turns: VecDeque::new(),
            reply_waiters: HashMap::new(),
            fence,
            draining: false,
        }
    }

    /// The session's error for a failed write. A fenced write means a newer session on another
    /// node owns the conversation now: this one stops, so the next message finds the owner.
    fn write_failed(&mut self, err: StoreError, ctx: &mut actix::Context<Self>) -> SessionError {
        if let StoreError::Fenced(token) = err {
            tracing::warn!(fence = token, "another node owns this conversation now; this session stops");
            self.reply_waiters.clear();
            ctx.stop();
        }
        session_error(err)
    }

    /// Whether the session has nothing in progress (no turn running or waiting).
    fn idle(&self) -> bool {
        self.turn.is_none() && self.queued_turns.is_empty()
    }

    fn ready(&self) -> Result<&Context, SessionError> {
        match &self.state {
            State::Ready(context) => Ok(context),
            State::Missing => Err(SessionError::NotFound),
            State::Failed(why) => Err(SessionError::Unavailable(why.clone())),
            State::Loading => Err(SessionError::Unavailable("conversation is loading".into())),
        }
    }

    fn open(&self) -> Result<&Context, SessionError> {
        let context = self.ready()?;
        if context.status == ConversationStatus::Closed {
            return Err(SessionError::Closed);
        }
        Ok(context)
    }

    fn remember(&mut self, message: StoredMessage) {
        let window = self.config.context_window.max(1);
        if let State::Ready(context) = &mut self.state {
            context.next_seq = context.next_seq.max(message.seq + 1);
            context.recent.push_back(message);
            while context.recent.len() > window {
                context.recent.pop_front();
            }
        }
    }

    fn wait_for_reply(&mut self, message_id: i64) -> oneshot::Receiver<StoredMessage> {
        let (tx, rx) = oneshot::channel();
        self.reply_waiters.entry(message_id).or_default().push(tx);
        rx
    }

    fn start_next_turn(&mut self, ctx: &mut actix::Context<Self>) {
        if self.turn.is_some() {
            return;
        }
        if self.ready().is_ok_and(|context| context.owner == Owner::Agent) {
            // A person answers now; what was queued waits for them (its callers get their reply).
            self.queued_turns.clear();
        }
        let Some(QueuedTurn { question, context: request_context, also }) = self.queued_turns.pop_front() else {
            if self.draining {
                ctx.stop();
            }
            return;
        };
        let Ok(context) = self.ready() else { return };
        let request = BrainRequest {
            workspace_id: context.workspace_id,
            bot_id: context.bot_id,
            conversation_id: self.id.clone(),
            channel: context.channel.clone(),
            // The context as it stood when this question was asked (later messages wait their
            // turn), ending with the question even if a burst pushed it out of the window.
            history: context
                .recent
                .iter()
                .filter(|m| m.seq < question.seq)
                .cloned()
                .chain(std::iter::once(question.clone()))
                .collect(),
            variables: context.variables.clone(),
            context: request_context,
            state: TurnState::new(Arc::new(SessionState { session: ctx.address(), turn: self.next_turn_id })),
        };
        let turn = self.next_turn_id;
        self.next_turn_id += 1;
        let (abort, registration) = AbortHandle::new_pair();
        self.turn = Some(Turn { id: turn, question, also, text: String::new(), metadata: None, abort, handoff: None });

        let me = ctx.address();
        let mut chunks = self.ports.brain.reply(request);
        let span = self.span.clone();
        let drive = async move {
            let mut failed = false;
            while let Some(chunk) = chunks.next().await {
                match chunk {
                    Ok(BrainOutput::Text(text)) if text.is_empty() => {}
                    Ok(BrainOutput::Text(text)) => me.do_send(TurnChunk { turn, text }),
                    Ok(BrainOutput::Metadata(metadata)) => me.do_send(TurnMetadata { turn, metadata }),
                    Ok(BrainOutput::Handoff { actor, reason }) => me.do_send(TurnHandoff { turn, actor, reason }),
                    Err(err) => {
                        tracing::warn!(error = %err, "brain failed mid-reply");
                        failed = true;
                        break;
                    }
                }
            }
            me.do_send(TurnFinished { turn, failed });
        };
        let guard = ctx.address();
        // Abortable: a takeover drops the brain's stream (and whatever request it is waiting on).
        let drive = futures::future::Abortable::new(AssertUnwindSafe(drive).catch_unwind(), registration);
        actix::spawn(
            async move {
                // A panicking brain must end the turn, not leave the conversation waiting forever.
                if let Ok(Err(_)) = drive.await {
                    tracing::error!("brain panicked mid-reply");
                    guard.do_send(TurnFinished { turn, failed: true });
                }
            }
            .instrument(span),
        );
    }

    /// Publishes to the conversation's subscribers and, for what an inbox shows, to its
    /// workspace's agents.
    fn publish(&self, event: ConversationEvent) {
        let for_inbox = matches!(
            event,
            ConversationEvent::Message { .. }
                | ConversationEvent::Done { .. }
                | ConversationEvent::OwnerChanged { .. }
                | ConversationEvent::Closed { .. }
        );
        if for_inbox {
            if let State::Ready(context) = &self.state {
                self.ports.bus.publish(&inbox_topic(context.workspace_id), event.clone());
            }
        }
        self.ports.bus.publish(self.id.as_str(), event);
    }

    /// Cuts off the reply in progress (an agent took over): its stream is dropped, and what it
    /// had said is stored marked `interrupted`, answering whoever waited for it.
    fn interrupt_turn(&mut self, ctx: &mut actix::Context<Self>) {
        self.queued_turns.clear();
        let Some(turn) = self.turn.take() else { return };
        turn.abort.abort();
        let Ok(context) = self.ready() else { return };
        if turn.text.trim().is_empty() {
            return;
        }
        let mut metadata = turn.metadata.unwrap_or_else(|| serde_json::json!({}));
        if let Some(object) = metadata.as_object_mut() {
            object.insert("interrupted".into(), true.into());
        }
        let new = NewMessage {
            workspace_id: context.workspace_id,
            conversation_id: self.id.clone(),
            seq: context.next_seq,
            sender: Sender::Bot,
            agent_id: None,
            content: turn.text,
            media: None,
            client_msg_id: None,
            reply_to: Some(turn.question.id),
            created_at: self.ports.clock.now_ms(),
            metadata: Some(metadata),
            fence: self.fence,
        };
        let store = self.ports.store.clone();
        let question_id = turn.question.id;
        let also = turn.also;
        ctx.wait(async move { store.append(new).await }.into_actor(self).map(move |stored, act, ctx| match stored {
            Ok(Appended::Inserted(message)) | Ok(Appended::Duplicate(message)) => {
                act.remember(message.clone());
                act.reply_to_waiters(question_id, &message);
                for id in also {
                    act.reply_to_waiters(id, &message);
                }
                act.publish(ConversationEvent::Done { message });
            }
            Err(err) => {
                tracing::error!(error = %err, "interrupted reply could not be stored");
                act.write_failed(err, ctx);
            }
        }));
    }

    /// Applies a conditional ownership change through the store, then to this session: the
    /// new owner is announced, and a takeover cuts off the bot.
    fn change_owner(&mut self, change: OwnershipChange) -> AtomicResponse<Self, Result<(), SessionError>> {
        self.last_activity = Instant::now();
        let store = self.ports.store.clone();
        let (to, agent, actor, reason, at) =
            (change.to, change.agent.clone(), change.actor, change.reason.clone(), change.at);
        let wanted_agent = agent.as_ref().map(|a| a.id);
        // Asking again for what already holds is not a conflict.
        let idempotent = move |owner: Owner, current: &Option<AgentRef>| match to {
            Owner::Queued => owner == Owner::Queued,
            Owner::Agent => owner == Owner::Agent && current.as_ref().map(|a| a.id) == wanted_agent,
            Owner::Bot => false,
        };
        AtomicResponse::new(Box::pin(async move { store.change_owner(change).await }.into_actor(self).map(
            move |outcome, act, ctx| {
                match outcome.map_err(|err| act.write_failed(err, ctx))? {
                    OwnershipOutcome::Changed { previous, previous_agent } => {
                        if let State::Ready(context) = &mut act.state {
                            context.owner = to;
                            context.agent = if to == Owner::Agent { agent.clone() } else { None };
                        }
                        act.publish(ConversationEvent::OwnerChanged {
                            conversation_id: act.id.clone(),
                            owner: to,
                            previous,
                            agent: agent.clone(),
                            previous_agent,
                            actor,
                            reason,
                            at,
                        });
                        if to == Owner::Agent {
                            act.interrupt_turn(ctx);
                        } else {
                            act.start_next_turn(ctx);
                        }
                        Ok(())
                    }
                    OwnershipOutcome::Refused { closed: true, .. } => Err(SessionError::Closed),
                    OwnershipOutcome::Refused { owner, agent: current, .. } if idempotent(owner, &current) => Ok(()),
                    OwnershipOutcome::Refused { owner, agent: current, .. } => {
                        // Keep this session's copy in step with what the store says.
                        if let State::Ready(context) = &mut act.state {
                            context.owner = owner;
                            context.agent = current.clone();
                        }
                        Err(SessionError::Conflict(match (owner, current) {
                            (Owner::Agent, Some(agent)) => {
                                format!("conversation is already taken over by {} (agent {})", agent.name, agent.id)
                            }
                            (owner, _) => format!("conversation is owned by {}", owner.as_str()),
                        }))
                    }
                }
            },
        )))
    }

    /// The visitor's last message, when the bot owes it a reply that never came: a session
    /// rehydrated soon after its question (within the idle timeout, so not a conversation
    /// simply left alone) whose previous session died mid-turn, on this node or a failed one.
    fn orphaned_question(&self) -> Option<StoredMessage> {
        let context = self.open().ok()?;
        let last = context.recent.back()?;
        let recent = self.ports.clock.now_ms() - last.created_at < self.config.idle_timeout.as_millis() as i64;
        (context.owner == Owner::Bot && last.sender == Sender::Visitor && recent).then(|| last.clone())
    }

    /// Queues a turn for `question`, or, with `max_queued_turns` already waiting, makes it the
    /// question of the last waiting turn, which then answers both.
    fn queue_turn(&mut self, question: StoredMessage, context: Option<serde_json::Value>) {
        if self.queued_turns.len() >= self.config.max_queued_turns.max(1) {
            if let Some(last) = self.queued_turns.back_mut() {
                let earlier = std::mem::replace(&mut last.question, question);
                last.also.push(earlier.id);
                if context.is_some() {
                    last.context = context;
                }
                COALESCED_TURNS.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(waiting = self.queued_turns.len(), "turn cap reached: message answered with the next");
                return;
            }
        }
        self.queued_turns.push_back(QueuedTurn { question, context, also: Vec::new() });
    }

    fn reply_to_waiters(&mut self, question_id: i64, reply: &StoredMessage) {
        for waiter in self.reply_waiters.remove(&question_id).unwrap_or_default() {
            let _ = waiter.send(reply.clone());
        }
    }
}

impl Actor for ConversationSession {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let store = self.ports.store.clone();
        let id = self.id.clone();
        let window = self.config.context_window;
        // The mailbox waits until the conversation is loaded: no message sees a half-built state.
        ctx.wait(async move { store.load(&id).await }.into_actor(self).map(move |loaded, act, ctx| {
            act.state = match loaded {
                Ok(Some(snapshot)) => State::Ready(Box::new(context_from(snapshot, window))),
                Ok(None) => State::Missing,
                Err(err) => State::Failed(err.to_string()),
            };
            if let Some(question) = act.orphaned_question() {
                tracing::info!(seq = question.seq, "answering a question whose reply was cut off");
                act.queued_turns.push_back(QueuedTurn { question, context: None, also: Vec::new() });
                act.start_next_turn(ctx);
            }
            if !matches!(act.state, State::Ready(_)) {
                // Answer what is already queued, then make room for a fresh attempt.
                ctx.run_later(Duration::from_millis(50), |_, ctx| ctx.stop());
            }
        }));
        let tick = (self.config.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(15));
        ctx.run_interval(tick, |act, ctx| {
            if act.idle() && act.last_activity.elapsed() >= act.config.idle_timeout {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        self.registration.release(&self.id, &ctx.address());
    }
}

fn context_from(snapshot: ConversationSnapshot, window: usize) -> Context {
    let mut recent: VecDeque<StoredMessage> = snapshot.recent.into();
    while recent.len() > window.max(1) {
        recent.pop_front();
    }
    Context {
        workspace_id: snapshot.workspace_id,
        bot_id: snapshot.bot_id,
        channel: snapshot.channel,
        status: snapshot.status,
        owner: snapshot.owner,
        agent: snapshot.agent,
        variables: snapshot.variables,
        next_seq: snapshot.last_seq + 1,
        recent,
    }
}

impl Handler<VisitorMessage> for ConversationSession {
    type Result = AtomicResponse<Self, Result<Posted, SessionError>>;

    fn handle(&mut self, msg: VisitorMessage, _ctx: &mut Self::Context) -> Self::Result {
        let _entered = self.span.clone().entered();
        self.last_activity = Instant::now();
        let now = self.ports.clock.now_ms();
        let id = self.id.clone();
        let request_context = msg.context;
        let new = match self.open() {
            Ok(context) => NewMessage {
                workspace_id: context.workspace_id,
                conversation_id: id,
                seq: context.next_seq,
                sender: Sender::Visitor,
                agent_id: None,
                content: msg.text,
                media: msg.media,
                client_msg_id: Some(msg.client_msg_id),
                reply_to: None,
                created_at: now,
                metadata: None,
                fence: self.fence,
            },
            Err(err) => return AtomicResponse::new(Box::pin(actix::fut::ready(Err(err)))),
        };
        let store = self.ports.store.clone();
        let workspace_id = new.workspace_id;
        // Atomic: no other message of this conversation runs until this one is durable.
        AtomicResponse::new(Box::pin(
            async move {
                match store.append(new).await {
                    Ok(Appended::Duplicate(original)) => {
                        let reply = store.find_reply(workspace_id, &original.conversation_id, original.id).await;
                        Ok((Appended::Duplicate(original), reply.ok().flatten()))
                    }
                    other => other.map(|appended| (appended, None)),
                }
            }
            .into_actor(self)
            .map(|stored, act, ctx| match stored {
                Ok((Appended::Inserted(message), _)) => {
                    act.remember(message.clone());
                    act.publish(ConversationEvent::Message { message: message.clone() });
                    // With an agent in charge, the agent's next message is the reply.
                    let reply = act.wait_for_reply(message.id);
                    act.queue_turn(message.clone(), request_context);
                    act.start_next_turn(ctx);
                    Ok(Posted { message, duplicate: false, reply })
                }
                Ok((Appended::Duplicate(message), stored_reply)) => {
                    let reply = match stored_reply {
                        Some(answer) => {
                            let (tx, rx) = oneshot::channel();
                            let _ = tx.send(answer);
                            rx
                        }
                        // Still being answered (or never will be): wait like the first sender.
                        None => act.wait_for_reply(message.id),
                    };
                    Ok(Posted { message, duplicate: true, reply })
                }
                Err(err) => Err(act.write_failed(err, ctx)),
            }),
        ))
    }
}

fn session_error(err: StoreError) -> SessionError {
    match err {
        StoreError::Unavailable(why) => SessionError::Unavailable(why),
        StoreError::Other(why) => SessionError::Failed(why),
        StoreError::Fenced(_) => SessionError::Moved,
    }
}

impl Handler<TurnChunk> for ConversationSession {
    type Result = ();

    fn handle(&mut self, msg: TurnChunk, _ctx: &mut Self::Context) {
        let Some(turn) = self.turn.as_mut().filter(|turn| turn.id == msg.turn) else { return };
        turn.text.push_str(&msg.text);
        let reply_to = Some(turn.question.id);
        self.publish(ConversationEvent::Delta { conversation_id: self.id.clone(), reply_to, text: msg.text });
    }
}

impl Handler<TurnVariables> for ConversationSession {
    type Result = AtomicResponse<Self, Result<serde_json::Value, SessionError>>;

    fn handle(&mut self, msg: TurnVariables, _ctx: &mut Self::Context) -> Self::Result {
        if self.turn.as_ref().is_none_or(|turn| turn.id != msg.turn) {
            let over = SessionError::Conflict("the turn that asked for this change is over".into());
            return AtomicResponse::new(Box::pin(actix::fut::ready(Err(over))));
        }
        self.merge_variables(msg.patch)
    }
}

impl Handler<TurnMetadata> for ConversationSession {
    type Result = ();

    fn handle(&mut self, msg: TurnMetadata, _ctx: &mut Self::Context) {
        if let Some(turn) = self.turn.as_mut().filter(|turn| turn.id == msg.turn) {
            turn.metadata = Some(msg.metadata);
        }
    }
}

impl Handler<TurnHandoff> for ConversationSession {
    type Result = ();

    fn handle(&mut self, msg: TurnHandoff, _ctx: &mut Self::Context) {
        if let Some(turn) = self.turn.as_mut().filter(|turn| turn.id == msg.turn) {
            turn.handoff = Some((msg.actor, msg.reason));
        }
    }
}

impl Handler<TurnFinished> for ConversationSession {
    type Result = ();

    fn handle(&mut self, msg: TurnFinished, ctx: &mut Self::Context) {
        let _entered = self.span.clone().entered();
        let Some(turn) = self.turn.take_if(|turn| turn.id == msg.turn) else { return };
        self.last_activity = Instant::now();
        let mut text = turn.text;
        if text.trim().is_empty() {
            if !msg.failed {
                // The brain chose silence: nothing to store, nobody to wait for.
                self.reply_waiters.remove(&turn.question.id);
                for id in &turn.also {
                    self.reply_waiters.remove(id);
                }
                self.start_next_turn(ctx);
                return;
            }
            text = self.config.brain_failure_reply.clone();
        }
        let Ok(context) = self.ready() else { return };
        let new = NewMessage {
            workspace_id: context.workspace_id,
            conversation_id: self.id.clone(),
            seq: context.next_seq,
            sender: Sender::Bot,
            agent_id: None,
            content: text,
            media: None,
            client_msg_id: None,
            reply_to: Some(turn.question.id),
            created_at: self.ports.clock.now_ms(),
            metadata: turn.metadata,
            fence: self.fence,
        };
        let store = self.ports.store.clone();
        let question_id = turn.question.id;
        let (handoff, also) = (turn.handoff, turn.also);
        ctx.wait(async move { store.append(new).await }.into_actor(self).map(move |stored, act, ctx| {
            match stored {
                Ok(Appended::Inserted(message)) | Ok(Appended::Duplicate(message)) => {
                    act.remember(message.clone());
                    act.reply_to_waiters(question_id, &message);
                    for id in &also {
                        act.reply_to_waiters(*id, &message);
                    }
                    act.publish(ConversationEvent::Done { message });
                }
                Err(err) => {
                    tracing::error!(conversation_id = %act.id, error = %err, "bot reply could not be stored");
                    act.reply_waiters.remove(&question_id);
                    for id in &also {
                        act.reply_waiters.remove(id);
                    }
                    act.write_failed(err, ctx);
                }
            }
            match handoff {
                // The reply told the visitor a person is asked for; now ask, through the mailbox
                // like any other request, so it is ordered after this reply.
                Some((actor, reason)) => {
                    ctx.address().do_send(RequestHandoff { actor, reason: Some(reason) });
                    act.start_next_turn(ctx);
                }
                None => act.start_next_turn(ctx),
            }
        }));
    }
}

impl Handler<VisitorTyping> for ConversationSession {
    type Result = Result<(), SessionError>;

    fn handle(&mut self, msg: VisitorTyping, _ctx: &mut Self::Context) -> Self::Result {
        self.open()?;
        self.last_activity = Instant::now();
        self.publish(ConversationEvent::Typing {
            conversation_id: self.id.clone(),
            sender: Sender::Visitor,
            on: msg.on,
        });
        Ok(())
    }
}

impl Handler<CloseConversation> for ConversationSession {
    type Result = AtomicResponse<Self, Result<(), SessionError>>;

    fn handle(&mut self, _msg: CloseConversation, _ctx: &mut Self::Context) -> Self::Result {
        self.last_activity = Instant::now();
        let workspace_id = match self.ready() {
            Ok(context) if context.status == ConversationStatus::Closed => {
                return AtomicResponse::new(Box::pin(actix::fut::ready(Ok(()))));
            }
            Ok(context) => context.workspace_id,
            Err(err) => return AtomicResponse::new(Box::pin(actix::fut::ready(Err(err)))),
        };
        let store = self.ports.store.clone();
        let id = self.id.clone();
        let now = self.ports.clock.now_ms();
        let fence = self.fence;
        AtomicResponse::new(Box::pin(
            async move { store.close(workspace_id, &id, now, fence).await }.into_actor(self).map(|closed, act, ctx| {
                closed.map_err(|err| act.write_failed(err, ctx))?;
                if let State::Ready(context) = &mut act.state {
                    context.status = ConversationStatus::Closed;
                }
                // A reply still streaming is dropped: nothing is said in a closed conversation.
                act.queued_turns.clear();
                act.reply_waiters.clear();
                if let Some(turn) = act.turn.take() {
                    turn.abort.abort();
                }
                act.publish(ConversationEvent::Closed { conversation_id: act.id.clone() });
                Ok(())
            }),
        ))
    }
}

impl ConversationSession {
    /// Asks the store to move the open conversation from one of `from` to `to`.
    #[allow(clippy::too_many_arguments)]
    fn move_to(
        &mut self,
        from: Vec<Owner>,
        to: Owner,
        agent: Option<AgentRef>,
        actor: ChangedBy,
        reason: Option<String>,
        silent_before: Option<i64>,
    ) -> AtomicResponse<Self, Result<(), SessionError>> {
        let workspace_id = match self.open() {
            Ok(context) => context.workspace_id,
            Err(err) => return AtomicResponse::new(Box::pin(actix::fut::ready(Err(err)))),
        };
        let at = self.ports.clock.now_ms();
        let conversation_id = self.id.clone();
        self.change_owner(OwnershipChange {
            workspace_id,
            conversation_id,
            from,
            to,
            agent,
            actor,
            reason,
            silent_before,
            at,
            fence: self.fence,
        })
    }
}

impl Handler<RequestHandoff> for ConversationSession {
    type Result = AtomicResponse<Self, Result<(), SessionError>>;

    fn handle(&mut self, msg: RequestHandoff, _ctx: &mut Self::Context) -> Self::Result {
        self.move_to(vec![Owner::Bot], Owner::Queued, None, msg.actor, msg.reason, None)
    }
}

impl Handler<TakeOver> for ConversationSession {
    type Result = AtomicResponse<Self, Result<(), SessionError>>;

    fn handle(&mut self, msg: TakeOver, _ctx: &mut Self::Context) -> Self::Result {
        self.move_to(vec![Owner::Bot, Owner::Queued], Owner::Agent, Some(msg.agent), msg.actor, None, None)
    }
}

impl Handler<HandBack> for ConversationSession {
    type Result = AtomicResponse<Self, Result<(), SessionError>>;

    fn handle(&mut self, msg: HandBack, _ctx: &mut Self::Context) -> Self::Result {
        // The silence rule applies only to an agent's conversation, not to one still queued.
        let from = if msg.silent_before.is_some() { vec![Owner::Agent] } else { vec![Owner::Agent, Owner::Queued] };
        self.move_to(from, Owner::Bot, msg.agent, msg.actor, msg.reason, msg.silent_before)
    }
}

impl ConversationSession {
    /// The context, if `agent` owns the conversation; a clear conflict otherwise.
    fn owned_by(&self, agent: &AgentRef) -> Result<&Context, SessionError> {
        let context = self.open()?;
        match (&context.owner, &context.agent) {
            (Owner::Agent, Some(owner)) if owner.id == agent.id => Ok(context),
            (Owner::Agent, Some(owner)) => Err(SessionError::Conflict(format!(
                "conversation is taken over by {} (agent {}); only they can write in it",
                owner.name, owner.id
            ))),
            _ => Err(SessionError::Conflict("take the conversation over before writing in it".into())),
        }
    }
}

impl Handler<AgentMessage> for ConversationSession {
    type Result = AtomicResponse<Self, Result<(StoredMessage, bool), SessionError>>;

    fn handle(&mut self, msg: AgentMessage, _ctx: &mut Self::Context) -> Self::Result {
        let _entered = self.span.clone().entered();
        self.last_activity = Instant::now();
        let now = self.ports.clock.now_ms();
        let new = match self.owned_by(&msg.agent) {
            Ok(context) => NewMessage {
                workspace_id: context.workspace_id,
                conversation_id: self.id.clone(),
                seq: context.next_seq,
                sender: Sender::Agent,
                agent_id: Some(msg.agent.id),
                content: msg.text,
                media: msg.media,
                client_msg_id: Some(msg.client_msg_id),
                reply_to: None,
                created_at: now,
                metadata: Some(serde_json::json!({ "agent": msg.agent })),
                fence: self.fence,
            },
            Err(err) => return AtomicResponse::new(Box::pin(actix::fut::ready(Err(err)))),
        };
        let store = self.ports.store.clone();
        let (workspace_id, id) = (new.workspace_id, self.id.clone());
        AtomicResponse::new(Box::pin(
            async move {
                let appended = store.append(new).await?;
                if let Err(err) = store.agent_active(workspace_id, &id, now).await {
                    tracing::warn!(error = %err, "agent activity not recorded");
                }
                Ok(appended)
            }
            .into_actor(self)
            .map(|stored, act, ctx| match stored.map_err(|err| act.write_failed(err, ctx))? {
                Appended::Inserted(message) => {
                    act.remember(message.clone());
                    act.publish(ConversationEvent::Message { message: message.clone() });
                    // Whoever waited for an answer to the visitor's messages has it now.
                    for (_, waiters) in act.reply_waiters.drain() {
                        for waiter in waiters {
                            let _ = waiter.send(message.clone());
                        }
                    }
                    Ok((message, false))
                }
                Appended::Duplicate(message) => Ok((message, true)),
            }),
        ))
    }
}

impl Handler<AgentTyping> for ConversationSession {
    type Result = Result<(), SessionError>;

    fn handle(&mut self, msg: AgentTyping, ctx: &mut Self::Context) -> Self::Result {
        let workspace_id = self.owned_by(&msg.agent)?.workspace_id;
        self.last_activity = Instant::now();
        self.publish(ConversationEvent::Typing { conversation_id: self.id.clone(), sender: Sender::Agent, on: msg.on });
        let (store, id, now) = (self.ports.store.clone(), self.id.clone(), self.ports.clock.now_ms());
        ctx.spawn(
            async move {
                if let Err(err) = store.agent_active(workspace_id, &id, now).await {
                    tracing::warn!(error = %err, "agent activity not recorded");
                }
            }
            .into_actor(self),
        );
        Ok(())
    }
}

impl Handler<MarkRead> for ConversationSession {
    type Result = AtomicResponse<Self, Result<i64, SessionError>>;

    fn handle(&mut self, msg: MarkRead, _ctx: &mut Self::Context) -> Self::Result {
        let (workspace_id, last) = match self.ready() {
            Ok(context) => (context.workspace_id, context.next_seq - 1),
            Err(err) => return AtomicResponse::new(Box::pin(actix::fut::ready(Err(err)))),
        };
        // Reading past the end reads everything there is.
        let seq = msg.seq.clamp(0, last);
        let (store, id, now, reader) =
            (self.ports.store.clone(), self.id.clone(), self.ports.clock.now_ms(), msg.reader);
        AtomicResponse::new(Box::pin(
            async move { store.mark_read(workspace_id, &id, reader, seq, now).await }.into_actor(self).map(
                move |done, act, _ctx| {
                    done.map_err(session_error)?;
                    act.publish(ConversationEvent::Read { conversation_id: act.id.clone(), reader, seq });
                    Ok(seq)
                },
            ),
        ))
    }
}

impl Handler<UpdateVariables> for ConversationSession {
    type Result = AtomicResponse<Self, Result<serde_json::Value, SessionError>>;

    fn handle(&mut self, msg: UpdateVariables, _ctx: &mut Self::Context) -> Self::Result {
        self.last_activity = Instant::now();
        self.merge_variables(msg.patch)
    }
}

impl ConversationSession {
    /// The one write of the conversation's variables, for the API, agents and brains alike:
    /// merged with this session's fencing token while the mailbox waits, so writes land in the
    /// order they were asked and a session that lost the conversation writes nothing.
    fn merge_variables(
        &mut self,
        patch: serde_json::Value,
    ) -> AtomicResponse<Self, Result<serde_json::Value, SessionError>> {
        let workspace_id = match self.ready() {
            Ok(context) => context.workspace_id,
            Err(err) => return AtomicResponse::new(Box::pin(actix::fut::ready(Err(err)))),
        };
        let (store, id, fence) = (self.ports.store.clone(), self.id.clone(), self.fence);
        AtomicResponse::new(Box::pin(
            async move { store.merge_variables(workspace_id, &id, patch, fence).await }.into_actor(self).map(
                |merged, act, ctx| {
                    let merged = merged.map_err(|err| act.write_failed(err, ctx))?;
                    if let State::Ready(context) = &mut act.state {
                        context.variables = merged.clone();
                    }
                    Ok(merged)
                },
            ),
        ))
    }
}

impl Handler<Drain> for ConversationSession {
    type Result = ();

    fn handle(&mut self, _msg: Drain, ctx: &mut Self::Context) {
        self.draining = true;
        if self.idle() {
            ctx.stop();
        }
    }
}
