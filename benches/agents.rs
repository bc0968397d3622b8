//! Human agents' live delivery: how long a visitor's message takes to reach the agent watching
//! its conversation.
//!
//! ```text
//! cargo bench --bench agents -- --url http://127.0.0.1:PORT --key API_KEY [--bot BOT_ID]
//!     [--agent-url http://127.0.0.1:PORT2] [--agents 20] [--conversations 1000] [--rate 150]
//!     [--secs 60] [--warmup 10] [--pid SERVER_PID]
//! ```
//!
//! Against a running server (base URL and an API key of the workspace; the bot is the
//! workspace's first unless `--bot` names one). The visitors' widget sockets go to `--url`; the
//! agents' REST calls (step 1) and `/ws/agent` sockets (step 3) go to `--agent-url`, by default
//! the same server. In a cluster (nodes sharing one database and Redis), pointing it at another
//! node times the message's trip across nodes: stored on the visitors' node, published through
//! Redis, delivered by the agents' node (`benches/run_cluster.sh`).
//!
//! 1. Creates `--agents` agents with `POST /api/agents` (each gets its own `fda_…` token).
//! 2. Opens `--conversations` widget sockets (`/ws/widget`, `hello` → `ready`, each its own new
//!    conversation), `--concurrency` at a time.
//! 3. Each agent opens `/ws/agent?token=…`, waits for its `inbox` snapshot, then subscribes (one
//!    `subscribe` at a time, each answered by `ack` and `history`) to its share of the
//!    conversations: conversation i is watched by agent i mod agents, so each is watched by
//!    exactly one agent (50 each with the defaults).
//! 4. Every conversation sends the visitor message `--text` once every conversations / rate
//!    seconds (open loop: conversation i's k-th message is due at (i + k·conversations) / rate
//!    seconds after the start, whether or not earlier ones were answered), for `--warmup` +
//!    `--secs` seconds. The bot answers each one (the server's brain, streamed as `delta`s and a
//!    `done`), as it would in production. After the sending window, `--drain` seconds for late
//!    frames.
//!
//! For every message, with `client_msg_id` `v<conversation>-<n>` as the key:
//!
//! * agent: send → the `message` frame (`sender` visitor, that `client_msg_id`) on the socket of
//!   the agent subscribed to the conversation (live, or inside a `history` frame if the server
//!   had to catch the subscription up). This is the headline figure.
//! * inbox: send → the same `message` frame on each of the other agents' sockets, which see
//!   every conversation of the workspace through the inbox feed without subscribing.
//! * all agents: send → the last of all agents' sockets to show it.
//! * ack: send → the widget's own `ack` (the message is stored and durable).
//! * bot reply: send → the widget's `done` for the bot's reply.
//!
//! Percentiles are over the messages sent in the measured window (after the warm-up); the
//! warm-up's are reported apart, as it includes each agent being introduced to the
//! conversations its snapshot did not hold. A message is lost when the watching agent never
//! showed it. Everything runs on one tokio thread so the benchmark can be pinned to one core;
//! results print as a human-readable block and as `RESULT {json}` lines with a `phase` field
//! (`setup`, `delivery`).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

#[path = "common/mod.rs"]
mod common;
use common::{percentile, proc_rss_kib, result, round1, round3, widget_ready, Api, CpuMark};

type Ws = WebSocketStream<TcpStream>;

const USAGE: &str = "\
usage: agents --url http://HOST:PORT --key API_KEY [options]

  --url URL            the server's base URL (http:// only; the sockets use ws:// on the same address)
  --agent-url URL      where the agents are created and open /ws/agent, e.g. another node of a
                       cluster (http:// only; default: --url)
  --key KEY            an API key of the workspace (Authorization: Bearer)
  --bot BOT_ID         the widget's bot (default: the workspace's first bot)
  --agents N           agents, each with its own socket (default 20)
  --conversations N    live widget conversations, each watched by one agent (default 1000)
  --rate R             visitor messages per second over all conversations (default 150)
  --secs S             measured window in seconds, after the warm-up (default 60)
  --warmup S           seconds of sending before the measured window (default 10)
  --drain S            seconds to wait for late frames after the last send (default 5)
  --concurrency N      widget sockets being opened at once (default 200)
  --open-timeout S     seconds allowed for one socket to open and join (default 60)
  --text TEXT          the visitor's message (default \"What are your opening hours?\")
  --pid PID            server process: report its CPU and memory from /proc/PID";

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Clone, Debug)]
struct Opts {
    base: String,
    addr: String,
    /// The agents' server: REST and `/ws/agent` (`--agent-url`, default `--url`).
    agent_base: String,
    agent_addr: String,
    key: String,
    bot: Option<String>,
    agents: usize,
    conversations: usize,
    rate: f64,
    secs: f64,
    warmup: f64,
    drain: f64,
    concurrency: usize,
    open_timeout: Duration,
    text: String,
    pid: Option<String>,
}

type Flags<'a> = BTreeMap<&'a str, &'a str>;

fn num<T: std::str::FromStr>(flags: &Flags, name: &str, default: T) -> Result<T, String> {
    match flags.get(name) {
        Some(v) => v.parse().map_err(|_| format!("`--{name} {v}` is not a valid number")),
        None => Ok(default),
    }
}

