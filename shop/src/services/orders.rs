//! Placing orders and reading them (DESIGN.md, failure modes 1, 4 and 9).
//!
//! Placing an order spans two databases: stock lives in `main`, the order on the
//! buyer's shard. It is two local transactions, each idempotent, in this order:
//!
//! 1. `main`: take each line's stock ([`stock::take_in`]) and enqueue the
//!    products' snapshots. A retry or a concurrent submit of the same order takes
//!    nothing twice; any line short of stock rolls the whole transaction back.
//! 2. the shard: consume the checkout token and insert the order under its
//!    pre-allocated id, in one transaction ([`OrderInserts`], shared with the
//!    shard's other placings of the moment). Whoever loses the race to consume
//!    replays the order the winner created.
//!
//! A crash between 1 and 2 leaves stock taken for an order that does not exist;
//! the hold-recovery worker ([`crate::services::stock::Stock`]) releases such
//! takes once their checkout has expired.

use crate::accounts::User;
use crate::catalog::{Page, PageLimit, Product};
use crate::clock::{now_ms, rfc3339};
use crate::db::{Db, Read};
use crate::domain::OrderId;
use crate::error::{ShopError, ShopResult};
use crate::orders::{LineRequest, Order, OrderLine, OrderStatus, SellerOrder, ShippingAddress, WaybillChange};
use crate::secrets::CheckoutToken;
use crate::services::carts::{CartOwner, Carts};
use crate::services::checkout::{Checkouts, normalised, total_of};
use crate::services::order_rows::{self, read_seller_order, record_change, status_of};
use crate::services::archive::Archive;
use crate::services::shards::Shards;
use crate::services::snapshots::{self, SnapshotJob};
use crate::services::stock;
use crate::services::order_inserts::{NewOrder, OrderInserts};
use crate::services::group_commit::{Batched, GroupCommit};
use crate::services::paid_marks::PaidMarks;
use crate::services::stock_batch::{StockBatcher, Take};

/// A buyer's submit of the checkout page, already parsed.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub order_id: OrderId,
    pub checkout_token: CheckoutToken,
    /// The lines the client believes it is buying: must equal the checkout's.
    /// `None` (the checkout page) means "the checkout's lines".
    pub lines: Option<Vec<LineRequest>>,
    pub shipping_address: ShippingAddress,
    /// The total the buyer was shown: if the order would cost another, nothing is
    /// ordered and the buyer is told the new total. The checkout page always
    /// sends it; API callers may.
    pub expected_total_cents: Option<i64>,
}

/// The limits on unpaid orders (DESIGN.md, failure mode 4): stock taken for an
/// order is held at most `payment_window_ms`, and a buyer holds at most
/// `max_unpaid` such orders at once.
#[derive(Debug, Clone, Copy)]
pub struct UnpaidLimits {
    pub payment_window_ms: i64,
    pub max_unpaid: i64,
}

/// A placed order, and whether this call created it or found it already placed.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order: Order,
    pub replayed: bool,
}

#[derive(Clone, Debug)]
pub struct Orders {
    main: Db,
    shards: Shards,
    checkouts: Checkouts,
    carts: Carts,
    limits: UnpaidLimits,
    archive: Archive,
    batcher: StockBatcher,
    inserts: OrderInserts,
    paid_marks: PaidMarks,
    order_reads: GroupCommit<OrderReads>,
}

impl Orders {
    pub fn new(main: Db, shards: Shards, archive: Archive, checkouts: Checkouts, carts: Carts, limits: UnpaidLimits) -> Self {
        let batcher = StockBatcher::new(main.clone());
        let inserts = OrderInserts::new(shards.clone(), limits.max_unpaid);
        let paid_marks = PaidMarks::new(shards.clone());
        let order_reads = GroupCommit::new(OrderReads { shards: shards.clone() });
        Self { main, shards, checkouts, carts, limits, archive, batcher, inserts, paid_marks, order_reads }
    }

