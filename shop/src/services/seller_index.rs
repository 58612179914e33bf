//! The seller index (DESIGN.md, failure mode 9): a seller-keyed copy of every
//! order's summary in `main`, so a seller's order list is one indexed read
//! instead of a scan of every shard.
//!
//! The path from a shard to the index:
//! 1. Every write to an order bumps `orders.version` and, in the same shard
//!    transaction, appends the order's summary at that version to `order_outbox`
//!    ([`order_rows::record_change`]). An order write cannot commit without its event.
//! 2. The relay ([`SellerIndex::relay`]) reads a shard's outbox and applies each
//!    order's newest event to the index in `main`, a poll's events in one
//!    upsert, and only then deletes the rows from the shard. A crash between the
//!    two sends them again: delivery is at least once.
//! 3. The upsert keeps a summary only if its version is newer than the one held,
//!    so a duplicate or a late, older event changes nothing. An event the relay
//!    cannot apply (a payload that does not parse, a transaction that failed)
//!    goes to the job queue under the key `seller_index:<order>:<version>`, and
//!    the runner's handler ([`apply_summaries`]) retries it with backoff. Until
//!    issue 14's twelfth pass every event took that path; applying at the relay
//!    spares each order the job row's insert, claim, completion and clean-up,
//!    and the runner's poll.
//!
//! [`SellerIndex::rebuild`] compares the index with the shards, order by order,
//! reports every difference and repairs it.

use crate::accounts::User;
use crate::catalog::{Page, PageLimit};
use crate::clock::now_ms;
use crate::db::dialect::{JsonColumn::{Int, Text}, backend_of, json_key_in, json_rows};
use crate::db::{Backend, Db, JsonRows};
use serde_json::json;
use crate::error::{ShopResult, worker_failed};
use crate::faults::crash_point;
use crate::orders::{OrderId, OrderStatus, SellerOrder};
use crate::services::catalog::require_seller;
use crate::services::jobs::{JobKind, Jobs, NewJob};
use crate::services::order_rows;
use crate::services::archive::Archive;
use crate::services::shards::Shards;
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

/// The job kind the relay enqueues.
pub const JOB_KIND: &str = "seller_index";

