//! The guest's cart as the browser keeps it in LocalStorage, and its recovery.
//!
//! LocalStorage is the shopper's to break: another version of the site may have
//! written an older shape, an extension may have edited it, a product may have
//! been deleted since. [`StoredCart::recover`] therefore never fails: it keeps
//! every line it can read, drops the rest, and says how many it dropped.
//!
//! The current shape (version 1):
//!
//! ```json
//! {"v": 1, "merge_id": "g-…", "lines": [
//!   {"product_id": 12, "quantity": 2, "added_at_ms": 1764000000000, "price_seen_cents": 1999}
//! ]}
//! ```
//!
//! Recognised older shapes: a bare array of lines, and an object mapping product
//! ids to quantities (`{"12": 2}`).

use crate::cart::{CartLine, MAX_LINE_QUANTITY, MAX_LINES};
use crate::domain::ProductId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The LocalStorage key.
pub const STORAGE_KEY: &str = "ninefold.cart";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCart {
    pub v: u32,
    /// Names this cart's merge into an account: chosen when the cart is started
    /// and kept until the server confirms the merge, so every retry (another tab,
    /// a lost response) names the same merge and is applied at most once.
    pub merge_id: String,
    pub lines: Vec<CartLine>,
}

/// What recovery had to do to a stored cart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The stored text was not a cart at all and was discarded.
    pub unreadable: bool,
    /// Lines that could not be read (or exceeded the line limit) and were dropped.
    pub dropped_lines: usize,
    /// Lines whose quantity was out of range and was brought into it.
    pub adjusted_lines: usize,
}

impl Recovery {
    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }

    /// A short sentence for the shopper, or `None` when nothing was lost.
    pub fn notice(&self) -> Option<String> {
        if self.unreadable {
            return Some("Your saved cart could not be read, so it was emptied.".to_owned());
        }
        match (self.dropped_lines, self.adjusted_lines) {
            (0, 0) => None,
            (0, n) => Some(format!("{n} saved {} had an impossible quantity and {} corrected.", items(n), was_were(n))),
            (d, 0) => Some(format!("{d} saved {} could not be restored and {} removed.", items(d), was_were(d))),
            (d, n) => Some(format!("{d} saved {} could not be restored; {n} had {} quantity corrected.", items(d), if n == 1 { "its" } else { "their" })),
        }
    }
}

fn items(n: usize) -> &'static str {
    if n == 1 { "item" } else { "items" }
}

fn was_were(n: usize) -> &'static str {
    if n == 1 { "was" } else { "were" }
}

impl StoredCart {
    pub fn empty(merge_id: String) -> Self {
        Self { v: VERSION, merge_id, lines: Vec::new() }
    }

    /// Reads what LocalStorage held (`None`: nothing). `new_merge_id` names the
    /// cart when the stored one has no usable id.
    pub fn recover(raw: Option<&str>, new_merge_id: impl FnOnce() -> String) -> (Self, Recovery) {
        let mut recovery = Recovery::default();
        let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
            return (Self::empty(new_merge_id()), recovery);
        };
        let Ok(value) = serde_json::from_str::<Value>(raw) else {
            recovery.unreadable = true;
            return (Self::empty(new_merge_id()), recovery);
        };
        let (merge_id, candidates): (Option<String>, Vec<Value>) = match value {
            Value::Object(mut object) if object.contains_key("lines") => {
                let merge_id = object.get("merge_id").and_then(Value::as_str).filter(|m| crate::cart::parse_merge_id("merge_id", m).is_ok()).map(str::to_owned);
                match object.remove("lines") {
                    Some(Value::Array(lines)) => (merge_id, lines),
                    _ => {
                        recovery.unreadable = true;
                        (merge_id, Vec::new())
                    }
                }
            }
            Value::Array(lines) => (None, lines),
            // The oldest shape: {"<product id>": quantity}.
            Value::Object(object) => (None, object.into_iter().map(|(id, quantity)| serde_json::json!({"product_id": id, "quantity": quantity})).collect()),
            _ => {
                recovery.unreadable = true;
                (None, Vec::new())
            }
        };
        let mut cart = Self::empty(merge_id.unwrap_or_else(new_merge_id));
        for candidate in candidates {
            match read_line(&candidate) {
                Some((line, adjusted)) if cart.lines.len() < MAX_LINES && !cart.lines.iter().any(|l| l.product_id == line.product_id) => {
                    recovery.adjusted_lines += usize::from(adjusted);
                    cart.lines.push(line);
                }
                _ => recovery.dropped_lines += 1,
            }
        }
        (cart, recovery)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a cart always serialises")
    }

    pub fn total_quantity(&self) -> i64 {
        self.lines.iter().map(|l| l.quantity).sum()
    }

    /// Adds `quantity` of a product, capped at [`MAX_LINE_QUANTITY`]. Returns false
    /// (and changes nothing) when the product is new and the cart is full.
    pub fn add(&mut self, product_id: ProductId, quantity: i64, now_ms: i64, price_cents: i64) -> bool {
        let quantity = quantity.clamp(1, MAX_LINE_QUANTITY);
        if let Some(line) = self.lines.iter_mut().find(|l| l.product_id == product_id) {
            line.quantity = line.quantity.saturating_add(quantity).min(MAX_LINE_QUANTITY);
            line.price_seen_cents = Some(price_cents);
            return true;
        }
        if self.lines.len() >= MAX_LINES {
            return false;
        }
        self.lines.push(CartLine { product_id, quantity, added_at_ms: now_ms, price_seen_cents: Some(price_cents) });
        true
    }

    /// Sets a line's quantity; 0 removes it. Values beyond the range are clamped.
    pub fn set(&mut self, product_id: ProductId, quantity: i64) {
        if quantity <= 0 {
            self.lines.retain(|l| l.product_id != product_id);
        } else if let Some(line) = self.lines.iter_mut().find(|l| l.product_id == product_id) {
            line.quantity = quantity.min(MAX_LINE_QUANTITY);
        }
    }
}

