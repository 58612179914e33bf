//! New orders of one shard, committed together (issue 14, the shard side of the
//! flash sale). Placing an order is, on its buyer's shard: consume the checkout
//! token, take one of the buyer's unpaid slots, insert the order, its lines and its
//! outbox row. Concurrent placings on one shard share that transaction, with one
//! statement per step for the whole batch, so a busy shard commits per batch and
//! not per order. One order alone is a batch of one: the same statements.
//!
//! Each order keeps its own outcome: a token consumed by someone else means "not
//! placed here" (the caller replays the order that was), and a buyer without a
//! free slot is refused with their token left unused, exactly as alone.

use crate::domain::UserId;
use crate::error::{ShopError, ShopResult};
use crate::orders::{Order, SellerOrder};
use crate::secrets::CheckoutToken;
use crate::services::group_commit::{Batched, GroupCommit};
use crate::services::order_rows;
use crate::services::shards::Shards;
use crate::clock::now_ms;
use crate::db::JsonRows;
use crate::db::dialect::{JsonColumn::{Int, Text}, backend_of, json_key_in, json_rows};
use serde_json::json;
use sqlx::{Any, Row, Transaction};
use std::collections::{HashMap, HashSet};
use std::future::Future;

/// Most lines one INSERT carries (7 parameters each, well under either backend's limit).
const LINES_PER_STATEMENT: usize = 1000;

/// An order ready to be written, with the token it consumes.
#[derive(Debug, Clone)]
pub(crate) struct NewOrder {
    /// The order as it will be stored (status `pending_payment`, version 1).
    pub summary: SellerOrder,
    pub token: CheckoutToken,
    pub hold_expires_at_ms: i64,
    pub created_at_ms: i64,
}

/// The placing side of one shard's orders.
#[derive(Debug)]
struct ShardOrders {
    shards: Shards,
    max_unpaid: i64,
}

impl Batched for ShardOrders {
    /// The shard's position in [`Shards::all`].
    type Key = usize;
    type Item = NewOrder;
    /// `None`: the token was consumed by another submit; nothing was written.
    type Output = Option<Order>;
    const MAX_BATCH: usize = 128;
    const METRIC: &'static str = "ninefold_order_batch_orders";

    fn together<'a>(&'a self, shard: &'a usize, items: &'a [&'a NewOrder]) -> impl Future<Output = ShopResult<Vec<ShopResult<Option<Order>>>>> + Send + 'a {
        self.insert(*shard, items)
    }

    async fn alone(&self, shard: &usize, item: &NewOrder) -> ShopResult<Option<Order>> {
        let mut outcomes = self.insert(*shard, &[item]).await?;
        outcomes.pop().ok_or_else(|| anyhow::anyhow!("an order insert answered nothing").into()).and_then(|outcome| outcome)
    }
}

impl ShardOrders {
    async fn insert(&self, shard: usize, items: &[&NewOrder]) -> ShopResult<Vec<ShopResult<Option<Order>>>> {
        let db = &self.shards.all()[shard];
        let mut tx = db.begin_write().await?;
        let winners = consume_tokens_in(&mut tx, items).await?;
        let slotted = self.take_slots_in(&mut tx, items, &winners).await?;
        let refused: Vec<usize> = winners.iter().copied().filter(|k| !slotted.contains(k)).collect();
        if !refused.is_empty() {
            // No slot, so no order: the token stays usable, as if never submitted.
            unconsume_tokens_in(&mut tx, refused.iter().map(|&k| items[k])).await?;
        }
        let placed: Vec<&NewOrder> = winners.iter().filter(|k| slotted.contains(k)).map(|&k| items[k]).collect();
        if !placed.is_empty() {
            insert_orders_in(&mut tx, &placed).await?;
            let lines: Vec<_> = placed.iter().flat_map(|o| o.summary.order.lines.iter().enumerate().map(move |(n, line)| (o.summary.order.id, n, line))).collect();
            for chunk in lines.chunks(LINES_PER_STATEMENT) {
                order_rows::insert_lines_of_many_in(&mut tx, chunk).await?;
            }
            order_rows::record_summaries_in(&mut tx, &placed.iter().map(|o| &o.summary).collect::<Vec<_>>()).await?;
        }
        tx.commit().await?;
        let max = self.max_unpaid;
        Ok((0..items.len())
            .map(|k| match (winners.contains(&k), slotted.contains(&k)) {
                (true, true) => Ok(Some(items[k].summary.order.clone())),
                (true, false) => Err(ShopError::TooManyUnpaidOrders { max }),
                (false, _) => Ok(None),
            })
            .collect())
    }

