//! The learning worker: claims waiting sources from the queue in the database, turns each into
//! chunks (fetching and crawling URLs through the SSRF guard, reading uploaded files from the
//! file store, splitting text and Q&A), and hands the chunks in under its claim.
//!
//! Every node runs one; the claim (a lease renewed while learning lasts) means each source is
//! learned by one node at a time, and a source whose node died is claimed again once its lease
//! lapses, so nothing is left waiting after a crash. Parsing and extraction run on the blocking
//! pool; the worker's own loop only waits on the network and the database.
//!
//! With embeddings configured, the worker also gives each chunk its vector before handing the
//! chunks in. If the endpoint is down the source is learned without vectors (full text answers
//! meanwhile) and a backfill loop computes the missing ones, and those of chunks learned before
//! embeddings were turned on or under another model, once the endpoint answers. Every node runs
//! the backfill; two nodes may embed the same chunk, which costs a request and changes nothing.
//! Both are background jobs ([`crate::jobs`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Actor;
use futures::future::LocalBoxFuture;
use tokio::sync::Notify;
use tracing::Instrument;

use super::cache::KnowledgeCache;
use super::chunk::{chunk_sections, text_to_sections, ChunkConfig, Section};
use super::embed::{self, Embedder};
use super::extract::{self, Extracted};
use super::fetch::{CrawlLimits, CrawledPage, Fetcher};
use super::files::FileStore;
use crate::jobs::{BackgroundJob, JobRunner, Round, Schedule};
use crate::storage::knowledge::{self, Claim, NewChunk, SourceRow};
use crate::storage::{now_ms, uploads, Db, DbError};

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct LearnConfig {
    /// This node's name on its claims.
    pub node: String,
    /// How long a claim holds without renewal; renewed every third of it while learning.
    pub lease: Duration,
    /// How often the queue is checked when nothing woke the worker.
    pub poll: Duration,
    /// Sources learned at the same time on this node.
    pub concurrency: usize,
    /// Upper bounds on what a URL source may ask to crawl.
    pub max_pages: usize,
    pub max_depth: usize,
    pub chunking: ChunkConfig,
}

/// Wakes the worker when a source is added or sent to be learned again, so it starts at once
/// instead of at the next poll.
#[derive(Clone, Default)]
pub struct LearnerWaker(Arc<Notify>);

impl LearnerWaker {
    pub fn wake(&self) {
        self.0.notify_waiters();
        self.0.notify_one();
    }
}

pub struct Learner {
    db: Db,
    fetcher: Fetcher,
    files: FileStore,
    /// This node's answers, told when a source it learned changed.
    cache: Arc<KnowledgeCache>,
    embedder: Option<Arc<Embedder>>,
    config: LearnConfig,
}

/// The backfill's period when it has nothing to do, and its longest pause after failures.
const BACKFILL_IDLE: Duration = Duration::from_secs(5);
const BACKFILL_MAX_BACKOFF: Duration = Duration::from_secs(300);

/// A round learns one waiting source.
impl BackgroundJob for Learner {
    const NAME: &'static str = "knowledge_learning";

    fn round(self: Arc<Self>) -> LocalBoxFuture<'static, Result<Round, String>> {
        Box::pin(async move {
            match self.claim().await {
                Ok(Some((source, claim))) => {
                    self.learn(source, claim).await;
                    Ok(Round::More)
                }
                Ok(None) => Ok(Round::Idle),
                Err(err) => Err(format!("knowledge queue unavailable: {err}")),
            }
        })
    }

    fn depth(self: Arc<Self>) -> LocalBoxFuture<'static, Option<i64>> {
        Box::pin(async move { self.db.run(knowledge::waiting_count).await.ok() })
    }
}

/// Gives vectors to chunks that have none from the configured model, a batch a round.
struct EmbeddingsBackfill(Arc<Learner>);

impl BackgroundJob for EmbeddingsBackfill {
    const NAME: &'static str = "embeddings_backfill";

    fn round(self: Arc<Self>) -> LocalBoxFuture<'static, Result<Round, String>> {
        Box::pin(async move {
            let Some(embedder) = self.0.embedder.clone() else { return Ok(Round::Idle) };
            match self.0.backfill_batch(&embedder).await? {
                0 => Ok(Round::Idle),
                done => {
                    tracing::info!(done, model = embedder.model(), "knowledge vectors backfilled");
                    Ok(Round::More)
                }
            }
        })
    }
}

