//! The console's sign-in, over HTTP and the agent socket: invite links that set a password
//! once, sign-in (wrong passwords refused alike, attempts limited), the session cookie and its
//! CSRF token, roles enforced by the server, sign-out, deactivation (on every node of a
//! cluster), API keys made and revoked,
//! internal notes and canned replies, and the console's page itself.

use futures::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, spawn_app_with, status_json, Backend, TestApp};
use crate::on_both_backends;
use crate::revocation::{revoked_close, until_closed};

on_both_backends!(
    an_invited_agent_sets_a_password_signs_in_and_out,
    changes_made_with_the_cookie_need_the_csrf_token,
    the_server_enforces_roles_for_console_sessions,
    notes_and_canned_replies_stay_in_their_workspace,
    the_inbox_finds_conversations_by_words_contact_and_bot,
    a_deactivated_agent_is_signed_out_on_every_node,
);

const PASSWORD: &str = "correct horse battery";

/// A browser-like client: the session cookie and CSRF token it was given.
struct Console<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
}

impl Console<'_> {
    fn request(&self, method: reqwest::Method, path: &str, csrf: bool) -> reqwest::RequestBuilder {
        let req =
            self.app.http.request(method, self.app.url(path)).header("cookie", format!("fd_session={}", self.cookie));
        if csrf {
            req.header("x-csrf-token", &self.csrf)
        } else {
            req
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        status_json(self.request(reqwest::Method::GET, path, false).send().await.unwrap()).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        status_json(self.request(method, path, true).json(&body).send().await.unwrap()).await
    }
}

/// The `fd_session` cookie a response set, checked for its attributes.
fn session_cookie(res: &reqwest::Response) -> String {
    let set = res.headers().get("set-cookie").expect("a session cookie").to_str().unwrap().to_owned();
    assert!(set.starts_with("fd_session=fds_"), "{set}");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    set.split(';').next().unwrap().trim_start_matches("fd_session=").to_owned()
}

