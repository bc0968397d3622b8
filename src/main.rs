//! The `frontdesk` command: a thin CLI over the library.

use clap::{Parser, Subcommand};
use frontdesk::cluster::control::{publish_once, Control, Revoked};
use frontdesk::cluster::redis::Redis;
use frontdesk::config::{Settings, SettingsArgs};
use frontdesk::ids::WorkspaceId;
use frontdesk::startup::{open_database, Application};
use frontdesk::status::AgentRole;
use frontdesk::storage::{agents, keys, now_ms, workspaces};
use frontdesk::telemetry;

/// frontdesk: a self-hosted AI front desk (widget chat, knowledge, bookings, leads, agents, webhooks).
///
/// Every setting can be given as a flag, as the environment variable shown, or in a TOML file
/// under the same name; flags win over the environment, which wins over the file.
#[derive(Debug, Parser)]
#[command(name = "frontdesk", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Read the configuration and reach the database, Redis and the model endpoints, one line
    /// each; changes nothing. Exits 1 if anything is wrong.
    Check,
    /// Manage workspaces.
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manage the people who answer conversations.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// The built-in brain's understanding of visitors' messages.
    Nlu {
        #[command(subcommand)]
        command: NluCommand,
    },
}

#[derive(Debug, Subcommand)]
enum NluCommand {
    /// Score intent classification and language detection on a labelled set (a `<lang>.tsv`
    /// per language): accuracy, macro-F1 and per-intent precision, recall and F1.
    Evaluate {
        /// The folder holding en.tsv, es.tsv, fr.tsv, de.tsv and pt.tsv.
        #[arg(long, default_value = "tests/nlu/eval")]
        dir: std::path::PathBuf,
        /// Also list every message that was misread.
        #[arg(long)]
        misses: bool,
        /// Give uncertain readings meaning's second opinion, as the running brain does, through
        /// the configured embeddings endpoint (`FRONTDESK_EMBEDDINGS_MODEL` and its settings).
        #[arg(long)]
        meaning: bool,
    },
    /// Print what the brain makes of one message (as the demo practice's bot): intent,
    /// confidence, language, runners-up.
    Classify { message: String },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Create an agent; prints the agent, its API token (shown only now) and a one-time link that
    /// sets its console password (`set_password_link`, valid 7 days) as JSON.
    Create {
        #[arg(long)]
        workspace: i64,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// `agent` (conversations only) or `admin` (everything an API key reaches).
        #[arg(long, default_value = "agent")]
        role: AgentRole,
    },
}

