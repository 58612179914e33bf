//! Money (DESIGN.md, failure mode 6): wallets, escrow and an append-only
//! double-entry journal in the `main` database.
//!
//! Money moves only through [`transfer`]: one transfer row (whose id is its
//! idempotency key), two entries that sum to zero, and the two balance changes they
//! explain, all in the caller's transaction. A balance is only ever changed by a
//! conditional `UPDATE … SET balance = balance ± n WHERE … AND balance >= n`.
//!
//! Isolation: READ COMMITTED on PostgreSQL (its default), and SQLite's
//! `BEGIN IMMEDIATE` (one writer at a time: serializable). READ COMMITTED suffices
//! because no balance is computed in the application: PostgreSQL re-evaluates an
//! UPDATE's WHERE against the newest committed row after waiting for its lock, so
//! two concurrent debits cannot both pass `balance >= n` on the same old value —
//! the lost update a read-then-write would suffer (the test
//! `read_then_write_loses_updates_that_conditional_updates_keep` shows both).
//! SERIALIZABLE would only add retries on conflict for no extra safety here.
//! Rows are locked in one global order — stock rows by product id, then accounts by
//! id — so two transfers between the same accounts cannot deadlock.

use crate::accounts::User;
use crate::clock::{now_ms, rfc3339};
use crate::db::Db;
use crate::domain::{FieldError, Money, UserId};
use crate::error::{ShopError, ShopResult};
pub use crate::ledger::{JournalEntry, Mismatch, Reconciliation, TransferKind, Wallet};
use sqlx::{Any, Row, Transaction};

/// The one escrow account of payments made before escrow was split per seller.
pub const ESCROW: &str = "escrow";
/// Where top-ups come from: the stand-in for an external payment provider. The one
/// account that may go below zero; it is minus everything ever deposited.
pub const DEPOSITS: &str = "external:deposits";

pub fn wallet_of(user: UserId) -> String {
    format!("wallet:{user}")
}

/// The account holding a seller's money between payment and receipt: one per
/// seller, so payments to different sellers never wait on one row.
pub fn escrow_of(seller: UserId) -> String {
    format!("escrow:{seller}")
}

/// One movement of money between two accounts.
#[derive(Debug, Clone)]
pub struct Transfer<'a> {
    /// The idempotency key: the same id twice moves money once.
    pub id: String,
    pub kind: TransferKind,
    pub from: &'a str,
    pub to: &'a str,
    pub amount: Money,
    pub order_id: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Ledger {
    db: Db,
    top_ups: TopUpPolicy,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Top-ups stand in for an external payment provider's deposits: money from
/// nowhere. They are on only in demo mode, and capped per user and UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopUpPolicy {
    pub enabled: bool,
    pub daily_cap_cents: i64,
}

impl TopUpPolicy {
    pub const DEFAULT_DAILY_CAP_CENTS: i64 = 1_000_000;
    pub const DEMO: TopUpPolicy = TopUpPolicy { enabled: true, daily_cap_cents: Self::DEFAULT_DAILY_CAP_CENTS };
    pub const OFF: TopUpPolicy = TopUpPolicy { enabled: false, daily_cap_cents: 0 };
}

impl Ledger {
    pub fn new(db: Db, top_ups: TopUpPolicy) -> Self {
        Self { db, top_ups }
    }

