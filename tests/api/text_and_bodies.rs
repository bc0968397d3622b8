//! Text is text and bad bodies never act, on both backends.
//!
//! - A NUL (U+0000), which PostgreSQL cannot store, is refused with 422 naming the field on every
//!   route and frame that takes text, and nothing is stored (the whole database is compared
//!   before and after each refusal); a NUL in a path segment is a 404.
//! - Arbitrary Unicode (control characters, RTL marks, emoji, long runs) in the main text fields
//!   never gets a 5xx.
//! - Every POST/PATCH/PUT route refuses an unreadable or mistyped body with 400 and changes
//!   nothing; an absent body is the only way to the defaults. The table is checked against the
//!   route registration, so a new route cannot be left out.

use std::collections::BTreeSet;
use std::time::Duration;

use diesel::RunQueryDsl;
use frontdesk::storage::{Db, DbConn};
use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app_with, status_json, Backend, Socket, TestApp, Widget};
use crate::on_both_backends;

on_both_backends!(
    a_nul_in_any_text_field_is_refused_naming_it_and_stores_nothing,
    a_nul_in_a_socket_frame_is_refused_naming_the_field,
    arbitrary_unicode_in_text_fields_never_gets_a_5xx,
    an_unreadable_or_mistyped_body_never_acts,
    a_webhook_receiver_answering_a_nul_is_logged_without_it,
);

async fn app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |args| {
        args.chat_rate_limit_per_minute = Some(100_000);
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The whole database, as text

#[derive(diesel::QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

/// Tables a refused request may still touch: an API key's `last_used_at`.
const VOLATILE: &[&str] = &["api_keys", "__diesel_schema_migrations"];

/// Every row of every table, as sorted text lines prefixed with the table's name.
async fn snapshot(db: &Db) -> Vec<String> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().unwrap();
        let lines = |sql: String, c: &mut DbConn| -> Vec<String> {
            match c {
                DbConn::Sqlite(c) => diesel::sql_query(&sql).load::<Line>(c),
                DbConn::Postgres(c) => diesel::sql_query(&sql).load::<Line>(c),
            }
            .unwrap_or_else(|err| panic!("{sql}: {err}"))
            .into_iter()
            .map(|l| l.line)
            .collect()
        };
        let sqlite = matches!(&*conn, DbConn::Sqlite(_));
        let tables = if sqlite {
            lines(
                "SELECT name AS line FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'".into(),
                &mut conn,
            )
        } else {
            lines("SELECT tablename::text AS line FROM pg_tables WHERE schemaname = 'public'".into(), &mut conn)
        };
        let mut all = Vec::new();
        for table in tables.into_iter().filter(|t| !VOLATILE.contains(&t.as_str())) {
            let rows = if sqlite {
                let columns =
                    lines(format!("SELECT name AS line FROM pragma_table_info('{table}') ORDER BY cid"), &mut conn);
                let row = columns.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ");
                lines(format!("SELECT {row} AS line FROM \"{table}\""), &mut conn)
            } else {
                lines(format!("SELECT t::text AS line FROM \"{table}\" t"), &mut conn)
            };
            let mut rows: Vec<String> = rows.into_iter().map(|r| format!("{table}: {r}")).collect();
            rows.sort();
            all.extend(rows);
        }
        all
    })
    .await
    .unwrap()
}

/// Asserts that nothing in the database differs from `before`, naming what changed.
fn assert_unchanged(before: &[String], after: &[String], what: &str) {
    if before != after {
        let (b, a): (BTreeSet<_>, BTreeSet<_>) = (before.iter().collect(), after.iter().collect());
        let gone: Vec<_> = b.difference(&a).collect();
        let new: Vec<_> = a.difference(&b).collect();
        panic!("{what} changed the database:\n  gone: {gone:#?}\n  new: {new:#?}");
    }
}

/// Sends `body` (raw) with `content_type`; answers the status and the JSON body.
async fn send_raw(
    app: &TestApp,
    method: &str,
    path: &str,
    key: Option<&str>,
    content_type: &str,
    body: Option<String>,
) -> (u16, Value) {
    let mut req = app.http.request(method.parse().unwrap(), app.url(path));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body {
        req = req.header("content-type", content_type).body(body);
    }
    status_json(req.send().await.expect("request")).await
}

