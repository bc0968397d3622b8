//! The compatible APIs take what real clients send: a body field or query parameter their
//! document does not show is ignored, while a documented field of the wrong type is still
//! refused by name; frontdesk's own routes stay strict.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, status_json, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    undocumented_fields_and_parameters_are_ignored_by_the_compatible_routes,
    every_cx_genie_error_says_success_false
);

async fn post_raw(app: &TestApp, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = app.http.post(app.url(path)).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    status_json(request.send().await.unwrap()).await
}

async fn get_raw(app: &TestApp, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = app.http.get(app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    status_json(request.send().await.unwrap()).await
}

async fn undocumented_fields_and_parameters_are_ignored_by_the_compatible_routes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (key, bot, admin, token) =
        (app.a.api_key.clone(), app.a.bot_id.clone(), app.a.public_id.clone(), app.a.workspace_token.clone());
    let extra = json!({"plan": "growth", "nested": {"a": [1, 2]}});

    let bodies: Vec<(&str, Option<&str>, Value)> = vec![
        ("/chat", None, json!({"message": "hi", "session_id": "s-1", "admin_id": admin, "user": extra})),
        (
            "/api/widget/chat",
            Some(&key),
            json!({"message": "hi", "widgetId": bot, "sessionId": "s-2", "locale": "en", "context": {"rules": {"tone": "friendly", "brandColor": "#fff"}, "pageUrl": "/"}}),
        ),
        ("/api/chat", Some(&key), json!({"message": "hi", "chatbot_id": bot, "stream": false, "user": extra})),
        (
            "/api/v2/public-api/messages",
            None,
            json!({"workspace_token": token, "bot_id": bot, "content": "hi", "client": "sdk/2.1", "customer_info": {"name": "Ann", "email": "ann@example.com", "avatar": "x.png"}}),
        ),
        (
            "/api/v1/conversations",
            Some(&key),
            json!({"channel": "API", "message": {"data": {"body": "hi", "format": "plain"}, "type": "text", "id": "m-1"}, "bot_key": bot, "from": {"user_external_id": "v-1", "type": "VISITOR", "locale": "en"}, "trace": "abc"}),
        ),
    ];
    for (path, key, body) in bodies {
        let (status, answer) = post_raw(&app, path, key, body.clone()).await;
        assert!((200..300).contains(&status), "{path} with extra fields: {status} {answer}");
    }

    let queries = [
        (format!("/api/doctors/public?admin_id={admin}&_=1733500000000"), None),
        (format!("/api/sources?chatbot_id={bot}&cache=no"), Some(key.as_str())),
        (format!("/api/widget-config?chatbot_id={bot}&v=3"), Some(key.as_str())),
        (format!("/api/widget/config?widgetId={bot}&_t=9"), Some(key.as_str())),
        (format!("/api/v2/public-api/customer-list?workspace_token={token}&sdk=1&limit=5"), None),
    ];
    for (path, key) in queries {
        let (status, answer) = get_raw(&app, &path, key).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }

    // A documented field of the wrong type is still refused, naming it.
    let (status, refused) =
        post_raw(&app, "/chat", None, json!({"message": 5, "session_id": "s-1", "admin_id": admin})).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("message"), "{refused}");
    let (status, refused) =
        get_raw(&app, &format!("/api/v2/public-api/customer-list?workspace_token={token}&limit=many"), None).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("limit"), "{refused}");

    // frontdesk's own routes stay strict.
    let (status, refused) = get_raw(&app, "/api/conversations?cache=no", Some(&key)).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("cache"), "{refused}");
}

/// CX Genie documents `"success": false` on its errors: every refusal under its path carries it,
/// whoever refuses (the route, the body's reader, an unknown path), and no other route's does.
async fn every_cx_genie_error_says_success_false(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.a.workspace_token.clone();
    let api = "/api/v2/public-api";
    let raw = |path: String, body: &'static str| {
        app.http.post(app.url(&path)).header("content-type", "application/json").body(body).send()
    };
    let mut refusals = vec![
        status_json(raw(format!("{api}/bot-data"), "{not json").await.unwrap()).await,
        status_json(raw(format!("{api}/bot-data"), r#"{"workspace_token":"fdw_wrong","type":"TEXT"}"#).await.unwrap())
            .await,
        status_json(raw(format!("{api}/messages"), r#"{"content": 5}"#).await.unwrap()).await,
        status_json(app.http.post(app.url(&format!("{api}/upload/multiple"))).send().await.unwrap()).await,
        get_raw(&app, &format!("{api}/customer-list?workspace_token={token}&limit=0"), None).await,
        get_raw(&app, &format!("{api}/bot-data/999999?workspace_token={token}"), None).await,
        get_raw(&app, &format!("{api}/no-such-route"), None).await,
    ];
    for (status, body) in refusals.drain(..) {
        assert!(status >= 400, "{status} {body}");
        assert_eq!(body["success"], false, "{status} {body}");
        assert!(body["error"].is_string(), "{status} {body}");
    }
    // A success keeps its own `success: true`, and another API's error is left as it was.
    let (status, ok) = get_raw(&app, &format!("{api}/customer-list?workspace_token={token}"), None).await;
    assert_eq!((status, ok["success"].clone()), (200, json!(true)), "{ok}");
    let (status, other) = get_raw(&app, "/api/conversations?limit=0", Some(&app.a.api_key)).await;
    assert_eq!(status, 400);
    assert!(other.get("success").is_none(), "{other}");
}
