//! Configuration: command-line flags, then environment variables, then an optional TOML file,
//! then defaults — the first that gives a setting wins.
//!
//! The TOML file (`--config`, `FRONTDESK_CONFIG`, or `./frontdesk.toml` when present) uses the
//! same names as the environment, e.g. `FRONTDESK_BIND = "0.0.0.0:8080"` or
//! `DATABASE_URL = "postgres://…"`; keys are case-insensitive and the `FRONTDESK_` prefix may be
//! left out (`bind = "…"`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

/// Every setting, as flags and environment variables (see `frontdesk --help`).
#[derive(Debug, Clone, Default, Args)]
pub struct SettingsArgs {
    /// TOML file with settings under the same names as the environment variables.
    #[arg(long, global = true, env = "FRONTDESK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true, env = "FRONTDESK_BIND")]
    pub bind: Option<String>,
    /// Folder for the SQLite database and uploads [default: ./data].
    #[arg(long, global = true, env = "FRONTDESK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// postgres://… for PostgreSQL, sqlite://path for another SQLite file [default: DATA_DIR/frontdesk.db].
    #[arg(long, global = true, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// redis://… for cluster coordination (leases, bus, shared rate limits) [default: in-process].
    #[arg(long, global = true, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Base URL of an OpenAI-compatible API for the model brain [default: built-in brain only].
    #[arg(long, global = true, env = "OPENAI_BASE_URL")]
    pub openai_base_url: Option<String>,
    /// API key for OPENAI_BASE_URL.
    #[arg(long, global = true, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<String>,
    /// Log format: `text` or `json` (filter with RUST_LOG) [default: text].
    #[arg(long, global = true, env = "FRONTDESK_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// HTTP worker threads [default: number of cores].
    #[arg(long, global = true, env = "FRONTDESK_WORKERS")]
    pub workers: Option<usize>,
    /// Largest request body in bytes; larger gets 413 [default: 262144].
    #[arg(long, global = true, env = "FRONTDESK_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest WebSocket frame in bytes; larger closes the socket with 1009 [default: 16384].
    #[arg(long, global = true, env = "FRONTDESK_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Longest message text in characters; longer gets 422 [default: 4000].
    #[arg(long, global = true, env = "FRONTDESK_MAX_MESSAGE_CHARS")]
    pub max_message_chars: Option<usize>,
    /// Seconds a conversation's session stays live without activity [default: 300].
    #[arg(long, global = true, env = "FRONTDESK_SESSION_IDLE_SECS")]
    pub session_idle_secs: Option<u64>,
    /// Database connections in the pool [default: 16].
    #[arg(long, global = true, env = "FRONTDESK_DB_POOL_SIZE")]
    pub db_pool_size: Option<u32>,
    /// Message writer threads (group commit) [default: 1 on SQLite, 4 on PostgreSQL].
    #[arg(long, global = true, env = "FRONTDESK_DB_WRITERS")]
    pub db_writers: Option<usize>,
    /// Requests per minute per API key on /api; 0 turns limits off [default: 200].
    #[arg(long, global = true, env = "FRONTDESK_RATE_LIMIT_PER_MINUTE")]
    pub rate_limit_per_minute: Option<u32>,
    /// Key (32 bytes, base64) that encrypts stored webhook secrets; every node needs the same
    /// [default: DATA_DIR/secret.key, created on first start].
    #[arg(long, global = true, env = "FRONTDESK_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Allow webhook targets on loopback over plain http (development and tests only) [default: false].
    #[arg(long, global = true, env = "FRONTDESK_WEBHOOK_ALLOW_LOOPBACK")]
    pub webhook_allow_loopback: Option<bool>,
    /// Seconds a webhook receiver has to answer 2xx [default: 15].
    #[arg(long, global = true, env = "FRONTDESK_WEBHOOK_TIMEOUT_SECS")]
    pub webhook_timeout_secs: Option<u64>,
    /// Delays before each delivery attempt, in milliseconds, comma-separated
    /// [default: 0,5000,300000,1800000,7200000,18000000,36000000,50400000,72000000,86400000].
    #[arg(long, global = true, env = "FRONTDESK_WEBHOOK_RETRY_SCHEDULE_MS")]
    pub webhook_retry_schedule_ms: Option<String>,
    /// Seconds an endpoint may fail without a success before it is disabled [default: 432000, 5 days].
    #[arg(long, global = true, env = "FRONTDESK_WEBHOOK_DISABLE_AFTER_SECS")]
    pub webhook_disable_after_secs: Option<u64>,
    /// Milliseconds between the dispatcher's safety-net polls of the outbox [default: 1000].
    #[arg(long, global = true, env = "FRONTDESK_WEBHOOK_POLL_MS")]
    pub webhook_poll_ms: Option<u64>,
    /// Seconds a slot chosen in a chat stays held for that visitor before it is booked [default: 300].
    #[arg(long, global = true, env = "FRONTDESK_BOOKING_HOLD_SECS")]
    pub booking_hold_secs: Option<u64>,
    /// How many days ahead a booking may be made or moved; later times get 422 [default: 730].
    #[arg(long, global = true, env = "FRONTDESK_BOOKING_HORIZON_DAYS")]
    pub booking_horizon_days: Option<u32>,
    /// Requests per minute per session (or client address) on ChatGenius's `POST /chat`; 0 turns
    /// the limit off [default: 30].
    #[arg(long, global = true, env = "FRONTDESK_CHAT_RATE_LIMIT_PER_MINUTE")]
    pub chat_rate_limit_per_minute: Option<u32>,
    /// Admission control of the public surface (widget conversations and messages, credentials).
    #[command(flatten)]
    pub admission: AdmissionArgs,
    /// Networks the knowledge base may fetch from although they are private or loopback
    /// (intranets, tests), comma-separated CIDRs or addresses [default: none].
    #[arg(long, global = true, env = "FRONTDESK_FETCH_ALLOW")]
    pub fetch_allow: Option<String>,
    /// Seconds one knowledge fetch (each redirect hop) may take [default: 20].
    #[arg(long, global = true, env = "FRONTDESK_FETCH_TIMEOUT_SECS")]
    pub fetch_timeout_secs: Option<u64>,
    /// Largest page or document the knowledge base downloads, in bytes [default: 10485760].
    #[arg(long, global = true, env = "FRONTDESK_FETCH_MAX_BYTES")]
    pub fetch_max_bytes: Option<usize>,
    /// Most pages one URL source may crawl [default: 50].
    #[arg(long, global = true, env = "FRONTDESK_CRAWL_MAX_PAGES")]
    pub crawl_max_pages: Option<usize>,
    /// Deepest link depth one URL source may crawl [default: 3].
    #[arg(long, global = true, env = "FRONTDESK_CRAWL_MAX_DEPTH")]
    pub crawl_max_depth: Option<usize>,
    /// Largest uploaded file in bytes; larger gets 413 [default: 20971520].
    #[arg(long, global = true, env = "FRONTDESK_UPLOAD_MAX_BYTES")]
    pub upload_max_bytes: Option<u64>,
    /// Seconds a request body may take to arrive in all; a multipart upload may not stall longer
    /// than this between two reads; later gets 408 [default: 30].
    #[arg(long, global = true, env = "FRONTDESK_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Seconds a multipart upload's body may take to arrive in all; later gets 408 [default: 300].
    #[arg(long, global = true, env = "FRONTDESK_UPLOAD_TIMEOUT_SECS")]
    pub upload_timeout_secs: Option<u64>,
    /// Seconds a widget socket has, once open, to join a conversation with `hello`; then it is
    /// closed with 1008 [default: 10].
    #[arg(long, global = true, env = "FRONTDESK_HELLO_TIMEOUT_SECS")]
    pub hello_timeout_secs: Option<u64>,
    /// Seconds a node's claim on a source it is learning holds without renewal; after a crash
    /// another node (or the restarted one) takes the source over after this [default: 60].
    #[arg(long, global = true, env = "FRONTDESK_LEARN_LEASE_SECS")]
    pub learn_lease_secs: Option<u64>,
    /// Embeddings model; when set, knowledge retrieval is hybrid (full text and vectors)
    /// [default: none, full text only].
    #[arg(long, global = true, env = "FRONTDESK_EMBEDDINGS_MODEL")]
    pub embeddings_model: Option<String>,
    /// Base URL of the OpenAI-compatible embeddings API (`…/v1`) [default: OPENAI_BASE_URL, else
    /// https://api.openai.com/v1].
    #[arg(long, global = true, env = "FRONTDESK_EMBEDDINGS_URL")]
    pub embeddings_url: Option<String>,
    /// API key for the embeddings API [default: OPENAI_API_KEY].
    #[arg(long, global = true, env = "FRONTDESK_EMBEDDINGS_API_KEY", hide_env_values = true)]
    pub embeddings_api_key: Option<String>,
    /// Send `input_type` (`query` or `passage`) with each request, for models such as E5 that
    /// embed questions and passages differently (OpenAI itself refuses the field) [default: false].
    #[arg(long, global = true, env = "FRONTDESK_EMBEDDINGS_INPUT_TYPE")]
    pub embeddings_input_type: Option<bool>,
    /// Cosine similarity from which a passage answers a question that shares too few words with
    /// it; depends on the model (E5: about 0.82; OpenAI text-embedding-3: about 0.5) [default: 0.82].
    #[arg(long, global = true, env = "FRONTDESK_EMBEDDINGS_MIN_SIMILARITY")]
    pub embeddings_min_similarity: Option<f32>,
    /// Seconds one embeddings request may take [default: 30].
    #[arg(long, global = true, env = "FRONTDESK_EMBEDDINGS_TIMEOUT_SECS")]
    pub embeddings_timeout_secs: Option<u64>,
    /// Model for the model brain (any OpenAI-compatible chat model); a bot may name its own in
    /// its settings [default: none, the built-in brain answers].
    #[arg(long, global = true, env = "FRONTDESK_MODEL")]
    pub model: Option<String>,
    /// Sampling temperature of the model [default: 0.3].
    #[arg(long, global = true, env = "FRONTDESK_MODEL_TEMPERATURE")]
    pub model_temperature: Option<f32>,
    /// Most tokens of one model reply [default: 512].
    #[arg(long, global = true, env = "FRONTDESK_MODEL_MAX_TOKENS")]
    pub model_max_tokens: Option<u32>,
    /// Seconds a model reply may take in all, and to its first token [default: 30].
    #[arg(long, global = true, env = "FRONTDESK_MODEL_TIMEOUT_SECS")]
    pub model_timeout_secs: Option<u64>,
    /// Most tokens of one model reply a bot's settings may ask for [default: 4096].
    #[arg(long, global = true, env = "FRONTDESK_MODEL_MAX_TOKENS_LIMIT")]
    pub model_max_tokens_limit: Option<u32>,
    /// Let the server's own model endpoint (OPENAI_BASE_URL) be a host name that resolves to a
    /// private or loopback address (an LLM server on the clinic's network) [default: false].
    #[arg(long, global = true, env = "FRONTDESK_MODEL_ALLOW_PRIVATE")]
    pub model_allow_private: Option<bool>,
    /// Tokens of conversation history sent with each question (oldest dropped first) [default: 2000].
    #[arg(long, global = true, env = "FRONTDESK_MODEL_HISTORY_TOKENS")]
    pub model_history_tokens: Option<u32>,
    /// Replace visitors' email addresses and phone numbers by placeholders before text goes to the
    /// model (put back in its reply and tool calls) [default: false].
    #[arg(long, global = true, env = "FRONTDESK_MODEL_REDACT_PII")]
    pub model_redact_pii: Option<bool>,
    /// Model tokens a workspace may use per calendar month (UTC); 0 no limit [default: 0].
    #[arg(long, global = true, env = "FRONTDESK_MONTHLY_TOKEN_CAP")]
    pub monthly_token_cap: Option<u64>,
    /// Seconds an agent who owns a conversation may stay silent before it goes back to the bot;
    /// 0 never [default: 600].
    #[arg(long, global = true, env = "FRONTDESK_AGENT_SILENCE_SECS")]
    pub agent_silence_secs: Option<u64>,
    /// Give queued conversations to online agents in turn (round-robin) [default: false].
    #[arg(long, global = true, env = "FRONTDESK_AUTO_ASSIGN")]
    pub auto_assign: Option<bool>,
    /// Seconds between each node's checks that the credentials of its open sockets and streams
    /// still authenticate (the fallback when a revocation did not reach it); 0 never [default: 10].
    #[arg(long, global = true, env = "FRONTDESK_CREDENTIAL_CHECK_SECS")]
    pub credential_check_secs: Option<u64>,
    /// Seconds between each node's housekeeping rounds: forgetting full rate-limit quotas,
    /// purging expired console sessions, booking holds and idempotency keys, and setting
    /// offline the agents left "online" by a node that died [default: 60].
    #[arg(long, global = true, env = "FRONTDESK_SWEEP_SECS")]
    pub sweep_secs: Option<u64>,
    /// Create a demo workspace when the database has none: `true` or `false` [default: true].
    #[arg(long, global = true, env = "FRONTDESK_DEMO")]
    pub demo: Option<bool>,
    /// Hours a console session lasts after signing in [default: 12].
    #[arg(long, global = true, env = "FRONTDESK_SESSION_HOURS")]
    pub session_hours: Option<u64>,
    /// Console sign-in attempts per account (email) per minute; 0 no limit [default: 5].
    #[arg(long, global = true, env = "FRONTDESK_SIGN_IN_PER_ACCOUNT_PER_MINUTE")]
    pub sign_in_per_account_per_minute: Option<u32>,
    /// Console sign-in attempts per client address per minute; 0 no limit [default: 20].
    #[arg(long, global = true, env = "FRONTDESK_SIGN_IN_PER_ADDRESS_PER_MINUTE")]
    pub sign_in_per_address_per_minute: Option<u32>,
    /// The address people reach this server at (e.g. `https://desk.example.com`), for the links
    /// the command line prints [default: http:// and FRONTDESK_BIND].
    #[arg(long, global = true, env = "FRONTDESK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Serve `GET /demo` (a sample clinic page with the demo workspace's widget): `demo` or `off`
    /// [default: demo].
    #[arg(long, global = true, env = "FRONTDESK_DEMO_PAGE")]
    pub demo_page: Option<String>,
    /// Development: read the widget's and the demo page's files from this folder (a checkout's
    /// `src/web`) at every request instead of the copies compiled in [default: none].
    #[arg(long, global = true, env = "FRONTDESK_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Largest file a website visitor may attach in the widget, in bytes [default: 5242880].
    #[arg(long, global = true, env = "FRONTDESK_WIDGET_UPLOAD_MAX_BYTES")]
    pub widget_upload_max_bytes: Option<u64>,
    /// Web page origins allowed to call the API-key routes (`/api/…`) from a browser,
    /// comma-separated (e.g. `https://admin.example.com`); keys in a browser are visible to its
    /// user, so keep this to your own admin pages [default: none].
    #[arg(long, global = true, env = "FRONTDESK_API_CORS_ORIGINS")]
    pub api_cors_origins: Option<String>,
    /// Prefix of every Redis key and channel, so clusters (or tests) can share one Redis
    /// [default: frontdesk:].
    #[arg(long, global = true, env = "FRONTDESK_REDIS_PREFIX")]
    pub redis_prefix: Option<String>,
    /// With Redis: how long a node's hold on a conversation lasts without renewal (ms), so how
    /// soon another node takes over the conversations of a node that died [default: 5000].
    #[arg(long, global = true, env = "FRONTDESK_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// Milliseconds a database call (or a message waiting for room in the writer's queue) may
    /// wait while every connection is busy before the request gets 503 with Retry-After [default: 3000].
    #[arg(long, global = true, env = "FRONTDESK_DB_ACQUIRE_TIMEOUT_MS")]
    pub db_acquire_timeout_ms: Option<u64>,
    /// Messages each writer thread may have queued before senders wait for room [default: 4096].
    #[arg(long, global = true, env = "FRONTDESK_DB_WRITER_QUEUE")]
    pub db_writer_queue: Option<usize>,
    /// Most bots' knowledge indexes a node keeps in memory [default: 256].
    #[arg(long, global = true, env = "FRONTDESK_KNOWLEDGE_CACHE_ENTRIES")]
    pub knowledge_cache_entries: Option<usize>,
    /// Approximate memory the kept knowledge indexes may take, in MiB [default: 256].
    #[arg(long, global = true, env = "FRONTDESK_KNOWLEDGE_CACHE_MB")]
    pub knowledge_cache_mb: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub log_format: LogFormat,
    pub workers: usize,
    pub max_body_bytes: usize,
    pub max_frame_bytes: usize,
    pub max_message_chars: usize,
    pub session_idle: Duration,
    pub db_pool_size: u32,
    pub db_writers: Option<usize>,
    pub rate_limit_per_minute: u32,
    pub secret_key: Option<String>,
    pub webhook_allow_loopback: bool,
    pub webhook_timeout: Duration,
    pub webhook_retry_schedule: Vec<Duration>,
    pub webhook_disable_after: Duration,
    pub webhook_poll: Duration,
    pub booking_hold: Duration,
    pub booking_horizon_days: u32,
    pub chat_rate_limit_per_minute: u32,
    pub admission: AdmissionSettings,
    pub fetch_allow: Vec<ipnet::IpNet>,
    pub fetch_timeout: Duration,
    pub fetch_max_bytes: usize,
    pub crawl_max_pages: usize,
    pub crawl_max_depth: usize,
    pub upload_max_bytes: u64,
    pub body_timeout: Duration,
    pub upload_timeout: Duration,
    pub hello_timeout: Duration,
    pub learn_lease: Duration,
    pub embeddings: Option<EmbeddingsSettings>,
    /// The model brain's defaults; bots may override them.
    pub model: ModelDefaults,
    /// An agent's silence after which their conversation goes back to the bot (`None`: never).
    pub agent_silence: Option<Duration>,
    pub auto_assign: bool,
    /// How often open connections' credentials are checked (`None`: never).
    pub credential_check: Option<Duration>,
    /// How often the housekeeping job runs.
    pub sweep_interval: Duration,
    pub demo: bool,
    pub demo_page: crate::transport::web::DemoPage,
    pub web_dir: Option<PathBuf>,
    pub session_lifetime: Duration,
    pub sign_in_per_account_per_minute: u32,
    pub sign_in_per_address_per_minute: u32,
    /// Where people reach this server, without a trailing slash.
    pub public_url: String,
    pub widget_upload_max_bytes: u64,
    /// Origins whose pages may call the API-key routes from a browser.
    pub api_cors_origins: Vec<String>,
    pub redis_prefix: String,
    /// How long a conversation's lease lasts without renewal (cluster mode).
    pub lease: Duration,
    /// How long a database call waits for a free connection (and a message for room in the
    /// writer's queue) before 503.
    pub db_acquire_timeout: Duration,
    pub db_writer_queue: usize,
    pub knowledge_cache_entries: usize,
    pub knowledge_cache_bytes: usize,
}

