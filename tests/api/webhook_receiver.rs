//! A real HTTP receiver on loopback, for the webhook delivery tests.
//!
//! The server under test delivers webhooks over real HTTP; this receiver takes them on
//! `127.0.0.1`, records every request (method, path, lowercase headers, raw body, arrival time) and
//! answers with scripted replies, so a test can make deliveries fail (`503`, then `200`), watch the
//! retries arrive, and take the receiver down (`stop`: connections refused) and bring it back up on
//! the same port (`start_on`).
//!
//! It is a minimal HTTP/1.1 server on a plain tokio `TcpListener`, running on its own thread with
//! its own runtime, so it keeps answering whatever the test's runtime is doing. Each connection
//! carries one request (`Content-Length` or chunked body, or none) and gets one response with
//! `Connection: close`.
//!
//! [`verify_with_python`] hands a recorded request to `tests/api/verify_webhook.py`, which checks
//! the signatures with code that shares nothing with the server (the ChatGenius document's snippet
//! and the `standardwebhooks` package from PyPI).

// Not every test uses every helper or field.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, Notify};

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// How long one connection may take to send its request, or to take the response.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `start_on` keeps retrying a port that is still in use.
const REBIND_FOR: Duration = Duration::from_secs(5);

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The request target as sent, query string included.
    pub path: String,
    /// Header names in lowercase; a header sent more than once has its values joined with ", ".
    pub headers: HashMap<String, String>,
    /// The raw body (chunked bodies decoded).
    pub body: Bytes,
    /// When the whole request had been read.
    pub at: Instant,
}

impl Received {
    /// A header's value, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The body parsed as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("webhook body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// How the receiver answers the next requests: a queue of scripted responses; when the queue is
/// empty it answers `default`.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Extra response headers (`Content-Length` and `Connection` are always set by the receiver).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// A reply with this status, no extra headers and an empty body.
    pub fn status(code: u16) -> Self {
        Reply { status: code, headers: Vec::new(), body: String::new() }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }
}

/// What the receiver's thread and the test share.
struct Shared {
    state: Mutex<State>,
    /// Woken each time a request has been recorded.
    arrived: Notify,
}

struct State {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    default: Reply,
}

impl Shared {
    /// Records a request and picks its reply: the next scripted one, else the default.
    fn record(&self, request: Received) -> Reply {
        let reply = {
            let mut state = self.state.lock().unwrap();
            state.received.push(request);
            match state.script.pop_front() {
                Some(reply) => reply,
                None => state.default.clone(),
            }
        };
        self.arrived.notify_waiters();
        reply
    }
}

/// An HTTP receiver listening on `127.0.0.1`; dropping it stops it too.
pub struct Receiver {
    port: u16,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Starts on 127.0.0.1 with a random port, answering 200 by default.
    pub async fn start() -> Receiver {
        Self::listen(0).await
    }

    /// Starts on a specific port (used to bring a receiver "back up" on the same port after
    /// `stop`). Retries for a few seconds while the port is still in use.
    pub async fn start_on(port: u16) -> Receiver {
        Self::listen(port).await
    }

