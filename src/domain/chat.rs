//! The chat core every transport calls: starting conversations, resolving them within the
//! caller's scope, validating and posting visitor messages, reading history by `seq`, waiting
//! for new messages, closing. REST handlers, the widget socket, SSE and the seed-API adapters
//! all go through here, so each rule is written once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use frontdesk_actors::{AgentRef, ChangedBy, ConversationStatus, EventBus, Posted, Sender, StoredMessage};
use tokio::sync::broadcast::error::RecvError;

use crate::brain::flows::FlowCatalog;
use crate::brain::tools::Tools;
use crate::brain::BotSettingsCache;
use crate::config::Limits;
use crate::domain::booking::desk::BookingDesk;
use crate::domain::conversations::{
    AgentMessage, AgentTyping, CloseConversation, Command, Conversations, HandBack, MarkRead, RequestHandoff, TakeOver,
    UpdateVariables, VisitorMessage, VisitorTyping,
};
use crate::error::ApiError;
use crate::ids::{ConversationId, WorkspaceId};
use crate::storage::bots::BotRow;
use crate::storage::conversations::{self, ConversationRow, ConversationView, NewConversation};
pub use crate::storage::conversations::{Continued, OutsideSession};

/// The channel of conversations an integrator's own UI runs (ChatAIBot's API channel).
pub const API_CHANNEL: &str = "api";
use crate::storage::{bots, messages, now_ms, Db};

/// A visitor's message as a transport received it, before validation.
#[derive(Debug, Clone, Default)]
pub struct VisitorInput {
    pub client_msg_id: Option<String>,
    pub text: String,
    pub media: Option<serde_json::Value>,
    /// Context for answering this message only (ChatSupport AI's `context`).
    pub context: Option<serde_json::Value>,
}

/// Longest `client_msg_id` accepted.
const MAX_CLIENT_MSG_ID: usize = 128;

pub struct Chat {
    pub db: Db,
    /// Every conversation's live session, on this node or (clustered) on the node that owns it.
    pub conversations: Conversations,
    pub bus: Arc<dyn EventBus>,
    pub bots: Arc<BotSettingsCache>,
    pub limits: Limits,
    /// Serialises each workspace's bookings (the booking actor).
    pub desk: Arc<BookingDesk>,
    /// Deployed flows, to know whether a new conversation opens with a flow.
    pub flows: Arc<FlowCatalog>,
    /// What a flow's dry run looks things up with.
    pub flow_tools: Arc<Tools>,
    /// Turns true when the server shuts down gracefully (sockets close with a reconnect hint).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The quotas of the public surface and the client-address rule.
    pub admission: Arc<crate::domain::admission::Admission>,
    /// The node's one lead scorer: every rescoring goes through it, one pass at a time.
    pub scorer: actix::Addr<frontdesk_actors::LeadScorer>,
    /// Long polls that found nothing new and are waiting for a message (for `/metrics`).
    pub polls_waiting: Arc<AtomicUsize>,
}

