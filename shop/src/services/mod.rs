//! The services both doors call: the JSON API handlers and the pages' server
//! functions hold no rules of their own, they parse input and call these.

pub mod accounts;
pub mod catalog;
pub mod order_ids;

use crate::db::{DatabaseConfig, Databases};
pub use accounts::Accounts;
pub use catalog::Catalog;

/// Everything a request handler needs, cheap to clone (pools are reference-counted).
#[derive(Clone, Debug)]
pub struct Shop {
    pub databases: Databases,
    pub accounts: Accounts,
    pub catalog: Catalog,
}

impl Shop {
    /// Connects to and migrates every database, then wires the services.
    pub async fn open(config: &DatabaseConfig) -> anyhow::Result<Self> {
        let databases = Databases::connect_and_migrate(config).await?;
        Ok(Self {
            accounts: Accounts::new(databases.main.clone()),
            catalog: Catalog::new(databases.main.clone()),
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
