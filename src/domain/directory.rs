//! What the transports look up or change about a workspace's setup (its bots, doctors,
//! agents, keys and uploads), as the chat core's methods, so that a transport asks the domain
//! and never a repository. A change that caches must forget (a bot's settings) forgets here.

pub use crate::storage::agents::AgentRow;
pub use crate::storage::bots::{BotRow, BotSettings, LeadCapture, LeadField, WidgetSettings};
pub use crate::storage::conversations::ConversationRow;
pub use crate::storage::knowledge::SourceRow;
pub use crate::storage::schedule::DoctorRow;
pub use crate::storage::uploads::UploadRow;
pub use crate::storage::usage::MonthUsage;
pub use crate::storage::workspaces::{Quotas, WorkspaceRow};

use actix_web::http::StatusCode;
use serde::Serialize;

use super::chat::Chat;
use super::idempotency::{self, Created, Idempotent};
use crate::error::ApiError;
use crate::ids::{ConversationId, WorkspaceId};
use crate::storage::{agents, bots, conversations, now_ms, schedule, uploads, usage, workspaces};

/// A change to a bot: only what is `Some` changes.
#[derive(Debug, Default)]
pub struct BotChanges {
    pub name: Option<String>,
    pub settings: Option<BotSettings>,
    pub allowed_origins: Option<Vec<String>>,
    pub active: Option<bool>,
}

impl Chat {
    /// The workspace's bot with this public id, if it has one.
    pub async fn find_bot(&self, workspace_id: WorkspaceId, public_id: &str) -> Result<Option<BotRow>, ApiError> {
        let public_id = public_id.to_owned();
        Ok(self.db.run(move |conn| bots::get(conn, workspace_id, &public_id)).await?)
    }

    /// Changes a bot and forgets its cached settings; `None` when the workspace has no such bot.
    pub async fn update_bot(
        &self,
        workspace_id: WorkspaceId,
        public_id: &str,
        changes: BotChanges,
    ) -> Result<Option<BotRow>, ApiError> {
        let public_id = public_id.to_owned();
        let row = self
            .db
            .run(move |conn| {
                bots::update(
                    conn,
                    workspace_id,
                    &public_id,
                    changes.name.as_deref(),
                    changes.settings.as_ref(),
                    changes.allowed_origins.as_deref(),
                    changes.active,
                )
            })
            .await?;
        if let Some(row) = &row {
            self.bots.invalidate(row.id);
        }
        Ok(row)
    }

    /// The workspace's public id (the account id integrators see).
    pub async fn workspace_public_id(&self, workspace_id: WorkspaceId) -> Result<Option<String>, ApiError> {
        Ok(self.db.run(move |conn| workspaces::get(conn, workspace_id)).await?.map(|w| w.public_id))
    }

    /// The workspace a public id (the embed code's `admin_id`) names.
    pub async fn workspace_by_public_id(&self, public_id: &str) -> Result<Option<WorkspaceId>, ApiError> {
        let public_id = public_id.to_owned();
        Ok(self.db.run(move |conn| schedule::workspace_by_public_id(conn, &public_id)).await?)
    }

    /// The workspace an external API key (ChatGenius's body `api_key`) authenticates.
    pub async fn workspace_by_external_key(&self, key: &str) -> Result<Option<WorkspaceId>, ApiError> {
        let key = key.to_owned();
        Ok(self.db.run(move |conn| workspaces::by_external_key(conn, &key)).await?)
    }

    /// The workspace's own quotas.
    pub async fn quotas(&self, workspace_id: WorkspaceId) -> Result<Quotas, ApiError> {
        Ok(self.db.run(move |conn| workspaces::quotas(conn, workspace_id)).await?)
    }

    /// The workspace's doctors (only the active ones when `only_active`).
    pub async fn doctors(&self, workspace_id: WorkspaceId, only_active: bool) -> Result<Vec<DoctorRow>, ApiError> {
        Ok(self.db.run(move |conn| schedule::doctors(conn, workspace_id, only_active)).await?)
    }

    /// Whether an agent of the workspace is online now.
    pub async fn anyone_online(&self, workspace_id: WorkspaceId) -> Result<bool, ApiError> {
        Ok(!self.db.run(move |conn| agents::online(conn, workspace_id)).await?.is_empty())
    }

    /// The bot's conversation with this id, as stored now (its variables included).
    pub async fn stored_conversation(
        &self,
        bot_id: i64,
        id: &ConversationId,
    ) -> Result<Option<ConversationRow>, ApiError> {
        let id = id.clone();
        Ok(self.db.run(move |conn| conversations::get_for_bot(conn, bot_id, &id)).await?)
    }

    /// The workspace's agent with this id.
    pub async fn agent(&self, workspace_id: WorkspaceId, id: i64) -> Result<Option<AgentRow>, ApiError> {
        Ok(self.db.run(move |conn| agents::get(conn, workspace_id, id)).await?)
    }

    /// The demo workspace's bot (its public id), made on a first start with `FRONTDESK_DEMO`.
    pub async fn demo_bot(&self) -> Result<Option<String>, ApiError> {
        Ok(self.db.run(workspaces::demo_bot).await?)
    }

    /// The workspace's upload with this id.
    pub async fn upload(&self, workspace_id: WorkspaceId, id: &str) -> Result<Option<UploadRow>, ApiError> {
        let id = id.to_owned();
        Ok(self.db.run(move |conn| uploads::get(conn, workspace_id, &id)).await?)
    }

    /// The workspace with its own quotas.
    /// The workspace's phone country (its `country` setting), as stored.
    pub async fn workspace_country(&self, workspace_id: WorkspaceId) -> Result<Option<String>, ApiError> {
        Ok(self.db.run(move |conn| Ok(workspaces::settings(conn, workspace_id)?.country)).await?)
    }

    pub async fn workspace(&self, workspace_id: WorkspaceId) -> Result<(WorkspaceRow, Quotas), ApiError> {
        let (row, quotas) = self
            .db
            .run(move |conn| Ok((workspaces::get(conn, workspace_id)?, workspaces::quotas(conn, workspace_id)?)))
            .await?;
        Ok((row.ok_or_else(|| ApiError::not_found("workspace not found"))?, quotas))
    }

    /// The workspace's bots.
    pub async fn bots(&self, workspace_id: WorkspaceId) -> Result<Vec<BotRow>, ApiError> {
        Ok(self.db.run(move |conn| bots::list(conn, workspace_id)).await?)
    }

    /// Creates a bot once per idempotency key; `view` is the answer stored for a retry.
    pub async fn create_bot<V: Serialize + Send + 'static>(
        &self,
        workspace_id: WorkspaceId,
        bot: NewBot,
        request: Idempotent,
        view: fn(BotRow) -> V,
    ) -> Result<Created, ApiError> {
        idempotency::create_once(&self.db, workspace_id, "bots", request, move |conn| {
            let row = bots::create(conn, workspace_id, bot.name.trim(), &bot.settings, &bot.allowed_origins)?;
            Ok((StatusCode::CREATED, view(row)))
        })
        .await
    }

    /// The workspace's model usage in `month` (`YYYY-MM`, UTC; this month when `None`).
    pub async fn usage(&self, workspace_id: WorkspaceId, month: Option<String>) -> Result<MonthUsage, ApiError> {
        let month = month.unwrap_or_else(|| usage::month_of(now_ms()));
        Ok(self.db.run(move |conn| usage::get(conn, workspace_id, &month)).await?)
    }
}

/// A bot to create.
#[derive(Debug)]
pub struct NewBot {
    pub name: String,
    pub settings: BotSettings,
    pub allowed_origins: Vec<String>,
}