/// The model brain's global settings (OPENAI_BASE_URL, OPENAI_API_KEY, FRONTDESK_MODEL_*) and
/// the operator's named model profiles.
#[derive(Clone)]
pub struct ModelDefaults {
    pub base_url: String,
    pub api_key: Option<String>,
    /// Whether `base_url` may be a name that resolves to a private or loopback address.
    pub allow_private: bool,
    /// The endpoints a bot may choose by name (`[models.NAME]` in the config file); nothing a
    /// tenant writes can add one.
    pub profiles: std::collections::BTreeMap<String, ModelProfile>,
    /// The most `max_tokens` a bot's settings may ask for.
    pub max_tokens_limit: u32,
    /// `None`: no global model; only bots that name one use a model.
    pub model: Option<String>,
    pub temperature: f32,
    pub max_tokens: u32,
    pub timeout: Duration,
    pub history_tokens: u32,
    pub monthly_token_cap: Option<u64>,
    pub redact_pii: bool,
}

// The key must never reach a log line.
impl std::fmt::Debug for ModelDefaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelDefaults")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .field("timeout", &self.timeout)
            .field("history_tokens", &self.history_tokens)
            .field("monthly_token_cap", &self.monthly_token_cap)
            .field("redact_pii", &self.redact_pii)
            .field("profiles", &self.profiles)
            .field("max_tokens_limit", &self.max_tokens_limit)
            .finish()
    }
}

