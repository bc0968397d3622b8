//! CX Genie's public API v2 chat, customer and session routes, authenticated by the
//! `workspace_token` (in the query or body as documented, or as a bearer token):
//!
//! - `POST /api/v2/public-api/messages`: a visitor message to a bot, answered with the bot's
//!   reply as `{success, data: "<reply>"}`. `customer_info` creates or updates the customer
//!   (matched by `external_id`, then email, then phone) and the message goes to that customer's
//!   open session with the bot (a new one when it has none); without it the message starts an
//!   anonymous session. frontdesk adds `session_id` and `customer_id` to the answer, and takes an
//!   optional `session_id` in the body to continue a session (an anonymous one included).
//! - `GET /api/v2/public-api/customer-list`: the workspace's customers (`contacts`), newest
//!   first, filtered by `search`, `bot_ids`, `types`, `is_testing`, paged by `cursor` and `limit`.
//! - `GET /api/v2/public-api/customer-detail/{customer_id}`.
//! - `GET /api/v2/public-api/sessions-by-customer`: a customer's sessions (conversations),
//!   filtered by `bot_ids`, `status`, `reply_status` and `date_range`, paged by `limit`/`offset`.
//! - `GET /api/v2/public-api/detail-sessions/{session_id}`: a session's messages.
//!
//! Every error is the server's `{"error": "…"}` with CX Genie's `"success": false` beside it
//! (added by [`crate::transport::compat::cxgenie::error_envelope`]). An id of another workspace
//! (or a session of another customer) is a 404 like an unknown one; a query parameter that
//! cannot be read is a 400 naming it, one the route does not document is ignored.
//!
//! **Cursor.** The list runs by `created_at` then `id`, both descending, and answers a
//! `next_cursor` (`null` on the last page): `<created_at as RFC 3339 UTC with milliseconds>~<id>`,
//! e.g. `2026-03-28T09:15:02.117Z~42`, meaning "the customers after this one". Customers created
//! while a client pages are newer than its cursor, so they never shift a page: every customer
//! that existed when paging began is returned exactly once. A bare date (CX Genie's documented
//! cursor: RFC 3339, `YYYY-MM-DD`, or epoch milliseconds) means "created strictly before it".
//!
//! **Reply status** (`reply_status`, and a session's `is_read`) is decided from the session's
//! messages, see [`ReplyStatus`]: `UNREAD` when the customer's last message has no bot or agent
//! message after it and no agent has taken the session, `READ` when such a message waits but an
//! agent owns the session (a person has it open) or when the customer has written nothing,
//! `REPLIED` when a bot or agent message follows the customer's last message.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::cxgenie_ids::{uuid_of, RowKind};
use crate::domain::chat::{Chat, Continued, OutsideSession, VisitorInput};
use crate::domain::crm::signals::{normalize_email, normalize_phone};
use crate::domain::customers::{
    self, Activity, AgentBrief, BotRow, ContactRow, Cursor, CustomerFilter, CustomerInfo, MessageOrder, MessageRow,
    ReplyStatus, SessionFilter, SessionRow, WorkspaceBrief as Workspace,
};
use crate::error::{ApiError, JsonBody};
use crate::ids::{ConversationId, WorkspaceId};
use crate::status::Presence;
use crate::transport::http::auth::{bearer, workspace_of_token};
use crate::transport::http::idempotency;
use frontdesk_actors::{ConversationStatus, Owner, Sender};

/// How long `POST …/messages` waits for the bot's reply.
const REPLY_WAIT: Duration = Duration::from_secs(30);
/// The channel of the sessions this API starts, and the prefix of their external ids.
const CHANNEL: &str = "cxgenie";
const MAX_SESSION_ID: usize = 128;
const MAX_TEXT_FIELD: usize = 200;
const CUSTOMERS_DEFAULT: i64 = 20;
const CUSTOMERS_MAX: i64 = 100;
const PAGE_DEFAULT: i64 = 10;
const PAGE_MAX: i64 = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v2/public-api/messages", web::post().to(chat_with_bot))
        .route("/api/v2/public-api/customer-list", web::get().to(customer_list))
        .route("/api/v2/public-api/customer-detail/{customer_id}", web::get().to(customer_detail))
        .route("/api/v2/public-api/sessions-by-customer", web::get().to(sessions_by_customer))
        .route("/api/v2/public-api/detail-sessions/{session_id}", web::get().to(detail_sessions));
}

fn iso(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------------------
// Query parameters

fn bad(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid query parameter `{name}`: {why}"))
}

/// A query string read by hand, so that CX Genie's arrays arrive however a client encodes them:
/// repeated (`types=lead&types=users`), bracketed (`types[]=lead`, `types[0]=lead`),
/// comma-separated (`types=lead,users`) or as a JSON array (`types=["lead","users"]`).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Params {
        Params(form_urlencoded::parse(query.as_bytes()).into_owned().collect())
    }

    /// `name`, `name[]` or `name[N]` (with N).
    fn split(key: &str) -> (&str, Option<usize>) {
        match key.split_once('[') {
            Some((base, rest)) if rest.ends_with(']') => (base, rest[..rest.len() - 1].parse().ok()),
            _ => (key, None),
        }
    }

    fn take(&mut self, name: &str) -> Vec<(Option<usize>, String)> {
        let mut taken = Vec::new();
        self.0.retain(|(key, value)| {
            let (base, index) = Params::split(key);
            if base == name {
                taken.push((index, value.clone()));
                false
            } else {
                true
            }
        });
        taken
    }

    /// A parameter given at most once.
    fn one(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.take(name);
        if values.len() > 1 {
            return Err(bad(name, "given more than once"));
        }
        Ok(values.pop().map(|(_, v)| v.trim().to_owned()))
    }

    /// An array parameter; `None` when absent or empty.
    fn list(&mut self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let mut values = self.take(name);
        if values.iter().all(|(index, _)| index.is_some()) {
            values.sort_by_key(|(index, _)| *index);
        }
        let mut items = Vec::new();
        for (_, value) in values {
            let value = value.trim();
            if value.starts_with('[') {
                let parsed: Vec<Value> = serde_json::from_str(value)
                    .map_err(|_| bad(name, "a JSON array must be an array of strings, like [\"a\",\"b\"]"))?;
                for item in parsed {
                    match item {
                        Value::String(s) => items.push(s.trim().to_owned()),
                        Value::Number(n) => items.push(n.to_string()),
                        _ => return Err(bad(name, "a JSON array must be an array of strings")),
                    }
                }
            } else {
                items.extend(value.split(',').map(|s| s.trim().to_owned()));
            }
        }
        items.retain(|s| !s.is_empty());
        Ok((!items.is_empty()).then_some(items))
    }
}

