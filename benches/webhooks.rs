//! Webhook delivery benchmark: how fast, and how promptly, the WebhookDispatcher delivers.
//!
//! ```text
//! cargo bench --bench webhooks -- --url http://127.0.0.1:PORT --key API_KEY --events 20000 --concurrency 32
//!     [--receiver-port 0] [--timeout 120] [--grace 2] [--pid SERVER_PID]
//! ```
//!
//! 1. Starts a minimal HTTP/1.1 receiver on 127.0.0.1 (keep-alive, `Content-Length` bodies) that
//!    answers every request `200` with an empty body and records, per request, when it arrived
//!    and the event's `data.conversation_id` and `data.created_at`.
//! 2. Registers a webhook endpoint for `conversation_started` pointing at the receiver.
//! 3. Creates `--events` conversations over REST from `--concurrency` clients in a closed loop;
//!    each commits one `conversation_started` event into the outbox. This also measures the
//!    creation rate.
//! 4. Waits (up to `--timeout` seconds after the last creation) until every created conversation's
//!    event has arrived, then `--grace` seconds more to catch late duplicates.
//!
//! Reports the delivery rate (events / (last arrival − first event's `created_at`)), the
//! steady-state rate over the middle 80 % of arrivals, the event-to-delivery latency (arrival −
//! `created_at`, server and receiver share the host clock), duplicates and missing events.
//! Everything runs on one tokio thread so the benchmark can be pinned to one core with `taskset`.
//! Results print as a human-readable block and as one `RESULT {json}` line.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::sleep;

#[path = "common/mod.rs"]
mod common;
use common::{fmt_lat, percentile, proc_cpu_ticks, round1, round3};

const USAGE: &str = "\
usage: webhooks --url http://HOST:PORT --key API_KEY --events N --concurrency C [options]

  --url URL             the server's base URL (http:// only)
  --key KEY             an API key of the workspace (Authorization: Bearer)
  --events N            conversations to create = conversation_started events to deliver
  --concurrency C       REST clients creating conversations at once
  --receiver-port P     port of the built-in webhook receiver on 127.0.0.1 (default 0: any)
  --timeout S           seconds to wait for deliveries after the last creation (default 120)
  --grace S             seconds to keep listening for duplicates after the last event (default 2)
  --pid PID             server process: report its CPU use from /proc/PID";

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Clone, Debug)]
struct Opts {
    url: String,
    key: String,
    events: usize,
    concurrency: usize,
    receiver_port: u16,
    timeout: Duration,
    grace: Duration,
    pid: Option<u32>,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    // `cargo bench` hands harness = false targets a `--bench` flag: not ours.
    let args: Vec<&str> = args.iter().map(String::as_str).filter(|a| *a != "--bench").collect();
    let mut flags: BTreeMap<&str, &str> = BTreeMap::new();
    let mut it = args.iter();
    while let Some(key) = it.next() {
        let Some(name) = key.strip_prefix("--") else { return Err(format!("unexpected argument `{key}`")) };
        let Some(value) = it.next() else { return Err(format!("`{key}` needs a value")) };
        flags.insert(name, value);
    }
    let known = ["url", "key", "events", "concurrency", "receiver-port", "timeout", "grace", "pid"];
    if let Some(unknown) = flags.keys().find(|k| !known.contains(k)) {
        return Err(format!("unknown option `--{unknown}`"));
    }
    fn num<T: std::str::FromStr>(flags: &BTreeMap<&str, &str>, name: &str, default: Option<T>) -> Result<T, String> {
        match flags.get(name) {
            Some(v) => v.parse().map_err(|_| format!("`--{name} {v}` is not a valid number")),
            None => default.ok_or_else(|| format!("`--{name}` is required")),
        }
    }
    let url = flags.get("url").ok_or("`--url` is required")?.trim_end_matches('/').to_string();
    let Some(host) = url.strip_prefix("http://") else {
        return Err(format!("`{url}`: only http:// URLs are supported"));
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("`{url}`: give http://host:port"));
    }
    let secs = |name: &str, default: f64| -> Result<Duration, String> {
        let s: f64 = num(&flags, name, Some(default))?;
        if s.is_nan() || s < 0.0 {
            return Err(format!("`--{name}` must not be negative"));
        }
        Ok(Duration::from_secs_f64(s))
    };
    let opts = Opts {
        url: url.clone(),
        key: flags.get("key").ok_or("`--key` is required")?.to_string(),
        events: num(&flags, "events", None)?,
        concurrency: num(&flags, "concurrency", None)?,
        receiver_port: num(&flags, "receiver-port", Some(0))?,
        timeout: secs("timeout", 120.0)?,
        grace: secs("grace", 2.0)?,
        pid: flags.get("pid").map(|p| p.parse().map_err(|_| format!("`--pid {p}` is not a pid"))).transpose()?,
    };
    if opts.events == 0 || opts.concurrency == 0 {
        return Err("`--events` and `--concurrency` must be at least 1".into());
    }
    Ok(opts)
}

