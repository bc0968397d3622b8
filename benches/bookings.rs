//! Booking benchmark: bookings per second with concurrent clients, and the latency of an
//! availability query over a 30-day range with 20 doctors.
//!
//! ```text
//! cargo bench --bench bookings -- --url http://127.0.0.1:PORT --key API_KEY --bookings 3000 --concurrency 8
//!     [--doctors 20] [--service "General Consultation"] [--from 2027-01-04] [--pool-days 91]
//!     [--range-days 30] [--contended-slots 50] [--contended-clients 32] [--availability 500]
//!     [--availability-concurrency 8] [--baseline 100] [--seed 1] [--pid SERVER_PID]
//! ```
//!
//! Against a workspace whose key is given (the demo workspace: three doctors, the service
//! "General Consultation" of 30 minutes with a 10-minute buffer):
//!
//! 1. Setup: creates doctors over REST until there are `--doctors`, and gives every doctor
//!    Monday to Friday 09:00–17:00.
//! 2. `availability-empty`: `--baseline` sequential availability queries for the service, any
//!    doctor, over `--range-days` days from `--from`, while no booking exists.
//! 3. `bookings`: `--concurrency` clients in a closed loop book `--bookings` distinct slots,
//!    drawn at random (fixed seed) from every weekday slot of every doctor over `--pool-days`
//!    days from `--from`. Slots start every `duration + buffer` minutes rounded up to 15 (45 for
//!    the demo service), so no two overlap and every request should be answered 201.
//! 4. `contended`: `--contended-clients` clients race for `--contended-slots` slots of one
//!    weekday after the pool (so the range of step 5 does not see them); each client tries every
//!    slot once, in its own random order. Exactly one request per slot should win (201), every
//!    other one should be a 409 with alternatives.
//! 5. `availability`: the same query as step 2, now that the calendars hold the bookings:
//!    `--availability` queries one at a time, then `--availability` more from
//!    `--availability-concurrency` clients at once.
//! 6. Verification: lists every confirmed booking (`GET /api/bookings?status=confirmed`, pages of
//!    500) and checks the count equals the 201s and no doctor has two bookings at one start.
//!
//! Latencies are from sending the request to having read the whole response body. Everything runs
//! on one tokio thread so the benchmark can be pinned to one core with `taskset`. Each phase
//! prints a human-readable block and a `RESULT {json}` line with a `phase` field.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, Weekday};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};

#[path = "common/mod.rs"]
mod common;
use common::{percentile, proc_cpu_ticks, round1, round3};

const USAGE: &str = "\
usage: bookings --url http://HOST:PORT --key API_KEY [options]

  --url URL                     the server's base URL (http:// only)
  --key KEY                     an API key of the workspace (Authorization: Bearer)
  --bookings N                  distinct free slots to book (default 3000)
  --concurrency C               clients booking at once (default 8)
  --doctors D                   doctors the workspace should have (default 20)
  --service NAME                the service to book and query (default General Consultation)
  --from YYYY-MM-DD             first date of the slot pool and of the queried range (default 2027-01-04)
  --pool-days N                 days the slot pool spans (default 91)
  --range-days N                days one availability query spans (default 30)
  --contended-slots N           slots raced for in the contended phase (default 50; 0: skip)
  --contended-clients N         clients racing for them, each trying every slot (default 32)
  --availability N              availability queries after the bookings, per mode (default 500; 0: skip)
  --availability-concurrency C  clients querying at once in the concurrent mode (default 8)
  --baseline N                  availability queries before any booking (default 100; 0: skip)
  --seed N                      seed of the random slot order (default 1)
  --pid PID                     server process: report its CPU use from /proc/PID";

