//! Webhooks end to end: real receivers on loopback, signatures checked by independent code
//! (the ChatGenius document's Python snippet and the `standardwebhooks` package), retries,
//! status-code handling, target safety, rollback, restart, rotation, redelivery, replay, Zapier.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{run_cli, spawn_app_with, spawn_binary, status_json, Backend, TestApp, TestDb};
use crate::on_both_backends;
use crate::webhook_receiver::{verify_with_python, Receiver, Reply};

on_both_backends!(
    events_arrive_in_the_documented_envelope_and_verify_independently,
    a_receiver_that_was_down_gets_the_event_later_with_the_same_id,
    status_codes_decide_retry_disable_and_redirects_are_not_followed,
    only_safe_targets_are_accepted,
    a_change_that_rolls_back_emits_nothing,
    rotation_signs_with_both_secrets_during_the_overlap,
    the_log_redelivers_and_replays,
    zapier_subscriptions_come_and_go,
    an_endpoint_failing_too_long_is_disabled_and_the_workspace_told,
    another_workspace_cannot_touch_an_endpoint,
    pending_deliveries_survive_a_killed_server,
    two_nodes_on_one_database_send_each_event_once,
    an_idempotent_create_never_stores_the_secret_in_clear,
    an_event_emitted_in_a_failed_transaction_is_gone_with_it,
);

const WAIT: Duration = Duration::from_secs(20);

async fn webhook_app(backend: Backend, disable_after_secs: u64) -> TestApp {
    spawn_app_with(backend, |args| {
        args.webhook_allow_loopback = Some(true);
        args.webhook_retry_schedule_ms = Some("0,150,300,450".into());
        args.webhook_poll_ms = Some(50);
        args.webhook_disable_after_secs = Some(disable_after_secs);
    })
    .await
}

async fn subscribe(app: &TestApp, url: &str, events: Value) -> (i64, String) {
    let (status, body) = app.post(&app.a.api_key, "/api/webhooks", json!({"url": url, "events": events})).await;
    assert_eq!(status, 201, "{body}");
    let secret = body["secret"].as_str().expect("secret shown on creation").to_owned();
    assert!(secret.starts_with("whsec_"));
    (body["id"].as_i64().unwrap(), secret)
}

