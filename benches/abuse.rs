//! Hardening benchmark: what abusive clients cost the server (memory, CPU, open files, temporary
//! files), and what a well-behaved visitor notices meanwhile.
//!
//! ```text
//! cargo bench --bench abuse -- SCENARIO --url http://127.0.0.1:PORT --key API_KEY [--bot BOT_ID]
//!     [--pid SERVER_PID] [--data-dir DIR] [--count N] [--secs 30] [--baseline 5] [--settle 5]
//! ```
//!
//! Against a running server (its base URL and an API key of the workspace; the bot is the
//! workspace's first unless `--bot` names one). One scenario per run, on a fresh server
//! (`benches/run_abuse.sh`):
//!
//! * `hello-flood`: `--count` (2,000) widget sockets from this one address, `--concurrency` at a
//!   time, each sending `hello` without a conversation id, so each asks for a new conversation.
//!   Counted: `ready`, `error` frames (by text), sockets closed before an answer, refused at the
//!   upgrade (by HTTP status), no answer. Every socket the server keeps open is held (and read)
//!   until the window ends. The conversations of the workspace are counted over REST before and
//!   after.
//! * `slow-readers`: `--count` (500) conversations made over REST, each joined by a widget socket
//!   (`hello` with its id) that then never reads again: it sends `--messages` visitor messages of
//!   `--text-chars` characters (`--slow-rate` messages/s over all sockets), whose acks, echoes and
//!   replies pile up towards a reader that never comes, and holds the socket until the window ends.
//! * `stalled-uploads`: `--count` (300) raw TCP requests to `POST /api/files` (the knowledge
//!   upload) that send their headers, a multipart part header and `--sent-bytes` of a declared
//!   `--declared-bytes`, then stall. Counted: when the server answered (and with what status) or
//!   closed the connection; the rest stay open until the window ends and are then dropped.
//!
//! Throughout, a well-behaved visitor: `--well-conversations` (10) conversations, made over REST
//! and joined by a widget socket each before anything is measured, sending
//! `--well-rate` (5) messages/s in all on an open-loop schedule, each timed from the frame's
//! write to the bot's `done` for it (matched by `client_msg_id` → the ack's message id →
//! the reply's `reply_to`). The conversations the well-behaved visitor and the slow readers use
//! are made over REST so that admission control on new widget conversations (per address) only
//! meets the flood, which comes from the same address.
//!
//! The run has fixed phases: `--baseline` s of the well-behaved visitor alone, `--secs` s of
//! abuse (the window: every abusive connection is dropped at its end), `--settle` s after it,
//! then 3 s for late replies. Once a second the server's resident memory (`VmRSS`), open file
//! descriptors (`/proc/PID/fd`) and temporary upload files (`DATA_DIR/files/tmp`) are sampled;
//! CPU is measured per phase. Everything runs on one tokio thread so the benchmark can be pinned
//! to one core; the well-behaved visitor's round trip includes this process's own delays, so the
//! benchmark's CPU is reported too. Results print as a human-readable block and one
//! `RESULT {json}` line whose `phase` is the scenario.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::{sleep_until, timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

#[path = "common/mod.rs"]
mod common;
use common::{percentile, proc_rss_kib, result, round1, round3, widget_ready, Api, CpuMark};

type Ws = WebSocketStream<TcpStream>;

const USAGE: &str = "\
usage: abuse hello-flood|slow-readers|stalled-uploads --url http://HOST:PORT --key API_KEY [options]

  --url URL              the server's base URL (http:// only; sockets use ws:// on the same address)
  --key KEY              an API key of the workspace (Authorization: Bearer)
  --bot BOT_ID           the widget's bot (default: the workspace's first bot)
  --pid PID              server process: its memory, CPU and open files from /proc/PID
  --data-dir DIR         the server's data folder: count its temporary upload files (files/tmp)
  --count N              abusive connections (default 2000, 500 or 300 by scenario)
  --secs S               the abuse window in seconds (default 30)
  --baseline S           seconds of the well-behaved visitor alone before it (default 5)
  --settle S             seconds measured after the window (default 5)
  --concurrency N        abusive connections being opened at once (default 200)
  --answer-timeout S     hello-flood: seconds a socket waits for its answer to hello (default 10)
  --messages N           slow-readers: messages each slow socket sends (default 30)
  --slow-rate R          slow-readers: their messages per second over all sockets (default 500)
  --text-chars N         slow-readers: characters in each of their messages (default 4000)
  --declared-bytes N     stalled-uploads: the Content-Length each declares (default 1048576)
  --sent-bytes N         stalled-uploads: file bytes each sends before stalling (default 65536)
  --well-conversations N the well-behaved visitor's conversations (default 10)
  --well-rate R          its messages per second over them (default 5)
  --count-page N         page size when counting conversations over REST (default 40)";

/// Seconds left after the window for the well-behaved visitor's late replies.
const DRAIN_SECS: f64 = 3.0;

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    HelloFlood,
    SlowReaders,
    StalledUploads,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::HelloFlood => "hello-flood",
            Scenario::SlowReaders => "slow-readers",
            Scenario::StalledUploads => "stalled-uploads",
        }
    }

    fn default_count(self) -> usize {
        match self {
            Scenario::HelloFlood => 2000,
            Scenario::SlowReaders => 500,
            Scenario::StalledUploads => 300,
        }
    }
}

