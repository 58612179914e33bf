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

pub(crate) mod batch_thread;
pub mod dialect;
pub mod fence;
mod migrate;
pub mod replicas;

pub use dialect::Backend;
pub use migrate::Role;
pub use replicas::{Fallback, ReplicaHealth};

use serde::Deserialize;
use crate::error::{ShopError, ShopResult};
use replicas::ReplicaSet;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Connection, Transaction};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

/// How long a pooled connection may sit idle and still be handed out unchecked.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// sqlx pings every idle connection before handing it out (`test_before_acquire`),
/// which is one more round trip per statement or transaction: on a flash sale's hot
/// path, as many pings as queries. A connection that was in use within the last
/// second is as good as the query it just ran proved; only one idle longer is pinged
/// (a server restart or an idle-session timeout shows up there). A connection that
/// died inside the window fails its query, which the caller sees as the same
/// `unavailable` error a failed ping would have become.
pub fn ping_only_after_idle(options: AnyPoolOptions) -> AnyPoolOptions {
    options.test_before_acquire(false).before_acquire(|conn, meta| {
        Box::pin(async move { Ok(meta.idle_for < PING_AFTER_IDLE || conn.ping().await.is_ok()) })
    })
}

/// A pool for one database role, and which backend it speaks.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// SQLite only: the one connection write transactions run on. SQLite has one
    /// writer at a time anyway; with every connection free to `BEGIN IMMEDIATE`,
    /// waiting writers poll the lock with sleeps that grow to 100 ms (its busy
    /// handler), which made a flash sale's latency a matter of luck (issue 14).
    /// Waiting for this pool's connection is a queue instead.
    writer: Option<AnyPool>,
    /// PostgreSQL only: the connections of batches, opened on the batch thread
    /// so that their replies are driven there ([`batch_thread`]); up to half
    /// as many as the request pool.
    batch: Option<AnyPool>,
    backend: Backend,
    /// For logs and metrics: `main`, `shard_0`, `archive`.
    name: Arc<str>,
    /// How many statements and transactions were started through this handle:
    /// lets tests prove which databases a request touched, and feeds metrics.
    uses: Arc<AtomicU64>,
    /// Read replicas, if any are configured (failure mode 7).
    replicas: Option<Arc<ReplicaSet>>,
}

/// What a read is for. A *deciding* read (stock before a take, a token, a
/// payment's state, a balance before a transfer, a session) uses the primary
/// through [`Db::pool`]; a *display* read ([`Db::display_read`]) may use a replica
/// that has replayed the caller's own writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Display,
    Deciding,
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
    /// A replica lagging more than this is skipped until it catches up.
    #[serde(default = "default_max_replica_lag_ms")]
    pub max_replica_lag_ms: u64,
}

/// Rows for [`dialect::json_rows`]: built a row at a time, bound as one text
/// parameter whatever their number.
#[derive(Debug, Default)]
pub(crate) struct JsonRows(Vec<serde_json::Value>);

impl JsonRows {
    pub(crate) fn push(&mut self, row: serde_json::Value) {
        self.0.push(row);
    }

    pub(crate) fn from_rows(rows: impl IntoIterator<Item = serde_json::Value>) -> Self {
        Self(rows.into_iter().collect())
    }

    /// One value per row: `[[v], [v], …]`.
    pub(crate) fn of_values<T: Into<serde_json::Value>>(values: impl IntoIterator<Item = T>) -> Self {
        Self::from_rows(values.into_iter().map(|v| serde_json::Value::Array(vec![v.into()])))
    }

    /// The parameter's value.
    pub(crate) fn into_param(self) -> String {
        serde_json::Value::Array(self.0).to_string()
    }
}

/// Runs `sql` once on each connection the pool has open: all are held at
/// once, so none is handed out twice. Boxed: it runs on the batch thread too.
fn warm_pool(pool: AnyPool, sql: String) -> std::pin::Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send>> {
    Box::pin(async move {
        let open = pool.size() as usize;
        let mut held = Vec::with_capacity(open);
        for _ in 0..open {
            held.push(pool.acquire().await?);
        }
        for conn in &mut held {
            sqlx::Executor::execute(&mut **conn, sql.as_str()).await?;
        }
        Ok(())
    })
}

/// `$first, $first+1, …`: the placeholders of an `IN (…)` list or a row of
/// values, `n` of them, in the one dialect both backends read.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The most connections a PostgreSQL batch pool opens, whatever the role's size.
/// Batches run on one thread, and at once on one database there are about as many
/// as kinds of batch meet there (four or so in a sale), so more connections only
/// wait idle — and cost: sqlx hands idle connections out in turn, so each one
/// prepares every statement of every batch for itself, and each is a PostgreSQL
/// process competing for the cores. Measured in BENCHMARKS.md (issue 14, ninth pass).
const MAX_BATCH_CONNECTIONS: u32 = 4;

