//! `GET /ws/agent`: an agent's live inbox, one `AgentSocket` actor per connection.
//!
//! The agent signs in with their token (`?token=fda_…`, or `Authorization: Bearer`); the socket
//! marks them online while it is open (and offline when their last socket closes), sends an
//! `inbox` snapshot of the workspace's open conversations, then every change an inbox shows:
//! new conversations (`conversation`), stored messages, owner changes, closings. Subscribing to
//! a conversation sends its `history` and then all its live events, the bot's streamed deltas,
//! typing and read receipts included.
//!
//! Client frames (JSON, each with a `type`; an optional `ref` is echoed in the answer):
//! `subscribe` {conversation_id, last_seq?}, `unsubscribe` {conversation_id}, `take_over`,
//! `hand_back` {reason?}, `close`, `send` {text, client_msg_id?, media?}, `typing` {on},
//! `read` {seq?} (each with `conversation_id`), `presence` {presence: online|away}, `ping`.
//! Server frames: `inbox`, `conversation`, `history`, `ack`, `error`, `pong`, and the events
//! (`message`, `delta`, `done`, `typing`, `read`, `owner_changed`, `closed`) as the bus carries
//! them, each naming its conversation.
//!
//! Deleting the agent or replacing their token closes the socket with code 4001 ("credential
//! revoked") on whichever node it is open ([`crate::transport::revocation`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use frontdesk_actors::{inbox_topic, AgentRef, ChangedBy, ConversationEvent, Sender};
use serde::Deserialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt as _;

use crate::domain::chat::Chat;
use crate::domain::inbox::{self, InboxItem};
use crate::domain::presence::AgentSockets;
use crate::domain::replay::{self, Live, ReplayCursor};
use crate::domain::{access, agents};
use crate::error::ApiError;
use crate::ids::{ConversationId, WorkspaceId};
use crate::status::Presence;
use crate::transport::revocation::{self, Credential, Revocations, WatchGuard};
use crate::transport::ws::protocol::{refuse_version, AgentFrame, AGENT_PROTOCOL, UNSUPPORTED_PROTOCOL};

/// Open conversations in the first snapshot; older ones are a REST page away.
const SNAPSHOT_SIZE: usize = 500;

#[derive(Debug, Deserialize)]
struct ClientFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "ref")]
    reference: Option<serde_json::Value>,
    conversation_id: Option<ConversationId>,
    last_seq: Option<i64>,
    text: Option<String>,
    client_msg_id: Option<String>,
    media: Option<serde_json::Value>,
    on: Option<bool>,
    seq: Option<i64>,
    reason: Option<String>,
    presence: Option<String>,
}

/// Where a bus event came from: the workspace's inbox, or a conversation subscribed to.
#[derive(Debug, Clone)]
enum Source {
    Inbox,
    Conversation(ConversationId),
}

type BusItem = (Source, Result<Arc<ConversationEvent>, BroadcastStreamRecvError>);

struct Subscription {
    stream: SpawnHandle,
    cursor: ReplayCursor,
    /// The page of history being read, while a catch-up runs.
    replay: Option<SpawnHandle>,
}

pub struct AgentSocket {
    chat: web::Data<Chat>,
    sockets: web::Data<AgentSockets>,
    agent: AgentRef,
    workspace_id: WorkspaceId,
    /// Conversations this socket has told the agent about.
    known: HashSet<ConversationId>,
    subscriptions: HashMap<ConversationId, Subscription>,
    heard_from: Instant,
    /// Resolves when the agent is deleted or their token replaced (taken in `started`).
    revoked: Option<tokio::sync::oneshot::Receiver<()>>,
    _watch: WatchGuard,
}

pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    chat: web::Data<Chat>,
    sockets: web::Data<AgentSockets>,
    revocations: web::Data<Revocations>,
) -> actix_web::Result<HttpResponse> {
    let from_query = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned());
    let protocol = form_urlencoded::parse(req.query_string().as_bytes()).find(|(name, _)| name == "protocol");
    if let Some((_, asked)) = protocol {
        let refused = match asked.parse::<u32>() {
            Ok(asked) => refuse_version(Some(asked), AGENT_PROTOCOL),
            Err(_) => Some(format!("invalid query parameter `protocol`: `{asked}` is not a version number")),
        };
        if let Some(refused) = refused {
            return Err(ApiError::bad_request(refused).with("code", serde_json::json!(UNSUPPORTED_PROTOCOL)).into());
        }
    }
    let session = req.cookie(crate::transport::http::console_auth::COOKIE).map(|cookie| cookie.value().to_owned());
    let (agent, credential, token_hash) = match (from_query, session) {
        (None, Some(secret)) if !req.headers().contains_key(actix_web::http::header::AUTHORIZATION) => {
            // A browser sends the cookie to any page's socket: only the console's own origin
            // may use it (a socket has no CSRF token).
            if !same_origin(&req) {
                return Err(ApiError::forbidden(
                    "the console's session opens sockets from the console's own pages only",
                )
                .into());
            }
            let signed_in = crate::transport::http::console_auth::signed_in(&chat, secret).await?;
            (signed_in.agent, Credential::Session(signed_in.session_id), None)
        }
        (from_query, _) => {
            let token = match from_query {
                Some(token) => token,
                None => crate::transport::http::auth::bearer(&req)?,
            };
            let token_hash = crate::secrets::hash(&token);
            let agent = access::agent_token(&chat.db, token).await.map_err(ApiError::from)?.ok_or_else(|| {
                ApiError::unauthorized("invalid agent token: send ?token=fda_… or Authorization: Bearer")
            })?;
            let credential = Credential::Agent(agent.id);
            (agent, credential, Some(token_hash))
        }
    };
    // The same quota as the agent's REST requests.
    crate::transport::http::auth::count_key(&req, -agent.id, None).await?;
    let max_frame = chat.limits.max_frame_bytes;
    let revocations = revocations.into_inner();
    let watch = match credential {
        Credential::Session(session_id) => revocations.watch_session(session_id, agent.id),
        _ => revocations.watch(credential, token_hash),
    };
    let socket = AgentSocket {
        chat,
        sockets,
        agent: agent.as_ref(),
        workspace_id: agent.workspace_id,
        known: HashSet::new(),
        subscriptions: HashMap::new(),
        heard_from: Instant::now(),
        revoked: Some(watch.revoked),
        _watch: watch.guard,
    };
    ws::WsResponseBuilder::new(socket, &req, stream).frame_size(max_frame).start()
}

/// Whether the request's `Origin` is this server as the browser reached it.
fn same_origin(req: &HttpRequest) -> bool {
    let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return false;
    };
    let host = req.connection_info().host().to_owned();
    origin.split_once("://").is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(&host))
}

impl Actor for AgentSocket {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::keep_alive(ctx, |act| act.heard_from, self.chat.shutdown.clone());
        if let Some(revoked) = self.revoked.take() {
            ctx.spawn(actix::fut::wrap_future::<_, Self>(revoked).map(|revoked, _act, ctx| {
                if revoked.is_ok() {
                    close_revoked(ctx);
                }
            }));
        }
        self.sockets.clone().into_inner().opened(self.agent.id);
        // Subscribed before the snapshot is read, so nothing falls between the two.
        let events = self.chat.bus.subscribe(&inbox_topic(self.workspace_id.get()));
        ctx.add_stream(BroadcastStream::new(events).map(|item| (Source::Inbox, item)));
        let (chat, workspace_id, id) = (self.chat.clone(), self.workspace_id, self.agent.id);
        // Online before the snapshot goes out: whoever sees the agent's inbox sees them in.
        let snapshot = async move {
            // Deleted between signing in and here (`None`): the revocation may have missed this
            // socket, which was not watching yet.
            inbox::sign_on(&chat.db, workspace_id, id, SNAPSHOT_SIZE).await
        };
        ctx.wait(snapshot.into_actor(self).map(|loaded, act, ctx| match loaded {
            Ok(None) => close_revoked(ctx),
            Ok(Some(items)) => {
                act.known.extend(items.iter().map(|item| item.conversation.id.clone()));
                send(ctx, &AgentFrame::Inbox { protocol: AGENT_PROTOCOL, agent: &act.agent, conversations: &items });
            }
            Err(err) => error(ctx, None, &format!("inbox unavailable: {err}")),
        }));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        let (db, sockets, workspace_id, id) =
            (self.chat.db.clone(), self.sockets.clone(), self.workspace_id, self.agent.id);
        actix::spawn(async move {
            if !sockets.closed(id).await {
                return;
            }
            if let Err(err) = agents::set_presence(&db, workspace_id, id, Presence::Offline).await {
                tracing::warn!(error = %err, "agent presence not set offline");
            }
        });
    }
}

