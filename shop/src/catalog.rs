//! Products as shown to buyers and sellers.

use crate::domain::{Description, InventoryMode, Money, ProductId, Title, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Product {
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub id: ProductId,
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub seller_id: UserId,
    pub seller_name: String,
    #[cfg_attr(feature = "server", schema(value_type = String))]
    pub title: Title,
    #[cfg_attr(feature = "server", schema(value_type = String))]
    pub description: Description,
    #[serde(rename = "price_cents")]
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub price: Money,
    pub stock: Stock,
    pub inventory_mode: InventoryMode,
    /// Bumped by every edit; an edit must name the version it read.
    pub version: i64,
    /// The slugs of the categories it is in.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Its pictures, the main one first.
    #[serde(default)]
    pub images: Vec<ProductImage>,
}

/// A product picture: the original (`url`, immutable, cached for a year) and, once
/// the image job has made them, the sizes pages use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ProductImage {
    /// The content hash key in the image store.
    pub key: String,
    pub url: String,
    pub alt: String,
    pub width: u32,
    pub height: u32,
    /// A card-sized WebP (longest side 480), once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_url: Option<String>,
    /// A page-sized WebP (longest side 1200), once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
}

impl ProductImage {
    /// Where an image key is served.
    pub fn url_of(key: &str) -> String {
        format!("/images/{key}")
    }
}

/// A category, as lists and the seller's form show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Category {
    pub slug: String,
    pub name: String,
}

/// Where a product's received units are now. `available + reserved + sold` is
/// everything ever received; the database enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Stock {
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
}

impl Stock {
    pub fn in_stock(&self) -> bool {
        self.available > 0
    }
}

/// One page of a list, with the cursor for the next page (`None` at the end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// How many items a caller may ask for in one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const DEFAULT: PageLimit = PageLimit(24);
    pub const MAX: u32 = 100;

    pub fn parse(field: &str, raw: Option<i64>) -> Result<Self, crate::domain::FieldError> {
        match raw {
            None => Ok(Self::DEFAULT),
            Some(n) if (1..=i64::from(Self::MAX)).contains(&n) => Ok(Self(n as u32)),
            Some(_) => Err(crate::domain::FieldError::new(field, format!("must be between 1 and {}", Self::MAX))),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A list cursor as a client sent it, parsed by `parse`: absent or empty means
/// "from the start".
pub fn optional_cursor<T>(raw: Option<&str>, parse: fn(&str, &str) -> Result<T, crate::domain::FieldError>) -> Result<Option<T>, crate::domain::FieldError> {
    raw.filter(|c| !c.is_empty()).map(|c| parse("cursor", c)).transpose()
}

/// A list cursor. Opaque to clients; inside it is the last id of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(i64);

impl Cursor {
    const PREFIX: &'static str = "p";

    pub fn after(id: i64) -> Self {
        Self(id)
    }

    pub fn encode(self) -> String {
        format!("{}{:x}", Self::PREFIX, self.0)
    }

    pub fn decode(field: &str, raw: &str) -> Result<Self, crate::domain::FieldError> {
        raw.strip_prefix(Self::PREFIX)
            .and_then(|hex| i64::from_str_radix(hex, 16).ok())
            .filter(|id| *id > 0)
            .map(Self)
            .ok_or_else(|| crate::domain::FieldError::new(field, "is not a cursor this server issued"))
    }

    pub fn last_id(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cursors_round_trip(id in 1i64..) {
            prop_assert_eq!(Cursor::decode("cursor", &Cursor::after(id).encode()).unwrap(), Cursor::after(id));
        }

        #[test]
        fn arbitrary_text_never_panics_as_a_cursor(raw in "\\PC{0,40}") {
            let _ = Cursor::decode("cursor", &raw);
        }
    }

    #[test]
    fn page_limits_are_bounded() {
        assert_eq!(PageLimit::parse("limit", None).unwrap(), PageLimit::DEFAULT);
        assert!(PageLimit::parse("limit", Some(0)).is_err());
        assert!(PageLimit::parse("limit", Some(101)).is_err());
        assert_eq!(PageLimit::parse("limit", Some(100)).unwrap().get(), 100);
    }
}