/// Lets the server finish what the set-up started (the welcome, bot replies) before the first
/// snapshot, so a difference can only come from the request under test.
async fn settled(db: &Db) -> Vec<String> {
    let mut last = snapshot(db).await;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = snapshot(db).await;
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

// ---------------------------------------------------------------------------------------------
// NUL table

/// Ids the tables' routes act on, made in workspace A.
struct Fixture {
    conversation: String,
    booking: i64,
    webhook: i64,
    doctor: i64,
    service: i64,
    agent: i64,
    agent_token: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let key = app.a.api_key.as_str();
    let conversation = app.start_conversation().await;
    app.say(&conversation, "Hello").await;
    let (status, booking) = app
        .post(
            key,
            "/api/bookings",
            json!({"customer_name": "Ann Lee", "date": "2027-05-14", "time": "10:00", "service": "General Consultation"}),
        )
        .await;
    assert_eq!(status, 201, "{booking}");
    let (status, webhook) =
        app.post(key, "/api/webhooks", json!({"url": "https://example.com/in", "events": ["form_submitted"]})).await;
    assert_eq!(status, 201, "{webhook}");
    let (status, doctors) = app.get(key, "/api/doctors").await;
    assert_eq!(status, 200, "{doctors}");
    let doctors = doctors["data"].as_array().cloned().unwrap();
    let (status, services) = app.get(key, "/api/services").await;
    assert_eq!(status, 200, "{services}");
    let services = services["data"].as_array().cloned().unwrap();
    let (status, agent) =
        app.post(key, "/api/agents", json!({"name": "Dana Reyes", "email": "dana@clinic.test"})).await;
    assert_eq!(status, 201, "{agent}");
    Fixture {
        conversation,
        booking: booking["id"].as_i64().unwrap(),
        webhook: webhook["id"].as_i64().unwrap(),
        doctor: doctors[0]["id"].as_i64().unwrap(),
        service: services[0]["id"].as_i64().unwrap(),
        agent: agent["agent"]["id"].as_i64().unwrap(),
        agent_token: agent["token"].as_str().unwrap().to_owned(),
    }
}

/// A multipart body with one plain field, and its content type.
fn form_field(name: &str, value: &str) -> (String, String) {
    let boundary = "nulboundary7";
    let body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n--{boundary}--\r\n");
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn a_nul_in_any_text_field_is_refused_naming_it_and_stores_nothing(backend: Backend) {
    let app = app(backend).await;
    let db = app.database();
    let f = fixture(&app).await;
    let key = app.a.api_key.as_str();
    let (c, token, public) = (&f.conversation, &app.a.workspace_token, &app.a.public_id);
    let booking = |field: &str| {
        let mut body = json!({
            "customer_name": "Ann Lee", "date": "2027-05-20", "time": "11:00", "service": "General Consultation"
        });
        body[field] = json!("Ann\u{0}Lee");
        body
    };
    // (method, path, API key?, JSON body, the field the error must name)
    let json_cases: Vec<(&str, String, bool, Value, &str)> = vec![
        ("POST", format!("/api/conversations/{c}/messages"), true, json!({"text": "hi\u{0}"}), "`text`"),
        ("POST", "/api/conversations".into(), true, json!({"external_id": "crm-\u{0}1"}), "`external_id`"),
        ("POST", "/api/conversations".into(), true, json!({"variables": {"name": "A\u{0}"}}), "`variables.name`"),
        (
            "POST",
            "/chat".into(),
            false,
            json!({"message": "hello\u{0}", "session_id": "s-nul", "admin_id": public}),
            "`message`",
        ),
        (
            "POST",
            "/chat".into(),
            false,
            json!({"message": "hi", "session_id": "s\u{0}", "admin_id": public}),
            "`session_id`",
        ),
        ("POST", "/api/bookings".into(), true, booking("customer_name"), "`customer_name`"),
        ("POST", "/api/bookings".into(), true, booking("notes"), "`notes`"),
        (
            "POST",
            "/api/external/booking".into(),
            false,
            {
                let mut body = booking("notes");
                body["api_key"] = json!(app.a.external_api_key);
                body
            },
            "`notes`",
        ),
        ("PATCH", format!("/api/bookings/{}", f.booking), true, json!({"date": "2027-05-2\u{0}1"}), "`date`"),
        ("POST", format!("/api/bookings/{}/cancel", f.booking), true, json!({"reason": "ill\u{0}"}), "`reason`"),
        ("POST", "/api/bots".into(), true, json!({"name": "Night\u{0}desk"}), "`name`"),
        ("PATCH", format!("/api/bots/{}", app.a.bot_id), true, json!({"name": "x\u{0}"}), "`name`"),
        (
            "PATCH",
            format!("/api/bots/{}", app.a.bot_id),
            true,
            json!({"allowed_origins": ["https://a.test", "https://b\u{0}.test"]}),
            "`allowed_origins[1]`",
        ),
        (
            "POST",
            "/api/knowledge/sources".into(),
            true,
            json!({"type": "text", "title": "Hours", "content": "Open\u{0} daily"}),
            "`content`",
        ),
        (
            "POST",
            "/api/knowledge/sources".into(),
            true,
            json!({"type": "qa", "question": "When?\u{0}", "answer": "Always"}),
            "`question`",
        ),
        (
            "POST",
            "/api/v2/public-api/messages".into(),
            false,
            json!({"workspace_token": token, "bot_id": app.a.bot_id, "content": "hi\u{0}"}),
            "`content`",
        ),
        (
            "POST",
            "/api/v2/public-api/messages".into(),
            false,
            json!({"workspace_token": token, "bot_id": app.a.bot_id, "content": "hi", "customer_info": {"name": "Ann\u{0}"}}),
            "`customer_info.name`",
        ),
        (
            "POST",
            "/api/v2/public-api/messages".into(),
            false,
            json!({"workspace_token": token, "bot_id": app.a.bot_id, "content": "hi", "customer_info": {"external_id": "\u{0}"}}),
            "`customer_info.external_id`",
        ),
        (
            "POST",
            "/api/v2/public-api/bot-data".into(),
            false,
            json!({"workspace_token": token, "bot_id": app.a.bot_id, "type": "TEXT", "content": "x\u{0}"}),
            "`content`",
        ),
        (
            "POST",
            "/api/webhooks".into(),
            true,
            json!({"url": "https://example.com/h", "description": "ours\u{0}"}),
            "`description`",
        ),
        ("PATCH", format!("/api/webhooks/{}", f.webhook), true, json!({"description": "\u{0}"}), "`description`"),
        ("PATCH", format!("/api/conversations/{c}/variables"), true, json!({"plan\u{0}": "gold"}), "`plan\\u0000`"),
        ("PATCH", format!("/api/conversations/{c}/variables"), true, json!({"plan": "go\u{0}ld"}), "`plan`"),
        ("POST", format!("/api/conversations/{c}/handoff"), true, json!({"reason": "now\u{0}"}), "`reason`"),
        ("POST", format!("/api/conversations/{c}/agent-messages"), true, json!({"text": "\u{0}"}), "`text`"),
        (
            "POST",
            "/api/v1/conversations".into(),
            true,
            json!({"channel": "API", "bot_key": app.a.bot_id, "from": {"user_external_id": "v-\u{0}"}}),
            "`from.user_external_id`",
        ),
        (
            "POST",
            format!("/api/v1/conversation/{c}/messages"),
            true,
            json!({"message": {"type": "text", "data": {"body": "hi\u{0}"}}}),
            "`message.data.body`",
        ),
        ("POST", "/api/doctors".into(), true, json!({"name": "Dr. \u{0}"}), "`name`"),
        ("PATCH", format!("/api/doctors/{}", f.doctor), true, json!({"specialty": "\u{0}"}), "`specialty`"),
        ("PATCH", format!("/api/services/{}", f.service), true, json!({"name": "Clean\u{0}"}), "`name`"),
        ("PATCH", format!("/api/agents/{}", f.agent), true, json!({"name": "Dana\u{0}"}), "`name`"),
        ("POST", "/api/agents".into(), true, json!({"name": "Bo", "email": "bo\u{0}@clinic.test"}), "`email`"),
        ("POST", "/api/forms".into(), true, json!({"name": "Intake\u{0}", "fields": []}), "`name`"),
        ("POST", "/api/widget/chat".into(), true, json!({"message": "hi\u{0}", "widgetId": app.a.bot_id}), "`message`"),
        ("POST", "/api/chat".into(), true, json!({"message": "hi\u{0}", "chatbot_id": app.a.bot_id}), "`message`"),
        ("POST", "/api/flows/validate".into(), true, json!({"definition": {"start": "a\u{0}"}}), "`definition.start`"),
    ];
    // (method, path, expected status, words)
    let url_cases: Vec<(&str, String, u16, &str)> = vec![
        ("GET", "/api/patients?search=%00".into(), 422, "`search`"),
        ("GET", "/api/knowledge/search?q=clean%00ing".into(), 422, "`q`"),
        ("GET", "/api/bookings?status=%00".into(), 422, "`status`"),
        ("GET", "/api/conversations?q=a%00".into(), 422, "`q`"),
        ("GET", format!("/api/conversations/{c}/messages?after=1%00"), 422, "`after`"),
        ("GET", format!("/api/v2/public-api/customer-list?workspace_token={token}&search=%00"), 422, "`search`"),
        ("GET", "/api/conversations/%00".into(), 404, "nothing at"),
        ("POST", "/api/conversations/abc%00/messages".into(), 404, "nothing at"),
        ("GET", "/api/bots/bot_%00".into(), 404, "nothing at"),
        ("GET", "/api/files/%00".into(), 404, "nothing at"),
        ("GET", format!("/api/v2/public-api/detail-sessions/%00?workspace_token={token}"), 404, "nothing at"),
    ];

    let mut before = settled(&db).await;
    for (method, path, with_key, body, field) in json_cases {
        let raw = body.to_string();
        assert!(raw.contains("\\u0000"), "{method} {path}: the case sends a NUL");
        let (status, error) =
            send_raw(&app, method, &path, with_key.then_some(key), "application/json", Some(raw)).await;
        assert_eq!(status, 422, "{method} {path} {body} → {error}");
        let text = error["error"].as_str().unwrap_or_else(|| panic!("{method} {path}: an `error` in {error}"));
        assert!(text.contains(field) && text.contains("NUL"), "{method} {path}: `{text}` should name {field}");
        let after = snapshot(&db).await;
        assert_unchanged(&before, &after, &format!("{method} {path} with a NUL"));
        before = after;
    }
    for (method, path, status, words) in url_cases {
        let (got, error) = send_raw(&app, method, &path, Some(key), "application/json", Some("{}".into())).await;
        assert_eq!(got, status, "{method} {path} → {error}");
        let text = error["error"].as_str().unwrap_or_else(|| panic!("{method} {path}: an `error` in {error}"));
        assert!(text.contains(words), "{method} {path}: `{text}` should mention {words}");
        let after = snapshot(&db).await;
        assert_unchanged(&before, &after, &format!("{method} {path}"));
        before = after;
    }
    // Multipart form fields: the workspace token CX Genie's upload reads from the form, and a
    // field beside a file on the API's own upload route.
    let upload = "/api/v2/public-api/upload/multiple";
    let (content_type, body) = form_field("workspace_token", &format!("{token}\u{0}"));
    let (status, error) = send_raw(&app, "POST", upload, None, &content_type, Some(body)).await;
    assert_eq!(status, 422, "{error}");
    assert!(error["error"].as_str().unwrap().contains("`workspace_token`"), "{error}");
    let (content_type, body) = form_field("note", "a\u{0}b");
    let (status, error) = send_raw(&app, "POST", "/api/files", Some(key), &content_type, Some(body)).await;
    assert_eq!(status, 422, "{error}");
    assert!(error["error"].as_str().unwrap().contains("`note`"), "{error}");
    assert_unchanged(&before, &snapshot(&db).await, "multipart fields with a NUL");

    // The same texts without the NUL are taken: the refusals above are about the NUL alone.
    let (status, body) = app.post(key, &format!("/api/conversations/{c}/messages"), json!({"text": "hi"})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.get(key, "/api/patients?search=Ann").await;
    assert_eq!(status, 200, "{body}");
}

/// The next JSON frame of an agent's socket.
async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn a_nul_in_a_socket_frame_is_refused_naming_the_field(backend: Backend) {
    let app = app(backend).await;
    let db = app.database();
    let f = fixture(&app).await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    widget.until("done").await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    let url = format!("{}/ws/agent?token={}", app.ws_url.trim_end_matches("/ws/widget"), f.agent_token);
    let (mut agent, _) = tokio_tungstenite::connect_async(&url).await.expect("agent socket connects");
    while next_frame(&mut agent).await["type"] != "inbox" {}
    // Connecting made the agent `online`; only what follows must change nothing.
    let before = settled(&db).await;

    widget.send(json!({"type": "message", "client_msg_id": "m-1", "text": "hi\u{0}there"})).await;
    let error = widget.until("error").await.pop().unwrap();
    let text = error["error"].as_str().unwrap();
    assert!(text.contains("`text`") && text.contains("NUL"), "{error}");
    widget.send(json!({"type": "message", "text": "hi", "media": [{"url": "https://a.test/\u{0}"}]})).await;
    let error = widget.until("error").await.pop().unwrap();
    assert!(error["error"].as_str().unwrap().contains("`media[0].url`"), "{error}");
    // A second socket saying hello with a NUL in the conversation id.
    let mut other = Widget::connect(&app).await;
    other.send(json!({"type": "hello", "bot_id": app.a.bot_id, "conversation_id": "\u{0}"})).await;
    let error = other.next().await;
    assert_eq!(error["type"], "error", "{error}");
    assert!(error["error"].as_str().unwrap().contains("`conversation_id`"), "{error}");

    let frame = json!({"type": "send", "ref": 7, "conversation_id": conversation, "text": "\u{0}"});
    agent.send(Message::Text(frame.to_string())).await.unwrap();
    let error = loop {
        let frame = next_frame(&mut agent).await;
        if frame["type"] == "error" {
            break frame;
        }
    };
    assert_eq!(error["ref"], 7, "{error}");
    assert!(error["error"].as_str().unwrap().contains("`text`"), "{error}");
    assert_unchanged(&before, &snapshot(&db).await, "frames with a NUL");

    // The socket stays open and takes the same message without the NUL.
    widget.send(json!({"type": "message", "client_msg_id": "m-2", "text": "hi there"})).await;
    let ack = widget.until("ack").await.pop().unwrap();
    assert_eq!(ack["message"]["content"], "hi there");
}

// ---------------------------------------------------------------------------------------------
// Arbitrary Unicode

fn wild_char() -> impl Strategy<Value = char> {
    prop_oneof![
        24 => any::<char>(),
        2 => prop::char::range('\u{1}', '\u{1f}'),
        1 => Just('\u{0}'),
        3 => prop::sample::select(vec![
            '\u{202E}', '\u{200F}', '\u{05D0}', '\u{0627}', '\u{1F600}', '\u{1F469}', '\u{200D}', '\u{FEFF}',
            '\u{FFFD}', '\u{10FFFF}', '\u{7F}', '\u{85}', '\u{2028}', '\u{E000}', '\u{301}', '\\', '"', '%', '\'',
        ]),
        6 => prop::char::range('a', 'z'),
    ]
}

fn wild_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::collection::vec(wild_char(), 1..40).prop_map(String::from_iter),
        1 => prop::collection::vec(wild_char(), 900..1100).prop_map(String::from_iter),
    ]
}

/// One text sent to every main text field; any status but a 5xx, and 422 when it holds a NUL.
async fn try_everywhere(app: &TestApp, conversation: &str, n: u64, s: &str) -> Result<(), String> {
    let key = app.a.api_key.as_str();
    let (token, public) = (app.a.workspace_token.as_str(), app.a.public_id.as_str());
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", format!("/api/conversations/{conversation}/messages"), Some(json!({"text": s}))),
        ("POST", "/api/conversations".into(), Some(json!({"external_id": s}))),
        ("PATCH", format!("/api/bots/{}", app.a.bot_id), Some(json!({"name": s}))),
        (
            "POST",
            "/api/bookings".into(),
            Some(
                json!({"customer_name": s, "notes": s, "date": "2027-06-01", "time": "09:00", "service": "General Consultation"}),
            ),
        ),
        ("POST", "/chat".into(), Some(json!({"message": s, "session_id": format!("p-{n}"), "admin_id": public}))),
        (
            "POST",
            "/api/v2/public-api/messages".into(),
            Some(json!({"workspace_token": token, "bot_id": app.a.bot_id, "content": s, "customer_info": {"name": s}})),
        ),
        (
            "POST",
            "/api/webhooks".into(),
            Some(json!({"url": "https://example.com/h", "events": ["no_show"], "description": s})),
        ),
        ("POST", "/api/knowledge/sources".into(), Some(json!({"type": "qa", "question": s, "answer": s}))),
        ("PATCH", format!("/api/conversations/{conversation}/variables"), Some(json!({ s: s }))),
        ("GET", "/api/patients".into(), None),
        ("GET", "/api/knowledge/search".into(), None),
    ];
    for (method, path, body) in calls {
        let mut req = app.http.request(method.parse().unwrap(), app.url(&path));
        if path != "/chat" && !path.starts_with("/api/v2") {
            req = req.bearer_auth(key);
        }
        req = match body {
            Some(body) => req.json(&body),
            None if path.ends_with("search") => req.query(&[("q", s)]),
            None => req.query(&[("search", s)]),
        };
        let (status, answer) = status_json(req.send().await.map_err(|err| err.to_string())?).await;
        if status >= 500 {
            return Err(format!("{method} {path} with {s:?} → {status} {answer}"));
        }
        if s.contains('\0') && status != 422 {
            return Err(format!("{method} {path} with a NUL in {s:?} → {status} {answer}, not 422"));
        }
    }
    Ok(())
}

