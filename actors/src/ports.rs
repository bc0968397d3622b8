//! The ports: everything the live runtime needs from the outside world, as traits.
//!
//! `frontdesk` (the server crate) implements them with diesel, the built-in brain and the
//! in-process (or Redis) bus; the tests of this crate implement them in memory. Nothing in
//! this crate knows about SQL, HTTP or Redis.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// A conversation's id: its public id and the key its session is found by on every node. Stored
/// and sent as the string it wraps, so that it cannot be mistaken for a bot's public id, an
/// outside session's id or any other string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow))]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
#[serde(transparent)]
pub struct ConversationId(String);

impl ConversationId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<String> for ConversationId {
    fn from(id: String) -> Self {
        ConversationId(id)
    }
}

impl From<&str> for ConversationId {
    fn from(id: &str) -> Self {
        ConversationId(id.to_owned())
    }
}

impl From<ConversationId> for String {
    fn from(id: ConversationId) -> Self {
        id.0
    }
}

impl std::fmt::Display for ConversationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ConversationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by id be read with a `&str` (a path segment, a bus topic).
impl std::borrow::Borrow<str> for ConversationId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ConversationId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ConversationId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow))]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
#[serde(rename_all = "lowercase")]
pub enum Sender {
    Visitor,
    Bot,
    Agent,
    System,
}

impl Sender {
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Visitor => "visitor",
            Sender::Bot => "bot",
            Sender::Agent => "agent",
            Sender::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "visitor" => Some(Sender::Visitor),
            "bot" => Some(Sender::Bot),
            "agent" => Some(Sender::Agent),
            "system" => Some(Sender::System),
            _ => None,
        }
    }
}

/// Who answers a conversation: the bot, nobody yet (a person was asked for), or one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow))]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    Bot,
    Queued,
    Agent,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Bot => "bot",
            Owner::Queued => "queued",
            Owner::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bot" => Some(Owner::Bot),
            "queued" => Some(Owner::Queued),
            "agent" => Some(Owner::Agent),
            _ => None,
        }
    }
}

/// An agent as conversations show them: enough to say who joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRef {
    pub id: i64,
    pub name: String,
}

/// Who caused an ownership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangedBy {
    /// The visitor asked for a person.
    Visitor,
    /// An agent, by their socket or REST.
    Agent,
    /// An integration through the API.
    Api,
    /// A rule of the bot (e.g. too many unanswered questions in a row).
    Rule,
    /// The server itself (an agent's silence ran out, round-robin assignment).
    System,
}

impl ChangedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangedBy::Visitor => "visitor",
            ChangedBy::Agent => "agent",
            ChangedBy::Api => "api",
            ChangedBy::Rule => "rule",
            ChangedBy::System => "system",
        }
    }
}

/// A conditional change of owner: applied only if the current owner is one of `from` (and, for
/// `silent_before`, only if the agent has been silent since before that time), atomically with
/// its record and its webhook event.
#[derive(Debug, Clone)]
pub struct OwnershipChange {
    pub workspace_id: i64,
    pub conversation_id: ConversationId,
    pub from: Vec<Owner>,
    pub to: Owner,
    /// The agent who takes over (`to` is `Agent`) or who acts.
    pub agent: Option<AgentRef>,
    pub actor: ChangedBy,
    pub reason: Option<String>,
    /// Hand back only if the owning agent's last activity is older than this (ms).
    pub silent_before: Option<i64>,
    pub at: i64,
    /// The writing session's fencing token (see [`NewMessage::fence`]).
    pub fence: Option<i64>,
}

/// What a conditional ownership change did.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnershipOutcome {
    Changed {
        previous: Owner,
        previous_agent: Option<AgentRef>,
    },
    /// The conversation was not in a state the change applies to; this is its state.
    Refused {
        owner: Owner,
        agent: Option<AgentRef>,
        closed: bool,
    },
}

/// A message as it is stored: `seq` orders it within its conversation, gap-free from 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub seq: i64,
    pub sender: Sender,
    /// The agent who wrote it, for an agent's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<i64>,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// What a bot's reply was based on (its citations), when the brain said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// A message the session has given a `seq` and wants persisted.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub workspace_id: i64,
    pub conversation_id: ConversationId,
    pub seq: i64,
    pub sender: Sender,
    pub agent_id: Option<i64>,
    pub content: String,
    pub media: Option<serde_json::Value>,
    pub client_msg_id: Option<String>,
    pub reply_to: Option<i64>,
    pub created_at: i64,
    pub metadata: Option<serde_json::Value>,
    /// The fencing token of the session that writes, when conversations are owned across
    /// nodes: the store refuses the write ([`StoreError::Fenced`]) once a newer owner has
    /// claimed the conversation. `None` on a single node, where nothing can be stale.
    pub fence: Option<i64>,
}

