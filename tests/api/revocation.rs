//! Revocation that bites at once, everywhere: API keys are listed (never their secrets) and
//! revoked through the API and the CLI; a revoked key gets 401 at once and its streams end; a
//! deleted agent's (or replaced token's) open socket is closed and hears nothing more, on the
//! node that deleted it and, through Redis, on another node.
//!
//! The periodic credential check is turned off (`credential_check_secs = 0`) except where it
//! is the path under test (the CLI without Redis), so that a broken direct or cluster path
//! cannot pass unnoticed.

use frontdesk::ids::WorkspaceId;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{run_cli, spawn_app_with, spawn_binary, status_json, Backend, Socket, TestApp, TestDb};
use crate::on_both_backends;
use crate::sse::Events;

on_both_backends!(
    keys_are_listed_without_secrets_and_revoked_at_once,
    a_workspace_cannot_see_or_revoke_another_workspaces_keys,
    a_revoked_key_ends_its_streams_and_long_polls,
    a_deleted_agents_socket_is_closed_and_hears_nothing_more,
    replacing_an_agents_token_closes_the_old_tokens_socket,
    an_agent_deleted_on_one_node_loses_their_socket_on_another,
    the_cli_lists_and_revokes_keys_and_nodes_catch_up_on_their_own,
);

async fn app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |args| args.credential_check_secs = Some(0)).await
}

/// Creates another API key for `workspace_id` straight in the database; returns `(id, key)`.
async fn new_key(app: &TestApp, workspace_id: WorkspaceId, name: &str) -> (i64, String) {
    let db = app.database();
    let name = name.to_owned();
    let key = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().unwrap();
        frontdesk::storage::keys::create(&mut conn, workspace_id, &name).unwrap()
    })
    .await
    .unwrap();
    let (_, keys) = app.get(&key, "/api/keys").await;
    let id = keys["keys"].as_array().unwrap().iter().find(|k| key.starts_with(k["prefix"].as_str().unwrap()));
    (id.expect("the new key is listed")["id"].as_i64().unwrap(), key)
}

async fn delete(app: &TestApp, key: &str, path: &str) -> (u16, Value) {
    status_json(app.http.delete(app.url(path)).bearer_auth(key).send().await.unwrap()).await
}

async fn keys_of(app: &TestApp, key: &str) -> Vec<Value> {
    let (status, body) = app.get(key, "/api/keys").await;
    assert_eq!(status, 200, "{body}");
    body["keys"].as_array().unwrap().clone()
}

fn key_with_id(keys: &[Value], id: i64) -> Value {
    keys.iter().find(|k| k["id"] == id).cloned().unwrap_or_else(|| panic!("key {id} in {keys:?}"))
}

