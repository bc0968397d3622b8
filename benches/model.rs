//! The model brain's own cost: how much time frontdesk adds between an OpenAI-compatible model
//! streaming a reply and the visitor's widget showing it.
//!
//! ```text
//! cargo bench --bench model -- --url http://127.0.0.1:PORT --bot BOT_ID --model-listen 127.0.0.1:MPORT
//!     [--conversations 100] [--chunks 20] [--gap-ms 20] [--ttft-ms 50] [--ramp 0] [--pid SERVER_PID]
//! ```
//!
//! The benchmark is also the model: it serves `POST /v1/chat/completions` on `--model-listen`
//! (HTTP/1.1 keep-alive, chunked SSE, on a thread and runtime of its own), and the frontdesk
//! server under test is started with `OPENAI_BASE_URL=http://MPORT-address/v1` and
//! `FRONTDESK_MODEL` set. Every request is answered the same way: `--ttft-ms` after the request
//! is read, the first of `--chunks` content chunks, then one every `--gap-ms`, then a finish
//! chunk with usage and `data: [DONE]` right after the last. For each request it records when it
//! was read, when the first chunk was written and when the stream ended (`[DONE]` written).
//!
//! Then:
//!
//! 1. Opens `--conversations` widget sockets (`/ws/widget`, `hello` → `ready`), `--concurrency`
//!    at a time, and lets them settle for a second.
//! 2. Every widget sends one neutral question carrying its own token (`… (ref q<i>z)`), all at
//!    the same instant (`--ramp 0`, the default) or spread evenly over `--ramp` seconds. The
//!    model server finds the token in the request's last user message, which matches each model
//!    request to its conversation.
//! 3. Each widget reads until the `done` of the reply to its question (the `delta`s and `done`
//!    carry `reply_to`, the id the `ack` gave the question).
//!
//! Per conversation, all on the process's one monotonic clock:
//!
//! * first token added = widget's first `delta` − the model's first chunk written;
//! * whole reply added = widget's `done` − the model's stream end (`[DONE]` written);
//! * before the model = model request read − question sent (frontdesk's work before it calls the
//!   model: storing the question, the knowledge search, the prompt);
//! * round trip = `done` − question sent.
//!
//! With `--pid` it reads the server's VmRSS from /proc/PID/status: before the sockets, with them
//! open and idle, every 5 ms while the model streams (the peak, and the value when the most
//! streams were open at once), and after the last `done`; and the server's CPU over the
//! streaming window. Results print as a human-readable block and as `RESULT {json}` lines.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

#[path = "common/mod.rs"]
mod common;
use common::{percentile, proc_rss_kib, result, round1, round3, CpuMark};

type Ws = WebSocketStream<TcpStream>;

