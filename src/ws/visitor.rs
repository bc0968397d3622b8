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

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use frontdesk_actors::{ConversationEvent, Owner, Sender, StoredMessage};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use crate::chat::{Chat, VisitorInput};
use crate::error::{describe_json_error, ApiError};

const REPLAY_PAGE: i64 = 200;

/// What a client frame asks for. Parsed in two steps (the `type`, then that frame's fields)
/// so that an error can name the field at fault.
#[derive(Debug)]
enum ClientFrame {
    Hello(Hello),
    Message(MessageFrame),
    Typing(Typing),
    Read(Read),
    Ping,
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
    conversation_id: Option<String>,
    last_seq: Option<i64>,
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
        match kind {
            "hello" => fields(value).map(ClientFrame::Hello),
            "message" => fields(value).map(ClientFrame::Message),
            "typing" => fields(value).map(ClientFrame::Typing),
            "read" => fields(value).map(ClientFrame::Read),
            "ping" => Ok(ClientFrame::Ping),
            other => Err(format!("unknown frame type `{other}`: expected hello, message, typing, read or ping")),
        }
    }
}

fn strip_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    text.split(" at line ").next().unwrap_or(&text).to_owned()
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame<'a> {
    Ready {
        conversation_id: &'a str,
        bot_id: &'a str,
        resumed: bool,
    },
    Ack {
        client_msg_id: &'a str,
        message: &'a StoredMessage,
        duplicate: bool,
    },
    Error {
        error: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
    },
    Pong,
}

struct Joined {
    conversation_id: String,
    workspace_id: i64,
}

pub struct VisitorSocket {
    chat: web::Data<Chat>,
    origin: Option<String>,
    joined: Option<Joined>,
    joining: bool,
    /// The highest `seq` this socket has delivered; replays and live events continue from it.
    last_seq: i64,
    heard_from: Instant,
}

