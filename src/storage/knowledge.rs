//! Knowledge sources and their chunks, and the learning queue that lives in the sources' rows:
//! a source waits, one node claims it with a lease (`SKIP LOCKED` on PostgreSQL; SQLite's
//! writers are serialised), learns it, and hands in its chunks. The hand-in replaces the
//! source's chunks in one transaction and only while the claim is still that node's, so answers
//! never mix two versions and a node whose lease lapsed cannot overwrite a newer learning.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{knowledge_chunks, knowledge_sources};
use super::{write_tx, DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;
use crate::status::SourceStatus;

/// The kinds of source.
pub const KINDS: &[&str] = &["url", "file", "text", "qa"];

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = knowledge_sources)]
pub struct SourceRow {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub bot_id: Option<i64>,
    pub kind: String,
    pub title: String,
    pub url: Option<String>,
    pub content: Option<String>,
    pub question: Option<String>,
    pub answer: Option<String>,
    pub upload_id: Option<String>,
    pub status: SourceStatus,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip)]
    pub claimed_by: Option<String>,
    #[serde(skip)]
    pub claimed_until: Option<i64>,
    pub attempts: i32,
    pub chunk_count: i32,
    pub learned_at: Option<i64>,
    pub crawl_max_pages: i32,
    pub crawl_max_depth: i32,
    pub use_sitemap: bool,
    pub pages_learned: i32,
    pub relearn_count: i32,
}

/// What a new source holds; which fields matter depends on `kind`.
#[derive(Debug, Clone, Default)]
pub struct NewSource {
    pub bot_id: Option<i64>,
    pub kind: String,
    pub title: String,
    pub url: Option<String>,
    pub content: Option<String>,
    pub question: Option<String>,
    pub answer: Option<String>,
    pub upload_id: Option<String>,
    /// URL sources: pages in all (1 = just the URL) and link depth followed from it.
    pub crawl_max_pages: i32,
    pub crawl_max_depth: i32,
    pub use_sitemap: bool,
}

pub fn create(conn: &mut DbConn, workspace_id: WorkspaceId, new: &NewSource, now: i64) -> Result<SourceRow, DbError> {
    Ok(on_backend!(conn, c => diesel::insert_into(knowledge_sources::table)
        .values((
            knowledge_sources::workspace_id.eq(workspace_id),
            knowledge_sources::bot_id.eq(new.bot_id),
            knowledge_sources::kind.eq(&new.kind),
            knowledge_sources::title.eq(&new.title),
            knowledge_sources::url.eq(&new.url),
            knowledge_sources::content.eq(&new.content),
            knowledge_sources::question.eq(&new.question),
            knowledge_sources::answer.eq(&new.answer),
            knowledge_sources::upload_id.eq(&new.upload_id),
            knowledge_sources::crawl_max_pages.eq(new.crawl_max_pages.max(1)),
            knowledge_sources::crawl_max_depth.eq(new.crawl_max_depth.max(0)),
            knowledge_sources::use_sitemap.eq(new.use_sitemap),
            knowledge_sources::status.eq(SourceStatus::Waiting),
            knowledge_sources::created_at.eq(now),
            knowledge_sources::updated_at.eq(now),
        ))
        .returning(SourceRow::as_returning())
        .get_result(c))?)
}

pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<SourceRow>, DbError> {
    Ok(on_backend!(conn, c => knowledge_sources::table
        .filter(knowledge_sources::workspace_id.eq(workspace_id))
        .filter(knowledge_sources::id.eq(id))
        .select(SourceRow::as_select())
        .first(c)
        .optional())?)
}

/// The workspace's sources, of one bot when given, newest first.
pub fn list(conn: &mut DbConn, workspace_id: WorkspaceId, bot_id: Option<i64>) -> Result<Vec<SourceRow>, DbError> {
    Ok(on_backend!(conn, c => {
        let mut q = knowledge_sources::table.filter(knowledge_sources::workspace_id.eq(workspace_id)).into_boxed();
        if let Some(bot_id) = bot_id {
            q = q.filter(knowledge_sources::bot_id.eq(bot_id));
        }
        q.order(knowledge_sources::id.desc()).select(SourceRow::as_select()).load(c)?
    }))
}

/// Deletes a source and, by cascade, its chunks.
pub fn delete(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<bool, DbError> {
    let target = knowledge_sources::table
        .filter(knowledge_sources::workspace_id.eq(workspace_id))
        .filter(knowledge_sources::id.eq(id));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))? == 1)
}

