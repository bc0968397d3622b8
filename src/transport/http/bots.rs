//! `/api/workspace` and `/api/bots`: the caller's workspace and its bots' settings.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::brain::model::check_bot_model;
use crate::config::ModelDefaults;
use crate::domain::chat::Chat;
use crate::domain::directory::{BotChanges, BotRow, BotSettings, NewBot};
use crate::error::{ApiError, JsonBody};
use crate::ids::WorkspaceId;
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;

/// A bot as the API shows it; `id` is its public id.
#[derive(Debug, Serialize)]
pub struct BotView {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub settings: BotSettings,
    pub allowed_origins: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<BotRow> for BotView {
    fn from(row: BotRow) -> Self {
        BotView {
            settings: row.settings(),
            allowed_origins: row.allowed_origins(),
            id: row.public_id,
            name: row.name,
            active: row.active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

pub async fn workspace(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    workspace_view(&chat, caller.workspace_id).await
}

/// The workspace with its own quotas (`null`: the server's).
pub async fn workspace_view(chat: &Chat, id: WorkspaceId) -> Result<HttpResponse, ApiError> {
    let (row, quotas) = chat.workspace(id).await?;
    let mut body = serde_json::to_value(row).map_err(ApiError::internal)?;
    body["rate_limit_per_minute"] = serde_json::json!(quotas.rate_limit_per_minute);
    body["chat_rate_limit_per_minute"] = serde_json::json!(quotas.chat_rate_limit_per_minute);
    body["country"] = serde_json::json!(chat.workspace_country(id).await?);
    Ok(HttpResponse::Ok().json(body))
}

pub async fn list(chat: web::Data<Chat>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let rows = chat.bots(caller.workspace_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": rows.into_iter().map(BotView::from).collect::<Vec<_>>() })))
}

pub async fn get(chat: web::Data<Chat>, caller: Caller, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let bot = chat.workspace_bot(caller.workspace_id, Some(path.into_inner())).await?;
    Ok(HttpResponse::Ok().json(BotView::from(bot)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBot {
    pub name: String,
    #[serde(default)]
    pub settings: BotSettings,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

pub async fn create(
    req: HttpRequest,
    chat: web::Data<Chat>,
    models: web::Data<ModelDefaults>,
    caller: Caller,
    body: JsonBody<CreateBot>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body, digest) = body;
    validate_name(&body.name)?;
    validate_origins(&body.allowed_origins)?;
    validate_settings(&body.settings, &models)?;
    let bot = NewBot { name: body.name, settings: body.settings, allowed_origins: body.allowed_origins };
    let request = idempotency::idempotent(&req, &digest)?;
    chat.create_bot(caller.workspace_id, bot, request, BotView::from).await.map(idempotency::respond)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBot {
    pub name: Option<String>,
    pub settings: Option<BotSettings>,
    pub allowed_origins: Option<Vec<String>>,
    pub active: Option<bool>,
}

pub async fn update(
    chat: web::Data<Chat>,
    models: web::Data<ModelDefaults>,
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody<UpdateBot>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    if let Some(name) = &body.name {
        validate_name(name)?;
    }
    if let Some(settings) = &body.settings {
        validate_settings(settings, &models)?;
    }
    if let Some(origins) = &body.allowed_origins {
        validate_origins(origins)?;
    }
    let id = caller.workspace_id;
    let public_id = path.into_inner();
    let changes = BotChanges {
        name: body.name.as_deref().map(str::trim).map(str::to_owned),
        settings: body.settings,
        allowed_origins: body.allowed_origins,
        active: body.active,
    };
    let row = chat.update_bot(id, &public_id, changes).await?.ok_or_else(|| ApiError::not_found("bot not found"))?;
    Ok(HttpResponse::Ok().json(BotView::from(row)))
}

/// The settings' model part must stay within what the operator offers (see
/// [`check_bot_model`]); the rest of the settings are the bot's own words.
fn validate_settings(settings: &BotSettings, models: &ModelDefaults) -> Result<(), ApiError> {
    crate::transport::web::widget_config::check(&settings.widget, "settings.widget")
        .map_err(ApiError::unprocessable)?;
    match &settings.model {
        Some(model) => check_bot_model(model, models).map_err(ApiError::unprocessable),
        None => Ok(()),
    }
}

fn validate_name(name: &str) -> Result<(), ApiError> {
    let len = name.trim().chars().count();
    if len == 0 || len > 200 {
        return Err(ApiError::unprocessable("name must be 1 to 200 characters"));
    }
    Ok(())
}

fn validate_origins(origins: &[String]) -> Result<(), ApiError> {
    for origin in origins {
        if !(origin.starts_with("https://") || origin.starts_with("http://")) || origin.ends_with('/') {
            return Err(ApiError::unprocessable(format!(
                "allowed_origins entry `{origin}` must be an origin such as https://example.com"
            )));
        }
    }
    Ok(())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// `YYYY-MM` (UTC); this month when left out.
    pub month: Option<String>,
}

/// `GET /api/usage`: the workspace's model tokens for a month, and its cap.
pub async fn usage(
    chat: web::Data<Chat>,
    settings: web::Data<crate::config::ModelDefaults>,
    caller: Caller,
    query: crate::error::QueryParams<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let month = match query.0.month {
        Some(month) => {
            let valid =
                chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").is_ok() && month.len() == 7;
            if !valid {
                return Err(ApiError::bad_request("invalid query parameter `month`: YYYY-MM"));
            }
            Some(month)
        }
        None => None,
    };
    let used = chat.usage(caller.workspace_id, month).await?;
    let cap = settings.monthly_token_cap;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "month": used.month,
        "prompt_tokens": used.prompt_tokens,
        "completion_tokens": used.completion_tokens,
        "total_tokens": used.total_tokens(),
        "replies": used.replies,
        "failures": used.failures,
        "monthly_token_cap": cap,
        "capped": cap.is_some_and(|cap| used.total_tokens() as u64 >= cap),
    })))
}
