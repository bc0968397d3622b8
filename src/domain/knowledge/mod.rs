//! The knowledge base: what a bot knows beyond its settings, and answers grounded in it.
//!
//! Sources (pasted text, Q&A pairs, web pages and sites, uploaded files) are rows in the
//! database; [`learn`] turns each into chunks in the background, fetching through [`fetch`]
//! (behind the SSRF guard) and reading files kept by [`files`] with [`extract`], split by
//! [`chunk`]. A bot's chunks and Q&A pairs become a BM25 index ([`index`]) built from the
//! database and cached per bot ([`cache`]), which [`answer`] turns into replies with citations.
//! When an embeddings endpoint is configured, [`embed`] gives chunks vectors as they are learned
//! (and backfills those without), and retrieval becomes hybrid.
//! [`Knowledge`] is the one entry point the routes and the brain use.

pub mod answer;
pub mod cache;
pub mod chunk;
pub mod embed;
pub mod extract;
pub mod fetch;
pub mod files;
pub mod index;
pub mod learn;
pub mod library;

use std::sync::Arc;

use crate::error::ApiError;
use crate::ids::{ConversationId, WorkspaceId};
use crate::net_guard::{self, TargetPolicy};
use crate::storage::knowledge::{self as rows, NewSource, SourceRow};
use crate::storage::{bots, now_ms, unanswered, uploads, Db, DbError};
use answer::{Grounded, Semantic};
use cache::KnowledgeCache;
use embed::Embedder;
use files::FileStore;
use index::{Hit, KnowledgeIndex};
use learn::LearnerWaker;

/// Longest text or answer a source may hold, in characters.
pub const MAX_TEXT_CHARS: usize = 200_000;
/// Longest title or Q&A question, in characters.
pub const MAX_TITLE_CHARS: usize = 500;

/// The knowledge base as the rest of the server sees it.
pub struct Knowledge {
    pub db: Db,
    pub cache: Arc<KnowledgeCache>,
    pub files: FileStore,
    /// For fetching a page on request (ChatSupport AI's `scrapeUrl`); the learner has its own.
    pub fetcher: Arc<fetch::Fetcher>,
    pub waker: LearnerWaker,
    /// What URL sources may point at (checked again, after DNS, when fetched).
    pub policy: TargetPolicy,
    pub upload_max_bytes: u64,
    /// Longest an upload may take to be received and stored, whatever happens on the way.
    pub upload_timeout: std::time::Duration,
    pub crawl_max_pages: usize,
    pub crawl_max_depth: usize,
    /// Vectors for hybrid retrieval, when an embeddings endpoint is configured.
    pub embedder: Option<Arc<Embedder>>,
}

/// What a search found: the ranked passages, the answer the built-in brain would give, and
/// whether vectors took part.
pub struct Retrieval {
    pub hits: Vec<Hit>,
    pub answer: Option<Grounded>,
    pub hybrid: bool,
}

/// A source as a caller describes it, before validation; `bot` is the bot's public id.
#[derive(Debug, Clone, Default)]
pub struct SourceInput {
    pub bot: Option<String>,
    pub kind: String,
    pub title: Option<String>,
    pub url: Option<String>,
    pub content: Option<String>,
    pub question: Option<String>,
    pub answer: Option<String>,
    pub upload_id: Option<String>,
    pub crawl_max_pages: Option<i64>,
    pub crawl_max_depth: Option<i64>,
    pub use_sitemap: bool,
}

impl Knowledge {
    /// Validates and stores a source as `waiting`, and wakes the learner; learning happens in
    /// the background, so this returns at once.
    pub async fn add_source(&self, workspace_id: WorkspaceId, input: SourceInput) -> Result<SourceRow, ApiError> {
        let bot_id = self.bot_id(workspace_id, input.bot.clone()).await?;
        let new = self.validate(input, bot_id)?;
        let row = self
            .db
            .run(move |conn| {
                let mut new = new;
                if let Some(upload_id) = &new.upload_id {
                    let Some(upload) = uploads::get(conn, workspace_id, upload_id)? else { return Ok(None) };
                    if new.title.is_empty() {
                        new.title = upload.filename;
                    }
                }
                rows::create(conn, workspace_id, &new, now_ms()).map(Some)
            })
            .await?
            .ok_or_else(|| ApiError::bad_request("`upload_id` names no file uploaded to this workspace"))?;
        self.waker.wake();
        Ok(row)
    }

