//! Storage for `Idempotency-Key` (API.md): what a caller's key was used for and,
//! once done, the response to replay. The HTTP side is in the server.

use crate::clock::now_ms;
use crate::db::Db;
use crate::domain::UserId;
use crate::error::ShopResult;
use sqlx::Row;

/// Keys are kept at least this long.
pub const KEY_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// A request still `running` after this long is taken to have died with its
/// server; the key may then be used again.
pub const RUNNING_LEASE_MS: i64 = 60 * 1000;

/// What happened when a request tried to claim its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: run it, then `finish` or `abandon`.
    Claimed,
    /// The same request already finished: replay this.
    Replay { status: u16, content_type: String, body: String },
    /// The key was used for a different request.
    Reused,
    /// The same key's first request is still running.
    InUse,
}

#[derive(Clone, Debug)]
pub struct Idempotency {
    db: Db,
}

impl Idempotency {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn claim(&self, caller: UserId, key: &str, fingerprint: &str) -> ShopResult<Claim> {
        let now = now_ms();
        // An expired key, or a run whose server died, no longer holds the key.
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE caller_id = $1 AND key = $2 \
             AND (expires_at_ms <= $3 OR (state = 'running' AND started_at_ms <= $4))",
        )
        .bind(caller.get())
        .bind(key)
        .bind(now)
        .bind(now - RUNNING_LEASE_MS)
        .execute(self.db.pool())
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (caller_id, key, fingerprint, state, started_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, 'running', $4, $5) ON CONFLICT (caller_id, key) DO NOTHING",
        )
        .bind(caller.get())
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .bind(now + KEY_TTL_MS)
        .execute(self.db.pool())
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::Claimed);
        }
        let Some(row) = sqlx::query("SELECT fingerprint, state, status, content_type, body FROM idempotency_keys WHERE caller_id = $1 AND key = $2")
            .bind(caller.get())
            .bind(key)
            .fetch_optional(self.db.pool())
            .await?
        else {
            return Ok(Claim::InUse); // removed between our two statements: let the caller retry
        };
        let stored_fingerprint: String = row.try_get("fingerprint")?;
        let state: String = row.try_get("state")?;
        Ok(if stored_fingerprint != fingerprint {
            Claim::Reused
        } else if state == "running" {
            Claim::InUse
        } else {
            Claim::Replay {
                status: row.try_get::<i64, _>("status")? as u16,
                content_type: row.try_get::<Option<String>, _>("content_type")?.unwrap_or_default(),
                body: row.try_get::<Option<String>, _>("body")?.unwrap_or_default(),
            }
        })
    }

    /// Stores the response of a claimed key.
    pub async fn finish(&self, caller: UserId, key: &str, status: u16, content_type: &str, body: &str) -> ShopResult<()> {
        sqlx::query("UPDATE idempotency_keys SET state = 'done', status = $1, content_type = $2, body = $3 WHERE caller_id = $4 AND key = $5")
            .bind(i64::from(status))
            .bind(content_type)
            .bind(body)
            .bind(caller.get())
            .bind(key)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Frees a claimed key whose request failed on our side, so a retry can run.
    pub async fn abandon(&self, caller: UserId, key: &str) -> ShopResult<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE caller_id = $1 AND key = $2 AND state = 'running'")
            .bind(caller.get())
            .bind(key)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Deletes expired keys; run periodically by a worker.
    pub async fn delete_expired(&self, now: i64) -> ShopResult<u64> {
        Ok(sqlx::query("DELETE FROM idempotency_keys WHERE expires_at_ms <= $1").bind(now).execute(self.db.pool()).await?.rows_affected())
    }
}
