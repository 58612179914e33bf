//! Group commit for stock takes (issue 14). In a flash sale every purchase takes
//! stock from one row, and each take used to be a `main` transaction of its own:
//! on SQLite they queue for the database lock, on PostgreSQL for the row lock, and
//! the sale runs at the rate of commits. Here concurrent single-line takes, within
//! this process, join one transaction whatever their products: one multi-row
//! insert of their `stock_takes`, one conditional decrement per product by its
//! takes' sum, all products in one statement. When a product's sum does not fit,
//! exactly the units that exist are granted in arrival order and the rest are
//! refused with `insufficient_stock`. A sale of many products (no hot row) shares
//! transactions as a hot product does: on SQLite, whose writes take turns, that
//! is the difference between one commit per purchase and one per batch.
//!
//! A product sold `on_payment` takes nothing at placing; its check that the
//! order fits what is available joins a batch all the same, for the snapshot
//! job it may enqueue. A content whose job this process committed lately is not
//! enqueued again ([`RecentSnapshots`]).
//!
//! The conditional statement is still the guard (DESIGN.md, failure mode 4), so
//! several server processes, and takes outside a batch (multi-line orders,
//! payments), stay correct beside it. On PostgreSQL a batch of several products
//! locks their rows in product order first, so two processes' batches cannot
//! deadlock; a batch of one product (the hot row) pays nothing for that. The
//! queueing is [`GroupCommit`]'s.

use crate::catalog::Product;
use crate::clock::now_ms;
use crate::db::Db;
use crate::domain::{InventoryMode, OrderId, TakeState};
use crate::error::ShopResult;
use crate::orders::LineRequest;
use crate::services::snapshots::{self, RecentSnapshots, SnapshotJob};
use crate::services::stock::{oversell_refused, take_in};
use crate::services::group_commit::{Batched, GroupCommit};
use crate::db::JsonRows;
use crate::db::dialect::{JsonColumn::Int, backend_of, json_key_in, json_key_in_locked, json_rows};
use serde_json::json;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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

/// Batches by inventory mode, across products: a sale of many products shares
/// transactions as one hot product does, and a batch never mixes two kinds of
/// decrement.
type Key = InventoryMode;

/// Stock takes of one product, committed together on `main`.
#[derive(Debug)]
struct StockTakes {
    main: Db,
    snapshots: RecentSnapshots,
}

impl Batched for StockTakes {
    type Key = Key;
    type Item = Take;
    type Output = ();
    const MAX_BATCH: usize = 128;
    const METRIC: &'static str = "ninefold_stock_batch_takes";

    fn together<'a>(&'a self, _key: &'a Key, items: &'a [&'a Take]) -> impl Future<Output = ShopResult<Vec<ShopResult<()>>>> + Send + 'a {
        take_together(&self.main, &self.snapshots, items)
    }

    fn alone<'a>(&'a self, _key: &'a Key, item: &'a Take) -> impl Future<Output = ShopResult<()>> + Send + 'a {
        take_alone(&self.main, &self.snapshots, item)
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
        Self { takes: GroupCommit::new(StockTakes { main: main.clone(), snapshots: RecentSnapshots::default() }), main }
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
        self.takes.submit(take.product.inventory_mode, take).await
    }

    /// Batches of more than one take committed so far, and the takes in them.
    pub(crate) fn shared_batches(&self) -> (u64, u64) {
        self.takes.shared_batches()
    }
}

/// One take in a transaction of its own: a batch of one, or each take of a batch
/// whose shared transaction failed.
async fn take_alone(main: &Db, recent: &RecentSnapshots, take: &Take) -> ShopResult<()> {
    let mut tx = main.begin_write().await?;
    let jobs = recent.not_noted(vec![SnapshotJob::of(&take.product)]);
    snapshots::enqueue_jobs_in(&mut tx, &jobs).await?;
    take_in(&mut tx, take.order_id, std::slice::from_ref(&take.product), std::slice::from_ref(&take.line), take.deadline_ms).await?;
    tx.commit().await?;
    recent.note(&jobs);
    Ok(())
}

