//! Conversation ownership across nodes, on three real `frontdesk serve` processes sharing one
//! PostgreSQL database and one Redis (`FRONTDESK_LEASE_MS=2500`): a conversation watched and
//! written from three nodes at once is one conversation; its owner killed with SIGKILL in the
//! middle of a reply hands it to another node once the lease expires, with nothing lost or
//! repeated; a rolling restart (SIGTERM, wait, start again, node after node) under REST traffic
//! loses and duplicates nothing and answers no 500; Redis stopped and started under traffic.
//!
//! PostgreSQL only: several processes on one SQLite file is not a supported deployment.
//! The nodes' logs (stderr, `RUST_LOG=warn,frontdesk=info`) are printed when a test fails.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{run_cli, Backend, PrivateRedis, Socket, TestDb};

/// The conversation lease's time to live, so a dead owner's conversations move on quickly.
const LEASE_MS: &str = "2500";
/// Every node of a cluster needs the same key for the secrets it stores (32 zero bytes).
const SECRET_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
/// How long any one awaited frame, event or state may take before the test gives up.
const WAIT: Duration = Duration::from_secs(20);

const LONG_POLICY: &str = "Our cancellation policy: appointments can be cancelled or moved free of charge up to \
    twenty four hours before they start. Later cancellations are charged half the price of the visit, and a \
    missed appointment without notice is charged in full. We make exceptions for emergencies and illness, \
    of course, so please call us as soon as you know you cannot come and we will find a new time together.";

// ---------------------------------------------------------------------------------------------
// The cluster: real processes
// ---------------------------------------------------------------------------------------------

/// What `workspace create --demo` and `agent create` printed.
struct Credentials {
    key: String,
    bot_id: String,
    agent_token: String,
}

/// One `frontdesk serve` process.
struct Process {
    child: Child,
    base: String,
}

/// Nodes 0, 1, 2… of one deployment: one PostgreSQL database, one Redis (a prefix of the
/// test's own), each node with its own data folder and log. Every process is killed on drop.
struct Cluster {
    nodes: Vec<Process>,
    /// Each node's current base URL (a restarted node listens on a new port); shared with the
    /// clients that spread their requests over the nodes.
    bases: Arc<RwLock<Vec<String>>>,
    env: Vec<(String, String)>,
    logs: Vec<PathBuf>,
    generations: Vec<usize>,
    http: reqwest::Client,
    creds: Credentials,
    dir: tempfile::TempDir,
    /// Dropped last: the database goes once every process is gone.
    _db: TestDb,
}

impl Cluster {
    /// Migrates a fresh PostgreSQL database, creates a demo workspace and an agent with the CLI,
    /// and starts `n` nodes; returns once every node serves and hears the cluster through Redis.
    async fn start(redis_url: &str, n: usize) -> Cluster {
        Cluster::start_with(redis_url, n, &[]).await
    }

    /// [`Cluster::start`] with some of the nodes' settings changed (`(variable, value)`).
    async fn start_with(redis_url: &str, n: usize, settings: &[(&str, &str)]) -> Cluster {
        let db = TestDb::new(Backend::Postgres);
        let mut env: Vec<(String, String)> = db.binary_env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let prefix = format!("frontdesk-test-{}:", uuid::Uuid::new_v4().simple());
        for (name, value) in [
            ("REDIS_URL", redis_url.to_owned()),
            ("FRONTDESK_REDIS_PREFIX", prefix),
            ("FRONTDESK_LEASE_MS", LEASE_MS.to_owned()),
            ("FRONTDESK_RATE_LIMIT_PER_MINUTE", "100000".to_owned()),
            ("FRONTDESK_CHAT_RATE_LIMIT_PER_MINUTE", "100000".to_owned()),
            ("FRONTDESK_SECRET_KEY", SECRET_KEY.to_owned()),
            ("FRONTDESK_DB_POOL_SIZE", "8".to_owned()),
            ("FRONTDESK_AGENT_SILENCE_SECS", "0".to_owned()),
        ] {
            env.push((name.to_owned(), value));
        }
        for (name, value) in settings {
            env.retain(|(existing, _)| existing != name);
            env.push((name.to_string(), value.to_string()));
        }
        let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let migrated = run_cli(&["migrate"], &envs);
        assert_eq!(migrated["migrated"], true, "{migrated}");
        let created = run_cli(&["workspace", "create", "--name", "Failover Dental", "--demo"], &envs);
        let workspace = created["workspace_id"].to_string();
        let agent = run_cli(
            &["agent", "create", "--workspace", &workspace, "--name", "Dana Reyes", "--email", "dana@failover.test"],
            &envs,
        );
        let creds = Credentials {
            key: created["api_key"].as_str().expect("api_key").to_owned(),
            bot_id: created["bot_id"].as_str().expect("bot_id").to_owned(),
            agent_token: agent["token"].as_str().expect("agent token").to_owned(),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let starting: Vec<_> = (0..n)
            .map(|i| {
                let (env, data, log) = (env.clone(), dir.path().join(format!("node{i}")), log_path(dir.path(), i, 0));
                tokio::task::spawn_blocking(move || spawn_node(&env, &data, &log))
            })
            .collect();
        let mut nodes = Vec::new();
        for (i, started) in starting.into_iter().enumerate() {
            let process = tokio::time::timeout(Duration::from_secs(60), started)
                .await
                .unwrap_or_else(|_| panic!("node {i} did not print its address within 60 s"))
                .unwrap_or_else(|err| panic!("node {i} did not start: {err}"));
            nodes.push(process);
        }
        let cluster = Cluster {
            bases: Arc::new(RwLock::new(nodes.iter().map(|p| p.base.clone()).collect())),
            logs: (0..n).map(|i| log_path(dir.path(), i, 0)).collect(),
            generations: vec![0; n],
            nodes,
            env,
            http: reqwest::Client::builder().timeout(Duration::from_secs(40)).build().expect("http client"),
            creds,
            dir,
            _db: db,
        };
        for i in 0..n {
            cluster.wait_ready(i).await;
        }
        cluster
    }

    fn base(&self, i: usize) -> String {
        self.bases.read().unwrap()[i].clone()
    }

    fn ws_url(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.base(i).replacen("http://", "ws://", 1))
    }