/// Start of the doctors' hours (minutes after midnight) and their end: Monday to Friday.
const OPEN_MIN: u32 = 9 * 60;
const CLOSE_MIN: u32 = 17 * 60;
/// Offered start times are multiples of this (the server's default step).
const STEP_MIN: u32 = 15;
/// Availability queries sent, unmeasured, before each measured series.
const WARMUP: usize = 5;

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Clone, Debug)]
struct Opts {
    url: String,
    key: String,
    bookings: usize,
    concurrency: usize,
    doctors: usize,
    service: String,
    from: NaiveDate,
    pool_days: u32,
    range_days: u32,
    contended_slots: usize,
    contended_clients: usize,
    availability: usize,
    availability_concurrency: usize,
    baseline: usize,
    seed: u64,
    pid: Option<u32>,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    // `cargo bench` hands harness = false targets a `--bench` flag: not ours.
    let args: Vec<&str> = args.iter().map(String::as_str).filter(|a| *a != "--bench").collect();
    let mut flags: BTreeMap<&str, &str> = BTreeMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--") else { return Err(format!("unexpected argument `{arg}`")) };
        let Some(value) = it.next() else { return Err(format!("`{arg}` needs a value")) };
        flags.insert(name, value);
    }
    let known = [
        "url",
        "key",
        "bookings",
        "concurrency",
        "doctors",
        "service",
        "from",
        "pool-days",
        "range-days",
        "contended-slots",
        "contended-clients",
        "availability",
        "availability-concurrency",
        "baseline",
        "seed",
        "pid",
    ];
    if let Some(unknown) = flags.keys().find(|k| !known.contains(k)) {
        return Err(format!("unknown option `--{unknown}`"));
    }
    fn num<T: std::str::FromStr>(flags: &BTreeMap<&str, &str>, name: &str, default: T) -> Result<T, String> {
        match flags.get(name) {
            Some(v) => v.parse().map_err(|_| format!("`--{name} {v}` is not a valid number")),
            None => Ok(default),
        }
    }
    let url = flags.get("url").ok_or("`--url` is required")?.trim_end_matches('/').to_string();
    match url.strip_prefix("http://") {
        Some(host) if !host.is_empty() && !host.contains('/') => {}
        _ => return Err(format!("`{url}`: give http://host:port")),
    }
    let from_text = flags.get("from").copied().unwrap_or("2027-01-04");
    let from = NaiveDate::parse_from_str(from_text, "%Y-%m-%d")
        .map_err(|_| format!("`--from {from_text}` is not a date as YYYY-MM-DD"))?;
    let opts = Opts {
        url,
        key: flags.get("key").ok_or("`--key` is required")?.to_string(),
        bookings: num(&flags, "bookings", 3000)?,
        concurrency: num(&flags, "concurrency", 8)?,
        doctors: num(&flags, "doctors", 20)?,
        service: flags.get("service").copied().unwrap_or("General Consultation").to_string(),
        from,
        pool_days: num(&flags, "pool-days", 91)?,
        range_days: num(&flags, "range-days", 30)?,
        contended_slots: num(&flags, "contended-slots", 50)?,
        contended_clients: num(&flags, "contended-clients", 32)?,
        availability: num(&flags, "availability", 500)?,
        availability_concurrency: num(&flags, "availability-concurrency", 8)?,
        baseline: num(&flags, "baseline", 100)?,
        seed: num(&flags, "seed", 1)?,
        pid: flags.get("pid").map(|p| p.parse().map_err(|_| format!("`--pid {p}` is not a pid"))).transpose()?,
    };
    if opts.concurrency == 0 || opts.contended_clients == 0 || opts.availability_concurrency == 0 {
        return Err("the concurrency options must be at least 1".into());
    }
    if opts.doctors == 0 || opts.range_days == 0 {
        return Err("`--doctors` and `--range-days` must be at least 1".into());
    }
    if opts.pool_days < opts.range_days {
        return Err("`--pool-days` must be at least `--range-days`".into());
    }
    Ok(opts)
}

// ---------------------------------------------------------------------------------------------
// Slots

/// One appointment start: a doctor, a local date and a time of day (minutes after midnight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Slot {
    doctor_id: i64,
    date: NaiveDate,
    minute: u32,
}

impl Slot {
    fn time(&self) -> String {
        format!("{:02}:{:02}", self.minute / 60, self.minute % 60)
    }
}

