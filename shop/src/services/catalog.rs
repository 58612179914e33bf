//! The catalog: products and their stock levels, in the `main` database.

use crate::accounts::User;
use crate::catalog::{Category, Cursor, Page, PageLimit, Product, ProductImage, Stock};
use crate::search::{CategorySlug, ProductCursor, ProductFilter, ProductSort};
use crate::clock::now_ms;
use crate::db::{Db, Read};
use crate::domain::{Description, FieldError, InventoryMode, Money, ProductId, Quantity, Role, StockLevel, Title, UserId};
use crate::error::{ShopError, ShopResult};
use crate::services::accounts::next_counter;
use crate::services::group_commit::{Batched, GroupCommit};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeSet, HashMap};

/// A product as a seller submits it, already parsed.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub title: Title,
    pub description: Description,
    pub price: Money,
    pub stock: StockLevel,
    pub inventory_mode: InventoryMode,
    pub categories: Vec<CategorySlug>,
}

/// An edit: only the fields given change. It must name the version it was made against.
#[derive(Debug, Clone, Default)]
pub struct ProductEdit {
    pub expected_version: i64,
    pub title: Option<Title>,
    pub description: Option<Description>,
    pub price: Option<Money>,
    pub inventory_mode: Option<InventoryMode>,
    /// The categories it is in from now on, when given.
    pub categories: Option<Vec<CategorySlug>>,
}

#[derive(Clone, Debug)]
pub struct Catalog {
    db: Db,
    pricing_reads: GroupCommit<PricingReads>,
}

const PRODUCT_SELECT: &str = "SELECT p.id, p.seller_id, u.name AS seller_name, p.title, p.description, p.price_cents, \
     p.inventory_mode, p.version, s.available, s.reserved, s.sold \
     FROM products p JOIN stock s ON s.product_id = p.id JOIN users u ON u.id = p.seller_id";

/// The most categories one product is in.
pub const MAX_CATEGORIES: usize = 5;

/// A value bound to a query built at run time.
enum Bind {
    Int(i64),
    Text(String),
    Float(f64),
}

/// A product list's SQL and its bound values, in `$n` order.
struct SearchQuery {
    sql: String,
    binds: Vec<Bind>,
}

impl SearchQuery {
    fn bind(&mut self, value: Bind) -> usize {
        self.binds.push(value);
        self.binds.len()
    }

    fn build(backend: crate::db::Backend, filter: &ProductFilter, sort: ProductSort, after: Option<ProductCursor>, fetch: i64) -> Self {
        let mut query = Self { sql: String::new(), binds: Vec::new() };
        let mut join = String::new();
        let mut conditions = Vec::new();
        let mut score = "CAST(0 AS DOUBLE PRECISION)".to_owned();
        if let Some(terms) = &filter.terms {
            let n = query.bind(Bind::Text(crate::db::dialect::text_query(backend, terms.words())));
            let matched = crate::db::dialect::text_match(backend, n);
            join = matched.join;
            conditions.extend(matched.condition);
            score = matched.score;
        }
        if let Some(category) = &filter.category {
            let n = query.bind(Bind::Text(category.as_str().to_owned()));
            conditions.push(format!("p.id IN (SELECT pc.product_id FROM product_categories pc JOIN categories c ON c.id = pc.category_id WHERE c.slug = ${n})"));
        }
        if let Some(seller) = filter.seller {
            let n = query.bind(Bind::Int(seller.get()));
            conditions.push(format!("p.seller_id = ${n}"));
        }
        if let Some(min) = filter.min_price_cents {
            let n = query.bind(Bind::Int(min));
            conditions.push(format!("p.price_cents >= ${n}"));
        }
        if let Some(max) = filter.max_price_cents {
            let n = query.bind(Bind::Int(max));
            conditions.push(format!("p.price_cents <= ${n}"));
        }
        if filter.in_stock {
            conditions.push("s.available > 0".to_owned());
        }
        let order = match sort {
            ProductSort::Newest => "p.id DESC".to_owned(),
            ProductSort::PriceAsc => "p.price_cents ASC, p.id ASC".to_owned(),
            ProductSort::PriceDesc => "p.price_cents DESC, p.id DESC".to_owned(),
            ProductSort::Relevance => format!("{score} DESC, p.id DESC"),
        };
        match after {
            Some(ProductCursor::Newest { id }) => {
                let n = query.bind(Bind::Int(id));
                conditions.push(format!("p.id < ${n}"));
            }
            Some(ProductCursor::Price { price_cents, id }) => {
                let (a, b) = (query.bind(Bind::Int(price_cents)), query.bind(Bind::Int(id)));
                let (beyond, then) = if sort == ProductSort::PriceAsc { (">", ">") } else { ("<", "<") };
                conditions.push(format!("(p.price_cents {beyond} ${a} OR (p.price_cents = ${a} AND p.id {then} ${b}))"));
            }
            Some(ProductCursor::Relevance { score: last, id }) => {
                let (a, b) = (query.bind(Bind::Float(last)), query.bind(Bind::Int(id)));
                conditions.push(format!("({score} < ${a} OR ({score} = ${a} AND p.id < ${b}))"));
            }
            None => {}
        }
        let limit = query.bind(Bind::Int(fetch));
        let filter = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        query.sql = format!("{PRODUCT_SELECT_FROM} {join} {filter} ORDER BY {order} LIMIT ${limit}", PRODUCT_SELECT_FROM = product_select(&score));
        query
    }
}

