//! Checkout and orders (DESIGN.md failure modes 1, 4 and 9).
//!
//! Placing an order spans two databases: stock lives in `main`, the order on the
//! buyer's shard. It is two local transactions, each idempotent, in this order:
//!
//! 1. `main`: for each line, insert a `stock_takes` row keyed by (order, product)
//!    and, only if that insert happened, move the stock with one conditional
//!    UPDATE. A retry or a concurrent submit of the same order inserts nothing and
//!    moves nothing. Any line short of stock rolls the whole transaction back.
//! 2. the shard: consume the checkout token (a conditional UPDATE from unconsumed)
//!    and insert the order under its pre-allocated id, in one transaction. Whoever
//!    loses the race to consume replays the order the winner created.
//!
//! A crash between 1 and 2 leaves stock taken for an order that does not exist;
//! the hold-expiry worker releases such takes once their checkout has expired.

use crate::accounts::User;
use crate::catalog::{Page, PageLimit, Product};
use crate::clock::{now_ms, rfc3339};
use crate::db::Db;
use crate::domain::{FieldError, InventoryMode, ProductId, UserId};
use crate::error::{ShopError, ShopResult};
use crate::orders::{Checkout, LineRequest, Order, OrderId, OrderLine, OrderStatus, SellerOrder, ShardMap, ShippingAddress, Waybill};
use crate::services::Catalog;
use crate::services::accounts::SessionToken;
use crate::services::jobs::{Jobs, SnapshotJob};
use crate::services::order_ids::OrderIdAllocator;
use crate::services::seller_index::record_change;
use sqlx::Row;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use std::sync::Arc;

/// The most lines one order may hold.
pub const MAX_LINES: usize = 50;

/// A buyer's submit of the checkout page, already parsed.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub order_id: OrderId,
    pub checkout_token: String,
    /// The lines the client believes it is buying: must equal the checkout's.
    /// `None` (the checkout page) means "the checkout's lines".
    pub lines: Option<Vec<LineRequest>>,
    pub shipping_address: ShippingAddress,
}

/// What the checkout page shows.
#[derive(Debug, Clone)]
pub enum CheckoutView {
    Open { checkout: Checkout, products: Vec<Product> },
    /// Already used: the page sends the buyer to this order.
    Placed(OrderId),
    Expired,
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
    shards: Vec<Db>,
    map: ShardMap,
    catalog: Catalog,
    ids: Arc<OrderIdAllocator>,
    /// How long a reservation holds stock before the order is cancelled.
    hold_ttl_ms: i64,
    /// How long a checkout page's token stays usable.
    checkout_ttl_ms: i64,
}

impl Orders {
    pub const CHECKOUT_TTL_MS: i64 = 30 * 60 * 1000;

    pub fn new(main: Db, shards: Vec<Db>, catalog: Catalog, ids: Arc<OrderIdAllocator>, hold_ttl_ms: i64) -> Self {
        let map = ShardMap::even(shards.len());
        Self { main, shards, map, catalog, ids, hold_ttl_ms, checkout_ttl_ms: Self::CHECKOUT_TTL_MS }
    }

    /// Which shard holds `buyer`'s orders.
    pub fn shard_for_buyer(&self, buyer: UserId) -> usize {
        self.map.shard_for_buyer(buyer)
    }

    pub(crate) fn shard_of(&self, order: OrderId) -> &Db {
        &self.shards[self.map.shard_for_order(order)]
    }

