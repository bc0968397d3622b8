//! `/api/flows`: a bot's flows. Drafts are created and edited (every save is validated, and an
//! invalid document is refused with each problem naming its block and field), deployed per
//! channel as immutable versions, listed, undeployed, and played dry.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::brain::flows::{self as engine, definition, DryRunContext};
use crate::domain::chat::Chat;
use crate::domain::flows::{self, VersionRow};
use crate::error::{ApiError, JsonBody, QueryParams};
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;

/// Most visitor messages one dry run plays.
const MAX_DRY_RUN_MESSAGES: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFlow {
    /// The bot's public id; the workspace's first bot when left out.
    pub bot_id: Option<String>,
    pub name: String,
    pub definition: Value,
}

pub async fn create(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    body: JsonBody<CreateFlow>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body, digest) = body;
    // Checked before the key is claimed, so that a refused document leaves no claim behind.
    flows::check_name(&body.name)?;
    flows::checked_for_save(&chat, &body.definition)?;
    let key = idempotency::key_of(&req)?;
    idempotency::once(&chat.db, caller.workspace_id, "flows", key, &digest, || async {
        let created = flows::create(&chat, caller.workspace_id, body.bot_id, &body.name, body.definition).await?;
        Ok((StatusCode::CREATED, created))
    })
    .await
    .map(idempotency::respond)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListFlows {
    pub bot_id: Option<String>,
}

pub async fn list(
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<ListFlows>,
) -> Result<HttpResponse, ApiError> {
    let data = flows::list(&chat, caller.workspace_id, query.0.bot_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

pub async fn get(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let row = flows::flow(&chat, caller.workspace_id, *path).await?;
    Ok(HttpResponse::Ok().json(flows::view(&chat, row).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFlow {
    pub name: Option<String>,
    pub definition: Option<Value>,
}

/// Replaces the draft; deployed versions and the conversations on them are untouched.
pub async fn update(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<UpdateFlow>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    Ok(HttpResponse::Ok().json(flows::update(&chat, caller.workspace_id, *path, body.name, body.definition).await?))
}

pub async fn delete(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    flows::delete(&chat, caller.workspace_id, *path).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validate {
    pub definition: Value,
}

/// Checks a document without saving it: `{valid, errors}`.
pub async fn validate(
    chat: web::Data<Chat>,
    _caller: Caller,
    body: JsonBody<Validate>,
) -> Result<HttpResponse, ApiError> {
    let checked = definition::parse(&body.0.definition).and_then(|flow| {
        let problems = definition::check_targets(&flow, chat.flows.http_policy());
        if problems.is_empty() {
            Ok(flow)
        } else {
            Err(problems)
        }
    });
    Ok(HttpResponse::Ok().json(match checked {
        Ok(flow) => json!({ "valid": true, "errors": [], "blocks": flow.blocks.len() }),
        Err(problems) => json!({ "valid": false, "errors": problems }),
    }))
}

/// A version as listed: its number and when it was made (and, singly, its document).
#[derive(Debug, Serialize)]
struct VersionView {
    #[serde(flatten)]
    row: VersionRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    definition: Option<Value>,
}

pub async fn versions(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let row = flows::flow(&chat, caller.workspace_id, *path).await?;
    let rows = flows::versions(&chat, &row).await?;
    let data: Vec<VersionView> = rows.into_iter().map(|row| VersionView { row, definition: None }).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

pub async fn version(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (flow_id, number) = path.into_inner();
    let row = flows::flow(&chat, caller.workspace_id, flow_id).await?;
    let found = flows::numbered(&chat, &row, number).await?;
    let definition = Some(found.document());
    Ok(HttpResponse::Ok().json(VersionView { row: found, definition }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// `widget`, `api` and/or `rest`.
    pub channels: Vec<String>,
    /// A version to (re)deploy; left out, the draft becomes the next version.
    pub version: Option<i64>,
}

/// Deploys the draft (as a new version) or a named version to channels. New conversations on
/// those channels run it; conversations already running keep their version.
pub async fn deploy(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<Deploy>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let (deployed, flow) = flows::deploy(&chat, caller.workspace_id, *path, &body.channels, body.version).await?;
    Ok(HttpResponse::Ok().json(json!({ "deployed": VersionView { row: deployed, definition: None }, "flow": flow })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Undeploy {
    pub channels: Vec<String>,
}

pub async fn undeploy(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<Undeploy>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(flows::undeploy(&chat, caller.workspace_id, *path, &body.0.channels).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    /// The visitor's messages, in order.
    pub messages: Vec<String>,
    /// Variables the conversation starts with (`system`, `contact`, `conversation`).
    pub variables: Option<Value>,
    /// Play this version instead of the draft.
    pub version: Option<i64>,
    /// Play this document instead of the stored draft (checked the same way).
    pub definition: Option<Value>,
}

/// Plays a script of visitor messages through the flow: the transcript, the final variables,
/// and what it would have done (bookings, leads, outside calls). Nothing is written or sent.
pub async fn dry_run(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<DryRunRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    if body.messages.is_empty() || body.messages.len() > MAX_DRY_RUN_MESSAGES {
        return Err(ApiError::unprocessable(format!("messages must hold 1 to {MAX_DRY_RUN_MESSAGES} messages")));
    }
    if body.version.is_some() && body.definition.is_some() {
        return Err(ApiError::unprocessable("give `version` or `definition`, not both"));
    }
    if let Some(variables) = &body.variables {
        if !variables.is_object() {
            return Err(ApiError::unprocessable("variables must be an object"));
        }
    }
    let row = flows::flow(&chat, caller.workspace_id, *path).await?;
    let document = match (body.definition, body.version) {
        (Some(document), _) => document,
        (None, Some(number)) => flows::numbered(&chat, &row, number).await?.document(),
        (None, None) => serde_json::from_str(&row.definition).unwrap_or_default(),
    };
    let flow = flows::checked(&document)?;
    let context = DryRunContext {
        db: chat.db.clone(),
        tools: chat.flow_tools.clone(),
        knowledge: chat.flow_tools.knowledge.clone(),
        workspace_id: caller.workspace_id,
        bot_id: row.bot_id.unwrap_or_default(),
    };
    let variables = body.variables.unwrap_or_else(|| json!({}));
    let result = engine::dry_run(&context, &flow, &body.messages, variables).await;
    Ok(HttpResponse::Ok().json(result))
}
