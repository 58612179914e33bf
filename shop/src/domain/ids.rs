//! Row identifiers. Positive `i64`s; a non-positive id can never name a row, so it is
//! refused at the edge instead of becoming a "not found" deep inside.

use super::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! positive_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            pub fn parse(field: &str, raw: i64) -> Result<Self, FieldError> {
                if raw > 0 {
                    Ok(Self(raw))
                } else {
                    Err(FieldError::new(field, "must be a positive id"))
                }
            }

            /// For values read back from storage, where the schema guarantees positivity.
            pub fn from_stored(raw: i64) -> Self {
                debug_assert!(raw > 0, "stored id {raw} is not positive");
                Self(raw)
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, FieldError> {
                let raw: i64 = s.parse().map_err(|_| FieldError::new("id", "must be a positive integer"))?;
                Self::parse("id", raw)
            }
        }
    };
}

positive_id!(
    /// A user account (buyer, seller or admin).
    UserId
);
positive_id!(
    /// A product in the catalog.
    ProductId
);

impl UserId {
    /// How many distinct shard suffixes there are: an order id ends in the last six
    /// digits of its buyer's id, and those digits pick the order's shard.
    pub const SUFFIX_SPACE: i64 = 1_000_000;

    /// The id of the `sequence`-th account (1-based).
    ///
    /// Sequential ids would end in 000001, 000002, ... so the first hundreds of
    /// thousands of buyers would all land in the lowest suffix range, on one shard.
    /// Instead the id is the sequence number followed by six digits that spread
    /// consecutive accounts evenly over the whole suffix space:
    /// `id = sequence * 10^6 + (sequence * 654_321 + 123_457) mod 10^6`.
    /// The multiplier is coprime with 10^6, so the suffix is a permutation of the
    /// sequence modulo 10^6; the leading sequence number keeps ids unique.
    pub fn from_sequence(sequence: i64) -> Self {
        debug_assert!(sequence > 0 && sequence < i64::MAX / Self::SUFFIX_SPACE);
        let suffix = ((sequence % Self::SUFFIX_SPACE) * 654_321 + 123_457) % Self::SUFFIX_SPACE;
        Self(sequence * Self::SUFFIX_SPACE + suffix)
    }

    /// The last six digits: what routes this buyer's orders to a shard.
    pub fn shard_suffix(self) -> u32 {
        (self.0 % Self::SUFFIX_SPACE) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn positive_ids_round_trip_through_text(raw in 1i64..) {
            let id = ProductId::parse("id", raw).unwrap();
            prop_assert_eq!(id.to_string().parse::<ProductId>().unwrap(), id);
        }

        #[test]
        fn non_positive_ids_are_refused(raw in i64::MIN..=0) {
            prop_assert!(UserId::parse("user_id", raw).is_err());
        }
    }

    #[test]
    fn consecutive_accounts_spread_over_the_suffix_space() {
        let quarter = (UserId::SUFFIX_SPACE / 4) as u32;
        let mut per_quarter = [0u32; 4];
        for sequence in 1..=1000 {
            per_quarter[(UserId::from_sequence(sequence).shard_suffix() / quarter) as usize] += 1;
        }
        assert!(per_quarter.iter().all(|&n| (200..=300).contains(&n)), "{per_quarter:?}");
    }

    proptest! {
        #[test]
        fn account_ids_are_unique_and_positive(a in 1i64..1_000_000_000, b in 1i64..1_000_000_000) {
            prop_assume!(a != b);
            let (x, y) = (UserId::from_sequence(a), UserId::from_sequence(b));
            prop_assert!(x.get() > 0 && y.get() > 0);
            prop_assert_ne!(x, y);
        }
    }

    #[test]
    fn garbage_text_is_not_an_id() {
        for s in ["", "abc", "1.5", "-3", "0", "99999999999999999999"] {
            assert!(s.parse::<ProductId>().is_err(), "{s:?} parsed");
        }
    }
}