    /// Sends a source to be learned again; its current chunks answer until the new ones land.
    pub async fn relearn(&self, workspace_id: WorkspaceId, id: i64) -> Result<SourceRow, ApiError> {
        let row = self
            .db
            .run(move |conn| rows::relearn(conn, workspace_id, id, now_ms()))
            .await?
            .ok_or_else(|| ApiError::not_found("knowledge source not found"))?;
        self.waker.wake();
        Ok(row)
    }

    pub async fn source(&self, workspace_id: WorkspaceId, id: i64) -> Result<SourceRow, ApiError> {
        self.db
            .run(move |conn| rows::get(conn, workspace_id, id))
            .await?
            .ok_or_else(|| ApiError::not_found("knowledge source not found"))
    }

    /// Deletes a source and its chunks; its facts stop being answered at once.
    pub async fn delete(&self, workspace_id: WorkspaceId, id: i64) -> Result<(), ApiError> {
        if self.db.run(move |conn| rows::delete(conn, workspace_id, id)).await? {
            self.cache.forget_workspace(workspace_id);
            Ok(())
        } else {
            Err(ApiError::not_found("knowledge source not found"))
        }
    }

    /// The workspace's sources, of one bot (by public id) when given.
    pub async fn sources(&self, workspace_id: WorkspaceId, bot: Option<String>) -> Result<Vec<SourceRow>, ApiError> {
        let bot_id = self.bot_id(workspace_id, bot).await?;
        Ok(self.db.run(move |conn| rows::list(conn, workspace_id, bot_id)).await?)
    }

    /// The grounded answer to `question` from the bot's knowledge: a Q&A pair first, then the
    /// best passage; `None` when nothing is confident enough.
    pub async fn ask(
        &self,
        workspace_id: WorkspaceId,
        bot_id: i64,
        question: &str,
    ) -> Result<Option<Grounded>, DbError> {
        let index = self.cache.index(workspace_id, bot_id).await?;
        if let Some(found) = answer::from_qa(&index, question) {
            return Ok(Some(found));
        }
        let query = self.query_vector(&index, question).await;
        Ok(answer::from_passages(&index, question, self.semantic(query.as_deref())))
    }

    /// The `limit` best passages for `question` and the answer they give, ranked by full text
    /// and, with embeddings, by meaning too.
    pub async fn search(
        &self,
        workspace_id: WorkspaceId,
        bot_id: i64,
        question: &str,
        limit: usize,
    ) -> Result<Retrieval, ApiError> {
        let index = self.cache.index(workspace_id, bot_id).await?;
        let query = self.query_vector(&index, question).await;
        let hits = index.hybrid_search(question, query.as_deref(), limit).map_err(ApiError::internal)?;
        let answer = answer::from_qa(&index, question)
            .or_else(|| answer::from_passages(&index, question, self.semantic(query.as_deref())));
        Ok(Retrieval { hits, answer, hybrid: query.is_some() })
    }

    /// The question's vector, when the bot's chunks have vectors to compare it with; a slow or
    /// failing endpoint costs the visitor nothing but the vectors (full text still answers).
    async fn query_vector(&self, index: &KnowledgeIndex, question: &str) -> Option<Vec<f32>> {
        let embedder = self.embedder.as_ref().filter(|_| index.has_vectors())?;
        match embedder.query(question).await {
            Ok(vector) => Some(vector),
            Err(err) => {
                tracing::warn!(error = %err, "question not embedded; answering from full text alone");
                None
            }
        }
    }

