//! The faces' files: the widget's loader (`GET /widget.js`), its script and stylesheet under
//! content-hashed names (`GET /widget/assets/…`), and the demo page (`GET /demo`).
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

use crate::chat::Chat;
use crate::error::ApiError;

const LOADER: &str = include_str!("widget/loader.js");
const WIDGET_JS: &str = include_str!("widget/widget.js");
const WIDGET_CSS: &str = include_str!("widget/widget.css");
const DEMO_PAGE: &str = include_str!("demo.html");

const JS_PLACEHOLDER: &str = "__FRONTDESK_WIDGET_JS__";
const CSS_PLACEHOLDER: &str = "__FRONTDESK_WIDGET_CSS__";
const BOT_PLACEHOLDER: &str = "__FRONTDESK_BOT_ID__";
const ORIGIN_PLACEHOLDER: &str = "__FRONTDESK_ORIGIN__";

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

/// The widget's files as one release: the loader names the hashed script and stylesheet.
pub struct WidgetRelease {
    pub loader: Asset,
    /// By file name under `/widget/assets/`.
    pub hashed: HashMap<String, Asset>,
    pub script_path: String,
    pub style_path: String,
    demo_page: String,
}

impl WidgetRelease {
    fn build(loader: &str, script: &str, style: &str, demo: &str) -> Self {
        let short_hash = |text: &str| hex::encode(Sha256::digest(text.as_bytes()))[..12].to_owned();
        let script_name = format!("widget.{}.js", short_hash(script));
        let style_name = format!("widget.{}.css", short_hash(style));
        let script_path = format!("/widget/assets/{script_name}");
        let style_path = format!("/widget/assets/{style_name}");
        let loader = loader.replace(JS_PLACEHOLDER, &script_path).replace(CSS_PLACEHOLDER, &style_path);
        let mut hashed = HashMap::new();
        hashed.insert(script_name, Asset::new("text/javascript; charset=utf-8", script.as_bytes().to_vec(), IMMUTABLE));
        hashed.insert(style_name, Asset::new("text/css; charset=utf-8", style.as_bytes().to_vec(), IMMUTABLE));
        WidgetRelease {
            loader: Asset::new("text/javascript; charset=utf-8", loader.into_bytes(), LOADER_CACHE),
            hashed,
            script_path,
            style_path,
            demo_page: demo.to_owned(),
        }
    }

    /// The release compiled into this binary, built once per process.
    fn embedded() -> Arc<WidgetRelease> {
        static RELEASE: OnceLock<Arc<WidgetRelease>> = OnceLock::new();
        RELEASE.get_or_init(|| Arc::new(WidgetRelease::build(LOADER, WIDGET_JS, WIDGET_CSS, DEMO_PAGE))).clone()
    }

    /// The files as they are now in `dir` (the `src/web` folder of a checkout).
    fn from_dir(dir: &Path) -> std::io::Result<WidgetRelease> {
        let read = |name: &str| std::fs::read_to_string(dir.join(name));
        let [loader, script, style, demo] = SOURCES;
        Ok(WidgetRelease::build(&read(loader)?, &read(script)?, &read(style)?, &read(demo)?))
    }
}

/// Where the faces' files come from: the binary, or a folder read again whenever one of its
/// files changed.
#[derive(Clone, Default)]
pub struct WebFiles {
    dev_dir: Option<PathBuf>,
    /// The folder's last release and the modification times it was built from.
    dev_cache: Arc<std::sync::Mutex<Option<(Vec<std::time::SystemTime>, Arc<WidgetRelease>)>>>,
}

impl WebFiles {
    pub fn new(dev_dir: Option<PathBuf>) -> Self {
        WebFiles { dev_dir, dev_cache: Arc::default() }
    }

    pub fn release(&self) -> Result<Arc<WidgetRelease>, ApiError> {
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

/// The files a release is built from, relative to `src/web`.
const SOURCES: [&str; 4] = ["widget/loader.js", "widget/widget.js", "widget/widget.css", "demo.html"];

/// `GET /widget.js`: the loader a site embeds.
pub async fn loader(req: HttpRequest, files: web::Data<WebFiles>) -> Result<HttpResponse, ApiError> {
    Ok(files.release()?.loader.respond(&req))
}

/// `GET /widget/assets/{name}`: a hashed script or stylesheet.
pub async fn asset(
    req: HttpRequest,
    files: web::Data<WebFiles>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let release = files.release()?;
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
    let bot = chat.db.run(crate::db::workspaces::demo_bot).await?.ok_or_else(|| {
        ApiError::not_found("this server has no demo workspace (it is made on a first start with FRONTDESK_DEMO on)")
    })?;
    // Shown in the page's embed snippet only: this server as the browser reached it.
    let origin = {
        let info = req.connection_info();
        let raw = format!("{}://{}", info.scheme(), info.host());
        raw.chars().filter(|c| c.is_ascii_alphanumeric() || ":/.-[]".contains(*c)).collect::<String>()
    };
    let page = files.release()?.demo_page.replace(BOT_PLACEHOLDER, &bot).replace(ORIGIN_PLACEHOLDER, &origin);
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

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/widget.js", web::get().to(loader))
        .route("/widget/assets/{name}", web::get().to(asset))
        .route("/widget/config/{bot_id}", web::get().to(widget_config::public))
        .route("/widget/uploads", web::post().to(uploads::upload))
        .route("/widget/files/{bot_id}/{id}", web::get().to(uploads::download))
        .route("/demo", web::get().to(demo));
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_loader_names_the_hashed_files_and_a_change_renames_them() {
        let one =
            WidgetRelease::build("a(\"__FRONTDESK_WIDGET_JS__\",\"__FRONTDESK_WIDGET_CSS__\")", "js1", "css1", "");
        let loader = String::from_utf8(one.loader.raw.clone()).unwrap();
        assert!(loader.contains(&one.script_path) && loader.contains(&one.style_path), "{loader}");
        assert!(!loader.contains("__FRONTDESK"), "{loader}");
        let two = WidgetRelease::build("x", "js2", "css1", "");
        assert_ne!(one.script_path, two.script_path);
        assert_eq!(one.style_path, two.style_path);
        assert_ne!(one.loader.etag, two.loader.etag);
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