/// Ends the socket of an agent who was deleted or whose token was replaced: with close code
/// 4001 it stops receiving the workspace's events at once.
fn close_revoked(ctx: &mut ws::WebsocketContext<AgentSocket>) {
    ctx.close(Some(ws::CloseReason {
        code: ws::CloseCode::Other(revocation::CLOSE_CODE),
        description: Some(revocation::CLOSE_REASON.into()),
    }));
    ctx.stop();
}

/// A frame of the agent socket's contract ([`AgentFrame`]).
type Frame<'a> = AgentFrame<'a, AgentRef, InboxItem>;

fn send(ctx: &mut ws::WebsocketContext<AgentSocket>, frame: &Frame<'_>) {
    match serde_json::to_string(frame) {
        Ok(text) => ctx.text(text),
        Err(err) => tracing::error!(error = %err, "an agent frame did not serialise"),
    }
}

fn error(ctx: &mut ws::WebsocketContext<AgentSocket>, reference: Option<serde_json::Value>, text: &str) {
    send(ctx, &AgentFrame::Error { reference: reference.as_ref(), error: text, code: None });
}

fn ack(ctx: &mut ws::WebsocketContext<AgentSocket>, reference: Option<serde_json::Value>, fields: serde_json::Value) {
    let result = match fields {
        serde_json::Value::Object(fields) => fields,
        _ => serde_json::Map::new(),
    };
    send(ctx, &AgentFrame::Ack { reference: reference.as_ref(), result });
}

fn conversation_of(event: &ConversationEvent) -> &ConversationId {
    match event {
        ConversationEvent::Message { message } | ConversationEvent::Done { message } => &message.conversation_id,
        ConversationEvent::Delta { conversation_id, .. }
        | ConversationEvent::Typing { conversation_id, .. }
        | ConversationEvent::Closed { conversation_id }
        | ConversationEvent::OwnerChanged { conversation_id, .. }
        | ConversationEvent::Read { conversation_id, .. } => conversation_id,
    }
}

impl AgentSocket {
    fn set_presence(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        presence: Presence,
        reference: Option<serde_json::Value>,
    ) {
        let (db, workspace_id, id) = (self.chat.db.clone(), self.workspace_id, self.agent.id);
        let update = async move { agents::set_presence(&db, workspace_id, id, presence).await };
        ctx.spawn(update.into_actor(self).map(move |done, _act, ctx| match done {
            Ok(Some(agent)) if reference.is_some() => {
                ack(ctx, reference, serde_json::json!({ "presence": agent.presence }))
            }
            Ok(_) => {}
            Err(err) => error(ctx, reference, &format!("presence not saved: {err}")),
        }));
    }

    /// Runs a conversation action for the agent and answers with `ack` or `error`.
    fn act<F, Fut, T>(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reference: Option<serde_json::Value>,
        id: ConversationId,
        action: F,
    ) where
        F: FnOnce(web::Data<Chat>, ConversationId, AgentRef) -> Fut + 'static,
        Fut: std::future::Future<Output = Result<T, ApiError>> + 'static,
        T: serde::Serialize + 'static,
    {
        let (chat, workspace_id) = (self.chat.clone(), self.workspace_id);
        let agent = self.agent.clone();
        let work = async move {
            // The conversation must be this workspace's: another's is "not found".
            let row = chat.conversation(workspace_id, &id).await?;
            action(chat, row.id, agent).await
        };
        ctx.spawn(work.into_actor(self).map(move |done, _act, ctx| match done {
            Ok(result) => ack(ctx, reference, serde_json::json!({ "result": result })),
            Err(err) => error(ctx, reference, err.message()),
        }));
    }

