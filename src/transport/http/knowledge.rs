//! frontdesk's own knowledge routes: sources (`/api/knowledge/sources`, with status, chunk
//! count, last learned time and a re-learn call), a search to try questions against a bot's
//! knowledge, the unanswered questions list, and files: multipart uploads (`POST /api/files`,
//! shared with CX Genie's upload route) and serving an upload back (`GET /api/files/{id}`) to
//! its own workspace only.
//!
//! Uploads stream to a temporary file on the blocking pool, capped at
//! `FRONTDESK_UPLOAD_MAX_BYTES` (413, and the temporary file is removed), and are stored by
//! content hash once the whole body is in; their type is sniffed from the bytes, never taken
//! from the name. An upload carries at most 50 parts, 20 of them files, each plain field at
//! most 4 KiB.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::domain::chat::Chat;
use crate::domain::knowledge::files::{PendingFile, StoreError, HEAD_LEN};
use crate::domain::knowledge::library::{SourceRow, StoredFile, UploadRow};
use crate::domain::knowledge::{extract, Knowledge, SourceInput};
use crate::error::{ApiError, JsonBody, NoFields, OptionalJsonBody, QueryParams};
use crate::ids::WorkspaceId;
use crate::status::SourceStatus;
use crate::transport::http::auth::Caller;
use crate::transport::http::body_guard::BodyFault;

/// Files one upload request may carry.
const MAX_FILES: usize = 20;
/// Longest plain form field (a token, a bot id, a title) in an upload.
const MAX_FIELD_BYTES: usize = 4096;
/// Parts (files and plain fields) one upload request may carry.
const MAX_PARTS: usize = 50;

/// A source as frontdesk's own API shows it.
#[derive(Debug, Serialize)]
pub struct SourceView {
    pub id: i64,
    pub bot_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crawl: Option<serde_json::Value>,
    pub status: SourceStatus,
    /// Why learning failed.
    pub error: Option<String>,
    pub chunk_count: i32,
    pub pages_learned: i32,
    pub learned_at: Option<i64>,
    pub relearn_count: i32,
    pub created_at: i64,
    pub updated_at: i64,
}