    /// Waits until node `i` answers `/readyz` with Redis `ok`, the cluster's events heard, and
    /// at least as many nodes as the cluster has.
    async fn wait_ready(&self, i: usize) {
        let url = format!("{}/readyz", self.base(i));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let last = match self.http.get(&url).timeout(Duration::from_secs(5)).send().await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let body: Value = res.json().await.unwrap_or(Value::Null);
                    let redis = &body["redis"];
                    let nodes = redis["nodes"].as_array().map_or(0, Vec::len);
                    if status == 200
                        && redis["status"] == "ok"
                        && redis["events"] == "listening"
                        && nodes >= self.nodes.len()
                    {
                        return;
                    }
                    format!("{status} {body}")
                }
                Err(err) => err.to_string(),
            };
            assert!(Instant::now() < deadline, "node {i} not ready with Redis within 30 s: {last}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: the process vanishes with its sockets, its live conversations and its leases.
    fn kill(&mut self, i: usize) {
        let child = &mut self.nodes[i].child;
        child.kill().expect("kill -9 node");
        child.wait().expect("reap node");
    }

    /// SIGTERM, then waits (bounded) for the process to exit; answers its exit status.
    async fn sigterm(&mut self, i: usize) -> ExitStatus {
        let pid = self.nodes[i].child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.nodes[i].child.try_wait().expect("node status") {
                return status;
            }
            assert!(Instant::now() < deadline, "node {i} (pid {pid}) still runs 20 s after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts node `i` again (same data folder, a new port); returns once it is ready.
    async fn restart(&mut self, i: usize) {
        self.generations[i] += 1;
        let log = log_path(self.dir.path(), i, self.generations[i]);
        self.logs.push(log.clone());
        let (env, data) = (self.env.clone(), self.dir.path().join(format!("node{i}")));
        let process = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || spawn_node(&env, &data, &log)),
        )
        .await
        .unwrap_or_else(|_| panic!("restarted node {i} did not print its address within 60 s"))
        .unwrap_or_else(|err| panic!("restarted node {i} did not start: {err}"));
        self.bases.write().unwrap()[i] = process.base.clone();
        let mut old = std::mem::replace(&mut self.nodes[i], process);
        let _ = old.child.kill();
        let _ = old.child.wait();
        self.wait_ready(i).await;
    }

    /// Changes the bot's settings (merged into what it has). Call before any conversation
    /// starts: the other nodes read the settings when they first need them.
    async fn set_bot(&self, changes: Value) {
        let url = format!("{}/api/bots/{}", self.base(0), self.creds.bot_id);
        let bot: Value = self.http.get(&url).bearer_auth(&self.creds.key).send().await.unwrap().json().await.unwrap();
        let mut settings = bot["settings"].clone();
        for (name, value) in changes.as_object().unwrap() {
            settings[name] = value.clone();
        }
        let res = self
            .http
            .patch(&url)
            .bearer_auth(&self.creds.key)
            .json(&json!({ "settings": settings }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "bot settings: {}", res.text().await.unwrap());
    }

    /// Starts a conversation over REST through node `i`; returns its id.
    async fn start_conversation(&self, i: usize) -> String {
        let res = self
            .http
            .post(format!("{}/api/conversations", self.base(i)))
            .bearer_auth(&self.creds.key)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 201, "start a conversation on node {i}: {body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Every stored message of a conversation, read through node `i`, page after page.
    async fn history(&self, i: usize, conversation: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let url = format!("{}/api/conversations/{conversation}/messages?after={after}&limit=100", self.base(i));
            let res = self.http.get(&url).bearer_auth(&self.creds.key).send().await.expect("history request");
            let status = res.status().as_u16();
            let page: Value = res.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 200, "history through node {i}: {page}");
            all.extend(page["messages"].as_array().unwrap().iter().cloned());
            after = page["next_after"].as_i64().unwrap();
            if page["has_more"] != true {
                return all;
            }
        }
    }

    fn print_logs(&self) {
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail: Vec<String> = lines[lines.len().saturating_sub(40)..]
                .iter()
                .map(|line| {
                    if line.len() > 400 {
                        format!("{}…", line.chars().take(400).collect::<String>())
                    } else {
                        line.to_string()
                    }
                })
                .collect();
            eprintln!(
                "===== {} (last {} of {} lines) =====\n{}",
                log.display(),
                tail.len(),
                lines.len(),
                tail.join("\n")
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

fn log_path(dir: &Path, node: usize, generation: usize) -> PathBuf {
    dir.join(format!("node{node}.{generation}.log"))
}

/// Runs `frontdesk serve` (the pattern of `helpers::spawn_binary`, with the cluster's
/// environment, a data folder of the node's own and stderr to a log file).
fn spawn_node(env: &[(String, String)], data_dir: &Path, log: &Path) -> Process {
    std::fs::create_dir_all(data_dir).expect("node data folder");
    let stderr = std::fs::File::create(log).expect("node log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("FRONTDESK_DATA_DIR", data_dir)
        .env("FRONTDESK_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn,frontdesk=info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("frontdesk binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(base) = line.strip_prefix("frontdesk listening on ") {
                    break base.trim().to_owned();
                }
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("frontdesk exited before listening: {}", std::fs::read_to_string(log).unwrap_or_default());
            }
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Process { child, base }
}

// ---------------------------------------------------------------------------------------------
// Observers: sockets, SSE and long-polls that record everything they receive
// ---------------------------------------------------------------------------------------------

/// Frames (or events, or messages) as they arrived, and why the stream ended, if it did.
#[derive(Clone, Default)]
struct Frames {
    log: Arc<Mutex<Vec<Value>>>,
    ended: Arc<Mutex<Option<String>>>,
}

impl Frames {
    fn push(&self, frame: Value) {
        self.log.lock().unwrap().push(frame);
    }

    fn end(&self, why: String) {
        *self.ended.lock().unwrap() = Some(why);
    }

    fn len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn all(&self) -> Vec<Value> {
        self.log.lock().unwrap().clone()
    }

    fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap().clone()
    }

    fn find(&self, from: usize, wanted: &impl Fn(&Value) -> bool) -> Option<(usize, Value)> {
        let log = self.log.lock().unwrap();
        log.iter().enumerate().skip(from).find(|(_, f)| wanted(f)).map(|(i, f)| (i, f.clone()))
    }

    fn tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let start = log.len().saturating_sub(12);
        log[start..].iter().map(Value::to_string).collect::<Vec<_>>().join("\n  ")
    }

    /// The first frame from index `from` on that `wanted` accepts, or `None` after `timeout` or
    /// once the stream has ended without one.
    async fn wait_opt(
        &self,
        from: usize,
        timeout: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Option<(usize, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.find(from, &wanted) {
                return Some(found);
            }
            if self.ended().is_some() || Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Like [`Frames::wait_opt`] within [`WAIT`], panicking with `what` and the last frames.
    async fn wait_for(&self, from: usize, what: &str, wanted: impl Fn(&Value) -> bool) -> (usize, Value) {
        match self.wait_opt(from, WAIT, wanted).await {
            Some(found) => found,
            None => panic!(
                "{what}: not within {WAIT:?}{}; last frames:\n  {}",
                self.ended().map(|why| format!(" (the stream ended: {why})")).unwrap_or_default(),
                self.tail()
            ),
        }
    }
}

/// A WebSocket (widget or agent) whose frames a task records as they come.
struct Live {
    sink: SplitSink<Socket, Message>,
    frames: Frames,
    reader: tokio::task::JoinHandle<()>,
    refs: u64,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Live {
    async fn try_connect(url: &str) -> Result<Live, String> {
        let (socket, _) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| format!("{url}: no connection within 10 s"))?
            .map_err(|err| format!("{url}: {err}"))?;
        let (sink, mut stream) = socket.split();
        let frames = Frames::default();
        let recorder = frames.clone();
        let reader = tokio::spawn(async move {
            let why = loop {
                match stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        recorder.push(serde_json::from_str(&text).unwrap_or(Value::String(text)));
                    }
                    Some(Ok(Message::Close(Some(close)))) => {
                        break format!("closed {} {}", u16::from(close.code), close.reason);
                    }
                    Some(Ok(Message::Close(None))) => break "closed without a close frame".to_owned(),
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => break format!("socket error: {err}"),
                    None => break "socket ended".to_owned(),
                }
            };
            recorder.end(why);
        });
        Ok(Live { sink, frames, reader, refs: 0 })
    }

    async fn connect(url: &str) -> Live {
        Live::try_connect(url).await.unwrap_or_else(|err| panic!("socket connects: {err}"))
    }

    async fn try_send(&mut self, frame: &Value) -> Result<(), String> {
        self.sink.send(Message::Text(frame.to_string())).await.map_err(|err| err.to_string())
    }

    async fn send(&mut self, frame: Value) {
        if let Err(err) = self.try_send(&frame).await {
            panic!("send {frame}: {err}");
        }
    }

    /// The widget's hello; answers the `ready` frame.
    async fn hello(&mut self, bot_id: &str, conversation: Option<&str>, last_seq: Option<i64>) -> Value {
        let mut frame = json!({ "type": "hello", "bot_id": bot_id });
        if let Some(id) = conversation {
            frame["conversation_id"] = json!(id);
        }
        if let Some(seq) = last_seq {
            frame["last_seq"] = json!(seq);
        }
        let from = self.frames.len();
        self.send(frame.clone()).await;
        let (_, ready) = self
            .frames
            .wait_for(from, &format!("an answer to {frame}"), |f| f["type"] == "ready" || f["type"] == "error")
            .await;
        assert_eq!(ready["type"], "ready", "{frame} → {ready}");
        ready
    }

    /// A visitor message that must be acknowledged at the first try; answers the stored message.
    async fn say(&mut self, client_msg_id: &str, text: &str) -> Value {
        let from = self.frames.len();
        self.send(json!({ "type": "message", "client_msg_id": client_msg_id, "text": text })).await;
        let (_, answer) = self
            .frames
            .wait_for(from, &format!("the ack of {client_msg_id}"), |f| {
                (f["type"] == "ack" || f["type"] == "error") && f["client_msg_id"] == client_msg_id
            })
            .await;
        assert_eq!(answer["type"], "ack", "{client_msg_id}: {answer}");
        assert_eq!(answer["message"]["content"], text, "{answer}");
        answer["message"].clone()
    }

    /// A visitor message sent again with the same `client_msg_id` until it is acknowledged (an
    /// error frame, or no answer within 10 s, while a dead owner's lease runs out); 30 s at most.
    async fn say_retrying(&mut self, client_msg_id: &str, text: &str) -> Value {
        let frame = json!({ "type": "message", "client_msg_id": client_msg_id, "text": text });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut failures = Vec::new();
        loop {
            let from = self.frames.len();
            self.send(frame.clone()).await;
            let answer = self
                .frames
                .wait_opt(from, Duration::from_secs(10), |f| {
                    (f["type"] == "ack" || f["type"] == "error") && f["client_msg_id"] == client_msg_id
                })
                .await;
            match answer {
                Some((_, ack)) if ack["type"] == "ack" => {
                    assert_eq!(ack["message"]["content"], text, "{ack}");
                    return ack["message"].clone();
                }
                Some((_, error)) => {
                    // Like a 500 over REST: never an answer to retry.
                    assert_ne!(error["error"], "internal server error", "{client_msg_id}: {error}");
                    failures.push(error["error"].as_str().unwrap_or("?").to_owned());
                }
                None => failures.push("no ack within 10 s".to_owned()),
            }
            if let Some(why) = self.frames.ended() {
                panic!("{client_msg_id}: the socket ended ({why}) after {}", compact(&failures));
            }
            assert!(
                Instant::now() < deadline,
                "{client_msg_id} never acknowledged within 30 s: {}; last frames:\n  {}",
                compact(&failures),
                self.frames.tail()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// An agent socket's command with a fresh `ref`; answers the index and frame of its `ack`
    /// or `error`.
    async fn command(&mut self, mut frame: Value) -> (usize, Value) {
        self.refs += 1;
        let reference = self.refs;
        frame["ref"] = json!(reference);
        let from = self.frames.len();
        self.send(frame.clone()).await;
        self.frames
            .wait_for(from, &format!("the answer to {frame}"), |f| {
                (f["type"] == "ack" || f["type"] == "error") && f["ref"] == reference
            })
            .await
    }
}

/// A task that records what an HTTP stream or poll brings; stopped when dropped.
struct Watcher {
    frames: Frames,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// `GET /api/conversations/{id}/events` on node `i` from the start; records each event's
    /// data (the same JSON as a socket frame) with the SSE id as `sse_id`.
    fn sse(cluster: &Cluster, i: usize, conversation: &str) -> Watcher {
        let url = format!("{}/api/conversations/{conversation}/events", cluster.base(i));
        let key = cluster.creds.key.clone();
        let frames = Frames::default();
        let recorder = frames.clone();
        let task = tokio::spawn(async move {
            // No overall timeout: the stream lives as long as the test wants it.
            let res = match reqwest::Client::new().get(&url).bearer_auth(&key).send().await {
                Ok(res) if res.status() == 200 => res,
                Ok(res) => return recorder.end(format!("SSE answered {}", res.status())),
                Err(err) => return recorder.end(format!("SSE request failed: {err}")),
            };
            let mut body = res.bytes_stream();
            let mut buffer = String::new();
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(err) => return recorder.end(format!("SSE stream failed: {err}")),
                };
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let (mut id, mut data) = (None, String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = v.trim().parse::<i64>().ok();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data.push_str(v);
                        }
                    }
                    if data.is_empty() {
                        continue; // a keepalive comment
                    }
                    let mut event: Value = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    if let Some(id) = id {
                        event["sse_id"] = json!(id);
                    }
                    recorder.push(event);
                }
            }
            recorder.end("SSE stream ended".to_owned());
        });
        Watcher { frames, task }
    }

    /// Long-polls `GET /api/conversations/{id}/messages?after=…&wait=10` on node `i` from the
    /// start; records each message.
    fn long_poll(cluster: &Cluster, i: usize, conversation: &str) -> Watcher {
        let url = format!("{}/api/conversations/{conversation}/messages", cluster.base(i));
        let (key, http) = (cluster.creds.key.clone(), cluster.http.clone());
        let frames = Frames::default();
        let recorder = frames.clone();
        let task = tokio::spawn(async move {
            let mut after = 0;
            loop {
                let page = http.get(format!("{url}?after={after}&wait=10&limit=100")).bearer_auth(&key).send().await;
                let page: Option<Value> = match page {
                    Ok(res) if res.status() == 200 => res.json().await.ok(),
                    _ => None,
                };
                match page {
                    Some(page) => {
                        for message in page["messages"].as_array().unwrap() {
                            recorder.push(message.clone());
                        }
                        after = page["next_after"].as_i64().unwrap_or(after);
                    }
                    None => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        Watcher { frames, task }
    }
}

// What each kind of observer saw of the stored messages, in the order it saw them.

/// A widget's `message` and `done` frames (a bot's messages come as `done`, others as `message`).
fn seen_by_widget(frames: &[Value]) -> Vec<Value> {
    frames.iter().filter(|f| f["type"] == "message" || f["type"] == "done").map(|f| f["message"].clone()).collect()
}

/// An agent socket's `history` and live `message`/`done` frames of `conversation`, from the
/// ack of its `subscribe` (index `from`) on.
fn seen_by_agent(frames: &[Value], from: usize, conversation: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for frame in &frames[from..] {
        if frame["type"] == "history" && frame["conversation_id"] == conversation {
            seen.extend(frame["messages"].as_array().unwrap().iter().cloned());
        } else if (frame["type"] == "message" || frame["type"] == "done")
            && frame["message"]["conversation_id"] == conversation
        {
            seen.push(frame["message"].clone());
        }
    }
    seen
}

/// SSE events that carry an id: the stored messages.
fn seen_by_sse(events: &[Value]) -> Vec<Value> {
    events.iter().filter(|e| e["sse_id"].is_i64()).map(|e| e["message"].clone()).collect()
}

fn seq(message: &Value) -> i64 {
    message["seq"].as_i64().unwrap_or_else(|| panic!("a message with a seq: {message}"))
}

fn last_seq(messages: &[Value]) -> i64 {
    messages.iter().map(seq).max().unwrap_or(0)
}

/// What identifies a stored message: (seq, id, sender, content).
fn summary(messages: &[Value]) -> Vec<(i64, i64, String, String)> {
    messages
        .iter()
        .map(|m| {
            (
                seq(m),
                m["id"].as_i64().unwrap_or(-1),
                m["sender"].as_str().unwrap_or("?").to_owned(),
                m["content"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

/// The deltas of the reply to visitor message `reply_to` recorded before its `done` (index
/// `done_at`), concatenated, and how many there were.
fn deltas_before(frames: &[Value], done_at: usize, reply_to: i64) -> (String, usize) {
    let deltas: Vec<&str> = frames[..done_at]
        .iter()
        .filter(|f| f["type"] == "delta" && f["reply_to"] == reply_to)
        .map(|f| f["text"].as_str().unwrap_or(""))
        .collect();
    (deltas.concat(), deltas.len())
}

// ---------------------------------------------------------------------------------------------
// REST clients that retry like a client behind a load balancer
// ---------------------------------------------------------------------------------------------

/// A visitor message the server acknowledged (2xx, or an `ack` frame).
#[derive(Debug, Clone)]
struct Acked {
    client_msg_id: String,
    text: String,
    seq: i64,
    id: i64,
    /// The bot's reply as the POST returned it (null if not waited for).
    reply: Value,
}

impl Acked {
    fn from_message(message: &Value, reply: Value) -> Acked {
        Acked {
            client_msg_id: message["client_msg_id"].as_str().unwrap_or_default().to_owned(),
            text: message["content"].as_str().unwrap_or_default().to_owned(),
            seq: seq(message),
            id: message["id"].as_i64().expect("a message id"),
            reply,
        }
    }
}

/// Every answer the REST clients got.
#[derive(Debug, Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    connection_errors: usize,
    /// 500s, with what they said: never acceptable.
    internal_errors: Vec<String>,
    /// Answers no retry can fix (4xx) or that a client cannot read.
    unexpected: Vec<String>,
}

impl Tally {
    fn count(&self, status: u16) -> usize {
        self.statuses.get(&status).copied().unwrap_or(0)
    }
}

/// Where a client sends its next request.
#[derive(Clone)]
enum Route {
    /// Always this node.
    Fixed(String),
    /// The cluster's nodes in turn (their current addresses).
    RoundRobin(Arc<RwLock<Vec<String>>>, Arc<AtomicUsize>),
}

impl Route {
    fn round_robin(bases: &Arc<RwLock<Vec<String>>>, start: usize) -> Route {
        Route::RoundRobin(bases.clone(), Arc::new(AtomicUsize::new(start)))
    }

    fn next(&self) -> String {
        match self {
            Route::Fixed(base) => base.clone(),
            Route::RoundRobin(bases, turn) => {
                let bases = bases.read().unwrap();
                bases[turn.fetch_add(1, Ordering::Relaxed) % bases.len()].clone()
            }
        }
    }
}

enum Attempt {
    Acked(Acked),
    Retry(String),
    GiveUp(String),
}

/// A visitor message to post: where, under which `client_msg_id`, and whether to wait for the
/// bot's reply.
#[derive(Clone, Copy)]
struct Post<'a> {
    conversation: &'a str,
    client_msg_id: &'a str,
    text: &'a str,
    wait: bool,
}

/// One `POST /api/conversations/{id}/messages`.
async fn post_once(http: &reqwest::Client, base: &str, key: &str, post: Post<'_>, tally: &Mutex<Tally>) -> Attempt {
    let Post { conversation, client_msg_id, text, wait } = post;
    let query = if wait { "" } else { "?wait=false" };
    let url = format!("{base}/api/conversations/{conversation}/messages{query}");
    let sent =
        http.post(&url).bearer_auth(key).json(&json!({ "text": text, "client_msg_id": client_msg_id })).send().await;
    let res = match sent {
        Ok(res) => res,
        Err(err) => {
            tally.lock().unwrap().connection_errors += 1;
            return Attempt::Retry(format!("{url}: {err}"));
        }
    };
    let status = res.status().as_u16();
    let body = match res.text().await {
        Ok(body) => body,
        Err(err) => {
            tally.lock().unwrap().connection_errors += 1;
            return Attempt::Retry(format!("{url}: {status}, body lost: {err}"));
        }
    };
    let mut tally = tally.lock().unwrap();
    *tally.statuses.entry(status).or_default() += 1;
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    match status {
        200 | 201 => {
            let message = &body["message"];
            if message["client_msg_id"] != client_msg_id || message["content"] != text || !message["seq"].is_i64() {
                let what = format!("{url} {client_msg_id}: {status} with another message: {body}");
                tally.unexpected.push(what.clone());
                return Attempt::GiveUp(what);
            }
            Attempt::Acked(Acked::from_message(message, body["reply"].clone()))
        }
        500 => {
            // Never acceptable: not retried, so that the test fails at once.
            tally.internal_errors.push(format!("{url} {client_msg_id}: {body}"));
            Attempt::GiveUp(format!("500 {body}"))
        }
        502..=504 => Attempt::Retry(format!("{status} {body}")),
        _ => {
            let what = format!("{url} {client_msg_id}: {status} {body}");
            tally.unexpected.push(what.clone());
            Attempt::GiveUp(what)
        }
    }
}

/// Posts a visitor message, sending it again with the same `client_msg_id` (to the route's
/// next node) after a connection error or a 5xx, until it is acknowledged or `patience` ran out.
async fn post_until_acked(
    http: &reqwest::Client,
    route: &Route,
    key: &str,
    post: Post<'_>,
    patience: Duration,
    tally: &Mutex<Tally>,
) -> Result<Acked, String> {
    let deadline = Instant::now() + patience;
    let mut failures = Vec::new();
    for attempt in 1.. {
        let base = route.next();
        match post_once(http, &base, key, post, tally).await {
            Attempt::Acked(acked) => return Ok(acked),
            Attempt::GiveUp(why) => {
                failures.push(why);
                return Err(compact(&failures));
            }
            Attempt::Retry(why) => failures.push(why),
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100 * attempt.min(5))).await;
    }
    Err(compact(&failures))
}

/// The stored history is what the clients were told: seqs 1, 2, 3… without a gap, each visitor
/// message of `sent` stored at most once and each acknowledged one exactly once, at the seq and
/// id its ack gave; no visitor message answered twice by the bot.
fn check_history(what: &str, stored: &[Value], acked: &[Acked], sent: &HashSet<String>) {
    let seqs: Vec<i64> = stored.iter().map(seq).collect();
    let expected: Vec<i64> = (1..=stored.len() as i64).collect();
    assert_eq!(seqs, expected, "{what}: seqs from 1 without gaps or repeats");
    let ids: HashSet<i64> = stored.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), stored.len(), "{what}: a message id twice");

    let mut by_client_id: HashMap<&str, Vec<&Value>> = HashMap::new();
    for message in stored.iter().filter(|m| m["sender"] == "visitor") {
        if let Some(id) = message["client_msg_id"].as_str() {
            by_client_id.entry(id).or_default().push(message);
        }
    }
    for (id, copies) in &by_client_id {
        if sent.contains(*id) {
            assert_eq!(copies.len(), 1, "{what}: {id} stored {} times: {copies:?}", copies.len());
        }
    }
    for ack in acked {
        let copies = by_client_id.get(ack.client_msg_id.as_str()).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            copies.len(),
            1,
            "{what}: acknowledged {} ({}) stored {} times",
            ack.client_msg_id,
            ack.seq,
            copies.len()
        );
        let stored = copies[0];
        assert_eq!(
            (seq(stored), stored["id"].as_i64().unwrap(), stored["content"].as_str().unwrap()),
            (ack.seq, ack.id, ack.text.as_str()),
            "{what}: {} is stored as acknowledged",
            ack.client_msg_id
        );
    }
    let mut replies: HashMap<i64, Vec<i64>> = HashMap::new();
    for message in stored.iter().filter(|m| m["sender"] == "bot") {
        if let Some(to) = message["reply_to"].as_i64() {
            replies.entry(to).or_default().push(seq(message));
        }
    }
    for (to, seqs) in &replies {
        assert_eq!(seqs.len(), 1, "{what}: message {to} answered by the bot {} times (seqs {seqs:?})", seqs.len());
    }
}

/// Repeated failure messages counted, for a readable panic.
fn compact(items: &[String]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for item in items {
        *counts.entry(item.as_str()).or_default() += 1;
    }
    let mut parts: Vec<String> = counts.iter().take(8).map(|(item, n)| format!("{n}× {item}")).collect();
    if counts.len() > 8 {
        parts.push(format!("… and {} other answers", counts.len() - 8));
    }
    format!("{} in all: [{}]", items.len(), parts.join("; "))
}

/// The bot's stored replies to the message with id `to`.
fn replies_to(stored: &[Value], to: i64) -> Vec<Value> {
    stored.iter().filter(|m| m["sender"] == "bot" && m["reply_to"] == to).cloned().collect()
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// The visitor on node A, an agent on node B and an SSE stream and a long-poller on node C:
/// the bot's reply streams to every node; the agent takes the conversation over through B in
/// the middle of a reply; both sides talk; and all four observers saw exactly the stored
/// messages, in seq order, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitor_agent_and_poller_on_three_nodes_see_one_conversation() {
    let cluster = Cluster::start(&crate::helpers::redis_url(), 3).await;
    cluster
        .set_bot(
            json!({ "stream_delay_ms": 120, "policies": [{ "title": "Cancellation policy", "content": LONG_POLICY }] }),
        )
        .await;
    let (a, b, c) = (0, 1, 2);

    let mut agent = Live::connect(&cluster.ws_url(b, &format!("/ws/agent?token={}", cluster.creds.agent_token))).await;
    agent.frames.wait_for(0, "the agent's inbox on B", |f| f["type"] == "inbox").await;

    // The visitor starts the conversation on A.
    let mut widget = Live::connect(&cluster.ws_url(a, "/ws/widget")).await;
    let ready = widget.hello(&cluster.creds.bot_id, None, None).await;
    assert_eq!(ready["resumed"], false, "{ready}");
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    widget.frames.wait_for(0, "the welcome on A", |f| f["type"] == "done" && f["message"]["seq"] == 1).await;

    // B's agent watches it; C streams and polls it.
    let (subscribed_at, subscribed) =
        agent.command(json!({ "type": "subscribe", "conversation_id": conversation })).await;
    assert_eq!(subscribed["type"], "ack", "the agent subscribes on B: {subscribed}");
    agent.frames.wait_for(subscribed_at, "the history on B", |f| f["type"] == "history").await;
    let sse = Watcher::sse(&cluster, c, &conversation);
    let poll = Watcher::long_poll(&cluster, c, &conversation);
    sse.frames.wait_for(0, "the welcome replayed by C's SSE", |e| e["sse_id"] == 1).await;
    poll.frames.wait_for(0, "the welcome in C's long-poll", |m| m["seq"] == 1).await;

    // A question on A: the reply streams, and its chunks reach B and C live.
    let question = widget.say("v-1", "What is your cancellation policy?").await;
    let question_id = question["id"].as_i64().unwrap();
    let (done_at, done) = widget
        .frames
        .wait_for(0, "the reply on A", |f| f["type"] == "done" && f["message"]["reply_to"] == question_id)
        .await;
    let reply = done["message"]["content"].as_str().unwrap().to_owned();
    assert!(reply.contains("twenty four hours"), "answered from the policy: {reply}");
    let (streamed, chunks) = deltas_before(&widget.frames.all(), done_at, question_id);
    assert!(chunks >= 2, "the reply streams in chunks on A: {chunks}");
    assert_eq!(streamed, reply, "A's deltas add up to the reply");
    let (done_at, _) = agent
        .frames
        .wait_for(subscribed_at, "the reply on B", |f| f["type"] == "done" && f["message"]["reply_to"] == question_id)
        .await;
    let (streamed, chunks) = deltas_before(&agent.frames.all(), done_at, question_id);
    assert!(chunks >= 2, "the reply's chunks reach the agent on B before it is done: {chunks}");
    assert_eq!(streamed, reply, "B's deltas add up to the reply");
    let (done_at, _) = sse
        .frames
        .wait_for(0, "the reply on C's SSE", |e| e["type"] == "done" && e["message"]["reply_to"] == question_id)
        .await;
    let (streamed, chunks) = deltas_before(&sse.frames.all(), done_at, question_id);
    assert!(chunks >= 2, "the reply's chunks reach C's SSE before it is done: {chunks}");
    assert_eq!(streamed, reply, "C's deltas add up to the reply");

    // The same question again; the agent takes over through B while the answer streams.
    let again = widget.say("v-2", "Sorry, what is your cancellation policy again?").await;
    let again_id = again["id"].as_i64().unwrap();
    agent
        .frames
        .wait_for(subscribed_at, "a chunk of the second reply on B", |f| {
            f["type"] == "delta" && f["reply_to"] == again_id
        })
        .await;
    let (_, taken) = agent.command(json!({ "type": "take_over", "conversation_id": conversation })).await;
    assert_eq!(taken["type"], "ack", "the agent takes over through B: {taken}");
    agent
        .frames
        .wait_for(subscribed_at, "owner_changed on B", |f| f["type"] == "owner_changed" && f["owner"] == "agent")
        .await;
    let (joined_at, joined) = widget.frames.wait_for(0, "agent_joined on A", |f| f["type"] == "agent_joined").await;
    assert_eq!(joined["agent"]["name"], "Dana Reyes", "{joined}");
    let (_, cut) = widget
        .frames
        .wait_for(0, "the second reply, whole or cut, on A", |f| {
            f["type"] == "done" && f["message"]["reply_to"] == again_id
        })
        .await;
    let late: Vec<Value> = widget.frames.all()[joined_at..].iter().filter(|f| f["type"] == "delta").cloned().collect();
    assert!(late.is_empty(), "the bot streamed on after the takeover: {late:?}; its reply: {cut}");

    // Both ways across the nodes: the agent's message (B) reaches the visitor (A), the
    // visitor's (A) reaches the agent (B).
    let (_, sent) = agent
        .command(json!({ "type": "send", "conversation_id": conversation, "text": "Hi, Dana here.", "client_msg_id": "a-1" }))
        .await;
    assert_eq!(sent["type"], "ack", "the agent writes through B: {sent}");
    assert_eq!(sent["result"]["message"]["sender"], "agent", "{sent}");
    let (_, from_agent) = widget
        .frames
        .wait_for(0, "the agent's message on A", |f| f["type"] == "message" && f["message"]["sender"] == "agent")
        .await;
    assert_eq!(from_agent["message"]["content"], "Hi, Dana here.");
    assert_eq!(from_agent["message"]["seq"], sent["result"]["message"]["seq"]);
    let thanks = widget.say("v-3", "Thanks Dana, can I move my visit?").await;
    let (_, heard) = agent
        .frames
        .wait_for(subscribed_at, "the visitor's message on B", |f| {
            f["type"] == "message" && f["message"]["client_msg_id"] == "v-3"
        })
        .await;
    assert_eq!(heard["message"]["content"], "Thanks Dana, can I move my visit?");
    assert_eq!(heard["message"]["seq"], thanks["seq"]);
    let (_, sent) = agent
        .command(json!({ "type": "send", "conversation_id": conversation, "text": "Of course. Which day suits you?", "client_msg_id": "a-2" }))
        .await;
    assert_eq!(sent["type"], "ack", "{sent}");
    let last = sent["result"]["message"]["seq"].as_i64().unwrap();

    // Everyone converges on the stored conversation: the same messages, in order, once each.
    let stored = cluster.history(c, &conversation).await;
    assert_eq!(last_seq(&stored), last, "the agent's last message is the last one stored: {stored:?}");
    check_history("the conversation", &stored, &[], &HashSet::new());
    widget.frames.wait_for(0, "the last message on A", |f| f["message"]["seq"] == last).await;
    agent.frames.wait_for(subscribed_at, "the last message on B", |f| f["message"]["seq"] == last).await;
    sse.frames.wait_for(0, "the last message on C's SSE", |e| e["sse_id"] == last).await;
    poll.frames.wait_for(0, "the last message in C's long-poll", |m| m["seq"] == last).await;
    let expected = summary(&stored);
    assert_eq!(summary(&seen_by_widget(&widget.frames.all())), expected, "the visitor on A");
    assert_eq!(summary(&seen_by_agent(&agent.frames.all(), subscribed_at, &conversation)), expected, "the agent on B");
    assert_eq!(summary(&seen_by_sse(&sse.frames.all())), expected, "the SSE stream on C");
    assert_eq!(summary(&poll.frames.all()), expected, "the long-poll on C");

    // The visitor's acks are what was stored; the bot answered the two questions once each and
    // said nothing once the agent had it.
    for ack in [&question, &again, &thanks] {
        let stored = stored.iter().find(|m| m["id"] == ack["id"]).expect("acknowledged message stored");
        assert_eq!(stored["seq"], ack["seq"], "{stored}");
    }
    let bot: Vec<Value> = stored.iter().filter(|m| m["sender"] == "bot").cloned().collect();
    assert_eq!(bot.len(), 3, "welcome and two replies only: {bot:?}");
    assert_eq!(replies_to(&stored, question_id).len(), 1);
    let second = replies_to(&stored, again_id);
    assert_eq!(second.len(), 1, "{stored:?}");
    assert_eq!(second[0]["content"], cut["message"]["content"], "the cut reply is stored as the visitor saw it");
    let agents: Vec<&str> =
        stored.iter().filter(|m| m["sender"] == "agent").map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(agents, ["Hi, Dana here.", "Of course. Which day suits you?"]);
}

/// The owner of a conversation (node A) is killed with SIGKILL while the bot's reply streams;
/// the widget resumes on node B from its last seq, writes again (retrying while A's lease runs
/// out), and the conversation goes on through B, C and A once restarted: every acknowledged
/// message stored once at its acked seq, seqs gap-free, the bot answering after the failover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_killed_mid_stream_then_conversation_resumes_on_another_node() {
    let mut cluster = Cluster::start(&crate::helpers::redis_url(), 3).await;
    cluster
        .set_bot(
            json!({ "stream_delay_ms": 250, "policies": [{ "title": "Cancellation policy", "content": LONG_POLICY }] }),
        )
        .await;
    let (a, b, c) = (0, 1, 2);
    let tally = Mutex::new(Tally::default());
    let mut acked: Vec<Acked> = Vec::new();

    let mut widget = Live::connect(&cluster.ws_url(a, "/ws/widget")).await;
    let ready = widget.hello(&cluster.creds.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    widget.frames.wait_for(0, "the welcome on A", |f| f["type"] == "done" && f["message"]["seq"] == 1).await;
    let hello = widget.say("v-1", "Hello").await;
    widget
        .frames
        .wait_for(0, "the reply to v-1 on A", |f| f["type"] == "done" && f["message"]["reply_to"] == hello["id"])
        .await;
    acked.push(Acked::from_message(&hello, Value::Null));
    let policy = widget.say("v-2", "What is your cancellation policy?").await;
    acked.push(Acked::from_message(&policy, Value::Null));
    widget
        .frames
        .wait_for(0, "the reply to v-2 streaming on A", |f| f["type"] == "delta" && f["reply_to"] == policy["id"])
        .await;

    // A dies in the middle of the reply.
    cluster.kill(a);
    let deadline = Instant::now() + WAIT;
    while widget.frames.ended().is_none() {
        assert!(Instant::now() < deadline, "the widget's socket outlived node A");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = seen_by_widget(&widget.frames.all());
    let resume_from = last_seq(&before);
    assert!(resume_from >= policy["seq"].as_i64().unwrap(), "the widget saw its own message: {before:?}");
    drop(widget);

    // The widget comes back on B with its last seq and carries on.
    let mut widget = Live::connect(&cluster.ws_url(b, "/ws/widget")).await;
    let ready = widget.hello(&cluster.creds.bot_id, Some(&conversation), Some(resume_from)).await;
    assert_eq!(ready["resumed"], true, "{ready}");
    assert_eq!(ready["conversation_id"], conversation.as_str(), "{ready}");
    let located = widget.say_retrying("v-3", "Where are you located?").await;
    acked.push(Acked::from_message(&located, Value::Null));
    let (_, answer) = widget
        .frames
        .wait_for(0, "the bot's answer to v-3 on B, after the failover", |f| {
            f["type"] == "done" && f["message"]["reply_to"] == located["id"]
        })
        .await;
    assert!(answer["message"]["content"].as_str().unwrap().contains("Harbour Street"), "{answer}");

    // Through C over REST: forwarded to the new owner, answered, and seen live by B's widget.
    let route = Route::Fixed(cluster.base(c));
    let (key, http) = (cluster.creds.key.clone(), cluster.http.clone());
    let text = "Do you take Aetna?";
    let aetna = post_until_acked(
        &http,
        &route,
        &key,
        Post { conversation: &conversation, client_msg_id: "v-4", text, wait: true },
        WAIT,
        &tally,
    )
    .await
    .unwrap_or_else(|failures| panic!("v-4 through C never acknowledged: {failures}"));
    assert_eq!(aetna.reply["reply_to"], aetna.id, "the POST through C returns the bot's reply: {aetna:?}");
    widget
        .frames
        .wait_for(0, "v-4's reply on B", |f| f["type"] == "done" && f["message"]["reply_to"] == aetna.id)
        .await;
    acked.push(aetna);
    let hours = widget.say_retrying("v-5", "What are your opening hours?").await;
    acked.push(Acked::from_message(&hours, Value::Null));
    widget
        .frames
        .wait_for(0, "v-5's reply on B", |f| f["type"] == "done" && f["message"]["reply_to"] == hours["id"])
        .await;

    // A comes back and takes the conversation's requests again.
    cluster.restart(a).await;
    let route = Route::Fixed(cluster.base(a));
    let thanks = post_until_acked(
        &http,
        &route,
        &key,
        Post { conversation: &conversation, client_msg_id: "v-6", text: "thanks!", wait: true },
        WAIT,
        &tally,
    )
    .await
    .unwrap_or_else(|failures| panic!("v-6 through the restarted A never acknowledged: {failures}"));
    assert_eq!(thanks.reply["reply_to"], thanks.id, "the POST through A returns the bot's reply: {thanks:?}");
    let (_, last_reply) = widget
        .frames
        .wait_for(0, "v-6's reply on B", |f| f["type"] == "done" && f["message"]["reply_to"] == thanks.id)
        .await;
    acked.push(thanks);

    let stored = cluster.history(c, &conversation).await;
    let sent: HashSet<String> = acked.iter().map(|a| a.client_msg_id.clone()).collect();
    check_history("after the failover", &stored, &acked, &sent);
    assert_eq!(last_seq(&stored), seq(&last_reply["message"]), "nothing after the last reply: {stored:?}");
    // v-2's reply died with A; the new owner found the question unanswered and answered it.
    for ack in &acked {
        assert_eq!(replies_to(&stored, ack.id).len(), 1, "the bot answered {} once: {stored:?}", ack.client_msg_id);
    }
    // B's widget got exactly the messages after its last seq, each once, in order.
    let resumed = seen_by_widget(&widget.frames.all());
    let expected: Vec<Value> = stored.iter().filter(|m| seq(m) > resume_from).cloned().collect();
    assert_eq!(summary(&resumed), summary(&expected), "the widget on B after resuming from {resume_from}");
    // Every ack of one client_msg_id named the same stored message.
    for frame in widget.frames.all().iter().filter(|f| f["type"] == "ack") {
        let ack =
            acked.iter().find(|a| frame["client_msg_id"] == a.client_msg_id.as_str()).expect("an ack we asked for");
        assert_eq!(frame["message"]["id"], ack.id, "a resend was acknowledged as another message: {frame}");
    }
    let tally = tally.into_inner().unwrap();
    assert!(tally.internal_errors.is_empty(), "500s: {}", compact(&tally.internal_errors));
}

/// Six REST clients post visitor messages, round-robin over the three nodes, retrying a failed
/// request with the same `client_msg_id`, while every node in turn is stopped with SIGTERM and
/// started again; a widget follows one conversation from node to node (1012, reconnect, resume).
/// Nothing acknowledged is lost or stored twice, seqs stay gap-free, no request gets a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_of_three_nodes_under_traffic_loses_nothing() {
    const CLIENTS: usize = 6;
    let mut cluster = Cluster::start(&crate::helpers::redis_url(), 3).await;
    let mut conversations = Vec::new();
    for k in 0..CLIENTS {
        conversations.push(cluster.start_conversation(k % 3).await);
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));

    let clients: Vec<_> = conversations
        .iter()
        .enumerate()
        .map(|(k, conversation)| {
            let route = Route::round_robin(&cluster.bases, k);
            let (http, key, conversation) = (cluster.http.clone(), cluster.creds.key.clone(), conversation.clone());
            let (tally, stop, acks) = (tally.clone(), stop.clone(), acks.clone());
            tokio::spawn(async move {
                let (mut acked, mut sent, mut lost) = (Vec::new(), HashSet::new(), Vec::new());
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let id = format!("c{k}-{i}");
                    let text = format!("Client {k}, message {i}: where are you located?");
                    sent.insert(id.clone());
                    let patience = Duration::from_secs(30);
                    match post_until_acked(
                        &http,
                        &route,
                        &key,
                        Post { conversation: &conversation, client_msg_id: &id, text: &text, wait: false },
                        patience,
                        &tally,
                    )
                    .await
                    {
                        Ok(ack) => {
                            acked.push(ack);
                            acks.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(failures) => lost.push((id, failures)),
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (acked, sent, lost)
            })
        })
        .collect();

    // A widget on conversation 0 that follows the restarts: told to reconnect, it resumes on
    // the next node from its last seq.
    let follower_sockets: Arc<Mutex<Vec<Frames>>> = Arc::default();
    let follower_stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let (bases, bot, conversation) =
            (cluster.bases.clone(), cluster.creds.bot_id.clone(), conversations[0].clone());
        let (sockets, stop) = (follower_sockets.clone(), follower_stop.clone());
        tokio::spawn(async move {
            let (mut node, mut resume_from) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let url = format!("{}/ws/widget", bases.read().unwrap()[node % 3].replacen("http://", "ws://", 1));
                node += 1;
                let Ok(mut live) = Live::try_connect(&url).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let hello =
                    json!({ "type": "hello", "bot_id": bot, "conversation_id": conversation, "last_seq": resume_from });
                if live.try_send(&hello).await.is_err() {
                    continue;
                }
                let joined = live
                    .frames
                    .wait_opt(0, Duration::from_secs(5), |f| f["type"] == "ready" || f["type"] == "error")
                    .await;
                if !joined.is_some_and(|(_, f)| f["type"] == "ready") {
                    continue; // that node is going away: the next one
                }
                sockets.lock().unwrap().push(live.frames.clone());
                while live.frames.ended().is_none() && !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                resume_from = resume_from.max(last_seq(&seen_by_widget(&live.frames.all())));
            }
        })
    };

    let wait_for_acks = |at_least: usize, what: String| {
        let acks = acks.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while acks.load(Ordering::Relaxed) < at_least {
                assert!(
                    Instant::now() < deadline,
                    "{what}: only {} acknowledged messages within 30 s",
                    acks.load(Ordering::Relaxed)
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_for_acks(2 * CLIENTS, "before the restarts".into()).await;
    for i in 0..3 {
        let status = cluster.sigterm(i).await;
        assert!(status.success(), "node {i} exits cleanly on SIGTERM: {status}");
        cluster.restart(i).await;
        let now = acks.load(Ordering::Relaxed);
        wait_for_acks(now + 2 * CLIENTS, format!("after restarting node {i}")).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for client in clients {
        results.push(tokio::time::timeout(Duration::from_secs(60), client).await.expect("clients stop").unwrap());
    }

    // No 500, nothing given up on, nothing acknowledged lost, nothing stored twice.
    {
        let tally = tally.lock().unwrap();
        eprintln!("rolling restart: statuses {:?}, connection errors {}", tally.statuses, tally.connection_errors);
        assert!(
            tally.internal_errors.is_empty(),
            "500s during the rolling restart (statuses {:?}): {}",
            tally.statuses,
            compact(&tally.internal_errors)
        );
        assert!(tally.unexpected.is_empty(), "unexpected answers: {}", compact(&tally.unexpected));
    }
    for (k, (conversation, (acked, sent, lost))) in conversations.iter().zip(&results).enumerate() {
        assert!(lost.is_empty(), "client {k} gave up on {} messages, first {:?}", lost.len(), lost.first());
        let stored = cluster.history(k % 3, conversation).await;
        check_history(&format!("client {k}'s conversation"), &stored, acked, sent);
    }

    // Each conversation goes on: a last message, through each node in turn, gets the bot's reply.
    for (k, conversation) in conversations.iter().enumerate() {
        let route = Route::Fixed(cluster.base(k % 3));
        let id = format!("c{k}-last");
        let post = Post { conversation, client_msg_id: &id, text: "Where are you located?", wait: true };
        let last = post_until_acked(&cluster.http, &route, &cluster.creds.key, post, WAIT, &tally)
            .await
            .unwrap_or_else(|failures| panic!("{id} never acknowledged: {failures}"));
        assert_eq!(last.reply["reply_to"], last.id, "{id} gets the bot's reply: {last:?}");
        let (acked, sent, _) = &mut results[k];
        acked.push(last);
        sent.insert(id);
        let stored = cluster.history((k + 1) % 3, conversation).await;
        check_history(&format!("client {k}'s conversation at the end"), &stored, acked, sent);
    }
    let internal_errors = tally.lock().unwrap().internal_errors.clone();
    assert!(internal_errors.is_empty(), "500s: {}", compact(&internal_errors));

    // The widget that followed conversation 0 saw exactly its stored messages, once each,
    // and was told to reconnect when its node went.
    let stored = cluster.history(0, &conversations[0]).await;
    let final_seq = last_seq(&stored);
    let deadline = Instant::now() + WAIT;
    let seen = loop {
        let seen: Vec<Value> =
            follower_sockets.lock().unwrap().iter().flat_map(|frames| seen_by_widget(&frames.all())).collect();
        if last_seq(&seen) >= final_seq {
            break seen;
        }
        assert!(Instant::now() < deadline, "the following widget got to seq {} of {final_seq}", last_seq(&seen));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    follower_stop.store(true, Ordering::Relaxed);
    follower.abort();
    assert_eq!(summary(&seen), summary(&stored), "the widget that followed the restarts");
    let ends: Vec<String> = follower_sockets.lock().unwrap().iter().filter_map(Frames::ended).collect();
    assert!(
        ends.iter().any(|end| end.starts_with("closed 1012") && end.contains("reconnect")),
        "the widget was told to reconnect (1012) when its node stopped: {ends:?}"
    );
}

/// Messages are posted to one conversation through the three nodes while their Redis is stopped
/// and started again: no 500 ever; 503s retried, and most messages acknowledged during the
/// outage; afterwards every node takes messages (and returns the bot's reply) again; every
/// acknowledged message is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_started_during_chat_traffic() {
    let mut redis = PrivateRedis::start();
    let cluster = Cluster::start(&redis.url(), 3).await;
    let conversation = cluster.start_conversation(0).await;
    let tally = Mutex::new(Tally::default());
    let (http, key) = (cluster.http.clone(), cluster.creds.key.clone());
    let (mut acked, mut sent) = (Vec::new(), HashSet::new());

    // Before: each message through the next node.
    for i in 0..6 {
        let (id, text) = (format!("before-{i}"), format!("Before the outage, message {i}: do you take Aetna?"));
        sent.insert(id.clone());
        let route = Route::Fixed(cluster.base(i % 3));
        let ack = post_until_acked(
            &http,
            &route,
            &key,
            Post { conversation: &conversation, client_msg_id: &id, text: &text, wait: false },
            WAIT,
            &tally,
        )
        .await
        .unwrap_or_else(|failures| panic!("{id} through node {}: {failures}", i % 3));
        acked.push(ack);
    }

    // During: Redis is gone. A failed request is sent again to the next node.
    redis.down();
    const DURING: usize = 9;
    let mut during = 0;
    let mut outage_failures = Vec::new();
    for i in 0..DURING {
        let (id, text) = (format!("during-{i}"), format!("During the outage, message {i}: where are you located?"));
        sent.insert(id.clone());
        let route = Route::round_robin(&cluster.bases, i);
        match post_until_acked(
            &http,
            &route,
            &key,
            Post { conversation: &conversation, client_msg_id: &id, text: &text, wait: false },
            Duration::from_secs(6),
            &tally,
        )
        .await
        {
            Ok(ack) => {
                acked.push(ack);
                during += 1;
            }
            Err(failures) => outage_failures.push((id, failures)),
        }
    }
    let (status, ready) = {
        let res = http.get(format!("{}/readyz", cluster.base(0))).send().await.expect("readyz during the outage");
        (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
    };
    assert_eq!(status, 200, "a node serves without Redis: {ready}");
    assert_eq!(ready["redis"]["status"], "unreachable", "Redis really was down: {ready}");
    let unavailable = tally.lock().unwrap().count(503);
    eprintln!("Redis outage: {during} of {DURING} acknowledged, {unavailable} answers 503 so far");
    assert!(
        during * 2 > DURING,
        "most messages get through during the outage: {during} of {DURING}; {outage_failures:?}"
    );

    // After: Redis is back (empty); every node takes messages and returns the bot's reply again.
    redis.up();
    for i in 0..3 {
        cluster.wait_ready(i).await;
    }
    for round in 0..2 {
        for i in 0..3 {
            let id = format!("after-{round}-{i}");
            sent.insert(id.clone());
            let route = Route::Fixed(cluster.base(i));
            let ack = post_until_acked(
                &http,
                &route,
                &key,
                Post { conversation: &conversation, client_msg_id: &id, text: "Where are you located?", wait: true },
                WAIT,
                &tally,
            )
            .await
            .unwrap_or_else(|failures| panic!("{id} through node {i} after Redis came back: {failures}"));
            assert_eq!(ack.reply["reply_to"], ack.id, "{id}: the bot's reply through node {i}: {ack:?}");
            acked.push(ack);
        }
    }

    let stored = cluster.history(1, &conversation).await;
    check_history("the conversation", &stored, &acked, &sent);
    let tally = tally.into_inner().unwrap();
    eprintln!("Redis outage: statuses {:?}, connection errors {}", tally.statuses, tally.connection_errors);
    assert!(tally.internal_errors.is_empty(), "500s: {}", compact(&tally.internal_errors));
    assert!(tally.unexpected.is_empty(), "unexpected answers: {}", compact(&tally.unexpected));
}

/// 400 requests with one API key, spread over three processes: the quota (200 a minute) is one
/// for the whole cluster, kept in Redis. GCRA lets exactly 200 through at once and then one more
/// per 300 ms for as long as the burst lasts; three nodes counting alone would let all 400 pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_hundred_requests_on_one_key_over_three_processes_get_one_quota() {
    let cluster =
        Cluster::start_with(&crate::helpers::redis_url(), 3, &[("FRONTDESK_RATE_LIMIT_PER_MINUTE", "200")]).await;
    let bases: Vec<String> = (0..3).map(|i| cluster.base(i)).collect();
    let started = Instant::now();
    let answers: Vec<(usize, u16)> = futures_util::stream::iter(0..400)
        .map(|i| {
            let request = cluster.http.get(format!("{}/api/workspace", bases[i % 3])).bearer_auth(&cluster.creds.key);
            async move { (i % 3, request.send().await.expect("request").status().as_u16()) }
        })
        .buffer_unordered(30)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let statuses: Vec<u16> = answers.iter().map(|(_, status)| *status).collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + limited, 400, "only 200s and 429s: {statuses:?}");
    let refilled = (elapsed.as_millis() / 300) as usize + 1;
    assert!((200..=200 + refilled).contains(&ok), "{ok} succeeded in {elapsed:?} (at most {refilled} refilled)");
    let per_node: Vec<usize> =
        (0..3).map(|node| answers.iter().filter(|(n, status)| *n == node && *status == 200).count()).collect();
    assert!(per_node.iter().all(|n| *n > 0), "every node let some through: {per_node:?}");
}
