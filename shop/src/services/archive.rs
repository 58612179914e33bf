//! Hot and cold orders (DESIGN.md, failure mode 8): finished orders move from
//! their shard to the archive database, so the shards and "my orders" stay small
//! however long the shop runs, and an order is still found by its id.
//!
//! An order is *eligible* when it is final (`completed` or `cancelled`) and its
//! last change is older than the hot window. A pass moves eligible orders in
//! batches, each in three steps that are each safe to repeat:
//!
//! 1. **Copy**: one archive transaction upserts the orders, their lines, shipping
//!    records and waybill history, keyed by order id, each marked `settling`
//!    with the version and a digest of its rows as read on the shard.
//! 2. **Verify**: every copy is read back from the archive and its digest
//!    recomputed; the shard's copy is read again. Only an order whose archive copy
//!    is intact and equal to the shard's current content goes on.
//! 3. **Delete** those from the shard in one transaction, each only if its
//!    `version` is still the one copied (the order row is locked first, as every
//!    order write does). Then their seller-index rows are marked archived and the
//!    archive rows stop settling.
//!
//! An archive copy that no longer matches its shard (the order changed after the
//! copy, or the copy is damaged) is dropped: the order stays hot and moves in a
//! later pass. Every pass starts by finishing the rows a crash left `settling`,
//! so after a completed pass no order is in both places, and at every moment an
//! order is readable from at least one: its shard row goes only after a verified
//! copy committed.

use crate::catalog::{Page, PageLimit};
use crate::clock::now_ms;
use crate::db::{Db, Read};
use crate::domain::UserId;
use crate::error::{ShopResult, worker_failed};
use crate::faults::crash_point;
use crate::orders::{Order, OrderId, SellerOrder, WaybillChange};
use crate::services::order_rows::{read_seller_order, read_waybill_history};
use crate::services::seller_index;
use crate::services::shards::Shards;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};
use std::collections::HashMap;
use std::time::Instant;

/// Which orders move, and how many at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchivePolicy {
    /// The hot window: a final order whose last change is older than this moves.
    pub after_ms: i64,
    /// Orders per shard per batch (one copy, one verify, one delete transaction).
    pub batch: i64,
}

impl ArchivePolicy {
    pub const DEFAULT_AFTER_MS: i64 = 90 * 24 * 60 * 60 * 1000;
    pub const DEFAULT_BATCH: i64 = 500;
}

impl Default for ArchivePolicy {
    fn default() -> Self {
        Self { after_ms: Self::DEFAULT_AFTER_MS, batch: Self::DEFAULT_BATCH }
    }
}

/// What a pass reports as it goes: the `server archive` command draws a progress
/// bar from it, the worker ignores it.
pub trait ArchiveProgress: Send {
    fn shard_started(&mut self, _shard: &str, _eligible: u64) {}
    fn moved(&mut self, _shard: &str, _orders: u64) {}
}

/// Reports nothing.
pub struct Quiet;
impl ArchiveProgress for Quiet {}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    /// Moves a crash had left half done, finished at the start of the pass.
    pub resumed: u64,
    pub shards: Vec<ShardPass>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ShardPass {
    pub shard: String,
    /// Eligible when the pass reached this shard.
    pub eligible: u64,
    pub moved: u64,
    /// Copies dropped because the order changed after it was copied.
    pub kept_hot: u64,
    /// Batches that failed (logged; their orders move in a later pass).
    pub failed_batches: u64,
}

impl PassReport {
    pub fn moved(&self) -> u64 {
        self.shards.iter().map(|s| s.moved).sum()
    }
}

#[derive(Clone, Debug)]
pub struct Archive {
    main: Db,
    shards: Shards,
    archive: Db,
}

impl Archive {
    pub fn new(main: Db, shards: Shards, archive: Db) -> Self {
        Self { main, shards, archive }
    }

    /// The archived order, as its buyer or seller sees it. Readers look on the
    /// order's shard first: a copy still settling may yet be dropped, but only
    /// while its shard still holds the order.
    pub async fn load(&self, id: OrderId) -> ShopResult<Option<SellerOrder>> {
        self.load_for(id, Read::Deciding).await
    }

    /// As [`Archive::load`], as a display read or a deciding one.
    pub async fn load_for(&self, id: OrderId, purpose: Read) -> ShopResult<Option<SellerOrder>> {
        let found = self
            .archive
            .read(purpose, |pool| async move {
                let mut conn = pool.acquire().await?;
                read_seller_order(&mut conn, id).await
            })
            .await?;
        Ok(found.map(|mut found| {
            found.order.archived = true;
            found
        }))
    }

