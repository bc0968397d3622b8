//! Knowledge-source text extraction and chunking.
//!
//! This module owns the path from a raw knowledge source to retrieval-ready chunks:
//! HTML pages become readable, heading-titled sections plus the same-site links a crawler may follow;
//! Markdown or plain text becomes sections split at `#` headings; and sections become bounded,
//! slightly overlapping chunks for full-text indexing. It does no I/O: fetching and storage live elsewhere.

use scraper::{ElementRef, Html, Node, Selector};

/// A run of readable text under one heading path (empty title when no heading precedes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: String,
    pub text: String,
}

/// The readable content of one HTML page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub title: String,
    pub sections: Vec<Section>,
    pub links: Vec<String>,
}

/// Limits for [`chunk_sections`], counted in characters.
#[derive(Debug, Clone, Copy)]
pub struct ChunkConfig {
    pub max_chars: usize,
    pub overlap_chars: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self { max_chars: 1200, overlap_chars: 150 }
    }
}

/// One retrieval unit; `ordinal` counts from 0 across the whole source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub ordinal: usize,
    pub title: String,
    pub text: String,
}

const TITLE_SEPARATOR: &str = " › ";

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

/// Page chrome and non-content elements; their text would pollute every chunk of every page.
const SKIPPED_ELEMENTS: &[&str] = &[
    "head", "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "iframe", "template",
    "button", "select", "textarea", "object", "embed", "canvas", "dialog",
];

const BLOCK_ELEMENTS: &[&str] = &[
    "p",
    "div",
    "pre",
    "blockquote",
    "section",
    "article",
    "main",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "caption",
    "figure",
    "figcaption",
    "address",
    "details",
    "summary",
    "hr",
    "body",
    "html",
];

/// Readable sections, the `<title>`, and the same-site links of an HTML page fetched from `base_url`.
pub fn html_to_page(html: &str, base_url: &str) -> Page {
    let document = Html::parse_document(html);

    let title = select_first(&document, "title")
        .map(|el| collapse_whitespace(&el.text().collect::<String>()))
        .unwrap_or_default();

    let mut extractor = Extractor::default();
    extractor.walk(document.root_element());
    extractor.flush_section();

    Page { title, sections: extractor.sections, links: extract_links(&document, base_url) }
}

fn select_first<'a>(document: &'a Html, selector: &str) -> Option<ElementRef<'a>> {
    let selector = Selector::parse(selector).ok()?;
    document.select(&selector).next()
}

#[derive(Default)]
struct Extractor {
    headings: Vec<(u8, String)>,
    blocks: Vec<String>,
    inline: String,
    /// List marker waiting for the item's first text, so empty items leave no stray "-".
    pending_prefix: Option<&'static str>,
    sections: Vec<Section>,
}

impl Extractor {
    fn walk(&mut self, element: ElementRef<'_>) {
        for child in element.children() {
            match child.value() {
                Node::Text(text) => self.inline.push_str(text),
                Node::Element(el) => {
                    let name = el.name();
                    // `hidden` content is invisible to visitors, so answers must not cite it.
                    if SKIPPED_ELEMENTS.contains(&name) || el.attr("hidden").is_some() {
                        continue;
                    }
                    let Some(child_el) = ElementRef::wrap(child) else {
                        continue;
                    };
                    if let Some(level) = heading_level(name) {
                        let text = collapse_whitespace(&child_el.text().collect::<String>());
                        self.heading(level, text);
                        continue;
                    }
                    match name {
                        "br" => self.flush_block(),
                        "td" | "th" => {
                            if !self.inline.trim().is_empty() {
                                self.inline.push_str(" | ");
                            }
                            self.walk(child_el);
                            self.inline.push(' ');
                        }
                        "li" => {
                            self.flush_block();
                            self.pending_prefix = Some("- ");
                            self.walk(child_el);
                            self.flush_block();
                            // An empty item never consumed its marker; it must not leak onto the next block.
                            self.pending_prefix = None;
                        }
                        _ if BLOCK_ELEMENTS.contains(&name) => {
                            self.flush_block();
                            self.walk(child_el);
                            self.flush_block();
                        }
                        _ => self.walk(child_el),
                    }
                }
                _ => {}
            }
        }
    }