#[derive(Clone, Debug)]
struct Opts {
    scenario: Scenario,
    base: String,
    addr: String,
    key: String,
    bot: Option<String>,
    pid: Option<String>,
    data_dir: Option<PathBuf>,
    count: usize,
    secs: f64,
    baseline: f64,
    settle: f64,
    concurrency: usize,
    answer_timeout: Duration,
    messages: u32,
    slow_rate: f64,
    text_chars: usize,
    declared_bytes: u64,
    sent_bytes: u64,
    well_conversations: usize,
    well_rate: f64,
    count_page: usize,
}

type Flags<'a> = BTreeMap<&'a str, &'a str>;

fn num<T: std::str::FromStr>(flags: &Flags, name: &str, default: T) -> Result<T, String> {
    match flags.get(name) {
        Some(v) => v.parse().map_err(|_| format!("`--{name} {v}` is not a valid number")),
        None => Ok(default),
    }
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let known = [
        "url",
        "key",
        "bot",
        "pid",
        "data-dir",
        "count",
        "secs",
        "baseline",
        "settle",
        "concurrency",
        "answer-timeout",
        "messages",
        "slow-rate",
        "text-chars",
        "declared-bytes",
        "sent-bytes",
        "well-conversations",
        "well-rate",
        "count-page",
    ];
    let mut scenario = None;
    let mut flags = Flags::new();
    let mut it = args.iter().map(String::as_str);
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--") else {
            if scenario.is_some() {
                return Err(format!("unexpected argument `{arg}`"));
            }
            scenario = Some(match arg {
                "hello-flood" => Scenario::HelloFlood,
                "slow-readers" => Scenario::SlowReaders,
                "stalled-uploads" => Scenario::StalledUploads,
                other => return Err(format!("unknown scenario `{other}`")),
            });
            continue;
        };
        if !known.contains(&name) {
            return Err(format!("unknown option `{arg}`"));
        }
        let Some(value) = it.next() else { return Err(format!("`{arg}` needs a value")) };
        flags.insert(name, value);
    }
    let scenario = scenario.ok_or("name a scenario")?;
    let base = flags.get("url").ok_or("`--url` is required")?.trim_end_matches('/').to_string();
    let addr = match base.strip_prefix("http://") {
        Some(addr) if !addr.is_empty() && addr.contains(':') && !addr.contains('/') => addr.to_string(),
        _ => return Err(format!("`{base}`: give http://host:port")),
    };
    let opts = Opts {
        scenario,
        base,
        addr,
        key: flags.get("key").ok_or("`--key` is required")?.to_string(),
        bot: flags.get("bot").map(|b| b.to_string()),
        pid: flags.get("pid").map(|p| p.to_string()),
        data_dir: flags.get("data-dir").map(PathBuf::from),
        count: num(&flags, "count", scenario.default_count())?,
        secs: num(&flags, "secs", 30.0)?,
        baseline: num(&flags, "baseline", 5.0)?,
        settle: num(&flags, "settle", 5.0)?,
        concurrency: num(&flags, "concurrency", 200usize)?.max(1),
        answer_timeout: Duration::from_secs_f64(num(&flags, "answer-timeout", 10.0)?),
        messages: num(&flags, "messages", 30)?,
        slow_rate: num(&flags, "slow-rate", 500.0)?,
        text_chars: num(&flags, "text-chars", 4000)?,
        declared_bytes: num(&flags, "declared-bytes", 1 << 20)?,
        sent_bytes: num(&flags, "sent-bytes", 64 << 10)?,
        well_conversations: num(&flags, "well-conversations", 10)?,
        well_rate: num(&flags, "well-rate", 5.0)?,
        count_page: num(&flags, "count-page", 40usize)?.clamp(1, 200),
    };
    let positive = |x: f64| x.is_finite() && x > 0.0;
    let not_negative = |x: f64| x.is_finite() && x >= 0.0;
    if !positive(opts.secs) || !not_negative(opts.baseline) || !not_negative(opts.settle) {
        return Err("`--secs` must be positive, `--baseline` and `--settle` not negative".into());
    }
    if !positive(opts.slow_rate) || !positive(opts.well_rate) {
        return Err("`--slow-rate` and `--well-rate` must be positive".into());
    }
    if opts.count == 0 || opts.well_conversations == 0 {
        return Err("`--count` and `--well-conversations` must be at least 1".into());
    }
    // Each abusive connection is a socket here too; the count is what the issue names, kept
    // well under an open-file limit of 20,000.
    if opts.count > 10_000 {
        return Err("`--count` is at most 10000".into());
    }
    if opts.text_chars == 0 || opts.sent_bytes == 0 || opts.declared_bytes <= opts.sent_bytes + 1024 {
        return Err("`--text-chars` and `--sent-bytes` must be positive, `--declared-bytes` larger than the bytes sent plus 1024".into());
    }
    Ok(opts)
}

fn main() -> ExitCode {
    common::run_main("abuse", USAGE, |args| parse_args(args).map(Arc::new), run)
}

// ---------------------------------------------------------------------------------------------
// Statistics and /proc

/// p50 / p90 / p99 / max in milliseconds, and n, of microsecond samples.
fn summary(samples_us: &mut [u64]) -> Value {
    samples_us.sort_unstable();
    let ms = |us: u64| round3(us as f64 / 1e3);
    json!({
        "p50": ms(percentile(samples_us, 0.50)),
        "p90": ms(percentile(samples_us, 0.90)),
        "p99": ms(percentile(samples_us, 0.99)),
        "max": ms(samples_us.last().copied().unwrap_or(0)),
        "n": samples_us.len(),
    })
}