/// An OpenAI-compatible endpoint the operator offers to bots under a name, from a
/// `[models.NAME]` table of the config file:
///
/// ```toml
/// [models.clinic_a]
/// base_url = "https://llm.clinic-a.example/v1"
/// api_key_env = "CLINIC_A_LLM_KEY"   # read once, at start-up
/// model = "llama-3.1-8b-instruct"    # for bots on this profile that name no model
/// models = ["llama-3.1-8b-instruct"] # the only models bots may name here (empty: any)
/// allow_private = true               # base_url's host may resolve to a private address
/// ```
#[derive(Clone)]
pub struct ModelProfile {
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: Option<String>,
    pub models: Vec<String>,
    pub allow_private: bool,
}

// The key must never reach a log line.
impl std::fmt::Debug for ModelProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelProfile")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("models", &self.models)
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

/// One `[models.NAME]` table as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelProfileFile {
    base_url: String,
    api_key_env: Option<String>,
    model: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    allow_private: bool,
}

/// Reads and checks the `[models.*]` tables; a key named by `api_key_env` is read here, once.
fn model_profiles(tables: &toml::Table) -> anyhow::Result<std::collections::BTreeMap<String, ModelProfile>> {
    let mut profiles = std::collections::BTreeMap::new();
    for (name, value) in tables {
        anyhow::ensure!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "[models.{name}]: a profile name is letters, digits, `_` and `-`"
        );
        let file: ModelProfileFile =
            value.clone().try_into().map_err(|err| anyhow::anyhow!("[models.{name}] in the config file: {err}"))?;
        let parsed = reqwest::Url::parse(&file.base_url)
            .map_err(|err| anyhow::anyhow!("[models.{name}] base_url `{}` is not a URL: {err}", file.base_url))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https") && parsed.username().is_empty() && parsed.password().is_none(),
            "[models.{name}] base_url must be an http(s) URL without a user name or password"
        );
        let api_key = match &file.api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                anyhow::anyhow!("[models.{name}] api_key_env names `{var}`, which is not set in the environment")
            })?),
            None => None,
        };
        profiles.insert(
            name.clone(),
            ModelProfile {
                base_url: file.base_url.trim_end_matches('/').to_owned(),
                api_key,
                model: file.model.filter(|m| !m.trim().is_empty()),
                models: file.models,
                allow_private: file.allow_private,
            },
        );
    }
    Ok(profiles)
}

