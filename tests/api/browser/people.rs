//! People at both ends, in a real browser: an agent takes the conversation over (their name in
//! the header, their typing, their messages signed); the widget works from the keyboard alone
//! (Tab, Enter, Escape, focus kept where it belongs); the lead form before the first message is
//! checked in the browser and its contact reaches the server; on a phone the open panel fills
//! the screen.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{change_bot_settings, Browser, Embed, HostSite, Viewport, ENTER, ESCAPE, TAB, WAIT};
use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp};

/// Polls `check` (a REST read) until it answers `Some`, for at most [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_takes_over_and_the_visitor_sees_their_name_typing_and_messages() {
    let app = spawn_app_with(Backend::Sqlite, |args| args.agent_silence_secs = Some(0)).await;
    let host = HostSite::start();
    let page = host.page("/", &app.base, &app.a.bot_id, &Embed::default());
    let (status, created) =
        app.post(&app.a.api_key, "/api/agents", json!({ "name": "Dana Reyes", "email": "dana@clinic.test" })).await;
    assert_eq!(status, 201, "{created}");
    let agent_id = created["agent"]["id"].as_i64().unwrap();
    let token = created["token"].as_str().unwrap().to_owned();

    let browser = Browser::start("agent").await;
    browser.goto(&page).await;
    browser.open_widget().await;
    browser.send("Hello").await;
    browser
        .wait_messages("the bot's reply", "m.filter(x => x.seq !== null).length === 3 && !m.some(x => x.streaming)")
        .await;
    let conversation = browser.conversation_id(&app.a.bot_id).await;
    let none = browser.js("return shown(fd('.fd-agent'));", vec![]).await;
    assert_eq!(none, false, "no agent shown while the bot answers");

    let (status, taken) = app
        .post(&app.a.api_key, &format!("/api/conversations/{conversation}/takeover"), json!({ "agent_id": agent_id }))
        .await;
    assert_eq!(status, 200, "{taken}");
    browser
        .wait_for(
            "the agent's name in the header",
            "const a = fd('.fd-agent'); return shown(a) && a.textContent.includes('Dana Reyes');",
            vec![],
        )
        .await;

    // The agent types (their socket), and the visitor sees it.
    let url = format!("{}/ws/agent?token={token}", app.base.replacen("http://", "ws://", 1));
    let (mut agent, _) = tokio_tungstenite::connect_async(&url).await.expect("the agent's socket");
    let typing = json!({ "type": "typing", "conversation_id": conversation, "on": true, "ref": 1 });
    agent.send(Message::Text(typing.to_string())).await.unwrap();
    let ack = loop {
        let frame = tokio::time::timeout(WAIT, agent.next()).await.expect("an agent frame").unwrap().unwrap();
        if let Message::Text(text) = frame {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["ref"] == 1 {
                break frame;
            }
        }
    };
    assert_eq!(ack["type"], "ack", "{ack}");
    browser
        .wait_for(
            "the agent typing",
            "const t = fd('.fd-typing'); return shown(t) && t.dataset.who === 'agent';",
            vec![],
        )
        .await;
    browser.screenshots("agent-typing").await;

    let (status, sent) = app
        .post(
            &app.a.api_key,
            &format!("/api/conversations/{conversation}/agent-messages"),
            json!({ "agent_id": agent_id, "text": "Hi, Dana here. How can I help?" }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let seq = sent["message"]["seq"].as_i64().unwrap();
    let rendered = browser
        .wait_messages(
            "the agent's message, signed",
            "m.some(x => x.sender === 'agent' && x.seq !== null && x.text.includes('Hi, Dana here.'))",
        )
        .await;
    let message = rendered.iter().find(|m| m["sender"] == "agent").unwrap();
    assert_eq!(message["seq"], seq, "{message}");
    assert!(
        message["author"].as_str().is_some_and(|a| a.contains("Dana Reyes")),
        "the agent's name on their message (.fd-author): {message}"
    );
    assert!(
        !message["text"].as_str().unwrap().contains("Dana Reyes"),
        "the name is the author line, not part of the text: {message}"
    );
    browser.screenshots("agent-joined").await;

    // The visitor answers the person, and the bot stays quiet.
    browser.send("Can I move my visit to Friday?").await;
    browser
        .wait_messages(
            "the visitor's answer stored",
            "m.some(x => x.sender === 'visitor' && x.seq !== null && x.text.includes('Friday'))",
        )
        .await;
    let stored = app.messages(&conversation).await;
    assert_eq!(stored.last().unwrap()["sender"], "visitor", "the bot does not answer for the agent: {stored:#?}");
}

/// Types `text` with key actions into whatever has the focus.
async fn type_keys(browser: &Browser, text: &str) {
    let keys: Vec<char> = text.chars().collect();
    browser.press(&keys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_works_from_the_keyboard_alone() {
    let app = spawn_app(Backend::Sqlite).await;
    let host = HostSite::start();
    let page = host.page("/", &app.base, &app.a.bot_id, &Embed::default());
    let browser = Browser::start("keyboard").await;
    browser.goto(&page).await;
    browser.wait_for("the launcher", "return shown(fd('button.fd-launcher'));", vec![]).await;

    // Tab through the page (its two links and its button) to the launcher.
    let on_launcher = "return !!fdRoot && document.activeElement === fdHost && \
                       !!fdRoot.activeElement && fdRoot.activeElement.matches('button.fd-launcher');";
    let mut tabs = 0;
    while browser.js(on_launcher, vec![]).await != true {
        tabs += 1;
        assert!(tabs <= 8, "Tab never reached the launcher (focus on {})", focus(&browser).await);
        browser.press(&[TAB]).await;
    }
    let label = browser.js("return fd('button.fd-launcher').getAttribute('aria-label');", vec![]).await;
    assert!(label.as_str().is_some_and(|l| !l.trim().is_empty()), "the launcher has an aria-label: {label}");
    assert_eq!(browser.js("return fd('button.fd-launcher').getAttribute('aria-expanded');", vec![]).await, "false");

    // Enter opens it, with the focus in the message box.
    browser.press(&[ENTER]).await;
    browser.wait_for("the panel open", "return shown(fd('.fd-panel'));", vec![]).await;
    browser
        .wait_for(
            "the focus in the message box",
            "return document.activeElement === fdHost && !!fdRoot.activeElement && \
             fdRoot.activeElement.matches('textarea.fd-input');",
            vec![],
        )
        .await;
    assert_eq!(browser.js("return fd('button.fd-launcher').getAttribute('aria-expanded');", vec![]).await, "true");
    browser.welcome().await;

    // Type, Enter sends.
    type_keys(&browser, "Where are you located?").await;
    browser.press(&[ENTER]).await;
    let rendered = browser
        .wait_messages(
            "the message sent and answered",
            "m.some(x => x.sender === 'visitor' && x.seq !== null && x.text.trim() === 'Where are you located?') && \
             m.filter(x => x.seq !== null).length === 3 && !m.some(x => x.streaming)",
        )
        .await;
    assert!(rendered[2]["text"].as_str().unwrap().contains("Harbour Street"), "{rendered:#?}");
    let emptied = browser.js("return fd('textarea.fd-input').value;", vec![]).await;
    assert_eq!(emptied, "", "the message box is emptied once sent");

    // Escape closes, and the focus goes back to the launcher.
    browser.press(&[ESCAPE]).await;
    browser.wait_for("the panel closed", "return !shown(fd('.fd-panel'));", vec![]).await;
    browser.wait_for("the focus back on the launcher", on_launcher, vec![]).await;
    assert_eq!(browser.js("return fd('button.fd-launcher').getAttribute('aria-expanded');", vec![]).await, "false");
}

/// What has the focus, for a failure message.
async fn focus(browser: &Browser) -> Value {
    browser
        .js(
            "const a = document.activeElement; const inner = fdRoot && fdRoot.activeElement; \
             return (a ? a.tagName + '#' + a.id : 'none') + (inner ? ' > ' + inner.tagName + '.' + inner.className : '');",
            vec![],
        )
        .await
}

/// Records the frames the page's WebSockets send from now on, in `window.__sent`.
const SPY_ON_SOCKETS: &str = "window.__sent = window.__sent || []; \
    if (!WebSocket.prototype.__spied) { const send = WebSocket.prototype.send; \
      WebSocket.prototype.send = function (data) { try { window.__sent.push(JSON.parse(data)); } catch (e) {} \
        return send.call(this, data); }; WebSocket.prototype.__spied = true; } return true;";

async fn leads(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get(&app.a.api_key, "/api/leads").await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lead_form_before_the_chat_is_checked_in_the_browser_and_saved_on_the_server() {
    let app = spawn_app(Backend::Sqlite).await;
    change_bot_settings(
        &app,
        json!({ "widget": { "lead_capture": {
            "enabled": true, "when": "before", "message": "Before we start, how can we reach you?",
            "fields": [ { "name": "name", "required": true }, { "name": "email", "required": true },
                        { "name": "phone", "required": false } ] } } }),
    )
    .await;
    let host = HostSite::start();
    let page = host.page("/", &app.base, &app.a.bot_id, &Embed::default());
    let browser = Browser::start("lead-form").await;
    browser.goto(&page).await;
    browser.open_widget().await;
    browser.wait_for("the lead form", "return shown(fd('form.fd-lead-form'));", vec![]).await;
    let fields = browser
        .js("return Array.from(fd('form.fd-lead-form').elements).map(e => e.name).filter(n => n);", vec![])
        .await;
    assert_eq!(fields, json!(["name", "email", "phone"]), "the configured fields, in order");
    browser.screenshots("lead-form").await;
    browser.js(SPY_ON_SOCKETS, vec![]).await;

    // An address that is not one: refused in the browser, nothing sent.
    browser.shadow("form.fd-lead-form input[name=name]").await.send_keys("Jane Doe").await.unwrap();
    browser.shadow("form.fd-lead-form input[name=email]").await.send_keys("jane.example.com").await.unwrap();
    submit_lead_form(&browser).await;
    browser
        .wait_for(
            "the email marked invalid",
            "const e = fd('form.fd-lead-form input[name=email]'); \
             const err = fdRoot.getElementById(e.getAttribute('aria-describedby') || ''); \
             return e.getAttribute('aria-invalid') === 'true' && !!err && err.matches('.fd-field-error') && \
                    shown(err) && err.textContent.trim().length > 0;",
            vec![],
        )
        .await;
    browser.screenshots("lead-form-invalid").await;
    let sent = browser.js("return window.__sent.filter(f => f.type === 'contact');", vec![]).await;
    assert_eq!(sent, json!([]), "an invalid form is not sent");
    assert!(browser.js("return shown(fd('form.fd-lead-form'));", vec![]).await == true, "the form stays");
    assert!(leads(&app).await.iter().all(|l| l["name"] != "Jane Doe"), "no lead from an invalid form");

    // Corrected: sent, saved as the conversation's contact, and a lead.
    let email = browser.shadow("form.fd-lead-form input[name=email]").await;
    email.clear().await.unwrap();
    email.send_keys("jane@example.com").await.unwrap();
    submit_lead_form(&browser).await;
    browser.wait_for("the form gone", "return !shown(fd('form.fd-lead-form'));", vec![]).await;
    browser.wait_for("the message box", "return shown(fd('textarea.fd-input'));", vec![]).await;
    let sent = browser.js("return window.__sent.filter(f => f.type === 'contact');", vec![]).await;
    assert_eq!(sent.as_array().map(Vec::len), Some(1), "one contact frame: {sent}");
    assert_eq!(sent[0]["email"], "jane@example.com", "{sent}");
    assert_eq!(sent[0]["name"], "Jane Doe", "{sent}");

    let conversation = browser.conversation_id(&app.a.bot_id).await;
    let (app_ref, variables) = (&app, format!("/api/conversations/{conversation}/variables"));
    let contact = eventually("the contact in the conversation's variables", || {
        let variables = variables.clone();
        async move {
            let (status, body) = app_ref.get(&app_ref.a.api_key, &variables).await;
            let contact = &body["variables"]["contact"];
            (status == 200 && contact["email"] == "jane@example.com").then_some(contact.clone())
        }
    })
    .await;
    assert_eq!(contact["name"], "Jane Doe", "{contact}");
    let lead = eventually("a lead for Jane", || async move {
        leads(app_ref).await.into_iter().find(|l| l["email"] == "jane@example.com")
    })
    .await;
    assert_eq!(lead["name"], "Jane Doe", "{lead}");
    assert_eq!(lead["conversation_id"], conversation, "{lead}");

    // And the chat goes on.
    browser.send("Do you take Aetna?").await;
    browser
        .wait_messages(
            "the answer",
            "m.some(x => x.sender === 'bot' && x.seq !== null && x.text.includes('Aetna')) && !m.some(x => x.streaming)",
        )
        .await;
}

async fn submit_lead_form(browser: &Browser) {
    browser.click("form.fd-lead-form button[type=submit], form.fd-lead-form button:not([type])").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_open_panel_fills_the_screen() {
    let app = spawn_app(Backend::Sqlite).await;
    let host = HostSite::start();
    let page = host.page("/", &app.base, &app.a.bot_id, &Embed::default());
    let browser = Browser::start("phone").await;
    browser.set_viewport(Viewport::Phone).await;
    browser.goto(&page).await;
    browser.wait_for("the launcher", "return shown(fd('button.fd-launcher'));", vec![]).await;
    browser.screenshot("launcher-closed").await;
    let launcher = browser
        .js(
            "const r = fd('button.fd-launcher').getBoundingClientRect(); \
             return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, w: innerWidth, h: innerHeight };",
            vec![],
        )
        .await;
    let inside = |v: &Value| v.as_f64().unwrap();
    assert!(
        inside(&launcher["left"]) >= 0.0
            && inside(&launcher["top"]) >= 0.0
            && inside(&launcher["right"]) <= inside(&launcher["w"])
            && inside(&launcher["bottom"]) <= inside(&launcher["h"]),
        "the launcher is on the screen: {launcher}"
    );
    browser.open_widget().await;
    browser.welcome().await;
    browser.settle().await;
    let panel = browser
        .js(
            "const r = fd('.fd-panel').getBoundingClientRect(); \
             return { left: r.left, top: r.top, width: r.width, height: r.height, w: innerWidth, h: innerHeight };",
            vec![],
        )
        .await;
    browser.screenshot("panel-open").await;
    let near = |a: &Value, b: &Value| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 1.0;
    assert!(
        near(&panel["left"], &json!(0)) && near(&panel["top"], &json!(0)),
        "the panel starts at the screen's corner: {panel}"
    );
    assert!(near(&panel["width"], &panel["w"]) && near(&panel["height"], &panel["h"]), "and fills it: {panel}");
    // The message box is reachable on the phone.
    browser.send("What are your opening hours?").await;
    browser
        .wait_messages(
            "the answer",
            "m.some(x => x.sender === 'bot' && x.seq !== null && x.text.includes('Monday')) && !m.some(x => x.streaming)",
        )
        .await;
    browser.screenshot("answered").await;
}