fn parse_limit(value: Option<String>, default: i64, max: i64) -> Result<i64, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(default) };
    value
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| bad("limit", format!("`{value}` is not a whole number from 1 to {max}")))
}

fn parse_offset(value: Option<String>) -> Result<i64, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(0) };
    value
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| bad("offset", format!("`{value}` is not a whole number from 0")))
}

fn parse_bool(name: &str, value: Option<String>) -> Result<Option<bool>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(Some(true)),
        "false" | "0" => Ok(Some(false)),
        _ => Err(bad(name, format!("`{value}` is not `true` or `false`"))),
    }
}

/// An instant in ms: RFC 3339, a date and time without a zone (UTC), a date (its first
/// millisecond, or its last with `end_of_day`), or epoch milliseconds (seconds when it has ten
/// digits or fewer). A `+` of an offset that arrived as a space (not URL-encoded) is restored.
fn parse_instant(value: &str, end_of_day: bool) -> Option<i64> {
    let value = value.trim();
    if !value.is_empty() && value.len() <= 16 && value.chars().all(|c| c.is_ascii_digit()) {
        let n: i64 = value.parse().ok()?;
        return Some(if value.len() <= 10 { n * 1000 } else { n });
    }
    let attempt = |v: &str| -> Option<i64> {
        if let Ok(at) = DateTime::parse_from_rfc3339(v) {
            return Some(at.timestamp_millis());
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
            if let Ok(at) = NaiveDateTime::parse_from_str(v, format) {
                return Some(at.and_utc().timestamp_millis());
            }
        }
        let day = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
        let start = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        Some(if end_of_day { start + 86_400_000 - 1 } else { start })
    };
    attempt(value).or_else(|| value.contains(' ').then(|| attempt(&value.replacen(' ', "+", 1))).flatten())
}

/// frontdesk's cursor (`<RFC 3339>~<id>`) or a bare date.
fn parse_cursor(value: &str) -> Result<Cursor, ApiError> {
    let wrong = || {
        bad(
            "cursor",
            format!("`{value}` is neither a `next_cursor` from a previous page nor a date (RFC 3339 or epoch ms)"),
        )
    };
    match value.rsplit_once('~') {
        Some((at, id)) => {
            let created_at = parse_instant(at, false).ok_or_else(wrong)?;
            let id = id.parse::<i64>().ok().filter(|id| *id >= 0).ok_or_else(wrong)?;
            Ok(Cursor::After { created_at, id })
        }
        None => parse_instant(value, false).map(Cursor::Before).ok_or_else(wrong),
    }
}

fn cursor_of(row: &ContactRow) -> String {
    format!("{}~{}", iso(row.created_at), row.id)
}

/// The workspace of the token given in the query (or body), else of the bearer token.
async fn workspace(req: &HttpRequest, chat: &Chat, given: Option<String>) -> Result<WorkspaceId, ApiError> {
    let token = match given.filter(|t| !t.trim().is_empty()) {
        Some(token) => token,
        None => bearer(req).map_err(|_| {
            ApiError::unauthorized("missing `workspace_token` (query parameter, body field or bearer token)")
        })?,
    };
    workspace_of_token(chat, &token).await
}

/// The workspace's bots by public id; `None` when no bot filter was asked for, an empty list
/// when none of the named bots is the workspace's.
async fn resolve_bots(
    chat: &Chat,
    workspace_id: WorkspaceId,
    named: Option<Vec<String>>,
) -> Result<Option<Vec<i64>>, ApiError> {
    match named {
        None => Ok(None),
        Some(named) => Ok(Some(customers::bot_ids(&chat.db, workspace_id, named).await?)),
    }
}

// ---------------------------------------------------------------------------------------------
// Shapes

/// A bot as a customer shows it.
#[derive(Debug, Serialize)]
struct CustomerBot {
    id: String,
    auto_reply: bool,
    auto_suggestion: bool,
    name: String,
    avatar: String,
    is_watermark_shown: bool,
    is_allow_learning_from_conversation: bool,
    member_import_knowledge_from_conversation: Vec<Value>,
}

impl CustomerBot {
    fn new(bot: &BotRow) -> Self {
        CustomerBot {
            id: bot.public_id.clone(),
            auto_reply: bot.active,
            auto_suggestion: false,
            name: bot.name.clone(),
            avatar: String::new(),
            is_watermark_shown: false,
            is_allow_learning_from_conversation: false,
            member_import_knowledge_from_conversation: Vec::new(),
        }
    }
}

/// A bot as a session shows it.
#[derive(Debug, Serialize)]
struct SessionBot {
    auto_reply: bool,
    auto_suggestion: bool,
    id: String,
    is_allow_learning_from_conversation: bool,
    is_watermark_shown: bool,
    member_import_knowledge_from_conversation: Vec<Value>,
    reply_unknown: String,
    name: String,
    avatar: String,
    is_max_conversation_usage: bool,
    theme_color: String,
}

