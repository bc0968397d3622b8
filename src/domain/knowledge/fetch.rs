//! Fetching knowledge sources from the web: single documents and small same-site crawls.
//!
//! This module owns the network side of website ingestion. [`Fetcher::fetch`] downloads one
//! document under the SSRF guard of [`crate::net_guard`] (every redirect hop is re-checked, and the
//! guarded resolver vets the addresses actually connected to), within size limits and for the
//! content types the knowledge base can read. [`Fetcher::crawl`] walks one site breadth-first from a
//! start page or a sitemap, politely (one request at a time) and within page and depth budgets.
//! Turning the fetched bytes into text is left to [`crate::domain::knowledge::chunk`] and the caller.

use std::collections::{HashSet, VecDeque};
use std::error::Error as _;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quick_xml::events::Event;
use reqwest::{StatusCode, Url};

use crate::domain::knowledge::chunk;
use crate::net_guard::{self, TargetError, TargetPolicy};

/// Bounds for a single [`Fetcher::fetch`].
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    /// Total time for one request, body included. Each redirect hop is a request of its own.
    pub timeout: Duration,
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
    /// Most redirects followed before giving up.
    pub max_redirects: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(20), max_bytes: 10 * 1024 * 1024, max_redirects: 5 }
    }
}

/// Bounds for a [`Fetcher::crawl`].
#[derive(Debug, Clone, Copy)]
pub struct CrawlLimits {
    /// Most pages returned, the start page included.
    pub max_pages: usize,
    /// Most link hops from the start page (which is depth 0) to a page.
    pub max_depth: usize,
    /// Whether to also read `/sitemap.xml` to find pages links do not reach.
    pub use_sitemap: bool,
}

impl Default for CrawlLimits {
    fn default() -> Self {
        Self { max_pages: 50, max_depth: 3, use_sitemap: true }
    }
}

/// One downloaded document.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where the document was finally found, after redirects.
    pub url: Url,
    /// The MIME essence (`text/html`), lowercase; `None` when the server sent none.
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// One page of a crawl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawledPage {
    /// Where the page was finally found, after redirects, without fragment.
    pub url: String,
    /// As in [`Fetched::content_type`].
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// Why a document could not be fetched. Every variant names the URL concerned, because during a
/// crawl that is rarely the URL the user typed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The SSRF guard refused the URL, a redirect target, or every address its host resolved to.
    #[error("refused to fetch {url}: {source}")]
    Refused {
        url: String,
        #[source]
        source: TargetError,
    },
    /// The request did not complete within [`FetchLimits::timeout`].
    #[error("fetching {url} timed out")]
    Timeout { url: String },
    /// Name resolution, connection, TLS or transfer failed.
    #[error("could not fetch {url}: {reason}")]
    Network { url: String, reason: String },
    /// The server answered with something other than success (or a redirect without a target).
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: StatusCode },
    /// The body exceeds [`FetchLimits::max_bytes`].
    #[error("{url} is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: usize },
    /// A content type the knowledge base cannot read.
    #[error("{url} has content type {content_type}, which is not supported (expected {SUPPORTED_KINDS})")]
    UnsupportedContentType { url: String, content_type: String },
    /// The redirect chain is longer than [`FetchLimits::max_redirects`].
    #[error("{url} redirected more than {limit} times")]
    TooManyRedirects { url: String, limit: usize },
}

/// Content types worth downloading: what the knowledge base can turn into text, plus XML for
/// sitemaps. Everything else (images, archives, video) would only waste the byte budget.
const ACCEPTED_TYPES: &[&str] = &[
    "text/html",
    "application/xhtml+xml",
    "text/plain",
    "text/markdown",
    "text/x-markdown",
    "text/csv",
    "application/pdf",
    "application/xml",
    "text/xml",
];

/// [`ACCEPTED_TYPES`] in words, for error messages.
const SUPPORTED_KINDS: &str = "HTML, text, Markdown, CSV, PDF or an XML sitemap";

/// How many sitemap files one crawl reads at most, across nested sitemap indexes.
const MAX_SITEMAP_FILES: usize = 20;

/// The sitemap protocol's own cap on URLs per file; more is a broken or hostile file.
const MAX_SITEMAP_LOCS: usize = 50_000;

/// Downloads knowledge sources through the SSRF guard.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: TargetPolicy,
    limits: FetchLimits,
}

impl Fetcher {
    /// A fetcher applying `policy` to every URL and hop, identifying as `frontdesk-knowledge/<version>`.
    pub fn new(policy: TargetPolicy, limits: FetchLimits) -> Self {
        let client = net_guard::client_with_agent(
            policy.clone(),
            limits.timeout,
            concat!("frontdesk-knowledge/", env!("CARGO_PKG_VERSION")),
        );
        Self { client, policy, limits }
    }