    /// Opens a checkout: allocates the order id and a one-time token bound to the
    /// buyer and that id. Nothing is reserved yet.
    pub async fn open_checkout(&self, buyer: &User, lines: Vec<LineRequest>) -> ShopResult<Checkout> {
        let lines = normalised(lines)?;
        let products = self.products_of(&lines).await?;
        let total_cents = total_of(&products, &lines);
        let order_id = self.ids.next(buyer.id).await?;
        let token = SessionToken::generate()?;
        let now = now_ms();
        let expires_at_ms = now + self.checkout_ttl_ms;
        sqlx::query(
            "INSERT INTO checkout_tokens (order_id, token, buyer_id, lines, expires_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(order_id.get())
        .bind(token.expose())
        .bind(buyer.id.get())
        .bind(serde_json::to_string(&lines).map_err(anyhow::Error::from)?)
        .bind(expires_at_ms)
        .bind(now)
        .execute(self.shard_of(order_id).pool())
        .await?;
        Ok(Checkout { order_id, checkout_token: token.expose().to_owned(), expires_at: rfc3339(expires_at_ms), lines, total_cents })
    }

    /// A checkout as its page shows it: the token to embed, the lines priced now,
    /// and, if it was already used, the order it placed.
    pub async fn checkout_view(&self, buyer: &User, order_id: OrderId) -> ShopResult<CheckoutView> {
        if let Some(order) = self.load(order_id).await? {
            if order.buyer_id == buyer.id {
                return Ok(CheckoutView::Placed(order.id));
            }
            return Err(ShopError::NotFound("checkout"));
        }
        let row = sqlx::query("SELECT token, buyer_id, lines, expires_at_ms FROM checkout_tokens WHERE order_id = $1")
            .bind(order_id.get())
            .fetch_optional(self.shard_of(order_id).pool())
            .await?
            .filter(|row| row.try_get::<i64, _>("buyer_id").ok() == Some(buyer.id.get()))
            .ok_or(ShopError::NotFound("checkout"))?;
        let expires_at_ms: i64 = row.try_get("expires_at_ms")?;
        if expires_at_ms <= now_ms() {
            return Ok(CheckoutView::Expired);
        }
        let lines: Vec<LineRequest> = serde_json::from_str(&row.try_get::<String, _>("lines")?).map_err(anyhow::Error::from)?;
        let products = self.products_of(&lines).await?;
        Ok(CheckoutView::Open {
            checkout: Checkout {
                order_id,
                checkout_token: row.try_get("token")?,
                expires_at: rfc3339(expires_at_ms),
                total_cents: total_of(&products, &lines),
                lines,
            },
            products,
        })
    }

    /// Places the order a checkout opened. Submitting again — a double click, a
    /// reload, a retry — returns the same order with `replayed` set.
    pub async fn place(&self, buyer: &User, request: PlaceOrder) -> ShopResult<Placed> {
        let order_id = request.order_id;
        if order_id.suffix() != buyer.id.shard_suffix() {
            return Err(ShopError::InvalidCheckoutToken);
        }
        if let Some(order) = self.load(order_id).await? {
            return replay(order, buyer);
        }
        let (checkout_lines, checkout_expires_at_ms) = self.valid_checkout(buyer, order_id, &request.checkout_token).await?;
        if let Some(lines) = request.lines
            && normalised(lines)? != checkout_lines
        {
            return Err(ShopError::InvalidCheckoutToken);
        }
        let products = self.products_of(&checkout_lines).await?;
        let holds = products.iter().any(|p| p.inventory_mode == InventoryMode::Reserve);
        let hold_expires_at_ms = holds.then(|| now_ms() + self.hold_ttl_ms);
        self.take_stock(order_id, &products, &checkout_lines, hold_expires_at_ms, checkout_expires_at_ms).await?;
        match self.insert_order(buyer, order_id, &request.checkout_token, &products, &checkout_lines, &request.shipping_address, hold_expires_at_ms).await? {
            Some(order) => {
                tracing::info!(order_id = %order_id, buyer_id = %buyer.id, total_cents = order.total_cents, "order placed");
                Ok(Placed { order, replayed: false })
            }
            None => {
                let order = self.load(order_id).await?.ok_or(ShopError::InvalidCheckoutToken)?;
                replay(order, buyer)
            }
        }
    }

    /// The checkout's lines and expiry, if the token is this buyer's, for this order, unexpired.
    async fn valid_checkout(&self, buyer: &User, order_id: OrderId, raw_token: &str) -> ShopResult<(Vec<LineRequest>, i64)> {
        let token = SessionToken::parse(raw_token).ok_or(ShopError::InvalidCheckoutToken)?;
        let row = sqlx::query("SELECT token, buyer_id, lines, expires_at_ms FROM checkout_tokens WHERE order_id = $1")
            .bind(order_id.get())
            .fetch_optional(self.shard_of(order_id).pool())
            .await?
            .ok_or(ShopError::InvalidCheckoutToken)?;
        let stored: String = row.try_get("token")?;
        let owner: i64 = row.try_get("buyer_id")?;
        let expires_at_ms: i64 = row.try_get("expires_at_ms")?;
        if stored != token.expose() || owner != buyer.id.get() || expires_at_ms <= now_ms() {
            return Err(ShopError::InvalidCheckoutToken);
        }
        let lines: String = row.try_get("lines")?;
        Ok((serde_json::from_str(&lines).map_err(anyhow::Error::from)?, expires_at_ms))
    }

    /// Step 1: take every line's stock, or none. Idempotent per (order, product).
    async fn take_stock(
        &self,
        order_id: OrderId,
        products: &[Product],
        lines: &[LineRequest],
        hold_expires_at_ms: Option<i64>,
        checkout_expires_at_ms: i64,
    ) -> ShopResult<()> {
        let mut tx = self.main.begin_write().await?;
        // `lines` is sorted by product id: concurrent orders lock stock rows in one order.
        for (product, line) in products.iter().zip(lines) {
            // The snapshot is written later by a job carrying the content as it is
            // now; enqueuing here costs no extra round trip, and a job's failure
            // never reaches the order.
            Jobs::enqueue_snapshot(&mut tx, &snapshot_job(product)).await?;
            let quantity = line.quantity.get();
            let (state, statement) = match product.inventory_mode {
                InventoryMode::OnPayment => {
                    let enough: Option<i64> = sqlx::query_scalar("SELECT 1 FROM stock WHERE product_id = $1 AND available >= $2")
                        .bind(product.id.get())
                        .bind(quantity)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if enough.is_none() {
                        return Err(ShopError::InsufficientStock { product_id: product.id.get() });
                    }
                    continue;
                }
                InventoryMode::OnOrder => ("sold", "UPDATE stock SET available = available - $1, sold = sold + $1 WHERE product_id = $2 AND available >= $1"),
                InventoryMode::Reserve => ("held", "UPDATE stock SET available = available - $1, reserved = reserved + $1 WHERE product_id = $2 AND available >= $1"),
            };
            let recorded = sqlx::query(
                "INSERT INTO stock_takes (order_id, product_id, quantity, state, check_at_ms, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id, product_id) DO NOTHING",
            )
            .bind(order_id.get())
            .bind(product.id.get())
            .bind(quantity)
            .bind(state)
            .bind(if state == "held" { hold_expires_at_ms.unwrap_or(checkout_expires_at_ms) } else { checkout_expires_at_ms })
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            if recorded.rows_affected() == 0 {
                continue; // already taken for this order by an earlier or concurrent submit
            }
            let moved = sqlx::query(statement).bind(quantity).bind(product.id.get()).execute(&mut *tx).await?;
            if moved.rows_affected() == 0 {
                return Err(ShopError::InsufficientStock { product_id: product.id.get() });
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Step 2: consume the token and insert the order, in one shard transaction.
    /// Returns the order as written, or `None` if another submit consumed the token first.
    #[allow(clippy::too_many_arguments)]
    async fn insert_order(
        &self,
        buyer: &User,
        order_id: OrderId,
        raw_token: &str,
        products: &[Product],
        lines: &[LineRequest],
        address: &ShippingAddress,
        hold_expires_at_ms: Option<i64>,
    ) -> ShopResult<Option<Order>> {
        let token = SessionToken::parse(raw_token).ok_or(ShopError::InvalidCheckoutToken)?;
        let now = now_ms();
        let shard = self.shard_of(order_id);
        let mut tx = shard.begin_write().await?;
        let consumed = sqlx::query(
            "UPDATE checkout_tokens SET consumed_at_ms = $1 WHERE order_id = $2 AND token = $3 AND consumed_at_ms IS NULL",
        )
        .bind(now)
        .bind(order_id.get())
        .bind(token.expose())
        .execute(&mut *tx)
        .await?;
        if consumed.rows_affected() == 0 {
            return Ok(None);
        }
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
                    snapshot_digest: snapshot_job(product).digest,
                })
                .collect(),
            total_cents: total_of(products, lines),
            created_at: rfc3339(now),
            hold_expires_at: hold_expires_at_ms.map(rfc3339),
            shipping_address: address.clone(),
            shipping: None,
        };
        sqlx::query(
            "INSERT INTO orders (id, buyer_id, seller_id, status, total_cents, shipping_address, hold_expires_at_ms, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, 'pending_payment', $4, $5, $6, $7, $7)",
        )
        .bind(order_id.get())
        .bind(buyer.id.get())
        .bind(products[0].seller_id.get())
        .bind(order.total_cents)
        .bind(serde_json::to_string(address).map_err(anyhow::Error::from)?)
        .bind(hold_expires_at_ms)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (line_no, line) in order.lines.iter().enumerate() {
            sqlx::query(
                "INSERT INTO order_lines (order_id, line_no, product_id, seller_id, quantity, unit_price_cents, snapshot_digest) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(order_id.get())
            .bind(line_no as i64)
            .bind(line.product_id.get())
            .bind(line.seller_id.get())
            .bind(line.quantity)
            .bind(line.unit_price_cents)
            .bind(&line.snapshot_digest)
            .execute(&mut *tx)
            .await?;
        }
        record_change(&mut tx, order_id).await?;
        tx.commit().await?;
        Ok(Some(order))
    }

    /// The caller's order. Someone else's order is "not found": its existence is not revealed.
    pub async fn get(&self, buyer: &User, id: OrderId) -> ShopResult<Order> {
        match self.load(id).await? {
            Some(order) if order.buyer_id == buyer.id => Ok(order),
            _ => Err(ShopError::NotFound("order")),
        }
    }

    /// The caller's orders, newest first, from their one shard.
    pub async fn list_mine(&self, buyer: &User, status: Option<OrderStatus>, after: Option<OrderId>, limit: PageLimit) -> ShopResult<Page<Order>> {
        let shard = &self.shards[self.map.shard_for_buyer(buyer.id)];
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE buyer_id = $1 AND id < $2 AND ($3 IS NULL OR status = $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(buyer.id.get())
        .bind(after.map_or(i64::MAX, OrderId::get))
        .bind(status.map(OrderStatus::as_str))
        .bind(i64::from(limit.get()) + 1)
        .fetch_all(shard.pool())
        .await?;
        let more = ids.len() > limit.get() as usize;
        let mut items = Vec::with_capacity(ids.len().min(limit.get() as usize));
        for id in ids.into_iter().take(limit.get() as usize) {
            items.extend(self.load(OrderId::from_stored(id)).await?);
        }
        let next_cursor = if more { items.last().map(|o: &Order| o.id.to_string()) } else { None };
        Ok(Page { items, next_cursor })
    }

    /// Cancels an unpaid order and gives its stock back at once.
    pub async fn cancel(&self, buyer: &User, id: OrderId) -> ShopResult<Order> {
        self.get(buyer, id).await?; // the buyer's own order, or not found
        let status = self.transition(id, OrderStatus::PendingPayment, OrderStatus::Cancelled).await?;
        if status != OrderStatus::Cancelled {
            return Err(ShopError::InvalidTransition { status: status.as_str() });
        }
        self.release_stock(id).await?;
        self.get(buyer, id).await
    }

    /// Gives back every take of an order that is still held or sold. Idempotent:
    /// each take moves from its state to `released` with a conditional UPDATE, and
    /// only a take that moved gives its units back.
    pub async fn release_stock(&self, id: OrderId) -> ShopResult<()> {
        let mut tx = self.main.begin_write().await?;
        self.release_stock_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// As [`Orders::release_stock`], inside the caller's `main` transaction.
    pub(crate) async fn release_stock_in(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: OrderId) -> ShopResult<()> {
        let takes = sqlx::query("SELECT product_id, quantity, state FROM stock_takes WHERE order_id = $1 AND state <> 'released' ORDER BY product_id")
            .bind(id.get())
            .fetch_all(&mut **tx)
            .await?;
        for take in &takes {
            let product_id: i64 = take.try_get("product_id")?;
            let quantity: i64 = take.try_get("quantity")?;
            let state: String = take.try_get("state")?;
            let released = sqlx::query("UPDATE stock_takes SET state = 'released', check_at_ms = NULL WHERE order_id = $1 AND product_id = $2 AND state = $3")
                .bind(id.get())
                .bind(product_id)
                .bind(&state)
                .execute(&mut **tx)
                .await?;
            if released.rows_affected() == 0 {
                continue;
            }
            let give_back = if state == "held" {
                "UPDATE stock SET available = available + $1, reserved = reserved - $1 WHERE product_id = $2"
            } else {
                "UPDATE stock SET available = available + $1, sold = sold - $1 WHERE product_id = $2"
            };
            sqlx::query(give_back).bind(quantity).bind(product_id).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The recovery pass, run periodically by a worker (and directly by tests).
    /// For every stock take whose check time has passed:
    /// - the order exists, unpaid, and its hold has lapsed: cancel it (a conditional
    ///   UPDATE on `pending_payment`, so a racing payment or cancel wins cleanly)
    ///   and release its stock;
    /// - the order was cancelled but its stock not yet released (a crash between
    ///   the two steps): release it;
    /// - the order exists and is settled (paid, or its on-order stock is simply
    ///   sold): stop checking the take;
    /// - there is no order and its checkout has expired, so none can be placed any
    ///   more (a crash between taking stock and inserting the order): release it.
    ///
    /// Returns how many orders it acted on. Every step is idempotent, so running
    /// two passes at once, or re-running after a crash, changes nothing twice.
    pub async fn recover_expired_takes(&self, now_ms: i64, batch: i64) -> ShopResult<u64> {
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT order_id FROM stock_takes WHERE check_at_ms IS NOT NULL AND check_at_ms <= $1 ORDER BY order_id LIMIT $2",
        )
        .bind(now_ms)
        .bind(batch)
        .fetch_all(self.main.pool())
        .await?;
        let mut acted = 0;
        for raw in due {
            let id = OrderId::from_stored(raw);
            if self.recover_order(id, now_ms).await? {
                acted += 1;
            }
        }
        Ok(acted)
    }

    async fn recover_order(&self, id: OrderId, now_ms: i64) -> ShopResult<bool> {
        let shard = self.shard_of(id);
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1").bind(id.get()).fetch_optional(shard.pool()).await?;
        match status.as_deref() {
            Some("pending_payment") => {
                // A payment under way (or interrupted) wins over the lapsed hold: the
                // payment recovery worker finishes it.
                let paying: Option<i64> = sqlx::query_scalar("SELECT 1 FROM payments WHERE order_id = $1").bind(id.get()).fetch_optional(self.main.pool()).await?;
                if paying.is_some() {
                    return Ok(false);
                }
                let mut tx = shard.begin_write().await?;
                let cancelled = sqlx::query(
                    "UPDATE orders SET status = 'cancelled', hold_expires_at_ms = NULL, updated_at_ms = $1, version = version + 1 \
                     WHERE id = $2 AND status = 'pending_payment' AND hold_expires_at_ms IS NOT NULL AND hold_expires_at_ms <= $1",
                )
                .bind(now_ms)
                .bind(id.get())
                .execute(&mut *tx)
                .await?;
                if cancelled.rows_affected() == 1 {
                    record_change(&mut tx, id).await?;
                }
                tx.commit().await?;
                if cancelled.rows_affected() == 1 {
                    tracing::info!(order_id = %id, "hold expired: unpaid order cancelled");
                    self.release_stock(id).await?;
                    return Ok(true);
                }
                // Not held (its stock was sold at order time), or not yet lapsed: settled for now.
                self.settle_takes(id).await?;
                Ok(false)
            }
            Some("cancelled") => {
                self.release_stock(id).await?;
                Ok(true)
            }
            Some(_) => {
                self.settle_takes(id).await?;
                Ok(false)
            }
            None => {
                let checkout_expires: Option<i64> = sqlx::query_scalar("SELECT expires_at_ms FROM checkout_tokens WHERE order_id = $1")
                    .bind(id.get())
                    .fetch_optional(shard.pool())
                    .await?;
                if checkout_expires.is_some_and(|expires| expires > now_ms) {
                    return Ok(false); // the order may still be placed: look again later
                }
                tracing::warn!(order_id = %id, "stock taken for an order that was never placed: released");
                self.release_stock(id).await?;
                Ok(true)
            }
        }
    }

    /// Stops checking takes whose order exists and keeps them (held takes of an
    /// order whose hold has not lapsed keep their check time).
    async fn settle_takes(&self, id: OrderId) -> ShopResult<()> {
        sqlx::query("UPDATE stock_takes SET check_at_ms = NULL WHERE order_id = $1 AND state = 'sold'")
            .bind(id.get())
            .execute(self.main.pool())
            .await?;
        Ok(())
    }

    /// Moves an order from `from` to `to` with one conditional UPDATE on its shard
    /// (so two racing transitions cannot both win), and returns its status after:
    /// `to` if this call or an earlier one moved it, else whatever it is now.
    pub(crate) async fn transition(&self, id: OrderId, from: OrderStatus, to: OrderStatus) -> ShopResult<OrderStatus> {
        let shard = self.shard_of(id);
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
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1").bind(id.get()).fetch_optional(shard.pool()).await?;
        let status = status.ok_or(ShopError::NotFound("order"))?;
        OrderStatus::parse("status", &status).map_err(|e| anyhow::anyhow!("stored order is invalid: {e}").into())
    }

    /// The order with this id, wherever its buyer's shard is; `None` if there is none.
    pub(crate) async fn load(&self, id: OrderId) -> ShopResult<Option<Order>> {
        Ok(self.load_versioned(id).await?.map(|versioned| versioned.order))
    }

    /// As [`Orders::load`], with the seller, version and time of the last change.
    pub(crate) async fn load_versioned(&self, id: OrderId) -> ShopResult<Option<SellerOrder>> {
        let mut conn = self.shard_of(id).pool().acquire().await?;
        read_seller_order(&mut conn, id).await
    }

    /// The order shards, in shard order.
    pub(crate) fn shards(&self) -> &[Db] {
        &self.shards
    }

    async fn products_of(&self, lines: &[LineRequest]) -> ShopResult<Vec<Product>> {
        let mut products = Vec::with_capacity(lines.len());
        for line in lines {
            let product = self.catalog.get(line.product_id).await.map_err(|e| match e {
                ShopError::NotFound(_) => FieldError::new("lines", format!("product {} does not exist", line.product_id)).into(),
                other => other,
            })?;
            products.push(product);
        }
        if products.iter().any(|p| p.seller_id != products[0].seller_id) {
            return Err(FieldError::new("lines", "an order holds one seller's products; check out each seller separately").into());
        }
        Ok(products)
    }
}

fn snapshot_job(product: &Product) -> SnapshotJob {
    SnapshotJob {
        digest: crate::snapshot::digest(product.title.as_str(), product.description.as_str(), product.price.cents()),
        product_id: product.id.get(),
        title: product.title.to_string(),
        description: product.description.to_string(),
        price_cents: product.price.cents(),
    }
}

fn replay(order: Order, buyer: &User) -> ShopResult<Placed> {
    if order.buyer_id != buyer.id {
        return Err(ShopError::InvalidCheckoutToken);
    }
    Ok(Placed { order, replayed: true })
}

/// Sorted by product id, one line per product, 1..=MAX_LINES lines.
fn normalised(mut lines: Vec<LineRequest>) -> ShopResult<Vec<LineRequest>> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(FieldError::new("lines", format!("must hold between 1 and {MAX_LINES} lines")).into());
    }
    lines.sort_by_key(|l| l.product_id);
    if lines.windows(2).any(|w| w[0].product_id == w[1].product_id) {
        return Err(FieldError::new("lines", "must name each product once").into());
    }
    Ok(lines)
}

fn total_of(products: &[Product], lines: &[LineRequest]) -> i64 {
    // Bounded: price <= 1e9 cents, quantity <= 1e6, lines <= 50, so no overflow.
    products.iter().zip(lines).map(|(p, l)| p.price.cents() * l.quantity.get()).sum()
}

/// The order and its seller-facing summary, read on `conn`: a pool connection, or
/// the shard transaction that has just written the order (so the outbox gets
/// exactly what that transaction commits).
pub(crate) async fn read_seller_order(conn: &mut AnyConnection, id: OrderId) -> ShopResult<Option<SellerOrder>> {
    let Some(row) = sqlx::query(
        "SELECT o.id, o.buyer_id, o.seller_id, o.status, o.total_cents, o.shipping_address, o.hold_expires_at_ms, o.created_at_ms, \
         o.updated_at_ms, o.version, s.carrier, s.tracking_number, s.version AS shipping_version, s.updated_at_ms AS shipping_updated_at_ms \
         FROM orders o LEFT JOIN shipping_records s ON s.order_id = o.id WHERE o.id = $1",
    )
    .bind(id.get())
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let lines = sqlx::query(
        "SELECT product_id, seller_id, quantity, unit_price_cents, snapshot_digest FROM order_lines WHERE order_id = $1 ORDER BY line_no",
    )
    .bind(id.get())
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(SellerOrder {
        order: order_from_rows(&row, &lines)?,
        seller_id: UserId::from_stored(row.try_get("seller_id")?),
        version: row.try_get("version")?,
        updated_at: rfc3339(row.try_get("updated_at_ms")?),
    }))
}

fn order_from_rows(row: &AnyRow, lines: &[AnyRow]) -> ShopResult<Order> {
    let status: String = row.try_get("status")?;
    let address: String = row.try_get("shipping_address")?;
    let hold: Option<i64> = row.try_get("hold_expires_at_ms")?;
    let status = OrderStatus::parse("status", &status).map_err(|e| anyhow::anyhow!("stored order is invalid: {e}"))?;
    let lines = lines
        .iter()
        .map(|l| {
            Ok(OrderLine {
                product_id: ProductId::from_stored(l.try_get("product_id")?),
                seller_id: UserId::from_stored(l.try_get("seller_id")?),
                quantity: l.try_get("quantity")?,
                unit_price_cents: l.try_get("unit_price_cents")?,
                snapshot_digest: l.try_get("snapshot_digest")?,
            })
        })
        .collect::<ShopResult<Vec<_>>>()?;
    Ok(Order {
        id: OrderId::from_stored(row.try_get("id")?),
        buyer_id: UserId::from_stored(row.try_get("buyer_id")?),
        status,
        lines,
        total_cents: row.try_get("total_cents")?,
        created_at: rfc3339(row.try_get("created_at_ms")?),
        hold_expires_at: hold.filter(|_| status == OrderStatus::PendingPayment).map(rfc3339),
        shipping_address: serde_json::from_str(&address).map_err(anyhow::Error::from)?,
        shipping: match row.try_get::<Option<i64>, _>("shipping_version")? {
            Some(version) => Some(Waybill {
                carrier: row.try_get("carrier")?,
                tracking_number: row.try_get("tracking_number")?,
                version,
                updated_at: rfc3339(row.try_get("shipping_updated_at_ms")?),
            }),
            None => None,
        },
    })
}
