//! The browser harness: the embeddable widget (issue 19) driven end to end in Debian's headless
//! Chromium through chromedriver (WebDriver, with `fantoccini`), embedded in a host page served
//! from another origin than frontdesk.
//!
//! - One `chromedriver` per test binary, started on first use on a free port and ended (with
//!   every browser it started) by a watchdog shell once this process has exited.
//! - At most [`MAX_BROWSERS`] browser sessions at once (the other tests run beside them); each
//!   session has a fresh profile and is ended when its [`Browser`] is dropped, panics included.
//! - [`HostSite`]: a small actix-web server on its own port whose pages embed
//!   `<script src="{frontdesk}/widget.js" data-bot="…" async>`, optionally under a strict CSP or
//!   with hostile page CSS.
//! - [`Browser`] helpers look inside the widget's open shadow root (`#frontdesk-widget`), wait for
//!   conditions by polling with a generous deadline (nothing asserts on timing), set the
//!   viewport (1280×800 desktop, 375×812 phone) and save screenshots to
//!   `$CARGO_TARGET_DIR/browser-screenshots/` (test artefacts, never committed).
//!
//! The selectors follow the DOM contract in the widget's notes (`.fd-launcher`, `.fd-panel`,
//! `.fd-msg[data-seq]`, …). The scenarios are in the submodules; every test's name contains
//! `browser` (its module path), so `cargo test --test api browser` runs exactly these.

mod chat;
mod console;
mod people;
mod safety;
mod settings;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::helpers::TestApp;

/// Browser sessions that may run at once (the machine has two cores, shared with the rest of
/// the suite).
pub const MAX_BROWSERS: usize = 2;
static SLOTS: Semaphore = Semaphore::const_new(MAX_BROWSERS);

/// How long a condition may take before a wait gives up. Generous: a wait returns as soon as
/// its condition holds, and a slow, busy machine must not fail a test.
pub const WAIT: Duration = Duration::from_secs(45);

/// The flags every browser runs with (plus a fresh `--user-data-dir`).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=en-US",
    "--window-size=1280,800",
];

fn chromium_binary() -> String {
    std::env::var("FRONTDESK_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

fn chromedriver_binary() -> String {
    std::env::var("FRONTDESK_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned())
}

/// Where screenshots (and chromedriver's log) go: `$CARGO_TARGET_DIR/browser-screenshots`, or
/// next to the build's `debug` folder when the variable is not set.
pub fn artefacts_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = PathBuf::from(env!("CARGO_BIN_EXE_frontdesk"));
            exe.parent().and_then(|debug| debug.parent()).map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
        }
    };
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshots folder");
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The one chromedriver of this test binary.
struct Driver {
    port: u16,
}

static DRIVER: OnceLock<Driver> = OnceLock::new();

fn driver() -> &'static Driver {
    DRIVER.get_or_init(start_driver)
}

