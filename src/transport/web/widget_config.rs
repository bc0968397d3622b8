//! The widget's settings as the outside sees them: their checks, the public configuration the
//! widget reads without a key (`GET /widget/config/{bot_id}`), and the views Chatorex
//! (`/api/widget-config`, `/api/widget-settings`) and ChatSupport (`getWidgetConfig()`) clients
//! read and write. One model ([`WidgetSettings`] in the bot's settings), three shapes.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::domain::chat::Chat;
use crate::domain::directory::{BotRow, BotSettings, LeadCapture, LeadField, WidgetSettings};
use crate::error::ApiError;
use crate::transport::http::cors;

pub const POSITIONS: &[&str] = &["bottom-right", "bottom-left"];
pub const ICONS: &[&str] = &["chat", "help", "calendar", "tooth"];
pub const LANGUAGES: &[&str] = &["auto", "en", "es", "fr", "de", "pt"];
pub const LEAD_FIELDS: &[&str] = &["name", "email", "phone"];
pub const LEAD_WHEN: &[&str] = &["before", "during"];
/// What a visitor may attach: pictures and PDFs, nothing a browser would run.
pub const UPLOAD_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"];

const MAX_QUICK_PROMPTS: usize = 6;
const MAX_PROMPT_CHARS: usize = 80;
const MAX_SHORT_TEXT: usize = 120;
const MAX_LONG_TEXT: usize = 1000;
const MAX_STRINGS: usize = 100;

/// Checks widget settings; the error names the field under `prefix` (e.g. `settings.widget`).
pub fn check(widget: &WidgetSettings, prefix: &str) -> Result<(), String> {
    let field = |name: &str| format!("{prefix}.{name}");
    if !is_hex_colour(&widget.primary_color) {
        return Err(format!("{} must be a colour such as #0F766E", field("primary_color")));
    }
    one_of(&widget.position, POSITIONS, &field("position"))?;
    one_of(&widget.launcher_icon, ICONS, &field("launcher_icon"))?;
    one_of(&widget.language, LANGUAGES, &field("language"))?;
    at_most(&widget.launcher_text, 40, &field("launcher_text"))?;
    at_most(&widget.title, MAX_SHORT_TEXT, &field("title"))?;
    at_most(&widget.subtitle, MAX_SHORT_TEXT, &field("subtitle"))?;
    at_most(&widget.business_hours_message, MAX_SHORT_TEXT, &field("business_hours_message"))?;
    if let Some(url) = &widget.avatar_url {
        let fine = (url.starts_with("https://") && url.len() > 8 || url.starts_with('/') && !url.starts_with("//"))
            && url.len() <= 500
            && !url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'');
        if !fine {
            return Err(format!("{} must be an https:// URL or a path on this server", field("avatar_url")));
        }
    }
    if widget.quick_prompts.len() > MAX_QUICK_PROMPTS {
        return Err(format!("{} may list at most {MAX_QUICK_PROMPTS} prompts", field("quick_prompts")));
    }
    for (i, prompt) in widget.quick_prompts.iter().enumerate() {
        let chars = prompt.trim().chars().count();
        if chars == 0 || chars > MAX_PROMPT_CHARS {
            return Err(format!("{}[{i}] must be 1 to {MAX_PROMPT_CHARS} characters", field("quick_prompts")));
        }
    }
    check_lead_capture(&widget.lead_capture, &field("lead_capture"))?;
    if widget.strings.len() > MAX_STRINGS {
        return Err(format!("{} may hold at most {MAX_STRINGS} strings", field("strings")));
    }
    for (key, text) in &widget.strings {
        let valid_key = !key.is_empty() && key.len() <= 40 && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if !valid_key {
            return Err(format!("{} key `{key}` must be 1 to 40 lowercase letters or underscores", field("strings")));
        }
        at_most(text, MAX_LONG_TEXT, &format!("{}.{key}", field("strings")))?;
    }
    Ok(())
}

fn check_lead_capture(lead: &LeadCapture, prefix: &str) -> Result<(), String> {
    one_of(&lead.when, LEAD_WHEN, &format!("{prefix}.when"))?;
    at_most(&lead.message, MAX_LONG_TEXT, &format!("{prefix}.message"))?;
    if lead.enabled && lead.fields.is_empty() {
        return Err(format!("{prefix}.fields must list at least one field when the form is enabled"));
    }
    for (i, f) in lead.fields.iter().enumerate() {
        one_of(&f.name, LEAD_FIELDS, &format!("{prefix}.fields[{i}].name"))?;
        if lead.fields[..i].iter().any(|other| other.name == f.name) {
            return Err(format!("{prefix}.fields[{i}].name `{}` is listed twice", f.name));
        }
    }
    Ok(())
}