fn fmt_summary(v: &Value) -> String {
    format!("p50 {} ms, p90 {} ms, p99 {} ms, max {} ms (n={})", v["p50"], v["p90"], v["p99"], v["max"], v["n"])
}

fn us_between(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_micros().min(u128::from(u64::MAX)) as u64
}

/// Counts by kind; past 8 kinds the rest fold into `(other)`, so a run of varied errors stays
/// readable.
#[derive(Default)]
struct Tally(BTreeMap<String, u64>);

impl Tally {
    fn add(&mut self, kind: impl Into<String>) {
        let kind = kind.into();
        let kind = if self.0.len() < 8 || self.0.contains_key(&kind) { kind } else { "(other)".into() };
        *self.0.entry(kind).or_default() += 1;
    }

    fn get(&self, kind: &str) -> u64 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    fn json(&self) -> Value {
        json!(self.0)
    }
}

/// Open file descriptors of a process (sockets included).
fn proc_fds(pid: &str) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Temporary upload files in the server's data folder (0 when the folder has none yet).
fn temp_files(data_dir: &std::path::Path) -> u64 {
    std::fs::read_dir(data_dir.join("files").join("tmp")).map_or(0, |d| d.count() as u64)
}

/// One sample of the server: seconds since the start, RSS (KiB), open fds, temporary files.
#[derive(Clone, Copy, Default)]
struct Sample {
    at: f64,
    rss_kib: Option<u64>,
    fds: Option<u64>,
    tmp: Option<u64>,
}

fn sample(opts: &Opts, t0: Instant) -> Sample {
    Sample {
        at: Instant::now().saturating_duration_since(t0).as_secs_f64(),
        rss_kib: opts.pid.as_deref().and_then(proc_rss_kib),
        fds: opts.pid.as_deref().and_then(proc_fds),
        tmp: opts.data_dir.as_deref().map(temp_files),
    }
}

/// Samples the server once a second from `t0` until `end`.
async fn sampler(opts: Arc<Opts>, t0: Instant, end: Instant) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut next = t0;
    while next <= end {
        sleep_until(next).await;
        samples.push(sample(&opts, t0));
        next += Duration::from_secs(1);
    }
    samples
}

fn mib(kib: Option<u64>) -> Value {
    kib.map_or(Value::Null, |k| json!(round1(k as f64 / 1024.0)))
}

/// The fixed phases of a run, all planned before it starts.
#[derive(Clone, Copy)]
struct Plan {
    t0: Instant,
    abuse_start: Instant,
    abuse_end: Instant,
    send_end: Instant,
    stop: Instant,
}

impl Plan {
    fn new(opts: &Opts, t0: Instant) -> Self {
        let abuse_start = t0 + Duration::from_secs_f64(opts.baseline);
        let abuse_end = abuse_start + Duration::from_secs_f64(opts.secs);
        let send_end = abuse_end + Duration::from_secs_f64(opts.settle);
        Plan { t0, abuse_start, abuse_end, send_end, stop: send_end + Duration::from_secs_f64(DRAIN_SECS) }
    }

    fn secs(&self, at: Instant) -> f64 {
        round1(at.saturating_duration_since(self.t0).as_secs_f64())
    }
}

// ---------------------------------------------------------------------------------------------
// Sockets and REST

fn ws_config() -> WebSocketConfig {
    WebSocketConfig {
        write_buffer_size: 0,
        max_write_buffer_size: 64 * 1024,
        max_message_size: Some(1 << 20),
        max_frame_size: Some(1 << 20),
        ..Default::default()
    }
}

fn short_ws_error(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => format!("io {}", io.kind()),
        tungstenite::Error::Http(resp) => format!("http {}", resp.status().as_u16()),
        other => other.to_string().chars().take(80).collect(),
    }
}

/// Why a socket could not be opened: the connection, or the upgrade (with the HTTP status).
enum OpenError {
    Connect(String),
    Handshake(String),
}

async fn connect(addr: &str) -> Result<Ws, OpenError> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| OpenError::Connect(format!("connect: {}", e.kind())))?;
    let _ = tcp.set_nodelay(true);
    let url = format!("ws://{addr}/ws/widget");
    let (ws, _) = client_async_with_config(url.as_str(), tcp, Some(ws_config()))
        .await
        .map_err(|e| OpenError::Handshake(format!("upgrade refused: {}", short_ws_error(&e))))?;
    Ok(ws)
}

/// Reads until the server answers `hello`: `Ok(conversation id)` for `ready`, `Err` otherwise.
async fn await_ready(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                if let Some(ready) = widget_ready(&text) {
                    return ready;
                }
            }
            Some(Ok(Message::Close(_))) | None => return Err("closed before ready".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("read before ready: {}", short_ws_error(&e))),
        }
    }
}

/// A widget socket joined to an existing conversation (`hello` with its id, past its welcome).
async fn join(addr: &str, bot: &str, conversation: &str) -> Result<Ws, String> {
    let mut ws = connect(addr).await.map_err(|e| match e {
        OpenError::Connect(e) | OpenError::Handshake(e) => e,
    })?;
    let hello = json!({"type": "hello", "bot_id": bot, "conversation_id": conversation, "last_seq": 1}).to_string();
    ws.send(Message::Text(hello)).await.map_err(|e| format!("send hello: {}", short_ws_error(&e)))?;
    await_ready(&mut ws).await?;
    Ok(ws)
}