    /// Takes an unpaid slot for each winner's buyer; the winners that got one. A
    /// buyer's first order in the batch shares one upsert with the other buyers';
    /// a second order of the same buyer (rare: two checkouts submitted at once)
    /// takes its slot with a statement of its own after it.
    async fn take_slots_in(&self, tx: &mut Transaction<'static, Any>, items: &[&NewOrder], winners: &[usize]) -> ShopResult<HashSet<usize>> {
        if self.max_unpaid < 1 {
            return Ok(HashSet::new());
        }
        let mut first_of: HashMap<UserId, usize> = HashMap::new();
        let mut again = Vec::new();
        for &k in winners {
            let buyer = items[k].summary.order.buyer_id;
            if first_of.contains_key(&buyer) {
                again.push(k);
            } else {
                first_of.insert(buyer, k);
            }
        }
        let mut slotted = HashSet::new();
        if !first_of.is_empty() {
            let buyers: Vec<UserId> = first_of.keys().copied().collect();
            for buyer in order_rows::take_unpaid_slots_in(tx, &buyers, self.max_unpaid).await? {
                slotted.insert(first_of[&buyer]);
            }
        }
        for k in again {
            if order_rows::take_unpaid_slot_in(tx, items[k].summary.order.buyer_id, self.max_unpaid).await? {
                slotted.insert(k);
            }
        }
        Ok(slotted)
    }
}

/// Consumes the tokens in one conditional UPDATE; the positions of the items that
/// consumed theirs, in order. Of two submits of one order in the batch, the first
/// wins and the second is a replay, as if it came a moment later.
async fn consume_tokens_in(tx: &mut Transaction<'static, Any>, items: &[&NewOrder]) -> ShopResult<Vec<usize>> {
    let pairs = JsonRows::from_rows(items.iter().map(|item| json!([item.summary.order.id.get(), item.token.expose()])));
    let backend = backend_of(tx);
    let (ids, source) = (json_key_in(backend, Int("order_id"), 2, 0), json_rows(backend, 2, &[Int("order_id"), Text("token")]));
    let sql = format!(
        "UPDATE checkout_tokens SET consumed_at_ms = $1 WHERE consumed_at_ms IS NULL \
         AND {ids} AND (order_id, token) IN (SELECT order_id, token FROM {source}) RETURNING order_id, token"
    );
    let query = sqlx::query(&sql).bind(now_ms()).bind(pairs.into_param());
    let mut consumed: HashSet<(i64, String)> = HashSet::new();
    for row in query.fetch_all(&mut **tx).await? {
        consumed.insert((row.try_get("order_id")?, row.try_get("token")?));
    }
    // Only an item holding the right token consumed it; the first such.
    Ok((0..items.len()).filter(|&k| consumed.remove(&(items[k].summary.order.id.get(), items[k].token.expose().to_owned()))).collect())
}

async fn unconsume_tokens_in<'a>(tx: &mut Transaction<'static, Any>, items: impl Iterator<Item = &'a NewOrder>) -> ShopResult<()> {
    let ids = JsonRows::of_values(items.map(|item| item.summary.order.id.get()));
    let sql = format!("UPDATE checkout_tokens SET consumed_at_ms = NULL WHERE {}", json_key_in(backend_of(tx), Int("order_id"), 1, 0));
    sqlx::query(&sql).bind(ids.into_param()).execute(&mut **tx).await?;
    Ok(())
}

async fn insert_orders_in(tx: &mut Transaction<'static, Any>, orders: &[&NewOrder]) -> ShopResult<()> {
    let mut rows = JsonRows::default();
    for new in orders {
        let order = &new.summary.order;
        let address = serde_json::to_string(&order.shipping_address).map_err(anyhow::Error::from)?;
        rows.push(json!([order.id.get(), order.buyer_id.get(), new.summary.seller_id.get(), order.total_cents, address, new.hold_expires_at_ms, new.created_at_ms]));
    }
    let columns = [Int("id"), Int("buyer_id"), Int("seller_id"), Int("total_cents"), Text("shipping_address"), Int("hold_expires_at_ms"), Int("created_at_ms")];
    let sql = format!(
        "INSERT INTO orders (id, buyer_id, seller_id, status, total_cents, shipping_address, hold_expires_at_ms, created_at_ms, updated_at_ms) \
         SELECT id, buyer_id, seller_id, 'pending_payment', total_cents, shipping_address, hold_expires_at_ms, created_at_ms, created_at_ms FROM {}",
        json_rows(backend_of(tx), 1, &columns)
    );
    sqlx::query(&sql).bind(rows.into_param()).execute(&mut **tx).await?;
    Ok(())
}

/// The new orders of each shard, placed together.
#[derive(Clone, Debug)]
pub(crate) struct OrderInserts {
    shards: Shards,
    orders: GroupCommit<ShardOrders>,
}

impl OrderInserts {
    pub(crate) fn new(shards: Shards, max_unpaid: i64) -> Self {
        Self { orders: GroupCommit::new(ShardOrders { shards: shards.clone(), max_unpaid }), shards }
    }

    /// Consumes the token and inserts the order on its shard, with whatever other
    /// orders of that shard are waiting. `Ok(None)`: another submit consumed the
    /// token first.
    pub(crate) async fn place(&self, order: NewOrder) -> ShopResult<Option<Order>> {
        let id = order.summary.order.id;
        // The caller's request writes this shard: its read fence must cover the
        // commit, though the transaction runs in another task.
        self.shards.of_order(id).note_primary_write();
        self.orders.submit(self.shards.index_of_order(id), order).await
    }

    /// Batches of more than one order committed so far, and the orders in them.
    pub(crate) fn shared_batches(&self) -> (u64, u64) {
        self.orders.shared_batches()
    }
}
