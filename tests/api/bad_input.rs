//! Bad input: each gets its clear JSON error with the right status, and changes nothing.

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, Backend, Widget};
use crate::on_both_backends;

/// (method, path, key, raw body, expected status, words the error must contain)
type Case<'a> = (&'a str, String, &'a str, Option<String>, u16, &'a str);

on_both_backends!(bad_requests_get_clear_errors_and_change_nothing, an_oversized_frame_closes_the_socket_with_1009);

async fn bad_requests_get_clear_errors_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation = app.start_conversation().await;
    app.say(&conversation, "Hello").await;
    let before = app.messages(&conversation).await;
    let key = app.a.api_key.as_str();
    let messages = format!("/api/conversations/{conversation}/messages");
    let unknown = "/api/conversations/00000000-0000-0000-0000-000000000000/messages";
    let oversized = format!(r#"{{"text":"{}"}}"#, "x".repeat(70 * 1024));

    let cases: Vec<Case> = vec![
        ("POST", messages.clone(), key, Some("{\"text\":".into()), 400, "malformed JSON"),
        ("POST", messages.clone(), key, Some("[1,2]".into()), 400, "invalid"),
        ("POST", messages.clone(), key, Some(r#"{"text":5}"#.into()), 400, "`text`"),
        ("POST", messages.clone(), key, Some(r#"{"txt":"hi"}"#.into()), 400, "txt"),
        ("POST", messages.clone(), key, Some("{}".into()), 400, "missing field `text`"),
        ("POST", messages.clone(), key, Some(String::new()), 400, "empty"),
        ("POST", messages.clone(), key, Some(r#"{"text":"   "}"#.into()), 422, "text must not be empty"),
        ("POST", messages.clone(), key, Some(json!({"text": "y".repeat(1001)}).to_string()), 422, "limit is 1000"),
        (
            "POST",
            messages.clone(),
            key,
            Some(json!({"text": "hi", "client_msg_id": ""}).to_string()),
            422,
            "client_msg_id",
        ),
        ("POST", messages.clone(), key, Some(json!({"text": "hi", "media": 3}).to_string()), 422, "media"),
        ("POST", messages.clone(), key, Some(oversized), 413, "larger than 65536 bytes"),
        ("POST", messages.clone(), "fdk_wrong", Some(r#"{"text":"hi"}"#.into()), 401, "invalid API key"),
        ("POST", messages.clone(), "", Some(r#"{"text":5}"#.into()), 401, "Authorization"),
        ("POST", unknown.into(), key, Some(r#"{"text":"hi"}"#.into()), 404, "conversation not found"),
        ("GET", unknown.into(), key, None, 404, "conversation not found"),
        ("GET", format!("{messages}?limit=1000"), key, None, 422, "limit must be between 1 and 100"),
        ("GET", format!("{messages}?limit=abc"), key, None, 400, "limit"),
        ("GET", format!("{messages}?after=-1"), key, None, 422, "after"),
        ("GET", format!("{messages}?wait=600"), key, None, 422, "wait"),
        ("POST", "/api/conversations".into(), key, Some(r#"{"bot_id":"bot_nope"}"#.into()), 404, "bot not found"),
        ("POST", "/api/conversations".into(), key, Some(r#"{"bot_id":17}"#.into()), 400, "`bot_id`"),
        ("POST", "/api/conversations".into(), key, Some(r#"{"variables":[1]}"#.into()), 400, "`variables`"),
        ("PATCH", "/api/bots/bot_nope".into(), key, Some(r#"{"name":"x"}"#.into()), 404, "bot not found"),
        ("PATCH", format!("/api/bots/{}", app.a.bot_id), key, Some(r#"{"name":""}"#.into()), 422, "name"),
        (
            "PATCH",
            format!("/api/bots/{}", app.a.bot_id),
            key,
            Some(r#"{"allowed_origins":["nope"]}"#.into()),
            422,
            "allowed_origins",
        ),
        ("GET", "/no/such/route".into(), key, None, 404, "no route"),
    ];
    for (method, path, key, body, status, words) in cases {
        let mut req = app.http.request(method.parse().unwrap(), app.url(&path));
        if !key.is_empty() {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let res = req.send().await.unwrap();
        let got = res.status().as_u16();
        let error: serde_json::Value = res.json().await.unwrap_or_else(|_| panic!("{method} {path}: JSON error body"));
        assert_eq!(got, status, "{method} {path} → {error}");
        let text = error["error"].as_str().unwrap_or_else(|| panic!("{method} {path}: `error` field in {error}"));
        assert!(text.contains(words), "{method} {path}: `{text}` should mention `{words}`");
    }

    assert_eq!(app.messages(&conversation).await, before, "no bad request stored anything");
    let (_, bot) = app.get(key, &format!("/api/bots/{}", app.a.bot_id)).await;
    assert_eq!(bot["name"], "Workspace A assistant");
}

async fn an_oversized_frame_closes_the_socket_with_1009(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    widget.until("done").await;
    let huge = json!({"type": "message", "text": "z".repeat(20 * 1024)}).to_string();
    widget.socket.send(Message::Text(huge)).await.unwrap();
    let mut saw_error = false;
    let mut close_code = None;
    while let Some(Ok(frame)) = widget.socket.next().await {
        match frame {
            Message::Text(text) => saw_error |= text.contains("larger than the server accepts"),
            Message::Close(Some(reason)) => {
                close_code = Some(reason.code);
                break;
            }
            Message::Close(None) => break,
            _ => {}
        }
    }
    assert!(saw_error, "an error frame says why");
    assert_eq!(close_code, Some(CloseCode::Size));
    let conversation = ready["conversation_id"].as_str().unwrap();
    assert_eq!(app.messages(conversation).await.len(), 1, "nothing stored but the welcome");
}