/// Makes `n` conversations of `bot` over REST, 20 requests at a time.
async fn create_conversations(api: &Api, bot: &str, n: usize) -> Result<Vec<String>, String> {
    let body = json!({ "bot_id": bot });
    let mut ids = Vec::with_capacity(n);
    let mut pending = futures_util::stream::iter(0..n)
        .map(|_| api.call(reqwest::Method::POST, "/api/conversations", Some(&body)))
        .buffer_unordered(20);
    while let Some(answer) = pending.next().await {
        let (status, conversation) = answer?;
        match conversation["id"].as_str() {
            Some(id) if status == 201 => ids.push(id.to_string()),
            _ => return Err(format!("POST /api/conversations answered {status}: {conversation}")),
        }
    }
    Ok(ids)
}

/// The workspace's conversations, counted page by page over `GET /api/conversations`.
async fn count_conversations(api: &Api, page: usize) -> Result<u64, String> {
    let mut total = 0u64;
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut path = format!("/api/conversations?limit={page}");
        if let Some(cursor) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&percent_encode(cursor));
        }
        let (status, answer) = api.call(reqwest::Method::GET, &path, None).await?;
        let Some(items) = answer["conversations"].as_array().filter(|_| status == 200) else {
            return Err(format!("GET {path} answered {status}: {answer}"));
        };
        total += items.len() as u64;
        match answer["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(total),
        }
    }
    Err("more than 10,000 pages of conversations".into())
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The well-behaved visitor

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    client_msg_id: Option<String>,
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
    client_msg_id: Option<String>,
}

/// One message of the well-behaved visitor: when it was written and when its reply was `done`.
struct WellSent {
    sent: Instant,
    done: Option<Instant>,
}

#[derive(Default)]
struct WellStats {
    sent: Vec<WellSent>,
    errors: Tally,
    disconnected: bool,
}

/// Conversation `index`'s part of the well-behaved load: its k-th message is due at
/// (index + k·conversations) / rate seconds after t0, until the settle phase ends.
async fn well_visitor(mut ws: Ws, opts: Arc<Opts>, index: usize, plan: Plan) -> WellStats {
    let mut stats = WellStats::default();
    let due = |k: usize| {
        plan.t0 + Duration::from_secs_f64((index as f64 + k as f64 * opts.well_conversations as f64) / opts.well_rate)
    };
    // Message id → index in `sent`, learned from the ack or the echo, whichever comes first;
    // replies that arrive before either wait in `early`.
    let mut ids: HashMap<i64, usize> = HashMap::new();
    let mut early: HashMap<i64, Instant> = HashMap::new();
    let text = "What are your opening hours?";
    let mut k = 0usize;
    loop {
        let sending = due(k) < plan.send_end;
        tokio::select! {
            biased;
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let now = Instant::now();
                    if text.starts_with(r#"{"type":"delta""#) {
                        continue;
                    }
                    let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
                        stats.errors.add("unreadable frame");
                        continue;
                    };
                    match frame.kind.as_str() {
                        "ack" | "message" => {
                            let Some(message) = frame.message else { continue };
                            let cid = frame.client_msg_id.or(message.client_msg_id);
                            let Some(i) = cid.as_deref().and_then(|c| c.strip_prefix(&format!("w{index}-"))).and_then(|n| n.parse::<usize>().ok()) else { continue };
                            if i < stats.sent.len() {
                                ids.insert(message.id, i);
                                if let Some(at) = early.remove(&message.id) {
                                    stats.sent[i].done.get_or_insert(at);
                                }
                            }
                        }
                        "done" => {
                            let Some(reply_to) = frame.message.and_then(|m| m.reply_to) else { continue };
                            match ids.get(&reply_to) {
                                Some(&i) => {
                                    stats.sent[i].done.get_or_insert(now);
                                }
                                None => {
                                    early.insert(reply_to, now);
                                }
                            }
                        }
                        "error" => stats.errors.add(format!("error frame: {}", frame.error.as_deref().unwrap_or("?"))),
                        "closed" => stats.errors.add("conversation closed"),
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | None => {
                    stats.errors.add("closed by the server");
                    stats.disconnected = true;
                    return stats;
                }
                Some(Err(e)) => {
                    stats.errors.add(format!("read: {}", short_ws_error(&e)));
                    stats.disconnected = true;
                    return stats;
                }
                Some(Ok(_)) => {}
            },
            _ = sleep_until(due(k)), if sending => {
                let frame = json!({"type": "message", "client_msg_id": format!("w{index}-{k}"), "text": text}).to_string();
                stats.sent.push(WellSent { sent: Instant::now(), done: None });
                if let Err(e) = ws.send(Message::Text(frame)).await {
                    stats.errors.add(format!("send: {}", short_ws_error(&e)));
                    stats.disconnected = true;
                    return stats;
                }
                k += 1;
            }
            _ = sleep_until(plan.stop) => break,
        }
    }
    let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
    stats
}

