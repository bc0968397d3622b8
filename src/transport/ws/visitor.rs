//! `GET /ws/widget`: the widget's socket, one `VisitorSocket` actor per connection.
//!
//! Protocol (JSON text frames, each with a `type`; see the README):
//! client → `hello` {bot_id, conversation_id?, last_seq?}, `message` {client_msg_id?, text,
//! media?}, `typing` {on}, `read` {seq}, `ping`; server → `ready`, `ack`, `message`, `delta`,
//! `done`, `typing` (an agent's), `read` (an agent read up to `seq`), `agent_joined` and
//! `agent_left` (with the agent's `id` and display `name`), `closed`, `error`, `pong`. A frame that cannot be read gets an `error` frame and the socket
//! stays open; a frame over the size limit closes it with 1009. The server pings every 15 s and
//! drops a socket silent for 45 s; a socket that has not joined a conversation with `hello`
//! within `FRONTDESK_HELLO_TIMEOUT_SECS` is closed with 1008.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use frontdesk_actors::{ConversationEvent, Owner, Sender};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use crate::domain::admission::{Coalescer, Offer, Refusal, SocketQuota, RATE_LIMITED};
use crate::domain::chat::{Chat, VisitorInput};
use crate::domain::replay::{self, Live, ReplayCursor};
use crate::error::{describe_json_error, ApiError};
use crate::ids::{ConversationId, WorkspaceId};
use crate::transport::ws::protocol::{refuse_version, WidgetFrame, UNSUPPORTED_PROTOCOL, WIDGET_PROTOCOL};

/// The `code` of an error frame refusing contact details.
const INVALID_CONTACT: &str = "invalid_contact";

/// What a client frame asks for. Parsed in two steps (the `type`, then that frame's fields)
/// so that an error can name the field at fault.
#[derive(Debug)]
enum ClientFrame {
    Hello(Hello),
    Message(MessageFrame),
    Typing(Typing),
    Read(Read),
    Contact(Contact),
    Ping,
}

/// The visitor's contact details (the widget's form, or the page's `identify`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Contact {
    #[serde(rename = "type", skip_serializing)]
    _type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Read {
    #[serde(rename = "type")]
    _type: String,
    seq: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Hello {
    #[serde(rename = "type")]
    _type: String,
    bot_id: String,
    conversation_id: Option<ConversationId>,
    last_seq: Option<i64>,
    /// The protocol version the client speaks; one the server does not is refused.
    protocol: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageFrame {
    #[serde(rename = "type")]
    _type: String,
    client_msg_id: Option<String>,
    text: String,
    media: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Typing {
    #[serde(rename = "type")]
    _type: String,
    on: bool,
}

impl ClientFrame {
    fn parse(text: &str) -> Result<ClientFrame, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|err| format!("malformed JSON frame: {}", strip_position(&err)))?;
        let kind = value.get("type").and_then(|t| t.as_str()).ok_or("invalid frame: missing string field `type`")?;
        fn fields<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
            serde_path_to_error::deserialize(value)
                .map_err(|err| describe_json_error(&err).replacen("body", "frame", 1))
        }
        let frame = match kind {
            "hello" => fields(value).map(ClientFrame::Hello),
            "message" => fields(value).map(ClientFrame::Message),
            "typing" => fields(value).map(ClientFrame::Typing),
            "read" => fields(value).map(ClientFrame::Read),
            "contact" => fields(value).map(ClientFrame::Contact),
            "ping" => Ok(ClientFrame::Ping),
            other => {
                Err(format!("unknown frame type `{other}`: expected hello, message, typing, read, contact or ping"))
            }
        }?;
        crate::text::check_json(text.as_bytes()).map_err(|err| err.message().to_owned())?;
        Ok(frame)
    }
}

fn strip_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    text.split(" at line ").next().unwrap_or(&text).to_owned()
}

struct Joined {
    conversation_id: ConversationId,
    workspace_id: WorkspaceId,
}

pub struct VisitorSocket {
    chat: web::Data<Chat>,
    origin: Option<String>,
    joined: Option<Joined>,
    joining: bool,
    /// The highest `seq` this socket has delivered; replays and live events continue from it.
    cursor: ReplayCursor,
    heard_from: Instant,
    /// Admission control: the client's address (its new conversations are counted against it),
    /// this socket's message quota, the refusals in a row (too many close the socket), and the
    /// typing and read frames held back to coalesce them.
    address: Option<IpAddr>,
    quota: Option<SocketQuota>,
    strikes: u32,
    typing: Coalescer<bool>,
    reads: Coalescer<i64>,
}

