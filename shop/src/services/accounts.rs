//! Registration, sign-in, sign-out and sessions.
//!
//! A session is one random 256-bit token. Browsers carry it in an HttpOnly cookie,
//! API clients as a bearer token; both resolve through [`Accounts::user_for_token`].
//! We keep sessions in our own table rather than tower-sessions: one token must
//! serve both cookie and bearer, and the table must live in the `main` database
//! behind the same `Any` pool as everything else.

use crate::accounts::User;
use crate::clock::now_ms;
use crate::db::{Db, dialect};
use crate::domain::{Email, Password, PersonName, Role, UserId};
use crate::error::{ShopError, ShopResult};
pub use crate::secrets::SessionToken;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use crate::services::session_reads::SessionReads;
use crate::services::sign_in_throttle::{self, SignInThrottle};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// What a person submits to open an account, already parsed.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub password: Password,
    pub name: PersonName,
    pub role: Role,
}

#[derive(Clone, Debug)]
pub struct Accounts {
    db: Db,
    throttle: SignInThrottle,
    /// How long a session lasts after sign-in.
    session_ttl_ms: i64,
    /// How long a session lasts unused.
    session_idle_ms: i64,
    /// Argon2 costs ~20 ms of CPU and 19 MiB per hash. Bounding how many run at once
    /// keeps a burst of sign-ins from starving every other request of CPU and memory.
    hashing: Arc<Semaphore>,
    /// Hashes waiting for a permit. Past [`Accounts::MAX_WAITING_HASHES`] a request
    /// is turned away at once (503, Retry-After) instead of queueing without bound.
    waiting: Arc<AtomicUsize>,
    /// Sessions this instance looked up in the last moments (issue 14: a purchase
    /// is two requests, and each looked its session up in `main`).
    recent: SessionCache,
    /// Lookups that missed `recent`, batched: a sale's herd of first requests.
    lookups: SessionReads,
}

/// Live sessions this instance has just looked up, by token digest, for at most
/// [`SessionCache::TTL_MS`]. Only sessions found live are kept (a stream of garbage
/// tokens adds nothing), and every sign-out, password change and expiry made
/// through this instance removes its entries at once. Another instance's sign-out
/// is honoured here within the TTL.
#[derive(Clone, Debug)]
struct SessionCache(moka::sync::Cache<String, CachedSession>);

#[derive(Clone, Debug)]
struct CachedSession {
    user: User,
    /// When this instance read the session from the database.
    read_at_ms: i64,
    /// The session's `last_seen_at_ms` as read (a hit never writes it).
    last_seen_at_ms: i64,
    expires_at_ms: i64,
}

impl SessionCache {
    const TTL_MS: i64 = 2_000;
    /// Bounds memory whatever the number of accounts signed in.
    const MAX_ENTRIES: u64 = 100_000;

    fn new() -> Self {
        Self(moka::sync::Cache::builder().max_capacity(Self::MAX_ENTRIES).support_invalidation_closures().build())
    }

    /// The user, if the entry is fresh and the session is still live by what was
    /// read: not expired, and its last use recent enough that no write of it is due.
    fn get(&self, digest: &str, now: i64, seen_resolution_ms: i64) -> Option<User> {
        let cached = self.0.get(digest)?;
        let fresh = now - cached.read_at_ms < Self::TTL_MS && now - cached.last_seen_at_ms < seen_resolution_ms && now < cached.expires_at_ms;
        fresh.then_some(cached.user)
    }

    fn forget_user(&self, user: UserId) {
        // Only fails when closures are not supported, which `new` enables.
        let _ = self.0.invalidate_entries_if(move |_, cached| cached.user.id == user);
    }
}

const USER_COLUMNS: &str = "id, email, name, role";

impl Accounts {
    /// Sessions one user may hold at once (browsers, devices, API clients).
    pub const MAX_SESSIONS_PER_USER: i64 = 20;

    pub const DEFAULT_SESSION_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

