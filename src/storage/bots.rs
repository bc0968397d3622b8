//! Bots (a chatbot and its widget): settings the brain answers from, and their lookup.
//!
//! A bot is known outside by its public id (`bot_…`): the id of the embed code, and what the
//! seed APIs call `widgetId`, `chatbot_id`, `bot_id` or `bot_key`.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::bots;
use super::{now_ms, DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;

/// One titled piece of company knowledge: a fact or a policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub title: String,
    pub content: String,
}

/// What the built-in brain says and knows. Every field has a default, so a partial document
/// is a valid one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BotSettings {
    /// Sent as the first message of every new conversation (empty: none).
    pub welcome_message: String,
    /// The answer when nothing the bot knows matches the question.
    pub reply_unknown: String,
    /// Said after `reply_unknown` when the bot could not answer: how to reach a person.
    pub handoff_offer: String,
    /// The answer to a greeting.
    pub greeting_reply: String,
    /// The answer to thanks.
    pub thanks_reply: String,
    /// The answer to a file sent without words.
    pub attachment_reply: String,
    pub company_facts: Vec<Fact>,
    pub policies: Vec<Fact>,
    /// How the bot should sound (used by model-backed brains).
    pub tone: String,
    /// Said when a visitor asks for a person and an agent is online.
    pub handoff_waiting: String,
    /// Said when a visitor asks for a person and no agent is online: an offer to take their
    /// contact details.
    pub handoff_offline: String,
    /// After this many questions in a row the bot could not answer, it asks for a person
    /// itself (0: never).
    pub handoff_after_unanswered: u32,
    /// Pause before each streamed chunk of a reply, in ms (0: as fast as it is written; at
    /// most 2000): replies then appear at a reading pace.
    pub stream_delay_ms: u32,
    /// This bot's model, over the server's defaults; `null` uses the server's model if it has
    /// one, the built-in brain otherwise.
    pub model: Option<BotModel>,
    /// How the website widget looks and behaves (see [`crate::transport::web::widget_config`]).
    pub widget: WidgetSettings,
    /// The business's name for one answer, from a request's own context (ChatSupport's
    /// `context.rules.companyName`): never stored, never read from a settings document.
    #[serde(skip)]
    pub company_name: Option<String>,
}

/// The widget's look and behaviour, one model behind frontdesk's bot settings, Chatorex's
/// widget routes and ChatSupport's widget configuration. The bot's `welcome_message` is the
/// widget's welcome; nothing here is secret, the widget reads it without a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WidgetSettings {
    /// `#RRGGBB`.
    pub primary_color: String,
    /// `bottom-right` or `bottom-left`.
    pub position: String,
    /// Text beside the launcher's icon (empty: the icon alone).
    pub launcher_text: String,
    /// `chat`, `help`, `calendar` or `tooth`.
    pub launcher_icon: String,
    /// The panel's title (empty: the bot's name).
    pub title: String,
    pub subtitle: String,
    /// An `https://` image, or a path on this server; `null`: the title's initials.
    pub avatar_url: Option<String>,
    /// Buttons offered before the visitor's first message; a click sends the text.
    pub quick_prompts: Vec<String>,
    pub lead_capture: LeadCapture,
    /// `auto` (the visitor's browser) or one of `en`, `es`, `fr`, `de`, `pt`.
    pub language: String,
    /// The widget's own words, by key, over its built-in ones (see the README for the keys).
    pub strings: std::collections::BTreeMap<String, String>,
    /// Shown under the title, e.g. "Mon–Fri 8:00–18:00".
    pub business_hours_message: String,
    /// A short sound when a reply arrives while the panel is closed or the tab hidden.
    pub sound: bool,
    /// Whether visitors may attach images and PDFs.
    pub uploads: bool,
}

impl Default for WidgetSettings {
    fn default() -> Self {
        WidgetSettings {
            primary_color: "#0F766E".into(),
            position: "bottom-right".into(),
            launcher_text: String::new(),
            launcher_icon: "chat".into(),
            title: String::new(),
            subtitle: String::new(),
            avatar_url: None,
            quick_prompts: Vec::new(),
            lead_capture: LeadCapture::default(),
            language: "auto".into(),
            strings: Default::default(),
            business_hours_message: String::new(),
            sound: true,
            uploads: true,
        }
    }
}

/// The widget's contact form: before the first message, or asked after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeadCapture {
    pub enabled: bool,
    /// `before` (instead of the message box until it is sent) or `during` (after the visitor's
    /// first message).
    pub when: String,
    /// Said above the form (empty: the widget's own words).
    pub message: String,
    pub fields: Vec<LeadField>,
}

impl Default for LeadCapture {
    fn default() -> Self {
        LeadCapture {
            enabled: false,
            when: "before".into(),
            message: String::new(),
            fields: vec![
                LeadField { name: "name".into(), required: true },
                LeadField { name: "email".into(), required: true },
                LeadField { name: "phone".into(), required: false },
            ],
        }
    }
}

/// One field of the contact form: `name`, `email` or `phone`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadField {
    pub name: String,
    #[serde(default)]
    pub required: bool,
}