/// What learning one source produced.
#[derive(Debug)]
struct Learned {
    chunks: Vec<NewChunk>,
    pages: usize,
}

impl Learner {
    pub fn new(
        db: Db,
        fetcher: Fetcher,
        files: FileStore,
        cache: Arc<KnowledgeCache>,
        embedder: Option<Arc<Embedder>>,
        config: LearnConfig,
    ) -> Self {
        Self { db, fetcher, files, cache, embedder, config }
    }

    /// Starts the worker's background jobs on the current arbiter: `concurrency` runners of
    /// [`Learner`]'s rounds, woken by `waker`, and, with embeddings configured, the backfill.
    pub fn start(self, waker: LearnerWaker) {
        let learner = Arc::new(self);
        let schedule = Schedule::every(learner.config.poll).woken_by(waker.0.clone());
        for _ in 0..learner.config.concurrency.max(1) {
            JobRunner::shared(learner.clone(), schedule.clone()).start();
        }
        if learner.embedder.is_some() {
            let backfill = Schedule { max_backoff: BACKFILL_MAX_BACKOFF, ..Schedule::every(BACKFILL_IDLE) };
            JobRunner::new(EmbeddingsBackfill(learner), backfill).start();
        }
    }

    async fn backfill_batch(&self, embedder: &Embedder) -> Result<usize, String> {
        let model = embedder.model().to_owned();
        let pending = {
            let model = model.clone();
            self.db
                .run(move |conn| knowledge::chunks_without_vectors(conn, &model, embed::BATCH as i64))
                .await
                .map_err(|err| err.to_string())?
        };
        if pending.is_empty() {
            return Ok(0);
        }
        let texts: Vec<String> = pending.iter().map(|c| embed::passage_text(&c.title, &c.content)).collect();
        let vectors = embedder.passages(&texts).await.map_err(|err| err.to_string())?;
        let rows: Vec<(i64, i64, Vec<u8>)> =
            pending.iter().zip(&vectors).map(|(c, v)| (c.id, c.source_id, embed::to_bytes(v))).collect();
        let stored = self
            .db
            .run(move |conn| knowledge::store_vectors(conn, &model, &rows, now_ms()))
            .await
            .map_err(|err| err.to_string())?;
        if stored > 0 {
            self.cache.forget_all();
        }
        // Chunks replaced meanwhile are not stored, but they are gone from the backlog too.
        Ok(pending.len())
    }

    async fn claim(&self) -> Result<Option<(SourceRow, Claim)>, DbError> {
        let node = self.config.node.clone();
        let lease = self.config.lease.as_millis() as i64;
        self.db.run(move |conn| knowledge::claim_next(conn, &node, now_ms(), lease)).await
    }

    /// Learns one claimed source and hands in the result (or the reason it failed), renewing
    /// the claim meanwhile so a long crawl is not taken over by another node.
    async fn learn(&self, source: SourceRow, claim: Claim) {
        let span = tracing::info_span!("learn", source_id = source.id, kind = %source.kind);
        self.learn_claimed(source, claim).instrument(span).await
    }

