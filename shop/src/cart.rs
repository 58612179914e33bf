//! Carts and the rules for merging a guest's cart into an account's at sign-in
//! (DESIGN.md, failure mode 3). Pure functions over plain types: they run on the
//! server and compile to wasm for the browser.
//!
//! Idempotence is a property of the data, not of the caller: a cart remembers the
//! merge ids it has absorbed, so applying merge `m` twice is applying it once, and a
//! retried sign-in, a second tab or a lost response can never double a quantity.

use crate::domain::{FieldError, Money, ProductId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most of one product a cart line may hold.
pub const MAX_LINE_QUANTITY: i64 = 99;
/// The most lines a cart may hold.
pub const MAX_LINES: usize = 100;

/// One line: a product, how many (1..=99), and when it was first added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub product_id: ProductId,
    pub quantity: i64,
    /// Milliseconds since the Unix epoch.
    pub added_at_ms: i64,
    /// The unit price the shopper saw when the line was added or last changed, so
    /// the cart page can say when it has changed since. Unknown for old lines.
    #[serde(default)]
    pub price_seen_cents: Option<i64>,
}

impl CartLine {
    pub fn new(product_id: ProductId, quantity: i64, added_at_ms: i64) -> Self {
        Self { product_id, quantity, added_at_ms, price_seen_cents: None }
    }
}

/// A line quantity as a shopper sets it: 0 (remove) ..= 99.
pub fn parse_line_quantity(field: &str, raw: i64) -> Result<i64, FieldError> {
    if (0..=MAX_LINE_QUANTITY).contains(&raw) {
        Ok(raw)
    } else {
        Err(FieldError::new(field, format!("must be between 0 and {MAX_LINE_QUANTITY} (0 removes the line)")))
    }
}

/// One cart line as the cart page shows it: live price and stock beside what the
/// shopper saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLineView {
    pub product_id: ProductId,
    pub title: String,
    pub quantity: i64,
    pub unit_price: Money,
    /// The price when the line was added, when it differs from today's.
    pub price_was: Option<Money>,
    pub available: i64,
    /// The line lives in this browser's storage (a guest with script), not on the server.
    pub in_browser: bool,
}

impl CartLineView {
    pub fn line_total(&self) -> Money {
        Money::from_stored(self.unit_price.cents() * self.quantity)
    }
}

/// The lines of one seller: each group checks out as one order (an order holds
/// one seller's products).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartGroup {
    pub seller_id: UserId,
    pub seller_name: String,
    pub lines: Vec<CartLineView>,
}

impl CartGroup {
    pub fn total(&self) -> Money {
        Money::from_stored(self.lines.iter().map(|l| l.line_total().cents()).sum())
    }
}

/// A cart grouped by seller, and the browser lines whose product is gone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupedCart {
    pub groups: Vec<CartGroup>,
    pub vanished: Vec<ProductId>,
}

/// A merge request's id: 1..=100 visible ASCII characters, chosen by the client
/// once per sign-in and reused on every retry.
pub fn parse_merge_id(field: &str, raw: &str) -> Result<String, FieldError> {
    if !raw.is_empty() && raw.len() <= 100 && raw.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::new(field, "must be 1 to 100 visible ASCII characters"))
    }
}

/// A cart: its lines by product, and the merges it has absorbed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub lines: BTreeMap<ProductId, CartLine>,
    pub applied_merges: Vec<String>,
}

/// A line the merge could not fully honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CappedLine {
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub product_id: ProductId,
    /// What the two carts held together.
    pub requested: i64,
    /// What the merged cart holds.
    pub kept: i64,
}

/// What a merge did, for telling the shopper.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct MergeReport {
    /// Guest lines that added something to the account's cart.
    pub lines_added: usize,
    pub capped: Vec<CappedLine>,
    /// This merge id had been applied before: nothing changed.
    pub already_applied: bool,
}