/// What persisting a message did.
#[derive(Debug, Clone)]
pub enum Appended {
    /// The message is stored under the `seq` the session gave it.
    Inserted(StoredMessage),
    /// A message with the same `client_msg_id` was stored before; this is it, unchanged.
    Duplicate(StoredMessage),
}

/// Whether a conversation takes messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow))]
#[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    Open,
    Closed,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(ConversationStatus::Open),
            "closed" => Some(ConversationStatus::Closed),
            _ => None,
        }
    }
}

/// Implements diesel's text column for enums of words (`as_str()` to write, `parse(&str) ->
/// Option<Self>` to read): each stored as its word; a word the enum does not know is an error on
/// reading, never a silent default. Used here for [`Sender`], [`Owner`] and
/// [`ConversationStatus`], and by the `frontdesk` crate for its own sets of words.
#[cfg(feature = "diesel")]
#[macro_export]
macro_rules! text_column {
    ($($name:ty),+ $(,)?) => {$(
        impl<DB> ::diesel::serialize::ToSql<::diesel::sql_types::Text, DB> for $name
        where
            DB: ::diesel::backend::Backend,
            str: ::diesel::serialize::ToSql<::diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut ::diesel::serialize::Output<'b, '_, DB>,
            ) -> ::diesel::serialize::Result {
                ::diesel::serialize::ToSql::<::diesel::sql_types::Text, DB>::to_sql(self.as_str(), out)
            }
        }

        impl<DB> ::diesel::deserialize::FromSql<::diesel::sql_types::Text, DB> for $name
        where
            DB: ::diesel::backend::Backend,
            String: ::diesel::deserialize::FromSql<::diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> ::diesel::deserialize::Result<Self> {
                let word =
                    <String as ::diesel::deserialize::FromSql<::diesel::sql_types::Text, DB>>::from_sql(bytes)?;
                <$name>::parse(&word).ok_or_else(|| format!("`{word}` is not a {}", stringify!($name)).into())
            }
        }
    )+};
}

#[cfg(feature = "diesel")]
mod text_columns {
    use diesel::backend::Backend;
    use diesel::deserialize::{self, FromSql};
    use diesel::serialize::{self, Output, ToSql};
    use diesel::sql_types::Text;

    use super::{ConversationId, ConversationStatus, Owner, Sender};

    crate::text_column!(Sender, Owner, ConversationStatus);

    impl<DB> ToSql<Text, DB> for ConversationId
    where
        DB: Backend,
        str: ToSql<Text, DB>,
    {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
            self.as_str().to_sql(out)
        }
    }

    impl<DB> FromSql<Text, DB> for ConversationId
    where
        DB: Backend,
        String: FromSql<Text, DB>,
    {
        fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
            String::from_sql(bytes).map(ConversationId::from)
        }
    }
}

/// Everything a session needs to resume a conversation, read from the store.
#[derive(Debug, Clone)]
pub struct ConversationSnapshot {
    pub id: ConversationId,
    pub workspace_id: i64,
    pub bot_id: i64,
    /// Where the conversation came from (`widget`, `api`, `rest`, a seed API's name).
    pub channel: String,
    pub status: ConversationStatus,
    pub owner: Owner,
    /// The agent who owns it, when an agent does.
    pub agent: Option<AgentRef>,
    pub variables: serde_json::Value,
    /// The highest `seq` stored (0 for an empty conversation).
    pub last_seq: i64,
    /// The most recent messages, oldest first (at most the store's context window).
    pub recent: Vec<StoredMessage>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Other(String),
    /// A newer owner has claimed the conversation: this session's fencing token is stale.
    #[error("conversation is owned by a newer session (fencing token {0} is stale)")]
    Fenced(i64),
}

