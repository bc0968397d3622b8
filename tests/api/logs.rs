//! No secret in any log line at any level: the real binary runs at `RUST_LOG=trace` with its log
//! captured to a file, a scenario creates and uses every kind of credential (API key in the
//! header and, by mistake, in the query; workspace token; external key; agent token on
//! `/ws/agent?token=`; webhook secrets, revealed, rotated and signing a delivery; the operator's
//! model key and secret key), many of them on requests that fail, and then the log is searched for
//! every secret value.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{status_json, Backend, TestDb};
use crate::on_both_backends;
use crate::webhook_receiver::Receiver;

on_both_backends!(no_secret_reaches_the_log_at_trace);

/// The operator's secrets, given in the environment.
const SECRET_KEY: &str = "c2VjcmV0LWtleS1vZi10aGUtbG9nLXRlc3QtMzJieXQ=";
const MODEL_KEY: &str = "sk-log-canary-7f3a9c1e5b";

/// Runs `frontdesk` with `args`, its whole log (stderr) written to `log`.
fn frontdesk(args: &[&str], envs: &[(&str, &str)], log: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    command
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "trace")
        .env("FRONTDESK_SECRET_KEY", SECRET_KEY)
        .env("OPENAI_API_KEY", MODEL_KEY)
        .stderr(File::options().create(true).append(true).open(log).expect("log file"));
    command
}

fn serve(envs: &[(&str, &str)], log: &std::path::Path) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = frontdesk(&["serve"], envs, log)
        .env("FRONTDESK_BIND", "127.0.0.1:0")
        .env("FRONTDESK_WEBHOOK_ALLOW_LOOPBACK", "true")
        .env("FRONTDESK_WEBHOOK_POLL_MS", "50")
        .stdout(Stdio::piped())
        .spawn()
        .expect("frontdesk starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines.next().expect("frontdesk printed its address").expect("stdout line");
        if let Some(base) = line.strip_prefix("frontdesk listening on ") {
            break base.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_else(|| panic!("`{field}` in {value}")).to_owned()
}

async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    status_json(request.send().await.expect("request")).await
}

