//! ChatGenius's documented routes that work without a bearer key: the public doctor list
//! (`GET /api/doctors/public?admin_id=`), the external booking (`POST /api/external/booking`,
//! the external API key in the body) and the chat endpoint (`POST /chat`). Its authenticated
//! routes (bookings, patients, leads) are frontdesk's own, in [`crate::transport::http`].
//!
//! `POST /chat` takes no key: `admin_id` (the workspace's public id from the embed code) names the practice and
//! `session_id` (chosen by the widget) names the conversation, created on first use and kept
//! across messages. The answer's `action` says what the turn did: `message` (an ordinary
//! answer), `booking_flow` (collecting a booking's details), `booking_confirmed`,
//! `booking_rescheduled` or `booking_cancelled`. Limited per session (30 a minute by default).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

use crate::brain::reception::Action;
use crate::domain::booking::BookingView;
use crate::domain::chat::{Chat, VisitorInput};
use crate::domain::rate_limit::ChatRateLimiter;
use crate::error::{ApiError, JsonBody, QueryParams};
use crate::transport::http::bookings::BookingBody;
use crate::transport::http::idempotency;

/// How long the endpoint waits for the bot's answer.
const REPLY_WAIT: Duration = Duration::from_secs(30);
const MAX_SESSION_ID: usize = 128;
/// `session_id`s live beside other seed APIs' external ids; the prefix keeps them apart.
const SESSION_PREFIX: &str = "chatgenius:";

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub message: String,
    pub session_id: String,
    pub admin_id: String,
}

#[derive(Debug, Serialize)]
pub struct ChatResponse {
    pub response: String,
    pub action: &'static str,
    pub session_id: String,
}

pub async fn chat(
    req: HttpRequest,
    chat: web::Data<Chat>,
    limiter: Option<web::Data<ChatRateLimiter>>,
    body: JsonBody<ChatRequest>,
) -> Result<HttpResponse, ApiError> {
    let ChatRequest { message, session_id, admin_id } = body.0;
    if session_id.trim().is_empty() || session_id.len() > MAX_SESSION_ID {
        return Err(ApiError::unprocessable(format!("session_id must be 1 to {MAX_SESSION_ID} characters")));
    }
    let admin = admin_id.trim().to_owned();
    if admin.is_empty() {
        return Err(ApiError::unprocessable("admin_id must not be empty"));
    }
    let workspace_id =
        chat.workspace_by_public_id(&admin).await?.ok_or_else(|| ApiError::not_found("admin_id not found"))?;
    // A web page may chat only from an origin the practice's bots allow.
    crate::transport::http::cors::check_workspace_origin(
        &chat,
        workspace_id,
        crate::transport::http::cors::origin(&req),
    )
    .await?;
    let address = chat.admission.client_address(&req);
    let verdict = match limiter {
        Some(limiter) => {
            let quotas = chat.quotas(workspace_id).await?;
            Some(limiter.check(workspace_id, &session_id, address, quotas.chat_rate_limit_per_minute).await)
        }
        None => None,
    };
    if let Some(verdict) = verdict.filter(|v| !v.allowed) {
        let error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "rate limit exceeded: {} messages per minute; retry in {} s",
                verdict.limit, verdict.retry_after_secs
            ),
        );
        let mut response = error.error_response();
        verdict.write_headers(response.headers_mut());
        return Ok(response);
    }
    let visitor = chat.validate(VisitorInput { text: message, ..VisitorInput::default() })?;

    let bot = chat.workspace_bot(workspace_id, None).await?;
    let external_id = format!("{SESSION_PREFIX}{session_id}");
    let conversation = chat.public_session_conversation(&bot, external_id, "chatgenius", address).await?;
    let (question, reply) = chat.ask(&conversation.id, visitor, REPLY_WAIT).await?;
    let question_id = question.id;
    let (id, bot_id) = (conversation.id.clone(), bot.id);
    let row = chat.stored_conversation(bot_id, &id).await?;
    let variables: serde_json::Value = row.and_then(|r| serde_json::from_str(&r.variables).ok()).unwrap_or_default();
    let last = &variables["last_action"];
    let action = if last["reply_to"].as_i64() == Some(question_id) {
        serde_json::from_value::<Action>(last["action"].clone()).unwrap_or(Action::Message)
    } else {
        Action::Message
    };
    let mut response =
        HttpResponse::Ok().json(ChatResponse { response: reply.content, action: action.as_str(), session_id });
    if let Some(verdict) = verdict {
        verdict.write_headers(response.headers_mut());
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct PublicQuery {
    pub admin_id: Option<String>,
}

/// A doctor as ChatGenius's public list shows it.
#[derive(Debug, Serialize)]
struct PublicDoctor {
    id: i64,
    name: String,
    specialty: String,
    bio: String,
    photo_url: String,
    availability: String,
}

pub async fn public_doctors(
    req: HttpRequest,
    chat: web::Data<Chat>,
    query: QueryParams<PublicQuery>,
) -> Result<HttpResponse, ApiError> {
    let admin_id = query.0.admin_id.filter(|id| !id.trim().is_empty()).ok_or_else(|| {
        ApiError::bad_request("missing query parameter `admin_id` (the public id from the embed code)")
    })?;
    let workspace_id =
        chat.workspace_by_public_id(admin_id.trim()).await?.ok_or_else(|| ApiError::not_found("admin_id not found"))?;
    crate::transport::http::cors::check_workspace_origin(
        &chat,
        workspace_id,
        crate::transport::http::cors::origin(&req),
    )
    .await?;
    let doctors = chat.doctors(workspace_id, true).await?;
    let public: Vec<PublicDoctor> = doctors
        .into_iter()
        .map(|d| PublicDoctor {
            id: d.id,
            name: d.name,
            specialty: d.specialty,
            bio: d.bio,
            photo_url: d.photo_url,
            availability: d.availability,
        })
        .collect();
    Ok(HttpResponse::Ok().json(public))
}

/// `POST /api/external/booking` (ChatGenius): the external API key in the body, no bearer.
pub async fn external_booking(
    req: HttpRequest,
    chat: web::Data<Chat>,
    body: JsonBody<BookingBody>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body, digest) = body;
    let key = body.api_key.clone().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
        ApiError::unauthorized("missing `api_key`: send the workspace's external API key in the body")
    })?;
    let workspace_id =
        chat.workspace_by_external_key(key.trim()).await?.ok_or_else(|| ApiError::unauthorized("invalid api_key"))?;
    chat.admission.external_key(workspace_id).await?;
    let booking = body.request("external")?;
    let request = idempotency::idempotent(&req, &digest)?;
    let respond = |view: BookingView| serde_json::json!({ "ok": true, "booking_id": view.id, "message": "Booking created", "booking": view });
    chat.desk.reserve_once(workspace_id, booking, "external_booking", request, respond).await.map(idempotency::respond)
}