/// Durable state of conversations. Every call is scoped by the conversation's workspace.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// Reads a conversation and its recent history, or `None` if it does not exist.
    async fn load(&self, conversation_id: &ConversationId) -> Result<Option<ConversationSnapshot>, StoreError>;
    /// Persists one message; returns only after it is durable.
    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError>;
    /// The bot's (or agent's) message that answered `message_id`, if one was stored.
    async fn find_reply(
        &self,
        workspace_id: i64,
        conversation_id: &ConversationId,
        message_id: i64,
    ) -> Result<Option<StoredMessage>, StoreError>;
    /// Marks the conversation closed.
    async fn close(
        &self,
        workspace_id: i64,
        conversation_id: &ConversationId,
        at: i64,
        fence: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Changes the owner if the conversation is in a state the change applies to.
    async fn change_owner(&self, change: OwnershipChange) -> Result<OwnershipOutcome, StoreError>;
    /// Records that `reader` has read up to `seq`; an agent's activity also counts as not silent.
    async fn mark_read(
        &self,
        workspace_id: i64,
        conversation_id: &ConversationId,
        reader: Sender,
        seq: i64,
        at: i64,
    ) -> Result<(), StoreError>;
    /// Notes that the owning agent was active (wrote or typed) at `at`.
    async fn agent_active(
        &self,
        workspace_id: i64,
        conversation_id: &ConversationId,
        at: i64,
    ) -> Result<(), StoreError>;
    /// Merges `patch` into the conversation's variables (see [`merge_variables`]) and returns
    /// them as stored.
    async fn merge_variables(
        &self,
        workspace_id: i64,
        conversation_id: &ConversationId,
        patch: serde_json::Value,
        fence: Option<i64>,
    ) -> Result<serde_json::Value, StoreError>;
}