/// The batch pool of a role whose request pool has `max` and keeps `min` open:
/// half of each, at least two (one batch may wait on another's commit) and at most
/// [`MAX_BATCH_CONNECTIONS`].
fn batch_pool_size(max: u32, min: u32) -> (u32, u32) {
    let size = max.div_ceil(2).clamp(2, MAX_BATCH_CONNECTIONS);
    (size, min.div_ceil(2).min(size))
}

pub fn default_max_replica_lag_ms() -> u64 {
    5_000
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
    /// Streaming replicas of this database (failure mode 7): display reads use
    /// them once they have replayed the caller's own writes.
    #[serde(default)]
    pub replicas: Vec<String>,
    /// Upper bound on open connections. SQLite serialises writers anyway, so a few
    /// connections suffice there; PostgreSQL benefits from more.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Connections kept open while idle (default 1). PostgreSQL starts a process
    /// for each connection, so a burst after a quiet spell (a flash sale opening)
    /// waits for the pool to grow; at `max_connections` the pool is fixed and the
    /// burst finds every connection open. The batch pool keeps half as many.
    #[serde(default)]
    pub min_connections: Option<u32>,
}

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), replicas: Vec::new(), max_connections: None, min_connections: None }
    }

    /// Pool sizes a pool can have: at least one connection, no more kept open than allowed.
    pub fn check_pool_sizes(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.max_connections != Some(0), "max_connections must be at least 1 ({})", dialect::redact(&self.url));
        if let (Some(min), Some(max)) = (self.min_connections, self.max_connections) {
            anyhow::ensure!(min <= max, "min_connections ({min}) is more than max_connections ({max}) ({})", dialect::redact(&self.url));
        }
        Ok(())
    }

    fn max_connections_of(&self, backend: Backend) -> u32 {
        self.max_connections.unwrap_or(backend.default_max_connections())
    }

    fn min_connections_of(&self, backend: Backend) -> u32 {
        self.min_connections.unwrap_or(1).min(self.max_connections_of(backend)).max(1)
    }
}

impl DatabaseConfig {
    /// Every role's database, main first.
    pub fn all(&self) -> impl Iterator<Item = &DatabaseUrl> {
        std::iter::once(&self.main).chain(&self.shards).chain(std::iter::once(&self.archive))
    }