    /// Places the order a checkout opened. Submitting again — a double click, a
    /// reload, a retry — returns the same order with `replayed` set.
    pub async fn place(&self, buyer: &User, request: PlaceOrder) -> ShopResult<Placed> {
        let order_id = request.order_id;
        if order_id.suffix() != buyer.id.shard_suffix() {
            return Err(ShopError::InvalidCheckoutToken);
        }
        // One read decides the common case: an unused, unexpired token of this
        // buyer is a first submit. Anything else may be a replay of an order
        // already placed (its token used, expired or cleaned up): look for it.
        let (lines, unpaid) = match self.checkouts.valid_lines(buyer, order_id, &request.checkout_token).await {
            Ok(found) => found,
            Err(ShopError::InvalidCheckoutToken) => {
                let order = self.load(order_id).await?.ok_or(ShopError::InvalidCheckoutToken)?;
                return replay(order, buyer);
            }
            Err(other) => return Err(other),
        };
        if let Some(claimed) = request.lines
            && normalised(claimed)? != lines
        {
            return Err(ShopError::InvalidCheckoutToken);
        }
        let products = self.checkouts.products_of(&lines).await?;
        let total_cents = total_of(&products, &lines);
        if request.expected_total_cents.is_some_and(|expected| expected != total_cents) {
            return Err(ShopError::PriceChanged { total_cents });
        }
        // A fast refusal before any stock moves; the shard transaction decides.
        if unpaid >= self.limits.max_unpaid {
            return Err(ShopError::TooManyUnpaidOrders { max: self.limits.max_unpaid });
        }
        let deadline_ms = now_ms() + self.limits.payment_window_ms;
        self.take_stock(order_id, &products, &lines, deadline_ms).await?;
        let draft = Draft { buyer, order_id, products: &products, lines: &lines, address: &request.shipping_address, deadline_ms };
        match self.insert_order(draft, &request.checkout_token).await {
            Ok(Some(order)) => {
                tracing::info!(order_id = %order_id, buyer_id = %buyer.id, total_cents = order.total_cents, "order placed");
                self.take_out_of_cart(buyer, &order).await;
                Ok(Placed { order, replayed: false })
            }
            Ok(None) => {
                let order = self.load(order_id).await?.ok_or(ShopError::InvalidCheckoutToken)?;
                replay(order, buyer)
            }
            Err(refused @ ShopError::TooManyUnpaidOrders { .. }) => {
                // Another order of this buyer took the last slot meanwhile: the
                // order was not written, so the stock it took goes back at once.
                stock::release(&self.main, order_id).await?;
                Err(refused)
            }
            Err(other) => Err(other),
        }
    }

    /// Ordered lines leave the buyer's cart, whichever door placed the order. The
    /// order stands whatever happens here.
    async fn take_out_of_cart(&self, buyer: &User, order: &Order) {
        let ordered: Vec<_> = order.lines.iter().map(|l| l.product_id).collect();
        if let Err(error) = self.carts.remove_products(&CartOwner::User(buyer.clone()), &ordered).await {
            tracing::warn!(order_id = %order.id, %error, "ordered lines stayed in the cart");
        }
    }

