//! Reply engines behind the actors' streaming `Brain` port.
//!
//! [`builtin`] answers with no model at all (greetings, thanks, the bot's company facts and
//! policies, its `reply_unknown` otherwise); [`reception`] gives it booking by chat, reading
//! dates and times with [`when`]. Bot settings are read through [`BotSettingsCache`]
//! so a reply costs no database round trip once the bot has been seen.

pub mod builtin;
pub mod claims;
pub mod flows;
pub mod intent_vectors;
pub mod model;
pub mod nlu;
pub mod reception;
pub mod redact;
pub mod tools;
pub mod when;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ids::WorkspaceId;
use crate::storage::{bots, BotSettings, Db, DbError};

/// How long a cached bot's settings are trusted before they are read again. Updates made
/// through this node invalidate at once; the TTL bounds staleness for updates made elsewhere.
const SETTINGS_TTL: Duration = Duration::from_secs(10);

/// Bot settings by bot id, read from the database at most once per TTL.
pub struct BotSettingsCache {
    db: Db,
    entries: Mutex<HashMap<i64, (Instant, Arc<BotSettings>)>>,
}

impl BotSettingsCache {
    pub fn new(db: Db) -> Self {
        Self { db, entries: Mutex::default() }
    }

    pub async fn get(&self, workspace_id: WorkspaceId, bot_id: i64) -> Result<Arc<BotSettings>, DbError> {
        if let Some((at, settings)) = self.lock().get(&bot_id) {
            if at.elapsed() < SETTINGS_TTL {
                return Ok(settings.clone());
            }
        }
        let row = self.db.run(move |conn| bots::by_id(conn, workspace_id, bot_id)).await?;
        let settings = Arc::new(row.map(|bot| bot.settings()).unwrap_or_default());
        self.lock().insert(bot_id, (Instant::now(), settings.clone()));
        Ok(settings)
    }

    pub fn invalidate(&self, bot_id: i64) {
        self.lock().remove(&bot_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (Instant, Arc<BotSettings>)>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
