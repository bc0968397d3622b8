//! Flows: a bot's draft documents, their immutable deployed versions, and which version answers
//! each channel. Every query is scoped by workspace.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{bots, flow_deployments, flow_versions, flows};
use super::{write_tx, DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;

/// The channels a flow is deployed to.
pub const CHANNELS: &[&str] = &["widget", "api", "rest"];

/// The deployment channel a conversation's channel falls under: the widget, ChatAIBot's "API
/// as a channel", and every other REST route (frontdesk's own and the seed APIs').
pub fn deployment_channel(conversation_channel: &str) -> &'static str {
    match conversation_channel {
        "widget" => "widget",
        "api" => "api",
        _ => "rest",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = flows)]
pub struct FlowRow {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub bot_id: Option<i64>,
    pub name: String,
    pub definition: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = flow_versions)]
pub struct VersionRow {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub flow_id: i64,
    pub version: i64,
    #[serde(skip)]
    pub definition: String,
    pub created_at: i64,
}

impl VersionRow {
    pub fn document(&self) -> serde_json::Value {
        serde_json::from_str(&self.definition).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Queryable, Serialize)]
pub struct Deployment {
    pub channel: String,
    pub flow_id: i64,
    pub version_id: i64,
    pub version: i64,
    pub deployed_at: i64,
}

pub fn create(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    bot_id: i64,
    name: &str,
    definition: &serde_json::Value,
    now: i64,
) -> Result<FlowRow, DbError> {
    let definition = definition.to_string();
    write_tx(conn, |conn| {
        let id: i64 = on_backend!(conn, c => diesel::insert_into(flows::table)
            .values((
                flows::workspace_id.eq(workspace_id),
                flows::bot_id.eq(bot_id),
                flows::name.eq(name),
                flows::definition.eq(&definition),
                flows::created_at.eq(now),
                flows::updated_at.eq(now),
            ))
            .returning(flows::id)
            .get_result(c))?;
        get(conn, workspace_id, id)?.ok_or_else(|| DbError::Invalid("flow vanished".into()))
    })
}

pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<FlowRow>, DbError> {
    Ok(on_backend!(conn, c => flows::table
        .filter(flows::workspace_id.eq(workspace_id))
        .filter(flows::id.eq(id))
        .select(FlowRow::as_select())
        .first(c)
        .optional())?)
}

/// The workspace's flows, of one bot when given, oldest first.
pub fn list(conn: &mut DbConn, workspace_id: WorkspaceId, bot_id: Option<i64>) -> Result<Vec<FlowRow>, DbError> {
    Ok(on_backend!(conn, c => {
        let mut query = flows::table.filter(flows::workspace_id.eq(workspace_id)).into_boxed();
        if let Some(bot_id) = bot_id {
            query = query.filter(flows::bot_id.eq(bot_id));
        }
        query.order(flows::id.asc()).select(FlowRow::as_select()).load(c)
    })?)
}

/// Replaces the draft's name and/or document.
pub fn update(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    name: Option<&str>,
    definition: Option<&serde_json::Value>,
    now: i64,
) -> Result<Option<FlowRow>, DbError> {
    let target = flows::table.filter(flows::workspace_id.eq(workspace_id)).filter(flows::id.eq(id));
    let definition = definition.map(ToString::to_string);
    on_backend!(conn, c => diesel::update(target)
        .set((
            name.map(|n| flows::name.eq(n.to_owned())),
            definition.map(|d| flows::definition.eq(d)),
            flows::updated_at.eq(now),
        ))
        .execute(c))?;
    get(conn, workspace_id, id)
}