const USAGE: &str = "\
usage: model --url http://HOST:PORT --bot BOT_ID --model-listen HOST:PORT [options]

  --url URL            the frontdesk server's base URL (http://; the widgets use ws:// on it)
  --bot BOT_ID         the widget's bot
  --model-listen ADDR  where to serve the OpenAI-compatible model (the server's OPENAI_BASE_URL
                       must be http://ADDR/v1)
  --conversations N    concurrent conversations, one question each (default 100)
  --chunks N           content chunks per reply (default 20)
  --gap-ms MS          between chunks (default 20)
  --ttft-ms MS         request read → first chunk (default 50)
  --ramp S             spread the questions evenly over S seconds (default 0: all at once)
  --concurrency N      widget sockets being opened at once (default 200)
  --timeout S          seconds a conversation waits for its reply's done (default 120)
  --text TEXT          the question, before its token (default \"Is there parking near you?\")
  --pid PID            server process: its memory and CPU from /proc/PID";

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Clone, Debug)]
struct Opts {
    addr: String,
    bot: String,
    model_listen: String,
    conversations: usize,
    chunks: usize,
    gap: Duration,
    ttft: Duration,
    ramp: f64,
    concurrency: usize,
    timeout: Duration,
    text: String,
    pid: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let known = [
        "url",
        "bot",
        "model-listen",
        "conversations",
        "chunks",
        "gap-ms",
        "ttft-ms",
        "ramp",
        "concurrency",
        "timeout",
        "text",
        "pid",
    ];
    let mut flags: BTreeMap<&str, &str> = BTreeMap::new();
    let mut it = args.iter().map(String::as_str);
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--") else { return Err(format!("unexpected argument `{arg}`")) };
        if !known.contains(&name) {
            return Err(format!("unknown option `{arg}`"));
        }
        let Some(value) = it.next() else { return Err(format!("`{arg}` needs a value")) };
        flags.insert(name, value);
    }
    fn num<T: std::str::FromStr>(flags: &BTreeMap<&str, &str>, name: &str, default: T) -> Result<T, String> {
        match flags.get(name) {
            Some(v) => v.parse().map_err(|_| format!("`--{name} {v}` is not a valid number")),
            None => Ok(default),
        }
    }
    let base = flags.get("url").ok_or("`--url` is required")?.trim_end_matches('/');
    let Some(addr) = base.strip_prefix("http://") else { return Err(format!("`{base}`: give http://host:port")) };
    if addr.is_empty() || !addr.contains(':') || addr.contains('/') {
        return Err(format!("`{base}`: give http://host:port"));
    }
    let opts = Opts {
        addr: addr.to_string(),
        bot: flags.get("bot").ok_or("`--bot` is required")?.to_string(),
        model_listen: flags.get("model-listen").ok_or("`--model-listen` is required")?.to_string(),
        conversations: num(&flags, "conversations", 100)?,
        chunks: num(&flags, "chunks", 20)?,
        gap: Duration::from_millis(num(&flags, "gap-ms", 20)?),
        ttft: Duration::from_millis(num(&flags, "ttft-ms", 50)?),
        ramp: num(&flags, "ramp", 0.0)?,
        concurrency: num(&flags, "concurrency", 200usize)?.max(1),
        timeout: Duration::from_secs_f64(num(&flags, "timeout", 120.0)?),
        text: flags.get("text").map(|t| t.to_string()).unwrap_or_else(|| "Is there parking near you?".into()),
        pid: flags.get("pid").map(|p| p.to_string()),
    };
    if opts.conversations == 0 || opts.chunks == 0 {
        return Err("`--conversations` and `--chunks` must be at least 1".into());
    }
    if !(opts.ramp.is_finite() && opts.ramp >= 0.0) {
        return Err("`--ramp` must not be negative".into());
    }
    Ok(opts)
}

fn main() -> ExitCode {
    common::run_main("model", USAGE, |args| parse_args(args).map(Arc::new), run)
}

// ---------------------------------------------------------------------------------------------
// Statistics and /proc

/// p50 / p90 / p99 / max / mean in milliseconds, and n, of signed microsecond samples.
fn summary(samples_us: &mut [i64]) -> Value {
    samples_us.sort_unstable();
    let ms = |us: i64| round3(us as f64 / 1e3);
    let mean =
        if samples_us.is_empty() { 0.0 } else { samples_us.iter().sum::<i64>() as f64 / samples_us.len() as f64 / 1e3 };
    json!({
        "p50": ms(percentile(samples_us, 0.50)),
        "p90": ms(percentile(samples_us, 0.90)),
        "p99": ms(percentile(samples_us, 0.99)),
        "max": ms(samples_us.last().copied().unwrap_or(0)),
        "min": ms(samples_us.first().copied().unwrap_or(0)),
        "mean": round3(mean),
        "n": samples_us.len(),
    })
}

fn fmt_summary(v: &Value) -> String {
    format!(
        "p50 {} ms, p90 {} ms, p99 {} ms, max {} ms (min {}, mean {}, n={})",
        v["p50"], v["p90"], v["p99"], v["max"], v["min"], v["mean"], v["n"]
    )
}

fn signed_us(from: Instant, to: Instant) -> i64 {
    if to >= from {
        to.duration_since(from).as_micros() as i64
    } else {
        -(from.duration_since(to).as_micros() as i64)
    }
}

// ---------------------------------------------------------------------------------------------
// The model

/// What the model server saw of one conversation's request.
#[derive(Clone, Copy, Debug)]
struct Served {
    read: Instant,
    first: Option<Instant>,
    end: Option<Instant>,
}

#[derive(Default)]
struct ModelLog {
    by_conv: HashMap<u32, Served>,
    /// Requests without a token, or a token seen twice (a retry).
    unmatched: u64,
    repeated: u64,
    abandoned: u64,
}

struct ModelState {
    log: Mutex<ModelLog>,
    /// Streams open right now, and the most at once.
    active: AtomicUsize,
    peak: AtomicUsize,
    chunks: usize,
    gap: Duration,
    ttft: Duration,
}

/// The reply's content pieces, the same for every request.
fn pieces(chunks: usize) -> Vec<String> {
    (0..chunks).map(|i| format!("w{i:02} ")).collect()
}

