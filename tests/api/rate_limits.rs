//! Quotas per API key: headers on every response, 429 with Retry-After past the quota.

use crate::helpers::{spawn_app_with, Backend};
use crate::on_both_backends;

on_both_backends!(each_key_has_its_own_quota_and_is_told_what_is_left, a_workspace_may_have_quotas_of_its_own);

async fn a_workspace_may_have_quotas_of_its_own(backend: Backend) {
    let app = spawn_app_with(backend, |args| {
        args.rate_limit_per_minute = Some(1000);
        args.chat_rate_limit_per_minute = Some(1000);
    })
    .await;
    let patch = |body: serde_json::Value| {
        app.http.patch(app.url("/api/workspace")).bearer_auth(&app.a.api_key).json(&body).send()
    };
    let res = patch(serde_json::json!({ "rate_limit_per_minute": 0 })).await.unwrap();
    assert_eq!(res.status(), 422, "a quota is at least 1");
    let res = patch(serde_json::json!({ "rate_limit_per_minute": 3, "chat_rate_limit_per_minute": 2 })).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (body["rate_limit_per_minute"].as_u64(), body["chat_rate_limit_per_minute"].as_u64()),
        (Some(3), Some(2))
    );

    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = app.http.get(app.url("/api/bots")).bearer_auth(&app.a.api_key).send().await.unwrap();
        assert_eq!(res.headers()["x-ratelimit-limit"], "3");
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429], "the workspace's own quota");
    let other = app.http.get(app.url("/api/bots")).bearer_auth(&app.b.api_key).send().await.unwrap();
    assert_eq!((other.status().as_u16(), &other.headers()["x-ratelimit-limit"]), (200, &"1000".parse().unwrap()));

    let mut chat = Vec::new();
    for _ in 0..3 {
        let body = serde_json::json!({ "message": "hello", "session_id": "s-1", "admin_id": app.a.public_id });
        chat.push(app.http.post(app.url("/chat")).json(&body).send().await.unwrap().status().as_u16());
    }
    assert_eq!(chat, [200, 200, 429], "the workspace's own chat quota");
}

async fn each_key_has_its_own_quota_and_is_told_what_is_left(backend: Backend) {
    let app = spawn_app_with(backend, |args| args.rate_limit_per_minute = Some(5)).await;
    for bad in 0..10 {
        let res = app.http.get(app.url("/api/workspace")).bearer_auth(format!("fdk_bad{bad}")).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers().get("x-ratelimit-remaining").is_none(), "401s are not counted");
    }
    for expected_remaining in (0..5).rev() {
        let res = app.http.get(app.url("/api/workspace")).bearer_auth(&app.a.api_key).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-ratelimit-limit"], "5");
        assert_eq!(res.headers()["x-ratelimit-remaining"], expected_remaining.to_string().as_str());
        let reset: u64 = res.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset), "reset {reset}");
    }
    let refused = app.http.get(app.url("/api/workspace")).bearer_auth(&app.a.api_key).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry_after), "one request's worth of a 5/min quota: {retry_after}");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("rate limit exceeded"));

    // B's key is untouched by A's use.
    let other = app.http.get(app.url("/api/workspace")).bearer_auth(&app.b.api_key).send().await.unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(other.headers()["x-ratelimit-remaining"], "4");
}