fn is_hex_colour(text: &str) -> bool {
    text.len() == 7 && text.starts_with('#') && text[1..].chars().all(|c| c.is_ascii_hexdigit())
}

fn one_of(value: &str, allowed: &[&str], field: &str) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!("{field} must be one of {}", allowed.join(", ")))
    }
}

fn at_most(text: &str, chars: usize, field: &str) -> Result<(), String> {
    if text.chars().count() > chars {
        return Err(format!("{field} must be at most {chars} characters"));
    }
    Ok(())
}

/// What the widget reads without a key: its look, words and limits; never a secret.
#[derive(Debug, Serialize)]
pub struct PublicConfig {
    pub bot_id: String,
    pub title: String,
    pub subtitle: String,
    pub avatar_url: Option<String>,
    pub primary_color: String,
    pub position: String,
    pub launcher: Launcher,
    pub welcome_message: String,
    pub quick_prompts: Vec<String>,
    pub lead_capture: LeadCapture,
    pub language: String,
    pub strings: std::collections::BTreeMap<String, String>,
    pub business_hours_message: String,
    pub sound: bool,
    /// Whether a person from the team is online now.
    pub agents_online: bool,
    pub uploads: UploadLimits,
    pub max_message_chars: usize,
}

#[derive(Debug, Serialize)]
pub struct Launcher {
    pub text: String,
    pub icon: String,
}

#[derive(Debug, Serialize)]
pub struct UploadLimits {
    pub enabled: bool,
    pub max_bytes: u64,
    pub types: &'static [&'static str],
}

impl PublicConfig {
    pub fn new(bot: &BotRow, agents_online: bool, limits: &Limits) -> Self {
        let settings = bot.settings();
        let widget = settings.widget;
        PublicConfig {
            bot_id: bot.public_id.clone(),
            title: if widget.title.trim().is_empty() { bot.name.clone() } else { widget.title },
            subtitle: widget.subtitle,
            avatar_url: widget.avatar_url,
            primary_color: widget.primary_color,
            position: widget.position,
            launcher: Launcher { text: widget.launcher_text, icon: widget.launcher_icon },
            welcome_message: settings.welcome_message,
            quick_prompts: widget.quick_prompts,
            lead_capture: widget.lead_capture,
            language: widget.language,
            strings: widget.strings,
            business_hours_message: widget.business_hours_message,
            sound: widget.sound,
            agents_online,
            uploads: UploadLimits {
                enabled: widget.uploads,
                max_bytes: limits.widget_upload_max_bytes,
                types: UPLOAD_TYPES,
            },
            max_message_chars: limits.max_message_chars,
        }
    }
}

/// The public configuration of an active bot, as the page at `origin` may see it.
pub async fn public_config(chat: &Chat, bot_id: &str, origin: Option<&str>) -> Result<PublicConfig, ApiError> {
    let bot = chat.public_bot(bot_id).await?;
    cors::check_bot_origin(&bot, origin)?;
    let online = chat.anyone_online(bot.workspace_id).await?;
    Ok(PublicConfig::new(&bot, online, &chat.limits))
}

/// `GET /widget/config/{bot_id}`: what the widget needs to draw itself. Not cached, so a
/// change reaches the next widget that opens.
pub async fn public(
    req: HttpRequest,
    chat: web::Data<Chat>,
    bot_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let config = public_config(&chat, &bot_id, cors::origin(&req)).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-cache")).json(config))
}

/// Chatorex's widget settings: flat, with the bot's welcome message beside the widget's own.
#[derive(Debug, Serialize)]
pub struct ChatorexSettings {
    pub chatbot_id: String,
    pub primary_color: String,
    pub position: String,
    pub welcome_message: String,
    pub title: String,
    pub subtitle: String,
    pub avatar_url: Option<String>,
    pub launcher_text: String,
    pub launcher_icon: String,
    pub quick_prompts: Vec<String>,
    pub lead_capture: LeadCapture,
    pub language: String,
    pub business_hours_message: String,
    pub sound: bool,
    pub uploads: bool,
}

impl ChatorexSettings {
    pub fn of(bot: &BotRow) -> Self {
        let settings = bot.settings();
        let w = settings.widget;
        ChatorexSettings {
            chatbot_id: bot.public_id.clone(),
            primary_color: w.primary_color,
            position: w.position,
            welcome_message: settings.welcome_message,
            title: w.title,
            subtitle: w.subtitle,
            avatar_url: w.avatar_url,
            launcher_text: w.launcher_text,
            launcher_icon: w.launcher_icon,
            quick_prompts: w.quick_prompts,
            lead_capture: w.lead_capture,
            language: w.language,
            business_hours_message: w.business_hours_message,
            sound: w.sound,
            uploads: w.uploads,
        }
    }
}