fn reply_text(chunks: usize) -> String {
    pieces(chunks).concat()
}

/// The conversation's token in the request's last user message: `(ref q<i>z)`.
fn token_of(body: &Value) -> Option<u32> {
    let messages = body["messages"].as_array()?;
    let last = messages.iter().rev().find(|m| m["role"] == "user")?;
    let text = last["content"].as_str()?;
    let start = text.rfind("(ref q")? + "(ref q".len();
    let end = start + text[start..].find('z')?;
    text[start..end].parse().ok()
}

/// Reads one request (head and content-length body) from `buf` + the socket; the body, and
/// leaves what followed in `buf`. `None` when the client closed.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let body = buf[end + 4..end + 4 + length].to_vec();
                buf.drain(..end + 4 + length);
                return Some(body);
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One HTTP/1.1 chunk of `data`.
fn http_chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

fn sse(delta: Value, finish: Value) -> String {
    let chunk = json!({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "bench-model",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    });
    format!("data: {chunk}\n\n")
}

/// Streams the reply; the instants of the first chunk and of the end, or `None` if the client
/// went away.
async fn stream_reply(stream: &mut TcpStream, state: &ModelState) -> Option<(Instant, Instant)> {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                transfer-encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.ok()?;
    sleep(state.ttft).await;
    let mut first = None;
    for (i, piece) in pieces(state.chunks).into_iter().enumerate() {
        if i > 0 {
            sleep(state.gap).await;
        }
        let role = if i == 0 { json!({ "role": "assistant", "content": piece }) } else { json!({ "content": piece }) };
        stream.write_all(http_chunk(&sse(role, Value::Null)).as_bytes()).await.ok()?;
        first.get_or_insert_with(Instant::now);
    }
    let usage = json!({ "prompt_tokens": 300, "completion_tokens": state.chunks, "total_tokens": 300 + state.chunks });
    // The finish, then usage with no choices (as OpenAI sends it), then the end of the stream.
    let usage_chunk = json!({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "bench-model",
        "choices": [], "usage": usage,
    });
    let tail = format!(
        "{}{}0\r\n\r\n",
        http_chunk(&sse(json!({}), json!("stop"))),
        http_chunk(&format!("data: {usage_chunk}\n\ndata: [DONE]\n\n")),
    );
    stream.write_all(tail.as_bytes()).await.ok()?;
    Some((first?, Instant::now()))
}

async fn model_connection(mut stream: TcpStream, state: Arc<ModelState>) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    while let Some(body) = read_request(&mut stream, &mut buf).await {
        let read = Instant::now();
        let conv = serde_json::from_slice::<Value>(&body).ok().as_ref().and_then(token_of);
        {
            let mut log = state.log.lock().unwrap_or_else(|p| p.into_inner());
            match conv {
                None => log.unmatched += 1,
                Some(c) => {
                    if log.by_conv.insert(c, Served { read, first: None, end: None }).is_some() {
                        log.repeated += 1;
                    }
                }
            }
        }
        let now_active = state.active.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak.fetch_max(now_active, Ordering::SeqCst);
        let streamed = stream_reply(&mut stream, &state).await;
        state.active.fetch_sub(1, Ordering::SeqCst);
        let mut log = state.log.lock().unwrap_or_else(|p| p.into_inner());
        match (streamed, conv) {
            (Some((first, end)), Some(c)) => {
                if let Some(served) = log.by_conv.get_mut(&c) {
                    served.first = Some(first);
                    served.end = Some(end);
                }
            }
            (None, _) => {
                log.abandoned += 1;
                return;
            }
            _ => {}
        }
    }
}