    fn heading(&mut self, level: u8, text: String) {
        if text.is_empty() {
            return;
        }
        self.flush_section();
        while self.headings.last().is_some_and(|(l, _)| *l >= level) {
            self.headings.pop();
        }
        self.headings.push((level, text));
    }

    fn flush_block(&mut self) {
        let text = collapse_whitespace(&self.inline);
        self.inline.clear();
        if text.is_empty() {
            return;
        }
        match self.pending_prefix.take() {
            Some(prefix) => self.blocks.push(format!("{prefix}{text}")),
            None => self.blocks.push(text),
        }
    }

    fn flush_section(&mut self) {
        self.flush_block();
        if self.blocks.is_empty() {
            return;
        }
        let title = self.headings.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(TITLE_SEPARATOR);
        self.sections.push(Section { title, text: self.blocks.join("\n\n") });
        self.blocks.clear();
    }
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn extract_links(document: &Html, base_url: &str) -> Vec<String> {
    let Some(page) = Url::parse_absolute(base_url) else {
        return Vec::new();
    };
    // A <base href> changes how relative links resolve, but the page's own origin still decides same-site.
    let resolve_base = select_first(document, "base[href]")
        .and_then(|el| el.value().attr("href"))
        .and_then(|href| page.join(href))
        .unwrap_or_else(|| page.clone());
    let Ok(anchors) = Selector::parse("a[href]") else {
        return Vec::new();
    };

    let page_str = page.to_string();
    let mut links: Vec<String> = Vec::new();
    for anchor in document.select(&anchors) {
        let Some(href) = anchor.value().attr("href") else {
            continue;
        };
        let Some(url) = resolve_base.join(href) else { continue };
        if !url.same_origin(&page) {
            continue;
        }
        let url = url.to_string();
        // Self-links (including "#section" anchors) would only make a crawler refetch this page.
        if url != page_str && !links.contains(&url) {
            links.push(url);
        }
    }
    links
}

/// Just enough of an http(s) URL to resolve links and compare origins; the port is `None` when default.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
    query: Option<String>,
}

impl Url {
    fn parse_absolute(input: &str) -> Option<Url> {
        let input = strip_fragment(input.trim());
        let (scheme, rest) = split_scheme(input)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let rest = rest.strip_prefix("//")?;
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(authority_end);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        let (host, port) = split_host_port(host_port)?;
        if host.is_empty() {
            return None;
        }
        let port = match port {
            Some(p) if p != default_port => Some(p),
            _ => None,
        };
        let (path, query) = split_query(path_and_query);
        let path = if path.is_empty() { "/".to_string() } else { remove_dot_segments(path) };
        Some(Url { scheme, host: host.to_ascii_lowercase(), port, path, query })
    }

    /// Resolves `href` against `self`; `None` for non-http(s) schemes, empty or fragment-only references.
    fn join(&self, href: &str) -> Option<Url> {
        let href = strip_fragment(href.trim());
        if href.is_empty() {
            return None;
        }
        let href = href.replace(' ', "%20");
        if split_scheme(&href).is_some() {
            return Url::parse_absolute(&href);
        }
        if href.starts_with("//") {
            return Url::parse_absolute(&format!("{}:{}", self.scheme, href));
        }
        let (path, query) = split_query(&href);
        let path = if path.is_empty() {
            self.path.clone()
        } else if path.starts_with('/') {
            remove_dot_segments(path)
        } else {
            let dir_end = self.path.rfind('/').map_or(0, |i| i + 1);
            remove_dot_segments(&format!("{}{}", &self.path[..dir_end], path))
        };
        // A bare path keeps no query, but "?q" alone replaces only the query.
        let query =
            if query.is_none() && path == self.path && href.starts_with('?') { self.query.clone() } else { query };
        Some(Url { path, query, ..self.clone() })
    }

    fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(&self.path)?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

fn strip_fragment(s: &str) -> &str {
    s.split_once('#').map_or(s, |(before, _)| before)
}

/// Splits "scheme:rest" per RFC 3986; a colon after any '/', '?' or '#' belongs to a relative path.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let colon = s.find(':')?;
    let scheme = &s[..colon];
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then(|| (scheme, &s[colon + 1..]))
}

fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    // IPv6 literals contain colons, so the port can only follow the closing bracket.
    let (host, port) = if s.starts_with('[') {
        let close = s.find(']')?;
        let after = &s[close + 1..];
        (&s[..=close], after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(p.parse::<u16>().ok()?),
    };
    Some((host, port))
}

fn split_query(s: &str) -> (&str, Option<String>) {
    match s.split_once('?') {
        Some((path, query)) => (path, Some(query.to_string())),
        None => (s, None),
    }
}

fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut out: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
        // "a/." and "a/.." name a directory, so the trailing slash must survive.
        if last && matches!(*segment, "." | "..") {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

// ---------------------------------------------------------------------------------------------
// Markdown / plain text
// ---------------------------------------------------------------------------------------------

/// Markdown (headings with #) or plain text into sections.
pub fn text_to_sections(text: &str) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut headings: Vec<(u8, String)> = Vec::new();
    let mut lines: Vec<&str> = Vec::new();
    // Inside code fences a leading '#' is a shell comment or a C preprocessor line, not a heading.
    let mut in_fence = false;

    for line in text.lines() {
        let line = line.trim_end();
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            lines.push(line);
            continue;
        }
        if !in_fence {
            if let Some((level, title)) = atx_heading(line) {
                push_text_section(&mut sections, &headings, &lines);
                lines.clear();
                while headings.last().is_some_and(|(l, _)| *l >= level) {
                    headings.pop();
                }
                headings.push((level, title.to_string()));
                continue;
            }
        }
        lines.push(line);
    }
    push_text_section(&mut sections, &headings, &lines);
    sections
}

fn atx_heading(line: &str) -> Option<(u8, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let hashes = rest.len() - rest.trim_start_matches('#').len();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let after = &rest[hashes..];
    // "#hashtag" in plain text is not a heading; Markdown requires a space after the marker.
    if !after.is_empty() && !after.starts_with([' ', '\t']) {
        return None;
    }
    let mut title = after.trim();
    let without_closing = title.trim_end_matches('#');
    if without_closing.is_empty() || without_closing.ends_with([' ', '\t']) {
        title = without_closing.trim_end();
    }
    let title = title.trim();
    (!title.is_empty()).then_some((hashes as u8, title))
}

fn push_text_section(sections: &mut Vec<Section>, headings: &[(u8, String)], lines: &[&str]) {
    let mut text = String::new();
    let mut blank_pending = false;
    for line in lines {
        if line.trim().is_empty() {
            blank_pending = !text.is_empty();
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank_pending { "\n\n" } else { "\n" });
        }
        blank_pending = false;
        text.push_str(line);
    }
    if text.is_empty() {
        return;
    }
    let title = headings.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(TITLE_SEPARATOR);
    sections.push(Section { title, text });
}

// ---------------------------------------------------------------------------------------------
// Chunking
// ---------------------------------------------------------------------------------------------

/// A piece of section text that fits a chunk on its own, with the separator that precedes it.
struct Atom {
    sep: &'static str,
    text: String,
    len: usize,
    /// Part of a word longer than a chunk; such pieces have no word boundary to overlap from.
    fragment: bool,
}

/// Chunks in order; empty sections produce nothing; every chunk's text is at most max_chars characters (chars, not bytes).
pub fn chunk_sections(sections: &[Section], config: ChunkConfig) -> Vec<Chunk> {
    let max = config.max_chars.max(1);
    let mut chunks = Vec::new();
    for section in sections {
        for text in chunk_text(&section.text, max, config.overlap_chars) {
            chunks.push(Chunk { ordinal: chunks.len(), title: section.title.clone(), text });
        }
    }
    chunks
}