/// `http://host:port` → (the base URL without a trailing slash, `host:port`).
fn base_and_addr(url: &str) -> Result<(String, String), String> {
    let base = url.trim_end_matches('/').to_string();
    let Some(addr) = base.strip_prefix("http://") else { return Err(format!("`{base}`: give http://host:port")) };
    if addr.is_empty() || !addr.contains(':') || addr.contains('/') {
        return Err(format!("`{base}`: give http://host:port"));
    }
    let addr = addr.to_string();
    Ok((base, addr))
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let known = [
        "url",
        "agent-url",
        "key",
        "bot",
        "agents",
        "conversations",
        "rate",
        "secs",
        "warmup",
        "drain",
        "concurrency",
        "open-timeout",
        "text",
        "pid",
    ];
    let mut flags = Flags::new();
    let mut it = args.iter().map(String::as_str);
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--") else { return Err(format!("unexpected argument `{arg}`")) };
        if !known.contains(&name) {
            return Err(format!("unknown option `{arg}`"));
        }
        let Some(value) = it.next() else { return Err(format!("`{arg}` needs a value")) };
        flags.insert(name, value);
    }
    let (base, addr) = base_and_addr(flags.get("url").ok_or("`--url` is required")?)?;
    let (agent_base, agent_addr) = match flags.get("agent-url") {
        Some(url) => base_and_addr(url)?,
        None => (base.clone(), addr.clone()),
    };
    let opts = Opts {
        addr,
        base,
        agent_addr,
        agent_base,
        key: flags.get("key").ok_or("`--key` is required")?.to_string(),
        bot: flags.get("bot").map(|b| b.to_string()),
        agents: num(&flags, "agents", 20)?,
        conversations: num(&flags, "conversations", 1000)?,
        rate: num(&flags, "rate", 150.0)?,
        secs: num(&flags, "secs", 60.0)?,
        warmup: num(&flags, "warmup", 10.0)?,
        drain: num(&flags, "drain", 5.0)?,
        concurrency: num(&flags, "concurrency", 200usize)?.max(1),
        open_timeout: Duration::from_secs_f64(num(&flags, "open-timeout", 60.0)?),
        text: flags.get("text").map(|t| t.to_string()).unwrap_or_else(|| "What are your opening hours?".into()),
        pid: flags.get("pid").map(|p| p.to_string()),
    };
    if opts.agents == 0 || opts.conversations == 0 {
        return Err("`--agents` and `--conversations` must be at least 1".into());
    }
    if opts.conversations > u32::MAX as usize {
        return Err("`--conversations` is too large".into());
    }
    let positive = |x: f64| x.is_finite() && x > 0.0;
    let not_negative = |x: f64| x.is_finite() && x >= 0.0;
    if !positive(opts.rate) || !positive(opts.secs) || !not_negative(opts.warmup) || !not_negative(opts.drain) {
        return Err("`--rate` and `--secs` must be positive, `--warmup` and `--drain` not negative".into());
    }
    Ok(opts)
}

fn main() -> ExitCode {
    common::run_main("agents", USAGE, |args| parse_args(args).map(Arc::new), run)
}

// ---------------------------------------------------------------------------------------------
// Statistics and /proc

/// p50 / p90 / p99 / max / mean in milliseconds, and n, of microsecond samples.
fn summary(samples_us: &mut [u64]) -> Value {
    samples_us.sort_unstable();
    let ms = |us: u64| round3(us as f64 / 1e3);
    let mean =
        if samples_us.is_empty() { 0.0 } else { samples_us.iter().sum::<u64>() as f64 / samples_us.len() as f64 / 1e3 };
    json!({
        "p50": ms(percentile(samples_us, 0.50)),
        "p90": ms(percentile(samples_us, 0.90)),
        "p99": ms(percentile(samples_us, 0.99)),
        "max": ms(samples_us.last().copied().unwrap_or(0)),
        "mean": round3(mean),
        "n": samples_us.len(),
    })
}

fn fmt_summary(v: &Value) -> String {
    format!(
        "p50 {} ms, p90 {} ms, p99 {} ms, max {} ms, mean {} ms (n={})",
        v["p50"], v["p90"], v["p99"], v["max"], v["mean"], v["n"]
    )
}

/// How many samples (µs) exceed 10 ms, 50 ms, 100 ms and 1 s.
fn tail_counts(samples_us: &[u64]) -> Value {
    let over = |ms: u64| samples_us.iter().filter(|&&us| us > ms * 1000).count();
    json!({ "over_10ms": over(10), "over_50ms": over(50), "over_100ms": over(100), "over_1s": over(1000) })
}

/// Up to 8 distinct error kinds with their counts.
#[derive(Default)]
struct ErrorKinds(BTreeMap<String, u64>);

impl ErrorKinds {
    fn add(&mut self, kind: impl Into<String>) {
        self.add_n(kind.into(), 1);
    }

    fn add_n(&mut self, kind: String, n: u64) {
        let kind = if self.0.len() < 8 || self.0.contains_key(&kind) { kind } else { "(other)".into() };
        *self.0.entry(kind).or_default() += n;
    }

    fn merge(&mut self, other: ErrorKinds) {
        for (kind, n) in other.0 {
            self.add_n(kind, n);
        }
    }

    fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Sockets

fn ws_config() -> WebSocketConfig {
    WebSocketConfig {
        write_buffer_size: 0,
        max_write_buffer_size: 64 * 1024,
        // The agent's inbox snapshot carries up to 500 conversations.
        max_message_size: Some(64 << 20),
        max_frame_size: Some(64 << 20),
        ..Default::default()
    }
}

/// A WebSocket to `addr` (`host:port`, from `--url` or `--agent-url`).
async fn connect(addr: &str, path: &str) -> Result<Ws, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    let url = format!("ws://{addr}{path}");
    let (ws, _) = client_async_with_config(url.as_str(), tcp, Some(ws_config()))
        .await
        .map_err(|e| format!("handshake: {}", short_ws_error(&e)))?;
    Ok(ws)
}