/// Where knowledge vectors come from, when they are configured.
#[derive(Clone)]
pub struct EmbeddingsSettings {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub input_type: bool,
    pub min_similarity: f32,
    pub timeout: Duration,
}

// The key must never reach a log line.
impl std::fmt::Debug for EmbeddingsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingsSettings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("input_type", &self.input_type)
            .field("min_similarity", &self.min_similarity)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Settings {
    /// Merges flags and environment (already in `args`) over the TOML file over the defaults.
    pub fn resolve(args: &SettingsArgs) -> anyhow::Result<Settings> {
        let (file, model_tables) = match &args.config {
            Some(path) => read_toml(path)?,
            None if Path::new("frontdesk.toml").exists() => read_toml(Path::new("frontdesk.toml"))?,
            None => Default::default(),
        };
        let from_file = |name: &str| file.get(name).cloned();
        let data_dir: PathBuf =
            pick(args.data_dir.clone(), from_file("DATA_DIR"), "FRONTDESK_DATA_DIR")?.unwrap_or("./data".into());
        let database_url = pick(args.database_url.clone(), from_file("DATABASE_URL"), "DATABASE_URL")?
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("frontdesk.db").display()));
        crate::storage::parse_url(&database_url)?;
        let log_format = match pick(args.log_format.clone(), from_file("LOG_FORMAT"), "FRONTDESK_LOG_FORMAT")?
            .as_deref()
            .unwrap_or("text")
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => anyhow::bail!("FRONTDESK_LOG_FORMAT must be `text` or `json`, not `{other}`"),
        };
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let bind = pick(args.bind.clone(), from_file("BIND"), "FRONTDESK_BIND")?.unwrap_or("127.0.0.1:8080".into());
        Ok(Settings {
            bind: bind.clone(),
            data_dir,
            database_url,
            redis_url: pick(args.redis_url.clone(), from_file("REDIS_URL"), "REDIS_URL")?,
            log_format,
            workers: pick(args.workers, from_file("WORKERS"), "FRONTDESK_WORKERS")?.unwrap_or(cores).max(1),
            max_body_bytes: pick(args.max_body_bytes, from_file("MAX_BODY_BYTES"), "FRONTDESK_MAX_BODY_BYTES")?
                .unwrap_or(256 * 1024),
            max_frame_bytes: pick(args.max_frame_bytes, from_file("MAX_FRAME_BYTES"), "FRONTDESK_MAX_FRAME_BYTES")?
                .unwrap_or(16 * 1024),
            max_message_chars: pick(
                args.max_message_chars,
                from_file("MAX_MESSAGE_CHARS"),
                "FRONTDESK_MAX_MESSAGE_CHARS",
            )?
            .unwrap_or(4000),
            session_idle: Duration::from_secs(
                pick(args.session_idle_secs, from_file("SESSION_IDLE_SECS"), "FRONTDESK_SESSION_IDLE_SECS")?
                    .unwrap_or(300),
            ),
            db_pool_size: pick(args.db_pool_size, from_file("DB_POOL_SIZE"), "FRONTDESK_DB_POOL_SIZE")?.unwrap_or(16),
            db_writers: pick(args.db_writers, from_file("DB_WRITERS"), "FRONTDESK_DB_WRITERS")?,
            rate_limit_per_minute: pick(
                args.rate_limit_per_minute,
                from_file("RATE_LIMIT_PER_MINUTE"),
                "FRONTDESK_RATE_LIMIT_PER_MINUTE",
            )?
            .unwrap_or(200),
            secret_key: pick(args.secret_key.clone(), from_file("SECRET_KEY"), "FRONTDESK_SECRET_KEY")?,
            webhook_allow_loopback: pick(
                args.webhook_allow_loopback,
                from_file("WEBHOOK_ALLOW_LOOPBACK"),
                "FRONTDESK_WEBHOOK_ALLOW_LOOPBACK",
            )?
            .unwrap_or(false),
            webhook_timeout: Duration::from_secs(
                pick(args.webhook_timeout_secs, from_file("WEBHOOK_TIMEOUT_SECS"), "FRONTDESK_WEBHOOK_TIMEOUT_SECS")?
                    .unwrap_or(15)
                    .max(1),
            ),
            webhook_retry_schedule: match pick(
                args.webhook_retry_schedule_ms.clone(),
                from_file("WEBHOOK_RETRY_SCHEDULE_MS"),
                "FRONTDESK_WEBHOOK_RETRY_SCHEDULE_MS",
            )? {
                Some(list) => parse_schedule(&list)?,
                None => crate::domain::webhooks::dispatcher::DispatchConfig::default_schedule(),
            },
            webhook_disable_after: Duration::from_secs(
                pick(
                    args.webhook_disable_after_secs,
                    from_file("WEBHOOK_DISABLE_AFTER_SECS"),
                    "FRONTDESK_WEBHOOK_DISABLE_AFTER_SECS",
                )?
                .unwrap_or(5 * 24 * 3600),
            ),
            webhook_poll: Duration::from_millis(
                pick(args.webhook_poll_ms, from_file("WEBHOOK_POLL_MS"), "FRONTDESK_WEBHOOK_POLL_MS")?
                    .unwrap_or(1000)
                    .max(10),
            ),
            booking_hold: Duration::from_secs(
                pick(args.booking_hold_secs, from_file("BOOKING_HOLD_SECS"), "FRONTDESK_BOOKING_HOLD_SECS")?
                    .unwrap_or(300)
                    .max(1),
            ),
            booking_horizon_days: match pick(
                args.booking_horizon_days,
                from_file("BOOKING_HORIZON_DAYS"),
                "FRONTDESK_BOOKING_HORIZON_DAYS",
            )?
            .unwrap_or(crate::domain::booking::Horizon::DEFAULT_DAYS)
            {
                days @ 1..=crate::domain::booking::Horizon::MAX_DAYS => days,
                other => anyhow::bail!(
                    "FRONTDESK_BOOKING_HORIZON_DAYS must be 1 to {} days (got {other})",
                    crate::domain::booking::Horizon::MAX_DAYS
                ),
            },
            chat_rate_limit_per_minute: pick(
                args.chat_rate_limit_per_minute,
                from_file("CHAT_RATE_LIMIT_PER_MINUTE"),
                "FRONTDESK_CHAT_RATE_LIMIT_PER_MINUTE",
            )?
            .unwrap_or(30),
            admission: AdmissionSettings::resolve(&args.admission, &from_file)?,
            fetch_allow: match pick(args.fetch_allow.clone(), from_file("FETCH_ALLOW"), "FRONTDESK_FETCH_ALLOW")? {
                Some(list) => crate::net_guard::parse_networks(&list)
                    .map_err(|err| anyhow::anyhow!("FRONTDESK_FETCH_ALLOW: {err}"))?,
                None => Vec::new(),
            },
            fetch_timeout: Duration::from_secs(
                pick(args.fetch_timeout_secs, from_file("FETCH_TIMEOUT_SECS"), "FRONTDESK_FETCH_TIMEOUT_SECS")?
                    .unwrap_or(20)
                    .max(1),
            ),
            fetch_max_bytes: pick(args.fetch_max_bytes, from_file("FETCH_MAX_BYTES"), "FRONTDESK_FETCH_MAX_BYTES")?
                .unwrap_or(10 << 20),
            crawl_max_pages: pick(args.crawl_max_pages, from_file("CRAWL_MAX_PAGES"), "FRONTDESK_CRAWL_MAX_PAGES")?
                .unwrap_or(50)
                .max(1),
            crawl_max_depth: pick(args.crawl_max_depth, from_file("CRAWL_MAX_DEPTH"), "FRONTDESK_CRAWL_MAX_DEPTH")?
                .unwrap_or(3),
            upload_max_bytes: pick(args.upload_max_bytes, from_file("UPLOAD_MAX_BYTES"), "FRONTDESK_UPLOAD_MAX_BYTES")?
                .unwrap_or(20 << 20),
            body_timeout: Duration::from_secs(
                pick(args.body_timeout_secs, from_file("BODY_TIMEOUT_SECS"), "FRONTDESK_BODY_TIMEOUT_SECS")?
                    .unwrap_or(30)
                    .max(1),
            ),
            upload_timeout: Duration::from_secs(
                pick(args.upload_timeout_secs, from_file("UPLOAD_TIMEOUT_SECS"), "FRONTDESK_UPLOAD_TIMEOUT_SECS")?
                    .unwrap_or(300)
                    .max(1),
            ),
            hello_timeout: Duration::from_secs(
                pick(args.hello_timeout_secs, from_file("HELLO_TIMEOUT_SECS"), "FRONTDESK_HELLO_TIMEOUT_SECS")?
                    .unwrap_or(10)
                    .max(1),
            ),
            learn_lease: Duration::from_secs(
                pick(args.learn_lease_secs, from_file("LEARN_LEASE_SECS"), "FRONTDESK_LEARN_LEASE_SECS")?
                    .unwrap_or(60)
                    .max(1),
            ),
            embeddings: embeddings_settings(args, &from_file)?,
            model: model_defaults(args, &from_file, &model_tables)?,
            agent_silence: match pick(
                args.agent_silence_secs,
                from_file("AGENT_SILENCE_SECS"),
                "FRONTDESK_AGENT_SILENCE_SECS",
            )?
            .unwrap_or(600)
            {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            auto_assign: pick(args.auto_assign, from_file("AUTO_ASSIGN"), "FRONTDESK_AUTO_ASSIGN")?.unwrap_or(false),
            credential_check: match pick(
                args.credential_check_secs,
                from_file("CREDENTIAL_CHECK_SECS"),
                "FRONTDESK_CREDENTIAL_CHECK_SECS",
            )?
            .unwrap_or(10)
            {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            sweep_interval: Duration::from_secs(
                pick(args.sweep_secs, from_file("SWEEP_SECS"), "FRONTDESK_SWEEP_SECS")?.unwrap_or(60).clamp(1, 86_400),
            ),
            redis_prefix: pick(args.redis_prefix.clone(), from_file("REDIS_PREFIX"), "FRONTDESK_REDIS_PREFIX")?
                .unwrap_or_else(|| "frontdesk:".into()),
            lease: Duration::from_millis(
                pick(args.lease_ms, from_file("LEASE_MS"), "FRONTDESK_LEASE_MS")?.unwrap_or(5000).clamp(300, 600_000),
            ),
            demo: pick(args.demo, from_file("DEMO"), "FRONTDESK_DEMO")?.unwrap_or(true),
            demo_page: match pick(args.demo_page.clone(), from_file("DEMO_PAGE"), "FRONTDESK_DEMO_PAGE")?.as_deref() {
                None | Some("demo") => crate::transport::web::DemoPage::Demo,
                Some("off") => crate::transport::web::DemoPage::Off,
                Some(other) => anyhow::bail!("FRONTDESK_DEMO_PAGE must be `demo` or `off`, not `{other}`"),
            },
            session_lifetime: Duration::from_secs(
                pick(args.session_hours, from_file("SESSION_HOURS"), "FRONTDESK_SESSION_HOURS")?
                    .unwrap_or(12)
                    .clamp(1, 24 * 90)
                    * 3600,
            ),
            sign_in_per_account_per_minute: pick(
                args.sign_in_per_account_per_minute,
                from_file("SIGN_IN_PER_ACCOUNT_PER_MINUTE"),
                "FRONTDESK_SIGN_IN_PER_ACCOUNT_PER_MINUTE",
            )?
            .unwrap_or(5),
            sign_in_per_address_per_minute: pick(
                args.sign_in_per_address_per_minute,
                from_file("SIGN_IN_PER_ADDRESS_PER_MINUTE"),
                "FRONTDESK_SIGN_IN_PER_ADDRESS_PER_MINUTE",
            )?
            .unwrap_or(20),
            public_url: match pick(args.public_url.clone(), from_file("PUBLIC_URL"), "FRONTDESK_PUBLIC_URL")? {
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    url.trim_end_matches('/').to_owned()
                }
                Some(url) => anyhow::bail!("FRONTDESK_PUBLIC_URL must start with http:// or https://, not `{url}`"),
                None => format!("http://{bind}"),
            },
            web_dir: match pick(args.web_dir.clone(), from_file("WEB_DIR"), "FRONTDESK_WEB_DIR")? {
                Some(dir) if !dir.join("widget/widget.js").is_file() => anyhow::bail!(
                    "FRONTDESK_WEB_DIR: {} has no widget/widget.js (point it at a checkout's src/transport/web)",
                    dir.display()
                ),
                dir => dir,
            },
            widget_upload_max_bytes: pick(
                args.widget_upload_max_bytes,
                from_file("WIDGET_UPLOAD_MAX_BYTES"),
                "FRONTDESK_WIDGET_UPLOAD_MAX_BYTES",
            )?
            .unwrap_or(5 << 20)
            .max(1),
            api_cors_origins: match pick(
                args.api_cors_origins.clone(),
                from_file("API_CORS_ORIGINS"),
                "FRONTDESK_API_CORS_ORIGINS",
            )? {
                Some(list) => parse_origins(&list)?,
                None => Vec::new(),
            },
            db_acquire_timeout: Duration::from_millis(
                pick(
                    args.db_acquire_timeout_ms,
                    from_file("DB_ACQUIRE_TIMEOUT_MS"),
                    "FRONTDESK_DB_ACQUIRE_TIMEOUT_MS",
                )?
                .unwrap_or(3000),
            ),
            db_writer_queue: pick(args.db_writer_queue, from_file("DB_WRITER_QUEUE"), "FRONTDESK_DB_WRITER_QUEUE")?
                .unwrap_or(4096)
                .max(1),
            knowledge_cache_entries: pick(
                args.knowledge_cache_entries,
                from_file("KNOWLEDGE_CACHE_ENTRIES"),
                "FRONTDESK_KNOWLEDGE_CACHE_ENTRIES",
            )?
            .unwrap_or(256)
            .max(1),
            knowledge_cache_bytes: pick(
                args.knowledge_cache_mb,
                from_file("KNOWLEDGE_CACHE_MB"),
                "FRONTDESK_KNOWLEDGE_CACHE_MB",
            )?
            .unwrap_or(256)
            .max(1)
                << 20,
        })
    }
}

