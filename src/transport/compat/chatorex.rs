//! Chatorex's chat: `POST /api/chat` `{message, chatbot_id, session_id?}` answers
//! `{response, session_id, message_id, created_at, sources}`. A `session_id` names the visitor's
//! conversation with that bot, so later messages with it keep their context; without one a new
//! conversation starts and its generated `session_id` is returned to continue it. Fields the
//! document does not show are accepted and ignored, as an SDK may send more.
//!
//! Its knowledge routes: `GET /api/sources` (`?chatbot_id=` to filter), `POST
//! /api/sources` (`type` `url`, `text` or `file`; JSON, or multipart with the file in a `file`
//! part) and `DELETE /api/sources?id=`. Sources are frontdesk's own ([`crate::domain::knowledge`]);
//! a Chatorex source shows as frontdesk's view with `chatbot_id` beside `bot_id`.
//!
//! And its widget routes: `GET /api/widget-config` (appearance and quick prompts) and `GET`/`PUT
//! /api/widget-settings` (colours, welcome message, position, lead capture, …), each for
//! `?chatbot_id=` or the workspace's first bot; a `PUT` changes only the fields it sends. They
//! read and write the bot's widget settings (see [`crate::transport::web::widget_config`]).

use std::time::Duration;

use actix_multipart::Multipart;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::domain::chat::{Chat, VisitorInput};
use crate::domain::directory::{BotChanges, SourceRow};
use crate::domain::knowledge::{Knowledge, SourceInput};
use crate::error::{ApiError, JsonBody, QueryParams};
use crate::ids::WorkspaceId;
use crate::transport::http::auth::Caller;
use crate::transport::http::knowledge::{receive_files, views, AuthorizeAt, UploadPolicy};
use crate::transport::web::widget_config::{ChatorexSettings, WidgetPatch};

/// How long `POST /api/chat` waits for the bot's reply.
const REPLY_WAIT: Duration = Duration::from_secs(30);
const MAX_SESSION_ID: usize = 128;
/// Outside sessions of Chatorex callers are kept apart from other channels' with this prefix.
const SESSION_PREFIX: &str = "chatorex:";

/// The documented body of `POST /api/chat`.
#[derive(Debug, Deserialize)]
pub struct ChatBody {
    pub message: String,
    pub chatbot_id: String,
    pub session_id: Option<String>,
}

/// `POST /api/chat`: the bot's reply, and the session to continue with.
pub async fn chat(chat: web::Data<Chat>, caller: Caller, body: JsonBody<ChatBody>) -> Result<HttpResponse, ApiError> {
    let ChatBody { message, chatbot_id, session_id } = body.0;
    if chatbot_id.trim().is_empty() {
        return Err(ApiError::bad_request("`chatbot_id` must not be empty"));
    }
    let session = match session_id {
        Some(id) if id.trim().is_empty() || id.chars().count() > MAX_SESSION_ID => {
            return Err(ApiError::bad_request(format!("`session_id` must be 1 to {MAX_SESSION_ID} characters")))
        }
        Some(id) => id,
        None => uuid::Uuid::new_v4().to_string(),
    };
    let bot = chat
        .workspace_bot(caller.workspace_id, Some(chatbot_id))
        .await
        .map_err(|err| err.not_found_as("chatbot not found"))?;
    let visitor = chat.validate(VisitorInput { text: message, ..VisitorInput::default() })?;
    let conversation = chat.session_conversation(&bot, format!("{SESSION_PREFIX}{session}"), "chatorex").await?;
    let (_, reply) = chat.ask(&conversation.id, visitor, REPLY_WAIT).await?;
    let sources: Vec<serde_json::Value> = reply
        .metadata
        .as_ref()
        .and_then(|m| m["citations"].as_array())
        .map(|citations| {
            citations
                .iter()
                .map(|c| serde_json::json!({ "title": c["title"], "url": c["url"], "source_id": c["source_id"] }))
                .collect()
        })
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "response": reply.content,
        "session_id": session,
        "message_id": reply.id,
        "created_at": crate::domain::booking::rfc3339(reply.created_at),
        "sources": sources,
    })))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub chatbot_id: Option<String>,
}

async fn shown(
    chat: &Chat,
    workspace_id: WorkspaceId,
    rows: Vec<SourceRow>,
) -> Result<Vec<serde_json::Value>, ApiError> {
    Ok(views(chat, workspace_id, rows)
        .await?
        .into_iter()
        .map(|view| {
            let mut value = serde_json::to_value(&view).unwrap_or_default();
            value["chatbot_id"] = value["bot_id"].clone();
            value
        })
        .collect())
}