    /// Step 1: take every line's stock, or none, and enqueue the snapshots (the
    /// job carries the content as it is now; enqueuing here costs no extra round
    /// trip, and a job's failure never reaches the order).
    /// A one-line order (the flash sale's) joins the product's batch.
    async fn take_stock(&self, order_id: OrderId, products: &[Product], lines: &[LineRequest], deadline_ms: i64) -> ShopResult<()> {
        if let ([product], [line]) = (products, lines) {
            return self.batcher.take(Take { order_id, product: product.clone(), line: *line, deadline_ms }).await;
        }
        let mut tx = self.main.begin_write().await?;
        snapshots::enqueue_in(&mut tx, products).await?;
        stock::take_in(&mut tx, order_id, products, lines, deadline_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Step 2: consume the token and insert the order, in one shard transaction
    /// (shared with the shard's other placings of the moment).
    /// Returns the order as written, or `None` if another submit consumed the token first.
    async fn insert_order(&self, draft: Draft<'_>, token: &CheckoutToken) -> ShopResult<Option<Order>> {
        let Draft { buyer, order_id, products, lines, address, deadline_ms } = draft;
        let now = now_ms();
        let order = Order {
            id: order_id,
            buyer_id: buyer.id,
            status: OrderStatus::PendingPayment,
            lines: products
                .iter()
                .zip(lines)
                .map(|(product, line)| OrderLine {
                    product_id: product.id,
                    seller_id: product.seller_id,
                    quantity: line.quantity.get(),
                    unit_price_cents: product.price.cents(),
                    snapshot_digest: SnapshotJob::of(product).digest,
                })
                .collect(),
            total_cents: total_of(products, lines),
            created_at: rfc3339(now),
            hold_expires_at: Some(rfc3339(deadline_ms)),
            shipping_address: address.clone(),
            shipping: None,
            archived: false,
        };
        // The summary of a new order is what is about to be written: version 1, changed now.
        let summary = SellerOrder { order, seller_id: products[0].seller_id, version: 1, updated_at: rfc3339(now) };
        self.inserts.place(NewOrder { summary, token: token.clone(), hold_expires_at_ms: deadline_ms, created_at_ms: now }).await
    }

    /// The caller's order, to show it. Someone else's order is "not found": its
    /// existence is not revealed.
    pub async fn get(&self, buyer: &User, id: OrderId) -> ShopResult<Order> {
        self.get_for(buyer, id, Read::Display).await
    }

    async fn get_for(&self, buyer: &User, id: OrderId, purpose: Read) -> ShopResult<Order> {
        match self.load_versioned_for(id, purpose).await? {
            Some(found) if found.order.buyer_id == buyer.id => Ok(found.order),
            _ => Err(ShopError::NotFound("order")),
        }
    }

    /// The caller's order as it is now, to change it: an archived order is final
    /// and refused.
    pub async fn get_to_change(&self, buyer: &User, id: OrderId) -> ShopResult<Order> {
        let order = self.get_for(buyer, id, Read::Deciding).await?;
        if order.archived {
            return Err(ShopError::Archived);
        }
        Ok(order)
    }

    /// The caller's recent (hot) orders, newest first, from their one shard.
    pub async fn list_mine(&self, buyer: &User, status: Option<OrderStatus>, after: Option<OrderId>, limit: PageLimit) -> ShopResult<Page<Order>> {
        let shard = self.shards.of_buyer(buyer.id);
        let ids = order_rows::buyer_order_ids(shard, buyer.id, status, after, i64::from(limit.get())).await?;
        let more = ids.len() > limit.get() as usize;
        let mut items = Vec::with_capacity(ids.len().min(limit.get() as usize));
        for id in ids.into_iter().take(limit.get() as usize) {
            items.extend(self.load_versioned_for(id, Read::Display).await?.map(|found| found.order));
        }
        let next_cursor = if more { items.last().map(|o: &Order| o.id.to_string()) } else { None };
        Ok(Page { items, next_cursor })
    }

    /// The caller's archived orders, newest first ("order history").
    pub async fn history(&self, buyer: &User, after: Option<OrderId>, limit: PageLimit) -> ShopResult<Page<Order>> {
        self.archive.buyer_page(buyer.id, after, limit).await
    }

    /// Every accepted waybill change of the order, oldest first, wherever it is.
    pub async fn waybill_history(&self, order: &SellerOrder) -> ShopResult<Vec<WaybillChange>> {
        let id = order.order.id;
        if order.order.archived {
            return self.archive.waybill_history(id).await;
        }
        self.shards
            .of_order(id)
            .display_read(|pool| async move {
                let mut conn = pool.acquire().await?;
                order_rows::read_waybill_history(&mut conn, id).await
            })
            .await
    }

    /// Cancels an unpaid order and gives its stock back at once. `order` is the
    /// buyer's own as [`Orders::get_to_change`] read it.
    pub async fn cancel(&self, buyer: &User, order: &Order) -> ShopResult<Order> {
        let id = order.id;
        match self.move_unpaid(order, OrderStatus::Cancelled).await? {
            Ok(cancelled) => {
                stock::release(&self.main, id).await?;
                Ok(cancelled)
            }
            // Cancelled before (a retry, or its hold lapsed): make sure the stock is back.
            Err(OrderStatus::Cancelled) => {
                stock::release(&self.main, id).await?;
                self.get(buyer, id).await
            }
            Err(status) => Err(ShopError::order_is(status)),
        }
    }

    /// Moves an order from `from` to `to` with one conditional UPDATE on its shard
    /// (so two racing transitions cannot both win), and returns its status after:
    /// `to` if this call or an earlier one moved it, else whatever it is now.
    /// An unpaid order moves with [`Orders::move_unpaid`], which also gives back
    /// the buyer's unpaid slot.
    pub(crate) async fn transition(&self, id: OrderId, from: OrderStatus, to: OrderStatus) -> ShopResult<OrderStatus> {
        debug_assert_ne!(from, OrderStatus::PendingPayment, "an unpaid order moves with move_unpaid");
        let shard = self.shards.of_order(id);
        let mut tx = shard.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE orders SET status = $1, hold_expires_at_ms = NULL, updated_at_ms = $2, version = version + 1 WHERE id = $3 AND status = $4",
        )
        .bind(to.as_str())
        .bind(now_ms())
        .bind(id.get())
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 1 {
            record_change(&mut tx, id).await?;
            tx.commit().await?;
            return Ok(to);
        }
        drop(tx);
        self.status_now(id).await
    }

    /// Moves an unpaid order, as the caller read it, to `to`: as
    /// [`Orders::transition`] from `pending_payment`, but the outbox row is built
    /// from `order` instead of read back (an unpaid order has no waybill, and its
    /// lines and address never change; the version comes from the UPDATE). The
    /// order as written, or the status it is in now.
    /// A move to `paid` shares its shard transaction with the shard's other
    /// payments of the moment ([`PaidMarks`]).
    pub(crate) async fn move_unpaid(&self, order: &Order, to: OrderStatus) -> ShopResult<Result<Order, OrderStatus>> {
        let id = order.id;
        if to == OrderStatus::Paid {
            return match self.paid_marks.mark(order).await? {
                Some(paid) => Ok(Ok(paid)),
                None => Ok(Err(self.status_now(id).await?)),
            };
        }
        let now = now_ms();
        let mut tx = self.shards.of_order(id).begin_write().await?;
        let moved: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE orders SET status = $1, hold_expires_at_ms = NULL, updated_at_ms = $2, version = version + 1 \
             WHERE id = $3 AND status = 'pending_payment' RETURNING version, seller_id",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(id.get())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((version, seller_id)) = moved else {
            drop(tx);
            return Ok(Err(self.status_now(id).await?));
        };
        order_rows::free_unpaid_slot_in(&mut tx, id).await?;
        let written = Order { status: to, hold_expires_at: None, shipping: None, archived: false, ..order.clone() };
        let summary = SellerOrder { order: written, seller_id: crate::domain::UserId::from_stored(seller_id), version, updated_at: rfc3339(now) };
        order_rows::record_summary_in(&mut tx, &summary).await?;
        tx.commit().await?;
        Ok(Ok(summary.order))
    }

