//! The conversation in a real browser: a reply streams into a bubble and ends as the stored
//! text; quick prompts and a flow's buttons are clickable choices; a reload (settled, and in the
//! middle of a streamed reply) shows each stored message once; a message typed while the real
//! server binary is down is shown pending, then sent once when it is back, and answered; two
//! windows of one visitor show one conversation live.

use serde_json::{json, Value};

use super::{change_bot_settings, free_port, Binary, Browser, Embed, HostSite, Viewport};
use crate::helpers::{run_cli, spawn_app, Backend, TestApp, TestDb};

const POLICY: &str = "Appointments can be cancelled or moved free of charge up to twenty four hours before \
    they start. Later cancellations are charged half the price of the visit, and a missed appointment without \
    notice is charged in full. We make exceptions for emergencies and illness, so please call us as soon as \
    you know you cannot come and we will find a new time together.";

/// Whitespace runs folded to one space, ends trimmed: the stored text and the rendered one
/// compare equal when only line breaks are laid out differently.
fn folded(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Panics unless every stored seq is rendered exactly once and nothing else has a seq.
fn assert_each_seq_once(rendered: &[Value], stored: &[Value], context: &str) {
    let mut seqs: Vec<i64> = rendered.iter().filter_map(|m| m["seq"].as_i64()).collect();
    seqs.sort_unstable();
    let expected: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, expected, "{context}: each stored message shown exactly once; rendered {rendered:#?}");
    for message in stored {
        let seq = message["seq"].as_i64().unwrap();
        let shown = rendered.iter().find(|m| m["seq"] == seq).unwrap();
        assert_eq!(shown["sender"], message["sender"], "{context}: seq {seq}");
        assert_eq!(
            folded(shown["text"].as_str().unwrap_or_default()),
            folded(message["content"].as_str().unwrap_or_default()),
            "{context}: seq {seq}"
        );
    }
}

