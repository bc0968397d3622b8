//! Workspaces (tenants): creation with every credential a seed API authenticates with.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::bots::{self, BotSettings, Fact, WidgetSettings};
use super::schema::workspaces;
use super::{keys, now_ms, write_tx, DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;
use crate::secrets;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = workspaces)]
pub struct WorkspaceRow {
    pub id: WorkspaceId,
    pub public_id: String,
    pub name: String,
    pub timezone: String,
    pub created_at: i64,
}

/// A workspace's own quotas (requests per minute), in place of the server's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Per API key on the authenticated API.
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
    /// Per session on `POST /chat`.
    #[serde(default)]
    pub chat_rate_limit_per_minute: Option<u32>,
}

impl Quotas {
    /// The quotas kept in a workspace's `settings` JSON.
    pub fn of_settings(settings: &str) -> Quotas {
        serde_json::from_str::<serde_json::Value>(settings)
            .ok()
            .and_then(|value| serde_json::from_value(value).ok())
            .unwrap_or_default()
    }
}

/// The workspace's `settings` JSON text (`None` for no such workspace).
fn settings_text(conn: &mut DbConn, id: WorkspaceId) -> Result<Option<String>, DbError> {
    Ok(on_backend!(conn, c => workspaces::table
        .filter(workspaces::id.eq(id))
        .select(workspaces::settings)
        .first(c)
        .optional())?)
}

pub fn quotas(conn: &mut DbConn, id: WorkspaceId) -> Result<Quotas, DbError> {
    Ok(settings_text(conn, id)?.map(|s| Quotas::of_settings(&s)).unwrap_or_default())
}

/// What else a workspace's `settings` JSON holds.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {
    /// ISO 3166 country (e.g. `US`) that phone numbers written without a country code are read in.
    #[serde(default)]
    pub country: Option<String>,
}

pub fn settings(conn: &mut DbConn, id: WorkspaceId) -> Result<Settings, DbError> {
    Ok(settings_text(conn, id)?.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default())
}

/// Sets (or with `None` removes) the workspace's phone country, keeping the rest of its settings.
pub fn set_country(conn: &mut DbConn, id: WorkspaceId, country: Option<&str>) -> Result<(), DbError> {
    patch_settings(conn, id, |value| match country {
        Some(country) => value["country"] = serde_json::json!(country),
        None => {
            if let Some(object) = value.as_object_mut() {
                object.remove("country");
            }
        }
    })
}

/// Stores the workspace's quotas in its settings, keeping whatever else they hold.
pub fn set_quotas(conn: &mut DbConn, id: WorkspaceId, quotas: Quotas) -> Result<(), DbError> {
    patch_settings(conn, id, |value| {
        value["rate_limit_per_minute"] = serde_json::json!(quotas.rate_limit_per_minute);
        value["chat_rate_limit_per_minute"] = serde_json::json!(quotas.chat_rate_limit_per_minute);
    })
}

/// Changes the workspace's `settings` JSON by `change`, in one write transaction.
fn patch_settings(
    conn: &mut DbConn,
    id: WorkspaceId,
    change: impl FnOnce(&mut serde_json::Value),
) -> Result<(), DbError> {
    write_tx(conn, |conn| {
        let settings: String = on_backend!(conn, c => workspaces::table
            .filter(workspaces::id.eq(id))
            .select(workspaces::settings)
            .first(c))?;
        let mut value: serde_json::Value = serde_json::from_str(&settings).unwrap_or_else(|_| serde_json::json!({}));
        if !value.is_object() {
            value = serde_json::json!({});
        }
        change(&mut value);
        on_backend!(conn, c => diesel::update(workspaces::table.filter(workspaces::id.eq(id)))
            .set(workspaces::settings.eq(value.to_string()))
            .execute(c))?;
        Ok(())
    })
}

/// A new workspace and its secrets in clear: printed once, never stored so.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedWorkspace {
    pub workspace_id: WorkspaceId,
    pub public_id: String,
    pub name: String,
    pub workspace_token: String,
    pub external_api_key: String,
    pub bot_id: String,
    pub api_key: String,
}

