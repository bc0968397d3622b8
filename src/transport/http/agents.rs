//! `/api/agents` (the people who answer conversations) and the agents' REST view of
//! conversations: the inbox list, taking over, handing back, asking for a person, writing as
//! an agent, marking read, and the ownership history. Tools without a socket use these; the
//! agent socket (`/ws/agent`) does the same through [`crate::domain::chat::Chat`].
//!
//! Agent accounts are managed with an API key or an admin's agent token (the auth middleware
//! keeps other agents' tokens to the conversation routes and `/api/agents/me`).
//!
//! The acting agent is the caller when it signed in with an agent token; with an API key the
//! body names it (`agent_id`), and it must be an agent of the same workspace.

use actix_web::{web, HttpResponse};
use frontdesk_actors::{AgentRef, ChangedBy, ConversationStatus, Owner, Sender};
use serde::Deserialize;

use crate::domain::agents::{self, AgentChanges as Changes};
use crate::domain::chat::Chat;
use crate::domain::inbox::{self, Cursor, InboxFilter};
use crate::error::{ApiError, JsonBody, NoFields, OptionalJsonBody, QueryParams};
use crate::ids::{ConversationId, WorkspaceId};
use crate::status::{AgentRole, Presence};
use crate::transport::http::auth::Caller;
use crate::transport::revocation::{Credential, Revocations};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    pub name: String,
    pub email: String,
    pub role: Option<AgentRole>,
}

pub async fn create(chat: web::Data<Chat>, caller: Caller, body: JsonBody<NewAgent>) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let (agent, token) = agents::create(&chat.db, caller.workspace_id, &body.name, &body.email, body.role).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "agent": agent, "token": token })))
}

pub async fn list(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let rows = agents::list(&chat.db, caller.workspace_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "agents": rows })))
}

pub async fn get(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(agents::get(&chat.db, caller.workspace_id, *path).await?))
}

pub async fn me(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let agent = caller.agent.as_ref().ok_or_else(|| ApiError::bad_request("`/api/agents/me` needs an agent token"))?;
    Ok(HttpResponse::Ok().json(agents::get(&chat.db, caller.workspace_id, agent.id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentChanges {
    pub name: Option<String>,
    pub role: Option<AgentRole>,
    pub presence: Option<Presence>,
}

async fn apply_changes(
    chat: &Chat,
    workspace_id: WorkspaceId,
    id: i64,
    changes: AgentChanges,
) -> Result<HttpResponse, ApiError> {
    let changes = Changes { name: changes.name, role: changes.role, presence: changes.presence };
    Ok(HttpResponse::Ok().json(agents::update(&chat.db, workspace_id, id, changes).await?))
}

pub async fn update(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<AgentChanges>,
) -> Result<HttpResponse, ApiError> {
    apply_changes(&chat, caller.workspace_id, *path, body.0).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceBody {
    pub presence: Presence,
}

/// An agent sets their own presence (`online`, `away`, `offline`).
pub async fn set_my_presence(
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<PresenceBody>,
) -> Result<HttpResponse, ApiError> {
    let agent = caller.agent.as_ref().ok_or_else(|| ApiError::bad_request("this route needs an agent token"))?;
    let changes = AgentChanges { name: None, role: None, presence: Some(body.0.presence) };
    apply_changes(&chat, caller.workspace_id, agent.id, changes).await
}

/// Deletes the agent; their open sockets and streams end at once, on every node.
pub async fn delete(
    chat: web::Data<Chat>,
    revocations: web::Data<Revocations>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    if agents::delete(&chat.db, workspace_id, id).await? {
        revocations.revoke(workspace_id, Credential::Agent(id));
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("agent not found"))
    }
}

/// `POST /api/agents/{id}/token`: gives the agent a new token (shown once); the old one stops
/// working and every connection the agent has open ends, on every node.
pub async fn rotate_token(
    chat: web::Data<Chat>,
    revocations: web::Data<Revocations>,
    caller: Caller,
    path: web::Path<i64>,
    _body: OptionalJsonBody<NoFields>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    let (agent, token) = agents::rotate_token(&chat.db, workspace_id, id).await?;
    revocations.revoke(workspace_id, Credential::Agent(id));
    Ok(HttpResponse::Ok().json(serde_json::json!({ "agent": agent, "token": token })))
}

/// `POST /api/agents/{id}/invite`: a one-time link that sets the agent's console password (an
/// invite, or a reset: their sessions end once it is used), valid for a week.
pub async fn invite(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    _body: OptionalJsonBody<NoFields>,
) -> Result<HttpResponse, ApiError> {
    let (token, expires_at) = agents::invite(&chat.db, caller.workspace_id, *path).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "link": crate::transport::http::console_auth::link_path(&token),
        "expires_at": expires_at,
    })))
}