/// A bot's own model settings; what is left out comes from the server's. Which endpoint (and
/// key) a bot's model runs on is the operator's choice: a bot may only name one of the server's
/// model profiles (see [`crate::brain::model::check_bot_model`] for every bound).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BotModel {
    /// `false` keeps this bot on the built-in brain even when the server has a model.
    pub enabled: Option<bool>,
    pub model: Option<String>,
    /// One of the operator's model profiles (`[models.NAME]` in the server's config file);
    /// left out, the server's own endpoint (OPENAI_BASE_URL).
    pub profile: Option<String>,
    /// Settings of earlier versions, when a bot could name its own endpoint and key variable:
    /// still read from stored settings (and then ignored), never written back, refused in a
    /// request.
    #[serde(skip_serializing)]
    pub base_url: Option<serde_json::Value>,
    #[serde(skip_serializing)]
    pub api_key_env: Option<serde_json::Value>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub timeout_secs: Option<u64>,
    /// Email addresses and phone numbers replaced by placeholders before text goes to the model.
    pub redact_pii: Option<bool>,
    /// A tool the model must call first in every reply (small models call tools reliably only
    /// when told which); later rounds are the model's choice.
    pub first_tool: Option<String>,
}

impl Default for BotSettings {
    fn default() -> Self {
        BotSettings {
            welcome_message: "Hi! How can I help you today?".into(),
            reply_unknown: "I'm not sure about that.".into(),
            handoff_offer: "Could you rephrase, or leave your email and a person from our team will get back to \
                            you?"
                .into(),
            greeting_reply: "Hello! How can I help you today?".into(),
            thanks_reply: "You're welcome! Is there anything else I can help you with?".into(),
            attachment_reply:
                "Thanks, I've received your file; our team will take a look. Is there anything else I can \
                               help you with?"
                    .into(),
            company_facts: Vec::new(),
            policies: Vec::new(),
            tone: "friendly".into(),
            handoff_waiting: "I'm asking a member of our team to join this chat; they'll be with you shortly.".into(),
            handoff_offline: "No one from our team is online right now. Leave your name and your email or phone \
                              number, and we'll get back to you as soon as we're in."
                .into(),
            handoff_after_unanswered: 0,
            stream_delay_ms: 0,
            model: None,
            widget: WidgetSettings::default(),
            company_name: None,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bots)]
pub struct BotRow {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub public_id: String,
    pub name: String,
    pub settings: String,
    pub allowed_origins: String,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl BotRow {
    pub fn settings(&self) -> BotSettings {
        serde_json::from_str(&self.settings).unwrap_or_default()
    }

    pub fn allowed_origins(&self) -> Vec<String> {
        serde_json::from_str(&self.allowed_origins).unwrap_or_default()
    }
}

pub fn create(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    name: &str,
    settings: &BotSettings,
    allowed_origins: &[String],
) -> Result<BotRow, DbError> {
    let now = now_ms();
    let public_id = crate::secrets::public_id("bot_");
    let settings = serde_json::to_string(settings).map_err(|e| DbError::Invalid(e.to_string()))?;
    let origins = serde_json::to_string(allowed_origins).map_err(|e| DbError::Invalid(e.to_string()))?;
    Ok(on_backend!(conn, c => diesel::insert_into(bots::table)
        .values((
            bots::workspace_id.eq(workspace_id),
            bots::public_id.eq(&public_id),
            bots::name.eq(name),
            bots::settings.eq(&settings),
            bots::allowed_origins.eq(&origins),
            bots::active.eq(true),
            bots::created_at.eq(now),
            bots::updated_at.eq(now),
        ))
        .returning(BotRow::as_returning())
        .get_result(c))?)
}

pub fn list(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<Vec<BotRow>, DbError> {
    Ok(on_backend!(conn, c => bots::table
        .filter(bots::workspace_id.eq(workspace_id))
        .order(bots::id.asc())
        .select(BotRow::as_select())
        .load(c))?)
}

/// A bot of the workspace, by public id.
pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, public_id: &str) -> Result<Option<BotRow>, DbError> {
    Ok(on_backend!(conn, c => bots::table
        .filter(bots::workspace_id.eq(workspace_id))
        .filter(bots::public_id.eq(public_id))
        .select(BotRow::as_select())
        .first(c)
        .optional())?)
}

/// A bot by its internal id, within its workspace.
pub fn by_id(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<BotRow>, DbError> {
    Ok(on_backend!(conn, c => bots::table
        .filter(bots::workspace_id.eq(workspace_id))
        .filter(bots::id.eq(id))
        .select(BotRow::as_select())
        .first(c)
        .optional())?)
}

/// An active bot by public id, whatever its workspace: the widget's way in (the public id is
/// all an embed code carries).
pub fn public(conn: &mut DbConn, public_id: &str) -> Result<Option<BotRow>, DbError> {
    Ok(on_backend!(conn, c => bots::table
        .filter(bots::public_id.eq(public_id))
        .filter(bots::active.eq(true))
        .select(BotRow::as_select())
        .first(c)
        .optional())?)
}

/// Changes a bot's name, settings, origins or active flag (only what is given).
pub fn update(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    public_id: &str,
    name: Option<&str>,
    settings: Option<&BotSettings>,
    allowed_origins: Option<&[String]>,
    active: Option<bool>,
) -> Result<Option<BotRow>, DbError> {
    let settings = settings.map(serde_json::to_string).transpose().map_err(|e| DbError::Invalid(e.to_string()))?;
    let origins =
        allowed_origins.map(serde_json::to_string).transpose().map_err(|e| DbError::Invalid(e.to_string()))?;
    let target = bots::table.filter(bots::workspace_id.eq(workspace_id)).filter(bots::public_id.eq(public_id));
    let changed: usize = on_backend!(conn, c => diesel::update(target)
        .set((
            name.map(|n| bots::name.eq(n.to_owned())),
            settings.map(|s| bots::settings.eq(s)),
            origins.map(|o| bots::allowed_origins.eq(o)),
            active.map(|a| bots::active.eq(a)),
            bots::updated_at.eq(now_ms()),
        ))
        .execute(c))?;
    if changed == 0 {
        return Ok(None);
    }
    get(conn, workspace_id, public_id)
}
