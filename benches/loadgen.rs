//! Out-of-process load generator for the widget WebSocket (`/ws/widget`).
//!
//! Holds N live widget conversations and drives messages through the bot's brain:
//!
//! ```text
//! cargo bench --bench loadgen -- idle --url ws://127.0.0.1:PORT --bot BOT --conns 5000 [--pid PID]
//! cargo bench --bench loadgen -- rate --url ws://127.0.0.1:PORT --bot BOT --conns 500 --rate 1000 --secs 15
//! cargo bench --bench loadgen -- max  --url ws://127.0.0.1:PORT --bot BOT --conns 200 --secs 20 [--inflight 1]
//! ```
//!
//! * `idle`: opens the conversations (hello → ready) with bounded concurrency, reports how fast
//!   they open, holds them idle, and with `--pid` reports the server's resident memory per idle
//!   live conversation from `/proc/PID/status`.
//! * `rate`: open loop. Messages go out on a fixed global schedule of `--rate` messages/s spread
//!   evenly over the connections, whether or not earlier replies have come back; the round trip
//!   is the time from sending a message to the `done` frame whose `reply_to` is that message.
//! * `max`: closed loop. Each connection keeps `--inflight` messages outstanding and sends the
//!   next one as soon as a reply is done; reports the sustained reply rate over the steady window.
//!
//! `--url` may list several servers (the nodes of a cluster, comma-separated): conversation i
//! opens its socket on server i mod n. With `--forward K` each conversation is opened on server
//! i mod n and sends one message there first, so that node owns it (its session and lease stay
//! there), then its socket moves to server (i + K) mod n (`hello` with the conversation id and
//! the last seq): every measured message arrives on a node that does not own the conversation
//! and is forwarded to the owner (`benches/run_cluster.sh`).
//!
//! Opening, a refusal that asks to try again (the server shedding a burst: "server is busy",
//! "conversation temporarily unavailable") is retried after a second, up to five times, as the
//! widget would; the retries are reported as `open.retried`, and the open latency includes them.
//!
//! Everything runs on one tokio thread so the generator can be pinned to one core with
//! `taskset`. Results print as a human-readable block and as one `RESULT {json}` line.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::{sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

#[path = "common/mod.rs"]
mod common;
use common::{fmt_lat, percentile, proc_rss_kib, round1, round3, widget_ready, CpuMark};

type Ws = WebSocketStream<TcpStream>;

const USAGE: &str = "\
usage: loadgen <idle|rate|max> --url ws://HOST:PORT[/ws/widget][,ws://…] --bot BOT_ID [options]

common options:
  --url URL[,URL…]    the server; several (a cluster's nodes): conversation i opens on URL i mod n
  --forward K         open conversation i on URL i mod n, send one message there (that node owns
                      it), then move its socket to URL (i + K) mod n: every message is forwarded
  --conns N           live conversations to open (idle: 1000, rate: 500, max: 200)
  --concurrency N     connections being opened at once (default 200)
  --open-timeout S    seconds allowed for connect + handshake + hello/ready (default 60)
  --pid PID[,PID…]    server process(es): report their RSS and CPU from /proc/PID
  --text TEXT         visitor message (default \"What are your opening hours?\")
idle:
  --hold S            seconds to hold the idle conversations before measuring (default 5)
rate:
  --rate R            offered messages/s over all connections (required)
  --secs S            sending window in seconds (default 15)
  --drain S           seconds to wait for outstanding replies after the window (default 10)
  --warmup S          seconds at the start left out of the steady window (default min(2, secs/5))
max:
  --secs S            sending window in seconds (default 20)
  --inflight K        messages outstanding per connection (default 1)
  --drain S, --warmup S as for rate (warmup default min(3, secs/5))";

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Idle,
    Rate,
    Max,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Idle => "idle",
            Mode::Rate => "rate",
            Mode::Max => "max",
        }
    }
}