    /// How many password hashes may wait for a CPU at once.
    pub const MAX_WAITING_HASHES: usize = 32;

    pub const DEFAULT_SESSION_IDLE_MS: i64 = 7 * 24 * 60 * 60 * 1000;
    /// A session's last use is written at most this often (not on every request),
    /// and at least ten times per idle timeout.
    const SEEN_RESOLUTION_MS: i64 = 60 * 1000;

    pub fn new(db: Db, session_idle_ms: i64) -> Self {
        let permits = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let lookups = SessionReads::new(db.clone(), session_idle_ms, seen_resolution_ms(session_idle_ms));
        Self {
            throttle: SignInThrottle::new(db.clone()),
            db,
            session_ttl_ms: Self::DEFAULT_SESSION_TTL_MS,
            session_idle_ms,
            hashing: Arc::new(Semaphore::new(permits)),
            waiting: Arc::new(AtomicUsize::new(0)),
            recent: SessionCache::new(),
            lookups,
        }
    }

    /// A permit to hash: at once if a CPU is free, after a wait in a bounded
    /// queue otherwise, or refused with [`ShopError::Overloaded`] when the queue is full.
    async fn hashing_permit(&self) -> ShopResult<tokio::sync::SemaphorePermit<'_>> {
        if let Ok(permit) = self.hashing.try_acquire() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= Self::MAX_WAITING_HASHES {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!("ninefold_hashing_queue_full_total").increment(1);
            return Err(ShopError::Overloaded { retry_after_secs: 1 });
        }
        let permit = self.hashing.acquire().await.map_err(|e| anyhow::anyhow!(e));
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        Ok(permit?)
    }

    pub async fn register(&self, account: NewAccount) -> ShopResult<User> {
        let password_hash = self.hash_password(account.password).await?;
        let mut tx = self.db.begin_write().await?;
        let sequence = next_counter(&mut tx, "user").await?;
        let user = User { id: UserId::from_sequence(sequence), email: account.email, name: account.name, role: account.role };
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, name, role, password_hash, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.get())
        .bind(user.email.as_str())
        .bind(user.name.as_str())
        .bind(user.role.as_str())
        .bind(password_hash)
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if dialect::is_unique_violation(&e) => return Err(ShopError::EmailTaken),
            other => other?,
        };
        tx.commit().await?;
        tracing::info!(user_id = %user.id, role = user.role.as_str(), "account registered");
        Ok(user)
    }

    /// Checks the password and opens a session. Every attempt, at a known email
    /// or not, is charged to the (email, client address) throttle first and costs
    /// one password hash, so neither the answer nor its timing reveals whether the
    /// account exists.
    pub async fn sign_in(&self, email: &Email, password: Password, client: IpAddr) -> ShopResult<(SessionToken, User)> {
        let throttle_key = sign_in_throttle::key(email, client);
        self.throttle.charge(&throttle_key).await?;
        let found = sqlx::query(&format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1"))
            .bind(email.as_str())
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = found else {
            self.verify_password(password, dummy_hash().to_owned()).await?;
            return Err(ShopError::InvalidCredentials);
        };
        let user = user_from_row(&row)?;
        if !self.verify_password(password, row.try_get("password_hash")?).await? {
            tracing::info!(user_id = %user.id, "sign-in refused: wrong password");
            return Err(ShopError::InvalidCredentials);
        }
        self.throttle.clear(&throttle_key).await?;
        let token = self.open_session(user.id).await?;
        Ok((token, user))
    }

    /// Registers and opens the new account's first session, with one password
    /// hash (the page's registration form signs the shopper in at once).
    pub async fn register_and_sign_in(&self, account: NewAccount) -> ShopResult<(SessionToken, User)> {
        let user = self.register(account).await?;
        let token = self.open_session(user.id).await?;
        Ok((token, user))
    }

    /// Forgets throttle rows nobody has failed at for a day.
    pub async fn delete_old_throttles(&self, now: i64) -> ShopResult<u64> {
        self.throttle.delete_old(now).await
    }

    /// Opens a session; a user keeps at most [`Accounts::MAX_SESSIONS_PER_USER`],
    /// the oldest ending first, so signing in in a loop cannot fill the table.
    async fn open_session(&self, user_id: UserId) -> ShopResult<SessionToken> {
        let token = SessionToken::generate()?;
        let now = now_ms();
        let mut tx = self.db.begin_write().await?;
        sqlx::query("INSERT INTO sessions (token_sha256, user_id, created_at_ms, expires_at_ms, last_seen_at_ms) VALUES ($1, $2, $3, $4, $3)")
            .bind(token.sha256())
            .bind(user_id.get())
            .bind(now)
            .bind(now + self.session_ttl_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1 AND token_sha256 NOT IN \
             (SELECT token_sha256 FROM sessions WHERE user_id = $1 ORDER BY created_at_ms DESC, token_sha256 LIMIT $2)",
        )
        .bind(user_id.get())
        .bind(Self::MAX_SESSIONS_PER_USER)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // The oldest session may just have ended.
        self.recent.forget_user(user_id);
        Ok(token)
    }

    /// Ends a session. Ending one that does not exist is not an error: the caller
    /// wanted to be signed out, and is.
    pub async fn sign_out(&self, token: &SessionToken) -> ShopResult<()> {
        let digest = token.sha256();
        self.recent.0.invalidate(&digest);
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1").bind(&digest).execute(self.db.pool()).await?;
        self.recent.0.invalidate(&digest);
        Ok(())
    }

    /// The user a live session belongs to, or `None` for an unknown token, or one
    /// past its expiry or unused for longer than the idle timeout.
    pub async fn user_for_token(&self, token: &SessionToken) -> ShopResult<Option<User>> {
        let now = now_ms();
        let digest = token.sha256();
        let seen_resolution_ms = self.seen_resolution_ms();
        if let Some(user) = self.recent.get(&digest, now, seen_resolution_ms) {
            return Ok(Some(user));
        }
        let Some(session) = self.lookups.live(digest.clone()).await? else { return Ok(None) };
        let cached = CachedSession { user: session.user.clone(), read_at_ms: session.read_at_ms, last_seen_at_ms: session.last_seen_at_ms, expires_at_ms: session.expires_at_ms };
        self.recent.0.insert(digest, cached);
        Ok(Some(session.user))
    }

    fn seen_resolution_ms(&self) -> i64 {
        seen_resolution_ms(self.session_idle_ms)
    }

    /// Changes the password, given the current one, and ends every other session
    /// of the user (a thief holding one is out). A wrong current password is a
    /// failed sign-in: charged to the same throttle.
    pub async fn change_password(&self, user: &User, keep: &SessionToken, current: Password, new: Password, client: IpAddr) -> ShopResult<()> {
        let throttle_key = sign_in_throttle::key(&user.email, client);
        self.throttle.charge(&throttle_key).await?;
        let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1").bind(user.id.get()).fetch_one(self.db.pool()).await?;
        if !self.verify_password(current, stored).await? {
            tracing::info!(user_id = %user.id, "password change refused: wrong current password");
            return Err(ShopError::InvalidCredentials);
        }
        self.throttle.clear(&throttle_key).await?;
        let hash = self.hash_password(new).await?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1").bind(user.id.get()).bind(hash).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_sha256 <> $2").bind(user.id.get()).bind(keep.sha256()).execute(&mut *tx).await?;
        tx.commit().await?;
        self.recent.forget_user(user.id);
        tracing::info!(user_id = %user.id, "password changed; other sessions ended");
        Ok(())
    }

    /// Ends every session of the user, the caller's own included.
    pub async fn sign_out_everywhere(&self, user: &User) -> ShopResult<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user.id.get()).execute(self.db.pool()).await?;
        self.recent.forget_user(user.id);
        Ok(())
    }

    /// Removes sessions past their expiry; run periodically by a worker.
    pub async fn delete_expired_sessions(&self) -> ShopResult<u64> {
        let now = now_ms();
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at_ms <= $1 OR last_seen_at_ms <= $2").bind(now).bind(now - self.session_idle_ms).execute(self.db.pool()).await?;
        Ok(done.rows_affected())
    }

    /// The read fences of the user a session belongs to (DESIGN.md, failure mode
    /// 7): role and WAL position. None for an unknown session.
    pub async fn session_fences(&self, token: &SessionToken) -> ShopResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT f.role, f.position FROM read_fences f JOIN sessions s ON s.user_id = f.user_id WHERE s.token_sha256 = $1")
            .bind(token.sha256())
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.into_iter().map(|(role, position)| (role, position.max(0) as u64)).collect())
    }

    /// Raises the fences of the user a session belongs to (a fence never goes
    /// down, whatever order concurrent requests finish in). Nothing for an unknown session.
    pub async fn raise_session_fences(&self, token: &SessionToken, fences: &[(String, u64)]) -> ShopResult<()> {
        for (role, position) in fences {
            sqlx::query(
                "INSERT INTO read_fences (user_id, role, position) SELECT user_id, $2, $3 FROM sessions WHERE token_sha256 = $1 \
                 ON CONFLICT (user_id, role) DO UPDATE SET position = excluded.position WHERE read_fences.position < excluded.position",
            )
            .bind(token.sha256())
            .bind(role)
            .bind(i64::try_from(*position).unwrap_or(i64::MAX))
            .execute(self.db.pool())
            .await?;
        }
        Ok(())
    }

    /// For tests: makes a session expire now.
    pub async fn expire_session(&self, token: &SessionToken) -> ShopResult<()> {
        sqlx::query("UPDATE sessions SET expires_at_ms = $2 WHERE token_sha256 = $1")
            .bind(token.sha256())
            .bind(now_ms() - 1)
            .execute(self.db.pool())
            .await?;
        self.recent.0.invalidate(&token.sha256());
        Ok(())
    }

    async fn hash_password(&self, password: Password) -> ShopResult<String> {
        let _permit = self.hashing_permit().await?;
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness for a salt: {e}"))?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("encoding a salt: {e}"))?;
            let hash = Argon2::default()
                .hash_password(password.expose().as_bytes(), &salt)
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?;
            Ok(hash.to_string())
        })
        .await
        .map_err(|e| anyhow::anyhow!("password hashing task failed: {e}"))?
    }

    async fn verify_password(&self, password: Password, stored_hash: String) -> ShopResult<bool> {
        let _permit = self.hashing_permit().await?;
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&stored_hash).map_err(|e| anyhow::anyhow!("stored password hash is malformed: {e}"))?;
            Ok(Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(|e| anyhow::anyhow!("password check task failed: {e}"))?
    }
}

