//! Building and running the server: database, migrations, the demo workspace on first start,
//! the ports of the live runtime, and the HTTP server. Tests build the same [`Application`].

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use frontdesk_actors::{EventBus, LeadScorer, Ports, SessionConfig, SessionRegistry, SystemClock};

use crate::domain::conversations::Conversations;
use tracing_actix_web::TracingLogger;

use crate::brain::builtin::BuiltinBrain;
use crate::brain::flows::{FlowBrain, FlowCatalog};
use crate::brain::model::ModelBrain;
use crate::brain::reception::Reception;
use crate::brain::BotSettingsCache;
use crate::cluster::bus::RedisBus;
use crate::cluster::redis::Redis;
use crate::config::Settings;
use crate::crypto::SecretBox;
use crate::domain::admission::Admission;
use crate::domain::booking::desk::BookingDesk;
use crate::domain::chat::Chat;
use crate::domain::crm::DbLeadSignals;
use crate::domain::events::LocalBus;
use crate::domain::knowledge::cache::KnowledgeCache;
use crate::domain::knowledge::chunk::ChunkConfig;
use crate::domain::knowledge::embed::Embedder;
use crate::domain::knowledge::fetch::{FetchLimits, Fetcher};
use crate::domain::knowledge::files::FileStore;
use crate::domain::knowledge::learn::{LearnConfig, Learner, LearnerWaker};
use crate::domain::knowledge::Knowledge;
use crate::domain::rate_limit::{ApiRateLimiter, ChatRateLimiter};
use crate::domain::store::DbConversationStore;
use crate::domain::webhooks::dispatcher::{DispatchConfig, WebhookDelivery};
use crate::jobs::sweeps::Sweeps;
use crate::jobs::{JobRunner, Schedule};
use crate::net_guard::TargetPolicy;
use crate::storage::workspaces::{self, CreatedWorkspace};
use crate::storage::{Backend, Db, MessageWriter};
use crate::transport::http;
use crate::transport::http::webhooks::WebhookAdmin;

/// How often a node announces itself in Redis.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// This node, and the cluster's Redis when there is one.
pub struct Cluster {
    pub node_id: String,
    pub redis: Option<Arc<Redis>>,
    /// What the cluster's event bus has carried (clustered only).
    pub bus: Option<Arc<crate::cluster::bus::BusStats>>,
}

/// Messages a session keeps as context for the brain.
const CONTEXT_WINDOW: usize = 20;

pub struct Application {
    port: u16,
    server: Server,
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    chat: Arc<Chat>,
    /// The demo workspace, when this start created it (its secrets are shown only now).
    pub demo: Option<CreatedWorkspace>,
    demo_page: crate::transport::web::DemoPage,
}

/// Listens on `address`, or says in one line why not and what to do.
fn bind(address: &str) -> anyhow::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let resolved = address.to_socket_addrs().map_err(|_| {
        anyhow::anyhow!(
            "cannot listen on `{address}`: not an address like 127.0.0.1:8080 (set FRONTDESK_BIND or --bind)"
        )
    })?;
    let addrs: Vec<_> = resolved.collect();
    TcpListener::bind(&addrs[..]).map_err(|err| match err.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "cannot listen on {address}: the port is in use (another frontdesk?); stop that process or choose \
             another address with FRONTDESK_BIND or --bind"
        ),
        std::io::ErrorKind::PermissionDenied => anyhow::anyhow!(
            "cannot listen on {address}: permission denied (ports below 1024 need privileges); choose a port above \
             1024 with FRONTDESK_BIND or --bind"
        ),
        std::io::ErrorKind::AddrNotAvailable => anyhow::anyhow!(
            "cannot listen on {address}: this machine has no such address; use 127.0.0.1 or 0.0.0.0 with a port"
        ),
        _ => anyhow::anyhow!("cannot listen on {address}: {err}"),
    })
}

/// The data folder, created if needed; the error names it.
fn prepare_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|err| {
        anyhow::anyhow!(
            "cannot use the data folder {}: {err}; set FRONTDESK_DATA_DIR (or --data-dir) to a folder frontdesk may \
             write to",
            dir.display()
        )
    })
}

