//! ChatSupport AI's routes (bearer API key): `POST /api/widget/chat` (`message`, `widgetId`,
//! optional `sessionId` and a per-request `context` of company rules, policies, tone and
//! scraped text, honoured for that answer only) answering `{id, message, timestamp}`, and the
//! SDK's `scrapeUrl`, which frontdesk serves at `POST /api/scrape` (`{url, widgetId?}`): the
//! page is fetched through the SSRF guard and its readable text returned, ready to pass back
//! as `context.scrapedData`; with a `widgetId` the page also becomes a knowledge source of
//! that widget's bot. The SDK's `getWidgetConfig()` is served at `GET /api/widget/config`
//! (`?widgetId=`, else the workspace's first bot): the widget's public configuration (see
//! [`crate::transport::web::widget_config`]) with `widgetId`.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::chat::{Chat, VisitorInput};
use crate::domain::knowledge::{extract, Knowledge, SourceInput};
use crate::error::{ApiError, JsonBody};
use crate::transport::http::auth::Caller;

const REPLY_WAIT: Duration = Duration::from_secs(30);
const MAX_SESSION_ID: usize = 128;
const SESSION_PREFIX: &str = "chatsupport:";
/// Most text `scrapeUrl` returns, in characters.
const MAX_SCRAPED_CHARS: usize = 100_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatRequest {
    pub message: String,
    pub widget_id: String,
    pub session_id: Option<String>,
    pub context: Option<RequestContext>,
}

/// The documented `context`; checked for shape here, read by the brain.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub rules: Option<Rules>,
    pub scraped_data: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rules {
    pub company_name: Option<String>,
    pub company_description: Option<String>,
    #[serde(default)]
    pub policies: Vec<Policy>,
    pub tone: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Policy {
    pub title: String,
    pub content: String,
}

#[derive(Debug, Serialize)]
pub struct ChatResponse {
    pub id: String,
    pub message: String,
    pub timestamp: String,
}

pub async fn chat(
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<ChatRequest>,
) -> Result<HttpResponse, ApiError> {
    let ChatRequest { message, widget_id, session_id, context } = body.0;
    if widget_id.trim().is_empty() {
        return Err(ApiError::bad_request("`widgetId` must not be empty"));
    }
    let bot = chat
        .workspace_bot(caller.workspace_id, Some(widget_id))
        .await
        .map_err(|err| err.not_found_as("widget not found"))?;
    let context = context.map(|c| serde_json::to_value(c).unwrap_or_default());
    let visitor = chat.validate(VisitorInput { text: message, context, ..VisitorInput::default() })?;
    let session = match session_id {
        Some(id) if id.trim().is_empty() || id.len() > MAX_SESSION_ID => {
            return Err(ApiError::bad_request(format!("`sessionId` must be 1 to {MAX_SESSION_ID} characters")))
        }
        Some(id) => id,
        // Without a session every message is a conversation of its own.
        None => uuid::Uuid::new_v4().to_string(),
    };
    let conversation = chat.session_conversation(&bot, format!("{SESSION_PREFIX}{session}"), "chatsupport").await?;
    let (_, reply) = chat.ask(&conversation.id, visitor, REPLY_WAIT).await?;
    let timestamp = Utc
        .timestamp_millis_opt(reply.created_at)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Ok(HttpResponse::Ok().json(ChatResponse { id: format!("resp_{}", reply.id), message: reply.content, timestamp }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeRequest {
    pub url: String,
    pub widget_id: Option<String>,
}

pub async fn scrape(
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    body: JsonBody<ScrapeRequest>,
) -> Result<HttpResponse, ApiError> {
    let ScrapeRequest { url, widget_id } = body.0;
    crate::net_guard::check_url(&url, knowledge.policy.clone())
        .map_err(|err| ApiError::unprocessable(format!("invalid `url`: {err}")))?;
    let bot = match widget_id {
        Some(id) => Some(
            chat.workspace_bot(caller.workspace_id, Some(id))
                .await
                .map_err(|err| err.not_found_as("widget not found"))?,
        ),
        None => None,
    };
    let fetched = knowledge
        .fetcher
        .fetch(&url)
        .await
        .map_err(|err| ApiError::unprocessable(format!("could not scrape the URL: {err}")))?;
    let page_url = fetched.url.to_string();
    let document = web::block(move || {
        let kind = extract::sniff(&fetched.body, Some(&page_url), fetched.content_type.as_deref())?;
        extract::extract(kind, &fetched.body, &page_url)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|err| ApiError::unprocessable(format!("could not read the page: {err}")))?;
    let mut content = document
        .sections
        .iter()
        .map(|s| if s.title.is_empty() { s.text.clone() } else { format!("{}\n{}", s.title, s.text) })
        .collect::<Vec<_>>()
        .join("\n\n");
    if let Some((cut, _)) = content.char_indices().nth(MAX_SCRAPED_CHARS) {
        content.truncate(cut);
    }
    let source_id = match bot {
        Some(bot) => {
            let input = SourceInput {
                bot: Some(bot.public_id),
                kind: "url".into(),
                url: Some(url.clone()),
                ..Default::default()
            };
            Some(knowledge.add_source(caller.workspace_id, input).await?.id)
        }
        None => None,
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "url": url,
        "title": document.title,
        "content": content,
        "sourceId": source_id,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WidgetConfigQuery {
    pub widget_id: Option<String>,
}

/// `GET /api/widget/config`: the SDK's `getWidgetConfig()`.
pub async fn widget_config(
    chat: web::Data<Chat>,
    caller: Caller,
    query: crate::error::QueryParams<WidgetConfigQuery>,
) -> Result<HttpResponse, ApiError> {
    let bot = chat.workspace_bot(caller.workspace_id, query.0.widget_id).await?;
    let workspace_id = caller.workspace_id;
    let online = chat.anyone_online(workspace_id).await?;
    let config = crate::transport::web::widget_config::PublicConfig::new(&bot, online, &chat.limits);
    let mut body = serde_json::to_value(config).map_err(ApiError::internal)?;
    body["widgetId"] = serde_json::json!(bot.public_id);
    body["active"] = serde_json::json!(bot.active);
    Ok(HttpResponse::Ok().json(body))
}