/// The batch in one transaction; the outcome of each take, in order. All takes
/// are in one mode; they may be of many products. An `Err` means nothing was
/// committed.
async fn take_together(main: &Db, recent: &RecentSnapshots, takes: &[&Take]) -> ShopResult<Vec<ShopResult<()>>> {
    let mut tx = main.begin_write().await?;

    let mut digests = HashSet::new();
    let jobs: Vec<SnapshotJob> = takes.iter().map(|t| SnapshotJob::of(&t.product)).filter(|job| digests.insert(job.digest.clone())).collect();
    let jobs = recent.not_noted(jobs);
    snapshots::enqueue_jobs_in(&mut tx, &jobs).await?;

    let refused = match takes[0].granted_state() {
        Some(state) => decrement_together(&mut tx, takes, state).await?,
        None => short_for_payment(&mut tx, takes).await?,
    };
    tx.commit().await?;
    recent.note(&jobs);
    Ok(takes.iter().map(|t| if refused.contains(&t.order_id.get()) { Err(oversell_refused(t.product.id.get())) } else { Ok(()) }).collect())
}

/// A product sold `on_payment` takes its stock when paid: at placing, an order
/// only has to fit in what is available now (as [`take_in`] checks alone). The
/// orders that do not.
async fn short_for_payment(tx: &mut sqlx::Transaction<'static, sqlx::Any>, takes: &[&Take]) -> ShopResult<HashSet<i64>> {
    let ids: BTreeSet<i64> = takes.iter().map(|t| t.product.id.get()).collect();
    let sql = format!("SELECT product_id, available FROM stock WHERE {}", json_key_in(backend_of(tx), Int("product_id"), 1, 0));
    let rows = sqlx::query(&sql).bind(JsonRows::of_values(ids).into_param()).fetch_all(&mut **tx).await?;
    let available: HashMap<i64, i64> = rows.iter().map(|row| Ok((row.try_get("product_id")?, row.try_get("available")?))).collect::<ShopResult<_>>()?;
    Ok(takes.iter().filter(|t| t.line.quantity.get() > available.get(&t.product.id.get()).copied().unwrap_or(0)).map(|t| t.order_id.get()).collect())
}

/// Takes the stock of every take not taken before with one conditional
/// decrement per product by its takes' sum, all in one statement; the orders
/// refused for want of stock.
async fn decrement_together(tx: &mut sqlx::Transaction<'static, sqlx::Any>, takes: &[&Take], state: TakeState) -> ShopResult<HashSet<i64>> {
    // Only takes this statement inserts move stock: an order's take that exists
    // already (a retried submit) is done.
    let inserted = insert_takes(tx, takes, state).await?;
    let mut seen = HashSet::new();
    let mut wanted: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new(); // by product: (order, units), in arrival order
    for take in takes.iter().filter(|t| inserted.contains(&t.order_id.get()) && seen.insert(t.order_id.get())) {
        wanted.entry(take.product.id.get()).or_default().push((take.order_id.get(), take.line.quantity.get()));
    }
    let sums: BTreeMap<i64, i64> = wanted.iter().map(|(product, w)| (*product, w.iter().map(|(_, q)| q).sum())).filter(|(_, sum)| *sum > 0).collect();
    if sums.is_empty() {
        return Ok(HashSet::new());
    }
    // Several products: their rows are locked in product order (a batch over the
    // same products in another process must not hold one this one waits for).
    let fitted = decrement_each(tx, state, &sums, sums.len() > 1).await?;
    let short: Vec<i64> = sums.keys().copied().filter(|p| !fitted.contains(p)).collect();
    if short.is_empty() {
        return Ok(HashSet::new());
    }
    // Not enough for all of some: lock those rows, grant what exists in arrival order.
    let available = lock_available_of(tx, &short).await?;
    let mut grants = BTreeMap::new();
    let mut refused = Vec::new();
    for product in short {
        let (granted, orders) = split_in_arrival_order(&wanted[&product], available.get(&product).copied().unwrap_or(0));
        if granted > 0 {
            grants.insert(product, granted);
        }
        refused.extend(orders.into_iter().map(|order| (order, product)));
    }
    // Every row is locked by now.
    if !grants.is_empty() && decrement_each(tx, state, &grants, false).await?.len() != grants.len() {
        return Err(anyhow::anyhow!("stock moved under its lock").into());
    }
    delete_takes(tx, &refused).await?;
    Ok(refused.into_iter().map(|(order, _)| order).collect())
}

