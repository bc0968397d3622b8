//! Each bot's knowledge index, built from the database and kept while its sources are
//! unchanged. Every node builds its own from the same rows, so all nodes answer alike; a node
//! notices a change made anywhere within `check_every` by comparing a cheap fingerprint of the
//! bot's sources, and rebuilds on the blocking pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::embed;
use super::index::{IndexedChunk, KnowledgeIndex, QaPair};
use crate::db::{knowledge, Db, DbError};

type Version = (i64, i64, i64);

struct Entry {
    workspace_id: i64,
    version: Version,
    checked: Instant,
    index: Arc<KnowledgeIndex>,
}

pub struct KnowledgeCache {
    db: Db,
    check_every: Duration,
    /// Only this model's vectors are loaded (none without embeddings).
    embedding_model: Option<String>,
    entries: Mutex<HashMap<i64, Entry>>,
}

impl KnowledgeCache {
    pub fn new(db: Db, check_every: Duration, embedding_model: Option<String>) -> Self {
        Self { db, check_every, embedding_model, entries: Mutex::default() }
    }

    /// The bot's index, rebuilt first if its sources changed since it was last checked.
    pub async fn index(&self, workspace_id: i64, bot_id: i64) -> Result<Arc<KnowledgeIndex>, DbError> {
        let cached = self.lock().get(&bot_id).map(|e| (e.version, e.checked, e.index.clone()));
        if let Some((_, checked, index)) = &cached {
            if checked.elapsed() < self.check_every {
                return Ok(index.clone());
            }
        }
        let version = self.db.run(move |conn| knowledge::bot_version(conn, workspace_id, bot_id)).await?;
        if let Some((cached_version, _, index)) = cached.filter(|(v, _, _)| *v == version) {
            self.remember(workspace_id, bot_id, cached_version, index.clone());
            return Ok(index);
        }
        let model = self.embedding_model.clone();
        let index = self
            .db
            .run(move |conn| {
                let corpus = knowledge::bot_corpus(conn, workspace_id, bot_id, model.as_deref())?;
                let chunks: Vec<IndexedChunk> = corpus
                    .chunks
                    .into_iter()
                    .map(|c| IndexedChunk {
                        chunk_id: c.row.id,
                        source_id: c.row.source_id,
                        title: c.row.title,
                        url: c.row.url,
                        text: c.row.content,
                        embedding: c.embedding.as_deref().and_then(embed::from_bytes).and_then(embed::normalized),
                    })
                    .collect();
                let qa: Vec<QaPair> = corpus
                    .qa
                    .into_iter()
                    .map(|(source_id, question, answer)| QaPair { source_id, question, answer })
                    .collect();
                KnowledgeIndex::build(&chunks, &qa).map_err(|err| DbError::Task(format!("knowledge index: {err}")))
            })
            .await?;
        let index = Arc::new(index);
        self.remember(workspace_id, bot_id, version, index.clone());
        Ok(index)
    }

    fn remember(&self, workspace_id: i64, bot_id: i64, version: Version, index: Arc<KnowledgeIndex>) {
        self.lock().insert(bot_id, Entry { workspace_id, version, checked: Instant::now(), index });
    }

    /// Makes the workspace's bots check their sources on their next question: called on the
    /// node that changed them, so it answers from the change at once (other nodes notice
    /// within `check_every`).
    pub fn forget_workspace(&self, workspace_id: i64) {
        self.lock().retain(|_, entry| entry.workspace_id != workspace_id);
    }

    /// Makes every bot check its sources on its next question (vectors were added anywhere).
    pub fn forget_all(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Entry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
