//! A website visitor's attachments: `POST /widget/uploads` stores a picture or a PDF for the
//! visitor's conversation, and `GET /widget/files/{bot_id}/{id}?sig=…` serves it back through a
//! signed link, the only credential a visitor has for it (agents read it with their key at
//! `/api/files/{id}`).
//!
//! The upload is checked before a byte is stored: the bot must be active, let the page's origin
//! use it and allow uploads; the conversation must be the bot's and open; the file must be
//! within `FRONTDESK_WIDGET_UPLOAD_MAX_BYTES` and one of [`UPLOAD_TYPES`] by its content.

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_actors::{ConversationId, ConversationStatus};
use serde::Serialize;

use crate::crypto::SecretBox;
use crate::domain::chat::Chat;
use crate::domain::directory::UploadRow;
use crate::domain::knowledge::Knowledge;
use crate::error::ApiError;
use crate::transport::http::cors;
use crate::transport::http::knowledge::{receive_files, serve_upload, AuthorizeAt, UploadPolicy};
use crate::transport::web::widget_config::UPLOAD_TYPES;

/// A stored attachment as the widget sees it; `url` is a path on this server.
#[derive(Debug, Serialize)]
pub struct Attachment {
    pub id: String,
    pub url: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
}

impl Attachment {
    fn new(links: &SecretBox, bot_id: &str, row: &UploadRow) -> Self {
        Attachment {
            url: format!("/widget/files/{bot_id}/{}?sig={}", row.id, links.sign_link(&link_subject(bot_id, &row.id))),
            id: row.id.clone(),
            filename: row.filename.clone(),
            content_type: row.content_type.clone(),
            size: row.size_bytes,
        }
    }
}

fn link_subject(bot_id: &str, upload_id: &str) -> String {
    format!("widget-file:{bot_id}/{upload_id}")
}

/// `POST /widget/uploads`: multipart with the fields `bot_id` and `conversation_id` first, then
/// one file part.
pub async fn upload(
    req: HttpRequest,
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    links: web::Data<SecretBox>,
    multipart: Multipart,
) -> Result<HttpResponse, ApiError> {
    let policy = UploadPolicy {
        max_bytes: chat.limits.widget_upload_max_bytes,
        types: Some(UPLOAD_TYPES),
        limit_setting: "FRONTDESK_WIDGET_UPLOAD_MAX_BYTES",
    };
    let origin = cors::origin(&req).map(str::to_owned);
    let mut bot_id = None;
    let received = receive_files(&knowledge, multipart, policy, AuthorizeAt::FirstFile, |fields| {
        let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let (bot, conversation) = (field("bot_id"), field("conversation_id"));
        let chat = chat.clone();
        let origin = origin.clone();
        bot_id = bot.clone();
        async move {
            let missing = |name: &str| {
                ApiError::unprocessable(format!("missing form field `{name}` (send it before the file part)"))
            };
            let bot = chat.public_bot(&bot.ok_or_else(|| missing("bot_id"))?).await?;
            cors::check_bot_origin(&bot, origin.as_deref())?;
            if !bot.settings().widget.uploads {
                return Err(ApiError::forbidden("this bot does not take attachments"));
            }
            let conversation = ConversationId::from(conversation.ok_or_else(|| missing("conversation_id"))?);
            let row = chat.bot_conversation(bot.id, &conversation).await?;
            if row.status != ConversationStatus::Open {
                return Err(ApiError::conflict("the conversation is closed"));
            }
            Ok(bot.workspace_id)
        }
    })
    .await?;
    let bot_id = bot_id.unwrap_or_default();
    let mut attachments: Vec<Attachment> =
        received.files.iter().map(|row| Attachment::new(&links, &bot_id, row)).collect();
    if attachments.is_empty() {
        return Err(ApiError::bad_request("no file in the upload: send a multipart part named `file` with a filename"));
    }
    let first = attachments.remove(0);
    let mut body = serde_json::to_value(&first).map_err(ApiError::internal)?;
    if !attachments.is_empty() {
        body["more"] = serde_json::to_value(&attachments).map_err(ApiError::internal)?;
    }
    Ok(HttpResponse::Created().json(body))
}

#[derive(Debug, serde::Deserialize)]
pub struct FileQuery {
    sig: Option<String>,
}

/// `GET /widget/files/{bot_id}/{id}?sig=…`: an attachment's bytes, for whoever holds its link.
pub async fn download(
    chat: web::Data<Chat>,
    knowledge: web::Data<Knowledge>,
    links: web::Data<SecretBox>,
    path: web::Path<(String, String)>,
    query: web::Query<FileQuery>,
) -> Result<HttpResponse, ApiError> {
    let (bot_id, id) = path.into_inner();
    let signed = query.sig.as_deref().is_some_and(|sig| links.verify_link(&link_subject(&bot_id, &id), sig));
    if !signed {
        return Err(ApiError::not_found("file not found"));
    }
    let bot = chat.public_bot(&bot_id).await?;
    serve_upload(&chat, &knowledge, bot.workspace_id, id).await
}
