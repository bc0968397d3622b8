//! Each bot's knowledge index, built from the database and kept while its sources are
//! unchanged. Every node builds its own from the same rows, so all nodes answer alike; a node
//! notices a change made anywhere within `check_every` by comparing a cheap fingerprint of the
//! bot's sources, and rebuilds.
//!
//! The cache is bounded by count and by approximate memory (the least recently used index goes
//! first). Each bot's index is checked and built by one caller at a time (single-flight): the
//! questions that arrive meanwhile wait for that build instead of starting their own. A build
//! reads the rows with a pooled connection, gives it back, and only then builds the index on
//! the blocking pool, so a large corpus never holds a connection that requests are waiting for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use super::embed;
use super::index::{IndexedChunk, KnowledgeIndex, QaPair};
use crate::ids::WorkspaceId;
use crate::storage::{knowledge, Db, DbError};

type Version = (i64, i64, i64);

/// Indexes kept unless configured otherwise.
pub const DEFAULT_MAX_ENTRIES: usize = 256;
/// Approximate memory of the kept indexes unless configured otherwise.
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

struct Entry {
    workspace_id: WorkspaceId,
    version: Version,
    checked: Instant,
    index: Arc<KnowledgeIndex>,
    bytes: usize,
}

/// The kept indexes, least recently used first out, and their estimated size.
struct Entries {
    lru: LruCache<i64, Entry>,
    bytes: usize,
}

/// What the cache holds and has done, for `/metrics` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    pub builds: u64,
    pub evictions: u64,
}

pub struct KnowledgeCache {
    db: Db,
    check_every: Duration,
    /// Only this model's vectors are loaded (none without embeddings).
    embedding_model: Option<String>,
    max_entries: usize,
    max_bytes: usize,
    entries: Mutex<Entries>,
    /// A lock per bot whose index is being checked or built; gone when nobody waits on it.
    flights: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    builds: AtomicU64,
    evictions: AtomicU64,
}

/// One caller's turn at checking a bot's index; leaves the bot's lock behind only while
/// others still wait on it (also when the caller gives up half-way).
struct Flight<'a> {
    cache: &'a KnowledgeCache,
    bot_id: i64,
    lock: Arc<tokio::sync::Mutex<()>>,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.turn.take();
        let mut flights = self.cache.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // The map's and ours: nobody else is waiting.
        if Arc::strong_count(&self.lock) == 2 {
            flights.remove(&self.bot_id);
        }
    }
}

