//! Plain domain types. Each one is parsed once at the edge (API handler, server
//! function, seed) and cannot hold a bad value afterwards. They compile to wasm,
//! so the browser and the server share them.

mod ids;
mod inventory;
mod money;
mod quantity;
mod role;
mod text;

pub use ids::{OrderId, ProductId, UserId};
pub use inventory::{InventoryMode, TakeState};
pub use money::Money;
pub use quantity::{Quantity, StockLevel};
pub use role::Role;
pub use text::{Description, Email, Password, PersonName, Title, is_spoofing, one_line};

/// A value that failed to parse, naming the field so the caller can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), message: message.into() }
    }
}

/// A whole number typed into a form field (surrounding spaces allowed).
pub fn whole_number(field: &str, raw: &str) -> Result<i64, FieldError> {
    raw.trim().parse::<i64>().map_err(|_| FieldError::new(field, "must be a whole number"))
}
