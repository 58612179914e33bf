//! Group commit for hot products (issue 14). In a flash sale every purchase takes
//! stock from one row, and each take used to be a `main` transaction of its own:
//! on SQLite they queue for the database lock, on PostgreSQL for the row lock, and
//! the sale runs at the rate of commits. Here concurrent single-line takes of one
//! product, within this process, join one transaction: one multi-row insert of
//! their `stock_takes`, one conditional decrement by their sum. When the sum does
//! not fit, exactly the units that exist are granted in arrival order and the
//! rest are refused with `insufficient_stock`.
//!
//! A product sold `on_payment` takes nothing at placing; its check that the
//! order fits what is available joins the product's batch all the same, for the
//! one `main` write (the snapshot job) it shares.
//!
//! The conditional statement is still the guard (DESIGN.md, failure mode 4), so
//! several server processes, and takes outside a batch (multi-line orders,
//! payments), stay correct beside it. The queueing is [`GroupCommit`]'s.

use crate::catalog::Product;
use crate::clock::now_ms;
use crate::db::Db;
use crate::domain::{InventoryMode, OrderId, TakeState};
use crate::error::ShopResult;
use crate::orders::LineRequest;
use crate::services::snapshots::{self, SnapshotJob};
use crate::services::stock::{oversell_refused, take_in};
use crate::services::group_commit::{Batched, GroupCommit};
use sqlx::Row;
use std::collections::HashSet;
use std::future::Future;

/// One order's take of one product.
#[derive(Debug, Clone)]
pub(crate) struct Take {
    pub order_id: OrderId,
    /// The product as the order priced it (its snapshot is enqueued with the take).
    pub product: Product,
    pub line: LineRequest,
    /// When the take is checked against its order's payment deadline.
    pub deadline_ms: i64,
}

impl Take {
    /// The state a granted take is in; `None` for a product whose stock is taken
    /// only at payment.
    fn granted_state(&self) -> Option<TakeState> {
        match self.product.inventory_mode {
            InventoryMode::OnOrder => Some(TakeState::Sold),
            InventoryMode::Reserve => Some(TakeState::Held),
            InventoryMode::OnPayment => None,
        }
    }
}

/// Batches by (product, inventory mode): a mode changed mid-sale splits the queue
/// rather than mixing two decrements in one statement.
type Key = (i64, InventoryMode);

/// Stock takes of one product, committed together on `main`.
#[derive(Debug)]
struct StockTakes {
    main: Db,
}

impl Batched for StockTakes {
    type Key = Key;
    type Item = Take;
    type Output = ();
    const MAX_BATCH: usize = 128;
    const METRIC: &'static str = "ninefold_stock_batch_takes";

    fn together<'a>(&'a self, _key: &'a Key, items: &'a [&'a Take]) -> impl Future<Output = ShopResult<Vec<ShopResult<()>>>> + Send + 'a {
        take_together(&self.main, items)
    }

    fn alone<'a>(&'a self, _key: &'a Key, item: &'a Take) -> impl Future<Output = ShopResult<()>> + Send + 'a {
        take_alone(&self.main, item)
    }
}

/// The takes waiting per product.
#[derive(Clone, Debug)]
pub(crate) struct StockBatcher {
    main: Db,
    takes: GroupCommit<StockTakes>,
}

impl StockBatcher {
    pub(crate) fn new(main: Db) -> Self {
        Self { takes: GroupCommit::new(StockTakes { main: main.clone() }), main }
    }

    /// Takes the stock of a one-line order and enqueues its snapshot, together with
    /// whatever other takes of the product are waiting. Idempotent per order, as
    /// [`take_in`]: a retried submit takes nothing twice.
    /// A product sold `on_payment` only has its stock checked here; the check
    /// joins the batch all the same, for the snapshot it enqueues.
    pub(crate) async fn take(&self, take: Take) -> ShopResult<()> {
        // The caller's request wrote `main`: its read fence must cover this commit,
        // though the transaction runs in another task.
        self.main.note_primary_write();
        self.takes.submit((take.product.id.get(), take.product.inventory_mode), take).await
    }