    /// The order's status as stored now, for a transition that did not move it.
    async fn status_now(&self, id: OrderId) -> ShopResult<OrderStatus> {
        match status_of(self.shards.of_order(id), id).await? {
            Some(status) => Ok(status),
            // Moved to the archive since the caller read it: final, and refused.
            None if self.archive.load(id).await?.is_some() => Err(ShopError::Archived),
            None => Err(ShopError::NotFound("order")),
        }
    }

    /// The order with this id, wherever its buyer's shard is; `None` if there is none.
    pub(crate) async fn load(&self, id: OrderId) -> ShopResult<Option<Order>> {
        Ok(self.load_versioned(id).await?.map(|versioned| versioned.order))
    }

    /// As [`Orders::load`], with the seller, version and time of the last change.
    /// The shard is asked first: the archive's copy of an order is the order only
    /// once the shard no longer holds it (DESIGN.md, failure mode 8).
    pub(crate) async fn load_versioned(&self, id: OrderId) -> ShopResult<Option<SellerOrder>> {
        self.load_versioned_for(id, Read::Deciding).await
    }

    /// As [`Orders::load_versioned`], as a display read or a deciding one. A
    /// display read that finds the order nowhere asks the primaries once more: a
    /// shard's replica and the archive's replay separately, and an order moving
    /// between them must not look missing.
    pub(crate) async fn load_versioned_for(&self, id: OrderId, purpose: Read) -> ShopResult<Option<SellerOrder>> {
        let hot = match purpose {
            Read::Deciding => self.order_reads.submit(self.shards.index_of_order(id), id).await?,
            Read::Display => {
                self.shards
                    .of_order(id)
                    .display_read(|pool| async move {
                        let mut conn = pool.acquire().await?;
                        read_seller_order(&mut conn, id).await
                    })
                    .await?
            }
        };
        if hot.is_some() {
            return Ok(hot);
        }
        if let Some(cold) = self.archive.load_for(id, purpose).await? {
            return Ok(Some(cold));
        }
        match purpose {
            Read::Display => Box::pin(self.load_versioned_for(id, Read::Deciding)).await,
            Read::Deciding => Ok(None),
        }
    }

