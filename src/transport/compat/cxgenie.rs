//! CX Genie's public API v2 knowledge routes, authenticated by the `workspace_token` they carry
//! (in the body, the query, or as a bearer token): `POST /api/v2/public-api/bot-data` creates
//! training data (`TEXT`, `DOCUMENT`, `Q_AND_A`, `URL`) and answers the documented record with
//! `status_learning`; `GET /api/v2/public-api/bot-data/{id}` reads it back with its current
//! status (frontdesk's addition, so a client can see learning finish); `POST
//! /api/v2/public-api/upload/multiple` stores files and answers `{success, data: [{name, url,
//! type, size}]}`. A `DOCUMENT`'s `content` is the `url` an upload returned (or a document's
//! address on the web, fetched like a one-page URL source).

use actix_multipart::Multipart;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::cxgenie_ids::{id_of, uuid_of, RowKind};
use crate::domain::chat::Chat;
use crate::domain::directory::SourceRow;
use crate::domain::knowledge::{Knowledge, SourceInput};
use crate::error::{ApiError, JsonBody, QueryParams};
use crate::transport::http::auth::workspace_of_token;
use crate::transport::http::knowledge::{receive_files, AuthorizeAt, UploadPolicy, UploadView};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataType {
    Text,
    Document,
    QAndA,
    Url,
}

#[derive(Debug, Deserialize)]
pub struct BotDataBody {
    pub bot_id: String,
    pub content: String,
    pub content_value: Option<String>,
    #[serde(rename = "type")]
    pub kind: DataType,
    pub title: Option<String>,
    pub workspace_token: String,
}

/// The documented training-data record.
#[derive(Debug, Serialize)]
pub struct BotData {
    pub id: String,
    pub bot_id: String,
    pub content: String,
    pub content_value: Option<String>,
    #[serde(rename = "type")]
    pub kind: DataType,
    pub title: Option<String>,
    /// `WAITING`, `LEARNING`, `LEARNED` or `FAILED`.
    pub status_learning: String,
    pub updated_at: String,
    pub created_at: String,
    pub source: &'static str,
    pub total_relearning: Option<i32>,
    pub filename: Option<String>,
    pub size: Option<i64>,
    pub mimetype: Option<String>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub deleted_at: Option<String>,
    /// Why learning failed (frontdesk's addition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn iso(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn record(chat: &Chat, row: SourceRow, kind: DataType, bot_public_id: String) -> Result<BotData, ApiError> {
    let upload = match row.upload_id.clone() {
        Some(id) => {
            let workspace_id = row.workspace_id;
            chat.upload(workspace_id, &id).await?
        }
        None => None,
    };
    let (content, content_value) = match kind {
        DataType::QAndA => (row.question.clone().unwrap_or_default(), row.answer.clone()),
        DataType::Text => (row.content.clone().unwrap_or_default(), None),
        DataType::Url => (row.url.clone().unwrap_or_default(), None),
        DataType::Document => (
            row.url.clone().or_else(|| upload.as_ref().map(|u| format!("/api/files/{}", u.id))).unwrap_or_default(),
            None,
        ),
    };
    Ok(BotData {
        id: uuid_of(RowKind::Source, row.id),
        bot_id: bot_public_id,
        content,
        content_value,
        kind,
        title: (!row.title.is_empty()).then(|| row.title.clone()),
        status_learning: row.status.as_str().to_uppercase(),
        updated_at: iso(row.updated_at),
        created_at: iso(row.created_at),
        source: "USER",
        total_relearning: (row.relearn_count > 0).then_some(row.relearn_count),
        filename: upload.as_ref().map(|u| u.filename.clone()),
        size: upload.as_ref().map(|u| u.size_bytes),
        mimetype: upload.as_ref().map(|u| u.content_type.clone()),
        created_by: None,
        updated_by: None,
        deleted_at: None,
        error: row.error.clone(),
    })
}

/// The upload a `DOCUMENT`'s content names, when it is one of ours: `…/api/files/{id}`.
fn upload_id_of(content: &str) -> Option<String> {
    let path = match reqwest::Url::parse(content) {
        Ok(url) => url.path().to_owned(),
        Err(_) => content.to_owned(),
    };
    let id = path.strip_prefix("/api/files/")?;
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric())).then(|| id.to_owned())
}

pub async fn create_bot_data(
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    body: JsonBody<BotDataBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let workspace_id = workspace_of_token(&chat, &body.workspace_token).await?;
    let bot = Some(body.bot_id.clone());
    let input = match body.kind {
        DataType::Text => SourceInput {
            bot,
            kind: "text".into(),
            title: body.title,
            content: Some(body.content),
            ..Default::default()
        },
        DataType::QAndA => SourceInput {
            bot,
            kind: "qa".into(),
            title: body.title,
            question: Some(body.content),
            answer: body.content_value,
            ..Default::default()
        },
        DataType::Url => {
            SourceInput { bot, kind: "url".into(), title: body.title, url: Some(body.content), ..Default::default() }
        }
        DataType::Document => match upload_id_of(&body.content) {
            Some(upload_id) => SourceInput {
                bot,
                kind: "file".into(),
                title: body.title,
                upload_id: Some(upload_id),
                ..Default::default()
            },
            None => SourceInput {
                bot,
                kind: "url".into(),
                title: body.title,
                url: Some(body.content),
                ..Default::default()
            },
        },
    };
    let row = knowledge.add_source(workspace_id, input).await?;
    let data = record(&chat, row, body.kind, body.bot_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "success": true, "data": data })))
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    pub workspace_token: Option<String>,
}