/// An agent of workspace A with `role`, invited and with a password set; signed in.
async fn agent_signed_in<'a>(app: &'a TestApp, email: &str, role: &str) -> (i64, Console<'a>) {
    let (status, created) =
        app.post(&app.a.api_key, "/api/agents", json!({ "name": "Dana Reyes", "email": email, "role": role })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["agent"]["id"].as_i64().unwrap();
    let (status, invite) = app.post(&app.a.api_key, &format!("/api/agents/{id}/invite"), json!({})).await;
    assert_eq!(status, 201, "{invite}");
    let link = invite["link"].as_str().unwrap();
    assert!(link.starts_with("/console/set-password?token=fdp_"), "{link}");
    let token = link.split("token=").nth(1).unwrap();
    let res = app
        .http
        .post(app.url("/api/auth/password"))
        .json(&json!({ "token": token, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = session_cookie(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["agent"]["email"], email);
    assert_eq!(body["agent"]["role"], role);
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    (id, Console { app, cookie, csrf })
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/auth/sign-in"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

async fn an_invited_agent_sets_a_password_signs_in_and_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, first) = agent_signed_in(&app, "dana@clinic.example", "agent").await;
    let (status, session) = first.get("/api/auth/session").await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["workspace"]["public_id"], json!(app.a.public_id));

    // The link works once; a weak password or a made-up token is refused, changing nothing.
    let (_, invite) = app.post(&app.a.api_key, &format!("/api/agents/{id}/invite"), json!({})).await;
    let token = invite["link"].as_str().unwrap().split("token=").nth(1).unwrap().to_owned();
    let weak = app
        .http
        .post(app.url("/api/auth/password"))
        .json(&json!({ "token": token, "password": "short" }))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 422);
    let made_up = json!({ "token": "fdp_nothing", "password": "another long password" });
    assert_eq!(app.http.post(app.url("/api/auth/password")).json(&made_up).send().await.unwrap().status(), 400);
    // A reset ends the sessions the agent had.
    let reset = json!({ "token": token, "password": "a brand new password" });
    assert_eq!(app.http.post(app.url("/api/auth/password")).json(&reset).send().await.unwrap().status(), 200);
    assert_eq!(first.get("/api/auth/session").await.0, 401, "the old session ended with the new password");
    let again = app.http.post(app.url("/api/auth/password")).json(&reset).send().await.unwrap();
    assert_eq!(again.status(), 410, "a used link is gone");

    // Sign-in: the old password no longer works, a wrong one and an unknown email get the same answer.
    let (status, wrong) = status_json(sign_in(&app, "dana@clinic.example", PASSWORD).await).await;
    assert_eq!(status, 401);
    let (status, unknown) = status_json(sign_in(&app, "nobody@clinic.example", "whatever it is").await).await;
    assert_eq!(status, 401);
    assert_eq!(wrong, unknown);
    let res = sign_in(&app, " Dana@Clinic.example ", "a brand new password").await;
    assert_eq!(res.status(), 200);
    let cookie = session_cookie(&res);
    let body: Value = res.json().await.unwrap();
    let console = Console { app: &app, cookie, csrf: body["csrf_token"].as_str().unwrap().to_owned() };
    assert_eq!(console.get("/api/agents/me").await.0, 200);

    // The agent socket opens with the cookie from the console's own origin only.
    let ws_with = |origin: &str| {
        let mut req = format!("{}/ws/agent", app.base.replacen("http", "ws", 1)).into_client_request().unwrap();
        req.headers_mut().insert("cookie", format!("fd_session={}", console.cookie).parse().unwrap());
        req.headers_mut().insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    assert!(ws_with("https://evil.example").await.is_err(), "another site's page may not use the cookie");
    let (mut socket, _) = ws_with(&app.base).await.expect("the console's page opens the socket");
    let first_frame = loop {
        match socket.next().await.unwrap().unwrap() {
            Message::Text(text) => break serde_json::from_str::<Value>(&text).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(first_frame["type"], "inbox", "{first_frame}");
    assert_eq!(first_frame["agent"]["name"], "Dana Reyes");

    // Signing out needs the token too, then the session is gone.
    let (status, _) =
        status_json(console.request(reqwest::Method::POST, "/api/auth/sign-out", false).send().await.unwrap()).await;
    assert_eq!(status, 403);
    let out = console.request(reqwest::Method::POST, "/api/auth/sign-out", true).send().await.unwrap();
    assert_eq!(out.status(), 204);
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(console.get("/api/auth/session").await.0, 401);
    assert_eq!(status_json(app.http.get(app.url("/api/auth/session")).send().await.unwrap()).await.0, 401);
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_account() {
    let app = spawn_app_with(Backend::Sqlite, |args| {
        args.sign_in_per_account_per_minute = Some(3);
    })
    .await;
    let (_, _console) = agent_signed_in(&app, "lee@clinic.example", "agent").await;
    for _ in 0..3 {
        assert_eq!(sign_in(&app, "lee@clinic.example", "not the password").await.status(), 401);
    }
    let (status, refused) = status_json(sign_in(&app, "lee@clinic.example", PASSWORD).await).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["code"], "rate_limited");
    assert!(refused["retry_after"].as_u64().unwrap() >= 1);
    // Another account from the same address is not held back by this one.
    assert_eq!(sign_in(&app, "someone@clinic.example", "not the password").await.status(), 401);
}

async fn changes_made_with_the_cookie_need_the_csrf_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, console) = agent_signed_in(&app, "dana@clinic.example", "agent").await;
    let conversation = app.start_conversation().await;
    let path = format!("/api/conversations/{conversation}/notes");
    for csrf in [None, Some("not-the-token")] {
        let mut req = console.request(reqwest::Method::POST, &path, false).json(&json!({ "text": "call back" }));
        if let Some(token) = csrf {
            req = req.header("x-csrf-token", token);
        }
        let (status, body) = status_json(req.send().await.unwrap()).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["code"], "csrf");
    }
    let (_, notes) = console.get(&path).await;
    assert_eq!(notes["notes"], json!([]), "nothing was written without the token");
    let (status, note) = console.send(reqwest::Method::POST, &path, json!({ "text": "call back" })).await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(note["agent"]["name"], "Dana Reyes");
}

async fn the_server_enforces_roles_for_console_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, agent) = agent_signed_in(&app, "dana@clinic.example", "agent").await;
    for path in
        ["/api/conversations", "/api/bots", "/api/agents", "/api/leads", "/api/canned-replies", "/api/workspace"]
    {
        assert_eq!(agent.get(path).await.0, 200, "an agent reads {path}");
    }
    for path in ["/api/keys", "/api/webhooks", "/api/knowledge/sources", "/api/flows"] {
        assert_eq!(agent.get(path).await.0, 403, "an agent may not read {path}");
    }
    let bot = format!("/api/bots/{}", app.a.bot_id);
    let (status, body) = agent.send(reqwest::Method::PATCH, &bot, json!({ "name": "Mine now" })).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(agent.send(reqwest::Method::POST, "/api/keys", json!({ "name": "mine" })).await.0, 403);
    assert_eq!(
        agent.send(reqwest::Method::POST, "/api/canned-replies", json!({ "shortcut": "hi", "text": "Hello!" })).await.0,
        403
    );

    // Made an admin: the next request may; lowered again: the next request may not.
    let (status, _) = status_json(
        app.http
            .patch(app.url(&format!("/api/agents/{id}")))
            .bearer_auth(&app.a.api_key)
            .json(&json!({ "role": "admin" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(agent.get("/api/keys").await.0, 200);
    let (status, key) = agent.send(reqwest::Method::POST, "/api/keys", json!({ "name": "console" })).await;
    assert_eq!(status, 201, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("fdk_") && secret.starts_with(key["prefix"].as_str().unwrap()));
    assert_eq!(app.get(&secret, "/api/workspace").await.0, 200, "the new key works");
    let (status, _) = status_json(
        agent.request(reqwest::Method::DELETE, &format!("/api/keys/{}", key["id"]), true).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(app.get(&secret, "/api/workspace").await.0, 401, "the revoked key does not");
    status_json(
        app.http
            .patch(app.url(&format!("/api/agents/{id}")))
            .bearer_auth(&app.a.api_key)
            .json(&json!({ "role": "agent" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(agent.get("/api/keys").await.0, 403);

    // Deactivated: the session ends.
    let res = app.http.delete(app.url(&format!("/api/agents/{id}"))).bearer_auth(&app.a.api_key).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(agent.get("/api/auth/session").await.0, 401);
}

async fn notes_and_canned_replies_stay_in_their_workspace(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, admin) = agent_signed_in(&app, "owner@clinic.example", "admin").await;
    let (status, canned) = admin
        .send(reqwest::Method::POST, "/api/canned-replies", json!({ "shortcut": "/Hours", "text": "We open at 8." }))
        .await;
    assert_eq!(status, 201, "{canned}");
    assert_eq!(canned["shortcut"], "hours");
    let (status, _) =
        admin.send(reqwest::Method::POST, "/api/canned-replies", json!({ "shortcut": "hours", "text": "x" })).await;
    assert_eq!(status, 409);
    let (status, bad) =
        admin.send(reqwest::Method::POST, "/api/canned-replies", json!({ "shortcut": "two words", "text": "x" })).await;
    assert_eq!(status, 422, "{bad}");
    let (_, listed) = admin.get("/api/canned-replies").await;
    assert_eq!(listed["canned_replies"].as_array().unwrap().len(), 1);
    let (_, other) = app.get(&app.b.api_key, "/api/canned-replies").await;
    assert_eq!(other["canned_replies"], json!([]), "workspace B sees none of A's");
    let res = app
        .http
        .delete(app.url(&format!("/api/canned-replies/{}", canned["id"])))
        .bearer_auth(&app.b.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let conversation = app.start_conversation().await;
    let path = format!("/api/conversations/{conversation}/notes");
    let (status, _) = admin.send(reqwest::Method::POST, &path, json!({ "text": "  " })).await;
    assert_eq!(status, 422);
    admin.send(reqwest::Method::POST, &path, json!({ "text": "Prefers mornings" })).await;
    let (_, notes) = admin.get(&path).await;
    assert_eq!(notes["notes"][0]["text"], "Prefers mornings");
    assert_eq!(app.get(&app.b.api_key, &path).await.0, 404, "another workspace's conversation is not found");
    // Notes are never the visitor's to read.
    let messages = app.messages(&conversation).await;
    assert!(!messages.iter().any(|m| m["content"] == "Prefers mornings"));
}

#[tokio::test]
async fn the_console_page_is_served_with_its_hashed_files() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/console", "/console/inbox", "/console/set-password?token=fdp_x"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(res.headers()["referrer-policy"], "no-referrer");
        let page = res.text().await.unwrap();
        assert!(!page.contains("__FRONTDESK"), "{page}");
        let start = page.find("/console/assets/console.").expect("a hashed script");
        let end = start + page[start..].find('"').unwrap();
        let asset = app.http.get(app.url(&page[start..end])).send().await.unwrap();
        assert_eq!(asset.status(), 200);
        assert_eq!(asset.headers()["cache-control"], "public, max-age=31536000, immutable");
    }
    let preview = app.http.get(app.url(&format!("/console/preview/{}", app.a.bot_id))).send().await.unwrap();
    assert_eq!(preview.status(), 200);
    assert!(preview.text().await.unwrap().contains(&app.a.bot_id));
}

async fn found_ids(app: &TestApp, query: &str) -> Vec<String> {
    let (status, body) = app.get(&app.a.api_key, &format!("/api/conversations?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

async fn the_inbox_finds_conversations_by_words_contact_and_bot(backend: Backend) {
    let app = spawn_app(backend).await;
    let about_parking = app.start_conversation().await;
    app.say(&about_parking, "Is there PARKING nearby?").await;
    let dana = app.start_conversation().await;
    let (status, _) = status_json(
        app.http
            .patch(app.url(&format!("/api/conversations/{dana}/variables")))
            .bearer_auth(&app.a.api_key)
            .json(&json!({ "contact": { "name": "Dana Reyes", "email": "dana.r@mail.com" } }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let literal = app.start_conversation().await;
    app.say(&literal, "a 100% sure thing").await;
    assert_eq!(
        found_ids(&app, "q=parking").await,
        vec![about_parking.clone()],
        "a word of a message, whatever its case"
    );
    assert_eq!(found_ids(&app, "q=reyes").await, vec![dana.clone()], "the contact's name");
    assert_eq!(found_ids(&app, "q=DANA.R%40mail").await, vec![dana.clone()], "the contact's email");
    assert_eq!(found_ids(&app, "q=100%25").await, vec![literal.clone()], "a % is a character, not a wildcard");
    assert!(found_ids(&app, "q=nothing+like+this").await.is_empty());
    assert_eq!(found_ids(&app, &format!("bot_id={}&q=parking", app.a.bot_id)).await, [about_parking]);
    assert_eq!(app.get(&app.a.api_key, &format!("/api/conversations?bot_id={}", app.b.bot_id)).await.0, 404);
    assert_eq!(app.get(&app.a.api_key, "/api/conversations?q=a").await.0, 400);
    assert!(found_ids(&app, "q=parking").await.iter().all(|id| id != &dana));
    // The contact's other conversations.
    let (_, detail) = app.get(&app.a.api_key, &format!("/api/conversations/{dana}")).await;
    let contact_id = detail["contact_id"].as_i64().unwrap_or_else(|| panic!("linked to a contact: {detail}"));
    assert_eq!(found_ids(&app, &format!("contact_id={contact_id}")).await, vec![dana.clone()]);
    // Another workspace's words are not found.
    let (_, other) = app.get(&app.b.api_key, "/api/conversations?q=parking").await;
    assert_eq!(other["conversations"], json!([]));
}

/// The console's agent socket at `base`, opened with the session cookie from `base`'s own
/// origin, once its inbox snapshot has arrived.
async fn console_socket(base: &str, cookie: &str) -> crate::helpers::Socket {
    let mut req = format!("{}/ws/agent", base.replacen("http", "ws", 1)).into_client_request().unwrap();
    req.headers_mut().insert("cookie", format!("fd_session={cookie}").parse().unwrap());
    req.headers_mut().insert("origin", base.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(req).await.expect("the console's socket opens");
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(20), socket.next()).await;
        match frame.expect("the inbox within 20 s") {
            Some(Ok(Message::Text(text))) if serde_json::from_str::<Value>(&text).unwrap()["type"] == "inbox" => {
                return socket
            }
            Some(Ok(Message::Close(close))) => panic!("closed before the inbox: {close:?}"),
            Some(Ok(_)) => continue,
            other => panic!("the socket ended before the inbox: {other:?}"),
        }
    }
}

async fn a_deactivated_agent_is_signed_out_on_every_node(backend: Backend) {
    let prefix = format!("frontdesk-test-{}:", uuid::Uuid::new_v4().simple());
    let app = spawn_app_with(backend, |args| {
        args.redis_url = Some("redis://127.0.0.1:6379".into());
        args.redis_prefix = Some(prefix.clone());
        // No periodic re-check: only the cluster's control message can end the other node's socket.
        args.credential_check_secs = Some(0);
    })
    .await;
    let other = app.node();
    crate::revocation::wait_for_control_listeners(&prefix, 2).await;

    let (id, console) = agent_signed_in(&app, "dana@clinic.example", "agent").await;
    let (_, colleague) = agent_signed_in(&app, "sam@clinic.example", "agent").await;
    // The same session works on the other node: its page and its socket.
    let on_other = |cookie: &str| {
        app.http.get(format!("{}/api/auth/session", other.base)).header("cookie", format!("fd_session={cookie}"))
    };
    assert_eq!(on_other(&console.cookie).send().await.unwrap().status(), 200);
    let mut socket = console_socket(&other.base, &console.cookie).await;
    let mut colleagues = console_socket(&other.base, &colleague.cookie).await;

    // Deactivated by the owner through the first node.
    let res = app.http.delete(app.url(&format!("/api/agents/{id}"))).bearer_auth(&app.a.api_key).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(until_closed(&mut socket).await.0, revoked_close(), "the other node closes the socket as revoked");
    assert_eq!(on_other(&console.cookie).send().await.unwrap().status(), 401, "the session ends on the other node");
    assert_eq!(console.get("/api/auth/session").await.0, 401, "and on the first");
    // Their colleague, on the same node, is untouched: still signed in, still hearing the inbox.
    assert_eq!(on_other(&colleague.cookie).send().await.unwrap().status(), 200);
    let conversation = app.start_conversation().await;
    app.say(&conversation, "Hello").await;
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(20), colleagues.next()).await;
        match frame.expect("the colleague hears the new conversation within 20 s") {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["conversation"]["id"] == conversation.as_str() {
                    break;
                }
            }
            Some(Ok(Message::Close(close))) => panic!("the colleague's socket closed: {close:?}"),
            Some(Ok(_)) => continue,
            other => panic!("the colleague's socket ended: {other:?}"),
        }
    }
    // The colleague signs out on the first node: their socket on the other ends as well.
    let out = colleague.request(reqwest::Method::POST, "/api/auth/sign-out", true).send().await.unwrap();
    assert_eq!(out.status(), 204);
    let closed = until_closed(&mut colleagues).await.0;
    assert_eq!(closed, revoked_close(), "signing out ends the session's socket everywhere");
}
