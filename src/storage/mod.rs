//! Storage: one connection type for SQLite and PostgreSQL, its pool, embedded migrations, and
//! the repositories of each part of the domain.
//!
//! Diesel is blocking, so nothing here is called on the actix event loop: [`Db::run`] hands
//! work to tokio's blocking pool, and the [`writer`] threads group messages into transactions.
//! A semaphore sized to the pool stands in front of [`Db::run`]: a call waits a bounded time for
//! a permit and is otherwise refused as [`DbError::Busy`] (503 with `Retry-After`), so a flood
//! of requests queues in front of the database for seconds at most instead of piling up
//! blocking tasks that each wait for a connection.
//! Queries that need backend-specific SQL (upserts, `RETURNING`, immediate transactions) are
//! written once and compiled for each backend with [`on_backend!`].

pub mod agents;
pub mod bookings;
pub mod bots;
pub mod contacts;
pub mod conversations;
pub mod customers;
pub mod flows;
pub mod forms;
pub mod idempotency;
pub mod inbox;
pub mod keys;
pub mod knowledge;
pub mod leads;
pub mod messages;
pub mod notes;
pub mod outbox;
pub mod patients;
pub mod schedule;
pub mod schema;
pub mod sessions;
pub mod unanswered;
pub mod uploads;
pub mod usage;
pub mod webhooks;
pub mod workspaces;
pub mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::ids::WorkspaceId;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use bots::BotSettings;
pub use writer::MessageWriter;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to whichever backend the server was started on.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs the same diesel code against the concrete connection of either backend.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::storage::DbConn::Sqlite($c) => $body,
            $crate::storage::DbConn::Postgres($c) => $body,
        }
    };
}

/// Runs `f` in a write transaction: `BEGIN IMMEDIATE` on SQLite (so two writers never deadlock
/// upgrading read locks), an ordinary transaction on PostgreSQL. Any error from `f` rolls back.
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    E: From<diesel::result::Error>,
    F: FnOnce(&mut DbConn) -> Result<T, E>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    use diesel::Connection;
    if !matches!(conn, DbConn::Sqlite(_)) {
        return conn.transaction(f);
    }
    // Begun through diesel's own transaction manager, so that diesel code inside `f` that opens
    // a transaction gets a savepoint instead of a second BEGIN.
    fn sqlite(conn: &mut DbConn) -> &mut SqliteConnection {
        match conn {
            DbConn::Sqlite(c) => c,
            DbConn::Postgres(_) => unreachable!("checked above"),
        }
    }
    let depth =
        AnsiTransactionManager::transaction_manager_status_mut(sqlite(conn)).transaction_depth().map_err(E::from)?;
    if depth.is_some() {
        // Already inside a write transaction: nest as a savepoint.
        return conn.transaction(f);
    }
    AnsiTransactionManager::begin_transaction_sql(sqlite(conn), "BEGIN IMMEDIATE").map_err(E::from)?;
    match f(conn) {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(sqlite(conn)).map_err(E::from)?;
            Ok(value)
        }
        Err(err) => {
            let _ = AnsiTransactionManager::rollback_transaction(sqlite(conn));
            Err(err)
        }
    }
}

/// What a workspace lock guards.
#[derive(Debug, Clone, Copy)]
pub enum Guarded {
    /// Reservations, holds and reschedules: the exclusion constraint covers bookings, but holds
    /// and time off are only checked, so two nodes must not check at once.
    Schedule = 1,
    /// Matching or creating a patient by email or phone: two nodes must not both create one.
    Patients = 2,
    /// Revoking an API key: two revocations at once must not leave the workspace without one.
    ApiKeys = 3,
}

/// Makes the rest of the caller's transaction the only one of its kind for the workspace. On
/// PostgreSQL that is a transaction-scoped advisory lock, held by whichever node runs it; on
/// SQLite, `BEGIN IMMEDIATE` already admits one writer at a time.
pub fn lock_workspace(conn: &mut DbConn, guarded: Guarded, workspace_id: WorkspaceId) -> Result<(), DbError> {
    if let DbConn::Postgres(c) = conn {
        use diesel::sql_types::Integer;
        use diesel::RunQueryDsl;
        // The two-key form keeps these locks apart from any other advisory lock; a workspace id
        // beyond 2^31 only folds onto another workspace's lock, which is safe.
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind::<Integer, _>(guarded as i32)
            .bind::<Integer, _>(workspace_id.get() as i32)
            .execute(c)?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database unavailable: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database task failed: {0}")]
    Task(String),
    #[error("{0}")]
    Invalid(String),
    /// The write came from a conversation session whose fencing token is stale.
    #[error("conversation is owned by a newer session (fencing token {0} is stale)")]
    Fenced(i64),
    /// Every connection stayed busy for the whole admission wait: the caller should retry.
    #[error("database is busy: no connection became free within {} ms", .0.as_millis())]
    Busy(Duration),
}

impl DbError {
    /// A unique-constraint violation: somebody else created the same thing first.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
        )
    }
}