impl SessionBot {
    fn new(bot: &BotRow) -> Self {
        SessionBot {
            auto_reply: bot.active,
            auto_suggestion: false,
            id: bot.public_id.clone(),
            is_allow_learning_from_conversation: false,
            is_watermark_shown: false,
            member_import_knowledge_from_conversation: Vec::new(),
            reply_unknown: bot.settings().reply_unknown,
            name: bot.name.clone(),
            avatar: String::new(),
            is_max_conversation_usage: false,
            theme_color: String::new(),
        }
    }
}

/// A bot as a session's messages show it.
#[derive(Debug, Serialize)]
struct MessageBot {
    id: String,
    name: String,
    avatar: String,
    auto_reply: bool,
    reply_language: Option<String>,
    reply_unknown: String,
    workspace_id: String,
}

/// Who replied in a session: its bot or an agent.
#[derive(Debug, Serialize)]
struct ReplyBy {
    id: String,
    name: String,
    avatar: String,
    is_bot: bool,
    is_online: bool,
    is_available: bool,
}

impl ReplyBy {
    fn bot(bot: &BotRow) -> Self {
        ReplyBy {
            id: bot.public_id.clone(),
            name: bot.name.clone(),
            avatar: String::new(),
            is_bot: true,
            is_online: bot.active,
            is_available: bot.active,
        }
    }

    fn agent(id: i64, agent: Option<&AgentBrief>) -> Self {
        ReplyBy {
            id: uuid_of(RowKind::Agent, id),
            name: agent.map(|a| a.name.clone()).unwrap_or_default(),
            avatar: String::new(),
            is_bot: false,
            is_online: agent.is_some_and(|a| a.presence != Presence::Offline),
            is_available: agent.is_some_and(|a| a.presence == Presence::Online),
        }
    }
}

/// The documented message (`MessageResult`), plus frontdesk's `seq` and `sender`.
#[derive(Debug, Serialize)]
struct MessageView {
    id: String,
    content: String,
    /// The `client_msg_id` the message was sent with.
    external_id: Option<String>,
    rating: i64,
    reaction: Option<String>,
    started_ticket_id: Option<String>,
    media: Vec<Value>,
    receiver_id: Option<String>,
    bot_id: String,
    sender_id: Option<String>,
    session_id: Option<ConversationId>,
    block_id: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    unsent: bool,
    meta_tags: Vec<Value>,
    /// What the bot's reply was based on (its citations), when the brain said.
    data: Option<Value>,
    variables: Option<Value>,
    quoted_id: Option<String>,
    disabled_submit_form: Option<bool>,
    notification_data: Option<Value>,
    count_message_notes: Option<i64>,
    language_using: String,
    total_qa_feedback: i64,
    receiver_read_at: Option<String>,
    created_at: String,
    updated_at: String,
    deleted_at: Option<String>,
    seq: i64,
    /// `visitor`, `bot`, `agent` or `system`.
    sender: Sender,
}

impl MessageView {
    fn new(row: &MessageRow, session: &SessionRow, bot_public_id: &str) -> Self {
        let customer = session.contact_id.map(|id| id.to_string());
        let media: Vec<Value> = match row.media.as_deref().and_then(|m| serde_json::from_str(m).ok()) {
            Some(Value::Array(items)) => items,
            Some(item @ Value::Object(_)) => vec![item],
            _ => Vec::new(),
        };
        let media_type = media.first().and_then(|m| m.get("type")).and_then(Value::as_str).unwrap_or_default();
        let kind = if media_type.starts_with("image/") {
            "IMAGE"
        } else if media_type.starts_with("video/") {
            "VIDEO"
        } else {
            "TEXT"
        };
        let (sender_id, receiver_id) = match row.sender {
            Sender::Visitor => (customer, Some(bot_public_id.to_owned())),
            Sender::Bot => (Some(bot_public_id.to_owned()), customer),
            Sender::Agent => (row.agent_id.map(|id| uuid_of(RowKind::Agent, id)), customer),
            Sender::System => (None, customer),
        };
        MessageView {
            id: uuid_of(RowKind::Message, row.id),
            content: row.content.clone(),
            external_id: row.client_msg_id.clone(),
            rating: 0,
            reaction: None,
            started_ticket_id: None,
            media,
            receiver_id,
            bot_id: bot_public_id.to_owned(),
            sender_id,
            session_id: Some(session.id.clone()),
            block_id: None,
            kind,
            unsent: false,
            meta_tags: Vec::new(),
            data: row.metadata.as_deref().and_then(|m| serde_json::from_str(m).ok()),
            variables: None,
            quoted_id: None,
            disabled_submit_form: None,
            notification_data: None,
            count_message_notes: None,
            language_using: String::new(),
            total_qa_feedback: 0,
            receiver_read_at: None,
            created_at: iso(row.created_at),
            updated_at: iso(row.created_at),
            deleted_at: None,
            seq: row.seq,
            sender: row.sender,
        }
    }
}

/// The documented customer of the list (the detail adds to it).
#[derive(Debug, Serialize)]
struct CustomerView {
    id: String,
    name: String,
    access_token: Option<String>,
    metadata: Value,
    is_full_history_chat: bool,
    extract_knowledge_status: Option<String>,
    conversation_status: &'static str,
    last_extract_data_conversation: Option<String>,
    last_summary: Option<String>,
    last_recap: Option<String>,
    total_summary_one_hour: Option<i64>,
    avatar: Option<String>,
    email: String,
    phone_number: String,
    country_code: Option<String>,
    country: Option<String>,
    country_flag: Option<String>,
    discord_id: Option<String>,
    note: Option<String>,
    bot_id: Option<String>,
    auto_reply: bool,
    workspace_id: String,
    is_read: bool,
    external_id: Option<String>,
    language_using: String,
    vocative: String,
    source: String,
    source_type: String,
    class: Option<String>,
    last_message_at: String,
    message_id: Option<String>,
    last_social_message: Option<Value>,
    is_testing: bool,
    is_hidden: bool,
    conversation_id: Option<ConversationId>,
    last_session_id: Option<ConversationId>,
    conversation_state: &'static str,
    is_generating_tag: Option<bool>,
    social_account_id: Option<String>,
    customer_category_id: Option<String>,
    queued_at: String,
    created_at: String,
    updated_at: String,
    deleted_at: Option<String>,
    customer_category: Option<Value>,
    bot: Option<CustomerBot>,
    contact_tag_ids: Vec<String>,
}