/// Deletes a flow that no channel runs; `Err(Invalid)` names the channels it is deployed to.
/// Conversations still on one of its versions finish with the bot's ordinary answers.
pub fn delete(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<bool, DbError> {
    write_tx(conn, |conn| {
        let live = deployments(conn, workspace_id, id)?;
        if !live.is_empty() {
            let channels: Vec<String> = live.into_iter().map(|d| d.channel).collect();
            return Err(DbError::Invalid(format!(
                "the flow is deployed to {}; undeploy it first",
                channels.join(", ")
            )));
        }
        let target = flows::table.filter(flows::workspace_id.eq(workspace_id)).filter(flows::id.eq(id));
        Ok(on_backend!(conn, c => diesel::delete(target).execute(c))? > 0)
    })
}

pub fn versions(conn: &mut DbConn, workspace_id: WorkspaceId, flow_id: i64) -> Result<Vec<VersionRow>, DbError> {
    Ok(on_backend!(conn, c => flow_versions::table
        .filter(flow_versions::workspace_id.eq(workspace_id))
        .filter(flow_versions::flow_id.eq(flow_id))
        .order(flow_versions::version.asc())
        .select(VersionRow::as_select())
        .load(c))?)
}

/// A version by id, within the workspace.
pub fn version(conn: &mut DbConn, workspace_id: WorkspaceId, version_id: i64) -> Result<Option<VersionRow>, DbError> {
    Ok(on_backend!(conn, c => flow_versions::table
        .filter(flow_versions::workspace_id.eq(workspace_id))
        .filter(flow_versions::id.eq(version_id))
        .select(VersionRow::as_select())
        .first(c)
        .optional())?)
}

/// Where the flow is deployed.
pub fn deployments(conn: &mut DbConn, workspace_id: WorkspaceId, flow_id: i64) -> Result<Vec<Deployment>, DbError> {
    Ok(on_backend!(conn, c => flow_deployments::table
        .inner_join(flow_versions::table)
        .filter(flow_deployments::workspace_id.eq(workspace_id))
        .filter(flow_deployments::flow_id.eq(flow_id))
        .order(flow_deployments::channel.asc())
        .select((
            flow_deployments::channel,
            flow_deployments::flow_id,
            flow_deployments::version_id,
            flow_versions::version,
            flow_deployments::deployed_at,
        ))
        .load(c))?)
}

/// The version that starts new conversations of a bot on a deployment channel.
pub fn deployed(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    bot_id: i64,
    channel: &str,
) -> Result<Option<VersionRow>, DbError> {
    Ok(on_backend!(conn, c => flow_deployments::table
        .inner_join(flow_versions::table)
        .filter(flow_deployments::workspace_id.eq(workspace_id))
        .filter(flow_deployments::bot_id.eq(bot_id))
        .filter(flow_deployments::channel.eq(channel))
        .select(VersionRow::as_select())
        .first(c)
        .optional())?)
}

/// Deploys a version of the flow to `channels`: `version` when given, otherwise the draft as
/// it stands (a new version, unless the latest version already holds exactly this document).
/// Each channel's previous deployment of the bot is replaced.
pub fn deploy(
    conn: &mut DbConn,
    flow: &FlowRow,
    version: Option<i64>,
    channels: &[&str],
    now: i64,
) -> Result<VersionRow, DbError> {
    let bot_id = flow.bot_id.ok_or_else(|| DbError::Invalid("the flow belongs to no bot".into()))?;
    write_tx(conn, |conn| {
        let existing = versions(conn, flow.workspace_id, flow.id)?;
        let chosen = match version {
            Some(number) => existing
                .into_iter()
                .find(|v| v.version == number)
                .ok_or_else(|| DbError::Invalid(format!("the flow has no version {number}")))?,
            None => match existing.last() {
                Some(latest)
                    if latest.document()
                        == serde_json::from_str::<serde_json::Value>(&flow.definition).unwrap_or_default() =>
                {
                    latest.clone()
                }
                latest => {
                    let number = latest.map(|v| v.version + 1).unwrap_or(1);
                    let id: i64 = on_backend!(conn, c => diesel::insert_into(flow_versions::table)
                        .values((
                            flow_versions::workspace_id.eq(flow.workspace_id),
                            flow_versions::flow_id.eq(flow.id),
                            flow_versions::version.eq(number),
                            flow_versions::definition.eq(&flow.definition),
                            flow_versions::created_at.eq(now),
                        ))
                        .returning(flow_versions::id)
                        .get_result(c))?;
                    version_row(conn, id)?
                }
            },
        };
        for channel in channels {
            let target = flow_deployments::table
                .filter(flow_deployments::bot_id.eq(bot_id))
                .filter(flow_deployments::channel.eq(*channel));
            on_backend!(conn, c => diesel::delete(target).execute(c))?;
            on_backend!(conn, c => diesel::insert_into(flow_deployments::table)
                .values((
                    flow_deployments::bot_id.eq(bot_id),
                    flow_deployments::channel.eq(*channel),
                    flow_deployments::workspace_id.eq(flow.workspace_id),
                    flow_deployments::flow_id.eq(flow.id),
                    flow_deployments::version_id.eq(chosen.id),
                    flow_deployments::deployed_at.eq(now),
                ))
                .execute(c))?;
        }
        Ok(chosen)
    })
}

fn version_row(conn: &mut DbConn, id: i64) -> Result<VersionRow, DbError> {
    Ok(on_backend!(conn, c => flow_versions::table
        .filter(flow_versions::id.eq(id))
        .select(VersionRow::as_select())
        .first(c))?)
}

/// Takes the flow off `channels`; answers how many deployments were removed.
pub fn undeploy(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    flow_id: i64,
    channels: &[&str],
) -> Result<usize, DbError> {
    let target = flow_deployments::table
        .filter(flow_deployments::workspace_id.eq(workspace_id))
        .filter(flow_deployments::flow_id.eq(flow_id))
        .filter(flow_deployments::channel.eq_any(channels));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))?)
}

/// The bot's public id, for views.
pub fn bot_public_id(conn: &mut DbConn, workspace_id: WorkspaceId, bot_id: i64) -> Result<Option<String>, DbError> {
    Ok(on_backend!(conn, c => bots::table
        .filter(bots::workspace_id.eq(workspace_id))
        .filter(bots::id.eq(bot_id))
        .select(bots::public_id)
        .first(c)
        .optional())?)
}