/// The well-behaved visitor's round trips by phase of their send time.
fn well_phases(stats: &[WellStats], plan: &Plan) -> Value {
    let phases = [
        ("baseline", plan.t0, plan.abuse_start),
        ("during", plan.abuse_start, plan.abuse_end),
        ("after", plan.abuse_end, plan.send_end),
    ];
    let mut out = serde_json::Map::new();
    for (name, from, to) in phases {
        let mut rtt = Vec::new();
        let mut unanswered = 0u64;
        for s in stats.iter().flat_map(|s| &s.sent).filter(|s| s.sent >= from && s.sent < to) {
            match s.done {
                Some(done) => rtt.push(us_between(s.sent, done)),
                None => unanswered += 1,
            }
        }
        let mut v = summary(&mut rtt);
        v["unanswered"] = json!(unanswered);
        out.insert(name.into(), v);
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// hello-flood

enum FloodAnswer {
    Ready,
    ErrorFrame(String),
    Closed,
    NoAnswer,
    Refused(String),
    NotConnected(String),
    /// The window ended before this socket got its turn.
    NotTried,
}

struct FloodReport {
    answer: FloodAnswer,
    /// hello written → its answer, µs.
    answer_us: Option<u64>,
    /// Answered and kept open, then closed by the server before the window ended.
    closed_later: bool,
}

async fn flood_socket(opts: Arc<Opts>, bot: Arc<str>, gate: Arc<Semaphore>, plan: Plan) -> FloodReport {
    let report = |answer, answer_us| FloodReport { answer, answer_us, closed_later: false };
    let Ok(Ok(permit)) = timeout_at(plan.abuse_end, gate.acquire()).await else {
        return report(FloodAnswer::NotTried, None);
    };
    let mut ws = match timeout_at(plan.abuse_end, connect(&opts.addr)).await {
        Err(_) => return report(FloodAnswer::NotConnected("connect timed out".into()), None),
        Ok(Err(OpenError::Connect(e))) => return report(FloodAnswer::NotConnected(e), None),
        Ok(Err(OpenError::Handshake(e))) => return report(FloodAnswer::Refused(e), None),
        Ok(Ok(ws)) => ws,
    };
    let hello = json!({"type": "hello", "bot_id": &*bot}).to_string();
    let sent = Instant::now();
    if ws.send(Message::Text(hello)).await.is_err() {
        return report(FloodAnswer::Closed, None);
    }
    let deadline = (sent + opts.answer_timeout).min(plan.abuse_end);
    let answer = match timeout_at(deadline, await_ready(&mut ws)).await {
        Err(_) => FloodAnswer::NoAnswer,
        Ok(Ok(_)) => FloodAnswer::Ready,
        Ok(Err(e)) if e.starts_with("hello refused: ") => {
            FloodAnswer::ErrorFrame(e["hello refused: ".len()..].to_string())
        }
        Ok(Err(e)) if e.starts_with("closed") || e.starts_with("read") => FloodAnswer::Closed,
        Ok(Err(e)) => FloodAnswer::ErrorFrame(e),
    };
    let answer_us = match answer {
        FloodAnswer::NoAnswer => None,
        _ => Some(us_between(sent, Instant::now())),
    };
    drop(permit);
    if matches!(answer, FloodAnswer::Closed) {
        return report(answer, answer_us);
    }
    // Hold what the server keeps open, reading (an attacker's socket costs it nothing to read).
    let mut closed_later = false;
    let _ = timeout_at(plan.abuse_end, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    closed_later = true;
                    return;
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    FloodReport { answer, answer_us, closed_later }
}

async fn hello_flood(opts: Arc<Opts>, bot: Arc<str>, plan: Plan) -> Value {
    sleep_until(plan.abuse_start).await;
    let gate = Arc::new(Semaphore::new(opts.concurrency));
    let tasks: Vec<_> =
        (0..opts.count).map(|_| tokio::spawn(flood_socket(opts.clone(), bot.clone(), gate.clone(), plan))).collect();
    let mut answers = Tally::default();
    let mut errors = Tally::default();
    let mut answer_us = Vec::new();
    let mut ready_us = Vec::new();
    let mut closed_later = 0u64;
    for task in tasks {
        let Ok(r) = task.await else {
            answers.add("benchmark task failed");
            continue;
        };
        if let Some(us) = r.answer_us {
            answer_us.push(us);
        }
        closed_later += u64::from(r.closed_later);
        match r.answer {
            FloodAnswer::Ready => {
                answers.add("ready");
                ready_us.extend(r.answer_us);
            }
            FloodAnswer::ErrorFrame(e) => {
                answers.add("error frame");
                errors.add(e);
            }
            FloodAnswer::Closed => answers.add("closed before an answer"),
            FloodAnswer::NoAnswer => answers.add("no answer in time"),
            FloodAnswer::Refused(e) => {
                answers.add("refused at the upgrade");
                errors.add(e);
            }
            FloodAnswer::NotConnected(e) => {
                answers.add("not connected");
                errors.add(e);
            }
            FloodAnswer::NotTried => answers.add("not tried before the window ended"),
        }
    }
    json!({
        "answers": answers.json(),
        "errors": errors.json(),
        "ready": answers.get("ready"),
        "closed_later_by_server": closed_later,
        "hello_to_answer": summary(&mut answer_us),
        "hello_to_ready": summary(&mut ready_us),
    })
}

// ---------------------------------------------------------------------------------------------
// slow-readers

#[derive(Default)]
struct SlowReport {
    joined: bool,
    join_error: Option<String>,
    sent: u32,
    /// A send that could not complete before the window ended (the server stopped reading).
    blocked: bool,
    send_error: Option<String>,
}

async fn slow_reader(
    opts: Arc<Opts>,
    bot: Arc<str>,
    conversation: String,
    index: usize,
    gate: Arc<Semaphore>,
    plan: Plan,
    text: Arc<str>,
) -> SlowReport {
    let mut report = SlowReport::default();
    let ws = {
        let Ok(Ok(_permit)) = timeout_at(plan.abuse_end, gate.acquire()).await else {
            report.join_error = Some("not tried before the window ended".into());
            return report;
        };
        match timeout_at(plan.abuse_end, join(&opts.addr, &bot, &conversation)).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                report.join_error = Some(e);
                return report;
            }
            Err(_) => {
                report.join_error = Some("join timed out".into());
                return report;
            }
        }
    };
    report.joined = true;
    // From here on nothing reads this socket: the read half is kept (so the connection stays
    // up) but never polled.
    let (mut sink, unread) = ws.split();
    let due = |k: u32| {
        plan.abuse_start + Duration::from_secs_f64((index as f64 + f64::from(k) * opts.count as f64) / opts.slow_rate)
    };
    for k in 0..opts.messages {
        if due(k) >= plan.abuse_end {
            break;
        }
        sleep_until(due(k)).await;
        let frame = json!({"type": "message", "client_msg_id": format!("s{index}-{k}"), "text": &*text}).to_string();
        match timeout_at(plan.abuse_end, sink.send(Message::Text(frame))).await {
            Ok(Ok(())) => report.sent += 1,
            Ok(Err(e)) => {
                report.send_error = Some(format!("send: {}", short_ws_error(&e)));
                break;
            }
            Err(_) => {
                report.blocked = true;
                break;
            }
        }
    }
    sleep_until(plan.abuse_end).await;
    drop((sink, unread));
    report
}

async fn slow_readers(opts: Arc<Opts>, bot: Arc<str>, conversations: Vec<String>, plan: Plan) -> Value {
    sleep_until(plan.abuse_start).await;
    let gate = Arc::new(Semaphore::new(opts.concurrency));
    let text: Arc<str> =
        "What are your opening hours? ".chars().cycle().take(opts.text_chars).collect::<String>().into();
    let tasks: Vec<_> = conversations
        .into_iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(slow_reader(opts.clone(), bot.clone(), c, i, gate.clone(), plan, text.clone())))
        .collect();
    let (mut joined, mut sent, mut blocked) = (0u64, 0u64, 0u64);
    let mut errors = Tally::default();
    for task in tasks {
        let Ok(r) = task.await else {
            errors.add("benchmark task failed");
            continue;
        };
        joined += u64::from(r.joined);
        sent += u64::from(r.sent);
        blocked += u64::from(r.blocked);
        if let Some(e) = r.join_error.or(r.send_error) {
            errors.add(e);
        }
    }
    json!({
        "joined": joined,
        "messages_sent": sent,
        "message_chars": opts.text_chars,
        "bytes_sent_approx": sent * opts.text_chars as u64,
        "sockets_blocked_sending": blocked,
        "errors": errors.json(),
    })
}

