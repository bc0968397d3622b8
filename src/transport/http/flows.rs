//! `/api/flows`: a bot's flows. Drafts are created and edited (every save is validated, and an
//! invalid document is refused with each problem naming its block and field), deployed per
//! channel as immutable versions, listed, undeployed, and played dry.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::brain::flows::{self, definition, DryRunContext};
use crate::domain::chat::Chat;
use crate::error::{ApiError, JsonBody, QueryParams};
use crate::storage::flows::{self as flow_rows, Deployment, FlowRow, VersionRow, CHANNELS};
use crate::storage::now_ms;
use crate::transport::http::auth::Caller;
use crate::transport::http::idempotency;

/// Longest flow name.
const MAX_NAME: usize = 200;
/// Most visitor messages one dry run plays.
const MAX_DRY_RUN_MESSAGES: usize = 100;

/// A flow as the API shows it.
#[derive(Debug, Serialize)]
pub struct FlowView {
    pub id: i64,
    /// The bot's public id.
    pub bot_id: Option<String>,
    pub name: String,
    /// The draft: what the next deploy makes a version of.
    pub definition: Value,
    pub deployments: Vec<Deployment>,
    /// The highest version number (0 before the first deploy).
    pub latest_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

async fn view(chat: &Chat, row: FlowRow) -> Result<FlowView, ApiError> {
    let (workspace_id, flow_id, bot_id) = (row.workspace_id, row.id, row.bot_id);
    let (bot, deployments, versions) = chat
        .db
        .run(move |conn| {
            let bot = match bot_id {
                Some(bot_id) => flow_rows::bot_public_id(conn, workspace_id, bot_id)?,
                None => None,
            };
            Ok((
                bot,
                flow_rows::deployments(conn, workspace_id, flow_id)?,
                flow_rows::versions(conn, workspace_id, flow_id)?,
            ))
        })
        .await?;
    Ok(FlowView {
        id: row.id,
        bot_id: bot,
        name: row.name,
        definition: serde_json::from_str(&row.definition).unwrap_or_default(),
        deployments,
        latest_version: versions.last().map(|v| v.version).unwrap_or(0),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The flow document, or 422 listing every problem (`errors: [{block, field, message}]`).
fn checked(document: &Value) -> Result<definition::Flow, ApiError> {
    definition::parse(document).map_err(|problems| refused(&problems))
}

/// Like [`checked`], and its HTTP blocks' targets allowed by the operator's policy: what a flow
/// that is saved or deployed must pass.
fn checked_for_save(chat: &Chat, document: &Value) -> Result<definition::Flow, ApiError> {
    let flow = checked(document)?;
    let problems = definition::check_targets(&flow, chat.flows.http_policy());
    if problems.is_empty() {
        Ok(flow)
    } else {
        Err(refused(&problems))
    }
}

fn refused(problems: &[definition::Problem]) -> ApiError {
    let first = problems.first().map(ToString::to_string).unwrap_or_default();
    let more = match problems.len() {
        1 => String::new(),
        n => format!(" (and {} more problems)", n - 1),
    };
    ApiError::unprocessable(format!("invalid flow: {first}{more}")).with("errors", json!(problems))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let length = name.trim().chars().count();
    if length == 0 || length > MAX_NAME {
        return Err(ApiError::unprocessable(format!("name must be 1 to {MAX_NAME} characters")));
    }
    Ok(())
}

async fn flow_of(chat: &Chat, caller: &Caller, id: i64) -> Result<FlowRow, ApiError> {
    let workspace_id = caller.workspace_id;
    chat.db
        .run(move |conn| flow_rows::get(conn, workspace_id, id))
        .await?
        .ok_or_else(|| ApiError::not_found("flow not found"))
}

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
    check_name(&body.name)?;
    checked_for_save(&chat, &body.definition)?;
    let key = idempotency::key_of(&req)?;
    idempotency::once(&chat, caller.workspace_id, "flows", key, &digest, || async {
        let bot = chat.workspace_bot(caller.workspace_id, body.bot_id).await?;
        let (workspace_id, name, definition) = (caller.workspace_id, body.name.trim().to_owned(), body.definition);
        let row = chat
            .db
            .run(move |conn| flow_rows::create(conn, workspace_id, bot.id, &name, &definition, now_ms()))
            .await?;
        Ok((StatusCode::CREATED, view(&chat, row).await?))
    })
    .await
    .map(idempotency::Created::respond)
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
    let bot_id = match query.0.bot_id {
        Some(public_id) => Some(chat.workspace_bot(caller.workspace_id, Some(public_id)).await?.id),
        None => None,
    };
    let workspace_id = caller.workspace_id;
    let rows = chat.db.run(move |conn| flow_rows::list(conn, workspace_id, bot_id)).await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        data.push(view(&chat, row).await?);
    }
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

pub async fn get(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let row = flow_of(&chat, &caller, *path).await?;
    Ok(HttpResponse::Ok().json(view(&chat, row).await?))
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
    if let Some(name) = &body.name {
        check_name(name)?;
    }
    if let Some(definition) = &body.definition {
        checked_for_save(&chat, definition)?;
    }
    let row = flow_of(&chat, &caller, *path).await?;
    let (workspace_id, id) = (caller.workspace_id, row.id);
    let name = body.name.map(|n| n.trim().to_owned());
    let row = chat
        .db
        .run(move |conn| flow_rows::update(conn, workspace_id, id, name.as_deref(), body.definition.as_ref(), now_ms()))
        .await?
        .ok_or_else(|| ApiError::not_found("flow not found"))?;
    Ok(HttpResponse::Ok().json(view(&chat, row).await?))
}

pub async fn delete(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let row = flow_of(&chat, &caller, *path).await?;
    let (workspace_id, id) = (caller.workspace_id, row.id);
    match chat.db.run(move |conn| flow_rows::delete(conn, workspace_id, id)).await {
        Ok(_) => Ok(HttpResponse::NoContent().finish()),
        Err(crate::storage::DbError::Invalid(why)) => Err(ApiError::conflict(why)),
        Err(other) => Err(other.into()),
    }
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
    let row = flow_of(&chat, &caller, *path).await?;
    let (workspace_id, id) = (caller.workspace_id, row.id);
    let rows = chat.db.run(move |conn| flow_rows::versions(conn, workspace_id, id)).await?;
    let data: Vec<VersionView> = rows.into_iter().map(|row| VersionView { row, definition: None }).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// The flow's version with this number.
async fn numbered(chat: &Chat, flow: &FlowRow, number: i64) -> Result<VersionRow, ApiError> {
    let (workspace_id, id) = (flow.workspace_id, flow.id);
    chat.db
        .run(move |conn| flow_rows::versions(conn, workspace_id, id))
        .await?
        .into_iter()
        .find(|v| v.version == number)
        .ok_or_else(|| ApiError::not_found(format!("the flow has no version {number}")))
}

pub async fn version(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (flow_id, number) = path.into_inner();
    let row = flow_of(&chat, &caller, flow_id).await?;
    let found = numbered(&chat, &row, number).await?;
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

fn channels(list: &[String]) -> Result<Vec<&'static str>, ApiError> {
    if list.is_empty() {
        return Err(ApiError::unprocessable(format!("channels must name at least one of {}", CHANNELS.join(", "))));
    }
    let mut out = Vec::new();
    for channel in list {
        let known = CHANNELS.iter().find(|c| **c == channel.as_str()).ok_or_else(|| {
            ApiError::unprocessable(format!("unknown channel `{channel}`; one of {}", CHANNELS.join(", ")))
        })?;
        if !out.contains(known) {
            out.push(*known);
        }
    }
    Ok(out)
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
    let targets = channels(&body.channels)?;
    let row = flow_of(&chat, &caller, *path).await?;
    if body.version.is_none() {
        // Drafts are checked on save; a draft from before a rule existed is checked again here.
        checked_for_save(&chat, &serde_json::from_str(&row.definition).unwrap_or_default())?;
    }
    let bot_id = row.bot_id;
    let flow = row.clone();
    let version = body.version;
    let deployed = chat.db.run(move |conn| flow_rows::deploy(conn, &flow, version, &targets, now_ms())).await?;
    if let Some(bot_id) = bot_id {
        chat.flows.invalidate(bot_id);
    }
    let row = flow_of(&chat, &caller, row.id).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "deployed": VersionView { row: deployed, definition: None }, "flow": view(&chat, row).await? })))
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
    let targets = channels(&body.0.channels)?;
    let row = flow_of(&chat, &caller, *path).await?;
    let (workspace_id, id) = (caller.workspace_id, row.id);
    chat.db.run(move |conn| flow_rows::undeploy(conn, workspace_id, id, &targets)).await?;
    if let Some(bot_id) = row.bot_id {
        chat.flows.invalidate(bot_id);
    }
    Ok(HttpResponse::Ok().json(view(&chat, row).await?))
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
    let row = flow_of(&chat, &caller, *path).await?;
    let document = match (body.definition, body.version) {
        (Some(document), _) => document,
        (None, Some(number)) => numbered(&chat, &row, number).await?.document(),
        (None, None) => serde_json::from_str(&row.definition).unwrap_or_default(),
    };
    let flow = checked(&document)?;
    let context = DryRunContext {
        db: chat.db.clone(),
        tools: chat.flow_tools.clone(),
        knowledge: chat.flow_tools.knowledge.clone(),
        workspace_id: caller.workspace_id,
        bot_id: row.bot_id.unwrap_or_default(),
    };
    let variables = body.variables.unwrap_or_else(|| json!({}));
    let result = flows::dry_run(&context, &flow, &body.messages, variables).await;
    Ok(HttpResponse::Ok().json(result))
}
