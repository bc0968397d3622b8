//! Every request ends, against the real binary with raw TCP clients: a body that is declared and
//! never sent gets 408 and a closed connection; truncated and stalled multipart uploads are all
//! answered or closed and leave no open file, temporary file or upload behind; a widget socket
//! that never says hello, or a handshake that never finishes, is closed by the server. The
//! in-process scenario covers the multipart limits (part headers, part count, field size).

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{run_cli, spawn_app_with, spawn_binary, Backend, TestDb};
use crate::on_both_backends;

on_both_backends!(
    a_declared_body_that_never_comes_gets_408_and_a_closed_connection,
    truncated_and_stalled_uploads_leave_no_open_file_or_temporary_file,
    a_widget_socket_that_never_says_hello_is_closed,
    multipart_limits_are_explicit_and_refusals_store_nothing,
);

/// Generous bound for anything the server must do within a few seconds.
const BOUND: Duration = Duration::from_secs(30);

/// The real binary on a fresh database, with a workspace, short deadlines, and the limiters out
/// of the way (they have their own tests).
struct Server {
    child: Child,
    addr: String,
    base: String,
    data_dir: PathBuf,
    created: Value,
    _db: TestDb,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(backend: Backend) -> Server {
    let db = TestDb::new(backend);
    let mut owned = db.binary_env();
    owned.extend([
        ("FRONTDESK_BODY_TIMEOUT_SECS", "2".to_owned()),
        ("FRONTDESK_UPLOAD_TIMEOUT_SECS", "60".to_owned()),
        ("FRONTDESK_HELLO_TIMEOUT_SECS", "2".to_owned()),
        ("FRONTDESK_CHAT_RATE_LIMIT_PER_MINUTE", "0".to_owned()),
        ("FRONTDESK_RATE_LIMIT_PER_MINUTE", "0".to_owned()),
        ("FRONTDESK_WORKERS", "2".to_owned()),
    ]);
    let envs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_cli(&["migrate"], &envs);
    let created = run_cli(&["workspace", "create", "--name", "Deadline Dental"], &envs);
    let (child, base) = spawn_binary(&envs);
    let addr = base.strip_prefix("http://").expect("http base").to_owned();
    Server { child, addr, base, data_dir: db.dir.path().to_path_buf(), created, _db: db }
}

impl Server {
    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).expect("the server's fd table").count()
    }

    fn api_key(&self) -> &str {
        self.created["api_key"].as_str().unwrap()
    }

    /// Waits (within [`BOUND`]) until the server holds at most `limit` open fds; answers the last count.
    async fn fds_settle_to(&self, limit: usize) -> usize {
        let start = std::time::Instant::now();
        loop {
            let open = self.open_fds();
            if open <= limit || start.elapsed() > BOUND {
                return open;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Sends `head` and `body` (then nothing more, keeping the connection open), and reads until the
/// server closes the connection; answers the status and JSON body of its response.
async fn stall(addr: &str, head: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    read_until_closed(stream).await
}

/// Everything the server sends until it closes the connection (within [`BOUND`]), as a status
/// and a JSON body.
async fn read_until_closed(mut stream: TcpStream) -> (u16, Value) {
    let mut raw = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut raw))
        .await
        .expect("the server closes the connection")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned())))
}

async fn a_declared_body_that_never_comes_gets_408_and_a_closed_connection(backend: Backend) {
    let server = start(backend);
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{}/healthz", server.base)).send().await.unwrap().status(), 200);
    let baseline = server.open_fds();

    // 1,000 bytes declared, 10 sent; and a chunked body whose last chunk never comes; on a
    // public route and on an authenticated one.
    let declared = "POST /chat HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    let chunked = format!(
        "POST /api/conversations HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: \
         application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        server.api_key()
    );
    let mut stalled = Vec::new();
    for i in 0..30 {
        let addr = server.addr.clone();
        let (head, body): (String, &[u8]) =
            if i % 2 == 0 { (declared.to_owned(), b"{\"message\"") } else { (chunked.clone(), b"5\r\n{\"bot\r\n") };
        stalled.push(tokio::spawn(async move { stall(&addr, &head, body).await }));
    }
    for answer in stalled {
        let (status, body) = answer.await.unwrap();
        assert_eq!(status, 408, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains("request body") && error.contains("FRONTDESK_BODY_TIMEOUT_SECS"), "{body}");
    }

    // The server is still itself, and the stalled connections are gone.
    let (status, body) = crate::helpers::status_json(
        http.post(format!("{}/api/conversations", server.base))
            .bearer_auth(server.api_key())
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    drop(http);
    let open = server.fds_settle_to(baseline + 4).await;
    assert!(open <= baseline + 4, "{open} fds open against {baseline} before the stalled requests");
}