/// The first of a flag or environment variable (`given`) and the config file's value.
/// A comma-separated list of web origins (`https://host[:port]`), each checked.
fn parse_origins(list: &str) -> anyhow::Result<Vec<String>> {
    let mut origins = Vec::new();
    for origin in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let scheme_ok = origin.starts_with("https://") || origin.starts_with("http://");
        let rest = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
        if !scheme_ok || rest.is_empty() || rest.contains('/') {
            anyhow::bail!("FRONTDESK_API_CORS_ORIGINS: `{origin}` is not an origin such as https://admin.example.com");
        }
        origins.push(origin.to_owned());
    }
    Ok(origins)
}

fn pick<T: std::str::FromStr>(given: Option<T>, file: Option<String>, name: &str) -> anyhow::Result<Option<T>> {
    match (given, file) {
        (Some(v), _) => Ok(Some(v)),
        (None, Some(raw)) => raw
            .parse::<T>()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("setting {name} in the config file has an invalid value `{raw}`")),
        (None, None) => Ok(None),
    }
}

fn model_defaults(
    args: &SettingsArgs,
    from_file: &dyn Fn(&str) -> Option<String>,
    model_tables: &toml::Table,
) -> anyhow::Result<ModelDefaults> {
    let base_url = pick(args.openai_base_url.clone(), from_file("OPENAI_BASE_URL"), "OPENAI_BASE_URL")?
        .unwrap_or_else(|| "https://api.openai.com/v1".to_owned());
    let parsed = reqwest::Url::parse(&base_url)
        .map_err(|err| anyhow::anyhow!("OPENAI_BASE_URL `{base_url}` is not a URL: {err}"))?;
    anyhow::ensure!(matches!(parsed.scheme(), "http" | "https"), "OPENAI_BASE_URL must be an http(s) URL");
    let temperature =
        pick(args.model_temperature, from_file("MODEL_TEMPERATURE"), "FRONTDESK_MODEL_TEMPERATURE")?.unwrap_or(0.3);
    anyhow::ensure!((0.0..=2.0).contains(&temperature), "FRONTDESK_MODEL_TEMPERATURE must be between 0 and 2");
    let max_tokens =
        pick(args.model_max_tokens, from_file("MODEL_MAX_TOKENS"), "FRONTDESK_MODEL_MAX_TOKENS")?.unwrap_or(512);
    anyhow::ensure!(max_tokens > 0, "FRONTDESK_MODEL_MAX_TOKENS must be positive");
    let max_tokens_limit =
        pick(args.model_max_tokens_limit, from_file("MODEL_MAX_TOKENS_LIMIT"), "FRONTDESK_MODEL_MAX_TOKENS_LIMIT")?
            .unwrap_or(4096)
            .max(max_tokens);
    Ok(ModelDefaults {
        base_url: base_url.trim_end_matches('/').to_owned(),
        allow_private: pick(
            args.model_allow_private,
            from_file("MODEL_ALLOW_PRIVATE"),
            "FRONTDESK_MODEL_ALLOW_PRIVATE",
        )?
        .unwrap_or(false),
        profiles: model_profiles(model_tables)?,
        max_tokens_limit,
        api_key: pick(args.openai_api_key.clone(), from_file("OPENAI_API_KEY"), "OPENAI_API_KEY")?,
        model: pick(args.model.clone(), from_file("MODEL"), "FRONTDESK_MODEL")?.filter(|m| !m.trim().is_empty()),
        temperature,
        max_tokens,
        timeout: Duration::from_secs(
            pick(args.model_timeout_secs, from_file("MODEL_TIMEOUT_SECS"), "FRONTDESK_MODEL_TIMEOUT_SECS")?
                .unwrap_or(30)
                .max(1),
        ),
        history_tokens: pick(
            args.model_history_tokens,
            from_file("MODEL_HISTORY_TOKENS"),
            "FRONTDESK_MODEL_HISTORY_TOKENS",
        )?
        .unwrap_or(2000),
        redact_pii: pick(args.model_redact_pii, from_file("MODEL_REDACT_PII"), "FRONTDESK_MODEL_REDACT_PII")?
            .unwrap_or(false),
        monthly_token_cap: pick(args.monthly_token_cap, from_file("MONTHLY_TOKEN_CAP"), "FRONTDESK_MONTHLY_TOKEN_CAP")?
            .filter(|cap| *cap > 0),
    })
}