/// The agent acting in a request: the caller's own, or the one the body names (API keys only).
pub async fn acting_agent(chat: &Chat, caller: &Caller, named: Option<i64>) -> Result<AgentRef, ApiError> {
    match (&caller.agent, named) {
        (Some(me), None) => Ok(me.clone()),
        (Some(me), Some(id)) if id == me.id => Ok(me.clone()),
        (Some(_), Some(_)) => Err(ApiError::forbidden("an agent token acts only as its own agent")),
        (None, Some(id)) => Ok(agents::get(&chat.db, caller.workspace_id, id).await?.as_ref()),
        (None, None) => Err(ApiError::bad_request("`agent_id` is required with an API key")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConversations {
    pub status: Option<ConversationStatus>,
    pub owner: Option<Owner>,
    pub agent_id: Option<i64>,
    pub unread: Option<bool>,
    /// Started at or after this time: RFC 3339 or milliseconds since the epoch.
    pub from: Option<String>,
    /// Started before this time.
    pub to: Option<String>,
    /// Only this bot's conversations (its public id).
    pub bot_id: Option<String>,
    /// Only the conversations of this CRM contact (a patient's or customer's id).
    pub contact_id: Option<i64>,
    /// Words in the contact's name or email or in what the visitor or an agent wrote (2 to 100
    /// characters).
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

fn parse_time(field: &str, value: Option<String>) -> Result<Option<i64>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(Some(ms));
    }
    chrono::DateTime::parse_from_rfc3339(&value).map(|t| Some(t.timestamp_millis())).map_err(|_| {
        ApiError::bad_request(format!("invalid query parameter `{field}`: an RFC 3339 time or milliseconds"))
    })
}

/// `GET /api/conversations`: the workspace's conversations, newest first, filtered, a page at a
/// time; `next_cursor` fetches the next page (null on the last).
pub async fn list_conversations(
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<ListConversations>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("invalid query parameter `limit`: 1 to 200"));
    }
    let cursor = match &q.cursor {
        Some(text) => {
            Some(Cursor::decode(text).ok_or_else(|| ApiError::bad_request("invalid query parameter `cursor`"))?)
        }
        None => None,
    };
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    if search.as_ref().is_some_and(|s| s.chars().count() < 2 || s.chars().count() > 100) {
        return Err(ApiError::bad_request("invalid query parameter `q`: 2 to 100 characters"));
    }
    let bot_id = match q.bot_id {
        Some(public_id) => Some(chat.workspace_bot(caller.workspace_id, Some(public_id)).await?.id),
        None => None,
    };
    let filter = InboxFilter {
        status: q.status,
        owner: q.owner,
        agent_id: q.agent_id,
        unread: q.unread,
        from: parse_time("from", q.from)?,
        to: parse_time("to", q.to)?,
        bot_id,
        contact_id: q.contact_id,
        search,
    };
    let (items, next) = inbox::page(&chat.db, caller.workspace_id, filter, cursor, limit).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "conversations": items, "next_cursor": next.map(|c| c.encode()) })))
}

/// `GET /api/conversations/{id}/detail`: the conversation as the inbox shows it, with its
/// messages (up to 200 most recent), its ownership history and the model tokens its replies
/// used.
pub async fn detail(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let row = chat.conversation(caller.workspace_id, &path).await?;
    let inbox::Detail { item, messages, transitions, tokens } =
        inbox::detail(&chat.db, caller.workspace_id, row).await?;
    let mut body = serde_json::to_value(item).map_err(ApiError::internal)?;
    let (prompt_tokens, completion_tokens, replies) = tokens;
    body["model_usage"] = serde_json::json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "replies": replies,
    });
    body["messages"] = serde_json::to_value(messages).map_err(ApiError::internal)?;
    body["transitions"] = serde_json::to_value(transitions).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActAs {
    pub agent_id: Option<i64>,
    pub reason: Option<String>,
}

