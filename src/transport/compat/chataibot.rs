//! ChatAIBot's "API as a channel": a business's own chat UI drives the bot with two calls.
//!
//! - `POST /api/v1/conversations` starts a conversation for one visitor (`from.user_external_id`)
//!   on the `api` channel, with the visitor's first message and optional variables (`system`,
//!   `contact`, `conversation`), and answers with the conversation, its assignee and the contact.
//! - `POST /api/v1/conversation/{id}/messages` sends the visitor's next message.
//!
//! Neither waits for the bot: its replies reach the caller as the signed `message_created`
//! webhook, by `GET /api/v1/conversation/{id}/messages?after=<seq>&wait=<s>` (long-poll), and on
//! `GET /api/v1/conversation/{id}/events` (SSE), the same handlers as `/api/conversations`.
//! A visitor has one open API conversation per bot: starting another while it is open is a 409
//! naming it. Errors carry `ok: false` beside the usual `error`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::domain::chat::{Chat, Continued, OutsideSession, VisitorInput};
use crate::error::{ApiError, JsonBody};
use crate::ids::ConversationId;
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;

/// The conversations' channel, which flows are deployed to as `api`.
pub const CHANNEL: &str = crate::domain::chat::API_CHANNEL;
/// Longest visitor id accepted.
const MAX_VISITOR_ID: usize = 200;

fn failed(err: ApiError) -> ApiError {
    err.with("ok", json!(false))
}

#[derive(Debug, Deserialize)]
pub struct MessageData {
    pub body: String,
}

#[derive(Debug, Deserialize)]
pub struct MessageIn {
    pub data: MessageData,
    #[serde(rename = "type", default = "text")]
    pub kind: String,
}

fn text() -> String {
    "text".into()
}

