//! Checkouts and their one-time tokens (DESIGN.md, failure mode 1).
//!
//! Opening a checkout allocates the order's globally unique id and a one-time
//! token bound to the buyer, that id and the lines, both embedded in the page.
//! Placing the order consumes the token in the same shard transaction that inserts
//! the order under that id, so one token yields at most one order.

use crate::accounts::User;
use crate::cart::MAX_LINE_QUANTITY;
use crate::catalog::Product;
use crate::clock::{now_ms, rfc3339};
use crate::domain::{FieldError, OrderId, UserId};
use crate::error::{ShopError, ShopResult};
use crate::orders::{Checkout, LineRequest, MAX_ORDER_LINES};
use crate::secrets::CheckoutToken;
use crate::services::Catalog;
use crate::services::group_commit::{Batched, GroupCommit};
use crate::services::order_ids::OrderIdAllocator;
use crate::services::order_rows::read_seller_order;
use crate::services::shards::Shards;
use crate::db::JsonRows;
use crate::db::dialect::{JsonColumn::{Int, Text}, json_key_in, json_rows};
use serde_json::json;
use sqlx::Row;
use std::sync::Arc;


/// What the checkout page shows.
#[derive(Debug, Clone)]
pub enum CheckoutView {
    Open { checkout: Checkout, products: Vec<Product> },
    /// Already used: the page sends the buyer to this order.
    Placed(OrderId),
    Expired,
}

/// A token as a client presented it: anything not of the shape we issue is simply
/// an invalid checkout.
pub fn checkout_token(raw: &str) -> ShopResult<CheckoutToken> {
    CheckoutToken::parse(raw).ok_or(ShopError::InvalidCheckoutToken)
}

#[derive(Clone, Debug)]
pub struct Checkouts {
    shards: Shards,
    catalog: Catalog,
    ids: Arc<OrderIdAllocator>,
    /// How long a checkout page's token stays usable.
    ttl_ms: i64,
    tokens: GroupCommit<ShardTokens>,
    token_reads: GroupCommit<TokenReads>,
}

impl Checkouts {
    pub const TTL_MS: i64 = 30 * 60 * 1000;

    pub fn new(shards: Shards, catalog: Catalog, ids: Arc<OrderIdAllocator>) -> Self {
        let tokens = GroupCommit::new(ShardTokens { shards: shards.clone() });
        let token_reads = GroupCommit::new(TokenReads { shards: shards.clone() });
        Self { shards, catalog, ids, ttl_ms: Self::TTL_MS, tokens, token_reads }
    }

    /// Opens a checkout: allocates the order id and a one-time token bound to the
    /// buyer and that id. Nothing is reserved yet.
    pub async fn open(&self, buyer: &User, lines: Vec<LineRequest>) -> ShopResult<Checkout> {
        let lines = normalised(lines)?;
        let products = self.products_of(&lines).await?;
        let total_cents = total_of(&products, &lines);
        let order_id = self.ids.next(buyer.id).await?;
        let token = CheckoutToken::generate()?;
        let now = now_ms();
        let expires_at_ms = now + self.ttl_ms;
        let row = TokenRow { order_id, token: token.clone(), buyer: buyer.id, lines: serde_json::to_string(&lines).map_err(anyhow::Error::from)?, expires_at_ms, created_at_ms: now };
        // The caller's request writes this shard (its read fence must cover the
        // commit, which runs in another task).
        self.shards.of_order(order_id).note_primary_write();
        self.tokens.submit(self.shards.index_of_order(order_id), row).await?;
        Ok(Checkout { order_id, checkout_token: token.expose().to_owned(), expires_at: rfc3339(expires_at_ms), lines, total_cents })
    }

