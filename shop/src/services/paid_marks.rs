//! Step 2 of paying, batched per shard (issue 14): the order moves from
//! `pending_payment` to `paid` on its buyer's shard, gives back the buyer's unpaid
//! slot and writes its outbox row. Concurrent payments of one shard's orders
//! share that transaction, one statement per step for the whole batch; one order
//! alone is a batch of one, with the same statements.
//!
//! The guard is the same conditional UPDATE as alone (`… AND status =
//! 'pending_payment'`): an order cancelled meanwhile (its hold lapsed) is not
//! moved, and its caller learns the status it is in now.

use crate::clock::{now_ms, rfc3339};
use crate::db::{Backend, dialect};
use crate::domain::UserId;
use crate::error::ShopResult;
use crate::orders::{Order, OrderStatus, SellerOrder};
use crate::services::group_commit::{Batched, GroupCommit};
use crate::services::order_rows;
use crate::services::shards::Shards;
use crate::db::JsonRows;
use crate::db::dialect::{JsonColumn::Int, json_key_in, json_key_in_locked};
use sqlx::{Any, Row, Transaction};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;

#[derive(Debug)]
struct ShardPayments {
    shards: Shards,
}

impl Batched for ShardPayments {
    /// The shard's position in [`Shards::all`].
    type Key = usize;
    /// The unpaid order as its payer read it.
    type Item = Order;
    /// The order as marked paid; `None` if it was no longer unpaid.
    type Output = Option<Order>;
    const MAX_BATCH: usize = 128;
    const METRIC: &'static str = "ninefold_paid_batch_orders";

    fn together<'a>(&'a self, shard: &'a usize, orders: &'a [&'a Order]) -> impl Future<Output = ShopResult<Vec<ShopResult<Option<Order>>>>> + Send + 'a {
        self.mark(*shard, orders)
    }

    async fn alone(&self, shard: &usize, order: &Order) -> ShopResult<Option<Order>> {
        let mut outcomes = self.mark(*shard, &[order]).await?;
        outcomes.pop().ok_or_else(|| anyhow::anyhow!("a paid mark answered nothing").into()).and_then(|outcome| outcome)
    }
}

impl ShardPayments {
    async fn mark(&self, shard: usize, orders: &[&Order]) -> ShopResult<Vec<ShopResult<Option<Order>>>> {
        let now = now_ms();
        let db = self.shards.all().get(shard).ok_or_else(|| anyhow::anyhow!("no shard {shard}"))?;
        let mut tx = db.begin_write().await?;
        let moved = move_to_paid(&mut tx, orders, now).await?;
        free_slots(&mut tx, db.backend(), moved.values().map(|(_, _, buyer)| *buyer)).await?;
        // The summaries are built from the orders in hand: an unpaid order has no
        // waybill, and its lines and address never change (the version comes from the UPDATE).
        let mut written = HashMap::new();
        for order in orders {
            if let Some(&(version, seller_id, _)) = moved.get(&order.id.get()) {
                let order = Order { status: OrderStatus::Paid, hold_expires_at: None, shipping: None, archived: false, ..(*order).clone() };
                written.entry(order.id.get()).or_insert(SellerOrder { order, seller_id: UserId::from_stored(seller_id), version, updated_at: rfc3339(now) });
            }
        }
        let summaries: Vec<&SellerOrder> = written.values().collect();
        if !summaries.is_empty() {
            order_rows::record_summaries_in(&mut tx, &summaries).await?;
        }
        tx.commit().await?;
        Ok(orders.iter().map(|o| Ok(written.get(&o.id.get()).map(|s| s.order.clone()))).collect())
    }
}

/// The conditional UPDATE for all: (version, seller, buyer) of each order it moved.
async fn move_to_paid(tx: &mut Transaction<'static, Any>, orders: &[&Order], now: i64) -> ShopResult<HashMap<i64, (i64, i64, i64)>> {
    let wanted = json_key_in(dialect::backend_of(tx), Int("id"), 3, 0);
    let sql = format!(
        "UPDATE orders SET status = $1, hold_expires_at_ms = NULL, updated_at_ms = $2, version = version + 1 \
         WHERE status = 'pending_payment' AND {wanted} RETURNING id, version, seller_id, buyer_id"
    );
    let ids = JsonRows::of_values(orders.iter().map(|o| o.id.get()));
    let query = sqlx::query(&sql).bind(OrderStatus::Paid.as_str()).bind(now).bind(ids.into_param());
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter().map(|row| Ok((row.try_get("id")?, (row.try_get("version")?, row.try_get("seller_id")?, row.try_get("buyer_id")?)))).collect()
}

/// Gives back one unpaid slot per order moved, never below zero: one statement
/// per number of orders a buyer had moved (almost always one statement). The
/// buyers' rows are locked in buyer order before any changes, as a batch of new
/// orders takes them (`order_rows::take_unpaid_slots_in`), so the two never
/// deadlock: by the one statement itself, or by a statement of its own first.
async fn free_slots(tx: &mut Transaction<'static, Any>, backend: Backend, buyers: impl Iterator<Item = i64>) -> ShopResult<()> {
    let mut per_buyer: BTreeMap<i64, i64> = BTreeMap::new();
    for buyer in buyers {
        *per_buyer.entry(buyer).or_default() += 1;
    }
    let mut by_count: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (&buyer, &count) in &per_buyer {
        by_count.entry(count).or_default().push(buyer);
    }
    let one_statement = by_count.len() == 1;
    if !one_statement
        && let Some(lock) = dialect::lock_in_key_order(backend, "buyer_unpaid", Int("buyer_id"))
    {
        sqlx::query(&lock).bind(JsonRows::of_values(per_buyer.keys().copied()).into_param()).fetch_all(&mut **tx).await?;
    }
    for (count, buyers) in by_count {
        let wanted = if one_statement && buyers.len() > 1 { json_key_in_locked(backend, "buyer_unpaid", Int("buyer_id"), 2, 0) } else { json_key_in(backend, Int("buyer_id"), 2, 0) };
        let sql = format!("UPDATE buyer_unpaid SET unpaid = CASE WHEN unpaid > $1 THEN unpaid - $1 ELSE 0 END WHERE {wanted} AND unpaid > 0");
        sqlx::query(&sql).bind(count).bind(JsonRows::of_values(buyers).into_param()).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Unpaid orders marked paid, per shard.
#[derive(Clone, Debug)]
pub(crate) struct PaidMarks {
    shards: Shards,
    marks: GroupCommit<ShardPayments>,
}

impl PaidMarks {
    pub(crate) fn new(shards: Shards) -> Self {
        Self { marks: GroupCommit::new(ShardPayments { shards: shards.clone() }), shards }
    }

    /// Marks the unpaid order paid, with the shard's other payments of the moment;
    /// `None` if it was no longer unpaid.
    pub(crate) async fn mark(&self, order: &Order) -> ShopResult<Option<Order>> {
        // The transaction runs in another task: the caller's read fence must cover it.
        self.shards.of_order(order.id).note_primary_write();
        self.marks.submit(self.shards.index_of_order(order.id), order.clone()).await
    }

    pub(crate) fn shared_batches(&self) -> (u64, u64) {
        self.marks.shared_batches()
    }
}
