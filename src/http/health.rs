//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::chat::Chat;

/// The process is up and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The process can do its work: the database answers.
pub async fn readyz(chat: web::Data<Chat>) -> HttpResponse {
    let backend = chat.db.backend().name();
    if chat.db.ping().await {
        HttpResponse::Ok()
            .json(json!({ "status": "ready", "database": backend, "live_conversations": chat.registry.live() }))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "unavailable", "database": backend, "error": "database unreachable" }))
    }
}