    /// SQLite files under `data_dir`: `main.db`, `shard_0.db` .. `shard_{n-1}.db`, `archive.db`.
    pub fn sqlite_in(data_dir: &std::path::Path, shard_count: usize) -> Self {
        let file = |name: &str| DatabaseUrl::new(format!("sqlite://{}?mode=rwc", data_dir.join(name).display()));
        Self {
            main: file("main.db"),
            shards: (0..shard_count).map(|k| file(&format!("shard_{k}.db"))).collect(),
            archive: file("archive.db"),
            timeouts: DbTimeouts::default(),
            max_replica_lag_ms: default_max_replica_lag_ms(),
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
        let connect = |name: String, url: &DatabaseUrl| Db::connect_with_replicas(name, url.clone(), config.timeouts, config.max_replica_lag_ms);
        let main = connect("main".into(), &config.main).await?;
        main.migrate(Role::Main).await?;
        dialect::install_append_only_guards(main.backend, &main.pool).await.map_err(|e| anyhow::anyhow!("guarding the journal: {e}"))?;
        dialect::install_text_search(main.backend, &main.pool).await.map_err(|e| anyhow::anyhow!("indexing the catalog for search: {e}"))?;
        let mut shards = Vec::with_capacity(config.shards.len());
        for (k, shard) in config.shards.iter().enumerate() {
            let db = connect(format!("shard_{k}"), shard).await?;
            db.migrate(Role::Shard).await?;
            shards.push(db);
        }
        let archive = connect("archive".into(), &config.archive).await?;
        archive.migrate(Role::Archive).await?;
        let databases = Self { main, shards, archive };
        for db in databases.all() {
            if let Err(error) = db.warm_connections().await {
                tracing::warn!(%error, database = %db.name, "warming the connections failed");
            }
        }
        Ok(databases)
    }

    /// Every database, for health checks and shutdown.
    pub fn all(&self) -> impl Iterator<Item = &Db> {
        std::iter::once(&self.main).chain(self.shards.iter()).chain(std::iter::once(&self.archive))
    }

    pub async fn close(&self) {
        for db in self.all() {
            db.pool.close().await;
            for extra in db.writer.iter().chain(&db.batch) {
                extra.close().await;
            }
        }
    }

    /// Whether any role has replicas: only then do callers need fences.
    pub fn has_replicas(&self) -> bool {
        self.all().any(|db| db.replicas.is_some())
    }

    /// Every replica's state, for `/healthz`.
    pub fn replica_health(&self) -> Vec<ReplicaHealth> {
        self.all().filter_map(|db| db.replicas.as_ref()).flat_map(|set| set.health()).collect()
    }

    /// The primary's WAL position now, for each of `roles` that has replicas: the
    /// fences a write request leaves its caller.
    pub async fn wal_positions(&self, roles: &[String]) -> Vec<(String, u64)> {
        let mut positions = Vec::new();
        for db in self.all().filter(|db| db.replicas.is_some() && roles.iter().any(|r| r.as_str() == db.name())) {
            match dialect::wal_position(&db.pool).await {
                Ok(position) => positions.push((db.name().to_owned(), position)),
                // Without a fence the caller's next display reads may trail its
                // write; say so loudly rather than fail a write that committed.
                Err(error) => tracing::warn!(role = db.name(), %error, "could not read the WAL position after a write"),
            }
        }
        positions
    }

    /// How many statements each order shard has run, in shard order.
    pub fn shard_uses(&self) -> Vec<u64> {
        self.shards.iter().map(Db::uses).collect()
    }
}

impl Db {
    /// Connects to the primary (failing fast if it does not answer) and, lazily, to
    /// its replicas (one that is down is skipped until it answers).
    async fn connect_with_replicas(name: String, config: DatabaseUrl, timeouts: DbTimeouts, max_lag_ms: u64) -> anyhow::Result<Self> {
        let mut db = Self::connect(&name, &config, timeouts).await?;
        if config.replicas.is_empty() {
            return Ok(db);
        }
        anyhow::ensure!(db.backend == Backend::Postgres, "the {name} database has replicas configured, but only PostgreSQL databases can have replicas");
        let replica_timeouts = DbTimeouts { acquire_ms: timeouts.acquire_ms.min(1_000), ..timeouts };
        let pools = config
            .replicas
            .iter()
            .map(|url| {
                anyhow::ensure!(Backend::from_url(url)? == Backend::Postgres, "a replica of the {name} database is not a PostgreSQL URL");
                Ok(Self::pool_options(Backend::Postgres, config.max_connections, replica_timeouts).min_connections(0).connect_lazy(url)?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let set = ReplicaSet::new(db.name.clone(), pools, max_lag_ms);
        ReplicaSet::watch(&set, db.pool.clone());
        db.replicas = Some(set);
        Ok(db)
    }

    fn pool_options(backend: Backend, max_connections: Option<u32>, timeouts: DbTimeouts) -> AnyPoolOptions {
        ping_only_after_idle(AnyPoolOptions::new())
            .max_connections(max_connections.unwrap_or(backend.default_max_connections()))
            .acquire_timeout(Duration::from_millis(timeouts.acquire_ms))
            .after_connect(move |conn, _meta| Box::pin(async move { dialect::prepare_connection(backend, conn, timeouts.statement_ms).await }))
    }

    pub async fn connect(name: &str, config: &DatabaseUrl, timeouts: DbTimeouts) -> anyhow::Result<Self> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(install_default_drivers);

        let backend = Backend::from_url(&config.url)?;
        if backend == Backend::Sqlite {
            dialect::create_sqlite_parent_dir(&config.url)?;
        }
        let pool = Self::pool_options(backend, config.max_connections, timeouts)
            .min_connections(config.min_connections_of(backend))
            .connect(&config.url)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to the {name} database: {e}"))?;
        let writer = match backend {
            // As long as a writer waited on the lock before (the busy timeout).
            Backend::Sqlite => Some(
                Self::pool_options(backend, Some(1), DbTimeouts { acquire_ms: dialect::SQLITE_BUSY_TIMEOUT_MS, ..timeouts })
                    .connect(&config.url)
                    .await
                    .map_err(|e| anyhow::anyhow!("connecting to the {name} database: {e}"))?,
            ),
            Backend::Postgres => None,
        };
        let batch = match backend {
            Backend::Postgres => {
                let (size, min) = batch_pool_size(config.max_connections_of(backend), config.min_connections_of(backend));
                let options = Self::pool_options(backend, Some(size), timeouts).min_connections(min);
                let url = config.url.clone();
                // Opened there, and kept at its minimum there by sqlx's upkeep task.
                let pool = batch_thread::run(async move { options.connect(&url).await }).await;
                Some(pool.map_err(|e| anyhow::anyhow!("connecting to the {name} database: {e}"))?)
            }
            // A SQLite reply comes from the connection's own thread, straight to the
            // waiting task: nothing to gain from other connections.
            Backend::Sqlite => None,
        };
        Ok(Self { pool, writer, batch, backend, name: name.into(), uses: Arc::new(AtomicU64::new(0)), replicas: None })
    }

    /// The primary's pool, for writes and deciding reads. Counted in [`Db::uses`].
    pub fn pool(&self) -> &AnyPool {
        self.uses.fetch_add(1, Ordering::Relaxed);
        if self.replicas.is_some() {
            fence::touched(&self.name);
        }
        self.primary()
    }

    /// The primary's pool for the caller: the batch pool on the batch thread.
    fn primary(&self) -> &AnyPool {
        match &self.batch {
            Some(batch) if batch_thread::is_current() => batch,
            _ => &self.pool,
        }
    }

    /// Runs a display read: on a replica that answers, keeps up, and has replayed
    /// the current caller's writes to this role; otherwise on the primary. A read
    /// that fails on a replica runs again on the primary. Counted in
    /// `ninefold_db_reads_total{role, target}`; every fallback in
    /// `ninefold_replica_fallbacks_total{role, reason}`.
    pub async fn display_read<T, F, Fut>(&self, read: F) -> ShopResult<T>
    where
        F: Fn(AnyPool) -> Fut,
        Fut: Future<Output = ShopResult<T>>,
    {
        self.uses.fetch_add(1, Ordering::Relaxed);
        if let Some(set) = &self.replicas {
            let chosen = if fence::may_have_written(&self.name) { Err(Fallback::Fence) } else { set.choose(fence::current(&self.name)) };
            match chosen {
                Ok(replica) => match read(replica.pool.clone()).await {
                    Err(ShopError::Unavailable | ShopError::Internal(_)) => {
                        set.mark_down(replica);
                        self.count_fallback(Fallback::Down);
                    }
                    answer => {
                        metrics::counter!("ninefold_db_reads_total", "role" => self.name.to_string(), "target" => "replica").increment(1);
                        return answer;
                    }
                },
                Err(reason) => self.count_fallback(reason),
            }
        }
        metrics::counter!("ninefold_db_reads_total", "role" => self.name.to_string(), "target" => "primary").increment(1);
        read(self.pool.clone()).await
    }

    /// A read for `purpose`: [`Db::display_read`] for display, the primary for deciding.
    pub async fn read<T, F, Fut>(&self, purpose: Read, read: F) -> ShopResult<T>
    where
        F: Fn(AnyPool) -> Fut,
        Fut: Future<Output = ShopResult<T>>,
    {
        match purpose {
            Read::Display => self.display_read(read).await,
            Read::Deciding => read(self.pool().clone()).await,
        }
    }

    fn count_fallback(&self, reason: Fallback) {
        metrics::counter!("ninefold_replica_fallbacks_total", "role" => self.name.to_string(), "reason" => reason.as_str()).increment(1);
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
        if self.replicas.is_some() {
            fence::touched(&self.name);
        }
        let pool = self.writer.as_ref().unwrap_or_else(|| self.primary());
        match dialect::write_transaction_begin(self.backend) {
            Some(statement) => pool.begin_with(statement).await,
            None => pool.begin().await,
        }
    }

    /// Notes, for the read fence, that the current request writes this primary,
    /// when the write itself runs in another task (a batch shared by requests).
    pub(crate) fn note_primary_write(&self) {
        if self.replicas.is_some() {
            fence::touched(&self.name);
        }
    }

    /// Answers when the database does: used by `/healthz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    /// Has every open connection of this role plan a read of every table once,
    /// so the PostgreSQL process behind it loads the tables' and indexes'
    /// catalog entries now, not during the first burst of requests (issue 14: a
    /// sale that opens on a fresh server paid for it in its first fifth). Does
    /// nothing on SQLite. [`Databases::connect_and_migrate`] runs it, and only
    /// logs a failure.
    pub async fn warm_connections(&self) -> Result<(), sqlx::Error> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename").fetch_all(&self.pool).await?;
        let sql = tables.iter().map(|t| format!("SELECT 1 FROM \"{t}\" LIMIT 0")).collect::<Vec<_>>().join("; ");
        warm_pool(self.pool.clone(), sql.clone()).await?;
        if let Some(batch) = self.batch.clone() {
            batch_thread::run(warm_pool(batch, sql)).await?;
        }
        Ok(())
    }

    async fn migrate(&self, role: Role) -> anyhow::Result<()> {
        migrate::migrator(role).run(self.pool()).await.map_err(|e| anyhow::anyhow!("migrating the {} database: {e}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::batch_pool_size;

    #[test]
    fn batch_pools_are_half_the_role_between_two_and_four() {
        assert_eq!(batch_pool_size(1, 1), (2, 1));
        assert_eq!(batch_pool_size(6, 6), (3, 3));
        assert_eq!(batch_pool_size(16, 1), (4, 1));
        assert_eq!(batch_pool_size(32, 32), (4, 4));
    }
}