const BOUNDARY: &str = "----frontdeskTruncated";

/// A complete text file part, then the start of a second one: no closing boundary.
fn truncated_upload() -> Vec<u8> {
    let mut body = Vec::new();
    for (name, content) in [("first.txt", "Opening hours: 9 to 5."), ("second.txt", "Prices: a cleaning is")] {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
                 Content-Type: text/plain\r\n\r\n{content}"
            )
            .as_bytes(),
        );
        if name == "first.txt" {
            body.extend_from_slice(b"\r\n");
        }
    }
    body
}

fn upload_head(server: &Server, length: usize) -> String {
    format!(
        "POST /api/files HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; \
         boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n",
        server.api_key()
    )
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

async fn truncated_and_stalled_uploads_leave_no_open_file_or_temporary_file(backend: Backend) {
    let server = start(backend);
    let files = server.data_dir.join("files");
    let tmp = files.join("tmp");
    assert!(tmp.is_dir(), "uploads are staged in {}", tmp.display());

    // A whole upload works (and warms up the store and the pool before the baseline).
    let mut whole = truncated_upload();
    whole.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let (status, body) = stall(&server.addr, &upload_head(&server, whole.len()), &whole).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2, "{body}");
    let stored = files_under(&files);
    let baseline = server.open_fds();

    let truncated = truncated_upload();
    let mut clients = Vec::new();
    for i in 0..50 {
        let addr = server.addr.clone();
        let body = truncated.clone();
        // Four ways to leave: the declared body ends without the closing boundary; the body
        // stalls after the truncated part; the client disconnects mid-body; a chunked body
        // stalls.
        let head = match i % 4 {
            0 => upload_head(&server, body.len()),
            1 | 2 => upload_head(&server, body.len() + 4096),
            _ => upload_head(&server, 0).replace("Content-Length: 0", "Transfer-Encoding: chunked"),
        };
        clients.push(tokio::spawn(async move {
            match i % 4 {
                0 | 1 => Some(stall(&addr, &head, &body).await),
                2 => {
                    let mut stream = TcpStream::connect(&addr).await.expect("connect");
                    stream.write_all(head.as_bytes()).await.unwrap();
                    stream.write_all(&body).await.unwrap();
                    // Give the server the bytes before the connection goes.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    None
                }
                _ => {
                    let mut chunk = format!("{:x}\r\n", body.len()).into_bytes();
                    chunk.extend_from_slice(&body);
                    chunk.extend_from_slice(b"\r\n");
                    Some(stall(&addr, &head, &chunk).await)
                }
            }
        }));
    }
    for (i, client) in clients.into_iter().enumerate() {
        let Some((status, body)) = client.await.unwrap() else { continue };
        let expected = if i % 4 == 0 { 400 } else { 408 };
        assert_eq!(status, expected, "upload {i}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }

    let open = server.fds_settle_to(baseline + 4).await;
    assert!(open <= baseline + 4, "{open} fds open against {baseline} before the abusive uploads");
    // Polled: a disconnected client's upload may still be unwinding on the blocking pool.
    let start = std::time::Instant::now();
    while !files_under(&tmp).is_empty() && start.elapsed() < BOUND {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(files_under(&tmp), Vec::<PathBuf>::new(), "temporary files left behind");
    // All or nothing: not even the complete first part of a refused upload was kept.
    assert_eq!(files_under(&files), stored, "a refused upload stored a file");
}

async fn a_widget_socket_that_never_says_hello_is_closed(backend: Backend) {
    let server = start(backend);
    let ws_url = format!("ws://{}/ws/widget", server.addr);

    // Silent after the upgrade (the client still answers the server's pings).
    let (mut silent, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("websocket connects");
    let closed = tokio::time::timeout(BOUND, async {
        while let Some(frame) = silent.next().await {
            match frame {
                Ok(Message::Close(reason)) => return reason,
                Ok(_) => continue,
                Err(err) => panic!("socket failed instead of closing: {err}"),
            }
        }
        None
    })
    .await
    .expect("the server closes a socket that never says hello");
    let reason = closed.expect("a close frame with a reason");
    assert_eq!(reason.code, CloseCode::Policy);
    assert!(reason.reason.contains("hello"), "{reason:?}");

    // A socket that said hello is past that deadline: it still answers after twice the time.
    let (mut joined, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("websocket connects");
    let bot_id = server.created["bot_id"].as_str().unwrap();
    joined.send(Message::Text(json!({"type": "hello", "bot_id": bot_id}).to_string())).await.unwrap();
    let mut ready = false;
    while !ready {
        match tokio::time::timeout(BOUND, joined.next()).await.expect("a frame").expect("open").expect("frame") {
            Message::Text(text) => ready = serde_json::from_str::<Value>(&text).unwrap()["type"] == "ready",
            Message::Close(reason) => panic!("closed before ready: {reason:?}"),
            _ => {}
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    joined.send(Message::Text(json!({"type": "ping"}).to_string())).await.unwrap();
    loop {
        match tokio::time::timeout(BOUND, joined.next()).await.expect("a frame").expect("open").expect("frame") {
            Message::Text(text) if serde_json::from_str::<Value>(&text).unwrap()["type"] == "pong" => break,
            Message::Close(reason) => panic!("a joined socket was closed: {reason:?}"),
            _ => {}
        }
    }

    // A handshake whose headers never finish is answered 408 and closed (actix's request
    // timeout), without a socket ever being opened.
    let (status, body) = stall(&server.addr, "GET /ws/widget HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n", b"").await;
    assert_eq!(status, 408, "{body}");
}

/// Posts a raw multipart body to `/api/files`; answers the status and JSON body.
async fn post_multipart(app: &crate::helpers::TestApp, body: Vec<u8>) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/api/files"))
        .bearer_auth(&app.a.api_key)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .expect("request");
    crate::helpers::status_json(res).await
}

fn field(name: &str, value: &str) -> String {
    format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
}

fn file(name: &str, value: &str) -> String {
    format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: \
         text/plain\r\n\r\n{value}\r\n"
    )
}

async fn multipart_limits_are_explicit_and_refusals_store_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let files = app.data_dir().join("files");
    let good = format!("{}{}--XyZ--\r\n", field("title", "Hours"), file("hours.txt", "Open 9 to 5."));
    let (status, body) = post_multipart(&app, good.clone().into_bytes()).await;
    assert_eq!(status, 201, "{body}");
    let stored = files_under(&files);

    let long_header = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\nX-Pad: {}\r\n\r\nhi\r\n--XyZ--\r\n",
        "a".repeat(16 * 1024)
    );
    let too_many: String = (0..51).map(|i| field(&format!("f{i}"), "x")).collect::<String>() + "--XyZ--\r\n";
    let big_field = format!("{}--XyZ--\r\n", field("title", &"t".repeat(5000)));
    let truncated = format!(
        "{}{}",
        file("a.txt", "complete part"),
        "--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"b.txt\"\r\n\r\nhalf"
    );
    let cut_in_boundary = format!("{}\r\n--Xy", file("a.txt", "complete part").trim_end());
    for (body, status, words) in [
        (long_header, 413, "part headers"),
        (too_many, 413, "at most 50 parts"),
        (big_field, 413, "form field `title`"),
        (truncated, 400, "closing boundary"),
        (cut_in_boundary, 400, "closing boundary"),
    ] {
        let (got, answer) = post_multipart(&app, body.into_bytes()).await;
        assert_eq!(got, status, "{answer}");
        assert!(answer["error"].as_str().unwrap_or_default().contains(words), "{answer}");
    }
    assert_eq!(files_under(&files), stored, "a refused upload stored a file or left a temporary one");
    // The refusals closed their connections; the client's next upload works.
    let (status, body) = post_multipart(&app, good.into_bytes()).await;
    assert_eq!(status, 201, "{body}");
}