    async fn learn_claimed(&self, source: SourceRow, claim: Claim) {
        let current = Arc::new(Mutex::new(Some(claim)));
        let renewal = tokio::spawn(renew_while_learning(self.db.clone(), current.clone(), self.config.lease));
        let outcome = match self.produce(&source).await {
            Ok(learned) => Ok(self.with_vectors(learned).await),
            Err(reason) => Err(reason),
        };
        renewal.abort();
        let Some(claim) = current.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            tracing::warn!("lost the claim while learning; another node has the source now");
            return;
        };
        let handed_in = match outcome {
            Ok(learned) => {
                let chunks = learned.chunks.len();
                let model = self.embedder.as_ref().map(|e| e.model().to_owned());
                let result = self
                    .db
                    .run(move |conn| {
                        knowledge::complete(conn, &claim, &learned.chunks, model.as_deref(), learned.pages, now_ms())
                    })
                    .await;
                if matches!(result, Ok(true)) {
                    tracing::info!(chunks, pages = learned.pages, "source learned");
                }
                result
            }
            Err(reason) => {
                tracing::info!(%reason, "source could not be learned");
                self.db.run(move |conn| knowledge::fail(conn, &claim, &reason, now_ms())).await
            }
        };
        match handed_in {
            Ok(true) => self.cache.forget_workspace(source.workspace_id),
            Ok(false) => tracing::warn!("the claim lapsed before the result was handed in; it was discarded"),
            Err(err) => tracing::warn!(error = %err, "could not hand in what was learned"),
        }
    }

    /// The chunks with their vectors when embeddings are configured and the endpoint answers;
    /// otherwise as they are, for the backfill to complete later.
    async fn with_vectors(&self, mut learned: Learned) -> Learned {
        let Some(embedder) = &self.embedder else { return learned };
        if learned.chunks.is_empty() {
            return learned;
        }
        let texts: Vec<String> = learned.chunks.iter().map(|c| embed::passage_text(&c.title, &c.text)).collect();
        match embedder.passages(&texts).await {
            Ok(vectors) => {
                for (chunk, vector) in learned.chunks.iter_mut().zip(vectors) {
                    chunk.embedding = Some(embed::to_bytes(&vector));
                }
            }
            Err(err) => tracing::warn!(error = %err, "chunks learned without vectors; the backfill will add them"),
        }
        learned
    }

    /// The source's chunks, or why there are none.
    async fn produce(&self, source: &SourceRow) -> Result<Learned, String> {
        let chunking = self.config.chunking;
        match source.kind.as_str() {
            "text" => {
                let text = source.content.clone().unwrap_or_default();
                let title = source.title.clone();
                blocking(move || {
                    let document = Extracted { title, sections: text_to_sections(&text) };
                    Ok(Learned { chunks: chunks_of(&document, None, chunking), pages: 1 })
                })
                .await
            }
            "qa" => {
                let question = source.question.clone().unwrap_or_default();
                let answer = source.answer.clone().unwrap_or_default();
                // Besides the exact match on its question, the pair is a passage like any
                // other, so a differently worded question can still find it.
                let section = Section { title: question.clone(), text: answer };
                let document = Extracted { title: question, sections: vec![section] };
                Ok(Learned { chunks: chunks_of(&document, None, chunking), pages: 1 })
            }
            "url" => {
                let url = source.url.clone().ok_or("the source has no URL")?;
                let limits = CrawlLimits {
                    max_pages: (source.crawl_max_pages.max(1) as usize).min(self.config.max_pages),
                    max_depth: (source.crawl_max_depth.max(0) as usize).min(self.config.max_depth),
                    use_sitemap: source.use_sitemap,
                };
                let pages = self.fetcher.crawl(&url, limits).await.map_err(|err| err.to_string())?;
                blocking(move || learn_pages(pages, chunking)).await
            }
            "file" => {
                let upload_id = source.upload_id.clone().ok_or("the source has no file")?;
                let workspace_id = source.workspace_id;
                let upload = self
                    .db
                    .run(move |conn| uploads::get(conn, workspace_id, &upload_id))
                    .await
                    .map_err(|err| err.to_string())?
                    .ok_or("the uploaded file no longer exists")?;
                let files = self.files.clone();
                blocking(move || {
                    let bytes = files.read(&upload.sha256).map_err(|err| format!("cannot read the file: {err}"))?;
                    let kind = extract::sniff(&bytes, Some(&upload.filename), Some(&upload.content_type))
                        .map_err(|err| err.to_string())?;
                    let document = extract::extract(kind, &bytes, &upload.filename).map_err(|err| err.to_string())?;
                    Ok(Learned { chunks: chunks_of(&document, None, chunking), pages: 1 })
                })
                .await
            }
            other => Err(format!("unknown source type `{other}`")),
        }
    }
}

async fn blocking(work: impl FnOnce() -> Result<Learned, String> + Send + 'static) -> Result<Learned, String> {
    tokio::task::spawn_blocking(work).await.map_err(|err| format!("learning stopped: {err}"))?
}