/// The conversation's view after an action.
async fn view_after(chat: &Chat, workspace_id: WorkspaceId, id: &ConversationId) -> Result<HttpResponse, ApiError> {
    let row = chat.conversation(workspace_id, id).await?;
    Ok(HttpResponse::Ok().json(chat.view(row).await?))
}

/// The body, or the defaults when none was sent. A body that is sent but cannot be read is a
/// 400 from the extractor, never taken as the defaults: the action must not run on a typo.
fn optional_body<T: Default>(body: OptionalJsonBody<T>) -> T {
    body.0.unwrap_or_default()
}

pub async fn take_over(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
    body: OptionalJsonBody<ActAs>,
) -> Result<HttpResponse, ApiError> {
    let body = optional_body(body);
    let row = chat.conversation(caller.workspace_id, &path).await?;
    let agent = acting_agent(&chat, &caller, body.agent_id).await?;
    chat.take_over(&row.id, agent, ChangedBy::Agent).await?;
    view_after(&chat, caller.workspace_id, &row.id).await
}

pub async fn hand_back(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
    body: OptionalJsonBody<ActAs>,
) -> Result<HttpResponse, ApiError> {
    let body = optional_body(body);
    let row = chat.conversation(caller.workspace_id, &path).await?;
    let agent = match (&caller.agent, body.agent_id) {
        (None, None) => None,
        _ => Some(acting_agent(&chat, &caller, body.agent_id).await?),
    };
    let by = if agent.is_some() { ChangedBy::Agent } else { ChangedBy::Api };
    chat.hand_back(&row.id, agent, by, body.reason).await?;
    view_after(&chat, caller.workspace_id, &row.id).await
}

pub async fn request_handoff(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
    body: OptionalJsonBody<ActAs>,
) -> Result<HttpResponse, ApiError> {
    let body = optional_body(body);
    let row = chat.conversation(caller.workspace_id, &path).await?;
    chat.request_handoff(&row.id, ChangedBy::Api, body.reason).await?;
    view_after(&chat, caller.workspace_id, &row.id).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSend {
    pub agent_id: Option<i64>,
    pub text: String,
    pub client_msg_id: Option<String>,
    pub media: Option<serde_json::Value>,
}

/// `POST /api/conversations/{id}/agent-messages`: a message from the agent who owns it.
pub async fn send_as_agent(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
    body: JsonBody<AgentSend>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let row = chat.conversation(caller.workspace_id, &path).await?;
    let agent = acting_agent(&chat, &caller, body.agent_id).await?;
    let (message, duplicate) = chat.agent_says(&row.id, agent, body.client_msg_id, body.text, body.media).await?;
    let body = serde_json::json!({ "message": message, "duplicate": duplicate });
    Ok(if duplicate { HttpResponse::Ok() } else { HttpResponse::Created() }.json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadUpTo {
    pub agent_id: Option<i64>,
    /// The highest `seq` read; the conversation's last message when left out.
    pub seq: Option<i64>,
}

/// `POST /api/conversations/{id}/read`: the agents have read the conversation up to `seq`.
pub async fn mark_read(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
    body: OptionalJsonBody<ReadUpTo>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0.unwrap_or(ReadUpTo { agent_id: None, seq: None });
    let row = chat.conversation(caller.workspace_id, &path).await?;
    if caller.agent.is_some() || body.agent_id.is_some() {
        acting_agent(&chat, &caller, body.agent_id).await?;
    }
    if body.seq.is_some_and(|seq| seq < 0) {
        return Err(ApiError::unprocessable("`seq` must not be negative"));
    }
    let seq = chat.mark_read(&row.id, Sender::Agent, body.seq.unwrap_or(i64::MAX)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "conversation_id": row.id, "agent_read_seq": seq })))
}