    async fn listen(port: u16) -> Receiver {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { received: Vec::new(), script: VecDeque::new(), default: Reply::status(200) }),
            arrived: Notify::new(),
        });
        let (bound_tx, bound_rx) = oneshot::channel::<io::Result<u16>>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped_rx) = oneshot::channel::<()>();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("webhook-receiver-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("webhook receiver: tokio runtime");
                runtime.block_on(async move {
                    let listener = match bind(port).await {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = bound_tx.send(Err(e));
                            return;
                        }
                    };
                    let local = listener.local_addr().map(|a| a.port());
                    let _ = bound_tx.send(local);
                    serve(listener, thread_shared, shutdown_rx).await;
                });
                // Dropping the runtime drops the listener and every open connection.
                drop(runtime);
                let _ = stopped_tx.send(());
            })
            .expect("webhook receiver: spawn thread");
        let port = match bound_rx.await {
            Ok(Ok(port)) => port,
            Ok(Err(e)) => panic!("webhook receiver: cannot listen on 127.0.0.1:{port}: {e}"),
            Err(_) => panic!("webhook receiver: its thread ended before listening on 127.0.0.1:{port}"),
        };
        Receiver { port, shared, shutdown: Some(shutdown_tx), stopped: Some(stopped_rx), thread: Some(thread) }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Queue scripted replies (answered in order before falling back to the default).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.state.lock().unwrap().script.extend(replies);
    }

    /// The reply given once the scripted ones are used up.
    pub fn set_default(&self, reply: Reply) {
        self.shared.state.lock().unwrap().default = reply;
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.state.lock().unwrap().received.clone()
    }

    /// Waits (up to `timeout`) until at least `n` requests arrived; returns them all; panics with a
    /// clear message on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before looking, so a request recorded in between still wakes it.
            let arrived = self.shared.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let got = self.received();
                if got.len() >= n {
                    return got;
                }
                let seen: Vec<String> = got.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
                panic!(
                    "webhook receiver on port {}: expected {n} request(s) within {timeout:?}, got {}: {seen:?}",
                    self.port,
                    got.len()
                );
            }
        }
    }

    /// Stops listening (connections refused afterwards) — to simulate a receiver that is down.
    /// Returns the port, to restart on with [`Receiver::start_on`].
    pub async fn stop(mut self) -> u16 {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            // Sent once the listener and every connection are closed (or the thread is gone).
            let _ = stopped.await;
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.port
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Listens on `127.0.0.1:port` with `SO_REUSEADDR`, retrying a port that is still in use.
async fn bind(port: u16) -> io::Result<TcpListener> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let until = Instant::now() + REBIND_FOR;
    loop {
        let attempt = TcpSocket::new_v4().and_then(|socket| {
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        });
        match attempt {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && port != 0 && Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            result => return result,
        }
    }
}

/// Accepts connections until told to stop (or the `Receiver` is gone).
async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(handle(stream, shared.clone()));
                }
                // E.g. out of file descriptors: let some close.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// One connection: one request, one response, then close.
async fn handle(mut stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let request = match tokio::time::timeout(IO_TIMEOUT, read_request(&mut stream)).await {
        Ok(Ok(request)) => request,
        // Timed out, closed early or not HTTP: nothing to record or answer.
        _ => return,
    };
    let head_only = request.method.eq_ignore_ascii_case("HEAD");
    let reply = shared.record(request);
    let _ = tokio::time::timeout(IO_TIMEOUT, write_reply(&mut stream, &reply, head_only)).await;
}

/// Buffered reads on one connection.
struct Conn<'a> {
    stream: &'a mut TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl Conn<'_> {
    /// Reads more bytes into the buffer; an error at end of stream.
    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-request"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// The bytes up to `delim` (which is consumed too), at most `limit` of them.
    async fn until(&mut self, delim: &[u8], limit: usize) -> io::Result<Vec<u8>> {
        let mut from = self.pos;
        loop {
            if let Some(i) = self.buf[from..].windows(delim.len()).position(|w| w == delim) {
                let end = from + i;
                let out = self.buf[self.pos..end].to_vec();
                self.pos = end + delim.len();
                return Ok(out);
            }
            if self.buf.len() - self.pos > limit {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "request line or header too long"));
            }
            from = self.buf.len().saturating_sub(delim.len() - 1).max(self.pos);
            self.fill().await?;
        }
    }

    /// Exactly `n` bytes.
    async fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() - self.pos < n {
            self.fill().await?;
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

async fn read_request(stream: &mut TcpStream) -> io::Result<Received> {
    let mut conn = Conn { stream, buf: Vec::with_capacity(4096), pos: 0 };
    let head = conn.until(b"\r\n\r\n", MAX_HEAD).await?;
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split_whitespace();
    let (Some(method), Some(path)) = (request_line.next(), request_line.next()) else {
        return Err(invalid("bad request line"));
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut headers: HashMap<String, String> = HashMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
        headers
            .entry(name)
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }

    if headers.get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        conn.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    let chunked = headers.get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let line = conn.until(b"\r\n", 1024).await?;
            let line = String::from_utf8_lossy(&line);
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !conn.until(b"\r\n", MAX_HEAD).await?.is_empty() {}
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(invalid("body too large"));
            }
            body.extend_from_slice(&conn.exact(size).await?);
            conn.exact(2).await?;
        }
        body
    } else if let Some(length) = headers.get("content-length") {
        let length: usize = length.trim().parse().map_err(|_| invalid("bad content-length"))?;
        if length > MAX_BODY {
            return Err(invalid("body too large"));
        }
        conn.exact(length).await?
    } else {
        Vec::new()
    };
    Ok(Received { method, path, headers, body: Bytes::from(body), at: Instant::now() })
}