/// Puts a source back in the queue to be learned again; its current chunks keep answering
/// until the new ones replace them.
pub fn relearn(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64, now: i64) -> Result<Option<SourceRow>, DbError> {
    let target = knowledge_sources::table
        .filter(knowledge_sources::workspace_id.eq(workspace_id))
        .filter(knowledge_sources::id.eq(id));
    Ok(on_backend!(conn, c => diesel::update(target)
        .set((
            knowledge_sources::status.eq(SourceStatus::Waiting),
            knowledge_sources::error.eq(None::<String>),
            knowledge_sources::claimed_by.eq(None::<String>),
            knowledge_sources::claimed_until.eq(None::<i64>),
            knowledge_sources::attempts.eq(0),
            knowledge_sources::relearn_count.eq(knowledge_sources::relearn_count + 1),
            knowledge_sources::updated_at.eq(now),
        ))
        .returning(SourceRow::as_returning())
        .get_result(c)
        .optional())?)
}

/// A claim on a source: who holds it and until when. Handing in chunks needs both to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub source_id: i64,
    pub node: String,
    pub until: i64,
}

/// Claims the oldest source that is waiting, or whose learning lease lapsed, for `lease_ms`.
/// Sources waiting to be learned or being learned, for the job's queue depth.
pub fn waiting_count(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(on_backend!(conn, c => knowledge_sources::table
        .filter(knowledge_sources::status.eq_any([SourceStatus::Waiting, SourceStatus::Learning]))
        .count()
        .get_result(c))?)
}

pub fn claim_next(
    conn: &mut DbConn,
    node: &str,
    now: i64,
    lease_ms: i64,
) -> Result<Option<(SourceRow, Claim)>, DbError> {
    write_tx(conn, |conn| {
        let claimable =
            knowledge_sources::table
                .filter(knowledge_sources::status.eq(SourceStatus::Waiting).or(
                    knowledge_sources::status.eq(SourceStatus::Learning).and(knowledge_sources::claimed_until.lt(now)),
                ))
                .order(knowledge_sources::id.asc())
                .limit(1)
                .select(knowledge_sources::id);
        let ids: Vec<i64> = match conn {
            // Other nodes pass over the row this one holds instead of queueing behind it.
            DbConn::Postgres(c) => claimable.for_update().skip_locked().load(c)?,
            DbConn::Sqlite(c) => claimable.load(c)?,
        };
        let Some(id) = ids.first().copied() else { return Ok(None) };
        let until = now + lease_ms;
        let row = on_backend!(conn, c => diesel::update(knowledge_sources::table.filter(knowledge_sources::id.eq(id)))
            .set((
                knowledge_sources::status.eq(SourceStatus::Learning),
                knowledge_sources::claimed_by.eq(node),
                knowledge_sources::claimed_until.eq(until),
                knowledge_sources::attempts.eq(knowledge_sources::attempts + 1),
                knowledge_sources::updated_at.eq(now),
            ))
            .returning(SourceRow::as_returning())
            .get_result(c))?;
        Ok(Some((row, Claim { source_id: id, node: node.to_owned(), until })))
    })
}

/// Extends a claim that is still current by `lease_ms` from `now`; the new claim replaces the
/// old one. `None` when the claim was lost (taken over after a lapse, or the source deleted).
pub fn renew(conn: &mut DbConn, claim: &Claim, now: i64, lease_ms: i64) -> Result<Option<Claim>, DbError> {
    let mine = knowledge_sources::table
        .filter(knowledge_sources::id.eq(claim.source_id))
        .filter(knowledge_sources::status.eq(SourceStatus::Learning))
        .filter(knowledge_sources::claimed_by.eq(&claim.node))
        .filter(knowledge_sources::claimed_until.eq(claim.until));
    let until = now + lease_ms;
    let renewed =
        on_backend!(conn, c => diesel::update(mine).set(knowledge_sources::claimed_until.eq(until)).execute(c))?;
    Ok((renewed == 1).then(|| Claim { until, ..claim.clone() }))
}

/// A chunk as learned, before it is stored.
#[derive(Debug, Clone)]
pub struct NewChunk {
    pub title: String,
    pub url: Option<String>,
    pub text: String,
    /// Its vector (stored form) when embeddings are configured and the endpoint answered.
    pub embedding: Option<Vec<u8>>,
}