    /// Batches of more than one take committed so far, and the takes in them.
    pub(crate) fn shared_batches(&self) -> (u64, u64) {
        self.takes.shared_batches()
    }
}

/// One take in a transaction of its own: the path of a multi-line order.
pub(crate) async fn take_alone(main: &Db, take: &Take) -> ShopResult<()> {
    let mut tx = main.begin_write().await?;
    snapshots::enqueue_in(&mut tx, std::slice::from_ref(&take.product)).await?;
    take_in(&mut tx, take.order_id, std::slice::from_ref(&take.product), std::slice::from_ref(&take.line), take.deadline_ms).await?;
    tx.commit().await?;
    Ok(())
}

/// The batch in one transaction; the outcome of each take, in order. All takes
/// are of one product in one mode. An `Err` means nothing was committed.
async fn take_together(main: &Db, takes: &[&Take]) -> ShopResult<Vec<ShopResult<()>>> {
    let product_id = takes[0].product.id.get();
    let mut tx = main.begin_write().await?;

    let mut digests = HashSet::new();
    let products: Vec<Product> = takes.iter().filter(|t| digests.insert(SnapshotJob::of(&t.product).digest)).map(|t| t.product.clone()).collect();
    snapshots::enqueue_in(&mut tx, &products).await?;

    let refused = match takes[0].granted_state() {
        Some(state) => decrement_together(&mut tx, product_id, takes, state).await?,
        None => short_for_payment(&mut tx, product_id, takes).await?,
    };
    tx.commit().await?;
    Ok(takes.iter().map(|t| if refused.contains(&t.order_id.get()) { Err(oversell_refused(product_id)) } else { Ok(()) }).collect())
}

/// A product sold `on_payment` takes its stock when paid: at placing, an order
/// only has to fit in what is available now (as [`take_in`] checks alone). The
/// orders that do not.
async fn short_for_payment(tx: &mut sqlx::Transaction<'static, sqlx::Any>, product_id: i64, takes: &[&Take]) -> ShopResult<HashSet<i64>> {
    let available: Option<i64> = sqlx::query_scalar("SELECT available FROM stock WHERE product_id = $1").bind(product_id).fetch_optional(&mut **tx).await?;
    let available = available.unwrap_or(0);
    Ok(takes.iter().filter(|t| t.line.quantity.get() > available).map(|t| t.order_id.get()).collect())
}

/// Takes the stock of every take not taken before with one conditional
/// decrement by their sum; the orders refused for want of stock.
async fn decrement_together(tx: &mut sqlx::Transaction<'static, sqlx::Any>, product_id: i64, takes: &[&Take], state: TakeState) -> ShopResult<HashSet<i64>> {
    // Only takes this statement inserts move stock: an order's take that exists
    // already (a retried submit) is done.
    let inserted = insert_takes(tx, takes, state).await?;
    let mut seen = HashSet::new();
    let wanted: Vec<(i64, i64)> = takes
        .iter()
        .filter(|t| inserted.contains(&t.order_id.get()) && seen.insert(t.order_id.get()))
        .map(|t| (t.order_id.get(), t.line.quantity.get()))
        .collect();
    let decrement = decrement_for(state);
    let sum: i64 = wanted.iter().map(|(_, q)| q).sum();
    if sum == 0 || sqlx::query(decrement).bind(sum).bind(product_id).execute(&mut **tx).await?.rows_affected() == 1 {
        return Ok(HashSet::new());
    }
    // Not enough for all: lock the row, grant what exists in arrival order.
    let available = lock_available(tx, product_id).await?;
    let (granted, refused) = split_in_arrival_order(&wanted, available);
    if granted > 0 && sqlx::query(decrement).bind(granted).bind(product_id).execute(&mut **tx).await?.rows_affected() != 1 {
        return Err(anyhow::anyhow!("stock of product {product_id} moved under its lock").into());
    }
    delete_takes(tx, product_id, &refused).await?;
    Ok(refused)
}

