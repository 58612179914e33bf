//! Money in integer minor units (cents). Never a float.

use super::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A non-negative amount of money in cents, at most [`Money::MAX_CENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    /// Ten million in major units: far above any real price, far below `i64` overflow even
    /// when multiplied by the largest [`super::Quantity`].
    pub const MAX_CENTS: i64 = 1_000_000_000;
    pub const ZERO: Money = Money(0);
    /// One top-up moves at most a hundred thousand in major units.
    pub const MAX_TOP_UP_CENTS: i64 = 10_000_000;

    /// A price: at least one cent, at most the cap.
    pub fn parse_price(field: &str, cents: i64) -> Result<Self, FieldError> {
        match cents {
            c if c < 1 => Err(FieldError::new(field, "must be at least 1 cent")),
            c if c > Self::MAX_CENTS => Err(FieldError::new(field, format!("must be at most {} cents", Self::MAX_CENTS))),
            c => Ok(Self(c)),
        }
    }

    /// A wallet top-up: at least one cent, at most [`Money::MAX_TOP_UP_CENTS`].
    pub fn parse_top_up(field: &str, cents: i64) -> Result<Self, FieldError> {
        match cents {
            c if c < 1 => Err(FieldError::new(field, "must be at least 1 cent")),
            c if c > Self::MAX_TOP_UP_CENTS => Err(FieldError::new(field, format!("must be at most {} cents per top-up", Self::MAX_TOP_UP_CENTS))),
            c => Ok(Self(c)),
        }
    }

    /// An amount as a person types it in major units ("12", "12.5", "12.50",
    /// "$1,200.00"): at most two decimals, never negative, never a float.
    pub fn parse_major(field: &str, text: &str) -> Result<i64, FieldError> {
        let bad = || FieldError::new(field, "must be an amount like 12.50");
        let cleaned: String = text.trim().trim_start_matches('$').chars().filter(|c| *c != ' ').collect();
        let (grouped, fraction) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
        // Commas only group thousands: "12,5" (a decimal comma) must not become 125.
        let mut groups = grouped.split(',');
        let first = groups.next().unwrap_or_default();
        if grouped.contains(',') && (first.is_empty() || first.len() > 3 || !groups.all(|g| g.len() == 3)) {
            return Err(bad());
        }
        let whole = grouped.replace(',', "");
        let whole = whole.as_str();
        if whole.is_empty() && fraction.is_empty() || fraction.len() > 2 || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
        let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
        whole.checked_mul(100).and_then(|c| c.checked_add(fraction)).ok_or_else(bad)
    }

    pub fn from_stored(cents: i64) -> Self {
        debug_assert!(cents >= 0, "stored amount {cents} is negative");
        Self(cents)
    }

    pub fn cents(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Money {
    /// Shown as major units with two decimals, e.g. `12.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_major_units_parse_exactly() {
        assert_eq!(Money::parse_major("a", "12").unwrap(), 1200);
        assert_eq!(Money::parse_major("a", " 12.5 ").unwrap(), 1250);
        assert_eq!(Money::parse_major("a", "$1,200.07").unwrap(), 120_007);
        assert_eq!(Money::parse_major("a", ".99").unwrap(), 99);
        assert_eq!(Money::parse_major("a", "1,234,567").unwrap(), 123_456_700);
        for decimal_comma in ["12,5", "12,50", "1,2345", ",500", "1234,567"] {
            assert!(Money::parse_major("a", decimal_comma).is_err(), "{decimal_comma}");
        }
        for bad in ["", ".", "-5", "1.234", "1e3", "abc", "12.5.1", "99999999999999999999"] {
            assert!(Money::parse_major("a", bad).is_err(), "{bad}");
        }
    }
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn prices_in_range_are_kept_exactly(c in 1..=Money::MAX_CENTS) {
            prop_assert_eq!(Money::parse_price("price_cents", c).unwrap().cents(), c);
        }

        #[test]
        fn prices_out_of_range_are_refused(c in prop_oneof![i64::MIN..1, (Money::MAX_CENTS + 1)..]) {
            let err = Money::parse_price("price_cents", c).unwrap_err();
            prop_assert_eq!(err.field, "price_cents");
        }
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Money::from_stored(1999).to_string(), "19.99");
        assert_eq!(Money::from_stored(5).to_string(), "0.05");
    }
}