fn short_ws_error(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => format!("io {}", io.kind()),
        tungstenite::Error::Http(resp) => format!("http {}", resp.status()),
        other => other.to_string().chars().take(80).collect(),
    }
}

/// Sends a close frame and reads until the server's close (or a short timeout); never an error.
async fn close_quietly(mut ws: Ws) {
    let _ = timeout(Duration::from_secs(5), async {
        if ws.close(None).await.is_err() {
            return;
        }
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// The key of message `n` of conversation `conv`, and its `client_msg_id`.
fn key(conv: u32, n: u32) -> u64 {
    (u64::from(conv) << 32) | u64::from(n)
}

fn client_msg_id(conv: u32, n: u32) -> String {
    format!("v{conv}-{n}")
}

fn parse_client_msg_id(id: &str) -> Option<u64> {
    let (conv, n) = id.strip_prefix('v')?.split_once('-')?;
    Some(key(conv.parse().ok()?, n.parse().ok()?))
}

fn conv_of(key: u64) -> usize {
    (key >> 32) as usize
}

/// Frames worth no parsing: the bulk of the traffic carries nothing we measure.
fn frame_kind_by_prefix(text: &str) -> Option<&'static str> {
    const KINDS: [(&str, &str); 5] = [
        (r#"{"type":"delta""#, "delta"),
        (r#"{"type":"done""#, "done"),
        (r#"{"type":"pong""#, "pong"),
        (r#"{"type":"typing""#, "typing"),
        (r#"{"type":"read""#, "read"),
    ];
    KINDS.iter().find(|(prefix, _)| text.starts_with(prefix)).map(|(_, kind)| *kind)
}

/// When the clock starts: every task measures from `t0`; `warm_end` and `end` bound the
/// measured window (of send times).
#[derive(Clone, Copy)]
struct Start {
    t0: Instant,
    warm_end: Instant,
    end: Instant,
}

// ---------------------------------------------------------------------------------------------
// The visitors

#[derive(Deserialize)]
struct WidgetFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    #[serde(default)]
    message: Option<WidgetMessage>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WidgetMessage {
    id: i64,
    #[serde(default)]
    reply_to: Option<i64>,
}

/// Connect, `hello`, wait for `ready`: the new conversation's id.
async fn open_widget(opts: &Opts, bot: &str) -> Result<(Ws, String), String> {
    let mut ws = connect(&opts.addr, "/ws/widget").await?;
    let hello = json!({"type": "hello", "bot_id": bot}).to_string();
    ws.send(Message::Text(hello)).await.map_err(|e| format!("send hello: {}", short_ws_error(&e)))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                if frame_kind_by_prefix(&text).is_some() {
                    continue;
                }
                if let Some(ready) = widget_ready(&text) {
                    return ready.map(|id| (ws, id));
                }
            }
            Some(Ok(Message::Close(_))) | None => return Err("closed before ready".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("read before ready: {}", short_ws_error(&e))),
        }
    }
}

/// One visitor message, as its widget saw it (µs since t0).
struct Sent {
    key: u64,
    sent: u64,
    ack: Option<u64>,
    reply: Option<u64>,
    message_id: Option<i64>,
}

#[derive(Default)]
struct VisitorStats {
    opened: bool,
    sent: Vec<Sent>,
    errors: ErrorKinds,
    disconnected: bool,
    /// How late sends left against their schedule, µs.
    lag_us: Vec<u64>,
}

struct Opened {
    index: u32,
    conversation: Result<String, String>,
    took_us: u64,
}

fn us_since(t0: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(t0).as_micros().min(u64::MAX as u128) as u64
}

async fn visitor(
    opts: Arc<Opts>,
    bot: Arc<str>,
    index: u32,
    gate: Arc<Semaphore>,
    opened: mpsc::UnboundedSender<Opened>,
    mut start: watch::Receiver<Option<Start>>,
    mut stop: watch::Receiver<bool>,
) -> VisitorStats {
    let began = Instant::now();
    let joined = {
        let Ok(_permit) = gate.acquire().await else { return VisitorStats::default() };
        match timeout(opts.open_timeout, open_widget(&opts, &bot)).await {
            Ok(joined) => joined,
            Err(_) => Err("open timed out".to_string()),
        }
    };
    let took_us = us_since(began, Instant::now());
    let mut ws = match joined {
        Ok((ws, id)) => {
            let _ = opened.send(Opened { index, conversation: Ok(id), took_us });
            ws
        }
        Err(e) => {
            let _ = opened.send(Opened { index, conversation: Err(e), took_us });
            return VisitorStats::default();
        }
    };
    drop(opened);
    let mut stats = VisitorStats { opened: true, ..Default::default() };
    // Keep reading (the welcome, pings) while the agents sign in.
    let start = loop {
        tokio::select! {
            changed = start.changed() => {
                if changed.is_err() {
                    return stats;
                }
                if let Some(s) = *start.borrow() {
                    break s;
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(_)) => {}
                _ => {
                    stats.disconnected = true;
                    return stats;
                }
            },
        }
    };
    let t0 = start.t0;
    let period = opts.conversations as f64 / opts.rate;
    let offset = f64::from(index) / opts.rate;
    let due = |k: u32| t0 + Duration::from_secs_f64(offset + f64::from(k) * period);
    let mut k: u32 = 0;
    let mut sending = due(0) < start.end;
    let mut clean = true;
    while clean {
        tokio::select! {
            biased;
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => on_widget_text(&mut stats, &text, t0),
                Some(Ok(Message::Close(_))) | None => {
                    stats.errors.add("widget closed by server");
                    clean = false;
                }
                Some(Err(e)) => {
                    stats.errors.add(format!("widget read: {}", short_ws_error(&e)));
                    clean = false;
                }
                Some(Ok(_)) => {}
            },
            _ = sleep_until(due(k)), if sending => {
                let now = Instant::now();
                stats.lag_us.push(us_since(due(k), now));
                let frame = json!({
                    "type": "message",
                    "client_msg_id": client_msg_id(index, k),
                    "text": opts.text,
                })
                .to_string();
                stats.sent.push(Sent { key: key(index, k), sent: us_since(t0, now), ack: None, reply: None, message_id: None });
                if let Err(e) = ws.send(Message::Text(frame)).await {
                    stats.errors.add(format!("widget send: {}", short_ws_error(&e)));
                    clean = false;
                }
                k += 1;
                sending = due(k) < start.end;
            }
            _ = stop.changed() => break,
        }
    }
    stats.disconnected = !clean;
    if clean {
        close_quietly(ws).await;
    }
    stats
}

fn on_widget_text(stats: &mut VisitorStats, text: &str, t0: Instant) {
    match frame_kind_by_prefix(text) {
        Some("done") => {}
        Some(_) => return,
        None => {}
    }
    let now = us_since(t0, Instant::now());
    let Ok(frame) = serde_json::from_str::<WidgetFrame>(text) else {
        stats.errors.add("widget: unreadable frame");
        return;
    };
    match &*frame.kind {
        "ack" => {
            let (Some(k), Some(message)) =
                (frame.client_msg_id.as_deref().and_then(parse_client_msg_id), frame.message)
            else {
                return;
            };
            if let Some(sent) = stats.sent.iter_mut().rev().find(|s| s.key == k) {
                sent.ack.get_or_insert(now);
                sent.message_id = Some(message.id);
            }
        }
        "done" => {
            let Some(reply_to) = frame.message.and_then(|m| m.reply_to) else { return };
            if let Some(sent) = stats.sent.iter_mut().rev().find(|s| s.message_id == Some(reply_to)) {
                sent.reply.get_or_insert(now);
            }
        }
        "error" => stats.errors.add(format!("widget error frame: {}", frame.error.as_deref().unwrap_or("?"))),
        "closed" => stats.errors.add("conversation closed"),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The agents

#[derive(Deserialize)]
struct AgentFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    conversation_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    message: Option<AgentMessage<'a>>,
    #[serde(default, borrow)]
    messages: Option<Vec<AgentMessage<'a>>>,
    #[serde(default)]
    conversations: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    missed: Option<u64>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AgentMessage<'a> {
    #[serde(borrow)]
    sender: Cow<'a, str>,
    #[serde(default, borrow)]
    client_msg_id: Option<Cow<'a, str>>,
}

/// A visitor message seen on an agent's socket: its key, when (µs since t0), and whether it
/// came inside a `history` frame (a catch-up) rather than live.
struct Seen {
    key: u64,
    at: u64,
    via_history: bool,
}

#[derive(Default)]
struct AgentStats {
    ready: bool,
    seen: Vec<Seen>,
    errors: ErrorKinds,
    disconnected: bool,
    /// `inbox_stale` frames (the inbox feed fell behind) and the events they said were missed.
    stale: u64,
    stale_missed: u64,
    /// `conversation` frames: conversations introduced after the snapshot.
    introduced: u64,
    /// Frames and bytes received in the measured window, by kind.
    frames: BTreeMap<&'static str, u64>,
    bytes: u64,
}

struct AgentSetup {
    agent: usize,
    result: Result<AgentTimes, String>,
}

struct AgentTimes {
    /// Socket open → `inbox` frame, µs.
    inbox_us: u64,
    inbox_conversations: usize,
    inbox_bytes: usize,
    /// Each `subscribe` → its `history`, µs.
    subscribe_us: Vec<u64>,
}

/// When the agent loop records what it sees.
struct AgentCtx {
    t0: Option<Instant>,
    window: Option<(Instant, Instant)>,
}

fn on_agent_text(stats: &mut AgentStats, cx: &AgentCtx, text: &str) -> Option<AgentFrameSummary> {
    let now = Instant::now();
    let in_window = cx.window.is_some_and(|(a, b)| now >= a && now < b);
    if let Some(kind) = frame_kind_by_prefix(text) {
        if in_window {
            *stats.frames.entry(kind).or_default() += 1;
            stats.bytes += text.len() as u64;
        }
        return None;
    }
    let frame = match serde_json::from_str::<AgentFrame>(text) {
        Ok(frame) => frame,
        Err(_) => {
            stats.errors.add("agent: unreadable frame");
            return None;
        }
    };
    if in_window {
        let kind = match &*frame.kind {
            "message" => "message",
            "history" => "history",
            "conversation" => "conversation",
            "owner_changed" => "owner_changed",
            "closed" => "closed",
            "ack" => "ack",
            "error" => "error",
            "inbox_stale" => "inbox_stale",
            "pong" => "pong",
            _ => "other",
        };
        *stats.frames.entry(kind).or_default() += 1;
        stats.bytes += text.len() as u64;
    }
    let at = cx.t0.map(|t0| us_since(t0, now));
    let mut record = |m: &AgentMessage, via_history: bool| {
        if let (Some(at), "visitor", Some(k)) =
            (at, &*m.sender, m.client_msg_id.as_deref().and_then(parse_client_msg_id))
        {
            stats.seen.push(Seen { key: k, at, via_history });
        }
    };
    match &*frame.kind {
        "message" => {
            if let Some(m) = &frame.message {
                record(m, false);
            }
        }
        "history" => {
            for m in frame.messages.iter().flatten() {
                record(m, true);
            }
        }
        "conversation" => stats.introduced += 1,
        "inbox_stale" => {
            stats.stale += 1;
            stats.stale_missed += frame.missed.unwrap_or(0);
        }
        "error" => stats.errors.add(format!("agent error frame: {}", frame.error.as_deref().unwrap_or("?"))),
        _ => {}
    }
    Some(AgentFrameSummary {
        bytes: text.len(),
        kind: frame.kind.into_owned(),
        conversation_id: frame.conversation_id.map(Cow::into_owned),
        conversations: frame.conversations.map(|c| c.len()),
    })
}

struct AgentFrameSummary {
    bytes: usize,
    kind: String,
    conversation_id: Option<String>,
    conversations: Option<usize>,
}

/// Reads frames until one satisfies `wanted`, handling all others as usual.
async fn agent_until(
    ws: &mut Ws,
    stats: &mut AgentStats,
    cx: &AgentCtx,
    mut wanted: impl FnMut(&AgentFrameSummary) -> bool,
) -> Result<AgentFrameSummary, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                if let Some(summary) = on_agent_text(stats, cx, &text) {
                    if summary.kind == "error" {
                        return Err(format!("error frame: {text}"));
                    }
                    if wanted(&summary) {
                        return Ok(summary);
                    }
                }
            }
            Some(Ok(Message::Close(_))) | None => return Err("agent socket closed".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("agent read: {}", short_ws_error(&e))),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn agent(
    opts: Arc<Opts>,
    index: usize,
    token: String,
    conversations: Vec<String>,
    setup: mpsc::UnboundedSender<AgentSetup>,
    mut start: watch::Receiver<Option<Start>>,
    mut stop: watch::Receiver<bool>,
) -> AgentStats {
    let mut stats = AgentStats::default();
    let mut cx = AgentCtx { t0: None, window: None };
    let began = Instant::now();
    let signed_in = async {
        let mut ws = connect(&opts.agent_addr, &format!("/ws/agent?token={token}")).await?;
        let inbox = agent_until(&mut ws, &mut stats, &cx, |f| f.kind == "inbox").await?;
        let inbox_us = us_since(began, Instant::now());
        let mut subscribe_us = Vec::with_capacity(conversations.len());
        for (n, id) in conversations.iter().enumerate() {
            let asked = Instant::now();
            let frame = json!({"type": "subscribe", "conversation_id": id, "ref": n}).to_string();
            ws.send(Message::Text(frame)).await.map_err(|e| format!("send subscribe: {}", short_ws_error(&e)))?;
            agent_until(&mut ws, &mut stats, &cx, |f| {
                f.kind == "history" && f.conversation_id.as_deref() == Some(id.as_str())
            })
            .await?;
            subscribe_us.push(us_since(asked, Instant::now()));
        }
        Ok::<_, String>((
            ws,
            AgentTimes {
                inbox_us,
                inbox_conversations: inbox.conversations.unwrap_or(0),
                inbox_bytes: inbox.bytes,
                subscribe_us,
            },
        ))
    };
    let mut ws = match timeout(Duration::from_secs(300), signed_in).await {
        Ok(Ok((ws, times))) => {
            let _ = setup.send(AgentSetup { agent: index, result: Ok(times) });
            ws
        }
        Ok(Err(e)) => {
            let _ = setup.send(AgentSetup { agent: index, result: Err(e) });
            return stats;
        }
        Err(_) => {
            let _ = setup.send(AgentSetup { agent: index, result: Err("sign-in and subscriptions timed out".into()) });
            return stats;
        }
    };
    drop(setup);
    stats.ready = true;
    let mut ping = tokio::time::interval(Duration::from_secs(15));
    ping.tick().await;
    let mut clean = true;
    while clean {
        tokio::select! {
            biased;
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    on_agent_text(&mut stats, &cx, &text);
                }
                Some(Ok(Message::Close(_))) | None => {
                    stats.errors.add("agent socket closed by server");
                    clean = false;
                }
                Some(Err(e)) => {
                    stats.errors.add(format!("agent read: {}", short_ws_error(&e)));
                    clean = false;
                }
                Some(Ok(_)) => {}
            },
            changed = start.changed(), if cx.t0.is_none() => {
                if changed.is_ok() {
                    if let Some(s) = *start.borrow() {
                        cx.t0 = Some(s.t0);
                        cx.window = Some((s.warm_end, s.end));
                    }
                }
            }
            _ = ping.tick() => {
                if ws.send(Message::Text(r#"{"type":"ping"}"#.into())).await.is_err() {
                    stats.errors.add("agent ping failed");
                    clean = false;
                }
            }
            _ = stop.changed() => break,
        }
    }
    stats.disconnected = !clean;
    if clean {
        close_quietly(ws).await;
    }
    stats
}

// ---------------------------------------------------------------------------------------------
// REST setup

// ---------------------------------------------------------------------------------------------
// The run

async fn run(opts: Arc<Opts>) -> Result<(), String> {
    let api = Api {
        client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().map_err(|e| e.to_string())?,
        base: opts.base.clone(),
        key: opts.key.clone(),
    };
    // The agents' node (`--agent-url`); the same server unless told otherwise.
    let agent_api = Api { client: api.client.clone(), base: opts.agent_base.clone(), key: opts.key.clone() };
    let bot: Arc<str> = match &opts.bot {
        Some(bot) => bot.as_str().into(),
        None => {
            let (status, bots) = api.call(reqwest::Method::GET, "/api/bots", None).await?;
            let first = bots["data"][0]["id"].as_str();
            match (status, first) {
                (200, Some(id)) => id.into(),
                _ => return Err(format!("GET /api/bots answered {status}: {bots}")),
            }
        }
    };

    // 1. The agents.
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let created_at = Instant::now();
    let mut tokens = Vec::with_capacity(opts.agents);
    for a in 0..opts.agents {
        let body =
            json!({"name": format!("Bench Agent {}", a + 1), "email": format!("agent{a}-{stamp}@bench.example")});
        let (status, answer) = agent_api.call(reqwest::Method::POST, "/api/agents", Some(&body)).await?;
        let token = answer["token"].as_str().filter(|t| status == 201 && t.starts_with("fda_"));
        let Some(token) = token else { return Err(format!("POST /api/agents answered {status}: {answer}")) };
        tokens.push(token.to_string());
    }
    let agents_secs = created_at.elapsed().as_secs_f64();
    println!("## {} agents created in {agents_secs:.2} s on {}", opts.agents, opts.agent_base);

    // 2. The visitors, each its own conversation.
    let cpu_before_open = CpuMark::now(opts.pid.as_deref());
    let gate = Arc::new(Semaphore::new(opts.concurrency));
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel();
    let (start_tx, start_rx) = watch::channel(None::<Start>);
    let (stop_tx, stop_rx) = watch::channel(false);
    let open_began = Instant::now();
    let mut visitors = Vec::with_capacity(opts.conversations);
    for i in 0..opts.conversations {
        visitors.push(tokio::spawn(visitor(
            opts.clone(),
            bot.clone(),
            i as u32,
            gate.clone(),
            opened_tx.clone(),
            start_rx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(opened_tx);
    let mut conversation_ids: Vec<Option<String>> = vec![None; opts.conversations];
    let mut open_us = Vec::with_capacity(opts.conversations);
    let mut open_errors = ErrorKinds::default();
    while let Some(report) = opened_rx.recv().await {
        match report.conversation {
            Ok(id) => {
                conversation_ids[report.index as usize] = Some(id);
                open_us.push(report.took_us);
            }
            Err(e) => open_errors.add(e),
        }
    }
    let open_secs = open_began.elapsed().as_secs_f64();
    let opened = open_us.len();
    let open_lat = summary(&mut open_us);
    let (server_cpu_open, _) = CpuMark::now(opts.pid.as_deref()).since(&cpu_before_open);
    println!(
        "## {opened} of {} widget conversations open in {open_secs:.2} s ({:.0}/s); open latency {}",
        opts.conversations,
        opened as f64 / open_secs.max(1e-6),
        fmt_summary(&open_lat)
    );
    if open_errors.total() > 0 {
        println!("   open errors: {:?}", open_errors.0);
    }

    // 3. The agents sign in and subscribe.
    let (setup_tx, mut setup_rx) = mpsc::unbounded_channel();
    let signin_began = Instant::now();
    let mut agent_tasks = Vec::with_capacity(opts.agents);
    for (a, token) in tokens.into_iter().enumerate() {
        let mine: Vec<String> = conversation_ids
            .iter()
            .enumerate()
            .filter(|(i, _)| i % opts.agents == a)
            .filter_map(|(_, id)| id.clone())
            .collect();
        agent_tasks.push(tokio::spawn(agent(
            opts.clone(),
            a,
            token,
            mine,
            setup_tx.clone(),
            start_rx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(setup_tx);
    let mut inbox_us = Vec::new();
    let mut subscribe_us = Vec::new();
    let mut inbox_sizes = Vec::new();
    let mut inbox_bytes = Vec::new();
    let mut setup_errors = ErrorKinds::default();
    while let Some(report) = setup_rx.recv().await {
        match report.result {
            Ok(times) => {
                inbox_us.push(times.inbox_us);
                inbox_sizes.push(times.inbox_conversations);
                inbox_bytes.push(times.inbox_bytes);
                subscribe_us.extend(times.subscribe_us);
            }
            Err(e) => setup_errors.add(format!("agent {}: {e}", report.agent)),
        }
    }
    let signin_secs = signin_began.elapsed().as_secs_f64();
    let agents_ready = inbox_us.len();
    let inbox_lat = summary(&mut inbox_us);
    let subscribe_lat = summary(&mut subscribe_us);
    println!(
        "## {agents_ready} of {} agents signed in and subscribed in {signin_secs:.2} s; \
         inbox snapshot ({} conversations, {:.0} KB) {}",
        opts.agents,
        inbox_sizes.first().copied().unwrap_or(0),
        inbox_bytes.first().copied().unwrap_or(0) as f64 / 1e3,
        fmt_summary(&inbox_lat)
    );
    println!("   subscribe → history: {}", fmt_summary(&subscribe_lat));
    if setup_errors.total() > 0 {
        println!("   agent errors: {:?}", setup_errors.0);
    }
    result(
        "setup",
        json!({
            "url": opts.base, "agent_url": opts.agent_base,
            "agents": opts.agents, "agents_created_secs": round3(agents_secs),
            "conversations": opts.conversations, "opened": opened, "open_failed": opts.conversations - opened,
            "open_secs": round3(open_secs), "open_per_sec": round1(opened as f64 / open_secs.max(1e-6)),
            "open_latency_ms": open_lat, "open_errors": open_errors.0, "server_cpu_pct_opening": server_cpu_open,
            "agents_ready": agents_ready, "agent_signin_secs": round3(signin_secs),
            "inbox_snapshot_conversations": inbox_sizes.first().copied(),
            "inbox_snapshot_bytes": inbox_bytes.first().copied(), "inbox_latency_ms": inbox_lat,
            "subscribe_latency_ms": subscribe_lat, "agent_errors": setup_errors.0,
        }),
    );
    if agents_ready == 0 || opened == 0 {
        let _ = stop_tx.send(true);
        return Err("nothing to measure: no agent or no conversation is ready".into());
    }

    // 4. The visitors talk.
    sleep(Duration::from_millis(500)).await;
    let t0 = Instant::now() + Duration::from_millis(50);
    let warm_end = t0 + Duration::from_secs_f64(opts.warmup);
    let end = warm_end + Duration::from_secs_f64(opts.secs);
    let _ = start_tx.send(Some(Start { t0, warm_end, end }));
    let period = opts.conversations as f64 / opts.rate;
    println!(
        "## sending: {} msg/s ({} conversations, one message each every {period:.2} s), {} s warm-up + {} s measured",
        opts.rate, opened, opts.warmup, opts.secs
    );
    sleep_until(warm_end).await;
    let cpu_warm = CpuMark::now(opts.pid.as_deref());
    sleep_until(end).await;
    let cpu_end = CpuMark::now(opts.pid.as_deref());
    let rss_end = opts.pid.as_deref().and_then(proc_rss_kib);
    let (server_cpu, client_cpu) = cpu_end.since(&cpu_warm);
    sleep(Duration::from_secs_f64(opts.drain)).await;
    let _ = stop_tx.send(true);

    let mut sent: Vec<Sent> = Vec::new();
    let mut widget_errors = ErrorKinds::default();
    let mut widgets_lost = 0usize;
    let mut lag = Vec::new();
    for task in visitors {
        let Ok(s) = task.await else { continue };
        widgets_lost += (s.opened && s.disconnected) as usize;
        sent.extend(s.sent);
        widget_errors.merge(s.errors);
        lag.extend(s.lag_us);
    }
    let mut agent_stats = Vec::with_capacity(opts.agents);
    for task in agent_tasks {
        agent_stats.push(task.await.unwrap_or_default());
    }

    // 5. Who saw what, when.
    let agents = opts.agents;
    // key → (first time on the watching agent's socket, via history?); duplicates on that socket.
    let mut watched: HashMap<u64, (u64, bool)> = HashMap::with_capacity(sent.len());
    // key → (other agents that showed it, the last of them).
    let mut others: HashMap<u64, (usize, u64)> = HashMap::with_capacity(sent.len());
    let mut duplicates = 0u64;
    let mut by_history = 0u64;
    let (mut stale, mut stale_missed, mut introduced, mut agents_lost) = (0u64, 0u64, 0u64, 0usize);
    let mut agent_errors = ErrorKinds::default();
    let mut frames: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut agent_bytes = 0u64;
    let mut inbox_samples: HashMap<u64, Vec<u64>> = HashMap::with_capacity(sent.len());
    for (a, s) in agent_stats.iter_mut().enumerate() {
        stale += s.stale;
        stale_missed += s.stale_missed;
        introduced += s.introduced;
        agents_lost += (s.ready && s.disconnected) as usize;
        agent_errors.merge(std::mem::take(&mut s.errors));
        for (kind, n) in &s.frames {
            *frames.entry(kind).or_default() += n;
        }
        agent_bytes += s.bytes;
        let mut mine_seen: HashSet<u64> = HashSet::with_capacity(s.seen.len());
        for seen in &s.seen {
            if !mine_seen.insert(seen.key) {
                duplicates += 1;
                continue;
            }
            if conv_of(seen.key) % agents == a {
                by_history += seen.via_history as u64;
                watched.insert(seen.key, (seen.at, seen.via_history));
            } else {
                let entry = others.entry(seen.key).or_insert((0, 0));
                entry.0 += 1;
                entry.1 = entry.1.max(seen.at);
                inbox_samples.entry(seen.key).or_default().push(seen.at);
            }
        }
    }

    let warm_us = (opts.warmup * 1e6) as u64;
    let end_us = ((opts.warmup + opts.secs) * 1e6) as u64;
    let ready_agents: Vec<bool> = agent_stats.iter().map(|s| s.ready).collect();
    let other_ready = |conv: usize| ready_agents.iter().enumerate().filter(|(a, r)| **r && *a != conv % agents).count();
    let (mut agent_ms, mut agent_ms_warm, mut inbox_ms, mut all_ms, mut ack_ms, mut reply_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut measured, mut lost, mut lost_warm, mut no_ack, mut no_reply, mut inbox_missing) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut inbox_missing_warm = 0u64;
    let mut per_second: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for s in &sent {
        let in_window = s.sent >= warm_us && s.sent < end_us;
        let watcher_ready = ready_agents.get(conv_of(s.key) % agents).copied().unwrap_or(false);
        let seen = watched.get(&s.key);
        let expected_others = other_ready(conv_of(s.key));
        let shown = others.get(&s.key).map_or(0, |o| o.0);
        if !in_window {
            match seen {
                Some((at, _)) => agent_ms_warm.push(at.saturating_sub(s.sent)),
                None if watcher_ready => lost_warm += 1,
                None => {}
            }
            if s.sent < warm_us {
                inbox_missing_warm += expected_others.saturating_sub(shown) as u64;
            }
            continue;
        }
        measured += 1;
        match seen {
            Some((at, _)) => {
                let took = at.saturating_sub(s.sent);
                agent_ms.push(took);
                per_second.entry(s.sent / 1_000_000).or_default().push(took);
            }
            None if watcher_ready => lost += 1,
            None => {}
        }
        match s.ack {
            Some(at) => ack_ms.push(at.saturating_sub(s.sent)),
            None => no_ack += 1,
        }
        match s.reply {
            Some(at) => reply_ms.push(at.saturating_sub(s.sent)),
            None => no_reply += 1,
        }
        if let Some(ats) = inbox_samples.get(&s.key) {
            inbox_ms.extend(ats.iter().map(|at| at.saturating_sub(s.sent)));
        }
        inbox_missing += expected_others.saturating_sub(shown) as u64;
        if let (Some((at, _)), true) = (seen, shown >= expected_others) {
            let last = others.get(&s.key).map_or(*at, |o| o.1.max(*at));
            all_ms.push(last.saturating_sub(s.sent));
        }
    }
    let worst_second_p99 = per_second
        .values_mut()
        .map(|v| {
            v.sort_unstable();
            percentile(v, 0.99)
        })
        .max()
        .unwrap_or(0);
    let agent_tail = tail_counts(&agent_ms);
    let agent_lat = summary(&mut agent_ms);
    let agent_lat_warm = summary(&mut agent_ms_warm);
    let inbox_lat = summary(&mut inbox_ms);
    let all_lat = summary(&mut all_ms);
    let ack_lat = summary(&mut ack_ms);
    let reply_lat = summary(&mut reply_ms);
    let lag_lat = summary(&mut lag);
    let total_sent = sent.len() as u64;
    let window_rate = measured as f64 / opts.secs;

    println!("## delivery over the measured window ({} s after {} s of warm-up)", opts.secs, opts.warmup);
    println!(
        "   messages       {total_sent} sent in all, {measured} in the window ({window_rate:.1}/s); \
         {lost} never reached the watching agent ({lost_warm} in the warm-up), {by_history} came by history"
    );
    println!("   → watching agent   {}", fmt_summary(&agent_lat));
    println!(
        "   → other agents     {}  [inbox feed; {inbox_missing} not shown, {inbox_missing_warm} in the warm-up]",
        fmt_summary(&inbox_lat)
    );
    println!("   → all {agents} agents    {}", fmt_summary(&all_lat));
    println!("   → widget ack       {}  [{no_ack} without]", fmt_summary(&ack_lat));
    println!("   → bot reply done   {}  [{no_reply} without]", fmt_summary(&reply_lat));
    println!("   warm-up, agent     {}", fmt_summary(&agent_lat_warm));
    println!("   tail (agent)       {agent_tail}; worst second's p99 {:.3} ms", worst_second_p99 as f64 / 1e3);
    println!("   send lag           {}", fmt_summary(&lag_lat));
    println!(
        "   agents' sockets    {stale} inbox_stale frames ({stale_missed} events missed), {introduced} conversations introduced, \
         {} frames ({:.0}/s, {:.1} MB/s) in the window: {frames:?}",
        frames.values().sum::<u64>(),
        frames.values().sum::<u64>() as f64 / opts.secs,
        agent_bytes as f64 / 1e6 / opts.secs
    );
    println!(
        "   sockets lost       {widgets_lost} widgets, {agents_lost} agents; errors: widgets {:?}, agents {:?}",
        widget_errors.0, agent_errors.0
    );
    println!(
        "   server             {}% of a core in the window, RSS {:.1} MiB; client {}%",
        server_cpu.unwrap_or(0.0),
        rss_end.unwrap_or(0) as f64 / 1024.0,
        client_cpu.unwrap_or(0.0)
    );
    result(
        "delivery",
        json!({
            "agents": agents, "conversations": opened, "rate": opts.rate, "period_secs": round3(period),
            "warmup_secs": opts.warmup, "secs": opts.secs, "drain_secs": opts.drain,
            "sent": total_sent, "measured": measured, "measured_per_sec": round1(window_rate),
            "lost": lost, "lost_warmup": lost_warm, "via_history": by_history, "duplicates": duplicates,
            "agent_ms": agent_lat, "agent_tail": agent_tail, "agent_worst_second_p99_ms": round3(worst_second_p99 as f64 / 1e3),
            "agent_ms_warmup": agent_lat_warm,
            "inbox_ms": inbox_lat, "inbox_not_shown": inbox_missing,
            "inbox_not_shown_warmup": inbox_missing_warm, "all_agents_ms": all_lat,
            "ack_ms": ack_lat, "no_ack": no_ack, "reply_ms": reply_lat, "no_reply": no_reply,
            "send_lag_ms": lag_lat,
            "inbox_stale": stale, "inbox_stale_missed": stale_missed,
            "inbox_stale_in_window": frames.get("inbox_stale").copied().unwrap_or(0), "introduced": introduced,
            "agent_frames": frames, "agent_frames_per_sec": round1(frames.values().sum::<u64>() as f64 / opts.secs),
            "agent_mb_per_sec": round3(agent_bytes as f64 / 1e6 / opts.secs),
            "widgets_lost": widgets_lost, "agents_lost": agents_lost,
            "widget_errors": widget_errors.0, "agent_errors": agent_errors.0,
            "server_cpu_pct": server_cpu, "client_cpu_pct": client_cpu, "server_rss_kib": rss_end,
        }),
    );
    Ok(())
}