/// Opens the database and applies pending migrations.
pub fn open_database(settings: &Settings) -> anyhow::Result<Db> {
    prepare_data_dir(&settings.data_dir)?;
    let db =
        Db::connect(&settings.database_url, settings.db_pool_size)?.with_acquire_timeout(settings.db_acquire_timeout);
    let applied = db.migrate()?;
    if applied > 0 {
        tracing::info!(applied, backend = db.backend().name(), "migrations applied");
    }
    Ok(db)
}

impl Application {
    /// Builds everything and binds the listener; serving starts with [`Application::run`].
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        // The address first: a start that cannot listen must fail before it creates anything
        // (the demo workspace's secrets are shown once, by a start that serves).
        let listener = bind(&settings.bind)?;
        let opened = {
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<(Db, Option<CreatedWorkspace>, SecretBox)> {
                let db = open_database(&settings)?;
                let secrets = SecretBox::load(settings.secret_key.as_deref(), &settings.data_dir)?;
                let mut conn = db.conn()?;
                let demo = if settings.demo && workspaces::count(&mut conn)? == 0 {
                    Some(workspaces::create(&mut conn, "Bright Smile Dental", true)?)
                } else {
                    None
                };
                Ok((db, demo, secrets))
            })
            .await??
        };
        let (db, demo, secrets) = opened;

        let writers = settings.db_writers.unwrap_or(match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        });
        let writer = MessageWriter::start(db.clone(), writers, settings.db_writer_queue, settings.db_acquire_timeout);
        let bus = Arc::new(LocalBus::new());
        let bots = Arc::new(BotSettingsCache::new(db.clone()));
        let desk = Arc::new(
            BookingDesk::new(db.clone())
                .with_horizon(crate::domain::booking::Horizon::days(settings.booking_horizon_days)),
        );
        let scorer = LeadScorer::new(Arc::new(DbLeadSignals::new(db.clone())), crate::domain::crm::COALESCE).start();
        let reception = Arc::new(Reception::new(db.clone(), desk.clone(), Some(scorer.clone()), settings.booking_hold));
        // Unique even for several servers in one process (tests) or on one host.
        let node_id =
            format!("{}-{}-{}", hostname(), std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..6]);
        let knowledge = web::Data::new(start_knowledge(&settings, &db, &node_id)?);
        let redis = match &settings.redis_url {
            Some(url) => {
                let redis = Redis::connect(url, &settings.redis_prefix, &node_id)?;
                redis.start_heartbeat(HEARTBEAT);
                tracing::info!(node_id = %node_id, "cluster mode: events and rate limits go through Redis");
                Some(redis)
            }
            None => None,
        };
        // Conversation events reach this node's subscribers directly and, clustered, every
        // other node's through Redis.
        let (events, bus_stats): (Arc<dyn EventBus>, _) = match &redis {
            Some(redis) => {
                let cluster_bus = RedisBus::start(redis.clone(), bus.clone());
                let stats = cluster_bus.stats.clone();
                (Arc::new(cluster_bus), Some(stats))
            }
            None => (bus.clone(), None),
        };
        let flows = Arc::new(FlowCatalog::new(db.clone()).with_http_policy(flow_http_policy(&settings)));
        let tools = || crate::brain::tools::Tools {
            db: db.clone(),
            desk: desk.clone(),
            knowledge: Some(knowledge.clone().into_inner()),
            scorer: scorer.clone(),
        };
        // The understanding model trains in a fraction of a second at first use; done here, off
        // the event loop, the first visitor's turn does not wait for it.
        tokio::task::spawn_blocking(crate::brain::nlu::Nlu::shared);
        // The model brain answers for bots with a model and hands everything else (and its own
        // failures) to the built-in brain; a deployed flow, in front of both, runs first.
        let model_brain = ModelBrain::new(
            settings.model.clone(),
            bots.clone(),
            Some(knowledge.clone().into_inner()),
            Arc::new(
                BuiltinBrain::new(bots.clone(), Some(reception), Some(knowledge.clone().into_inner()))
                    .with_agents(db.clone()),
            ),
            db.clone(),
        )
        .with_tools(tools());
        let flow_tools = Arc::new(tools());
        let ports = Ports {
            store: Arc::new(DbConversationStore::new(db.clone(), writer, CONTEXT_WINDOW, Some(scorer.clone()))),
            brain: Arc::new(FlowBrain {
                catalog: flows.clone(),
                inner: Arc::new(model_brain),
                tools: flow_tools.clone(),
                knowledge: Some(knowledge.clone().into_inner()),
                http_policy: flow_http_policy(&settings),
            }),
            bus: events.clone(),
            clock: Arc::new(SystemClock),
        };
        let registry = SessionRegistry::new(
            ports,
            SessionConfig {
                idle_timeout: settings.session_idle,
                context_window: CONTEXT_WINDOW,
                max_queued_turns: settings.admission.max_queued_turns,
                ..Default::default()
            },
        );
        // Clustered, a conversation's session runs on the node holding its lease; the others
        // forward to it.
        let conversations = match &redis {
            Some(redis) => {
                Conversations::clustered(registry, redis.clone(), db.clone(), events.clone(), settings.lease)
            }
            None => Conversations::single(registry),
        };
        let policy = TargetPolicy { allow_loopback: settings.webhook_allow_loopback, ..Default::default() };
        WebhookDelivery::new(
            db.clone(),
            secrets.clone(),
            Arc::new(SystemClock),
            DispatchConfig {
                node_id: node_id.clone(),
                schedule: settings.webhook_retry_schedule.clone(),
                timeout: settings.webhook_timeout,
                // Room for a few attempts per lane; a node killed mid-round holds its claims no
                // longer than this.
                lease: settings.webhook_timeout * 4 + Duration::from_secs(10),
                poll: settings.webhook_poll,
                batch: 200,
                disable_after: settings.webhook_disable_after,
                policy: policy.clone(),
            },
        )
        .start();
        let links = web::Data::new(secrets.clone());
        let console_auth = web::Data::new(crate::transport::http::console_auth::ConsoleAuth {
            session_lifetime: settings.session_lifetime,
            per_account: ApiRateLimiter::<String>::per_minute(settings.sign_in_per_account_per_minute)
                .map(|limiter| limiter.shared(redis.clone(), "signin-account")),
            per_address: ApiRateLimiter::<String>::per_minute(settings.sign_in_per_address_per_minute)
                .map(|limiter| limiter.shared(redis.clone(), "signin-address")),
        });
        let webhook_admin = web::Data::new(WebhookAdmin { secrets, policy });
        let web_files = web::Data::new(crate::transport::web::WebFiles::new(settings.web_dir.clone()));
        let warming = web_files.clone();
        tokio::task::spawn_blocking(move || warming.warm()).await?;
        let demo_page = web::Data::new(settings.demo_page);
        let api_origins = web::Data::new(crate::transport::http::cors::ApiOrigins(settings.api_cors_origins.clone()));
        let limits = settings.limits();
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let chat = web::Data::new(Chat {
            db,
            conversations,
            bus: events,
            bots,
            limits,
            desk,
            flows,
            flow_tools,
            shutdown: shutdown_rx,
            admission: Arc::new(Admission::new(settings.admission.clone(), redis.clone())),
            scorer,
            polls_waiting: Arc::default(),
        });
        let agent_sockets = web::Data::new(crate::domain::presence::AgentSockets::new(redis.clone()));
        let revocations = web::Data::from(crate::transport::revocation::Revocations::start(
            chat.db.clone(),
            redis.clone(),
            settings.credential_check,
        ));
        let model_defaults = web::Data::new(settings.model.clone());
        crate::domain::handoff::HandoffRules {
            chat: chat.clone().into_inner(),
            silence: settings.agent_silence,
            auto_assign: settings.auto_assign,
            redis: redis.clone(),
        }
        .start();

        let limiter = ApiRateLimiter::<i64>::per_minute(settings.rate_limit_per_minute)
            .map(|limiter| web::Data::new(limiter.shared(redis.clone(), "api")));
        let chat_limiter = ChatRateLimiter::per_minute(settings.chat_rate_limit_per_minute)
            .map(|limiter| web::Data::new(limiter.shared(redis.clone())));
        let cluster = web::Data::new(Cluster { node_id: node_id.clone(), redis, bus: bus_stats });
        let mut shrink: Vec<Box<dyn Fn()>> = vec![Box::new(move || {
            bus.sweep();
        })];
        if let Some(limiter) = limiter.clone() {
            shrink.push(Box::new(move || limiter.shrink()));
        }
        if let Some(limiter) = chat_limiter.clone() {
            shrink.push(Box::new(move || limiter.shrink()));
        }
        let admission = chat.admission.clone();
        shrink.push(Box::new(move || admission.shrink()));
        // Sign-in quotas are kept per email and per address: forget the full ones.
        let sign_in = console_auth.clone();
        shrink.push(Box::new(move || {
            for limiter in [&sign_in.per_account, &sign_in.per_address].into_iter().flatten() {
                limiter.shrink();
            }
        }));
        let sweeps = Sweeps {
            db: chat.db.clone(),
            agent_sockets: agent_sockets.clone().into_inner(),
            presence_grace: settings.sweep_interval,
            shrink,
        };
        JobRunner::new(sweeps, Schedule::every(settings.sweep_interval)).start();
        let graceful_chat = chat.clone().into_inner();

        let port = listener.local_addr()?.port();
        let body_guard = http::body_guard::BodyGuard {
            body_timeout: settings.body_timeout,
            upload_timeout: settings.upload_timeout,
        };
        let server = HttpServer::new(move || {
            let app = App::new()
                // Inside the request span, so a refusal at the door is logged like any answer.
                .wrap(actix_web::middleware::from_fn(crate::domain::admission::public_door))
                // Outside the door, so a refusal (429) is readable by the page that was refused.
                .wrap(actix_web::middleware::from_fn(crate::transport::http::cors::cors))
                .wrap(actix_web::middleware::from_fn(crate::text::refuse_nul_in_url))
                .wrap(body_guard)
                // Outside everything that may refuse a request, so CX Genie's every error says
                // `"success": false`.
                .wrap(actix_web::middleware::from_fn(crate::transport::compat::cxgenie::error_envelope))
                .wrap(TracingLogger::<http::span::RequestSpan>::new())
                .app_data(chat.clone())
                .app_data(agent_sockets.clone())
                .app_data(revocations.clone())
                .app_data(cluster.clone())
                .app_data(model_defaults.clone())
                .app_data(webhook_admin.clone())
                .app_data(links.clone())
                .app_data(console_auth.clone())
                .app_data(web_files.clone())
                .app_data(demo_page.clone())
                .app_data(api_origins.clone())
                .app_data(knowledge.clone())
                .app_data(limits)
                .app_data(web::PayloadConfig::new(limits.max_body_bytes))
                .app_data(web::QueryConfig::default().error_handler(http::query_error))
                .app_data(web::PathConfig::default().error_handler(http::path_error))
                .configure(http::routes);
            let app = match &chat_limiter {
                Some(limiter) => app.app_data(limiter.clone()),
                None => app,
            };
            match &limiter {
                Some(limiter) => app.app_data(limiter.clone()),
                None => app,
            }
        })
        .workers(settings.workers)
        // Request heads must arrive within 5 s (else 408), idle keep-alive connections close after
        // 5 s, and a closing connection gets 1 s to take its last bytes; bodies have their own
        // deadline (`BodyGuard`). Explicit, so an upgrade of actix cannot quietly change them.
        .client_request_timeout(Duration::from_secs(5))
        .keep_alive(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        // A reply is several small frames; Nagle would hold them for the peer's delayed ACK (~40 ms).
        .tcp_nodelay(true)
        .shutdown_timeout(5)
        // `frontdesk serve` handles SIGTERM and SIGINT itself, through `GracefulShutdown`.
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Application {
            port,
            server,
            shutdown: Arc::new(shutdown),
            chat: graceful_chat,
            demo,
            demo_page: settings.demo_page,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bot `/demo` shows, when the page is on and the database has a demo workspace.
    pub async fn demo_bot(&self) -> Option<String> {
        if self.demo_page == crate::transport::web::DemoPage::Off {
            return None;
        }
        self.chat.db.run(crate::storage::workspaces::demo_bot).await.ok().flatten()
    }

    /// A handle to stop the server from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// A handle to shut the server down gracefully from elsewhere.
    pub fn graceful(&self) -> GracefulShutdown {
        GracefulShutdown { signal: self.shutdown.clone(), server: self.server.handle(), chat: self.chat.clone() }
    }

    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// A graceful shutdown: sockets are closed with code 1012 and a reconnect hint (so widgets and
/// agent consoles go to another node, or back to this one once it is up, and resume from their
/// last `seq`); every live conversation finishes the reply it is giving and its session stops,
/// handing the conversation over (clustered: its lease is released, and the next node to need
/// it takes it from the database); then the server stops accepting and finishes the requests
/// in flight. Every acknowledged message is already stored, so nothing else needs flushing.
#[derive(Clone)]
pub struct GracefulShutdown {
    signal: Arc<tokio::sync::watch::Sender<bool>>,
    server: ServerHandle,
    chat: Arc<Chat>,
}

/// How long a shutdown waits for live conversations to finish their replies.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

impl GracefulShutdown {
    pub async fn run(&self) {
        self.signal.send_replace(true);
        // Time for the close frames to leave before the connections are dropped.
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Sessions run on the server's workers: they must be done before the workers stop.
        self.chat.conversations.drain(DRAIN_TIMEOUT).await;
        self.server.stop(true).await;
    }
}

/// The knowledge base and its learning worker (started on the current runtime).
fn start_knowledge(settings: &Settings, db: &Db, node_id: &str) -> anyhow::Result<Knowledge> {
    let policy =
        TargetPolicy { allow_http: true, allowed_networks: settings.fetch_allow.clone().into(), ..Default::default() };
    let limits =
        FetchLimits { timeout: settings.fetch_timeout, max_bytes: settings.fetch_max_bytes, ..FetchLimits::default() };
    let files = FileStore::open(&settings.data_dir)
        .map_err(|err| anyhow::anyhow!("cannot use {} for uploads: {err}", settings.data_dir.display()))?;
    let waker = LearnerWaker::default();
    let embedder = match &settings.embeddings {
        Some(embeddings) => {
            tracing::info!(model = %embeddings.model, url = %embeddings.base_url, "knowledge retrieval is hybrid");
            Some(Arc::new(
                Embedder::new(embeddings.clone()).map_err(|err| anyhow::anyhow!("embeddings client: {err}"))?,
            ))
        }
        None => None,
    };
    if let Some(embedder) = &embedder {
        crate::brain::intent_vectors::warm(embedder.clone());
    }
    let model = embedder.as_ref().map(|e| e.model().to_owned());
    let cache = Arc::new(
        KnowledgeCache::new(db.clone(), Duration::from_secs(2), model)
            .with_limits(settings.knowledge_cache_entries, settings.knowledge_cache_bytes),
    );
    Learner::new(
        db.clone(),
        Fetcher::new(policy.clone(), limits),
        files.clone(),
        cache.clone(),
        embedder.clone(),
        LearnConfig {
            // Several servers may share a host (and tests share a process): the suffix keeps
            // their claims apart.
            node: format!("{node_id}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            lease: settings.learn_lease,
            poll: Duration::from_secs(1),
            concurrency: 2,
            max_pages: settings.crawl_max_pages,
            max_depth: settings.crawl_max_depth,
            chunking: ChunkConfig::default(),
        },
    )
    .start(waker.clone());
    Ok(Knowledge {
        db: db.clone(),
        cache,
        files,
        fetcher: Arc::new(Fetcher::new(policy.clone(), limits)),
        waker,
        policy,
        upload_max_bytes: settings.upload_max_bytes,
        upload_timeout: settings.upload_timeout,
        crawl_max_pages: settings.crawl_max_pages,
        crawl_max_depth: settings.crawl_max_depth,
        embedder,
    })
}

/// What a flow's HTTP block may call: public https targets, loopback when webhooks may use it
/// (development and tests), and the operator's allowed internal networks.
fn flow_http_policy(settings: &Settings) -> TargetPolicy {
    TargetPolicy {
        allow_loopback: settings.webhook_allow_loopback,
        allow_http: false,
        allowed_networks: settings.fetch_allow.clone().into(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "node".into())
}