    /// Deposits `amount` into the user's wallet, once per `key` (an
    /// `Idempotency-Key`, or the nonce of the page's form).
    pub async fn top_up(&self, user: &User, amount: Money, key: &str) -> ShopResult<()> {
        // The doors bound the key (the API's Idempotency-Key limit, the form's
        // nonce); the deposit only needs one.
        if key.is_empty() {
            return Err(FieldError::new("idempotency_key", "must not be empty").into());
        }
        if !self.top_ups.enabled {
            return Err(ShopError::TopUpDisabled);
        }
        let wallet = wallet_of(user.id);
        let mut tx = self.db.begin_write().await?;
        ensure_wallet(&mut tx, user.id).await?;
        let transfer = Transfer { id: format!("topup:{}:{key}", user.id), kind: TransferKind::TopUp, from: DEPOSITS, to: &wallet, amount, order_id: None };
        // A replayed key moves nothing and so counts nothing against the cap.
        if transfer_in(&mut tx, &transfer).await? && !self.count_against_daily_cap(&mut tx, user.id, amount).await? {
            let resets_at_ms = (now_ms() / DAY_MS + 1) * DAY_MS;
            return Err(ShopError::TopUpLimit { cap_cents: self.top_ups.daily_cap_cents, resets_at: rfc3339(resets_at_ms), retry_after_secs: ((resets_at_ms - now_ms()) / 1000).max(1) as u64 });
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds `amount` to the user's top-ups of today (UTC), unless that would pass
    /// the daily cap: one conditional UPDATE, so concurrent top-ups cannot pass it together.
    async fn count_against_daily_cap(&self, tx: &mut Transaction<'static, Any>, user: UserId, amount: Money) -> ShopResult<bool> {
        let day = now_ms() / DAY_MS;
        sqlx::query("INSERT INTO top_up_days (user_id, day, total_cents) VALUES ($1, $2, 0) ON CONFLICT (user_id, day) DO NOTHING")
            .bind(user.get())
            .bind(day)
            .execute(&mut **tx)
            .await?;
        let counted = sqlx::query("UPDATE top_up_days SET total_cents = total_cents + $1 WHERE user_id = $2 AND day = $3 AND total_cents + $1 <= $4")
            .bind(amount.cents())
            .bind(user.get())
            .bind(day)
            .bind(self.top_ups.daily_cap_cents)
            .execute(&mut **tx)
            .await?;
        Ok(counted.rows_affected() == 1)
    }

    /// The balance as shown (a display read). Paying never relies on it: the
    /// transfer itself refuses to overdraw.
    pub async fn balance(&self, user: UserId) -> ShopResult<i64> {
        let wallet = wallet_of(user);
        let balance: Option<i64> = self
            .db
            .display_read(|pool| {
                let query = sqlx::query_scalar("SELECT balance_cents FROM ledger_accounts WHERE id = $1").bind(&wallet);
                async move { Ok(query.fetch_optional(&pool).await?) }
            })
            .await?;
        Ok(balance.unwrap_or(0))
    }

    /// Whether top-ups are on, and their daily cap.
    pub fn top_up_policy(&self) -> TopUpPolicy {
        self.top_ups
    }

    /// Forgets the daily top-up totals of days before yesterday (UTC).
    pub async fn delete_old_top_up_days(&self, now: i64) -> ShopResult<u64> {
        let done = sqlx::query("DELETE FROM top_up_days WHERE day < $1").bind(now / DAY_MS - 1).execute(self.db.pool()).await?;
        Ok(done.rows_affected())
    }

    /// Statement lines on one page of the wallet.
    pub const STATEMENT_PAGE: i64 = 20;

    /// The wallet's balance and a page of its statement, newest first.
    pub async fn wallet(&self, user: &User, cursor: Option<&str>, limit: i64) -> ShopResult<Wallet> {
        let (before_ms, before_id) = match cursor {
            Some(raw) => parse_cursor(raw)?,
            None => (i64::MAX, String::new()),
        };
        let account = wallet_of(user.id);
        let rows = self
            .db
            .display_read(|pool| {
                let query = sqlx::query(
                    "SELECT e.transfer_id, t.kind, e.amount_cents, e.balance_after_cents, t.order_id, e.created_at_ms \
                     FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id \
                     WHERE e.account_id = $1 AND (e.created_at_ms < $2 OR (e.created_at_ms = $2 AND e.transfer_id < $3)) \
                     ORDER BY e.created_at_ms DESC, e.transfer_id DESC LIMIT $4",
                )
                .bind(&account)
                .bind(before_ms)
                .bind(&before_id)
                .bind(limit + 1);
                async move { Ok(query.fetch_all(&pool).await?) }
            })
            .await?;
        let mut entries = Vec::with_capacity(rows.len());
        let mut last_key = None;
        for row in rows.iter().take(limit as usize) {
            let created_at_ms: i64 = row.try_get("created_at_ms")?;
            let transfer_id: String = row.try_get("transfer_id")?;
            last_key = Some(format!("{created_at_ms}.{transfer_id}"));
            entries.push(JournalEntry {
                kind: TransferKind::parse(&row.try_get::<String, _>("kind")?).ok_or_else(|| anyhow::anyhow!("stored transfer kind is unknown"))?,
                amount_cents: row.try_get("amount_cents")?,
                balance_after_cents: row.try_get("balance_after_cents")?,
                order_id: row.try_get::<Option<i64>, _>("order_id")?.map(|id| format!("{id:019}")),
                created_at: rfc3339(created_at_ms),
                transfer_id,
            });
        }
        let next_cursor = if rows.len() as i64 > limit { last_key } else { None };
        Ok(Wallet { balance_cents: self.balance(user.id).await?, entries, next_cursor })
    }

    /// The reconciliation report, for admins only.
    pub async fn reconcile_for(&self, caller: &User) -> ShopResult<Reconciliation> {
        if caller.role != crate::domain::Role::Admin {
            return Err(ShopError::Forbidden);
        }
        self.reconcile().await
    }

    /// Sums the journal per account and compares each sum with the balance; checks
    /// that every transfer sums to zero. Read-only.
    pub async fn reconcile(&self) -> ShopResult<Reconciliation> {
        let rows = sqlx::query(
            "SELECT a.id, a.balance_cents, CAST(COALESCE(SUM(e.amount_cents), 0) AS BIGINT) AS journal_sum \
             FROM ledger_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id \
             GROUP BY a.id, a.balance_cents ORDER BY a.id",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut mismatches = Vec::new();
        for row in &rows {
            let balance_cents: i64 = row.try_get("balance_cents")?;
            let journal_sum_cents: i64 = row.try_get("journal_sum")?;
            if balance_cents != journal_sum_cents {
                mismatches.push(Mismatch { account_id: row.try_get("id")?, balance_cents, journal_sum_cents });
            }
        }
        let unbalanced_transfers =
            sqlx::query_scalar("SELECT transfer_id FROM ledger_entries GROUP BY transfer_id HAVING SUM(amount_cents) <> 0 ORDER BY transfer_id")
                .fetch_all(self.db.pool())
                .await?;
        metrics::gauge!("ninefold_ledger_mismatches").set((mismatches.len() + unbalanced_transfers.len()) as f64);
        if !mismatches.is_empty() {
            metrics::counter!("ninefold_ledger_mismatches_found_total").increment(mismatches.len() as u64);
            tracing::error!(mismatches = mismatches.len(), "reconciliation: balances disagree with the journal");
        }
        Ok(Reconciliation { accounts_checked: rows.len() as i64, mismatches, unbalanced_transfers, checked_at: rfc3339(now_ms()) })
    }
}

fn parse_cursor(raw: &str) -> ShopResult<(i64, String)> {
    let bad = || FieldError::new("cursor", "is not a cursor this API issued");
    let (ms, id) = raw.split_once('.').ok_or_else(bad)?;
    Ok((ms.parse().map_err(|_| bad())?, id.to_owned()))
}

/// Opens the buyer's wallet and the seller's escrow account, where missing, in one
/// statement: the accounts a payment moves money between.
pub(crate) async fn ensure_wallet_and_escrow(tx: &mut Transaction<'static, Any>, buyer: UserId, seller: UserId) -> ShopResult<()> {
    ensure_accounts(tx, &[(&wallet_of(buyer), "wallet", buyer), (&escrow_of(seller), "escrow", seller)]).await
}

/// Opens each (id, kind, owner) account that does not exist yet.
pub(crate) async fn ensure_accounts(tx: &mut Transaction<'static, Any>, accounts: &[(&str, &str, UserId)]) -> ShopResult<()> {
    let values = (0..accounts.len()).map(|i| format!("(${}, ${}, ${}, 0, $1)", 3 * i + 2, 3 * i + 3, 3 * i + 4)).collect::<Vec<_>>().join(", ");
    let sql = format!("INSERT INTO ledger_accounts (id, kind, user_id, balance_cents, created_at_ms) VALUES {values} ON CONFLICT (id) DO NOTHING");
    let query = accounts.iter().fold(sqlx::query(&sql).bind(now_ms()), |q, (id, kind, user)| q.bind(*id).bind(*kind).bind(user.get()));
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Creates the user's wallet if it does not exist yet.
pub(crate) async fn ensure_wallet(tx: &mut Transaction<'static, Any>, user: UserId) -> ShopResult<()> {
    ensure_accounts(tx, &[(&wallet_of(user), "wallet", user)]).await
}

/// Moves money inside the caller's transaction. Returns `false`, moving nothing,
/// when this transfer id was used before. A debit that would take a non-external
/// account below zero fails with [`ShopError::InsufficientFunds`]; the caller's
/// transaction must then be dropped (rolled back).
pub(crate) async fn transfer_in(tx: &mut Transaction<'static, Any>, transfer: &Transfer<'_>) -> ShopResult<bool> {
    let now = now_ms();
    let amount = transfer.amount.cents();
    if amount <= 0 || transfer.from == transfer.to {
        return Err(anyhow::anyhow!("transfer {} is malformed", transfer.id).into());
    }
    let gate = sqlx::query("INSERT INTO ledger_transfers (id, kind, amount_cents, order_id, created_at_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING")
        .bind(&transfer.id)
        .bind(transfer.kind.as_str())
        .bind(amount)
        .bind(transfer.order_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    if gate.rows_affected() == 0 {
        return Ok(false);
    }
    // Accounts are changed in id order, whichever way the money flows (no deadlock).
    let mut legs = [(transfer.from, -amount), (transfer.to, amount)];
    legs.sort_by_key(|(account, _)| *account);
    let mut after = [0i64; 2];
    for (k, (account, delta)) in legs.iter().enumerate() {
        let balance: Option<i64> = sqlx::query_scalar(
            "UPDATE ledger_accounts SET balance_cents = balance_cents + $1 \
             WHERE id = $2 AND (balance_cents + $1 >= 0 OR kind = 'external') RETURNING balance_cents",
        )
        .bind(*delta)
        .bind(*account)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(balance) = balance else {
            let balance: Option<i64> = sqlx::query_scalar("SELECT balance_cents FROM ledger_accounts WHERE id = $1").bind(*account).fetch_optional(&mut **tx).await?;
            return Err(match balance {
                Some(balance_cents) => ShopError::InsufficientFunds { balance_cents, needed_cents: amount },
                None => anyhow::anyhow!("ledger account {account} does not exist").into(),
            });
        };
        after[k] = balance;
    }
    // Both legs' entries in one statement.
    sqlx::query(
        "INSERT INTO ledger_entries (transfer_id, account_id, amount_cents, balance_after_cents, created_at_ms) \
         VALUES ($1, $2, $3, $4, $8), ($1, $5, $6, $7, $8)",
    )
    .bind(&transfer.id)
    .bind(legs[0].0)
    .bind(legs[0].1)
    .bind(after[0])
    .bind(legs[1].0)
    .bind(legs[1].1)
    .bind(after[1])
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}