/// The product columns (with `score` for a search) from products, stock and sellers.
fn product_select(score: &str) -> String {
    format!(
        "SELECT p.id, p.seller_id, u.name AS seller_name, p.title, p.description, p.price_cents, p.inventory_mode, p.version, \
         s.available, s.reserved, s.sold, {score} AS score FROM products p JOIN stock s ON s.product_id = p.id JOIN users u ON u.id = p.seller_id"
    )
}

impl Catalog {
    pub fn new(db: Db) -> Self {
        let pricing_reads = GroupCommit::new(PricingReads { db: db.clone() });
        Self { db, pricing_reads }
    }

    /// Newest first, keyset-paginated so a page costs the same however deep it is.
    pub async fn list(&self, after: Option<Cursor>, limit: PageLimit) -> ShopResult<Page<Product>> {
        let after = after.map(|c| ProductCursor::Newest { id: c.last_id() });
        self.search(&ProductFilter::default(), ProductSort::Newest, after, limit).await
    }

    /// A few products in stock to carry on shopping with, other than `bought`.
    pub async fn suggestions(&self, bought: &[ProductId], count: usize) -> ShopResult<Vec<Product>> {
        let newest = self.list(None, PageLimit::DEFAULT).await?.items;
        Ok(newest.into_iter().filter(|p| !bought.contains(&p.id) && p.stock.in_stock()).take(count).collect())
    }

    /// The seller's own products, newest first (the dashboard's product list).
    pub async fn list_for_seller(&self, seller: &User, after: Option<Cursor>, limit: PageLimit) -> ShopResult<Page<Product>> {
        require_seller(seller)?;
        let filter = ProductFilter { seller: Some(seller.id), ..ProductFilter::default() };
        self.search(&filter, ProductSort::Newest, after.map(|c| ProductCursor::Newest { id: c.last_id() }), limit).await
    }