fn is_weekday(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Start times of one day spaced `spacing` minutes apart, each with its whole occupied span
/// (`spacing` ≥ duration + buffer) inside the hours.
fn day_starts(spacing: u32) -> Vec<u32> {
    (0..).map(|i| OPEN_MIN + i * spacing).take_while(|m| m + spacing <= CLOSE_MIN).collect()
}

/// Every weekday slot of every doctor over `days` days from `from`, by date, time, doctor.
fn slot_pool(doctors: &[i64], from: NaiveDate, days: u32, spacing: u32) -> Vec<Slot> {
    let starts = day_starts(spacing);
    let mut pool = Vec::new();
    for date in from.iter_days().take(days as usize).filter(|d| is_weekday(*d)) {
        for &minute in &starts {
            pool.extend(doctors.iter().map(|&doctor_id| Slot { doctor_id, date, minute }));
        }
    }
    pool
}

// ---------------------------------------------------------------------------------------------
// REST

#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    opts: Arc<Opts>,
}

/// What one request got: the status (0 when none came) and the body, or why it failed.
struct Answer {
    status: u16,
    body: bytes::Bytes,
    error: Option<String>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A short text for reports: `201`, `409`, `timeout`, `send: …`.
    fn kind(&self) -> String {
        match &self.error {
            Some(e) => e.clone(),
            None => self.status.to_string(),
        }
    }