/// One stored line, and whether its quantity had to be brought into range.
fn read_line(value: &Value) -> Option<(CartLine, bool)> {
    let object = value.as_object()?;
    let product_id = match object.get("product_id")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    let product_id = ProductId::parse("product_id", product_id).ok()?;
    let quantity = object.get("quantity")?.as_f64()?;
    if !quantity.is_finite() || quantity < 1.0 {
        return None;
    }
    let clamped = (quantity.floor() as i64).clamp(1, MAX_LINE_QUANTITY);
    let adjusted = clamped as f64 != quantity;
    let added_at_ms = object.get("added_at_ms").and_then(Value::as_i64).filter(|t| *t >= 0).unwrap_or(0);
    let price_seen_cents = object.get("price_seen_cents").and_then(Value::as_i64).filter(|p| *p >= 0);
    Some((CartLine { product_id, quantity: clamped, added_at_ms, price_seen_cents }, adjusted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: i64) -> ProductId {
        ProductId::parse("id", n).unwrap()
    }

    fn fresh() -> String {
        "g-fresh".to_owned()
    }

    #[test]
    fn a_current_cart_round_trips() {
        let mut cart = StoredCart::empty("g-abc".into());
        assert!(cart.add(id(3), 2, 1000, 1999));
        assert!(cart.add(id(3), 200, 2000, 2099));
        assert!(cart.add(id(5), 1, 3000, 500));
        let (back, recovery) = StoredCart::recover(Some(&cart.to_json()), fresh);
        assert!(recovery.is_clean());
        assert_eq!(back, cart);
        assert_eq!(back.lines[0].quantity, MAX_LINE_QUANTITY);
        assert_eq!(back.lines[0].added_at_ms, 1000, "adding more keeps the first time");
        assert_eq!(back.total_quantity(), 100);
    }

    #[test]
    fn garbage_is_an_empty_cart_with_a_notice() {
        for raw in ["{not json", "42", "\"cart\"", "null", "{\"lines\": 7}"] {
            let (cart, recovery) = StoredCart::recover(Some(raw), fresh);
            assert!(cart.lines.is_empty(), "{raw}");
            assert!(recovery.unreadable, "{raw}");
            assert!(recovery.notice().is_some());
        }
        let (cart, recovery) = StoredCart::recover(None, fresh);
        assert!(cart.lines.is_empty() && recovery.is_clean() && cart.merge_id == "g-fresh");
    }

    #[test]
    fn old_shapes_and_bad_lines_keep_what_can_be_kept() {
        let (cart, recovery) = StoredCart::recover(Some(r#"[{"product_id": "4", "quantity": 2}, {"product_id": -1, "quantity": 1}, {"quantity": 3}, {"product_id": 4, "quantity": 1}]"#), fresh);
        assert_eq!(cart.lines.iter().map(|l| (l.product_id.get(), l.quantity)).collect::<Vec<_>>(), vec![(4, 2)]);
        assert_eq!(recovery.dropped_lines, 3, "bad id, no id, duplicate");
        assert_eq!(cart.merge_id, "g-fresh");

        let (cart, recovery) = StoredCart::recover(Some(r#"{"7": 3, "8": "lots", "9": 1e9}"#), fresh);
        assert_eq!(cart.lines.iter().map(|l| (l.product_id.get(), l.quantity)).collect::<Vec<_>>(), vec![(7, 3), (9, MAX_LINE_QUANTITY)]);
        assert_eq!((recovery.dropped_lines, recovery.adjusted_lines), (1, 1));
        assert!(recovery.notice().unwrap().contains("could not be restored"));

        let (cart, _) = StoredCart::recover(Some(r#"{"v": 1, "merge_id": "has space", "lines": []}"#), fresh);
        assert_eq!(cart.merge_id, "g-fresh", "an unusable merge id is replaced");
    }

    proptest! {
        #[test]
        fn recovery_never_panics_and_keeps_lines_in_range(raw in ".{0,200}") {
            let (cart, _) = StoredCart::recover(Some(&raw), fresh);
            prop_assert!(cart.lines.len() <= MAX_LINES);
            prop_assert!(cart.lines.iter().all(|l| (1..=MAX_LINE_QUANTITY).contains(&l.quantity)));
        }

        #[test]
        fn adds_never_exceed_the_caps(adds in prop::collection::vec((1i64..130, -5i64..300), 0..300)) {
            let mut cart = StoredCart::empty("m".into());
            for (product, quantity) in adds {
                cart.add(id(product), quantity, 0, 100);
            }
            prop_assert!(cart.lines.len() <= MAX_LINES);
            prop_assert!(cart.lines.iter().all(|l| (1..=MAX_LINE_QUANTITY).contains(&l.quantity)));
        }
    }
}