pub async fn list(
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    query: QueryParams<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let rows = knowledge.sources(caller.workspace_id, query.0.chatbot_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sources": shown(&chat, caller.workspace_id, rows).await? })))
}

#[derive(Debug, Deserialize)]
pub struct SourceBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub chatbot_id: Option<String>,
    pub url: Option<String>,
    pub title: Option<String>,
    /// The text of a `text` source (`text` is accepted as another name for it).
    #[serde(alias = "text")]
    pub content: Option<String>,
    /// A file uploaded before (`POST /api/files`), for a `file` source sent as JSON.
    pub upload_id: Option<String>,
    pub max_pages: Option<i64>,
    pub max_depth: Option<i64>,
    #[serde(default)]
    pub sitemap: bool,
}

pub async fn create(
    req: HttpRequest,
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let workspace_id = caller.workspace_id;
    let is_multipart = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let input = if is_multipart {
        let received = receive_files(
            &knowledge,
            Multipart::new(req.headers(), payload),
            UploadPolicy::knowledge(&knowledge),
            AuthorizeAt::FirstFile,
            |_| async move { Ok(workspace_id) },
        )
        .await?;
        let kind = received.field("type").unwrap_or("file");
        if kind != "file" {
            return Err(ApiError::bad_request("a multipart source must have `type` file"));
        }
        let [file] = received.files.as_slice() else {
            return Err(ApiError::bad_request("send exactly one file part (named `file`) for a file source"));
        };
        SourceInput {
            bot: received.field("chatbot_id").map(str::to_owned),
            kind: "file".into(),
            title: received.field("title").map(str::to_owned),
            upload_id: Some(file.id.clone()),
            ..SourceInput::default()
        }
    } else {
        let mut payload = payload.into_inner();
        let body = JsonBody::<SourceBody>::from_request(&req, &mut payload).await?.0;
        SourceInput {
            bot: body.chatbot_id,
            kind: body.kind,
            title: body.title,
            url: body.url,
            content: body.content,
            upload_id: body.upload_id,
            crawl_max_pages: body.max_pages,
            crawl_max_depth: body.max_depth,
            use_sitemap: body.sitemap,
            ..SourceInput::default()
        }
    };
    let row = knowledge.add_source(workspace_id, input).await?;
    let source = shown(&chat, workspace_id, vec![row]).await?.remove(0);
    Ok(HttpResponse::Created().json(serde_json::json!({ "source": source })))
}

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    pub id: Option<String>,
}

pub async fn delete(
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    query: QueryParams<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let raw = query.0.id.ok_or_else(|| ApiError::bad_request("missing query parameter `id`"))?;
    let id: i64 = raw.parse().map_err(|_| ApiError::not_found("knowledge source not found"))?;
    knowledge.delete(caller.workspace_id, id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "success": true, "id": raw })))
}

#[derive(Debug, Deserialize)]
pub struct WidgetQuery {
    pub chatbot_id: Option<String>,
}

/// `GET /api/widget-config`: the widget's appearance and quick prompts.
pub async fn widget_config(
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<WidgetQuery>,
) -> Result<HttpResponse, ApiError> {
    let bot = chat.workspace_bot(caller.workspace_id, query.0.chatbot_id).await?;
    let settings = ChatorexSettings::of(&bot);
    let title = if settings.title.is_empty() { bot.name.clone() } else { settings.title.clone() };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "chatbot_id": bot.public_id,
        "appearance": {
            "primary_color": settings.primary_color,
            "position": settings.position,
            "title": title,
            "subtitle": settings.subtitle,
            "avatar_url": settings.avatar_url,
            "launcher_text": settings.launcher_text,
            "launcher_icon": settings.launcher_icon,
        },
        "welcome_message": settings.welcome_message,
        "quick_prompts": settings.quick_prompts,
    })))
}

/// `GET /api/widget-settings`: every widget setting, flat.
pub async fn widget_settings(
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<WidgetQuery>,
) -> Result<HttpResponse, ApiError> {
    let bot = chat.workspace_bot(caller.workspace_id, query.0.chatbot_id).await?;
    Ok(HttpResponse::Ok().json(ChatorexSettings::of(&bot)))
}

/// `PUT /api/widget-settings`: changes the fields sent, checked together; answers the settings
/// as they now stand.
pub async fn update_widget_settings(
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<WidgetQuery>,
    body: JsonBody<WidgetPatch>,
) -> Result<HttpResponse, ApiError> {
    let mut patch = body.0;
    let wanted = patch.chatbot_id.take().or(query.0.chatbot_id);
    let bot = chat.workspace_bot(caller.workspace_id, wanted).await?;
    let settings = patch.apply(bot.settings())?;
    let workspace_id = caller.workspace_id;
    let changes = BotChanges { settings: Some(settings), ..BotChanges::default() };
    let row = chat
        .update_bot(workspace_id, &bot.public_id, changes)
        .await?
        .ok_or_else(|| ApiError::not_found("bot not found"))?;
    Ok(HttpResponse::Ok().json(ChatorexSettings::of(&row)))
}
