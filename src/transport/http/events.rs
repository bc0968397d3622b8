//! `GET /api/conversations/{id}/events`: a conversation's live events as Server-Sent Events.
//!
//! Stored messages carry their `seq` as the event id, so a client that reconnects with
//! `Last-Event-ID` (or `?last_event_id=`) first gets exactly the messages it missed, read from
//! the database, then the live stream. Deltas and typing carry no id: they are not replayed.
//! When the credential that opened the stream is revoked, a last `revoked` event is sent and
//! the stream ends.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use frontdesk_actors::ConversationEvent;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::domain::chat::Chat;
use crate::domain::replay::{self, Live, ReplayCursor};
use crate::error::{ApiError, QueryParams};
use crate::ids::ConversationId;
use crate::transport::http::auth::Caller;
use crate::transport::revocation::{Revocations, Watch};

const KEEPALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub last_event_id: Option<i64>,
}

/// One SSE frame for an event; stored messages get their `seq` as id.
pub fn frame(event: &ConversationEvent) -> Bytes {
    let kind = event.kind();
    let data = serde_json::to_string(event).unwrap_or_default();
    match event.stored_message() {
        Some(message) => Bytes::from(format!("id: {}\nevent: {kind}\ndata: {data}\n\n", message.seq)),
        None => Bytes::from(format!("event: {kind}\ndata: {data}\n\n")),
    }
}

pub async fn stream(
    req: HttpRequest,
    chat: web::Data<Chat>,
    revocations: web::Data<Revocations>,
    caller: Caller,
    path: web::Path<ConversationId>,
    query: QueryParams<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let from_header = match req.headers().get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|v| *v >= 0)
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a message seq (a whole number)"))?,
        ),
        None => None,
    };
    let mut cursor = ReplayCursor::after(from_header.or(query.0.last_event_id).unwrap_or(0));
    let workspace_id = caller.workspace_id;
    let row = chat.conversation(workspace_id, &path).await?;
    let conversation_id = row.id;
    let mut events = chat.bus.subscribe(conversation_id.as_str());
    let chat = chat.into_inner();
    let Watch { mut revoked, guard: _watch } =
        revocations.into_inner().watch(caller.credential, caller.token_hash.clone());

    let body = async_stream::stream! {
        // Watching for as long as the stream lives.
        let _watch = _watch;
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        // One stream reads its pages in line with its live events, so a read never overlaps one.
        let mut read_from = cursor.start_read();
        loop {
            while let Some(after) = read_from {
                let page = match chat.history_after(workspace_id, &conversation_id, after, replay::PAGE).await {
                    Ok(page) => cursor.page(page),
                    Err(_) => return,
                };
                for message in page.messages {
                    yield Ok::<_, actix_web::Error>(frame(&ConversationEvent::replay(message)));
                }
                read_from = page.read_on.then(|| cursor.last_seq());
            }
            tokio::select! {
                received = events.recv() => match received {
                    Ok(event) => match cursor.live(event.stored_message().map(|m| m.seq)) {
                        Live::Skip => {}
                        Live::CatchUp => read_from = cursor.start_read(),
                        Live::Deliver => yield Ok(frame(&event)),
                    },
                    Err(RecvError::Lagged(_)) => read_from = cursor.start_read(),
                    Err(RecvError::Closed) => return,
                },
                _ = keepalive.tick() => yield Ok(Bytes::from_static(b": keepalive\n\n")),
                ended = &mut revoked => {
                    if ended.is_ok() {
                        yield Ok(Bytes::from_static(b"event: revoked\ndata: {\"error\":\"credential revoked\"}\n\n"));
                    }
                    return;
                }
            }
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
