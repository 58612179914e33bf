//! The persistent job queue in the main database.
//!
//! Work that must happen but must not slow or fail a purchase (writing a product
//! snapshot, updating the seller index) is enqueued in the same transaction as
//! what it follows from, and done later by a worker. Each kind of job is
//! registered by the service that owns it ([`JobKind`]). Jobs survive restarts, retry with exponential backoff,
//! run at least once, and their handlers are idempotent.

use crate::clock::now_ms;
use crate::db::Db;
use crate::error::ShopResult;
use sqlx::{Any, Row, Transaction};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// After this many failed attempts a job is marked failed and left for a person.
pub const MAX_ATTEMPTS: i64 = 12;
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1000;

type HandlerFuture = Pin<Box<dyn Future<Output = ShopResult<()>> + Send>>;
type Handler = Arc<dyn Fn(String) -> HandlerFuture + Send + Sync>;

/// One kind of job: its name (the `jobs.kind` column), how long a claim on one
/// holds (the longest a crashed worker delays it), and what running one means.
/// The services that own a kind build it; the queue knows none of them.
#[derive(Clone)]
pub struct JobKind {
    name: &'static str,
    lease_ms: i64,
    handler: Handler,
}

impl JobKind {
    pub fn new<F, Fut>(name: &'static str, lease_ms: i64, handler: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ShopResult<()>> + Send + 'static,
    {
        Self { name, lease_ms, handler: Arc::new(move |payload| Box::pin(handler(payload))) }
    }
}

impl fmt::Debug for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobKind").field("name", &self.name).field("lease_ms", &self.lease_ms).finish()
    }
}

/// A job not yet in the queue: its kind, its key (a second copy of a key is a
/// no-op), its payload, and when what it follows from happened (its age, which
/// lag gauges read). It is due at once.
pub struct NewJob<'a> {
    pub kind: &'static str,
    pub key: String,
    pub payload: &'a str,
    pub since_ms: i64,
}

/// What one pass of the runner did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    pub done: u64,
    pub retried: u64,
    pub failed: u64,
}

#[derive(Clone, Debug)]
pub struct Jobs {
    db: Db,
    kinds: Arc<BTreeMap<&'static str, JobKind>>,
}

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s ... capped at 10 minutes.
pub fn backoff_ms(attempts: i64) -> i64 {
    1000i64.saturating_mul(1i64 << attempts.clamp(0, 20)).min(MAX_BACKOFF_MS)
}

impl Jobs {
    pub fn new(db: Db, kinds: Vec<JobKind>) -> Self {
        Self { db, kinds: Arc::new(kinds.into_iter().map(|kind| (kind.name, kind)).collect()) }
    }

    /// Enqueues jobs in the caller's transaction, so they exist exactly when what
    /// they follow from commits. A key already queued (or done) is skipped.
    pub async fn enqueue_in(tx: &mut Transaction<'static, Any>, jobs: &[NewJob<'_>]) -> ShopResult<()> {
        let now = now_ms();
        for chunk in jobs.chunks(100) {
            let values = (0..chunk.len())
                .map(|i| format!("(${}, ${}, ${}, 'queued', ${}, ${})", 5 * i + 1, 5 * i + 2, 5 * i + 3, 5 * i + 4, 5 * i + 5))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO jobs (key, kind, payload, state, run_at_ms, created_at_ms) VALUES {values} ON CONFLICT (key) DO NOTHING");
            let mut query = sqlx::query(&sql);
            for job in chunk {
                query = query.bind(job.key.as_str()).bind(job.kind).bind(job.payload).bind(now).bind(job.since_ms);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Runs up to `batch` due jobs. Each is claimed with a conditional UPDATE, so
    /// several runners (threads or servers) never run one job at the same time.
    pub async fn run_due(&self, now: i64, batch: i64) -> ShopResult<RunStats> {
        let due = sqlx::query(
            "SELECT key, kind, payload, attempts FROM jobs WHERE state = 'queued' AND run_at_ms <= $1 \
             AND (locked_until_ms IS NULL OR locked_until_ms <= $1) ORDER BY run_at_ms LIMIT $2",
        )
        .bind(now)
        .bind(batch)
        .fetch_all(self.db.pool())
        .await?;
        let mut stats = RunStats::default();
        for job in due {
            let key: String = job.try_get("key")?;
            let kind: String = job.try_get("kind")?;
            let claimed = sqlx::query(
                "UPDATE jobs SET locked_until_ms = $1, attempts = attempts + 1 WHERE key = $2 AND state = 'queued' \
                 AND (locked_until_ms IS NULL OR locked_until_ms <= $3)",
            )
            .bind(now + self.lease_ms(&kind))
            .bind(&key)
            .bind(now)
            .execute(self.db.pool())
            .await?;
            if claimed.rows_affected() == 0 {
                continue; // another runner has it
            }
            let attempts: i64 = job.try_get::<i64, _>("attempts")? + 1;
            let outcome = self.handle(&kind, job.try_get::<String, _>("payload")?).await;
            match outcome {
                Ok(()) => {
                    sqlx::query("UPDATE jobs SET state = 'done', locked_until_ms = NULL, finished_at_ms = $1, last_error = NULL WHERE key = $2")
                        .bind(now_ms())
                        .bind(&key)
                        .execute(self.db.pool())
                        .await?;
                    stats.done += 1;
                }
                Err(error) => {
                    let gave_up = attempts >= MAX_ATTEMPTS;
                    tracing::warn!(job = %key, attempts, gave_up, error = %error, "job failed");
                    sqlx::query(
                        "UPDATE jobs SET state = $1, locked_until_ms = NULL, run_at_ms = $2, last_error = $3 WHERE key = $4",
                    )
                    .bind(if gave_up { "failed" } else { "queued" })
                    .bind(now + backoff_ms(attempts))
                    .bind(error.to_string().chars().take(2000).collect::<String>())
                    .bind(&key)
                    .execute(self.db.pool())
                    .await?;
                    if gave_up { stats.failed += 1 } else { stats.retried += 1 }
                }
            }
        }
        Ok(stats)
    }

    async fn handle(&self, kind: &str, payload: String) -> ShopResult<()> {
        match self.kinds.get(kind) {
            Some(kind) => (kind.handler)(payload).await,
            None => Err(anyhow::anyhow!("no handler for jobs of kind {kind}").into()),
        }
    }

    fn lease_ms(&self, kind: &str) -> i64 {
        self.kinds.get(kind).map_or(60_000, |kind| kind.lease_ms)
    }

    /// Deletes `kind`'s finished jobs that finished before `before_ms`. Only for
    /// kinds whose handler is idempotent, so a job enqueued again after its done
    /// row is gone just runs again, harmlessly: a seller-index event, a snapshot
    /// (its row is already written; the insert changes nothing).
    pub async fn delete_done(&self, kind: &str, before_ms: i64) -> ShopResult<u64> {
        let deleted = sqlx::query("DELETE FROM jobs WHERE state = 'done' AND kind = $1 AND finished_at_ms < $2")
            .bind(kind)
            .bind(before_ms)
            .execute(self.db.pool())
            .await?;
        Ok(deleted.rows_affected())
    }

    /// Jobs by state, for metrics and tests.
    pub async fn count(&self, state: &str) -> ShopResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = $1").bind(state).fetch_one(self.db.pool()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_ten_minutes() {
        assert_eq!(backoff_ms(0), 1000);
        assert_eq!(backoff_ms(1), 2000);
        assert_eq!(backoff_ms(5), 32_000);
        assert_eq!(backoff_ms(40), MAX_BACKOFF_MS);
    }
}