    fn semantic<'a>(&self, query: Option<&'a [f32]>) -> Option<Semantic<'a>> {
        let embedder = self.embedder.as_ref()?;
        Some(Semantic { query: query?, min_similarity: embedder.min_similarity() })
    }

    /// Adds a question the bot could not answer to the workspace's list.
    /// Puts on the review list a question the bot answered from its facts while a knowledge
    /// passage disagreed: `detail` shows both, for a person to correct one of them.
    pub async fn record_conflict(
        &self,
        workspace_id: WorkspaceId,
        bot_id: i64,
        question: &str,
        conversation_id: &ConversationId,
        detail: String,
    ) -> Result<(), DbError> {
        let (question, conversation_id) = (question.to_owned(), conversation_id.to_owned());
        self.db
            .run(move |conn| {
                let why = (unanswered::Review::Conflict, Some(detail.as_str()));
                unanswered::record_for_review(conn, workspace_id, bot_id, &question, &conversation_id, why, now_ms())
            })
            .await
    }

    pub async fn record_unanswered(
        &self,
        workspace_id: WorkspaceId,
        bot_id: i64,
        question: &str,
        conversation_id: &ConversationId,
    ) -> Result<(), DbError> {
        let (question, conversation_id) = (question.to_owned(), conversation_id.to_owned());
        self.db
            .run(move |conn| unanswered::record(conn, workspace_id, bot_id, &question, &conversation_id, now_ms()))
            .await
    }

    /// The bot's internal id from its public id; the workspace's first bot when none is named
    /// is not assumed: a source without a bot serves every bot of the workspace.
    async fn bot_id(&self, workspace_id: WorkspaceId, public_id: Option<String>) -> Result<Option<i64>, ApiError> {
        let Some(public_id) = public_id else { return Ok(None) };
        let row = self.db.run(move |conn| bots::get(conn, workspace_id, &public_id)).await?;
        Ok(Some(row.ok_or_else(|| ApiError::not_found("bot not found"))?.id))
    }

    fn validate(&self, input: SourceInput, bot_id: Option<i64>) -> Result<NewSource, ApiError> {
        let text = |field: &str, value: Option<String>, max: usize| -> Result<String, ApiError> {
            let value = value.map(|v| v.trim().to_owned()).unwrap_or_default();
            if value.is_empty() {
                return Err(ApiError::bad_request(format!("`{field}` is required for a {} source", input.kind)));
            }
            let chars = value.chars().count();
            if chars > max {
                return Err(ApiError::unprocessable(format!(
                    "`{field}` is {chars} characters long; the limit is {max}"
                )));
            }
            Ok(value)
        };
        let title = input.title.clone().map(|t| t.trim().to_owned()).unwrap_or_default();
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(ApiError::unprocessable(format!("`title` is longer than {MAX_TITLE_CHARS} characters")));
        }
        let mut new = NewSource { bot_id, kind: input.kind.clone(), title, crawl_max_pages: 1, ..NewSource::default() };
        match input.kind.as_str() {
            "text" => new.content = Some(text("content", input.content, MAX_TEXT_CHARS)?),
            "qa" => {
                let question = text("question", input.question, MAX_TITLE_CHARS)?;
                new.answer = Some(text("answer", input.answer, MAX_TEXT_CHARS)?);
                if new.title.is_empty() {
                    new.title = question.clone();
                }
                new.question = Some(question);
            }
            "url" => {
                let url = text("url", input.url, 2048)?;
                net_guard::check_url(&url, self.policy.clone())
                    .map_err(|err| ApiError::unprocessable(format!("invalid `url`: {err}")))?;
                let pages = input.crawl_max_pages.unwrap_or(1);
                if !(1..=self.crawl_max_pages as i64).contains(&pages) {
                    return Err(ApiError::unprocessable(format!(
                        "`max_pages` must be 1 to {} (FRONTDESK_CRAWL_MAX_PAGES)",
                        self.crawl_max_pages
                    )));
                }
                let depth = input.crawl_max_depth.unwrap_or(if pages > 1 { self.crawl_max_depth as i64 } else { 0 });
                if !(0..=self.crawl_max_depth as i64).contains(&depth) {
                    return Err(ApiError::unprocessable(format!(
                        "`max_depth` must be 0 to {} (FRONTDESK_CRAWL_MAX_DEPTH)",
                        self.crawl_max_depth
                    )));
                }
                if new.title.is_empty() {
                    new.title = url.clone();
                }
                new.url = Some(url);
                new.crawl_max_pages = pages as i32;
                new.crawl_max_depth = depth as i32;
                new.use_sitemap = input.use_sitemap;
            }
            "file" => new.upload_id = Some(text("upload_id", input.upload_id, 64)?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown source type `{other}`: use one of {}",
                    rows::KINDS.join(", ")
                )))
            }
        }
        Ok(new)
    }
}
