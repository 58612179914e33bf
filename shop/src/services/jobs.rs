//! The persistent job queue in the main database, and its handlers.
//!
//! Work that must happen but must not slow or fail a purchase (writing a product
//! snapshot) is enqueued in the same transaction as the order's stock take, and
//! done later by a worker. Jobs survive restarts, retry with exponential backoff,
//! run at least once, and their handlers are idempotent.

use crate::clock::now_ms;
use crate::db::Db;
use crate::error::ShopResult;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

/// How long a claimed job is its worker's before another may retry it: the
/// longest a crashed worker delays the job. A seller-index event is one upsert,
/// so it gets a short lease and the index does not trail by a minute after a crash.
fn lease_ms(kind: &str) -> i64 {
    match kind {
        crate::services::seller_index::JOB_KIND => 5_000,
        _ => 60_000,
    }
}
/// After this many failed attempts a job is marked failed and left for a person.
pub const MAX_ATTEMPTS: i64 = 12;
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1000;

/// The content of a product captured when it was ordered: what its snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotJob {
    pub digest: String,
    pub product_id: i64,
    pub title: String,
    pub description: String,
    pub price_cents: i64,
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
}

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s ... capped at 10 minutes.
pub fn backoff_ms(attempts: i64) -> i64 {
    1000i64.saturating_mul(1i64 << attempts.clamp(0, 20)).min(MAX_BACKOFF_MS)
}

impl Jobs {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Enqueues a snapshot job in the caller's transaction. A job with the same
    /// digest already queued (or done) makes this a no-op.
    pub async fn enqueue_snapshot(tx: &mut Transaction<'static, Any>, job: &SnapshotJob) -> ShopResult<()> {
        sqlx::query(
            "INSERT INTO jobs (key, kind, payload, state, run_at_ms, created_at_ms) VALUES ($1, 'snapshot', $2, 'queued', $3, $3) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(format!("snapshot:{}", job.digest))
        .bind(serde_json::to_string(job).map_err(anyhow::Error::from)?)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
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
            .bind(now + lease_ms(&kind))
            .bind(&key)
            .bind(now)
            .execute(self.db.pool())
            .await?;
            if claimed.rows_affected() == 0 {
                continue; // another runner has it
            }
            let attempts: i64 = job.try_get::<i64, _>("attempts")? + 1;
            let outcome = self.handle(&kind, &job.try_get::<String, _>("payload")?).await;
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

    async fn handle(&self, kind: &str, payload: &str) -> ShopResult<()> {
        match kind {
            "snapshot" => {
                let job: SnapshotJob = serde_json::from_str(payload).map_err(anyhow::Error::from)?;
                write_snapshot(&self.db, &job).await
            }
            crate::services::seller_index::JOB_KIND => {
                let summary: crate::orders::SellerOrder = serde_json::from_str(payload).map_err(anyhow::Error::from)?;
                crate::services::seller_index::apply_summary(&self.db, &summary).await.map(drop)
            }
            other => Err(anyhow::anyhow!("no handler for jobs of kind {other}").into()),
        }
    }

    /// Deletes `kind`'s finished jobs that finished before `before_ms`. Only for
    /// kinds whose key need not be remembered once done: a seller-index event that
    /// is enqueued again just runs again, harmlessly. (Snapshot jobs stay: their
    /// done row is what makes the next order of the same content enqueue nothing.)
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

/// Idempotent: the digest is the key, and a second write of it changes nothing.
async fn write_snapshot(db: &Db, job: &SnapshotJob) -> ShopResult<()> {
    let digest = crate::snapshot::digest(&job.title, &job.description, job.price_cents);
    if digest != job.digest {
        return Err(anyhow::anyhow!("snapshot job content does not match its digest {}", job.digest).into());
    }
    sqlx::query(
        "INSERT INTO snapshots (digest, product_id, title, description, price_cents, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (digest) DO NOTHING",
    )
    .bind(&job.digest)
    .bind(job.product_id)
    .bind(&job.title)
    .bind(&job.description)
    .bind(job.price_cents)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
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