async fn arbitrary_unicode_in_text_fields_never_gets_a_5xx(backend: Backend) {
    let app = app(backend).await;
    let conversation = app.start_conversation().await;
    let config = ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = TestRunner::new(config);
    let counter = std::sync::atomic::AtomicU64::new(0);
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&wild_text(), |s| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            handle.block_on(try_everywhere(&app, &conversation, n, &s)).map_err(TestCaseError::fail)
        })
    });
    if let Err(err) = result {
        panic!("{err}");
    }
    // And the same over the widget socket: every frame gets its ack or its error frame.
    let mut widget = Widget::connect(&app).await;
    widget.hello(&app.a.bot_id, None, None).await;
    let mut runner =
        TestRunner::new(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() });
    for i in 0..16 {
        let s = wild_text().new_tree(&mut runner).unwrap().current();
        let id = format!("w-{i}");
        widget.send(json!({"type": "message", "client_msg_id": id, "text": s})).await;
        let answer = loop {
            let frame = widget.next().await;
            let about_this = frame["client_msg_id"] == id.as_str() || frame["type"] == "error";
            if about_this && (frame["type"] == "ack" || frame["type"] == "error") {
                break frame;
            }
        };
        if s.contains('\0') {
            assert_eq!(answer["type"], "error", "{s:?}: {answer}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bad bodies

/// How a route takes its body.
#[derive(Debug, Clone, Copy)]
enum Takes {
    /// A JSON body it needs; a wrongly typed field of it.
    Json(&'static str),
    /// A JSON body that may be left out (then the defaults); a wrongly typed field of it.
    Optional(&'static str),
    /// multipart/form-data.
    Multipart,
    /// No body: absent, empty or `{}`; anything else is refused.
    Nothing(&'static str),
}

/// Every POST, PATCH and PUT route, as registered (placeholders as in `src/transport/http/mod.rs`).
const ROUTES: &[(&str, &str, Takes)] = &[
    ("POST", "/api/external/booking", Takes::Json(r#"{"customer_name":["Ann"]}"#)),
    ("POST", "/chat", Takes::Json(r#"{"message":1,"session_id":"s","admin_id":"a"}"#)),
    ("POST", "/api/v2/public-api/bot-data", Takes::Json(r#"{"workspace_token":7}"#)),
    ("POST", "/api/v2/public-api/upload/multiple", Takes::Multipart),
    ("POST", "/api/v2/public-api/messages", Takes::Json(r#"{"bot_id":"b","content":{"text":"hi"}}"#)),
    ("PATCH", "/api/workspace", Takes::Json(r#"{"timezone":1}"#)),
    ("POST", "/api/doctors", Takes::Json(r#"{"name":true}"#)),
    ("PATCH", "/api/doctors/{id}", Takes::Json(r#"{"name":true}"#)),
    ("PUT", "/api/doctors/{id}/hours", Takes::Json(r#"[{"weekday":"monday","start":"09:00","end":"17:00"}]"#)),
    ("POST", "/api/doctors/{id}/time-off", Takes::Json(r#"{"starts_at":[]}"#)),
    ("POST", "/api/bookings", Takes::Json(r#"{"customer_name":"Ann","service_id":"one"}"#)),
    ("PATCH", "/api/bookings/{id}", Takes::Json(r#"{"date":20270514}"#)),
    ("POST", "/api/bookings/{id}/cancel", Takes::Optional(r#"{"reason":5}"#)),
    ("POST", "/api/bookings/{id}/complete", Takes::Optional(r#"{"reason":[]}"#)),
    ("POST", "/api/bookings/{id}/no-show", Takes::Optional(r#"{"reason":{}}"#)),
    ("PUT", "/api/patients/{id}", Takes::Json(r#"{"name":1}"#)),
    ("PATCH", "/api/leads/{id}/stage", Takes::Json(r#"{"stage":1}"#)),
    ("PATCH", "/api/leads/{id}/score", Takes::Json(r#"{"score":1,"reason":[]}"#)),
    ("POST", "/api/forms", Takes::Json(r#"{"name":1}"#)),
    ("POST", "/api/forms/{id}/submissions", Takes::Json(r#"{"data":"x"}"#)),
    ("POST", "/api/services", Takes::Json(r#"{"name":"Clean","duration_min":"long"}"#)),
    ("PATCH", "/api/services/{id}", Takes::Json(r#"{"duration_min":"long"}"#)),
    ("POST", "/api/bots", Takes::Json(r#"{"name":["x"]}"#)),
    ("PATCH", "/api/bots/{bot_id}", Takes::Json(r#"{"active":"yes"}"#)),
    ("POST", "/api/agents", Takes::Json(r#"{"name":"Bo","email":1}"#)),
    ("PUT", "/api/agents/me/presence", Takes::Json(r#"{"presence":true}"#)),
    ("PATCH", "/api/agents/{id}", Takes::Json(r#"{"name":2}"#)),
    ("POST", "/api/agents/{id}/token", Takes::Nothing(r#"{"reason":"lost"}"#)),
    ("POST", "/api/agents/{id}/invite", Takes::Nothing(r#"{"reason":"new"}"#)),
    ("POST", "/api/keys", Takes::Json(r#"{"name":5}"#)),
    ("POST", "/api/auth/sign-in", Takes::Json(r#"{"email":1,"password":"x"}"#)),
    ("POST", "/api/auth/password", Takes::Json(r#"{"token":1,"password":"x"}"#)),
    ("POST", "/api/auth/sign-out", Takes::Nothing(r#"{"reason":"done"}"#)),
    ("POST", "/api/canned-replies", Takes::Json(r#"{"shortcut":1,"text":"x"}"#)),
    ("POST", "/api/conversations/{id}/notes", Takes::Json(r#"{"text":1}"#)),
    ("POST", "/api/conversations/{id}/takeover", Takes::Optional(r#"{"agent_id":"dana"}"#)),
    ("POST", "/api/conversations/{id}/handback", Takes::Optional(r#"{"reason":[]}"#)),
    ("POST", "/api/conversations/{id}/handoff", Takes::Optional(r#"{"reason":[]}"#)),
    ("POST", "/api/conversations/{id}/agent-messages", Takes::Json(r#"{"text":["hi"]}"#)),
    ("POST", "/api/conversations/{id}/read", Takes::Optional(r#"{"seq":"all"}"#)),
    ("POST", "/api/conversations", Takes::Json(r#"{"external_id":5}"#)),
    ("POST", "/api/conversations/{id}/close", Takes::Nothing(r#"{"reason":"done"}"#)),
    ("POST", "/api/conversations/{id}/messages", Takes::Json(r#"{"text":5}"#)),
    ("PATCH", "/api/conversations/{id}/variables", Takes::Json(r#"["plan"]"#)),
    ("POST", "/api/v1/conversations", Takes::Json(r#"{"channel":"API","from":"me"}"#)),
    ("POST", "/api/v1/conversation/{id}/messages", Takes::Json(r#"{"message":"hi"}"#)),
    ("POST", "/api/flows", Takes::Json(r#"{"name":1,"definition":{}}"#)),
    ("POST", "/api/flows/validate", Takes::Json(r#"{"defintion":{}}"#)),
    ("PUT", "/api/flows/{id}", Takes::Json(r#"{"name":1}"#)),
    ("POST", "/api/flows/{id}/deploy", Takes::Json(r#"{"channels":"widget"}"#)),
    ("POST", "/api/flows/{id}/undeploy", Takes::Json(r#"{"channels":"widget"}"#)),
    ("POST", "/api/flows/{id}/dry-run", Takes::Json(r#"{"messages":"hi"}"#)),
    ("POST", "/api/knowledge/sources", Takes::Json(r#"{"type":"text","content":7}"#)),
    ("POST", "/api/knowledge/sources/{id}/relearn", Takes::Nothing(r#"{"reason":"done"}"#)),
    ("POST", "/api/knowledge/unanswered/{id}/answer", Takes::Json(r#"{"answer":1}"#)),
    ("POST", "/api/files", Takes::Multipart),
    // JSON or multipart, by its content type.
    ("POST", "/api/sources", Takes::Json(r#"{"type":1}"#)),
    ("POST", "/api/widget/chat", Takes::Json(r#"{"message":1}"#)),
    ("POST", "/api/chat", Takes::Json(r#"{"message":1}"#)),
    ("PUT", "/api/widget-settings", Takes::Json(r#"{"sound":"loud"}"#)),
    ("POST", "/widget/uploads", Takes::Multipart),
    ("POST", "/api/scrape", Takes::Json(r#"{"url":1}"#)),
    ("POST", "/api/webhooks", Takes::Json(r#"{"url":"https://example.com/h","events":"all"}"#)),
    ("PATCH", "/api/webhooks/{id}", Takes::Json(r#"{"active":"no"}"#)),
    ("POST", "/api/webhooks/{id}/secret/reveal", Takes::Nothing(r#"{"reason":"done"}"#)),
    ("POST", "/api/webhooks/{id}/secret/rotate", Takes::Optional(r#"{"overlap_secs":"1h"}"#)),
    ("POST", "/api/webhooks/{id}/deliveries/{delivery_id}/redeliver", Takes::Nothing(r#"{"reason":"done"}"#)),
    ("POST", "/api/webhooks/{id}/replay", Takes::Json(r#"{"sinse":1}"#)),
    ("POST", "/api/hooks/subscribe", Takes::Json(r#"{"target_url":1,"event":"new_lead"}"#)),
];

/// The POST/PATCH/PUT routes the server registers, read from its route tables: a path
/// registered inside `web::scope("/api")` is mounted under `/api`, any other as written.
fn registered_routes() -> BTreeSet<(String, String)> {
    let sources = [
        include_str!("../../src/transport/http/mod.rs"),
        include_str!("../../src/transport/compat/cxgenie_customers.rs"),
        include_str!("../../src/transport/web/mod.rs"),
    ];
    let mut found = BTreeSet::new();
    for source in sources {
        let scope = source.find("web::scope(\"/api\")").unwrap_or(source.len());
        for (table, prefix) in [(&source[..scope], ""), (&source[scope..], "/api")] {
            for piece in table.split(".route(\"").skip(1) {
                let Some((path, rest)) = piece.split_once('"') else { continue };
                let method = ["post", "patch", "put"]
                    .into_iter()
                    .find(|m| rest.trim_start_matches([',', ' ', '\n']).starts_with(&format!("web::{m}()")));
                if let Some(method) = method {
                    found.insert((method.to_uppercase(), format!("{prefix}{path}")));
                }
            }
        }
    }
    found
}

#[test]
fn the_bad_body_table_lists_every_post_patch_and_put_route() {
    let registered = registered_routes();
    assert!(registered.len() > 40, "the route table was read: {registered:?}");
    let listed: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    let missing: Vec<_> = registered.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&registered).collect();
    assert!(missing.is_empty(), "routes missing from the bad-body table: {missing:?}");
    assert!(stale.is_empty(), "routes in the table that are no longer registered: {stale:?}");
}

async fn an_unreadable_or_mistyped_body_never_acts(backend: Backend) {
    let app = app(backend).await;
    let db = app.database();
    let f = fixture(&app).await;
    let key = app.a.api_key.as_str();
    let concrete = |pattern: &str| -> String {
        let id = if pattern.starts_with("/api/conversations/") || pattern.starts_with("/api/v1/conversation/") {
            f.conversation.clone()
        } else if pattern.starts_with("/api/bookings/") {
            f.booking.to_string()
        } else if pattern.starts_with("/api/webhooks/") {
            f.webhook.to_string()
        } else if pattern.starts_with("/api/doctors/") {
            f.doctor.to_string()
        } else if pattern.starts_with("/api/services/") {
            f.service.to_string()
        } else if pattern.starts_with("/api/agents/") {
            f.agent.to_string()
        } else {
            // Ids the fixture does not make: the body is refused before any lookup.
            "1".to_owned()
        };
        pattern.replace("{bot_id}", &app.a.bot_id).replace("{id}", &id).replace("{delivery_id}", "1")
    };
    let mut before = settled(&db).await;
    for (method, pattern, takes) in ROUTES {
        let path = concrete(pattern);
        let with_key =
            pattern.starts_with("/api/") && !pattern.starts_with("/api/v2/") && *pattern != "/api/external/booking";
        let key = with_key.then_some(key);
        // An unreadable body is named as such, unless the type it has is wrong before it ends.
        let unreadable = &["malformed JSON", "invalid body"][..];
        let bodies: Vec<(&str, String, &[&str])> = match takes {
            Takes::Json(mistyped) | Takes::Optional(mistyped) | Takes::Nothing(mistyped) => vec![
                ("application/json", "{".to_owned(), unreadable),
                ("application/json", r#"{"na"#.to_owned(), unreadable),
                ("application/json", "not json".to_owned(), &["malformed JSON"]),
                ("application/json", (*mistyped).to_owned(), &["invalid"]),
                ("application/json", "\"a string\"".to_owned(), &["invalid"]),
            ],
            Takes::Multipart => vec![
                ("multipart/form-data; boundary=xyz", "garbage without a boundary".to_owned(), &["multipart"]),
                ("application/json", "{}".to_owned(), &["multipart"]),
            ],
        };
        for (content_type, body, words) in bodies {
            let (status, error) = send_raw(&app, method, &path, key, content_type, Some(body.clone())).await;
            assert_eq!(status, 400, "{method} {path} with {body:?} → {error}");
            let text = error["error"].as_str().unwrap_or_else(|| panic!("{method} {path}: an `error` in {error}"));
            assert!(
                words.iter().any(|w| text.contains(w)),
                "{method} {path} with {body:?}: `{text}` should mention one of {words:?}"
            );
            let after = snapshot(&db).await;
            assert_unchanged(&before, &after, &format!("{method} {path} with {body:?}"));
            before = after;
        }
    }
    let (_, conversation) = app.get(key, &format!("/api/conversations/{}", f.conversation)).await;
    assert_eq!(conversation["owner"], "bot", "no refused handoff or takeover moved it: {conversation}");

    // An absent body is the way to the defaults: the handoff runs and the database shows it.
    let (status, body) = send_raw(
        &app,
        "POST",
        &format!("/api/conversations/{}/handoff", f.conversation),
        Some(key),
        "application/json",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(snapshot(&db).await, before, "the snapshot sees an accepted action");
    let (status, body) = send_raw(
        &app,
        "POST",
        &format!("/api/bookings/{}/cancel", f.booking),
        Some(key),
        "application/json",
        Some(String::new()),
    )
    .await;
    assert_eq!(status, 200, "an empty body takes the defaults too: {body}");
    assert_eq!(body["status"], "cancelled", "{body}");
    // A route that reads no body still takes `{}`.
    let (status, body) = app.post(key, &format!("/api/conversations/{}/close", f.conversation), json!({})).await;
    assert_eq!(status, 200, "{body}");
}

// ---------------------------------------------------------------------------------------------
// Text from elsewhere

async fn a_webhook_receiver_answering_a_nul_is_logged_without_it(backend: Backend) {
    let app = spawn_app_with(backend, |args| {
        args.webhook_allow_loopback = Some(true);
        args.webhook_poll_ms = Some(50);
    })
    .await;
    let receiver = crate::webhook_receiver::Receiver::start().await;
    receiver.set_default(crate::webhook_receiver::Reply::status(200).with_body("got\u{0}it"));
    let (status, endpoint) = app
        .post(
            &app.a.api_key,
            "/api/webhooks",
            json!({"url": receiver.url("/hooks"), "events": ["conversation_started"]}),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    app.start_conversation().await;
    let path = format!("/api/webhooks/{}/deliveries?limit=10", endpoint["id"]);
    for _ in 0..400 {
        let (status, body) = app.get(&app.a.api_key, &path).await;
        assert_eq!(status, 200, "{body}");
        if let Some(delivered) = body["data"].as_array().unwrap().iter().find(|d| d["status"] == "delivered") {
            assert_eq!(delivered["log"][0]["response_excerpt"], "gotit", "{delivered}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery was never logged as delivered");
}