#[derive(Debug, Serialize)]
struct LastSession {
    id: ConversationId,
    created_at: Option<String>,
    status: &'static str,
    assignee_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct CustomerDetail {
    #[serde(flatten)]
    customer: CustomerView,
    replied_by: Vec<ReplyBy>,
    tag_list: Vec<Value>,
    is_customer_answered: bool,
    agent_reply: bool,
    contact_tags: Vec<Value>,
    social_account: Option<Value>,
    last_message: Option<MessageView>,
    last_session: Option<LastSession>,
}

/// The customer as a session shows it.
#[derive(Debug, Serialize)]
struct SessionCustomer {
    id: String,
    auto_reply: bool,
    avatar: Option<String>,
    bot_id: Option<String>,
    name: String,
    country_code: Option<String>,
    country: Option<String>,
    country_flag: Option<String>,
    email: String,
    phone_number: String,
    external_id: Option<String>,
    is_full_history_chat: bool,
    queued_at: String,
    conversation_status: &'static str,
    metadata: Value,
}

impl SessionCustomer {
    fn new(view: &CustomerView) -> Self {
        SessionCustomer {
            id: view.id.clone(),
            auto_reply: view.auto_reply,
            avatar: None,
            bot_id: view.bot_id.clone(),
            name: view.name.clone(),
            country_code: None,
            country: None,
            country_flag: None,
            email: view.email.clone(),
            phone_number: view.phone_number.clone(),
            external_id: view.external_id.clone(),
            is_full_history_chat: view.is_full_history_chat,
            queued_at: view.queued_at.clone(),
            conversation_status: view.conversation_status,
            metadata: view.metadata.clone(),
        }
    }
}

/// The documented session, plus frontdesk's `reply_status`.
#[derive(Debug, Serialize)]
struct SessionView {
    id: ConversationId,
    from_user_id: Option<String>,
    to_user_id: Option<String>,
    created_at: String,
    deleted_at: Option<String>,
    updated_at: String,
    bot_id: String,
    workspace_id: String,
    assignee_id: Option<String>,
    note: Option<String>,
    is_read: bool,
    status: &'static str,
    ticket_id: Option<String>,
    category_id: Option<String>,
    sub_category_id: Option<String>,
    team_id: Option<String>,
    last_message_by: &'static str,
    last_message_at: String,
    social_account_id: Option<String>,
    last_message_id: Option<String>,
    tag_ids: Vec<String>,
    reply_by_ids: Vec<ReplyBy>,
    last_social_message: Option<String>,
    is_last_session: bool,
    queued_at: String,
    source: String,
    have_message_from_agent: bool,
    auto_reply: bool,
    bot: Option<SessionBot>,
    customer: SessionCustomer,
    social_account: Option<Value>,
    last_message: Option<MessageView>,
    /// `UNREAD`, `READ` or `REPLIED` (see the module docs).
    reply_status: &'static str,
}

fn reply_status_name(status: ReplyStatus) -> &'static str {
    match status {
        ReplyStatus::Unread => "UNREAD",
        ReplyStatus::Read => "READ",
        ReplyStatus::Replied => "REPLIED",
    }
}

fn session_status(session: &SessionRow) -> &'static str {
    if session.status == ConversationStatus::Closed {
        "CLOSED"
    } else {
        "OPEN"
    }
}

/// A customer from their contact row, their sessions (newest first) and the activity of the
/// newest one.
fn customer_view(
    ws: &Workspace,
    contact: &ContactRow,
    sessions: &[SessionRow],
    latest: Option<&Activity>,
) -> CustomerView {
    let newest = sessions.first();
    let open = sessions.iter().find(|s| s.status == ConversationStatus::Open);
    let bot = newest.and_then(|s| ws.bots.get(&s.bot_id));
    let last_message = latest.and_then(|a| a.last_message.as_ref());
    let is_read = match (newest, latest) {
        (Some(session), Some(activity)) => ReplyStatus::of(session.owner, activity) != ReplyStatus::Unread,
        _ => true,
    };
    CustomerView {
        id: contact.id.to_string(),
        name: contact.name.clone().unwrap_or_default(),
        access_token: None,
        metadata: contact.metadata(),
        is_full_history_chat: false,
        extract_knowledge_status: None,
        conversation_status: if open.is_some() { "OPENED" } else { "CLOSED" },
        last_extract_data_conversation: None,
        last_summary: None,
        last_recap: None,
        total_summary_one_hour: None,
        avatar: None,
        email: contact.email.clone().unwrap_or_default(),
        phone_number: contact.phone.clone().unwrap_or_default(),
        country_code: None,
        country: None,
        country_flag: None,
        discord_id: None,
        note: contact.notes.clone(),
        bot_id: bot.map(|b| b.public_id.clone()),
        auto_reply: newest.is_none_or(|s| s.owner == Owner::Bot),
        workspace_id: ws.public_id.clone(),
        is_read,
        external_id: contact.external_id(),
        language_using: String::new(),
        vocative: String::new(),
        source: newest.map(|s| s.channel.clone()).unwrap_or_else(|| "crm".into()),
        source_type: if newest.is_some() { "chat".into() } else { "crm".into() },
        class: Some(contact.kind.clone()),
        last_message_at: iso(last_message
            .map(|m| m.created_at)
            .or(newest.map(|s| s.updated_at))
            .unwrap_or(contact.updated_at)),
        message_id: last_message.map(|m| uuid_of(RowKind::Message, m.id)),
        last_social_message: None,
        is_testing: false,
        is_hidden: false,
        conversation_id: open.map(|s| s.id.clone()),
        last_session_id: newest.map(|s| s.id.clone()),
        conversation_state: if open.is_some() { "OPEN" } else { "CLOSED" },
        is_generating_tag: None,
        social_account_id: None,
        customer_category_id: None,
        queued_at: iso(newest.map(|s| s.created_at).unwrap_or(contact.created_at)),
        created_at: iso(contact.created_at),
        updated_at: iso(contact.updated_at),
        deleted_at: None,
        customer_category: None,
        bot: bot.map(CustomerBot::new),
        contact_tag_ids: Vec::new(),
    }
}