/// Settings every SQLite connection needs, applied when the pool opens it.
#[derive(Debug)]
struct SqlitePragmas {
    synchronous: &'static str,
}

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        if let DbConn::Sqlite(c) = conn {
            // busy_timeout first: switching to WAL takes a lock that the pool's other new
            // connections would otherwise fail on instead of waiting for. A larger page cache and
            // rarer checkpoints let the writer rewrite hot index pages in memory (BENCHMARKS.md).
            c.batch_execute(&format!(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                 PRAGMA synchronous = {}; PRAGMA cache_size = -8000; PRAGMA wal_autocheckpoint = 8000;",
                self.synchronous
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// How long [`Db::run`] waits for a permit unless configured otherwise.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the admission gate and the message writer have seen, for `/metrics`.
#[derive(Debug, Default)]
pub struct DbStats {
    /// Calls that found every permit taken and had to wait.
    pub waited: AtomicU64,
    /// Calls refused because no permit came within the wait.
    pub busy: AtomicU64,
    /// Messages handed to the writer threads and not yet taken into a batch.
    pub writer_queued: AtomicI64,
    /// Messages refused because the writer's queue stayed full.
    pub writer_refused: AtomicU64,
}

/// The database handle the server shares: a pool plus the message writer.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<DbConn>>,
    backend: Backend,
    /// One permit per pooled connection: the number of blocking tasks [`Db::run`] may have.
    permits: Arc<tokio::sync::Semaphore>,
    acquire_timeout: Duration,
    stats: Arc<DbStats>,
}

impl Db {
    /// Opens the pool for `url` (`sqlite://path` or a bare path for SQLite, `postgres://…`).
    pub fn connect(url: &str, pool_size: u32) -> anyhow::Result<Db> {
        let (backend, target) = parse_url(url)?;
        if backend == Backend::Sqlite {
            if let Some(parent) = Path::new(&target).parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|err| {
                    anyhow::anyhow!("cannot create the folder {} for the SQLite database: {err}", parent.display())
                })?;
            }
            // WAL is a property of the file: set it once, alone, before the pool opens its
            // connections all at once; several of them switching a new file together make
            // SQLite refuse all but one ("database is locked", busy_timeout or not).
            use diesel::Connection;
            let mut first = diesel::SqliteConnection::establish(&target)
                .map_err(|err| anyhow::anyhow!("cannot open the SQLite database {target}: {err}"))?;
            first
                .batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")
                .map_err(|err| anyhow::anyhow!("cannot switch the SQLite database {target} to WAL: {err}"))?;
        }
        if backend == Backend::Postgres {
            // One connection alone first, so that a server that is down, a database that does
            // not exist or a refused login is one line that says which, rather than the pool's
            // retries of an opaque error.
            use diesel::Connection;
            diesel::PgConnection::establish(&target)
                .map_err(|err| anyhow::anyhow!(describe_pg_failure(&target, &err)))?;
        }
        let manager = ConnectionManager::<DbConn>::new(target);
        let pool_size = pool_size.max(2);
        let pool = Pool::builder()
            .max_size(pool_size)
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(SqlitePragmas { synchronous: "FULL" }))
            .build(manager)
            .map_err(|err| anyhow::anyhow!("cannot open the {} database: {err}", backend.name()))?;
        Ok(Db {
            pool,
            backend,
            permits: Arc::new(tokio::sync::Semaphore::new(pool_size as usize)),
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            stats: Arc::default(),
        })
    }

    /// Sets how long [`Db::run`] waits for a free connection before answering [`DbError::Busy`].
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Db {
        self.acquire_timeout = timeout;
        self
    }

    pub fn stats(&self) -> &DbStats {
        &self.stats
    }

    /// Permits of [`Db::run`] taken right now.
    pub fn in_use(&self) -> usize {
        self.pool.max_size() as usize - self.permits.available_permits()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection for blocking code that is already off the event loop (CLI, writer threads).
    pub fn conn(&self) -> Result<PooledConnection<ConnectionManager<DbConn>>, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs blocking database work on tokio's blocking pool, once a permit is free (at most the
    /// pool's size at a time); [`DbError::Busy`] if none is within the acquire timeout.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.stats.waited.fetch_add(1, Ordering::Relaxed);
                match tokio::time::timeout(self.acquire_timeout, self.permits.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    // The semaphore is never closed; a timeout is the only refusal.
                    _ => {
                        self.stats.busy.fetch_add(1, Ordering::Relaxed);
                        return Err(DbError::Busy(self.acquire_timeout));
                    }
                }
            }
        };
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            // Held until the work is done, also when the caller stopped waiting for it.
            let _permit = permit;
            let mut conn = pool.get()?;
            let done = f(&mut conn);
            // The closure is the unit of work: what it committed may have events to send.
            outbox::end_unit_of_work(done.is_ok());
            done
        })
        .await
        .map_err(|err| DbError::Task(err.to_string()))?
    }

    /// Applies every pending migration of this backend; returns how many ran.
    pub fn migrate(&self) -> anyhow::Result<usize> {
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            DbConn::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()),
        }
        .map_err(|err| anyhow::anyhow!("migration failed: {err}"))?;
        Ok(applied)
    }

    /// How many migrations this binary has that the database has not applied yet.
    pub fn pending_migrations(&self) -> anyhow::Result<usize> {
        let mut conn = self.conn()?;
        let pending = match &mut *conn {
            DbConn::Sqlite(c) => c.pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            DbConn::Postgres(c) => c.pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()),
        }
        .map_err(|err| anyhow::anyhow!("cannot read the applied migrations: {err}"))?;
        Ok(pending)
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.run(|conn| conn.batch_execute("SELECT 1").map_err(DbError::from)).await.is_ok()
    }
}