// ---------------------------------------------------------------------------------------------
// stalled-uploads

enum UploadEnd {
    /// The server answered (status) at this time.
    Answered(u16, Instant),
    /// The server closed or reset the connection without an answer.
    Closed(Instant),
    /// Still open when the window ended.
    Open,
    Failed(String),
}

struct UploadReport {
    stalled_at: Option<Instant>,
    end: UploadEnd,
}

async fn stalled_upload(opts: Arc<Opts>, index: usize, gate: Arc<Semaphore>, plan: Plan) -> UploadReport {
    let fail = |e: String| UploadReport { stalled_at: None, end: UploadEnd::Failed(e) };
    let mut tcp = {
        let Ok(Ok(_permit)) = timeout_at(plan.abuse_end, gate.acquire()).await else {
            return fail("not tried before the window ended".into());
        };
        let mut tcp = match timeout_at(plan.abuse_end, TcpStream::connect(&opts.addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return fail(format!("connect: {}", e.kind())),
            Err(_) => return fail("connect timed out".into()),
        };
        let boundary = "frontdesk-abuse-boundary";
        let body_head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"stalled-{index}.txt\"\r\nContent-Type: text/plain\r\n\r\n"
        );
        let head = format!(
            "POST /api/files HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n{body_head}",
            opts.addr, opts.key, opts.declared_bytes
        );
        let mut bytes = head.into_bytes();
        bytes.resize(bytes.len() + opts.sent_bytes as usize, b'a');
        // A failed write is no failure here: the server may already have answered (and closed),
        // and its answer is still read below.
        let _ = timeout_at(plan.abuse_end, tcp.write_all(&bytes)).await;
        tcp
    };
    let stalled_at = Some(Instant::now());
    let mut buf = vec![0u8; 4096];
    let mut answered: Option<(u16, Instant)> = None;
    let end = loop {
        match timeout_at(plan.abuse_end, tcp.read(&mut buf)).await {
            Err(_) => break answered.map_or(UploadEnd::Open, |(s, at)| UploadEnd::Answered(s, at)),
            Ok(Ok(0)) | Ok(Err(_)) => {
                break answered.map_or_else(|| UploadEnd::Closed(Instant::now()), |(s, at)| UploadEnd::Answered(s, at))
            }
            Ok(Ok(n)) => {
                if answered.is_none() {
                    let status = std::str::from_utf8(&buf[..n.min(12)])
                        .ok()
                        .and_then(|line| line.strip_prefix("HTTP/1.1 "))
                        .and_then(|rest| rest.get(..3))
                        .and_then(|code| code.parse().ok())
                        .unwrap_or(0);
                    answered = Some((status, Instant::now()));
                }
            }
        }
    };
    UploadReport { stalled_at, end }
}