fn decrement_for(state: TakeState) -> &'static str {
    match state {
        TakeState::Sold => "UPDATE stock SET available = available - $1, sold = sold + $1 WHERE product_id = $2 AND available >= $1",
        _ => "UPDATE stock SET available = available - $1, reserved = reserved + $1 WHERE product_id = $2 AND available >= $1",
    }
}

/// Locks the product's stock row and reads what is available under the lock: the
/// number a batch that did not fit splits in arrival order.
pub(crate) async fn lock_available(tx: &mut sqlx::Transaction<'static, sqlx::Any>, product_id: i64) -> ShopResult<i64> {
    Ok(sqlx::query_scalar("UPDATE stock SET available = available WHERE product_id = $1 RETURNING available").bind(product_id).fetch_one(&mut **tx).await?)
}

/// Grants takes in arrival order while units remain (a take that does not fit is
/// refused, a smaller one after it may still fit): the units granted, and the
/// orders refused.
pub(crate) fn split_in_arrival_order(wanted: &[(i64, i64)], available: i64) -> (i64, HashSet<i64>) {
    let mut left = available.max(0);
    let mut refused = HashSet::new();
    for &(order, quantity) in wanted {
        if quantity <= left {
            left -= quantity;
        } else {
            refused.insert(order);
        }
    }
    (available.max(0) - left, refused)
}

/// Inserts the takes that do not exist yet, in one statement; the orders inserted.
async fn insert_takes(tx: &mut sqlx::Transaction<'static, sqlx::Any>, takes: &[&Take], state: TakeState) -> ShopResult<HashSet<i64>> {
    let values = (0..takes.len()).map(|i| format!("(${}, ${}, ${}, ${}, ${}, ${})", 6 * i + 1, 6 * i + 2, 6 * i + 3, 6 * i + 4, 6 * i + 5, 6 * i + 6)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "INSERT INTO stock_takes (order_id, product_id, quantity, state, check_at_ms, created_at_ms) VALUES {values} \
         ON CONFLICT (order_id, product_id) DO NOTHING RETURNING order_id"
    );
    let now = now_ms();
    let query = takes.iter().fold(sqlx::query(&sql), |q, t| q.bind(t.order_id.get()).bind(t.product.id.get()).bind(t.line.quantity.get()).bind(state.as_str()).bind(t.deadline_ms).bind(now));
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter().map(|row| Ok(row.try_get::<i64, _>("order_id")?)).collect()
}

async fn delete_takes(tx: &mut sqlx::Transaction<'static, sqlx::Any>, product_id: i64, orders: &HashSet<i64>) -> ShopResult<()> {
    if orders.is_empty() {
        return Ok(());
    }
    let list = crate::db::placeholders(2, orders.len());
    let sql = format!("DELETE FROM stock_takes WHERE product_id = $1 AND order_id IN ({list})");
    let query = orders.iter().fold(sqlx::query(&sql).bind(product_id), |q, order| q.bind(*order));
    query.execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_in_arrival_order;

    #[test]
    fn a_short_batch_grants_exactly_what_exists_in_arrival_order() {
        // Order 2 does not fit after order 1; the smaller ones after it still do.
        let (granted, refused) = split_in_arrival_order(&[(1, 1), (2, 3), (3, 1), (4, 1), (5, 1)], 3);
        assert_eq!(granted, 3);
        assert_eq!(refused, [2, 5].into_iter().collect());
        let (granted, refused) = split_in_arrival_order(&[(1, 2)], 0);
        assert_eq!((granted, refused.len()), (0, 1));
    }
}
