//! What the site owner and the integrator control, in a real browser: a change of the bot's
//! widget settings is seen by the next page load (README: "a newly opened widget sees a change
//! at once"); the embed tag's `data-position`, `data-lang` and `data-open` override the bot's
//! settings; the page's `window.frontdesk(…)` calls made before the widget has loaded (through
//! the usual queue stub) open it, identify the visitor, send a message and report messages.

use serde_json::{json, Value};

use super::{change_bot_settings, Browser, Embed, HostSite};
use crate::helpers::{spawn_app, Backend};

/// `#RRGGBB` as the browser writes a computed colour.
fn rgb(hex: &str) -> String {
    let n = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    format!("rgb({}, {}, {})", n >> 16, (n >> 8) & 0xff, n & 0xff)
}

const LAUNCHER_COLOUR: &str = "return shown(fd('button.fd-launcher')) ? \
                               getComputedStyle(fd('button.fd-launcher')).backgroundColor : null;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_change_is_seen_by_the_next_page_load() {
    let app = spawn_app(Backend::Sqlite).await;
    change_bot_settings(&app, json!({ "widget": { "primary_color": "#0F766E", "quick_prompts": ["Opening hours"] } }))
        .await;
    let host = HostSite::start();
    let page = host.page("/", &app.base, &app.a.bot_id, &Embed::default());
    let browser = Browser::start("settings-change").await;
    browser.goto(&page).await;
    let before = browser.wait_for("the launcher", LAUNCHER_COLOUR, vec![]).await;
    assert_eq!(before, rgb("#0F766E"));

    // The clinic changes its colour, welcome and prompts; the visitor opens another page.
    change_bot_settings(
        &app,
        json!({ "welcome_message": "Welcome back to Bright Smile!",
                "widget": { "primary_color": "#9D174D", "quick_prompts": ["Book a cleaning"] } }),
    )
    .await;
    browser.goto(&page).await;
    browser.wait_for("the launcher", LAUNCHER_COLOUR, vec![]).await;
    browser.open_widget().await;
    browser.welcome().await;
    let seen = browser
        .js(
            "return { colour: getComputedStyle(fd('button.fd-launcher')).backgroundColor, \
                      welcome: msgs()[0].text, prompts: fdAll('button.fd-choice').map(b => b.textContent.trim()) };",
            vec![],
        )
        .await;
    browser.screenshot("after").await;
    assert_eq!(
        seen,
        json!({ "colour": rgb("#9D174D"), "welcome": "Welcome back to Bright Smile!", "prompts": ["Book a cleaning"] }),
        "the next page load shows the new settings"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embed_attributes_override_the_bot_settings() {
    let app = spawn_app(Backend::Sqlite).await;
    change_bot_settings(&app, json!({ "widget": { "position": "bottom-right", "language": "en" } })).await;
    let host = HostSite::start();
    let attributes = r#"data-position="bottom-left" data-lang="es" data-open="true""#.to_owned();
    let page = host.page("/", &app.base, &app.a.bot_id, &Embed { attributes, ..Embed::default() });
    let browser = Browser::start("embed-attributes").await;
    browser.goto(&page).await;
    // Open on load, without a click.
    browser.wait_for("the panel open on load", "return shown(fd('.fd-panel'));", vec![]).await;
    browser.welcome().await;
    browser.settle().await;
    let seen = browser
        .js(
            "const l = fd('button.fd-launcher').getBoundingClientRect(); \
             const p = fd('.fd-panel').getBoundingClientRect(); \
             return { launcher_left: l.left, launcher_right: document.documentElement.clientWidth - l.right, \
                      panel_left: p.left, panel_right: document.documentElement.clientWidth - p.right, \
                      placeholder: fd('textarea.fd-input').getAttribute('placeholder'), \
                      send: fd('button.fd-send').getAttribute('aria-label') || fd('button.fd-send').textContent };",
            vec![],
        )
        .await;
    browser.screenshots("open").await;
    let num = |v: &Value| v.as_f64().unwrap();
    assert!(num(&seen["launcher_left"]) < num(&seen["launcher_right"]), "the launcher sits on the left: {seen}");
    assert!(num(&seen["panel_left"]) < num(&seen["panel_right"]), "and so does the panel: {seen}");
    assert_eq!(seen["placeholder"], "Escribe un mensaje…", "in Spanish: {seen}");
    assert_eq!(seen["send"], "Enviar", "{seen}");
}

/// The integrator's script right after the embed tag: the queue stub every such snippet
/// starts with, then calls made before the widget has loaded.
const INTEGRATOR: &str = r#"<script>
window.frontdesk = window.frontdesk || function () { (window.frontdesk.q = window.frontdesk.q || []).push(arguments); };
window.__events = [];
frontdesk('on', 'message', function (m) { window.__events.push({ on: 'message', sender: m.sender, content: m.content, seq: m.seq }); });
frontdesk('on', 'open', function () { window.__events.push({ on: 'open' }); });
frontdesk('identify', { name: 'Ana Lima', email: 'ana@example.com' });
frontdesk('open');
frontdesk('send', 'Where are you located?');
</script>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_made_before_the_widget_loaded_open_it_identify_and_send() {
    let app = spawn_app(Backend::Sqlite).await;
    let host = HostSite::start();
    let embed = Embed { after: INTEGRATOR.to_owned(), ..Embed::default() };
    let page = host.page("/", &app.base, &app.a.bot_id, &embed);
    let browser = Browser::start("page-api").await;
    browser.goto(&page).await;
    browser.wait_for("the panel opened by the page", "return shown(fd('.fd-panel'));", vec![]).await;
    let rendered = browser
        .wait_messages(
            "the page's message sent and answered",
            "m.some(x => x.sender === 'visitor' && x.seq !== null && x.text.trim() === 'Where are you located?') && \
             m.filter(x => x.seq !== null).length === 3 && !m.some(x => x.streaming)",
        )
        .await;
    assert!(rendered[2]["text"].as_str().unwrap().contains("Harbour Street"), "{rendered:#?}");
    let events = browser
        .wait_for(
            "the page told of the reply",
            "return window.__events.some(e => e.on === 'message' && e.sender === 'bot' && e.seq === 3) ? window.__events : null;",
            vec![],
        )
        .await;
    let events = events.as_array().unwrap();
    assert!(events.iter().any(|e| e["on"] == "open"), "the open event: {events:?}");
    let reply = events.iter().find(|e| e["on"] == "message" && e["seq"] == 3).unwrap();
    assert!(reply["content"].as_str().unwrap().contains("Harbour Street"), "{reply}");
    assert_eq!(
        events.iter().filter(|e| e["on"] == "message" && e["seq"] == 3).count(),
        1,
        "each message reported once: {events:?}"
    );

    let conversation = browser.conversation_id(&app.a.bot_id).await;
    let path = format!("/api/conversations/{conversation}/variables");
    let deadline = std::time::Instant::now() + super::WAIT;
    let contact = loop {
        let (status, body) = app.get(&app.a.api_key, &path).await;
        assert_eq!(status, 200, "{body}");
        if body["variables"]["contact"]["email"] == "ana@example.com" {
            break body["variables"]["contact"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "identify never reached the conversation: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(contact["name"], "Ana Lima", "{contact}");
}