async fn no_secret_reaches_the_log_at_trace(backend: Backend) {
    let db = TestDb::new(backend);
    let log = db.dir.path().join("frontdesk.log");
    let owned = db.binary_env();
    let envs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = frontdesk(&["workspace", "create", "--name", "Log Clinic", "--demo"], &envs, &log)
        .output()
        .expect("workspace create runs");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stdout));
    let created: Value = serde_json::from_slice(&created.stdout).expect("JSON on stdout");
    let (api_key, token, external) =
        (text(&created, "api_key"), text(&created, "workspace_token"), text(&created, "external_api_key"));
    let bot = text(&created, "bot_id");

    let (mut server, base) = serve(&envs, &log);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let url = |path: &str| format!("{base}{path}");
    let mut secrets =
        vec![api_key.clone(), token.clone(), external.clone(), SECRET_KEY.to_owned(), MODEL_KEY.to_owned()];

    // The API key: in its header, then in places it does not belong (the query, other headers).
    let (status, _) = call(http.get(url("/api/bots")).bearer_auth(&api_key)).await;
    assert_eq!(status, 200);
    let (status, _) = call(http.get(url(&format!("/api/bots?api_key={api_key}")))).await;
    assert_eq!(status, 401, "a key in the query is not a credential");
    let (status, _) = call(http.get(url(&format!("/api/workspace?key={api_key}&token={api_key}")))).await;
    assert_eq!(status, 401);
    let request =
        http.get(url("/api/bots")).header("X-Api-Key", &api_key).header("Cookie", format!("session={api_key}"));
    assert_eq!(call(request).await.0, 401);
    let (status, _) = call(http.get(url("/api/bots")).header("Authorization", format!("Basic {api_key}"))).await;
    assert_eq!(status, 401);
    let (status, _) = call(http.get(url("/api/bots")).bearer_auth(format!("{api_key}x"))).await;
    assert_eq!(status, 401, "a wrong key that contains the right one");
    let (status, _) =
        call(http.post(url("/api/conversations")).bearer_auth(&api_key).body(format!("{{\"bot_id\": \"{api_key}")))
            .await;
    assert_eq!(status, 400, "a malformed body holding the key");

    // The workspace token: in the query, in a body and as a bearer token, on good and failing calls.
    let (status, body) = call(
        http.post(url("/api/v2/public-api/messages"))
            .json(&json!({"workspace_token": token, "bot_id": bot, "content": "Hello"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(http.get(url(&format!("/api/files/missing?workspace_token={token}")))).await;
    assert_eq!(status, 404);
    let (status, _) = call(http.get(url(&format!("/api/v2/public-api/customer-list?workspace_token={token}x")))).await;
    assert_eq!(status, 401, "a wrong token that contains the right one");
    let (status, _) = call(http.get(url(&format!("/api/v2/public-api/customer-list?workspace_token={token}")))).await;
    assert_eq!(status, 200);

    // The external key, in the body of a booking that is refused and of one that is made.
    let booking = |service: &str| {
        json!({"api_key": external, "customer_name": "Log Test", "customer_email": "log@example.com",
               "date": "2027-05-14", "time": "10:00", "service": service, "doctor_name": "Dr. Sarah Johnson"})
    };
    let (status, _) = call(http.post(url("/api/external/booking")).json(&booking("Root Canal"))).await;
    assert_eq!(status, 400);
    let (status, body) = call(http.post(url("/api/external/booking")).json(&booking("General Consultation"))).await;
    assert_eq!(status, 201, "{body}");

    // An agent's token: created over REST, used on the socket's query string and in headers.
    let (status, agent) = call(
        http.post(url("/api/agents"))
            .bearer_auth(&api_key)
            .json(&json!({"name": "Dana Reyes", "email": "dana@log.test"})),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    let agent_token = text(&agent, "token");
    secrets.push(agent_token.clone());
    let ws = base.replacen("http", "ws", 1);
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{ws}/ws/agent?token={agent_token}"))
        .await
        .expect("the agent socket opens");
    let _ = tokio::time::timeout(Duration::from_secs(5), futures_util::StreamExt::next(&mut socket)).await;
    drop(socket);
    let refused = tokio_tungstenite::connect_async(format!("{ws}/ws/agent?token={agent_token}x")).await;
    assert!(refused.is_err(), "a wrong agent token is refused");
    let (status, _) = call(http.get(url(&format!("/ws/agent?token={agent_token}")))).await;
    assert_eq!(status, 400, "not a WebSocket handshake");
    let (status, _) = call(http.get(url("/api/agents/me")).bearer_auth(&agent_token)).await;
    assert_eq!(status, 200);
    let (status, _) = call(http.get(url(&format!("/api/agents/me?token={agent_token}")))).await;
    assert_eq!(status, 401);

    // Webhook secrets: created, revealed, rotated, and signing a real delivery.
    let receiver = Receiver::start().await;
    let (status, hook) = call(
        http.post(url("/api/webhooks"))
            .bearer_auth(&api_key)
            .json(&json!({"url": receiver.url("/hooks"), "events": ["message_created"]})),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    secrets.push(text(&hook, "secret"));
    let id = hook["id"].as_i64().unwrap();
    let (status, rotated) =
        call(http.post(url(&format!("/api/webhooks/{id}/secret/rotate"))).bearer_auth(&api_key)).await;
    assert_eq!(status, 200, "{rotated}");
    secrets.push(text(&rotated, "secret"));
    let (status, revealed) =
        call(http.post(url(&format!("/api/webhooks/{id}/secret/reveal"))).bearer_auth(&api_key)).await;
    assert_eq!(status, 200, "{revealed}");
    let (status, body) = call(http.post(url("/api/conversations")).bearer_auth(&api_key).json(&json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let conversation = text(&body, "id");
    let (status, _) = call(
        http.post(url(&format!("/api/conversations/{conversation}/messages")))
            .bearer_auth(&api_key)
            .json(&json!({"text": "Hi"})),
    )
    .await;
    assert_eq!(status, 201);
    let delivered = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert!(delivered[0].header("webhook-signature").is_some(), "a signed delivery went out");

    server.kill().expect("stop the server");
    server.wait().expect("server stopped");
    let log = std::fs::read_to_string(&log).expect("the log");
    assert!(log.contains("TRACE"), "the log was written at trace level ({} bytes)", log.len());
    assert!(log.contains("HTTP request"), "request spans are in the log");
    for secret in &secrets {
        let found: Vec<&str> = log.lines().filter(|line| line.contains(secret.as_str())).take(3).collect();
        assert!(found.is_empty(), "a secret ({}…) is in the log:\n{}", &secret[..8], found.join("\n"));
    }
    assert!(log.contains("token=[redacted]"), "the query's credentials were there to redact");
}