impl Cart {
    pub fn from_lines(lines: impl IntoIterator<Item = CartLine>) -> Self {
        Self { lines: lines.into_iter().map(|l| (l.product_id, l)).collect(), applied_merges: Vec::new() }
    }

    /// Merges guest `lines` into this cart, once per `merge_id`.
    ///
    /// - Quantities of the same product add up (duplicates within `lines` too).
    /// - The sum is capped by `available(product)` and by [`MAX_LINE_QUANTITY`]; a
    ///   line already in this cart never shrinks, and a line is never dropped: a
    ///   product that is sold out stays with at least one unit, for the cart page to
    ///   say so. Products `available` does not know (deleted) are dropped and reported.
    /// - A merged line keeps the earliest `added_at_ms`.
    /// - Lines beyond [`MAX_LINES`] are not added (reported as capped to 0).
    pub fn merge(&self, merge_id: &str, lines: &[CartLine], available: impl Fn(ProductId) -> Option<i64>) -> (Cart, MergeReport) {
        if self.applied_merges.iter().any(|m| m == merge_id) {
            return (self.clone(), MergeReport { already_applied: true, ..Default::default() });
        }
        let mut incoming: BTreeMap<ProductId, CartLine> = BTreeMap::new();
        for line in lines.iter().filter(|l| l.quantity > 0) {
            incoming
                .entry(line.product_id)
                .and_modify(|l| {
                    l.quantity = l.quantity.saturating_add(line.quantity);
                    if line.added_at_ms < l.added_at_ms {
                        l.added_at_ms = line.added_at_ms;
                        l.price_seen_cents = line.price_seen_cents.or(l.price_seen_cents);
                    }
                })
                .or_insert(*line);
        }
        let mut merged = self.clone();
        let mut report = MergeReport::default();
        for (product_id, guest) in incoming {
            let existing = self.lines.get(&product_id);
            let had = existing.map_or(0, |l| l.quantity);
            let requested = had.saturating_add(guest.quantity);
            let Some(stock) = available(product_id) else {
                report.capped.push(CappedLine { product_id, requested, kept: had });
                continue;
            };
            if existing.is_none() && merged.lines.len() >= MAX_LINES {
                report.capped.push(CappedLine { product_id, requested, kept: 0 });
                continue;
            }
            let cap = MAX_LINE_QUANTITY.min(stock.max(1));
            let kept = had.max(requested.min(cap));
            if kept < requested {
                report.capped.push(CappedLine { product_id, requested, kept });
            }
            if kept > had {
                report.lines_added += 1;
            }
            let added_at_ms = existing.map_or(guest.added_at_ms, |l| l.added_at_ms.min(guest.added_at_ms));
            // The account's line was there first: the price it saw is the one to compare with.
            let price_seen_cents = existing.and_then(|l| l.price_seen_cents).or(guest.price_seen_cents);
            merged.lines.insert(product_id, CartLine { product_id, quantity: kept, added_at_ms, price_seen_cents });
        }
        merged.applied_merges.push(merge_id.to_owned());
        (merged, report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = CartLine> {
        (1i64..12, 1i64..=MAX_LINE_QUANTITY, 0i64..1_000_000).prop_map(|(id, quantity, added_at_ms)| {
            CartLine::new(ProductId::parse("id", id).unwrap(), quantity, added_at_ms)
        })
    }

    fn stock_of(stock: &[i64]) -> impl Fn(ProductId) -> Option<i64> + '_ {
        // Product 11 does not exist (deleted); the rest have the given stock.
        move |id| if id.get() == 11 { None } else { Some(stock[(id.get() as usize) % stock.len()]) }
    }

    proptest! {
        #[test]
        fn applying_one_merge_twice_is_applying_it_once(account in prop::collection::vec(line(), 0..8), guest in prop::collection::vec(line(), 0..8), stock in prop::collection::vec(0i64..150, 1..5)) {
            let cart = Cart::from_lines(account);
            let (once, _) = cart.merge("m1", &guest, stock_of(&stock));
            let (twice, report) = once.merge("m1", &guest, stock_of(&stock));
            prop_assert_eq!(&twice, &once);
            prop_assert!(report.already_applied);
        }

        #[test]
        fn caps_are_never_exceeded(account in prop::collection::vec(line(), 0..8), guest in prop::collection::vec(line(), 0..8), stock in prop::collection::vec(0i64..150, 1..5)) {
            let cart = Cart::from_lines(account);
            let (merged, _) = cart.merge("m", &guest, stock_of(&stock));
            for (id, line) in &merged.lines {
                let had = cart.lines.get(id).map_or(0, |l| l.quantity);
                let cap = MAX_LINE_QUANTITY.min(stock_of(&stock)(*id).unwrap_or(0).max(1));
                prop_assert!(line.quantity >= 1 && line.quantity <= MAX_LINE_QUANTITY);
                prop_assert!(line.quantity <= had.max(cap), "{} > max({had}, {cap})", line.quantity);
            }
        }

        #[test]
        fn no_line_is_lost_or_shrunk(account in prop::collection::vec(line(), 0..8), guest in prop::collection::vec(line(), 0..8), stock in prop::collection::vec(0i64..150, 1..5)) {
            let cart = Cart::from_lines(account);
            let (merged, report) = cart.merge("m", &guest, stock_of(&stock));
            for (id, line) in &cart.lines {
                prop_assert!(merged.lines.get(id).is_some_and(|m| m.quantity >= line.quantity && m.added_at_ms <= line.added_at_ms));
            }
            for line in &guest {
                let kept = merged.lines.contains_key(&line.product_id);
                let reported = report.capped.iter().any(|c| c.product_id == line.product_id);
                prop_assert!(kept || reported, "guest line {:?} vanished without a word", line);
            }
        }

        #[test]
        fn the_order_of_lines_does_not_matter(account in prop::collection::vec(line(), 0..8), guest in prop::collection::vec(line(), 0..8), stock in prop::collection::vec(0i64..150, 1..5)) {
            let cart = Cart::from_lines(account);
            let mut reversed = guest.clone();
            reversed.reverse();
            let (a, _) = cart.merge("m", &guest, stock_of(&stock));
            let (b, _) = cart.merge("m", &reversed, stock_of(&stock));
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn quantities_add_up_to_the_caps_and_the_earliest_time_wins() {
        let p = |id| ProductId::parse("id", id).unwrap();
        let cart = Cart::from_lines([CartLine::new(p(1), 2, 500)]);
        let guest = [
            CartLine::new(p(1), 3, 100),
            CartLine::new(p(2), 90, 700),
            CartLine::new(p(2), 20, 600),
            CartLine::new(p(3), 4, 10),
        ];
        let stock = |id: ProductId| Some(match id.get() { 1 => 100, 2 => 1000, _ => 0 });
        let (merged, report) = cart.merge("sign-in-1", &guest, stock);
        assert_eq!(merged.lines[&p(1)], CartLine::new(p(1), 5, 100));
        assert_eq!(merged.lines[&p(2)].quantity, MAX_LINE_QUANTITY);
        assert_eq!(merged.lines[&p(2)].added_at_ms, 600);
        assert_eq!(merged.lines[&p(3)].quantity, 1, "sold out: kept with one unit, for the cart page to flag");
        assert_eq!(report.lines_added, 3);
        assert_eq!(report.capped, vec![
            CappedLine { product_id: p(2), requested: 110, kept: 99 },
            CappedLine { product_id: p(3), requested: 4, kept: 1 },
        ]);
    }

    #[test]
    fn bad_quantities_and_merge_ids_are_refused() {
        assert!(parse_line_quantity("quantity", -1).is_err());
        assert!(parse_line_quantity("quantity", 100).is_err());
        assert_eq!(parse_line_quantity("quantity", 0).unwrap(), 0);
        assert!(parse_merge_id("merge_id", "").is_err());
        assert!(parse_merge_id("merge_id", "has space").is_err());
        assert!(parse_merge_id("merge_id", &"m".repeat(101)).is_err());
    }
}