/// The test server (SQLite), a host site and a page on it embedding the widget.
async fn site(embed: &Embed) -> (TestApp, HostSite, String) {
    let app = spawn_app(Backend::Sqlite).await;
    let host = HostSite::start();
    let page = host.page("/", &app.base, &app.a.bot_id, embed);
    (app, host, page)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_streams_into_a_bubble_and_ends_as_the_stored_text() {
    let (app, _host, page) = site(&Embed::default()).await;
    // A typing pace, so that the bubble can be seen growing.
    change_bot_settings(
        &app,
        json!({ "stream_delay_ms": 120, "policies": [{ "title": "Cancellation policy", "content": POLICY }] }),
    )
    .await;
    let browser = Browser::start("streaming").await;
    browser.goto(&page).await;
    browser.wait_for("the launcher", "return shown(fd('button.fd-launcher'));", vec![]).await;
    let closed = browser.js("return shown(fd('.fd-panel'));", vec![]).await;
    assert_eq!(closed, false, "the panel starts closed");
    browser.screenshots("launcher-closed").await;

    browser.open_widget().await;
    let welcome = browser.welcome().await;
    browser.screenshots("welcome").await;

    browser.send("What is your cancellation policy?").await;
    let conversation = browser.conversation_id(&app.a.bot_id).await;
    // While it streams: a bubble marked fd-streaming, without a seq, holding part of the reply.
    let partial = browser
        .wait_for(
            "a streaming bubble with some of the reply",
            "const s = fdAll('.fd-msg.fd-streaming'); \
             if (s.length !== 1) return null; \
             const t = textOf(s[0]); \
             return t.trim().length > 0 ? { text: t, seq: s[0].dataset.seq === undefined ? null : s[0].dataset.seq, \
                                              sender: s[0].dataset.sender } : null;",
            vec![],
        )
        .await;
    assert_eq!(partial["seq"], Value::Null, "a streaming bubble has no seq until its done: {partial}");
    assert_eq!(partial["sender"], "bot", "{partial}");
    browser.screenshots("streaming").await;

    // Then the stored reply: the same bubble, no longer streaming, with its seq and all of the text.
    let rendered = browser
        .wait_messages(
            "the finished reply",
            "m.some(x => x.sender === 'bot' && x.seq !== null && x.seq > 2 && !x.streaming) && \
             !m.some(x => x.streaming)",
        )
        .await;
    let stored = app.messages(&conversation).await;
    assert_eq!(folded(&welcome), folded(stored[0]["content"].as_str().unwrap()), "the welcome shown is the stored one");
    let reply = stored.iter().find(|m| m["sender"] == "bot" && m["seq"].as_i64() > Some(2)).expect("the stored reply");
    assert_eq!(reply["content"].as_str().unwrap(), POLICY, "the bot answered the policy: {reply}");
    let shown = rendered.iter().find(|m| m["seq"] == reply["seq"]).expect("the reply bubble has the stored seq");
    let final_text = folded(shown["text"].as_str().unwrap());
    assert_eq!(final_text, folded(POLICY), "the bubble ends as the stored text");
    let partial_text = folded(partial["text"].as_str().unwrap());
    assert!(
        final_text.starts_with(&partial_text) && partial_text.len() < final_text.len(),
        "the streamed text {partial_text:?} is a proper prefix of the stored {final_text:?}"
    );
    assert_eq!(rendered.iter().filter(|m| m["sender"] == "bot").count(), 2, "one bubble per reply: {rendered:#?}");
    assert_each_seq_once(&rendered, &stored, "after the stream");
}

/// A flow on the widget channel that starts with a choice.
fn menu_flow() -> Value {
    json!({
        "start": "menu",
        "blocks": [
            { "id": "menu", "type": "buttons", "text": "How can we help?", "variable": "topic",
              "options": [ { "label": "Book a visit", "next": "book" }, { "label": "Prices", "next": "prices" } ] },
            { "id": "book", "type": "end", "text": "Great, let's find you a time." },
            { "id": "prices", "type": "end", "text": "A check-up is $80 and a cleaning $120." }
        ]
    })
}

/// The labels of the choice buttons shown now.
async fn choices(browser: &Browser) -> Vec<String> {
    let labels =
        browser.js("return fdAll('button.fd-choice').filter(shown).map(b => b.textContent.trim());", vec![]).await;
    labels.as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect()
}

async fn click_choice(browser: &Browser, label: &str) {
    let buttons = browser.shadow_all("button.fd-choice").await;
    for button in buttons {
        if button.text().await.unwrap_or_default().trim() == label {
            button.click().await.unwrap_or_else(|err| panic!("click the choice {label:?}: {err}"));
            return;
        }
    }
    panic!("no choice button labelled {label:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_prompts_and_flow_buttons_are_choices_a_click_sends() {
    let (app, _host, page) = site(&Embed::default()).await;
    change_bot_settings(&app, json!({ "widget": { "quick_prompts": ["Opening hours", "Where are you?"] } })).await;
    let (status, flow) = app
        .post(
            &app.a.api_key,
            "/api/flows",
            json!({ "bot_id": app.a.bot_id, "name": "Menu", "definition": menu_flow() }),
        )
        .await;
    assert_eq!(status, 201, "{flow}");
    let flow_id = flow["id"].as_i64().unwrap();
    let (status, deployed) =
        app.post(&app.a.api_key, &format!("/api/flows/{flow_id}/deploy"), json!({ "channels": ["widget"] })).await;
    assert_eq!(status, 200, "{deployed}");

    let browser = Browser::start("buttons").await;
    browser.goto(&page).await;
    browser.open_widget().await;
    browser.welcome().await;
    // The widget settings' quick prompts, before the first message.
    browser.wait_for("the quick prompts", "return fdAll('button.fd-choice').filter(shown).length === 2;", vec![]).await;
    assert_eq!(choices(&browser).await, ["Opening hours", "Where are you?"]);
    browser.screenshots("quick-prompts").await;

    click_choice(&browser, "Opening hours").await;
    // The prompt is sent as the visitor's message; the flow starts and offers its buttons.
    let rendered = browser
        .wait_messages(
            "the flow's question with its buttons",
            "m.some(x => x.sender === 'visitor' && x.seq !== null && x.text.trim() === 'Opening hours') && \
             m.some(x => x.sender === 'bot' && x.seq !== null && x.text.includes('How can we help?'))",
        )
        .await;
    assert!(rendered.iter().all(|m| !m["pending"].as_bool().unwrap_or(false)), "{rendered:#?}");
    browser
        .wait_for(
            "the flow's buttons",
            "const b = fdAll('button.fd-choice').filter(shown).map(b => b.textContent.trim()); \
             return b.length === 2 && b[0] === 'Book a visit' && b[1] === 'Prices';",
            vec![],
        )
        .await;
    browser.screenshots("flow-buttons").await;

    click_choice(&browser, "Prices").await;
    browser
        .wait_messages(
            "the flow's answer to the button",
            "m.some(x => x.sender === 'visitor' && x.seq !== null && x.text.trim() === 'Prices') && \
             m.some(x => x.sender === 'bot' && x.seq !== null && x.text.includes('A check-up is $80'))",
        )
        .await;
    // The buttons belonged to the earlier reply: none are offered now.
    browser.wait_for("no choices left", "return fdAll('button.fd-choice').filter(shown).length === 0;", vec![]).await;

    let conversation = browser.conversation_id(&app.a.bot_id).await;
    let stored = app.messages(&conversation).await;
    let visitor: Vec<&str> =
        stored.iter().filter(|m| m["sender"] == "visitor").map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(visitor, ["Opening hours", "Prices"], "each click sent its label once: {stored:#?}");
    let (status, variables) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}/variables")).await;
    assert_eq!(status, 200, "{variables}");
    assert_eq!(
        variables["variables"]["flow"]["topic"], "Prices",
        "the flow moved on with the button's choice: {variables}"
    );
    assert_each_seq_once(&browser.messages().await, &stored, "after the buttons");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_shows_each_stored_message_once_even_in_the_middle_of_a_reply() {
    let (app, _host, page) = site(&Embed::default()).await;
    change_bot_settings(
        &app,
        json!({ "stream_delay_ms": 150, "policies": [{ "title": "Cancellation policy", "content": POLICY }] }),
    )
    .await;
    let browser = Browser::start("reload").await;
    browser.goto(&page).await;
    browser.open_widget().await;
    browser.send("Where are you located?").await;
    browser
        .wait_messages("the first answer", "m.filter(x => x.seq !== null).length === 3 && !m.some(x => x.streaming)")
        .await;
    let conversation = browser.conversation_id(&app.a.bot_id).await;

    // A settled conversation: the history comes back once.
    browser.reload().await;
    browser.wait_for("the launcher after the reload", "return shown(fd('button.fd-launcher'));", vec![]).await;
    if browser.js("return shown(fd('.fd-panel'));", vec![]).await == false {
        browser.open_widget().await;
    }
    let rendered = browser.wait_messages("the history", "m.filter(x => x.seq !== null).length >= 3").await;
    assert_eq!(browser.conversation_id(&app.a.bot_id).await, conversation, "the same conversation resumes");
    assert_each_seq_once(&rendered, &app.messages(&conversation).await, "after a reload");

    // In the middle of a streamed reply.
    browser.send("What is your cancellation policy?").await;
    browser.wait_for("the reply streaming", "return fdAll('.fd-msg.fd-streaming').length === 1;", vec![]).await;
    browser.reload().await;
    browser.wait_for("the launcher after the reload", "return shown(fd('button.fd-launcher'));", vec![]).await;
    if browser.js("return shown(fd('.fd-panel'));", vec![]).await == false {
        browser.open_widget().await;
    }
    // The reply finishes on the server meanwhile and arrives once, stored.
    browser
        .wait_messages(
            "the interrupted reply, stored",
            "m.filter(x => x.seq !== null).length === 5 && !m.some(x => x.streaming)",
        )
        .await;
    // One more exchange, so that a late replay or live duplicate would have landed by now.
    browser.send("Thanks!").await;
    let rendered = browser
        .wait_messages("the last reply", "m.filter(x => x.seq !== null).length >= 7 && !m.some(x => x.streaming)")
        .await;
    let stored = app.messages(&conversation).await;
    assert_eq!(stored.len(), 7, "{stored:#?}");
    assert_each_seq_once(&rendered, &stored, "after a reload mid-reply");
    let policy = stored.iter().find(|m| m["sender"] == "bot" && m["content"] == POLICY);
    assert!(policy.is_some(), "the reply streaming at the reload was stored whole: {stored:#?}");
    assert_eq!(rendered.len(), stored.len(), "nothing else rendered (no leftover streaming bubble): {rendered:#?}");
}

/// A SQLite database of the test's own, with a workspace made by the CLI; answers the
/// environment for `frontdesk serve`, the workspace's API key and its bot.
fn binary_workspace(db: &TestDb) -> (Vec<(&'static str, String)>, String, String) {
    let owned = db.binary_env();
    let envs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_cli(&["migrate"], &envs);
    let created = run_cli(&["workspace", "create", "--name", "Bright Smile", "--demo"], &envs);
    let key = created["api_key"].as_str().unwrap().to_owned();
    let bot = created["bot_id"].as_str().unwrap().to_owned();
    (owned, key, bot)
}

async fn stored_messages(http: &reqwest::Client, base: &str, key: &str, conversation: &str) -> Vec<Value> {
    let res = http
        .get(format!("{base}/api/conversations/{conversation}/messages?limit=100"))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET messages");
    let body: Value = res.json().await.expect("JSON");
    body["messages"].as_array().cloned().unwrap_or_else(|| panic!("{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_typed_while_the_server_is_down_is_sent_once_when_it_is_back() {
    let db = TestDb::new(Backend::Sqlite);
    let (envs, key, bot) = binary_workspace(&db);
    let port = free_port();
    let mut server = Binary::start(&envs, port);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let host = HostSite::start();
    let page = host.page("/", &base, &bot, &Embed::default());

    let browser = Browser::start("restart").await;
    browser.goto(&page).await;
    browser.open_widget().await;
    browser.send("Hello").await;
    browser
        .wait_messages("the first reply", "m.filter(x => x.seq !== null).length === 3 && !m.some(x => x.streaming)")
        .await;
    let conversation = browser.conversation_id(&bot).await;

    // The server dies (no close frame: a crash). The widget says it is reconnecting.
    server.kill();
    browser.wait_for("the reconnecting banner", "return shown(fd('.fd-conn'));", vec![]).await;
    let question = "Is there parking near you?";
    browser.send(question).await;
    browser
        .wait_messages(
            "the message shown pending",
            "m.some(x => x.sender === 'visitor' && x.pending && x.seq === null && x.text.includes('parking near'))",
        )
        .await;
    // The visitor is told it is not sent yet: a visible line on the bubble besides its text.
    let status = browser
        .wait_for(
            "a visible status on the pending message",
            "const p = fdAll('.fd-msg.fd-pending').find(e => textOf(e).includes('parking near')); \
             if (!p) return null; \
             const line = Array.from(p.querySelectorAll('*')).find(e => !e.closest('.fd-text') && \
               e.children.length === 0 && e.textContent.trim() && shown(e) && \
               Number(getComputedStyle(e).opacity) > 0.5); \
             return line ? line.textContent.trim() : null;",
            vec![],
        )
        .await;
    println!("pending status: {status}");
    let outbox = browser.stored_state(&bot).await;
    assert!(
        outbox["outbox"].as_array().is_some_and(|o| o.iter().any(|m| m["text"] == question)),
        "the queued message is kept in localStorage (so a reload would not lose it): {outbox}"
    );
    browser.screenshots("offline-pending").await;

    // Back on the same port and data: the queued message goes out once and is answered.
    let server = Binary::start(&envs, port);
    let rendered = browser
        .wait_messages(
            "the queued message sent and answered",
            "m.some(x => x.sender === 'visitor' && x.seq !== null && !x.pending && x.text.includes('parking near')) && \
             m.filter(x => x.seq !== null).length === 5 && !m.some(x => x.streaming)",
        )
        .await;
    browser.wait_for("the banner gone", "return !shown(fd('.fd-conn'));", vec![]).await;
    let stored = stored_messages(&http, &server.base, &key, &conversation).await;
    let sent: Vec<&Value> = stored.iter().filter(|m| m["sender"] == "visitor" && m["content"] == question).collect();
    assert_eq!(sent.len(), 1, "the queued message is stored exactly once: {stored:#?}");
    assert!(stored.iter().any(|m| m["sender"] == "bot" && m["reply_to"] == sent[0]["id"]), "and answered: {stored:#?}");
    assert_each_seq_once(&rendered, &stored, "after the restart");
    let state = browser.stored_state(&bot).await;
    assert!(state["outbox"].as_array().is_none_or(|o| o.is_empty()), "the outbox is empty once acked: {state}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_windows_of_one_visitor_show_one_conversation_live() {
    let (app, _host, page) = site(&Embed::default()).await;
    let browser = Browser::start("two-windows").await;
    browser.goto(&page).await;
    browser.open_widget().await;
    browser.send("Hello").await;
    browser
        .wait_messages("the first reply", "m.filter(x => x.seq !== null).length === 3 && !m.some(x => x.streaming)")
        .await;
    let conversation = browser.conversation_id(&app.a.bot_id).await;
    let first = browser.client.window().await.expect("window handle");

    let second = browser.client.new_window(false).await.expect("a second window").handle;
    browser.client.switch_to_window(second.clone()).await.expect("switch");
    browser.set_viewport(Viewport::Desktop).await;
    browser.goto(&page).await;
    browser.wait_for("the launcher", "return shown(fd('button.fd-launcher'));", vec![]).await;
    if browser.js("return shown(fd('.fd-panel'));", vec![]).await == false {
        browser.open_widget().await;
    }
    let rendered =
        browser.wait_messages("the history in the second window", "m.filter(x => x.seq !== null).length >= 3").await;
    assert_eq!(browser.conversation_id(&app.a.bot_id).await, conversation, "one visitor, one conversation");
    assert_each_seq_once(&rendered, &app.messages(&conversation).await, "second window");

    browser.send("Where are you located?").await;
    browser
        .wait_messages(
            "the reply in the second window",
            "m.filter(x => x.seq !== null).length === 5 && !m.some(x => x.streaming)",
        )
        .await;

    // The first window saw it live.
    browser.client.switch_to_window(first.clone()).await.expect("switch back");
    let rendered = browser
        .wait_messages(
            "the second window's exchange in the first",
            "m.some(x => x.sender === 'visitor' && x.seq !== null && x.text.includes('Where are you located?')) && \
             m.filter(x => x.seq !== null).length === 5 && !m.some(x => x.streaming)",
        )
        .await;
    assert_each_seq_once(&rendered, &app.messages(&conversation).await, "first window");

    // And the other way round.
    browser.send("Is there parking?").await;
    browser
        .wait_messages(
            "the reply in the first window",
            "m.filter(x => x.seq !== null).length === 7 && !m.some(x => x.streaming)",
        )
        .await;
    browser.client.switch_to_window(second).await.expect("switch");
    let rendered = browser
        .wait_messages(
            "the first window's exchange in the second",
            "m.filter(x => x.seq !== null).length === 7 && !m.some(x => x.streaming)",
        )
        .await;
    let stored = app.messages(&conversation).await;
    assert_each_seq_once(&rendered, &stored, "second window at the end");
    assert_eq!(
        stored.iter().filter(|m| m["content"] == "Is there parking?").count(),
        1,
        "sent once, by one window: {stored:#?}"
    );
}