/// Starts chromedriver under a watchdog shell in a process group of its own: the shell waits
/// for this test process to exit, then ends its group (chromedriver and any browser a crashed
/// test left behind). Answers once chromedriver says it is ready.
fn start_driver() -> Driver {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let log = artefacts_dir().join("chromedriver.log");
    let watchdog = r#"
        "$1" --port="$2" --log-path="$3" >/dev/null 2>&1 &
        while kill -0 "$4" 2>/dev/null; do sleep 1; done
        kill -TERM 0
    "#;
    let mut watchdog = Command::new("sh")
        .args(["-c", watchdog, "watchdog"])
        .arg(chromedriver_binary())
        .arg(port.to_string())
        .arg(&log)
        .arg(std::process::id().to_string())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh runs chromedriver (scripts/test installs Debian's chromium-driver)");
    // It outlives this process; should chromedriver fail to start, it is reaped here.
    std::thread::spawn(move || watchdog.wait());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = raw_http(port, "GET", "/status") {
            if status.contains("\"ready\":true") {
                return Driver { port };
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not get ready on port {port} (see {})", log.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP/1.1 request to chromedriver without any runtime (used from `Drop`); answers the
/// response (head and body) once its `Content-Length` has arrived (chromedriver keeps the
/// connection open).
fn raw_http(port: u16, method: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok());
            if length.is_some_and(|length| out.len() >= end + 4 + length) {
                break;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewport {
    Desktop,
    Phone,
    /// A tablet held upright (the console's inbox at a narrow width).
    Tablet,
}

impl Viewport {
    pub fn size(self) -> (u32, u32) {
        match self {
            Viewport::Desktop => (1280, 800),
            Viewport::Phone => (375, 812),
            Viewport::Tablet => (820, 1180),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Viewport::Desktop => "1280x800",
            Viewport::Phone => "375x812",
            Viewport::Tablet => "820x1180",
        }
    }
}

/// Helpers every script sent to the page starts with: `fd(css)`/`fdAll(css)` look inside the
/// widget's shadow root, `shown(el)` is true when an element is rendered and visible, and
/// `msgs()` lists the rendered messages.
const PRELUDE: &str = r#"
const fdHost = document.getElementById('frontdesk-widget');
const fdRoot = fdHost ? fdHost.shadowRoot : null;
const fd = (s) => (fdRoot ? fdRoot.querySelector(s) : null);
const fdAll = (s) => (fdRoot ? Array.from(fdRoot.querySelectorAll(s)) : []);
const shown = (el) => {
  if (!el || !el.isConnected) return false;
  for (let e = el; e; e = e.parentElement) if (e.hidden) return false;
  const r = el.getBoundingClientRect();
  const cs = getComputedStyle(el);
  return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none';
};
const textOf = (m) => { const t = m.querySelector('.fd-text'); return (t || m).textContent; };
const msgs = () => fdAll('.fd-msg').map((m) => ({
  sender: m.dataset.sender || null,
  seq: m.dataset.seq === undefined ? null : Number(m.dataset.seq),
  text: textOf(m),
  streaming: m.classList.contains('fd-streaming'),
  pending: m.classList.contains('fd-pending'),
  author: m.querySelector('.fd-author') ? m.querySelector('.fd-author').textContent : null,
  client_msg_id: m.dataset.clientMsgId || null,
  welcome: m.classList.contains('fd-welcome'),
}));
"#;

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// One headless Chromium session (its own profile), holding one of the [`MAX_BROWSERS`] slots.
/// Dropping it ends the session (and the browser) at once, even when the test panicked.
pub struct Browser {
    pub client: Client,
    scenario: String,
    viewport: Mutex<Viewport>,
    driver_port: u16,
    session: String,
    _profile: tempfile::TempDir,
    _slot: SemaphorePermit<'static>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = raw_http(self.driver_port, "DELETE", &format!("/session/{}", self.session));
    }
}

impl Browser {
    /// A fresh browser at the desktop viewport; `scenario` names its screenshots.
    pub async fn start(scenario: &str) -> Browser {
        let slot = SLOTS.acquire().await.expect("the browser slots stay open");
        Browser::start_in(scenario, slot).await
    }

    /// Two browsers at once (e.g. a visitor's and a receptionist's), their slots taken together:
    /// two tests each holding one slot and waiting for a second would wait for ever.
    pub async fn start_pair(first: &str, second: &str) -> (Browser, Browser) {
        let mut slots = SLOTS.acquire_many(2).await.expect("the browser slots stay open");
        let other = slots.split(1).expect("two slots were taken");
        (Browser::start_in(first, slots).await, Browser::start_in(second, other).await)
    }

    async fn start_in(scenario: &str, slot: SemaphorePermit<'static>) -> Browser {
        let port = tokio::task::spawn_blocking(|| driver().port).await.unwrap();
        let profile = tempfile::tempdir().expect("a profile folder");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium_binary(),
                "args": args,
                "prefs": { "intl.accept_languages": "en-US" },
            },
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut builder = ClientBuilder::new(connector);
        builder.capabilities(capabilities);
        let mut attempt = 0;
        let client = loop {
            attempt += 1;
            match builder.connect(&format!("http://127.0.0.1:{port}")).await {
                Ok(client) => break client,
                // Chromium sometimes fails to start on a loaded machine; a second try is a new browser.
                Err(err) if attempt < 3 => eprintln!("browser session failed to start ({err}); again"),
                Err(err) => panic!("chromedriver could not start Chromium: {err}"),
            }
        };
        let session = match client.session_id().await.expect("session id") {
            Some(id) => id,
            None => panic!("chromedriver gave no session id"),
        };
        let browser = Browser {
            client,
            scenario: scenario.to_owned(),
            viewport: Mutex::new(Viewport::Desktop),
            driver_port: port,
            session,
            _profile: profile,
            _slot: slot,
        };
        browser.set_viewport(Viewport::Desktop).await;
        browser
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|err| panic!("open {url}: {err}"));
    }

    pub async fn reload(&self) {
        self.client.refresh().await.expect("reload");
    }

    /// Runs `body` (a function body; `return` its answer) after [`PRELUDE`], with `args` as
    /// `arguments[0…]`.
    pub async fn js(&self, body: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(&format!("{PRELUDE}\n{body}"), args)
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\n{body}"))
    }

    /// Runs an asynchronous script: `body` calls `done(value)` (the last argument) once.
    pub async fn js_async(&self, body: &str, args: Vec<Value>) -> Value {
        let script = format!("{PRELUDE}\nconst done = arguments[arguments.length - 1];\n{body}");
        self.client.execute_async(&script, args).await.unwrap_or_else(|err| panic!("script failed: {err}\n{body}"))
    }

    /// Polls `body` (as [`Browser::js`]) until it answers something truthy, and returns that.
    /// After [`WAIT`] it saves a screenshot and panics with `what` and the last answer.
    pub async fn wait_for(&self, what: &str, body: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + WAIT;
        let script = format!("{PRELUDE}\n{body}");
        loop {
            let last = match self.client.execute(&script, args.clone()).await {
                Ok(value) if truthy(&value) => return value,
                Ok(value) => value,
                Err(err) => json!(format!("script error: {err}")),
            };
            if Instant::now() > deadline {
                let shot = self.screenshot("timeout").await;
                let state = self.js("return { messages: msgs(), host: !!fdHost, root: !!fdRoot };", vec![]).await;
                panic!(
                    "{}: waited {WAIT:?} for {what}; the last answer was {last}\nwidget: {state}\nscreenshot: {}",
                    self.scenario,
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The widget's element matching `css` (inside the shadow root), once it is there.
    pub async fn shadow(&self, css: &str) -> Element {
        self.wait_for(&format!("`{css}` in the widget"), "return !!fd(arguments[0]);", vec![json!(css)]).await;
        let host = self.client.find(Locator::Css("#frontdesk-widget")).await.expect("#frontdesk-widget");
        let root = host.shadow_root().await.expect("an open shadow root on #frontdesk-widget");
        root.find(Locator::Css(css)).await.unwrap_or_else(|err| panic!("`{css}` in the shadow root: {err}"))
    }

    /// Every widget element matching `css`.
    pub async fn shadow_all(&self, css: &str) -> Vec<Element> {
        let host = self.client.find(Locator::Css("#frontdesk-widget")).await.expect("#frontdesk-widget");
        let root = host.shadow_root().await.expect("an open shadow root on #frontdesk-widget");
        root.find_all(Locator::Css(css)).await.unwrap_or_default()
    }

    /// Clicks the widget's `css` element as a user would (WebDriver refuses a hidden or covered
    /// one), once it is shown.
    pub async fn click(&self, css: &str) {
        self.wait_for(&format!("`{css}` shown"), "return shown(fd(arguments[0]));", vec![json!(css)]).await;
        let element = self.shadow(css).await;
        element.click().await.unwrap_or_else(|err| panic!("click `{css}`: {err}"));
    }

    /// Waits until the launcher is shown, then opens the panel with it.
    pub async fn open_widget(&self) {
        self.wait_for("the launcher", "return shown(fd('button.fd-launcher'));", vec![]).await;
        self.click("button.fd-launcher").await;
        self.wait_for("the panel open", "return shown(fd('.fd-panel'));", vec![]).await;
    }

    /// Types `text` into the composer and presses its send button.
    pub async fn send(&self, text: &str) {
        let input = self.shadow("textarea.fd-input").await;
        input.send_keys(text).await.expect("type into the composer");
        self.click("button.fd-send").await;
    }

    /// Presses keys on whatever has the focus (WebDriver key actions).
    pub async fn press(&self, keys: &[char]) {
        let mut actions = KeyActions::new("keyboard".to_owned());
        for key in keys {
            actions = actions.then(KeyAction::Down { value: *key }).then(KeyAction::Up { value: *key });
        }
        self.client.perform_actions(actions).await.expect("key actions");
        self.client.release_actions().await.expect("release keys");
    }

    /// Waits for the welcome message (shown from the widget's configuration until the visitor
    /// writes, then replaced by the stored seq 1); answers its text.
    pub async fn welcome(&self) -> String {
        let found = self
            .wait_for(
                "the welcome message",
                "const w = msgs().find(x => x.sender === 'bot'); return w && w.text.trim() ? w.text : null;",
                vec![],
            )
            .await;
        found.as_str().unwrap().to_owned()
    }

    /// The messages rendered now: `[{sender, seq, text, streaming, pending, author, client_msg_id}]`.
    pub async fn messages(&self) -> Vec<Value> {
        self.js("return msgs();", vec![]).await.as_array().cloned().unwrap_or_default()
    }

    /// Waits until the rendered messages satisfy `condition` (a JS expression over `m`, the
    /// array from `msgs()`); returns them.
    pub async fn wait_messages(&self, what: &str, condition: &str) -> Vec<Value> {
        let body = format!("const m = msgs(); return ({condition}) ? m : null;");
        self.wait_for(what, &body, vec![]).await.as_array().cloned().unwrap()
    }

    /// The conversation id the widget keeps in `localStorage` (`frontdesk:<bot_id>`).
    pub async fn stored_state(&self, bot: &str) -> Value {
        let body =
            "const raw = localStorage.getItem('frontdesk:' + arguments[0]); return raw ? JSON.parse(raw) : null;";
        self.js(body, vec![json!(bot)]).await
    }

    /// Waits until the widget has stored its conversation id; returns it.
    pub async fn conversation_id(&self, bot: &str) -> String {
        let body = "const raw = localStorage.getItem('frontdesk:' + arguments[0]); \
                    return raw ? (JSON.parse(raw).conversation_id || null) : null;";
        let id = self.wait_for("the conversation id in localStorage", body, vec![json!(bot)]).await;
        id.as_str().expect("a conversation id").to_owned()
    }

    /// Sets the page's viewport (the browser's inner size) to `viewport`.
    pub async fn set_viewport(&self, viewport: Viewport) {
        let (width, height) = viewport.size();
        let mut outer = (width, height);
        for _ in 0..10 {
            self.client.set_window_size(outer.0, outer.1).await.expect("window size");
            // A loaded machine applies a resize late: read the inner size until it settles.
            let mut inner = (0, 0);
            for _ in 0..20 {
                let read = self.js("return [window.innerWidth, window.innerHeight];", vec![]).await;
                let now = (read[0].as_i64().unwrap(), read[1].as_i64().unwrap());
                if now == inner {
                    break;
                }
                inner = now;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let (w, h) = inner;
            if (w, h) == (i64::from(width), i64::from(height)) {
                *self.viewport.lock().unwrap() = viewport;
                return;
            }
            outer = (
                (i64::from(outer.0) + i64::from(width) - w) as u32,
                (i64::from(outer.1) + i64::from(height) - h) as u32,
            );
        }
        panic!("could not set the viewport to {}", viewport.name());
    }

    /// Saves a screenshot of the page as `<scenario>-<moment>-<viewport>.png` in the artefacts
    /// folder, prints its path and answers it.
    pub async fn screenshot(&self, moment: &str) -> PathBuf {
        let viewport = *self.viewport.lock().unwrap();
        let path = artefacts_dir().join(format!("{}-{moment}-{}.png", self.scenario, viewport.name()));
        match self.client.screenshot().await {
            Ok(png) => {
                std::fs::write(&path, png).expect("write the screenshot");
                println!("screenshot: {}", path.display());
            }
            Err(err) => println!("no screenshot {}: {err}", path.display()),
        }
        path
    }

    /// A screenshot at each viewport (the desktop one first); leaves the desktop viewport set.
    pub async fn screenshots(&self, moment: &str) -> [PathBuf; 2] {
        self.set_viewport(Viewport::Desktop).await;
        let desktop = self.screenshot(moment).await;
        self.set_viewport(Viewport::Phone).await;
        self.settle().await;
        let phone = self.screenshot(moment).await;
        self.set_viewport(Viewport::Desktop).await;
        self.settle().await;
        [desktop, phone]
    }

    /// Two animation frames and the widget's transitions (at most a short while): lets a layout
    /// change paint before a screenshot. Not an assertion.
    pub async fn settle(&self) {
        self.js_async(
            "requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => done(true), 350)));",
            vec![],
        )
        .await;
    }
}

pub const TAB: char = '\u{e004}';
pub const ENTER: char = '\u{e007}';
pub const ESCAPE: char = '\u{e00c}';

/// What a host page holds besides the embed.
#[derive(Debug, Clone, Default)]
pub struct Embed {
    /// A strict Content-Security-Policy allowing only the frontdesk origin.
    pub strict_csp: bool,
    /// Page CSS that tries to break everything generic (`* { all: unset }`, `div { display:
    /// none !important }`, …), inline.
    pub hostile_css: bool,
    /// Extra attributes on the script tag (`data-open="true"`, …).
    pub attributes: String,
    /// Leave the script tag out (a page of the host's origin with no widget).
    pub no_widget: bool,
    /// HTML right after the script tag (an integrator's own inline script, …).
    pub after: String,
}

#[derive(Clone)]
struct Page {
    html: String,
    csp: Option<String>,
}

/// A website of another origin than frontdesk (`http://localhost:<port>`, frontdesk being
/// `http://127.0.0.1:<port>`) serving the pages the tests register.
pub struct HostSite {
    pub origin: String,
    pages: Arc<Mutex<HashMap<String, Page>>>,
    /// The Content-Security-Policy violation reports the browser sent (`report-uri`).
    reports: Arc<Mutex<Vec<String>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for HostSite {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        let _ = std::thread::spawn(move || futures::executor::block_on(handle.stop(false))).join();
    }
}

/// Page CSS a careless or hostile site might have; none of it may reach into the widget.
pub const HOSTILE_CSS: &str = r#"
* { all: unset; }
html { font-size: 62.5% !important; line-height: 3 !important; color: #f0f !important; }
head, style, script { display: none; }
body { display: block; font: 700 31px/1.9 "Comic Sans MS", cursive !important; letter-spacing: 3px !important;
       direction: ltr; text-transform: uppercase !important; }
div { display: none !important; }
body > div { position: static !important; z-index: -1 !important; opacity: .2 !important; }
button, textarea, input, form { display: none !important; background: red !important; font-size: 40px !important; }
*, *::before, *::after { box-sizing: content-box !important; transition: none !important; }
p, main, header, h1, h2, nav, a { display: block; margin: 8px; }
"#;

/// The host page's own look: a plain clinic website.
const PAGE_CSS: &str = r#"
body { margin: 0; font: 16px/1.6 Georgia, serif; color: #1f2933; background: #f7f5f2; }
header { background: #fff; border-bottom: 1px solid #e4e0da; padding: 18px 48px; display: flex;
         justify-content: space-between; align-items: center; }
header h1 { font-size: 22px; margin: 0; color: #0f4c5c; }
nav a { margin-left: 20px; color: #0f4c5c; text-decoration: none; }
main { max-width: 760px; margin: 48px auto; padding: 0 24px; }
main h2 { font-size: 34px; line-height: 1.2; color: #102a43; }
.cta { background: #0f4c5c; color: #fff; border: 0; border-radius: 4px; padding: 12px 20px; font-size: 16px; }
"#;

impl HostSite {
    pub fn start() -> HostSite {
        let pages: Arc<Mutex<HashMap<String, Page>>> = Arc::default();
        let reports: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let (shared, noted) = (pages.clone(), reports.clone());
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    let (pages, reports) = (shared.clone(), noted.clone());
                    let handler = move |req: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                        let page = pages.lock().unwrap().get(req.path()).cloned();
                        if req.path() == "/csp-report" {
                            reports.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                        }
                        async move {
                            match page {
                                Some(page) => {
                                    let mut res = actix_web::HttpResponse::Ok();
                                    res.content_type("text/html; charset=utf-8");
                                    res.insert_header(("Cache-Control", "no-store"));
                                    if let Some(csp) = page.csp {
                                        res.insert_header(("Content-Security-Policy", csp));
                                    }
                                    res.body(page.html)
                                }
                                None => actix_web::HttpResponse::NotFound().body("no such page"),
                            }
                        }
                    };
                    actix_web::App::new().default_service(actix_web::web::to(handler))
                })
                .workers(1)
                .bind(("127.0.0.1", 0))
                .expect("bind the host site");
                let port = server.addrs()[0].port();
                let server = server.run();
                tx.send((port, server.handle())).unwrap();
                server.await.expect("host site runs");
            })
        });
        let (port, handle) = rx.recv_timeout(Duration::from_secs(30)).expect("host site started");
        HostSite { origin: format!("http://localhost:{port}"), pages, reports, handle }
    }

    /// The policy violations the browser has reported so far (JSON bodies).
    pub fn csp_reports(&self) -> Vec<String> {
        self.reports.lock().unwrap().clone()
    }

    /// Serves a page at `path` embedding the widget of `bot` from `frontdesk` (its base URL);
    /// answers the page's URL.
    pub fn page(&self, path: &str, frontdesk: &str, bot: &str, embed: &Embed) -> String {
        let style = if embed.hostile_css {
            format!("<style>{PAGE_CSS}{HOSTILE_CSS}</style>")
        } else if embed.strict_csp {
            String::new() // the policy allows no inline style: an unstyled page
        } else {
            format!("<style>{PAGE_CSS}</style>")
        };
        let script = if embed.no_widget {
            String::new()
        } else {
            format!(r#"<script src="{frontdesk}/widget.js" data-bot="{bot}" {} async></script>"#, embed.attributes)
        };
        let script = format!("{script}{}", embed.after);
        let html = format!(
            r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bright Smile Dental</title>{style}</head>
<body>
<header><h1>Bright Smile Dental</h1><nav><a href="#services">Services</a><a href="#visit">Visit us</a></nav></header>
<main>
<h2>Gentle dentistry in the heart of town</h2>
<p id="intro">Check-ups, cleanings, whitening and emergency care for the whole family. Our team of four
dentists has looked after the neighbourhood's smiles since 1998.</p>
<p id="visit">Open Monday to Friday, 8:00 to 18:00, and Saturday mornings. Free parking behind the building.</p>
<button type="button" class="cta" id="call">Call 555-0134</button>
</main>
{script}
</body></html>"##
        );
        let csp = embed.strict_csp.then(|| strict_csp(frontdesk));
        self.pages.lock().unwrap().insert(path.to_owned(), Page { html, csp });
        format!("{}{path}", self.origin)
    }
}

/// A Content-Security-Policy that allows only the frontdesk origin (`base`, and its WebSocket
/// form) to load scripts, styles, images and connections: nothing of the page's own origin,
/// nothing inline. Violations are reported to the host site (`/csp-report`).
pub fn strict_csp(base: &str) -> String {
    let ws = base.replacen("http://", "ws://", 1);
    format!(
        "default-src 'none'; script-src {base}; connect-src {base} {ws}; style-src {base}; img-src {base}; \
         font-src {base}; media-src {base}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
         report-uri /csp-report"
    )
}

/// `PATCH /api/bots/{bot}` in workspace A with `body`; panics unless it succeeds.
pub async fn patch_bot(app: &TestApp, body: Value) -> Value {
    let path = format!("/api/bots/{}", app.a.bot_id);
    let res =
        app.http.patch(app.url(&path)).bearer_auth(&app.a.api_key).json(&body).send().await.expect("PATCH the bot");
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "PATCH {path} {body}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The bot's current settings (to change some and keep the rest).
pub async fn bot_settings(app: &TestApp) -> Value {
    let (status, bot) = app.get(&app.a.api_key, &format!("/api/bots/{}", app.a.bot_id)).await;
    assert_eq!(status, 200, "{bot}");
    bot["settings"].clone()
}

/// Merges `changes` into the bot's settings (objects merged key by key, one level deep).
pub async fn change_bot_settings(app: &TestApp, changes: Value) {
    let mut settings = bot_settings(app).await;
    for (key, value) in changes.as_object().expect("an object of settings") {
        match (settings.get_mut(key), value) {
            (Some(Value::Object(current)), Value::Object(new)) => {
                for (k, v) in new {
                    current.insert(k.clone(), v.clone());
                }
            }
            _ => {
                settings[key] = value.clone();
            }
        }
    }
    patch_bot(app, json!({ "settings": settings })).await;
}

/// The real `frontdesk` binary on a fixed address (so that a restart comes back where the
/// browser expects it); stdout drained, killed when dropped.
pub struct Binary {
    pub child: Child,
    pub base: String,
}

impl Binary {
    pub fn start(envs: &[(&str, String)], port: u16) -> Binary {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .arg("serve")
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .env("FRONTDESK_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("frontdesk binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("frontdesk printed its address").expect("stdout line");
            if let Some(base) = line.strip_prefix("frontdesk listening on ") {
                break base.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Binary { child, base }
    }

    /// Ends it at once, as a crash would (SIGKILL: nothing is told to reconnect).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.kill();
    }
}
