//! Paying for orders, refunds and releases to sellers (DESIGN.md, failure mode 6).
//!
//! An order lives on its buyer's shard; money and stock live in `main`. No
//! transaction spans both, so each flow is a sequence of local transactions, each
//! idempotent, with the `payments` row in `main` as the durable record of how far
//! it got. A crash between any two steps leaves a row that [`Payments::recover`]
//! drives to an end, and re-running any step changes nothing twice:
//!
//! - **pay**: (1) `main`: insert the payment row as `charged`, settle the stock and
//!   move buyer → escrow, in one transaction; (2) shard: `pending_payment → paid`;
//!   (3) `main`: `charged → paid`. Steps 1 and 3 share their transactions with
//!   concurrent payments ([`crate::services::charges`]). If the order was cancelled meanwhile (its hold
//!   lapsed), step 2 finds it so and the money and stock go back (`voided`).
//! - **cancel a paid order**: (1) `main`: `paid → refund_requested`; (2) shard:
//!   `paid → cancelled`; (3) `main`: stock back and escrow → buyer, `refunded`.
//! - **confirm receipt**: (1) `main`: `paid → release_requested`; (2) shard:
//!   `shipped → completed`; (3) `main`: escrow → seller, `released`.
//!
//! Every transaction here runs at READ COMMITTED (PostgreSQL) or BEGIN IMMEDIATE
//! (SQLite); see [`crate::services::ledger`] for why that is enough.

use crate::accounts::User;
use crate::clock::now_ms;
use crate::db::Db;
use crate::domain::Money;
use crate::error::{RefusingState, ShopError, ShopResult, worker_failed};
use crate::faults::crash_point;
use crate::orders::{Order, OrderId, OrderStatus};
use crate::ledger::PaymentState;
use crate::services::Orders;
use crate::services::stock;
use crate::services::charges::{PaymentBatches, seller_of};
use crate::services::ledger::{Transfer, TransferKind, ensure_wallet, transfer_in, wallet_of};
use sqlx::{Any, Transaction};

#[derive(Clone, Debug)]
pub struct Payments {
    main: Db,
    orders: Orders,
    batches: PaymentBatches,
}

impl Payments {
    pub fn new(main: Db, orders: Orders) -> Self {
        Self { batches: PaymentBatches::new(main.clone()), main, orders }
    }

    /// Batches of more than one charge committed so far, and the charges in them.
    pub fn shared_charge_batches(&self) -> (u64, u64) {
        self.batches.shared_charge_batches()
    }

    /// Pays an order from the buyer's wallet. Paying a paid order again returns it
    /// and moves nothing.
    pub async fn pay(&self, buyer: &User, id: OrderId) -> ShopResult<Order> {
        let order = self.orders.get_to_change(buyer, id).await?;
        if order.status.is_paid() {
            return Ok(order);
        }
        if !order.status.awaits_payment() {
            return Err(ShopError::order_is(order.status));
        }
        // Step 1, in one `main` transaction shared with other payments to the seller.
        self.batches.charge(&order).await?;
        crash_point("pay:charged");
        let paid = self.finish_charge(&order).await?;
        metrics::counter!("ninefold_orders_paid_total").increment(1);
        match paid {
            Some(paid) => Ok(paid),
            None => self.orders.get(buyer, id).await,
        }
    }

    /// Steps 2 and 3 of paying: tell the shard, then close the payment record. If
    /// the order was cancelled in between (its hold lapsed), give everything back.
    /// The order as this call marked it paid; `None` if it was paid before.
    async fn finish_charge(&self, order: &Order) -> ShopResult<Option<Order>> {
        let (status, paid) = match self.orders.move_unpaid(order, OrderStatus::Paid).await? {
            Ok(paid) => (paid.status, Some(paid)),
            Err(status) => (status, None),
        };
        if status.is_paid() {
            crash_point("pay:marked_paid");
            self.batches.close(order.id).await?;
            return Ok(paid);
        }
        if status.awaits_payment() {
            return Err(anyhow::anyhow!("order {} stayed unpaid after being marked paid", order.id).into());
        }
        self.give_back(order, PaymentState::Charged, PaymentState::Voided).await?;
        Err(ShopError::order_is(status))
    }

