//! Recognising an uploaded or fetched document's type from its bytes and turning it into titled sections.
//!
//! This module owns the step between raw bytes and [`chunk`](crate::domain::knowledge::chunk): [`sniff`] decides what a
//! document is from its content alone (names and declared MIME types only break ties between text formats), and
//! [`extract`] reads PDF, HTML, Markdown, plain text and CSV into [`Section`]s ready for chunking. Anything else —
//! images, archives, office files, executables — is refused with an error that says what it looks like.
//! It does no I/O and keeps no state.
//!
//! # Sniffing rules
//!
//! [`sniff`] looks at the first 8 KiB and applies these rules in order:
//!
//! 1. Nothing at all is [`ExtractError::Empty`].
//! 2. `%PDF-` preceded only by whitespace or a byte-order mark within the first 1 KiB is a PDF.
//! 3. Binary content is refused ([`ExtractError::Unsupported`]): a NUL byte, more than 1% control characters,
//!    more than 10% bytes that are not UTF-8, a UTF-16 byte-order mark, or a known binary signature (PNG, JPEG,
//!    GIF, ZIP and the office formats built on it, gzip, ELF, …). Signatures made only of printable characters
//!    ("BM" for bitmaps, "MZ" for executables) count only when the content is binary too, so a price list that
//!    starts with "BMW" stays text. RTF and PostScript, text-based but not prose, are refused by their prefix.
//! 4. Text that starts, after a byte-order mark, whitespace, comments and an XML declaration, with
//!    `<!doctype html` or `<html`, or that starts with a tag and has a `<head>` or `<body>` tag in its first
//!    1 KiB, is HTML. When the name or declared type says HTML, starting with any tag is enough.
//! 5. When the name or declared type says CSV, it is CSV if its first lines parse with one consistent column
//!    count of at least two (comma, semicolon or tab separated). Without such a hint (and without a Markdown
//!    hint) only unmistakable CSV counts: at least three comma-separated rows with the same two or more columns
//!    and no sentence-like cells.
//! 6. Markdown when the name (`.md`, `.markdown`) or declared type (`text/markdown`) says so, or when the text
//!    has a `#` heading outside code fences.
//! 7. Anything else is plain text.
//!
//! So a `.pdf` name on an HTML page gives HTML, a `.txt` name on PDF bytes gives PDF, and a `.pdf` name on a PNG
//! is refused.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use thiserror::Error;

use crate::domain::knowledge::chunk::{html_to_page, text_to_sections, Section};

/// A document type frontdesk can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    Pdf,
    Html,
    Markdown,
    Text,
    Csv,
}

impl DocKind {
    /// The MIME type to record and serve the document as.
    pub fn mime(&self) -> &'static str {
        match self {
            DocKind::Pdf => "application/pdf",
            DocKind::Html => "text/html",
            DocKind::Markdown => "text/markdown",
            DocKind::Text => "text/plain",
            DocKind::Csv => "text/csv",
        }
    }

    /// A short lowercase name, stable enough to store.
    pub fn as_str(&self) -> &'static str {
        match self {
            DocKind::Pdf => "pdf",
            DocKind::Html => "html",
            DocKind::Markdown => "markdown",
            DocKind::Text => "text",
            DocKind::Csv => "csv",
        }
    }
}

impl fmt::Display for DocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a document cannot become knowledge; the messages are meant for the person who supplied it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ExtractError {
    #[error("unsupported file type: {what}")]
    Unsupported { what: String },
    #[error("the document has no readable text")]
    Empty,
    #[error("{reason}")]
    Pdf { reason: String },
}

/// A document's title and its readable content, ready for [`chunk_sections`](crate::domain::knowledge::chunk::chunk_sections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub title: String,
    pub sections: Vec<Section>,
}

// ---------------------------------------------------------------------------------------------
// Sniffing
// ---------------------------------------------------------------------------------------------

/// How much of a document [`sniff`] reads; callers may pass just this much.
pub const SNIFF_LEN: usize = 8 * 1024;

/// PDF readers accept the header anywhere in the first 1 KiB.
const PDF_HEADER_WINDOW: usize = 1024;
/// How far into a text document HTML's structural tags are looked for.
const HTML_TAG_WINDOW: usize = 1024;
/// How many records decide whether text is CSV.
const CSV_SNIFF_RECORDS: usize = 50;
/// Separators tried in order; semicolons are common where the comma is the decimal mark.
const CSV_DELIMITERS: &[u8] = b",;\t";
const UTF8_BOM: &str = "\u{feff}";

