//! The sockets' wire contract: every frame the server writes on `/ws/widget` and `/ws/agent`,
//! as types of their own, apart from the internal types they carry, with the protocol version
//! each socket announces. Conversation events ([`frontdesk_actors::ConversationEvent`]) are
//! written as they serialise; the snapshot tests below pin their JSON with the frames', so that
//! an internal refactor cannot change what clients read without a reviewed snapshot change.
//!
//! Versions: the widget's `ready` and the agent's `inbox` say `protocol`. A client may say the
//! version it speaks (`hello.protocol` on the widget socket, `?protocol=` on the agent socket);
//! one the server does not speak is refused with `code: "unsupported_protocol"`. Additions
//! (a new optional field, a new frame type clients ignore) keep the version; a change to an
//! existing frame's fields raises it.

use frontdesk_actors::{AgentRef, ConversationId, ConversationStatus, Owner, StoredMessage};
use serde::Serialize;

/// The widget socket's protocol version.
pub const WIDGET_PROTOCOL: u32 = 1;
/// The agent socket's protocol version.
pub const AGENT_PROTOCOL: u32 = 1;
/// The `code` of an error frame refusing a protocol version the server does not speak.
pub const UNSUPPORTED_PROTOCOL: &str = "unsupported_protocol";

/// Why a client's protocol version is refused, or `None` when it is spoken (or not said).
pub fn refuse_version(asked: Option<u32>, spoken: u32) -> Option<String> {
    asked
        .filter(|asked| *asked != spoken)
        .map(|asked| format!("protocol {asked} is not spoken here: this server speaks protocol {spoken}"))
}

/// What the server writes on the widget socket besides conversation events.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WidgetFrame<'a> {
    Ready {
        /// [`WIDGET_PROTOCOL`].
        protocol: u32,
        conversation_id: &'a ConversationId,
        bot_id: &'a str,
        resumed: bool,
        /// `open` or `closed`: a resumed conversation may have ended meanwhile.
        status: ConversationStatus,
        /// `bot`, `queued` or `agent`.
        owner: Owner,
        /// The person who has the conversation, when `owner` is `agent`.
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<&'a AgentRef>,
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
        /// `rate_limited` for an admission refusal, `invalid_contact`, `unsupported_protocol`.
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<&'a str>,
        /// Seconds until a refused frame may be sent again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// A person joined the conversation (the visitor sees who answers now).
    AgentJoined {
        conversation_id: &'a ConversationId,
        agent: &'a AgentRef,
    },
    /// The person left it (handed back to the bot, or the conversation was moved).
    AgentLeft {
        conversation_id: &'a ConversationId,
        agent: &'a AgentRef,
    },
    /// The contact details sent were stored (as they now stand).
    ContactSaved {
        contact: Option<&'a serde_json::Value>,
    },
    Pong,
}

