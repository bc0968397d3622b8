//! The model brain against a scripted OpenAI-compatible server on loopback: a grounded reply
//! streamed token by token to the widget and stored with its usage and citations; failures
//! retried once, then answered by the built-in brain; the monthly cap; a takeover that cuts the
//! model off mid-stream.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{spawn_app_with, Backend, TestApp, Widget};
use crate::knowledge::{add, learned};
use crate::on_both_backends;

on_both_backends!(
    a_grounded_reply_streams_token_by_token_and_is_stored_with_its_usage,
    failures_are_retried_once_then_the_builtin_brain_answers,
    the_monthly_cap_hands_visitors_to_the_builtin_brain,
    a_takeover_cuts_the_model_off_mid_stream,
    the_model_books_through_its_tools_and_the_booking_fires_its_webhook,
    tool_rounds_are_capped_and_hand_overs_and_foreign_bookings_are_guarded,
    emails_and_phones_never_reach_the_model_when_redaction_is_on,
);

/// What the scripted server does with the next request.
#[derive(Clone)]
pub(crate) enum Script {
    /// Streams these pieces, `gap` apart, then a finish reason and (optionally) usage.
    Reply { pieces: Vec<String>, gap: Duration, usage: Option<(i64, i64)> },
    /// Answers with this status and an OpenAI-style error.
    Status(u16),
    /// A stream with no content and no finish reason.
    Empty,
    /// Accepts and never answers: holds the request open until the client goes away.
    Hang,
    /// Asks for these tool calls `(id, name, arguments)`, the arguments split across pieces;
    /// `repeat` sends the id and name again in every piece, as some local servers do.
    Tools { calls: Vec<(String, String, Value)>, repeat: bool },
    /// Waits until the gate is opened (`notify_one`), then does the inner step.
    Gated(Arc<tokio::sync::Notify>, Box<Script>),
}

pub(crate) fn tools(calls: &[(&str, &str, Value)], repeat: bool) -> Script {
    Script::Tools {
        calls: calls.iter().map(|(id, name, args)| (id.to_string(), name.to_string(), args.clone())).collect(),
        repeat,
    }
}

pub(crate) fn reply(pieces: &[&str], usage: Option<(i64, i64)>) -> Script {
    Script::Reply { pieces: pieces.iter().map(|p| p.to_string()).collect(), gap: Duration::from_millis(20), usage }
}

#[derive(Default)]
struct Seen {
    requests: Vec<(Option<String>, Value)>,
}

pub(crate) struct ScriptedModel {
    addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Script>>>,
    seen: Arc<Mutex<Seen>>,
    served: Arc<AtomicUsize>,
    /// How many requests' clients went away before the answer ended, as it happens.
    abandoned: tokio::sync::watch::Receiver<usize>,
}

