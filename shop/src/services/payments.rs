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
//!   (3) `main`: `charged → paid`. If the order was cancelled meanwhile (its hold
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
use crate::error::{ShopError, ShopResult};
use crate::faults::crash_point;
use crate::orders::{Order, OrderId, OrderStatus};
use crate::services::Orders;
use crate::services::ledger::{ESCROW, Transfer, TransferKind, ensure_wallet, transfer_in, wallet_of};
use sqlx::{Any, Transaction};

#[derive(Clone, Debug)]
pub struct Payments {
    main: Db,
    orders: Orders,
}

impl Payments {
    pub fn new(main: Db, orders: Orders) -> Self {
        Self { main, orders }
    }

    /// Pays an order from the buyer's wallet. Paying a paid order again returns it
    /// and moves nothing.
    pub async fn pay(&self, buyer: &User, id: OrderId) -> ShopResult<Order> {
        let order = self.orders.get(buyer, id).await?;
        match order.status {
            OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Completed => return Ok(order),
            OrderStatus::Cancelled => return Err(ShopError::InvalidTransition { status: "cancelled" }),
            OrderStatus::PendingPayment => {}
        }
        self.charge(&order).await?;
        crash_point("pay:charged");
        self.finish_charge(&order).await?;
        metrics::counter!("ninefold_orders_paid_total").increment(1);
        self.orders.get(buyer, id).await
    }

    /// Step 1 of paying: in one `main` transaction, record the payment, settle the
    /// stock and move the money into escrow. Nothing happens twice: the payment
    /// row's primary key lets one caller through; a concurrent one waits for it,
    /// then finds the row and moves nothing.
    async fn charge(&self, order: &Order) -> ShopResult<()> {
        let now = now_ms();
        let mut tx = self.main.begin_write().await?;
        let first = sqlx::query(
            "INSERT INTO payments (order_id, buyer_id, seller_id, amount_cents, state, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, 'charged', $5, $5) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order.id.get())
        .bind(order.buyer_id.get())
        .bind(seller_of(order))
        .bind(order.total_cents)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if first.rows_affected() == 0 {
            return Ok(()); // charged before (a retry, another tab): go on to the next step
        }
        settle_stock(&mut tx, order).await?;
        ensure_wallet(&mut tx, order.buyer_id).await?;
        let buyer_wallet = wallet_of(order.buyer_id);
        let transfer = Transfer {
            id: format!("pay:{}", order.id),
            kind: TransferKind::Payment,
            from: &buyer_wallet,
            to: ESCROW,
            amount: Money::from_stored(order.total_cents),
            order_id: Some(order.id.get()),
        };
        transfer_in(&mut tx, &transfer).await?;
        crash_point("pay:charging"); // inside the transaction: nothing of it may survive
        tx.commit().await?;
        Ok(())
    }

    /// Steps 2 and 3 of paying: tell the shard, then close the payment record. If
    /// the order was cancelled in between (its hold lapsed), give everything back.
    async fn finish_charge(&self, order: &Order) -> ShopResult<()> {
        let status = self.orders.transition(order.id, OrderStatus::PendingPayment, OrderStatus::Paid).await?;
        match status {
            OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Completed => {
                crash_point("pay:marked_paid");
                self.advance(order.id, "charged", "paid").await?;
                Ok(())
            }
            OrderStatus::Cancelled => {
                self.give_back(order, "charged", "voided").await?;
                Err(ShopError::InvalidTransition { status: "cancelled" })
            }
            OrderStatus::PendingPayment => Err(anyhow::anyhow!("order {} stayed unpaid after being marked paid", order.id).into()),
        }
    }

    /// The buyer's cancel: an unpaid order is cancelled and its stock released; a
    /// paid one that has not shipped is refunded too.
    pub async fn cancel(&self, buyer: &User, id: OrderId) -> ShopResult<Order> {
        let order = self.orders.get(buyer, id).await?;
        match order.status {
            OrderStatus::PendingPayment => self.orders.cancel(buyer, id).await,
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
            return Err(ShopError::InvalidTransition { status: order.status.as_str() });
        }
        if !self.request(id, "refund_requested", "refunded", "not refundable").await? {
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
                self.advance(order.id, "refund_requested", "paid").await?;
                Err(ShopError::InvalidTransition { status: other.as_str() })
            }
        }
    }