#[derive(Debug, Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace with its bot and credentials; prints them as one JSON object.
    Create {
        #[arg(long)]
        name: String,
        /// Give the bot the sample practice's facts and policies.
        #[arg(long)]
        demo: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key for a workspace; prints it once as JSON.
    Create {
        #[arg(long)]
        workspace: i64,
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List a workspace's API keys (prefix, name, created, last used, revoked; never the secret)
    /// as JSON.
    List {
        #[arg(long)]
        workspace: i64,
    },
    /// Revoke an API key at once; even the workspace's last one. With REDIS_URL, every running
    /// node ends the streams the key has open right away; otherwise within
    /// FRONTDESK_CREDENTIAL_CHECK_SECS.
    Revoke {
        #[arg(long)]
        workspace: i64,
        /// The key's id (see `frontdesk key list`).
        #[arg(long)]
        id: i64,
    },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line that says what is wrong and what to do: the errors are written for it.
            eprintln!("frontdesk: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn nlu(command: NluCommand, settings: &Settings) -> anyhow::Result<()> {
    use frontdesk::brain::nlu::{eval, Intent, Nlu};
    let nlu = Nlu::shared();
    match command {
        NluCommand::Evaluate { dir, misses, meaning: false } => {
            let cases = eval::load(&dir).map_err(anyhow::Error::msg)?;
            print!("{}", eval::render(&eval::evaluate(&nlu, &cases), misses));
        }
        NluCommand::Evaluate { dir, misses, meaning: true } => {
            let cases = eval::load(&dir).map_err(anyhow::Error::msg)?;
            let embeddings = settings.embeddings.clone().ok_or_else(|| {
                anyhow::anyhow!("--meaning needs an embeddings endpoint: set FRONTDESK_EMBEDDINGS_MODEL (and its URL)")
            })?;
            let embedder = std::sync::Arc::new(frontdesk::domain::knowledge::embed::Embedder::new(embeddings)?);
            let lexicon = eval::demo_lexicon();
            let (predictions, reranked) = tokio::runtime::Runtime::new()?.block_on(async {
                for lang in frontdesk::brain::nlu::Lang::ALL {
                    frontdesk::brain::intent_vectors::prototypes(&embedder, lang)
                        .await
                        .ok_or_else(|| anyhow::anyhow!("the embeddings endpoint did not embed the {lang} examples"))?;
                }
                let mut predictions = Vec::with_capacity(cases.len());
                let mut reranked = 0;
                for case in &cases {
                    let understood = nlu.understand(&case.text, None, &lexicon);
                    let (understood, verdict) =
                        frontdesk::brain::intent_vectors::rerank(&embedder, &case.text, understood).await;
                    reranked += usize::from(verdict.is_some());
                    predictions.push((understood.intent.unwrap_or(Intent::OutOfScope), understood.lang));
                }
                Ok::<_, anyhow::Error>((predictions, reranked))
            })?;
            println!("meaning gave its opinion on {reranked} of {} messages", cases.len());
            print!("{}", eval::render(&eval::report_of(&cases, &predictions), misses));
        }
        NluCommand::Classify { message } => {
            let understood = nlu.understand(&message, None, &eval::demo_lexicon());
            let ranking: Vec<serde_json::Value> = understood
                .prediction
                .ranking
                .iter()
                .take(5)
                .map(|(intent, score)| serde_json::json!({ "intent": intent, "score": score }))
                .collect();
            let line = serde_json::json!({
                "intent": understood.intent,
                "confidence": understood.confidence,
                "language": understood.lang,
                "ranking": ranking,
            });
            println!("{line}");
        }
    }
    Ok(())
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::resolve(&cli.settings)?;
    telemetry::init(settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Nlu { command } => nlu(command, &settings),
        Command::Check => {
            let lines = tokio::runtime::Runtime::new()?.block_on(frontdesk::check::run(&settings));
            for line in &lines {
                println!("{line}");
            }
            if lines.iter().any(|line| !line.ok) {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Migrate => {
            let db = open_database(&settings)?;
            println!("{}", serde_json::json!({ "migrated": true, "backend": db.backend().name() }));
            Ok(())
        }
        Command::Workspace { command: WorkspaceCommand::Create { name, demo } } => {
            let db = open_database(&settings)?;
            let mut conn = db.conn()?;
            let created = workspaces::create(&mut conn, &name, demo)?;
            println!("{}", serde_json::to_string_pretty(&created)?);
            Ok(())
        }
        Command::Key { command: KeyCommand::Create { workspace, name } } => {
            let workspace = WorkspaceId(workspace);
            let db = open_database(&settings)?;
            let mut conn = db.conn()?;
            let key = keys::create(&mut conn, workspace, &name)?;
            println!("{}", serde_json::json!({ "workspace_id": workspace, "api_key": key }));
            Ok(())
        }
        Command::Key { command: KeyCommand::List { workspace } } => {
            let workspace = WorkspaceId(workspace);
            let db = open_database(&settings)?;
            let mut conn = db.conn()?;
            anyhow::ensure!(workspaces::get(&mut conn, workspace)?.is_some(), "workspace {workspace} does not exist");
            let rows = keys::list(&mut conn, workspace)?;
            println!("{}", serde_json::json!({ "workspace_id": workspace, "keys": rows }));
            Ok(())
        }
        Command::Key { command: KeyCommand::Revoke { workspace, id } } => {
            let workspace = WorkspaceId(workspace);
            let db = open_database(&settings)?;
            let mut conn = db.conn()?;
            let key = match keys::revoke(&mut conn, workspace, id, false)? {
                keys::Revoked::Done(key) => key,
                _ => anyhow::bail!("workspace {workspace} has no API key {id}"),
            };
            let nodes_told = match &settings.redis_url {
                Some(url) => tell_nodes(url, &settings.redis_prefix, workspace, id)?,
                None => false,
            };
            println!("{}", serde_json::json!({ "workspace_id": workspace, "revoked": key, "nodes_told": nodes_told }));
            Ok(())
        }
        Command::Agent { command: AgentCommand::Create { workspace, name, email, role } } => {
            let workspace = WorkspaceId(workspace);
            let db = open_database(&settings)?;
            let mut conn = db.conn()?;
            anyhow::ensure!(workspaces::get(&mut conn, workspace)?.is_some(), "workspace {workspace} does not exist");
            let email = email.trim().to_lowercase();
            anyhow::ensure!(email.contains('@'), "--email must be an email address");
            let (agent, token) = agents::create(&mut conn, workspace, name.trim(), &email, role, now_ms())?
                .ok_or_else(|| anyhow::anyhow!("workspace {workspace} already has an agent with this email"))?;
            let lifetime = frontdesk::transport::http::console_auth::LINK_LIFETIME.as_millis() as i64;
            let (link, expires_at) = frontdesk::storage::sessions::create_link(&mut conn, &agent, lifetime, now_ms())?;
            let link = format!("{}{}", settings.public_url, frontdesk::transport::http::console_auth::link_path(&link));
            println!(
                "{}",
                serde_json::json!({ "agent": agent, "token": token, "set_password_link": link, "link_expires_at": expires_at })
            );
            eprintln!("Send {name} this link to set a password and sign in to the console (one use, 7 days):\n{link}");
            Ok(())
        }
    }
}

/// Tells the running nodes, through the cluster's control channel, that key `id` is revoked;
/// false when Redis could not be reached (the nodes' own checks catch up).
fn tell_nodes(url: &str, prefix: &str, workspace_id: WorkspaceId, id: i64) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let redis = Redis::connect(url, prefix, &format!("cli-{}", std::process::id()))?;
        let control = Control::CredentialRevoked(Revoked { workspace_id, key_id: Some(id), ..Default::default() });
        match publish_once(&redis, &control).await {
            Ok(()) => Ok(true),
            Err(error) => {
                tracing::warn!(%error, "the running nodes were not told; their own checks will end the key's streams");
                Ok(false)
            }
        }
    })
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_rt::System::new().block_on(async move {
        let bind = settings.bind.clone();
        let app = Application::build(settings).await?;
        let host = bind.rsplit_once(':').map(|(host, _)| host).unwrap_or("127.0.0.1");
        let base = format!("http://{host}:{}", app.port());
        println!("frontdesk listening on {base}");
        if let Some(demo) = &app.demo {
            print_demo_banner(&base, demo);
        } else if app.demo_bot().await.is_some() {
            println!("Chat with the demo practice's bot in a browser: {base}/demo");
        }
        let graceful = app.graceful();
        actix_rt::spawn(async move {
            wait_for_stop_signal().await;
            tracing::info!("shutting down: sockets are told to reconnect, requests in flight finish");
            graceful.run().await;
        });
        app.run().await?;
        Ok(())
    })
}

/// SIGTERM (a process manager or a rolling restart) or SIGINT (Ctrl-C).
async fn wait_for_stop_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

fn print_demo_banner(base: &str, demo: &workspaces::CreatedWorkspace) {
    let ws = base.replacen("http", "ws", 1);
    println!(
        "\nCreated the demo workspace. Its secrets are shown only now; keep them:\n{}\n\n\
         Chat in a browser: open {base}/demo\n\
         Put the widget on your own site: <script src=\"{base}/widget.js\" data-bot=\"{bot}\" async></script>\n\
         Answer chats and run the bot at {base}/console: make yourself an admin with\n  \
         frontdesk agent create --workspace {workspace} --name \"Your Name\" --email you@example.com --role admin\n\
         and open the set-password link it prints.\n\n\
         Chat over REST:\n  \
         curl -s -X POST {base}/api/conversations -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{{}}'\n  \
         curl -s -X POST {base}/api/conversations/<id>/messages -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{{\"text\":\"What are your opening hours?\"}}'\n\n\
         Chat over WebSocket (e.g. with websocat):\n  \
         websocat {ws}/ws/widget   then send: {{\"type\":\"hello\",\"bot_id\":\"{bot}\"}}\n                                 and: {{\"type\":\"message\",\"text\":\"Where are you located?\"}}\n\n\
         Book by chat (ChatGenius's POST /chat; answer its questions in the same session):\n  \
         curl -s -X POST {base}/chat -H 'Content-Type: application/json' -d '{{\"message\":\"I need to book a dental cleaning\",\"session_id\":\"my-session-123\",\"admin_id\":\"{admin}\"}}'\n",
        serde_json::to_string_pretty(demo).unwrap_or_default(),
        key = demo.api_key,
        bot = demo.bot_id,
        admin = demo.public_id,
        workspace = demo.workspace_id,
    );
}
