//! The persistent job queue in the main database.
//!
//! Work that must happen but must not slow or fail a purchase (writing a product
//! snapshot, updating the seller index) is enqueued in the same transaction as
//! what it follows from, and done later by a worker. Each kind of job is
//! registered by the service that owns it ([`JobKind`]). Jobs survive restarts, retry with exponential backoff,
//! run at least once, and their handlers are idempotent.

use crate::clock::now_ms;
use crate::db::dialect::{JsonColumn::{Int, Text}, backend_of, json_key_in, json_rows};
use crate::db::{Db, JsonRows};
use serde_json::json;
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

/// Each payload's outcome, in order.
type HandlerFuture = Pin<Box<dyn Future<Output = Vec<ShopResult<()>>> + Send>>;
type Handler = Arc<dyn Fn(Vec<String>) -> HandlerFuture + Send + Sync>;

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
    /// A kind whose jobs run one at a time, in the order they were due.
    pub fn new<F, Fut>(name: &'static str, lease_ms: i64, handler: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ShopResult<()>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Self::batched(name, lease_ms, move |payloads| {
            let handler = handler.clone();
            async move {
                let mut outcomes = Vec::with_capacity(payloads.len());
                for payload in payloads {
                    outcomes.push(handler(payload).await);
                }
                outcomes
            }
        })
    }

    /// A kind that handles all of one poll's due jobs at once (up to the poll's
    /// batch): `handler` answers each payload's outcome, in order. For jobs that
    /// come in bursts (one per order) and can share a statement.
    pub fn batched<F, Fut>(name: &'static str, lease_ms: i64, handler: F) -> Self
    where
        F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<ShopResult<()>>> + Send + 'static,
    {
        Self { name, lease_ms, handler: Arc::new(move |payloads| Box::pin(handler(payloads))) }
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

/// A job this runner holds the lease on. `attempts` counts this one.
struct Claimed {
    key: String,
    payload: String,
    attempts: i64,
}

/// Jobs claimed (and then marked done) per statement.
const CLAIM_CHUNK: usize = 200;

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
        if jobs.is_empty() {
            return Ok(());
        }
        let source = json_rows(backend_of(tx), 2, &[Text("key"), Text("kind"), Text("payload"), Int("created_at_ms")]);
        let sql = format!(
            "INSERT INTO jobs (key, kind, payload, state, run_at_ms, created_at_ms) SELECT key, kind, payload, 'queued', $1, created_at_ms FROM {source} WHERE true \
             ON CONFLICT (key) DO NOTHING"
        );
        let rows = JsonRows::from_rows(jobs.iter().map(|job| json!([job.key, job.kind, job.payload, job.since_ms])));
        sqlx::query(&sql).bind(now_ms()).bind(rows.into_param()).execute(&mut **tx).await?;
        Ok(())
    }

    /// Runs up to `batch` due jobs. Each kind's jobs are claimed with one
    /// conditional UPDATE, so several runners (threads or servers) never run one
    /// job at the same time, handed to the kind's handler together, and those
    /// that succeeded are marked done with one more: a burst of a thousand jobs
    /// costs a few statements per poll, not three per job.
    pub async fn run_due(&self, now: i64, batch: i64) -> ShopResult<RunStats> {
        let due = sqlx::query(
            "SELECT key, kind FROM jobs WHERE state = 'queued' AND run_at_ms <= $1 \
             AND (locked_until_ms IS NULL OR locked_until_ms <= $1) ORDER BY run_at_ms LIMIT $2",
        )
        .bind(now)
        .bind(batch)
        .fetch_all(self.db.pool())
        .await?;
        let mut keys_by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for job in &due {
            keys_by_kind.entry(job.try_get("kind")?).or_default().push(job.try_get("key")?);
        }
        let mut stats = RunStats::default();
        for (kind, keys) in keys_by_kind {
            for chunk in keys.chunks(CLAIM_CHUNK) {
                let claimed = self.claim(&kind, chunk, now).await?;
                if claimed.is_empty() {
                    continue; // another runner has them
                }
                let outcomes = self.handle(&kind, claimed.iter().map(|job| job.payload.clone()).collect()).await;
                let mut done = Vec::with_capacity(claimed.len());
                for (job, outcome) in claimed.iter().zip(outcomes) {
                    match outcome {
                        Ok(()) => done.push(job.key.as_str()),
                        Err(error) => {
                            let gave_up = self.record_failure(job, &error, now).await?;
                            if gave_up { stats.failed += 1 } else { stats.retried += 1 }
                        }
                    }
                }
                self.mark_done(&done).await?;
                stats.done += done.len() as u64;
            }
        }
        Ok(stats)
    }

    /// Takes the lease on those of `keys` still queued, due and unleased, and
    /// returns them. "Due" again here: a job another runner has just failed is
    /// queued and unleased, but not due until its backoff has passed.
    async fn claim(&self, kind: &str, keys: &[String], now: i64) -> ShopResult<Vec<Claimed>> {
        let sql = format!(
            "UPDATE jobs SET locked_until_ms = $1, attempts = attempts + 1 WHERE state = 'queued' AND run_at_ms <= $2 \
             AND (locked_until_ms IS NULL OR locked_until_ms <= $2) AND {} RETURNING key, payload, attempts",
            json_key_in(self.db.backend(), Text("key"), 3, 0)
        );
        let query = sqlx::query(&sql).bind(now + self.lease_ms(kind)).bind(now).bind(JsonRows::of_values(keys.iter().map(String::as_str)).into_param());
        let mut claimed = query
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|row| Ok(Claimed { key: row.try_get("key")?, payload: row.try_get("payload")?, attempts: row.try_get("attempts")? }))
            .collect::<ShopResult<Vec<_>>>()?;
        // RETURNING's order is the database's: put them back in the order they were due.
        let due_order: BTreeMap<&str, usize> = keys.iter().enumerate().map(|(i, key)| (key.as_str(), i)).collect();
        claimed.sort_by_key(|job| due_order.get(job.key.as_str()).copied());
        Ok(claimed)
    }

    async fn mark_done(&self, keys: &[&str]) -> ShopResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE jobs SET state = 'done', locked_until_ms = NULL, finished_at_ms = $1, last_error = NULL WHERE {}",
            json_key_in(self.db.backend(), Text("key"), 2, 0)
        );
        sqlx::query(&sql).bind(now_ms()).bind(JsonRows::of_values(keys.iter().copied()).into_param()).execute(self.db.pool()).await?;
        Ok(())
    }

    /// Queues the job again after its backoff, or gives up on it after
    /// [`MAX_ATTEMPTS`]. Returns whether it gave up.
    async fn record_failure(&self, job: &Claimed, error: &crate::error::ShopError, now: i64) -> ShopResult<bool> {
        let gave_up = job.attempts >= MAX_ATTEMPTS;
        tracing::warn!(job = %job.key, attempts = job.attempts, gave_up, error = %error, "job failed");
        sqlx::query("UPDATE jobs SET state = $1, locked_until_ms = NULL, run_at_ms = $2, last_error = $3 WHERE key = $4")
            .bind(if gave_up { "failed" } else { "queued" })
            .bind(now + backoff_ms(job.attempts))
            .bind(error.to_string().chars().take(2000).collect::<String>())
            .bind(&job.key)
            .execute(self.db.pool())
            .await?;
        Ok(gave_up)
    }

    /// Each payload's outcome from its kind's handler; a kind nobody registered fails them all.
    async fn handle(&self, kind: &str, payloads: Vec<String>) -> Vec<ShopResult<()>> {
        match self.kinds.get(kind) {
            Some(kind) => {
                let n = payloads.len();
                let mut outcomes = (kind.handler)(payloads).await;
                // A handler that answered for too few has not handled the rest.
                outcomes.resize_with(n, || Err(anyhow::anyhow!("the handler gave no outcome for this job").into()));
                outcomes
            }
            None => payloads.iter().map(|_| Err(anyhow::anyhow!("no handler for jobs of kind {kind}").into())).collect(),
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