/// Why a hello did not join.
enum JoinError {
    Api(ApiError),
    Refused(Refusal),
}

impl From<ApiError> for JoinError {
    fn from(err: ApiError) -> Self {
        JoinError::Api(err)
    }
}

pub async fn connect(req: HttpRequest, stream: web::Payload, chat: web::Data<Chat>) -> actix_web::Result<HttpResponse> {
    let origin = req.headers().get("origin").and_then(|o| o.to_str().ok()).map(str::to_owned);
    let max_frame = chat.limits.max_frame_bytes;
    let address = chat.admission.client_address(&req);
    let quota = chat.admission.socket_quota();
    let interval = chat.admission.settings.typing_interval;
    let socket = VisitorSocket {
        chat,
        origin,
        joined: None,
        joining: false,
        cursor: ReplayCursor::default(),
        heard_from: Instant::now(),
        address,
        quota,
        strikes: 0,
        typing: Coalescer::new(interval),
        reads: Coalescer::new(interval),
    };
    ws::WsResponseBuilder::new(socket, &req, stream).frame_size(max_frame).start()
}

impl Actor for VisitorSocket {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::keep_alive(ctx, |act| act.heard_from, self.chat.shutdown.clone());
        // Pings and pongs keep a socket alive, so a client that never says hello would hold its
        // socket (and a worker's attention) for as long as it likes.
        let deadline = self.chat.limits.hello_timeout;
        ctx.run_later(deadline, move |act, ctx| {
            if act.joined.is_none() && !act.joining {
                let description = format!("no hello within {} s: send a hello frame first", deadline.as_secs());
                ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Policy, description: Some(description) }));
                ctx.stop();
            }
        });
    }
}

impl VisitorSocket {
    fn send(ctx: &mut ws::WebsocketContext<Self>, frame: &WidgetFrame<'_>) {
        if let Ok(text) = serde_json::to_string(frame) {
            ctx.text(text);
        }
    }

    fn error(ctx: &mut ws::WebsocketContext<Self>, error: &str, client_msg_id: Option<&str>) {
        Self::send(ctx, &WidgetFrame::Error { error, client_msg_id, code: None, retry_after: None });
    }

    /// Answers a refused frame with a `rate_limited` error; after `FRONTDESK_SOCKET_STRIKES`
    /// refusals in a row the client is not slowing down, and the socket is closed (1008).
    fn refuse(&mut self, ctx: &mut ws::WebsocketContext<Self>, refusal: &Refusal, client_msg_id: Option<&str>) {
        Self::send(
            ctx,
            &WidgetFrame::Error {
                error: &refusal.message,
                client_msg_id,
                code: Some(RATE_LIMITED),
                retry_after: Some(refusal.retry_after),
            },
        );
        self.strikes += 1;
        if self.strikes >= self.chat.admission.settings.socket_strikes {
            self.chat.admission.stats.sockets_closed.fetch_add(1, Ordering::Relaxed);
            ctx.close(Some(ws::CloseReason {
                code: ws::CloseCode::Policy,
                description: Some("too many refused frames: slow down".into()),
            }));
            ctx.stop();
        }
    }

    fn deliver(&mut self, ctx: &mut ws::WebsocketContext<Self>, event: &ConversationEvent) {
        if let Some(message) = event.stored_message() {
            self.cursor.delivered(message.seq);
        }
        match event {
            // What the visitor sees of a change of hands: a person joining or leaving.
            ConversationEvent::OwnerChanged { conversation_id, owner, previous, agent, previous_agent, .. } => {
                if *previous == Owner::Agent {
                    if let Some(left) = previous_agent {
                        Self::send(ctx, &WidgetFrame::AgentLeft { conversation_id, agent: left });
                    }
                }
                if let (Owner::Agent, Some(joined)) = (owner, agent) {
                    Self::send(ctx, &WidgetFrame::AgentJoined { conversation_id, agent: joined });
                }
            }
            // The visitor's own read receipts are not news to them.
            ConversationEvent::Read { reader: Sender::Visitor, .. } => {}
            other => {
                if let Ok(text) = serde_json::to_string(other) {
                    ctx.text(text);
                }
            }
        }
    }