    /// The products matching `filter`, in `sort` order, after `after`: one query
    /// (plus one for their categories), keyset-paged on the sort key and the id,
    /// so a page costs the same however deep it is and no product is skipped or
    /// repeated between pages. Full-text matching is the dialect's.
    pub async fn search(&self, filter: &ProductFilter, sort: ProductSort, after: Option<ProductCursor>, limit: PageLimit) -> ShopResult<Page<Product>> {
        if filter.terms.as_ref().is_some_and(|terms| terms.words().is_empty()) {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        }
        let query = SearchQuery::build(self.db.backend(), filter, sort, after, i64::from(limit.get()) + 1);
        let rows = self
            .db
            .display_read(|pool| {
                let bound = query.binds.iter().fold(sqlx::query(&query.sql), |q, value| match value {
                    Bind::Int(n) => q.bind(*n),
                    Bind::Text(t) => q.bind(t.as_str()),
                    Bind::Float(f) => q.bind(*f),
                });
                async move { Ok(bound.fetch_all(&pool).await?) }
            })
            .await?;
        let mut items = rows.iter().map(product_from_row).collect::<ShopResult<Vec<_>>>()?;
        let next_cursor = if items.len() > limit.get() as usize {
            items.truncate(limit.get() as usize);
            let last = &rows[items.len() - 1];
            let id = last.try_get::<i64, _>("id")?;
            Some(match sort {
                ProductSort::Newest => ProductCursor::Newest { id },
                ProductSort::PriceAsc | ProductSort::PriceDesc => ProductCursor::Price { price_cents: last.try_get("price_cents")?, id },
                ProductSort::Relevance => ProductCursor::Relevance { score: last.try_get("score")?, id },
            }
            .encode())
        } else {
            None
        };
        self.attach_categories(&mut items).await?;
        Ok(Page { items, next_cursor })
    }

    /// Every category, by name.
    pub async fn categories(&self) -> ShopResult<Vec<Category>> {
        let rows: Vec<(String, String)> = self
            .db
            .display_read(|pool| async move { Ok(sqlx::query_as("SELECT slug, name FROM categories ORDER BY name").fetch_all(&pool).await?) })
            .await?;
        Ok(rows.into_iter().map(|(slug, name)| Category { slug, name }).collect())
    }