    /// Downloads one document, following redirects by hand so the guard sees every hop.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let mut current = self.check(url)?;
        let mut redirects = 0;
        loop {
            let response =
                self.client.get(current.clone()).send().await.map_err(|e| send_error(current.as_str(), e))?;
            let status = response.status();
            if is_followed_redirect(status) {
                let target = redirect_target(&current, &response)
                    .ok_or_else(|| FetchError::Status { url: current.to_string(), status })?;
                if redirects == self.limits.max_redirects {
                    return Err(FetchError::TooManyRedirects { url: url.to_owned(), limit: self.limits.max_redirects });
                }
                redirects += 1;
                // The remote side picked this target; it gets the same scrutiny as the original.
                current = self.check(&target)?;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status { url: current.to_string(), status });
            }
            return self.read(current, response).await;
        }
    }

    fn check(&self, url: &str) -> Result<Url, FetchError> {
        net_guard::check_url(url, self.policy.clone())
            .map_err(|source| FetchError::Refused { url: url.to_owned(), source })
    }

    /// Checks the type and size of a successful response and reads its body within the limit.
    async fn read(&self, url: Url, mut response: reqwest::Response) -> Result<Fetched, FetchError> {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|value| mime_essence(&String::from_utf8_lossy(value.as_bytes())));
        if let Some(found) = &content_type {
            if !ACCEPTED_TYPES.contains(&found.as_str()) {
                return Err(FetchError::UnsupportedContentType { url: url.to_string(), content_type: found.clone() });
            }
        }
        let limit = self.limits.max_bytes;
        let too_large = || FetchError::TooLarge { url: url.to_string(), limit };
        // Refusing up front saves the transfer; the streaming check below still applies because
        // the header may be absent (chunked encoding) or lie.
        if response.content_length().is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| send_error(url.as_str(), e))? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { url, content_type, body: body.freeze() })
    }

    /// Crawls one site breadth-first from `start`, sequentially, within `limits`.
    ///
    /// - The start document must be fetched, or the whole crawl fails; later failures are logged
    ///   and skipped.
    /// - If the start document is an XML sitemap (or sitemap index), its URLs are the pages, in
    ///   sitemap order, and no links are followed: the sitemap is the site's own list of what
    ///   matters. Nested sitemaps are followed up to a fixed number of files.
    /// - Otherwise the start document is the first page, links from HTML pages are followed up to
    ///   `max_depth`, and with `use_sitemap` the URLs in `/sitemap.xml` (if any) join the queue at
    ///   depth 1, after the start page's own links.
    /// - The site is the origin (scheme, host, port) the start URL ended up at after redirects,
    ///   so `http://example.com` redirecting to `https://www.example.com/` crawls the latter. Other
    ///   origins are never requested, and a page redirecting off the site is dropped.
    /// - URLs are compared without fragment; sitemaps are never returned as pages.
    /// - At most twice `max_pages` page requests are made, so a site full of broken links cannot
    ///   keep the crawler busy.
    pub async fn crawl(&self, start: &str, limits: CrawlLimits) -> Result<Vec<CrawledPage>, FetchError> {
        if limits.max_pages == 0 {
            return Ok(Vec::new());
        }
        let first = self.fetch(start).await?;
        let site = first.url.clone();
        let mut crawl = Crawl::new(limits);
        if let Ok(start) = Url::parse(start) {
            // Links back to the URL the user typed must not refetch the page it redirected to.
            crawl.seen.insert(normalize(&start));
        }

        if let Some(sitemap) = as_sitemap(&first) {
            // The sitemap is the whole list: its pages sit at depth 1 and no link from them is
            // followed, whatever max_depth says.
            crawl.limits.max_depth = 1;
            for loc in self.sitemap_locs(&site, sitemap, limits.max_pages).await {
                crawl.enqueue(loc, 1);
            }
        } else {
            crawl.keep(first, 0);
            if limits.use_sitemap && limits.max_depth >= 1 {
                if let Some(locs) = self.site_sitemap(&site, limits.max_pages).await {
                    for loc in locs {
                        crawl.enqueue(loc, 1);
                    }
                }
            }
        }

        while let Some((url, depth)) = crawl.next() {
            let fetched = match self.fetch(url.as_str()).await {
                Ok(fetched) => fetched,
                Err(err) => {
                    tracing::warn!(%url, error = %err, "skipping a page that could not be fetched");
                    continue;
                }
            };
            if !same_site(&fetched.url, &site) {
                tracing::warn!(%url, to = %fetched.url, "skipping a page that redirects off the site");
                continue;
            }
            if as_sitemap(&fetched).is_some() {
                tracing::debug!(%url, "not keeping a sitemap as a page");
                continue;
            }
            crawl.keep(fetched, depth);
        }
        Ok(crawl.pages)
    }

    /// The page URLs of `<site origin>/sitemap.xml`, or `None` when there is no readable sitemap.
    async fn site_sitemap(&self, site: &Url, max_locs: usize) -> Option<Vec<Url>> {
        let url = site.join("/sitemap.xml").ok()?;
        let fetched = match self.fetch(url.as_str()).await {
            Ok(fetched) => fetched,
            Err(err) => {
                // Most sites have none; that is no reason to fail or even to warn.
                tracing::debug!(%url, error = %err, "no usable sitemap");
                return None;
            }
        };
        let sitemap = as_sitemap(&fetched)?;
        Some(self.sitemap_locs(site, sitemap, max_locs).await)
    }

    /// Same-site page URLs of a sitemap. The nested sitemaps of an index are read in order, at
    /// most [`MAX_SITEMAP_FILES`] files in all, and only until `max_locs` URLs are known.
    async fn sitemap_locs(&self, site: &Url, sitemap: Sitemap, max_locs: usize) -> Vec<Url> {
        let mut locs = Vec::new();
        let mut seen = HashSet::new();
        let mut files = VecDeque::new();
        let mut files_read = 1;
        let mut current = Some(sitemap);
        loop {
            match current.take() {
                Some(Sitemap::Pages(pages)) => {
                    for loc in pages.iter().filter_map(|loc| same_site_url(site, loc)) {
                        if locs.len() == max_locs {
                            return locs;
                        }
                        if seen.insert(normalize(&loc)) {
                            locs.push(loc);
                        }
                    }
                }
                Some(Sitemap::Index(children)) => {
                    files.extend(children.iter().filter_map(|loc| same_site_url(site, loc)));
                }
                None => {}
            }
            let Some(file) = files.pop_front() else { return locs };
            if locs.len() == max_locs {
                return locs;
            }
            if files_read == MAX_SITEMAP_FILES {
                tracing::warn!(%site, limit = MAX_SITEMAP_FILES, "sitemap index too large; ignoring the rest");
                return locs;
            }
            files_read += 1;
            current = match self.fetch(file.as_str()).await {
                Ok(fetched) => as_sitemap(&fetched),
                Err(err) => {
                    tracing::warn!(url = %file, error = %err, "skipping a nested sitemap");
                    None
                }
            };
        }
    }
}