    /// The waybill history of an archived order, oldest first.
    pub async fn waybill_history(&self, id: OrderId) -> ShopResult<Vec<WaybillChange>> {
        self.archive
            .display_read(|pool| async move {
                let mut conn = pool.acquire().await?;
                read_waybill_history(&mut conn, id).await
            })
            .await
    }

    /// The buyer's archived orders, newest first: "order history". One range read
    /// on `(buyer_id, id)`; copies still settling are left out (until their move
    /// finishes they are "my orders").
    pub async fn buyer_page(&self, buyer: UserId, before: Option<OrderId>, limit: PageLimit) -> ShopResult<Page<Order>> {
        let ids: Vec<i64> = self
            .archive
            .display_read(|pool| {
                let query = sqlx::query_scalar("SELECT id FROM orders WHERE buyer_id = $1 AND id < $2 AND settling = 0 ORDER BY id DESC LIMIT $3")
                    .bind(buyer.get())
                    .bind(before.map_or(i64::MAX, OrderId::get))
                    .bind(i64::from(limit.get()) + 1);
                async move { Ok(query.fetch_all(&pool).await?) }
            })
            .await?;
        let ids: Vec<OrderId> = ids.into_iter().map(OrderId::from_stored).collect();
        let more = ids.len() > limit.get() as usize;
        let mut items = Vec::with_capacity(limit.get() as usize);
        for id in ids.into_iter().take(limit.get() as usize) {
            items.extend(self.load_for(id, Read::Display).await?.map(|found| found.order));
        }
        let next_cursor = if more { items.last().map(|o| o.id.to_string()) } else { None };
        Ok(Page { items, next_cursor })
    }