    /// Sends every stored message the visitor does not have, from the database, a page at a
    /// time (each page goes out before the next is read, and the socket keeps serving frames
    /// and live events meanwhile), by the one rule of [`crate::domain::replay`].
    fn catch_up(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(after) = self.cursor.start_read() {
            self.replay_page(ctx, after);
        }
    }

    fn replay_page(&mut self, ctx: &mut ws::WebsocketContext<Self>, after: i64) {
        let Some(joined) = &self.joined else {
            self.cursor.stopped();
            return;
        };
        let chat = self.chat.clone();
        let (workspace_id, id) = (joined.workspace_id, joined.conversation_id.clone());
        let read = async move { chat.history_after(workspace_id, &id, after, replay::PAGE).await };
        ctx.spawn(read.into_actor(self).map(|page, act, ctx| match page {
            Ok(page) => {
                let page = act.cursor.page(page);
                for message in page.messages {
                    act.deliver(ctx, &ConversationEvent::replay(message));
                }
                if page.read_on {
                    act.replay_page(ctx, act.cursor.last_seq());
                }
            }
            Err(err) => {
                act.cursor.failed();
                Self::error(ctx, err.message(), None);
            }
        }));
    }

    fn hello(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        bot_id: String,
        conversation_id: Option<ConversationId>,
        last_seq: Option<i64>,
    ) {
        if self.joined.is_some() || self.joining {
            return Self::error(ctx, "already joined a conversation: open another socket for another one", None);
        }
        if last_seq.is_some_and(|seq| seq < 0) {
            return Self::error(ctx, "invalid field `last_seq`: must not be negative", None);
        }
        self.joining = true;
        let chat = self.chat.clone();
        let origin = self.origin.clone();
        let address = self.address;
        let join = async move {
            let bot = chat.public_bot(&bot_id).await?;
            crate::transport::http::cors::check_bot_origin(&bot, origin.as_deref())?;
            let (row, resumed) = match conversation_id {
                Some(id) => (chat.bot_conversation(bot.id, &id).await?, true),
                None => {
                    // Counted before anything is written: a refused hello creates nothing.
                    chat.admission.new_conversation(address, bot.id).await.map_err(JoinError::Refused)?;
                    (chat.start(&bot, None, "widget", serde_json::json!({})).await?, false)
                }
            };
            // The person holding a resumed conversation, for the header of a freshly loaded page.
            let agent = match (row.owner, row.assigned_agent_id) {
                (Owner::Agent, Some(agent_id)) => {
                    chat.agent(row.workspace_id, agent_id).await?.map(|agent| agent.as_ref())
                }
                _ => None,
            };
            // Subscribed before the replay is read, so nothing falls between the two.
            let events = chat.bus.subscribe(row.id.as_str());
            Ok::<_, JoinError>((bot.public_id, row, resumed, agent, events))
        };
        ctx.wait(join.into_actor(self).map(move |joined, act, ctx| {
            act.joining = false;
            match joined {
                Ok((bot_public_id, row, resumed, agent, events)) => {
                    tracing::debug!(conversation_id = %row.id, resumed, "widget joined");
                    Self::send(
                        ctx,
                        &WidgetFrame::Ready {
                            protocol: WIDGET_PROTOCOL,
                            conversation_id: &row.id,
                            bot_id: &bot_public_id,
                            resumed,
                            status: row.status,
                            owner: row.owner,
                            agent: agent.as_ref(),
                        },
                    );
                    act.joined = Some(Joined { conversation_id: row.id, workspace_id: row.workspace_id });
                    act.cursor = ReplayCursor::after(last_seq.unwrap_or(0));
                    ctx.add_stream(BroadcastStream::new(events));
                    act.catch_up(ctx);
                }
                Err(JoinError::Api(err)) => Self::error(ctx, err.message(), None),
                Err(JoinError::Refused(refusal)) => act.refuse(ctx, &refusal, None),
            }
        }));
    }