/// Merges a patch into a conversation's variables, two levels deep: each top-level key of the
/// patch replaces the stored one, except that an object merges into a stored object key by key,
/// so `{"contact": {"email": …}}` keeps the contact's name. `null` removes what it names.
pub fn merge_variables(stored: &mut serde_json::Value, patch: serde_json::Value) {
    use serde_json::Value;
    if !stored.is_object() {
        *stored = Value::Object(Default::default());
    }
    let (Some(target), Value::Object(patch)) = (stored.as_object_mut(), patch) else { return };
    for (key, value) in patch {
        match (target.get_mut(&key), value) {
            (_, Value::Null) => {
                target.remove(&key);
            }
            (Some(Value::Object(inner)), Value::Object(fields)) => {
                for (field, value) in fields {
                    if value.is_null() {
                        inner.remove(&field);
                    } else {
                        inner.insert(field, value);
                    }
                }
            }
            (_, Value::Object(fields)) => {
                let fields = fields.into_iter().filter(|(_, v)| !v.is_null()).collect();
                target.insert(key, Value::Object(fields));
            }
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

/// What a brain is asked to answer.
#[derive(Debug, Clone)]
pub struct BrainRequest {
    pub workspace_id: i64,
    pub bot_id: i64,
    pub conversation_id: ConversationId,
    /// The conversation's channel (see [`ConversationSnapshot::channel`]).
    pub channel: String,
    /// The conversation so far, oldest first, ending with the visitor's message.
    pub history: Vec<StoredMessage>,
    pub variables: serde_json::Value,
    /// Context given with this message alone (ChatSupport AI's `context`: company rules,
    /// policies, tone, scraped text), to be honoured for this answer only.
    pub context: Option<serde_json::Value>,
    /// The only way a brain changes the conversation's variables: through its session.
    pub state: TurnState,
}

/// A brain's door to its conversation's variables. The session is their one writer: a patch
/// goes to it, is merged with its fencing token in order with agents' and the API's edits, and
/// is refused once the turn is over (cut by a takeover) or the session lost the conversation.
#[derive(Clone)]
pub struct TurnState(Arc<dyn StateWriter>);

/// What a session gives its turn for [`TurnState`].
#[async_trait]
pub trait StateWriter: Send + Sync {
    /// Merges `patch` (see [`merge_variables`]); answers the variables as they now stand.
    async fn merge(&self, patch: serde_json::Value) -> Result<serde_json::Value, BrainError>;
}

impl TurnState {
    pub fn new(writer: Arc<dyn StateWriter>) -> Self {
        Self(writer)
    }

    /// A turn with no session behind it (a brain tried on its own): every write is refused.
    pub fn unattached() -> Self {
        struct Unattached;
        #[async_trait]
        impl StateWriter for Unattached {
            async fn merge(&self, _: serde_json::Value) -> Result<serde_json::Value, BrainError> {
                Err(BrainError("this turn has no session to keep its variables".into()))
            }
        }
        Self(Arc::new(Unattached))
    }

    /// Merges `patch` into the conversation's variables; answers them as they now stand.
    pub async fn merge(&self, patch: serde_json::Value) -> Result<serde_json::Value, BrainError> {
        self.0.merge(patch).await
    }

    /// Stores what changed from `before` to `after` (see [`variables_patch`]), so that keys the
    /// brain did not touch keep whatever others wrote meanwhile; answers the variables as they
    /// now stand (`after` itself when nothing changed).
    pub async fn store_changes(
        &self,
        before: &serde_json::Value,
        after: &serde_json::Value,
    ) -> Result<serde_json::Value, BrainError> {
        match variables_patch(before, after) {
            Some(patch) => self.merge(patch).await,
            None => Ok(after.clone()),
        }
    }
}

impl std::fmt::Debug for TurnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnState")
    }
}

/// The patch that [`merge_variables`] turns `before` into `after` with, touching only what
/// differs: a removed key becomes `null`, an object present on both sides is compared field by
/// field (a removed field becomes `null`), anything else that differs is given whole. `None`
/// when nothing differs. (A `null` kept as a value in `after` reads as a removal: variables do
/// not keep nulls.)
pub fn variables_patch(before: &serde_json::Value, after: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::{Map, Value};
    let empty = Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let mut patch = Map::new();
    for key in before.keys().filter(|key| !after.contains_key(*key)) {
        patch.insert(key.clone(), Value::Null);
    }
    for (key, new) in after {
        match (before.get(key), new) {
            (Some(old), new) if old == new => {}
            (Some(Value::Object(old)), Value::Object(new)) => {
                let mut fields: Map<String, Value> =
                    old.keys().filter(|field| !new.contains_key(*field)).map(|f| (f.clone(), Value::Null)).collect();
                for (field, value) in new {
                    if old.get(field) != Some(value) {
                        fields.insert(field.clone(), value.clone());
                    }
                }
                patch.insert(key.clone(), Value::Object(fields));
            }
            (_, new) => {
                patch.insert(key.clone(), new.clone());
            }
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("brain failed: {0}")]
pub struct BrainError(pub String);

/// What a brain streams: chunks of its reply and what the reply means for the conversation.
/// (Variables are not streamed: a brain changes them through [`BrainRequest::state`].)
#[derive(Debug, Clone, PartialEq)]
pub enum BrainOutput {
    Text(String),
    /// What the reply is based on (e.g. `{"citations": [...]}`), stored with the reply.
    Metadata(serde_json::Value),
    /// After this reply, put the conversation in the queue for a person.
    Handoff {
        actor: ChangedBy,
        reason: String,
    },
}

impl From<String> for BrainOutput {
    fn from(text: String) -> Self {
        BrainOutput::Text(text)
    }
}

/// A reply engine. The reply streams as text chunks, concatenated in order.
pub trait Brain: Send + Sync + 'static {
    fn reply(&self, request: BrainRequest) -> BoxStream<'static, Result<BrainOutput, BrainError>>;
}

/// Something that happened in a conversation, as every subscriber sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConversationEvent {
    /// A stored message from the visitor, an agent or the system.
    Message { message: StoredMessage },
    /// A chunk of the bot's reply to `reply_to` while it streams.
    Delta { conversation_id: ConversationId, reply_to: Option<i64>, text: String },
    /// The bot's finished reply, stored.
    Done { message: StoredMessage },
    /// Someone started or stopped typing.
    Typing { conversation_id: ConversationId, sender: Sender, on: bool },
    /// The conversation was closed.
    Closed { conversation_id: ConversationId },
    /// The conversation changed hands (a person was asked for, an agent took over or left).
    OwnerChanged {
        conversation_id: ConversationId,
        owner: Owner,
        previous: Owner,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<AgentRef>,
        #[serde(skip_serializing_if = "Option::is_none")]
        previous_agent: Option<AgentRef>,
        actor: ChangedBy,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        at: i64,
    },
    /// `reader` has read the conversation up to `seq`.
    Read { conversation_id: ConversationId, reader: Sender, seq: i64 },
}

/// The bus topic on which a workspace's conversations announce what an inbox shows: stored
/// messages, owner changes and closings (not streamed deltas, typing or read receipts).
pub fn inbox_topic(workspace_id: i64) -> String {
    format!("inbox:{workspace_id}")
}

impl ConversationEvent {
    /// The event under which a stored message is (re)played: a bot's message as `Done`, any
    /// other as `Message`, exactly as it was published live.
    pub fn replay(message: StoredMessage) -> Self {
        if message.sender == Sender::Bot {
            ConversationEvent::Done { message }
        } else {
            ConversationEvent::Message { message }
        }
    }

    /// The event's `type`, as serialised.
    pub fn kind(&self) -> &'static str {
        match self {
            ConversationEvent::Message { .. } => "message",
            ConversationEvent::Delta { .. } => "delta",
            ConversationEvent::Done { .. } => "done",
            ConversationEvent::Typing { .. } => "typing",
            ConversationEvent::Closed { .. } => "closed",
            ConversationEvent::OwnerChanged { .. } => "owner_changed",
            ConversationEvent::Read { .. } => "read",
        }
    }

    /// The stored message this event carries, if any: the events a replay must not lose.
    pub fn stored_message(&self) -> Option<&StoredMessage> {
        match self {
            ConversationEvent::Message { message } | ConversationEvent::Done { message } => Some(message),
            _ => None,
        }
    }
}