impl ScriptedModel {
    pub(crate) async fn start() -> ScriptedModel {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script: Arc<Mutex<VecDeque<Script>>> = Arc::default();
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let served = Arc::new(AtomicUsize::new(0));
        let (abandon, abandoned) = tokio::sync::watch::channel(0usize);
        let abandon = Arc::new(abandon);
        let (script_, seen_, served_) = (script.clone(), seen.clone(), served.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (script, seen, served, abandon) =
                    (script_.clone(), seen_.clone(), served_.clone(), abandon.clone());
                tokio::spawn(async move {
                    let Some((authorization, body)) = read_request(&mut stream).await else { return };
                    seen.lock().unwrap().requests.push((authorization, body));
                    served.fetch_add(1, Ordering::SeqCst);
                    let next = script.lock().unwrap().pop_front().unwrap_or_else(|| reply(&["(unscripted)"], None));
                    if !serve(&mut stream, next).await {
                        abandon.send_modify(|n| *n += 1);
                    }
                });
            }
        });
        ScriptedModel { addr, script, seen, served, abandoned }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub(crate) fn push(&self, steps: impl IntoIterator<Item = Script>) {
        self.script.lock().unwrap().extend(steps);
    }

    pub(crate) fn requests(&self) -> Vec<(Option<String>, Value)> {
        self.seen.lock().unwrap().requests.clone()
    }

    fn abandoned(&self) -> usize {
        *self.abandoned.borrow()
    }

    /// Waits until `count` requests in all were abandoned by their client (the server under
    /// test dropped them). The timeout only keeps a broken server from hanging the test.
    async fn abandoned_reaches(&self, count: usize) {
        let mut abandoned = self.abandoned.clone();
        let reached = tokio::time::timeout(Duration::from_secs(60), abandoned.wait_for(|n| *n >= count)).await;
        assert!(
            matches!(reached, Ok(Ok(_))),
            "the server never dropped the model's request ({} of {count})",
            self.abandoned()
        );
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<(Option<String>, Value)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let header = |name: &str| {
                head.lines().find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
                })
            };
            let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            if data.len() >= end + 4 + length {
                let body = serde_json::from_slice(&data[end + 4..end + 4 + length]).ok()?;
                return Some((header("authorization"), body));
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// Writes the scripted answer; `false` when the client went away first.
async fn serve(stream: &mut tokio::net::TcpStream, script: Script) -> bool {
    let chunk = |delta: Value, finish: Value, usage: Value| {
        let mut chunk = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "scripted-model-v1",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        });
        if !usage.is_null() {
            chunk["usage"] = usage;
        }
        format!("data: {chunk}\n\n")
    };
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";
    match script {
        Script::Gated(gate, inner) => {
            gate.notified().await;
            Box::pin(serve(stream, *inner)).await
        }
        Script::Status(code) => {
            let body = json!({ "error": { "message": "scripted failure", "type": "server_error" } }).to_string();
            let response = format!(
                "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).await.is_ok()
        }
        Script::Hang => {
            let mut byte = [0u8; 1];
            loop {
                match stream.read(&mut byte).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => continue,
                }
            }
        }
        Script::Empty => {
            let body =
                format!("{head}{}data: [DONE]\n\n", chunk(json!({ "role": "assistant" }), Value::Null, Value::Null));
            stream.write_all(body.as_bytes()).await.is_ok()
        }
        Script::Tools { calls, repeat } => {
            let mut body = head.to_owned();
            for (index, (id, name, arguments)) in calls.iter().enumerate() {
                let text = arguments.to_string();
                let (first, second) = text.split_at(text.len() / 2);
                for (n, piece) in [first, second].into_iter().enumerate() {
                    let mut call = json!({ "index": index, "function": { "arguments": piece } });
                    if n == 0 || repeat {
                        call["id"] = json!(id);
                        call["type"] = json!("function");
                        call["function"]["name"] = json!(name);
                    }
                    body.push_str(&chunk(json!({ "tool_calls": [call] }), Value::Null, Value::Null));
                }
            }
            body.push_str(&chunk(json!({}), json!("tool_calls"), Value::Null));
            body.push_str(&chunk_usage(json!({ "prompt_tokens": 40, "completion_tokens": 10, "total_tokens": 50 })));
            body.push_str("data: [DONE]\n\n");
            stream.write_all(body.as_bytes()).await.is_ok()
        }
        Script::Reply { pieces, gap, usage } => {
            if stream.write_all(head.as_bytes()).await.is_err() {
                return false;
            }
            for piece in pieces {
                tokio::time::sleep(gap).await;
                let frame = chunk(json!({ "content": piece }), Value::Null, Value::Null);
                if stream.write_all(frame.as_bytes()).await.is_err() || stream.flush().await.is_err() {
                    return false;
                }
            }
            let usage = usage.map_or(Value::Null, |(prompt, completion)| {
                json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion })
            });
            let end = format!("{}{}data: [DONE]\n\n", chunk(json!({}), json!("stop"), Value::Null), chunk_usage(usage));
            stream.write_all(end.as_bytes()).await.is_ok()
        }
    }
}