async fn keys_are_listed_without_secrets_and_revoked_at_once(backend: Backend) {
    let app = app(backend).await;
    let first = app.a.api_key.clone();
    let (second_id, second) = new_key(&app, app.a.workspace_id, "zapier").await;

    let (status, raw) = status_json(app.http.get(app.url("/api/keys")).bearer_auth(&first).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let text = raw.to_string();
    for secret in [&first, &second] {
        assert!(!text.contains(secret.as_str()), "a secret is listed: {text}");
        assert!(!text.contains(&frontdesk::secrets::hash(secret)), "a hash is listed: {text}");
    }
    let keys = raw["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{raw}");
    for key in keys {
        let mut fields: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort();
        assert_eq!(fields, ["created_at", "id", "last_used_at", "name", "prefix", "revoked_at"], "{key}");
        assert!(key["created_at"].as_i64().unwrap() > 0);
        assert!(key["revoked_at"].is_null());
    }
    let listed = key_with_id(keys, second_id);
    assert_eq!(listed["name"], "zapier");
    assert!(second.starts_with(listed["prefix"].as_str().unwrap()) && listed["prefix"].as_str().unwrap().len() >= 8);
    assert!(listed["last_used_at"].is_i64(), "listing with it was a use: {listed}");
    let used_at = listed["last_used_at"].clone();
    // Used again within the minute: not written again.
    let (status, _) = app.get(&second, "/api/workspace").await;
    assert_eq!(status, 200);
    assert_eq!(key_with_id(&keys_of(&app, &first).await, second_id)["last_used_at"], used_at);

    // Revoked: the very next request with it is refused; the list says when.
    let (status, body) = delete(&app, &first, &format!("/api/keys/{second_id}")).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = app.get(&second, "/api/workspace").await;
    assert_eq!(status, 401, "{body}");
    let revoked = key_with_id(&keys_of(&app, &first).await, second_id);
    let revoked_at = revoked["revoked_at"].as_i64().expect("revoked_at");
    // Again: nothing changes.
    let (status, _) = delete(&app, &first, &format!("/api/keys/{second_id}")).await;
    assert_eq!(status, 204);
    assert_eq!(key_with_id(&keys_of(&app, &first).await, second_id)["revoked_at"], revoked_at);

    // The last active key is refused, and keeps working.
    let first_id = keys_of(&app, &first).await.iter().find(|k| k["revoked_at"].is_null()).unwrap()["id"].clone();
    let (status, body) = delete(&app, &first, &format!("/api/keys/{first_id}")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("last active API key"), "{body}");
    assert_eq!(app.get(&first, "/api/workspace").await.0, 200);

    // A key may revoke itself (when it is not the last).
    let (third_id, third) = new_key(&app, app.a.workspace_id, "rotating").await;
    let (status, _) = delete(&app, &third, &format!("/api/keys/{third_id}")).await;
    assert_eq!(status, 204);
    assert_eq!(app.get(&third, "/api/keys").await.0, 401);
    assert_eq!(app.get(&first, "/api/workspace").await.0, 200);
}

async fn a_workspace_cannot_see_or_revoke_another_workspaces_keys(backend: Backend) {
    let app = app(backend).await;
    let (a_id, a_key) = new_key(&app, app.a.workspace_id, "second").await;
    let b_ids: Vec<Value> = keys_of(&app, &app.b.api_key).await.iter().map(|k| k["id"].clone()).collect();
    assert!(!b_ids.contains(&json!(a_id)), "B lists only its own keys: {b_ids:?}");

    for path in [format!("/api/keys/{a_id}"), "/api/keys/999999".to_owned(), "/api/keys/abc".to_owned()] {
        let (status, body) = delete(&app, &app.b.api_key, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    assert_eq!(app.get(&a_key, "/api/workspace").await.0, 200, "A's key still works");
    assert!(key_with_id(&keys_of(&app, &a_key).await, a_id)["revoked_at"].is_null());
    // An agent token without the admin role does not reach the keys.
    let (status, body) =
        app.post(&app.a.api_key, "/api/agents", json!({ "name": "Ann", "email": "ann@clinic.test" })).await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(app.get(token, "/api/keys").await.0, 403);
    assert_eq!(delete(&app, token, &format!("/api/keys/{a_id}")).await.0, 403);
}

async fn a_revoked_key_ends_its_streams_and_long_polls(backend: Backend) {
    let app = app(backend).await;
    let (key_id, key) = new_key(&app, app.a.workspace_id, "streaming").await;
    let conversation = app.start_conversation().await;
    let path = format!("/api/conversations/{conversation}/events");
    let mut events = Events::open_with_key(&app, &app.url(&path), &key).await;
    let (id, _, _) = events.next().await;
    assert_eq!(id, Some(1), "the welcome, replayed");
    let poll = app
        .http
        .get(app.url(&format!("/api/conversations/{conversation}/messages?after=1&wait=60")))
        .bearer_auth(&key)
        .send();
    let poll = tokio::spawn(poll);
    // The poll is waiting once its request has reached the server; the stream is open already.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (status, _) = delete(&app, &app.a.api_key, &format!("/api/keys/{key_id}")).await;
    assert_eq!(status, 204);
    let (_, kind, data) = events.next().await;
    assert_eq!((kind.as_str(), &data["error"]), ("revoked", &json!("credential revoked")));
    assert!(events.ended().await, "the stream ends after `revoked`");
    let (status, body) = status_json(poll.await.unwrap().unwrap()).await;
    assert_eq!(status, 401, "{body}");

    // The other key's stream on the same conversation carries on.
    let mut others = Events::open_with_key(&app, &app.url(&path), &app.a.api_key).await;
    assert_eq!(others.next().await.0, Some(1));
    app.say(&conversation, "Hello").await;
    assert_eq!(others.next().await.2["message"]["content"], "Hello");
}

/// Creates an agent in workspace A; returns `(id, token)`.
async fn new_agent(app: &TestApp, name: &str) -> (i64, String) {
    let email = format!("{}@clinic.test", name.to_lowercase());
    let (status, body) = app.post(&app.a.api_key, "/api/agents", json!({ "name": name, "email": email })).await;
    assert_eq!(status, 201, "{body}");
    (body["agent"]["id"].as_i64().unwrap(), body["token"].as_str().unwrap().to_owned())
}

/// An agent's socket at `base`, once its inbox snapshot has arrived.
async fn agent_socket(base: &str, token: &str) -> Socket {
    let url = format!("{}/ws/agent?token={token}", base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.expect("agent socket connects");
    loop {
        match next_frame(&mut socket).await {
            Frame::Json(frame) if frame["type"] == "inbox" => return socket,
            Frame::Json(_) => continue,
            Frame::Closed(close) => panic!("closed before the inbox: {close:?}"),
        }
    }
}

enum Frame {
    Json(Value),
    /// The close code and reason, if any.
    Closed(Option<(CloseCode, String)>),
}

async fn next_frame(socket: &mut Socket) -> Frame {
    // One deadline for the frame, however many pings come before it.
    let read = async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => return Frame::Json(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(close))) => {
                    return Frame::Closed(close.map(|c| (c.code, c.reason.into_owned())));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Frame::Closed(None),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.expect("a frame within 20 s")
}

/// Reads until the socket closes; answers the close and the JSON frames seen before it.
pub(crate) async fn until_closed(socket: &mut Socket) -> (Option<(CloseCode, String)>, Vec<Value>) {
    let mut seen = Vec::new();
    loop {
        match next_frame(socket).await {
            Frame::Json(frame) => seen.push(frame),
            Frame::Closed(close) => return (close, seen),
        }
    }
}

pub(crate) fn revoked_close() -> Option<(CloseCode, String)> {
    Some((CloseCode::from(4001), "credential revoked".to_owned()))
}

/// After its close, a socket yields nothing more (no frame of the conversation started since).
async fn hears_nothing_more(socket: &mut Socket) {
    match tokio::time::timeout(Duration::from_secs(2), socket.next()).await {
        Ok(None) | Ok(Some(Err(_))) | Err(_) => {}
        Ok(Some(Ok(frame))) => panic!("a closed socket received {frame:?}"),
    }
}

/// An agent's socket sees a conversation started now (with the visitor's first message).
async fn sees_new_conversation(app: &TestApp, socket: &mut Socket) {
    let conversation = app.start_conversation().await;
    app.say(&conversation, "Hello").await;
    loop {
        match next_frame(socket).await {
            Frame::Json(frame) if frame["conversation"]["id"] == conversation.as_str() => return,
            Frame::Json(_) => continue,
            Frame::Closed(close) => panic!("the socket closed: {close:?}"),
        }
    }
}

async fn a_deleted_agents_socket_is_closed_and_hears_nothing_more(backend: Backend) {
    let app = app(backend).await;
    let (gone_id, gone_token) = new_agent(&app, "Gone").await;
    let (_, stays_token) = new_agent(&app, "Stays").await;
    let mut gone = agent_socket(&app.base, &gone_token).await;
    let mut stays = agent_socket(&app.base, &stays_token).await;
    // Both hear the workspace's live events before.
    sees_new_conversation(&app, &mut gone).await;
    sees_new_conversation(&app, &mut stays).await;
    let conversation = app.start_conversation().await;
    let mut stream =
        Events::open_with_key(&app, &app.url(&format!("/api/conversations/{conversation}/events")), &gone_token).await;
    assert_eq!(stream.next().await.0, Some(1), "the welcome, replayed");

    let (status, body) = delete(&app, &app.a.api_key, &format!("/api/agents/{gone_id}")).await;
    assert_eq!(status, 204, "{body}");
    let (close, _) = until_closed(&mut gone).await;
    assert_eq!(close, revoked_close());
    assert_eq!(stream.next().await.1, "revoked", "their SSE stream ends too");
    sees_new_conversation(&app, &mut stays).await;
    hears_nothing_more(&mut gone).await;
    assert_eq!(app.get(&gone_token, "/api/agents/me").await.0, 401);
    // Nor can the token open a new socket.
    let url = format!("{}/ws/agent?token={gone_token}", app.base.replacen("http", "ws", 1));
    assert!(tokio_tungstenite::connect_async(&url).await.is_err(), "a deleted agent cannot reconnect");
}

async fn replacing_an_agents_token_closes_the_old_tokens_socket(backend: Backend) {
    let app = app(backend).await;
    let (id, old_token) = new_agent(&app, "Rotor").await;
    let mut old = agent_socket(&app.base, &old_token).await;

    let (status, body) = app.post(&app.a.api_key, &format!("/api/agents/{id}/token"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let new_token = body["token"].as_str().unwrap().to_owned();
    assert!(new_token.starts_with("fda_") && new_token != old_token);
    assert_eq!(body["agent"]["id"], id);
    let (close, _) = until_closed(&mut old).await;
    assert_eq!(close, revoked_close());
    assert_eq!(app.get(&old_token, "/api/agents/me").await.0, 401);
    let mut new = agent_socket(&app.base, &new_token).await;
    sees_new_conversation(&app, &mut new).await;
    // Another workspace's agent is not found.
    let (status, _) = app.post(&app.b.api_key, &format!("/api/agents/{id}/token"), json!({})).await;
    assert_eq!(status, 404);
    sees_new_conversation(&app, &mut new).await;
}

/// How many nodes listen on the cluster's control channel under `prefix`.
async fn control_listeners(prefix: &str) -> i64 {
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (_, count): (String, i64) =
        redis::cmd("PUBSUB").arg("NUMSUB").arg(format!("{prefix}control")).query_async(&mut conn).await.unwrap();
    count
}

/// Waits until `nodes` nodes hear the control channel under `prefix`, so that nothing revoked
/// in a test is said before every node listens.
pub(crate) async fn wait_for_control_listeners(prefix: &str, nodes: i64) {
    let mut listening = 0;
    for _ in 0..100 {
        listening = control_listeners(prefix).await;
        if listening == nodes {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listening, nodes, "every node subscribes to the control channel");
}

async fn an_agent_deleted_on_one_node_loses_their_socket_on_another(backend: Backend) {
    let prefix = format!("frontdesk-test-{}:", uuid::Uuid::new_v4().simple());
    let app = spawn_app_with(backend, |args| {
        args.redis_url = Some("redis://127.0.0.1:6379".into());
        args.redis_prefix = Some(prefix.clone());
        args.credential_check_secs = Some(0);
    })
    .await;
    let other = app.node();
    wait_for_control_listeners(&prefix, 2).await;

    let (gone_id, gone_token) = new_agent(&app, "Remote").await;
    let (_, stays_token) = new_agent(&app, "Local").await;
    let mut gone = agent_socket(&other.base, &gone_token).await;
    let mut stays = agent_socket(&other.base, &stays_token).await;
    let (key_id, key) = new_key(&app, app.a.workspace_id, "remote-stream").await;
    let conversation = app.start_conversation().await;
    let url = format!("{}/api/conversations/{conversation}/events", other.base);
    let mut stream = Events::open_with_key(&app, &url, &key).await;
    assert_eq!(stream.next().await.0, Some(1), "the welcome, replayed");

    // Deleted through the first node: the socket on the other closes.
    let (status, _) = delete(&app, &app.a.api_key, &format!("/api/agents/{gone_id}")).await;
    assert_eq!(status, 204);
    let (close, _) = until_closed(&mut gone).await;
    assert_eq!(close, revoked_close());
    sees_new_conversation(&app, &mut stays).await;
    hears_nothing_more(&mut gone).await;

    // A key revoked through the first node ends its stream on the other.
    let (status, _) = delete(&app, &app.a.api_key, &format!("/api/keys/{key_id}")).await;
    assert_eq!(status, 204);
    assert_eq!(stream.next().await.1, "revoked");
    assert!(stream.ended().await);

    // The CLI, given the cluster's Redis, tells every node itself.
    let (cli_key_id, cli_key) = new_key(&app, app.a.workspace_id, "cli-revoked").await;
    let mut stream = Events::open_with_key(&app, &url, &cli_key).await;
    assert_eq!(stream.next().await.0, Some(1));
    let mut owned = app.binary_env();
    owned.push(("REDIS_URL", "redis://127.0.0.1:6379".to_owned()));
    owned.push(("FRONTDESK_REDIS_PREFIX", prefix.clone()));
    let envs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let workspace = app.a.workspace_id.to_string();
    let revoked = run_cli(&["key", "revoke", "--workspace", &workspace, "--id", &cli_key_id.to_string()], &envs);
    assert_eq!(revoked["nodes_told"], true, "{revoked}");
    assert_eq!(stream.next().await.1, "revoked");
}

async fn the_cli_lists_and_revokes_keys_and_nodes_catch_up_on_their_own(backend: Backend) {
    let db = TestDb::new(backend);
    let mut owned = db.binary_env();
    // No Redis: the running node learns of the CLI's revocation from its own check.
    owned.push(("FRONTDESK_CREDENTIAL_CHECK_SECS", "1".to_owned()));
    let envs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_cli(&["migrate"], &envs);
    let created = run_cli(&["workspace", "create", "--name", "Acme Clinic"], &envs);
    let workspace = created["workspace_id"].to_string();
    let first = created["api_key"].as_str().unwrap().to_owned();
    let second = run_cli(&["key", "create", "--workspace", &workspace, "--name", "reports"], &envs)["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = run_cli(&["workspace", "create", "--name", "Other"], &envs)["workspace_id"].to_string();

    let listed = run_cli(&["key", "list", "--workspace", &workspace], &envs);
    let text = listed.to_string();
    assert!(!text.contains(&first) && !text.contains(&second), "no secret is listed: {text}");
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{listed}");
    let second_row = keys.iter().find(|k| k["name"] == "reports").unwrap();
    assert!(second.starts_with(second_row["prefix"].as_str().unwrap()));
    let second_id = second_row["id"].to_string();

    let (mut server, base) = spawn_binary(&envs);
    let http = reqwest::Client::new();
    let conversation = {
        let res = http.post(format!("{base}/api/conversations")).bearer_auth(&first).json(&json!({})).send().await;
        let (status, body) = status_json(res.unwrap()).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    };
    let res = http.get(format!("{base}/api/conversations/{conversation}/events")).bearer_auth(&second).send().await;
    let mut stream = Events::from_response(res.unwrap());
    assert_eq!(stream.next().await.0, Some(1), "the welcome, replayed");

    // Another workspace's key id is not revoked.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["key", "revoke", "--workspace", &other, "--id", &second_id])
        .envs(envs.iter().copied())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!refused.status.success(), "another workspace's key cannot be revoked");
    let status = http.get(format!("{base}/api/workspace")).bearer_auth(&second).send().await.unwrap().status();
    assert_eq!(status, 200);

    let revoked = run_cli(&["key", "revoke", "--workspace", &workspace, "--id", &second_id], &envs);
    assert!(revoked["revoked"]["revoked_at"].is_i64(), "{revoked}");
    assert_eq!(revoked["nodes_told"], false);
    let status = http.get(format!("{base}/api/workspace")).bearer_auth(&second).send().await.unwrap().status();
    assert_eq!(status, 401, "revoked by the CLI: refused at once");
    assert_eq!(stream.next().await.1, "revoked", "the server's own check ends the key's stream");
    // The CLI may revoke a workspace's last key (the operator can always make another).
    let first_id = run_cli(&["key", "list", "--workspace", &workspace], &envs)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["revoked_at"].is_null())
        .unwrap()["id"]
        .to_string();
    run_cli(&["key", "revoke", "--workspace", &workspace, "--id", &first_id], &envs);
    let status = http.get(format!("{base}/api/workspace")).bearer_auth(&first).send().await.unwrap().status();
    assert_eq!(status, 401);
    server.kill().unwrap();
    server.wait().unwrap();
}