#[derive(Clone, Debug)]
struct Opts {
    mode: Mode,
    /// The servers' widget sockets: (full URL, `host:port`); conversation i uses i mod n.
    targets: Vec<(String, String)>,
    /// Move each conversation's socket this many servers on after its first message (0: never).
    forward: usize,
    bot: String,
    conns: usize,
    concurrency: usize,
    open_timeout: Duration,
    pids: Vec<String>,
    text: String,
    hold: Duration,
    rate: f64,
    secs: f64,
    drain: Duration,
    warmup: f64,
    inflight: usize,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    // `cargo bench` hands harness = false targets a `--bench` flag: not ours.
    let args: Vec<&str> = args.iter().map(String::as_str).filter(|a| *a != "--bench").collect();
    let (mode, rest) = match args.split_first() {
        Some((&"idle", rest)) => (Mode::Idle, rest),
        Some((&"rate", rest)) => (Mode::Rate, rest),
        Some((&"max", rest)) => (Mode::Max, rest),
        Some((other, _)) => return Err(format!("unknown subcommand `{other}`")),
        None => return Err("missing subcommand".into()),
    };
    let mut flags: BTreeMap<&str, &str> = BTreeMap::new();
    let mut it = rest.iter();
    while let Some(key) = it.next() {
        let Some(name) = key.strip_prefix("--") else { return Err(format!("unexpected argument `{key}`")) };
        let Some(value) = it.next() else { return Err(format!("`{key}` needs a value")) };
        flags.insert(name, value);
    }
    fn num<T: std::str::FromStr>(flags: &BTreeMap<&str, &str>, name: &str, default: Option<T>) -> Result<T, String> {
        match flags.get(name) {
            Some(v) => v.parse().map_err(|_| format!("`--{name} {v}` is not a valid number")),
            None => default.ok_or_else(|| format!("`--{name}` is required")),
        }
    }
    let known = [
        "url",
        "forward",
        "bot",
        "conns",
        "concurrency",
        "open-timeout",
        "pid",
        "text",
        "hold",
        "rate",
        "secs",
        "drain",
        "warmup",
        "inflight",
    ];
    if let Some(unknown) = flags.keys().find(|k| !known.contains(k)) {
        return Err(format!("unknown option `--{unknown}`"));
    }
    let raw_url = flags.get("url").ok_or("`--url` is required")?;
    let targets = raw_url.split(',').map(widget_url).collect::<Result<Vec<_>, _>>()?;
    let forward: usize = num(&flags, "forward", Some(0))?;
    if forward > 0 && forward.is_multiple_of(targets.len()) {
        return Err("`--forward K` needs several URLs and K not a multiple of their number".into());
    }
    let mut pids = Vec::new();
    for pid in flags.get("pid").map(|p| p.split(',')).into_iter().flatten() {
        pid.parse::<u32>().map_err(|_| format!("`--pid {pid}` is not a pid"))?;
        pids.push(pid.to_string());
    }
    let bot = flags.get("bot").ok_or("`--bot` is required")?.to_string();
    let default_conns = match mode {
        Mode::Idle => 1000,
        Mode::Rate => 500,
        Mode::Max => 200,
    };
    let secs: f64 = num(&flags, "secs", Some(if mode == Mode::Max { 20.0 } else { 15.0 }))?;
    let default_warmup = (secs / 5.0).min(if mode == Mode::Max { 3.0 } else { 2.0 });
    let opts = Opts {
        mode,
        targets,
        forward,
        bot,
        conns: num(&flags, "conns", Some(default_conns))?,
        concurrency: num(&flags, "concurrency", Some(200usize))?.max(1),
        open_timeout: Duration::from_secs_f64(num(&flags, "open-timeout", Some(60.0))?),
        pids,
        text: flags.get("text").map(|t| t.to_string()).unwrap_or_else(|| "What are your opening hours?".into()),
        hold: Duration::from_secs_f64(num(&flags, "hold", Some(5.0))?),
        rate: if mode == Mode::Rate { num(&flags, "rate", None)? } else { 0.0 },
        secs,
        drain: Duration::from_secs_f64(num(&flags, "drain", Some(10.0))?),
        warmup: num(&flags, "warmup", Some(default_warmup))?,
        inflight: num(&flags, "inflight", Some(1usize))?.max(1),
    };
    if opts.conns == 0 {
        return Err("`--conns` must be at least 1".into());
    }
    if mode == Mode::Rate && (opts.rate.is_nan() || opts.rate <= 0.0) {
        return Err("`--rate` must be positive".into());
    }
    if opts.secs.is_nan() || opts.secs <= 0.0 || opts.warmup < 0.0 || opts.warmup >= opts.secs {
        return Err("`--secs` must be positive and `--warmup` smaller than it".into());
    }
    Ok(opts)
}