/// Splits a database URL into its backend and the string diesel connects with.
pub fn parse_url(url: &str) -> anyhow::Result<(Backend, String)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        return Ok((Backend::Sqlite, path.to_owned()));
    }
    if let Some(path) = url.strip_prefix("sqlite:") {
        return Ok((Backend::Sqlite, path.to_owned()));
    }
    match url.split_once("://") {
        Some((scheme, _)) => anyhow::bail!(
            "DATABASE_URL has the unsupported scheme `{scheme}`: use postgres://… or sqlite://path (or leave it unset \
             for the SQLite file in the data folder)"
        ),
        None => Ok((Backend::Sqlite, url.to_owned())),
    }
}

/// What went wrong connecting to PostgreSQL at `url`, in one line naming the host, port, database
/// and user (never the password) and what to do.
pub fn describe_pg_failure(url: &str, err: &diesel::ConnectionError) -> String {
    let parsed = reqwest::Url::parse(url).ok();
    let host = parsed.as_ref().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_else(|| "localhost".into());
    let port = parsed.as_ref().and_then(reqwest::Url::port).unwrap_or(5432);
    let database = parsed
        .as_ref()
        .map(|u| u.path().trim_start_matches('/').to_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "(the user's name)".into());
    let user = parsed.as_ref().map(|u| u.username().to_owned()).filter(|u| !u.is_empty()).unwrap_or_default();
    let detail = err.to_string();
    let lower = detail.to_lowercase();
    let server = format!("PostgreSQL at {host}:{port}");
    if lower.contains("connection refused") {
        format!("{server} refused the connection: is PostgreSQL running there? (DATABASE_URL)")
    } else if lower.contains("could not translate host name") || lower.contains("name or service not known") {
        format!("{server}: the host name does not resolve (DATABASE_URL)")
    } else if lower.contains("timeout") || lower.contains("timed out") {
        format!("{server} did not answer in time: check the host, the port and the firewall (DATABASE_URL)")
    } else if lower.contains("database") && lower.contains("does not exist") {
        format!("{server} has no database `{database}`: create it (createdb {database}) or fix DATABASE_URL")
    } else if lower.contains("password authentication failed")
        || lower.contains("no password supplied")
        || (lower.contains("role") && lower.contains("does not exist"))
        || lower.contains("authentication")
        || lower.contains("pg_hba.conf")
    {
        format!("{server} refused user `{user}`: the user or its password is wrong, or pg_hba.conf does not let it in from here (DATABASE_URL)")
    } else {
        // libpq's own words; they carry no password.
        format!("cannot connect to {server}, database `{database}`: {}", detail.lines().next().unwrap_or_default())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `s` as literal text inside a `LIKE` pattern whose escape character is `\\`.
pub(crate) fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL's `lower()`, for case-insensitive matching on both backends.
    fn lower(
        x: diesel::sql_types::Nullable<diesel::sql_types::Text>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}