/// Decides what `bytes` (the whole document or at least its first [`SNIFF_LEN`] bytes) contains.
///
/// `name_hint` is a file name or URL and `declared_mime` a Content-Type; neither can make binary content acceptable
/// or override the content, they only choose between text formats. See the [module docs](self) for the rules.
pub fn sniff(bytes: &[u8], name_hint: Option<&str>, declared_mime: Option<&str>) -> Result<DocKind, ExtractError> {
    let truncated = bytes.len() >= SNIFF_LEN;
    let head = &bytes[..bytes.len().min(SNIFF_LEN)];
    if head.is_empty() {
        return Err(ExtractError::Empty);
    }
    if pdf_header_offset(head).is_some() {
        return Ok(DocKind::Pdf);
    }
    if let Some(what) = refused_content(head) {
        return Err(ExtractError::Unsupported { what });
    }

    let decoded = String::from_utf8_lossy(head);
    let text = decoded.strip_prefix(UTF8_BOM).unwrap_or(&decoded);
    let hints = Hints::new(name_hint, declared_mime);

    if looks_like_html(text, hints.html) {
        return Ok(DocKind::Html);
    }
    // A record cut off by the sniffing window would look like a ragged row, so only whole lines are judged.
    let complete = match text.rfind('\n') {
        Some(end) if truncated => &text[..end],
        _ => text,
    };
    if hints.csv {
        if csv_shape(complete, CSV_DELIMITERS, CSV_SNIFF_RECORDS).is_some_and(|shape| shape.records.len() >= 2) {
            return Ok(DocKind::Csv);
        }
    } else if !hints.markdown && clearly_csv(complete) {
        return Ok(DocKind::Csv);
    }
    if hints.markdown || has_markdown_heading(text) {
        return Ok(DocKind::Markdown);
    }
    Ok(DocKind::Text)
}

/// What the name and declared type claim; only ever used to choose between text formats.
#[derive(Debug, Default)]
struct Hints {
    html: bool,
    csv: bool,
    markdown: bool,
}

impl Hints {
    fn new(name: Option<&str>, mime: Option<&str>) -> Self {
        let ext = name.and_then(extension).unwrap_or_default();
        let mime =
            mime.map(|m| m.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()).unwrap_or_default();
        Hints {
            html: matches!(ext.as_str(), "html" | "htm" | "xhtml")
                || matches!(mime.as_str(), "text/html" | "application/xhtml+xml"),
            csv: ext == "csv"
                || matches!(mime.as_str(), "text/csv" | "application/csv" | "text/comma-separated-values"),
            markdown: matches!(ext.as_str(), "md" | "markdown")
                || matches!(mime.as_str(), "text/markdown" | "text/x-markdown"),
        }
    }
}