/// `ws://host:port[/path]` → (full URL with `/ws/widget` when no path is given, `host:port`).
fn widget_url(raw: &str) -> Result<(String, String), String> {
    let rest = raw.strip_prefix("ws://").ok_or_else(|| format!("`{raw}`: only ws:// URLs are supported"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() || !host.contains(':') {
        return Err(format!("`{raw}`: give host:port"));
    }
    let path = if path.is_empty() || path == "/" { "/ws/widget" } else { path };
    Ok((format!("ws://{host}{path}"), host.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Frames

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    #[serde(default)]
    message: Option<FrameMessage>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FrameMessage {
    id: i64,
    #[serde(default)]
    seq: i64,
    #[serde(default)]
    reply_to: Option<i64>,
}

/// Deltas are most of the traffic and carry nothing we measure: skip parsing them.
fn is_delta(text: &str) -> bool {
    text.starts_with(r#"{"type":"delta""#)
}

fn ws_config() -> WebSocketConfig {
    // Small frames both ways: write eagerly, keep the buffers small.
    WebSocketConfig {
        write_buffer_size: 0,
        max_write_buffer_size: 64 * 1024,
        max_message_size: Some(1 << 20),
        max_frame_size: Some(1 << 20),
        ..Default::default()
    }
}

/// Connect to server `target` (mod their number), handshake, `hello` (a new conversation, or
/// `resume`: an existing one after its last seq), wait for `ready`: the socket and the
/// conversation's id.
async fn open(opts: &Opts, target: usize, resume: Option<(&str, i64)>) -> Result<(Ws, String), String> {
    let (url, addr) = &opts.targets[target % opts.targets.len()];
    let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    let (mut ws, _) = client_async_with_config(url.as_str(), tcp, Some(ws_config()))
        .await
        .map_err(|e| format!("handshake: {}", short_ws_error(&e)))?;
    let hello = match resume {
        None => json!({"type": "hello", "bot_id": opts.bot}),
        Some((id, seq)) => json!({"type": "hello", "bot_id": opts.bot, "conversation_id": id, "last_seq": seq}),
    };
    ws.send(Message::Text(hello.to_string())).await.map_err(|e| format!("send hello: {}", short_ws_error(&e)))?;
    loop {
        let text = next_text(&mut ws, "before ready").await?;
        if let Some(ready) = widget_ready(&text) {
            return ready.map(|id| (ws, id));
        }
    }
}

/// The next text frame that is not a delta; `when` says in errors what was awaited.
async fn next_text(ws: &mut Ws, when: &str) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if !is_delta(&text) => return Ok(text),
            Some(Ok(Message::Close(_))) | None => return Err(format!("closed {when}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("read {when}: {}", short_ws_error(&e))),
        }
    }
}

/// Conversation `index`'s socket, on server index mod n. With `--forward`, the conversation
/// first sends one message there and waits for the reply, so that node owns it; then its socket
/// joins it again on server (index + forward) mod n, after the reply's seq.
async fn open_conversation(opts: &Opts, index: usize) -> Result<Ws, String> {
    let (mut ws, conversation) = open(opts, index, None).await?;
    if opts.forward == 0 {
        return Ok(ws);
    }
    let first = json!({"type": "message", "client_msg_id": "first", "text": opts.text}).to_string();
    ws.send(Message::Text(first)).await.map_err(|e| format!("send the first message: {}", short_ws_error(&e)))?;
    // The question's id once acknowledged, and the replies seen: (reply_to, seq).
    let (mut question, mut replies) = (None, Vec::new());
    let last_seq = loop {
        let text = next_text(&mut ws, "before the first reply").await?;
        let frame: Frame = serde_json::from_str(&text).map_err(|_| "unreadable frame before the first reply")?;
        match (&*frame.kind, frame.message) {
            ("ack", Some(m)) => question = Some(m.id),
            ("done", Some(m)) => replies.push((m.reply_to, m.seq)),
            ("error", _) => return Err(format!("first message refused: {}", frame.error.as_deref().unwrap_or("?"))),
            _ => {}
        }
        if let Some(&(_, seq)) = replies.iter().find(|(to, _)| question.is_some() && *to == question) {
            break seq;
        }
    };
    // Not waiting for the server's side of the close, which takes most of a second.
    let _ = ws.close(None).await;
    drop(ws);
    let (ws, _) = open(opts, index + opts.forward, Some((&conversation, last_seq))).await?;
    Ok(ws)
}

fn short_ws_error(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => format!("io {}", io.kind()),
        tungstenite::Error::Http(resp) => format!("http {}", resp.status()),
        other => {
            let s = other.to_string();
            s.chars().take(80).collect()
        }
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

// ---------------------------------------------------------------------------------------------
// /proc readings

/// CPU marks of every server (`--pid`), or of this process alone when none is given.
fn cpu_marks(pids: &[String]) -> Vec<CpuMark> {
    if pids.is_empty() {
        return vec![CpuMark::now(None)];
    }
    pids.iter().map(|pid| CpuMark::now(Some(pid))).collect()
}

/// (each server's % of one core, their sum, this process's %) between two sets of marks.
fn cpu_between(end: &[CpuMark], start: &[CpuMark]) -> (Vec<Option<f64>>, Option<f64>, Option<f64>) {
    let pairs: Vec<(Option<f64>, Option<f64>)> = end.iter().zip(start).map(|(e, s)| e.since(s)).collect();
    let servers: Vec<Option<f64>> = pairs.iter().map(|(server, _)| *server).collect();
    let total = servers.iter().copied().sum::<Option<f64>>().map(round1);
    (servers, total, pairs.first().and_then(|(_, client)| *client))
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// p50/p90/p99/max of microsecond samples, in milliseconds.
fn latency_ms(samples: &mut [u32]) -> serde_json::Value {
    samples.sort_unstable();
    let ms = |us: f64| round3(us / 1000.0);
    json!({
        "p50": ms(f64::from(percentile(samples, 0.50))),
        "p90": ms(f64::from(percentile(samples, 0.90))),
        "p99": ms(f64::from(percentile(samples, 0.99))),
        "max": ms(samples.last().copied().unwrap_or(0) as f64),
        "n": samples.len(),
    })
}

/// Up to 8 distinct error kinds with their counts.
#[derive(Default)]
struct ErrorKinds(BTreeMap<String, u64>);

impl ErrorKinds {
    fn add(&mut self, kind: impl Into<String>) {
        let kind = kind.into();
        if self.0.len() < 8 || self.0.contains_key(&kind) {
            *self.0.entry(kind).or_default() += 1;
        } else {
            *self.0.entry("(other)".into()).or_default() += 1;
        }
    }

    fn merge(&mut self, other: ErrorKinds) {
        for (k, n) in other.0 {
            for _ in 0..n {
                self.add(k.clone());
            }
        }
    }

    fn to_json(&self) -> serde_json::Value {
        json!(self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Opening connections

struct OpenReport {
    took: Result<Duration, String>,
    /// Refusals that said to try again (load shedding), retried before this outcome.
    retried: u32,
}

struct OpenSummary {
    opened: usize,
    failed: usize,
    retried: u64,
    elapsed: Duration,
    latency: serde_json::Value,
    errors: ErrorKinds,
}

impl OpenSummary {
    fn per_sec(&self) -> f64 {
        self.opened as f64 / self.elapsed.as_secs_f64().max(1e-6)
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "opened": self.opened,
            "failed": self.failed,
            "retried": self.retried,
            "secs": round3(self.elapsed.as_secs_f64()),
            "per_sec": round1(self.per_sec()),
            "latency_ms": self.latency,
            "errors": self.errors.to_json(),
        })
    }

    fn print(&self) {
        println!(
            "  opened        {} ok, {} failed in {:.2} s = {:.0} conversations/s",
            self.opened,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.per_sec()
        );
        println!("  open latency  {}", fmt_lat(&self.latency));
        if self.retried > 0 {
            println!("  open retried  {} refusals that asked to try again", self.retried);
        }
        if !self.errors.0.is_empty() {
            println!("  open errors   {:?}", self.errors.0);
        }
    }
}

/// How often a refusal that says "try again" (the server shedding load) is retried when
/// opening, as the widget does.
const OPEN_RETRIES: u32 = 5;
const OPEN_RETRY_WAIT: Duration = Duration::from_secs(1);

/// Opens one connection under the shared concurrency bound and reports how it went. A refusal
/// the server asks to retry is retried after a second, up to [`OPEN_RETRIES`] times, and
/// counted; the latency reported includes those waits.
async fn open_reported(
    opts: &Opts,
    index: usize,
    gate: &Semaphore,
    reports: &mpsc::UnboundedSender<OpenReport>,
) -> Option<Ws> {
    let permit = gate.acquire().await.ok()?;
    let started = Instant::now();
    let mut retried = 0;
    let result = loop {
        let attempt = match timeout(opts.open_timeout, open_conversation(opts, index)).await {
            Ok(Ok(ws)) => Ok(ws),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("open timed out".to_string()),
        };
        match attempt {
            Err(e) if e.contains("try again") && retried < OPEN_RETRIES => {
                retried += 1;
                tokio::time::sleep(OPEN_RETRY_WAIT).await;
            }
            done => break done,
        }
    };
    drop(permit);
    let took = started.elapsed();
    match result {
        Ok(ws) => {
            let _ = reports.send(OpenReport { took: Ok(took), retried });
            Some(ws)
        }
        Err(e) => {
            let _ = reports.send(OpenReport { took: Err(e), retried });
            None
        }
    }
}

async fn collect_opens(n: usize, started: Instant, reports: &mut mpsc::UnboundedReceiver<OpenReport>) -> OpenSummary {
    let mut took = Vec::with_capacity(n);
    let mut errors = ErrorKinds::default();
    let (mut failed, mut retried) = (0, 0);
    let mut last_print = Instant::now();
    for i in 0..n {
        let Some(report) = reports.recv().await else { break };
        retried += u64::from(report.retried);
        match report.took {
            Ok(d) => took.push(d.as_micros().min(u32::MAX as u128) as u32),
            Err(e) => {
                failed += 1;
                errors.add(e);
            }
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            eprintln!("  … {} of {n} opened ({} failed)", i + 1 - failed, failed);
        }
    }
    let elapsed = started.elapsed();
    OpenSummary { opened: took.len(), failed, retried, elapsed, latency: latency_ms(&mut took), errors }
}

// ---------------------------------------------------------------------------------------------
// idle

struct Held {
    dropped: bool,
    welcomed: bool,
}

async fn hold_idle(mut ws: Ws, mut close: watch::Receiver<bool>) -> Held {
    let mut welcomed = false;
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if !is_delta(&text) && text.starts_with(r#"{"type":"done""#) {
                        welcomed = true;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Held { dropped: true, welcomed },
                Some(Ok(_)) => {}
            },
            _ = close.changed() => break,
        }
    }
    close_quietly(ws).await;
    Held { dropped: false, welcomed }
}

async fn run_idle(opts: Arc<Opts>) -> serde_json::Value {
    // Memory and CPU of the first server only (`--pid`).
    let pid = opts.pids.first().cloned();
    let rss_before = pid.as_deref().and_then(proc_rss_kib);
    let cpu_before = CpuMark::now(pid.as_deref());
    let gate = Arc::new(Semaphore::new(opts.concurrency));
    let (report_tx, mut report_rx) = mpsc::unbounded_channel();
    let (close_tx, close_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(opts.conns);
    for i in 0..opts.conns {
        let (opts, gate, reports, close) = (opts.clone(), gate.clone(), report_tx.clone(), close_rx.clone());
        tasks.push(tokio::spawn(async move {
            let ws = open_reported(&opts, i, &gate, &reports).await?;
            drop(reports);
            Some(hold_idle(ws, close).await)
        }));
    }
    drop(report_tx);
    let opened = collect_opens(opts.conns, started, &mut report_rx).await;
    let cpu_opened = CpuMark::now(pid.as_deref());
    let (server_cpu_open, client_cpu_open) = cpu_opened.since(&cpu_before);
    if opened.opened > 0 {
        eprintln!("  holding {} idle conversations for {:?}", opened.opened, opts.hold);
        sleep(opts.hold).await;
    }
    let rss_after = pid.as_deref().and_then(proc_rss_kib);
    let cpu_held = CpuMark::now(pid.as_deref());
    let (server_cpu_idle, _) = cpu_held.since(&cpu_opened);
    let client_rss = proc_rss_kib("self");

    let _ = close_tx.send(true);
    let (mut dropped, mut welcomed) = (0usize, 0usize);
    for task in tasks {
        if let Ok(Some(held)) = task.await {
            dropped += held.dropped as usize;
            welcomed += held.welcomed as usize;
        }
    }
    // Give the server a moment to tear the sessions down, then see what it gives back.
    sleep(Duration::from_secs(3)).await;
    let rss_closed = pid.as_deref().and_then(proc_rss_kib);

    let per_conn_kib = match (rss_before, rss_after) {
        (Some(b), Some(a)) if opened.opened > 0 => Some(round3((a as f64 - b as f64) / opened.opened as f64)),
        _ => None,
    };
    println!("== idle: {} widget conversations ==", opts.conns);
    opened.print();
    println!("  welcome seen  {welcomed}, dropped by server while idle: {dropped}");
    if let (Some(b), Some(a), Some(per)) = (rss_before, rss_after, per_conn_kib) {
        println!(
            "  server RSS    {:.1} MiB before, {:.1} MiB with {} idle (after {:?}), {:.1} MiB after close",
            b as f64 / 1024.0,
            a as f64 / 1024.0,
            opened.opened,
            opts.hold,
            rss_closed.unwrap_or(0) as f64 / 1024.0
        );
        println!("  memory/conn   {per:.1} KiB per idle live conversation");
    }
    if let Some(c) = server_cpu_open {
        println!("  server CPU    {c}% of a core while opening, {}% while idle", server_cpu_idle.unwrap_or(0.0));
    }
    println!(
        "  client        {}% of a core while opening, RSS {:.1} MiB",
        client_cpu_open.unwrap_or(0.0),
        client_rss.unwrap_or(0) as f64 / 1024.0
    );
    json!({
        "mode": "idle",
        "conns": opts.conns,
        "concurrency": opts.concurrency,
        "open": opened.to_json(),
        "welcomed": welcomed,
        "dropped_while_idle": dropped,
        "server_rss_kib_before": rss_before,
        "server_rss_kib_idle": rss_after,
        "server_rss_kib_after_close": rss_closed,
        "kib_per_idle_conn": per_conn_kib,
        "server_cpu_pct_opening": server_cpu_open,
        "server_cpu_pct_idle": server_cpu_idle,
        "client_cpu_pct_opening": client_cpu_open,
        "client_rss_kib": client_rss,
    })
}

// ---------------------------------------------------------------------------------------------
// rate and max

/// Where every connection starts measuring from, and how many take part (for the schedule).
#[derive(Clone, Copy)]
struct Start {
    t0: tokio::time::Instant,
    opened: u32,
}

#[derive(Default)]
struct ConnStats {
    opened: bool,
    sent: u64,
    completed: u64,
    errors: u64,
    error_kinds: ErrorKinds,
    /// (completion time in ms since t0, round trip in µs).
    samples: Vec<(u32, u32)>,
    /// (ack time in ms since t0, send → ack in µs).
    acks: Vec<(u32, u32)>,
    /// Acks and replies that came a second time.
    duplicates: u64,
    /// How late each send left against its schedule (rate mode), µs.
    lag_us: Vec<u32>,
    lost_in_flight: u64,
    disconnected: bool,
}

struct Driver {
    conn: u32,
    next_n: u64,
    /// Sent, not yet acknowledged: (client number, sent at).
    pending_ack: Vec<(u64, tokio::time::Instant)>,
    /// Acknowledged, reply not yet done: (visitor message id, sent at).
    awaiting: Vec<(i64, tokio::time::Instant)>,
    /// `done` frames that beat their ack (should not happen): (reply_to, at).
    early_done: Vec<(i64, tokio::time::Instant)>,
    /// The visitor messages whose reply came.
    replied: HashSet<i64>,
    stats: ConnStats,
}

/// (`at` in ms since `t0`, `sent` → `at` in µs).
fn sample(sent: tokio::time::Instant, at: tokio::time::Instant, t0: tokio::time::Instant) -> (u32, u32) {
    let took = at.saturating_duration_since(sent).as_micros().min(u32::MAX as u128) as u32;
    (at.saturating_duration_since(t0).as_millis().min(u32::MAX as u128) as u32, took)
}

impl Driver {
    fn in_flight(&self) -> usize {
        self.pending_ack.len() + self.awaiting.len()
    }

    async fn send(&mut self, ws: &mut Ws, text: &str) -> Result<(), ()> {
        let n = self.next_n;
        self.next_n += 1;
        let frame = format!(
            r#"{{"type":"message","client_msg_id":"{}-{}","text":{}}}"#,
            self.conn,
            n,
            serde_json::to_string(text).unwrap_or_default()
        );
        let at = tokio::time::Instant::now();
        self.pending_ack.push((n, at));
        self.stats.sent += 1;
        if let Err(e) = ws.send(Message::Text(frame)).await {
            self.stats.error_kinds.add(format!("send: {}", short_ws_error(&e)));
            self.stats.errors += 1;
            return Err(());
        }
        Ok(())
    }

    fn complete(
        &mut self,
        question: i64,
        sent: tokio::time::Instant,
        at: tokio::time::Instant,
        t0: tokio::time::Instant,
    ) {
        self.replied.insert(question);
        self.stats.completed += 1;
        self.stats.samples.push(sample(sent, at, t0));
    }

    fn client_number(id: &str) -> Option<u64> {
        id.rsplit_once('-')?.1.parse().ok()
    }

    /// Handles one text frame; returns how many requests it finished (replied or refused).
    fn on_text(&mut self, text: &str, t0: tokio::time::Instant) -> usize {
        if is_delta(text) {
            return 0;
        }
        let now = tokio::time::Instant::now();
        let Ok(frame) = serde_json::from_str::<Frame>(text) else {
            self.stats.errors += 1;
            self.stats.error_kinds.add("unreadable frame");
            return 0;
        };
        match &*frame.kind {
            "ack" => {
                let (Some(n), Some(message)) =
                    (frame.client_msg_id.as_deref().and_then(Self::client_number), frame.message)
                else {
                    return 0;
                };
                let Some(i) = self.pending_ack.iter().position(|(m, _)| *m == n) else {
                    // Sent before and no longer waiting: acknowledged (or refused) already.
                    self.stats.duplicates += u64::from(n < self.next_n);
                    return 0;
                };
                let (_, sent) = self.pending_ack.remove(i);
                self.stats.acks.push(sample(sent, now, t0));
                if let Some(j) = self.early_done.iter().position(|(r, _)| *r == message.id) {
                    let (_, at) = self.early_done.swap_remove(j);
                    self.complete(message.id, sent, at, t0);
                    return 1;
                }
                self.awaiting.push((message.id, sent));
                0
            }
            "done" => {
                let Some(reply_to) = frame.message.and_then(|m| m.reply_to) else { return 0 };
                match self.awaiting.iter().position(|(id, _)| *id == reply_to) {
                    Some(i) => {
                        let (_, sent) = self.awaiting.remove(i);
                        self.complete(reply_to, sent, now, t0);
                        1
                    }
                    None if self.replied.contains(&reply_to) => {
                        self.stats.duplicates += 1;
                        0
                    }
                    None => {
                        if !self.pending_ack.is_empty() {
                            self.early_done.push((reply_to, now));
                        }
                        0
                    }
                }
            }
            "error" => {
                self.stats.errors += 1;
                self.stats.error_kinds.add(format!("server: {}", frame.error.as_deref().unwrap_or("?")));
                match frame.client_msg_id.as_deref().and_then(Self::client_number) {
                    Some(n) => {
                        self.pending_ack.retain(|(m, _)| *m != n);
                        1
                    }
                    None => 0,
                }
            }
            "closed" => {
                self.stats.errors += 1;
                self.stats.error_kinds.add("conversation closed");
                0
            }
            _ => 0,
        }
    }
}

enum Step {
    Frame(Option<Result<Message, tungstenite::Error>>),
    SendDue,
    Deadline,
}

async fn drive(opts: Arc<Opts>, mut ws: Ws, rank: u32, mut start: watch::Receiver<Option<Start>>) -> ConnStats {
    let start = loop {
        // Keep reading (welcome, pings) while everyone else is still opening.
        tokio::select! {
            changed = start.changed() => {
                if changed.is_err() {
                    return ConnStats { opened: true, ..Default::default() };
                }
                if let Some(s) = *start.borrow() {
                    break s;
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(_)) => {}
                _ => return ConnStats { opened: true, disconnected: true, ..Default::default() },
            },
        }
    };
    let t0 = start.t0;
    let end = t0 + Duration::from_secs_f64(opts.secs);
    let hard_end = end + opts.drain;
    let mut d = Driver {
        conn: rank,
        next_n: 0,
        pending_ack: Vec::new(),
        awaiting: Vec::new(),
        early_done: Vec::new(),
        replied: HashSet::new(),
        stats: ConnStats { opened: true, ..Default::default() },
    };
    // rate: message k of this connection is due at t0 + (k·opened + rank) / rate.
    let gap = if opts.mode == Mode::Rate { start.opened as f64 / opts.rate } else { 0.0 };
    let offset = rank as f64 / opts.rate.max(1e-9);
    let due = |k: u64| t0 + Duration::from_secs_f64(offset + k as f64 * gap);
    let mut k: u64 = 0;
    let mut sending = true;

    if opts.mode == Mode::Max {
        for _ in 0..opts.inflight {
            if d.send(&mut ws, &opts.text).await.is_err() {
                d.stats.disconnected = true;
                break;
            }
        }
    } else if due(0) >= end {
        sending = false;
    }

    let mut clean = !d.stats.disconnected;
    while clean {
        if !sending && d.in_flight() == 0 {
            break;
        }
        let next_due = if opts.mode == Mode::Rate && sending { Some(due(k)) } else { None };
        let step = tokio::select! {
            biased;
            frame = ws.next() => Step::Frame(frame),
            _ = sleep_until(next_due.unwrap_or(hard_end)), if next_due.is_some() => Step::SendDue,
            _ = sleep_until(hard_end) => Step::Deadline,
        };
        match step {
            Step::Frame(Some(Ok(Message::Text(text)))) => {
                let finished = d.on_text(&text, t0);
                if opts.mode == Mode::Max && sending {
                    if tokio::time::Instant::now() >= end {
                        sending = false;
                    } else {
                        for _ in 0..finished {
                            if d.send(&mut ws, &opts.text).await.is_err() {
                                clean = false;
                                break;
                            }
                        }
                    }
                }
            }
            Step::Frame(Some(Ok(Message::Close(_)))) | Step::Frame(None) => {
                d.stats.errors += 1;
                d.stats.error_kinds.add("closed by server");
                clean = false;
            }
            Step::Frame(Some(Err(e))) => {
                d.stats.errors += 1;
                d.stats.error_kinds.add(format!("read: {}", short_ws_error(&e)));
                clean = false;
            }
            Step::Frame(Some(Ok(_))) => {}
            Step::SendDue => {
                let scheduled = due(k);
                let lag = tokio::time::Instant::now().saturating_duration_since(scheduled);
                d.stats.lag_us.push(lag.as_micros().min(u32::MAX as u128) as u32);
                if d.send(&mut ws, &opts.text).await.is_err() {
                    clean = false;
                }
                k += 1;
                if due(k) >= end {
                    sending = false;
                }
            }
            Step::Deadline => break,
        }
    }
    d.stats.lost_in_flight = d.in_flight() as u64;
    d.stats.disconnected |= !clean;
    if clean {
        close_quietly(ws).await;
    }
    d.stats
}

async fn run_load(opts: Arc<Opts>) -> serde_json::Value {
    let gate = Arc::new(Semaphore::new(opts.concurrency));
    let (report_tx, mut report_rx) = mpsc::unbounded_channel();
    let (start_tx, start_rx) = watch::channel(None::<Start>);
    let ranks = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(opts.conns);
    for i in 0..opts.conns {
        let (opts, gate, reports, start, ranks) =
            (opts.clone(), gate.clone(), report_tx.clone(), start_rx.clone(), ranks.clone());
        tasks.push(tokio::spawn(async move {
            let Some(ws) = open_reported(&opts, i, &gate, &reports).await else { return ConnStats::default() };
            drop(reports);
            let rank = ranks.fetch_add(1, Ordering::Relaxed);
            drive(opts, ws, rank, start).await
        }));
    }
    drop(report_tx);
    let opened = collect_opens(opts.conns, started, &mut report_rx).await;
    // A short pause so the welcomes are out of the way before the clock starts.
    sleep(Duration::from_millis(500)).await;
    let t0 = tokio::time::Instant::now() + Duration::from_millis(50);
    let _ = start_tx.send(Some(Start { t0, opened: ranks.load(Ordering::Relaxed) }));
    let warm_end = t0 + Duration::from_secs_f64(opts.warmup);
    sleep_until(warm_end).await;
    let cpu_warm = cpu_marks(&opts.pids);
    sleep_until(t0 + Duration::from_secs_f64(opts.secs)).await;
    let cpu_end = cpu_marks(&opts.pids);
    let rss_each: Vec<Option<u64>> = opts.pids.iter().map(|pid| proc_rss_kib(pid)).collect();
    let rss_end = rss_each.iter().copied().sum::<Option<u64>>().filter(|_| !rss_each.is_empty());
    let (server_cpu_each, server_cpu, client_cpu) = cpu_between(&cpu_end, &cpu_warm);

    let mut all = ConnStats::default();
    let mut disconnected = 0usize;
    let mut lag = Vec::new();
    for task in tasks {
        let Ok(s) = task.await else { continue };
        all.sent += s.sent;
        all.completed += s.completed;
        all.errors += s.errors;
        all.lost_in_flight += s.lost_in_flight;
        disconnected += (s.opened && s.disconnected) as usize;
        all.error_kinds.merge(s.error_kinds);
        all.samples.extend(s.samples);
        all.acks.extend(s.acks);
        all.duplicates += s.duplicates;
        lag.extend(s.lag_us);
    }
    let finished_at = tokio::time::Instant::now().saturating_duration_since(t0).as_secs_f64();

    // Steady window: after the warm-up, up to the end of the sending window.
    let (w0, w1) = ((opts.warmup * 1000.0) as u32, (opts.secs * 1000.0) as u32);
    let window_secs = opts.secs - opts.warmup;
    let in_window = |samples: &[(u32, u32)]| -> Vec<u32> {
        samples.iter().filter(|(t, _)| *t >= w0 && *t < w1).map(|(_, l)| *l).collect()
    };
    let mut steady = in_window(&all.samples);
    let ack_steady = latency_ms(&mut in_window(&all.acks));
    let steady_done = steady.len();
    let steady_rate = steady_done as f64 / window_secs;
    let mut per_sec = vec![0u64; opts.secs.ceil() as usize];
    for (t, _) in &all.samples {
        if let Some(slot) = per_sec.get_mut((*t / 1000) as usize) {
            *slot += 1;
        }
    }
    let full_secs: Vec<u64> = per_sec
        .iter()
        .enumerate()
        .filter(|(i, _)| (*i as f64) >= opts.warmup.ceil() && ((*i + 1) as f64) <= opts.secs)
        .map(|(_, n)| *n)
        .collect();
    let (best_sec, worst_sec) =
        (full_secs.iter().max().copied().unwrap_or(0), full_secs.iter().min().copied().unwrap_or(0));
    let mut every: Vec<u32> = all.samples.iter().map(|(_, l)| *l).collect();
    let lat_steady = latency_ms(&mut steady);
    let lat_all = latency_ms(&mut every);
    let lag_ms = latency_ms(&mut lag);
    let sent_rate = all.sent as f64 / opts.secs;

    match opts.mode {
        Mode::Rate => {
            println!("== rate: {} msg/s offered over {} conversations for {} s ==", opts.rate, opened.opened, opts.secs)
        }
        _ => println!(
            "== max: closed loop, {} conversations × {} in flight for {} s ==",
            opened.opened, opts.inflight, opts.secs
        ),
    }
    opened.print();
    println!(
        "  messages      {} sent ({:.1}/s), {} completed, {} errors, {} never answered, {} duplicates, {} sockets lost",
        all.sent, sent_rate, all.completed, all.errors, all.lost_in_flight, all.duplicates, disconnected
    );
    println!(
        "  throughput    {:.1} replies/s over the steady window ({:.1}–{:.1} s); seconds: best {}, worst {}",
        steady_rate, opts.warmup, opts.secs, best_sec, worst_sec
    );
    println!("  round trip    {}  [steady window]", fmt_lat(&lat_steady));
    println!("  round trip    {}  [all, incl. drain]", fmt_lat(&lat_all));
    println!("  ack           {}  [steady window]", fmt_lat(&ack_steady));
    if opts.mode == Mode::Rate {
        println!("  send lag      {}  [client behind its schedule]", fmt_lat(&lag_ms));
    }
    if let Some(c) = server_cpu {
        println!(
            "  server        {c}% of a core in the steady window ({:?}), RSS {:.1} MiB",
            server_cpu_each,
            rss_end.unwrap_or(0) as f64 / 1024.0
        );
    }
    println!("  client        {}% of a core in the steady window", client_cpu.unwrap_or(0.0));
    if !all.error_kinds.0.is_empty() {
        println!("  errors        {:?}", all.error_kinds.0);
    }
    json!({
        "mode": opts.mode.name(),
        "conns": opts.conns,
        "servers": opts.targets.len(),
        "forward": opts.forward,
        "offered_rate": if opts.mode == Mode::Rate { Some(opts.rate) } else { None },
        "inflight": if opts.mode == Mode::Max { Some(opts.inflight) } else { None },
        "secs": opts.secs,
        "warmup_secs": opts.warmup,
        "open": opened.to_json(),
        "sent": all.sent,
        "sent_per_sec": round1(sent_rate),
        "completed": all.completed,
        "errors": all.errors,
        "error_kinds": all.error_kinds.to_json(),
        "unanswered": all.lost_in_flight,
        "duplicates": all.duplicates,
        "sockets_lost": disconnected,
        "replies_per_sec_steady": round1(steady_rate),
        "best_second": best_sec,
        "worst_second": worst_sec,
        "rtt_ms_steady": lat_steady,
        "rtt_ms_all": lat_all,
        "ack_ms_steady": ack_steady,
        "send_lag_ms": if opts.mode == Mode::Rate { Some(lag_ms) } else { None },
        "server_cpu_pct": server_cpu,
        "server_cpu_pct_each": server_cpu_each,
        "client_cpu_pct": client_cpu,
        "server_rss_kib": rss_end,
        "server_rss_kib_each": rss_each,
        "finished_after_secs": round3(finished_at),
    })
}

// ---------------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(opts) => Arc::new(opts),
        Err(e) => {
            eprintln!("loadgen: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match opts.mode {
            Mode::Idle => run_idle(opts).await,
            Mode::Rate | Mode::Max => run_load(opts).await,
        }
    });
    println!("RESULT {result}");
    ExitCode::SUCCESS
}