/// The embeddings endpoint, when a model is named; its URL and key fall back to the model
/// brain's.
fn embeddings_settings(
    args: &SettingsArgs,
    from_file: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<EmbeddingsSettings>> {
    let Some(model) = pick(args.embeddings_model.clone(), from_file("EMBEDDINGS_MODEL"), "FRONTDESK_EMBEDDINGS_MODEL")?
    else {
        return Ok(None);
    };
    let model = model.trim().to_owned();
    anyhow::ensure!(!model.is_empty(), "FRONTDESK_EMBEDDINGS_MODEL is empty");
    let base_url = match pick(args.embeddings_url.clone(), from_file("EMBEDDINGS_URL"), "FRONTDESK_EMBEDDINGS_URL")? {
        Some(url) => url,
        None => pick(args.openai_base_url.clone(), from_file("OPENAI_BASE_URL"), "OPENAI_BASE_URL")?
            .unwrap_or_else(|| "https://api.openai.com/v1".to_owned()),
    };
    let parsed = reqwest::Url::parse(&base_url)
        .map_err(|err| anyhow::anyhow!("FRONTDESK_EMBEDDINGS_URL `{base_url}` is not a URL: {err}"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https"),
        "FRONTDESK_EMBEDDINGS_URL must be an http(s) URL, not `{base_url}`"
    );
    let api_key =
        match pick(args.embeddings_api_key.clone(), from_file("EMBEDDINGS_API_KEY"), "FRONTDESK_EMBEDDINGS_API_KEY")? {
            Some(key) => Some(key),
            None => pick(args.openai_api_key.clone(), from_file("OPENAI_API_KEY"), "OPENAI_API_KEY")?,
        };
    let min_similarity = pick(
        args.embeddings_min_similarity,
        from_file("EMBEDDINGS_MIN_SIMILARITY"),
        "FRONTDESK_EMBEDDINGS_MIN_SIMILARITY",
    )?
    .unwrap_or(0.82);
    anyhow::ensure!(
        (0.0..=1.0).contains(&min_similarity),
        "FRONTDESK_EMBEDDINGS_MIN_SIMILARITY must be between 0 and 1, not {min_similarity}"
    );
    let timeout_secs =
        pick(args.embeddings_timeout_secs, from_file("EMBEDDINGS_TIMEOUT_SECS"), "FRONTDESK_EMBEDDINGS_TIMEOUT_SECS")?
            .unwrap_or(30);
    Ok(Some(EmbeddingsSettings {
        base_url: base_url.trim_end_matches('/').to_owned(),
        model,
        api_key,
        input_type: pick(
            args.embeddings_input_type,
            from_file("EMBEDDINGS_INPUT_TYPE"),
            "FRONTDESK_EMBEDDINGS_INPUT_TYPE",
        )?
        .unwrap_or(false),
        min_similarity,
        timeout: Duration::from_secs(timeout_secs.max(1)),
    }))
}

/// Parses `0,5000,300000` (milliseconds) into a retry schedule.
fn parse_schedule(list: &str) -> anyhow::Result<Vec<Duration>> {
    let schedule = list
        .split(',')
        .map(|part| part.trim().parse::<u64>().map(Duration::from_millis))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anyhow::anyhow!("FRONTDESK_WEBHOOK_RETRY_SCHEDULE_MS must be comma-separated milliseconds"))?;
    anyhow::ensure!(!schedule.is_empty(), "FRONTDESK_WEBHOOK_RETRY_SCHEDULE_MS needs at least one attempt");
    Ok(schedule)
}

/// The names a config file may use: every setting's environment name, without `FRONTDESK_`.
fn known_file_keys() -> std::collections::BTreeSet<String> {
    use clap::Args as _;
    SettingsArgs::augment_args(clap::Command::new("frontdesk"))
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| {
            let env = env.to_string_lossy();
            env.strip_prefix("FRONTDESK_").unwrap_or(&env).to_owned()
        })
        .filter(|name| name != "CONFIG")
        .collect()
}