/// A hash of a password nobody knows, to spend the same time on unknown emails.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::encode_b64(b"ninefold-dummy-salt").expect("a fixed salt encodes");
        Argon2::default().hash_password(b"no account has this password", &salt).expect("hashing a constant succeeds").to_string()
    })
}

/// How stale a session's recorded last use may get before a request writes it.
fn seen_resolution_ms(session_idle_ms: i64) -> i64 {
    Accounts::SEEN_RESOLUTION_MS.min(session_idle_ms / 10)
}

pub(crate) fn user_from_row(row: &AnyRow) -> ShopResult<User> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: UserId::from_stored(row.try_get("id")?),
        email: Email::from_stored(row.try_get("email")?),
        name: PersonName::from_stored(row.try_get("name")?),
        role: Role::parse("role", &role).map_err(|e| anyhow::anyhow!("stored role is invalid: {e}"))?,
    })
}

/// Advances a named counter by one and returns the new value, in the caller's
/// write transaction, so an id is never handed out twice.
pub(crate) async fn next_counter(tx: &mut Transaction<'static, Any>, name: &str) -> ShopResult<i64> {
    let value: i64 = sqlx::query_scalar("UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value")
        .bind(name)
        .fetch_one(&mut **tx)
        .await?;
    Ok(value)
}