    /// Fills in each product's category slugs, in one query.
    async fn attach_categories(&self, products: &mut [Product]) -> ShopResult<()> {
        if products.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT pc.product_id, c.slug FROM product_categories pc JOIN categories c ON c.id = pc.category_id WHERE pc.product_id IN ({}) ORDER BY c.slug",
            crate::db::placeholders(1, products.len())
        );
        let ids: Vec<i64> = products.iter().map(|p| p.id.get()).collect();
        let rows: Vec<(i64, String)> = self
            .db
            .display_read(|pool| {
                let query = ids.iter().fold(sqlx::query_as(&sql), |q, id| q.bind(*id));
                async move { Ok(query.fetch_all(&pool).await?) }
            })
            .await?;
        for (product_id, slug) in rows {
            if let Some(product) = products.iter_mut().find(|p| p.id.get() == product_id) {
                product.categories.push(slug);
            }
        }
        self.attach_images(products, &ids).await
    }

    /// Fills in each product's images, in order, with their derived sizes where made.
    async fn attach_images(&self, products: &mut [Product], ids: &[i64]) -> ShopResult<()> {
        let list = crate::db::placeholders(1, ids.len());
        let sql = format!(
            "SELECT i.product_id, i.image_key, i.alt, i.width, i.height, c.variant_key AS card_key, g.variant_key AS page_key \
             FROM product_images i {VARIANT_JOINS} \
             WHERE i.product_id IN ({list}) ORDER BY i.product_id, i.position"
        );
        let rows = self
            .db
            .display_read(|pool| {
                let query = ids.iter().fold(sqlx::query(&sql), |q, id| q.bind(*id));
                async move { Ok(query.fetch_all(&pool).await?) }
            })
            .await?;
        for row in rows {
            let product_id: i64 = row.try_get("product_id")?;
            let Some(product) = products.iter_mut().find(|p| p.id.get() == product_id) else { continue };
            product.images.extend(image_from_row(&row)?);
        }
        Ok(())
    }

    /// The product as it is now on the primary, with only its main picture: what
    /// pricing an order needs (the snapshot names the main picture), read at checkout
    /// and again at placing. Concurrent reads of one product share one statement
    /// that starts after all of them asked, so each answer is as fresh as a read of
    /// its own (issue 14: a flash sale read the hot product twice per purchase).
    pub async fn get_for_pricing(&self, id: ProductId) -> ShopResult<Product> {
        self.pricing_reads.submit((), id).await
    }

    /// Pricing reads answered by a statement shared with others, so far: batches
    /// and the reads in them (for tests and the benchmark).
    pub fn shared_pricing_batches(&self) -> (u64, u64) {
        self.pricing_reads.shared_batches()
    }

    /// Puts the product in exactly these categories, in the caller's transaction.
    /// An unknown slug refuses the whole change.
    async fn set_categories_in(tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: ProductId, categories: &[CategorySlug]) -> ShopResult<()> {
        if categories.len() > MAX_CATEGORIES {
            return Err(FieldError::new("categories", format!("a product is in at most {MAX_CATEGORIES} categories")).into());
        }
        sqlx::query("DELETE FROM product_categories WHERE product_id = $1").bind(id.get()).execute(&mut **tx).await?;
        for slug in categories {
            let added = sqlx::query("INSERT INTO product_categories (product_id, category_id) SELECT $1, id FROM categories WHERE slug = $2 ON CONFLICT DO NOTHING")
                .bind(id.get())
                .bind(slug.as_str())
                .execute(&mut **tx)
                .await?;
            let known: Option<i64> = sqlx::query_scalar("SELECT id FROM categories WHERE slug = $1").bind(slug.as_str()).fetch_optional(&mut **tx).await?;
            if added.rows_affected() == 0 && known.is_none() {
                return Err(FieldError::new("categories", format!("{} is not a category", slug.as_str())).into());
            }
        }
        Ok(())
    }

    /// The product as shown (a display read: a replica that has the caller's own edits will do).
    pub async fn get(&self, id: ProductId) -> ShopResult<Product> {
        self.read(id, Read::Display).await
    }

    /// The product as it is now on the primary: for decisions (pricing an order);
    /// its pictures, not its categories.
    pub async fn get_current(&self, id: ProductId) -> ShopResult<Product> {
        self.read(id, Read::Deciding).await
    }

    async fn read(&self, id: ProductId, purpose: Read) -> ShopResult<Product> {
        let sql = format!("{PRODUCT_SELECT} WHERE p.id = $1");
        let row = self
            .db
            .read(purpose, |pool| {
                let query = sqlx::query(&sql).bind(id.get());
                async move { Ok(query.fetch_optional(&pool).await?) }
            })
            .await?
            .ok_or(ShopError::NotFound("product"))?;
        let mut product = [product_from_row(&row)?];
        match purpose {
            Read::Display => self.attach_categories(&mut product).await?,
            // Pricing an order needs the main picture (the snapshot names it), not the categories.
            Read::Deciding => self.attach_images(&mut product, &[id.get()]).await?,
        }
        let [product] = product;
        Ok(product)
    }

    /// The products among `ids` that exist, in one query (a cart page's worth).
    pub async fn get_many(&self, ids: &[ProductId]) -> ShopResult<Vec<Product>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = crate::db::placeholders(1, ids.len());
        let sql = format!("{PRODUCT_SELECT} WHERE p.id IN ({placeholders})");
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id.get());
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        rows.iter().map(product_from_row).collect()
    }

    pub async fn create(&self, seller: &User, product: NewProduct) -> ShopResult<Product> {
        require_seller(seller)?;
        let now = now_ms();
        let mut tx = self.db.begin_write().await?;
        let id = ProductId::from_stored(next_counter(&mut tx, "product").await?);
        sqlx::query(
            "INSERT INTO products (id, seller_id, title, description, price_cents, inventory_mode, version, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
        )
        .bind(id.get())
        .bind(seller.id.get())
        .bind(product.title.as_str())
        .bind(product.description.as_str())
        .bind(product.price.cents())
        .bind(product.inventory_mode.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO stock (product_id, available, reserved, sold, received) VALUES ($1, $2, 0, 0, $2)")
            .bind(id.get())
            .bind(product.stock.get())
            .execute(&mut *tx)
            .await?;
        Self::set_categories_in(&mut tx, id, &product.categories).await?;
        tx.commit().await?;
        tracing::info!(product_id = %id, seller_id = %seller.id, "product created");
        self.get(id).await
    }

    /// Applies an edit if, and only if, the product is still at `expected_version`.
    /// The check and the write are one conditional UPDATE, so two sellers' racing
    /// edits cannot both win.
    pub async fn edit(&self, seller: &User, id: ProductId, edit: ProductEdit) -> ShopResult<Product> {
        require_seller(seller)?;
        let mut tx = self.db.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE products SET \
               title = COALESCE($1, title), description = COALESCE($2, description), \
               price_cents = COALESCE($3, price_cents), inventory_mode = COALESCE($4, inventory_mode), \
               version = version + 1, updated_at_ms = $5 \
             WHERE id = $6 AND seller_id = $7 AND version = $8",
        )
        .bind(edit.title.as_ref().map(Title::as_str))
        .bind(edit.description.as_ref().map(Description::as_str))
        .bind(edit.price.map(Money::cents))
        .bind(edit.inventory_mode.map(InventoryMode::as_str))
        .bind(now_ms())
        .bind(id.get())
        .bind(seller.id.get())
        .bind(edit.expected_version)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 1 {
            if let Some(categories) = &edit.categories {
                Self::set_categories_in(&mut tx, id, categories).await?;
            }
            tx.commit().await?;
            return self.get(id).await;
        }
        drop(tx);
        let current = self.owned_by(seller.id, id).await?;
        Err(ShopError::StaleVersion { current_version: current.version })
    }

    /// Adds received units: both `available` and `received` grow, so the stock
    /// invariant holds. Refused if it would pass [`StockLevel::MAX`].
    pub async fn restock(&self, seller: &User, id: ProductId, quantity: Quantity) -> ShopResult<Product> {
        require_seller(seller)?;
        let updated = sqlx::query(
            "UPDATE stock SET available = available + $1, received = received + $1 \
             WHERE product_id = $2 AND received + $1 <= $3 \
               AND product_id IN (SELECT id FROM products WHERE seller_id = $4)",
        )
        .bind(quantity.get())
        .bind(id.get())
        .bind(StockLevel::MAX)
        .bind(seller.id.get())
        .execute(self.db.pool())
        .await?;
        if updated.rows_affected() == 1 {
            return self.get(id).await;
        }
        self.owned_by(seller.id, id).await?;
        Err(FieldError::new("quantity", format!("would take stock past {} units", StockLevel::MAX)).into())
    }

    /// The seller's own product, for the dashboard's edit page.
    pub async fn owned(&self, seller: &User, id: ProductId) -> ShopResult<Product> {
        require_seller(seller)?;
        self.owned_by(seller.id, id).await
    }

    /// The product, if it exists and belongs to this seller; otherwise not found
    /// (a seller must not learn about another seller's product ids by probing).
    async fn owned_by(&self, seller_id: UserId, id: ProductId) -> ShopResult<Product> {
        let product = self.get(id).await?;
        if product.seller_id != seller_id {
            return Err(ShopError::NotFound("product"));
        }
        Ok(product)
    }

    /// One product's stock and everything it ever received, for invariant checks.
    pub async fn stock_totals(&self, id: ProductId) -> ShopResult<(Stock, i64)> {
        let row = sqlx::query("SELECT available, reserved, sold, received FROM stock WHERE product_id = $1")
            .bind(id.get())
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(ShopError::NotFound("product"))?;
        Ok((Stock { available: row.try_get(0)?, reserved: row.try_get(1)?, sold: row.try_get(2)? }, row.try_get(3)?))
    }
}