/// Serves the model on its own thread and runtime, so its timestamps do not wait behind the
/// widgets' frames in the benchmark's main loop.
fn start_model(listener: std::net::TcpListener, state: Arc<ModelState>) -> Result<(), String> {
    listener.set_nonblocking(true).map_err(|e| format!("model listener: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("model runtime: {e}"))?;
    std::thread::Builder::new()
        .name("model".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else { return };
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(model_connection(stream, state.clone()));
                }
            })
        })
        .map_err(|e| format!("model thread: {e}"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The widgets

fn ws_config() -> WebSocketConfig {
    WebSocketConfig { write_buffer_size: 0, max_write_buffer_size: 64 * 1024, ..Default::default() }
}

async fn open_widget(opts: &Opts) -> Result<Ws, String> {
    let tcp = TcpStream::connect(&opts.addr).await.map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    let url = format!("ws://{}/ws/widget", opts.addr);
    let (mut ws, _) = client_async_with_config(url.as_str(), tcp, Some(ws_config()))
        .await
        .map_err(|e| format!("handshake: {}", e.to_string().chars().take(80).collect::<String>()))?;
    let hello = json!({"type": "hello", "bot_id": opts.bot}).to_string();
    ws.send(Message::Text(hello)).await.map_err(|e| format!("send hello: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Frame = serde_json::from_str(&text).map_err(|_| "unreadable frame before ready")?;
                match frame.kind.as_str() {
                    "ready" => return Ok(ws),
                    "error" => return Err(format!("hello refused: {}", frame.error.unwrap_or_default())),
                    _ => {}
                }
            }
            Some(Ok(Message::Close(_))) | None => return Err("closed before ready".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("read before ready: {e}")),
        }
    }
}

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    reply_to: Option<i64>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    message: Option<FrameMessage>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct FrameMessage {
    id: i64,
    #[serde(default)]
    reply_to: Option<i64>,
    #[serde(default)]
    content: String,
    #[serde(default)]
    metadata: Option<Value>,
}

/// One conversation, as its widget saw it.
#[derive(Default)]
struct Seen {
    sent: Option<Instant>,
    ack: Option<Instant>,
    first_delta: Option<Instant>,
    done: Option<Instant>,
    deltas: usize,
    text: String,
    content: String,
    fallback: bool,
    error: Option<String>,
}

async fn conversation(mut ws: Ws, index: u32, opts: Arc<Opts>, mut go: watch::Receiver<Option<Instant>>) -> Seen {
    let mut seen = Seen::default();
    // Read (the welcome, anything else) until the start.
    let t0 = loop {
        tokio::select! {
            changed = go.changed() => {
                if changed.is_err() {
                    seen.error = Some("no start".into());
                    return seen;
                }
                if let Some(t0) = *go.borrow() {
                    break t0;
                }
            }
            frame = ws.next() => if !matches!(frame, Some(Ok(_))) {
                seen.error = Some("closed before the question".into());
                return seen;
            },
        }
    };
    let due = t0 + Duration::from_secs_f64(opts.ramp * f64::from(index) / opts.conversations as f64);
    sleep_until(due).await;
    let question = json!({
        "type": "message",
        "client_msg_id": format!("q{index}"),
        "text": format!("{} (ref q{index}z)", opts.text),
    })
    .to_string();
    seen.sent = Some(Instant::now());
    if let Err(e) = ws.send(Message::Text(question)).await {
        seen.error = Some(format!("send: {e}"));
        return seen;
    }
    let mut question_id: Option<i64> = None;
    let deadline = Instant::now() + opts.timeout;
    loop {
        let text = match timeout(deadline.saturating_duration_since(Instant::now()), ws.next()).await {
            Err(_) => {
                seen.error = Some("no done in time".into());
                break;
            }
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) => {
                seen.error = Some("closed by the server".into());
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => {
                seen.error = Some(format!("read: {e}"));
                break;
            }
        };
        let now = Instant::now();
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
        let asked = question_id;
        let ours = |reply_to: Option<i64>| reply_to.is_some() && (asked.is_none() || reply_to == asked);
        match frame.kind.as_str() {
            "ack" => {
                seen.ack.get_or_insert(now);
                question_id = frame.message.map(|m| m.id);
            }
            "delta" if ours(frame.reply_to) => {
                seen.first_delta.get_or_insert(now);
                seen.deltas += 1;
                seen.text.push_str(frame.text.as_deref().unwrap_or(""));
            }
            "done" => {
                let Some(message) = frame.message else { continue };
                if !ours(message.reply_to) {
                    continue;
                }
                seen.done = Some(now);
                seen.content = message.content;
                seen.fallback = message.metadata.as_ref().is_some_and(|m| m["model"]["fallback"] == true);
                break;
            }
            "error" => {
                seen.error = Some(format!("error frame: {}", frame.error.unwrap_or_default()));
                break;
            }
            _ => {}
        }
    }
    let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
    seen
}

// ---------------------------------------------------------------------------------------------
// The run

/// Samples the server's VmRSS every 5 ms on a thread of its own, with the model's open streams.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(u64, usize)>>,
}

