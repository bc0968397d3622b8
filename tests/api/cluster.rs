//! Several nodes on one database and one Redis: a conversation's events reach listeners on
//! every node, quotas are shared by every node, and a node keeps serving (on its own limiter)
//! while Redis is down and shares again once it is back.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

use crate::helpers::{spawn_app_with, status_json, Backend, PrivateRedis, TestApp};
use crate::on_both_backends;
use crate::sse::Events;

on_both_backends!(a_node_serves_through_a_redis_outage_and_shares_quotas_again_after);

/// The machine's Redis, with a key prefix of the test's own.
pub(crate) fn shared_redis(args: &mut frontdesk::config::SettingsArgs) {
    args.redis_url = Some(crate::helpers::redis_url());
    args.redis_prefix = Some(format!("frontdesk-test-{}:", uuid::Uuid::new_v4().simple()));
}

/// `n` requests for the workspace with A's key at `base`; answers the statuses and the last
/// response's rate-limit headers.
async fn burst(app: &TestApp, base: &str, n: usize) -> (Vec<u16>, Vec<(String, String)>) {
    let mut statuses = Vec::new();
    let mut headers = Vec::new();
    for _ in 0..n {
        let res = app.http.get(format!("{base}/api/workspace")).bearer_auth(&app.a.api_key).send().await.unwrap();
        statuses.push(res.status().as_u16());
        headers = res
            .headers()
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("x-ratelimit") || name.as_str() == "retry-after")
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
    }
    (statuses, headers)
}

