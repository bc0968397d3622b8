//! The test harness: the real server on a random port, on a fresh SQLite file or a fresh
//! PostgreSQL database (dropped afterwards), with real HTTP, SSE and WebSocket clients.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diesel::{Connection, RunQueryDsl};
use frontdesk::config::{AdmissionArgs, Settings, SettingsArgs};
use frontdesk::startup::{open_database, Application, GracefulShutdown};
use frontdesk::storage::workspaces::{self, CreatedWorkspace};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// The PostgreSQL role the tests create their databases with: `FRONTDESK_TEST_DATABASE_URL`
/// (set by scripts/test, or by a developer with a server of their own), else the machine's
/// PostgreSQL with trust auth.
pub fn pg_admin_url() -> String {
    std::env::var("FRONTDESK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The Redis the cluster tests share (each under a key prefix of its own):
/// `FRONTDESK_TEST_REDIS_URL`, else the machine's on 127.0.0.1:6379.
pub fn redis_url() -> String {
    std::env::var("FRONTDESK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// `admin` with its database replaced by `name` (and nothing of it printed, for its password).
fn database_url(admin: &str, name: &str) -> String {
    let mut url = reqwest::Url::parse(admin).expect("FRONTDESK_TEST_DATABASE_URL is a postgres:// URL");
    url.set_path(name);
    url.to_string()
}

fn connect_admin() -> diesel::PgConnection {
    let admin = pg_admin_url();
    diesel::PgConnection::establish(&admin).unwrap_or_else(|err| {
        let host = reqwest::Url::parse(&admin).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        panic!(
            "PostgreSQL at {host} refused the tests ({err}): run the tests with scripts/test, which starts it and \
             creates a role, or set FRONTDESK_TEST_DATABASE_URL to a role that may create databases"
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test: a SQLite file in a temp folder, or a PostgreSQL database.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                TestDb { url: format!("sqlite://{}", dir.path().join("frontdesk.db").display()), dir, pg_name: None }
            }
            Backend::Postgres => {
                let name = format!("frontdesk_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = connect_admin();
                diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).expect("create database");
                TestDb { url: database_url(&pg_admin_url(), &name), dir, pg_name: Some(name) }
            }
        }
    }
}

impl TestDb {
    /// The environment that points the real binary at this database, without a demo workspace.
    pub fn binary_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.url.clone()),
            ("FRONTDESK_DATA_DIR", self.dir.path().display().to_string()),
            ("FRONTDESK_DEMO", "false".to_owned()),
        ]
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut admin) = diesel::PgConnection::establish(&pg_admin_url()) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin);
            }
        }
    }
}

pub fn settings_for(db: &TestDb, configure: impl FnOnce(&mut SettingsArgs)) -> Settings {
    let mut args = SettingsArgs {
        bind: Some("127.0.0.1:0".into()),
        data_dir: Some(db.dir.path().to_path_buf()),
        database_url: Some(db.url.clone()),
        workers: Some(2),
        demo: Some(false),
        max_body_bytes: Some(64 * 1024),
        max_frame_bytes: Some(8 * 1024),
        max_message_chars: Some(1000),
        // Tests send bursts with one key; the limiter has its own test.
        rate_limit_per_minute: Some(100_000),
        // Tests open many conversations and sockets from 127.0.0.1; admission control has its
        // own tests (admission.rs), which set the quotas they test.
        admission: AdmissionArgs {
            widget_conversations_per_minute: Some(100_000),
            bot_conversations_per_minute: Some(100_000),
            conversation_messages_per_minute: Some(100_000),
            socket_messages_per_minute: Some(100_000),
            workspace_token_rate_limit_per_minute: Some(100_000),
            external_key_rate_limit_per_minute: Some(100_000),
            public_rate_limit_per_minute: Some(100_000),
            ..AdmissionArgs::default()
        },
        ..SettingsArgs::default()
    };
    configure(&mut args);
    Settings::resolve(&args).expect("settings")
}

/// A running server and the credentials of two workspaces on it.
pub struct TestApp {
    pub base: String,
    pub ws_url: String,
    pub http: reqwest::Client,
    /// The workspace most tests act in (its bot has the demo practice's facts).
    pub a: CreatedWorkspace,
    /// Another workspace, for tenancy checks.
    pub b: CreatedWorkspace,
    /// Kept until the server has stopped, then removed (dropped after `Drop::drop` below);
    /// taken over by the next server on [`TestApp::restart`].
    _db: Option<TestDb>,
    settings: Settings,
    handle: actix_web::dev::ServerHandle,
    graceful: GracefulShutdown,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        let _ = std::thread::spawn(move || futures::executor::block_on(handle.stop(false))).join();
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], with some settings changed.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut SettingsArgs)) -> TestApp {
    let db = TestDb::new(backend);
    let settings = settings_for(&db, configure);
    let (a, b) = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || {
            let store = open_database(&settings).expect("database");
            let mut conn = store.conn().expect("connection");
            let a = workspaces::create(&mut conn, "Workspace A", true).expect("workspace a");
            let b = workspaces::create(&mut conn, "Workspace B", true).expect("workspace b");
            (a, b)
        })
        .await
        .unwrap()
    };
    serve(db, settings, a, b)
}

/// Runs the server on its own actix system (stopping it ends every task it started).
fn serve(db: TestDb, settings: Settings, a: CreatedWorkspace, b: CreatedWorkspace) -> TestApp {
    let (port, handle, graceful) = start_server(settings.clone());
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        ws_url: format!("ws://127.0.0.1:{port}/ws/widget"),
        http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("http client"),
        a,
        b,
        _db: Some(db),
        settings,
        handle,
        graceful,
    }
}

