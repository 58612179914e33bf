//! Stock: taking it for an order, giving it back, settling it at payment, and
//! recovering holds that lapsed (DESIGN.md, failure mode 4). The one home of the
//! overselling rule: stock moves only through a conditional UPDATE
//! (`… WHERE available >= n`), never read-then-write, and every refusal is counted
//! here in `ninefold_oversell_refused_total`.
//!
//! Each order's take of each product is a `stock_takes` row keyed by (order,
//! product), moved between [`TakeState`]s by conditional UPDATEs, so a retried or
//! concurrent step finds the row already moved and moves no stock twice.

use crate::catalog::Product;
use crate::clock::now_ms;
use crate::db::Db;
use crate::domain::{InventoryMode, OrderId, TakeState};
use crate::error::{ShopError, ShopResult, worker_failed};
use crate::orders::{LineRequest, Order, OrderStatus};
use crate::services::order_rows::{free_unpaid_slot_in, record_change, status_of};
use crate::services::shards::Shards;
use sqlx::{Any, Row, Transaction};

/// The refusal of a take that did not fit, counted once for every door and step.
pub(crate) fn oversell_refused(product_id: i64) -> ShopError {
    metrics::counter!("ninefold_oversell_refused_total").increment(1);
    ShopError::InsufficientStock { product_id }
}

/// Takes every line's stock for an order, in the caller's `main` transaction: a
/// line short of stock fails the whole call (the caller's transaction rolls back,
/// so nothing is taken). Idempotent per (order, product): a retry or a concurrent
/// submit of the same order inserts no take and moves nothing. `lines` must be
/// sorted by product id, so concurrent orders lock stock rows in one order. Each
/// take is checked again at the order's payment deadline, `deadline_ms`.
pub(crate) async fn take_in(tx: &mut Transaction<'static, Any>, order_id: OrderId, products: &[Product], lines: &[LineRequest], deadline_ms: i64) -> ShopResult<()> {
    for (product, line) in products.iter().zip(lines) {
        let quantity = line.quantity.get();
        let (state, statement) = match product.inventory_mode {
            InventoryMode::OnPayment => {
                let enough: Option<i64> = sqlx::query_scalar("SELECT 1 FROM stock WHERE product_id = $1 AND available >= $2")
                    .bind(product.id.get())
                    .bind(quantity)
                    .fetch_optional(&mut **tx)
                    .await?;
                if enough.is_none() {
                    return Err(oversell_refused(product.id.get()));
                }
                continue;
            }
            InventoryMode::OnOrder => (TakeState::Sold, "UPDATE stock SET available = available - $1, sold = sold + $1 WHERE product_id = $2 AND available >= $1"),
            InventoryMode::Reserve => (TakeState::Held, "UPDATE stock SET available = available - $1, reserved = reserved + $1 WHERE product_id = $2 AND available >= $1"),
        };
        let recorded = sqlx::query(
            "INSERT INTO stock_takes (order_id, product_id, quantity, state, check_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id, product_id) DO NOTHING",
        )
        .bind(order_id.get())
        .bind(product.id.get())
        .bind(quantity)
        .bind(state.as_str())
        .bind(deadline_ms)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        if recorded.rows_affected() == 0 {
            continue; // already taken for this order by an earlier or concurrent submit
        }
        let moved = sqlx::query(statement).bind(quantity).bind(product.id.get()).execute(&mut **tx).await?;
        if moved.rows_affected() == 0 {
            return Err(oversell_refused(product.id.get()));
        }
    }
    Ok(())
}

/// Gives back every take of an order that is still held or sold, in the caller's
/// `main` transaction. Idempotent: each take moves to `released` with a
/// conditional UPDATE, and only a take that moved gives its units back.
pub(crate) async fn release_in(tx: &mut Transaction<'static, Any>, id: OrderId) -> ShopResult<()> {
    let takes = sqlx::query("SELECT product_id, quantity, state FROM stock_takes WHERE order_id = $1 AND state <> $2 ORDER BY product_id")
        .bind(id.get())
        .bind(TakeState::Released.as_str())
        .fetch_all(&mut **tx)
        .await?;
    for take in &takes {
        let product_id: i64 = take.try_get("product_id")?;
        let quantity: i64 = take.try_get("quantity")?;
        let state = stored_take_state(&take.try_get::<String, _>("state")?)?;
        let released = sqlx::query("UPDATE stock_takes SET state = $1, check_at_ms = NULL WHERE order_id = $2 AND product_id = $3 AND state = $4")
            .bind(TakeState::Released.as_str())
            .bind(id.get())
            .bind(product_id)
            .bind(state.as_str())
            .execute(&mut **tx)
            .await?;
        if released.rows_affected() == 0 {
            continue;
        }
        let give_back = match state {
            TakeState::Held => "UPDATE stock SET available = available + $1, reserved = reserved - $1 WHERE product_id = $2",
            TakeState::Sold | TakeState::Released => "UPDATE stock SET available = available + $1, sold = sold - $1 WHERE product_id = $2",
        };
        sqlx::query(give_back).bind(quantity).bind(product_id).execute(&mut **tx).await?;
    }
    Ok(())
}