/// What the server writes on the agent socket besides conversation events.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentFrame<'a, Agent: Serialize, Item: Serialize> {
    /// The first frame: who is signed in and the open conversations.
    Inbox {
        /// [`AGENT_PROTOCOL`].
        protocol: u32,
        agent: &'a Agent,
        conversations: &'a [Item],
    },
    /// A conversation the socket had not shown yet, before its first event.
    Conversation { conversation: &'a Item },
    /// A page of a subscribed conversation's messages; `more` when another follows.
    History { conversation_id: &'a ConversationId, messages: &'a [StoredMessage], more: bool },
    /// The socket fell behind the inbox: reload it rather than guess.
    InboxStale { missed: u64 },
    /// A command done; its result's fields are part of the frame.
    Ack {
        #[serde(rename = "ref")]
        reference: Option<&'a serde_json::Value>,
        #[serde(flatten)]
        result: serde_json::Map<String, serde_json::Value>,
    },
    Error {
        #[serde(rename = "ref")]
        reference: Option<&'a serde_json::Value>,
        error: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<&'a str>,
    },
    Pong {
        #[serde(rename = "ref")]
        reference: Option<&'a serde_json::Value>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_actors::{ChangedBy, ConversationEvent, Owner, Sender};
    use serde_json::json;

    fn message() -> StoredMessage {
        StoredMessage {
            id: 41,
            conversation_id: "c-1".into(),
            seq: 3,
            sender: Sender::Bot,
            agent_id: None,
            content: "We are open 8:00 to 18:00.".into(),
            media: None,
            client_msg_id: None,
            reply_to: Some(40),
            created_at: 1_796_000_000_000,
            metadata: Some(json!({ "citations": [] })),
        }
    }

    fn dana() -> AgentRef {
        AgentRef { id: 7, name: "Dana Reyes".into() }
    }

    #[test]
    fn widget_frames_keep_their_json() {
        let (message, agent, contact) = (message(), dana(), json!({ "name": "Maria" }));
        let id = ConversationId::from("c-1");
        let frames = vec![
            WidgetFrame::Ready {
                protocol: WIDGET_PROTOCOL,
                conversation_id: &id,
                bot_id: "b-1",
                resumed: true,
                status: ConversationStatus::Open,
                owner: Owner::Agent,
                agent: Some(&agent),
            },
            WidgetFrame::Ack { client_msg_id: "m-1", message: &message, duplicate: false },
            WidgetFrame::Error {
                error: "too many messages",
                client_msg_id: Some("m-2"),
                code: Some("rate_limited"),
                retry_after: Some(3),
            },
            WidgetFrame::Error { error: "bad frame", client_msg_id: None, code: None, retry_after: None },
            WidgetFrame::AgentJoined { conversation_id: &id, agent: &agent },
            WidgetFrame::AgentLeft { conversation_id: &id, agent: &agent },
            WidgetFrame::ContactSaved { contact: Some(&contact) },
            WidgetFrame::Pong,
        ];
        insta::assert_json_snapshot!(frames);
    }

    #[test]
    fn agent_frames_keep_their_json() {
        let (message, agent) = (message(), dana());
        let item = json!({ "conversation": { "id": "c-1" }, "unread": 1 });
        let reference = json!(5);
        let result = json!({ "result": { "seq": 4 } }).as_object().cloned().unwrap();
        let id = ConversationId::from("c-1");
        type Frame<'a> = AgentFrame<'a, AgentRef, serde_json::Value>;
        let frames: Vec<Frame> = vec![
            AgentFrame::Inbox { protocol: AGENT_PROTOCOL, agent: &agent, conversations: std::slice::from_ref(&item) },
            AgentFrame::Conversation { conversation: &item },
            AgentFrame::History { conversation_id: &id, messages: std::slice::from_ref(&message), more: false },
            AgentFrame::InboxStale { missed: 12 },
            AgentFrame::Ack { reference: Some(&reference), result },
            AgentFrame::Error { reference: None, error: "unknown conversation", code: None },
            AgentFrame::Pong { reference: Some(&reference) },
        ];
        insta::assert_json_snapshot!(frames);
    }

    /// Every event, as the widget, the agent socket, SSE and long polls write it.
    #[test]
    fn conversation_events_keep_their_json() {
        let events = vec![
            ConversationEvent::Message { message: message() },
            ConversationEvent::Delta { conversation_id: "c-1".into(), reply_to: Some(40), text: "We are".into() },
            ConversationEvent::Done { message: message() },
            ConversationEvent::Typing { conversation_id: "c-1".into(), sender: Sender::Agent, on: true },
            ConversationEvent::Closed { conversation_id: "c-1".into() },
            ConversationEvent::OwnerChanged {
                conversation_id: "c-1".into(),
                owner: Owner::Agent,
                previous: Owner::Queued,
                agent: Some(dana()),
                previous_agent: None,
                actor: ChangedBy::Agent,
                reason: Some("took over".into()),
                at: 1_796_000_000_500,
            },
            ConversationEvent::Read { conversation_id: "c-1".into(), reader: Sender::Visitor, seq: 3 },
        ];
        insta::assert_json_snapshot!(events);
    }

    #[test]
    fn a_version_the_server_does_not_speak_is_refused() {
        assert_eq!(refuse_version(None, 1), None, "a client that does not say is served");
        assert_eq!(refuse_version(Some(1), 1), None);
        let refused = refuse_version(Some(2), 1).unwrap();
        assert!(refused.contains("protocol 2 is not spoken here"), "{refused}");
    }
}
