//! The services both doors call: the JSON API handlers and the pages' server
//! functions hold no rules of their own, they parse input and call these.

//! One room per mechanism (DESIGN.md's nine):
//! 1. duplicate orders — `checkout` (one-time tokens), `order_ids`, `idempotency`
//! 2. snapshots — `snapshots`
//! 3. guest carts — `carts`
//! 4. overselling — `stock`
//! 5. waybill ABA — `shipping`
//! 6. balances and the ledger — `ledger`, `payments`
//! 7. replica lag — `crate::db`
//! 8. hot and cold orders — `archive`
//! 9. sharding — `shards`, `orders`, `order_rows`, `seller_index`
//!
//! Below them: `jobs` (the queue, which knows no job's meaning), `accounts`, `catalog`.

pub mod accounts;
pub mod archive;
pub mod carts;
pub mod catalog;
pub mod checkout;
pub mod idempotency;
pub mod images;
pub mod jobs;
pub mod ledger;
pub mod order_ids;
pub(crate) mod order_rows;
pub mod orders;
pub mod payments;
pub mod seller_index;
pub mod shards;
pub mod shipping;
pub mod sign_in_throttle;
pub mod snapshots;
pub mod stock;
pub(crate) mod stock_batch;
mod group_commit;
mod order_inserts;
mod charges;
mod paid_marks;
mod session_reads;

use crate::db::{DatabaseConfig, Databases};
pub use accounts::Accounts;
pub use catalog::Catalog;
pub use checkout::Checkouts;
pub use orders::Orders;

/// Everything a request handler needs. Cloned for every request and every layer
/// that holds the state, so it is one reference count: a clone of the services
/// themselves (some hundred pool handles and the shard lists) showed in the flash
/// sale's profile (issue 14).
#[derive(Clone, Debug)]
pub struct Shop(std::sync::Arc<Services>);

impl std::ops::Deref for Shop {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services, reached through [`Shop`].
#[derive(Debug)]
pub struct Services {
    pub databases: Databases,
    pub accounts: Accounts,
    pub catalog: Catalog,
    pub checkouts: Checkouts,
    pub orders: Orders,
    pub stock: stock::Stock,
    pub snapshots: snapshots::Snapshots,
    pub jobs: jobs::Jobs,
    pub idempotency: idempotency::Idempotency,
    pub carts: carts::Carts,
    pub ledger: ledger::Ledger,
    pub payments: payments::Payments,
    pub shipping: shipping::Shipping,
    pub seller_index: seller_index::SellerIndex,
    pub archive: archive::Archive,
    pub images: images::Images,
}

/// Settings the services need beyond database URLs.
#[derive(Debug, Clone)]
pub struct ShopSettings {
    /// How long a reservation holds stock, and so how long any order may stay unpaid.
    pub hold_ttl_ms: i64,
    /// How many unpaid orders one buyer may hold at once.
    pub max_unpaid_orders: i64,
    /// Whether wallets can be topped up (demo money), and how much a day.
    pub top_ups: ledger::TopUpPolicy,
    /// A shipped order the buyer never confirms completes by itself after this long.
    pub auto_complete_ms: i64,
    /// A session unused this long ends.
    pub session_idle_ms: i64,
    /// How many order ids one server reserves at a time.
    pub order_id_block: i64,
    /// Server-side guest carts unused this long are deleted.
    pub guest_cart_ttl_ms: i64,
    /// Where product images are kept; `None` keeps them in memory (tests).
    pub image_store: Option<std::sync::Arc<dyn object_store::ObjectStore>>,
}

impl Default for ShopSettings {
    fn default() -> Self {
        Self {
            hold_ttl_ms: 30 * 60 * 1000,
            max_unpaid_orders: 5,
            top_ups: ledger::TopUpPolicy::DEMO,
            auto_complete_ms: 14 * 24 * 60 * 60 * 1000,
            session_idle_ms: accounts::Accounts::DEFAULT_SESSION_IDLE_MS,
            order_id_block: order_ids::OrderIdAllocator::DEFAULT_BLOCK_SIZE,
            guest_cart_ttl_ms: carts::Carts::DEFAULT_GUEST_TTL_MS,
            image_store: None,
        }
    }
}

impl Shop {
    /// Connects to and migrates every database, then wires the services.
    pub async fn open(config: &DatabaseConfig, settings: &ShopSettings) -> anyhow::Result<Self> {
        let databases = Databases::connect_and_migrate(config).await?;
        let main = databases.main.clone();
        let shards = shards::Shards::open(&main, databases.shards.clone()).await?;
        let catalog = Catalog::new(main.clone());
        let ids = std::sync::Arc::new(order_ids::OrderIdAllocator::new(main.clone(), settings.order_id_block));
        ids.reserve_ahead().await;
        let checkouts = Checkouts::new(shards.clone(), catalog.clone(), ids);
        let carts = carts::Carts::new(main.clone(), catalog.clone(), checkouts.clone(), settings.guest_cart_ttl_ms);
        let limits = orders::UnpaidLimits { payment_window_ms: settings.hold_ttl_ms, max_unpaid: settings.max_unpaid_orders };
        let archive = archive::Archive::new(main.clone(), shards.clone(), databases.archive.clone());
        let orders = Orders::new(main.clone(), shards.clone(), archive.clone(), checkouts.clone(), carts.clone(), limits);
        let snapshots = snapshots::Snapshots::new(main.clone());
        let seller_index = seller_index::SellerIndex::new(main.clone(), shards.clone(), archive.clone());
        let image_store = settings.image_store.clone().unwrap_or_else(|| std::sync::Arc::new(object_store::memory::InMemory::new()));
        let images = images::Images::new(main.clone(), image_store, catalog.clone());
        Ok(Self(std::sync::Arc::new(Services {
            accounts: Accounts::new(main.clone(), settings.session_idle_ms),
            ledger: ledger::Ledger::new(main.clone(), settings.top_ups),
            payments: payments::Payments::new(main.clone(), orders.clone()),
            shipping: shipping::Shipping::new(orders.clone()),
            stock: stock::Stock::new(main.clone(), shards, settings.hold_ttl_ms),
            jobs: jobs::Jobs::new(main.clone(), vec![snapshots.job_kind(), seller_index.job_kind(), images.job_kind()]),
            images,
            seller_index,
            archive,
            snapshots,
            orders,
            checkouts,
            catalog,
            idempotency: idempotency::Idempotency::new(main),
            carts,
            databases,
        })))
    }

    /// Whether each database answers within `within`, by name, asked all at once.
    pub async fn health(&self, within: std::time::Duration) -> Vec<(String, bool)> {
        let mut pings = tokio::task::JoinSet::new();
        for (index, db) in self.databases.all().cloned().enumerate() {
            pings.spawn(async move { (index, db.name().to_owned(), matches!(tokio::time::timeout(within, db.ping()).await, Ok(Ok(())))) });
        }
        let mut answers = pings.join_all().await;
        answers.sort_by_key(|(index, ..)| *index);
        answers.into_iter().map(|(_, name, up)| (name, up)).collect()
    }
}
