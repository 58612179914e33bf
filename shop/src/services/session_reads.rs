//! Session lookups that missed the cache, one statement for all who wait (issue 14).
//!
//! A flash sale opens with every buyer's first request at once, and none of their
//! sessions is in this instance's cache: two hundred lookups queued for a handful
//! of `main` connections, ahead of everything else the sale needs there. Batched,
//! the herd's lookups are a few statements, and so are the writes of last use
//! that fall due among them.

use crate::accounts::User;
use crate::clock::now_ms;
use crate::db::dialect::{JsonColumn::Text, json_key_in};
use crate::db::{Db, JsonRows};
use crate::error::ShopResult;
use crate::services::accounts::user_from_row;
use crate::services::group_commit::{Batched, GroupCommit};
use sqlx::Row;

/// A live session as read: whose it is, and the times that bound how long this
/// instance may trust the read.
#[derive(Debug, Clone)]
pub(crate) struct LiveSession {
    pub user: User,
    /// The session's last use as recorded, after this read's write of it if one was due.
    pub last_seen_at_ms: i64,
    pub expires_at_ms: i64,
    /// When the read's statement started: no earlier than any of its callers asked.
    pub read_at_ms: i64,
}

/// Looks sessions up by token digest, batched.
#[derive(Clone, Debug)]
pub(crate) struct SessionReads(GroupCommit<Lookup>);

impl SessionReads {
    /// `idle_ms`: a session unused this long is over. `seen_resolution_ms`: how
    /// stale a recorded last use may get before a lookup writes it.
    pub(crate) fn new(db: Db, idle_ms: i64, seen_resolution_ms: i64) -> Self {
        Self(GroupCommit::new(Lookup { db, idle_ms, seen_resolution_ms }))
    }

    /// The live session with this token digest, if there is one: not expired, not
    /// idle past the timeout. Its last use is written if that is due.
    pub(crate) async fn live(&self, digest: String) -> ShopResult<Option<LiveSession>> {
        self.0.submit((), digest).await
    }
}

#[derive(Debug)]
struct Lookup {
    db: Db,
    idle_ms: i64,
    seen_resolution_ms: i64,
}

impl Batched for Lookup {
    type Key = ();
    /// A token's SHA-256 digest, hex.
    type Item = String;
    type Output = Option<LiveSession>;
    const MAX_BATCH: usize = 256;
    const METRIC: &'static str = "ninefold_session_batch_reads";

    async fn together(&self, _key: &(), digests: &[&String]) -> ShopResult<Vec<ShopResult<Option<LiveSession>>>> {
        // One session may be asked for several times at once (a client's parallel
        // requests): each asker gets the row.
        let found: std::collections::HashMap<String, LiveSession> = self.read(digests).await?.into_iter().collect();
        Ok(digests.iter().map(|digest| Ok(found.get(digest.as_str()).cloned())).collect())
    }

    async fn alone(&self, _key: &(), digest: &String) -> ShopResult<Option<LiveSession>> {
        Ok(self.read(&[digest]).await?.pop().map(|(_, session)| session))
    }
}

impl Lookup {
    /// The live sessions among `digests`, by digest; then one write of last use
    /// for those whose recorded one is too old.
    async fn read(&self, digests: &[&String]) -> ShopResult<Vec<(String, LiveSession)>> {
        let now = now_ms();
        let sql = format!(
            "SELECT s.token_sha256, u.id, u.email, u.name, u.role, s.last_seen_at_ms, s.expires_at_ms FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE {} AND s.expires_at_ms > $2 AND s.last_seen_at_ms > $3",
            json_key_in(self.db.backend(), Text("s.token_sha256"), 1, 0)
        );
        let rows = sqlx::query(&sql)
            .bind(JsonRows::of_values(digests.iter().map(|d| d.as_str())).into_param())
            .bind(now)
            .bind(now - self.idle_ms)
            .fetch_all(self.db.pool())
            .await?;
        let mut sessions = rows
            .iter()
            .map(|row| {
                let session = LiveSession { user: user_from_row(row)?, last_seen_at_ms: row.try_get("last_seen_at_ms")?, expires_at_ms: row.try_get("expires_at_ms")?, read_at_ms: now };
                Ok((row.try_get::<String, _>("token_sha256")?, session))
            })
            .collect::<ShopResult<Vec<_>>>()?;
        let due = |session: &LiveSession| session.last_seen_at_ms < now - self.seen_resolution_ms;
        let stale: Vec<&str> = sessions.iter().filter(|(_, s)| due(s)).map(|(d, _)| d.as_str()).collect();
        if !stale.is_empty() {
            let sql = format!("UPDATE sessions SET last_seen_at_ms = $2 WHERE {}", json_key_in(self.db.backend(), Text("token_sha256"), 1, 0));
            sqlx::query(&sql).bind(JsonRows::of_values(stale).into_param()).bind(now).execute(self.db.pool()).await?;
            for (_, session) in sessions.iter_mut().filter(|(_, s)| due(s)) {
                session.last_seen_at_ms = now;
            }
        }
        Ok(sessions)
    }
}