/// As [`release_in`], in a transaction of its own.
pub(crate) async fn release(main: &Db, id: OrderId) -> ShopResult<()> {
    let mut tx = main.begin_write().await?;
    release_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Settles each line's stock for payment, whatever mode the product was ordered
/// under, by what its take says (lines in product order, so concurrent payments
/// lock stock rows in one order):
/// - held (reserve): reserved → sold;
/// - sold (taken at order time): nothing more;
/// - released (the hold lapsed) or none (taken on payment): take it now from
///   available, with one conditional UPDATE; if the stock is gone, the whole
///   payment fails with `insufficient_stock` and nothing is moved.
pub(crate) async fn settle_for_payment_in(tx: &mut Transaction<'static, Any>, order: &Order) -> ShopResult<()> {
    let mut lines: Vec<_> = order.lines.iter().collect();
    lines.sort_by_key(|l| l.product_id);
    for line in lines {
        let product = line.product_id.get();
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM stock_takes WHERE order_id = $1 AND product_id = $2")
            .bind(order.id.get())
            .bind(product)
            .fetch_optional(&mut **tx)
            .await?;
        match state.as_deref().map(stored_take_state).transpose()? {
            Some(TakeState::Held) => {
                let confirmed = sqlx::query("UPDATE stock_takes SET state = $1, check_at_ms = NULL WHERE order_id = $2 AND product_id = $3 AND state = $4")
                    .bind(TakeState::Sold.as_str())
                    .bind(order.id.get())
                    .bind(product)
                    .bind(TakeState::Held.as_str())
                    .execute(&mut **tx)
                    .await?;
                if confirmed.rows_affected() == 1 {
                    sqlx::query("UPDATE stock SET reserved = reserved - $1, sold = sold + $1 WHERE product_id = $2")
                        .bind(line.quantity)
                        .bind(product)
                        .execute(&mut **tx)
                        .await?;
                }
            }
            Some(TakeState::Sold) => {
                sqlx::query("UPDATE stock_takes SET check_at_ms = NULL WHERE order_id = $1 AND product_id = $2").bind(order.id.get()).bind(product).execute(&mut **tx).await?;
            }
            released_or_none => {
                let taken = sqlx::query("UPDATE stock SET available = available - $1, sold = sold + $1 WHERE product_id = $2 AND available >= $1")
                    .bind(line.quantity)
                    .bind(product)
                    .execute(&mut **tx)
                    .await?;
                if taken.rows_affected() == 0 {
                    return Err(oversell_refused(product));
                }
                if released_or_none.is_some() {
                    sqlx::query("UPDATE stock_takes SET state = $1, check_at_ms = NULL WHERE order_id = $2 AND product_id = $3")
                        .bind(TakeState::Sold.as_str())
                        .bind(order.id.get())
                        .bind(product)
                        .execute(&mut **tx)
                        .await?;
                } else {
                    sqlx::query("INSERT INTO stock_takes (order_id, product_id, quantity, state, check_at_ms, created_at_ms) VALUES ($1, $2, $3, $4, NULL, $5)")
                        .bind(order.id.get())
                        .bind(product)
                        .bind(line.quantity)
                        .bind(TakeState::Sold.as_str())
                        .bind(now_ms())
                        .execute(&mut **tx)
                        .await?;
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn stored_take_state(raw: &str) -> ShopResult<TakeState> {
    TakeState::parse(raw).ok_or_else(|| anyhow::anyhow!("stored stock take has an unknown state {raw:?}").into())
}

/// Recovery of lapsed orders and orphaned takes, run periodically by a worker.
#[derive(Clone, Debug)]
pub struct Stock {
    main: Db,
    shards: Shards,
    /// How long an order may stay unpaid: orders from before every order had a
    /// deadline lapse this long after they were placed.
    payment_window_ms: i64,
}

/// What one recovery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryPass {
    /// Orders cancelled or released.
    pub acted: u64,
    /// Items that failed (each logged and counted); they are tried again on a later pass.
    pub failed: u64,
}

impl Stock {
    pub fn new(main: Db, shards: Shards, payment_window_ms: i64) -> Self {
        Self { main, shards, payment_window_ms }
    }

    /// The whole recovery pass: cancels every unpaid order past its payment
    /// deadline, on every shard and in every inventory mode, then settles or
    /// releases stock takes whose check time has passed. An order or a shard that
    /// fails is logged, counted in `ninefold_worker_failures_total{worker="hold-expiry"}`
    /// and left for a later pass; it never stops the others.
    ///
    /// Each list is walked in pages of `batch` by id, past the items that failed,
    /// so a row that keeps failing is tried once a pass and never holds up the rest.
    pub async fn recover(&self, now_ms: i64, batch: i64) -> RecoveryPass {
        let mut pass = RecoveryPass::default();
        for shard in self.shards.all() {
            let mut after = 0;
            loop {
                let ids = match self.lapsed_orders(shard, now_ms, after, batch).await {
                    Ok(ids) => ids,
                    Err(error) => {
                        failed(&mut pass, &format!("listing lapsed orders on {}", shard.name()), &error);
                        break;
                    }
                };
                for &id in &ids {
                    count(&mut pass, id, self.cancel_lapsed_order(shard, id, now_ms).await);
                }
                match ids.last() {
                    Some(last) if ids.len() as i64 == batch => after = last.get(),
                    _ => break,
                }
            }
        }
        let mut after = 0;
        loop {
            let ids = match self.due_takes(now_ms, after, batch).await {
                Ok(ids) => ids,
                Err(error) => {
                    failed(&mut pass, "listing due stock takes", &error);
                    break;
                }
            };
            for &id in &ids {
                count(&mut pass, id, self.recover_order(id, now_ms).await);
            }
            match ids.last() {
                Some(last) if ids.len() as i64 == batch => after = last.get(),
                _ => break,
            }
        }
        pass
    }

    /// Unpaid orders on `shard` past their payment deadline, with ids above `after`.
    async fn lapsed_orders(&self, shard: &Db, now_ms: i64, after: i64, batch: i64) -> ShopResult<Vec<OrderId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'pending_payment' AND id > $3 \
             AND ((hold_expires_at_ms IS NOT NULL AND hold_expires_at_ms <= $1) OR (hold_expires_at_ms IS NULL AND created_at_ms <= $2)) \
             ORDER BY id LIMIT $4",
        )
        .bind(now_ms)
        .bind(now_ms - self.payment_window_ms)
        .bind(after)
        .bind(batch)
        .fetch_all(shard.pool())
        .await?;
        Ok(ids.into_iter().map(OrderId::from_stored).collect())
    }

    async fn cancel_lapsed_order(&self, shard: &Db, id: OrderId, now_ms: i64) -> ShopResult<bool> {
        if self.payment_under_way(id).await? {
            return Ok(false);
        }
        if !self.cancel_lapsed(shard, id, now_ms).await? {
            return Ok(false);
        }
        tracing::info!(order_id = %id, "payment deadline passed: unpaid order cancelled");
        self.release(id).await?;
        Ok(true)
    }

    /// A payment under way (or interrupted) wins over the lapsed deadline: the
    /// payment recovery worker finishes it.
    async fn payment_under_way(&self, id: OrderId) -> ShopResult<bool> {
        let paying: Option<i64> = sqlx::query_scalar("SELECT 1 FROM payments WHERE order_id = $1").bind(id.get()).fetch_optional(self.main.pool()).await?;
        Ok(paying.is_some())
    }

    async fn due_takes(&self, now_ms: i64, after: i64, batch: i64) -> ShopResult<Vec<OrderId>> {
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT order_id FROM stock_takes WHERE check_at_ms IS NOT NULL AND check_at_ms <= $1 AND order_id > $2 ORDER BY order_id LIMIT $3",
        )
        .bind(now_ms)
        .bind(after)
        .bind(batch)
        .fetch_all(self.main.pool())
        .await?;
        Ok(due.into_iter().map(OrderId::from_stored).collect())
    }

    /// Gives back every take of an order still held or sold (see [`release_in`]).
    pub async fn release(&self, id: OrderId) -> ShopResult<()> {
        release(&self.main, id).await
    }

    /// As [`Stock::recover`], for tests that drive one pass: how many orders it
    /// acted on, or the first failure.
    pub async fn recover_expired_takes(&self, now_ms: i64, batch: i64) -> ShopResult<u64> {
        let pass = self.recover(now_ms, batch).await;
        if pass.failed > 0 {
            return Err(anyhow::anyhow!("{} recovery items failed; see the log", pass.failed).into());
        }
        Ok(pass.acted)
    }

    /// For one order with a due stock take:
    /// - the order exists, unpaid, and its deadline has passed: cancel it (a
    ///   conditional UPDATE on `pending_payment`, so a racing payment or cancel
    ///   wins cleanly) and release its stock;
    /// - the order was cancelled but its stock not yet released (a crash between
    ///   the two steps): release it;
    /// - the order exists and is settled (paid), or not yet due: stop checking
    ///   its sold takes;
    /// - there is no order and its checkout has expired, so none can be placed any
    ///   more (a crash between taking stock and inserting the order): release it;
    ///   while the checkout is open, look again when it expires.
    ///
    /// Every step is idempotent, so running two passes at once, or re-running
    /// after a crash, changes nothing twice.
    async fn recover_order(&self, id: OrderId, now_ms: i64) -> ShopResult<bool> {
        let shard = self.shards.of_order(id);
        match status_of(shard, id).await? {
            Some(OrderStatus::PendingPayment) => {
                if self.cancel_lapsed_order(shard, id, now_ms).await? {
                    return Ok(true);
                }
                // Not yet lapsed, or a payment is under way: the order's own
                // deadline brings it back (the lapsed-order scan), not this take.
                self.stop_checking_sold(id).await?;
                Ok(false)
            }
            Some(OrderStatus::Cancelled) => {
                self.release(id).await?;
                Ok(true)
            }
            Some(_) => {
                self.stop_checking_sold(id).await?;
                Ok(false)
            }
            None => {
                let checkout_expires: Option<i64> = sqlx::query_scalar("SELECT expires_at_ms FROM checkout_tokens WHERE order_id = $1")
                    .bind(id.get())
                    .fetch_optional(shard.pool())
                    .await?;
                if let Some(expires) = checkout_expires.filter(|expires| *expires > now_ms) {
                    // The order may still be placed: look again when it no longer can,
                    // so this take does not come first in every pass until then.
                    sqlx::query("UPDATE stock_takes SET check_at_ms = $1 WHERE order_id = $2 AND check_at_ms IS NOT NULL")
                        .bind(expires)
                        .bind(id.get())
                        .execute(self.main.pool())
                        .await?;
                    return Ok(false);
                }
                tracing::warn!(order_id = %id, "stock taken for an order that was never placed: released");
                self.release(id).await?;
                Ok(true)
            }
        }
    }

    /// Cancels the order if it is still unpaid and its payment deadline has passed.
    async fn cancel_lapsed(&self, shard: &Db, id: OrderId, now_ms: i64) -> ShopResult<bool> {
        let mut tx = shard.begin_write().await?;
        let cancelled = sqlx::query(
            "UPDATE orders SET status = 'cancelled', hold_expires_at_ms = NULL, updated_at_ms = $1, version = version + 1 \
             WHERE id = $2 AND status = 'pending_payment' \
             AND ((hold_expires_at_ms IS NOT NULL AND hold_expires_at_ms <= $1) OR (hold_expires_at_ms IS NULL AND created_at_ms <= $3))",
        )
        .bind(now_ms)
        .bind(id.get())
        .bind(now_ms - self.payment_window_ms)
        .execute(&mut *tx)
        .await?;
        if cancelled.rows_affected() == 1 {
            free_unpaid_slot_in(&mut tx, id).await?;
            record_change(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(cancelled.rows_affected() == 1)
    }

    /// Stops checking takes whose order exists and keeps them (held takes of an
    /// order whose hold has not lapsed keep their check time).
    async fn stop_checking_sold(&self, id: OrderId) -> ShopResult<()> {
        sqlx::query("UPDATE stock_takes SET check_at_ms = NULL WHERE order_id = $1 AND state = $2")
            .bind(id.get())
            .bind(TakeState::Sold.as_str())
            .execute(self.main.pool())
            .await?;
        Ok(())
    }
}

fn count(pass: &mut RecoveryPass, id: OrderId, outcome: ShopResult<bool>) {
    match outcome {
        Ok(true) => pass.acted += 1,
        Ok(false) => {}
        Err(error) => failed(pass, &format!("order {id}"), &error),
    }
}

fn failed(pass: &mut RecoveryPass, what: &str, error: &ShopError) {
    pass.failed += 1;
    worker_failed("hold-expiry", what, error);
}