    /// Stock-take batches of more than one order committed by this instance, and
    /// the takes they carried (issue 14): for tests and the benchmark.
    pub fn shared_stock_batches(&self) -> (u64, u64) {
        self.batcher.shared_batches()
    }

    /// Shard transactions that placed more than one order, and the orders they
    /// carried (issue 14): for tests and the benchmark.
    pub fn shared_order_batches(&self) -> (u64, u64) {
        self.inserts.shared_batches()
    }

    /// Shard transactions that marked more than one order paid, and the orders in them.
    pub fn shared_paid_batches(&self) -> (u64, u64) {
        self.paid_marks.shared_batches()
    }

    /// Where orders live: for tools and tests that read a shard directly.
    pub fn shards(&self) -> &Shards {
        &self.shards
    }
}

/// An order about to be written: who, which id, what, where to.
struct Draft<'a> {
    buyer: &'a User,
    order_id: OrderId,
    products: &'a [Product],
    lines: &'a [LineRequest],
    address: &'a ShippingAddress,
    /// The payment deadline: unpaid by then, the order is cancelled.
    deadline_ms: i64,
}

fn replay(order: Order, buyer: &User) -> ShopResult<Placed> {
    if order.buyer_id != buyer.id {
        return Err(ShopError::InvalidCheckoutToken);
    }
    Ok(Placed { order, replayed: true })
}

/// Deciding reads of one shard's orders, one pair of statements for all who wait
/// (issue 14: every payment reads its order first).
#[derive(Debug)]
struct OrderReads {
    shards: Shards,
}

impl Batched for OrderReads {
    /// The shard's position in [`Shards::all`].
    type Key = usize;
    type Item = OrderId;
    type Output = Option<SellerOrder>;
    const MAX_BATCH: usize = 256;
    const METRIC: &'static str = "ninefold_order_batch_reads";

    async fn together(&self, shard: &usize, ids: &[&OrderId]) -> ShopResult<Vec<ShopResult<Option<SellerOrder>>>> {
        let ids: Vec<OrderId> = ids.iter().map(|id| **id).collect();
        let mut conn = self.shards.all()[*shard].pool().acquire().await?;
        let found = order_rows::read_seller_orders(&mut conn, &ids).await?;
        Ok(ids.iter().map(|id| Ok(found.iter().find(|o| o.order.id == *id).cloned())).collect())
    }

    async fn alone(&self, shard: &usize, id: &OrderId) -> ShopResult<Option<SellerOrder>> {
        read_seller_order(&mut *self.shards.all()[*shard].pool().acquire().await?, *id).await
    }
}