/// The lowercase extension of a file name or of a URL's last path segment.
fn extension(name: &str) -> Option<String> {
    let segment = last_segment(name)?;
    let (stem, ext) = segment.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The last non-empty path segment of a file name or URL (never a URL's host), without a URL's query or fragment.
/// Uploads from Windows may name files with backslashes.
fn last_segment(name: &str) -> Option<&str> {
    let path = match name.split_once("://") {
        Some((_, rest)) => {
            let without_query = rest.split(['?', '#']).next().unwrap_or_default();
            without_query.split_once('/').map_or("", |(_, path)| path)
        }
        None => name,
    };
    path.rsplit(['/', '\\']).map(str::trim).find(|s| !s.is_empty())
}

fn url_host(name: &str) -> Option<&str> {
    let (_, rest) = name.split_once("://")?;
    rest.split(['/', '?', '#']).next().filter(|host| !host.is_empty())
}

/// Where `%PDF-` starts, if only whitespace or a byte-order mark precedes it within the first 1 KiB.
fn pdf_header_offset(bytes: &[u8]) -> Option<usize> {
    let window = &bytes[..bytes.len().min(PDF_HEADER_WINDOW)];
    let start = window.strip_prefix(UTF8_BOM.as_bytes()).map_or(0, |_| UTF8_BOM.len());
    let offset = start + window[start..].iter().position(|b| !b.is_ascii_whitespace())?;
    window[offset..].starts_with(b"%PDF-").then_some(offset)
}

/// Why content that is not PDF cannot be read as text, naming what it seems to be; `None` for text.
fn refused_content(head: &[u8]) -> Option<String> {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Some("UTF-16 text (save it as UTF-8)".into());
    }
    let stats = ByteStats::of(head);
    let binary = stats.nul || stats.controls > head.len() / 100 + 1 || stats.invalid_utf8 > head.len() / 10;
    // Signatures with an unprintable byte cannot begin real text; printable ones ("BM", "MZ") can.
    let signature_is_binary = head.iter().take(8).any(|&b| is_control(b) || b == 0 || b >= 0x80);
    if let Some(kind) = infer::get(head).filter(|k| k.matcher_type() != infer::MatcherType::Text) {
        if binary || signature_is_binary {
            return Some(format!("a .{} file ({})", kind.extension(), kind.mime_type()));
        }
    }
    if head.starts_with(b"{\\rtf") {
        return Some("an RTF document (application/rtf)".into());
    }
    if head.starts_with(b"%!PS") {
        return Some("a PostScript document (application/postscript)".into());
    }
    if binary {
        let what = if stats.nul || stats.controls > 0 { "binary data" } else { "text that is not UTF-8" };
        return Some(what.into());
    }
    None
}

#[derive(Debug, Default)]
struct ByteStats {
    nul: bool,
    controls: usize,
    invalid_utf8: usize,
}

impl ByteStats {
    fn of(bytes: &[u8]) -> Self {
        let mut stats = ByteStats { nul: bytes.contains(&0), ..Default::default() };
        stats.controls = bytes.iter().filter(|&&b| is_control(b)).count();
        for chunk in bytes.utf8_chunks() {
            stats.invalid_utf8 += chunk.invalid().len();
        }
        stats
    }
}

/// Control bytes that do not occur in text; tab, line breaks, form feed (page breaks) and escape do.
fn is_control(byte: u8) -> bool {
    matches!(byte, 0x01..=0x08 | 0x0E..=0x1A | 0x1C..=0x1F | 0x7F)
}

fn looks_like_html(text: &str, hinted: bool) -> bool {
    let rest = skip_prolog(text);
    if !rest.starts_with('<') {
        return false;
    }
    let start = lowercase_prefix(rest, 32);
    if start.starts_with("<!doctype html") || is_tag_at(&start, "html") {
        return true;
    }
    let window = lowercase_prefix(rest, HTML_TAG_WINDOW);
    let has_tag = |name: &str| window.match_indices('<').any(|(i, _)| is_tag_at(&window[i..], name));
    if has_tag("head") || has_tag("body") {
        return true;
    }
    hinted && rest[1..].starts_with(|c: char| c.is_ascii_alphabetic())
}

/// `text` after leading whitespace, HTML comments and an XML declaration.
fn skip_prolog(text: &str) -> &str {
    let mut rest = text.trim_start();
    loop {
        let skipped = if rest.starts_with("<!--") {
            rest.find("-->").map(|end| &rest[end + 3..])
        } else if rest.starts_with("<?xml") {
            rest.find("?>").map(|end| &rest[end + 2..])
        } else {
            None
        };
        match skipped {
            Some(after) => rest = after.trim_start(),
            None => return rest,
        }
    }
}

/// The first `max_bytes` of `text` (shortened to a character boundary), lowercased.
fn lowercase_prefix(text: &str, max_bytes: usize) -> String {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_ascii_lowercase()
}

/// Whether `text` starts with the opening tag `<name` as a whole tag name (so `<header>` is not `<head>`).
fn is_tag_at(text: &str, name: &str) -> bool {
    text.strip_prefix('<').and_then(|t| t.strip_prefix(name)).is_some_and(|after| {
        after.is_empty() || after.starts_with(|c: char| c == '>' || c == '/' || c.is_ascii_whitespace())
    })
}

/// CSV records that all have the same number (at least two) of fields.
struct CsvShape {
    delimiter: u8,
    records: Vec<Vec<String>>,
}

/// The first of `delimiters` under which the first `max_records` records of `text` have one column count of two or
/// more, with those records.
fn csv_shape(text: &str, delimiters: &[u8], max_records: usize) -> Option<CsvShape> {
    delimiters.iter().find_map(|&delimiter| {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        let mut records = Vec::new();
        for record in reader.records().take(max_records) {
            let fields: Vec<String> = record.ok()?.iter().map(str::to_string).collect();
            if fields.len() < 2 || records.first().is_some_and(|first: &Vec<String>| first.len() != fields.len()) {
                return None;
            }
            records.push(fields);
        }
        (!records.is_empty()).then_some(CsvShape { delimiter, records })
    })
}

/// Unhinted CSV detection, deliberately strict: plain text with commas must stay text.
fn clearly_csv(text: &str) -> bool {
    let Some(shape) = csv_shape(text, b",", CSV_SNIFF_RECORDS) else {
        return false;
    };
    shape.records.len() >= 3 && !shape.records.iter().flatten().any(|cell| is_prose(cell))
}

/// A cell that reads like a sentence rather than a value.
fn is_prose(cell: &str) -> bool {
    let cell = cell.trim();
    cell.split_whitespace().count() > 8 || (cell.contains(' ') && cell.ends_with(['.', '!', '?']))
}

fn has_markdown_heading(text: &str) -> bool {
    let mut in_fence = false;
    text.lines().any(|line| {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            return false;
        }
        !in_fence && heading_text(line).is_some()
    })
}