/// Another node of the same deployment: its own server on its own port, sharing the first
/// node's database (and Redis, when it has one). Stopped when dropped.
pub struct Node {
    pub base: String,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Node {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        let _ = std::thread::spawn(move || futures::executor::block_on(handle.stop(false))).join();
    }
}

/// Starts a server with `settings` on its own actix system; answers its port and handles.
fn start_server(settings: Settings) -> (u16, actix_web::dev::ServerHandle, GracefulShutdown) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let app = Application::build(settings).await.expect("server builds");
            tx.send((app.port(), app.handle(), app.graceful())).unwrap();
            app.run().await.expect("server runs");
        })
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("server started")
}

impl TestApp {
    /// Shuts the server down as `frontdesk serve` does on SIGTERM (sockets told to reconnect,
    /// requests in flight finished).
    pub async fn shut_down_gracefully(&self) {
        self.graceful.run().await;
    }

    /// Starts another node on this app's database and settings.
    pub fn node(&self) -> Node {
        self.node_with(|_| {})
    }

    /// Starts another node on this app's database, with some settings changed.
    pub fn node_with(&self, configure: impl FnOnce(&mut Settings)) -> Node {
        let mut settings = self.settings.clone();
        configure(&mut settings);
        let (port, handle, _) = start_server(settings);
        Node { base: format!("http://127.0.0.1:{port}"), handle }
    }

    /// The server's database, for checks the API cannot make.
    pub fn database(&self) -> frontdesk::storage::Db {
        frontdesk::storage::Db::connect(&self.db().url, 2).expect("test database")
    }

    /// The environment that points the real binary (the CLI) at this server's database.
    pub fn binary_env(&self) -> Vec<(&'static str, String)> {
        self.db().binary_env()
    }

    fn db(&self) -> &TestDb {
        self._db.as_ref().expect("the test database")
    }

    /// The server's data folder (uploads live under it).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.db().dir.path().to_path_buf()
    }

    /// Stops this server (everything it was doing ends with it, as in a crash) and starts a
    /// new one on the same database and data folder.
    pub async fn restart(mut self) -> TestApp {
        let db = self._db.take().expect("the test database");
        let (settings, a, b) = (self.settings.clone(), self.a.clone(), self.b.clone());
        drop(self);
        serve(db, settings, a, b)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let res = self.http.get(self.url(path)).bearer_auth(key).send().await.expect("request");
        status_json(res).await
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let res = self.http.post(self.url(path)).bearer_auth(key).json(&body).send().await.expect("request");
        status_json(res).await
    }

    pub async fn put_json(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let res = self.http.put(self.url(path)).bearer_auth(key).json(&body).send().await.expect("request");
        status_json(res).await
    }

    /// Starts a conversation in workspace A over REST; returns its id.
    pub async fn start_conversation(&self) -> String {
        let (status, body) = self.post(&self.a.api_key, "/api/conversations", json!({})).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Sends a visitor message in workspace A over REST and returns the whole response.
    pub async fn say(&self, conversation: &str, text: &str) -> Value {
        let (status, body) = self
            .post(&self.a.api_key, &format!("/api/conversations/{conversation}/messages"), json!({ "text": text }))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn messages(&self, conversation: &str) -> Vec<Value> {
        let (status, body) =
            self.get(&self.a.api_key, &format!("/api/conversations/{conversation}/messages?limit=100")).await;
        assert_eq!(status, 200, "{body}");
        body["messages"].as_array().unwrap().clone()
    }
}

pub async fn status_json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A widget's socket, with helpers to speak the frame protocol.
pub struct Widget {
    pub socket: Socket,
}

impl Widget {
    pub async fn connect(app: &TestApp) -> Widget {
        let (socket, _) = tokio_tungstenite::connect_async(&app.ws_url).await.expect("websocket connects");
        Widget { socket }
    }

    pub async fn send(&mut self, frame: Value) {
        self.socket.send(Message::Text(frame.to_string())).await.expect("send frame");
    }

    /// The next JSON frame (control frames skipped); panics if the socket closes first.
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("a frame within 20 s")
                .expect("socket open")
                .expect("frame");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Close(reason) => panic!("socket closed: {reason:?}"),
                _ => continue,
            }
        }
    }

    /// Frames until (and including) the first of type `kind`.
    pub async fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let frame = self.next().await;
            let done = frame["type"] == kind;
            seen.push(frame);
            if done {
                return seen;
            }
        }
    }

    /// Says hello; returns the `ready` frame.
    pub async fn hello(&mut self, bot_id: &str, conversation: Option<&str>, last_seq: Option<i64>) -> Value {
        let mut frame = json!({ "type": "hello", "bot_id": bot_id });
        if let Some(id) = conversation {
            frame["conversation_id"] = json!(id);
        }
        if let Some(seq) = last_seq {
            frame["last_seq"] = json!(seq);
        }
        self.send(frame).await;
        let ready = self.next().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        ready
    }
}

/// Runs the real `frontdesk` binary with `envs`; returns it and its base URL.
pub fn spawn_binary(envs: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("serve")
        .envs(envs.iter().copied())
        .env("FRONTDESK_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("frontdesk binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("frontdesk printed its address").expect("stdout line");
        if let Some(base) = line.strip_prefix("frontdesk listening on ") {
            break base.trim().to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

/// Runs a `frontdesk` CLI command to completion; returns its stdout as JSON.
pub fn run_cli(args: &[&str], envs: &[(&str, &str)]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .expect("frontdesk runs");
    assert!(out.status.success(), "frontdesk {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// A Redis server of the test's own, on a free port, that the test may stop and start.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = PrivateRedis { port, child: None };
        redis.up();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn up(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (CI installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.down();
    }
}
