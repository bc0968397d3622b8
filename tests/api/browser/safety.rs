//! The widget on someone else's page, in a real browser: HTML and `javascript:` links in a bot
//! fact, a bot setting, an agent's and a visitor's message execute nothing and show as text; a
//! page whose Content-Security-Policy allows only the frontdesk origin still gets a styled,
//! working widget; hostile page CSS changes nothing in it, and its CSS changes nothing in the
//! page; CORS lets pages call the public routes of bots that allow them, and never the routes
//! that take an API key.

use serde_json::{json, Value};

use super::{change_bot_settings, patch_bot, Browser, Embed, HostSite};
use crate::helpers::{spawn_app, spawn_app_with, Backend};

/// Each would set `window.__xss` if it ever ran.
const IMG: &str = r#"<img src=x onerror="window.__xss=1">"#;
const SCRIPT: &str = "<script>window.__xss=1</script>";
const LINK: &str = "[click](javascript:window.__xss=1)";

fn payload(whose: &str) -> String {
    format!("{whose} says {IMG} and {SCRIPT} then {LINK} end")
}

/// Panics unless no message holds an element the payloads would make, and every link is safe.
const NOTHING_RAN: &str = r#"
  const bad = fdAll('.fd-msg img[src="x"], .fd-msg script, .fd-msg [onerror], .fd-msg iframe, .fd-title img');
  const links = fdAll('.fd-msg a').map(a => ({ href: a.getAttribute('href'), protocol: a.protocol, rel: a.rel,
                                               text: a.textContent }));
  return { xss: window.__xss === undefined ? null : window.__xss, bad: bad.map(e => e.outerHTML), links };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_and_script_links_in_any_message_execute_nothing_and_show_as_text() {
    let app = spawn_app_with(Backend::Sqlite, |args| {
        args.agent_silence_secs = Some(0);
        args.max_message_chars = Some(1000);
    })
    .await;
    let fact = format!("{} Our site: [Bright Smile](https://example.com/visit) is **open**.", payload("fact"));
    change_bot_settings(
        &app,
        json!({
            "welcome_message": payload("welcome"),
            "company_facts": [{ "title": "Xylophone room", "content": fact }],
            "widget": { "title": format!("Smile {IMG}"), "subtitle": SCRIPT },
        }),
    )
    .await;
    let (status, created) =
        app.post(&app.a.api_key, "/api/agents", json!({ "name": "Dana Reyes", "email": "dana@clinic.test" })).await;
    assert_eq!(status, 201, "{created}");
    let agent_id = created["agent"]["id"].as_i64().unwrap();
    let host = HostSite::start();
    let page = host.page("/", &app.base, &app.a.bot_id, &Embed::default());

    let browser = Browser::start("xss").await;
    browser.goto(&page).await;
    browser.open_widget().await;
    browser.welcome().await;
    let header = browser.js("return fd('.fd-title').textContent;", vec![]).await;
    assert!(header.as_str().unwrap().contains(IMG), "the title setting shows as text: {header}");
    let subtitle = browser.js("return fd('.fd-subtitle').textContent;", vec![]).await;
    assert!(subtitle.as_str().unwrap().contains(SCRIPT), "the subtitle setting shows as text: {subtitle}");

    // The visitor's own message.
    let visitor = payload("visitor");
    browser.send(&visitor).await;
    browser
        .wait_messages(
            "the visitor's message stored and answered",
            "m.some(x => x.sender === 'visitor' && x.seq !== null) && m.filter(x => x.seq !== null).length === 3 && \
             !m.some(x => x.streaming)",
        )
        .await;
    // The fact, answered by the built-in brain.
    browser.send("Tell me about the xylophone room").await;
    browser
        .wait_messages("the fact's answer", "m.filter(x => x.seq !== null).length === 5 && !m.some(x => x.streaming)")
        .await;
    // An agent's message.
    let conversation = browser.conversation_id(&app.a.bot_id).await;
    let (status, _) = app
        .post(&app.a.api_key, &format!("/api/conversations/{conversation}/takeover"), json!({ "agent_id": agent_id }))
        .await;
    assert_eq!(status, 200);
    let (status, sent) = app
        .post(
            &app.a.api_key,
            &format!("/api/conversations/{conversation}/agent-messages"),
            json!({ "agent_id": agent_id, "text": payload("agent") }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let rendered =
        browser.wait_messages("the agent's message", "m.some(x => x.sender === 'agent' && x.seq !== null)").await;
    browser.screenshots("rendered").await;

    let stored = app.messages(&conversation).await;
    for (whose, seq) in [("welcome", 1), ("visitor", 2), ("fact", 5), ("agent", 6)] {
        let message = rendered.iter().find(|m| m["seq"] == seq).unwrap_or_else(|| panic!("seq {seq}: {rendered:#?}"));
        let text = message["text"].as_str().unwrap();
        assert!(text.contains(&format!("{whose} says")), "seq {seq} is the {whose}'s: {message} (stored {stored:#?})");
        assert!(text.contains(IMG), "the {whose}'s <img> shows as text: {text:?}");
        assert!(text.contains(SCRIPT), "the {whose}'s <script> shows as text: {text:?}");
        assert!(text.contains("click"), "the {whose}'s link text shows: {text:?}");
    }

    let state = browser.js(NOTHING_RAN, vec![]).await;
    assert_eq!(state["xss"], Value::Null, "a payload ran: {state}");
    assert_eq!(state["bad"], json!([]), "elements from message HTML: {state}");
    for link in state["links"].as_array().unwrap() {
        let protocol = link["protocol"].as_str().unwrap_or_default();
        assert!(["http:", "https:", "mailto:", "tel:"].contains(&protocol), "an unsafe link: {link}");
        let rel = link["rel"].as_str().unwrap_or_default();
        assert!(rel.contains("noopener") && rel.contains("noreferrer"), "a link without noopener noreferrer: {link}");
    }
    // The fact's Markdown link is a real link (the safe subset), and its bold is bold.
    let links = state["links"].as_array().unwrap();
    assert!(
        links.iter().any(|l| l["href"] == "https://example.com/visit" && l["text"] == "Bright Smile"),
        "the fact's Markdown link is rendered as a link: {state}"
    );
    let bold = browser.js("return fdAll('.fd-msg strong, .fd-msg b').map(e => e.textContent);", vec![]).await;
    assert!(bold.as_array().unwrap().iter().any(|b| b == "open"), "**open** is bold: {bold}");

    // Click whatever the `javascript:` links became (a link or text), as a visitor would.
    for anchor in browser.shadow_all(".fd-msg a").await {
        if anchor.text().await.unwrap_or_default().trim() == "click" {
            anchor.click().await.expect("click the link");
        }
    }
    // A round trip more, so that anything asynchronous (an image's error event) has fired.
    browser.send("Thanks").await;
    browser.wait_messages("the last message stored", "m.filter(x => x.seq !== null).length === 7").await;
    let state = browser.js(NOTHING_RAN, vec![]).await;
    assert_eq!(state["xss"], Value::Null, "a payload ran: {state}");
    assert_eq!(state["bad"], json!([]), "{state}");
}

/// The launcher's colour and place, and the panel's size, as the page renders them: what page
/// CSS must not change.
const LOOKS: &str = r#"
  const vw = document.documentElement.clientWidth, vh = document.documentElement.clientHeight;
  const l = fd('button.fd-launcher'); const lr = l.getBoundingClientRect(); const ls = getComputedStyle(l);
  const out = { launcher: { shown: shown(l), width: lr.width, height: lr.height, right: vw - lr.right,
                            bottom: vh - lr.bottom, background: ls.backgroundColor, color: ls.color,
                            radius: ls.borderRadius, font: ls.fontFamily, opacity: ls.opacity },
                host: { display: getComputedStyle(fdHost).display, opacity: getComputedStyle(fdHost).opacity,
                        visibility: getComputedStyle(fdHost).visibility } };
  const p = fd('.fd-panel');
  if (shown(p)) {
    const pr = p.getBoundingClientRect(); const input = fd('textarea.fd-input'); const is = getComputedStyle(input);
    const first = fdAll('.fd-msg')[0];
    const ms = first ? getComputedStyle(first.querySelector('.fd-text') || first) : null;
    out.panel = { width: pr.width, height: pr.height, right: vw - pr.right, bottom: vh - pr.bottom,
                  background: getComputedStyle(p).backgroundColor };
    out.input = { shown: shown(input), fontSize: is.fontSize, font: is.fontFamily, height: input.getBoundingClientRect().height };
    out.message = ms ? { fontSize: ms.fontSize, font: ms.fontFamily, lineHeight: ms.lineHeight, color: ms.color,
                         transform: ms.textTransform, spacing: ms.letterSpacing } : null;
  }
  return out;
"#;

/// The host page's own elements as rendered: what the widget's CSS must not change.
const PAGE_LOOKS: &str = r#"
  const look = (el) => { const s = getComputedStyle(el); const r = el.getBoundingClientRect();
    return { font: s.fontFamily, size: s.fontSize, color: s.color, background: s.backgroundColor, margin: s.margin,
             padding: s.padding, width: r.width, height: r.height, lineHeight: s.lineHeight }; };
  return { body: look(document.body), intro: look(document.getElementById('intro')),
           call: look(document.getElementById('call')), h2: look(document.querySelector('h2')) };
"#;

/// `#RRGGBB` as the browser writes a computed colour.
fn rgb(hex: &str) -> String {
    let n = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    format!("rgb({}, {}, {})", n >> 16, (n >> 8) & 0xff, n & 0xff)
}

/// A report of the test's own inline `<script>` (the markers that the reports before them have
/// arrived), as opposed to anything the widget did.
fn is_marker(report: &str) -> bool {
    let report: Value = serde_json::from_str(report).unwrap_or_default();
    let report = &report["csp-report"];
    report["blocked-uri"] == "inline"
        && report["effective-directive"]
            .as_str()
            .or(report["violated-directive"].as_str())
            .is_some_and(|d| d.starts_with("script-src"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_a_strict_csp_gets_a_styled_working_widget() {
    let app = spawn_app(Backend::Sqlite).await;
    change_bot_settings(&app, json!({ "widget": { "primary_color": "#7C3AED" } })).await;
    let host = HostSite::start();
    let page = host.page("/", &app.base, &app.a.bot_id, &Embed { strict_csp: true, ..Embed::default() });
    let browser = Browser::start("csp").await;
    browser.goto(&page).await;
    // The policy is in force: the page may not run its own inline code, and the browser reports
    // that (after anything the widget's start broke: reports go out in order).
    let ran = browser
        .js(
            "const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; \
             document.body.appendChild(s); return window.__inline === 1;",
            vec![],
        )
        .await;
    assert_eq!(ran, false, "the page's CSP blocks inline scripts");
    let deadline = std::time::Instant::now() + super::WAIT;
    while !host.csp_reports().iter().any(|r| is_marker(r)) {
        assert!(std::time::Instant::now() < deadline, "no report of the inline script: {:?}", host.csp_reports());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let looks = browser.wait_for("the launcher", "return shown(fd('button.fd-launcher')) ? true : null;", vec![]).await;
    assert_eq!(looks, true);
    let looks = browser.js(LOOKS, vec![]).await;
    assert_eq!(looks["launcher"]["background"], rgb("#7C3AED"), "styled with the configured colour: {looks}");
    let corner = looks["launcher"]["right"].as_f64().unwrap();
    assert!((0.0..80.0).contains(&corner), "the launcher sits at the bottom right: {looks}");
    assert!((0.0..80.0).contains(&looks["launcher"]["bottom"].as_f64().unwrap()), "{looks}");
    browser.open_widget().await;
    browser.welcome().await;
    browser.send("Where are you located?").await;
    let rendered = browser
        .wait_messages("the answer", "m.filter(x => x.seq !== null).length === 3 && !m.some(x => x.streaming)")
        .await;
    assert!(rendered[2]["text"].as_str().unwrap().contains("Harbour Street"), "{rendered:#?}");
    browser.screenshots("answered").await;
    // Closed and opened again, one more exchange: nothing the widget did broke the policy.
    browser.click("button.fd-close").await;
    browser.wait_for("the panel closed", "return !shown(fd('.fd-panel'));", vec![]).await;
    browser.open_widget().await;
    browser.send("Do you take Aetna?").await;
    browser
        .wait_messages("the second answer", "m.filter(x => x.seq !== null).length === 5 && !m.some(x => x.streaming)")
        .await;
    // Once more the page's own inline code, as the marker that every earlier report has arrived.
    browser
        .js(
            "const s = document.createElement('script'); s.textContent = '1'; document.body.appendChild(s); return 1;",
            vec![],
        )
        .await;
    let deadline = std::time::Instant::now() + super::WAIT;
    while host.csp_reports().iter().filter(|r| is_marker(r)).count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no report of the second inline script: {:?}",
            host.csp_reports()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let widget: Vec<String> = host.csp_reports().into_iter().filter(|r| !is_marker(r)).collect();
    assert!(widget.is_empty(), "the widget broke the page's policy: {widget:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_page_css_changes_nothing_in_the_widget_and_the_widget_nothing_in_the_page() {
    let app = spawn_app(Backend::Sqlite).await;
    change_bot_settings(&app, json!({ "widget": { "primary_color": "#B42318" } })).await;
    let host = HostSite::start();
    let plain = host.page("/", &app.base, &app.a.bot_id, &Embed::default());
    let bare = host.page("/bare", &app.base, &app.a.bot_id, &Embed { no_widget: true, ..Embed::default() });
    let hostile = host.page("/hostile", &app.base, &app.a.bot_id, &Embed { hostile_css: true, ..Embed::default() });
    let browser = Browser::start("hostile-css").await;

    // The page without the widget, then with it open: the page looks the same.
    browser.goto(&bare).await;
    let page_alone = browser.js(PAGE_LOOKS, vec![]).await;
    browser.goto(&plain).await;
    browser.open_widget().await;
    browser.welcome().await;
    browser.settle().await;
    let page_with_widget = browser.js(PAGE_LOOKS, vec![]).await;
    assert_eq!(page_with_widget, page_alone, "the widget's CSS reached the page");
    let expected = browser.js(LOOKS, vec![]).await;
    assert_eq!(expected["launcher"]["background"], rgb("#B42318"), "{expected}");

    // A page whose CSS hits everything generic: the widget looks exactly the same.
    browser.js("localStorage.clear(); return true;", vec![]).await;
    browser.goto(&hostile).await;
    browser.wait_for("the launcher on the hostile page", "return shown(fd('button.fd-launcher'));", vec![]).await;
    browser.screenshots("launcher").await;
    browser.open_widget().await;
    browser.welcome().await;
    browser.settle().await;
    browser.screenshots("open").await;
    let looks = browser.js(LOOKS, vec![]).await;
    assert_eq!(looks, expected, "page CSS changed the widget (left: hostile page, right: plain page)");
    browser.send("Where are you located?").await;
    browser
        .wait_messages("the answer", "m.filter(x => x.seq !== null).length === 3 && !m.some(x => x.streaming)")
        .await;
}

/// `fetch(url, init)` from the page, past the HTTP cache (the configuration may be cached for
/// a while; these checks are about the server's answer to each origin); answers `{ok, status,
/// body}` or `{error}` (the exception's name: a CORS refusal is a `TypeError`).
async fn page_fetch(browser: &Browser, url: &str, init: Value) -> Value {
    browser
        .js_async(
            "fetch(arguments[0], Object.assign({ cache: 'no-store' }, arguments[1])) \
               .then(async (r) => done({ ok: r.ok, status: r.status, body: await r.text() })) \
               .catch((e) => done({ error: e.name, message: String(e.message) }));",
            vec![json!(url), init],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_may_call_the_public_routes_their_bot_allows_and_never_the_keyed_ones() {
    let app = spawn_app(Backend::Sqlite).await;
    let host = HostSite::start();
    let page = host.page("/", &app.base, &app.a.bot_id, &Embed { no_widget: true, ..Embed::default() });
    let browser = Browser::start("cors").await;
    browser.goto(&page).await;
    let config = format!("{}/widget/config/{}", app.base, app.a.bot_id);
    let chat = format!("{}/chat", app.base);
    let chat_init = |session: &str| {
        json!({ "method": "POST", "headers": { "Content-Type": "application/json" },
                "body": json!({ "message": "Where are you located?", "session_id": session,
                                "admin_id": app.a.public_id }).to_string() })
    };

    // No allowed origins: any page.
    patch_bot(&app, json!({ "allowed_origins": [] })).await;
    let open = page_fetch(&browser, &config, json!({})).await;
    assert_eq!(open["status"], 200, "{open}");
    let body: Value = serde_json::from_str(open["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["bot_id"], app.a.bot_id, "{body}");

    // This page's origin allowed: the config and ChatGenius's chat (a preflighted JSON POST).
    patch_bot(&app, json!({ "allowed_origins": [host.origin] })).await;
    let allowed = page_fetch(&browser, &config, json!({})).await;
    assert_eq!(allowed["status"], 200, "{allowed}");
    let answered = page_fetch(&browser, &chat, chat_init("cors-1")).await;
    assert_eq!(answered["status"], 200, "a preflighted POST /chat from an allowed page: {answered}");
    let reply: Value = serde_json::from_str(answered["body"].as_str().unwrap()).unwrap();
    assert!(reply["response"].as_str().unwrap().contains("Harbour Street"), "{reply}");

    // Only another origin allowed: the browser refuses both.
    patch_bot(&app, json!({ "allowed_origins": ["https://elsewhere.example"] })).await;
    let refused = page_fetch(&browser, &config, json!({})).await;
    assert_eq!(refused["error"], "TypeError", "another origin's bot config: {refused}");
    let refused = page_fetch(&browser, &chat, chat_init("cors-2")).await;
    assert_eq!(refused["error"], "TypeError", "POST /chat from a page the bot does not allow: {refused}");

    // A route that takes the API key is not open to pages at all.
    patch_bot(&app, json!({ "allowed_origins": [] })).await;
    let keyed = page_fetch(
        &browser,
        &format!("{}/api/bots", app.base),
        json!({ "headers": { "Authorization": format!("Bearer {}", app.a.api_key) } }),
    )
    .await;
    assert_eq!(keyed["error"], "TypeError", "a page read /api/bots with the key: {keyed}");
    let before = app.get(&app.a.api_key, "/api/conversations").await.1["conversations"].as_array().unwrap().len();
    let conversations = page_fetch(
        &browser,
        &format!("{}/api/conversations", app.base),
        json!({ "method": "POST", "headers": { "Authorization": format!("Bearer {}", app.a.api_key),
                                               "Content-Type": "application/json" }, "body": "{}" }),
    )
    .await;
    assert_eq!(conversations["error"], "TypeError", "a page started a conversation with the key: {conversations}");
    let after = app.get(&app.a.api_key, "/api/conversations").await.1["conversations"].as_array().unwrap().len();
    assert_eq!(after, before, "the refused POST never ran");
}
