//! The bytes a browser downloads for one of frontdesk's faces (included with `#[path]`): each
//! file fetched with `Accept-Encoding: identity`, `gzip` and `br`, the headers that matter, and a
//! local `gzip -9` for reference; the hashed files a page or loader names; the printed table.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;

use serde_json::{json, Value};

/// The encodings asked for, and the local reference.
pub const SIZES: [&str; 4] = ["identity", "gzip", "br", "local_gzip9"];

/// `GET base + path` with `Accept-Encoding: encoding` (and `Origin`, when given); its headers
/// and body as sent (this reqwest has no decompression).
async fn fetch(
    http: &reqwest::Client,
    url: &str,
    encoding: &str,
    origin: Option<&str>,
) -> Result<(HashMap<String, String>, Vec<u8>), String> {
    let mut request = http.get(url).header("Accept-Encoding", encoding);
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    let res = request.send().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("GET {url}: {}", res.status()));
    }
    let headers =
        res.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    let body = res.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
    Ok((headers, body.to_vec()))
}

/// The text of `base + path`, uncompressed.
pub async fn text(http: &reqwest::Client, base: &str, path: &str, origin: Option<&str>) -> Result<String, String> {
    let (_, body) = fetch(http, &format!("{base}{path}"), "identity", origin).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `first`, then every distinct path starting with `marker` that `text` names.
pub fn named_paths(first: &str, text: &str, marker: &str) -> Vec<String> {
    let mut paths = vec![first.to_owned()];
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let tail = &rest[at..];
        let end = tail.find(|c: char| matches!(c, '"' | '\'' | '`' | '>') || c.is_whitespace()).unwrap_or(tail.len());
        let path = tail[..end].to_owned();
        if !paths.contains(&path) {
            paths.push(path);
        }
        rest = &tail[end..];
    }
    paths
}

/// One file's sizes (each of [`SIZES`]), the encoding each answer was sent in, and its
/// `Content-Type`, `Cache-Control` and `ETag`.
pub async fn measure(http: &reqwest::Client, base: &str, path: &str, origin: Option<&str>) -> Result<Value, String> {
    let url = format!("{base}{path}");
    let mut asset = json!({ "path": path });
    for encoding in ["identity", "gzip", "br"] {
        let (headers, body) = fetch(http, &url, encoding, origin).await?;
        let sent = headers.get("content-encoding").cloned().unwrap_or_else(|| "identity".into());
        asset[encoding] = json!(body.len());
        asset[format!("{encoding}_content_encoding")] = json!(sent);
        if encoding == "identity" {
            asset["content_type"] = json!(headers.get("content-type"));
            asset["cache_control"] = json!(headers.get("cache-control"));
            asset["etag"] = json!(headers.get("etag"));
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&body).map_err(|e| e.to_string())?;
            asset["local_gzip9"] = json!(gz.finish().map_err(|e| e.to_string())?.len());
        }
    }
    Ok(asset)
}

/// The sum of each of [`SIZES`] over `assets`.
pub fn total<'a>(assets: impl IntoIterator<Item = &'a Value>) -> Value {
    let mut total: HashMap<&str, u64> = SIZES.iter().map(|size| (*size, 0)).collect();
    for asset in assets {
        for size in SIZES {
            *total.get_mut(size).unwrap() += asset[size].as_u64().unwrap_or_default();
        }
    }
    json!(total)
}

/// Prints `## {title}` and a line per asset of `bytes["assets"]`.
pub fn print_assets(title: &str, bytes: &Value) {
    println!("## {title}");
    for asset in bytes["assets"].as_array().into_iter().flatten() {
        println!(
            "{:<48} raw {:>7} B, gzip {:>6} B, br {:>6} B (local gzip -9: {} B) {}; {}",
            asset["path"].as_str().unwrap_or("?"),
            asset["identity"],
            asset["gzip"],
            asset["br"],
            asset["local_gzip9"],
            asset["content_type"].as_str().unwrap_or("?"),
            asset["cache_control"].as_str().unwrap_or("no Cache-Control"),
        );
    }
}

/// How `gzip` bytes stand against `budget`.
pub fn verdict(gzip: u64, budget: usize) -> String {
    let left = budget as i64 - gzip as i64;
    if left >= 0 {
        format!("{left} B within {budget} B")
    } else {
        format!("OVER {budget} B by {} B", -left)
    }
}