/// Reads the TOML file into upper-case setting names without the `FRONTDESK_` prefix, and its
/// `[models.*]` tables.
fn read_toml(path: &Path) -> anyhow::Result<(HashMap<String, String>, toml::Table)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut table: toml::Table =
        text.parse().with_context(|| format!("config file {} is not valid TOML", path.display()))?;
    let models = match table.remove("models") {
        Some(toml::Value::Table(models)) => models,
        Some(_) => anyhow::bail!("config file {}: `models` must be tables such as [models.NAME]", path.display()),
        None => toml::Table::new(),
    };
    let known = known_file_keys();
    for key in table.keys() {
        let upper = key.to_uppercase();
        let name = upper.strip_prefix("FRONTDESK_").unwrap_or(&upper);
        if !known.contains(name) {
            let closest = known
                .iter()
                .map(|candidate| (strsim::levenshtein(candidate, name), candidate))
                .min()
                .filter(|(distance, _)| *distance <= 3)
                .map(|(_, candidate)| format!(" (did you mean `{}`?)", candidate.to_lowercase()))
                .unwrap_or_default();
            anyhow::bail!(
                "config file {}: unknown setting `{key}`{closest}; the settings are listed by `frontdesk --help`",
                path.display()
            );
        }
    }
    let flat = table
        .into_iter()
        .map(|(key, value)| {
            let key = key.to_uppercase();
            let key = key.strip_prefix("FRONTDESK_").map(str::to_owned).unwrap_or(key);
            let value = match value {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            (key, value)
        })
        .collect();
    Ok((flat, models))
}

/// Admission control settings (see [`crate::domain::admission`]); every quota is per minute and 0 turns
/// it off.
#[derive(Debug, Clone, Default, Args)]
pub struct AdmissionArgs {
    /// Proxies whose `X-Forwarded-For` names the real client, comma-separated CIDRs or addresses
    /// [default: none, the peer's address counts].
    #[arg(long, global = true, env = "FRONTDESK_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// New widget conversations per minute per client address [default: 20].
    #[arg(long, global = true, env = "FRONTDESK_WIDGET_CONVERSATIONS_PER_MINUTE")]
    pub widget_conversations_per_minute: Option<u32>,
    /// New widget conversations per minute per bot [default: 600].
    #[arg(long, global = true, env = "FRONTDESK_BOT_CONVERSATIONS_PER_MINUTE")]
    pub bot_conversations_per_minute: Option<u32>,
    /// Visitor messages per minute per conversation on the widget socket [default: 60].
    #[arg(long, global = true, env = "FRONTDESK_CONVERSATION_MESSAGES_PER_MINUTE")]
    pub conversation_messages_per_minute: Option<u32>,
    /// Visitor messages per minute per widget socket [default: 30].
    #[arg(long, global = true, env = "FRONTDESK_SOCKET_MESSAGES_PER_MINUTE")]
    pub socket_messages_per_minute: Option<u32>,
    /// Refusals in a row after which a widget socket is closed (1008) [default: 10].
    #[arg(long, global = true, env = "FRONTDESK_SOCKET_STRIKES")]
    pub socket_strikes: Option<u32>,
    /// Brain turns a conversation may have waiting; more messages are answered together in the
    /// last waiting turn [default: 5].
    #[arg(long, global = true, env = "FRONTDESK_MAX_QUEUED_TURNS")]
    pub max_queued_turns: Option<usize>,
    /// Milliseconds within which a widget socket's typing (and read) frames are coalesced into
    /// one [default: 1000].
    #[arg(long, global = true, env = "FRONTDESK_TYPING_INTERVAL_MS")]
    pub typing_interval_ms: Option<u64>,
    /// Requests per minute per CX Genie `workspace_token` [default: 200].
    #[arg(long, global = true, env = "FRONTDESK_WORKSPACE_TOKEN_RATE_LIMIT_PER_MINUTE")]
    pub workspace_token_rate_limit_per_minute: Option<u32>,
    /// Requests per minute per external API key (`POST /api/external/booking`) [default: 60].
    #[arg(long, global = true, env = "FRONTDESK_EXTERNAL_KEY_RATE_LIMIT_PER_MINUTE")]
    pub external_key_rate_limit_per_minute: Option<u32>,
    /// Requests per minute per client address on the routes without an API key (sockets,
    /// `/chat`, public and workspace-token routes, file downloads) [default: 300].
    #[arg(long, global = true, env = "FRONTDESK_PUBLIC_RATE_LIMIT_PER_MINUTE")]
    pub public_rate_limit_per_minute: Option<u32>,
}

/// The resolved admission settings.
#[derive(Debug, Clone)]
pub struct AdmissionSettings {
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub widget_conversations_per_minute: u32,
    pub bot_conversations_per_minute: u32,
    pub conversation_messages_per_minute: u32,
    pub socket_messages_per_minute: u32,
    pub socket_strikes: u32,
    pub max_queued_turns: usize,
    pub typing_interval: Duration,
    pub workspace_token_rate_limit_per_minute: u32,
    pub external_key_rate_limit_per_minute: u32,
    pub public_rate_limit_per_minute: u32,
}

impl AdmissionSettings {
    fn resolve(args: &AdmissionArgs, from_file: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let quota = |given: Option<u32>, name: &str, default: u32| -> anyhow::Result<u32> {
            Ok(pick(given, from_file(name), &format!("FRONTDESK_{name}"))?.unwrap_or(default))
        };
        Ok(AdmissionSettings {
            trusted_proxies: match pick(
                args.trusted_proxies.clone(),
                from_file("TRUSTED_PROXIES"),
                "FRONTDESK_TRUSTED_PROXIES",
            )? {
                Some(list) => crate::net_guard::parse_networks(&list)
                    .map_err(|err| anyhow::anyhow!("FRONTDESK_TRUSTED_PROXIES: {err}"))?,
                None => Vec::new(),
            },
            widget_conversations_per_minute: quota(
                args.widget_conversations_per_minute,
                "WIDGET_CONVERSATIONS_PER_MINUTE",
                20,
            )?,
            bot_conversations_per_minute: quota(
                args.bot_conversations_per_minute,
                "BOT_CONVERSATIONS_PER_MINUTE",
                600,
            )?,
            conversation_messages_per_minute: quota(
                args.conversation_messages_per_minute,
                "CONVERSATION_MESSAGES_PER_MINUTE",
                60,
            )?,
            socket_messages_per_minute: quota(args.socket_messages_per_minute, "SOCKET_MESSAGES_PER_MINUTE", 30)?,
            socket_strikes: quota(args.socket_strikes, "SOCKET_STRIKES", 10)?.max(1),
            max_queued_turns: pick(args.max_queued_turns, from_file("MAX_QUEUED_TURNS"), "FRONTDESK_MAX_QUEUED_TURNS")?
                .unwrap_or(5)
                .max(1),
            typing_interval: Duration::from_millis(
                pick(args.typing_interval_ms, from_file("TYPING_INTERVAL_MS"), "FRONTDESK_TYPING_INTERVAL_MS")?
                    .unwrap_or(1000),
            ),
            workspace_token_rate_limit_per_minute: quota(
                args.workspace_token_rate_limit_per_minute,
                "WORKSPACE_TOKEN_RATE_LIMIT_PER_MINUTE",
                200,
            )?,
            external_key_rate_limit_per_minute: quota(
                args.external_key_rate_limit_per_minute,
                "EXTERNAL_KEY_RATE_LIMIT_PER_MINUTE",
                60,
            )?,
            public_rate_limit_per_minute: quota(
                args.public_rate_limit_per_minute,
                "PUBLIC_RATE_LIMIT_PER_MINUTE",
                300,
            )?,
        })
    }
}