/// Creates a workspace with a workspace token, an external API key, one API key and one bot.
/// `demo` gives the bot the sample practice's facts and policies.
pub fn create(conn: &mut DbConn, name: &str, demo: bool) -> Result<CreatedWorkspace, DbError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DbError::Invalid("name must not be empty".into()));
    }
    let workspace_token = secrets::generate(secrets::WORKSPACE_TOKEN_PREFIX);
    let external_api_key = secrets::generate(secrets::EXTERNAL_KEY_PREFIX);
    let public_id = uuid::Uuid::new_v4().to_string();
    write_tx(conn, |conn| {
        let id: WorkspaceId = on_backend!(conn, c => diesel::insert_into(workspaces::table)
            .values((
                workspaces::public_id.eq(&public_id),
                workspaces::name.eq(name),
                workspaces::token_hash.eq(secrets::hash(&workspace_token)),
                workspaces::external_key_hash.eq(secrets::hash(&external_api_key)),
                workspaces::created_at.eq(now_ms()),
                // The demo workspace is marked so that `/demo` can show its bot.
                workspaces::settings.eq(if demo { r#"{"demo":true}"# } else { "{}" }),
            ))
            .returning(workspaces::id)
            .get_result(c))?;
        let api_key = keys::create(conn, id, "default")?;
        if demo {
            super::schedule::seed_demo_practice(conn, id)?;
        }
        let settings = if demo { demo_bot_settings(name) } else { BotSettings::default() };
        let bot = bots::create(conn, id, &format!("{name} assistant"), &settings, &[])?;
        Ok(CreatedWorkspace {
            workspace_id: id,
            public_id: public_id.clone(),
            name: name.to_owned(),
            workspace_token: workspace_token.clone(),
            external_api_key: external_api_key.clone(),
            bot_id: bot.public_id,
            api_key,
        })
    })
}

pub fn get(conn: &mut DbConn, id: WorkspaceId) -> Result<Option<WorkspaceRow>, DbError> {
    Ok(on_backend!(conn, c => workspaces::table
        .filter(workspaces::id.eq(id))
        .select(WorkspaceRow::as_select())
        .first(c)
        .optional())?)
}

pub fn count(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(on_backend!(conn, c => workspaces::table.count().get_result(c))?)
}

/// The demo workspace's first active bot (its public id), for the `/demo` page.
pub fn demo_bot(conn: &mut DbConn) -> Result<Option<String>, DbError> {
    let marked: Vec<(WorkspaceId, String)> = on_backend!(conn, c => workspaces::table
        .filter(workspaces::settings.like("%\"demo\":true%"))
        .select((workspaces::id, workspaces::settings))
        .order(workspaces::id.asc())
        .load(c))?;
    for (id, settings) in marked {
        let value: serde_json::Value = serde_json::from_str(&settings).unwrap_or_default();
        if value["demo"] == true {
            if let Some(bot) = bots::list(conn, id)?.into_iter().find(|bot| bot.active) {
                return Ok(Some(bot.public_id));
            }
        }
    }
    Ok(None)
}

/// The sample practice's bot: what a newcomer can ask about at once.
pub fn demo_bot_settings(practice: &str) -> BotSettings {
    let fact = |title: &str, content: &str| Fact { title: title.into(), content: content.into() };
    BotSettings {
        welcome_message: format!(
            "Hi! Welcome to {practice}. I can tell you about our opening hours, location, parking, insurance, \
             prices and policies. How can I help?"
        ),
        company_facts: vec![
            fact(
                "Opening hours",
                "We are open Monday to Friday from 9:00 to 17:00. We are closed on Saturdays, Sundays and public \
                 holidays.",
            ),
            fact("Location and address", "You will find us at 12 Harbour Street, Springfield, on the second floor."),
            fact("Parking", "Free parking is available behind the building; the entrance is on Mill Lane."),
            fact(
                "Insurance accepted",
                "We accept Delta Dental, Aetna, Cigna and MetLife insurance plans, and we offer payment plans.",
            ),
            fact(
                "Prices of services",
                "A general consultation costs $80, a teeth cleaning $120 and teeth whitening $350.",
            ),
            fact("Emergency appointments", "For a dental emergency call +1 555 010 2030; we keep same-day slots."),
        ],
        policies: vec![
            fact(
                "Cancellation policy",
                "Please cancel or reschedule at least 24 hours before your appointment; late cancellations may be \
                 charged $25.",
            ),
            fact(
                "New patients",
                "New patients are welcome; please arrive 10 minutes early to fill in the intake form.",
            ),
        ],
        widget: WidgetSettings {
            title: practice.to_owned(),
            subtitle: "Ask us anything, or book a visit".into(),
            quick_prompts: vec![
                "What are your opening hours?".into(),
                "I'd like to book a cleaning".into(),
                "How much is a consultation?".into(),
                "Can I talk to a person?".into(),
            ],
            // The doctors' own hours (storage::schedule::seed_demo_practice): every advertised
            // hour can be booked, and nothing bookable is outside what is advertised.
            business_hours_message: "Mon–Fri 9:00–17:00".into(),
            ..WidgetSettings::default()
        },
        ..BotSettings::default()
    }
}

/// The workspace whose external API key this is (ChatGenius's `api_key` in a booking body).
pub fn by_external_key(conn: &mut DbConn, key: &str) -> Result<Option<WorkspaceId>, DbError> {
    Ok(on_backend!(conn, c => workspaces::table
        .filter(workspaces::external_key_hash.eq(secrets::hash(key)))
        .select(workspaces::id)
        .first(c)
        .optional())?)
}

/// The workspace whose token this is (CX Genie's `workspace_token`).
pub fn by_token(conn: &mut DbConn, token: &str) -> Result<Option<WorkspaceId>, DbError> {
    Ok(on_backend!(conn, c => workspaces::table
        .filter(workspaces::token_hash.eq(secrets::hash(token)))
        .select(workspaces::id)
        .first(c)
        .optional())?)
}