fn chunk_text(text: &str, max: usize, overlap: usize) -> Vec<String> {
    let atoms = atomize(text, max);
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    let mut last_fragment = false;

    for atom in atoms {
        let sep_len = atom.sep.chars().count();
        if current_len == 0 {
            current = atom.text;
            current_len = atom.len;
        } else if current_len + sep_len + atom.len <= max {
            current.push_str(atom.sep);
            current.push_str(&atom.text);
            current_len += sep_len + atom.len;
        } else {
            let previous = std::mem::take(&mut current);
            // The overlap shrinks rather than the content so a chunk never exceeds `max`.
            let room = max.saturating_sub(atom.len + sep_len.max(1));
            let tail = if last_fragment || atom.fragment { "" } else { overlap_tail(&previous, overlap.min(room)) };
            if tail.is_empty() {
                current = atom.text;
                current_len = atom.len;
            } else {
                let sep = if atom.sep.is_empty() { " " } else { atom.sep };
                current = format!("{tail}{sep}{}", atom.text);
                current_len = tail.chars().count() + sep.chars().count() + atom.len;
            }
            out.push(previous);
        }
        last_fragment = atom.fragment;
    }
    if current_len > 0 {
        out.push(current);
    }
    out
}

/// Splits text into atoms no longer than `max`, preferring paragraphs, then sentences, then words.
fn atomize(text: &str, max: usize) -> Vec<Atom> {
    let mut atoms = Vec::new();
    for paragraph in paragraphs(text) {
        let mut sep = "\n\n";
        let len = paragraph.chars().count();
        if len <= max {
            atoms.push(Atom { sep, text: paragraph.to_string(), len, fragment: false });
            continue;
        }
        for sentence in sentences(paragraph) {
            let len = sentence.chars().count();
            if len <= max {
                atoms.push(Atom { sep, text: sentence.to_string(), len, fragment: false });
                sep = " ";
                continue;
            }
            for word in sentence.split_whitespace() {
                let len = word.chars().count();
                if len <= max {
                    atoms.push(Atom { sep, text: word.to_string(), len, fragment: false });
                } else {
                    let chars: Vec<char> = word.chars().collect();
                    for (i, piece) in chars.chunks(max).enumerate() {
                        let piece_sep = if i == 0 { sep } else { "" };
                        atoms.push(Atom {
                            sep: piece_sep,
                            text: piece.iter().collect(),
                            len: piece.len(),
                            fragment: true,
                        });
                    }
                }
                sep = " ";
            }
        }
    }
    atoms
}

fn paragraphs(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            if let Some(s) = start.take() {
                out.push(text[s..end].trim());
            }
        } else {
            start.get_or_insert(offset);
            end = offset + line.len();
        }
        offset += line.len();
    }
    if let Some(s) = start {
        out.push(text[s..end].trim());
    }
    out
}