fn token(req: &HttpRequest, query: Option<String>) -> Result<String, ApiError> {
    match query {
        Some(token) => Ok(token),
        None => crate::transport::http::auth::bearer(req)
            .map_err(|_| ApiError::unauthorized("missing `workspace_token` (query parameter or bearer token)")),
    }
}

pub async fn get_bot_data(
    req: HttpRequest,
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    path: web::Path<String>,
    query: QueryParams<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let workspace_id = workspace_of_token(&chat, &token(&req, query.0.workspace_token)?).await?;
    let id = id_of(RowKind::Source, &path).ok_or_else(|| ApiError::not_found("training data not found"))?;
    let row = knowledge.source(workspace_id, id).await.map_err(|err| err.not_found_as("training data not found"))?;
    let kind = match row.kind.as_str() {
        "qa" => DataType::QAndA,
        "text" => DataType::Text,
        "file" => DataType::Document,
        _ => DataType::Url,
    };
    let bots = crate::transport::http::knowledge::bot_public_ids(&chat, workspace_id).await?;
    let bot = row.bot_id.and_then(|id| bots.get(&id).cloned()).unwrap_or_default();
    let data = record(&chat, row, kind, bot).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "success": true, "data": data })))
}

/// Multipart upload of one or more files (parts named `files`); the `workspace_token` comes in
/// the query, as a bearer token, or as a form field before or after the files (a browser's
/// `FormData` keeps the order the page appended them in, so either is common).
pub async fn upload_multiple(
    req: HttpRequest,
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    query: QueryParams<TokenQuery>,
    multipart: Multipart,
) -> Result<HttpResponse, ApiError> {
    let given = query.0.workspace_token.or_else(|| crate::transport::http::auth::bearer(&req).ok());
    let chat_ref = &chat;
    let policy = UploadPolicy::knowledge(&knowledge);
    // A token from the request is checked before any file is read; one in the form can only be
    // checked once the form has been read.
    let at = if given.is_some() { AuthorizeAt::FirstFile } else { AuthorizeAt::EndOfBody };
    let received = receive_files(&knowledge, multipart, policy, at, |fields| {
        let token = given
            .clone()
            .or_else(|| fields.iter().find(|(name, _)| name == "workspace_token").map(|(_, value)| value.clone()));
        async move {
            let token = token.ok_or_else(|| {
                ApiError::unauthorized(
                    "missing `workspace_token`: send it as a query parameter, a bearer token, or a form field",
                )
            })?;
            workspace_of_token(chat_ref, &token).await
        }
    })
    .await?;
    if received.files.is_empty() {
        return Err(ApiError::bad_request("no file in the upload: send parts named `files` with a filename"));
    }
    let data: Vec<UploadView> = received.files.iter().map(|row| UploadView::new(&req, row)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "success": true, "data": data })))
}

/// The path every CX Genie public-API route is under.
const PUBLIC_API: &str = "/api/v2/public-api/";

/// Middleware: every error a CX Genie route answers carries `"success": false` beside the
/// server's `{"error"}`, as its document shows, whoever wrote it: the route, an extractor that
/// could not read the request, the keyed scope's authentication, the admission door or the
/// body guard. Bodies of other routes, and of successes, pass untouched.
pub async fn error_envelope(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !req.path().starts_with(PUBLIC_API) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    match next.call(req).await {
        Ok(res) if res.status().as_u16() < 400 => Ok(res.map_into_boxed_body()),
        Ok(res) => {
            let (request, response) = res.map_into_boxed_body().into_parts();
            Ok(ServiceResponse::new(request, enveloped(response).await?))
        }
        // A refusal that comes back as an error (authentication's) renders as its enveloped
        // response.
        Err(err) => {
            let response = enveloped(err.error_response()).await?;
            Err(actix_web::error::InternalError::from_response(err, response).into())
        }
    }
}

/// The error response with `"success": false` added to its JSON object.
async fn enveloped(response: HttpResponse<BoxBody>) -> Result<HttpResponse<BoxBody>, actix_web::Error> {
    let (response, body) = response.into_parts();
    // Error bodies are the server's own few hundred bytes; the limit only guards the read.
    let bytes = actix_web::body::to_bytes_limited(body, 64 * 1024)
        .await
        .map_err(|_| actix_web::error::ErrorInternalServerError("error body too long"))?
        .map_err(|_| actix_web::error::ErrorInternalServerError("unreadable error body"))?;
    let bytes = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut fields)) if !fields.contains_key("success") => {
            fields.insert("success".into(), false.into());
            serde_json::to_vec(&fields).map(Bytes::from).unwrap_or(bytes)
        }
        _ => bytes,
    };
    Ok(response.set_body(BoxBody::new(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_name_their_upload_by_its_url() {
        assert_eq!(upload_id_of("https://desk.example/api/files/abc123").as_deref(), Some("abc123"));
        assert_eq!(upload_id_of("/api/files/abc123").as_deref(), Some("abc123"));
        assert_eq!(upload_id_of("https://elsewhere.example/prices.pdf"), None);
        assert_eq!(upload_id_of("https://desk.example/api/files/../secret"), None);
    }

    #[test]
    fn types_are_spelled_as_documented() {
        assert_eq!(serde_json::to_value(DataType::QAndA).unwrap(), "Q_AND_A");
        assert_eq!(serde_json::from_str::<DataType>("\"DOCUMENT\"").unwrap(), DataType::Document);
    }
}
