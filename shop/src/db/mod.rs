//! Storage: one [`Db`] handle per database role (main, each order shard, archive).
//!
//! Every role is a URL, so a deployment can put each on its own PostgreSQL server,
//! or all of them in SQLite files for a laptop. We use sqlx's `Any` driver rather
//! than typed pools behind a trait: the queries are written once in the dialect both
//! backends share (`$n` placeholders, `ON CONFLICT`, `RETURNING`, `BIGINT` columns,
//! times as epoch milliseconds) and the few real differences — how a write
//! transaction starts, connection pragmas, row locks — live in [`dialect`].
//! The price is that `Any` only carries basic types (integers, text, floats), which
//! is why timestamps are stored as integers.

pub mod dialect;
mod migrate;

pub use dialect::Backend;
pub use migrate::Role;

use serde::Deserialize;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Transaction};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

/// A pool for one database role, and which backend it speaks.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// For logs and metrics: `main`, `shard_0`, `archive`.
    name: Arc<str>,
    /// How many statements and transactions were started through this handle:
    /// lets tests prove which databases a request touched, and feeds metrics.
    uses: Arc<AtomicU64>,
}

/// The URLs and pool sizes of every role. Built from the defaults, a TOML file and
/// `NINEFOLD_*` variables by the server; tests build it directly.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseConfig {
    pub main: DatabaseUrl,
    pub shards: Vec<DatabaseUrl>,
    pub archive: DatabaseUrl,
    #[serde(default)]
    pub timeouts: DbTimeouts,
}

/// How long to wait for a database before answering 503: for a pooled connection
/// (`acquire_ms`, also bounding a connect to a server that is down), and for one
/// statement on PostgreSQL (`statement_ms`, enforced by the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DbTimeouts {
    pub acquire_ms: u64,
    pub statement_ms: u64,
}

impl Default for DbTimeouts {
    fn default() -> Self {
        Self { acquire_ms: 2_000, statement_ms: 10_000 }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseUrl {
    pub url: String,
    /// Read replicas of this database (failure mode 7). Accepted now; reads use them
    /// once replica routing lands.
    #[serde(default)]
    pub replicas: Vec<String>,
    /// Upper bound on open connections. SQLite serialises writers anyway, so a few
    /// connections suffice there; PostgreSQL benefits from more.
    #[serde(default)]
    pub max_connections: Option<u32>,
}

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), replicas: Vec::new(), max_connections: None }
    }
}

impl DatabaseConfig {
    /// SQLite files under `data_dir`: `main.db`, `shard_0.db` .. `shard_{n-1}.db`, `archive.db`.
    pub fn sqlite_in(data_dir: &std::path::Path, shard_count: usize) -> Self {
        let file = |name: &str| DatabaseUrl::new(format!("sqlite://{}?mode=rwc", data_dir.join(name).display()));
        Self {
            main: file("main.db"),
            shards: (0..shard_count).map(|k| file(&format!("shard_{k}.db"))).collect(),
            archive: file("archive.db"),
            timeouts: DbTimeouts::default(),
        }
    }
}

/// All databases of one deployment, connected and migrated.
#[derive(Clone, Debug)]
pub struct Databases {
    pub main: Db,
    pub shards: Vec<Db>,
    pub archive: Db,
}

impl Databases {
    /// Connects to every role and runs its migrations. Fails fast: a server that
    /// cannot reach one of its databases should not start.
    pub async fn connect_and_migrate(config: &DatabaseConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(!config.shards.is_empty(), "at least one order shard must be configured");
        let main = Db::connect("main", &config.main, config.timeouts).await?;
        main.migrate(Role::Main).await?;
        dialect::install_append_only_guards(main.backend, &main.pool).await.map_err(|e| anyhow::anyhow!("guarding the journal: {e}"))?;
        let mut shards = Vec::with_capacity(config.shards.len());
        for (k, shard) in config.shards.iter().enumerate() {
            let db = Db::connect(&format!("shard_{k}"), shard, config.timeouts).await?;
            db.migrate(Role::Shard).await?;
            shards.push(db);
        }
        let archive = Db::connect("archive", &config.archive, config.timeouts).await?;
        archive.migrate(Role::Archive).await?;
        Ok(Self { main, shards, archive })
    }

    /// Every database, for health checks and shutdown.
    pub fn all(&self) -> impl Iterator<Item = &Db> {
        std::iter::once(&self.main).chain(self.shards.iter()).chain(std::iter::once(&self.archive))
    }

    pub async fn close(&self) {
        for db in self.all() {
            db.pool.close().await;
        }
    }

    /// How many statements each order shard has run, in shard order.
    pub fn shard_uses(&self) -> Vec<u64> {
        self.shards.iter().map(Db::uses).collect()
    }
}

impl Db {
    pub async fn connect(name: &str, config: &DatabaseUrl, timeouts: DbTimeouts) -> anyhow::Result<Self> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(install_default_drivers);

        let backend = Backend::from_url(&config.url)?;
        if backend == Backend::Sqlite {
            dialect::create_sqlite_parent_dir(&config.url)?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections.unwrap_or(backend.default_max_connections()))
            .min_connections(1)
            .acquire_timeout(Duration::from_millis(timeouts.acquire_ms))
            .after_connect(move |conn, _meta| Box::pin(async move { dialect::prepare_connection(backend, conn, timeouts.statement_ms).await }))
            .connect(&config.url)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to the {name} database: {e}"))?;
        Ok(Self { pool, backend, name: name.into(), uses: Arc::new(AtomicU64::new(0)) })
    }

    /// The pool, to run one statement on. Counted in [`Db::uses`].
    pub fn pool(&self) -> &AnyPool {
        self.uses.fetch_add(1, Ordering::Relaxed);
        &self.pool
    }

    /// Statements and transactions started through this handle so far.
    pub fn uses(&self) -> u64 {
        self.uses.load(Ordering::Relaxed)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`), so two transactions can never both hold a read lock
    /// and then deadlock upgrading it; the busy timeout queues them instead.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        self.uses.fetch_add(1, Ordering::Relaxed);
        match dialect::write_transaction_begin(self.backend) {
            Some(statement) => self.pool.begin_with(statement).await,
            None => self.pool.begin().await,
        }
    }

    /// Answers when the database does: used by `/healthz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    async fn migrate(&self, role: Role) -> anyhow::Result<()> {
        migrate::migrator(role).run(self.pool()).await.map_err(|e| anyhow::anyhow!("migrating the {} database: {e}", self.name))
    }
}
