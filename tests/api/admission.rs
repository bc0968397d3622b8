//! Admission control at the door, in figures: a burst of widget hellos from one address gets
//! exactly its quota of conversations; `X-Forwarded-For` counts only from a trusted proxy; a
//! message flood on one socket is refused and the socket closed; a conversation's own quota
//! holds across sockets; typing frames reach the conversation once per interval; workspace tokens, external keys and public routes answer 429 past
//! their quotas; a flood of messages while the bot is busy costs at most the queued-turn cap
//! of brain calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app_with, Backend, TestApp, Widget};
use crate::on_both_backends;
use crate::sse::Events;

on_both_backends!(
    a_burst_of_hellos_from_one_address_gets_exactly_its_quota_of_conversations,
    forwarded_for_counts_only_from_a_trusted_proxy,
    a_message_flood_on_one_socket_is_refused_and_then_the_socket_is_closed,
    a_conversation_quota_holds_across_its_sockets,
    credentials_and_public_routes_answer_429_past_their_quotas,
    a_flood_while_the_bot_is_busy_costs_at_most_the_queued_turn_cap,
    typing_frames_are_coalesced_per_socket,
);

/// A widget socket whose requests say they were forwarded for `forwarded_for`.
async fn widget_from(app: &TestApp, forwarded_for: Option<&str>) -> Widget {
    let mut request = app.ws_url.as_str().into_client_request().unwrap();
    if let Some(address) = forwarded_for {
        request.headers_mut().insert("x-forwarded-for", HeaderValue::from_str(address).unwrap());
    }
    let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket connects");
    Widget { socket }
}

/// The answer to a hello without a conversation id: `ready` or `error`.
async fn hello(widget: &mut Widget, bot_id: &str) -> Value {
    widget.send(json!({ "type": "hello", "bot_id": bot_id })).await;
    widget.next().await
}

/// How many conversations workspace A has.
async fn conversations(app: &TestApp) -> usize {
    let (status, body) = app.get(&app.a.api_key, "/api/conversations?limit=200").await;
    assert_eq!(status, 200, "{body}");
    body["conversations"].as_array().unwrap().len()
}

async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{name}{{"))).unwrap_or_else(|| panic!("{name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn assert_rate_limited(frame: &Value) {
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], "rate_limited", "{frame}");
    assert!(frame["retry_after"].as_u64().is_some_and(|s| s >= 1), "{frame}");
}

async fn a_burst_of_hellos_from_one_address_gets_exactly_its_quota_of_conversations(backend: Backend) {
    let app = spawn_app_with(backend, |args| args.admission.widget_conversations_per_minute = Some(3)).await;
    let mut answers = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..8 {
        let mut widget = Widget::connect(&app).await;
        answers.push(hello(&mut widget, &app.a.bot_id).await);
        sockets.push(widget);
    }
    let ready: Vec<&Value> = answers.iter().filter(|a| a["type"] == "ready").collect();
    assert_eq!(ready.len(), 3, "{answers:?}");
    for refused in answers.iter().filter(|a| a["type"] != "ready") {
        assert_rate_limited(refused);
        assert!(refused["error"].as_str().unwrap().contains("new conversations from this address"), "{refused}");
    }
    assert_eq!(conversations(&app).await, 3, "a refused hello creates nothing");
    assert_eq!(metric(&app, "frontdesk_admission_conversations_refused_total").await, 5);

    // Resuming is not a new conversation: it is admitted over the quota.
    let id = ready[0]["conversation_id"].as_str().unwrap();
    let mut again = Widget::connect(&app).await;
    let resumed = again.hello(&app.a.bot_id, Some(id), Some(1)).await;
    assert_eq!(resumed["resumed"], true);
    // A refused socket stays usable: its next hello is answered (refused again, the quota is full).
    assert_rate_limited(&hello(&mut sockets[7], &app.a.bot_id).await);
    assert_eq!(conversations(&app).await, 3);
}

async fn forwarded_for_counts_only_from_a_trusted_proxy(backend: Backend) {
    // From an untrusted peer the header is the client's claim: every hello is 127.0.0.1's.
    let app = spawn_app_with(backend, |args| args.admission.widget_conversations_per_minute = Some(2)).await;
    let mut kinds = Vec::new();
    for address in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let mut widget = widget_from(&app, Some(address)).await;
        kinds.push(hello(&mut widget, &app.a.bot_id).await["type"].clone());
    }
    assert_eq!(kinds, ["ready", "ready", "error"]);
    assert_eq!(conversations(&app).await, 2);
    drop(app);

    // Behind a trusted proxy each forwarded address has its own quota.
    let app = spawn_app_with(backend, |args| {
        args.admission.widget_conversations_per_minute = Some(2);
        args.admission.trusted_proxies = Some("127.0.0.1/32".into());
    })
    .await;
    let mut kinds = Vec::new();
    for address in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.1", "203.0.113.1"] {
        let mut widget = widget_from(&app, Some(address)).await;
        kinds.push(hello(&mut widget, &app.a.bot_id).await["type"].clone());
    }
    assert_eq!(kinds, ["ready", "ready", "ready", "ready", "error"]);
    // What the client put left of the proxy's own entry is not believed.
    let mut spoofed = widget_from(&app, Some("198.51.100.7, 203.0.113.1")).await;
    assert_rate_limited(&hello(&mut spoofed, &app.a.bot_id).await);
    assert_eq!(conversations(&app).await, 4);
}