// ---------------------------------------------------------------------------------------------
// The receiver

/// One request the receiver got.
struct Arrival {
    /// Wall clock (ms since the epoch) when the whole request had been read.
    at_ms: i64,
    conversation_id: Option<String>,
    created_at: Option<i64>,
}

#[derive(Default)]
struct Received {
    arrivals: Vec<Arrival>,
    /// Requests the receiver could not read as a webhook (answered 400).
    bad: u64,
    connections: u64,
}

type Shared = Arc<Mutex<Received>>;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

async fn receive(listener: TcpListener, shared: Shared) {
    loop {
        let Ok((socket, _)) = listener.accept().await else { continue };
        let _ = socket.set_nodelay(true);
        shared.lock().unwrap().connections += 1;
        tokio::spawn(serve_connection(socket, shared.clone()));
    }
}

/// Reads requests off one connection until EOF (keep-alive), answering each `200`.
async fn serve_connection(mut socket: TcpStream, shared: Shared) {
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // The head: everything up to the blank line.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 * 1024 {
                shared.lock().unwrap().bad += 1;
                let _ = socket.write_all(BAD).await;
                return;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut length: Option<usize> = None;
        let mut chunked = false;
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else { continue };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
        if chunked || (length.is_none() && !head.starts_with("GET ")) {
            // Not what the dispatcher sends; refuse rather than guess where the body ends.
            shared.lock().unwrap().bad += 1;
            let _ = socket.write_all(BAD).await;
            return;
        }
        let length = length.unwrap_or(0);
        while buf.len() < head_end + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let at_ms = now_ms();
        let body = &buf[head_end..head_end + length];
        let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let data = parsed.as_ref().and_then(|v| v.get("data"));
        let arrival = Arrival {
            at_ms,
            conversation_id: data.and_then(|d| d.get("conversation_id")).and_then(|v| v.as_str()).map(str::to_owned),
            created_at: data.and_then(|d| d.get("created_at")).and_then(|v| v.as_i64()),
        };
        let ok = arrival.conversation_id.is_some() && arrival.created_at.is_some();
        {
            let mut r = shared.lock().unwrap();
            if ok {
                r.arrivals.push(arrival);
            } else {
                r.bad += 1;
            }
        }
        // Answer 200 either way: a refused delivery would only come back as a retry.
        if socket.write_all(OK).await.is_err() {
            return;
        }
        buf.drain(..head_end + length);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// REST

async fn register_endpoint(client: &reqwest::Client, opts: &Opts, receiver: &str) -> Result<i64, String> {
    let response = client
        .post(format!("{}/api/webhooks", opts.url))
        .bearer_auth(&opts.key)
        .json(&json!({"url": receiver, "events": ["conversation_started"], "description": "webhook benchmark"}))
        .send()
        .await
        .map_err(|e| format!("POST /api/webhooks: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status.as_u16() != 201 {
        return Err(format!("POST /api/webhooks answered {status}: {}", text.chars().take(300).collect::<String>()));
    }
    let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("POST /api/webhooks: {e}"))?;
    body["id"].as_i64().ok_or_else(|| format!("POST /api/webhooks: no id in {text}"))
}

#[derive(Default)]
struct Created {
    ids: Vec<String>,
    /// REST latency of each successful creation, microseconds.
    latency_us: Vec<u32>,
    errors: ErrorKinds,
}

async fn create_conversations(client: reqwest::Client, opts: Arc<Opts>, next: Arc<AtomicUsize>) -> Created {
    let url = format!("{}/api/conversations", opts.url);
    let mut out = Created::default();
    while next.fetch_add(1, Ordering::Relaxed) < opts.events {
        let started = Instant::now();
        let result =
            client.post(&url).bearer_auth(&opts.key).header("content-type", "application/json").body("{}").send().await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                out.errors.add(if e.is_timeout() { "timeout".into() } else { format!("send: {}", short(&e)) });
                continue;
            }
        };
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        if status != 201 {
            out.errors.add(format!("status {status}"));
            continue;
        }
        let took = started.elapsed();
        match serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["id"].as_str().map(str::to_owned))
        {
            Some(id) => {
                out.ids.push(id);
                out.latency_us.push(took.as_micros().min(u32::MAX as u128) as u32);
            }
            None => out.errors.add("201 without an id"),
        }
    }
    out
}