fn replied_by(
    ws: &Workspace,
    sessions: &[&SessionRow],
    activity: &HashMap<ConversationId, Activity>,
    agents: &HashMap<i64, AgentBrief>,
) -> Vec<ReplyBy> {
    let mut seen_bots = Vec::new();
    let mut seen_agents = Vec::new();
    for session in sessions {
        let Some(a) = activity.get(&session.id) else { continue };
        if a.bot_replied() && !seen_bots.contains(&session.bot_id) {
            seen_bots.push(session.bot_id);
        }
        for agent in &a.agent_ids {
            if !seen_agents.contains(agent) {
                seen_agents.push(*agent);
            }
        }
    }
    let bots = seen_bots.iter().filter_map(|id| ws.bots.get(id)).map(ReplyBy::bot);
    bots.chain(seen_agents.iter().map(|id| ReplyBy::agent(*id, agents.get(id)))).collect()
}

// ---------------------------------------------------------------------------------------------
// GET customer-list

pub async fn customer_list(req: HttpRequest, chat: web::Data<Chat>) -> Result<HttpResponse, ApiError> {
    list_customers(&req, &chat).await
}

async fn list_customers(req: &HttpRequest, chat: &Chat) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string());
    let workspace_id = workspace(req, chat, params.one("workspace_token")?).await?;
    let search = params.one("search")?.filter(|s| !s.is_empty());
    if search.as_ref().is_some_and(|s| s.chars().count() > MAX_TEXT_FIELD) {
        return Err(bad("search", format!("at most {MAX_TEXT_FIELD} characters")));
    }
    let named_bots = params.list("bot_ids")?;
    let types = params.list("types")?;
    let is_testing = parse_bool("is_testing", params.one("is_testing")?)?;
    let cursor = params.one("cursor")?.filter(|c| !c.is_empty()).map(|c| parse_cursor(&c)).transpose()?;
    let limit = parse_limit(params.one("limit")?, CUSTOMERS_DEFAULT, CUSTOMERS_MAX)?;
    let users = match types {
        None => None,
        Some(types) => {
            let (mut lead, mut users) = (false, false);
            for kind in types {
                match kind.to_ascii_lowercase().as_str() {
                    "lead" | "leads" => lead = true,
                    "users" | "user" => users = true,
                    _ => return Err(bad("types", format!("`{kind}` is not `lead` or `users`"))),
                }
            }
            (lead != users).then_some(users)
        }
    };
    let bot_ids = resolve_bots(chat, workspace_id, named_bots).await?;
    // frontdesk has no test customers; none of another workspace's bots has customers here.
    let nothing = is_testing == Some(true) || bot_ids.as_ref().is_some_and(Vec::is_empty);
    let filter = CustomerFilter { search, bot_ids, users, cursor, limit };
    let found = customers::page(&chat.db, workspace_id, filter, nothing).await?;
    let next_cursor = if found.more { found.customers.last().map(cursor_of) } else { None };
    let (ws, activity) = (&found.workspace, &found.activity);
    let views: Vec<CustomerView> = found
        .customers
        .iter()
        .map(|row| {
            let sessions = found.sessions.get(&row.id).map(Vec::as_slice).unwrap_or_default();
            let latest = sessions.first().and_then(|s| activity.get(&s.id));
            customer_view(ws, row, sessions, latest)
        })
        .collect();
    let total = found.total;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "data": { "total": total, "customers": views, "next_cursor": next_cursor },
    })))
}

// ---------------------------------------------------------------------------------------------
// GET customer-detail/{customer_id}

pub async fn customer_detail(
    req: HttpRequest,
    chat: web::Data<Chat>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    detail_of_customer(&req, &chat, &path).await
}

async fn detail_of_customer(req: &HttpRequest, chat: &Chat, customer_id: &str) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string());
    // The document names the token `workshop_id` on this route; both spellings are taken.
    let token = params.one("workspace_token")?;
    let token = token.or(params.one("workshop_id")?);
    let workspace_id = workspace(req, chat, token).await?;
    let not_found = || ApiError::not_found("customer not found");
    let id: i64 = customer_id.trim().parse().map_err(|_| not_found())?;
    let record = customers::customer(&chat.db, workspace_id, id).await?.ok_or_else(not_found)?;
    if record.sessions.is_empty() {
        // As in the list: CX Genie's customers are people who chatted; this contact came from a
        // booking or the CRM and is served by the patient routes.
        return Err(ApiError::not_found(
            "customer not found: this contact has never chatted (see GET /api/patients/{id} for contacts from bookings \
             and the CRM)",
        ));
    }
    let detail = {
        let customers::CustomerRecord { workspace: ws, contact, sessions, activity, agents } = &record;
        {
            let newest = sessions.first();
            let latest = newest.and_then(|s| activity.get(&s.id));
            let customer = customer_view(ws, contact, sessions, latest);
            let all: Vec<&SessionRow> = sessions.iter().collect();
            CustomerDetail {
                customer,
                replied_by: replied_by(ws, &all, activity, agents),
                tag_list: Vec::new(),
                is_customer_answered: latest
                    .is_some_and(|a| a.last_visitor_seq > 0 && a.last_reply_seq > a.last_visitor_seq),
                agent_reply: latest.is_some_and(|a| !a.agent_ids.is_empty()),
                contact_tags: Vec::new(),
                social_account: None,
                last_message: newest
                    .zip(latest.and_then(|a| a.last_message.as_ref()))
                    .map(|(session, message)| MessageView::new(message, session, &ws.bot_public_id(session.bot_id))),
                last_session: newest.map(|s| LastSession {
                    id: s.id.clone(),
                    created_at: Some(iso(s.created_at)),
                    status: session_status(s),
                    assignee_id: s.assigned_agent_id.map(|a| uuid_of(RowKind::Agent, a)),
                }),
            }
        }
    };
    Ok(HttpResponse::Ok().json(json!({ "success": true, "data": detail })))
}