    async fn finish_refund(&self, order: &Order) -> ShopResult<()> {
        self.give_back(order, "refund_requested", "refunded").await
    }

    /// The buyer confirms receipt of a shipped order: escrow → seller.
    pub async fn confirm_receipt(&self, buyer: &User, id: OrderId) -> ShopResult<Order> {
        let order = self.orders.get(buyer, id).await?;
        match order.status {
            OrderStatus::Completed => {
                self.finish_release(&order).await?;
                return Ok(order);
            }
            OrderStatus::Shipped => {}
            other => return Err(ShopError::InvalidTransition { status: other.as_str() }),
        }
        if !self.request(id, "release_requested", "released", "not releasable").await? {
            return self.orders.get(buyer, id).await;
        }
        crash_point("release:requested");
        self.drive_release(&order).await?;
        self.orders.get(buyer, id).await
    }

    async fn drive_release(&self, order: &Order) -> ShopResult<()> {
        match self.orders.transition(order.id, OrderStatus::Shipped, OrderStatus::Completed).await? {
            OrderStatus::Completed => {
                crash_point("release:completed");
                self.finish_release(order).await
            }
            other => {
                self.advance(order.id, "release_requested", "paid").await?;
                Err(ShopError::InvalidTransition { status: other.as_str() })
            }
        }
    }