    /// The buyer's cancel: an unpaid order is cancelled and its stock released; a
    /// paid one that has not shipped is refunded too.
    pub async fn cancel(&self, buyer: &User, id: OrderId) -> ShopResult<Order> {
        let order = self.orders.get_to_change(buyer, id).await?;
        match order.status {
            OrderStatus::PendingPayment => self.orders.cancel(buyer, &order).await,
            _ => self.cancel_paid(buyer, id).await,
        }
    }

    /// Cancels a paid order before it ships: the buyer gets the money back and the
    /// stock goes back on sale.
    async fn cancel_paid(&self, buyer: &User, id: OrderId) -> ShopResult<Order> {
        let order = self.orders.get(buyer, id).await?;
        if order.status == OrderStatus::Cancelled {
            self.finish_refund(&order).await?;
            return Ok(order);
        }
        if order.status != OrderStatus::Paid {
            return Err(ShopError::order_is(order.status));
        }
        if !self.request(id, PaymentState::RefundRequested, PaymentState::Refunded).await? {
            return self.orders.get(buyer, id).await;
        }
        crash_point("refund:requested");
        self.drive_refund(&order).await?;
        self.orders.get(buyer, id).await
    }

    async fn drive_refund(&self, order: &Order) -> ShopResult<()> {
        match self.orders.transition(order.id, OrderStatus::Paid, OrderStatus::Cancelled).await? {
            OrderStatus::Cancelled => {
                crash_point("refund:cancelled");
                self.finish_refund(order).await
            }
            other => {
                // Shipped meanwhile: the cancel loses, the payment stands.
                self.advance(order.id, PaymentState::RefundRequested, PaymentState::Paid).await?;
                Err(ShopError::order_is(other))
            }
        }
    }

    async fn finish_refund(&self, order: &Order) -> ShopResult<()> {
        self.give_back(order, PaymentState::RefundRequested, PaymentState::Refunded).await
    }

    /// The buyer confirms receipt of a shipped order: escrow → seller.
    pub async fn confirm_receipt(&self, buyer: &User, id: OrderId) -> ShopResult<Order> {
        let order = self.orders.get_to_change(buyer, id).await?;
        self.complete(&order).await?;
        self.orders.get(buyer, id).await
    }

    /// Completes shipped orders whose buyer has not confirmed receipt within
    /// `window_ms` of their last change, through the same step as a confirmation
    /// (escrow → seller), so a seller's money is not held forever. Returns how many
    /// it completed; an order that fails is logged, counted and left for the next pass.
    pub async fn complete_unconfirmed(&self, now_ms: i64, window_ms: i64, batch: i64) -> u64 {
        let mut completed = 0;
        for shard in self.orders.shards().all() {
            let due: Result<Vec<i64>, sqlx::Error> = sqlx::query_scalar("SELECT id FROM orders WHERE status = 'shipped' AND updated_at_ms <= $1 ORDER BY updated_at_ms LIMIT $2")
                .bind(now_ms - window_ms)
                .bind(batch)
                .fetch_all(shard.pool())
                .await;
            let due = match due {
                Ok(due) => due,
                Err(error) => {
                    worker_failed("auto-complete", &format!("listing shipped orders on {}", shard.name()), &error.into());
                    continue;
                }
            };
            for id in due.into_iter().map(OrderId::from_stored) {
                let outcome = match self.orders.load(id).await {
                    Ok(Some(order)) => self.complete(&order).await,
                    Ok(None) => Ok(()),
                    Err(error) => Err(error),
                };
                match outcome {
                    Ok(()) => {
                        tracing::info!(order_id = %id, "not confirmed in time: completed, escrow released to the seller");
                        completed += 1;
                    }
                    // Cancelled or confirmed meanwhile: nothing to do.
                    Err(ShopError::InvalidTransition { .. }) => {}
                    Err(error) => worker_failed("auto-complete", &format!("order {id}"), &error),
                }
            }
        }
        completed
    }

