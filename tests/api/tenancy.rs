//! Tenant isolation: workspace B's key can neither read nor change anything of workspace A's.

use serde_json::json;

use crate::helpers::{spawn_app, Backend, Widget};
use crate::on_both_backends;

on_both_backends!(another_workspace_sees_nothing_and_changes_nothing);

async fn another_workspace_sees_nothing_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation = app.start_conversation().await;
    app.say(&conversation, "Hello").await;
    let before = app.messages(&conversation).await;
    let (_, bot_before) = app.get(&app.a.api_key, &format!("/api/bots/{}", app.a.bot_id)).await;
    let b = &app.b.api_key;

    let conv = format!("/api/conversations/{conversation}");
    let bot = format!("/api/bots/{}", app.a.bot_id);
    for (method, path, body) in [
        ("GET", conv.clone(), None),
        ("POST", format!("{conv}/messages"), Some(json!({"text": "hi from B"}))),
        ("GET", format!("{conv}/messages"), None),
        ("GET", format!("{conv}/messages?wait=1"), None),
        ("GET", format!("{conv}/events"), None),
        ("POST", format!("{conv}/close"), Some(json!({}))),
        ("GET", bot.clone(), None),
        ("PATCH", bot.clone(), Some(json!({"name": "hijacked"}))),
        ("POST", "/api/conversations".to_owned(), Some(json!({"bot_id": app.a.bot_id}))),
    ] {
        let mut req = app.http.request(method.parse().unwrap(), app.url(&path)).bearer_auth(b);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 404, "{method} {path} with B's key must look like an unknown id");
    }
    // B's own listings do not include A's things.
    let (_, bots) = app.get(b, "/api/bots").await;
    assert!(bots["data"].as_array().unwrap().iter().all(|bot| bot["id"] != app.a.bot_id.as_str()));
    let (_, workspace) = app.get(b, "/api/workspace").await;
    assert_eq!(workspace["id"], app.b.workspace_id.get());

    // Nothing of A's changed.
    assert_eq!(app.messages(&conversation).await, before);
    let (_, view) = app.get(&app.a.api_key, &conv).await;
    assert_eq!(view["status"], "open");
    let (_, bot_after) = app.get(&app.a.api_key, &bot).await;
    assert_eq!(bot_after, bot_before);

    // A widget of B's bot cannot join A's conversation.
    let mut widget = Widget::connect(&app).await;
    widget.send(json!({"type": "hello", "bot_id": app.b.bot_id, "conversation_id": conversation})).await;
    let error = widget.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"], "conversation not found");
}
