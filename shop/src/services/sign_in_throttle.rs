//! Sign-in throttling with exponential backoff that decays, keyed by (email,
//! client address). Guessing from one address slows only those guesses: the
//! owner, from anywhere else, is never locked out, and once a backoff has passed
//! the right password is accepted. Unknown emails are throttled exactly like known
//! ones, so neither the answers nor their timing tell which accounts exist.

use crate::clock::now_ms;
use crate::db::Db;
use crate::domain::Email;
use crate::error::{ShopError, ShopResult};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// Failures that cost nothing; each later one doubles the wait before the next attempt.
pub const FREE_FAILURES: i64 = 5;
/// The longest wait.
const MAX_BLOCK_MS: i64 = 15 * 60 * 1000;
/// One failure is forgiven per this much time without another.
pub const DECAY_MS: i64 = 5 * 60 * 1000;
/// Rows untouched this long are forgotten.
const KEPT_MS: i64 = 24 * 60 * 60 * 1000;

/// The wait after `failures` recent failures: none for the first [`FREE_FAILURES`],
/// then 2 s, 4 s, 8 s … up to 15 minutes.
pub fn block_ms(failures: i64) -> i64 {
    let over = failures - FREE_FAILURES;
    if over <= 0 {
        return 0;
    }
    1000i64.saturating_mul(1i64 << over.min(20)).min(MAX_BLOCK_MS)
}

/// The throttle's key: an attempt at `email` from `client`.
pub fn key(email: &Email, client: IpAddr) -> String {
    hex::encode(Sha256::digest(format!("{}|{client}", email.as_str().to_lowercase()).as_bytes()))
}

#[derive(Clone, Debug)]
pub struct SignInThrottle {
    db: Db,
}

impl SignInThrottle {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Charges an attempt as a failure before the password is checked, in one
    /// conditional UPDATE that also refuses while blocked: a burst of parallel
    /// guesses cannot all slip past the block while the first is still hashing.
    /// A correct password then [`clears`](SignInThrottle::clear) the charge.
    pub async fn charge(&self, key: &str) -> ShopResult<()> {
        let now = now_ms();
        let mut tx = self.db.begin_write().await?;
        sqlx::query("INSERT INTO sign_in_throttle (key, failures, last_failure_ms, blocked_until_ms) VALUES ($1, 0, $2, 0) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let charged: Option<i64> = sqlx::query_scalar(
            "UPDATE sign_in_throttle SET \
             failures = (CASE WHEN failures - ($2 - last_failure_ms) / $3 > 0 THEN failures - ($2 - last_failure_ms) / $3 ELSE 0 END) + 1, \
             last_failure_ms = $2 WHERE key = $1 AND blocked_until_ms <= $2 RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(DECAY_MS)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(failures) = charged else {
            let blocked_until: i64 = sqlx::query_scalar("SELECT blocked_until_ms FROM sign_in_throttle WHERE key = $1").bind(key).fetch_one(&mut *tx).await?;
            return Err(ShopError::TooManyAttempts { retry_after_secs: ((blocked_until - now).max(0) as u64).div_ceil(1000).max(1) });
        };
        let block = block_ms(failures);
        if block > 0 {
            sqlx::query("UPDATE sign_in_throttle SET blocked_until_ms = $2 WHERE key = $1").bind(key).bind(now + block).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The password was right: this key's failures are forgiven.
    pub async fn clear(&self, key: &str) -> ShopResult<()> {
        sqlx::query("DELETE FROM sign_in_throttle WHERE key = $1").bind(key).execute(self.db.pool()).await?;
        Ok(())
    }

    /// Forgets keys with no failure for a day; run by the cleanup worker.
    pub async fn delete_old(&self, now: i64) -> ShopResult<u64> {
        let done = sqlx::query("DELETE FROM sign_in_throttle WHERE last_failure_ms < $1 AND blocked_until_ms < $2").bind(now - KEPT_MS).bind(now).execute(self.db.pool()).await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_starts_after_the_free_failures_doubles_and_is_capped() {
        assert_eq!(block_ms(FREE_FAILURES), 0);
        assert_eq!(block_ms(FREE_FAILURES + 1), 2_000);
        assert_eq!(block_ms(FREE_FAILURES + 2), 4_000);
        assert_eq!(block_ms(FREE_FAILURES + 40), MAX_BLOCK_MS);
    }

    #[test]
    fn keys_differ_by_address_and_ignore_the_emails_case() {
        let email = Email::parse("e", "Ann@Example.com").unwrap();
        let lower = Email::parse("e", "ann@example.com").unwrap();
        let home: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(key(&email, home), key(&lower, home));
        assert_ne!(key(&email, home), key(&email, "192.0.2.2".parse().unwrap()));
    }
}