/// The job handler: keeps each summary that is newer than the copy held, in
/// one statement for the whole batch. Payloads that do not parse fail alone.
async fn apply_summaries(main: &Db, payloads: &[String]) -> Vec<ShopResult<()>> {
    let parsed: Vec<ShopResult<SellerOrder>> =
        payloads.iter().map(|payload| serde_json::from_str(payload).map_err(|e| anyhow::Error::from(e).into())).collect();
    let summaries: Vec<&SellerOrder> = parsed.iter().filter_map(|summary| summary.as_ref().ok()).collect();
    let written = async { upsert_all(&mut *main.pool().acquire().await?, &summaries, Overwrite::OnlyNewer).await };
    match written.await {
        Ok(_) => {
            crash_point("seller_index.after_apply");
            parsed.into_iter().map(|summary| summary.map(drop)).collect()
        }
        Err(error) => {
            let error = error.to_string();
            parsed.into_iter().map(|summary| summary.and_then(|_| Err(anyhow::anyhow!("applying the batch: {error}").into()))).collect()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overwrite {
    /// Events: an equal version is a duplicate delivery.
    OnlyNewer,
    /// Rebuild: an equal version with different content is a damaged copy.
    NewerOrEqual,
}

/// Writes each order's newest summary among `summaries`, where `overwrite`
/// allows; how many rows it changed. Older summaries of an order in the same
/// batch are superseded: one statement may not change a row twice. One
/// statement, its rows in one parameter, so its text is the same for any batch.
async fn upsert_all(conn: &mut sqlx::AnyConnection, summaries: &[&SellerOrder], overwrite: Overwrite) -> ShopResult<u64> {
    let mut newest: BTreeMap<i64, &SellerOrder> = BTreeMap::new();
    for summary in summaries {
        let entry = newest.entry(summary.order.id.get()).or_insert(summary);
        if summary.version > entry.version {
            *entry = summary;
        }
    }
    if newest.is_empty() {
        return Ok(0);
    }
    let mut rows = JsonRows::default();
    for summary in newest.values() {
        let stored = serde_json::to_string(summary).map_err(anyhow::Error::from)?;
        rows.push(json!([summary.order.id.get(), summary.seller_id.get(), summary.order.status.as_str(), summary.version, stored]));
    }
    let sql = upsert_sql(backend_of(conn), overwrite);
    Ok(sqlx::query(&sql).bind(now_ms()).bind(rows.into_param()).execute(&mut *conn).await?.rows_affected())
}

/// Writes one summary where `overwrite` allows; whether it changed the index.
async fn upsert(conn: &mut sqlx::AnyConnection, summary: &SellerOrder, overwrite: Overwrite) -> ShopResult<bool> {
    Ok(upsert_all(conn, &[summary], overwrite).await? == 1)
}

/// The upsert: `$1` is the time, `$2` the rows.
fn upsert_sql(backend: Backend, overwrite: Overwrite) -> String {
    let guard = match overwrite {
        Overwrite::OnlyNewer => "seller_orders.version < excluded.version",
        Overwrite::NewerOrEqual => "seller_orders.version <= excluded.version",
    };
    let source = json_rows(backend, 2, &[Int("order_id"), Int("seller_id"), Text("status"), Int("version"), Text("summary")]);
    format!(
        "INSERT INTO seller_orders (order_id, seller_id, status, version, summary, indexed_at_ms) \
         SELECT order_id, seller_id, status, version, summary, $1 FROM {source} WHERE true \
         ON CONFLICT (order_id) DO UPDATE SET seller_id = excluded.seller_id, status = excluded.status, version = excluded.version, \
         summary = excluded.summary, indexed_at_ms = excluded.indexed_at_ms WHERE {guard}"
    )
}

/// Records orders the archive job has just moved: each summary (marked archived,
/// at the version it had on its shard) replaces the index's copy unless that copy
/// is newer. A later delivery of the same version changes nothing, so the mark stays.
pub(crate) async fn record_archived(main: &Db, summaries: &[SellerOrder]) -> ShopResult<()> {
    let mut tx = main.begin_write().await?;
    upsert_all(&mut tx, &summaries.iter().collect::<Vec<_>>(), Overwrite::NewerOrEqual).await?;
    tx.commit().await?;
    Ok(())
}

/// How far the index is behind the shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Lag {
    /// Order changes not yet in the index: in a shard's outbox or queued as a job.
    pub pending_events: i64,
    /// The age of the oldest of them; 0 when none is pending.
    pub oldest_pending_ms: i64,
    /// Events whose job gave up (a person must look): they never reach the index.
    pub failed_events: i64,
}

/// What a rebuild found: one entry per order whose copy disagreed with its shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    pub orders_checked: u64,
    pub index_rows_checked: u64,
    pub differences: Vec<Difference>,
    /// How many differences were repaired (0 for a dry run).
    pub repaired: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub order_id: OrderId,
    pub kind: DifferenceKind,
    pub shard_version: Option<i64>,
    pub index_version: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// On a shard, not in the index.
    Missing,
    /// The index holds an older version.
    Stale,
    /// The index holds a newer version than the shard (should never happen; not repaired).
    Ahead,
    /// Same version, different content: a damaged copy.
    Different,
    /// In the index, on no shard.
    Extra,
}

#[derive(Clone, Debug)]
pub struct SellerIndex {
    main: Db,
    shards: Shards,
    archive: Archive,
}

impl SellerIndex {
    const REBUILD_PAGE: i64 = 500;
    /// Status counts above this show as "1000+".
    pub const COUNT_CAP: i64 = 1000;

    pub fn new(main: Db, shards: Shards, archive: Archive) -> Self {
        Self { main, shards, archive }
    }

    /// The queue's handler for index events: keep the summary if it is newer.
    pub fn job_kind(&self) -> JobKind {
        let main = self.main.clone();
        // A poll's events are one upsert: a short lease, so a crashed worker
        // delays the index by seconds, not a minute.
        JobKind::batched(JOB_KIND, 5_000, move |payloads| {
            let main = main.clone();
            async move { apply_summaries(&main, &payloads).await }
        })
    }

    /// Moves up to `batch` outbox rows per shard into the job queue. Only each
    /// order's newest event in the batch is enqueued: the handler would ignore the
    /// older ones anyway. Returns how many outbox rows it consumed. A shard that
    /// fails is logged and counted, and the others are relayed all the same.
    pub async fn relay(&self, batch: i64) -> ShopResult<u64> {
        let mut consumed = 0;
        let mut failures = 0;
        for shard in self.shards.all() {
            match self.relay_shard(shard, batch).await {
                Ok(rows) => consumed += rows,
                Err(error) => {
                    failures += 1;
                    worker_failed("seller-index-relay", shard.name(), &error);
                }
            }
        }
        if failures == self.shards.all().len() && failures > 0 {
            return Err(anyhow::anyhow!("the relay failed on every shard").into());
        }
        Ok(consumed)
    }

    async fn relay_shard(&self, shard: &Db, batch: i64) -> ShopResult<u64> {
        let rows = sqlx::query("SELECT order_id, version, payload, created_at_ms FROM order_outbox ORDER BY created_at_ms LIMIT $1")
            .bind(batch)
            .fetch_all(shard.pool())
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut newest: BTreeMap<i64, NewestEvent> = BTreeMap::new();
        for row in &rows {
            let (order_id, version, created): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(3)?);
            let entry = newest.entry(order_id).or_insert_with(|| NewestEvent { version, payload: String::new(), oldest_ms: created });
            if version >= entry.version {
                entry.version = version;
                entry.payload = row.try_get(2)?;
            }
            entry.oldest_ms = entry.oldest_ms.min(created);
        }
        self.apply(&newest).await?;
        crash_point("seller_index.before_clearing_outbox");
        // Exactly the rows read: an event committed since is newer than them
        // (an order's writes take turns on its row), and goes with the next poll.
        let mut read = JsonRows::default();
        for row in &rows {
            read.push(json!([row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?]));
        }
        let sql = format!(
            "DELETE FROM order_outbox WHERE {} AND (order_id, version) IN (SELECT order_id, version FROM {})",
            json_key_in(shard.backend(), Int("order_id"), 1, 0),
            json_rows(shard.backend(), 1, &[Int("order_id"), Int("version")])
        );
        sqlx::query(&sql).bind(read.into_param()).execute(shard.pool()).await?;
        Ok(rows.len() as u64)
    }

    /// Applies the events to the index, one upsert for all, in one `main`
    /// transaction. What that cannot carry goes to the job queue, whose runner
    /// retries it with backoff and, should it keep failing, shows it in
    /// [`SellerIndex::lag`] as failed: a payload that does not parse, or every
    /// event of a batch whose transaction failed.
    async fn apply(&self, newest: &BTreeMap<i64, NewestEvent>) -> ShopResult<()> {
        if let Err(error) = self.apply_or_queue_unparsed(newest).await {
            tracing::warn!(error = %error, events = newest.len(), "seller index: applying events at the relay failed; queued for the job runner");
            let jobs: Vec<NewJob> = newest.iter().map(|(&order_id, event)| event.job(order_id)).collect();
            let mut tx = self.main.begin_write().await?;
            Jobs::enqueue_in(&mut tx, &jobs).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Upserts the summaries that parse and queues the payloads that do not, in
    /// one transaction.
    async fn apply_or_queue_unparsed(&self, newest: &BTreeMap<i64, NewestEvent>) -> ShopResult<()> {
        let (mut summaries, mut unparsed) = (Vec::with_capacity(newest.len()), Vec::new());
        for (&order_id, event) in newest {
            match serde_json::from_str::<SellerOrder>(&event.payload) {
                Ok(summary) => summaries.push(summary),
                Err(_) => unparsed.push(event.job(order_id)),
            }
        }
        let mut tx = self.main.begin_write().await?;
        Jobs::enqueue_in(&mut tx, &unparsed).await?;
        upsert_all(&mut tx, &summaries.iter().collect::<Vec<_>>(), Overwrite::OnlyNewer).await?;
        crash_point("seller_index.after_apply"); // inside the transaction: the relay sends these again
        tx.commit().await?;
        Ok(())
    }

    /// The seller's orders, newest first, from the index alone.
    pub async fn list(&self, seller: &User, status: Option<OrderStatus>, after: Option<OrderId>, limit: PageLimit) -> ShopResult<Page<SellerOrder>> {
        require_seller(seller)?;
        let by_status = if status.is_some() { "AND status = $4" } else { "" };
        let sql = format!("SELECT summary FROM seller_orders WHERE seller_id = $1 AND order_id < $2 {by_status} ORDER BY order_id DESC LIMIT $3");
        let rows = self
            .main
            .display_read(|pool| {
                let mut query = sqlx::query_scalar::<_, String>(&sql).bind(seller.id.get()).bind(after.map_or(i64::MAX, OrderId::get)).bind(i64::from(limit.get()) + 1);
                if let Some(status) = status {
                    query = query.bind(status.as_str());
                }
                async move { Ok(query.fetch_all(&pool).await?) }
            })
            .await?;
        let mut items = rows.iter().map(|json| parse_summary(json)).collect::<ShopResult<Vec<_>>>()?;
        let next_cursor = if items.len() > limit.get() as usize {
            items.truncate(limit.get() as usize);
            items.last().map(|o| o.order.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// How many of the seller's orders are in each status (the dashboard's filter
    /// tabs), each counted only up to [`SellerIndex::COUNT_CAP`] + 1: a page view
    /// must not cost a count of a big seller's whole history.
    pub async fn counts(&self, seller: &User) -> ShopResult<Vec<(OrderStatus, i64)>> {
        require_seller(seller)?;
        // One small query per status: each stops at the cap, whatever the seller's size.
        let mut counts = Vec::with_capacity(OrderStatus::ALL.len());
        for status in OrderStatus::ALL {
            let n: i64 = self
                .main
                .display_read(|pool| {
                    let query = sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT 1 AS one FROM seller_orders WHERE seller_id = $1 AND status = $2 LIMIT $3) AS capped")
                        .bind(seller.id.get())
                        .bind(status.as_str())
                        .bind(Self::COUNT_CAP + 1);
                    async move { Ok(query.fetch_one(&pool).await?) }
                })
                .await?;
            counts.push((status, n));
        }
        Ok(counts)
    }

    /// The index's copy of one order, if it holds one.
    pub async fn indexed(&self, id: OrderId) -> ShopResult<Option<SellerOrder>> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT summary FROM seller_orders WHERE order_id = $1").bind(id.get()).fetch_optional(self.main.pool()).await?;
        json.as_deref().map(parse_summary).transpose()
    }

    /// The index row as stored, its summary `None` if it does not even parse.
    async fn stored_copy(&self, id: OrderId) -> ShopResult<Option<StoredCopy>> {
        let row = sqlx::query("SELECT version, summary FROM seller_orders WHERE order_id = $1").bind(id.get()).fetch_optional(self.main.pool()).await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(StoredCopy { version: row.try_get(0)?, summary: serde_json::from_str(&row.try_get::<String, _>(1)?).ok() }))
    }

    /// How far the index is behind: events in the shards' outboxes and in the queue.
    pub async fn lag(&self, now: i64) -> ShopResult<Lag> {
        let mut lag = Lag::default();
        let mut oldest = i64::MAX;
        let mut add = |row: &sqlx::any::AnyRow| -> ShopResult<()> {
            lag.pending_events += row.try_get::<i64, _>(0)?;
            if let Some(at) = row.try_get::<Option<i64>, _>(1)? {
                oldest = oldest.min(at);
            }
            Ok(())
        };
        for shard in self.shards.all() {
            add(&sqlx::query("SELECT COUNT(*), MIN(created_at_ms) FROM order_outbox").fetch_one(shard.pool()).await?)?;
        }
        add(&sqlx::query("SELECT COUNT(*), MIN(created_at_ms) FROM jobs WHERE state = 'queued' AND kind = $1").bind(JOB_KIND).fetch_one(self.main.pool()).await?)?;
        lag.failed_events =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'failed' AND kind = $1").bind(JOB_KIND).fetch_one(self.main.pool()).await?;
        lag.oldest_pending_ms = if oldest == i64::MAX { 0 } else { (now - oldest).max(0) };
        Ok(lag)
    }

    /// Compares every order on every shard with its copy in the index, and every
    /// index row with the shards. With `repair`, makes the index match (except
    /// an index copy that is *ahead* of its shard, which is only reported).
    /// Safe beside live traffic: a difference is re-read before it is reported,
    /// and a repair never replaces a newer copy.
    pub async fn rebuild(&self, repair: bool) -> ShopResult<RebuildReport> {
        let mut report = RebuildReport::default();
        for shard in self.shards.all() {
            let mut after = 0i64;
            loop {
                let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM orders WHERE id > $1 ORDER BY id LIMIT $2")
                    .bind(after)
                    .bind(Self::REBUILD_PAGE)
                    .fetch_all(shard.pool())
                    .await?;
                let Some(&last) = ids.last() else { break };
                for id in ids {
                    report.orders_checked += 1;
                    self.check_order(OrderId::from_stored(id), repair, &mut report).await?;
                }
                after = last;
            }
        }
        // Archived orders keep their index rows (marked archived): compared with the
        // archive's copy, never reported as extra.
        let mut after = 0i64;
        loop {
            let ids = self.archive.settled_ids_after(after, Self::REBUILD_PAGE).await?;
            let Some(&last) = ids.last() else { break };
            for id in ids {
                report.orders_checked += 1;
                self.check_order(id, repair, &mut report).await?;
            }
            after = last.get();
        }
        let mut after = 0i64;
        loop {
            let ids: Vec<i64> = sqlx::query_scalar("SELECT order_id FROM seller_orders WHERE order_id > $1 ORDER BY order_id LIMIT $2")
                .bind(after)
                .bind(Self::REBUILD_PAGE)
                .fetch_all(self.main.pool())
                .await?;
            let Some(&last) = ids.last() else { break };
            for id in ids {
                report.index_rows_checked += 1;
                self.check_index_row(OrderId::from_stored(id), repair, &mut report).await?;
            }
            after = last;
        }
        Ok(report)
    }

    /// Builds the index from the shards if it is empty while the shards are not:
    /// a database upgraded from before the index existed. Returns what it did.
    pub async fn backfill_if_empty(&self) -> ShopResult<Option<RebuildReport>> {
        let indexed: Option<i64> = sqlx::query_scalar("SELECT 1 FROM seller_orders LIMIT 1").fetch_optional(self.main.pool()).await?;
        if indexed.is_some() {
            return Ok(None);
        }
        for shard in self.shards.all() {
            let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM orders LIMIT 1").fetch_optional(shard.pool()).await?;
            if any.is_some() {
                return Ok(Some(self.rebuild(true).await?));
            }
        }
        Ok(None)
    }

    /// The order as it is now: on its shard, or else in the archive.
    async fn current_copy(&self, id: OrderId) -> ShopResult<Option<SellerOrder>> {
        match order_rows::load(self.shards.of_order(id), id).await? {
            Some(hot) => Ok(Some(hot)),
            None => self.archive.load(id).await,
        }
    }

    async fn check_order(&self, id: OrderId, repair: bool, report: &mut RebuildReport) -> ShopResult<()> {
        let mut found = None;
        // A change may land between reading the shard and reading the index: a
        // difference counts only if it is still there when both are read again.
        for _ in 0..2 {
            let Some(shard_copy) = self.current_copy(id).await? else { return Ok(()) };
            let index_copy = self.stored_copy(id).await?;
            match compare(&shard_copy, index_copy.as_ref()) {
                None => return Ok(()),
                Some(kind) => found = Some((kind, shard_copy, index_copy.map(|c| c.version))),
            }
        }
        let Some((kind, shard_copy, index_version)) = found else { return Ok(()) };
        report.differences.push(Difference { order_id: id, kind, shard_version: Some(shard_copy.version), index_version });
        if repair && kind != DifferenceKind::Ahead && upsert(&mut *self.main.pool().acquire().await?, &shard_copy, Overwrite::NewerOrEqual).await? {
            report.repaired += 1;
        }
        Ok(())
    }

    async fn check_index_row(&self, id: OrderId, repair: bool, report: &mut RebuildReport) -> ShopResult<()> {
        if self.current_copy(id).await?.is_some() {
            return Ok(()); // compared in the shard or archive pass
        }
        let Some(index_copy) = self.stored_copy(id).await? else { return Ok(()) };
        report.differences.push(Difference { order_id: id, kind: DifferenceKind::Extra, shard_version: None, index_version: Some(index_copy.version) });
        if repair {
            sqlx::query("DELETE FROM seller_orders WHERE order_id = $1").bind(id.get()).execute(self.main.pool()).await?;
            report.repaired += 1;
        }
        Ok(())
    }
}

/// One order's newest change in a relay batch, and when its oldest change in the
/// batch was written (the job's age, for the lag).
struct NewestEvent {
    version: i64,
    payload: String,
    oldest_ms: i64,
}

impl NewestEvent {
    /// The event as a job for the runner, keyed so that a second copy is a no-op.
    fn job(&self, order_id: i64) -> NewJob<'_> {
        NewJob { kind: JOB_KIND, key: format!("{JOB_KIND}:{order_id}:{}", self.version), payload: &self.payload, since_ms: self.oldest_ms }
    }
}

struct StoredCopy {
    version: i64,
    summary: Option<SellerOrder>,
}

fn compare(shard_copy: &SellerOrder, index_copy: Option<&StoredCopy>) -> Option<DifferenceKind> {
    let index_copy = match index_copy {
        None => return Some(DifferenceKind::Missing),
        Some(copy) => copy,
    };
    match index_copy.version.cmp(&shard_copy.version) {
        std::cmp::Ordering::Less => Some(DifferenceKind::Stale),
        std::cmp::Ordering::Greater => Some(DifferenceKind::Ahead),
        std::cmp::Ordering::Equal if index_copy.summary.as_ref() != Some(shard_copy) => Some(DifferenceKind::Different),
        std::cmp::Ordering::Equal => None,
    }
}

fn parse_summary(json: &str) -> ShopResult<SellerOrder> {
    Ok(serde_json::from_str(json).map_err(|e| anyhow::anyhow!("indexed order summary is invalid: {e}"))?)
}