fn sentences(paragraph: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = paragraph.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        if matches!(chars[i].1, '.' | '!' | '?' | '…') {
            let mut j = i + 1;
            // Closing quotes and brackets belong to the sentence they end.
            while j < chars.len() && matches!(chars[j].1, '"' | '\'' | ')' | ']' | '”' | '’' | '»') {
                j += 1;
            }
            // Requiring whitespace keeps "1.5" and "example.com" intact.
            if j < chars.len() && chars[j].1.is_whitespace() {
                let end = chars[j].0;
                let sentence = paragraph[start..end].trim();
                if !sentence.is_empty() {
                    out.push(sentence);
                }
                start = end;
                i = j;
                continue;
            }
        }
        i += 1;
    }
    let rest = paragraph[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The longest suffix of `text` of at most `limit` chars that starts at a word boundary.
fn overlap_tail(text: &str, limit: usize) -> &str {
    if limit == 0 {
        return "";
    }
    let total = text.chars().count();
    if total <= limit {
        return text.trim_start();
    }
    let Some((cut, _)) = text.char_indices().nth(total - limit) else {
        return "";
    };
    let before_is_space = text[..cut].chars().next_back().is_some_and(char::is_whitespace);
    let tail = &text[cut..];
    let tail = if before_is_space || tail.starts_with(char::is_whitespace) {
        tail
    } else {
        match tail.find(char::is_whitespace) {
            Some(ws) => &tail[ws..],
            None => "",
        }
    };
    tail.trim_start()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://clinic.example.com/services/index.html";

    const PAGE: &str = r#"<!doctype html>
<html><head>
  <title>  Smile   Dental &amp; Co </title>
  <style>body { color: red }</style>
  <script>var tracking = "secret";</script>
</head>
<body>
  <header><a href="/">Logo</a><h1>Site Banner</h1></header>
  <nav><a href="/about">About us</a> <a href="https://other.example.org/x">Partner</a></nav>
  <p>Welcome to our clinic.</p>
  <main>
    <h1>Prices</h1>
    <p>All prices include   VAT &amp; a free check&#8209;up &eacute;t&eacute;.</p>
    <h2>Whitening</h2>
    <ul><li>Basic <b>whitening</b></li><li>Premium whitening</li><li></li></ul>
    <table>
      <tr><th>Service</th><th>Price</th></tr>
      <tr><td>Cleaning</td><td>80 &euro;</td></tr>
    </table>
    <h3>Aftercare</h3>
    <pre><code>rinse   twice</code></pre>
    <h2>Implants</h2>
    <p>Ask us.<script>alert(1)</script></p>
    <noscript>Enable JS</noscript>
    <form><label>Email</label><input name="e"></form>
    <svg><text>icon</text></svg>
    <iframe src="https://maps.example.com"></iframe>
    <aside>Sidebar promo</aside>
    <p hidden>Hidden text</p>
  </main>
  <footer>Copyright 2024</footer>
</body></html>"#;

    fn section<'a>(page: &'a Page, title: &str) -> &'a Section {
        page.sections.iter().find(|s| s.title == title).unwrap_or_else(|| panic!("no section {title:?}: {page:#?}"))
    }

    #[test]
    fn html_title_is_collapsed_and_decoded() {
        let page = html_to_page(PAGE, BASE);
        assert_eq!(page.title, "Smile Dental & Co");
    }

    #[test]
    fn html_sections_follow_nested_heading_path() {
        let page = html_to_page(PAGE, BASE);
        let titles: Vec<&str> = page.sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["", "Prices", "Prices › Whitening", "Prices › Whitening › Aftercare", "Prices › Implants"]);
        assert_eq!(section(&page, "").text, "Welcome to our clinic.");
        assert_eq!(section(&page, "Prices › Whitening › Aftercare").text, "rinse twice");
        assert_eq!(section(&page, "Prices › Implants").text, "Ask us.");
    }

    #[test]
    fn html_drops_chrome_and_non_content() {
        let page = html_to_page(PAGE, BASE);
        let all: String = page.sections.iter().map(|s| format!("{} {}\n", s.title, s.text)).collect();
        for banned in [
            "color: red",
            "tracking",
            "Logo",
            "Site Banner",
            "About us",
            "Partner",
            "alert",
            "Enable JS",
            "Email",
            "icon",
            "Sidebar",
            "Hidden",
            "Copyright",
        ] {
            assert!(!all.contains(banned), "{banned:?} leaked into {all}");
        }
    }

    #[test]
    fn html_entities_decoded_and_whitespace_collapsed() {
        let page = html_to_page(PAGE, BASE);
        assert_eq!(section(&page, "Prices").text, "All prices include VAT & a free check\u{2011}up été.");
    }

    #[test]
    fn html_lists_and_tables_are_readable() {
        let page = html_to_page(PAGE, BASE);
        assert_eq!(
            section(&page, "Prices › Whitening").text,
            "- Basic whitening\n\n- Premium whitening\n\nService | Price\n\nCleaning | 80 €"
        );
    }

    #[test]
    fn html_without_headings_or_content() {
        assert_eq!(html_to_page("", BASE), Page { title: String::new(), sections: vec![], links: vec![] });
        let page = html_to_page("<div>one<br>two</div><h2> </h2><span>three</span>", BASE);
        assert_eq!(page.sections, vec![Section { title: String::new(), text: "one\n\ntwo\n\nthree".into() }]);
    }

    #[test]
    fn links_are_resolved_filtered_and_deduplicated() {
        let html = r##"<body>
            <a href="prices.html#whitening">rel</a>
            <a href="../team/">up</a>
            <a href="/contact?x=1#map">root</a>
            <a href="https://CLINIC.example.com:443/blog">abs same</a>
            <a href="//clinic.example.com/faq">scheme-relative</a>
            <a href="http://clinic.example.com/insecure">other scheme</a>
            <a href="https://clinic.example.com:8443/admin">other port</a>
            <a href="https://other.example.org/">other site</a>
            <a href="mailto:hi@clinic.example.com">mail</a>
            <a href="javascript:void(0)">js</a>
            <a href="tel:+123">tel</a>
            <a href="#top">fragment only</a>
            <a href="">empty</a>
            <a href="prices.html">dup</a>
            <a href="./prices.html#other">dup2</a>
            <a href="?page=2">query</a>
            <a href="a b.html">space</a>
            <a>no href</a>
        </body>"##;
        let page = html_to_page(html, BASE);
        assert_eq!(
            page.links,
            [
                "https://clinic.example.com/services/prices.html",
                "https://clinic.example.com/team/",
                "https://clinic.example.com/contact?x=1",
                "https://clinic.example.com/blog",
                "https://clinic.example.com/faq",
                "https://clinic.example.com/services/index.html?page=2",
                "https://clinic.example.com/services/a%20b.html",
            ]
        );
    }

    #[test]
    fn links_in_nav_are_kept_and_base_href_is_honoured() {
        let html = r#"<head><base href="/docs/"></head><nav><a href="intro">Intro</a></nav>"#;
        let page = html_to_page(html, "http://example.com:8080/x/y");
        assert_eq!(page.links, ["http://example.com:8080/docs/intro"]);
        assert!(html_to_page(html, "not a url").links.is_empty());
        assert!(html_to_page(html, "ftp://example.com/").links.is_empty());
    }

    #[test]
    fn url_dot_segments_and_ports() {
        let base = Url::parse_absolute("HTTP://Example.COM:80/a/b/c").unwrap();
        assert_eq!(base.to_string(), "http://example.com/a/b/c");
        assert_eq!(base.join("../../../../x").unwrap().to_string(), "http://example.com/x");
        assert_eq!(base.join("./d/.").unwrap().to_string(), "http://example.com/a/b/d/");
        assert_eq!(base.join("..").unwrap().to_string(), "http://example.com/a/");
        assert_eq!(base.join("http://[::1]:81/p").unwrap().to_string(), "http://[::1]:81/p");
        assert!(base.join("http://example.com:99999/").is_none());
        assert_eq!(Url::parse_absolute("https://u:p@h.example").unwrap().to_string(), "https://h.example/");
    }

    #[test]
    fn markdown_headings_become_titles() {
        let md = "Intro line\n\n# Prices\nAll in EUR.\n\n## Whitening ##\nFrom 200.\n\n\n\nBook early.\n### Aftercare\n```sh\n# not a heading\n```\n## Implants\n\n# FAQ\n#hashtag stays text\n####### seven hashes\n";
        let sections = text_to_sections(md);
        let got: Vec<(&str, &str)> = sections.iter().map(|s| (s.title.as_str(), s.text.as_str())).collect();
        assert_eq!(
            got,
            [
                ("", "Intro line"),
                ("Prices", "All in EUR."),
                ("Prices › Whitening", "From 200.\n\nBook early."),
                ("Prices › Whitening › Aftercare", "```sh\n# not a heading\n```"),
                ("FAQ", "#hashtag stays text\n####### seven hashes"),
            ]
        );
    }

    #[test]
    fn plain_text_is_one_untitled_section() {
        let sections = text_to_sections("  first line\nsecond line  \n\n\nthird\n");
        assert_eq!(sections, vec![Section { title: String::new(), text: "  first line\nsecond line\n\nthird".into() }]);
        assert!(text_to_sections("").is_empty());
        assert!(text_to_sections(" \n\n\t\n").is_empty());
        assert!(text_to_sections("# Only\n## Headings\n").is_empty());
    }

    fn sec(title: &str, text: &str) -> Section {
        Section { title: title.into(), text: text.into() }
    }

    fn cfg(max_chars: usize, overlap_chars: usize) -> ChunkConfig {
        ChunkConfig { max_chars, overlap_chars }
    }

    fn assert_within(chunks: &[Chunk], max: usize) {
        for c in chunks {
            assert!(c.text.chars().count() <= max, "chunk over {max} chars: {:?}", c.text);
            assert!(!c.text.trim().is_empty());
        }
    }

    /// The repeated prefix: a non-empty suffix of `prev` beginning at a word boundary.
    fn overlap_between(prev: &str, next: &str) -> Option<usize> {
        let best = (1..=next.len())
            .rev()
            .filter(|&n| next.is_char_boundary(n))
            .map(|n| &next[..n])
            .find(|p| prev.ends_with(p) && !p.starts_with(' '))?;
        let before = &prev[..prev.len() - best.len()];
        assert!(before.is_empty() || before.ends_with(char::is_whitespace), "overlap {best:?} not at word boundary");
        Some(best.chars().count())
    }

    #[test]
    fn default_config() {
        let c = ChunkConfig::default();
        assert_eq!((c.max_chars, c.overlap_chars), (1200, 150));
    }

    #[test]
    fn empty_input_gives_no_chunks() {
        assert!(chunk_sections(&[], ChunkConfig::default()).is_empty());
        assert!(chunk_sections(&[sec("A", ""), sec("B", " \n\n ")], ChunkConfig::default()).is_empty());
    }

    #[test]
    fn short_sections_stay_whole_and_ordinals_are_consecutive() {
        let chunks = chunk_sections(&[sec("A", "one"), sec("", ""), sec("B", "two\n\nthree")], ChunkConfig::default());
        assert_eq!(
            chunks,
            [
                Chunk { ordinal: 0, title: "A".into(), text: "one".into() },
                Chunk { ordinal: 1, title: "B".into(), text: "two\n\nthree".into() },
            ]
        );
    }

    #[test]
    fn splits_at_paragraphs_first() {
        let text = "Alpha beta gamma.\n\nDelta epsilon zeta.\n\nEta theta iota.";
        let chunks = chunk_sections(&[sec("T", text)], cfg(40, 0));
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["Alpha beta gamma.\n\nDelta epsilon zeta.", "Eta theta iota."]);
    }

    #[test]
    fn splits_long_paragraph_at_sentences_then_words() {
        let text = "First sentence here. Second one follows! Is this third? \
                    Averyveryverylongsentencewithoutpunctuation that goes on and on and on forever";
        let chunks = chunk_sections(&[sec("T", text)], cfg(45, 0));
        assert_within(&chunks, 45);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts[0], "First sentence here. Second one follows!");
        assert_eq!(texts[1], "Is this third?");
        let words: Vec<&str> = texts.iter().flat_map(|t| t.split_whitespace()).collect();
        assert_eq!(words, text.split_whitespace().collect::<Vec<_>>(), "no word was cut or lost");
    }

    #[test]
    fn overlap_is_present_and_at_word_boundaries() {
        let text: String = (0..200).map(|i| format!("word{i} ")).collect::<String>() + "end.";
        let chunks = chunk_sections(&[sec("T", &text)], cfg(100, 30));
        assert!(chunks.len() > 5);
        assert_within(&chunks, 100);
        for pair in chunks.windows(2) {
            let n = overlap_between(&pair[0].text, &pair[1].text).expect("overlap missing");
            assert!((15..=30).contains(&n), "overlap of {n} chars");
            assert!(pair[1].text.starts_with("word"));
        }
        assert!(chunks.last().unwrap().text.ends_with("end."));
    }

    #[test]
    fn chunks_never_cross_sections_and_overlap_stays_inside() {
        let a = "Aaa aaa aaa aaa. ".repeat(10);
        let b = "Bbb bbb bbb bbb. ".repeat(10);
        let chunks = chunk_sections(&[sec("A", &a), sec("B", &b)], cfg(50, 20));
        assert_within(&chunks, 50);
        for c in &chunks {
            let foreign = if c.title == "A" { "B" } else { "A" };
            assert!(!c.text.contains(foreign), "{c:?}");
        }
        let first_b = chunks.iter().position(|c| c.title == "B").unwrap();
        assert!(chunks[first_b].text.starts_with("Bbb"));
        assert!(chunks[..first_b].iter().all(|c| c.title == "A"));
        let ordinals: Vec<usize> = chunks.iter().map(|c| c.ordinal).collect();
        assert_eq!(ordinals, (0..chunks.len()).collect::<Vec<_>>());
    }

    #[test]
    fn multibyte_text_counts_chars_not_bytes() {
        let text = "é".repeat(7) + " " + &"😀é ".repeat(40) + "\n\n" + &"café crème brûlée. ".repeat(20);
        for (max, overlap) in [(10, 4), (13, 0), (25, 8), (60, 150)] {
            let chunks = chunk_sections(&[sec("Ü", &text)], cfg(max, overlap));
            assert_within(&chunks, max);
            assert!(chunks.iter().any(|c| c.text.len() > max), "test must exercise multibyte text");
        }
    }

    #[test]
    fn giant_word_is_split_without_overlap() {
        let word = "x".repeat(25) + &"ü".repeat(10);
        let text = format!("start {word} finish here");
        let chunks = chunk_sections(&[sec("T", &text)], cfg(10, 5));
        assert_within(&chunks, 10);
        let joined: String = chunks.iter().map(|c| c.text.as_str()).collect();
        assert!(joined.contains(&word), "word pieces appear in order: {chunks:?}");
        assert_eq!(chunks.iter().filter(|c| c.text.contains('x') || c.text.contains('ü')).count(), 4);
    }

    #[test]
    fn tiny_or_zero_limits_still_make_progress() {
        let chunks = chunk_sections(&[sec("T", "ab cd")], cfg(0, 10));
        assert_eq!(chunks.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        let chunks = chunk_sections(&[sec("T", "a b c d e f g")], cfg(3, 3));
        assert_within(&chunks, 3);
        assert_eq!(chunks.first().unwrap().text, "a b");
        assert!(chunks.last().unwrap().text.ends_with('g'));
    }

    #[test]
    fn every_config_respects_limits_and_keeps_all_words_in_order() {
        let text = "Prices start at 1.5k. Whitening — «très» efficace! 😀😀😀 emoji run.\n\n\
                    Lorem ipsum dolor sit amet, consectetur adipiscing elit. Überlang-Wörter-Kette-ohne-Ende-und-mehr.\n\
                    Second line of the same paragraph?\n\n\n\nLast paragraph.";
        let words: Vec<&str> = text.split_whitespace().collect();
        for max in 1..60 {
            for overlap in [0, 1, 5, 20, 150] {
                let chunks = chunk_sections(&[sec("T", text)], cfg(max, overlap));
                assert_within(&chunks, max);
                if overlap == 0 {
                    let joined = chunks.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join(" ");
                    let rejoined: String = joined.split_whitespace().collect();
                    assert_eq!(rejoined, words.concat(), "max {max}");
                }
            }
        }
    }

    #[test]
    fn overlap_tail_respects_words() {
        assert_eq!(overlap_tail("hello brave new world", 9), "new world");
        assert_eq!(overlap_tail("hello brave new world", 10), "new world");
        assert_eq!(overlap_tail("hello brave new world", 12), "new world");
        assert_eq!(overlap_tail("hello brave new world", 15), "brave new world");
        assert_eq!(overlap_tail("hello brave new world", 99), "hello brave new world");
        assert_eq!(overlap_tail("hello", 3), "");
        assert_eq!(overlap_tail("hello", 0), "");
        assert_eq!(overlap_tail("héllo wörld", 5), "wörld");
    }
}