    fn excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body).chars().take(300).collect()
    }
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.opts.url)).bearer_auth(&self.opts.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Answer { status: 0, body: bytes::Bytes::new(), error: Some(describe(&e)) },
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(body) => Answer { status, body, error: None },
            Err(e) => Answer { status, body: bytes::Bytes::new(), error: Some(describe(&e)) },
        }
    }

    /// A call that must answer `expected`; its JSON body.
    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> Result<Value, String> {
        let what = format!("{method} {path}");
        let answer = self.call(method, path, body).await;
        if let Some(e) = &answer.error {
            return Err(format!("{what}: {e}"));
        }
        if answer.status != expected {
            return Err(format!("{what} answered {}: {}", answer.status, answer.excerpt()));
        }
        Ok(answer.json())
    }

    async fn book(&self, slot: &Slot, customer: &str, email: &str) -> Answer {
        let body = json!({
            "customer_name": customer,
            "customer_email": email,
            "date": slot.date.format("%Y-%m-%d").to_string(),
            "time": slot.time(),
            "service": self.opts.service,
            "doctor_id": slot.doctor_id,
        });
        self.call(reqwest::Method::POST, "/api/bookings", Some(&body)).await
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timeout".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    format!("send: {}", text.chars().take(100).collect::<String>())
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Gives the workspace `--doctors` doctors, all with Monday–Friday hours; their ids, sorted.
async fn setup_doctors(api: &Api) -> Result<Vec<i64>, String> {
    let listed = api.expect(reqwest::Method::GET, "/api/doctors", None, 200).await?;
    let mut ids: Vec<i64> = listed["data"]
        .as_array()
        .map(|rows| {
            rows.iter().filter(|d| d["active"].as_bool().unwrap_or(true)).filter_map(|d| d["id"].as_i64()).collect()
        })
        .unwrap_or_default();
    let mut n = ids.len();
    while ids.len() < api.opts.doctors {
        n += 1;
        let body = json!({"name": format!("Dr. Bench {n}"), "specialty": "General Dentist"});
        let created = api.expect(reqwest::Method::POST, "/api/doctors", Some(&body), 201).await?;
        ids.push(created["id"].as_i64().ok_or_else(|| format!("POST /api/doctors: no id in {created}"))?);
    }
    ids.sort_unstable();
    ids.truncate(api.opts.doctors);
    let clock = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    let hours: Vec<Value> =
        (1..=5).map(|weekday| json!({"weekday": weekday, "start": clock(OPEN_MIN), "end": clock(CLOSE_MIN)})).collect();
    let hours = Value::Array(hours);
    for id in &ids {
        api.expect(reqwest::Method::PUT, &format!("/api/doctors/{id}/hours"), Some(&hours), 200).await?;
    }
    Ok(ids)
}

/// The service's duration and buffer, in minutes.
async fn service_minutes(api: &Api) -> Result<(u32, u32), String> {
    let listed = api.expect(reqwest::Method::GET, "/api/services", None, 200).await?;
    let service = listed["data"]
        .as_array()
        .and_then(|rows| rows.iter().find(|s| s["name"].as_str() == Some(api.opts.service.as_str())))
        .ok_or_else(|| format!("the workspace has no service named `{}`", api.opts.service))?;
    let minutes = |field: &str| service[field].as_u64().map(|v| v as u32).ok_or(format!("service without `{field}`"));
    Ok((minutes("duration_min")?, minutes("buffer_min")?))
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// What a set of requests got: latency of each (microseconds), counts by outcome, a few bodies of
/// unexpected answers.
#[derive(Default)]
struct Tally {
    latency_us: Vec<u32>,
    outcomes: BTreeMap<String, u64>,
    samples: Vec<String>,
}

impl Tally {
    fn record(&mut self, took: Duration, answer: &Answer, expected: &[u16]) {
        self.latency_us.push(took.as_micros().min(u32::MAX as u128) as u32);
        *self.outcomes.entry(answer.kind()).or_default() += 1;
        if !(answer.error.is_none() && expected.contains(&answer.status)) && self.samples.len() < 3 {
            self.samples.push(format!("{}: {}", answer.kind(), answer.excerpt()));
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latency_us.extend(other.latency_us);
        for (k, n) in other.outcomes {
            *self.outcomes.entry(k).or_default() += n;
        }
        for s in other.samples {
            if self.samples.len() < 3 {
                self.samples.push(s);
            }
        }
    }

    fn count(&self, kind: &str) -> u64 {
        self.outcomes.get(kind).copied().unwrap_or(0)
    }

    fn total(&self) -> u64 {
        self.outcomes.values().sum()
    }
}

/// p50 / p90 / p95 / p99 / max / mean in milliseconds, and n.
fn summary(latency_us: &[u32]) -> Value {
    let mut sorted = latency_us.to_vec();
    sorted.sort_unstable();
    let ms = |us: u32| round3(us as f64 / 1000.0);
    let mean = if sorted.is_empty() {
        0.0
    } else {
        sorted.iter().map(|&v| v as f64).sum::<f64>() / sorted.len() as f64 / 1000.0
    };
    json!({
        "p50": ms(percentile(&sorted, 0.50)),
        "p90": ms(percentile(&sorted, 0.90)),
        "p95": ms(percentile(&sorted, 0.95)),
        "p99": ms(percentile(&sorted, 0.99)),
        "max": ms(sorted.last().copied().unwrap_or(0)),
        "mean": round3(mean),
        "n": sorted.len(),
    })
}

fn fmt_summary(v: &Value) -> String {
    format!("p50 {} ms, p95 {} ms, p99 {} ms, max {} ms (n={})", v["p50"], v["p95"], v["p99"], v["max"], v["n"])
}

/// CPU time of the server and of this process between two points.
struct CpuMeter {
    pid: Option<String>,
    server: Option<u64>,
    client: Option<u64>,
    started: Instant,
}

impl CpuMeter {
    fn start(opts: &Opts) -> Self {
        let pid = opts.pid.map(|p| p.to_string());
        let server = pid.as_deref().and_then(proc_cpu_ticks);
        CpuMeter { server, client: proc_cpu_ticks("self"), pid, started: Instant::now() }
    }

    /// (server, client) in percent of one core since `start`.
    fn read(&self) -> (Option<f64>, Option<f64>) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let pct = |before: Option<u64>, after: Option<u64>| {
            Some(round1(after?.saturating_sub(before?) as f64 / 100.0 / secs * 100.0))
        };
        (pct(self.server, self.pid.as_deref().and_then(proc_cpu_ticks)), pct(self.client, proc_cpu_ticks("self")))
    }
}

fn print_cpu(server: Option<f64>, client: Option<f64>) {
    match server {
        Some(s) => println!("  cpu           server {s}% of a core, benchmark {}%", client.unwrap_or(0.0)),
        None => println!("  cpu           benchmark {}% of a core", client.unwrap_or(0.0)),
    }
}

// ---------------------------------------------------------------------------------------------
// Phases

/// Closed loop: each client books the next slot of `slots` until none is left.
async fn book_slots(api: Api, slots: Arc<Vec<Slot>>, next: Arc<AtomicUsize>) -> Tally {
    let mut tally = Tally::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = slots.get(i) else { break };
        let customer = format!("Bench Patient {i}");
        let email = format!("bench-patient-{i}@example.com");
        let started = Instant::now();
        let answer = api.book(slot, &customer, &email).await;
        tally.record(started.elapsed(), &answer, &[201]);
    }
    tally
}

async fn phase_bookings(api: &Api, slots: Vec<Slot>, range_end: NaiveDate) -> Result<(Value, u64), String> {
    let opts = &api.opts;
    let in_range = slots.iter().filter(|s| s.date <= range_end).count();
    println!(
        "== bookings: {} distinct free slots, {} clients ({} of them in the queried range) ==",
        slots.len(),
        opts.concurrency,
        in_range
    );
    let slots = Arc::new(slots);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = CpuMeter::start(opts);
    let started = Instant::now();
    let workers: Vec<_> =
        (0..opts.concurrency).map(|_| tokio::spawn(book_slots(api.clone(), slots.clone(), next.clone()))).collect();
    let mut tally = Tally::default();
    for worker in workers {
        tally.merge(worker.await.map_err(|e| format!("a booking client failed: {e}"))?);
    }
    let secs = started.elapsed().as_secs_f64();
    let (server_cpu, client_cpu) = cpu.read();
    let created = tally.count("201");
    let other = tally.total() - created;
    let lat = summary(&tally.latency_us);
    println!(
        "  booked        {created} of {} in {secs:.2} s = {:.1} bookings/s; {other} not 201 {:?}",
        slots.len(),
        created as f64 / secs.max(1e-6),
        tally.outcomes
    );
    for s in &tally.samples {
        println!("  unexpected    {s}");
    }
    println!("  latency       {}", fmt_summary(&lat));
    print_cpu(server_cpu, client_cpu);
    Ok((
        json!({
            "phase": "bookings",
            "concurrency": opts.concurrency,
            "requests": tally.total(),
            "created": created,
            "not_created": other,
            "outcomes": tally.outcomes,
            "in_queried_range": in_range,
            "secs": round3(secs),
            "bookings_per_sec": round1(created as f64 / secs.max(1e-6)),
            "latency_ms": lat,
            "server_cpu_pct": server_cpu,
            "client_cpu_pct": client_cpu,
        }),
        created,
    ))
}

/// One racer: tries every slot once in its own order; the slots it won.
async fn race(api: Api, slots: Arc<Vec<Slot>>, client: usize, seed: u64) -> (Tally, Tally, Vec<usize>) {
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed.wrapping_add(1000 + client as u64)));
    let customer = format!("Racer {client}");
    let email = format!("racer-{client}@example.com");
    let (mut won, mut lost) = (Tally::default(), Tally::default());
    let mut wins = Vec::new();
    for i in order {
        let started = Instant::now();
        let answer = api.book(&slots[i], &customer, &email).await;
        let took = started.elapsed();
        if answer.error.is_none() && answer.status == 201 {
            won.record(took, &answer, &[201]);
            wins.push(i);
        } else {
            lost.record(took, &answer, &[409]);
        }
    }
    (won, lost, wins)
}