/// The text of an ATX heading line (`# Title`, up to six `#`), without closing hashes.
fn heading_text(line: &str) -> Option<&str> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let after = rest.trim_start_matches('#');
    let level = rest.len() - after.len();
    if !(1..=6).contains(&level) || !after.starts_with([' ', '\t']) {
        return None;
    }
    let mut title = after.trim();
    // A closing run of `#` only counts when set off by a space, so "# C#" keeps its title.
    let without_closing = title.trim_end_matches('#');
    if without_closing.is_empty() || without_closing.ends_with([' ', '\t']) {
        title = without_closing.trim_end();
    }
    (!title.is_empty()).then_some(title)
}

// ---------------------------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------------------------

const TITLE_SEPARATOR: &str = " › ";
/// Enough rows for a useful answer in one chunk without mixing unrelated parts of a long table.
const CSV_ROWS_PER_SECTION: usize = 20;

/// Reads a document that [`sniff`] classified as `kind` into a title and sections.
///
/// `name_or_url` supplies the title when the document has none and is the base for HTML links.
/// Text is decoded as UTF-8, replacing invalid bytes. PDF parsing runs behind [`std::panic::catch_unwind`]
/// because the PDF reader panics on some malformed files; such a panic becomes an error (the panic hook still
/// logs it) — which only works while the build keeps `panic = "unwind"`.
pub fn extract(kind: DocKind, bytes: &[u8], name_or_url: &str) -> Result<Extracted, ExtractError> {
    let mut extracted = match kind {
        DocKind::Pdf => extract_pdf(bytes, name_or_url)?,
        DocKind::Html => {
            let page = html_to_page(&decode_text(bytes), name_or_url);
            let title = if page.title.is_empty() { title_from_name(name_or_url) } else { page.title };
            Extracted { title, sections: page.sections }
        }
        DocKind::Markdown | DocKind::Text => {
            let text = decode_text(bytes);
            let title = first_title(&text).map_or_else(|| title_from_name(name_or_url), str::to_string);
            Extracted { title, sections: text_to_sections(&text) }
        }
        DocKind::Csv => extract_csv(&decode_text(bytes), name_or_url),
    };
    // A document's text is not a client's field to refuse: a NUL past the sniffed head (or one
    // a PDF's text layer yields) is dropped, as PostgreSQL could not store it.
    crate::text::drop_nul(&mut extracted.title);
    for section in &mut extracted.sections {
        crate::text::drop_nul(&mut section.title);
        crate::text::drop_nul(&mut section.text);
    }
    if extracted.sections.is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(extracted)
}

fn decode_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.strip_prefix(UTF8_BOM).unwrap_or(&text).to_string()
}

/// The first level-one heading outside code fences.
fn first_title(text: &str) -> Option<&str> {
    let mut in_fence = false;
    text.lines().find_map(|line| {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        if in_fence || !trimmed.starts_with("# ") {
            return None;
        }
        heading_text(line)
    })
}

/// A title from a file name or URL: the last path segment without its extension.
fn title_from_name(name_or_url: &str) -> String {
    let Some(segment) = last_segment(name_or_url) else {
        return url_host(name_or_url).unwrap_or("Untitled").to_string();
    };
    match segment.rsplit_once('.') {
        Some((stem, _)) if !stem.trim().is_empty() => stem.trim().to_string(),
        _ => segment.to_string(),
    }
}