/// Seller-only operations refuse buyers and admins outright (403).
pub fn require_seller(user: &User) -> ShopResult<()> {
    match user.role {
        Role::Seller => Ok(()),
        Role::Buyer | Role::Admin => Err(ShopError::Forbidden),
    }
}

/// A picture's two sizes, joined to `product_images i`.
const VARIANT_JOINS: &str = "LEFT JOIN image_variants c ON c.image_key = i.image_key AND c.size = 'card' \
     LEFT JOIN image_variants g ON g.image_key = i.image_key AND g.size = 'page'";

/// The picture in a row of `image_key, alt, width, height, card_key, page_key`;
/// `None` where an outer join found none.
fn image_from_row(row: &AnyRow) -> ShopResult<Option<ProductImage>> {
    let Some(key) = row.try_get::<Option<String>, _>("image_key")? else { return Ok(None) };
    let card: Option<String> = row.try_get("card_key")?;
    let page: Option<String> = row.try_get("page_key")?;
    Ok(Some(ProductImage {
        url: ProductImage::url_of(&key),
        key,
        alt: row.try_get("alt")?,
        width: u32::try_from(row.try_get::<i64, _>("width")?).unwrap_or(0),
        height: u32::try_from(row.try_get::<i64, _>("height")?).unwrap_or(0),
        card_url: card.as_deref().map(ProductImage::url_of),
        page_url: page.as_deref().map(ProductImage::url_of),
    }))
}