    fn subscribe(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reference: Option<serde_json::Value>,
        id: ConversationId,
        last_seq: i64,
    ) {
        if self.subscriptions.contains_key(&id) {
            return ack(ctx, reference, serde_json::json!({ "conversation_id": id }));
        }
        let (chat, workspace_id) = (self.chat.clone(), self.workspace_id);
        let load = async move {
            let row = chat.conversation(workspace_id, &id).await?;
            let events = chat.bus.subscribe(row.id.as_str());
            Ok::<_, ApiError>((row.id, events))
        };
        ctx.wait(load.into_actor(self).map(move |loaded, act, ctx| match loaded {
            Ok((id, events)) => {
                let source = Source::Conversation(id.clone());
                let stream = ctx.add_stream(BroadcastStream::new(events).map(move |item| (source.clone(), item)));
                act.subscriptions
                    .insert(id.clone(), Subscription { stream, cursor: ReplayCursor::after(last_seq), replay: None });
                act.known.insert(id.clone());
                ack(ctx, reference, serde_json::json!({ "conversation_id": id }));
                act.catch_up(ctx, id);
            }
            Err(err) => error(ctx, reference, err.message()),
        }));
    }

    /// Sends the subscribed conversation's stored messages after what this socket delivered, as
    /// `history` frames of a page each (`more` while a full page may be followed by another):
    /// each goes out before the next is read, and the socket keeps serving meanwhile. Live
    /// messages follow the rule of the widget's resume: the next in line is delivered at once,
    /// one further ahead makes the catch-up read on, so none is lost, repeated or reordered.
    fn catch_up(&mut self, ctx: &mut ws::WebsocketContext<Self>, id: ConversationId) {
        let Some(after) = self.subscriptions.get_mut(&id).and_then(|s| s.cursor.start_read()) else { return };
        self.history_page(ctx, id, after, true);
    }

    fn history_page(&mut self, ctx: &mut ws::WebsocketContext<Self>, id: ConversationId, after: i64, first: bool) {
        let (chat, workspace_id) = (self.chat.clone(), self.workspace_id);
        let read_id = id.clone();
        let key = id.clone();
        let read = async move { chat.history_after(workspace_id, &read_id, after, replay::PAGE).await };
        let handle = ctx.spawn(read.into_actor(self).map(move |read, act, ctx| {
            let Some(subscription) = act.subscriptions.get_mut(&id) else { return };
            subscription.replay = None;
            match read {
                Ok(page) => {
                    let page = subscription.cursor.page(page);
                    let after = subscription.cursor.last_seq();
                    if first || !page.messages.is_empty() {
                        let frame =
                            AgentFrame::History { conversation_id: &id, messages: &page.messages, more: page.full };
                        send(ctx, &frame);
                    }
                    if page.read_on {
                        act.history_page(ctx, id, after, false);
                    }
                }
                Err(err) => {
                    subscription.cursor.failed();
                    error(ctx, None, err.message());
                }
            }
        }));
        if let Some(subscription) = self.subscriptions.get_mut(&key) {
            subscription.replay = Some(handle);
        }
    }

    /// Tells the agent about a conversation it has not seen yet (it just started, or it is
    /// older than the snapshot), then the event.
    fn introduce_then(&mut self, ctx: &mut ws::WebsocketContext<Self>, event: Arc<ConversationEvent>) {
        let id = conversation_of(&event).clone();
        self.known.insert(id.clone());
        let (chat, workspace_id) = (self.chat.clone(), self.workspace_id);
        let load = async move {
            let row = chat.conversation(workspace_id, &id).await?;
            inbox::item(&chat.db, row).await
        };
        ctx.wait(load.into_actor(self).map(move |loaded, _act, ctx| {
            if let Ok(item) = loaded {
                send(ctx, &AgentFrame::Conversation { conversation: &item });
            }
            deliver(ctx, &event);
        }));
    }

