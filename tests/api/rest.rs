//! REST chat: send and get the reply, long-poll, dedup, close, bot settings, probes.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    send_returns_the_stored_message_and_the_reply,
    long_poll_waits_for_the_next_message,
    long_poll_without_news_returns_an_empty_page,
    resending_a_client_msg_id_returns_the_same_message,
    a_closed_conversation_takes_no_messages,
    bot_settings_change_the_answers,
    pages_follow_the_cursor,
    probes_report_health_and_readiness,
);

async fn send_returns_the_stored_message_and_the_reply(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation = app.start_conversation().await;
    let (status, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}")).await;
    assert_eq!(status, 200);
    assert_eq!(view["status"], "open");
    assert_eq!(view["bot_id"], app.a.bot_id.as_str());
    assert_eq!(view["last_seq"], 1, "the welcome message is seq 1");

    let body = app.say(&conversation, "How much is teeth whitening?").await;
    assert_eq!(body["duplicate"], false);
    assert_eq!(body["message"]["seq"], 2);
    assert_eq!(body["message"]["sender"], "visitor");
    assert_eq!(body["reply"]["seq"], 3);
    assert_eq!(body["reply"]["sender"], "bot");
    assert_eq!(body["reply"]["reply_to"], body["message"]["id"]);
    assert!(body["reply"]["content"].as_str().unwrap().contains("$350"), "{body}");

    let hello = app.say(&conversation, "hi there").await;
    assert_eq!(hello["reply"]["content"], "Hello! How can I help you today?");
    let unknown = app.say(&conversation, "Do you repair bicycles?").await;
    assert!(unknown["reply"]["content"].as_str().unwrap().starts_with("I'm not sure"), "{unknown}");
}

async fn long_poll_waits_for_the_next_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation = app.start_conversation().await;
    let poll = {
        let http = app.http.clone();
        let url = app.url(&format!("/api/conversations/{conversation}/messages?after=1&wait=30"));
        let key = app.a.api_key.clone();
        tokio::spawn(
            async move { http.get(url).bearer_auth(key).send().await.unwrap().json::<serde_json::Value>().await },
        )
    };
    // The message is sent only once the server says the poll found nothing and is waiting.
    polls_waiting_reaches(&app, 1).await;
    assert!(!poll.is_finished(), "the poll waits while there is nothing new");
    app.say(&conversation, "Hello").await;
    let page = poll.await.unwrap().unwrap();
    let messages = page["messages"].as_array().unwrap();
    assert!(!messages.is_empty(), "the poll returns the new message: {page}");
    assert_eq!(messages[0]["seq"], 2);
    assert_eq!(messages[0]["content"], "Hello");
    assert_eq!(page["next_after"], messages.last().unwrap()["seq"]);
    assert_eq!(polls_waiting(&app).await, 0, "the answered poll waits no more");
}

/// `frontdesk_long_polls_waiting` of the server's `/metrics`.
async fn polls_waiting(app: &TestApp) -> u64 {
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("frontdesk_long_polls_waiting{"))
        .unwrap_or_else(|| panic!("frontdesk_long_polls_waiting in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Waits until `count` long polls wait on the server (asking again every few milliseconds; the
/// deadline only keeps a broken server from hanging the test).
async fn polls_waiting_reaches(app: &TestApp, count: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while polls_waiting(app).await < count {
        assert!(tokio::time::Instant::now() < deadline, "no long poll ever waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn long_poll_without_news_returns_an_empty_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation = app.start_conversation().await;
    let (status, page) =
        app.get(&app.a.api_key, &format!("/api/conversations/{conversation}/messages?after=1&wait=1")).await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"], json!([]));
    assert_eq!(page["next_after"], 1);
    assert_eq!(page["has_more"], false);
}

async fn resending_a_client_msg_id_returns_the_same_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation = app.start_conversation().await;
    let path = format!("/api/conversations/{conversation}/messages");
    let body = json!({"text": "Where are you located?", "client_msg_id": "retry-1"});
    let (first_status, first) = app.post(&app.a.api_key, &path, body.clone()).await;
    let (second_status, second) = app.post(&app.a.api_key, &path, body).await;
    assert_eq!(first_status, 201);
    assert_eq!(second_status, 200, "a resend is not a creation");
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["message"]["id"], first["message"]["id"]);
    assert_eq!(second["reply"]["id"], first["reply"]["id"], "the resend gets the same reply");
    assert_eq!(app.messages(&conversation).await.len(), 3);

    // Concurrent resends of one new id store it once.
    let sends = (0..8).map(|_| app.post(&app.a.api_key, &path, json!({"text": "Parking?", "client_msg_id": "burst"})));
    let results = futures::future::join_all(sends).await;
    let ids: std::collections::HashSet<i64> =
        results.iter().map(|(_, b)| b["message"]["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1);
    assert_eq!(app.messages(&conversation).await.len(), 5);
}

async fn a_closed_conversation_takes_no_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation = app.start_conversation().await;
    let (status, closed) =
        app.post(&app.a.api_key, &format!("/api/conversations/{conversation}/close"), json!({})).await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["status"], "closed");
    assert!(closed["closed_at"].is_i64());
    let (status, error) = app
        .post(&app.a.api_key, &format!("/api/conversations/{conversation}/messages"), json!({"text": "hello?"}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(error["error"], "conversation is closed");
    assert_eq!(app.messages(&conversation).await.len(), 1);
}

async fn bot_settings_change_the_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let path = format!("/api/bots/{}", app.a.bot_id);
    let (status, bot) = app.get(&app.a.api_key, &path).await;
    assert_eq!(status, 200);
    assert_eq!(bot["id"], app.a.bot_id.as_str());
    let mut settings = bot["settings"].clone();
    settings["company_facts"] = json!([{"title": "Wifi password", "content": "The guest wifi password is smile2026."}]);
    settings["welcome_message"] = json!("Welcome to the new front desk!");
    let res = app
        .http
        .patch(app.url(&path))
        .bearer_auth(&app.a.api_key)
        .json(&json!({"settings": settings}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let conversation = app.start_conversation().await;
    assert_eq!(app.messages(&conversation).await[0]["content"], "Welcome to the new front desk!");
    let answer = app.say(&conversation, "what is the wifi password?").await;
    assert_eq!(answer["reply"]["content"], "The guest wifi password is smile2026.");

    let res = app
        .http
        .patch(app.url(&path))
        .bearer_auth(&app.a.api_key)
        .json(&json!({"settings": {"nonsense": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "unknown settings are refused");

    let (status, created) = app.post(&app.a.api_key, "/api/bots", json!({"name": "Second desk"})).await;
    assert_eq!(status, 201, "{created}");
    let (_, list) = app.get(&app.a.api_key, "/api/bots").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

async fn pages_follow_the_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation = app.start_conversation().await;
    for text in ["one", "two", "three"] {
        app.say(&conversation, text).await;
    }
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let (status, page) =
            app.get(&app.a.api_key, &format!("/api/conversations/{conversation}/messages?after={after}&limit=2")).await;
        assert_eq!(status, 200);
        seen.extend(page["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()));
        after = page["next_after"].as_i64().unwrap();
        if page["has_more"] == false {
            break;
        }
    }
    assert_eq!(seen, (1..=7).collect::<Vec<_>>());
}

async fn probes_report_health_and_readiness(backend: Backend) {
    let app = spawn_app(backend).await;
    let health: serde_json::Value = app.http.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["database"], if backend == Backend::Sqlite { "sqlite" } else { "postgres" });
}