fn product_from_row(row: &AnyRow) -> ShopResult<Product> {
    let mode: String = row.try_get("inventory_mode")?;
    let product = Product {
        id: ProductId::from_stored(row.try_get("id")?),
        seller_id: UserId::from_stored(row.try_get("seller_id")?),
        seller_name: row.try_get("seller_name")?,
        title: Title::from_stored(row.try_get("title")?),
        description: Description::from_stored(row.try_get("description")?),
        price: Money::from_stored(row.try_get("price_cents")?),
        stock: Stock { available: row.try_get("available")?, reserved: row.try_get("reserved")?, sold: row.try_get("sold")? },
        inventory_mode: InventoryMode::parse("inventory_mode", &mode).map_err(|e| anyhow::anyhow!("stored product is invalid: {e}"))?,
        version: row.try_get("version")?,
        categories: Vec::new(),
        images: Vec::new(),
    };
    // The schema's CHECKs guarantee this; assert again where the data is read back.
    debug_assert!(product.stock.available >= 0 && product.stock.reserved >= 0 && product.stock.sold >= 0);
    Ok(product)
}

/// Pricing reads, one statement for all who wait, whichever products they read.
#[derive(Debug)]
struct PricingReads {
    db: Db,
}

impl PricingReads {
    /// One statement: each product, its stock, its seller's name and its main
    /// picture. A product that does not exist is missing from the answer.
    async fn read(&self, ids: &BTreeSet<i64>) -> ShopResult<HashMap<i64, Product>> {
        let sql = format!(
            "SELECT p.id, p.seller_id, u.name AS seller_name, p.title, p.description, p.price_cents, p.inventory_mode, p.version, \
             s.available, s.reserved, s.sold, i.image_key, i.alt, i.width, i.height, c.variant_key AS card_key, g.variant_key AS page_key \
             FROM products p JOIN stock s ON s.product_id = p.id JOIN users u ON u.id = p.seller_id \
             LEFT JOIN product_images i ON i.product_id = p.id AND i.position = (SELECT MIN(position) FROM product_images WHERE product_id = p.id) \
             {VARIANT_JOINS} WHERE p.id IN ({})",
            crate::db::placeholders(1, ids.len())
        );
        let rows = ids.iter().fold(sqlx::query(&sql), |q, id| q.bind(*id)).fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|row| {
                let mut product = product_from_row(row)?;
                product.images.extend(image_from_row(row)?);
                Ok((product.id.get(), product))
            })
            .collect()
    }

    async fn read_one(&self, id: ProductId) -> ShopResult<Product> {
        self.read(&BTreeSet::from([id.get()])).await?.remove(&id.get()).ok_or(ShopError::NotFound("product"))
    }
}

impl Batched for PricingReads {
    /// One queue for every product: a sale of many products shares reads as a
    /// hot product does.
    type Key = ();
    type Item = ProductId;
    type Output = Product;
    /// Products are bound once each, whoever asks: a batch of one hot product is
    /// one parameter, and a batch of distinct ones stays well inside either
    /// backend's limit.
    const MAX_BATCH: usize = 1024;
    const METRIC: &'static str = "ninefold_pricing_batch_reads";

    async fn together(&self, _key: &(), ids: &[&ProductId]) -> ShopResult<Vec<ShopResult<Product>>> {
        let products = self.read(&ids.iter().map(|id| id.get()).collect()).await?;
        Ok(ids.iter().map(|id| products.get(&id.get()).cloned().ok_or(ShopError::NotFound("product"))).collect())
    }

    async fn alone(&self, _key: &(), id: &ProductId) -> ShopResult<Product> {
        self.read_one(*id).await
    }
}
