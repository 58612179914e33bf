//! Counts of goods: how many a buyer asks for, and how many a seller holds.

use super::FieldError;
use serde::{Deserialize, Serialize};

/// How many units one line asks for, or one restock adds: 1 ..= [`Quantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantity(i64);

impl Quantity {
    pub const MAX: i64 = 1_000_000;

    pub fn parse(field: &str, raw: i64) -> Result<Self, FieldError> {
        if (1..=Self::MAX).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(FieldError::new(field, format!("must be between 1 and {}", Self::MAX)))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A stock level a seller sets: 0 ..= [`StockLevel::MAX`] units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StockLevel(i64);

impl StockLevel {
    /// Caps received stock so sums over a product never approach `i64` limits.
    pub const MAX: i64 = 1_000_000_000;

    pub fn parse(field: &str, raw: i64) -> Result<Self, FieldError> {
        if (0..=Self::MAX).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(FieldError::new(field, format!("must be between 0 and {}", Self::MAX)))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn quantity_accepts_exactly_its_range(raw in any::<i64>()) {
            prop_assert_eq!(Quantity::parse("quantity", raw).is_ok(), (1..=Quantity::MAX).contains(&raw));
        }

        #[test]
        fn stock_level_accepts_exactly_its_range(raw in any::<i64>()) {
            prop_assert_eq!(StockLevel::parse("stock", raw).is_ok(), (0..=StockLevel::MAX).contains(&raw));
        }
    }
}
