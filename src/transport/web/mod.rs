//! The faces' files: the widget's loader (`GET /widget.js`), its script and stylesheet under
//! content-hashed names (`GET /widget/assets/…`), the demo page (`GET /demo`), and the
//! console's page (`GET /console/…`), its hashed files (`/console/assets/…`) and the widget
//! preview it frames (`/console/preview/{bot_id}`).
//!
//! The files are compiled into the binary. At first use each is hashed and compressed once
//! (gzip and brotli) and then served from memory with an `ETag`, `Vary: Accept-Encoding` and a
//! cache policy: a year and `immutable` for hashed names, five minutes for the loader, whose
//! name is fixed (it is what sites embed) and which names the current hashed files. With
//! `FRONTDESK_WEB_DIR` the files are read from that folder on every request instead, so the
//! widget can be worked on without a rebuild.

pub mod uploads;
pub mod widget_config;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::domain::chat::Chat;
use crate::error::ApiError;

const LOADER: &str = include_str!("widget/loader.js");
const WIDGET_JS: &str = include_str!("widget/widget.js");
const WIDGET_CSS: &str = include_str!("widget/widget.css");
const DEMO_PAGE: &str = include_str!("demo.html");

const JS_PLACEHOLDER: &str = "__FRONTDESK_WIDGET_JS__";
const CSS_PLACEHOLDER: &str = "__FRONTDESK_WIDGET_CSS__";
const BOT_PLACEHOLDER: &str = "__FRONTDESK_BOT_ID__";
const ORIGIN_PLACEHOLDER: &str = "__FRONTDESK_ORIGIN__";
const CONSOLE_JS_PLACEHOLDER: &str = "__FRONTDESK_CONSOLE_JS__";
const CONSOLE_CSS_PLACEHOLDER: &str = "__FRONTDESK_CONSOLE_CSS__";

/// Hashed files never change under their name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The loader's name is fixed: a short life, so a new release reaches sites within minutes.
const LOADER_CACHE: &str = "public, max-age=300";

/// One file ready to serve: its bytes as they are and compressed, and its validator.
pub struct Asset {
    pub content_type: &'static str,
    pub raw: Vec<u8>,
    pub gzip: Vec<u8>,
    pub brotli: Vec<u8>,
    pub etag: String,
    pub cache_control: &'static str,
}