/// A change to the widget's settings in Chatorex's flat shape: only what is sent changes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetPatch {
    /// The bot to change (also `?chatbot_id=`); the workspace's first bot when left out.
    pub chatbot_id: Option<String>,
    pub primary_color: Option<String>,
    pub position: Option<String>,
    pub welcome_message: Option<String>,
    pub title: Option<String>,
    pub subtitle: Option<String>,
    pub avatar_url: Option<Option<String>>,
    pub launcher_text: Option<String>,
    pub launcher_icon: Option<String>,
    pub quick_prompts: Option<Vec<String>>,
    pub lead_capture: Option<LeadCapturePatch>,
    pub language: Option<String>,
    pub business_hours_message: Option<String>,
    pub sound: Option<bool>,
    pub uploads: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadCapturePatch {
    pub enabled: Option<bool>,
    pub when: Option<String>,
    pub message: Option<String>,
    pub fields: Option<Vec<LeadField>>,
}

impl WidgetPatch {
    /// The bot's settings with this patch applied, checked.
    pub fn apply(self, mut settings: BotSettings) -> Result<BotSettings, ApiError> {
        let w = &mut settings.widget;
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(value) = self.$field { w.$field = value; } )* };
        }
        set!(primary_color, position, title, subtitle, avatar_url, launcher_text, launcher_icon, quick_prompts);
        set!(language, business_hours_message, sound, uploads);
        if let Some(lead) = self.lead_capture {
            let l = &mut w.lead_capture;
            if let Some(enabled) = lead.enabled {
                l.enabled = enabled;
            }
            if let Some(when) = lead.when {
                l.when = when;
            }
            if let Some(message) = lead.message {
                l.message = message;
            }
            if let Some(fields) = lead.fields {
                l.fields = fields;
            }
        }
        if let Some(welcome) = self.welcome_message {
            at_most(&welcome, MAX_LONG_TEXT, "welcome_message").map_err(ApiError::unprocessable)?;
            settings.welcome_message = welcome;
        }
        // Named as the flat body names them.
        check(&settings.widget, "widget").map_err(|err| ApiError::unprocessable(err.replacen("widget.", "", 1)))?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_each_bad_field_is_named() {
        assert_eq!(check(&WidgetSettings::default(), "settings.widget"), Ok(()));
        let bad = |change: fn(&mut WidgetSettings)| {
            let mut w = WidgetSettings::default();
            change(&mut w);
            check(&w, "settings.widget").unwrap_err()
        };
        assert!(bad(|w| w.primary_color = "teal".into()).contains("settings.widget.primary_color"));
        assert!(bad(|w| w.primary_color = "#12345G".into()).contains("primary_color"));
        assert!(bad(|w| w.position = "top".into()).contains("settings.widget.position"));
        assert!(bad(|w| w.language = "it".into()).contains("settings.widget.language"));
        assert!(bad(|w| w.avatar_url = Some("javascript:alert(1)".into())).contains("avatar_url"));
        assert!(bad(|w| w.avatar_url = Some("//evil.example/a.png".into())).contains("avatar_url"));
        assert!(bad(|w| w.quick_prompts = vec![" ".into()]).contains("quick_prompts[0]"));
        assert!(bad(|w| w.quick_prompts = vec!["a".into(); 7]).contains("at most 6"));
        assert!(bad(|w| w.lead_capture.fields[1].name = "age".into()).contains("lead_capture.fields[1].name"));
        assert!(bad(|w| w.lead_capture.fields[1].name = "name".into()).contains("listed twice"));
        assert!(bad(|w| {
            w.lead_capture.enabled = true;
            w.lead_capture.fields.clear();
        })
        .contains("at least one field"));
        assert!(bad(|w| {
            w.strings.insert("Send!".into(), "x".into());
        })
        .contains("strings key"));
    }

    #[test]
    fn a_flat_patch_changes_only_what_it_sends() {
        let patch: WidgetPatch =
            serde_json::from_value(serde_json::json!({ "primary_color": "#4F46E5", "welcome_message": "Hi!" }))
                .unwrap();
        let settings = patch.apply(BotSettings::default()).unwrap();
        assert_eq!(settings.widget.primary_color, "#4F46E5");
        assert_eq!(settings.welcome_message, "Hi!");
        assert_eq!(settings.widget.position, "bottom-right");
        let bad: WidgetPatch = serde_json::from_value(serde_json::json!({ "position": "middle" })).unwrap();
        let err = bad.apply(BotSettings::default()).unwrap_err();
        assert!(err.message().starts_with("position must be one of"), "{}", err.message());
    }
}
