//! `/api/conversations`: start, read, post visitor messages (answered in the response), list
//! messages after a cursor with an optional long-poll wait, close.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_actors::StoredMessage;
use serde::{Deserialize, Serialize};

use crate::domain::chat::{Chat, VisitorInput};
use crate::error::{ApiError, JsonBody, NoFields, OptionalJsonBody, QueryParams};
use crate::ids::ConversationId;
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;
use crate::transport::revocation::Revocations;

/// How long `POST …/messages` waits for the bot's reply before answering without it.
const REPLY_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartConversation {
    /// The bot's public id; the workspace's first bot when left out.
    pub bot_id: Option<String>,
    /// The caller's own id for this conversation (unique per bot).
    pub external_id: Option<String>,
    #[serde(default)]
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
}

pub async fn start(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<StartConversation>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body, digest) = body;
    if let Some(external_id) = &body.external_id {
        if external_id.is_empty() || external_id.len() > 200 {
            return Err(ApiError::unprocessable("external_id must be 1 to 200 characters"));
        }
    }
    let key = idempotency::key_of(&req)?;
    idempotency::once(&chat.db, caller.workspace_id, "conversations", key, &digest, || async {
        let bot = chat.workspace_bot(caller.workspace_id, body.bot_id).await?;
        let variables = serde_json::Value::Object(body.variables.unwrap_or_default());
        let row = chat.start(&bot, body.external_id, "rest", variables).await?;
        Ok((StatusCode::CREATED, chat.view(row).await?))
    })
    .await
    .map(idempotency::respond)
}

pub async fn get(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let row = chat.conversation(caller.workspace_id, &path).await?;
    Ok(HttpResponse::Ok().json(chat.view(row).await?))
}

pub async fn close(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
    _body: OptionalJsonBody<NoFields>,
) -> Result<HttpResponse, ApiError> {
    let row = chat.conversation(caller.workspace_id, &path).await?;
    chat.close(&row.id).await?;
    let row = chat.conversation(caller.workspace_id, &row.id).await?;
    Ok(HttpResponse::Ok().json(chat.view(row).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub text: String,
    pub client_msg_id: Option<String>,
    pub media: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendOptions {
    /// Wait for the bot's reply and include it (default true).
    #[serde(default = "yes")]
    pub wait: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize)]
pub struct SendResult {
    pub message: StoredMessage,
    /// The bot's reply; null when the bot did not answer within the wait, or was not waited for.
    pub reply: Option<StoredMessage>,
    /// True when this `client_msg_id` had been sent before: nothing new was stored.
    pub duplicate: bool,
}

/// Sends a visitor message. An `Idempotency-Key` header stands in for a missing
/// `client_msg_id`: either way a retry returns the first message and reply.
pub async fn send(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
    options: QueryParams<SendOptions>,
    body: JsonBody<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let client_msg_id = match body.client_msg_id {
        Some(id) => Some(id),
        None => idempotency::key_of(&req)?,
    };
    let message = chat.validate(VisitorInput { client_msg_id, text: body.text, media: body.media, context: None })?;
    let row = chat.conversation(caller.workspace_id, &path).await?;
    let posted = chat.post(&row.id, message).await?;
    let reply = if options.0.wait {
        tokio::time::timeout(REPLY_WAIT, posted.reply).await.ok().and_then(Result::ok)
    } else {
        None
    };
    let result = SendResult { message: posted.message, reply, duplicate: posted.duplicate };
    Ok(if result.duplicate { HttpResponse::Ok() } else { HttpResponse::Created() }.json(result))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListMessages {
    /// Return messages with `seq` greater than this (default 0: from the start).
    #[serde(default)]
    pub after: i64,
    /// Page size, 1 to 100 (default 50).
    pub limit: Option<i64>,
    /// Seconds to wait for a message when there is none yet, 0 to 60 (default 0).
    #[serde(default)]
    pub wait: u64,
}

#[derive(Debug, Serialize)]
pub struct MessagePage {
    pub messages: Vec<StoredMessage>,
    /// The cursor for the next call: the last `seq` returned, or `after` if none.
    pub next_after: i64,
    /// True when more messages follow right away.
    pub has_more: bool,
}

pub async fn list_messages(
    chat: web::Data<Chat>,
    revocations: web::Data<Revocations>,
    caller: Caller,
    path: web::Path<ConversationId>,
    query: QueryParams<ListMessages>,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    let max_page = chat.limits.max_page_size;
    let limit = query.limit.unwrap_or(50);
    if !(1..=max_page).contains(&limit) {
        return Err(ApiError::unprocessable(format!("limit must be between 1 and {max_page}")));
    }
    if query.after < 0 {
        return Err(ApiError::unprocessable("after must not be negative"));
    }
    if query.wait > chat.limits.max_wait_secs {
        return Err(ApiError::unprocessable(format!("wait must be at most {} seconds", chat.limits.max_wait_secs)));
    }
    let row = chat.conversation(caller.workspace_id, &path).await?;
    // A long poll ends with 401 as soon as its credential is revoked.
    let watch = revocations.into_inner().watch(caller.credential, caller.token_hash.clone());
    let waiting =
        chat.wait_for_messages(caller.workspace_id, &row.id, query.after, limit, Duration::from_secs(query.wait));
    let messages = tokio::select! {
        messages = waiting => messages?,
        Ok(()) = watch.revoked => return Err(ApiError::unauthorized(crate::transport::revocation::CLOSE_REASON)),
    };
    let next_after = messages.last().map(|m| m.seq).unwrap_or(query.after);
    let has_more = messages.len() as i64 == limit;
    Ok(HttpResponse::Ok().json(MessagePage { messages, next_after, has_more }))
}

/// The conversation's variables: `system`, `contact`, `conversation`, the flow's own (`flow`)
/// and its position (`flow_run`).
pub async fn variables(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let row = chat.conversation(caller.workspace_id, &path).await?;
    let variables: serde_json::Value = serde_json::from_str(&row.variables).unwrap_or_default();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "conversation_id": row.id, "variables": variables })))
}

/// Variable groups the API may set; `flow_run` is the engine's own.
const SETTABLE: &[&str] = &["system", "contact", "conversation", "flow"];

/// Merges variables into the conversation, through its session so the next turn sees them:
/// each group's keys are set, `null` removes one. Contact details go to the CRM.
pub async fn update_variables(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
    body: JsonBody<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.0;
    for (group, value) in &patch {
        if !SETTABLE.contains(&group.as_str()) {
            return Err(ApiError::unprocessable(format!(
                "`{group}` cannot be set; variable groups are {}",
                SETTABLE.join(", ")
            )));
        }
        if !value.is_object() {
            return Err(ApiError::unprocessable(format!("`{group}` must be an object of variables")));
        }
    }
    let row = chat.conversation(caller.workspace_id, &path).await?;
    let variables = chat.update_variables(caller.workspace_id, &row.id, serde_json::Value::Object(patch)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "conversation_id": row.id, "variables": variables })))
}