impl SourceView {
    pub fn new(row: SourceRow, bot_public_id: Option<String>) -> Self {
        let crawl = (row.kind == "url").then(|| {
            serde_json::json!({
                "max_pages": row.crawl_max_pages,
                "max_depth": row.crawl_max_depth,
                "sitemap": row.use_sitemap,
            })
        });
        SourceView {
            id: row.id,
            bot_id: bot_public_id,
            kind: row.kind,
            title: row.title,
            url: row.url,
            content: row.content,
            question: row.question,
            answer: row.answer,
            upload_id: row.upload_id,
            crawl,
            status: row.status,
            error: row.error,
            chunk_count: row.chunk_count,
            pages_learned: row.pages_learned,
            learned_at: row.learned_at,
            relearn_count: row.relearn_count,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Public ids of the workspace's bots by internal id, for showing sources.
pub async fn bot_public_ids(
    chat: &Chat,
    workspace_id: WorkspaceId,
) -> Result<std::collections::HashMap<i64, String>, ApiError> {
    let bots = chat.bots(workspace_id).await?;
    Ok(bots.into_iter().map(|bot| (bot.id, bot.public_id)).collect())
}

pub async fn views(chat: &Chat, workspace_id: WorkspaceId, rows: Vec<SourceRow>) -> Result<Vec<SourceView>, ApiError> {
    let bots = bot_public_ids(chat, workspace_id).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let bot = row.bot_id.and_then(|id| bots.get(&id).cloned());
            SourceView::new(row, bot)
        })
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlBody {
    pub max_pages: Option<i64>,
    pub max_depth: Option<i64>,
    #[serde(default)]
    pub sitemap: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub bot_id: Option<String>,
    pub title: Option<String>,
    pub url: Option<String>,
    pub crawl: Option<CrawlBody>,
    pub content: Option<String>,
    pub question: Option<String>,
    pub answer: Option<String>,
    pub upload_id: Option<String>,
}

pub async fn create_source(
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    body: JsonBody<SourceBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let crawl = body.crawl.unwrap_or(CrawlBody { max_pages: None, max_depth: None, sitemap: false });
    let input = SourceInput {
        bot: body.bot_id,
        kind: body.kind,
        title: body.title,
        url: body.url,
        content: body.content,
        question: body.question,
        answer: body.answer,
        upload_id: body.upload_id,
        crawl_max_pages: crawl.max_pages,
        crawl_max_depth: crawl.max_depth,
        use_sitemap: crawl.sitemap,
    };
    let row = knowledge.add_source(caller.workspace_id, input).await?;
    let view = views(&chat, caller.workspace_id, vec![row]).await?.remove(0);
    // Accepted: learning goes on in the background; the status says when it is done.
    Ok(HttpResponse::Accepted().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceListQuery {
    pub bot_id: Option<String>,
    pub status: Option<SourceStatus>,
}

pub async fn list_sources(
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    query: QueryParams<SourceListQuery>,
) -> Result<HttpResponse, ApiError> {
    let SourceListQuery { bot_id, status } = query.0;
    let mut rows = knowledge.sources(caller.workspace_id, bot_id).await?;
    if let Some(status) = status {
        rows.retain(|row| row.status == status);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sources": views(&chat, caller.workspace_id, rows).await? })))
}

pub async fn get_source(
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let row = knowledge.source(caller.workspace_id, *path).await?;
    Ok(HttpResponse::Ok().json(views(&chat, caller.workspace_id, vec![row]).await?.remove(0)))
}

pub async fn delete_source(
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    knowledge.delete(caller.workspace_id, *path).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn relearn_source(
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    path: web::Path<i64>,
    _body: OptionalJsonBody<NoFields>,
) -> Result<HttpResponse, ApiError> {
    let row = knowledge.relearn(caller.workspace_id, *path).await?;
    Ok(HttpResponse::Accepted().json(views(&chat, caller.workspace_id, vec![row]).await?.remove(0)))
}

pub async fn source_chunks(
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let chunks = knowledge.chunks(caller.workspace_id, *path).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "chunks": chunks })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    pub q: String,
    pub bot_id: Option<String>,
    pub limit: Option<usize>,
}

/// Tries a question against a bot's knowledge: the answer the bot would give (if any) and the
/// ranked passages, for checking what was learned.
pub async fn search(
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    query: QueryParams<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let SearchQuery { q, bot_id, limit } = query.0;
    let limit = limit.unwrap_or(5);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::bad_request("invalid query parameter `limit`: 1 to 50"));
    }
    let bot = chat.workspace_bot(caller.workspace_id, bot_id).await?;
    let found = knowledge.search(caller.workspace_id, bot.id, &q, limit).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "answer": found.answer.map(|a| serde_json::json!({ "text": a.text, "metadata": a.metadata() })),
        "retrieval": if found.hybrid { "hybrid" } else { "full_text" },
        "hits": found.hits.iter().map(|hit| serde_json::json!({
            "source_id": hit.source_id,
            "chunk_id": hit.chunk_id,
            "title": hit.title,
            "url": hit.url,
            "text": hit.text,
            "score": hit.score,
            "similarity": hit.similarity,
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnansweredQuery {
    pub bot_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub async fn list_unanswered(
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    query: QueryParams<UnansweredQuery>,
) -> Result<HttpResponse, ApiError> {
    let UnansweredQuery { bot_id, limit, offset } = query.0;
    let (limit, offset) = super::page(limit, offset)?;
    let workspace_id = caller.workspace_id;
    let bot = match bot_id {
        Some(id) => Some(chat.workspace_bot(workspace_id, Some(id)).await?),
        None => None,
    };
    let bot_filter = bot.as_ref().map(|b| b.id);
    let rows = knowledge.unanswered(workspace_id, bot_filter, limit, offset).await?;
    let bots = bot_public_ids(&chat, workspace_id).await?;
    let questions: Vec<_> = rows
        .into_iter()
        .map(|row| {
            let mut value = serde_json::to_value(&row).unwrap_or_default();
            value["bot_id"] = serde_json::json!(bots.get(&row.bot_id));
            value
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "questions": questions })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    pub answer: String,
}

/// Answers an unanswered question: a Q&A source for its bot, and the question leaves the list.
pub async fn answer_unanswered(
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<AnswerBody>,
) -> Result<HttpResponse, ApiError> {
    let workspace_id = caller.workspace_id;
    let question = knowledge.unanswered_question(workspace_id, *path).await?;
    let bots = bot_public_ids(&chat, workspace_id).await?;
    let bot = bots.get(&question.bot_id).cloned();
    let row = knowledge.answer_unanswered(workspace_id, question, bot, body.0.answer).await?;
    Ok(HttpResponse::Created().json(views(&chat, workspace_id, vec![row]).await?.remove(0)))
}

pub async fn dismiss_unanswered(
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    knowledge.dismiss_unanswered(caller.workspace_id, *path).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An uploaded file as the upload routes answer it (CX Genie's `{name, url, type, size}`, plus
/// the id a file source takes).
#[derive(Debug, Serialize)]
pub struct UploadView {
    pub id: String,
    pub name: String,
    pub url: String,
    #[serde(rename = "type")]
    pub mime: String,
    pub size: i64,
}

impl UploadView {
    pub fn new(req: &HttpRequest, row: &UploadRow) -> Self {
        let info = req.connection_info();
        UploadView {
            id: row.id.clone(),
            name: row.filename.clone(),
            url: format!("{}://{}/api/files/{}", info.scheme(), info.host(), row.id),
            mime: row.content_type.clone(),
            size: row.size_bytes,
        }
    }
}

/// What an upload route takes: how large a file, of which types.
#[derive(Debug, Clone, Copy)]
pub struct UploadPolicy {
    pub max_bytes: u64,
    /// `None`: every type the server stores (documents and images).
    pub types: Option<&'static [&'static str]>,
    /// The setting that sets `max_bytes`, named in the refusal.
    pub limit_setting: &'static str,
}

impl UploadPolicy {
    /// The knowledge base's uploads (and the seed APIs' file routes).
    pub fn knowledge(knowledge: &Knowledge) -> Self {
        UploadPolicy { max_bytes: knowledge.upload_max_bytes, types: None, limit_setting: "FRONTDESK_UPLOAD_MAX_BYTES" }
    }
}

/// What a multipart upload carried: its stored files and its plain fields.
pub struct Received {
    pub files: Vec<UploadRow>,
    pub fields: Vec<(String, String)>,
}

impl Received {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// When a multipart upload's `authorize` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeAt {
    /// Before the first file is written, with the plain fields sent before it: the caller's
    /// credential is known from the request already or must come first in the body.
    FirstFile,
    /// Once the whole body is read, with every plain field: for a credential sent as a form
    /// field that a client may place after the files (CX Genie's `workspace_token`). Until then
    /// the files are only temporary files, bounded like any upload (the body guard's size and
    /// time limits, the per-file limit, [`MAX_FILES`]), and they are deleted if it refuses.
    EndOfBody,
}

/// Reads a multipart body: plain fields are collected; every part with a file name is streamed
/// to a temporary file in the file store and sniffed. `authorize` is called with the plain
/// fields seen so far, once, at the point `at` says; nothing is stored for a workspace before
/// it answers.
///
/// All or nothing: files are stored and recorded for the workspace only once the whole body has
/// been read; a body that fails anywhere (unreadable, truncated, too slow, over a limit) leaves
/// no upload, no stored file and no temporary file behind (a [`PendingFile`] deletes its
/// temporary file when dropped, on every path). The whole upload, storing included, has
/// `FRONTDESK_UPLOAD_TIMEOUT_SECS`; the body's own deadlines and framing checks are
/// [`super::body_guard`]'s.
pub async fn receive_files<F, Fut>(
    knowledge: &Knowledge,
    multipart: Multipart,
    policy: UploadPolicy,
    at: AuthorizeAt,
    authorize: F,
) -> Result<Received, ApiError>
where
    F: FnMut(&[(String, String)]) -> Fut,
    Fut: std::future::Future<Output = Result<WorkspaceId, ApiError>>,
{
    let limit = knowledge.upload_timeout;
    tokio::time::timeout(limit, receive_all(knowledge, multipart, policy, at, authorize)).await.unwrap_or_else(|_| {
        Err(ApiError::new(
            actix_web::http::StatusCode::REQUEST_TIMEOUT,
            format!("upload not received and stored within {} s (FRONTDESK_UPLOAD_TIMEOUT_SECS)", limit.as_secs()),
        ))
    })
}

/// A file part received in full, not yet stored.
struct PartReceived {
    pending: PendingFile,
    name: String,
    mime: String,
}

async fn receive_all<F, Fut>(
    knowledge: &Knowledge,
    mut multipart: Multipart,
    policy: UploadPolicy,
    at: AuthorizeAt,
    mut authorize: F,
) -> Result<Received, ApiError>
where
    F: FnMut(&[(String, String)]) -> Fut,
    Fut: std::future::Future<Output = Result<WorkspaceId, ApiError>>,
{
    let mut workspace_id = None;
    let mut fields = Vec::new();
    let mut parts: Vec<PartReceived> = Vec::new();
    let mut count = 0;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(multipart_error)?;
        count += 1;
        if count > MAX_PARTS {
            return Err(ApiError::too_large(format!("at most {MAX_PARTS} parts per upload")));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.content_disposition().and_then(|d| d.get_filename()).map(str::to_owned);
        let Some(filename) = filename else {
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(multipart_error)?;
                if value.len() + chunk.len() > MAX_FIELD_BYTES {
                    return Err(ApiError::too_large(format!("form field `{name}` is over {MAX_FIELD_BYTES} bytes")));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value)
                .map_err(|_| ApiError::bad_request(format!("form field `{name}` is not UTF-8 text")))?;
            crate::text::check_str(&name, &value)?;
            fields.push((name, value));
            continue;
        };
        if workspace_id.is_none() && at == AuthorizeAt::FirstFile {
            workspace_id = Some(authorize(&fields).await?);
        }
        if parts.len() == MAX_FILES {
            return Err(ApiError::too_large(format!("at most {MAX_FILES} files per upload")));
        }
        let declared = field.content_type().map(|mime| mime.essence_str().to_owned());
        parts.push(receive_part(knowledge, &policy, &mut field, &filename, declared.as_deref()).await?);
    }
    if workspace_id.is_none() && at == AuthorizeAt::EndOfBody {
        workspace_id = Some(authorize(&fields).await?);
    }
    let Some(workspace_id) = workspace_id else {
        return Ok(Received { files: Vec::new(), fields });
    };
    let mut stored = Vec::with_capacity(parts.len());
    for part in parts {
        let PartReceived { pending, name, mime } = part;
        let file =
            web::block(move || pending.finish()).await.map_err(ApiError::internal)?.map_err(ApiError::internal)?;
        stored.push(StoredFile { name, mime, size: file.size, sha256: file.sha256 });
    }
    let files = knowledge.record_uploads(workspace_id, stored).await?;
    Ok(Received { files, fields })
}

/// A multipart parsing failure as the client sees it: the body guard's own fault when it found
/// one (too slow, truncated, headers too long), else what the parser said.
fn multipart_error(err: actix_multipart::MultipartError) -> ApiError {
    match &err {
        actix_multipart::MultipartError::Payload(payload) => match BodyFault::of(payload) {
            Some(fault) => fault.to_api_error(),
            None => ApiError::bad_request(format!("unreadable multipart body: {payload}")),
        },
        actix_multipart::MultipartError::Incomplete => ApiError::bad_request(BodyFault::Truncated.to_string()),
        other => ApiError::bad_request(format!("unreadable multipart body: {other}")),
    }
}

/// Streams one file part into a temporary file: refused (and the file gone) when it is too
/// large or its content is of no supported type.
async fn receive_part(
    knowledge: &Knowledge,
    policy: &UploadPolicy,
    field: &mut actix_multipart::Field,
    filename: &str,
    declared: Option<&str>,
) -> Result<PartReceived, ApiError> {
    let files = knowledge.files.clone();
    let limit = policy.max_bytes;
    let mut pending: PendingFile = web::block(move || files.begin(limit))
        .await
        .map_err(ApiError::internal)?
        .map_err(|err| ApiError::internal(format!("cannot create an upload file: {err}")))?;
    let mut head = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(multipart_error)?;
        if head.len() < HEAD_LEN {
            head.extend_from_slice(&chunk[..chunk.len().min(HEAD_LEN - head.len())]);
        }
        let (back, written) = web::block(move || {
            let written = pending.write(&chunk);
            (pending, written)
        })
        .await
        .map_err(ApiError::internal)?;
        pending = back;
        match written {
            Ok(()) => {}
            Err(StoreError::TooLarge { limit }) => {
                return Err(ApiError::too_large(format!(
                    "file `{filename}` is larger than the limit of {limit} bytes ({})",
                    policy.limit_setting
                )))
            }
            Err(err) => return Err(ApiError::internal(err)),
        }
    }
    let mime = upload_type(&head, filename, declared)?;
    if let Some(types) = policy.types.filter(|types| !types.contains(&mime.as_str())) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("file `{filename}` is {mime}; this upload takes {}", types.join(", ")),
        ));
    }
    Ok(PartReceived { pending, name: clean_name(filename), mime })
}

/// The type of an upload from its first bytes: a document the knowledge base reads, or an
/// image (CX Genie attaches uploads to chat messages too); anything else is refused.
fn upload_type(head: &[u8], filename: &str, declared: Option<&str>) -> Result<String, ApiError> {
    match extract::sniff(head, Some(filename), declared) {
        Ok(kind) => Ok(kind.mime().to_owned()),
        Err(refused) => match infer::get(head) {
            Some(found) if ["image/png", "image/jpeg", "image/gif", "image/webp"].contains(&found.mime_type()) => {
                Ok(found.mime_type().to_owned())
            }
            _ => Err(ApiError::new(
                actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "file `{filename}` is not a supported type ({refused}); upload PDF, HTML, Markdown, text, CSV \
                     or an image"
                ),
            )),
        },
    }
}

/// A file name fit to show and to put in a header: its last path part, no control characters.
fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = last.chars().filter(|c| !c.is_control() && *c != '"').take(255).collect();
    if cleaned.trim().is_empty() {
        "upload".to_owned()
    } else {
        cleaned
    }
}

/// `POST /api/files`: multipart upload with a bearer API key; answers CX Genie's shape.
pub async fn upload(
    req: HttpRequest,
    knowledge: web::Data<Knowledge>,
    caller: Caller,
    multipart: Multipart,
) -> Result<HttpResponse, ApiError> {
    let workspace_id = caller.workspace_id;
    let received = receive_files(
        &knowledge,
        multipart,
        UploadPolicy::knowledge(&knowledge),
        AuthorizeAt::FirstFile,
        |_| async move { Ok(workspace_id) },
    )
    .await?;
    if received.files.is_empty() {
        return Err(ApiError::bad_request("no file in the upload: send multipart parts with a filename"));
    }
    let data: Vec<UploadView> = received.files.iter().map(|row| UploadView::new(&req, row)).collect();
    Ok(HttpResponse::Created().json(serde_json::json!({ "success": true, "data": data })))
}

/// `GET /api/files/{id}`: an upload's bytes, to its own workspace only (API key or workspace
/// token); another workspace's id is "not found".
pub async fn download(
    req: HttpRequest,
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
) -> Result<HttpResponse, ApiError> {
    let workspace_id = super::auth::workspace_of_any(&req, &chat).await?;
    let id = req.match_info().get("id").unwrap_or_default().to_owned();
    serve_upload(&chat, &knowledge, workspace_id, id).await
}

/// The bytes of the workspace's upload `id`, as a document that can run nothing.
pub async fn serve_upload(
    chat: &Chat,
    knowledge: &Knowledge,
    workspace_id: WorkspaceId,
    id: String,
) -> Result<HttpResponse, ApiError> {
    let row = chat.upload(workspace_id, &id).await?.ok_or_else(|| ApiError::not_found("file not found"))?;
    let files = knowledge.files.clone();
    let hash = row.sha256.clone();
    let bytes = web::block(move || files.read(&hash))
        .await
        .map_err(ApiError::internal)?
        .map_err(|err| ApiError::internal(format!("stored file {} unreadable: {err}", row.sha256)))?;
    Ok(HttpResponse::Ok()
        .content_type(row.content_type.clone())
        .insert_header((header::CONTENT_DISPOSITION, format!("inline; filename=\"{}\"", row.filename)))
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        // The type is the sniffed one; never let a browser guess another (an HTML upload stays
        // a download-safe document, not a page that runs in our origin).
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        // Pages of the clinic's site show a visitor's picture in the widget.
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"))
        .body(bytes))
}