/// Moves `units` of each product out of available (into reserved or sold, as
/// `state` says), in one statement, each product guarded by `available >= units`:
/// the products that had enough. `in_order` locks the rows in product order first.
async fn decrement_each(tx: &mut sqlx::Transaction<'static, sqlx::Any>, state: TakeState, units: &BTreeMap<i64, i64>, in_order: bool) -> ShopResult<HashSet<i64>> {
    let to = match state {
        TakeState::Sold => "sold",
        _ => "reserved",
    };
    let backend = backend_of(tx);
    let products = if in_order { json_key_in_locked(backend, "stock", Int("product_id"), 1, 0) } else { json_key_in(backend, Int("product_id"), 1, 0) };
    let source = json_rows(backend, 1, &[Int("taken_product"), Int("units")]);
    let sql = format!(
        "UPDATE stock SET available = available - units, {to} = {to} + units FROM {source} \
         WHERE {products} AND product_id = taken_product AND available >= units RETURNING product_id"
    );
    let rows = sqlx::query(&sql).bind(JsonRows::from_rows(units.iter().map(|(id, n)| json!([id, n]))).into_param()).fetch_all(&mut **tx).await?;
    rows.iter().map(|row| Ok(row.try_get::<i64, _>("product_id")?)).collect()
}

/// Locks the stock rows of `products` and reads what is available under the
/// lock: the numbers a batch that did not fit splits in arrival order. A product
/// with no stock row is missing from the answer (it has nothing available).
pub(crate) async fn lock_available_of(tx: &mut sqlx::Transaction<'static, sqlx::Any>, products: &[i64]) -> ShopResult<HashMap<i64, i64>> {
    let wanted = json_key_in(backend_of(tx), Int("product_id"), 1, 0);
    let sql = format!("UPDATE stock SET available = available WHERE {wanted} RETURNING product_id, available");
    let rows = sqlx::query(&sql).bind(JsonRows::of_values(products.iter().copied()).into_param()).fetch_all(&mut **tx).await?;
    rows.iter().map(|row| Ok((row.try_get("product_id")?, row.try_get("available")?))).collect()
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
    let source = json_rows(backend_of(tx), 3, &[Int("order_id"), Int("product_id"), Int("quantity"), Int("check_at_ms")]);
    let sql = format!(
        "INSERT INTO stock_takes (order_id, product_id, quantity, state, check_at_ms, created_at_ms) SELECT order_id, product_id, quantity, $1, check_at_ms, $2 \
         FROM {source} WHERE true ON CONFLICT (order_id, product_id) DO NOTHING RETURNING order_id"
    );
    let rows = JsonRows::from_rows(takes.iter().map(|t| json!([t.order_id.get(), t.product.id.get(), t.line.quantity.get(), t.deadline_ms])));
    let query = sqlx::query(&sql).bind(state.as_str()).bind(now_ms()).bind(rows.into_param());
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter().map(|row| Ok(row.try_get::<i64, _>("order_id")?)).collect()
}

/// Deletes the takes of `(order, product)`, in one statement.
async fn delete_takes(tx: &mut sqlx::Transaction<'static, sqlx::Any>, takes: &[(i64, i64)]) -> ShopResult<()> {
    if takes.is_empty() {
        return Ok(());
    }
    let backend = backend_of(tx);
    let (orders, source) = (json_key_in(backend, Int("order_id"), 1, 0), json_rows(backend, 1, &[Int("refused_order"), Int("refused_product")]));
    let sql = format!("DELETE FROM stock_takes WHERE {orders} AND (order_id, product_id) IN (SELECT refused_order, refused_product FROM {source})");
    sqlx::query(&sql).bind(JsonRows::from_rows(takes.iter().map(|(order, product)| json!([order, product]))).into_param()).execute(&mut **tx).await?;
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
