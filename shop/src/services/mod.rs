//! The services both doors call: the JSON API handlers and the pages' server
//! functions hold no rules of their own, they parse input and call these.

pub mod accounts;
pub mod carts;
pub mod catalog;
pub mod idempotency;
pub mod jobs;
pub mod ledger;
pub mod payments;
pub mod seller_index;
pub mod shipping;
pub mod order_ids;
pub mod orders;

use crate::db::{DatabaseConfig, Databases};
pub use accounts::Accounts;
pub use catalog::Catalog;
pub use orders::Orders;

/// Everything a request handler needs, cheap to clone (pools are reference-counted).
#[derive(Clone, Debug)]
pub struct Shop {
    pub databases: Databases,
    pub accounts: Accounts,
    pub catalog: Catalog,
    pub orders: Orders,
    pub jobs: jobs::Jobs,
    pub idempotency: idempotency::Idempotency,
    pub carts: carts::Carts,
    pub ledger: ledger::Ledger,
    pub payments: payments::Payments,
    pub shipping: shipping::Shipping,
    pub seller_index: seller_index::SellerIndex,
}

/// Settings the services need beyond database URLs.
#[derive(Debug, Clone)]
pub struct ShopSettings {
    /// How long a reservation holds stock.
    pub hold_ttl_ms: i64,
    /// How many order ids one server reserves at a time.
    pub order_id_block: i64,
    /// Server-side guest carts unused this long are deleted.
    pub guest_cart_ttl_ms: i64,
}

impl Default for ShopSettings {
    fn default() -> Self {
        Self {
            hold_ttl_ms: 30 * 60 * 1000,
            order_id_block: order_ids::OrderIdAllocator::DEFAULT_BLOCK_SIZE,
            guest_cart_ttl_ms: carts::Carts::DEFAULT_GUEST_TTL_MS,
        }
    }
}

impl Shop {
    /// Connects to and migrates every database, then wires the services.
    pub async fn open(config: &DatabaseConfig, settings: &ShopSettings) -> anyhow::Result<Self> {
        let databases = Databases::connect_and_migrate(config).await?;
        let catalog = Catalog::new(databases.main.clone());
        let ids = std::sync::Arc::new(order_ids::OrderIdAllocator::new(databases.main.clone(), settings.order_id_block));
        let orders = Orders::new(databases.main.clone(), databases.shards.clone(), catalog.clone(), ids, settings.hold_ttl_ms);
        Ok(Self {
            accounts: Accounts::new(databases.main.clone()),
            ledger: ledger::Ledger::new(databases.main.clone()),
            payments: payments::Payments::new(databases.main.clone(), orders.clone()),
            shipping: shipping::Shipping::new(orders.clone()),
            seller_index: seller_index::SellerIndex::new(databases.main.clone(), orders.clone()),
            orders,
            catalog,
            jobs: jobs::Jobs::new(databases.main.clone()),
            idempotency: idempotency::Idempotency::new(databases.main.clone()),
            carts: carts::Carts::new(databases.main.clone(), settings.guest_cart_ttl_ms),
            databases,
        })
    }

    /// Whether every database answers. Returns the first that does not.
    pub async fn health(&self) -> Result<(), String> {
        for db in self.databases.all() {
            db.ping().await.map_err(|e| format!("{}: {e}", db.name()))?;
        }
        Ok(())
    }
}