async fn phase_contended(api: &Api, slots: Vec<Slot>) -> Result<(Value, u64, bool), String> {
    let opts = &api.opts;
    let date = slots[0].date;
    println!(
        "== contended: {} clients race for {} slots on {date}, each trying every slot once ==",
        opts.contended_clients,
        slots.len()
    );
    let slots = Arc::new(slots);
    let cpu = CpuMeter::start(opts);
    let started = Instant::now();
    let workers: Vec<_> =
        (0..opts.contended_clients).map(|c| tokio::spawn(race(api.clone(), slots.clone(), c, opts.seed))).collect();
    let (mut won, mut lost) = (Tally::default(), Tally::default());
    let mut wins_per_slot = vec![0u32; slots.len()];
    for worker in workers {
        let (w, l, wins) = worker.await.map_err(|e| format!("a racing client failed: {e}"))?;
        won.merge(w);
        lost.merge(l);
        for i in wins {
            wins_per_slot[i] += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let (server_cpu, client_cpu) = cpu.read();
    let decisions = won.total() + lost.total();
    let created = won.total();
    let conflicts = lost.count("409");
    let other = lost.total() - conflicts;
    let slots_won_once = wins_per_slot.iter().filter(|&&n| n == 1).count();
    let slots_won_twice = wins_per_slot.iter().filter(|&&n| n > 1).count();

    // What the server holds for that day.
    let path = format!("/api/bookings?status=confirmed&from={date}&to={date}&limit=500");
    let listed = api.expect(reqwest::Method::GET, &path, None, 200).await?;
    let rows = listed.as_array().cloned().unwrap_or_default();
    let distinct: HashSet<(i64, String)> = rows
        .iter()
        .map(|r| (r["doctor_id"].as_i64().unwrap_or(0), r["starts_at"].as_str().unwrap_or("").to_owned()))
        .collect();
    let ok = created as usize == slots.len()
        && slots_won_once == slots.len()
        && other == 0
        && rows.len() == slots.len()
        && distinct.len() == rows.len();

    let all = {
        let mut v = won.latency_us.clone();
        v.extend(&lost.latency_us);
        summary(&v)
    };
    let (won_lat, lost_lat) = (summary(&won.latency_us), summary(&lost.latency_us));
    println!(
        "  decided       {decisions} requests in {secs:.2} s = {:.1} decisions/s: {created} × 201, {conflicts} × 409, \
         {other} other {:?}",
        decisions as f64 / secs.max(1e-6),
        lost.outcomes
    );
    for s in &lost.samples {
        println!("  unexpected    {s}");
    }
    println!(
        "  winners       {slots_won_once} slots won once, {slots_won_twice} won more than once; the server lists {} \
         confirmed bookings that day ({} distinct doctor/start pairs) → {}",
        rows.len(),
        distinct.len(),
        if ok { "exactly one per slot" } else { "WRONG" }
    );
    println!("  latency       {}  [all]", fmt_summary(&all));
    println!("  latency 201   {}", fmt_summary(&won_lat));
    println!("  latency 409   {}", fmt_summary(&lost_lat));
    print_cpu(server_cpu, client_cpu);
    Ok((
        json!({
            "phase": "contended",
            "clients": opts.contended_clients,
            "slots": slots.len(),
            "date": date.to_string(),
            "decisions": decisions,
            "created": created,
            "conflicts": conflicts,
            "other": other,
            "outcomes": lost.outcomes,
            "slots_won_once": slots_won_once,
            "slots_won_more_than_once": slots_won_twice,
            "server_confirmed_that_day": rows.len(),
            "server_distinct_that_day": distinct.len(),
            "exactly_one_per_slot": ok,
            "secs": round3(secs),
            "decisions_per_sec": round1(decisions as f64 / secs.max(1e-6)),
            "latency_ms": all,
            "latency_201_ms": won_lat,
            "latency_409_ms": lost_lat,
            "server_cpu_pct": server_cpu,
            "client_cpu_pct": client_cpu,
        }),
        created,
        ok,
    ))
}

/// Queries `path` until `next` reaches `n`.
async fn query_loop(api: Api, path: Arc<String>, n: usize, next: Arc<AtomicUsize>) -> (Tally, Vec<usize>) {
    let mut tally = Tally::default();
    let mut sizes = Vec::new();
    while next.fetch_add(1, Ordering::Relaxed) < n {
        let started = Instant::now();
        let answer = api.call(reqwest::Method::GET, &path, None).await;
        tally.record(started.elapsed(), &answer, &[200]);
        sizes.push(answer.body.len());
    }
    (tally, sizes)
}

/// `n` availability queries from `clients` clients at once, after a few unmeasured ones; the
/// figures, and whether every query answered 200.
async fn availability(api: &Api, label: &str, n: usize, clients: usize) -> Result<(Value, bool), String> {
    let opts = &api.opts;
    let to = opts.from + chrono::Days::new(opts.range_days as u64 - 1);
    let path =
        format!("/api/availability?service={}&from={}&to={to}", encode(&opts.service), opts.from.format("%Y-%m-%d"));
    let mut first = Value::Null;
    for _ in 0..WARMUP {
        first = api.expect(reqwest::Method::GET, &path, None, 200).await?;
    }
    let slots = first["data"].as_array().map(Vec::len).unwrap_or(0);
    let doctors = first["data"]
        .as_array()
        .map(|s| s.iter().filter_map(|v| v["doctor_id"].as_i64()).collect::<HashSet<_>>().len())
        .unwrap_or(0);
    let timezone = first["timezone"].as_str().unwrap_or("?").to_owned();

    let path = Arc::new(path);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = CpuMeter::start(opts);
    let started = Instant::now();
    let workers: Vec<_> =
        (0..clients).map(|_| tokio::spawn(query_loop(api.clone(), path.clone(), n, next.clone()))).collect();
    let mut tally = Tally::default();
    let mut sizes = Vec::new();
    for worker in workers {
        let (t, s) = worker.await.map_err(|e| format!("a querying client failed: {e}"))?;
        tally.merge(t);
        sizes.extend(s);
    }
    let secs = started.elapsed().as_secs_f64();
    let (server_cpu, client_cpu) = cpu.read();
    let ok_count = tally.count("200");
    let ok = ok_count == n as u64;
    let mean_bytes = if sizes.is_empty() { 0 } else { sizes.iter().sum::<usize>() / sizes.len() };
    let lat = summary(&tally.latency_us);
    println!(
        "  {label:<13} {n} queries from {clients} client(s) in {secs:.2} s = {:.1}/s; {ok_count} × 200 {:?}",
        n as f64 / secs.max(1e-6),
        tally.outcomes
    );
    for s in &tally.samples {
        println!("  unexpected    {s}");
    }
    println!("  latency       {}", fmt_summary(&lat));
    println!("  answer        {slots} slots of {doctors} doctors ({timezone}), {mean_bytes} bytes");
    print_cpu(server_cpu, client_cpu);
    Ok((
        json!({
            "phase": label,
            "service": opts.service,
            "from": opts.from.to_string(),
            "to": to.to_string(),
            "range_days": opts.range_days,
            "clients": clients,
            "queries": n,
            "ok": ok_count,
            "outcomes": tally.outcomes,
            "slots": slots,
            "doctors_with_slots": doctors,
            "timezone": timezone,
            "bytes": mean_bytes,
            "secs": round3(secs),
            "queries_per_sec": round1(n as f64 / secs.max(1e-6)),
            "latency_ms": lat,
            "server_cpu_pct": server_cpu,
            "client_cpu_pct": client_cpu,
        }),
        ok,
    ))
}

/// Every confirmed booking of the workspace: how many, and how many doctor/start pairs repeat.
async fn confirmed_bookings(api: &Api) -> Result<(usize, usize), String> {
    let mut seen: HashMap<(i64, String), u32> = HashMap::new();
    let mut total = 0;
    loop {
        let path = format!("/api/bookings?status=confirmed&limit=500&offset={total}");
        let page = api.expect(reqwest::Method::GET, &path, None, 200).await?;
        let rows = page.as_array().cloned().unwrap_or_default();
        for r in &rows {
            let key = (r["doctor_id"].as_i64().unwrap_or(0), r["starts_at"].as_str().unwrap_or("").to_owned());
            *seen.entry(key).or_default() += 1;
        }
        total += rows.len();
        if rows.len() < 500 {
            break;
        }
    }
    let repeated = seen.values().filter(|&&n| n > 1).count();
    Ok((total, repeated))
}

// ---------------------------------------------------------------------------------------------

async fn run(opts: Arc<Opts>) -> Result<bool, String> {
    let pool = opts.concurrency.max(opts.contended_clients).max(opts.availability_concurrency);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(pool)
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let api = Api { client, opts: opts.clone() };
    let mut ok = true;

    let setup_started = Instant::now();
    let (duration, buffer) = service_minutes(&api).await?;
    let doctors = setup_doctors(&api).await?;
    // Starts this far apart never overlap, buffers included, and stay on the 15-minute grid.
    let spacing = (duration + buffer).div_ceil(STEP_MIN) * STEP_MIN;
    let per_day = day_starts(spacing).len();
    println!(
        "== setup: {} doctors with Mon–Fri {:02}:00–{:02}:00; `{}` {duration} min + {buffer} min buffer → slots every \
         {spacing} min, {per_day} per doctor and day ({:.2} s) ==",
        doctors.len(),
        OPEN_MIN / 60,
        CLOSE_MIN / 60,
        opts.service,
        setup_started.elapsed().as_secs_f64()
    );
    let range_end = opts.from + chrono::Days::new(opts.range_days as u64 - 1);

    if opts.baseline > 0 {
        println!(
            "== availability before any booking: `{}`, {} days from {} ==",
            opts.service, opts.range_days, opts.from
        );
        let (result, fine) = availability(&api, "availability-empty", opts.baseline, 1).await?;
        println!("RESULT {result}");
        ok &= fine;
    }

    let mut pool_slots = slot_pool(&doctors, opts.from, opts.pool_days, spacing);
    if opts.bookings > pool_slots.len() {
        return Err(format!("`--bookings {}`: the pool holds only {} slots", opts.bookings, pool_slots.len()));
    }
    pool_slots.shuffle(&mut StdRng::seed_from_u64(opts.seed));
    pool_slots.truncate(opts.bookings);
    let mut expected_confirmed = 0;
    if opts.bookings > 0 {
        let (result, created) = phase_bookings(&api, pool_slots, range_end).await?;
        ok &= result["not_created"].as_u64() == Some(0);
        println!("RESULT {result}");
        expected_confirmed += created;
    }

    if opts.contended_slots > 0 {
        // The first weekday after the pool, by time then doctor.
        let day = (opts.from + chrono::Days::new(opts.pool_days as u64))
            .iter_days()
            .find(|d| is_weekday(*d))
            .ok_or("no weekday after the pool")?;
        let day_slots = slot_pool(&doctors, day, 1, spacing);
        if opts.contended_slots > day_slots.len() {
            return Err(format!("`--contended-slots`: one day holds only {} slots", day_slots.len()));
        }
        let slots = day_slots.into_iter().take(opts.contended_slots).collect();
        let (result, created, fine) = phase_contended(&api, slots).await?;
        println!("RESULT {result}");
        ok &= fine;
        expected_confirmed += created;
    }

    if opts.availability > 0 {
        println!(
            "== availability with the bookings: `{}`, {} days from {}, any of {} doctors ==",
            opts.service,
            opts.range_days,
            opts.from,
            doctors.len()
        );
        let (result, fine) = availability(&api, "availability", opts.availability, 1).await?;
        println!("RESULT {result}");
        ok &= fine;
        let clients = opts.availability_concurrency;
        let (result, fine) = availability(&api, "availability-concurrent", opts.availability, clients).await?;
        println!("RESULT {result}");
        ok &= fine;
    }

    let (confirmed, repeated) = confirmed_bookings(&api).await?;
    let consistent = confirmed as u64 == expected_confirmed && repeated == 0;
    println!(
        "== verification: {confirmed} confirmed bookings listed, {expected_confirmed} created; {repeated} doctor/start \
         pairs booked twice → {} ==",
        if consistent { "consistent" } else { "INCONSISTENT" }
    );
    println!(
        "RESULT {}",
        json!({
            "phase": "verification",
            "confirmed": confirmed,
            "created": expected_confirmed,
            "double_booked": repeated,
            "consistent": consistent,
        })
    );
    Ok(ok && consistent)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(opts) => Arc::new(opts),
        Err(e) => {
            eprintln!("bookings: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bookings: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("bookings: some requests were not answered as expected (see above)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("bookings: {e}");
            ExitCode::FAILURE
        }
    }
}
