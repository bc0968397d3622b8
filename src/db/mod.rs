//! Storage: one connection type for SQLite and PostgreSQL, its pool, embedded migrations, and
//! the repositories of each part of the domain.
//!
//! Diesel is blocking, so nothing here is called on the actix event loop: [`Db::run`] hands
//! work to tokio's blocking pool, and the [`writer`] threads group messages into transactions.
//! Queries that need backend-specific SQL (upserts, `RETURNING`, immediate transactions) are
//! written once and compiled for each backend with [`on_backend!`].

pub mod agents;
pub mod bookings;
pub mod bots;
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
pub mod patients;
pub mod schedule;
pub mod schema;
pub mod store;
pub mod unanswered;
pub mod uploads;
pub mod usage;
pub mod webhooks;
pub mod workspaces;
pub mod writer;

use std::path::Path;
use std::time::Duration;

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
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Postgres($c) => $body,
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
pub fn lock_workspace(conn: &mut DbConn, guarded: Guarded, workspace_id: i64) -> Result<(), DbError> {
    if let DbConn::Postgres(c) = conn {
        use diesel::sql_types::Integer;
        use diesel::RunQueryDsl;
        // The two-key form keeps these locks apart from any other advisory lock; a workspace id
        // beyond 2^31 only folds onto another workspace's lock, which is safe.
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind::<Integer, _>(guarded as i32)
            .bind::<Integer, _>(workspace_id as i32)
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

/// The database handle the server shares: a pool plus the message writer.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<DbConn>>,
    backend: Backend,
}

impl Db {
    /// Opens the pool for `url` (`sqlite://path` or a bare path for SQLite, `postgres://…`).
    pub fn connect(url: &str, pool_size: u32) -> anyhow::Result<Db> {
        let (backend, target) = parse_url(url)?;
        if backend == Backend::Sqlite {
            if let Some(parent) = Path::new(&target).parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
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
        let manager = ConnectionManager::<DbConn>::new(target);
        let pool = Pool::builder()
            .max_size(pool_size.max(2))
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(SqlitePragmas { synchronous: "FULL" }))
            .build(manager)
            .map_err(|err| anyhow::anyhow!("cannot open the {} database: {err}", backend.name()))?;
        Ok(Db { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection for blocking code that is already off the event loop (CLI, writer threads).
    pub fn conn(&self) -> Result<PooledConnection<ConnectionManager<DbConn>>, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs blocking database work on tokio's blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
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

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