/// Every frame until the server closes the socket, and the close code.
async fn frames_until_closed(widget: &mut Widget) -> (Vec<Value>, Option<u16>) {
    let mut frames = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), widget.socket.next()).await.expect("a frame in 20 s");
        match next {
            Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(reason))) => return (frames, reason.map(|r| u16::from(r.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return (frames, None),
        }
    }
}

async fn a_message_flood_on_one_socket_is_refused_and_then_the_socket_is_closed(backend: Backend) {
    let app = spawn_app_with(backend, |args| {
        args.admission.socket_messages_per_minute = Some(3);
        args.admission.socket_strikes = Some(3);
    })
    .await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    for i in 0..10 {
        widget.send(json!({ "type": "message", "client_msg_id": format!("m{i}"), "text": format!("hello {i}") })).await;
    }
    let (frames, close) = frames_until_closed(&mut widget).await;
    let acked: Vec<&str> =
        frames.iter().filter(|f| f["type"] == "ack").map(|f| f["client_msg_id"].as_str().unwrap()).collect();
    assert_eq!(acked, ["m0", "m1", "m2"]);
    let refused: Vec<&Value> = frames.iter().filter(|f| f["type"] == "error").collect();
    assert_eq!(refused.iter().map(|f| f["client_msg_id"].as_str().unwrap()).collect::<Vec<_>>(), ["m3", "m4", "m5"]);
    for frame in &refused {
        assert_rate_limited(frame);
    }
    assert_eq!(close, Some(1008), "closed as a policy violation after three refusals in a row");

    let stored = app.messages(&conversation).await;
    let visitor: Vec<&str> =
        stored.iter().filter(|m| m["sender"] == "visitor").map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(visitor, ["hello 0", "hello 1", "hello 2"], "nothing refused was stored");
    assert_eq!(metric(&app, "frontdesk_admission_messages_refused_total").await, 3);
    assert_eq!(metric(&app, "frontdesk_admission_sockets_closed_total").await, 1);
}

async fn a_conversation_quota_holds_across_its_sockets(backend: Backend) {
    let app = spawn_app_with(backend, |args| args.admission.conversation_messages_per_minute = Some(2)).await;
    let mut first = Widget::connect(&app).await;
    let ready = first.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    for i in 0..2 {
        first.send(json!({ "type": "message", "client_msg_id": format!("a{i}"), "text": "hi" })).await;
        let ack = first.until("ack").await.pop().unwrap();
        assert_eq!(ack["client_msg_id"], format!("a{i}"));
    }
    // A second tab on the same conversation shares its quota.
    let mut second = Widget::connect(&app).await;
    second.hello(&app.a.bot_id, Some(&conversation), None).await;
    second.send(json!({ "type": "message", "client_msg_id": "b0", "text": "and me?" })).await;
    let refused = second.until("error").await.pop().unwrap();
    assert_rate_limited(&refused);
    assert!(refused["error"].as_str().unwrap().contains("in this conversation"), "{refused}");
    assert_eq!(refused["client_msg_id"], "b0");
    let visitor = app.messages(&conversation).await.into_iter().filter(|m| m["sender"] == "visitor").count();
    assert_eq!(visitor, 2);
}