    async fn finish_release(&self, order: &Order) -> ShopResult<()> {
        let seller = crate::domain::UserId::from_stored(seller_of(order));
        let seller_wallet = wallet_of(seller);
        let mut tx = self.main.begin_write().await?;
        // The state change is the gate: money moves only with it, in one transaction.
        if !advance_in(&mut tx, order.id, "release_requested", "released").await? {
            return Ok(());
        }
        ensure_wallet(&mut tx, seller).await?;
        let transfer = Transfer {
            id: format!("release:{}", order.id),
            kind: TransferKind::Release,
            from: ESCROW,
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
    async fn give_back(&self, order: &Order, from: &str, to: &str) -> ShopResult<()> {
        let buyer_wallet = wallet_of(order.buyer_id);
        let mut tx = self.main.begin_write().await?;
        // The state change is the gate: money and stock move only with it.
        if !advance_in(&mut tx, order.id, from, to).await? {
            return Ok(());
        }
        self.orders.release_stock_in(&mut tx, order.id).await?;
        ensure_wallet(&mut tx, order.buyer_id).await?;
        let transfer = Transfer {
            id: format!("refund:{}", order.id),
            kind: TransferKind::Refund,
            from: ESCROW,
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
    async fn request(&self, id: OrderId, requested: &str, done: &str, refusal: &'static str) -> ShopResult<bool> {
        // The shard says paid or shipped: a payment record still `charged` (its
        // request still finishing, or interrupted) is closed first.
        self.advance(id, "charged", "paid").await?;
        if self.advance(id, "paid", requested).await? {
            return Ok(true);
        }
        match self.state_of(id).await? {
            Some(state) if state == requested => Ok(true),
            Some(state) if state == done => Ok(false),
            _ => Err(ShopError::InvalidTransition { status: refusal }),
        }
    }

    async fn advance(&self, id: OrderId, from: &str, to: &str) -> ShopResult<bool> {
        let mut tx = self.main.begin_write().await?;
        let moved = advance_in(&mut tx, id, from, to).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// The recovery pass, run by a worker: drives every payment that has been in an
    /// intermediate state since before `stale_before_ms` to its end. Returns how
    /// many it handled. Safe beside live requests: every step is idempotent.
    pub async fn recover(&self, stale_before_ms: i64, batch: i64) -> ShopResult<u64> {
        let stuck: Vec<(i64, String)> = sqlx::query_as(
            "SELECT order_id, state FROM payments WHERE state IN ('charged', 'refund_requested', 'release_requested') \
             AND updated_at_ms <= $1 ORDER BY updated_at_ms LIMIT $2",
        )
        .bind(stale_before_ms)
        .bind(batch)
        .fetch_all(self.main.pool())
        .await?;
        let mut handled = 0;
        for (raw_id, state) in stuck {
            let id = OrderId::from_stored(raw_id);
            let Some(order) = self.orders.load(id).await? else {
                tracing::error!(order_id = %id, "a payment names an order that does not exist");
                continue;
            };
            let result = match state.as_str() {
                "charged" => self.finish_charge(&order).await,
                "refund_requested" => match order.status {
                    OrderStatus::Cancelled => self.finish_refund(&order).await,
                    _ => self.drive_refund(&order).await,
                },
                _ => match order.status {
                    OrderStatus::Completed => self.finish_release(&order).await,
                    _ => self.drive_release(&order).await,
                },
            };
            match result {
                Ok(()) | Err(ShopError::InvalidTransition { .. }) => {
                    tracing::info!(order_id = %id, from = state, "interrupted payment driven to its end");
                    handled += 1;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(handled)
    }

    /// The payment state of an order, if it has one (for tests and the admin).
    pub async fn state_of(&self, id: OrderId) -> ShopResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT state FROM payments WHERE order_id = $1").bind(id.get()).fetch_optional(self.main.pool()).await?)
    }
}

fn seller_of(order: &Order) -> i64 {
    order.lines.first().map_or(0, |l| l.seller_id.get())
}

/// Moves the payment record from `from` to `to`; a record already past `from`
/// (a retry) is left alone. Returns whether it moved.
async fn advance_in(tx: &mut Transaction<'static, Any>, id: OrderId, from: &str, to: &str) -> ShopResult<bool> {
    let moved = sqlx::query("UPDATE payments SET state = $1, updated_at_ms = $2 WHERE order_id = $3 AND state = $4")
        .bind(to)
        .bind(now_ms())
        .bind(id.get())
        .bind(from)
        .execute(&mut **tx)
        .await?;
    Ok(moved.rows_affected() == 1)
}

/// Settles each line's stock for payment, whatever mode the product was ordered
/// under, by what its stock take says (lines in product order, so concurrent
/// payments lock stock rows in one order):
/// - held (reserve): reserved → sold;
/// - sold (taken at order time): nothing more;
/// - released (the hold lapsed) or none (taken on payment): take it now from
///   available, with one conditional UPDATE; if the stock is gone, the whole
///   payment fails with `insufficient_stock` and nothing is moved.
async fn settle_stock(tx: &mut Transaction<'static, Any>, order: &Order) -> ShopResult<()> {
    let mut lines: Vec<_> = order.lines.iter().collect();
    lines.sort_by_key(|l| l.product_id);
    for line in lines {
        let product = line.product_id.get();
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM stock_takes WHERE order_id = $1 AND product_id = $2")
            .bind(order.id.get())
            .bind(product)
            .fetch_optional(&mut **tx)
            .await?;
        match state.as_deref() {
            Some("held") => {
                let confirmed = sqlx::query("UPDATE stock_takes SET state = 'sold', check_at_ms = NULL WHERE order_id = $1 AND product_id = $2 AND state = 'held'")
                    .bind(order.id.get())
                    .bind(product)
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
            Some("sold") => {
                sqlx::query("UPDATE stock_takes SET check_at_ms = NULL WHERE order_id = $1 AND product_id = $2").bind(order.id.get()).bind(product).execute(&mut **tx).await?;
            }
            released_or_none => {
                let taken = sqlx::query("UPDATE stock SET available = available - $1, sold = sold + $1 WHERE product_id = $2 AND available >= $1")
                    .bind(line.quantity)
                    .bind(product)
                    .execute(&mut **tx)
                    .await?;
                if taken.rows_affected() == 0 {
                    metrics::counter!("ninefold_oversell_refused_total").increment(1);
                    return Err(ShopError::InsufficientStock { product_id: product });
                }
                if released_or_none.is_some() {
                    sqlx::query("UPDATE stock_takes SET state = 'sold', check_at_ms = NULL WHERE order_id = $1 AND product_id = $2")
                        .bind(order.id.get())
                        .bind(product)
                        .execute(&mut **tx)
                        .await?;
                } else {
                    sqlx::query("INSERT INTO stock_takes (order_id, product_id, quantity, state, check_at_ms, created_at_ms) VALUES ($1, $2, $3, 'sold', NULL, $4)")
                        .bind(order.id.get())
                        .bind(product)
                        .bind(line.quantity)
                        .bind(now_ms())
                        .execute(&mut **tx)
                        .await?;
                }
            }
        }
    }
    Ok(())
}
