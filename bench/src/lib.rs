//! What the load generators share: where their databases are, and percentiles.

use shop::db::{DatabaseConfig, DatabaseUrl, DbTimeouts};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::Duration;

/// Every benchmark runs on four order shards.
pub const SHARDS: usize = 4;

/// `sqlite:<folder>` for embedded files, or a PostgreSQL server URL whose
/// databases `nf_main`, `nf_shard_0..3` and `nf_archive` exist (the scripts make them).
/// Timeouts are generous: a benchmark measures, it does not shed load.
pub fn databases(spec: &str) -> DatabaseConfig {
    match spec.strip_prefix("sqlite:") {
        Some(folder) => DatabaseConfig::sqlite_in(std::path::Path::new(folder), SHARDS),
        None => {
            let base = spec.trim_end_matches('/');
            let url = |name: &str| DatabaseUrl::new(format!("{base}/nf_{name}"));
            DatabaseConfig {
                main: url("main"),
                shards: (0..SHARDS).map(|k| url(&format!("shard_{k}"))).collect(),
                archive: url("archive"),
                timeouts: DbTimeouts { acquire_ms: 60_000, statement_ms: 3_600_000 },
                max_replica_lag_ms: shop::db::default_max_replica_lag_ms(),
            }
        }
    }
}

/// Opens `n` connections of a reference pool before its clock starts, as the
/// server's pools are open before a sale: a reference times its statements, not
/// the database starting a backend for each connection (BENCHMARKS.md, thirteenth pass).
pub async fn open_connections(pool: &sqlx::AnyPool, n: usize) -> anyhow::Result<()> {
    let open = futures::future::try_join_all((0..n).map(|_| pool.acquire())).await?;
    drop(open);
    Ok(())
}

/// The `p`-th percentile (0..=1) of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

/// The API as the load generators call it.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    /// A client keeping up to `connections` idle connections to `base`.
    pub fn new(base: &str, connections: usize) -> anyhow::Result<Self> {
        Ok(Self { http: reqwest::Client::builder().pool_max_idle_per_host(connections).build()?, base: base.to_owned() })
    }

    /// POSTs JSON, with a bearer token if given: the status and the JSON reply.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<(u16, Value)> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Registers (or finds) an account and signs in: its session token.
    pub async fn account(&self, email: &str, role: &str) -> anyhow::Result<String> {
        let password = "flash-sale-password";
        let (status, body) = self.post("/api/v1/auth/register", None, &json!({"email": email, "password": password, "name": "Bench", "role": role})).await?;
        if status != 201 && status != 409 {
            bail!("register {email}: {status} {body}");
        }
        let (status, body) = self.post("/api/v1/auth/login", None, &json!({"email": email, "password": password})).await?;
        if status != 200 {
            bail!("login {email}: {status} {body}");
        }
        Ok(body["token"].as_str().context("a token")?.to_owned())
    }

    /// `count` accounts named `<prefix>-<i>@bench.test`, a few at a time: password
    /// hashing has a bounded queue (503 `overloaded` past it).
    pub async fn accounts(&self, prefix: &str, count: usize, role: &str) -> anyhow::Result<Vec<String>> {
        use futures::StreamExt;
        futures::stream::iter((0..count).map(|i| async move { self.account(&format!("{prefix}-{i}@bench.test"), role).await }))
            .buffered(4)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }
}