    fn message(&mut self, ctx: &mut ws::WebsocketContext<Self>, input: VisitorInput) {
        let echo_id = input.client_msg_id.clone();
        let Some(joined) = &self.joined else {
            return Self::error(ctx, "send a hello frame first", echo_id.as_deref());
        };
        let message = match self.chat.validate(input) {
            Ok(message) => message,
            Err(err) => return Self::error(ctx, err.message(), echo_id.as_deref()),
        };
        let id = joined.conversation_id.clone();
        if let Some(Err(refusal)) = self.quota.as_ref().map(SocketQuota::check) {
            self.chat.admission.stats.messages_refused.fetch_add(1, Ordering::Relaxed);
            return self.refuse(ctx, &refusal, Some(&message.client_msg_id));
        }
        let chat = self.chat.clone();
        let client_msg_id = message.client_msg_id.clone();
        let post = async move {
            chat.admission.conversation_message(&id).await.map_err(JoinError::Refused)?;
            Ok::<_, JoinError>(chat.post(&id, message).await?)
        };
        ctx.wait(post.into_actor(self).map(move |posted, act, ctx| match posted {
            Ok(posted) => {
                act.strikes = 0;
                Self::send(
                    ctx,
                    &WidgetFrame::Ack {
                        client_msg_id: &client_msg_id,
                        message: &posted.message,
                        duplicate: posted.duplicate,
                    },
                )
            }
            Err(JoinError::Api(err)) => Self::error(ctx, err.message(), Some(&client_msg_id)),
            Err(JoinError::Refused(refusal)) => act.refuse(ctx, &refusal, Some(&client_msg_id)),
        }));
    }

    /// Stores the visitor's contact details in the conversation (through its session) and saves
    /// them to the CRM: a patient, and a lead once a name and an email or phone are known.
    fn contact(&mut self, ctx: &mut ws::WebsocketContext<Self>, contact: Contact) {
        let Some(joined) = &self.joined else {
            return Self::error(ctx, "send a hello frame first", None);
        };
        let trimmed = |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let contact = Contact {
            _type: String::new(),
            name: trimmed(contact.name),
            email: trimmed(contact.email),
            phone: trimmed(contact.phone),
            external_id: trimmed(contact.external_id),
        };
        let too_long = [("name", &contact.name, 200), ("email", &contact.email, 254), ("phone", &contact.phone, 40)]
            .into_iter()
            .chain([("external_id", &contact.external_id, 200)])
            .find(|(_, value, max)| value.as_ref().is_some_and(|v| v.chars().count() > *max));
        if let Some((field, _, max)) = too_long {
            let error = format!("contact.{field} must be at most {max} characters");
            return Self::send(
                ctx,
                &WidgetFrame::Error {
                    error: &error,
                    client_msg_id: None,
                    code: Some(INVALID_CONTACT),
                    retry_after: None,
                },
            );
        }
        let patch = serde_json::json!({ "contact": &contact });
        if let Err(error) = crate::domain::crm::check_contact(&patch["contact"], "contact") {
            return Self::send(
                ctx,
                &WidgetFrame::Error {
                    error: &error,
                    client_msg_id: None,
                    code: Some(INVALID_CONTACT),
                    retry_after: None,
                },
            );
        }
        let chat = self.chat.clone();
        let (workspace_id, id) = (joined.workspace_id, joined.conversation_id.clone());
        let save = async move { chat.update_variables(workspace_id, &id, patch).await };
        ctx.spawn(save.into_actor(self).map(|saved, _act, ctx| match saved {
            Ok(variables) => {
                Self::send(ctx, &WidgetFrame::ContactSaved { contact: variables.get("contact") });
            }
            Err(err) => Self::error(ctx, err.message(), None),
        }));
    }

