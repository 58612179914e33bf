//! Carts in the main database: the signed-in shopper's, and server-side guest
//! carts under a random token. The merge rules themselves are in [`crate::cart`].

use crate::accounts::User;
use crate::cart::{Cart, CartGroup, CartLine, CartLineView, GroupedCart, MAX_LINE_QUANTITY, MAX_LINES, MergeReport};
use crate::clock::now_ms;
use crate::db::Db;
use crate::domain::{FieldError, Money, ProductId, Quantity, UserId};
use crate::error::{ShopError, ShopResult};
use crate::orders::{Checkout, LineRequest};
use crate::secrets::CartToken;
use crate::services::group_commit::{Batched, GroupCommit};
use crate::services::{Catalog, Checkouts};
use crate::db::JsonRows;
use crate::db::dialect::{JsonColumn::{Int, Text}, json_key_in, json_rows};
use serde_json::json;
use sqlx::{Any, Row, Transaction};

/// Whose cart a request is about.
#[derive(Debug, Clone)]
pub enum CartOwner {
    User(User),
    /// A guest with a server-side cart (its token, as issued).
    Guest(CartToken),
}

impl CartOwner {
    fn key(&self) -> String {
        match self {
            CartOwner::User(user) => format!("user:{}", user.id),
            CartOwner::Guest(token) => guest_key(token),
        }
    }
}