// ---------------------------------------------------------------------------------------------
// GET sessions-by-customer

pub async fn sessions_by_customer(req: HttpRequest, chat: web::Data<Chat>) -> Result<HttpResponse, ApiError> {
    list_sessions(&req, &chat).await
}

async fn list_sessions(req: &HttpRequest, chat: &Chat) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string());
    let workspace_id = workspace(req, chat, params.one("workspace_token")?).await?;
    let limit = parse_limit(params.one("limit")?, PAGE_DEFAULT, PAGE_MAX)?;
    let offset = parse_offset(params.one("offset")?)?;
    let customer_id = params
        .one("customer_id")?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing query parameter `customer_id`"))?;
    let named_bots = params.list("bot_ids")?;
    let statuses = match params.list("status")? {
        None => None,
        Some(values) => Some(
            values
                .iter()
                .map(|v| match v.to_ascii_uppercase().as_str() {
                    "OPEN" | "OPENED" => Ok(ConversationStatus::Open),
                    "CLOSED" => Ok(ConversationStatus::Closed),
                    _ => Err(bad("status", format!("`{v}` is not `OPEN` or `CLOSED`"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let reply = match params.list("reply_status")? {
        None => None,
        Some(values) => Some(
            values
                .iter()
                .map(|v| match v.to_ascii_uppercase().trim_end_matches("_ONLY") {
                    "UNREAD" => Ok(ReplyStatus::Unread),
                    "READ" => Ok(ReplyStatus::Read),
                    "REPLIED" => Ok(ReplyStatus::Replied),
                    _ => Err(bad("reply_status", format!("`{v}` is not `UNREAD_ONLY`, `READ_ONLY` or `REPLIED_ONLY`"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let (created_from, created_to) = match params.list("date_range")? {
        None => (None, None),
        Some(range) if range.len() == 2 => {
            let start = parse_instant(&range[0], false)
                .ok_or_else(|| bad("date_range", format!("`{}` is not a date or timestamp", range[0])))?;
            let end = parse_instant(&range[1], true)
                .ok_or_else(|| bad("date_range", format!("`{}` is not a date or timestamp", range[1])))?;
            if start > end {
                return Err(bad("date_range", "the start is after the end"));
            }
            (Some(start), Some(end))
        }
        Some(_) => return Err(bad("date_range", "two values are needed: [start, end]")),
    };
    let not_found = || ApiError::not_found("customer not found");
    let contact_id: i64 = customer_id.parse().map_err(|_| not_found())?;
    let bot_ids = resolve_bots(chat, workspace_id, named_bots).await?;
    let nothing = bot_ids.as_ref().is_some_and(Vec::is_empty);
    let filter = SessionFilter { contact_id, bot_ids, statuses, reply, created_from, created_to, limit, offset };
    let found = customers::sessions(&chat.db, workspace_id, filter, nothing).await?.ok_or_else(not_found)?;
    let customers::SessionPage { record, page, total } = &found;
    let customers::CustomerRecord { workspace: ws, contact, sessions: all, activity, agents } = record;
    let (views, total) = {
        {
            let customer = customer_view(ws, contact, all, all.first().and_then(|s| activity.get(&s.id)));
            let newest_id = all.first().map(|s| s.id.clone());
            let idle = Activity::default();
            let views: Vec<SessionView> = page
                .iter()
                .map(|session| {
                    let a = activity.get(&session.id).unwrap_or(&idle);
                    let bot = ws.bots.get(&session.bot_id);
                    let bot_public_id = ws.bot_public_id(session.bot_id);
                    let status = ReplyStatus::of(session.owner, a);
                    let last = a.last_message.as_ref();
                    SessionView {
                        id: session.id.clone(),
                        from_user_id: Some(contact.id.to_string()),
                        to_user_id: None,
                        created_at: iso(session.created_at),
                        deleted_at: None,
                        updated_at: iso(session.updated_at),
                        bot_id: bot_public_id.clone(),
                        workspace_id: ws.public_id.clone(),
                        assignee_id: session.assigned_agent_id.map(|a| uuid_of(RowKind::Agent, a)),
                        note: None,
                        is_read: status != ReplyStatus::Unread,
                        status: session_status(session),
                        ticket_id: None,
                        category_id: None,
                        sub_category_id: None,
                        team_id: None,
                        last_message_by: match last.map(|m| m.sender) {
                            Some(Sender::Visitor) => "CUSTOMER",
                            Some(Sender::Agent) => "AGENT",
                            _ => "BOT",
                        },
                        last_message_at: iso(last.map(|m| m.created_at).unwrap_or(session.created_at)),
                        social_account_id: None,
                        last_message_id: last.map(|m| uuid_of(RowKind::Message, m.id)),
                        tag_ids: Vec::new(),
                        reply_by_ids: replied_by(ws, &[session], activity, agents),
                        last_social_message: None,
                        is_last_session: newest_id.as_ref() == Some(&session.id),
                        queued_at: iso(session.created_at),
                        source: session.channel.clone(),
                        have_message_from_agent: !a.agent_ids.is_empty(),
                        auto_reply: session.owner == Owner::Bot,
                        bot: bot.map(SessionBot::new),
                        customer: SessionCustomer::new(&customer),
                        social_account: None,
                        last_message: last.map(|m| MessageView::new(m, session, &bot_public_id)),
                        reply_status: reply_status_name(status),
                    }
                })
                .collect();
            (views, *total)
        }
    };
    Ok(HttpResponse::Ok().json(json!({ "success": true, "total": total, "data": views })))
}

// ---------------------------------------------------------------------------------------------
// GET detail-sessions/{session_id}

/// A message of `detail-sessions`: the documented message with its bot, reactions and quote.
#[derive(Debug, Serialize)]
struct SessionMessage {
    #[serde(flatten)]
    message: MessageView,
    bot: Option<MessageBot>,
    reactions: Value,
    quoted_from: Option<Value>,
}

pub async fn detail_sessions(
    req: HttpRequest,
    chat: web::Data<Chat>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    session_messages(&req, &chat, &path).await
}

async fn session_messages(req: &HttpRequest, chat: &Chat, session_id: &str) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string());
    let workspace_id = workspace(req, chat, params.one("workspace_token")?).await?;
    let limit = parse_limit(params.one("limit")?, PAGE_DEFAULT, PAGE_MAX)?;
    let offset = parse_offset(params.one("offset")?)?;
    let customer_id = params
        .one("customer_id")?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing query parameter `customer_id`"))?;
    let descending = match params.one("order")?.filter(|o| !o.is_empty()) {
        None => false,
        Some(order) => match order.to_ascii_lowercase().as_str() {
            "asc" => false,
            "desc" => true,
            _ => return Err(bad("order", format!("`{order}` is not `asc` or `desc`"))),
        },
    };
    let without_system = parse_bool("remove_system_message", params.one("remove_system_message")?)?.unwrap_or(false);
    let not_found = || ApiError::not_found("session not found");
    let contact_id: i64 = customer_id.parse().map_err(|_| not_found())?;
    let order = MessageOrder { descending, without_system, limit, offset };
    let found =
        customers::session_messages(&chat.db, workspace_id, ConversationId::from(session_id), contact_id, order)
            .await?
            .ok_or_else(not_found)?;
    let customers::SessionMessages { workspace: ws, session, messages: rows, total } = found;
    let messages = {
        {
            let bot = ws.bots.get(&session.bot_id);
            let bot_public_id = ws.bot_public_id(session.bot_id);
            let messages: Vec<SessionMessage> = rows
                .iter()
                .map(|row| SessionMessage {
                    message: MessageView::new(row, &session, &bot_public_id),
                    bot: bot.map(|b| MessageBot {
                        id: b.public_id.clone(),
                        name: b.name.clone(),
                        avatar: String::new(),
                        auto_reply: b.active,
                        reply_language: None,
                        reply_unknown: b.settings().reply_unknown,
                        workspace_id: ws.public_id.clone(),
                    }),
                    reactions: json!({}),
                    quoted_from: None,
                })
                .collect::<Vec<SessionMessage>>();
            messages
        }
    };
    Ok(HttpResponse::Ok().json(json!({ "success": true, "total": total, "data": messages })))
}

// ---------------------------------------------------------------------------------------------
// POST messages

#[derive(Debug, Deserialize)]
pub struct ChatBody {
    pub workspace_token: Option<String>,
    pub bot_id: String,
    pub media: Option<Vec<MediaItem>>,
    pub content: String,
    pub metadata: Option<serde_json::Map<String, Value>>,
    pub customer_info: Option<CustomerInfoBody>,
    /// frontdesk's addition: continue this session (from an earlier answer's `session_id`).
    pub session_id: Option<String>,
}

/// A file as the upload route returns it; other fields (an upload's `id`) are ignored.
#[derive(Debug, Deserialize, Serialize)]
pub struct MediaItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    pub url: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CustomerInfoBody {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub external_id: Option<String>,
}

impl CustomerInfoBody {
    /// Trimmed (blank is absent) and checked.
    fn checked(self) -> Result<CustomerInfo, ApiError> {
        let clean = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let info = CustomerInfo {
            name: clean(self.name),
            email: clean(self.email),
            phone: clean(self.phone_number),
            external_id: clean(self.external_id),
        };
        for (field, value) in [("name", &info.name), ("external_id", &info.external_id), ("email", &info.email)] {
            if value.as_ref().is_some_and(|v| v.chars().count() > MAX_TEXT_FIELD) {
                return Err(ApiError::unprocessable(format!(
                    "`customer_info.{field}` must be at most {MAX_TEXT_FIELD} characters"
                )));
            }
        }
        if info.email.as_deref().is_some_and(|e| normalize_email(e).is_none()) {
            return Err(ApiError::unprocessable("`customer_info.email` is not an email address"));
        }
        if info.phone.as_deref().is_some_and(|p| normalize_phone(p).is_none()) {
            return Err(ApiError::unprocessable("`customer_info.phone_number` is not a phone number (7 to 15 digits)"));
        }
        Ok(info)
    }
}

pub async fn chat_with_bot(
    req: HttpRequest,
    chat: web::Data<Chat>,
    body: Result<JsonBody<ChatBody>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    async {
        let JsonBody(body, digest) = body?;
        send_message(&req, &chat, body, digest).await
    }
    .await
}

async fn send_message(
    req: &HttpRequest,
    chat: &Chat,
    body: ChatBody,
    digest: String,
) -> Result<HttpResponse, ApiError> {
    let workspace_id = workspace(req, chat, body.workspace_token.clone()).await?;
    if body.bot_id.trim().is_empty() {
        return Err(ApiError::unprocessable("`bot_id` must not be empty"));
    }
    let info = body.customer_info.map(CustomerInfoBody::checked).transpose()?.filter(|i| !i.is_empty());
    if let Some(id) = &body.session_id {
        if id.trim().is_empty() || id.len() > MAX_SESSION_ID {
            return Err(ApiError::unprocessable(format!("`session_id` must be 1 to {MAX_SESSION_ID} characters")));
        }
    }
    let media = match body.media.filter(|m| !m.is_empty()) {
        Some(items) => {
            if items.iter().any(|m| m.url.trim().is_empty()) {
                return Err(ApiError::unprocessable("every `media` item needs a `url`"));
            }
            Some(serde_json::to_value(items).map_err(ApiError::internal)?)
        }
        None => None,
    };
    let key = idempotency::key_of(req)?;
    // The key also stands in for the message's client_msg_id: a retry of a message that was
    // stored but not answered in time finds it instead of storing it twice.
    let visitor =
        chat.validate(VisitorInput { client_msg_id: key.clone(), text: body.content, media, context: None })?;
    let bot = chat
        .workspace_bot(workspace_id, Some(body.bot_id.trim().to_owned()))
        .await
        .map_err(|err| err.not_found_as("bot not found"))?;
    let metadata = body.metadata;
    let session_id = body.session_id;
    idempotency::once(&chat.db, workspace_id, "cxgenie_messages", key, &digest, move || async move {
        let customer = match info {
            Some(info) => Some(customers::upsert(&chat.db, workspace_id, info, metadata).await?),
            None => None,
        };
        let customer_id = customer.as_ref().map(|c| c.id);
        let session = match (session_id, customer_id) {
            (Some(id), _) => given_session(chat, workspace_id, &bot, &id, customer_id).await?,
            (None, Some(contact_id)) => customer_session(chat, &bot, contact_id).await?,
            (None, None) => chat.start(&bot, None, CHANNEL, json!({})).await?.id,
        };
        let (_, reply) = chat.ask(&session, visitor, REPLY_WAIT).await?;
        Ok((
            StatusCode::OK,
            json!({
                "success": true,
                "data": reply.content,
                "session_id": session,
                "customer_id": customer_id.map(|id| id.to_string()),
            }),
        ))
    })
    .await
    .map(idempotency::respond)
}

async fn link(
    chat: &Chat,
    workspace_id: WorkspaceId,
    session_id: &ConversationId,
    contact_id: i64,
) -> Result<(), ApiError> {
    customers::link(&chat.db, workspace_id, session_id.clone(), contact_id).await
}

/// The session the body names: the bot's, open, and linked to the customer if there is one.
async fn given_session(
    chat: &Chat,
    workspace_id: WorkspaceId,
    bot: &BotRow,
    session_id: &str,
    customer_id: Option<i64>,
) -> Result<ConversationId, ApiError> {
    let id = ConversationId::from(session_id.trim());
    let session = customers::session(&chat.db, workspace_id, id)
        .await?
        .filter(|s| s.bot_id == bot.id)
        .ok_or_else(|| ApiError::not_found("session not found"))?;
    if session.status == ConversationStatus::Closed {
        return Err(ApiError::conflict("this session is closed; send without `session_id` to start a new one"));
    }
    if let Some(contact_id) = customer_id.filter(|c| session.contact_id != Some(*c)) {
        link(chat, workspace_id, &session.id, contact_id).await?;
    }
    Ok(session.id)
}

/// The customer's open session with the bot, or a new one linked to them (found or started
/// atomically: two first messages of one customer start one session).
async fn customer_session(chat: &Chat, bot: &BotRow, contact_id: i64) -> Result<ConversationId, ApiError> {
    let external_id = format!("{CHANNEL}:customer:{contact_id}:{}", uuid::Uuid::new_v4().simple());
    let session = OutsideSession::OpenOfContact(contact_id);
    match chat.find_or_start(bot, external_id, CHANNEL, json!({}), session).await? {
        Continued::Found(row) | Continued::Started(row) => Ok(row.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_arrive_in_every_encoding() {
        for query in [
            "types=lead&types=users",
            "types[]=lead&types[]=users",
            "types[1]=users&types[0]=lead",
            "types=lead,users",
            "types=%5B%22lead%22%2C%22users%22%5D",
        ] {
            let mut params = Params::parse(query);
            assert_eq!(params.list("types").unwrap(), Some(vec!["lead".to_owned(), "users".to_owned()]), "{query}");
        }
        // A parameter the route does not read (an SDK's extra, a cache-buster) is ignored.
        let mut params = Params::parse("types=&other=1");
        assert_eq!(params.list("types").unwrap(), None);
        assert!(Params::parse("limit=1&limit=2").one("limit").is_err());
    }

    #[test]
    fn instants_and_cursors() {
        assert_eq!(parse_instant("2025-03-28T00:00:00Z", false), Some(1_743_120_000_000));
        assert_eq!(parse_instant("2025-03-28T07:00:00 07:00", false), Some(1_743_120_000_000));
        assert_eq!(parse_instant("2025-03-28", false), Some(1_743_120_000_000));
        assert_eq!(parse_instant("2025-03-28", true), Some(1_743_120_000_000 + 86_400_000 - 1));
        assert_eq!(parse_instant("1743120000", false), Some(1_743_120_000_000));
        assert_eq!(parse_instant("1743120000123", false), Some(1_743_120_000_123));
        assert_eq!(parse_instant("yesterday", false), None);
        let row = ContactRow {
            id: 42,
            workspace_id: WorkspaceId(1),
            kind: "customer".into(),
            name: None,
            email: None,
            phone: None,
            notes: None,
            attributes: "{}".into(),
            created_at: 1_743_120_000_117,
            updated_at: 0,
        };
        let cursor = cursor_of(&row);
        assert_eq!(cursor, "2025-03-28T00:00:00.117Z~42");
        assert_eq!(parse_cursor(&cursor).unwrap(), Cursor::After { created_at: 1_743_120_000_117, id: 42 });
        assert_eq!(parse_cursor("2025-03-28").unwrap(), Cursor::Before(1_743_120_000_000));
        assert!(parse_cursor("2025-03-28~x").is_err());
        assert!(parse_cursor("soon").is_err());
    }
}