/// The explicit limits of the HTTP and WebSocket surface.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_frame_bytes: usize,
    pub max_message_chars: usize,
    /// Most items one page of a list returns.
    pub max_page_size: i64,
    /// Longest a long-poll may wait, in seconds.
    pub max_wait_secs: u64,
    /// How long a widget socket may stay open without joining a conversation.
    pub hello_timeout: Duration,
    /// Largest file a visitor may attach in the widget.
    pub widget_upload_max_bytes: u64,
}

impl Settings {
    pub fn limits(&self) -> Limits {
        Limits {
            max_body_bytes: self.max_body_bytes,
            max_frame_bytes: self.max_frame_bytes,
            max_message_chars: self.max_message_chars,
            max_page_size: 100,
            max_wait_secs: 60,
            hello_timeout: self.hello_timeout,
            widget_upload_max_bytes: self.widget_upload_max_bytes.min(self.upload_max_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(toml: &str) -> (tempfile::TempDir, SettingsArgs) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frontdesk.toml");
        std::fs::write(&path, toml).unwrap();
        (dir, SettingsArgs { config: Some(path), ..SettingsArgs::default() })
    }

    #[test]
    fn defaults_are_the_embedded_ones() {
        let settings =
            Settings::resolve(&SettingsArgs { data_dir: Some("/tmp/fd".into()), ..Default::default() }).unwrap();
        assert_eq!(settings.bind, "127.0.0.1:8080");
        assert_eq!(settings.database_url, "sqlite:///tmp/fd/frontdesk.db");
        assert_eq!(settings.rate_limit_per_minute, 200);
        assert!(settings.redis_url.is_none());
        assert!(settings.demo);
        assert!(settings.embeddings.is_none());
    }

    #[test]
    fn embeddings_fall_back_to_the_model_brain_endpoint_and_never_show_their_key() {
        let args = SettingsArgs {
            embeddings_model: Some("text-embedding-3-small".into()),
            openai_base_url: Some("http://127.0.0.1:8000/v1/".into()),
            openai_api_key: Some("sk-secret".into()),
            ..Default::default()
        };
        let embeddings = Settings::resolve(&args).unwrap().embeddings.unwrap();
        assert_eq!(embeddings.base_url, "http://127.0.0.1:8000/v1");
        assert_eq!(embeddings.api_key.as_deref(), Some("sk-secret"));
        assert_eq!(embeddings.min_similarity, 0.82);
        assert!(!embeddings.input_type);
        assert!(!format!("{embeddings:?}").contains("sk-secret"));

        let (_dir, mut args) = with_file("EMBEDDINGS_MODEL = \"e5\"\nEMBEDDINGS_MIN_SIMILARITY = 1.5\n");
        assert!(Settings::resolve(&args).unwrap_err().to_string().contains("FRONTDESK_EMBEDDINGS_MIN_SIMILARITY"));
        args.embeddings_min_similarity = Some(0.5);
        args.embeddings_url = Some("ftp://host/v1".into());
        assert!(Settings::resolve(&args).unwrap_err().to_string().contains("http(s)"));
    }

    #[test]
    fn the_file_uses_the_environment_names_and_flags_win_over_it() {
        let (_dir, mut args) = with_file(
            "FRONTDESK_BIND = \"0.0.0.0:9000\"\nDATABASE_URL = \"postgres://db/frontdesk\"\nmax_message_chars = 500\n",
        );
        let from_file = Settings::resolve(&args).unwrap();
        assert_eq!(from_file.bind, "0.0.0.0:9000");
        assert_eq!(from_file.database_url, "postgres://db/frontdesk");
        assert_eq!(from_file.max_message_chars, 500);
        args.bind = Some("127.0.0.1:7000".into());
        assert_eq!(Settings::resolve(&args).unwrap().bind, "127.0.0.1:7000");
    }

    #[test]
    fn model_profiles_come_from_the_file_with_their_keys_read_once() {
        let var = format!("FRONTDESK_TEST_MODEL_KEY_{}", std::process::id());
        std::env::set_var(&var, "sk-profile-secret");
        let (_dir, args) = with_file(&format!(
            "[models.clinic_a]\nbase_url = \"http://10.0.0.5:8000/v1/\"\napi_key_env = \"{var}\"\nmodels = [\"m\"]\n"
        ));
        let model = Settings::resolve(&args).unwrap().model;
        let profile = &model.profiles["clinic_a"];
        assert_eq!(profile.base_url, "http://10.0.0.5:8000/v1");
        assert_eq!(profile.api_key.as_deref(), Some("sk-profile-secret"));
        assert_eq!(profile.models, ["m"]);
        assert!(!format!("{model:?}").contains("sk-profile-secret"));

        for (toml, expect) in [
            ("[models.a]\nbase_url = \"http://h/v1\"\napi_key_env = \"FRONTDESK_TEST_SURELY_UNSET\"\n", "not set"),
            ("[models.a]\nbase_url = \"ftp://h/v1\"\n", "http(s)"),
            ("[models.a]\nbase_url = \"http://user:pw@h/v1\"\n", "user name"),
            ("[models.a]\nbase_url = \"http://h/v1\"\nurl = \"x\"\n", "[models.a]"),
            ("[models.\"a b\"]\nbase_url = \"http://h/v1\"\n", "profile name"),
            ("models = 3\n", "[models.NAME]"),
        ] {
            let (_dir, args) = with_file(toml);
            let err = Settings::resolve(&args).unwrap_err().to_string();
            assert!(err.contains(expect), "{toml}: {err}");
        }
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_by_name() {
        let (_dir, args) = with_file("bnid = \"0.0.0.0:9000\"\n");
        let err = Settings::resolve(&args).unwrap_err().to_string();
        assert!(err.contains("unknown setting `bnid`") && err.contains("did you mean `bind`"), "{err}");
        let (_dir, args) = with_file("FRONTDESK_WEBHOOK_POLL_MS = 500\nwebhook_timeout_secs = 3\n");
        assert!(Settings::resolve(&args).is_ok(), "either spelling of a real setting is fine");
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        let (_dir, args) = with_file("FRONTDESK_WORKERS = \"many\"\n");
        assert!(Settings::resolve(&args).unwrap_err().to_string().contains("FRONTDESK_WORKERS"));
        let args = SettingsArgs { database_url: Some("mysql://db".into()), ..Default::default() };
        assert!(Settings::resolve(&args).unwrap_err().to_string().contains("unsupported scheme `mysql`"));
        let args = SettingsArgs { log_format: Some("xml".into()), ..Default::default() };
        assert!(Settings::resolve(&args).is_err());
    }
}