/// Hands in what a claim learned: the source's chunks (with their vectors, made by
/// `embedding_model`) are replaced in one transaction and it becomes `learned`. `false` (and
/// nothing changed) when the claim is no longer current.
pub fn complete(
    conn: &mut DbConn,
    claim: &Claim,
    chunks: &[NewChunk],
    embedding_model: Option<&str>,
    pages: usize,
    now: i64,
) -> Result<bool, DbError> {
    write_tx(conn, |conn| {
        let mine = knowledge_sources::table
            .filter(knowledge_sources::id.eq(claim.source_id))
            .filter(knowledge_sources::status.eq(SourceStatus::Learning))
            .filter(knowledge_sources::claimed_by.eq(&claim.node))
            .filter(knowledge_sources::claimed_until.eq(claim.until));
        let workspace_id: Option<WorkspaceId> = on_backend!(conn, c => diesel::update(mine)
            .set((
                knowledge_sources::status.eq(SourceStatus::Learned),
                knowledge_sources::error.eq(None::<String>),
                knowledge_sources::claimed_by.eq(None::<String>),
                knowledge_sources::claimed_until.eq(None::<i64>),
                knowledge_sources::chunk_count.eq(chunks.len() as i32),
                knowledge_sources::pages_learned.eq(pages as i32),
                knowledge_sources::learned_at.eq(now),
                knowledge_sources::updated_at.eq(now),
            ))
            .returning(knowledge_sources::workspace_id)
            .get_result(c)
            .optional())?;
        let Some(workspace_id) = workspace_id else { return Ok(false) };
        let old = knowledge_chunks::table.filter(knowledge_chunks::source_id.eq(claim.source_id));
        on_backend!(conn, c => diesel::delete(old).execute(c))?;
        let rows: Vec<_> = chunks
            .iter()
            .enumerate()
            .map(|(ordinal, chunk)| {
                (
                    knowledge_chunks::workspace_id.eq(workspace_id),
                    knowledge_chunks::source_id.eq(claim.source_id),
                    knowledge_chunks::ordinal.eq(ordinal as i32),
                    knowledge_chunks::title.eq(&chunk.title),
                    knowledge_chunks::url.eq(&chunk.url),
                    knowledge_chunks::content.eq(&chunk.text),
                    knowledge_chunks::created_at.eq(now),
                    knowledge_chunks::embedding.eq(&chunk.embedding),
                    knowledge_chunks::embedding_model.eq(chunk.embedding.as_ref().and(embedding_model)),
                )
            })
            .collect();
        // Bounded batches: SQLite allows at most 32,766 bound parameters per statement.
        for batch in rows.chunks(500) {
            on_backend!(conn, c => diesel::insert_into(knowledge_chunks::table).values(batch).execute(c))?;
        }
        Ok(true)
    })
}

/// Records why learning failed; the source keeps any chunks it had. `false` when the claim is
/// no longer current.
pub fn fail(conn: &mut DbConn, claim: &Claim, reason: &str, now: i64) -> Result<bool, DbError> {
    let mine = knowledge_sources::table
        .filter(knowledge_sources::id.eq(claim.source_id))
        .filter(knowledge_sources::claimed_by.eq(&claim.node))
        .filter(knowledge_sources::claimed_until.eq(claim.until));
    Ok(on_backend!(conn, c => diesel::update(mine)
        .set((
            knowledge_sources::status.eq(SourceStatus::Failed),
            knowledge_sources::error.eq(reason),
            knowledge_sources::claimed_by.eq(None::<String>),
            knowledge_sources::claimed_until.eq(None::<i64>),
            knowledge_sources::updated_at.eq(now),
        ))
        .execute(c))?
        == 1)
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = knowledge_chunks)]
pub struct ChunkRow {
    pub id: i64,
    pub source_id: i64,
    pub ordinal: i32,
    pub title: String,
    pub url: Option<String>,
    pub content: String,
}

/// A source's chunks in order.
pub fn chunks(conn: &mut DbConn, workspace_id: WorkspaceId, source_id: i64) -> Result<Vec<ChunkRow>, DbError> {
    Ok(on_backend!(conn, c => knowledge_chunks::table
        .filter(knowledge_chunks::workspace_id.eq(workspace_id))
        .filter(knowledge_chunks::source_id.eq(source_id))
        .order(knowledge_chunks::ordinal.asc())
        .select(ChunkRow::as_select())
        .load(c))?)
}

/// What a bot answers from: the chunks of its sources and of the workspace-wide ones (no bot),
/// whatever their status (a source being learned again, or whose re-learning failed, answers
/// from its last chunks), and its Q&A pairs learned at least once.
pub struct Corpus {
    pub chunks: Vec<CorpusChunk>,
    /// `(source_id, question, answer)`.
    pub qa: Vec<(i64, String, String)>,
}

pub struct CorpusChunk {
    pub row: ChunkRow,
    /// Its vector in stored form, only when made by the model asked for.
    pub embedding: Option<Vec<u8>>,
}