async fn stalled_uploads(opts: Arc<Opts>, plan: Plan) -> Value {
    sleep_until(plan.abuse_start).await;
    let gate = Arc::new(Semaphore::new(opts.concurrency));
    let tasks: Vec<_> =
        (0..opts.count).map(|i| tokio::spawn(stalled_upload(opts.clone(), i, gate.clone(), plan))).collect();
    let mut ends = Tally::default();
    let mut statuses = Tally::default();
    let mut errors = Tally::default();
    let mut answered_after_us = Vec::new();
    let mut closed_after_us = Vec::new();
    for task in tasks {
        let Ok(r) = task.await else {
            errors.add("benchmark task failed");
            continue;
        };
        match r.end {
            UploadEnd::Answered(status, at) => {
                ends.add("answered");
                statuses.add(status.to_string());
                answered_after_us.extend(r.stalled_at.map(|s| us_between(s, at)));
            }
            UploadEnd::Closed(at) => {
                ends.add("closed without an answer");
                closed_after_us.extend(r.stalled_at.map(|s| us_between(s, at)));
            }
            UploadEnd::Open => ends.add("still open at the window's end"),
            UploadEnd::Failed(e) => {
                ends.add("not sent");
                errors.add(e);
            }
        }
    }
    json!({
        "ends": ends.json(),
        "statuses": statuses.json(),
        "errors": errors.json(),
        "still_open_at_end": ends.get("still open at the window's end"),
        "stall_to_answer": summary(&mut answered_after_us),
        "stall_to_close": summary(&mut closed_after_us),
        "declared_bytes": opts.declared_bytes,
        "sent_bytes": opts.sent_bytes,
    })
}

// ---------------------------------------------------------------------------------------------
// The run