/// The final usage-only chunk OpenAI sends with `include_usage` (no choices).
fn chunk_usage(usage: Value) -> String {
    if usage.is_null() {
        return String::new();
    }
    let chunk = json!({ "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "scripted-model-v1", "choices": [], "usage": usage });
    format!("data: {chunk}\n\n")
}

pub(crate) async fn app(
    backend: Backend,
    model: &ScriptedModel,
    configure: impl FnOnce(&mut frontdesk::config::SettingsArgs),
) -> TestApp {
    let url = model.url();
    spawn_app_with(backend, move |args| {
        args.openai_base_url = Some(url);
        args.openai_api_key = Some("sk-test-key".into());
        args.model = Some("test-model".into());
        args.model_timeout_secs = Some(2);
        args.agent_silence_secs = Some(0);
        configure(args);
    })
    .await
}

async fn ask(app: &TestApp, conversation: &str, text: &str) -> Value {
    let reply = app.say(conversation, text).await;
    reply["reply"].clone()
}

async fn usage(app: &TestApp) -> Value {
    let (status, body) = app.get(&app.a.api_key, "/api/usage").await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn a_grounded_reply_streams_token_by_token_and_is_stored_with_its_usage(backend: Backend) {
    let model = ScriptedModel::start().await;
    let app = app(backend, &model, |_| {}).await;
    let source = add(
        &app,
        json!({ "type": "text", "title": "Parking", "content": "Free parking is available behind the building." }),
    )
    .await;
    learned(&app, &source["id"]).await;

    model.push([reply(&["Parking is ", "free, behind ", "the building [1]."], Some((120, 9)))]);
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    widget.until("done").await; // the welcome
    widget.send(json!({ "type": "message", "text": "Where can I park?" })).await;
    let frames = widget.until("done").await;
    let deltas: Vec<&str> =
        frames.iter().filter(|f| f["type"] == "delta").map(|f| f["text"].as_str().unwrap()).collect();
    assert_eq!(deltas, ["Parking is ", "free, behind ", "the building [1]."], "token by token");
    let done = &frames.last().unwrap()["message"];
    assert_eq!(done["content"], "Parking is free, behind the building [1].");
    let metadata = &done["metadata"];
    assert_eq!(metadata["model"]["name"], "scripted-model-v1", "{metadata}");
    assert_eq!(metadata["model"]["usage"]["total_tokens"], 129);
    assert_eq!(metadata["model"]["usage"]["estimated"], false);
    assert_eq!(metadata["citations"][0]["title"], "Parking", "{metadata}");

    // What the model was sent: the bot's rules and the passage, then the conversation.
    let (authorization, request) = model.requests().pop().unwrap();
    assert_eq!(authorization.as_deref(), Some("Bearer sk-test-key"));
    assert_eq!(request["model"], "test-model");
    assert_eq!(request["stream"], true);
    let messages = request["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().unwrap();
    assert!(
        system.contains("[1] source") && system.contains("Free parking is available behind the building."),
        "{system}"
    );
    assert!(system.contains("Harbour Street"), "the bot's facts are in the prompt: {system}");
    assert_eq!(messages.last().unwrap()["role"], "user");
    assert_eq!(messages.last().unwrap()["content"], "Where can I park?");
    assert_eq!(messages[1]["role"], "assistant", "the welcome is part of the history");
    assert_eq!(metadata["model"]["history_messages"], messages.len() - 1);

    let used = usage(&app).await;
    assert_eq!(used["total_tokens"], 129, "{used}");
    assert_eq!(used["replies"], 1);
    let conversation = ready["conversation_id"].as_str().unwrap();
    let (_, detail) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}/detail")).await;
    assert_eq!(
        detail["model_usage"],
        json!({ "prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129, "replies": 1 })
    );
}

async fn failures_are_retried_once_then_the_builtin_brain_answers(backend: Backend) {
    let model = ScriptedModel::start().await;
    let app = app(backend, &model, |_| {}).await;
    let conversation = app.start_conversation().await;

    // A 500 and then a reply: the retry answers.
    model.push([Script::Status(500), reply(&["We open at 8."], Some((50, 4)))]);
    let answer = ask(&app, &conversation, "When do you open?").await;
    assert_eq!(answer["content"], "We open at 8.", "{answer}");
    assert_eq!(model.served.load(Ordering::SeqCst), 2);

    // Twice unavailable, twice empty, twice silent, or refused: the built-in brain answers.
    for (failing, calls) in [
        (vec![Script::Status(503), Script::Status(503)], 2),
        (vec![Script::Empty, Script::Empty], 2),
        (vec![Script::Hang, Script::Hang], 1),
        (vec![Script::Status(401)], 1),
    ] {
        let hangs = matches!(failing[0], Script::Hang);
        let (before, abandoned_before) = (model.served.load(Ordering::SeqCst), model.abandoned());
        model.push(failing);
        let answer = ask(&app, &conversation, "Where are you located?").await;
        let served = model.served.load(Ordering::SeqCst) - before;
        assert!(answer["content"].as_str().unwrap().contains("Harbour Street"), "after {served} calls: {answer}");
        assert_eq!(answer["metadata"]["model"]["fallback"], true, "{answer}");
        // A hang uses up the whole time budget on its first try, so there is no second.
        assert!(served >= calls, "calls");
        if hangs {
            // The hung request never answers, so the visitor's answer came without it; and the
            // server gave the request up rather than leaving it open behind the answer.
            model.abandoned_reaches(abandoned_before + 1).await;
        } else {
            assert_eq!(model.abandoned(), abandoned_before, "answered requests are not abandoned");
        }
        model.script.lock().unwrap().clear();
    }
    let used = usage(&app).await;
    assert_eq!(used["failures"], 4, "{used}");
    assert_eq!(used["replies"], 1);
}

async fn the_monthly_cap_hands_visitors_to_the_builtin_brain(backend: Backend) {
    let model = ScriptedModel::start().await;
    let app = app(backend, &model, |args| args.monthly_token_cap = Some(100)).await;
    let conversation = app.start_conversation().await;
    model.push([reply(&["Hello from the model."], Some((90, 30)))]);
    let first = ask(&app, &conversation, "Tell me about your clinic").await;
    assert_eq!(first["content"], "Hello from the model.");
    let served = model.served.load(Ordering::SeqCst);
    let second = ask(&app, &conversation, "Where are you located?").await;
    assert!(second["content"].as_str().unwrap().contains("Harbour Street"), "{second}");
    assert_eq!(second["metadata"]["model"]["skipped"], "monthly token cap reached", "{second}");
    assert_eq!(model.served.load(Ordering::SeqCst), served, "the model was not called over the cap");
    let used = usage(&app).await;
    assert_eq!(used["capped"], true, "{used}");
    assert_eq!(used["monthly_token_cap"], 100);
    let (status, body) = app.get(&app.a.api_key, "/api/usage?month=2026-13").await;
    assert_eq!(status, 400, "{body}");
}

async fn a_takeover_cuts_the_model_off_mid_stream(backend: Backend) {
    let model = ScriptedModel::start().await;
    let app = app(backend, &model, |args| args.model_timeout_secs = Some(30)).await;
    let pieces: Vec<String> = (0..40).map(|i| format!("word{i} ")).collect();
    model.push([Script::Reply { pieces, gap: Duration::from_millis(100), usage: None }]);
    let (status, body) =
        app.post(&app.a.api_key, "/api/agents", json!({ "name": "Ana", "email": "ana@clinic.test" })).await;
    assert_eq!(status, 201, "{body}");
    let agent_id = body["agent"]["id"].as_i64().unwrap();

    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    widget.until("done").await; // the welcome
    widget.send(json!({ "type": "message", "text": "Tell me everything" })).await;
    widget.until("delta").await;
    let (status, body) = app
        .post(&app.a.api_key, &format!("/api/conversations/{conversation}/takeover"), json!({ "agent_id": agent_id }))
        .await;
    assert_eq!(status, 200, "{body}");
    let frames = widget.until("done").await;
    let cut = &frames.last().unwrap()["message"];
    assert_eq!(cut["metadata"]["interrupted"], true, "{cut}");
    assert!(!cut["content"].as_str().unwrap().contains("word39"), "{cut}");
    // The model's stream was dropped: the server saw its client go.
    model.abandoned_reaches(1).await;
}

/// A weekday at least a week ahead, when the demo practice is open.
fn open_day() -> String {
    let mut day = chrono::Utc::now().date_naive() + chrono::Days::new(8);
    while matches!(chrono::Datelike::weekday(&day), chrono::Weekday::Sat | chrono::Weekday::Sun) {
        day = day + chrono::Days::new(1);
    }
    day.format("%Y-%m-%d").to_string()
}

async fn the_model_books_through_its_tools_and_the_booking_fires_its_webhook(backend: Backend) {
    let model = ScriptedModel::start().await;
    let app = app(backend, &model, |args| {
        args.webhook_allow_loopback = Some(true);
        args.webhook_poll_ms = Some(50);
    })
    .await;
    let receiver = crate::webhook_receiver::Receiver::start().await;
    let (status, body) = app
        .post(&app.a.api_key, "/api/webhooks", json!({ "url": receiver.url("/hooks"), "events": ["new_booking"] }))
        .await;
    assert_eq!(status, 201, "{body}");
    let day = open_day();
    model.push([
        tools(&[("call_1", "check_availability", json!({ "service": "Teeth Cleaning", "date": day }))], false),
        tools(
            &[(
                "call_2",
                "book_appointment",
                json!({ "service": "Teeth Cleaning", "date": day, "time": "10:00", "name": "Maria Lopez",
                        "email": "maria@example.com" }),
            )],
            true,
        ),
        reply(&["You're booked for ", "10:00."], Some((200, 8))),
    ]);
    let conversation = app.start_conversation().await;
    let answer =
        ask(&app, &conversation, "Can I get a teeth cleaning next week at 10? I'm Maria, maria@example.com").await;
    assert_eq!(answer["content"], "You're booked for 10:00.", "{answer}");
    let log = answer["metadata"]["tools"].as_array().unwrap();
    assert_eq!(log.len(), 2, "{answer}");
    assert_eq!(log[0]["name"], "check_availability");
    assert!(log[0]["result"]["slots"].as_array().unwrap().iter().any(|s| s["time"] == "10:00"), "{}", log[0]);
    assert_eq!(log[1]["name"], "book_appointment", "the repeated id and name did not double: {}", log[1]);
    assert_eq!(log[1]["arguments"]["name"], "Maria Lopez");
    let booked = &log[1]["result"]["booked"];
    assert_eq!(booked["time"], "10:00", "{}", log[1]);
    assert_eq!(booked["source"], "chat");
    assert_eq!(answer["metadata"]["model"]["usage"]["total_tokens"], 50 + 50 + 208);

    // The booking is real: in the API, and announced by its webhook.
    let (_, listed) = app.get(&app.a.api_key, &format!("/api/bookings/{}", booked["id"])).await;
    assert_eq!(listed["customer_email"], "maria@example.com", "{listed}");
    assert_eq!(listed["conversation_id"], conversation.as_str());
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].json()["event"], "new_booking");

    // What went back to the model: its own calls (content "", never null) and each result.
    let requests = model.requests();
    let third = &requests[requests.len() - 1].1["messages"];
    let calls: Vec<&Value> =
        third.as_array().unwrap().iter().filter(|m| m["role"] == "assistant" && m["tool_calls"].is_array()).collect();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|m| m["content"] == ""), "{calls:?}");
    assert_eq!(calls[1]["tool_calls"][0]["function"]["name"], "book_appointment");
    let results: Vec<&Value> = third.as_array().unwrap().iter().filter(|m| m["role"] == "tool").collect();
    assert_eq!(results[1]["tool_call_id"], "call_2");
    assert!(results[1]["content"].as_str().unwrap().contains("\"booked\""), "{}", results[1]);
    assert!(requests[0].1["tools"].as_array().unwrap().len() >= 6, "the tools were offered");
}

async fn tool_rounds_are_capped_and_hand_overs_and_foreign_bookings_are_guarded(backend: Backend) {
    let model = ScriptedModel::start().await;
    let app = app(backend, &model, |_| {}).await;

    // A model that keeps calling tools is made to answer after four rounds.
    let search = || tools(&[("s", "search_knowledge", json!({ "query": "parking" }))], false);
    model.push([search(), search(), search(), search(), reply(&["Done looking."], None)]);
    let conversation = app.start_conversation().await;
    let before = model.requests().len();
    let answer = ask(&app, &conversation, "Look it up for me").await;
    assert_eq!(answer["content"], "Done looking.", "{answer}");
    let requests = model.requests();
    assert_eq!(requests.len() - before, 5);
    assert!(requests.last().unwrap().1.get("tools").is_none(), "the last round offers no tools");
    assert_eq!(answer["metadata"]["tools"].as_array().unwrap().len(), 4);

    // A booking made elsewhere cannot be cancelled from this conversation.
    let (status, booking) = app
        .post(
            &app.a.api_key,
            "/api/bookings",
            json!({ "service": "Teeth Cleaning", "date": open_day(), "time": "11:00", "customer_name": "Someone Else",
                    "customer_email": "else@example.com" }),
        )
        .await;
    assert_eq!(status, 201, "{booking}");
    let id = booking["id"].as_i64().unwrap();
    model.push([
        tools(&[("c", "cancel_booking", json!({ "booking_id": id }))], false),
        reply(&["I could not cancel that one."], None),
    ]);
    let answer = ask(&app, &conversation, "Cancel booking please").await;
    let result = &answer["metadata"]["tools"][0]["result"];
    assert!(result["error"].as_str().unwrap().contains("no booking"), "{answer}");
    let (_, still) = app.get(&app.a.api_key, &format!("/api/bookings/{id}")).await;
    assert_eq!(still["status"], "confirmed", "{still}");

    // request_human puts the conversation in the queue after the reply.
    model.push([
        tools(&[("h", "request_human", json!({ "reason": "billing dispute" }))], false),
        reply(&["A colleague will join shortly."], None),
    ]);
    let answer = ask(&app, &conversation, "This bill is wrong").await;
    assert_eq!(answer["content"], "A colleague will join shortly.");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}/detail")).await;
        if view["owner"] == "queued" {
            assert_eq!(view["transitions"].as_array().unwrap().last().unwrap()["reason"], "billing dispute");
            break;
        }
        assert!(Instant::now() < deadline, "{view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn emails_and_phones_never_reach_the_model_when_redaction_is_on(backend: Backend) {
    let model = ScriptedModel::start().await;
    let app = app(backend, &model, |args| args.model_redact_pii = Some(true)).await;
    model.push([
        tools(
            &[("k", "capture_contact", json!({ "name": "Maria Lopez", "email": "[email_1]", "phone": "[phone_1]" }))],
            false,
        ),
        reply(&["Thanks! We'll write to [em", "ail_1] or call [phone_1]."], None),
    ]);
    let conversation = app.start_conversation().await;
    let said = "I'm Maria Lopez, maria.lopez@example.com, +1 (555) 123-4567";
    let answer = ask(&app, &conversation, said).await;
    assert_eq!(
        answer["content"], "Thanks! We'll write to maria.lopez@example.com or call +1 (555) 123-4567.",
        "{answer}"
    );
    assert_eq!(answer["metadata"]["model"]["redacted"], true);
    let arguments = &answer["metadata"]["tools"][0]["arguments"];
    assert_eq!(arguments["email"], "maria.lopez@example.com", "the tool got the real address: {answer}");
    for (_, request) in model.requests() {
        let sent = request.to_string();
        assert!(!sent.contains("maria.lopez@example.com") && !sent.contains("123-4567"), "leaked: {sent}");
    }
    let last = model.requests().pop().unwrap().1;
    assert!(last.to_string().contains("[email_1]"), "{last}");
    // The details were captured for real: the conversation's contact, and a lead.
    let (_, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}")).await;
    assert_eq!(view["variables"]["contact"]["email"], "maria.lopez@example.com", "{view}");
}
