//! The compatible APIs take what real clients send: a body field or query parameter their
//! document does not show is ignored, while a documented field of the wrong type is still
//! refused by name; frontdesk's own routes stay strict.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, status_json, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(undocumented_fields_and_parameters_are_ignored_by_the_compatible_routes);

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