/// Keeps the claim alive; clears it when it is lost so the result is not handed in.
async fn renew_while_learning(db: Db, current: Arc<Mutex<Option<Claim>>>, lease: Duration) {
    let lease_ms = lease.as_millis() as i64;
    loop {
        tokio::time::sleep(lease / 3).await;
        let Some(claim) = current.lock().unwrap_or_else(|p| p.into_inner()).clone() else { return };
        match db.run(move |conn| knowledge::renew(conn, &claim, now_ms(), lease_ms)).await {
            Ok(renewed) => {
                let lost = renewed.is_none();
                *current.lock().unwrap_or_else(|p| p.into_inner()) = renewed;
                if lost {
                    return;
                }
            }
            // A missed renewal is not yet a lost claim; the next one may succeed.
            Err(err) => tracing::warn!(error = %err, "could not renew the learning claim"),
        }
    }
}

/// Every readable page of a crawl as chunks citing the page; pages that cannot be read are
/// skipped, but a crawl with nothing readable fails with the first page's reason.
fn learn_pages(pages: Vec<CrawledPage>, chunking: ChunkConfig) -> Result<Learned, String> {
    let mut chunks = Vec::new();
    let mut learned = 0;
    let mut first_error = None;
    for page in &pages {
        let read = extract::sniff(&page.body, Some(&page.url), page.content_type.as_deref())
            .and_then(|kind| extract::extract(kind, &page.body, &page.url));
        match read {
            Ok(document) => {
                chunks.extend(chunks_of(&document, Some(&page.url), chunking));
                learned += 1;
            }
            Err(err) => {
                tracing::info!(url = %page.url, error = %err, "page skipped");
                first_error.get_or_insert_with(|| format!("{}: {err}", page.url));
            }
        }
    }
    if learned == 0 {
        return Err(first_error.unwrap_or_else(|| "no page could be fetched".to_owned()));
    }
    Ok(Learned { chunks, pages: learned })
}

/// A document's chunks, each titled with the document and its section and citing `url`.
fn chunks_of(document: &Extracted, url: Option<&str>, chunking: ChunkConfig) -> Vec<NewChunk> {
    chunk_sections(&document.sections, chunking)
        .into_iter()
        .map(|chunk| NewChunk {
            title: chunk_title(&document.title, &chunk.title),
            url: url.map(str::to_owned),
            text: chunk.text,
            embedding: None,
        })
        .collect()
}

fn chunk_title(document: &str, section: &str) -> String {
    match (document.trim(), section.trim()) {
        (doc, "") => doc.to_owned(),
        ("", section) => section.to_owned(),
        (doc, section) if doc == section || section.starts_with(doc) => section.to_owned(),
        (doc, section) => format!("{doc} › {section}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_titles_name_the_document_and_the_section() {
        assert_eq!(chunk_title("Prices", ""), "Prices");
        assert_eq!(chunk_title("", "Whitening"), "Whitening");
        assert_eq!(chunk_title("Prices", "Whitening"), "Prices › Whitening");
        assert_eq!(chunk_title("Prices", "Prices"), "Prices");
    }

    #[test]
    fn a_crawl_keeps_its_readable_pages_and_fails_only_when_none_is() {
        let page = |url: &str, body: &str| CrawledPage {
            url: url.into(),
            content_type: Some("text/html".into()),
            body: bytes::Bytes::from(body.to_owned()),
        };
        let pages = vec![
            page("http://site.test/", "<html><head><title>Home</title></head><body><p>We fix teeth.</p></body></html>"),
            CrawledPage {
                url: "http://site.test/logo".into(),
                content_type: None,
                body: vec![0x89, b'P', b'N', b'G', 0, 0].into(),
            },
        ];
        let learned = learn_pages(pages, ChunkConfig::default()).unwrap();
        assert_eq!(learned.pages, 1);
        assert_eq!(learned.chunks.len(), 1);
        assert_eq!(learned.chunks[0].title, "Home");
        assert_eq!(learned.chunks[0].url.as_deref(), Some("http://site.test/"));

        let unreadable =
            vec![CrawledPage { url: "http://site.test/x".into(), content_type: None, body: vec![0, 1, 2].into() }];
        assert!(learn_pages(unreadable, ChunkConfig::default()).unwrap_err().starts_with("http://site.test/x: "));
    }
}