/// The bot's corpus; vectors are kept only when `embedding_model` made them.
pub fn bot_corpus(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    bot_id: i64,
    embedding_model: Option<&str>,
) -> Result<Corpus, DbError> {
    let sources = knowledge_sources::table
        .filter(knowledge_sources::workspace_id.eq(workspace_id))
        .filter(knowledge_sources::bot_id.eq(bot_id).or(knowledge_sources::bot_id.is_null()))
        .select(knowledge_sources::id);
    let chunks: Vec<(ChunkRow, Option<Vec<u8>>, Option<String>)> = on_backend!(conn, c => knowledge_chunks::table
        .filter(knowledge_chunks::workspace_id.eq(workspace_id))
        .filter(knowledge_chunks::source_id.eq_any(sources))
        .order((knowledge_chunks::source_id.asc(), knowledge_chunks::ordinal.asc()))
        .select((ChunkRow::as_select(), knowledge_chunks::embedding, knowledge_chunks::embedding_model))
        .load(c))?;
    let qa: Vec<(i64, Option<String>, Option<String>)> = on_backend!(conn, c => knowledge_sources::table
        .filter(knowledge_sources::workspace_id.eq(workspace_id))
        .filter(knowledge_sources::bot_id.eq(bot_id).or(knowledge_sources::bot_id.is_null()))
        .filter(knowledge_sources::kind.eq("qa"))
        .filter(knowledge_sources::learned_at.is_not_null())
        .order(knowledge_sources::id.asc())
        .select((knowledge_sources::id, knowledge_sources::question, knowledge_sources::answer))
        .load(c))?;
    Ok(Corpus {
        chunks: chunks
            .into_iter()
            .map(|(row, embedding, model)| CorpusChunk {
                row,
                embedding: embedding.filter(|_| embedding_model.is_some() && model.as_deref() == embedding_model),
            })
            .collect(),
        qa: qa.into_iter().filter_map(|(id, q, a)| Some((id, q?, a?))).collect(),
    })
}

/// A chunk that has no vector from `model` yet (learned before embeddings were configured,
/// while the endpoint was down, or by another model), for the background backfill.
#[derive(Debug, Clone, Queryable)]
pub struct UnembeddedChunk {
    pub id: i64,
    pub source_id: i64,
    pub title: String,
    pub content: String,
}

/// Up to `limit` chunks of any workspace without a vector from `model`, oldest first.
pub fn chunks_without_vectors(conn: &mut DbConn, model: &str, limit: i64) -> Result<Vec<UnembeddedChunk>, DbError> {
    Ok(on_backend!(conn, c => knowledge_chunks::table
        .filter(knowledge_chunks::embedding_model.is_null().or(knowledge_chunks::embedding_model.ne(model)))
        .order(knowledge_chunks::id.asc())
        .limit(limit)
        .select((knowledge_chunks::id, knowledge_chunks::source_id, knowledge_chunks::title, knowledge_chunks::content))
        .load(c))?)
}

/// Stores vectors computed for existing chunks, `(chunk_id, source_id, vector)`, and marks
/// their sources changed so every node's index picks them up. A chunk replaced meanwhile by a
/// re-learning is simply not found; its successor came with its own vector.
pub fn store_vectors(
    conn: &mut DbConn,
    model: &str,
    vectors: &[(i64, i64, Vec<u8>)],
    now: i64,
) -> Result<usize, DbError> {
    write_tx(conn, |conn| {
        let mut stored = 0;
        let mut sources = std::collections::BTreeSet::new();
        for (chunk_id, source_id, vector) in vectors {
            let target = knowledge_chunks::table.filter(knowledge_chunks::id.eq(chunk_id));
            let updated = on_backend!(conn, c => diesel::update(target)
                .set((knowledge_chunks::embedding.eq(vector), knowledge_chunks::embedding_model.eq(model)))
                .execute(c))?;
            if updated == 1 {
                stored += 1;
                sources.insert(*source_id);
            }
        }
        let sources: Vec<i64> = sources.into_iter().collect();
        let changed = knowledge_sources::table.filter(knowledge_sources::id.eq_any(&sources));
        on_backend!(conn, c => diesel::update(changed).set(knowledge_sources::updated_at.eq(now)).execute(c))?;
        Ok(stored)
    })
}

/// A fingerprint of a bot's sources that changes whenever a source is added, learned again,
/// changed or deleted: their count, newest change and highest id.
pub fn bot_version(conn: &mut DbConn, workspace_id: WorkspaceId, bot_id: i64) -> Result<(i64, i64, i64), DbError> {
    let (count, changed, highest): (i64, Option<i64>, Option<i64>) = on_backend!(conn, c => knowledge_sources::table
        .filter(knowledge_sources::workspace_id.eq(workspace_id))
        .filter(knowledge_sources::bot_id.eq(bot_id).or(knowledge_sources::bot_id.is_null()))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::max(knowledge_sources::updated_at),
            diesel::dsl::max(knowledge_sources::id),
        ))
        .first(c))?;
    Ok((count, changed.unwrap_or(0), highest.unwrap_or(0)))
}