impl Sampler {
    fn start(pid: String, state: Arc<ModelState>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_ = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop_.load(Ordering::Relaxed) {
                if let Some(rss) = proc_rss_kib(&pid) {
                    samples.push((rss, state.active.load(Ordering::Relaxed)));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            samples
        });
        Self { stop, handle }
    }

    fn finish(self) -> Vec<(u64, usize)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

async fn run(opts: Arc<Opts>) -> Result<(), String> {
    let listener =
        std::net::TcpListener::bind(&opts.model_listen).map_err(|e| format!("bind {}: {e}", opts.model_listen))?;
    let state = Arc::new(ModelState {
        log: Mutex::default(),
        active: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
        chunks: opts.chunks,
        gap: opts.gap,
        ttft: opts.ttft,
    });
    start_model(listener, state.clone())?;
    let pid = opts.pid.as_deref();
    let rss_before = pid.and_then(proc_rss_kib);
    let n = opts.conversations;
    eprintln!(
        "model: {n} conversations; the model answers {} chunks, first after {:?}, then every {:?}; ramp {} s",
        opts.chunks, opts.ttft, opts.gap, opts.ramp
    );

    // Open the widgets.
    let opened_at = Instant::now();
    let gate = Arc::new(Semaphore::new(opts.concurrency));
    let mut opening = Vec::with_capacity(n);
    for _ in 0..n {
        let (opts, gate) = (opts.clone(), gate.clone());
        opening.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.map_err(|_| "closed".to_string())?;
            timeout(Duration::from_secs(60), open_widget(&opts)).await.map_err(|_| "open timed out".to_string())?
        }));
    }
    let (go_tx, go_rx) = watch::channel(None);
    let mut open_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut tasks = Vec::with_capacity(n);
    for (i, handle) in opening.into_iter().enumerate() {
        match handle.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(ws) => tasks.push(tokio::spawn(conversation(ws, i as u32, opts.clone(), go_rx.clone()))),
            Err(e) => *open_errors.entry(e).or_default() += 1,
        }
    }
    let open_secs = opened_at.elapsed().as_secs_f64();
    eprintln!("model: {} widgets open in {:.2} s ({} failed)", tasks.len(), open_secs, n - tasks.len());
    sleep(Duration::from_secs(1)).await;
    let rss_idle = pid.and_then(proc_rss_kib);

    // The questions.
    let sampler = pid.map(|p| Sampler::start(p.to_string(), state.clone()));
    let cpu_before = CpuMark::now(pid);
    let t0 = Instant::now() + Duration::from_millis(20);
    let _ = go_tx.send(Some(t0));
    let mut seen = Vec::with_capacity(tasks.len());
    for task in tasks {
        seen.push(task.await.unwrap_or_else(|e| Seen { error: Some(format!("task: {e}")), ..Seen::default() }));
    }
    let cpu_after = CpuMark::now(pid);
    let window = cpu_after.at.duration_since(cpu_before.at).as_secs_f64();
    let samples = sampler.map(Sampler::finish).unwrap_or_default();
    sleep(Duration::from_millis(500)).await;
    let rss_after = pid.and_then(proc_rss_kib);

    // Match and measure.
    let log = std::mem::take(&mut *state.log.lock().unwrap_or_else(|p| p.into_inner()));
    let expected = reply_text(opts.chunks);
    let (mut first_added, mut done_added, mut before_model, mut round_trip, mut ack) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let (mut fallbacks, mut wrong_text, mut deltas, mut unmatched_conv) = (0u64, 0u64, 0usize, 0u64);
    for (i, s) in seen.iter().enumerate() {
        if let Some(e) = &s.error {
            *errors.entry(e.clone()).or_default() += 1;
        }
        if s.fallback {
            fallbacks += 1;
        }
        let Some(sent) = s.sent else { continue };
        if let Some(a) = s.ack {
            ack.push(signed_us(sent, a));
        }
        if let Some(done) = s.done {
            round_trip.push(signed_us(sent, done));
            deltas += s.deltas;
            if s.text != expected || s.content.trim() != expected.trim() {
                wrong_text += 1;
            }
        }
        let Some(served) = log.by_conv.get(&(i as u32)) else {
            unmatched_conv += 1;
            continue;
        };
        before_model.push(signed_us(sent, served.read));
        if let (Some(first), Some(delta)) = (served.first, s.first_delta) {
            first_added.push(signed_us(first, delta));
        }
        if let (Some(end), Some(done)) = (served.end, s.done) {
            done_added.push(signed_us(end, done));
        }
    }
    let completed = round_trip.len();
    let peak_streams = state.peak.load(Ordering::SeqCst);
    let rss_peak = samples.iter().filter(|(_, active)| *active > 0).map(|(rss, _)| *rss).max();
    let most_active = samples.iter().map(|(_, a)| *a).max().unwrap_or(0);
    let rss_at_most = samples.iter().filter(|(_, a)| *a == most_active && most_active > 0).map(|(r, _)| *r).max();
    let per_conv = |a: Option<u64>, b: Option<u64>, count: usize| -> Option<f64> {
        (count > 0)
            .then(|| round1(a.unwrap_or(0).saturating_sub(b.unwrap_or(0)) as f64 / count as f64))
            .filter(|_| a.is_some() && b.is_some())
    };
    let first = summary(&mut first_added);
    let done = summary(&mut done_added);
    let before = summary(&mut before_model);
    let trip = summary(&mut round_trip);
    let acks = summary(&mut ack);
    let (server_cpu, client_cpu) = cpu_after.since(&cpu_before);

    println!("\n== model brain: {n} conversations, one question each ({} s ramp) ==", opts.ramp);
    println!("  widgets open: {} of {n} in {:.2} s", seen.len(), open_secs);
    println!("  replies done: {completed} (model fallbacks {fallbacks}, wrong text {wrong_text}, errors {errors:?})");
    println!(
        "  model requests: {} matched, {} unmatched, {} repeated, {} abandoned; most streams at once {peak_streams}",
        log.by_conv.len(),
        log.unmatched,
        log.repeated,
        log.abandoned
    );
    println!("  added to the first token (widget's first delta − model's first chunk): {}", fmt_summary(&first));
    println!("  added to the whole reply (widget's done − model's [DONE]):           {}", fmt_summary(&done));
    println!("  before the model (question sent → model request read):               {}", fmt_summary(&before));
    println!("  question sent → ack:                                                 {}", fmt_summary(&acks));
    println!("  round trip (question sent → done):                                   {}", fmt_summary(&trip));
    println!(
        "  deltas per reply: {:.2} (the model sent {})",
        if completed > 0 { deltas as f64 / completed as f64 } else { 0.0 },
        opts.chunks
    );
    println!(
        "  server RSS: before {rss_before:?} KiB, widgets idle {rss_idle:?} KiB, peak while streaming {rss_peak:?} KiB \
         ({rss_at_most:?} KiB with {most_active} streams open), after {rss_after:?} KiB"
    );
    println!(
        "  per conversation: streaming adds {:?} KiB over idle, {:?} KiB over before; server CPU {server_cpu:?} %, \
         benchmark CPU {client_cpu:?} % over {window:.2} s",
        per_conv(rss_peak, rss_idle, n),
        per_conv(rss_peak, rss_before, n),
    );
    result(
        "stream",
        json!({
            "conversations": n,
            "opened": seen.len(),
            "open_failures": open_errors,
            "completed": completed,
            "fallbacks": fallbacks,
            "wrong_text": wrong_text,
            "errors": errors,
            "unmatched_conversations": unmatched_conv,
            "model": {
                "chunks": opts.chunks, "gap_ms": opts.gap.as_millis() as u64, "ttft_ms": opts.ttft.as_millis() as u64,
                "requests_matched": log.by_conv.len(), "requests_unmatched": log.unmatched,
                "requests_repeated": log.repeated, "abandoned": log.abandoned, "peak_streams": peak_streams,
            },
            "ramp_s": opts.ramp,
            "first_token_added_ms": first,
            "reply_added_ms": done,
            "before_model_ms": before,
            "ack_ms": acks,
            "round_trip_ms": trip,
            "deltas_per_reply": if completed > 0 { round3(deltas as f64 / completed as f64) } else { 0.0 },
            "rss_kib": {
                "before": rss_before, "idle": rss_idle, "peak_streaming": rss_peak,
                "at_most_streams": rss_at_most, "most_streams_sampled": most_active, "after": rss_after,
                "samples": samples.len(),
            },
            "kib_per_conversation": {
                "streaming_over_idle": per_conv(rss_peak, rss_idle, n),
                "streaming_over_before": per_conv(rss_peak, rss_before, n),
                "idle_over_before": per_conv(rss_idle, rss_before, n),
            },
            "server_cpu_pct": server_cpu,
            "bench_cpu_pct": client_cpu,
            "window_s": round3(window),
        }),
    );
    Ok(())
}
