//! A bot's flows as staff manage them: drafts (every save checked, each problem naming its
//! block and field, and HTTP blocks' targets checked against the operator's policy), immutable
//! versions deployed per channel, and their listing. Running a flow is
//! [`crate::brain::flows`]'s.

use serde::Serialize;
use serde_json::{json, Value};

use crate::brain::flows::definition;
use crate::domain::chat::Chat;
use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::storage::flows::{self as flow_rows, CHANNELS};
use crate::storage::{now_ms, DbError};

pub use crate::storage::flows::{Deployment, FlowRow, VersionRow};

/// Longest flow name.
const MAX_NAME: usize = 200;

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

/// The flow as the API shows it, with its bot's public id, deployments and latest version.
pub async fn view(chat: &Chat, row: FlowRow) -> Result<FlowView, ApiError> {
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
pub fn checked(document: &Value) -> Result<definition::Flow, ApiError> {
    definition::parse(document).map_err(|problems| refused(&problems))
}

/// Like [`checked`], and its HTTP blocks' targets allowed by the operator's policy: what a flow
/// that is saved or deployed must pass.
pub fn checked_for_save(chat: &Chat, document: &Value) -> Result<definition::Flow, ApiError> {
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

pub fn check_name(name: &str) -> Result<(), ApiError> {
    let length = name.trim().chars().count();
    if length == 0 || length > MAX_NAME {
        return Err(ApiError::unprocessable(format!("name must be 1 to {MAX_NAME} characters")));
    }
    Ok(())
}

/// The workspace's flow with this id.
pub async fn flow(chat: &Chat, workspace_id: WorkspaceId, id: i64) -> Result<FlowRow, ApiError> {
    chat.db
        .run(move |conn| flow_rows::get(conn, workspace_id, id))
        .await?
        .ok_or_else(|| ApiError::not_found("flow not found"))
}

/// Creates a draft for the bot (the workspace's first when `None`).
pub async fn create(
    chat: &Chat,
    workspace_id: WorkspaceId,
    bot_public_id: Option<String>,
    name: &str,
    definition: Value,
) -> Result<FlowView, ApiError> {
    check_name(name)?;
    checked_for_save(chat, &definition)?;
    let bot = chat.workspace_bot(workspace_id, bot_public_id).await?;
    let name = name.trim().to_owned();
    let row =
        chat.db.run(move |conn| flow_rows::create(conn, workspace_id, bot.id, &name, &definition, now_ms())).await?;
    view(chat, row).await
}

/// The workspace's flows, of one bot when given.
pub async fn list(
    chat: &Chat,
    workspace_id: WorkspaceId,
    bot_public_id: Option<String>,
) -> Result<Vec<FlowView>, ApiError> {
    let bot_id = match bot_public_id {
        Some(public_id) => Some(chat.workspace_bot(workspace_id, Some(public_id)).await?.id),
        None => None,
    };
    let rows = chat.db.run(move |conn| flow_rows::list(conn, workspace_id, bot_id)).await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        data.push(view(chat, row).await?);
    }
    Ok(data)
}

/// Replaces the draft's name and/or document; deployed versions and the conversations on them
/// are untouched.
pub async fn update(
    chat: &Chat,
    workspace_id: WorkspaceId,
    id: i64,
    name: Option<String>,
    definition: Option<Value>,
) -> Result<FlowView, ApiError> {
    if let Some(name) = &name {
        check_name(name)?;
    }
    if let Some(definition) = &definition {
        checked_for_save(chat, definition)?;
    }
    let row = flow(chat, workspace_id, id).await?;
    let id = row.id;
    let name = name.map(|n| n.trim().to_owned());
    let row = chat
        .db
        .run(move |conn| flow_rows::update(conn, workspace_id, id, name.as_deref(), definition.as_ref(), now_ms()))
        .await?
        .ok_or_else(|| ApiError::not_found("flow not found"))?;
    view(chat, row).await
}

/// Deletes a flow; 409 while it is deployed.
pub async fn delete(chat: &Chat, workspace_id: WorkspaceId, id: i64) -> Result<(), ApiError> {
    let row = flow(chat, workspace_id, id).await?;
    let id = row.id;
    match chat.db.run(move |conn| flow_rows::delete(conn, workspace_id, id)).await {
        Ok(_) => Ok(()),
        Err(DbError::Invalid(why)) => Err(ApiError::conflict(why)),
        Err(other) => Err(other.into()),
    }
}

/// The flow's versions, oldest first.
pub async fn versions(chat: &Chat, flow: &FlowRow) -> Result<Vec<VersionRow>, ApiError> {
    let (workspace_id, id) = (flow.workspace_id, flow.id);
    Ok(chat.db.run(move |conn| flow_rows::versions(conn, workspace_id, id)).await?)
}

/// The flow's version with this number.
pub async fn numbered(chat: &Chat, flow: &FlowRow, number: i64) -> Result<VersionRow, ApiError> {
    versions(chat, flow)
        .await?
        .into_iter()
        .find(|v| v.version == number)
        .ok_or_else(|| ApiError::not_found(format!("the flow has no version {number}")))
}

pub fn channels(list: &[String]) -> Result<Vec<&'static str>, ApiError> {
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

/// Deploys the draft (as a new version) or a numbered version to channels: the version
/// deployed and the flow as it now stands. New conversations on those channels run it;
/// conversations already running keep their version.
pub async fn deploy(
    chat: &Chat,
    workspace_id: WorkspaceId,
    id: i64,
    channel_names: &[String],
    version: Option<i64>,
) -> Result<(VersionRow, FlowView), ApiError> {
    let targets = channels(channel_names)?;
    let row = flow(chat, workspace_id, id).await?;
    if version.is_none() {
        // Drafts are checked on save; a draft from before a rule existed is checked again here.
        checked_for_save(chat, &serde_json::from_str(&row.definition).unwrap_or_default())?;
    }
    let bot_id = row.bot_id;
    let deployed = chat.db.run(move |conn| flow_rows::deploy(conn, &row, version, &targets, now_ms())).await?;
    if let Some(bot_id) = bot_id {
        chat.flows.invalidate(bot_id);
    }
    let row = flow(chat, workspace_id, id).await?;
    Ok((deployed, view(chat, row).await?))
}

/// Takes the flow off channels.
pub async fn undeploy(
    chat: &Chat,
    workspace_id: WorkspaceId,
    id: i64,
    channel_names: &[String],
) -> Result<FlowView, ApiError> {
    let targets = channels(channel_names)?;
    let row = flow(chat, workspace_id, id).await?;
    let flow_id = row.id;
    chat.db.run(move |conn| flow_rows::undeploy(conn, workspace_id, flow_id, &targets)).await?;
    if let Some(bot_id) = row.bot_id {
        chat.flows.invalidate(bot_id);
    }
    view(chat, row).await
}
