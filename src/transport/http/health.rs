//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::domain::chat::Chat;
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
            "live_conversations": chat.conversations.registry().live(),
        });
        if let Some(leases) = chat.conversations.leases_held() {
            body["leases_held"] = leases.into();
        }
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
                    let leader = redis.leader(crate::domain::handoff::ROLE).await.ok().flatten();
                    json!({
                        "status": "ok",
                        "nodes": nodes,
                        "rate_limits": "shared",
                        "events": events,
                        "leaders": { crate::domain::handoff::ROLE: leader },
                    })
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

/// Prometheus text: this node's live conversations, its bounded internals (the database gate,
/// the writer's queue, the knowledge cache), admission control's refusals and merges, and,
/// clustered, Redis, the nodes and the event bus (events carried and the lag from publishing on
/// one node to delivery on this one).
pub async fn metrics(
    chat: web::Data<Chat>,
    cluster: web::Data<Cluster>,
    knowledge: Option<web::Data<crate::domain::knowledge::Knowledge>>,
    revocations: web::Data<crate::transport::revocation::Revocations>,
) -> HttpResponse {
    use std::fmt::Write;
    use std::sync::atomic::Ordering;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ =
            writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{node=\"{}\"}} {value}", cluster.node_id);
    };
    metric(
        "frontdesk_live_conversations",
        "gauge",
        "Conversations with a live session on this node.",
        chat.conversations.registry().live().to_string(),
    );
    if let Some(leases) = chat.conversations.leases_held() {
        metric(
            "frontdesk_leases_held",
            "gauge",
            "Conversations this node owns in the cluster (holds the lease of).",
            leases.to_string(),
        );
    }
    let load = |value: &std::sync::atomic::AtomicU64| value.load(Ordering::Relaxed).to_string();
    let lag = |value: &std::sync::atomic::AtomicI64| value.load(Ordering::Relaxed).to_string();
    // The cluster's counters and gauges, written out together at the end.
    let mut table: Vec<(&str, &str, &str, String)> = Vec::new();
    let db = chat.db.stats();
    table.extend([
        (
            "frontdesk_db_in_use",
            "gauge",
            "Database calls running (permits taken of the pool's size).",
            chat.db.in_use().to_string(),
        ),
        ("frontdesk_db_waits_total", "counter", "Database calls that waited for a free connection.", load(&db.waited)),
        (
            "frontdesk_db_busy_total",
            "counter",
            "Database calls refused (503) because no connection became free in time.",
            load(&db.busy),
        ),
        (
            "frontdesk_writer_queue_depth",
            "gauge",
            "Messages waiting for the writer threads.",
            db.writer_queued.load(Ordering::Relaxed).max(0).to_string(),
        ),
        (
            "frontdesk_writer_refused_total",
            "counter",
            "Messages refused (503) because the writer's queue stayed full.",
            load(&db.writer_refused),
        ),
    ]);
    if let Some(knowledge) = &knowledge {
        let cache = knowledge.cache.stats();
        table.extend([
            (
                "frontdesk_knowledge_cache_entries",
                "gauge",
                "Bots' knowledge indexes kept in memory.",
                cache.entries.to_string(),
            ),
            (
                "frontdesk_knowledge_cache_bytes",
                "gauge",
                "Estimated memory of the kept knowledge indexes.",
                cache.bytes.to_string(),
            ),
            ("frontdesk_knowledge_index_builds_total", "counter", "Knowledge indexes built.", cache.builds.to_string()),
            (
                "frontdesk_knowledge_cache_evictions_total",
                "counter",
                "Knowledge indexes dropped to stay within the cache's bounds.",
                cache.evictions.to_string(),
            ),
        ]);
    }
    if let Some(stats) = chat.conversations.stats() {
        table.extend([
            (
                "frontdesk_commands_forwarded_total",
                "counter",
                "Commands sent to the node owning the conversation.",
                load(&stats.forwarded),
            ),
            (
                "frontdesk_commands_served_total",
                "counter",
                "Commands other nodes forwarded to this node as the owner.",
                load(&stats.served),
            ),
            (
                "frontdesk_leases_acquired_total",
                "counter",
                "Conversations this node took (lease and fencing claim).",
                load(&stats.acquired),
            ),
            (
                "frontdesk_leases_lost_total",
                "counter",
                "Leases another node took while this node held them.",
                load(&stats.lost),
            ),
        ]);
    }
    if let Some(redis) = &cluster.redis {
        let nodes = redis.nodes().await;
        let (reachable, _) = redis.health();
        metric(
            "frontdesk_redis_up",
            "gauge",
            "1 while this node reaches Redis.",
            u8::from(reachable && nodes.is_ok()).to_string(),
        );
        metric(
            "frontdesk_cluster_nodes",
            "gauge",
            "Nodes with a current heartbeat.",
            nodes.map(|n| n.len()).unwrap_or(0).to_string(),
        );
        let leader = redis.leader(crate::domain::handoff::ROLE).await.ok().flatten();
        metric(
            "frontdesk_handoff_leader",
            "gauge",
            "1 while this node runs the hand-off rules for the cluster.",
            u8::from(leader.as_deref() == Some(cluster.node_id.as_str())).to_string(),
        );
    }
    if let Some(bus) = &cluster.bus {
        table.extend([
            (
                "frontdesk_bus_published_total",
                "counter",
                "Events this node published to the other nodes.",
                load(&bus.published),
            ),
            (
                "frontdesk_bus_received_total",
                "counter",
                "Events this node heard from the other nodes.",
                load(&bus.received),
            ),
            ("frontdesk_bus_dropped_total", "counter", "Events that did not reach Redis.", load(&bus.dropped)),
            (
                "frontdesk_bus_unreadable_total",
                "counter",
                "Events from other nodes not delivered: another node protocol version, or garbled.",
                load(&bus.unreadable),
            ),
            (
                "frontdesk_bus_lag_ms",
                "gauge",
                "Publish-to-delivery time of the last event heard.",
                lag(&bus.last_lag_ms),
            ),
            (
                "frontdesk_bus_lag_max_ms",
                "gauge",
                "Longest publish-to-delivery time since start.",
                lag(&bus.max_lag_ms),
            ),
        ]);
    }
    table.extend(chat.admission.metrics());
    table.extend([
        (
            "frontdesk_long_polls_waiting",
            "gauge",
            "Long polls that found nothing new and wait for the next message.",
            chat.polls_waiting.load(Ordering::Relaxed).to_string(),
        ),
        (
            "frontdesk_credential_watches",
            "gauge",
            "Open agent sockets, SSE streams and long polls whose credential this node watches.",
            revocations.watching().to_string(),
        ),
        (
            "frontdesk_revoked_connections_total",
            "counter",
            "Connections this node ended because their credential was revoked.",
            load(&revocations.closed),
        ),
    ]);
    if let Some(control) = revocations.control_stats() {
        table.extend([
            ("frontdesk_control_published_total", "counter", "Control messages sent.", load(&control.published)),
            ("frontdesk_control_received_total", "counter", "Control messages heard.", load(&control.received)),
            ("frontdesk_control_dropped_total", "counter", "Control messages not sent.", load(&control.dropped)),
        ]);
    }
    for (name, kind, help, value) in table {
        metric(name, kind, help, value);
    }
    if let Some(redis) = &cluster.redis {
        let name = "frontdesk_redis_skipped_total";
        let _ = writeln!(
            out,
            "# HELP {name} Redis calls skipped while calls of their kind rest after a failure.\n# TYPE {name} counter"
        );
        for (kind, skipped) in redis.skipped() {
            let _ = writeln!(out, "{name}{{node=\"{}\",kind=\"{}\"}} {skipped}", cluster.node_id, kind.name());
        }
    }
    // Background jobs, by job: rounds run, failed rounds, failures in a row now, queue depth.
    let jobs = crate::jobs::stats();
    type Series = (&'static str, &'static str, &'static str, fn(&crate::jobs::JobStats) -> i64);
    let job_series: [Series; 4] = [
        ("frontdesk_job_rounds_total", "counter", "Rounds each background job ran.", |s| {
            s.rounds.load(Ordering::Relaxed) as i64
        }),
        ("frontdesk_job_failures_total", "counter", "Rounds of each background job that failed.", |s| {
            s.failures.load(Ordering::Relaxed) as i64
        }),
        ("frontdesk_job_failing", "gauge", "Failed rounds in a row of each background job (0: healthy).", |s| {
            s.failing.load(Ordering::Relaxed) as i64
        }),
        ("frontdesk_job_queue_depth", "gauge", "Units of work waiting for each queue-draining job.", |s| {
            s.depth.load(Ordering::Relaxed)
        }),
    ];
    for (name, kind, help, value) in job_series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (job, stats) in &jobs {
            let value = value(stats);
            if value >= 0 {
                let _ = writeln!(out, "{name}{{node=\"{}\",job=\"{job}\"}} {value}", cluster.node_id);
            }
        }
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out)
}
