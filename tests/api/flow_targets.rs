//! A flow's HTTP blocks meet the SSRF guard when the flow is saved, as webhooks and knowledge
//! URLs do when they are registered: a loopback, private or metadata target is refused with 422
//! naming the block and the field, and nothing is stored; the operator's allow-list lets its
//! networks through.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(flows_calling_internal_addresses_are_refused_when_saved);

fn calling(url: &str) -> Value {
    json!({ "start": "hello", "blocks": [
        { "id": "hello", "type": "message", "text": "Checking…", "next": "call" },
        { "id": "call", "type": "http", "url": url, "next": "bye" },
        { "id": "bye", "type": "end", "text": "Done." }
    ]})
}

async fn send(app: &TestApp, method: &str, path: &str, body: Value) -> (u16, Value) {
    let request = app.http.request(method.parse().unwrap(), app.url(path)).bearer_auth(&app.a.api_key).json(&body);
    crate::helpers::status_json(request.send().await.unwrap()).await
}

fn assert_refused(status: u16, body: &Value, url: &str) {
    assert_eq!(status, 422, "{url}: {body}");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("{url}: errors listed: {body}"));
    assert_eq!(errors.len(), 1, "{url}: {body}");
    assert_eq!((errors[0]["block"].as_str(), errors[0]["field"].as_str()), (Some("call"), Some("url")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("block `call`, field `url`"), "{url}: {body}");
}

async fn flows_calling_internal_addresses_are_refused_when_saved(backend: Backend) {
    let app = spawn_app(backend).await;
    let internal = [
        "http://127.0.0.1:9/hook",
        "https://localhost/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/customers/{{flow.id}}",
        "https://[::1]:8443/",
    ];
    for url in internal {
        let (status, body) =
            app.post(&app.a.api_key, "/api/flows", json!({ "name": "Call", "definition": calling(url) })).await;
        assert_refused(status, &body, url);
        let (status, body) =
            app.post(&app.a.api_key, "/api/flows/validate", json!({ "definition": calling(url) })).await;
        assert_eq!((status, body["valid"].as_bool()), (200, Some(false)), "{url}: {body}");
        assert_eq!(body["errors"][0]["field"], "url", "{body}");
    }
    let (_, listed) = app.get(&app.a.api_key, "/api/flows").await;
    assert_eq!(listed["data"], json!([]), "no refused flow was stored");

    // A public target is saved; a templated host can only be checked when the call is made.
    let public = "https://api.example.com/customers/{{flow.id}}";
    let (status, created) =
        app.post(&app.a.api_key, "/api/flows", json!({ "name": "Call", "definition": calling(public) })).await;
    assert_eq!(status, 201, "{created}");
    let (status, _) = app
        .post(
            &app.a.api_key,
            "/api/flows",
            json!({ "name": "Templated", "definition": calling("https://{{flow.host}}/x") }),
        )
        .await;
    assert_eq!(status, 201);
    // Editing the draft to an internal target is refused and leaves the draft as it was.
    let path = format!("/api/flows/{}", created["id"].as_i64().unwrap());
    let (status, body) = send(&app, "PUT", &path, json!({ "definition": calling("http://127.0.0.1:9/hook") })).await;
    assert_refused(status, &body, "PUT");
    let (_, stored) = app.get(&app.a.api_key, &path).await;
    assert_eq!(stored["definition"]["blocks"][1]["url"], public, "{stored}");

    // The operator's settings are the same that govern webhooks and the run-time guard.
    let allowed = spawn_app_with(backend, |args| args.fetch_allow = Some("127.0.0.1/32".into())).await;
    let (status, body) = allowed
        .post(
            &allowed.a.api_key,
            "/api/flows",
            json!({ "name": "Intranet", "definition": calling("http://127.0.0.1:9/hook") }),
        )
        .await;
    assert_eq!(status, 201, "an allowed network may be called: {body}");
    let (status, body) = allowed
        .post(
            &allowed.a.api_key,
            "/api/flows",
            json!({ "name": "Metadata", "definition": calling("https://169.254.169.254/") }),
        )
        .await;
    assert_refused(status, &body, "outside the allowed network");
    let loopback = spawn_app_with(backend, |args| args.webhook_allow_loopback = Some(true)).await;
    let (status, body) = loopback
        .post(
            &loopback.a.api_key,
            "/api/flows",
            json!({ "name": "Dev", "definition": calling("http://127.0.0.1:9/hook") }),
        )
        .await;
    assert_eq!(status, 201, "loopback allowed for development: {body}");
}