fn short(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text.chars().take(100).collect()
}

// ---------------------------------------------------------------------------------------------
// /proc readings and statistics

/// Percent of one core between two tick readings `secs` apart.
fn cpu_pct(before: Option<u64>, after: Option<u64>, secs: f64) -> Option<f64> {
    Some(round1(after?.saturating_sub(before?) as f64 / 100.0 / secs.max(1e-3) * 100.0))
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

    fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

// ---------------------------------------------------------------------------------------------

async fn run(opts: Arc<Opts>) -> Result<serde_json::Value, String> {
    let listener = TcpListener::bind(("127.0.0.1", opts.receiver_port))
        .await
        .map_err(|e| format!("cannot bind the receiver on 127.0.0.1:{}: {e}", opts.receiver_port))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let receiver_url = format!("http://127.0.0.1:{port}/hook");
    let shared: Shared = Arc::new(Mutex::new(Received::default()));
    tokio::spawn(receive(listener, shared.clone()));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency)
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let endpoint = register_endpoint(&client, &opts, &receiver_url).await?;
    println!(
        "== webhooks: {} conversation_started events, {} REST clients, receiver {receiver_url} (endpoint {endpoint}) ==",
        opts.events, opts.concurrency
    );

    // Create the conversations: the events.
    let cpu_server_0 = opts.pid.and_then(|p| proc_cpu_ticks(&p.to_string()));
    let cpu_client_0 = proc_cpu_ticks("self");
    let started = Instant::now();
    let started_ms = now_ms();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..opts.concurrency)
        .map(|_| tokio::spawn(create_conversations(client.clone(), opts.clone(), next.clone())))
        .collect();
    let mut created = Created::default();
    for worker in workers {
        let Ok(part) = worker.await else { continue };
        created.ids.extend(part.ids);
        created.latency_us.extend(part.latency_us);
        created.errors.merge(part.errors);
    }
    let creation_secs = started.elapsed().as_secs_f64();
    let created_end_ms = now_ms();
    let delivered_by_creation_end = {
        let r = shared.lock().unwrap();
        r.arrivals.iter().filter(|a| a.at_ms <= created_end_ms).count()
    };
    let expected: HashSet<&str> = created.ids.iter().map(String::as_str).collect();
    let n = expected.len();
    println!(
        "  created       {n} conversations in {creation_secs:.2} s = {:.0}/s ({} errors); {} events delivered meanwhile",
        n as f64 / creation_secs.max(1e-6),
        created.errors.total(),
        delivered_by_creation_end
    );

    // Wait for every created conversation's event.
    let wait_started = Instant::now();
    let mut last_print = Instant::now();
    let mut seen: HashSet<String> = HashSet::with_capacity(n);
    let mut scanned = 0usize;
    let mut all_in = n == 0;
    while !all_in && wait_started.elapsed() < opts.timeout {
        {
            let r = shared.lock().unwrap();
            for a in &r.arrivals[scanned..] {
                if let Some(id) = a.conversation_id.as_deref() {
                    if expected.contains(id) {
                        seen.insert(id.to_owned());
                    }
                }
            }
            scanned = r.arrivals.len();
        }
        all_in = seen.len() == n;
        if !all_in {
            if last_print.elapsed() >= Duration::from_secs(5) {
                last_print = Instant::now();
                eprintln!("  … {} of {n} events delivered", seen.len());
            }
            sleep(Duration::from_millis(10)).await;
        }
    }
    let done_secs = started.elapsed().as_secs_f64();
    let cpu_server_1 = opts.pid.and_then(|p| proc_cpu_ticks(&p.to_string()));
    let cpu_client_1 = proc_cpu_ticks("self");
    if !all_in {
        eprintln!("  gave up after {:.0} s: {} of {n} events delivered", opts.timeout.as_secs_f64(), seen.len());
    }
    // Late duplicates (a retry of something already delivered) would show up now.
    sleep(opts.grace).await;

    // ----- the numbers
    let received = std::mem::take(&mut *shared.lock().unwrap());
    let mut first: HashMap<&str, &Arrival> = HashMap::with_capacity(n);
    let mut duplicates = 0u64;
    let mut unexpected = 0u64;
    for a in &received.arrivals {
        let Some(id) = a.conversation_id.as_deref() else { continue };
        if !expected.contains(id) {
            unexpected += 1;
            continue;
        }
        if first.contains_key(id) {
            duplicates += 1;
        } else {
            first.insert(id, a);
        }
    }
    let delivered = first.len();
    let missing = n - delivered;
    let duplicated_ids = {
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for a in &received.arrivals {
            if let Some(id) = a.conversation_id.as_deref().filter(|id| expected.contains(id)) {
                *counts.entry(id).or_default() += 1;
            }
        }
        counts.values().filter(|c| **c > 1).count()
    };

    let mut arrivals: Vec<i64> = first.values().map(|a| a.at_ms).collect();
    arrivals.sort_unstable();
    let mut latency: Vec<i64> = first.values().map(|a| a.at_ms - a.created_at.unwrap_or(a.at_ms)).collect();
    latency.sort_unstable();
    let first_created = first.values().filter_map(|a| a.created_at).min().unwrap_or(started_ms);
    let last_arrival = arrivals.last().copied().unwrap_or(first_created);
    let span_secs = (last_arrival - first_created) as f64 / 1000.0;
    let delivered_per_sec = delivered as f64 / span_secs.max(1e-3);
    // Steady state: between the 10th and the 90th percentile arrival.
    let (steady_rate, steady_secs) = if delivered >= 10 {
        let (i, j) = (delivered / 10, delivered - 1 - delivered / 10);
        let secs = (arrivals[j] - arrivals[i]) as f64 / 1000.0;
        ((j - i) as f64 / secs.max(1e-3), secs)
    } else {
        (0.0, 0.0)
    };
    // Best and worst whole second of arrivals inside that middle window.
    let (best_sec, worst_sec) = if delivered >= 10 {
        let (lo, hi) = (arrivals[delivered / 10], arrivals[delivered - 1 - delivered / 10]);
        let mut per_sec: BTreeMap<i64, u64> = BTreeMap::new();
        for s in ((lo - first_created) / 1000 + 1)..((hi - first_created) / 1000) {
            per_sec.insert(s, 0);
        }
        for t in &arrivals {
            if let Some(slot) = per_sec.get_mut(&((t - first_created) / 1000)) {
                *slot += 1;
            }
        }
        (per_sec.values().max().copied(), per_sec.values().min().copied())
    } else {
        (None, None)
    };
    let drain_secs = (last_arrival - created_end_ms).max(0) as f64 / 1000.0;
    let lat = json!({
        "p50": percentile(&latency, 0.50),
        "p90": percentile(&latency, 0.90),
        "p99": percentile(&latency, 0.99),
        "max": latency.last().copied().unwrap_or(0),
        "n": latency.len(),
    });
    created.latency_us.sort_unstable();
    let rest_ms = |us: u32| round3(us as f64 / 1000.0);
    let rest = json!({
        "p50": rest_ms(percentile(&created.latency_us, 0.50)),
        "p90": rest_ms(percentile(&created.latency_us, 0.90)),
        "p99": rest_ms(percentile(&created.latency_us, 0.99)),
        "max": rest_ms(created.latency_us.last().copied().unwrap_or(0)),
        "n": created.latency_us.len(),
    });
    let server_cpu = cpu_pct(cpu_server_0, cpu_server_1, done_secs);
    let client_cpu = cpu_pct(cpu_client_0, cpu_client_1, done_secs);

    println!("  REST latency  {}", fmt_lat(&rest));
    if !created.errors.0.is_empty() {
        println!("  REST errors   {:?}", created.errors.0);
    }
    println!(
        "  delivered     {delivered} of {n} ({missing} missing, {duplicates} duplicate requests for {duplicated_ids} events, \
         {unexpected} unexpected, {} unreadable) over {} connection(s)",
        received.bad, received.connections
    );
    println!(
        "  throughput    {delivered_per_sec:.1} events/s overall (first created_at → last arrival, {span_secs:.2} s); \
         {steady_rate:.1}/s steady (middle 80 %, {steady_secs:.2} s; seconds: best {}, worst {})",
        best_sec.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        worst_sec.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
    );
    println!(
        "  backlog       {} undelivered when creation ended; drained {drain_secs:.2} s later",
        n - delivered_by_creation_end.min(n)
    );
    println!("  latency       {}  [arrival − created_at]", fmt_lat(&lat));
    if let Some(c) = server_cpu {
        println!("  server        {c}% of a core from the first creation to the last arrival");
    }
    println!("  client        {}% of a core over the same time", client_cpu.unwrap_or(0.0));
    Ok(json!({
        "events": opts.events,
        "concurrency": opts.concurrency,
        "created": n,
        "create_errors": created.errors.total(),
        "create_error_kinds": created.errors.0,
        "create_secs": round3(creation_secs),
        "created_per_sec": round1(n as f64 / creation_secs.max(1e-6)),
        "create_latency_ms": rest,
        "delivered": delivered,
        "missing": missing,
        "duplicates": duplicates,
        "duplicated_events": duplicated_ids,
        "unexpected": unexpected,
        "unreadable": received.bad,
        "receiver_connections": received.connections,
        "complete": all_in,
        "delivered_per_sec": round1(delivered_per_sec),
        "span_secs": round3(span_secs),
        "steady_per_sec": round1(steady_rate),
        "steady_secs": round3(steady_secs),
        "best_second": best_sec,
        "worst_second": worst_sec,
        "delivered_by_creation_end": delivered_by_creation_end,
        "drain_secs": round3(drain_secs),
        "latency_ms": lat,
        "server_cpu_pct": server_cpu,
        "client_cpu_pct": client_cpu,
        "finished_after_secs": round3(done_secs),
    }))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(opts) => Arc::new(opts),
        Err(e) => {
            eprintln!("webhooks: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("webhooks: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(result) => {
            println!("RESULT {result}");
            // Duplicates are allowed (at-least-once) and reported; missing events are a failure.
            if result["complete"].as_bool().unwrap_or(false) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("webhooks: {e}");
            ExitCode::FAILURE
        }
    }
}