async fn credentials_and_public_routes_answer_429_past_their_quotas(backend: Backend) {
    let app = spawn_app_with(backend, |args| {
        args.admission.workspace_token_rate_limit_per_minute = Some(3);
        args.admission.external_key_rate_limit_per_minute = Some(2);
    })
    .await;
    let list = |token: &str| app.url(&format!("/api/v2/public-api/customer-list?workspace_token={token}"));
    for _ in 0..3 {
        let res = app.http.get(list(&app.a.workspace_token)).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = app.http.get(list(&app.a.workspace_token)).send().await.unwrap();
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert!(body["error"].as_str().unwrap().contains("workspace_token"), "{body}");
    // Another workspace's token has its own quota; a wrong token is still 401, not counted.
    assert_eq!(app.http.get(list(&app.b.workspace_token)).send().await.unwrap().status(), 200);
    assert_eq!(app.http.get(list("wrong")).send().await.unwrap().status(), 401);

    // The external key: counted once it is known valid, before the booking is looked at.
    let booking = |key: &str| json!({ "api_key": key, "customer_name": "Ann", "date": "not a date" });
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let res = app.http.post(app.url("/api/external/booking")).json(&booking(&app.a.external_api_key)).send();
        statuses.push(res.await.unwrap().status().as_u16());
    }
    assert_ne!(statuses[0], 429);
    assert_ne!(statuses[1], 429);
    assert_eq!(statuses[2], 429, "{statuses:?}");
    drop(app);

    // Routes without an API key are counted per client address.
    let app = spawn_app_with(backend, |args| args.admission.public_rate_limit_per_minute = Some(4)).await;
    let mut statuses = Vec::new();
    let mut remaining = Vec::new();
    for _ in 0..6 {
        let url = app.url(&format!("/api/doctors/public?admin_id={}", app.a.public_id));
        let res = app.http.get(url).send().await.unwrap();
        statuses.push(res.status().as_u16());
        // Every answer tells the address what is left of its quota and when it is whole again.
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        assert_eq!(header("x-ratelimit-limit"), Some(4), "{:?}", res.headers());
        assert!(header("x-ratelimit-reset").is_some(), "{:?}", res.headers());
        remaining.push(header("x-ratelimit-remaining").expect("x-ratelimit-remaining"));
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
    assert_eq!(remaining, [3, 2, 1, 0, 0, 0]);
    // The keyless booking route too, refused by the same address quota here.
    let res = app.http.post(app.url("/api/external/booking")).json(&json!({"api_key": "wrong"})).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers().get("x-ratelimit-remaining").map(|v| v.to_str().unwrap()), Some("0"));
    // The API key's routes are not the address's: they go on.
    let (status, _) = app.get(&app.a.api_key, "/api/workspace").await;
    assert_eq!(status, 200);
    assert_eq!(metric(&app, "frontdesk_admission_public_refused_total").await, 3);
}

/// An OpenAI-compatible model that answers each request only when the test opens its gate
/// (one permit per request), echoing the last user message.
struct GatedModel {
    url: String,
    gate: Arc<tokio::sync::Semaphore>,
    served: Arc<AtomicUsize>,
}