async fn run(opts: Arc<Opts>) -> Result<(), String> {
    let api = Api {
        client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().map_err(|e| e.to_string())?,
        base: opts.base.clone(),
        key: opts.key.clone(),
    };
    let bot: Arc<str> = match &opts.bot {
        Some(bot) => bot.as_str().into(),
        None => {
            let (status, bots) = api.call(reqwest::Method::GET, "/api/bots", None).await?;
            match (status, bots["data"][0]["id"].as_str()) {
                (200, Some(id)) => id.into(),
                _ => return Err(format!("GET /api/bots answered {status}: {bots}")),
            }
        }
    };
    let scenario = opts.scenario;
    println!(
        "## {}: {} abusive connections for {} s (well-behaved: {} conversations, {} msg/s)",
        scenario.name(),
        opts.count,
        opts.secs,
        opts.well_conversations,
        opts.well_rate
    );

    // Set up before anything is measured: the well-behaved visitor's sockets, and the slow
    // readers' conversations.
    let well_ids = create_conversations(&api, &bot, opts.well_conversations).await?;
    let mut well_sockets = Vec::with_capacity(well_ids.len());
    for id in &well_ids {
        well_sockets.push(join(&opts.addr, &bot, id).await.map_err(|e| format!("well-behaved visitor: {e}"))?);
    }
    let slow_ids = if scenario == Scenario::SlowReaders {
        create_conversations(&api, &bot, opts.count).await?
    } else {
        Vec::new()
    };
    let conversations_before =
        if scenario == Scenario::HelloFlood { Some(count_conversations(&api, opts.count_page).await?) } else { None };

    let plan = Plan::new(&opts, Instant::now() + Duration::from_millis(200));
    let samples = tokio::spawn(sampler(opts.clone(), plan.t0, plan.stop));
    let well: Vec<_> = well_sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| tokio::spawn(well_visitor(ws, opts.clone(), i, plan)))
        .collect();
    let abuse = match scenario {
        Scenario::HelloFlood => tokio::spawn(hello_flood(opts.clone(), bot.clone(), plan)),
        Scenario::SlowReaders => tokio::spawn(slow_readers(opts.clone(), bot.clone(), slow_ids, plan)),
        Scenario::StalledUploads => tokio::spawn(stalled_uploads(opts.clone(), plan)),
    };
    sleep_until(plan.t0).await;
    let cpu_t0 = CpuMark::now(opts.pid.as_deref());
    sleep_until(plan.abuse_start).await;
    let cpu_start = CpuMark::now(opts.pid.as_deref());
    sleep_until(plan.abuse_end).await;
    let cpu_end = CpuMark::now(opts.pid.as_deref());
    let at_end = sample(&opts, plan.t0);
    sleep_until(plan.send_end).await;
    let cpu_after = CpuMark::now(opts.pid.as_deref());
    let at_after = sample(&opts, plan.t0);
    let abuse = abuse.await.map_err(|e| format!("the abuse task failed: {e}"))?;
    let mut well_stats = Vec::with_capacity(well.len());
    for task in well {
        well_stats.push(task.await.map_err(|e| format!("a well-behaved visitor failed: {e}"))?);
    }
    let samples = samples.await.map_err(|e| format!("the sampler failed: {e}"))?;
    let conversations_after = match conversations_before {
        Some(_) => Some(count_conversations(&api, opts.count_page).await?),
        None => None,
    };

    // Server figures per phase: the last sample before the abuse, the peak during the window
    // (to its end), the window's end, and the end of the settle phase.
    let start_secs = plan.secs(plan.abuse_start);
    let end_secs = plan.secs(plan.abuse_end);
    let baseline = samples.iter().rfind(|s| s.at < start_secs).copied().unwrap_or_default();
    let window: Vec<Sample> =
        samples.iter().filter(|s| s.at >= start_secs && s.at <= end_secs + 0.5).copied().collect();
    let peak = |f: fn(&Sample) -> Option<u64>| window.iter().filter_map(f).max().or(f(&at_end));
    let (cpu_base, client_base) = cpu_start.since(&cpu_t0);
    let (cpu_during, client_during) = cpu_end.since(&cpu_start);
    let (cpu_settle, client_settle) = cpu_after.since(&cpu_end);
    let well = well_phases(&well_stats, &plan);
    let mut well_errors = Tally::default();
    for s in &well_stats {
        for (kind, n) in &s.errors.0 {
            for _ in 0..*n {
                well_errors.add(kind.clone());
            }
        }
    }
    let well_disconnected = well_stats.iter().filter(|s| s.disconnected).count();
    let server = json!({
        "rss_mib": {"baseline": mib(baseline.rss_kib), "peak": mib(peak(|s| s.rss_kib)), "window_end": mib(at_end.rss_kib), "after": mib(at_after.rss_kib)},
        "fds": {"baseline": baseline.fds, "peak": peak(|s| s.fds), "window_end": at_end.fds, "after": at_after.fds},
        "tmp_files": {"baseline": baseline.tmp, "peak": peak(|s| s.tmp), "window_end": at_end.tmp, "after": at_after.tmp},
        "cpu_pct": {"baseline": cpu_base, "during": cpu_during, "after": cpu_settle},
    });
    let timeline: Vec<Value> = samples.iter().map(|s| json!([round1(s.at), mib(s.rss_kib), s.fds, s.tmp])).collect();

    println!("## server (pid {})", opts.pid.as_deref().unwrap_or("?"));
    let show = |v: &Value| if v.is_null() { "?".to_string() } else { v.to_string() };
    println!(
        "   RSS MiB      before {}, peak {}, window end {}, {} s after {}",
        show(&server["rss_mib"]["baseline"]),
        show(&server["rss_mib"]["peak"]),
        show(&server["rss_mib"]["window_end"]),
        opts.settle,
        show(&server["rss_mib"]["after"])
    );
    println!(
        "   open fds     before {}, peak {}, window end {}, after {}",
        show(&server["fds"]["baseline"]),
        show(&server["fds"]["peak"]),
        show(&server["fds"]["window_end"]),
        show(&server["fds"]["after"])
    );
    if opts.data_dir.is_some() {
        println!(
            "   temp files   before {}, peak {}, window end {}, after {}",
            show(&server["tmp_files"]["baseline"]),
            show(&server["tmp_files"]["peak"]),
            show(&server["tmp_files"]["window_end"]),
            show(&server["tmp_files"]["after"])
        );
    }
    let pct = |p: Option<f64>| p.map_or("?".to_string(), |p| format!("{p} %"));
    println!("   CPU          before {}, during {}, after {}", pct(cpu_base), pct(cpu_during), pct(cpu_settle));
    println!(
        "   benchmark's own CPU: before {}, during {}, after {}",
        pct(client_base),
        pct(client_during),
        pct(client_settle)
    );
    println!("## well-behaved visitor: message → done");
    for phase in ["baseline", "during", "after"] {
        println!("   {phase:<9} {}  [{} unanswered]", fmt_summary(&well[phase]), well[phase]["unanswered"]);
    }
    if !well_errors.0.is_empty() || well_disconnected > 0 {
        println!("   errors: {:?}; sockets lost: {well_disconnected}", well_errors.0);
    }
    println!("## {}", scenario.name());
    match scenario {
        Scenario::HelloFlood => {
            println!("   answers: {}", abuse["answers"]);
            println!("   errors: {}", abuse["errors"]);
            println!("   hello → answer {}", fmt_summary(&abuse["hello_to_answer"]));
            println!("   held sockets closed later by the server: {}", abuse["closed_later_by_server"]);
            if let (Some(before), Some(after)) = (conversations_before, conversations_after) {
                println!("   conversations: {before} before, {after} after ({} new)", after.saturating_sub(before));
            }
        }
        Scenario::SlowReaders => {
            println!(
                "   joined {}; messages sent {} ({} chars each); sockets whose send blocked {}",
                abuse["joined"], abuse["messages_sent"], abuse["message_chars"], abuse["sockets_blocked_sending"]
            );
            println!("   errors: {}", abuse["errors"]);
        }
        Scenario::StalledUploads => {
            println!("   ends: {}; statuses: {}", abuse["ends"], abuse["statuses"]);
            println!("   errors: {}", abuse["errors"]);
            println!("   stall → answer {}", fmt_summary(&abuse["stall_to_answer"]));
            println!("   stall → close  {}", fmt_summary(&abuse["stall_to_close"]));
        }
    }
    let mut out = json!({
        "scenario": scenario.name(),
        "count": opts.count,
        "secs": opts.secs,
        "baseline_secs": opts.baseline,
        "settle_secs": opts.settle,
        "well": {"conversations": opts.well_conversations, "rate": opts.well_rate, "rtt": well, "errors": well_errors.json(), "sockets_lost": well_disconnected},
        "server": server,
        "client_cpu_pct": {"baseline": client_base, "during": client_during, "after": client_settle},
        "abuse": abuse,
        "timeline": {"columns": ["t_s", "rss_mib", "fds", "tmp_files"], "abuse_from_s": start_secs, "abuse_to_s": end_secs, "samples": timeline},
    });
    if let (Some(before), Some(after)) = (conversations_before, conversations_after) {
        out["abuse"]["conversations"] = json!({"before": before, "after": after, "new": after.saturating_sub(before)});
    }
    result(scenario.name(), out);
    Ok(())
}