impl Asset {
    fn new(content_type: &'static str, raw: Vec<u8>, cache_control: &'static str) -> Self {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&raw))[..20]);
        let gzip = {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let _ = encoder.write_all(&raw);
            encoder.finish().unwrap_or_default()
        };
        let brotli = {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams { quality: 11, ..Default::default() };
            let _ = brotli::BrotliCompress(&mut raw.as_slice(), &mut out, &params);
            out
        };
        Asset { content_type, raw, gzip, brotli, etag, cache_control }
    }

    /// The response for `req`: 304 when its `If-None-Match` names this version, else the bytes
    /// in the best encoding the client accepts.
    pub fn respond(&self, req: &HttpRequest) -> HttpResponse {
        let mut response = if not_modified(req, &self.etag) { HttpResponse::NotModified() } else { HttpResponse::Ok() };
        response
            .insert_header((header::ETAG, self.etag.clone()))
            .insert_header((header::CACHE_CONTROL, self.cache_control))
            .insert_header((header::VARY, "Accept-Encoding"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            // Public files any page may load, with or without CORS mode.
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"));
        if not_modified(req, &self.etag) {
            return response.finish();
        }
        response.content_type(self.content_type);
        let (encoding, body) = match preferred_encoding(req) {
            Encoding::Brotli => (Some("br"), &self.brotli),
            Encoding::Gzip => (Some("gzip"), &self.gzip),
            Encoding::Identity => (None, &self.raw),
        };
        if let Some(encoding) = encoding {
            response.insert_header((header::CONTENT_ENCODING, encoding));
        }
        // Already encoded: actix must not compress it again or guess another encoding.
        response.body(body.clone())
    }
}

fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

/// The client's best encoding: brotli, then gzip, then none; `q=0` refuses one.
pub fn preferred_encoding(req: &HttpRequest) -> Encoding {
    let accepted = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let accepts = |wanted: &str| {
        accepted.split(',').any(|part| {
            let mut pieces = part.split(';');
            let name = pieces.next().unwrap_or("").trim();
            let refused = pieces.any(|p| {
                let p = p.trim().replace(' ', "");
                p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()).is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case(wanted) || name == "*") && !refused
        })
    };
    if accepts("br") {
        Encoding::Brotli
    } else if accepts("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// The faces' source files, one release: compiled in, or read from a folder.
pub struct Sources {
    pub loader: String,
    pub widget_js: String,
    pub widget_css: String,
    pub demo: String,
    pub console_html: String,
    pub console_js: String,
    pub console_css: String,
    pub preview: String,
}

/// The files a release is built from, relative to `src/web`, in [`Sources`]' order.
const SOURCES: [&str; 8] = [
    "widget/loader.js",
    "widget/widget.js",
    "widget/widget.css",
    "demo.html",
    "console/index.html",
    "console/console.js",
    "console/console.css",
    "console/preview.html",
];

impl Sources {
    fn embedded() -> Self {
        Sources {
            loader: LOADER.into(),
            widget_js: WIDGET_JS.into(),
            widget_css: WIDGET_CSS.into(),
            demo: DEMO_PAGE.into(),
            console_html: include_str!("console/index.html").into(),
            console_js: include_str!("console/console.js").into(),
            console_css: include_str!("console/console.css").into(),
            preview: include_str!("console/preview.html").into(),
        }
    }

    fn from_dir(dir: &Path) -> std::io::Result<Self> {
        let read = |name: &str| std::fs::read_to_string(dir.join(name));
        let [loader, widget_js, widget_css, demo, console_html, console_js, console_css, preview] = SOURCES;
        Ok(Sources {
            loader: read(loader)?,
            widget_js: read(widget_js)?,
            widget_css: read(widget_css)?,
            demo: read(demo)?,
            console_html: read(console_html)?,
            console_js: read(console_js)?,
            console_css: read(console_css)?,
            preview: read(preview)?,
        })
    }
}

/// The faces' files ready to serve: the widget's loader names its hashed script and
/// stylesheet, the console's page names its own.
pub struct WidgetRelease {
    pub loader: Asset,
    /// By file name under `/widget/assets/` or `/console/assets/`.
    pub hashed: HashMap<String, Asset>,
    pub script_path: String,
    pub style_path: String,
    demo_page: String,
    console_page: String,
    preview_page: String,
}

const JS: &str = "text/javascript; charset=utf-8";

/// The script without the lines that hold only a `//` comment: the widget is documented in its
/// source and sent to every visitor without the documentation (a tenth of its gzipped size).
/// Safe only where no string spans lines, so a script with a backtick on a line of code (a
/// template literal) is sent whole.
fn without_line_comments(js: &str) -> String {
    let code: Vec<&str> = js.lines().filter(|line| !line.trim_start().starts_with("//")).collect();
    if code.iter().any(|line| line.contains('`')) {
        return js.to_owned();
    }
    let mut out = code.join("\n");
    out.push('\n');
    out
}
const CSS: &str = "text/css; charset=utf-8";

impl WidgetRelease {
    fn build(sources: &Sources) -> Self {
        let mut hashed = HashMap::new();
        let mut add = |face: &str, ext: &str, mime: &'static str, text: &str| {
            let name = format!("{face}.{}.{ext}", &hex::encode(Sha256::digest(text.as_bytes()))[..12]);
            let path = format!("/{face}/assets/{name}");
            hashed.insert(name, Asset::new(mime, text.as_bytes().to_vec(), IMMUTABLE));
            path
        };
        let script_path = add("widget", "js", JS, &without_line_comments(&sources.widget_js));
        let style_path = add("widget", "css", CSS, &sources.widget_css);
        let console_js = add("console", "js", JS, &sources.console_js);
        let console_css = add("console", "css", CSS, &sources.console_css);
        let loader = sources.loader.replace(JS_PLACEHOLDER, &script_path).replace(CSS_PLACEHOLDER, &style_path);
        WidgetRelease {
            loader: Asset::new(JS, loader.into_bytes(), LOADER_CACHE),
            hashed,
            script_path,
            style_path,
            demo_page: sources.demo.clone(),
            console_page: sources
                .console_html
                .replace(CONSOLE_JS_PLACEHOLDER, &console_js)
                .replace(CONSOLE_CSS_PLACEHOLDER, &console_css),
            preview_page: sources.preview.clone(),
        }
    }

    /// The release compiled into this binary, built once per process.
    fn embedded() -> Arc<WidgetRelease> {
        static RELEASE: OnceLock<Arc<WidgetRelease>> = OnceLock::new();
        RELEASE.get_or_init(|| Arc::new(WidgetRelease::build(&Sources::embedded()))).clone()
    }

    /// The files as they are now in `dir` (the `src/web` folder of a checkout).
    fn from_dir(dir: &Path) -> std::io::Result<WidgetRelease> {
        Ok(WidgetRelease::build(&Sources::from_dir(dir)?))
    }
}

/// Where the faces' files come from: the binary, or a folder read again whenever one of its
/// files changed.
#[derive(Clone, Default)]
pub struct WebFiles {
    dev_dir: Option<PathBuf>,
    /// The folder's last release and the modification times it was built from.
    dev_cache: Arc<std::sync::Mutex<Option<DevRelease>>>,
}

/// A release read from the folder, and its files' modification times then.
type DevRelease = (Vec<std::time::SystemTime>, Arc<WidgetRelease>);

impl WebFiles {
    pub fn new(dev_dir: Option<PathBuf>) -> Self {
        WebFiles { dev_dir, dev_cache: Arc::default() }
    }

    /// The current release. Building one hashes and compresses every file, which takes a
    /// while: it runs on the blocking pool, never on the event loop.
    pub async fn release(&self) -> Result<Arc<WidgetRelease>, ApiError> {
        let files = self.clone();
        web::block(move || files.release_now()).await.map_err(ApiError::internal)?
    }

    /// Builds the compiled-in release ahead of the first request (called at start, off the
    /// event loop).
    pub fn warm(&self) {
        if self.dev_dir.is_none() {
            WidgetRelease::embedded();
        }
    }

    fn release_now(&self) -> Result<Arc<WidgetRelease>, ApiError> {
        let Some(dir) = &self.dev_dir else { return Ok(WidgetRelease::embedded()) };
        let unreadable = |err: std::io::Error| {
            ApiError::internal(format!("cannot read the widget's files in {}: {err}", dir.display()))
        };
        let stamps = SOURCES
            .iter()
            .map(|name| std::fs::metadata(dir.join(name)).and_then(|m| m.modified()))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(unreadable)?;
        let mut cache = self.dev_cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((built_from, release)) = cache.as_ref() {
            if *built_from == stamps {
                return Ok(release.clone());
            }
        }
        let release = Arc::new(WidgetRelease::from_dir(dir).map_err(unreadable)?);
        *cache = Some((stamps, release.clone()));
        Ok(release)
    }
}

/// `GET /widget.js`: the loader a site embeds.
pub async fn loader(req: HttpRequest, files: web::Data<WebFiles>) -> Result<HttpResponse, ApiError> {
    Ok(files.release().await?.loader.respond(&req))
}

/// `GET /widget/assets/{name}`: a hashed script or stylesheet.
pub async fn asset(
    req: HttpRequest,
    files: web::Data<WebFiles>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let release = files.release().await?;
    match release.hashed.get(name.as_str()) {
        Some(asset) => Ok(asset.respond(&req)),
        None => {
            Err(ApiError::not_found(format!("no widget file {name}: this server's widget is {}", release.script_path)))
        }
    }
}

/// Whether `/demo` is served, and for which bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoPage {
    /// The demo workspace's bot (the default; a server without one answers 404).
    Demo,
    Off,
}

/// `GET /demo`: a sample clinic page with the widget of the demo workspace's bot, so a
/// newcomer can chat in a browser without writing a page.
pub async fn demo(
    req: HttpRequest,
    chat: web::Data<Chat>,
    files: web::Data<WebFiles>,
    setting: web::Data<DemoPage>,
) -> Result<HttpResponse, ApiError> {
    let off = || ApiError::not_found("the demo page is off (FRONTDESK_DEMO_PAGE=off)");
    if **setting == DemoPage::Off {
        return Err(off());
    }
    let bot = chat.demo_bot().await?.ok_or_else(|| {
        ApiError::not_found("this server has no demo workspace (it is made on a first start with FRONTDESK_DEMO on)")
    })?;
    // Shown in the page's embed snippet only: this server as the browser reached it.
    let origin = {
        let info = req.connection_info();
        let raw = format!("{}://{}", info.scheme(), info.host());
        raw.chars().filter(|c| c.is_ascii_alphanumeric() || ":/.-[]".contains(*c)).collect::<String>()
    };
    let page = files.release().await?.demo_page.replace(BOT_PLACEHOLDER, &bot).replace(ORIGIN_PLACEHOLDER, &origin);
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // The page shows what a site with a strict policy needs: the widget's origin only.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
            ),
        ))
        .body(page))
}