/// The bookkeeping of one crawl: the queue, what was seen, and what was kept.
struct Crawl {
    limits: CrawlLimits,
    queue: VecDeque<(Url, usize)>,
    /// Normalized URLs queued or fetched, so nothing is requested twice.
    seen: HashSet<String>,
    /// Normalized final URLs of the kept pages, so two URLs redirecting to one page keep it once.
    kept: HashSet<String>,
    pages: Vec<CrawledPage>,
    requests_left: usize,
}

impl Crawl {
    fn new(limits: CrawlLimits) -> Self {
        Self {
            limits,
            queue: VecDeque::new(),
            seen: HashSet::new(),
            kept: HashSet::new(),
            pages: Vec::new(),
            // The start page already used one.
            requests_left: limits.max_pages.saturating_mul(2).saturating_sub(1),
        }
    }

    fn enqueue(&mut self, url: Url, depth: usize) {
        // Anything past the request budget could never be fetched; keeping it only costs memory.
        if depth > self.limits.max_depth || self.queue.len() >= self.requests_left {
            return;
        }
        if self.seen.insert(normalize(&url)) {
            self.queue.push_back((url, depth));
        }
    }

    /// The next URL to fetch, if the budgets allow one more request.
    fn next(&mut self) -> Option<(Url, usize)> {
        if self.pages.len() >= self.limits.max_pages || self.requests_left == 0 {
            return None;
        }
        // A queued URL may have been reached meanwhile as the target of another URL's redirect.
        let next =
            std::iter::from_fn(|| self.queue.pop_front()).find(|(url, _)| !self.kept.contains(&normalize(url)))?;
        self.requests_left -= 1;
        Some(next)
    }

    /// Records a fetched page and queues its links, unless its final URL was already kept.
    fn keep(&mut self, fetched: Fetched, depth: usize) {
        let url = normalize(&fetched.url);
        self.seen.insert(url.clone());
        if !self.kept.insert(url.clone()) {
            return;
        }
        if depth < self.limits.max_depth && is_html(&fetched) {
            let html = String::from_utf8_lossy(&fetched.body);
            // chunk resolves the links against the page and keeps only those on its own origin.
            for link in chunk::html_to_page(&html, fetched.url.as_str()).links {
                if let Some(link) = same_site_url(&fetched.url, &link) {
                    self.enqueue(link, depth + 1);
                }
            }
        }
        self.pages.push(CrawledPage { url, content_type: fetched.content_type, body: fetched.body });
    }
}

/// The redirects that name a new location for the same GET; 300 and 304 do not.
fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    )
}

/// The absolute redirect target, `None` when the `Location` header is missing or unreadable.
fn redirect_target(current: &Url, response: &reqwest::Response) -> Option<String> {
    let location = response.headers().get(reqwest::header::LOCATION)?.to_str().ok()?;
    current.join(location).ok().map(String::from)
}

/// Maps a reqwest failure, surfacing a refusal by the guarded resolver as such.
///
/// reqwest reports resolver errors as generic connect errors; the [`TargetError`] is buried in the
/// source chain, and without digging it out the user would see "error sending request" instead of
/// why the target is refused.
fn send_error(url: &str, err: reqwest::Error) -> FetchError {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(target) = cause.downcast_ref::<TargetError>() {
            return match target {
                // A name that does not resolve is a network problem, not a refusal.
                TargetError::ResolveFailed { .. } => {
                    FetchError::Network { url: url.to_owned(), reason: target.to_string() }
                }
                _ => FetchError::Refused { url: url.to_owned(), source: target.clone() },
            };
        }
        source = cause.source();
    }
    if err.is_timeout() {
        return FetchError::Timeout { url: url.to_owned() };
    }
    // reqwest's message would repeat the URL, which FetchError already shows.
    FetchError::Network { url: url.to_owned(), reason: error_chain(&err.without_url()) }
}

/// The error and its causes, joined: reqwest's own message alone ("error sending request") rarely
/// says what went wrong.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut reason = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

/// `text/HTML; charset=utf-8` → `text/html`.
fn mime_essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

fn is_html(fetched: &Fetched) -> bool {
    match fetched.content_type.as_deref() {
        Some(kind) => kind == "text/html" || kind == "application/xhtml+xml",
        None => looks_like_html(&fetched.body),
    }
}

/// A cheap sniff for responses without a content type.
fn looks_like_html(body: &[u8]) -> bool {
    let head = &body[..body.len().min(512)];
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start().to_ascii_lowercase();
    text.starts_with("<!doctype html") || text.starts_with("<html")
}

/// The sitemap in a fetched document, if it is one (XML or untyped, with a sitemap root element).
fn as_sitemap(fetched: &Fetched) -> Option<Sitemap> {
    match fetched.content_type.as_deref() {
        None | Some("application/xml" | "text/xml") => parse_sitemap(&fetched.body),
        Some(_) => None,
    }
}

/// A parsed sitemap file: page URLs (`<urlset>`) or further sitemaps (`<sitemapindex>`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sitemap {
    Pages(Vec<String>),
    Index(Vec<String>),
}