fn extract_csv(text: &str, name_or_url: &str) -> Extracted {
    let title = title_from_name(name_or_url);
    // The delimiter is re-detected from the start; a file that never agreed on one is read as comma-separated.
    let delimiter = csv_shape(text, CSV_DELIMITERS, CSV_SNIFF_RECORDS).map_or(b',', |shape| shape.delimiter);
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let mut records = reader.records().map_while(Result::ok);
    let header: Vec<String> =
        records.next().map(|r| r.iter().map(|h| h.trim().to_string()).collect()).unwrap_or_default();

    let lines: Vec<String> = records
        .map(|record| {
            record
                .iter()
                .enumerate()
                .filter(|(_, value)| !value.trim().is_empty())
                .map(|(i, value)| {
                    let column =
                        header.get(i).filter(|h| !h.is_empty()).cloned().unwrap_or_else(|| format!("Column {}", i + 1));
                    format!("{column}: {}", value.trim())
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|line| !line.is_empty())
        .collect();

    let sections = lines
        .chunks(CSV_ROWS_PER_SECTION)
        .map(|rows| Section { title: title.clone(), text: rows.join("\n") })
        .collect();
    Extracted { title, sections }
}

const PDF_DAMAGED: &str = "the PDF could not be read (it may be damaged)";

fn extract_pdf(bytes: &[u8], name_or_url: &str) -> Result<Extracted, ExtractError> {
    // Readers tolerate bytes before the header, and offsets inside such files count from the header.
    let bytes = &bytes[pdf_header_offset(bytes).unwrap_or(0)..];
    // The closure only reads `bytes`, so a panic cannot leave any of our state half-updated.
    let pdf = panic::catch_unwind(|| read_pdf(bytes)).unwrap_or_else(|_| {
        tracing::warn!(source = name_or_url, "the PDF reader panicked while loading the document");
        Err(ExtractError::Pdf { reason: PDF_DAMAGED.into() })
    })?;

    let title = pdf.title.unwrap_or_else(|| title_from_name(name_or_url));
    let sections: Vec<Section> = pdf
        .pages
        .into_iter()
        .filter(|(_, text)| !text.is_empty())
        .map(|(number, text)| Section { title: format!("{title}{TITLE_SEPARATOR}page {number}"), text })
        .collect();
    if sections.is_empty() {
        let reason = if pdf.unreadable_pages > 0 {
            PDF_DAMAGED
        } else {
            "the PDF has no extractable text (it may be a scanned image)"
        };
        return Err(ExtractError::Pdf { reason: reason.into() });
    }
    if pdf.unreadable_pages > 0 {
        tracing::warn!(source = name_or_url, pages = pdf.unreadable_pages, "skipped unreadable PDF pages");
    }
    Ok(Extracted { title, sections })
}

/// What [`read_pdf`] found: the document title and each readable page's tidied text by page number.
struct PdfText {
    title: Option<String>,
    pages: Vec<(u32, String)>,
    unreadable_pages: usize,
}

fn read_pdf(bytes: &[u8]) -> Result<PdfText, ExtractError> {
    let mut doc = pdf_extract::Document::load_mem(bytes)
        .map_err(|e| ExtractError::Pdf { reason: format!("the PDF could not be read: {e}") })?;
    // Many PDFs are encrypted only to restrict printing or editing, with an empty password for reading.
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(ExtractError::Pdf { reason: "the PDF is password-protected".into() });
    }

    let title = doc
        .trailer
        .get(b"Info")
        .and_then(|info| doc.dereference(info))
        .and_then(|(_, info)| info.as_dict())
        .and_then(|info| info.get_deref(b"Title", &doc))
        .and_then(pdf_extract::decode_text_string)
        .ok()
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty());

    let mut pdf = PdfText { title, pages: Vec::new(), unreadable_pages: 0 };
    for number in doc.get_pages().into_keys() {
        // Pages are caught one by one so a single broken page (the reader panics on, say, a missing
        // MediaBox) does not cost the text of all the others. Rendering only reads `doc`.
        let rendered = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut text = String::new();
            pdf_extract::output_doc_page(&doc, &mut pdf_extract::PlainTextOutput::new(&mut text), number).map(|()| text)
        }));
        match rendered {
            Ok(Ok(text)) => pdf.pages.push((number, tidy_lines(&text))),
            Ok(Err(e)) => {
                tracing::debug!(page = number, error = %e, "unreadable PDF page");
                pdf.unreadable_pages += 1;
            }
            Err(_) => pdf.unreadable_pages += 1,
        }
    }
    Ok(pdf)
}