    /// Archived orders whose move has finished, by id, after `after`: for the
    /// seller-index rebuild.
    pub async fn settled_ids_after(&self, after: i64, limit: i64) -> ShopResult<Vec<OrderId>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM orders WHERE id > $1 AND settling = 0 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(self.archive.pool())
            .await?;
        Ok(ids.into_iter().map(OrderId::from_stored).collect())
    }

    /// How many orders each shard holds that a pass with this cutoff would move.
    pub async fn eligible(&self, cutoff_ms: i64) -> ShopResult<Vec<(String, u64)>> {
        let mut counts = Vec::with_capacity(self.shards.all().len());
        for shard in self.shards.all() {
            counts.push((shard.name().to_owned(), count_eligible(shard, cutoff_ms).await?));
        }
        Ok(counts)
    }

    /// One full pass over every shard: finishes what a crash left half done, then
    /// moves every order that is eligible at `now_ms`. A batch that fails is
    /// logged and counted, and the pass goes on with the next shard.
    pub async fn pass(&self, now_ms: i64, policy: ArchivePolicy, progress: &mut dyn ArchiveProgress) -> ShopResult<PassReport> {
        let cutoff_ms = now_ms - policy.after_ms;
        let mut report = PassReport { resumed: self.resume().await?, shards: Vec::new() };
        for shard in self.shards.all() {
            let eligible = count_eligible(shard, cutoff_ms).await?;
            metrics::gauge!("ninefold_archive_eligible_orders", "shard" => shard.name().to_owned()).set(eligible as f64);
            progress.shard_started(shard.name(), eligible);
            let mut done = ShardPass { shard: shard.name().to_owned(), eligible, ..ShardPass::default() };
            let mut after = (i64::MIN, i64::MIN);
            loop {
                let batch = candidates(shard, cutoff_ms, after, policy.batch).await?;
                let Some(&(last_change, last_id)) = batch.last() else { break };
                after = (last_change, last_id);
                let started = Instant::now();
                match self.move_batch(shard, batch.iter().map(|&(_, id)| OrderId::from_stored(id)).collect()).await {
                    Ok(outcome) => {
                        metrics::histogram!("ninefold_archive_batch_seconds").record(started.elapsed().as_secs_f64());
                        metrics::counter!("ninefold_archived_orders_total").increment(outcome.moved);
                        done.moved += outcome.moved;
                        done.kept_hot += outcome.kept_hot;
                        progress.moved(shard.name(), outcome.moved);
                    }
                    Err(error) => {
                        worker_failed("archive", shard.name(), &error);
                        done.failed_batches += 1;
                        break;
                    }
                }
            }
            let remaining = count_eligible(shard, cutoff_ms).await?;
            metrics::gauge!("ninefold_archive_eligible_orders", "shard" => shard.name().to_owned()).set(remaining as f64);
            report.shards.push(done);
        }
        Ok(report)
    }

    /// Finishes every move a crash interrupted: the archive rows still settling.
    async fn resume(&self) -> ShopResult<u64> {
        let mut resumed = 0;
        let mut after = i64::MIN;
        loop {
            let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM orders WHERE settling = 1 AND id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(ArchivePolicy::DEFAULT_BATCH)
                .fetch_all(self.archive.pool())
                .await?;
            let Some(&last) = ids.last() else { return Ok(resumed) };
            after = last;
            let mut by_shard: HashMap<usize, Vec<OrderId>> = HashMap::new();
            for id in ids.into_iter().map(OrderId::from_stored) {
                by_shard.entry(self.shards.index_of_order(id)).or_default().push(id);
            }
            for (index, ids) in by_shard {
                resumed += self.finish(&self.shards.all()[index], &ids).await?.moved;
            }
        }
    }

    /// Copies, verifies and deletes one batch of a shard's orders.
    async fn move_batch(&self, shard: &Db, ids: Vec<OrderId>) -> ShopResult<Moved> {
        let mut conn = shard.pool().acquire().await?;
        // Re-read: each may have changed (or gone) since it was listed.
        let copies: Vec<StoredOrder> = StoredOrder::read_many(&mut conn, &ids, Copy::Hot).await?.into_values().map(|(rows, _)| rows).filter(StoredOrder::is_final).collect();
        drop(conn);
        if copies.is_empty() {
            return Ok(Moved::default());
        }
        self.copy(&copies).await?;
        crash_point("archive:copied");
        self.finish(shard, &copies.iter().map(|c| c.id()).collect::<Vec<_>>()).await
    }

    /// Step 1: upserts the copies into the archive, settling, in one transaction.
    async fn copy(&self, copies: &[StoredOrder]) -> ShopResult<()> {
        let archived_at = now_ms();
        let mut tx = self.archive.begin_write().await?;
        // An earlier, unfinished copy of any of them is replaced whole.
        let ids: Vec<OrderId> = copies.iter().map(StoredOrder::id).collect();
        for chunk in ids.chunks(IN_LIST_MAX) {
            for table in ["shipping_history", "shipping_records", "order_lines"] {
                bind_ids(&format!("DELETE FROM {table} WHERE order_id IN ({})", placeholders(chunk.len())), chunk).execute(&mut *tx).await?;
            }
        }
        for copy in copies {
            copy.write_in(&mut tx, archived_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Steps 2 and 3 for orders copied to the archive (by this pass, or by one a
    /// crash interrupted).
    async fn finish(&self, shard: &Db, ids: &[OrderId]) -> ShopResult<Moved> {
        let verdicts = self.verify(shard, ids).await?;
        crash_point("archive:verified");
        let mut to_delete = Vec::new();
        let mut gone = Vec::new();
        let mut to_drop = Vec::new();
        for (id, verdict) in verdicts {
            match verdict {
                Verdict::Matches { version } => to_delete.push((id, version)),
                Verdict::AlreadyGone => gone.push(id),
                Verdict::Differs => to_drop.push(id),
            }
        }
        let deleted = delete_from_shard(shard, &to_delete).await?;
        crash_point("archive:deleted");
        to_drop.extend(to_delete.iter().map(|&(id, _)| id).filter(|id| !deleted.contains(id)));
        self.drop_copies(&to_drop).await?;
        gone.extend(deleted);
        self.mark_in_seller_index(&gone).await?;
        self.settle(&gone).await?;
        Ok(Moved { moved: gone.len() as u64, kept_hot: to_drop.len() as u64 })
    }

    /// Compares each settling archive copy with its shard: the copy must be
    /// intact (its rows hash to the digest taken on the shard) and the shard must
    /// still hold exactly that content, or no longer hold the order at all.
    async fn verify(&self, shard: &Db, ids: &[OrderId]) -> ShopResult<Vec<(OrderId, Verdict)>> {
        let mut archived = StoredOrder::read_many(&mut *self.archive.pool().acquire().await?, ids, Copy::Settling).await?;
        let mut hot = StoredOrder::read_many(&mut *shard.pool().acquire().await?, ids, Copy::Hot).await?;
        let mut verdicts = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some((copy, recorded_digest)) = archived.remove(&id) else { continue };
            let intact = Some(copy.digest()) == recorded_digest;
            let verdict = match hot.remove(&id).map(|(rows, _)| rows) {
                None if intact => Verdict::AlreadyGone,
                Some(current) if intact && current == copy => Verdict::Matches { version: copy.order.version },
                // A damaged copy of an order no longer on its shard cannot be
                // repaired from anywhere: keep it and say so loudly.
                None => {
                    tracing::error!(order_id = %id, "an archived order's rows do not match their digest, and its shard no longer holds it");
                    continue;
                }
                Some(_) => Verdict::Differs,
            };
            verdicts.push((id, verdict));
        }
        Ok(verdicts)
    }

    /// Removes archive copies that will not be finished (the order stays hot).
    async fn drop_copies(&self, ids: &[OrderId]) -> ShopResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.archive.begin_write().await?;
        for chunk in ids.chunks(IN_LIST_MAX) {
            for table in ["shipping_history", "shipping_records", "order_lines"] {
                bind_ids(&format!("DELETE FROM {table} WHERE order_id IN ({})", placeholders(chunk.len())), chunk).execute(&mut *tx).await?;
            }
            bind_ids(&format!("DELETE FROM orders WHERE settling = 1 AND id IN ({})", placeholders(chunk.len())), chunk).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks the moved orders archived in the seller index, so the dashboard keeps
    /// listing them (DESIGN.md, failure mode 9).
    async fn mark_in_seller_index(&self, ids: &[OrderId]) -> ShopResult<()> {
        let mut summaries = Vec::with_capacity(ids.len());
        for &id in ids {
            summaries.extend(self.load(id).await?);
        }
        seller_index::record_archived(&self.main, &summaries).await
    }

    async fn settle(&self, ids: &[OrderId]) -> ShopResult<()> {
        for chunk in ids.chunks(IN_LIST_MAX) {
            bind_ids(&format!("UPDATE orders SET settling = 0 WHERE id IN ({})", placeholders(chunk.len())), chunk).execute(self.archive.pool()).await?;
        }
        Ok(())
    }
}

/// What became of one batch.
#[derive(Debug, Default, Clone, Copy)]
struct Moved {
    moved: u64,
    kept_hot: u64,
}

enum Verdict {
    /// The copy is intact and the shard holds the same content at `version`.
    Matches { version: i64 },
    /// The copy is intact and the shard no longer holds the order.
    AlreadyGone,
    /// The order changed on its shard after the copy, or the copy is damaged.
    Differs,
}

/// Which rows [`StoredOrder::read_many`] reads.
#[derive(Clone, Copy)]
enum Copy {
    /// The order as its shard holds it.
    Hot,
    /// An archive copy whose move has not finished, with its recorded digest.
    Settling,
}

/// Placeholders per `IN (…)` list: well under both backends' parameter limits.
const IN_LIST_MAX: usize = 500;

fn placeholders(n: usize) -> String {
    crate::db::placeholders(1, n)
}

fn bind_ids<'q>(sql: &'q str, ids: &[OrderId]) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    ids.iter().fold(sqlx::query(sql), |query, id| query.bind(id.get()))
}

const FINAL: &str = "status IN ('completed', 'cancelled')";

async fn count_eligible(shard: &Db, cutoff_ms: i64) -> ShopResult<u64> {
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM orders WHERE {FINAL} AND updated_at_ms < $1")).bind(cutoff_ms).fetch_one(shard.pool()).await?;
    Ok(n.max(0) as u64)
}

/// The next eligible orders after `(updated_at_ms, id)`, oldest change first
/// (keyset paging on the partial index, so orders kept hot are not listed again).
async fn candidates(shard: &Db, cutoff_ms: i64, after: (i64, i64), limit: i64) -> ShopResult<Vec<(i64, i64)>> {
    let rows = sqlx::query(&format!(
        "SELECT updated_at_ms, id FROM orders WHERE {FINAL} AND updated_at_ms < $1 \
         AND (updated_at_ms > $2 OR (updated_at_ms = $2 AND id > $3)) ORDER BY updated_at_ms, id LIMIT $4"
    ))
    .bind(cutoff_ms)
    .bind(after.0)
    .bind(after.1)
    .bind(limit)
    .fetch_all(shard.pool())
    .await?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
}

/// Deletes the orders from their shard in one transaction, each only if it is
/// still at the version copied. Returns the ids deleted.
async fn delete_from_shard(shard: &Db, orders: &[(OrderId, i64)]) -> ShopResult<Vec<OrderId>> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = shard.begin_write().await?;
    let mut locked = Vec::with_capacity(orders.len());
    for (n, &(id, version)) in orders.iter().enumerate() {
        if n == orders.len() / 2 {
            crash_point("archive:mid_delete"); // inside the transaction: it all rolls back
        }
        // Locks the order row (every order write takes it first) and checks the version.
        let held = sqlx::query("UPDATE orders SET version = version WHERE id = $1 AND version = $2").bind(id.get()).bind(version).execute(&mut *tx).await?;
        if held.rows_affected() == 1 {
            locked.push(id);
        }
    }
    for chunk in locked.chunks(IN_LIST_MAX) {
        for table in ["shipping_history", "shipping_records", "order_lines", "order_outbox"] {
            bind_ids(&format!("DELETE FROM {table} WHERE order_id IN ({})", placeholders(chunk.len())), chunk).execute(&mut *tx).await?;
        }
        bind_ids(&format!("DELETE FROM orders WHERE id IN ({})", placeholders(chunk.len())), chunk).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(locked)
}

/// An order exactly as stored: its row, lines, shipping record and waybill
/// history, read from a shard or from the archive (the tables are the same).
/// Two copies are the same order when these are equal; the digest is their hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct StoredOrder {
    order: OrderRow,
    lines: Vec<LineRow>,
    shipping: Option<ShippingRow>,
    history: Vec<HistoryRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct OrderRow {
    id: i64,
    buyer_id: i64,
    seller_id: i64,
    status: String,
    total_cents: i64,
    shipping_address: String,
    hold_expires_at_ms: Option<i64>,
    created_at_ms: i64,
    updated_at_ms: i64,
    version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct LineRow {
    line_no: i64,
    product_id: i64,
    seller_id: i64,
    quantity: i64,
    unit_price_cents: i64,
    snapshot_digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct ShippingRow {
    carrier: String,
    tracking_number: String,
    version: i64,
    updated_at_ms: i64,
    updated_by: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct HistoryRow {
    version: i64,
    carrier: String,
    tracking_number: String,
    changed_at_ms: i64,
    changed_by: i64,
}

const ORDER_COLUMNS: &str = "id, buyer_id, seller_id, status, total_cents, shipping_address, hold_expires_at_ms, created_at_ms, updated_at_ms, version";

impl StoredOrder {
    fn id(&self) -> OrderId {
        OrderId::from_stored(self.order.id)
    }

    fn is_final(&self) -> bool {
        matches!(self.order.status.as_str(), "completed" | "cancelled")
    }

    fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("plain rows always serialise");
        hex::encode(Sha256::digest(bytes))
    }

    /// The orders among `ids` held on `conn` (a shard, or the archive's settling
    /// copies with the digest recorded for each), read with four statements per
    /// chunk of ids rather than four per order.
    async fn read_many(conn: &mut AnyConnection, ids: &[OrderId], copy: Copy) -> ShopResult<HashMap<OrderId, (Self, Option<String>)>> {
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IN_LIST_MAX) {
            let list = placeholders(chunk.len());
            let (extra, filter) = match copy {
                Copy::Hot => ("", ""),
                Copy::Settling => (", digest", " AND settling = 1"),
            };
            for row in bind_ids(&format!("SELECT {ORDER_COLUMNS}{extra} FROM orders WHERE id IN ({list}){filter}"), chunk).fetch_all(&mut *conn).await? {
                let digest = match copy {
                    Copy::Hot => None,
                    Copy::Settling => Some(row.try_get("digest")?),
                };
                let order = order_row(&row)?;
                found.insert(OrderId::from_stored(order.id), (Self { order, lines: Vec::new(), shipping: None, history: Vec::new() }, digest));
            }
            let lines = bind_ids(&format!("SELECT order_id, line_no, product_id, seller_id, quantity, unit_price_cents, snapshot_digest FROM order_lines WHERE order_id IN ({list}) ORDER BY order_id, line_no"), chunk)
                .fetch_all(&mut *conn)
                .await?;
            for r in &lines {
                if let Some(order) = owner(&mut found, r)? {
                    order.lines.push(LineRow {
                        line_no: r.try_get(1)?,
                        product_id: r.try_get(2)?,
                        seller_id: r.try_get(3)?,
                        quantity: r.try_get(4)?,
                        unit_price_cents: r.try_get(5)?,
                        snapshot_digest: r.try_get(6)?,
                    });
                }
            }
            let records = bind_ids(&format!("SELECT order_id, carrier, tracking_number, version, updated_at_ms, updated_by FROM shipping_records WHERE order_id IN ({list})"), chunk)
                .fetch_all(&mut *conn)
                .await?;
            for r in &records {
                if let Some(order) = owner(&mut found, r)? {
                    order.shipping = Some(ShippingRow { carrier: r.try_get(1)?, tracking_number: r.try_get(2)?, version: r.try_get(3)?, updated_at_ms: r.try_get(4)?, updated_by: r.try_get(5)? });
                }
            }
            let history = bind_ids(&format!("SELECT order_id, version, carrier, tracking_number, changed_at_ms, changed_by FROM shipping_history WHERE order_id IN ({list}) ORDER BY order_id, version"), chunk)
                .fetch_all(&mut *conn)
                .await?;
            for r in &history {
                if let Some(order) = owner(&mut found, r)? {
                    order.history.push(HistoryRow { version: r.try_get(1)?, carrier: r.try_get(2)?, tracking_number: r.try_get(3)?, changed_at_ms: r.try_get(4)?, changed_by: r.try_get(5)? });
                }
            }
        }
        Ok(found)
    }

    /// Writes this order into the archive, replacing an earlier copy's order row
    /// (the caller has deleted its lines, shipping record and history).
    async fn write_in(&self, tx: &mut Transaction<'static, Any>, archived_at_ms: i64) -> ShopResult<()> {
        let o = &self.order;
        sqlx::query(&format!(
            "INSERT INTO orders ({ORDER_COLUMNS}, digest, archived_at_ms, settling) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1) \
             ON CONFLICT (id) DO UPDATE SET buyer_id = excluded.buyer_id, seller_id = excluded.seller_id, status = excluded.status, \
             total_cents = excluded.total_cents, shipping_address = excluded.shipping_address, hold_expires_at_ms = excluded.hold_expires_at_ms, \
             created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms, version = excluded.version, digest = excluded.digest, \
             archived_at_ms = excluded.archived_at_ms, settling = 1"
        ))
        .bind(o.id)
        .bind(o.buyer_id)
        .bind(o.seller_id)
        .bind(&o.status)
        .bind(o.total_cents)
        .bind(&o.shipping_address)
        .bind(o.hold_expires_at_ms)
        .bind(o.created_at_ms)
        .bind(o.updated_at_ms)
        .bind(o.version)
        .bind(self.digest())
        .bind(archived_at_ms)
        .execute(&mut **tx)
        .await?;
        for l in &self.lines {
            sqlx::query(
                "INSERT INTO order_lines (order_id, line_no, product_id, seller_id, quantity, unit_price_cents, snapshot_digest) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(o.id)
            .bind(l.line_no)
            .bind(l.product_id)
            .bind(l.seller_id)
            .bind(l.quantity)
            .bind(l.unit_price_cents)
            .bind(&l.snapshot_digest)
            .execute(&mut **tx)
            .await?;
        }
        if let Some(s) = &self.shipping {
            sqlx::query("INSERT INTO shipping_records (order_id, carrier, tracking_number, version, updated_at_ms, updated_by) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(o.id)
                .bind(&s.carrier)
                .bind(&s.tracking_number)
                .bind(s.version)
                .bind(s.updated_at_ms)
                .bind(s.updated_by)
                .execute(&mut **tx)
                .await?;
        }
        for h in &self.history {
            sqlx::query("INSERT INTO shipping_history (order_id, version, carrier, tracking_number, changed_at_ms, changed_by) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(o.id)
                .bind(h.version)
                .bind(&h.carrier)
                .bind(&h.tracking_number)
                .bind(h.changed_at_ms)
                .bind(h.changed_by)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// The order a line, record or history row belongs to, among those read.
fn owner<'a>(found: &'a mut HashMap<OrderId, (StoredOrder, Option<String>)>, row: &AnyRow) -> ShopResult<Option<&'a mut StoredOrder>> {
    Ok(found.get_mut(&OrderId::from_stored(row.try_get("order_id")?)).map(|(order, _)| order))
}

fn order_row(row: &AnyRow) -> ShopResult<OrderRow> {
    Ok(OrderRow {
        id: row.try_get("id")?,
        buyer_id: row.try_get("buyer_id")?,
        seller_id: row.try_get("seller_id")?,
        status: row.try_get("status")?,
        total_cents: row.try_get("total_cents")?,
        shipping_address: row.try_get("shipping_address")?,
        hold_expires_at_ms: row.try_get("hold_expires_at_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        version: row.try_get("version")?,
    })
}