/// Counts one long poll as waiting while it lives.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn start(count: &Arc<AtomicUsize>) -> Waiting {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Chat {
    /// Checks a visitor's message against the limits; gives it a `client_msg_id` if it has none,
    /// so that a retry inside the server can never store it twice.
    pub fn validate(&self, input: VisitorInput) -> Result<VisitorMessage, ApiError> {
        let text = input.text.trim().to_owned();
        if text.is_empty() && input.media.is_none() {
            return Err(ApiError::unprocessable("text must not be empty"));
        }
        let chars = text.chars().count();
        if chars > self.limits.max_message_chars {
            return Err(ApiError::unprocessable(format!(
                "text is {chars} characters long; the limit is {}",
                self.limits.max_message_chars
            )));
        }
        let client_msg_id = match input.client_msg_id {
            Some(id) if id.is_empty() || id.len() > MAX_CLIENT_MSG_ID => {
                return Err(ApiError::unprocessable(format!(
                    "client_msg_id must be 1 to {MAX_CLIENT_MSG_ID} characters"
                )))
            }
            Some(id) => id,
            None => uuid::Uuid::new_v4().to_string(),
        };
        if let Some(media) = &input.media {
            if !media.is_array() && !media.is_object() {
                return Err(ApiError::unprocessable("media must be an object or an array of objects"));
            }
        }
        Ok(VisitorMessage { client_msg_id, text, media: input.media, context: input.context })
    }

    /// A bot of the workspace by public id, or the workspace's first bot when none is named.
    pub async fn workspace_bot(&self, workspace_id: WorkspaceId, bot_id: Option<String>) -> Result<BotRow, ApiError> {
        let found = self
            .db
            .run(move |conn| match &bot_id {
                Some(id) => bots::get(conn, workspace_id, id),
                None => Ok(bots::list(conn, workspace_id)?.into_iter().next()),
            })
            .await?;
        found.ok_or_else(|| ApiError::not_found("bot not found"))
    }

    /// An active bot by its public id (the widget's only credential).
    pub async fn public_bot(&self, bot_id: &str) -> Result<BotRow, ApiError> {
        let id = bot_id.to_owned();
        self.db.run(move |conn| bots::public(conn, &id)).await?.ok_or_else(|| ApiError::not_found("bot not found"))
    }

    /// Starts a conversation with the bot; its welcome message is stored as `seq` 1.
    pub async fn start(
        &self,
        bot: &BotRow,
        external_id: Option<String>,
        channel: &'static str,
        variables: serde_json::Value,
    ) -> Result<ConversationRow, ApiError> {
        match self.start_with(bot, external_id, channel, variables, None).await? {
            Continued::Started(row) => Ok(row),
            Continued::Found(_) => Err(ApiError::internal("a conversation was found where none was asked for")),
        }
    }

    /// The conversation an outside session continues, or a new one started for it (checked and
    /// started atomically, see [`conversations::find_or_start`]). A new conversation's external
    /// id is `external_id`.
    pub async fn find_or_start(
        &self,
        bot: &BotRow,
        external_id: String,
        channel: &'static str,
        variables: serde_json::Value,
        session: OutsideSession,
    ) -> Result<Continued, ApiError> {
        self.start_with(bot, Some(external_id), channel, variables, Some(session)).await
    }

    async fn start_with(
        &self,
        bot: &BotRow,
        external_id: Option<String>,
        channel: &'static str,
        variables: serde_json::Value,
        session: Option<OutsideSession>,
    ) -> Result<Continued, ApiError> {
        let settings = self.bots.get(bot.workspace_id, bot.id).await?;
        // An API-channel conversation that a flow will run opens with the flow's words, not the
        // welcome (the caller's own UI greets); a widget still shows the welcome until the
        // visitor's first message starts the flow.
        let flow_opens = channel == API_CHANNEL
            && self
                .flows
                .deployed(bot.workspace_id, bot.id, crate::storage::flows::deployment_channel(channel))
                .await?
                .is_some();
        let welcome = (!flow_opens).then(|| settings.welcome_message.clone());
        let (workspace_id, bot_id, bot_public_id) = (bot.workspace_id, bot.id, bot.public_id.clone());
        let created = self
            .db
            .run(move |conn| {
                let new = NewConversation {
                    workspace_id,
                    bot_id,
                    bot_public_id: &bot_public_id,
                    external_id: external_id.as_deref(),
                    channel,
                    variables: &variables,
                    welcome: welcome.as_deref(),
                    now: now_ms(),
                };
                match &session {
                    Some(session) => conversations::find_or_start(conn, new, session),
                    None => conversations::create(conn, new).map(Continued::Started),
                }
            })
            .await;
        match created {
            Err(err) if err.is_unique_violation() => {
                Err(ApiError::conflict("a conversation with this external_id already exists for this bot"))
            }
            other => Ok(other?),
        }
    }

    /// The conversation a seed API's own session id names (`external_id`, prefixed by the API so
    /// APIs never share one), started on first use and kept across messages.
    pub async fn session_conversation(
        &self,
        bot: &BotRow,
        external_id: String,
        channel: &'static str,
    ) -> Result<ConversationRow, ApiError> {
        self.named_session(bot, external_id, channel, None).await
    }

    /// [`Chat::session_conversation`] for a caller without credentials: a new conversation is
    /// first counted against the client address's and the bot's quotas (429 past them).
    pub async fn public_session_conversation(
        &self,
        bot: &BotRow,
        external_id: String,
        channel: &'static str,
        address: Option<std::net::IpAddr>,
    ) -> Result<ConversationRow, ApiError> {
        self.named_session(bot, external_id, channel, Some(address)).await
    }

    async fn named_session(
        &self,
        bot: &BotRow,
        external_id: String,
        channel: &'static str,
        public: Option<Option<std::net::IpAddr>>,
    ) -> Result<ConversationRow, ApiError> {
        let bot_id = bot.id;
        let key = external_id.clone();
        // Most messages continue a session: found on a read, they never take the write lock
        // nor count against the quotas of new conversations.
        let known = self.db.run(move |conn| conversations::by_external_id(conn, bot_id, &key)).await?;
        let row = match known {
            Some(row) => row,
            None => {
                if let Some(address) = public {
                    self.admission
                        .new_conversation(address, bot.id)
                        .await
                        .map_err(crate::domain::admission::Refusal::into_api_error)?;
                }
                match self
                    .find_or_start(bot, external_id, channel, serde_json::json!({}), OutsideSession::Named)
                    .await?
                {
                    Continued::Found(row) | Continued::Started(row) => row,
                }
            }
        };
        if row.status == ConversationStatus::Closed {
            return Err(ApiError::conflict("this session's conversation is closed; start a new session"));
        }
        Ok(row)
    }

    /// Posts a visitor message and waits up to `wait` for the bot's stored reply; returns the
    /// stored question and the reply.
    pub async fn ask(
        &self,
        conversation_id: &ConversationId,
        message: VisitorMessage,
        wait: Duration,
    ) -> Result<(StoredMessage, StoredMessage), ApiError> {
        let posted = self.post(conversation_id, message).await?;
        let reply = tokio::time::timeout(wait, posted.reply)
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| ApiError::unavailable("the bot did not answer in time; send the message again"))?;
        Ok((posted.message, reply))
    }

    /// A conversation of the workspace; another workspace's conversation is "not found".
    pub async fn conversation(
        &self,
        workspace_id: WorkspaceId,
        id: &ConversationId,
    ) -> Result<ConversationRow, ApiError> {
        let id = id.clone();
        self.db
            .run(move |conn| conversations::get(conn, workspace_id, &id))
            .await?
            .ok_or_else(|| ApiError::not_found("conversation not found"))
    }

    /// A conversation of the bot; any other conversation is "not found".
    pub async fn bot_conversation(&self, bot_id: i64, id: &ConversationId) -> Result<ConversationRow, ApiError> {
        let id = id.clone();
        self.db
            .run(move |conn| conversations::get_for_bot(conn, bot_id, &id))
            .await?
            .ok_or_else(|| ApiError::not_found("conversation not found"))
    }

    pub async fn view(&self, row: ConversationRow) -> Result<ConversationView, ApiError> {
        Ok(self.db.run(move |conn| conversations::view(conn, &row)).await?)
    }

    /// Posts a validated visitor message; returns once it is stored, with a handle on the reply.
    pub async fn post(&self, conversation_id: &ConversationId, message: VisitorMessage) -> Result<Posted, ApiError> {
        Ok(self.conversations.dispatch(conversation_id, Command::Visitor(message)).await?.posted()?)
    }

    /// Merges a patch into the conversation's variables, through its session so the next turn
    /// sees them; answers them as they now stand. Contact details are checked first and, once
    /// stored, saved to the CRM.
    pub async fn update_variables(
        &self,
        workspace_id: WorkspaceId,
        conversation_id: &ConversationId,
        patch: serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        let contact = patch.get("contact").filter(|c| !c.is_null());
        if let Some(contact) = contact {
            crate::domain::crm::check_contact(contact, "contact").map_err(ApiError::unprocessable)?;
        }
        let touches_contact = contact.is_some();
        let variables = self
            .conversations
            .dispatch(conversation_id, Command::UpdateVariables(UpdateVariables { patch }))
            .await?
            .variables()?;
        if touches_contact {
            self.save_contact(workspace_id, conversation_id).await?;
        }
        Ok(variables)
    }

    /// Saves the contact in the conversation's variables to the CRM: the patient it matches or
    /// a new one, and its lead (when it has a name and an email or phone).
    pub async fn save_contact(
        &self,
        workspace_id: WorkspaceId,
        conversation_id: &ConversationId,
    ) -> Result<bool, ApiError> {
        let rescore = frontdesk_actors::RescoreNow {
            workspace_id: workspace_id.get(),
            conversation_id: conversation_id.to_owned(),
        };
        self.scorer.send(rescore).await.map_err(|_| ApiError::unavailable("the lead scorer has stopped"))
    }

    pub async fn typing(&self, conversation_id: &ConversationId, on: bool) -> Result<(), ApiError> {
        Ok(self.conversations.dispatch(conversation_id, Command::VisitorTyping(VisitorTyping { on })).await?.done()?)
    }

    pub async fn close(&self, conversation_id: &ConversationId) -> Result<(), ApiError> {
        Ok(self.conversations.dispatch(conversation_id, Command::Close(CloseConversation)).await?.done()?)
    }

    /// An agent takes the conversation over; 409 when another agent has it.
    pub async fn take_over(
        &self,
        conversation_id: &ConversationId,
        agent: AgentRef,
        by: ChangedBy,
    ) -> Result<(), ApiError> {
        let take_over = Command::TakeOver(TakeOver { agent, actor: by });
        Ok(self.conversations.dispatch(conversation_id, take_over).await?.done()?)
    }

    /// The conversation goes back to the bot.
    pub async fn hand_back(
        &self,
        conversation_id: &ConversationId,
        agent: Option<AgentRef>,
        by: ChangedBy,
        reason: Option<String>,
    ) -> Result<(), ApiError> {
        let reason = check_reason(reason)?;
        let hand_back = Command::HandBack(HandBack { agent, actor: by, reason, silent_before: None });
        Ok(self.conversations.dispatch(conversation_id, hand_back).await?.done()?)
    }

    /// Puts the conversation in the queue for a person.
    pub async fn request_handoff(
        &self,
        conversation_id: &ConversationId,
        by: ChangedBy,
        reason: Option<String>,
    ) -> Result<(), ApiError> {
        let reason = check_reason(reason)?;
        let request = Command::RequestHandoff(RequestHandoff { actor: by, reason });
        Ok(self.conversations.dispatch(conversation_id, request).await?.done()?)
    }

    /// A message from the agent who owns the conversation; returns it and whether it repeated
    /// an earlier `client_msg_id`.
    pub async fn agent_says(
        &self,
        conversation_id: &ConversationId,
        agent: AgentRef,
        client_msg_id: Option<String>,
        text: String,
        media: Option<serde_json::Value>,
    ) -> Result<(StoredMessage, bool), ApiError> {
        let checked = self.validate(VisitorInput { client_msg_id, text, media, context: None })?;
        let message =
            AgentMessage { agent, client_msg_id: checked.client_msg_id, text: checked.text, media: checked.media };
        Ok(self.conversations.dispatch(conversation_id, Command::Agent(message)).await?.agent_message()?)
    }

    pub async fn agent_typing(
        &self,
        conversation_id: &ConversationId,
        agent: AgentRef,
        on: bool,
    ) -> Result<(), ApiError> {
        let typing = Command::AgentTyping(AgentTyping { agent, on });
        Ok(self.conversations.dispatch(conversation_id, typing).await?.done()?)
    }

    /// `reader` has read up to `seq` (clamped to the last message); returns the position.
    pub async fn mark_read(&self, conversation_id: &ConversationId, reader: Sender, seq: i64) -> Result<i64, ApiError> {
        Ok(self.conversations.dispatch(conversation_id, Command::MarkRead(MarkRead { reader, seq })).await?.read()?)
    }

    /// Stored messages after `after`, in `seq` order.
    pub async fn history_after(
        &self,
        workspace_id: WorkspaceId,
        conversation_id: &ConversationId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredMessage>, ApiError> {
        let id = conversation_id.to_owned();
        Ok(self.db.run(move |conn| messages::after(conn, workspace_id, &id, after, limit)).await?)
    }

    /// Stored messages after `after`; if there are none, waits up to `wait` for one to arrive.
    pub async fn wait_for_messages(
        &self,
        workspace_id: WorkspaceId,
        conversation_id: &ConversationId,
        after: i64,
        limit: i64,
        wait: Duration,
    ) -> Result<Vec<StoredMessage>, ApiError> {
        // Subscribe before reading, so a message stored between the read and the wait is seen.
        let mut events = self.bus.subscribe(conversation_id.as_str());
        let found = self.history_after(workspace_id, conversation_id, after, limit).await?;
        if !found.is_empty() || wait.is_zero() {
            return Ok(found);
        }
        let waiting = Waiting::start(&self.polls_waiting);
        let arrived = tokio::time::timeout(wait, async {
            loop {
                match events.recv().await {
                    Ok(event) if event.stored_message().is_some_and(|m| m.seq > after) => return,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                }
            }
        })
        .await;
        drop(waiting);
        if arrived.is_err() {
            return Ok(Vec::new());
        }
        self.history_after(workspace_id, conversation_id, after, limit).await
    }
}

fn check_reason(reason: Option<String>) -> Result<Option<String>, ApiError> {
    match reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()) {
        Some(r) if r.chars().count() > 500 => Err(ApiError::unprocessable("`reason` is longer than 500 characters")),
        other => Ok(other),
    }
}