/// Trims lines and collapses runs of blank lines to one, since PDF text output is full of stray breaks.
fn tidy_lines(text: &str) -> String {
    let mut out = String::new();
    let mut blank_pending = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank_pending = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_pending { "\n\n" } else { "\n" });
        }
        blank_pending = false;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICE_LIST_PDF: &[u8] = include_bytes!("../../../tests/fixtures/price-list.pdf");

    fn sections(e: &Extracted) -> Vec<(&str, &str)> {
        e.sections.iter().map(|s| (s.title.as_str(), s.text.as_str())).collect()
    }

    fn unsupported(result: Result<DocKind, ExtractError>) -> String {
        match result {
            Err(ExtractError::Unsupported { what }) => what,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    const HTML: &str = "<!DOCTYPE html><html><head><title>Clinic</title></head><body><p>Hi</p></body></html>";

    #[test]
    fn a_nul_in_a_document_is_dropped_from_its_text() {
        let e = extract(DocKind::Text, "# Hours\0\n\nOpen 9\0 to 5".as_bytes(), "hours.txt").unwrap();
        assert_eq!(e.title, "Hours");
        assert!(e.sections.iter().all(|s| !s.title.contains('\0') && !s.text.contains('\0')), "{e:?}");
        assert!(e.sections.iter().any(|s| s.text.contains("Open 9 to 5")), "{e:?}");
    }

    #[test]
    fn kind_names_and_mime_types() {
        let all = [DocKind::Pdf, DocKind::Html, DocKind::Markdown, DocKind::Text, DocKind::Csv];
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["pdf", "html", "markdown", "text", "csv"]);
        let mimes: Vec<&str> = all.iter().map(DocKind::mime).collect();
        assert_eq!(mimes, ["application/pdf", "text/html", "text/markdown", "text/plain", "text/csv"]);
    }

    #[test]
    fn content_decides_regardless_of_name_or_declared_type() {
        let csv = "Service,Price\nWhitening,350\nCleaning,80\n";
        /// Content, name hint, declared type, expected kind.
        type Case<'a> = (&'a [u8], Option<&'a str>, Option<&'a str>, DocKind);
        let cases: &[Case] = &[
            (PRICE_LIST_PDF, Some("prices.pdf"), Some("application/pdf"), DocKind::Pdf),
            (PRICE_LIST_PDF, Some("notes.txt"), Some("text/plain"), DocKind::Pdf),
            (PRICE_LIST_PDF, None, None, DocKind::Pdf),
            (b"\xEF\xBB\xBF \n\t%PDF-1.7\n", Some("x.html"), None, DocKind::Pdf),
            (HTML.as_bytes(), Some("brochure.pdf"), Some("application/pdf"), DocKind::Html),
            (b"<!-- saved --> <?xml version=\"1.0\"?>\n<HTML lang=en><p>x", None, None, DocKind::Html),
            (b"\xEF\xBB\xBF<meta charset=utf-8>\n<body>Hello</body>", Some("a.txt"), None, DocKind::Html),
            (b"<div>fragment</div>", None, Some("text/html; charset=utf-8"), DocKind::Html),
            (b"<div>fragment</div>", Some("notes.txt"), None, DocKind::Text),
            (b"<header>not a head tag</header>", None, None, DocKind::Text),
            (b"# Prices\n\nSee <body> for details", None, None, DocKind::Markdown),
            (csv.as_bytes(), Some("prices.csv"), None, DocKind::Csv),
            (csv.as_bytes(), None, Some("text/csv"), DocKind::Csv),
            (csv.as_bytes(), None, None, DocKind::Csv),
            (csv.as_bytes(), Some("prices.md"), None, DocKind::Markdown),
            (b"Service;Price\nWhitening;350,00\n", Some("prices.CSV"), None, DocKind::Csv),
            (b"Service\tPrice\nWhitening\t350\n", Some("https://x.example/p.csv?dl=1"), None, DocKind::Csv),
            (b"Service,Price\nWhitening,350\n", None, None, DocKind::Text),
            (b"just one column\nsecond line\n", Some("list.csv"), None, DocKind::Text),
            (b"a,b\nc,d,e\n", Some("ragged.csv"), None, DocKind::Text),
            (
                b"Hello, we are open Monday to Friday.\nCall us, or email, anytime.\nThanks, team.\n",
                None,
                None,
                DocKind::Text,
            ),
            (b"Name,Note\nAnn,Very happy with the service.\nBob,Great!\n", None, None, DocKind::Text),
            (b"Intro\n\n## Opening hours\n9 to 5", Some("faq.txt"), None, DocKind::Markdown),
            (b"plain notes", Some("faq.markdown"), None, DocKind::Markdown),
            (b"plain notes", None, Some("text/markdown"), DocKind::Markdown),
            (b"plain notes\n#hashtag\n```\n# comment\n```", None, None, DocKind::Text),
            (b"BMW service intervals\nevery 2 years", Some("bmw.bmp"), None, DocKind::Text),
            (b"Caf\xe9 cr\xe8me and tea served all day, from nine to five", Some("menu.txt"), None, DocKind::Text),
            (b"Page one\x0cPage two", None, None, DocKind::Text),
        ];
        for (bytes, name, mime, expected) in cases {
            let got = sniff(bytes, *name, *mime);
            assert_eq!(got, Ok(*expected), "{:?} named {name:?} declared {mime:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn binary_content_is_refused_naming_what_it_looks_like() {
        assert_eq!(unsupported(sniff(PNG, Some("prices.pdf"), Some("application/pdf"))), "a .png file (image/png)");
        assert_eq!(unsupported(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0", None, None)), "a .jpg file (image/jpeg)");
        assert_eq!(unsupported(sniff(b"GIF89a\x01\0\x01\0\x80\0\0", Some("a.txt"), None)), "a .gif file (image/gif)");
        assert!(unsupported(sniff(b"PK\x03\x04\x14\0\x06\0\x08\0\0\0!\0", Some("a.csv"), None)).contains("zip"));
        assert_eq!(unsupported(sniff(b"\x1f\x8b\x08\0\0\0\0\0", None, None)), "a .gz file (application/gzip)");
        let elf = [b"\x7fELF\x02\x01\x01".as_slice(), &[0; 64]].concat();
        assert!(unsupported(sniff(&elf, None, None)).contains("elf"));
        assert!(unsupported(sniff(b"MZ\x90\0\x03\0\0\0\x04\0\0\0", None, None)).contains("exe"));
        assert_eq!(
            unsupported(sniff(b"{\\rtf1\\ansi hello}", Some("a.txt"), None)),
            "an RTF document (application/rtf)"
        );
        assert_eq!(unsupported(sniff(b"text\0with a NUL", None, None)), "binary data");
        assert_eq!(unsupported(sniff(b"\x01\x02\x03\x04abc", None, None)), "binary data");
        assert_eq!(unsupported(sniff(&[0xC3; 64], None, None)), "text that is not UTF-8");
        assert!(unsupported(sniff(b"\xFF\xFEH\0i\0", None, None)).starts_with("UTF-16"));
        assert_eq!(sniff(b"", Some("a.txt"), Some("text/plain")), Err(ExtractError::Empty));
    }

    #[test]
    fn pdf_header_must_lead_the_first_kilobyte() {
        let late = [vec![b' '; PDF_HEADER_WINDOW], b"%PDF-1.4".to_vec()].concat();
        assert_eq!(sniff(&late, None, None), Ok(DocKind::Text));
        assert_eq!(sniff(b"see %PDF-1.4 in the spec", None, None), Ok(DocKind::Text));
    }

    #[test]
    fn sniffing_a_truncated_head_ignores_the_cut_record() {
        let mut csv = String::from("Service,Price\n");
        while csv.len() < SNIFF_LEN + 100 {
            csv.push_str("Whitening,350\n");
        }
        // The head ends mid-row, as the file store's 8 KiB head would.
        let head = &csv.as_bytes()[..SNIFF_LEN];
        assert!(!head.ends_with(b"\n"));
        assert_eq!(sniff(head, None, None), Ok(DocKind::Csv));
    }

    #[test]
    fn pdf_pages_become_sections_titled_with_the_document_title() {
        let extracted = extract(DocKind::Pdf, PRICE_LIST_PDF, "uploads/price-list.pdf").unwrap();
        assert_eq!(extracted.title, "Smile Clinic price list");
        assert_eq!(
            sections(&extracted),
            [
                (
                    "Smile Clinic price list › page 1",
                    "Price list\nTeeth whitening costs 350 dollars\nDental implant consultation 120 dollars\n\
                     Routine cleaning (scale and polish) 80 dollars"
                ),
                (
                    "Smile Clinic price list › page 2",
                    "Night guard 95 dollars\nEmergency visit 150 dollars\nPrices include tax."
                ),
            ]
        );
    }

    #[test]
    fn pdf_after_leading_whitespace_is_read() {
        let padded = [b"\r\n \n".as_slice(), PRICE_LIST_PDF].concat();
        assert_eq!(sniff(&padded, None, None), Ok(DocKind::Pdf));
        assert_eq!(extract(DocKind::Pdf, &padded, "p.pdf").unwrap().sections.len(), 2);
    }

    #[test]
    fn malformed_pdfs_are_errors_not_panics() {
        for bytes in [
            &b"%PDF-1.4 garbage"[..],
            b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF",
            &PRICE_LIST_PDF[..PRICE_LIST_PDF.len() / 2],
            b"",
        ] {
            assert!(matches!(extract(DocKind::Pdf, bytes, "broken.pdf"), Err(ExtractError::Pdf { .. })));
        }
    }

    /// A one-page PDF built with the reader's own object model, for shapes the test PDF writer cannot make.
    fn single_page_pdf(media_box: bool, content: &[u8]) -> Vec<u8> {
        use pdf_extract::{Dictionary, Document, Object, Stream};
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let content_id = doc.add_object(Stream::new(Dictionary::new(), content.to_vec()));
        let mut page = Dictionary::new();
        page.set("Type", Object::Name(b"Page".to_vec()));
        page.set("Parent", Object::Reference(pages_id));
        if media_box {
            page.set("MediaBox", Object::Array([0, 0, 612, 792].map(Object::Integer).to_vec()));
        }
        page.set("Contents", Object::Reference(content_id));
        let page_id = doc.add_object(page);
        let mut pages = Dictionary::new();
        pages.set("Type", Object::Name(b"Pages".to_vec()));
        pages.set("Kids", vec![Object::Reference(page_id)]);
        pages.set("Count", 1);
        doc.objects.insert(pages_id, Object::Dictionary(pages));
        let mut catalog = Dictionary::new();
        catalog.set("Type", Object::Name(b"Catalog".to_vec()));
        catalog.set("Pages", Object::Reference(pages_id));
        let catalog_id = doc.add_object(catalog);
        doc.trailer.set("Root", Object::Reference(catalog_id));
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn pdf_without_text_is_reported_as_such() {
        let bytes = single_page_pdf(true, b"0 0 m 100 100 l S");
        assert_eq!(sniff(&bytes, None, None), Ok(DocKind::Pdf));
        let err = extract(DocKind::Pdf, &bytes, "scan.pdf").unwrap_err();
        assert!(err.to_string().starts_with("the PDF has no extractable text"), "{err}");
    }

    #[test]
    fn a_panicking_pdf_reader_becomes_an_error() {
        // pdf-extract panics on a page without a MediaBox.
        let bytes = single_page_pdf(false, b"");
        assert_eq!(extract(DocKind::Pdf, &bytes, "odd.pdf"), Err(ExtractError::Pdf { reason: PDF_DAMAGED.into() }));
    }

    #[test]
    fn csv_rows_become_labelled_lines_in_groups() {
        let mut csv = String::from("\u{feff}Service , Price,,Notes\n\"Whitening, premium\",$350,x,\n,,,\n");
        for i in 1..=25 {
            csv.push_str(&format!("Item {i},{i}0,,\n"));
        }
        csv.push_str("Extra,1,,,spill\n");
        let extracted = extract(DocKind::Csv, csv.as_bytes(), "/data/price list.csv").unwrap();
        assert_eq!(extracted.title, "price list");
        assert_eq!(extracted.sections.len(), 2);
        assert!(extracted.sections.iter().all(|s| s.title == "price list"));
        let lines: Vec<&str> = extracted.sections.iter().flat_map(|s| s.text.lines()).collect();
        assert_eq!(lines.len(), 27);
        assert_eq!(lines[0], "Service: Whitening, premium; Price: $350; Column 3: x");
        assert_eq!(lines[1], "Service: Item 1; Price: 10");
        assert_eq!(lines[26], "Service: Extra; Price: 1; Column 5: spill");
        assert_eq!(extracted.sections[0].text.lines().count(), CSV_ROWS_PER_SECTION);
    }

    #[test]
    fn semicolon_csv_and_header_only_csv() {
        let extracted = extract(DocKind::Csv, b"Service;Price\nWhitening;350,00 \xe2\x82\xac\n", "prix.csv").unwrap();
        assert_eq!(sections(&extracted), [("prix", "Service: Whitening; Price: 350,00 €")]);
        assert_eq!(extract(DocKind::Csv, b"Service,Price\n", "empty.csv"), Err(ExtractError::Empty));
    }

    #[test]
    fn markdown_headings_become_section_titles() {
        let md = "Intro.\n\n```\n# not the title\n```\n# Smile Clinic #\n\nWelcome.\n\n## Prices\nWhitening 350.\n";
        let extracted = extract(DocKind::Markdown, md.as_bytes(), "about.md").unwrap();
        assert_eq!(extracted.title, "Smile Clinic");
        assert_eq!(
            sections(&extracted),
            [
                ("", "Intro.\n\n```\n# not the title\n```"),
                ("Smile Clinic", "Welcome."),
                ("Smile Clinic › Prices", "Whitening 350.")
            ]
        );
    }

    #[test]
    fn text_title_falls_back_to_the_name_and_invalid_utf8_is_replaced() {
        let extracted =
            extract(DocKind::Text, b"\xEF\xBB\xBFCaf\xe9 opens at 9.\n", "C:\\Users\\me\\hours.v2.txt").unwrap();
        assert_eq!(extracted.title, "hours.v2");
        assert_eq!(sections(&extracted), [("", "Caf\u{FFFD} opens at 9.")]);
        assert_eq!(extract(DocKind::Text, b" \n\n", "blank.txt"), Err(ExtractError::Empty));
    }

    #[test]
    fn html_drops_chrome_and_takes_its_title() {
        let html = "<html><head><title>Clinic hours</title><script>track()</script></head><body>\
                    <nav><a href=\"/\">Home</a></nav><h1>Hours</h1><p>Open 9 to 5.</p>\
                    <script>alert(1)</script><footer>Copyright</footer></body></html>";
        let extracted = extract(DocKind::Html, html.as_bytes(), "https://clinic.example.com/hours").unwrap();
        assert_eq!(extracted.title, "Clinic hours");
        assert_eq!(sections(&extracted), [("Hours", "Open 9 to 5.")]);

        let untitled = extract(DocKind::Html, b"<p>Hi</p>", "https://clinic.example.com/team/index.html?x=1").unwrap();
        assert_eq!(untitled.title, "index");
        assert_eq!(extract(DocKind::Html, b"<nav>only chrome</nav>", "x.html"), Err(ExtractError::Empty));
    }

    #[test]
    fn titles_from_names() {
        assert_eq!(title_from_name("prices.pdf"), "prices");
        assert_eq!(title_from_name("https://clinic.example.com/"), "clinic.example.com");
        assert_eq!(title_from_name("https://clinic.example.com/docs/faq/#top"), "faq");
        assert_eq!(title_from_name(".env"), ".env");
        assert_eq!(title_from_name("https://clinic.example.com?x=a.b"), "clinic.example.com");
        assert_eq!(title_from_name("scan #2.pdf"), "scan #2");
        assert_eq!(title_from_name("notes"), "notes");
        assert_eq!(title_from_name(""), "Untitled");
        assert_eq!(first_title("## Sub\n# C#\n# Later"), Some("C#"));
    }
}