impl GatedModel {
    async fn start() -> GatedModel {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let served = Arc::new(AtomicUsize::new(0));
        let (gate_, served_) = (gate.clone(), served.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (gate, served) = (gate_.clone(), served_.clone());
                tokio::spawn(async move {
                    let Some(body) = read_body(&mut stream).await else { return };
                    served.fetch_add(1, Ordering::SeqCst);
                    gate.acquire().await.unwrap().forget();
                    let last = body["messages"]
                        .as_array()
                        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
                        .and_then(|m| m["content"].as_str())
                        .unwrap_or_default()
                        .to_owned();
                    let chunk = |delta: Value, finish: Value| {
                        let chunk = json!({ "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gated",
                            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] });
                        format!("data: {chunk}\n\n")
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{}{}data: [DONE]\n\n",
                        chunk(json!({ "content": format!("answer to {last}") }), Value::Null),
                        chunk(json!({}), json!("stop")),
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        GatedModel { url, gate, served }
    }
}

async fn read_body(stream: &mut tokio::net::TcpStream) -> Option<Value> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return serde_json::from_slice(&data[end + 4..end + 4 + length]).ok();
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

async fn a_flood_while_the_bot_is_busy_costs_at_most_the_queued_turn_cap(backend: Backend) {
    let model = GatedModel::start().await;
    let url = model.url.clone();
    let app = spawn_app_with(backend, move |args| {
        args.openai_base_url = Some(url);
        args.openai_api_key = Some("sk-test-key".into());
        args.model = Some("test-model".into());
        args.model_timeout_secs = Some(60);
        args.admission.max_queued_turns = Some(2);
    })
    .await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    widget.until("done").await; // the welcome

    // m0 is being answered (the model holds it); m1 and m2 wait; m3 to m6 join m2's turn.
    let mut ids = Vec::new();
    for i in 0..7 {
        widget.send(json!({ "type": "message", "client_msg_id": format!("m{i}"), "text": format!("m{i}") })).await;
        let ack = widget.until("ack").await.pop().unwrap();
        ids.push(ack["message"]["id"].as_i64().unwrap());
    }
    model.gate.add_permits(100);
    let mut done = Vec::new();
    while done.len() < 3 {
        let frame = widget.next().await;
        if frame["type"] == "done" {
            done.push(frame["message"].clone());
        }
    }
    let answered: Vec<(i64, &str)> =
        done.iter().map(|m| (m["reply_to"].as_i64().unwrap(), m["content"].as_str().unwrap())).collect();
    assert_eq!(answered, [(ids[0], "answer to m0"), (ids[1], "answer to m1"), (ids[6], "answer to m6")]);

    // The next message is the very next turn: no other turn of the flood was left waiting.
    widget.send(json!({ "type": "message", "client_msg_id": "m7", "text": "m7" })).await;
    let m7 = widget.until("ack").await.pop().unwrap()["message"]["id"].as_i64().unwrap();
    let reply = widget.until("done").await.pop().unwrap();
    assert_eq!(reply["message"]["reply_to"], m7);
    assert_eq!(model.served.load(Ordering::SeqCst), 4, "four brain calls for eight messages");

    let stored = app.messages(&conversation).await;
    assert_eq!(stored.iter().filter(|m| m["sender"] == "visitor").count(), 8, "every message is stored");
    assert_eq!(stored.iter().filter(|m| m["sender"] == "bot").count(), 1 + 4, "the welcome and four replies");
    assert!(metric(&app, "frontdesk_turns_coalesced_total").await >= 4);
}

async fn typing_frames_are_coalesced_per_socket(backend: Backend) {
    // An interval longer than the test: only the first typing frame can reach the session.
    let app = spawn_app_with(backend, |args| args.admission.typing_interval_ms = Some(600_000)).await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    let mut events = Events::open_at(&app, &format!("/api/conversations/{conversation}/events"), None).await;
    for i in 0..10 {
        widget.send(json!({ "type": "typing", "on": i % 2 == 0 })).await;
    }
    widget.send(json!({ "type": "message", "text": "hello" })).await;
    let mut typing = Vec::new();
    loop {
        let (_, kind, data) = events.next().await;
        match kind.as_str() {
            "typing" => typing.push(data["on"].clone()),
            "done" if data["message"]["reply_to"].is_i64() => break,
            _ => {}
        }
    }
    assert_eq!(typing, [json!(true)], "one typing event for ten frames");
    // Of the other nine, the first is held for the end of the interval and eight merged into it.
    assert_eq!(metric(&app, "frontdesk_admission_frames_coalesced_total").await, 8);
}
