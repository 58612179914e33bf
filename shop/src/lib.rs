//! Ninefold's rules and storage.
//!
//! Without features this crate holds plain types and rules that also compile to
//! wasm, so the browser and the server share them. The `server` feature adds the
//! databases, the services both doors (JSON API and pages) call, and the jobs.

pub mod accounts;
pub mod cart;
pub mod catalog;
pub mod domain;
pub mod ledger;
pub mod orders;
pub mod search;
pub mod shard_map;
pub mod snapshot;
pub mod stored_cart;

#[cfg(feature = "server")]
pub mod clock;
#[cfg(feature = "server")]
pub mod db;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod faults;
#[cfg(feature = "server")]
pub mod secrets;
#[cfg(feature = "server")]
pub mod seed;
#[cfg(feature = "server")]
pub mod services;

#[cfg(feature = "server")]
pub use error::{ShopError, ShopResult};
#[cfg(feature = "server")]
pub use services::Shop;