/// Polls the delivery log until `done` says it is complete.
async fn log_until(app: &TestApp, endpoint: i64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..400 {
        let (status, body) = app.get(&app.a.api_key, &format!("/api/webhooks/{endpoint}/deliveries?limit=100")).await;
        assert_eq!(status, 200, "{body}");
        let log = body["data"].as_array().unwrap().clone();
        if done(&log) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery log never reached the expected state");
}

async fn events_arrive_in_the_documented_envelope_and_verify_independently(backend: Backend) {
    let app = webhook_app(backend, 3600).await;
    let receiver = Receiver::start().await;
    let (_, secret) = subscribe(&app, &receiver.url("/hooks"), json!(["*"])).await;
    let conversation = app.start_conversation().await;
    app.say(&conversation, "Hello").await;
    let (status, _) = app.post(&app.a.api_key, &format!("/api/conversations/{conversation}/close"), json!({})).await;
    assert_eq!(status, 200);

    // conversation_started, message_created (visitor), message_created (bot), conversation_closed
    let got = receiver.wait_for(4, WAIT).await;
    let mut events: Vec<String> = got.iter().map(|r| r.json()["event"].as_str().unwrap().to_owned()).collect();
    events.sort();
    assert_eq!(events, ["conversation_closed", "conversation_started", "message_created", "message_created"]);
    let now = chrono::Utc::now();
    for request in &got {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hooks");
        let envelope = request.json();
        let keys: Vec<&String> = envelope.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["data", "event", "timestamp"], "exactly the documented envelope");
        let timestamp = chrono::DateTime::parse_from_rfc3339(envelope["timestamp"].as_str().unwrap()).unwrap();
        assert!((now - timestamp.with_timezone(&chrono::Utc)).num_seconds().abs() < 300, "within 5 minutes");
        assert!(envelope["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(request.header("webhook-id").unwrap().starts_with("msg_"));
        let sent_at: i64 = request.header("webhook-timestamp").unwrap().parse().unwrap();
        assert_eq!(sent_at, timestamp.timestamp(), "the envelope and the header tell the same time");
        assert_eq!(request.header("content-type"), Some("application/json"));
        let verdict = verify_with_python(&secret, None, request);
        assert_eq!(verdict["chatgenius"], true, "{verdict}");
        assert_eq!(verdict["standard"], true, "{verdict}");
        // A wrong secret fails both checks: the verifier is not a rubber stamp.
        let wrong = verify_with_python("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", None, request);
        assert_eq!((wrong["chatgenius"].clone(), wrong["standard"].clone()), (json!(false), json!(false)));
    }
    let started = got.iter().map(|r| r.json()).find(|e| e["event"] == "conversation_started").unwrap();
    assert_eq!(started["data"]["conversation_id"], conversation.as_str());
    assert_eq!(started["data"]["bot_id"], app.a.bot_id.as_str());
    let said = got.iter().map(|r| r.json()).find(|e| e["data"]["message"]["sender"] == "visitor").unwrap();
    assert_eq!(said["data"]["message"]["content"], "Hello");
    assert_eq!(said["data"]["message"]["seq"], 2);
}

async fn a_receiver_that_was_down_gets_the_event_later_with_the_same_id(backend: Backend) {
    let app = webhook_app(backend, 3600).await;
    let port = Receiver::start().await.stop().await;
    let (endpoint, secret) =
        subscribe(&app, &format!("http://127.0.0.1:{port}/in"), json!(["conversation_started"])).await;
    app.start_conversation().await;
    let failed = log_until(&app, endpoint, |log| log.first().is_some_and(|d| d["attempts"].as_i64() >= Some(1))).await;
    let first_error = failed[0]["log"][0]["error"].as_str().unwrap().to_owned();
    assert!(!first_error.is_empty());
    assert_eq!(failed[0]["status"], "pending", "a refused connection is retried");

    let receiver = Receiver::start_on(port).await;
    let got = receiver.wait_for(1, WAIT).await;
    let log = log_until(&app, endpoint, |log| log[0]["status"] == "delivered").await;
    assert_eq!(
        got[0].header("webhook-id").unwrap(),
        log[0]["webhook_id"].as_str().unwrap(),
        "same id on every attempt"
    );
    let first_attempt_secs = log[0]["log"][0]["attempted_at"].as_i64().unwrap() / 1000;
    let sent_at: i64 = got[0].header("webhook-timestamp").unwrap().parse().unwrap();
    assert!(sent_at >= first_attempt_secs, "a fresh timestamp on the retry");
    assert!(log[0]["attempts"].as_i64().unwrap() >= 2);
    assert_eq!(verify_with_python(&secret, None, &got[0])["standard"], true);
}

async fn status_codes_decide_retry_disable_and_redirects_are_not_followed(backend: Backend) {
    let app = webhook_app(backend, 3600).await;

    // 503 with Retry-After, then 200: delivered on the second attempt.
    let flaky = Receiver::start().await;
    flaky.script([Reply::status(503).with_header("Retry-After", "0")]);
    let (flaky_id, _) = subscribe(&app, &flaky.url("/"), json!(["conversation_started"])).await;

    // 302: a failure, and the Location is never fetched.
    let redirecting = Receiver::start().await;
    redirecting.set_default(Reply::status(302).with_header("Location", "/elsewhere"));
    let (redirect_id, _) = subscribe(&app, &redirecting.url("/start"), json!(["conversation_started"])).await;

    // 429 with Retry-After: 1 → the retry waits the second, not the 150 ms schedule.
    let throttled = Receiver::start().await;
    throttled.script([Reply::status(429).with_header("Retry-After", "1")]);
    let (throttled_id, _) = subscribe(&app, &throttled.url("/"), json!(["conversation_started"])).await;

    // Always 500: retried through the whole schedule (4 attempts), then dead-lettered.
    let broken = Receiver::start().await;
    broken.set_default(Reply::status(500).with_body("database on fire"));
    let (broken_id, _) = subscribe(&app, &broken.url("/"), json!(["conversation_started"])).await;

    // 410: the endpoint is disabled at once.
    let gone = Receiver::start().await;
    gone.set_default(Reply::status(410));
    let (gone_id, _) = subscribe(&app, &gone.url("/"), json!(["conversation_started"])).await;

    app.start_conversation().await;

    let log = log_until(&app, flaky_id, |log| log.first().is_some_and(|d| d["status"] == "delivered")).await;
    let codes: Vec<i64> =
        log[0]["log"].as_array().unwrap().iter().map(|a| a["status_code"].as_i64().unwrap()).collect();
    assert_eq!(codes, vec![503, 200]);
    let (_, flaky_endpoint) = app.get(&app.a.api_key, &format!("/api/webhooks/{flaky_id}")).await;
    assert_eq!(flaky_endpoint["failing_since"], Value::Null, "a success ends the failure streak");
    assert_eq!(flaky_endpoint["active"], true);

    let log = log_until(&app, redirect_id, |log| log.first().is_some_and(|d| d["attempts"].as_i64() >= Some(2))).await;
    assert_eq!(log[0]["log"][0]["status_code"], 302);
    assert!(log[0]["log"][0]["error"].as_str().unwrap().contains("not followed"));
    assert!(redirecting.received().iter().all(|r| r.path == "/start"), "the Location was not followed");

    let log = log_until(&app, throttled_id, |log| log.first().is_some_and(|d| d["status"] == "delivered")).await;
    let times: Vec<i64> =
        log[0]["log"].as_array().unwrap().iter().map(|a| a["attempted_at"].as_i64().unwrap()).collect();
    assert_eq!(times.len(), 2);
    assert!(times[1] - times[0] >= 1000, "Retry-After honoured: {times:?}");

    let log = log_until(&app, broken_id, |log| log.first().is_some_and(|d| d["status"] == "dead")).await;
    assert_eq!(log[0]["attempts"], 4, "the whole schedule, then the dead letter");
    assert_eq!(log[0]["log"][3]["response_excerpt"], "database on fire");
    assert_eq!(broken.received().len(), 4);
    let (_, endpoint) = app.get(&app.a.api_key, &format!("/api/webhooks/{broken_id}")).await;
    assert!(endpoint["failing_since"].is_i64());

    let log = log_until(&app, gone_id, |log| log.first().is_some_and(|d| d["status"] == "dead")).await;
    assert_eq!(log[0]["attempts"], 1, "410 is final");
    let (_, endpoint) = app.get(&app.a.api_key, &format!("/api/webhooks/{gone_id}")).await;
    assert_eq!(endpoint["active"], false);
    assert!(endpoint["disabled_reason"].as_str().unwrap().contains("410"));
    assert_eq!(gone.received().len(), 1);
    let delivery = log[0]["id"].as_i64().unwrap();
    let (status, body) =
        app.post(&app.a.api_key, &format!("/api/webhooks/{gone_id}/deliveries/{delivery}/redeliver"), json!({})).await;
    assert_eq!(status, 409, "a disabled endpoint sends nothing: {body}");
    let (status, _) = app.post(&app.a.api_key, &format!("/api/webhooks/{gone_id}/replay"), json!({"since": 0})).await;
    assert_eq!(status, 409);
    let (status, _) = app.get(&app.a.api_key, "/api/webhooks/abc").await;
    assert_eq!(status, 404, "an id that cannot exist is an unknown id");
}

async fn only_safe_targets_are_accepted(backend: Backend) {
    let app = webhook_app(backend, 3600).await;
    for (url, status) in [
        ("http://example.com/hook", 400),
        ("ftp://example.com/hook", 400),
        ("https://10.1.2.3/hook", 400),
        ("https://169.254.169.254/latest/meta-data", 400),
        ("https://[::ffff:192.168.0.1]/hook", 400),
        ("https://user:pw@example.com/hook", 400),
        ("not a url", 400),
    ] {
        let (got, body) = app.post(&app.a.api_key, "/api/webhooks", json!({"url": url})).await;
        assert_eq!(got, status, "{url}: {body}");
        assert!(body["error"].as_str().unwrap().contains("url"), "{body}");
    }
    let (got, body) =
        app.post(&app.a.api_key, "/api/webhooks", json!({"url": "https://example.com/h", "events": ["nope"]})).await;
    assert_eq!(got, 422);
    assert!(body["error"].as_str().unwrap().contains("unknown event `nope`"));
    let (got, _) = app.post(&app.a.api_key, "/api/webhooks", json!({"url": "https://example.com/h"})).await;
    assert_eq!(got, 201, "a public https target is fine");
    let (_, list) = app.get(&app.a.api_key, "/api/webhooks").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "the refused ones were not stored");
    assert!(list["data"][0].get("secret").is_none(), "the secret is not listed");

    // Without the development setting, loopback over http is refused too.
    let strict = spawn_app_with(backend, |_| {}).await;
    let (got, _) = strict.post(&strict.a.api_key, "/api/webhooks", json!({"url": "http://127.0.0.1:9/hook"})).await;
    assert_eq!(got, 400);
}

async fn a_change_that_rolls_back_emits_nothing(backend: Backend) {
    let app = webhook_app(backend, 3600).await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = subscribe(&app, &receiver.url("/"), json!(["conversation_started"])).await;
    let (status, _) = app.post(&app.a.api_key, "/api/conversations", json!({"external_id": "once"})).await;
    assert_eq!(status, 201);
    // The same external_id violates a unique key: the insert and its event roll back together.
    let (status, _) = app.post(&app.a.api_key, "/api/conversations", json!({"external_id": "once"})).await;
    assert_eq!(status, 409);
    let (status, _) = app.post(&app.a.api_key, "/api/conversations", json!({"external_id": "twice"})).await;
    assert_eq!(status, 201);
    let got = receiver.wait_for(2, WAIT).await;
    let log = log_until(&app, endpoint, |log| log.len() >= 2 && log.iter().all(|d| d["status"] == "delivered")).await;
    assert_eq!(log.len(), 2, "exactly the two committed conversations");
    let ids: Vec<Value> = got.iter().map(|r| r.json()["data"]["external_id"].clone()).collect();
    assert!(ids.contains(&json!("once")) && ids.contains(&json!("twice")));
}

async fn rotation_signs_with_both_secrets_during_the_overlap(backend: Backend) {
    let app = webhook_app(backend, 3600).await;
    let receiver = Receiver::start().await;
    let (endpoint, old) = subscribe(&app, &receiver.url("/"), json!(["conversation_started"])).await;
    let (status, revealed) =
        app.post(&app.a.api_key, &format!("/api/webhooks/{endpoint}/secret/reveal"), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(revealed["secret"], old.as_str());
    let (status, rotated) = app
        .post(&app.a.api_key, &format!("/api/webhooks/{endpoint}/secret/rotate"), json!({"overlap_secs": 600}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated["previous_secret"], old.as_str());
    app.start_conversation().await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("webhook-signature").unwrap().split(' ').count(), 2, "both signatures sent");
    let verdict = verify_with_python(&new, Some(&old), &got[0]);
    assert_eq!(verdict["chatgenius"], true, "{verdict}");
    assert_eq!(verdict["standard"], true, "{verdict}");
    assert_eq!(verdict["previous"], true, "{verdict}");
}

async fn the_log_redelivers_and_replays(backend: Backend) {
    let app = webhook_app(backend, 3600).await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = subscribe(&app, &receiver.url("/"), json!(["conversation_started"])).await;
    app.start_conversation().await;
    app.start_conversation().await;
    receiver.wait_for(2, WAIT).await;
    let log = log_until(&app, endpoint, |log| log.len() == 2 && log.iter().all(|d| d["status"] == "delivered")).await;
    let delivery = log[0]["id"].as_i64().unwrap();
    let (status, one) = app.get(&app.a.api_key, &format!("/api/webhooks/{endpoint}/deliveries/{delivery}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["log"][0]["status_code"], 200);
    assert!(one["log"][0]["latency_ms"].is_i64());

    let (status, _) =
        app.post(&app.a.api_key, &format!("/api/webhooks/{endpoint}/deliveries/{delivery}/redeliver"), json!({})).await;
    assert_eq!(status, 202);
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(got[2].header("webhook-id").unwrap(), one["webhook_id"].as_str().unwrap());

    let (status, replayed) =
        app.post(&app.a.api_key, &format!("/api/webhooks/{endpoint}/replay"), json!({"since": 0})).await;
    assert_eq!(status, 202);
    assert_eq!(replayed["queued"], 2);
    receiver.wait_for(5, WAIT).await;
    let (status, _) =
        app.post(&app.a.api_key, &format!("/api/webhooks/{endpoint}/replay"), json!({"since": "yesterday"})).await;
    assert_eq!(status, 400);
    let (status, _) =
        app.post(&app.a.api_key, &format!("/api/webhooks/{endpoint}/deliveries/999999/redeliver"), json!({})).await;
    assert_eq!(status, 404);
}

async fn zapier_subscriptions_come_and_go(backend: Backend) {
    let app = webhook_app(backend, 3600).await;
    let receiver = Receiver::start().await;
    let (status, sub) = app
        .post(
            &app.a.api_key,
            "/api/hooks/subscribe",
            json!({"target_url": receiver.url("/zap"), "event": "conversation_started"}),
        )
        .await;
    assert_eq!(status, 201, "{sub}");
    let id = sub["id"].as_i64().unwrap();
    app.start_conversation().await;
    assert_eq!(receiver.wait_for(1, WAIT).await[0].json()["event"], "conversation_started");
    let res = app.http.delete(app.url(&format!("/api/hooks/{id}"))).bearer_auth(&app.a.api_key).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let (status, _) = app.get(&app.a.api_key, &format!("/api/webhooks/{id}")).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post(&app.a.api_key, "/api/hooks/subscribe", json!({"target_url": receiver.url("/zap"), "event": "bogus"}))
        .await;
    assert_eq!(status, 422);
}

async fn an_endpoint_failing_too_long_is_disabled_and_the_workspace_told(backend: Backend) {
    let app = webhook_app(backend, 0).await;
    let failing = Receiver::start().await;
    failing.set_default(Reply::status(500));
    let watcher = Receiver::start().await;
    let (failing_id, _) = subscribe(&app, &failing.url("/"), json!(["conversation_started"])).await;
    subscribe(&app, &watcher.url("/"), json!(["webhook_endpoint_disabled"])).await;
    app.start_conversation().await;
    let told = watcher.wait_for(1, WAIT).await;
    let event = told[0].json();
    assert_eq!(event["event"], "webhook_endpoint_disabled");
    assert_eq!(event["data"]["endpoint_id"], failing_id);
    let (_, endpoint) = app.get(&app.a.api_key, &format!("/api/webhooks/{failing_id}")).await;
    assert_eq!(endpoint["active"], false);
    assert!(endpoint["disabled_reason"].as_str().unwrap().contains("failed"));
    // Turning it back on clears the flag.
    let res = app
        .http
        .patch(app.url(&format!("/api/webhooks/{failing_id}")))
        .bearer_auth(&app.a.api_key)
        .json(&json!({"active": true}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["disabled_reason"], Value::Null);
}

async fn another_workspace_cannot_touch_an_endpoint(backend: Backend) {
    let app = webhook_app(backend, 3600).await;
    let (endpoint, _) = subscribe(&app, "https://example.com/a", json!(["*"])).await;
    let b = &app.b.api_key;
    for (method, path, body) in [
        ("GET", format!("/api/webhooks/{endpoint}"), None),
        ("PATCH", format!("/api/webhooks/{endpoint}"), Some(json!({"description": "mine now"}))),
        ("DELETE", format!("/api/webhooks/{endpoint}"), None),
        ("POST", format!("/api/webhooks/{endpoint}/secret/reveal"), None),
        ("POST", format!("/api/webhooks/{endpoint}/secret/rotate"), None),
        ("GET", format!("/api/webhooks/{endpoint}/deliveries"), None),
        ("POST", format!("/api/webhooks/{endpoint}/replay"), Some(json!({"since": 0}))),
        ("DELETE", format!("/api/hooks/{endpoint}"), None),
    ] {
        let mut req = app.http.request(method.parse().unwrap(), app.url(&path)).bearer_auth(b);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 404, "{method} {path}");
    }
    let (_, theirs) = app.get(b, "/api/webhooks").await;
    assert_eq!(theirs["data"], json!([]));
    let (status, mine) = app.get(&app.a.api_key, &format!("/api/webhooks/{endpoint}")).await;
    assert_eq!(status, 200);
    assert_eq!(mine["description"], "");
}

async fn pending_deliveries_survive_a_killed_server(backend: Backend) {
    let db = TestDb::new(backend);
    let mut owned = db.binary_env();
    owned.push(("FRONTDESK_WEBHOOK_ALLOW_LOOPBACK", "true".into()));
    owned.push(("FRONTDESK_WEBHOOK_RETRY_SCHEDULE_MS", "0,100,100,100,100,100,100,100,100,100,100,100".into()));
    owned.push(("FRONTDESK_WEBHOOK_POLL_MS", "50".into()));
    // The killed node's claim lapses after the timeout plus 5 s; then the new node sends it.
    owned.push(("FRONTDESK_WEBHOOK_TIMEOUT_SECS", "1".into()));
    let envs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = run_cli(&["workspace", "create", "--name", "Hooked"], &envs);
    let key = created["api_key"].as_str().unwrap().to_owned();
    let port = Receiver::start().await.stop().await;
    let http = reqwest::Client::new();

    let (mut server, base) = spawn_binary(&envs);
    let (status, endpoint) = status_json(
        http.post(format!("{base}/api/webhooks"))
            .bearer_auth(&key)
            .json(&json!({"url": format!("http://127.0.0.1:{port}/"), "events": ["conversation_started"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{endpoint}");
    let (status, conversation) = status_json(
        http.post(format!("{base}/api/conversations")).bearer_auth(&key).json(&json!({})).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    server.kill().unwrap(); // with the delivery still pending: the receiver is down
    server.wait().unwrap();

    let receiver = Receiver::start_on(port).await;
    let (mut server, _) = spawn_binary(&envs);
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["data"]["conversation_id"], conversation["id"]);
    server.kill().unwrap();
    server.wait().unwrap();
}

async fn two_nodes_on_one_database_send_each_event_once(backend: Backend) {
    let db = TestDb::new(backend);
    let mut owned = db.binary_env();
    owned.push(("FRONTDESK_WEBHOOK_ALLOW_LOOPBACK", "true".into()));
    owned.push(("FRONTDESK_WEBHOOK_POLL_MS", "20".into()));
    let envs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let key = run_cli(&["workspace", "create", "--name", "Twins"], &envs)["api_key"].as_str().unwrap().to_owned();
    let receiver = Receiver::start().await;
    let (mut first, first_base) = spawn_binary(&envs);
    let (mut second, second_base) = spawn_binary(&envs);
    let http = reqwest::Client::new();
    let (status, endpoint) = status_json(
        http.post(format!("{first_base}/api/webhooks"))
            .bearer_auth(&key)
            .json(&json!({"url": receiver.url("/"), "events": ["conversation_started"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{endpoint}");
    const EVENTS: usize = 30;
    let creations = (0..EVENTS).map(|i| {
        let base = if i % 2 == 0 { &first_base } else { &second_base };
        http.post(format!("{base}/api/conversations")).bearer_auth(&key).json(&json!({})).send()
    });
    for response in futures::future::join_all(creations).await {
        assert_eq!(response.unwrap().status(), 201);
    }
    let got = receiver.wait_for(EVENTS, WAIT).await;
    let ids: std::collections::HashSet<String> =
        got.iter().map(|r| r.json()["data"]["conversation_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), EVENTS);
    // Every delivery was attempted exactly once, by one node or the other.
    let endpoint_id = endpoint["id"].as_i64().unwrap();
    // The receiver sees a request before the sender has logged its answer: wait for the log.
    let mut deliveries = Vec::new();
    for _ in 0..200 {
        let (_, log) = status_json(
            http.get(format!("{first_base}/api/webhooks/{endpoint_id}/deliveries?limit=100"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        deliveries = log["data"].as_array().unwrap().clone();
        if deliveries.iter().all(|d| d["status"] == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(deliveries.len(), EVENTS);
    for delivery in &deliveries {
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(delivery["log"].as_array().unwrap().len(), 1, "sent once: {delivery}");
    }
    assert_eq!(receiver.received().len(), EVENTS, "no event arrived twice");
    for server in [&mut first, &mut second] {
        server.kill().unwrap();
        server.wait().unwrap();
    }
}

async fn an_idempotent_create_never_stores_the_secret_in_clear(backend: Backend) {
    use diesel::prelude::*;
    use frontdesk::storage::schema::idempotency_keys;
    let app = webhook_app(backend, 3600).await;
    let create = || {
        app.http
            .post(app.url("/api/webhooks"))
            .bearer_auth(&app.a.api_key)
            .header("Idempotency-Key", "hook-1")
            .json(&json!({"url": "https://example.com/in"}))
            .send()
    };
    let first: Value = create().await.unwrap().json().await.unwrap();
    let again = create().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    let secret = first["secret"].as_str().expect("secret on creation").to_owned();
    assert_eq!(again["secret"], secret.as_str(), "the replay shows the same secret");
    assert_eq!(again["id"], first["id"]);
    let stored: Vec<String> = tokio::task::spawn_blocking(move || {
        let db = app.database();
        let mut conn = db.conn().unwrap();
        frontdesk::on_backend!(&mut *conn, c => idempotency_keys::table
            .select(idempotency_keys::response_body)
            .load::<String>(c)
            .unwrap())
    })
    .await
    .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&secret), "no secret at rest in clear: {}", stored[0]);
}

async fn an_event_emitted_in_a_failed_transaction_is_gone_with_it(backend: Backend) {
    use diesel::prelude::*;
    use frontdesk::storage::outbox;
    use frontdesk::storage::schema::{webhook_deliveries, webhook_events};
    use frontdesk::storage::{write_tx, DbError};
    let app = webhook_app(backend, 3600).await;
    subscribe(&app, "https://example.com/in", json!(["*"])).await;
    let workspace = app.a.workspace_id;
    let (events, deliveries) = tokio::task::spawn_blocking(move || {
        let db = app.database();
        let mut conn = db.conn().unwrap();
        let failed = write_tx(&mut conn, |conn| {
            let queued = outbox::emit(conn, workspace, "new_lead", json!({"lead_id": 1}), 0)?;
            assert!(queued, "the endpoint subscribes: the event is queued inside the transaction");
            Err::<(), _>(DbError::Invalid("the change failed after its event was written".into()))
        });
        assert!(failed.is_err());
        write_tx(&mut conn, |conn| outbox::emit(conn, workspace, "new_patient", json!({"patient_id": 2}), 0)).unwrap();
        frontdesk::on_backend!(&mut *conn, c => (
            webhook_events::table.select(webhook_events::event_type).load::<String>(c).unwrap(),
            webhook_deliveries::table.count().get_result::<i64>(c).unwrap(),
        ))
    })
    .await
    .unwrap();
    assert_eq!(events, vec!["new_patient".to_owned()], "the rolled-back event is gone, the committed one is there");
    assert_eq!(deliveries, 1);
}