/// Fan-out of conversation events to every subscriber, on this node or (clustered) any node.
///
/// Delivery is at most once: subscribers use the `seq` of stored messages to notice gaps and
/// fill them from the store.
pub trait EventBus: Send + Sync + 'static {
    /// `topic` is a conversation's id, or a workspace's [`inbox_topic`].
    fn publish(&self, topic: &str, event: ConversationEvent);
    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Arc<ConversationEvent>>;
}

/// The time, injectable so that tests control it.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default()
    }
}

/// The ports a session needs, bundled so they travel together.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn ConversationStore>,
    pub brain: Arc<dyn Brain>,
    pub bus: Arc<dyn EventBus>,
    pub clock: Arc<dyn Clock>,
}

/// Where the lead scorer's work is done: reading conversations again and scoring their leads.
#[async_trait]
pub trait LeadSignals: Send + Sync + 'static {
    /// Scores each `(workspace_id, conversation_id)` and answers those that have a lead;
    /// failures are the implementation's to log.
    async fn rescore(&self, conversations: Vec<(i64, ConversationId)>) -> Vec<(i64, ConversationId)>;
}

#[cfg(test)]
mod tests {
    use super::{merge_variables, variables_patch};
    use serde_json::json;

    fn merged(mut stored: serde_json::Value, patch: Option<serde_json::Value>) -> serde_json::Value {
        if let Some(patch) = patch {
            merge_variables(&mut stored, patch);
        }
        stored
    }

    #[test]
    fn a_patch_turns_before_into_after() {
        let before = json!({
            "contact": { "name": "Maria", "phone": "555" },
            "reception": { "intent": "book", "service": "Cleaning" },
            "last_action": "x",
            "gone": 1,
        });
        let after = json!({
            "contact": { "name": "Maria", "email": "m@example.com" },
            "reception": { "intent": "book" },
            "last_action": { "action": "booking_flow" },
            "new": [1, 2],
        });
        let patch = variables_patch(&before, &after);
        assert_eq!(
            patch,
            Some(json!({
                "gone": null,
                "contact": { "phone": null, "email": "m@example.com" },
                "reception": { "service": null },
                "last_action": { "action": "booking_flow" },
                "new": [1, 2],
            }))
        );
        assert_eq!(merged(before, patch), after);
        assert_eq!(variables_patch(&after, &after), None, "nothing changed, nothing to write");
    }

    #[test]
    fn a_patch_leaves_what_others_changed_meanwhile() {
        let before = json!({ "contact": { "name": "Maria" } });
        let after = json!({ "contact": { "name": "Maria", "email": "m@example.com" } });
        // Meanwhile an agent set a priority and corrected the name.
        let stored = json!({ "contact": { "name": "María" }, "conversation": { "priority": "vip" } });
        assert_eq!(
            merged(stored, variables_patch(&before, &after)),
            json!({ "contact": { "name": "María", "email": "m@example.com" }, "conversation": { "priority": "vip" } })
        );
    }
}