    /// Receipt of a shipped order, confirmed by its buyer or by time: the order
    /// completes and escrow goes to the seller.
    async fn complete(&self, order: &Order) -> ShopResult<()> {
        let id = order.id;
        match order.status {
            OrderStatus::Completed => return self.finish_release(order).await,
            OrderStatus::Shipped => {}
            other => return Err(ShopError::order_is(other)),
        }
        if !self.request(id, PaymentState::ReleaseRequested, PaymentState::Released).await? {
            return Ok(());
        }
        crash_point("release:requested");
        self.drive_release(order).await
    }

    async fn drive_release(&self, order: &Order) -> ShopResult<()> {
        match self.orders.transition(order.id, OrderStatus::Shipped, OrderStatus::Completed).await? {
            OrderStatus::Completed => {
                crash_point("release:completed");
                self.finish_release(order).await
            }
            other => {
                self.advance(order.id, PaymentState::ReleaseRequested, PaymentState::Paid).await?;
                Err(ShopError::order_is(other))
            }
        }
    }

    async fn finish_release(&self, order: &Order) -> ShopResult<()> {
        let seller = seller_of(order)?;
        let seller_wallet = wallet_of(seller);
        let mut tx = self.main.begin_write().await?;
        // The state change is the gate: money moves only with it, in one transaction.
        let Some(escrow) = advance_from_escrow_in(&mut tx, order.id, PaymentState::ReleaseRequested, PaymentState::Released).await? else {
            return Ok(());
        };
        ensure_wallet(&mut tx, seller).await?;
        let transfer = Transfer {
            id: format!("release:{}", order.id),
            kind: TransferKind::Release,
            from: &escrow,
            to: &seller_wallet,
            amount: Money::from_stored(order.total_cents),
            order_id: Some(order.id.get()),
        };
        transfer_in(&mut tx, &transfer).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stock back on sale and escrow → buyer, in one `main` transaction; the
    /// payment moves from `from` to `to`. Idempotent: the refund transfer's id is
    /// the order's, and releasing a released take does nothing.
    async fn give_back(&self, order: &Order, from: PaymentState, to: PaymentState) -> ShopResult<()> {
        let buyer_wallet = wallet_of(order.buyer_id);
        let mut tx = self.main.begin_write().await?;
        // The state change is the gate: money and stock move only with it.
        let Some(escrow) = advance_from_escrow_in(&mut tx, order.id, from, to).await? else {
            return Ok(());
        };
        stock::release_in(&mut tx, order.id).await?;
        ensure_wallet(&mut tx, order.buyer_id).await?;
        let transfer = Transfer {
            id: format!("refund:{}", order.id),
            kind: TransferKind::Refund,
            from: &escrow,
            to: &buyer_wallet,
            amount: Money::from_stored(order.total_cents),
            order_id: Some(order.id.get()),
        };
        transfer_in(&mut tx, &transfer).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Step 1 of a refund or a release: moves a paid payment to `requested`.
    /// `Ok(true)`: go on (this call moved it, or another request is driving it and
    /// this one helps); `Ok(false)`: it already reached `done`.
    async fn request(&self, id: OrderId, requested: PaymentState, done: PaymentState) -> ShopResult<bool> {
        // The shard says paid or shipped: a payment record still `charged` (its
        // request still finishing, or interrupted) is closed first.
        self.advance(id, PaymentState::Charged, PaymentState::Paid).await?;
        if self.advance(id, PaymentState::Paid, requested).await? {
            return Ok(true);
        }
        match self.state_of(id).await? {
            Some(state) if state == requested => Ok(true),
            Some(state) if state == done => Ok(false),
            Some(state) => Err(ShopError::InvalidTransition { state: RefusingState::Payment(state) }),
            None => Err(anyhow::anyhow!("order {id} is paid on its shard but has no payment record").into()),
        }
    }

    async fn advance(&self, id: OrderId, from: PaymentState, to: PaymentState) -> ShopResult<bool> {
        let mut tx = self.main.begin_write().await?;
        let moved = advance_in(&mut tx, id, from, to).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// The recovery pass, run by a worker: drives every payment that has been in an
    /// intermediate state since before `stale_before_ms` to its end. Returns how
    /// many it handled. Safe beside live requests: every step is idempotent.
    pub async fn recover(&self, stale_before_ms: i64, batch: i64) -> ShopResult<u64> {
        let [charged, refund, release] = PaymentState::UNFINISHED.map(PaymentState::as_str);
        let stuck: Vec<(i64, String)> = sqlx::query_as(
            "SELECT order_id, state FROM payments WHERE state IN ($1, $2, $3) AND updated_at_ms <= $4 ORDER BY updated_at_ms LIMIT $5",
        )
        .bind(charged)
        .bind(refund)
        .bind(release)
        .bind(stale_before_ms)
        .bind(batch)
        .fetch_all(self.main.pool())
        .await?;
        let mut handled = 0;
        for (raw_id, state) in stuck {
            let id = OrderId::from_stored(raw_id);
            match self.drive_on(id, &state).await {
                Ok(()) => {
                    tracing::info!(order_id = %id, from = state, "interrupted payment driven to its end");
                    handled += 1;
                }
                Err(error) => {
                    worker_failed("payment-recovery", &format!("order {id}"), &error);
                    // To the back of the queue, so it cannot fill every batch.
                    let _ = sqlx::query("UPDATE payments SET updated_at_ms = $1 WHERE order_id = $2").bind(now_ms()).bind(id.get()).execute(self.main.pool()).await;
                }
            }
        }
        Ok(handled)
    }

    /// Drives one interrupted payment, found in `state`, to its end.
    async fn drive_on(&self, id: OrderId, state: &str) -> ShopResult<()> {
        let order = self.orders.load(id).await?.ok_or_else(|| anyhow::anyhow!("a payment names an order that does not exist"))?;
        let result = match PaymentState::parse(state) {
            Some(PaymentState::Charged) => self.finish_charge(&order).await.map(|_| ()),
            Some(PaymentState::RefundRequested) => match order.status {
                OrderStatus::Cancelled => self.finish_refund(&order).await,
                _ => self.drive_refund(&order).await,
            },
            _ => match order.status {
                OrderStatus::Completed => self.finish_release(&order).await,
                _ => self.drive_release(&order).await,
            },
        };
        match result {
            Ok(()) | Err(ShopError::InvalidTransition { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The payment state of an order, if it has one (for tests and the admin).
    pub async fn state_of(&self, id: OrderId) -> ShopResult<Option<PaymentState>> {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM payments WHERE order_id = $1").bind(id.get()).fetch_optional(self.main.pool()).await?;
        state.map(|raw| PaymentState::parse(&raw).ok_or_else(|| anyhow::anyhow!("stored payment has an unknown state {raw:?}").into())).transpose()
    }
}

/// As [`advance_in`], for a step that takes the money back out of escrow: the
/// account that holds this payment's money, if the record moved.
async fn advance_from_escrow_in(tx: &mut Transaction<'static, Any>, id: OrderId, from: PaymentState, to: PaymentState) -> ShopResult<Option<String>> {
    let escrow = sqlx::query_scalar("UPDATE payments SET state = $1, updated_at_ms = $2 WHERE order_id = $3 AND state = $4 RETURNING escrow_account")
        .bind(to.as_str())
        .bind(now_ms())
        .bind(id.get())
        .bind(from.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(escrow)
}

/// Moves the payment record from `from` to `to`; a record already past `from`
/// (a retry) is left alone. Returns whether it moved.
async fn advance_in(tx: &mut Transaction<'static, Any>, id: OrderId, from: PaymentState, to: PaymentState) -> ShopResult<bool> {
    Ok(advance_from_escrow_in(tx, id, from, to).await?.is_some())
}