fn guest_key(token: &CartToken) -> String {
    format!("guest:{}", token.sha256())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineChange {
    Set(i64),
    Add(i64),
}

impl LineChange {
    fn quantity(self) -> i64 {
        match self {
            LineChange::Set(q) | LineChange::Add(q) => q,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Carts {
    db: Db,
    catalog: Catalog,
    checkouts: Checkouts,
    /// Guest carts unused this long are deleted.
    guest_ttl_ms: i64,
    removals: GroupCommit<OrderedRemovals>,
}

impl Carts {
    pub const DEFAULT_GUEST_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

    pub fn new(db: Db, catalog: Catalog, checkouts: Checkouts, guest_ttl_ms: i64) -> Self {
        let removals = GroupCommit::new(OrderedRemovals { db: db.clone() });
        Self { db, catalog, checkouts, guest_ttl_ms, removals }
    }

    /// Whose cart a request is about: the signed-in user's, else the guest cart it
    /// presents if that still exists, else nobody's yet.
    pub async fn owner(&self, user: Option<User>, guest: Option<CartToken>) -> ShopResult<Option<CartOwner>> {
        if let Some(user) = user {
            return Ok(Some(CartOwner::User(user)));
        }
        match guest {
            Some(token) if self.guest_cart_exists(&token).await? => Ok(Some(CartOwner::Guest(token))),
            _ => Ok(None),
        }
    }

    /// As [`Carts::owner`], opening a guest cart when there is none. The second
    /// value is the new cart's token, for the door to hand out (cookie, header).
    pub async fn owner_or_new_guest(&self, user: Option<User>, guest: Option<CartToken>) -> ShopResult<(CartOwner, Option<CartToken>)> {
        if let Some(owner) = self.owner(user, guest).await? {
            return Ok((owner, None));
        }
        let token = self.open_guest_cart().await?;
        Ok((CartOwner::Guest(token.clone()), Some(token)))
    }

    /// The server-side cart (if any) and the browser's own lines, priced now and
    /// grouped by seller: each group checks out as one order.
    pub async fn grouped(&self, owner: Option<&CartOwner>, browser_lines: &[CartLine]) -> ShopResult<GroupedCart> {
        let server_lines = match owner {
            Some(owner) => self.lines(owner).await?,
            None => Vec::new(),
        };
        let ids: Vec<ProductId> = server_lines.iter().chain(browser_lines).map(|l| l.product_id).collect();
        let products = self.catalog.get_many(&ids).await?;
        let mut cart = GroupedCart::default();
        let all = server_lines.iter().map(|l| (l, false)).chain(browser_lines.iter().map(|l| (l, true)));
        for (line, in_browser) in all {
            let Some(product) = products.iter().find(|p| p.id == line.product_id) else {
                if in_browser {
                    cart.vanished.push(line.product_id);
                }
                continue;
            };
            let view = CartLineView {
                product_id: product.id,
                title: product.title.to_string(),
                quantity: line.quantity,
                unit_price: product.price,
                price_was: line.price_seen_cents.filter(|seen| *seen != product.price.cents()).map(Money::from_stored),
                available: product.stock.available,
                in_browser,
            };
            match cart.groups.iter_mut().find(|g| g.seller_id == product.seller_id) {
                Some(group) => group.lines.push(view),
                None => cart.groups.push(CartGroup { seller_id: product.seller_id, seller_name: product.seller_name.clone(), lines: vec![view] }),
            }
        }
        Ok(cart)
    }

    /// Opens a checkout for one seller's lines of the user's cart.
    pub async fn check_out_seller(&self, user: &User, seller: UserId) -> ShopResult<Checkout> {
        let lines = self.lines(&CartOwner::User(user.clone())).await?;
        let products = self.catalog.get_many(&lines.iter().map(|l| l.product_id).collect::<Vec<_>>()).await?;
        let mut requests = Vec::new();
        for line in &lines {
            if products.iter().any(|p| p.id == line.product_id && p.seller_id == seller) {
                requests.push(LineRequest { product_id: line.product_id, quantity: Quantity::parse("quantity", line.quantity)? });
            }
        }
        if requests.is_empty() {
            return Err(ShopError::NotFound("cart lines of this seller"));
        }
        self.checkouts.open(user, requests).await
    }

    /// A new, empty guest cart, and the token that names it.
    pub async fn open_guest_cart(&self) -> ShopResult<CartToken> {
        let token = CartToken::generate()?;
        let now = now_ms();
        sqlx::query("INSERT INTO guest_carts (token_sha256, created_at_ms, last_used_at_ms) VALUES ($1, $2, $2)")
            .bind(token.sha256())
            .bind(now)
            .execute(self.db.pool())
            .await?;
        Ok(token)
    }

    /// Whether a guest cart exists (and is not expired), touching it if so.
    pub async fn guest_cart_exists(&self, token: &CartToken) -> ShopResult<bool> {
        let now = now_ms();
        let touched = sqlx::query("UPDATE guest_carts SET last_used_at_ms = $1 WHERE token_sha256 = $2 AND last_used_at_ms > $3")
            .bind(now)
            .bind(token.sha256())
            .bind(now - self.guest_ttl_ms)
            .execute(self.db.pool())
            .await?;
        Ok(touched.rows_affected() == 1)
    }

    pub async fn lines(&self, owner: &CartOwner) -> ShopResult<Vec<CartLine>> {
        let rows = sqlx::query("SELECT product_id, quantity, added_at_ms, price_seen_cents FROM cart_lines WHERE owner = $1 ORDER BY added_at_ms, product_id")
            .bind(owner.key())
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(line_from_row).collect()
    }

    /// Sets a line's quantity (0 removes it). The product must exist; a cart holds
    /// at most [`MAX_LINES`] lines.
    pub async fn set_line(&self, owner: &CartOwner, product_id: ProductId, quantity: i64) -> ShopResult<Vec<CartLine>> {
        self.write_line(owner, product_id, LineChange::Set(quantity)).await?;
        self.lines(owner).await
    }

    /// Adds `quantity` to a line (creating it), capped at [`MAX_LINE_QUANTITY`].
    pub async fn add_line(&self, owner: &CartOwner, product_id: ProductId, quantity: i64) -> ShopResult<Vec<CartLine>> {
        self.write_line(owner, product_id, LineChange::Add(quantity)).await?;
        self.lines(owner).await
    }

    async fn write_line(&self, owner: &CartOwner, product_id: ProductId, change: LineChange) -> ShopResult<()> {
        let key = owner.key();
        let mut tx = self.db.begin_write().await?;
        if change == LineChange::Set(0) {
            sqlx::query("DELETE FROM cart_lines WHERE owner = $1 AND product_id = $2").bind(&key).bind(product_id.get()).execute(&mut *tx).await?;
            tx.commit().await?;
            return Ok(());
        }
        let price: Option<i64> = sqlx::query_scalar("SELECT price_cents FROM products WHERE id = $1").bind(product_id.get()).fetch_optional(&mut *tx).await?;
        let Some(price) = price else {
            return Err(ShopError::NotFound("product"));
        };
        if update_line(&mut tx, &key, product_id, change, price).await? == 0 {
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cart_lines WHERE owner = $1").bind(&key).fetch_one(&mut *tx).await?;
            if count as usize >= MAX_LINES {
                return Err(FieldError::new("product_id", format!("a cart holds at most {MAX_LINES} lines")).into());
            }
            let inserted = sqlx::query(
                "INSERT INTO cart_lines (owner, product_id, quantity, added_at_ms, price_seen_cents) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (owner, product_id) DO NOTHING",
            )
            .bind(&key)
            .bind(product_id.get())
            .bind(change.quantity().clamp(1, MAX_LINE_QUANTITY))
            .bind(now_ms())
            .bind(price)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                // A concurrent write created the line between our UPDATE and INSERT.
                update_line(&mut tx, &key, product_id, change, price).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes the given products' lines: they were just ordered.
    pub async fn remove_products(&self, owner: &CartOwner, products: &[ProductId]) -> ShopResult<()> {
        if products.is_empty() {
            return Ok(());
        }
        // The write, if any, runs in the batch's task: this request's read fence
        // must cover it.
        self.db.note_primary_write();
        self.removals.submit((), Removal { owner: owner.key(), products: products.iter().map(|p| p.get()).collect() }).await
    }

    /// Merges a guest's lines (from the browser) and server-side guest cart into
    /// the account's cart, once per `merge_id`. The merge-id row is inserted first,
    /// in the same transaction as the cart's new lines: a concurrent merge with the
    /// same id waits for it, then finds the id taken and changes nothing.
    pub async fn merge(&self, user: &User, merge_id: &str, browser_lines: &[CartLine], guest: Option<&CartToken>) -> ShopResult<(Vec<CartLine>, MergeReport)> {
        let owner = CartOwner::User(user.clone());
        let mut tx = self.db.begin_write().await?;
        // One merge at a time per account, whatever their ids: a no-op UPDATE takes
        // the user row's lock on PostgreSQL (SQLite already holds the write lock),
        // so two different merges cannot both read the cart before either writes.
        sqlx::query("UPDATE users SET id = id WHERE id = $1").bind(user.id.get()).execute(&mut *tx).await?;
        let gate = sqlx::query("INSERT INTO cart_merges (user_id, merge_id, applied_at_ms) VALUES ($1, $2, $3) ON CONFLICT (user_id, merge_id) DO NOTHING")
            .bind(user.id.get())
            .bind(merge_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        if gate.rows_affected() == 0 {
            drop(tx);
            return Ok((self.lines(&owner).await?, MergeReport { already_applied: true, ..Default::default() }));
        }
        let mut incoming = browser_lines.to_vec();
        if let Some(token) = guest {
            incoming.extend(lines_in(&mut tx, &guest_key(token)).await?);
        }
        let current = Cart::from_lines(lines_in(&mut tx, &owner.key()).await?);
        let mut stock = std::collections::HashMap::new();
        for line in &incoming {
            let available: Option<i64> = sqlx::query_scalar("SELECT available FROM stock WHERE product_id = $1")
                .bind(line.product_id.get())
                .fetch_optional(&mut *tx)
                .await?;
            stock.insert(line.product_id, available);
        }
        let (merged, report) = current.merge(merge_id, &incoming, |id| stock.get(&id).copied().flatten());
        for line in merged.lines.values() {
            if current.lines.get(&line.product_id) == Some(line) {
                continue;
            }
            sqlx::query(
                "INSERT INTO cart_lines (owner, product_id, quantity, added_at_ms, price_seen_cents) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (owner, product_id) DO UPDATE SET quantity = excluded.quantity, added_at_ms = excluded.added_at_ms, \
                 price_seen_cents = excluded.price_seen_cents",
            )
            .bind(owner.key())
            .bind(line.product_id.get())
            .bind(line.quantity)
            .bind(line.added_at_ms)
            .bind(line.price_seen_cents)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(token) = guest {
            sqlx::query("DELETE FROM cart_lines WHERE owner = $1").bind(guest_key(token)).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM guest_carts WHERE token_sha256 = $1").bind(token.sha256()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok((self.lines(&owner).await?, report))
    }

    /// Merges a server-side guest cart into the account that just signed in. The
    /// merge id derives from the cart's token, so signing in twice with the same
    /// cookie cannot apply it twice.
    pub async fn merge_guest_cart(&self, user: &User, token: &CartToken) -> ShopResult<(Vec<CartLine>, MergeReport)> {
        let merge_id = format!("server-cart:{}", &token.sha256()[..32]);
        self.merge(user, &merge_id, &[], Some(token)).await
    }

    /// Deletes guest carts unused for the TTL, with their lines; run by a worker.
    /// Forgets merges older than a guest cart lives: no browser still holds the
    /// cart they came from, so none can be retried.
    pub async fn delete_old_merges(&self, now: i64) -> ShopResult<u64> {
        let done = sqlx::query("DELETE FROM cart_merges WHERE applied_at_ms <= $1").bind(now - self.guest_ttl_ms).execute(self.db.pool()).await?;
        Ok(done.rows_affected())
    }

    pub async fn delete_expired_guest_carts(&self, now: i64) -> ShopResult<u64> {
        let cutoff = now - self.guest_ttl_ms;
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "DELETE FROM cart_lines WHERE owner IN (SELECT 'guest:' || token_sha256 FROM guest_carts WHERE last_used_at_ms <= $1)",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM guest_carts WHERE last_used_at_ms <= $1").bind(cutoff).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(deleted.rows_affected())
    }
}

/// Applies a change to an existing line in one conditional statement (so two
/// concurrent adds both count); the CASE caps the sum without a dialect-specific
/// LEAST/MIN. Returns how many rows changed.
async fn update_line(tx: &mut Transaction<'static, Any>, key: &str, product_id: ProductId, change: LineChange, price: i64) -> ShopResult<u64> {
    let statement = match change {
        LineChange::Set(_) => "UPDATE cart_lines SET quantity = $1, price_seen_cents = $2 WHERE owner = $3 AND product_id = $4",
        LineChange::Add(_) => {
            "UPDATE cart_lines SET quantity = CASE WHEN quantity + $1 > $5 THEN $5 ELSE quantity + $1 END, price_seen_cents = $2 \
             WHERE owner = $3 AND product_id = $4"
        }
    };
    let mut query = sqlx::query(statement).bind(change.quantity()).bind(price).bind(key).bind(product_id.get());
    if let LineChange::Add(_) = change {
        query = query.bind(MAX_LINE_QUANTITY);
    }
    let done = query.execute(&mut **tx).await?;
    Ok(done.rows_affected())
}

async fn lines_in(tx: &mut Transaction<'static, Any>, owner: &str) -> ShopResult<Vec<CartLine>> {
    let rows = sqlx::query("SELECT product_id, quantity, added_at_ms, price_seen_cents FROM cart_lines WHERE owner = $1").bind(owner).fetch_all(&mut **tx).await?;
    rows.iter().map(line_from_row).collect()
}

fn line_from_row(row: &sqlx::any::AnyRow) -> ShopResult<CartLine> {
    Ok(CartLine {
        product_id: ProductId::from_stored(row.try_get("product_id")?),
        quantity: row.try_get("quantity")?,
        added_at_ms: row.try_get("added_at_ms")?,
        price_seen_cents: row.try_get("price_seen_cents")?,
    })
}

/// Lines to take out of one cart: what an order just bought.
#[derive(Debug)]
struct Removal {
    owner: String,
    products: Vec<i64>,
}

/// The carts that placed orders of the moment are cleared together (issue 14:
/// every purchase of a flash sale looks at its buyer's cart). A read comes first,
/// so orders bought without the cart (a "buy now", an API client) take no write
/// lock on `main` at all.
#[derive(Debug)]
struct OrderedRemovals {
    db: Db,
}

impl Batched for OrderedRemovals {
    /// One queue: carts are not spread over places.
    type Key = ();
    type Item = Removal;
    type Output = ();
    const MAX_BATCH: usize = 128;
    const METRIC: &'static str = "ninefold_cart_batch_removals";

    async fn together(&self, _key: &(), removals: &[&Removal]) -> ShopResult<Vec<ShopResult<()>>> {
        self.remove(removals).await?;
        Ok(removals.iter().map(|_| Ok(())).collect())
    }

    async fn alone(&self, _key: &(), removal: &Removal) -> ShopResult<()> {
        self.remove(&[removal]).await
    }
}

impl OrderedRemovals {
    async fn remove(&self, removals: &[&Removal]) -> ShopResult<()> {
        let mut owners: Vec<&str> = removals.iter().map(|r| r.owner.as_str()).collect();
        let mut products: Vec<i64> = removals.iter().flat_map(|r| r.products.iter().copied()).collect();
        owners.sort_unstable();
        owners.dedup();
        products.sort_unstable();
        products.dedup();
        let backend = self.db.backend();
        let sql = format!(
            "SELECT owner, product_id FROM cart_lines WHERE {} AND {}",
            json_key_in(backend, Text("owner"), 1, 0),
            json_key_in(backend, Int("product_id"), 2, 0)
        );
        let query = sqlx::query_as::<_, (String, i64)>(&sql).bind(JsonRows::of_values(owners).into_param()).bind(JsonRows::of_values(products).into_param());
        let lines = query.fetch_all(self.db.pool()).await?;
        let held: Vec<&&Removal> = removals.iter().filter(|r| lines.iter().any(|(owner, product)| *owner == r.owner && r.products.contains(product))).collect();
        if held.is_empty() {
            return Ok(());
        }
        let pairs = JsonRows::from_rows(held.iter().flat_map(|r| r.products.iter().map(|p| json!([r.owner, p]))));
        let sql = format!(
            "DELETE FROM cart_lines WHERE {} AND (owner, product_id) IN (SELECT held_owner, held_product FROM {})",
            json_key_in(backend, Text("owner"), 1, 0),
            json_rows(backend, 1, &[Text("held_owner"), Int("held_product")])
        );
        let query = sqlx::query(&sql).bind(pairs.into_param());
        let mut tx = self.db.begin_write().await?;
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