    /// A checkout as its page shows it: the token to embed, the lines priced now,
    /// and, if it was already used, the order it placed.
    pub async fn view(&self, buyer: &User, order_id: OrderId) -> ShopResult<CheckoutView> {
        let shard = self.shards.of_order(order_id);
        if let Some(placed) = read_seller_order(&mut *shard.pool().acquire().await?, order_id).await? {
            if placed.order.buyer_id == buyer.id {
                return Ok(CheckoutView::Placed(order_id));
            }
            return Err(ShopError::NotFound("checkout"));
        }
        let row = sqlx::query("SELECT token, buyer_id, lines, expires_at_ms FROM checkout_tokens WHERE order_id = $1")
            .bind(order_id.get())
            .fetch_optional(shard.pool())
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

    /// The checkout's lines, if the token is this buyer's, for this order, unexpired
    /// and unused.
    /// With them, how many unpaid orders the buyer holds (the buyer's counter is on
    /// the same shard, so one statement answers both).
    pub(crate) async fn valid_lines(&self, buyer: &User, order_id: OrderId, token: &CheckoutToken) -> ShopResult<(Vec<LineRequest>, i64)> {
        let stored = self.token_reads.submit(self.shards.index_of_order(order_id), order_id).await?.ok_or(ShopError::InvalidCheckoutToken)?;
        if stored.token != token.expose() || stored.buyer_id != buyer.id.get() || stored.expires_at_ms <= now_ms() || stored.consumed_at_ms.is_some() {
            return Err(ShopError::InvalidCheckoutToken);
        }
        Ok((serde_json::from_str(&stored.lines).map_err(anyhow::Error::from)?, stored.unpaid))
    }

    /// The products of the lines, as they are now; all of one seller.
    pub(crate) async fn products_of(&self, lines: &[LineRequest]) -> ShopResult<Vec<Product>> {
        let mut products = Vec::with_capacity(lines.len());
        for line in lines {
            let product = self.catalog.get_for_pricing(line.product_id).await.map_err(|e| match e {
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

impl Checkouts {
    /// How long an expired checkout is kept, so its page can still say "expired".
    pub const KEPT_AFTER_EXPIRY_MS: i64 = 24 * 60 * 60 * 1000;

    /// Deletes checkouts that expired more than a day ago, used or not, on every
    /// shard; run by the cleanup worker. (A placed order no longer needs its
    /// token: a replay finds the order first.)
    pub async fn delete_expired(&self, now_ms: i64) -> ShopResult<u64> {
        let mut deleted = 0;
        for shard in self.shards.all() {
            let done = sqlx::query("DELETE FROM checkout_tokens WHERE expires_at_ms < $1").bind(now_ms - Self::KEPT_AFTER_EXPIRY_MS).execute(shard.pool()).await?;
            deleted += done.rows_affected();
        }
        Ok(deleted)
    }
}

/// A checkout's token as stored.
#[derive(Debug)]
struct TokenRow {
    order_id: OrderId,
    token: CheckoutToken,
    buyer: UserId,
    /// The normalised lines, as JSON.
    lines: String,
    expires_at_ms: i64,
    created_at_ms: i64,
}

/// New checkout tokens of one shard, inserted together (issue 14): every
/// purchase of a flash sale opens a checkout.
#[derive(Debug)]
struct ShardTokens {
    shards: Shards,
}

impl Batched for ShardTokens {
    /// The shard's position in [`Shards::all`].
    type Key = usize;
    type Item = TokenRow;
    type Output = ();
    const MAX_BATCH: usize = 256;
    const METRIC: &'static str = "ninefold_checkout_batch_tokens";

    async fn together(&self, shard: &usize, rows: &[&TokenRow]) -> ShopResult<Vec<ShopResult<()>>> {
        self.insert(*shard, rows).await?;
        Ok(rows.iter().map(|_| Ok(())).collect())
    }

    async fn alone(&self, shard: &usize, row: &TokenRow) -> ShopResult<()> {
        self.insert(*shard, &[row]).await
    }
}

impl ShardTokens {
    async fn insert(&self, shard: usize, rows: &[&TokenRow]) -> ShopResult<()> {
        let db = &self.shards.all()[shard];
        let values = JsonRows::from_rows(rows.iter().map(|row| json!([row.order_id.get(), row.token.expose(), row.buyer.get(), row.lines.as_str(), row.expires_at_ms, row.created_at_ms])));
        let columns = [Int("order_id"), Text("token"), Int("buyer_id"), Text("lines"), Int("expires_at_ms"), Int("created_at_ms")];
        let sql = format!(
            "INSERT INTO checkout_tokens (order_id, token, buyer_id, lines, expires_at_ms, created_at_ms) \
             SELECT order_id, token, buyer_id, lines, expires_at_ms, created_at_ms FROM {}",
            json_rows(db.backend(), 1, &columns)
        );
        let query = sqlx::query(&sql).bind(values.into_param());
        let mut tx = db.begin_write().await?;
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A checkout's token as placing reads it, with its buyer's unpaid count (the
/// counter is on the same shard, so one statement answers both).
#[derive(Debug, Clone)]
struct StoredToken {
    token: String,
    buyer_id: i64,
    /// The normalised lines, as JSON.
    lines: String,
    expires_at_ms: i64,
    consumed_at_ms: Option<i64>,
    unpaid: i64,
}

/// The token reads of one shard's placings, one statement for all who wait
/// (issue 14: every purchase of a flash sale reads its token).
#[derive(Debug)]
struct TokenReads {
    shards: Shards,
}

impl Batched for TokenReads {
    /// The shard's position in [`Shards::all`].
    type Key = usize;
    type Item = OrderId;
    type Output = Option<StoredToken>;
    const MAX_BATCH: usize = 256;
    const METRIC: &'static str = "ninefold_token_batch_reads";

    async fn together(&self, shard: &usize, ids: &[&OrderId]) -> ShopResult<Vec<ShopResult<Option<StoredToken>>>> {
        let found = self.read(*shard, ids).await?;
        Ok(ids.iter().map(|id| Ok(found.iter().find(|(order_id, _)| order_id == *id).map(|(_, stored)| stored.clone()))).collect())
    }

    async fn alone(&self, shard: &usize, id: &OrderId) -> ShopResult<Option<StoredToken>> {
        Ok(self.read(*shard, &[id]).await?.pop().map(|(_, stored)| stored))
    }
}

impl TokenReads {
    async fn read(&self, shard: usize, ids: &[&OrderId]) -> ShopResult<Vec<(OrderId, StoredToken)>> {
        let db = &self.shards.all()[shard];
        let sql = format!(
            "SELECT t.order_id, t.token, t.buyer_id, t.lines, t.expires_at_ms, t.consumed_at_ms, u.unpaid \
             FROM checkout_tokens t LEFT JOIN buyer_unpaid u ON u.buyer_id = t.buyer_id WHERE {}",
            json_key_in(db.backend(), Int("t.order_id"), 1, 0)
        );
        let rows = sqlx::query(&sql).bind(JsonRows::of_values(ids.iter().map(|id| id.get())).into_param()).fetch_all(db.pool()).await?;
        rows.iter()
            .map(|row| {
                let order_id = OrderId::from_stored(row.try_get("order_id")?);
                let stored = StoredToken {
                    token: row.try_get("token")?,
                    buyer_id: row.try_get("buyer_id")?,
                    lines: row.try_get("lines")?,
                    expires_at_ms: row.try_get("expires_at_ms")?,
                    consumed_at_ms: row.try_get("consumed_at_ms")?,
                    unpaid: row.try_get::<Option<i64>, _>("unpaid")?.unwrap_or(0),
                };
                Ok((order_id, stored))
            })
            .collect()
    }
}

/// Sorted by product id, one line per product, 1..=MAX_ORDER_LINES lines, each of at
/// most the cart's per-line cap: one limit for every door.
pub(crate) fn normalised(mut lines: Vec<LineRequest>) -> ShopResult<Vec<LineRequest>> {
    if lines.is_empty() || lines.len() > MAX_ORDER_LINES {
        return Err(FieldError::new("lines", format!("must hold between 1 and {MAX_ORDER_LINES} lines")).into());
    }
    if lines.iter().any(|l| l.quantity.get() > MAX_LINE_QUANTITY) {
        return Err(FieldError::new("lines", format!("at most {MAX_LINE_QUANTITY} of one product per order")).into());
    }
    lines.sort_by_key(|l| l.product_id);
    if lines.windows(2).any(|w| w[0].product_id == w[1].product_id) {
        return Err(FieldError::new("lines", "must name each product once").into());
    }
    Ok(lines)
}

pub(crate) fn total_of(products: &[Product], lines: &[LineRequest]) -> i64 {
    // Bounded: price <= 1e9 cents, quantity <= 1e6, lines <= 50, so no overflow.
    products.iter().zip(lines).map(|(p, l)| p.price.cents() * l.quantity.get()).sum()
}