    fn handle_frame(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: &str) {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(err) => return error(ctx, None, &format!("invalid frame: {err}")),
        };
        let reference = frame.reference.clone();
        if let Err(err) = crate::text::check_json(text.as_bytes()) {
            return error(ctx, reference, err.message());
        }
        if frame.kind == "ping" {
            return send(ctx, &AgentFrame::Pong { reference: reference.as_ref() });
        }
        if frame.kind == "presence" {
            return match frame.presence.as_deref() {
                Some("online") => self.set_presence(ctx, Presence::Online, reference),
                Some("away") => self.set_presence(ctx, Presence::Away, reference),
                _ => error(ctx, reference, "invalid field `presence`: online or away"),
            };
        }
        let Some(id) = frame.conversation_id.clone().filter(|id| !id.as_str().is_empty()) else {
            return error(ctx, reference, &format!("`{}` needs `conversation_id`", frame.kind));
        };
        match frame.kind.as_str() {
            "subscribe" => {
                let last_seq = frame.last_seq.unwrap_or(0).max(0);
                self.subscribe(ctx, reference, id, last_seq)
            }
            "unsubscribe" => {
                if let Some(subscription) = self.subscriptions.remove(&id) {
                    ctx.cancel_future(subscription.stream);
                    if let Some(replay) = subscription.replay {
                        ctx.cancel_future(replay);
                    }
                }
                ack(ctx, reference, serde_json::json!({ "conversation_id": id }))
            }
            "take_over" => self.act(ctx, reference, id, |chat, id, agent| async move {
                chat.take_over(&id, agent, ChangedBy::Agent).await
            }),
            "hand_back" => {
                let reason = frame.reason;
                self.act(ctx, reference, id, |chat, id, agent| async move {
                    chat.hand_back(&id, Some(agent), ChangedBy::Agent, reason).await
                })
            }
            "close" => self.act(ctx, reference, id, |chat, id, _agent| async move { chat.close(&id).await }),
            "send" => {
                let Some(text) = frame.text else { return error(ctx, reference, "`send` needs `text`") };
                let (client_msg_id, media) = (frame.client_msg_id, frame.media);
                self.act(ctx, reference, id, |chat, id, agent| async move {
                    let (message, duplicate) = chat.agent_says(&id, agent, client_msg_id, text, media).await?;
                    Ok(serde_json::json!({ "message": message, "duplicate": duplicate }))
                })
            }
            "typing" => {
                let Some(on) = frame.on else { return error(ctx, reference, "`typing` needs `on`") };
                self.act(
                    ctx,
                    reference,
                    id,
                    move |chat, id, agent| async move { chat.agent_typing(&id, agent, on).await },
                )
            }
            "read" => {
                let seq = frame.seq.unwrap_or(i64::MAX).max(0);
                self.act(ctx, reference, id, move |chat, id, _agent| async move {
                    chat.mark_read(&id, Sender::Agent, seq).await
                })
            }
            other => error(
                ctx,
                reference,
                &format!(
                    "unknown frame type `{other}`: expected subscribe, unsubscribe, take_over, hand_back, close, send, \
                     typing, read, presence or ping"
                ),
            ),
        }
    }
}

fn deliver(ctx: &mut ws::WebsocketContext<AgentSocket>, event: &ConversationEvent) {
    if let Ok(text) = serde_json::to_string(event) {
        ctx.text(text);
    }
}

impl StreamHandler<BusItem> for AgentSocket {
    fn handle(&mut self, (source, item): BusItem, ctx: &mut Self::Context) {
        match (source, item) {
            (Source::Inbox, Ok(event)) => {
                let id = conversation_of(&event);
                // A subscribed conversation's events come through its own stream.
                if self.subscriptions.contains_key(id) {
                    return;
                }
                if self.known.contains(id) {
                    deliver(ctx, &event);
                } else {
                    self.introduce_then(ctx, event);
                }
            }
            // Fell behind the inbox: tell the agent to reload it rather than guess.
            (Source::Inbox, Err(BroadcastStreamRecvError::Lagged(missed))) => {
                send(ctx, &AgentFrame::InboxStale { missed });
            }
            (Source::Conversation(id), Ok(event)) => {
                let Some(subscription) = self.subscriptions.get_mut(&id) else { return };
                match subscription.cursor.live(event.stored_message().map(|m| m.seq)) {
                    Live::Skip => {}
                    Live::CatchUp => self.catch_up(ctx, id),
                    Live::Deliver => deliver(ctx, &event),
                }
            }
            (Source::Conversation(id), Err(BroadcastStreamRecvError::Lagged(_))) => self.catch_up(ctx, id),
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {
        // A stream ended (unsubscribed, or the bus swept the channel); the socket stays up.
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for AgentSocket {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.heard_from = Instant::now();
        match item {
            Ok(ws::Message::Text(text)) => self.handle_frame(ctx, &text),
            Ok(ws::Message::Binary(_)) => error(ctx, None, "binary frames are not supported: send JSON text frames"),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Continuation(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(ws::ProtocolError::Overflow) => {
                error(ctx, None, "frame is larger than the server accepts");
                ctx.close(Some(ws::CloseReason {
                    code: ws::CloseCode::Size,
                    description: Some("frame too large".into()),
                }));
                ctx.stop();
            }
            Err(_) => ctx.stop(),
        }
    }
}
