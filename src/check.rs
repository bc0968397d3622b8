//! `frontdesk check`: the configuration read as the server would read it, and every service it
//! names reached once (the database, Redis, the model endpoints), one line each, so an operator
//! learns what is on and what is wrong before the first start. Nothing is changed: no
//! migration runs and no demo workspace is created.

use std::time::Duration;

use crate::config::Settings;
use crate::storage::Db;

/// How long each service has to answer.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// One checked thing: its name, what was found, and whether it is fine.
pub struct Line {
    pub what: &'static str,
    pub found: String,
    pub ok: bool,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<5} {:<12} {}", if self.ok { "ok" } else { "FAIL" }, self.what, self.found)
    }
}

/// Runs every check; the caller prints the lines and fails if any is not ok.
pub async fn run(settings: &Settings) -> Vec<Line> {
    let mut lines = vec![Line { what: "config", found: "read (flags, environment, config file)".into(), ok: true }];
    lines.push(listen(&settings.bind));
    lines.push(data_dir(&settings.data_dir));
    lines.push(database(settings).await);
    lines.push(redis(settings).await);
    let model = &settings.model;
    lines.push(match &model.model {
        None => {
            Line { what: "model", found: "none: the built-in brain answers (set FRONTDESK_MODEL)".into(), ok: true }
        }
        Some(name) => reach_model("model", name, &model.base_url, model.api_key.as_deref(), model.allow_private).await,
    });
    for (profile, endpoint) in &model.profiles {
        let name = endpoint.model.clone().unwrap_or_else(|| "(the bot's choice)".into());
        let mut line =
            reach_model("profile", &name, &endpoint.base_url, endpoint.api_key.as_deref(), endpoint.allow_private)
                .await;
        line.found = format!("{profile}: {}", line.found);
        lines.push(line);
    }
    lines.push(match &settings.embeddings {
        None => Line { what: "embeddings", found: "off: knowledge retrieval is full text".into(), ok: true },
        Some(e) => reach_model("embeddings", &e.model, &e.base_url, e.api_key.as_deref(), true).await,
    });
    lines
}

fn listen(bind: &str) -> Line {
    match std::net::TcpListener::bind(bind) {
        Ok(_) => Line { what: "listen", found: format!("{bind} is free"), ok: true },
        Err(err) => Line { what: "listen", found: format!("{bind}: {err}"), ok: false },
    }
}

fn data_dir(dir: &std::path::Path) -> Line {
    let probe = dir.join(format!(".frontdesk-check-{}", std::process::id()));
    let writable = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&probe, b"")).map(|_| {
        let _ = std::fs::remove_file(&probe);
    });
    match writable {
        Ok(()) => Line { what: "data folder", found: format!("{} (writable)", dir.display()), ok: true },
        Err(err) => Line { what: "data folder", found: format!("{}: {err}", dir.display()), ok: false },
    }
}

async fn database(settings: &Settings) -> Line {
    let url = settings.database_url.clone();
    let checked = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let db = Db::connect(&url, 2)?;
        let pending = db.pending_migrations()?;
        Ok(format!(
            "{}, reachable; {}",
            db.backend().name(),
            match pending {
                0 => "migrations up to date".to_owned(),
                n => format!("{n} migrations to apply (the server applies them when it starts)"),
            }
        ))
    })
    .await;
    match checked {
        Ok(Ok(found)) => Line { what: "database", found, ok: true },
        Ok(Err(err)) => Line { what: "database", found: err.to_string(), ok: false },
        Err(err) => Line { what: "database", found: err.to_string(), ok: false },
    }
}

async fn redis(settings: &Settings) -> Line {
    let Some(url) = &settings.redis_url else {
        return Line { what: "redis", found: "none: one node, coordination in process".into(), ok: true };
    };
    let shown = without_password(url);
    let ping = async {
        let client = redis::Client::open(url.split(',').next().unwrap_or_default())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(REACH_TIMEOUT, ping).await {
        Ok(Ok(_)) => Line { what: "redis", found: format!("{shown} answers: cluster mode"), ok: true },
        Ok(Err(err)) => Line { what: "redis", found: format!("{shown}: {err}"), ok: false },
        Err(_) => Line { what: "redis", found: format!("{shown}: no answer within {REACH_TIMEOUT:?}"), ok: false },
    }
}

/// Asks an OpenAI-compatible endpoint for its models, with the key the server would send.
async fn reach_model(what: &'static str, model: &str, base_url: &str, key: Option<&str>, private: bool) -> Line {
    let client = crate::net_guard::model_client(base_url, private);
    let mut request = client.get(format!("{base_url}/models")).timeout(REACH_TIMEOUT);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let shown = without_password(base_url);
    match request.send().await {
        Ok(res) if res.status().is_success() => {
            Line { what, found: format!("{model} at {shown}: reachable"), ok: true }
        }
        Ok(res) => Line { what, found: format!("{model} at {shown}: answered {}", res.status()), ok: false },
        Err(err) => Line { what, found: format!("{model} at {shown}: {err}"), ok: false },
    }
}

/// A URL as it may be printed: a password in it is replaced.
fn without_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