#[derive(Debug, Default, Deserialize)]
pub struct ContactIn {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct VariablesIn {
    pub system: Option<Map<String, Value>>,
    pub contact: Option<ContactIn>,
    pub conversation: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
pub struct FromIn {
    pub user_external_id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StartBody {
    pub channel: String,
    pub message: Option<MessageIn>,
    #[serde(default)]
    pub variables: VariablesIn,
    pub bot_key: String,
    pub from: FromIn,
}

/// The visitor's text, or why it cannot be sent.
fn visitor_text(message: &MessageIn) -> Result<String, ApiError> {
    if !message.kind.eq_ignore_ascii_case("text") {
        return Err(ApiError::bad_request(format!(
            "message.type `{}` is not supported; send \"text\" messages",
            message.kind
        )));
    }
    Ok(message.data.body.clone())
}

/// The contact as given (empty fields left out), its email and phone checked and kept as written.
fn contact_variables(contact: ContactIn) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for (field, value) in [("name", contact.name), ("email", contact.email), ("phone", contact.phone)] {
        if let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            out.insert(field.into(), value.into());
        }
    }
    crate::domain::crm::check_contact(&Value::Object(out.clone()), "variables.contact")
        .map_err(ApiError::unprocessable)?;
    Ok(out)
}

/// ChatAIBot's timestamp: `2025-02-10 20:21:03.913000` (UTC).
fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

/// A new conversation's assignee: the bot, by its public id and a stable address made from it
/// (frontdesk's bots have no mailbox of their own).
fn assignee(bot_public_id: &str) -> Value {
    json!({ "id": bot_public_id, "to": format!("{bot_public_id}@bots.frontdesk") })
}

pub async fn start(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    body: Result<JsonBody<StartBody>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    async {
        let JsonBody(body, digest) = body?;
        if !body.channel.eq_ignore_ascii_case("API") {
            return Err(ApiError::bad_request(format!("channel must be \"API\" (got \"{}\")", body.channel)));
        }
        let visitor = body.from.user_external_id.trim().to_owned();
        if visitor.is_empty() || visitor.len() > MAX_VISITOR_ID {
            return Err(ApiError::bad_request(format!(
                "from.user_external_id is required: the visitor's own id, 1 to {MAX_VISITOR_ID} characters"
            )));
        }
        if body.from.kind.as_deref().is_some_and(|kind| !kind.eq_ignore_ascii_case("VISITOR")) {
            return Err(ApiError::bad_request("from.type must be \"VISITOR\""));
        }
        let first = match &body.message {
            Some(message) => {
                let text = visitor_text(message)?;
                Some(chat.validate(VisitorInput { client_msg_id: None, text, media: None, context: None })?)
            }
            None => None,
        };
        let contact = contact_variables(body.variables.contact.unwrap_or_default())?;
        let mut variables = Map::new();
        variables.insert("system".into(), Value::Object(body.variables.system.unwrap_or_default()));
        variables.insert("contact".into(), Value::Object(contact.clone()));
        variables.insert("conversation".into(), Value::Object(body.variables.conversation.unwrap_or_default()));
        let workspace_id = caller.workspace_id;
        let bot_key = body.bot_key.trim().to_owned();
        let found = chat.find_bot(workspace_id, &bot_key).await?;
        let bot =
            found.ok_or_else(|| ApiError::not_found(format!("bot_key `{}` names no bot", body.bot_key.trim())))?;

        let key = idempotency::key_of(&req)?;
        let created = idempotency::once(&chat.db, workspace_id, "chataibot-conversations", key, &digest, || async {
            let prefix = format!("chataibot:{visitor}:");
            let external_id = format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            // One open conversation per visitor, checked and created in one transaction.
            let session = OutsideSession::OpenWithPrefix(prefix);
            let row = match chat.find_or_start(&bot, external_id, CHANNEL, Value::Object(variables), session).await? {
                Continued::Started(row) => row,
                Continued::Found(open) => {
                    return Err(ApiError::conflict(format!(
                        "visitor `{visitor}` already has an open conversation with this bot ({}); \
                         send messages to it, or close it first",
                        open.id
                    ))
                    .with("conversation_id", json!(open.id)))
                }
            };
            if contact.contains_key("name") && (contact.contains_key("email") || contact.contains_key("phone")) {
                // The contact given becomes (or finds) the CRM's contact for this visitor.
                chat.save_contact(workspace_id, &row.id).await?;
            }
            if let Some(message) = first {
                chat.post(&row.id, message).await?;
            }
            let account = chat.workspace_public_id(workspace_id).await?;
            let text = |field: &str| contact.get(field).cloned().unwrap_or(Value::Null);
            let body = json!({
                "ok": true,
                "conversation": {
                    "id": row.id,
                    "created_at": timestamp(row.created_at),
                    "assignee": assignee(&bot.public_id),
                },
                "contact": {
                    "name": text("name"),
                    "email": text("email"),
                    "phone": text("phone"),
                    "visitor_key": format!("{visitor}_{}", account.unwrap_or_default()),
                },
            });
            Ok((StatusCode::OK, body))
        })
        .await?;
        Ok(idempotency::respond(created))
    }
    .await
    .map_err(failed)
}

#[derive(Debug, Deserialize)]
pub struct UserIn {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
pub struct SendBody {
    pub message: MessageIn,
    pub user: Option<UserIn>,
}

pub async fn send(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<ConversationId>,
    body: Result<JsonBody<SendBody>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    async {
        let body = body?.0;
        if body.user.as_ref().is_some_and(|user| !user.kind.eq_ignore_ascii_case("VISITOR")) {
            return Err(ApiError::bad_request(
                "user.type must be \"VISITOR\"; agents write through /api/conversations/{id}/agent-messages",
            ));
        }
        let text = visitor_text(&body.message)?;
        let message = chat.validate(VisitorInput {
            client_msg_id: idempotency::key_of(&req)?,
            text,
            media: None,
            context: None,
        })?;
        let row = chat.conversation(caller.workspace_id, &path).await?;
        let posted = chat.post(&row.id, message).await?;
        Ok(HttpResponse::Ok().json(json!({ "ok": true, "message_id": posted.message.id.to_string() })))
    }
    .await
    .map_err(failed)
}