/// Parses a sitemap or sitemap index; `None` when the document has another root element or is not
/// XML. Only `<loc>` directly inside `<url>` (or `<sitemap>`) counts, so extension elements such as
/// `<image:image><image:loc>` do not pass images off as pages. A malformed tail keeps what was read.
fn parse_sitemap(body: &[u8]) -> Option<Sitemap> {
    let text = String::from_utf8_lossy(body);
    let mut reader = quick_xml::Reader::from_str(text.trim_start_matches('\u{feff}'));
    let mut path: Vec<String> = Vec::new();
    let mut is_index = None;
    let mut locs = Vec::new();
    let mut loc: Option<String> = None;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(err) => {
                tracing::debug!(error = %err, "malformed sitemap");
                break;
            }
        };
        let is_start = matches!(event, Event::Start(_));
        match event {
            Event::Start(element) | Event::Empty(element) if is_index.is_none() => {
                let root = element.local_name().as_ref().to_owned();
                is_index = match root.as_str() {
                    "urlset" => Some(false),
                    "sitemapindex" => Some(true),
                    _ => return None,
                };
                if is_start {
                    path.push(root);
                }
            }
            Event::Start(element) => {
                let name = element.local_name().as_ref().to_owned();
                let entry = if is_index == Some(true) { "sitemap" } else { "url" };
                if name == "loc" && path.len() == 2 && path[1] == entry {
                    loc = Some(String::new());
                }
                path.push(name);
            }
            Event::End(_) => {
                path.pop();
                if let Some(done) = loc.take() {
                    let done = done.trim();
                    if !done.is_empty() && locs.len() < MAX_SITEMAP_LOCS {
                        locs.push(done.to_owned());
                    }
                }
            }
            Event::Text(text) => {
                if let Some(loc) = &mut loc {
                    loc.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(loc) = &mut loc {
                    loc.push_str(&data);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(loc) = &mut loc {
                    if let Ok(Some(ch)) = reference.resolve_char_ref() {
                        loc.push(ch);
                    } else if let Some(entity) = quick_xml::escape::resolve_predefined_entity(&reference) {
                        loc.push_str(entity);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match is_index? {
        true => Some(Sitemap::Index(locs)),
        false => Some(Sitemap::Pages(locs)),
    }
}

/// The URL as a dedup key: without fragment, which never changes what the server sends. The query
/// stays, as it often does (`?page=2`).
fn normalize(url: &Url) -> String {
    let mut url = url.clone();
    url.set_fragment(None);
    url.into()
}

/// Same scheme, host and port (default ports made explicit).
fn same_site(url: &Url, site: &Url) -> bool {
    url.origin() == site.origin()
}

/// `link` resolved against `base`, if it stays on `base`'s site.
fn same_site_url(base: &Url, link: &str) -> Option<Url> {
    let url = base.join(link.trim()).ok()?;
    same_site(&url, base).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn urls_are_normalized_without_fragment() {
        assert_eq!(normalize(&url("https://Example.COM:443/a/./b?x=1#top")), "https://example.com/a/b?x=1");
        assert_eq!(normalize(&url("http://example.com")), "http://example.com/");
        assert_ne!(normalize(&url("https://example.com/?page=2")), normalize(&url("https://example.com/?page=3")));
    }

    #[test]
    fn same_site_means_same_scheme_host_and_port() {
        let site = url("https://example.com/start");
        assert!(same_site(&url("https://example.com:443/other?q"), &site));
        assert!(same_site(&url("https://EXAMPLE.com/"), &site));
        assert!(!same_site(&url("http://example.com/"), &site));
        assert!(!same_site(&url("https://www.example.com/"), &site));
        assert!(!same_site(&url("https://example.com:8443/"), &site));

        assert_eq!(same_site_url(&site, "/a#b").map(String::from).as_deref(), Some("https://example.com/a#b"));
        assert_eq!(same_site_url(&site, " rel ").map(String::from).as_deref(), Some("https://example.com/rel"));
        assert!(same_site_url(&site, "https://other.example/").is_none());
        assert!(same_site_url(&site, "mailto:x@example.com").is_none());
    }

    #[test]
    fn mime_essence_is_lowercase_without_parameters() {
        assert_eq!(mime_essence("Text/HTML; charset=UTF-8"), "text/html");
        assert_eq!(mime_essence(" application/pdf "), "application/pdf");
        assert_eq!(mime_essence(""), "");
    }

    #[test]
    fn html_is_sniffed_when_untyped() {
        assert!(looks_like_html(b"\xef\xbb\xbf  <!DOCTYPE html><html></html>"));
        assert!(looks_like_html(b"\n<HTML lang=en>"));
        assert!(!looks_like_html(b"# Markdown"));
        assert!(!looks_like_html(b"<?xml version=\"1.0\"?><urlset/>"));
    }

    #[test]
    fn sitemaps_are_parsed() {
        let urlset = r#"<?xml version="1.0" encoding="UTF-8"?>
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
                    xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
              <url><loc> https://example.com/a </loc><lastmod>2024-01-01</lastmod></url>
              <url><loc>https://example.com/b?x=1&amp;y=&#50;</loc>
                   <image:image><image:loc>https://example.com/pic.jpg</image:loc></image:image></url>
              <url><loc><![CDATA[https://example.com/c]]></loc></url>
              <url><loc></loc></url>
              <loc>https://example.com/stray</loc>
            </urlset>"#;
        assert_eq!(
            parse_sitemap(urlset.as_bytes()),
            Some(Sitemap::Pages(vec![
                "https://example.com/a".into(),
                "https://example.com/b?x=1&y=2".into(),
                "https://example.com/c".into(),
            ]))
        );

        let index = "\u{feff}<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
            <sitemap><loc>https://example.com/s1.xml</loc></sitemap>\
            <sitemap><loc>https://example.com/s2.xml</loc></sitemap></sitemapindex>";
        assert_eq!(
            parse_sitemap(index.as_bytes()),
            Some(Sitemap::Index(vec!["https://example.com/s1.xml".into(), "https://example.com/s2.xml".into()]))
        );

        let prefixed = r#"<sm:urlset xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9">
            <sm:url><sm:loc>https://example.com/p</sm:loc></sm:url></sm:urlset>"#;
        assert_eq!(parse_sitemap(prefixed.as_bytes()), Some(Sitemap::Pages(vec!["https://example.com/p".into()])));
        assert_eq!(parse_sitemap(b"<urlset/>"), Some(Sitemap::Pages(vec![])));
    }

    #[test]
    fn other_documents_are_not_sitemaps() {
        assert_eq!(parse_sitemap(b"<!DOCTYPE html><html><body><loc>x</loc></body></html>"), None);
        assert_eq!(parse_sitemap(b"<rss><channel><link>https://example.com/</link></channel></rss>"), None);
        assert_eq!(parse_sitemap(b"just text"), None);
        assert_eq!(parse_sitemap(b""), None);
        // A truncated sitemap keeps what was read before the damage.
        assert_eq!(
            parse_sitemap(b"<urlset><url><loc>https://example.com/a</loc></url><url><loc>https://exa"),
            Some(Sitemap::Pages(vec!["https://example.com/a".into()]))
        );
    }

    #[test]
    fn only_xml_or_untyped_documents_are_read_as_sitemaps() {
        let fetched = |content_type: Option<&str>| Fetched {
            url: url("https://example.com/sitemap.xml"),
            content_type: content_type.map(str::to_owned),
            body: Bytes::from_static(b"<urlset><url><loc>https://example.com/a</loc></url></urlset>"),
        };
        assert!(as_sitemap(&fetched(Some("application/xml"))).is_some());
        assert!(as_sitemap(&fetched(Some("text/xml"))).is_some());
        assert!(as_sitemap(&fetched(None)).is_some());
        assert!(as_sitemap(&fetched(Some("text/plain"))).is_none());
    }

    #[test]
    fn followed_redirects() {
        for code in [301, 302, 303, 307, 308] {
            assert!(is_followed_redirect(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [200, 300, 304, 305, 404] {
            assert!(!is_followed_redirect(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[test]
    fn default_limits() {
        let fetch = FetchLimits::default();
        assert_eq!((fetch.timeout, fetch.max_bytes, fetch.max_redirects), (Duration::from_secs(20), 10 << 20, 5));
    }

    /// End-to-end tests against scripted HTTP servers on loopback addresses.
    mod served {
        use super::*;
        use std::collections::HashMap;
        use std::net::SocketAddr;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        struct Reply {
            status: u16,
            headers: Vec<(&'static str, String)>,
            body: Vec<u8>,
            /// Without a Content-Length the body runs until the connection closes.
            content_length: bool,
        }

        impl Reply {
            fn typed(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
                Reply {
                    status: 200,
                    headers: vec![("Content-Type", content_type.to_owned())],
                    body: body.into(),
                    content_length: true,
                }
            }

            fn html(body: &str) -> Self {
                Self::typed("text/html; charset=utf-8", body)
            }

            fn xml(body: &str) -> Self {
                Self::typed("application/xml", body)
            }

            fn redirect(status: u16, location: &str) -> Self {
                Reply { status, headers: vec![("Location", location.to_owned())], body: vec![], content_length: true }
            }
        }

        /// A one-request-per-connection HTTP/1.1 server that counts every connection it accepts,
        /// so tests can prove that a refused target was never contacted at all.
        #[derive(Clone)]
        struct Server {
            addr: SocketAddr,
            routes: Arc<Mutex<HashMap<String, Reply>>>,
            connections: Arc<AtomicUsize>,
            paths: Arc<Mutex<Vec<String>>>,
            heads: Arc<Mutex<Vec<String>>>,
            /// Bodies written out in full; a client that stops reading leaves this unchanged.
            bodies_completed: Arc<AtomicUsize>,
        }

        impl Server {
            async fn start(ip: &str) -> Server {
                let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
                let server = Server {
                    addr: listener.local_addr().unwrap(),
                    routes: Arc::default(),
                    connections: Arc::default(),
                    paths: Arc::default(),
                    heads: Arc::default(),
                    bodies_completed: Arc::default(),
                };
                let handle = server.clone();
                tokio::spawn(async move {
                    while let Ok((socket, _)) = listener.accept().await {
                        handle.connections.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(handle.clone().answer(socket));
                    }
                });
                server
            }

            async fn answer(self, mut socket: tokio::net::TcpStream) {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
                self.paths.lock().unwrap().push(path.clone());
                self.heads.lock().unwrap().push(head);
                let (mut response, body) = {
                    let routes = self.routes.lock().unwrap();
                    let not_found = Reply { status: 404, ..Reply::typed("text/plain", "not found") };
                    let reply = routes.get(&path).unwrap_or(&not_found);
                    let mut response = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
                    for (name, value) in &reply.headers {
                        response.push_str(&format!("{name}: {value}\r\n"));
                    }
                    if reply.content_length {
                        response.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
                    }
                    response.push_str("\r\n");
                    (response.into_bytes(), reply.body.clone())
                };
                response.extend_from_slice(&body);
                if socket.write_all(&response).await.is_ok() && socket.shutdown().await.is_ok() {
                    self.bodies_completed.fetch_add(1, Ordering::SeqCst);
                }
            }

            fn route(&self, path: &str, reply: Reply) {
                self.routes.lock().unwrap().insert(path.to_owned(), reply);
            }

            fn url(&self, path: &str) -> String {
                format!("http://{}{path}", self.addr)
            }

            fn connections(&self) -> usize {
                self.connections.load(Ordering::SeqCst)
            }

            fn paths(&self) -> Vec<String> {
                self.paths.lock().unwrap().clone()
            }
        }

        fn policy(networks: &str) -> TargetPolicy {
            TargetPolicy { allowed_networks: net_guard::parse_networks(networks).unwrap().into(), ..Default::default() }
        }

        fn fetcher(networks: &str) -> Fetcher {
            Fetcher::new(policy(networks), FetchLimits { timeout: Duration::from_secs(5), ..Default::default() })
        }

        fn page_urls(pages: &[CrawledPage], server: &Server) -> Vec<String> {
            let prefix = server.url("");
            pages.iter().map(|p| p.url.strip_prefix(&prefix).unwrap_or(&p.url).to_owned()).collect()
        }

        fn assert_refused(result: Result<Fetched, FetchError>, addr: &str) {
            match result {
                Err(FetchError::Refused { source: TargetError::ForbiddenAddress { addr: refused }, .. }) => {
                    assert_eq!(refused.to_string(), addr)
                }
                other => panic!("expected {addr} to be refused, got {other:?}"),
            }
        }

        #[tokio::test]
        async fn fetches_an_allowed_target() {
            let server = Server::start("127.0.0.1").await;
            server.route("/doc", Reply::html("<h1>Hi</h1>"));

            let fetched = fetcher("127.0.0.1/32").fetch(&server.url("/doc#part")).await.unwrap();
            assert_eq!(fetched.url.as_str(), server.url("/doc#part"));
            assert_eq!(fetched.content_type.as_deref(), Some("text/html"));
            assert_eq!(&fetched.body[..], b"<h1>Hi</h1>");
            let head = server.heads.lock().unwrap()[0].to_ascii_lowercase();
            let agent = format!("user-agent: frontdesk-knowledge/{}\r\n", env!("CARGO_PKG_VERSION"));
            assert!(head.contains(&agent), "{head}");
        }

        #[tokio::test]
        async fn refuses_internal_targets_without_contacting_them() {
            let server = Server::start("127.0.0.1").await;
            server.route("/", Reply::html("secret"));
            let open_http =
                Fetcher::new(TargetPolicy { allow_http: true, ..Default::default() }, FetchLimits::default());

            let err = open_http.fetch(&server.url("/")).await.unwrap_err();
            assert!(err.to_string().contains("127.0.0.1 is a private"), "{err}");
            assert_refused(Err(err), "127.0.0.1");
            // Without allow_http, plain http to an unlisted address fails on the scheme already.
            let err = fetcher("").fetch(&server.url("/")).await.unwrap_err();
            assert!(matches!(err, FetchError::Refused { source: TargetError::SchemeNotAllowed { .. }, .. }), "{err:?}");
            assert_eq!(server.connections(), 0);
        }

        #[tokio::test]
        async fn refuses_metadata_and_ipv6_spellings_of_allowed_addresses() {
            let canary = Server::start("127.0.0.1").await;
            let guard = Fetcher::new(
                TargetPolicy { allow_http: true, ..policy("127.0.0.1/32") },
                FetchLimits { timeout: Duration::from_secs(2), ..Default::default() },
            );
            let port = canary.addr.port();
            assert_refused(guard.fetch(&format!("http://[::ffff:127.0.0.1]:{port}/")).await, "::ffff:127.0.0.1");
            assert_refused(guard.fetch(&format!("http://[::ffff:7f00:1]:{port}/")).await, "::ffff:127.0.0.1");
            assert_refused(guard.fetch("http://169.254.169.254/latest/meta-data/").await, "169.254.169.254");
            assert_refused(guard.fetch("https://[::ffff:169.254.169.254]/").await, "::ffff:169.254.169.254");
            assert_eq!(canary.connections(), 0);
        }

        #[tokio::test]
        async fn redirects_are_checked_at_every_hop() {
            let site = Server::start("127.0.0.2").await;
            let canary = Server::start("127.0.0.1").await;
            canary.route("/", Reply::html("internal"));
            site.route("/old", Reply::redirect(301, "new?x=1"));
            site.route("/new?x=1", Reply::html("moved"));
            site.route("/to-canary", Reply::redirect(302, &canary.url("/")));
            site.route("/to-localhost", Reply::redirect(307, &format!("http://localhost:{}/", canary.addr.port())));
            site.route("/to-metadata", Reply::redirect(308, "http://169.254.169.254/latest"));
            // Plain http everywhere, so only the address rules can stop a hop.
            let fetcher =
                Fetcher::new(TargetPolicy { allow_http: true, ..policy("127.0.0.2/32") }, FetchLimits::default());

            let fetched = fetcher.fetch(&site.url("/old")).await.unwrap();
            assert_eq!(fetched.url.as_str(), site.url("/new?x=1"));
            assert_eq!(&fetched.body[..], b"moved");

            assert_refused(fetcher.fetch(&site.url("/to-canary")).await, "127.0.0.1");
            assert_refused(fetcher.fetch(&site.url("/to-metadata")).await, "169.254.169.254");
            let err = fetcher.fetch(&site.url("/to-localhost")).await.unwrap_err();
            assert!(matches!(err, FetchError::Refused { source: TargetError::ForbiddenHost { .. }, .. }), "{err:?}");
            assert_eq!(canary.connections(), 0);
            assert_eq!(site.paths(), ["/old", "/new?x=1", "/to-canary", "/to-metadata", "/to-localhost"]);
        }

        #[tokio::test]
        async fn redirect_chains_are_bounded() {
            let site = Server::start("127.0.0.1").await;
            site.route("/a", Reply::redirect(302, "/b"));
            site.route("/b", Reply::redirect(303, "/a"));
            site.route("/nowhere", Reply { headers: vec![], ..Reply::redirect(302, "") });
            let fetcher = Fetcher::new(policy("127.0.0.1/32"), FetchLimits { max_redirects: 2, ..Default::default() });

            let err = fetcher.fetch(&site.url("/a")).await.unwrap_err();
            assert!(matches!(err, FetchError::TooManyRedirects { limit: 2, .. }), "{err:?}");
            assert_eq!(site.paths(), ["/a", "/b", "/a"]);
            let err = fetcher.fetch(&site.url("/nowhere")).await.unwrap_err();
            assert!(matches!(err, FetchError::Status { status: StatusCode::FOUND, .. }), "{err:?}");
        }

        /// A host name (not `localhost`) that resolves only to addresses the strict policy
        /// forbids, such as the machine's own name in /etc/hosts; `None` where there is none.
        async fn name_resolving_inside() -> Option<String> {
            let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
            let hostname = hostname.trim().to_ascii_lowercase();
            if hostname.is_empty() || hostname == "localhost" || hostname.ends_with(".localhost") {
                return None;
            }
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((hostname.as_str(), 0)).await.ok()?.collect();
            let inside =
                !addrs.is_empty() && addrs.iter().all(|a| net_guard::is_forbidden(a.ip(), TargetPolicy::default()));
            inside.then_some(hostname)
        }

        #[tokio::test]
        async fn names_resolving_inside_are_refused_by_the_resolver() {
            // Debian's /etc/hosts maps the machine's own name to a loopback address; a test that
            // silently passed elsewhere would prove nothing, so its absence is a failure.
            let name = name_resolving_inside()
                .await
                .expect("the machine's host name should resolve to a loopback address (see /etc/hosts)");
            let server = Server::start("0.0.0.0").await;
            let open_http =
                Fetcher::new(TargetPolicy { allow_http: true, ..Default::default() }, FetchLimits::default());
            let err = open_http.fetch(&format!("http://{name}:{}/", server.addr.port())).await.unwrap_err();
            match &err {
                FetchError::Refused { source: TargetError::NoAllowedAddress { host, .. }, .. } => {
                    assert_eq!(host, &name)
                }
                other => panic!("expected a refusal from the resolver, got {other:?}"),
            }
            assert!(err.to_string().contains("may not be contacted"), "{err}");
            assert_eq!(server.connections(), 0);
        }

        #[tokio::test]
        async fn bodies_are_limited_with_and_without_content_length() {
            let site = Server::start("127.0.0.1").await;
            site.route("/fits", Reply::typed("text/plain", vec![b'a'; 1024]));
            site.route("/declared", Reply::typed("text/plain", vec![b'a'; 1025]));
            site.route("/undeclared", Reply { content_length: false, ..Reply::typed("text/plain", vec![b'a'; 1025]) });
            site.route("/endless", Reply { content_length: false, ..Reply::typed("text/plain", vec![b'a'; 64 << 20]) });
            let fetcher = Fetcher::new(policy("127.0.0.1/32"), FetchLimits { max_bytes: 1024, ..Default::default() });

            assert_eq!(fetcher.fetch(&site.url("/fits")).await.unwrap().body.len(), 1024);
            for path in ["/declared", "/undeclared", "/endless"] {
                let err = fetcher.fetch(&site.url(path)).await.unwrap_err();
                assert!(matches!(err, FetchError::TooLarge { limit: 1024, .. }), "{path}: {err:?}");
                assert!(err.to_string().contains("larger than the limit of 1024 bytes"), "{err}");
            }
            // Reading stopped at the limit: the 64 MiB body was never taken in full.
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(site.bodies_completed.load(Ordering::SeqCst) < 4, "the endless body was read to the end");
        }

        #[tokio::test]
        async fn content_types_are_filtered_and_failures_reported() {
            let site = Server::start("127.0.0.1").await;
            site.route("/logo.png", Reply::typed("image/png", "png"));
            site.route("/a.zip", Reply::typed("Application/ZIP", "zip"));
            site.route("/doc.pdf", Reply::typed("application/pdf", "%PDF"));
            site.route("/notes.md", Reply::typed("text/markdown; charset=utf-8", "# Notes"));
            site.route("/untyped", Reply { headers: vec![], ..Reply::typed("", "raw") });
            site.route("/broken", Reply { status: 500, ..Reply::typed("text/html", "oops") });
            let fetcher = fetcher("127.0.0.1/32");

            for (path, kind) in [("/logo.png", "image/png"), ("/a.zip", "application/zip")] {
                let err = fetcher.fetch(&site.url(path)).await.unwrap_err();
                assert!(
                    matches!(&err, FetchError::UnsupportedContentType { content_type, .. } if content_type == kind),
                    "{err:?}"
                );
                assert!(err.to_string().contains(kind), "{err}");
            }
            let pdf = fetcher.fetch(&site.url("/doc.pdf")).await.unwrap();
            assert_eq!(pdf.content_type.as_deref(), Some("application/pdf"));
            let md = fetcher.fetch(&site.url("/notes.md")).await.unwrap();
            assert_eq!(md.content_type.as_deref(), Some("text/markdown"));
            let untyped = fetcher.fetch(&site.url("/untyped")).await.unwrap();
            assert_eq!((untyped.content_type, &untyped.body[..]), (None, &b"raw"[..]));

            for (path, status) in [("/broken", 500), ("/missing", 404)] {
                let err = fetcher.fetch(&site.url(path)).await.unwrap_err();
                assert!(matches!(err, FetchError::Status { status: s, .. } if s.as_u16() == status), "{err:?}");
            }
            let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
            let err = fetcher.fetch(&format!("http://{closed}/")).await.unwrap_err();
            assert!(matches!(err, FetchError::Network { .. }), "{err:?}");
        }

        /// `/` → `/a`, `/b`; `/a` → `/c`; `/c` → `/d`, plus an off-site link, a missing page and
        /// repeated links on the way.
        async fn linked_site(offsite: &Server) -> Server {
            let site = Server::start("127.0.0.1").await;
            let off = offsite.url("/stolen");
            let home = format!(
                r#"<a href="/a">A</a> <a href="b#x">B</a> <a href="/a#again">A</a>
                   <a href="{off}">off</a> <a href="/missing">gone</a>"#
            );
            site.route("/", Reply::html(&home));
            site.route("/a", Reply::html(r#"<a href="/c">C</a><a href="/">home</a>"#));
            site.route("/b", Reply::typed("text/plain", "plain page"));
            site.route("/c", Reply::html(r#"<a href="d">D</a>"#));
            site.route("/d", Reply::html("deepest"));
            site
        }

        #[tokio::test]
        async fn crawl_follows_same_site_links_within_depth_and_page_limits() {
            let offsite = Server::start("127.0.0.1").await;
            let site = linked_site(&offsite).await;
            let fetcher = fetcher("127.0.0.1/32");
            let start = site.url("/");
            let crawl =
                |max_pages, max_depth| fetcher.crawl(&start, CrawlLimits { max_pages, max_depth, use_sitemap: false });

            let pages = crawl(10, 3).await.unwrap();
            assert_eq!(page_urls(&pages, &site), ["/", "/a", "/b", "/c", "/d"]);
            assert_eq!(pages[2].content_type.as_deref(), Some("text/plain"));
            assert_eq!(&pages[4].body[..], b"deepest");

            assert_eq!(page_urls(&crawl(10, 2).await.unwrap(), &site), ["/", "/a", "/b", "/c"]);
            assert_eq!(page_urls(&crawl(10, 0).await.unwrap(), &site), ["/"]);
            assert_eq!(page_urls(&crawl(2, 3).await.unwrap(), &site), ["/", "/a"]);
            assert!(crawl(0, 3).await.unwrap().is_empty());

            assert_eq!(offsite.connections(), 0, "an off-site link was followed");
            let paths = site.paths();
            assert_eq!(paths.iter().filter(|p| *p == "/a").count(), 3, "three crawls reach /a, each once: {paths:?}");
            assert!(!paths.contains(&"/sitemap.xml".to_owned()));
        }

        #[tokio::test]
        async fn crawl_keeps_redirected_pages_once_and_drops_those_leaving_the_site() {
            let offsite = Server::start("127.0.0.1").await;
            offsite.route("/landing", Reply::html("elsewhere"));
            let site = Server::start("127.0.0.1").await;
            site.route("/", Reply::html(r#"<a href="/jump">J</a><a href="/alias">Al</a><a href="/a">A</a>"#));
            site.route("/jump", Reply::redirect(302, &offsite.url("/landing")));
            site.route("/alias", Reply::redirect(301, "/a"));
            site.route("/a", Reply::html("a"));

            let pages = fetcher("127.0.0.1/32").crawl(&site.url("/"), CrawlLimits::default()).await.unwrap();
            assert_eq!(page_urls(&pages, &site), ["/", "/a"]);
            assert_eq!(site.paths().iter().filter(|p| *p == "/a").count(), 1, "{:?}", site.paths());
        }

        #[tokio::test]
        async fn crawl_fails_only_when_the_start_page_fails() {
            let site = Server::start("127.0.0.1").await;
            let err = fetcher("127.0.0.1/32").crawl(&site.url("/missing"), CrawlLimits::default()).await.unwrap_err();
            assert!(matches!(err, FetchError::Status { .. }), "{err:?}");
            let err = fetcher("").crawl(&site.url("/"), CrawlLimits::default()).await.unwrap_err();
            assert!(matches!(err, FetchError::Refused { .. }), "{err:?}");
        }

        #[tokio::test]
        async fn crawl_reads_the_site_sitemap_when_asked() {
            let offsite = Server::start("127.0.0.1").await;
            let site = Server::start("127.0.0.1").await;
            site.route("/", Reply::html(r#"<a href="/linked">L</a>"#));
            site.route("/linked", Reply::html("linked"));
            site.route("/hidden", Reply::html(r#"<a href="/deeper">D</a>"#));
            site.route("/deeper", Reply::html("deeper"));
            site.route(
                "/sitemap.xml",
                Reply::xml(&format!(
                    "<urlset><url><loc>{}</loc></url><url><loc>{}</loc></url><url><loc>{}</loc></url></urlset>",
                    site.url("/hidden"),
                    site.url("/linked"),
                    offsite.url("/elsewhere"),
                )),
            );
            let fetcher = fetcher("127.0.0.1/32");

            let limits = CrawlLimits { max_pages: 10, max_depth: 1, use_sitemap: true };
            let pages = fetcher.crawl(&site.url("/"), limits).await.unwrap();
            assert_eq!(page_urls(&pages, &site), ["/", "/linked", "/hidden"]);
            let limits = CrawlLimits { max_depth: 2, ..limits };
            let pages = fetcher.crawl(&site.url("/"), limits).await.unwrap();
            assert_eq!(page_urls(&pages, &site), ["/", "/linked", "/hidden", "/deeper"]);
            let limits = CrawlLimits { use_sitemap: false, ..limits };
            let pages = fetcher.crawl(&site.url("/"), limits).await.unwrap();
            assert_eq!(page_urls(&pages, &site), ["/", "/linked"]);
            assert_eq!(offsite.connections(), 0);
        }

        #[tokio::test]
        async fn crawl_from_a_sitemap_index_fetches_exactly_the_listed_pages() {
            let offsite = Server::start("127.0.0.1").await;
            let site = Server::start("127.0.0.1").await;
            let loc = |url: String| format!("<url><loc>{url}</loc></url>");
            site.route(
                "/sitemap_index.xml",
                Reply::xml(&format!(
                    r#"<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
                    <sitemap><loc>{}</loc></sitemap><sitemap><loc>{}</loc></sitemap>
                    <sitemap><loc>{}</loc></sitemap><sitemap><loc>{}</loc></sitemap></sitemapindex>"#,
                    site.url("/s1.xml"),
                    site.url("/gone.xml"),
                    offsite.url("/s3.xml"),
                    site.url("/s2.xml"),
                )),
            );
            site.route(
                "/s1.xml",
                Reply::xml(&format!("<urlset>{}{}</urlset>", loc(site.url("/p1")), loc(site.url("/p2")))),
            );
            site.route(
                "/s2.xml",
                Reply::typed(
                    "text/xml",
                    format!(
                        "<urlset>{}{}{}</urlset>",
                        loc(site.url("/p3")),
                        loc(site.url("/p1")),
                        loc(offsite.url("/x"))
                    ),
                ),
            );
            site.route("/p1", Reply::html(r#"<a href="/p9">not listed</a>"#));
            site.route("/p2", Reply::typed("text/plain", "two"));
            site.route("/p3", Reply::html("three"));
            let fetcher = fetcher("127.0.0.1/32");

            let limits = CrawlLimits { max_pages: 10, max_depth: 5, use_sitemap: true };
            let pages = fetcher.crawl(&site.url("/sitemap_index.xml"), limits).await.unwrap();
            assert_eq!(page_urls(&pages, &site), ["/p1", "/p2", "/p3"]);
            let paths = site.paths();
            assert!(!paths.contains(&"/p9".to_owned()), "{paths:?}");
            assert!(!paths.contains(&"/sitemap.xml".to_owned()), "{paths:?}");
            assert_eq!(offsite.connections(), 0);

            let limits = CrawlLimits { max_pages: 2, ..limits };
            let pages = fetcher.crawl(&site.url("/sitemap_index.xml"), limits).await.unwrap();
            assert_eq!(page_urls(&pages, &site), ["/p1", "/p2"]);
        }
    }
}