/// `GET /console` and every page under it: the console's single page; it finds its own way
/// from the path.
pub async fn console(files: web::Data<WebFiles>) -> Result<HttpResponse, ApiError> {
    let page = files.release().await?.console_page.clone();
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        // A set-password link's token is in the address: it must not travel on as a referrer.
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https:; \
                 connect-src 'self' ws: wss:; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                 form-action 'self'",
            ),
        ))
        .body(page))
}

/// `GET /console/preview/{bot_id}`: a bare page with the bot's real widget, open, for the
/// console's live preview of the widget's settings (framed by the console only).
pub async fn preview(files: web::Data<WebFiles>, bot_id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let valid = bot_id.len() <= 64 && bot_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(ApiError::not_found("bot not found"));
    }
    let page = files.release().await?.preview_page.replace(BOT_PLACEHOLDER, &bot_id);
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
                 connect-src 'self' ws: wss:; base-uri 'none'; frame-ancestors 'self'",
            ),
        ))
        .body(page))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/widget.js", web::get().to(loader))
        .route("/widget/assets/{name}", web::get().to(asset))
        .route("/widget/config/{bot_id}", web::get().to(widget_config::public))
        .route("/widget/uploads", web::post().to(uploads::upload))
        .route("/widget/files/{bot_id}/{id}", web::get().to(uploads::download))
        .route("/demo", web::get().to(demo))
        .route("/console/assets/{name}", web::get().to(asset))
        .route("/console/preview/{bot_id}", web::get().to(preview))
        .route("/console", web::get().to(console))
        .route("/console/{page:.*}", web::get().to(console));
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_loader_names_the_hashed_files_and_a_change_renames_them() {
        let sources = |loader: &str, js: &str, css: &str| Sources {
            loader: loader.into(),
            widget_js: js.into(),
            widget_css: css.into(),
            demo: String::new(),
            console_html: "<script src=\"__FRONTDESK_CONSOLE_JS__\">".into(),
            console_js: "c".into(),
            console_css: "c".into(),
            preview: String::new(),
        };
        let one = WidgetRelease::build(&sources(
            "a(\"__FRONTDESK_WIDGET_JS__\",\"__FRONTDESK_WIDGET_CSS__\")",
            "js1",
            "css1",
        ));
        let loader = String::from_utf8(one.loader.raw.clone()).unwrap();
        assert!(loader.contains(&one.script_path) && loader.contains(&one.style_path), "{loader}");
        assert!(!loader.contains("__FRONTDESK"), "{loader}");
        let two = WidgetRelease::build(&sources("x", "js2", "css1"));
        assert!(one.console_page.contains("/console/assets/console."), "{}", one.console_page);
        assert_ne!(one.script_path, two.script_path);
        assert_eq!(one.style_path, two.style_path);
        assert_ne!(one.loader.etag, two.loader.etag);
    }

    #[test]
    fn comment_lines_are_dropped_unless_a_string_may_span_lines() {
        let js = "// what this is\nconst a = 1; // kept: code\n  // why\nconst url = \"http://x\";\n";
        assert_eq!(without_line_comments(js), "const a = 1; // kept: code\nconst url = \"http://x\";\n");
        let template = "const t = `\n// inside a template literal\n`;\n";
        assert_eq!(without_line_comments(template), template);
    }

    #[test]
    fn compressed_copies_decompress_to_the_file() {
        let text = "body { color: red; }\n".repeat(200);
        let asset = Asset::new("text/css", text.clone().into_bytes(), IMMUTABLE);
        let mut gunzipped = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(asset.gzip.as_slice()), &mut gunzipped)
            .unwrap();
        assert_eq!(gunzipped, text);
        let mut unbrotli = Vec::new();
        brotli::BrotliDecompress(&mut asset.brotli.as_slice(), &mut unbrotli).unwrap();
        assert_eq!(String::from_utf8(unbrotli).unwrap(), text);
        assert!(asset.brotli.len() < text.len() / 10 && asset.gzip.len() < text.len() / 10);
    }

    #[test]
    fn the_best_accepted_encoding_is_chosen() {
        let with = |value: &str| {
            preferred_encoding(&TestRequest::default().insert_header(("accept-encoding", value)).to_http_request())
        };
        assert_eq!(with("gzip, deflate, br"), Encoding::Brotli);
        assert_eq!(with("gzip"), Encoding::Gzip);
        assert_eq!(with("br;q=0, gzip;q=0.5"), Encoding::Gzip);
        assert_eq!(with("identity"), Encoding::Identity);
        assert_eq!(with("*"), Encoding::Brotli);
        assert_eq!(preferred_encoding(&TestRequest::default().to_http_request()), Encoding::Identity);
    }
}