async fn write_reply(stream: &mut TcpStream, reply: &Reply, head_only: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("connection") {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    // 1xx, 204 and 304 responses have no body and no Content-Length.
    let bodiless = reply.status < 200 || reply.status == 204 || reply.status == 304;
    if !bodiless {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut out = head.into_bytes();
    if !bodiless && !head_only {
        out.extend_from_slice(reply.body.as_bytes());
    }
    stream.write_all(&out).await?;
    stream.flush().await?;
    stream.shutdown().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Runs tests/api/verify_webhook.py on a received request; returns its JSON verdict
/// (`{"chatgenius": bool, "standard": bool, "previous": bool | null, "errors": [..]}`; panics if
/// python3 is missing).
///
/// Every check passed when `chatgenius` and `standard` are true and `previous` is true (with a
/// `previous_secret`) or null (without). Needs the `standardwebhooks` package (`.ci/run` installs
/// it); without it `standard` is false and `errors` says so.
pub fn verify_with_python(secret: &str, previous_secret: Option<&str>, received: &Received) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/verify_webhook.py");
    let mut input = serde_json::json!({ "secret": secret, "headers": received.headers });
    match std::str::from_utf8(&received.body) {
        Ok(body) => input["body"] = body.into(),
        Err(_) => input["body_hex"] = received.body.iter().map(|b| format!("{b:02x}")).collect::<String>().into(),
    }
    if let Some(previous) = previous_secret {
        input["previous_secret"] = previous.into();
    }
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3, needed to verify webhook signatures independently: {e}"));
    {
        let mut stdin = child.stdin.take().expect("python3 stdin");
        stdin.write_all(input.to_string().as_bytes()).expect("write to verify_webhook.py");
    }
    let output = child.wait_with_output().expect("wait for verify_webhook.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "verify_webhook.py gave no verdict ({}); stdout: {stdout}; stderr: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

#[tokio::test]
async fn receiver_records_requests_and_answers_as_scripted() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(503).with_header("Retry-After", "1"), Reply::status(200).with_body("ok")]);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let body = r#"{"event":"lead.created","n":1}"#;

    let mut answers = Vec::new();
    for _ in 0..3 {
        let res = client
            .post(receiver.url("/hooks/in?tenant=a"))
            .header("Content-Type", "application/json")
            .header("X-Test-Header", "Mixed Case")
            .body(body)
            .send()
            .await
            .expect("POST to the receiver");
        let retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        answers.push((res.status().as_u16(), retry_after, res.text().await.unwrap()));
    }
    assert_eq!(
        answers,
        vec![(503, Some("1".to_owned()), String::new()), (200, None, "ok".to_owned()), (200, None, String::new())]
    );

    receiver.set_default(Reply::status(410));
    let res = client.post(receiver.url("/gone")).body("x").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 410);

    let got = receiver.wait_for(4, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 4);
    let first = &got[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/hooks/in?tenant=a");
    assert_eq!(first.header("x-test-header"), Some("Mixed Case"));
    assert_eq!(first.headers.get("content-type").map(String::as_str), Some("application/json"));
    assert_eq!(first.body, Bytes::from(body));
    assert_eq!(first.json()["event"], "lead.created");
    assert!(got.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!((got[3].path.as_str(), &got[3].body[..]), ("/gone", &b"x"[..]));
    assert_eq!(receiver.received().len(), 4);
}

#[tokio::test]
async fn receiver_stops_and_restarts_on_the_same_port() {
    let receiver = Receiver::start().await;
    let url = receiver.url("/hook");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    assert_eq!(client.post(&url).body("one").send().await.unwrap().status().as_u16(), 200);
    assert_eq!(receiver.wait_for(1, Duration::from_secs(5)).await.len(), 1);

    let port = receiver.stop().await;
    let err = client.post(&url).body("two").send().await.expect_err("the receiver is down");
    assert!(err.is_connect(), "expected a connect error, got {err:?}");

    let receiver = Receiver::start_on(port).await;
    assert_eq!(receiver.port(), port);
    assert_eq!(receiver.url("/hook"), url);
    assert_eq!(client.post(&url).body("three").send().await.unwrap().status().as_u16(), 200);
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, Bytes::from("three"));
}

/// Signs a body the way the two documents describe, in Python with nothing but the standard
/// library, so that the round trip through the receiver and `verify_with_python` is checked.
fn sign_in_python(secret: &str, previous: &str, id: &str, body: &str) -> serde_json::Value {
    const SIGN: &str = r#"
import base64, hashlib, hmac, json, sys, time
a = json.load(sys.stdin)
ts = str(int(time.time()))
def std(secret):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, f"{a['id']}.{ts}.{a['body']}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()
def cg(secret):
    return hmac.new(secret.encode(), a["body"].encode(), hashlib.sha256).hexdigest()
print(json.dumps({
    "webhook-id": a["id"], "webhook-timestamp": ts,
    "webhook-signature": std(a["secret"]) + " " + std(a["previous"]),
    "x-chatgenius-signature": cg(a["secret"]), "x-chatgenius-signature-previous": cg(a["previous"]),
}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SIGN])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let input = serde_json::json!({ "secret": secret, "previous": previous, "id": id, "body": body });
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn python_verifier_accepts_a_signed_delivery_and_rejects_a_tampered_one() {
    use serde_json::json;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let previous = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let body = r#"{"type":"lead.created","data":{"name":"Zoë"}}"#;
    let signed = sign_in_python(secret, previous, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", body);

    let receiver = Receiver::start().await;
    let mut request = reqwest::Client::new().post(receiver.url("/hook")).body(body);
    for (name, value) in signed.as_object().unwrap() {
        request = request.header(name.as_str(), value.as_str().unwrap());
    }
    request.send().await.unwrap();
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;

    let flags = |v: &serde_json::Value| [v["chatgenius"].clone(), v["standard"].clone(), v["previous"].clone()];
    let verdict = verify_with_python(secret, Some(previous), &got[0]);
    assert_eq!(verdict, json!({ "chatgenius": true, "standard": true, "previous": true, "errors": [] }), "{verdict}");
    let verdict = verify_with_python(secret, None, &got[0]);
    assert_eq!(flags(&verdict), [json!(true), json!(true), json!(null)], "{verdict}");

    let mut tampered = got[0].clone();
    tampered.body = Bytes::from(body.replace("Zoë", "Zoe"));
    let verdict = verify_with_python(secret, Some(previous), &tampered);
    assert_eq!(flags(&verdict), [json!(false), json!(false), json!(false)], "{verdict}");

    let verdict = verify_with_python(previous, None, &got[0]);
    assert_eq!(verdict["chatgenius"], false, "{verdict}");
    assert_eq!(verdict["standard"], true, "the previous secret's signature is in webhook-signature too: {verdict}");
}