impl KnowledgeCache {
    pub fn new(db: Db, check_every: Duration, embedding_model: Option<String>) -> Self {
        Self {
            db,
            check_every,
            embedding_model,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
            entries: Mutex::new(Entries { lru: LruCache::unbounded(), bytes: 0 }),
            flights: Mutex::default(),
            builds: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// Keeps at most `max_entries` indexes taking about `max_bytes` in all.
    pub fn with_limits(mut self, max_entries: usize, max_bytes: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self.max_bytes = max_bytes;
        self
    }

    pub fn stats(&self) -> CacheStats {
        let entries = self.lock();
        CacheStats {
            entries: entries.lru.len(),
            bytes: entries.bytes,
            builds: self.builds.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    /// The bot's index, rebuilt first if its sources changed since it was last checked.
    pub async fn index(&self, workspace_id: WorkspaceId, bot_id: i64) -> Result<Arc<KnowledgeIndex>, DbError> {
        if let Some(index) = self.fresh(bot_id) {
            return Ok(index);
        }
        let _flight = self.take_turn(bot_id).await;
        // Whoever had the turn before may have just checked or built it.
        if let Some(index) = self.fresh(bot_id) {
            return Ok(index);
        }
        let cached = self.lock().lru.peek(&bot_id).map(|e| (e.version, e.index.clone()));
        let version = self.db.run(move |conn| knowledge::bot_version(conn, workspace_id, bot_id)).await?;
        if let Some((_, index)) = cached.filter(|(v, _)| *v == version) {
            if let Some(entry) = self.lock().lru.get_mut(&bot_id) {
                entry.checked = Instant::now();
            }
            return Ok(index);
        }
        let model = self.embedding_model.clone();
        let corpus =
            self.db.run(move |conn| knowledge::bot_corpus(conn, workspace_id, bot_id, model.as_deref())).await?;
        let (index, bytes) = tokio::task::spawn_blocking(move || build(corpus))
            .await
            .map_err(|err| DbError::Task(format!("knowledge index: {err}")))??;
        self.builds.fetch_add(1, Ordering::Relaxed);
        let index = Arc::new(index);
        self.remember(workspace_id, bot_id, version, index.clone(), bytes);
        Ok(index)
    }

    /// The kept index, if it was checked recently enough to be used without asking the database.
    fn fresh(&self, bot_id: i64) -> Option<Arc<KnowledgeIndex>> {
        let mut entries = self.lock();
        let entry = entries.lru.get(&bot_id)?;
        (entry.checked.elapsed() < self.check_every).then(|| entry.index.clone())
    }

    async fn take_turn(&self, bot_id: i64) -> Flight<'_> {
        let lock = {
            let mut flights = self.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            flights.entry(bot_id).or_default().clone()
        };
        let mut flight = Flight { cache: self, bot_id, lock: lock.clone(), turn: None };
        flight.turn = Some(lock.lock_owned().await);
        flight
    }

    fn remember(
        &self,
        workspace_id: WorkspaceId,
        bot_id: i64,
        version: Version,
        index: Arc<KnowledgeIndex>,
        bytes: usize,
    ) {
        let mut entries = self.lock();
        let entry = Entry { workspace_id, version, checked: Instant::now(), index, bytes };
        if let Some(old) = entries.lru.put(bot_id, entry) {
            entries.bytes -= old.bytes;
        }
        entries.bytes += bytes;
        // The new index is the most recently used, so it goes last: only if it alone is larger
        // than the whole budget is it not kept (every question then builds its own).
        while entries.lru.len() > self.max_entries || entries.bytes > self.max_bytes {
            let Some((_, evicted)) = entries.lru.pop_lru() else { break };
            entries.bytes -= evicted.bytes;
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Makes the workspace's bots check their sources on their next question: called on the
    /// node that changed them, so it answers from the change at once (other nodes notice
    /// within `check_every`).
    pub fn forget_workspace(&self, workspace_id: WorkspaceId) {
        let mut entries = self.lock();
        let bots: Vec<i64> =
            entries.lru.iter().filter(|(_, entry)| entry.workspace_id == workspace_id).map(|(bot, _)| *bot).collect();
        for bot in bots {
            if let Some(entry) = entries.lru.pop(&bot) {
                entries.bytes -= entry.bytes;
            }
        }
    }

    /// Makes every bot check its sources on its next question (vectors were added anywhere).
    pub fn forget_all(&self) {
        let mut entries = self.lock();
        entries.lru.clear();
        entries.bytes = 0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Builds the index of a corpus (CPU only, no connection); answers it with its estimated size.
fn build(corpus: knowledge::Corpus) -> Result<(KnowledgeIndex, usize), DbError> {
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
    let qa: Vec<QaPair> =
        corpus.qa.into_iter().map(|(source_id, question, answer)| QaPair { source_id, question, answer }).collect();
    let bytes = estimate_bytes(&chunks, &qa);
    let index = KnowledgeIndex::build(&chunks, &qa).map_err(|err| DbError::Task(format!("knowledge index: {err}")))?;
    Ok((index, bytes))
}

/// About what an index of these takes in memory: the texts it keeps, as much again for the
/// in-memory postings, the vectors, and a fixed overhead per index.
fn estimate_bytes(chunks: &[IndexedChunk], qa: &[QaPair]) -> usize {
    const PER_INDEX: usize = 64 << 10;
    let texts: usize =
        chunks.iter().map(|c| c.text.len() + c.title.len() + c.url.as_ref().map_or(0, String::len)).sum::<usize>()
            + qa.iter().map(|p| p.question.len() + p.answer.len()).sum::<usize>();
    let vectors: usize = chunks.iter().map(|c| c.embedding.as_ref().map_or(0, |e| e.len() * 4)).sum();
    PER_INDEX + 2 * texts + vectors
}