pub async fn connect(req: HttpRequest, stream: web::Payload, chat: web::Data<Chat>) -> actix_web::Result<HttpResponse> {
    let origin = req.headers().get("origin").and_then(|o| o.to_str().ok()).map(str::to_owned);
    let max_frame = chat.limits.max_frame_bytes;
    let socket = VisitorSocket { chat, origin, joined: None, joining: false, last_seq: 0, heard_from: Instant::now() };
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
    fn send(ctx: &mut ws::WebsocketContext<Self>, frame: &ServerFrame<'_>) {
        if let Ok(text) = serde_json::to_string(frame) {
            ctx.text(text);
        }
    }

    fn error(ctx: &mut ws::WebsocketContext<Self>, error: &str, client_msg_id: Option<&str>) {
        Self::send(ctx, &ServerFrame::Error { error, client_msg_id });
    }

    fn deliver(&mut self, ctx: &mut ws::WebsocketContext<Self>, event: &ConversationEvent) {
        if let Some(message) = event.stored_message() {
            self.last_seq = self.last_seq.max(message.seq);
        }
        let frame = match event {
            // What the visitor sees of a change of hands: a person joining or leaving.
            ConversationEvent::OwnerChanged { conversation_id, owner, previous, agent, previous_agent, .. } => {
                if *previous == Owner::Agent {
                    if let Some(left) = previous_agent {
                        let frame = serde_json::json!({ "type": "agent_left", "conversation_id": conversation_id, "agent": left });
                        ctx.text(frame.to_string());
                    }
                }
                match (owner, agent) {
                    (Owner::Agent, Some(joined)) => {
                        serde_json::json!({ "type": "agent_joined", "conversation_id": conversation_id, "agent": joined })
                    }
                    _ => return,
                }
            }
            // The visitor's own read receipts are not news to them.
            ConversationEvent::Read { reader: Sender::Visitor, .. } => return,
            other => match serde_json::to_value(other) {
                Ok(value) => value,
                Err(_) => return,
            },
        };
        ctx.text(frame.to_string());
    }

    /// Sends every stored message after `last_seq`, from the database, before anything live.
    fn catch_up(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(joined) = &self.joined else { return };
        let chat = self.chat.clone();
        let (workspace_id, id, after) = (joined.workspace_id, joined.conversation_id.clone(), self.last_seq);
        ctx.wait(async move { read_all_after(&chat, workspace_id, &id, after).await }.into_actor(self).map(
            |missed, act, ctx| match missed {
                Ok(messages) => {
                    for message in messages {
                        act.deliver(ctx, &ConversationEvent::replay(message));
                    }
                }
                Err(err) => Self::error(ctx, err.message(), None),
            },
        ));
    }

    fn hello(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        bot_id: String,
        conversation_id: Option<String>,
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
        let join = async move {
            let bot = chat.public_bot(&bot_id).await?;
            let allowed = bot.allowed_origins();
            if !allowed.is_empty() && !origin.as_ref().is_some_and(|o| allowed.contains(o)) {
                return Err(ApiError::forbidden("this page's origin may not use this bot"));
            }
            let (row, resumed) = match conversation_id {
                Some(id) => (chat.bot_conversation(bot.id, &id).await?, true),
                None => (chat.start(&bot, None, "widget", serde_json::json!({})).await?, false),
            };
            // Subscribed before the replay is read, so nothing falls between the two.
            let events = chat.bus.subscribe(&row.id);
            Ok((bot.public_id, row, resumed, events))
        };
        ctx.wait(join.into_actor(self).map(move |joined, act, ctx| {
            act.joining = false;
            match joined {
                Ok((bot_public_id, row, resumed, events)) => {
                    tracing::debug!(conversation_id = %row.id, resumed, "widget joined");
                    Self::send(ctx, &ServerFrame::Ready { conversation_id: &row.id, bot_id: &bot_public_id, resumed });
                    act.joined = Some(Joined { conversation_id: row.id, workspace_id: row.workspace_id });
                    act.last_seq = last_seq.unwrap_or(0);
                    ctx.add_stream(BroadcastStream::new(events));
                    act.catch_up(ctx);
                }
                Err(err) => Self::error(ctx, err.message(), None),
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
        let chat = self.chat.clone();
        let id = joined.conversation_id.clone();
        let client_msg_id = message.client_msg_id.clone();
        ctx.wait(async move { chat.post(&id, message).await }.into_actor(self).map(
            move |posted, _act, ctx| match posted {
                Ok(posted) => Self::send(
                    ctx,
                    &ServerFrame::Ack {
                        client_msg_id: &client_msg_id,
                        message: &posted.message,
                        duplicate: posted.duplicate,
                    },
                ),
                Err(err) => Self::error(ctx, err.message(), Some(&client_msg_id)),
            },
        ));
    }

    fn read(&mut self, ctx: &mut ws::WebsocketContext<Self>, seq: i64) {
        let Some(joined) = &self.joined else { return Self::error(ctx, "send a hello frame first", None) };
        if seq < 0 {
            return Self::error(ctx, "invalid field `seq`: must not be negative", None);
        }
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

    fn typing(&mut self, ctx: &mut ws::WebsocketContext<Self>, on: bool) {
        let Some(joined) = &self.joined else { return Self::error(ctx, "send a hello frame first", None) };
        let chat = self.chat.clone();
        let id = joined.conversation_id.clone();
        ctx.spawn(async move { chat.typing(&id, on).await }.into_actor(self).map(|done, _act, ctx| {
            if let Err(err) = done {
                Self::error(ctx, err.message(), None);
            }
        }));
    }
}

async fn read_all_after(
    chat: &Chat,
    workspace_id: i64,
    conversation_id: &str,
    mut after: i64,
) -> Result<Vec<StoredMessage>, ApiError> {
    let mut all = Vec::new();
    loop {
        let page = chat.history_after(workspace_id, conversation_id, after, REPLAY_PAGE).await?;
        let full = page.len() as i64 == REPLAY_PAGE;
        after = page.last().map(|m| m.seq).unwrap_or(after);
        all.extend(page);
        if !full {
            return Ok(all);
        }
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
                Ok(ClientFrame::Hello(hello)) => self.hello(ctx, hello.bot_id, hello.conversation_id, hello.last_seq),
                Ok(ClientFrame::Message(m)) => self.message(
                    ctx,
                    VisitorInput { client_msg_id: m.client_msg_id, text: m.text, media: m.media, context: None },
                ),
                Ok(ClientFrame::Typing(typing)) => self.typing(ctx, typing.on),
                Ok(ClientFrame::Read(read)) => self.read(ctx, read.seq),
                Ok(ClientFrame::Ping) => Self::send(ctx, &ServerFrame::Pong),
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
            other => match other.stored_message() {
                Some(message) if message.seq <= self.last_seq => {}
                Some(message) if message.seq > self.last_seq + 1 => self.catch_up(ctx),
                _ => self.deliver(ctx, other),
            },
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {
        // The bus dropped this conversation's channel; the socket itself stays up.
    }
}