    fn read(&mut self, ctx: &mut ws::WebsocketContext<Self>, seq: i64) {
        if self.joined.is_none() {
            return Self::error(ctx, "send a hello frame first", None);
        }
        if seq < 0 {
            return Self::error(ctx, "invalid field `seq`: must not be negative", None);
        }
        match self.reads.offer(seq, Instant::now(), i64::max) {
            Offer::Send(seq) => self.send_read(ctx, seq),
            Offer::FlushIn(wait) => {
                ctx.run_later(wait, |act, ctx| {
                    if let Some(seq) = act.reads.flush(Instant::now()) {
                        act.send_read(ctx, seq);
                    }
                });
            }
            Offer::Merged => {
                self.chat.admission.stats.frames_coalesced.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn send_read(&mut self, ctx: &mut ws::WebsocketContext<Self>, seq: i64) {
        let Some(joined) = &self.joined else { return };
        let chat = self.chat.clone();
        let id = joined.conversation_id.clone();
        ctx.spawn(async move { chat.mark_read(&id, Sender::Visitor, seq).await }.into_actor(self).map(
            |done, _act, ctx| {
                if let Err(err) = done {
                    Self::error(ctx, err.message(), None);
                }
            },
        ));
    }

    /// At most one typing frame per interval reaches the session; the ones in between are
    /// merged into the last, which follows when the interval is over.
    fn typing(&mut self, ctx: &mut ws::WebsocketContext<Self>, on: bool) {
        if self.joined.is_none() {
            return Self::error(ctx, "send a hello frame first", None);
        }
        match self.typing.offer(on, Instant::now(), |_, latest| latest) {
            Offer::Send(on) => self.send_typing(ctx, on),
            Offer::FlushIn(wait) => {
                ctx.run_later(wait, |act, ctx| {
                    if let Some(on) = act.typing.flush(Instant::now()) {
                        act.send_typing(ctx, on);
                    }
                });
            }
            Offer::Merged => {
                self.chat.admission.stats.frames_coalesced.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn send_typing(&mut self, ctx: &mut ws::WebsocketContext<Self>, on: bool) {
        let Some(joined) = &self.joined else { return };
        let chat = self.chat.clone();
        let id = joined.conversation_id.clone();
        ctx.spawn(async move { chat.typing(&id, on).await }.into_actor(self).map(|done, _act, ctx| {
            if let Err(err) = done {
                Self::error(ctx, err.message(), None);
            }
        }));
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for VisitorSocket {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.heard_from = Instant::now();
        let frame = match item {
            Ok(frame) => frame,
            Err(ws::ProtocolError::Overflow) => {
                Self::error(ctx, "frame is larger than the server accepts", None);
                ctx.close(Some(ws::CloseReason {
                    code: ws::CloseCode::Size,
                    description: Some("frame too large".into()),
                }));
                ctx.stop();
                return;
            }
            Err(err) => {
                tracing::debug!(error = %err, "widget socket protocol error");
                ctx.stop();
                return;
            }
        };
        match frame {
            ws::Message::Text(text) => match ClientFrame::parse(&text) {
                Ok(ClientFrame::Hello(hello)) => match refuse_version(hello.protocol, WIDGET_PROTOCOL) {
                    Some(refused) => Self::send(
                        ctx,
                        &WidgetFrame::Error {
                            error: &refused,
                            client_msg_id: None,
                            code: Some(UNSUPPORTED_PROTOCOL),
                            retry_after: None,
                        },
                    ),
                    None => self.hello(ctx, hello.bot_id, hello.conversation_id, hello.last_seq),
                },
                Ok(ClientFrame::Message(m)) => self.message(
                    ctx,
                    VisitorInput { client_msg_id: m.client_msg_id, text: m.text, media: m.media, context: None },
                ),
                Ok(ClientFrame::Typing(typing)) => self.typing(ctx, typing.on),
                Ok(ClientFrame::Read(read)) => self.read(ctx, read.seq),
                Ok(ClientFrame::Contact(contact)) => self.contact(ctx, contact),
                Ok(ClientFrame::Ping) => Self::send(ctx, &WidgetFrame::Pong),
                Err(error) => Self::error(ctx, &error, None),
            },
            ws::Message::Binary(_) => Self::error(ctx, "binary frames are not supported: send JSON text frames", None),
            ws::Message::Ping(bytes) => ctx.pong(&bytes),
            ws::Message::Pong(_) => {}
            ws::Message::Close(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
            ws::Message::Continuation(_) | ws::Message::Nop => {}
        }
    }
}

impl StreamHandler<Result<Arc<ConversationEvent>, BroadcastStreamRecvError>> for VisitorSocket {
    fn handle(&mut self, item: Result<Arc<ConversationEvent>, BroadcastStreamRecvError>, ctx: &mut Self::Context) {
        let event = match item {
            Ok(event) => event,
            // Fell behind the bus: the database has every stored message, take them from there.
            Err(BroadcastStreamRecvError::Lagged(_)) => return self.catch_up(ctx),
        };
        match &*event {
            ConversationEvent::Typing { sender: Sender::Visitor, .. } => {}
            other => match self.cursor.live(other.stored_message().map(|m| m.seq)) {
                Live::Skip => {}
                Live::CatchUp => self.catch_up(ctx),
                Live::Deliver => self.deliver(ctx, other),
            },
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {
        // The bus dropped this conversation's channel; the socket itself stays up.
    }
}