async fn readyz(app: &TestApp, base: &str) -> Value {
    let (status, body) = status_json(app.http.get(format!("{base}/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 200, "Redis is not needed to serve: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_quota_per_key() {
    let app = spawn_app_with(Backend::Postgres, |args| {
        shared_redis(args);
        args.rate_limit_per_minute = Some(200);
    })
    .await;
    let (b, c) = (app.node(), app.node());
    let bases = [app.base.clone(), b.base.clone(), c.base.clone()];

    // 400 requests with one key, spread over the three nodes, 30 at a time.
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..400)
        .map(|i| {
            let request = app.http.get(format!("{}/api/workspace", bases[i % 3])).bearer_auth(&app.a.api_key);
            async move { request.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(30)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + limited, 400, "only 200s and 429s: {statuses:?}");
    // GCRA lets exactly the quota through at once, then one more request per 300 ms (200 a
    // minute) for as long as the burst lasted. Each node counting alone would let all 400 pass.
    let refilled = (elapsed.as_millis() / 300) as usize + 1;
    assert!(ok >= 200 && ok <= 200 + refilled, "{ok} succeeded in {elapsed:?}");

    // A refused request says when to come back; every node knows the others.
    let res = app.http.get(format!("{}/api/workspace", bases[1])).bearer_auth(&app.a.api_key).send().await.unwrap();
    if res.status() == 429 {
        let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
    }
    assert_eq!(res.headers()["x-ratelimit-limit"], "200");
    // A wrong key is refused before the limiter and costs nothing.
    let res = app.http.get(format!("{}/api/workspace", bases[2])).bearer_auth("fdk_wrong").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("x-ratelimit-limit").is_none());

    let mut nodes = Vec::new();
    for _ in 0..50 {
        let ready = readyz(&app, &bases[0]).await;
        assert_eq!(ready["redis"]["status"], "ok", "{ready}");
        nodes = ready["redis"]["nodes"].as_array().unwrap().clone();
        if nodes.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(nodes.len(), 3, "{nodes:?}");
}

async fn a_node_serves_through_a_redis_outage_and_shares_quotas_again_after(backend: Backend) {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let app = spawn_app_with(backend, |args| {
        args.redis_url = Some(url);
        args.redis_prefix = Some("frontdesk-test:".into());
        args.rate_limit_per_minute = Some(5);
    })
    .await;
    let other = app.node();

    // Shared: five requests between the two nodes, then the quota is spent on both.
    let (first, _) = burst(&app, &app.base, 3).await;
    let (second, headers) = burst(&app, &other.base, 3).await;
    assert_eq!([first, second].concat(), [200, 200, 200, 200, 200, 429], "one quota for both nodes");
    assert!(headers.iter().any(|(name, value)| name == "retry-after" && value != "0"), "{headers:?}");

    // Redis goes away: no 500, each node counts on its own, and says so.
    redis.down();
    let (during, headers) = burst(&app, &app.base, 6).await;
    assert_eq!(during, [200, 200, 200, 200, 200, 429], "this node's own limiter: {headers:?}");
    let ready = readyz(&app, &app.base).await;
    assert_eq!(ready["redis"]["status"], "unreachable", "{ready}");
    assert!(ready["redis"]["rate_limits"].as_str().unwrap().starts_with("local fallback"), "{ready}");
    let (elsewhere, _) = burst(&app, &other.base, 5).await;
    assert_eq!(elsewhere, [200; 5], "the other node has its own count meanwhile");

    // Redis is back (empty): the nodes share its quota again.
    redis.up();
    for base in [&app.base, &other.base] {
        let mut recovered = false;
        for _ in 0..50 {
            let ready = readyz(&app, base).await;
            if ready["redis"]["status"] == "ok" {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(recovered, "{base}'s readyz reports Redis again");
    }
    let (first, _) = burst(&app, &other.base, 2).await;
    let (second, _) = burst(&app, &app.base, 4).await;
    assert_eq!([first, second].concat(), [200, 200, 200, 200, 200, 429], "shared again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversations_events_reach_listeners_on_other_nodes() {
    let app = spawn_app_with(Backend::Postgres, shared_redis).await;
    let (b, c) = (app.node(), app.node());
    wait_listening(&app, &[&b.base, &c.base]).await;
    let conversation = app.start_conversation().await; // on the first node; the welcome is seq 1

    // A long-poll on node C and an SSE stream on node B, both waiting for what comes next.
    let poll = {
        let request = app
            .http
            .get(format!("{}/api/conversations/{conversation}/messages?after=1&wait=30", c.base))
            .bearer_auth(&app.a.api_key);
        tokio::spawn(async move { status_json(request.send().await.unwrap()).await })
    };
    let mut events = Events::open_url(&app, &format!("{}/api/conversations/{conversation}/events", b.base), None).await;
    let (id, kind, _) = events.next().await;
    assert_eq!((id, kind.as_str()), (Some(1), "done"), "the catch-up from the database");

    app.say(&conversation, "Where are you located?").await;

    // B sees the reply stream live: deltas are never stored, so only the bus brings them.
    let mut kinds = Vec::new();
    loop {
        let (_, kind, data) = events.next().await;
        kinds.push(kind.clone());
        if kind == "done" {
            assert!(data["message"]["content"].as_str().unwrap().contains("Harbour Street"), "{data}");
            break;
        }
    }
    assert_eq!(kinds.first().map(String::as_str), Some("message"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "delta"), "{kinds:?}");
    // C's long-poll woke up with the visitor's message instead of waiting out its 30 s empty.
    let (status, page) = poll.await.unwrap();
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"][0]["seq"], 2, "{page}");
    assert_eq!(page["messages"][0]["content"], "Where are you located?");

    // B's metrics count what it heard from the others.
    let metrics = app.http.get(format!("{}/metrics", b.base)).send().await.unwrap().text().await.unwrap();
    let received: u64 = metric(&metrics, "frontdesk_bus_received_total");
    assert!(received >= 3, "the message, its deltas and the reply: {metrics}");
    assert_eq!(metric(&metrics, "frontdesk_cluster_nodes"), 3, "{metrics}");
    assert_eq!(metric(&metrics, "frontdesk_redis_up"), 1, "{metrics}");
}

/// A metric's value in Prometheus text.
pub(crate) fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|line| line.starts_with(&format!("{name}{{")))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_leads_the_hand_off_rules_and_another_takes_over_when_it_stops() {
    // The first node runs no rules; the two others compete for the lead.
    let app = spawn_app_with(Backend::Postgres, |args| {
        shared_redis(args);
        args.agent_silence_secs = Some(0);
        args.auto_assign = Some(false);
    })
    .await;
    let rules = |settings: &mut frontdesk::config::Settings| {
        settings.agent_silence = Some(Duration::from_secs(600));
        settings.auto_assign = true;
    };
    let mut nodes = vec![app.node_with(rules), app.node_with(rules)];
    let leader_seen_by = |base: String| {
        let app = &app;
        async move { readyz(app, &base).await["redis"]["leaders"]["handoff"].as_str().map(str::to_owned) }
    };
    let mut leader = None;
    for _ in 0..50 {
        let seen = [
            leader_seen_by(app.base.clone()).await,
            leader_seen_by(nodes[0].base.clone()).await,
            leader_seen_by(nodes[1].base.clone()).await,
        ];
        if seen[0].is_some() && seen.iter().all(|s| *s == seen[0]) {
            leader = seen[0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leader = leader.expect("every node sees the same leader");
    let mut leading = None;
    for (i, node) in nodes.iter().enumerate() {
        let metrics = app.http.get(format!("{}/metrics", node.base)).send().await.unwrap().text().await.unwrap();
        if metric(&metrics, "frontdesk_handoff_leader") == 1 {
            assert!(leading.is_none(), "one leader only");
            leading = Some(i);
        }
    }
    let leading = leading.expect("the leader says so in its metrics");

    // The leader stops; within a few missed renewals the other node leads.
    drop(nodes.remove(leading));
    let mut next = None;
    for _ in 0..100 {
        match leader_seen_by(app.base.clone()).await {
            Some(now) if now != leader => {
                next = Some(now);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(next.is_some(), "a new leader after {leader} stopped");
    let metrics = app.http.get(format!("{}/metrics", nodes[0].base)).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric(&metrics, "frontdesk_handoff_leader"), 1, "{metrics}");
}

/// Posts a visitor message through `base` (any node); answers the status and body.
async fn say_on(app: &TestApp, base: &str, conversation: &str, client_msg_id: &str, text: &str) -> (u16, Value) {
    let request = app
        .http
        .post(format!("{base}/api/conversations/{conversation}/messages"))
        .bearer_auth(&app.a.api_key)
        .json(&serde_json::json!({ "text": text, "client_msg_id": client_msg_id }));
    status_json(request.send().await.unwrap()).await
}

pub(crate) async fn metrics_of(app: &TestApp, base: &str) -> String {
    app.http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap()
}

/// Waits until every node hears the others (its command channel and the events).
async fn wait_listening(app: &TestApp, bases: &[&str]) {
    for base in bases {
        let mut listening = false;
        for _ in 0..50 {
            if readyz(app, base).await["redis"]["events"] == "listening" {
                listening = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(listening, "{base} hears the cluster");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_lives_on_one_node_the_others_forward_to_it_and_a_dead_owner_is_replaced() {
    let app = spawn_app_with(Backend::Postgres, |args| {
        shared_redis(args);
        args.lease_ms = Some(2500);
    })
    .await;
    let (b, c) = (app.node(), app.node());
    wait_listening(&app, &[&app.base, &b.base, &c.base]).await;
    let conversation = app.start_conversation().await;

    // The first message arrives on B: B takes the conversation (its lease and fencing token).
    let (status, first) = say_on(&app, &b.base, &conversation, "m1", "Where are you located?").await;
    assert_eq!(status, 201, "{first}");
    assert!(first["reply"]["content"].as_str().unwrap().contains("Harbour Street"), "{first}");
    // The next ones arrive on A and C, which forward them to B; their replies come back
    // through the conversation's events.
    for (base, id, text) in [(&app.base, "m2", "What are your hours?"), (&c.base, "m3", "Do you take Aetna?")] {
        let (status, body) = say_on(&app, base, &conversation, id, text).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["reply"]["reply_to"], body["message"]["id"], "{body}");
    }
    let held: Vec<u64> = [&app.base, &b.base, &c.base]
        .iter()
        .map(|base| async { metric(&metrics_of(&app, base).await, "frontdesk_leases_held") })
        .collect::<futures::stream::FuturesOrdered<_>>()
        .collect()
        .await;
    assert_eq!(held, [0, 1, 0], "only B runs the conversation");
    for base in [&app.base, &c.base] {
        assert!(metric(&metrics_of(&app, base).await, "frontdesk_commands_forwarded_total") >= 1);
    }
    assert!(metric(&metrics_of(&app, &b.base).await, "frontdesk_commands_served_total") >= 2);
    // A resend through another node is the same message, not a second one.
    let (status, again) = say_on(&app, &c.base, &conversation, "m1", "Where are you located?").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message"]["id"], first["message"]["id"]);
    assert_eq!(again["reply"]["id"], first["reply"]["id"], "the stored reply comes with the duplicate");

    // B dies without handing anything over. Within its lease's time another node takes the
    // conversation from the database and carries on after what B stored.
    drop(b);
    let (status, after) = say_on(&app, &c.base, &conversation, "m4", "Can I book a cleaning?").await;
    assert_eq!(status, 201, "{after}");
    assert_eq!(after["message"]["seq"], 8, "{after}");
    assert!(after["reply"].is_object(), "{after}");
    let held_now = metric(&metrics_of(&app, &app.base).await, "frontdesk_leases_held")
        + metric(&metrics_of(&app, &c.base).await, "frontdesk_leases_held");
    assert_eq!(held_now, 1, "one new owner");

    let messages = app.messages(&conversation).await;
    let seqs: Vec<i64> = messages.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>(), "gap-free, nothing twice: {messages:?}");
    let visitor: Vec<&str> =
        messages.iter().filter(|m| m["sender"] == "visitor").map(|m| m["client_msg_id"].as_str().unwrap()).collect();
    assert_eq!(visitor, ["m1", "m2", "m3", "m4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_owner_cannot_write_after_another_node_claims_the_conversation() {
    let app = spawn_app_with(Backend::Postgres, |args| {
        shared_redis(args);
        args.lease_ms = Some(60_000);
    })
    .await;
    let b = app.node();
    wait_listening(&app, &[&app.base, &b.base]).await;
    let conversation = app.start_conversation().await;
    let (status, body) = say_on(&app, &app.base, &conversation, "m1", "hello").await;
    assert_eq!(status, 201, "{body}");

    // Another node claims the conversation behind A's back (as after A's lease ran out while A
    // was paused): the database's fencing token moves on.
    let db = app.database();
    let id = frontdesk::ids::ConversationId::from(conversation.as_str());
    let token = db.run(move |conn| frontdesk::storage::conversations::claim(conn, &id)).await.unwrap().unwrap();
    assert!(token >= 2, "A's claim was {}", token - 1);

    // A still holds the Redis lease and its live session with the old token: that session's
    // write is refused and it stops; A claims the conversation again with a newer token and a
    // fresh session (rehydrated from the database) stores the message, once.
    let (status, body) = say_on(&app, &app.base, &conversation, "m2", "are you there?").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"]["seq"], 4, "{body}");
    assert_eq!(metric(&metrics_of(&app, &app.base).await, "frontdesk_leases_acquired_total"), 2);
    let messages = app.messages(&conversation).await;
    let seqs: Vec<i64> = messages.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "{messages:?}");
    let id = frontdesk::ids::ConversationId::from(conversation.as_str());
    let next = db.run(move |conn| frontdesk::storage::conversations::claim(conn, &id)).await.unwrap().unwrap();
    assert_eq!(next, token + 2, "A's second claim came after the other one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_stays_online_while_a_socket_is_open_on_any_node() {
    let mut prefix = String::new();
    let app = spawn_app_with(Backend::Postgres, |args| {
        shared_redis(args);
        prefix = args.redis_prefix.clone().unwrap();
    })
    .await;
    let b = app.node();
    wait_listening(&app, &[&app.base, &b.base]).await;
    let (status, created) = app
        .post(&app.a.api_key, "/api/agents", serde_json::json!({ "name": "Dana Reyes", "email": "dana@clinic.test" }))
        .await;
    assert_eq!(status, 201, "{created}");
    let (id, token) = (created["agent"]["id"].as_i64().unwrap(), created["token"].as_str().unwrap().to_owned());
    let connect = |base: &str| {
        let url = format!("{}/ws/agent?token={token}", base.replacen("http", "ws", 1));
        async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.expect("agent socket connects");
            while let Some(Ok(frame)) = socket.next().await {
                if frame.to_text().unwrap_or_default().contains("\"inbox\"") {
                    return socket;
                }
            }
            panic!("no inbox frame on {url}");
        }
    };
    let on_a = connect(&app.base).await;
    let on_b = connect(&b.base).await;
    let presence = || async { app.get(&token, "/api/agents/me").await.1["presence"].as_str().unwrap().to_owned() };
    assert_eq!(presence().await, "online");

    // The nodes holding the agent's sockets, as Redis has them.
    let mut redis =
        redis::Client::open(crate::helpers::redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}agent-sockets:{id}");
    let holders = |redis: &mut redis::aio::MultiplexedConnection| {
        let mut redis = redis.clone();
        let key = key.clone();
        async move { redis::AsyncCommands::scard::<_, usize>(&mut redis, &key).await.unwrap() }
    };
    for _ in 0..100 {
        if holders(&mut redis).await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(holders(&mut redis).await, 2, "both nodes noted the agent's sockets");

    // The socket on A closes: A's count is done, but B still has one, so the agent stays online.
    drop(on_a);
    for _ in 0..100 {
        if holders(&mut redis).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(holders(&mut redis).await, 1, "A let go of the agent");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(presence().await, "online", "still connected through B");

    // The last socket anywhere closes: offline.
    drop(on_b);
    let mut now = String::new();
    for _ in 0..100 {
        now = presence().await;
        if now == "offline" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(now, "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_conversations_go_round_the_agents_in_turns_taken_in_redis() {
    let mut prefix = String::new();
    let app = spawn_app_with(Backend::Postgres, |args| {
        shared_redis(args);
        prefix = args.redis_prefix.clone().unwrap();
        args.auto_assign = Some(true);
        args.agent_silence_secs = Some(0);
    })
    .await;
    let b = app.node();
    wait_listening(&app, &[&app.base, &b.base]).await;
    let mut agents = Vec::new();
    for name in ["Round One", "Round Two"] {
        let email = format!("{}@clinic.test", name.to_lowercase().replace(' ', "."));
        let (status, created) =
            app.post(&app.a.api_key, "/api/agents", serde_json::json!({ "name": name, "email": email })).await;
        assert_eq!(status, 201, "{created}");
        let token = created["token"].as_str().unwrap().to_owned();
        let (status, body) =
            app.put_json(&token, "/api/agents/me/presence", serde_json::json!({ "presence": "online" })).await;
        assert_eq!(status, 200, "{body}");
        agents.push(created["agent"]["id"].as_i64().unwrap());
    }
    // Four conversations ask for a person, through either node.
    let mut assigned = Vec::new();
    for i in 0..4 {
        let conversation = app.start_conversation().await;
        let base = if i % 2 == 0 { &app.base } else { &b.base };
        let (status, view) = status_json(
            app.http
                .post(format!("{base}/api/conversations/{conversation}/handoff"))
                .bearer_auth(&app.a.api_key)
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{view}");
        let mut owner = Value::Null;
        for _ in 0..150 {
            let (_, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}")).await;
            if view["owner"] == "agent" {
                owner = view["agent"]["id"].clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assigned.push(owner.as_i64().unwrap_or_else(|| panic!("conversation {i} never assigned")));
    }
    assert_eq!(assigned, [agents[0], agents[1], agents[0], agents[1]], "in turn");
    // The turns were taken in Redis (the workspace's rota holds both agents).
    let mut redis =
        redis::Client::open(crate::helpers::redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let workspace = app.a.workspace_id;
    let rota: usize =
        redis::AsyncCommands::zcard(&mut redis, format!("{prefix}{{rr:{workspace}}}:turns")).await.unwrap();
    assert_eq!(rota, 2);
}

/// A Redis Cluster of the test's own: three masters on free ports, slots spread over them.
struct RedisCluster {
    ports: Vec<u16>,
    children: Vec<std::process::Child>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    fn start() -> RedisCluster {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let free_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut children = Vec::new();
        for port in &ports {
            let config = dir.path().join(format!("nodes-{port}.conf"));
            // The cluster bus's port is named too: its default (port + 10000) may not exist.
            let bus_port = free_port().to_string();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file", config.to_str().unwrap()])
                .args(["--cluster-port", &bus_port])
                .args(["--dir", dir.path().to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server runs (CI installs it)");
            children.push(child);
        }
        for port in &ports {
            let up = (0..100).any(|_| {
                std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok() || {
                    std::thread::sleep(Duration::from_millis(50));
                    false
                }
            });
            assert!(up, "redis-server did not start on {port}");
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stdout));
        let cluster = RedisCluster { ports, children, _dir: dir };
        for port in &cluster.ports {
            let ready = (0..100).any(|_| {
                let info = Command::new("redis-cli").args(["-p", &port.to_string(), "cluster", "info"]).output();
                info.is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok")) || {
                    std::thread::sleep(Duration::from_millis(100));
                    false
                }
            });
            assert!(ready, "the Redis Cluster never became ready on {port}");
        }
        cluster
    }

    /// `REDIS_URL` for the cluster: its seed nodes, comma-separated.
    fn url(&self) -> String {
        self.ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_coordinates_the_nodes_like_one_server() {
    let redis = RedisCluster::start();
    let url = redis.url();
    let app = spawn_app_with(Backend::Postgres, |args| {
        args.redis_url = Some(url);
        args.redis_prefix = Some("frontdesk-test:".into());
        args.rate_limit_per_minute = Some(5);
    })
    .await;
    let b = app.node();
    wait_listening(&app, &[&app.base, &b.base]).await;
    let mut nodes = Vec::new();
    for _ in 0..50 {
        let ready = readyz(&app, &b.base).await;
        assert_eq!(ready["redis"]["status"], "ok", "{ready}");
        nodes = ready["redis"]["nodes"].as_array().unwrap().clone();
        if nodes.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(nodes.len(), 2, "both heartbeats in the cluster: {nodes:?}");

    // One quota for both nodes (GCRA's script runs on the slot's master): workspace B's key.
    let mut statuses = Vec::new();
    for base in [&app.base, &app.base, &app.base, &b.base, &b.base, &b.base] {
        let res = app.http.get(format!("{base}/api/workspace")).bearer_auth(&app.b.api_key).send().await.unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429], "one quota for both nodes");

    // A conversation owned by B (its lease on one master) takes a message sent through A,
    // forwarded over the cluster's pub/sub, with the reply coming back through the events.
    let conversation = app.start_conversation().await;
    let (status, body) = say_on(&app, &b.base, &conversation, "m1", "Where are you located?").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = say_on(&app, &app.base, &conversation, "m2", "What are your hours?").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["reply"]["reply_to"], body["message"]["id"], "{body}");
    assert_eq!(metric(&metrics_of(&app, &b.base).await, "frontdesk_leases_held"), 1);
    assert!(metric(&metrics_of(&app, &app.base).await, "frontdesk_commands_forwarded_total") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_answers_a_request_in_another_protocol_version_with_an_error() {
    let mut prefix = String::new();
    let app = spawn_app_with(Backend::Sqlite, |args| {
        shared_redis(args);
        prefix = args.redis_prefix.clone().unwrap();
    })
    .await;
    let node = readyz(&app, &app.base).await["node_id"].as_str().unwrap().to_owned();
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut answers = client.get_async_pubsub().await.unwrap();
    answers.subscribe(format!("{prefix}node:a-newer-node")).await.unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();

    // A node of a later release forwards a command in protocol 2.
    let request = serde_json::json!({
        "type": "request", "v": 2, "id": 77, "from": "a-newer-node", "conversation_id": "c",
        "command": { "kind": "visitor_typing", "body": { "on": true } },
    })
    .to_string();
    let channel = format!("{prefix}node:{node}");
    let mut heard = 0;
    for _ in 0..100 {
        heard = redis::AsyncCommands::publish::<_, _, i64>(&mut redis, &channel, &request).await.unwrap();
        if heard > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(heard, 1, "the node listens on its channel");

    // It is answered at once with an error naming the versions, not left to time out.
    let mut messages = answers.on_message();
    let message = tokio::time::timeout(Duration::from_secs(10), messages.next()).await.expect("an answer").unwrap();
    let answer: Value = serde_json::from_slice(message.get_payload_bytes()).unwrap();
    assert_eq!(answer["type"], "response", "{answer}");
    assert_eq!(answer["id"], 77, "{answer}");
    assert_eq!(answer["v"], 1, "{answer}");
    assert!(answer.to_string().contains("node protocol 2 is not spoken here"), "{answer}");
}
