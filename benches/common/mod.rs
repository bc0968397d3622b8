//! Helpers shared by the benchmark binaries (included with `#[path]`): percentiles, rounding,
//! a process's CPU time and memory from /proc, `RESULT` lines, a widget's answer to `hello`, the
//! REST client of the benchmarks that drive a server, and the `main` of an async benchmark.

#![allow(dead_code)]

pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// utime + stime in clock ticks (USER_HZ, 100 on Linux).
pub fn proc_cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

pub fn fmt_lat(v: &serde_json::Value) -> String {
    format!("p50 {} ms, p90 {} ms, p99 {} ms, max {} ms (n={})", v["p50"], v["p90"], v["p99"], v["max"], v["n"])
}

/// Resident memory of a process, in KiB (`VmRSS` of /proc/<pid>/status).
pub fn proc_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time of the server (by pid) and of this process at one instant.
pub struct CpuMark {
    pub at: std::time::Instant,
    pub server: Option<u64>,
    pub client: Option<u64>,
}

impl CpuMark {
    pub fn now(server_pid: Option<&str>) -> Self {
        Self {
            at: std::time::Instant::now(),
            server: server_pid.and_then(proc_cpu_ticks),
            client: proc_cpu_ticks("self"),
        }
    }

    /// (server %, client %) of one core between two marks (USER_HZ = 100: a tick is 10 ms).
    pub fn since(&self, earlier: &CpuMark) -> (Option<f64>, Option<f64>) {
        let secs = self.at.duration_since(earlier.at).as_secs_f64().max(1e-3);
        let pct = |a: Option<u64>, b: Option<u64>| Some(round1(a?.saturating_sub(b?) as f64 / 100.0 / secs * 100.0));
        (pct(self.server, earlier.server), pct(self.client, earlier.client))
    }
}

/// One machine-readable line of results: `RESULT {json}` with its phase.
pub fn result(phase: &str, mut value: serde_json::Value) {
    value["phase"] = serde_json::json!(phase);
    println!("RESULT {value}");
}

/// What a text frame on a widget socket says to its `hello`: `Some(Ok(conversation id))` for
/// `ready`, `Some(Err(…))` for an `error` or an unreadable frame, `None` for any other frame.
pub fn widget_ready(text: &str) -> Option<Result<String, String>> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        conversation_id: Option<String>,
        #[serde(default)]
        error: Option<String>,
    }
    let Ok(frame) = serde_json::from_str::<Answer>(text) else {
        return Some(Err("unreadable frame before ready".into()));
    };
    match frame.kind.as_str() {
        "ready" => Some(frame.conversation_id.ok_or_else(|| "ready without conversation_id".to_string())),
        "error" => Some(Err(format!("hello refused: {}", frame.error.as_deref().unwrap_or("?")))),
        _ => None,
    }
}

/// The server's REST API, as a benchmark calls it.
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    /// `(status, JSON body)` (Null when the body is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), String> {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| format!("{method} {path}: {e}"))?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)))
    }
}

/// The `main` of a benchmark that parses its flags and then runs on a current-thread runtime:
/// usage errors exit 2, failures 1.
pub fn run_main<O, F, Fut>(
    name: &str,
    usage: &str,
    parse: impl FnOnce(&[String]) -> Result<O, String>,
    run: F,
) -> std::process::ExitCode
where
    F: FnOnce(O) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    use std::process::ExitCode;
    // `cargo bench` hands harness = false targets a `--bench` flag: not ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let opts = match parse(&args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{name}: {e}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
