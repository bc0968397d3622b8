//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::chat::Chat;
use crate::startup::Cluster;

/// The process is up and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The process can do its work: the database answers.
pub async fn readyz(chat: web::Data<Chat>, cluster: web::Data<Cluster>) -> HttpResponse {
    let backend = chat.db.backend().name();
    if chat.db.ping().await {
        let mut body = json!({
            "status": "ready",
            "database": backend,
            "node_id": cluster.node_id,
            "live_conversations": chat.registry.live(),
        });
        // Redis coordinates but is not needed to serve: a node without it reports, and serves.
        if let Some(redis) = &cluster.redis {
            let nodes = redis.nodes().await;
            let (reachable, error) = redis.health();
            let events = if redis.listening.load(std::sync::atomic::Ordering::Relaxed) {
                "listening"
            } else {
                "not listening: this node hears only its own conversations' events"
            };
            body["redis"] = match nodes {
                Ok(nodes) if reachable => {
                    json!({ "status": "ok", "nodes": nodes, "rate_limits": "shared", "events": events })
                }
                _ => json!({
                    "status": "unreachable",
                    "error": error,
                    "rate_limits": "local fallback: each node counts its own requests",
                    "events": events,
                }),
            };
        }
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "unavailable", "database": backend, "error": "database unreachable" }))
    }
}
