//! Row identifiers. Positive `i64`s; a non-positive id can never name a row, so it is
//! refused at the edge instead of becoming a "not found" deep inside.

use super::FieldError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! positive_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The largest id: 2^53 - 1, which every JSON reader holds exactly.
            pub const MAX: i64 = 9_007_199_254_740_991;

            pub fn parse(field: &str, raw: i64) -> Result<Self, FieldError> {
                if (1..=Self::MAX).contains(&raw) {
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
        fn positive_ids_round_trip_through_text(raw in 1i64..=ProductId::MAX) {
            let id = ProductId::parse("id", raw).unwrap();
            prop_assert_eq!(id.to_string().parse::<ProductId>().unwrap(), id);
        }

        #[test]
        fn non_positive_ids_are_refused(raw in i64::MIN..=0) {
            prop_assert!(UserId::parse("user_id", raw).is_err());
        }

        #[test]
        fn ids_past_what_json_readers_hold_are_refused(raw in (ProductId::MAX + 1)..) {
            prop_assert!(ProductId::parse("id", raw).is_err());
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

/// An order id: 19 decimal digits, a 13-digit sequence number followed by the last
/// six digits of the buyer's id (DESIGN.md, failure mode 9).
///
/// The suffix makes the id self-routing: it names the buyer's shard, so "order by
/// id" touches one shard without a lookup table. It fits an `i64` (the largest is
/// below 2^63), but exceeds 2^53, so JSON carries it as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(i64);

impl OrderId {
    /// The smallest 13-digit number: every id has exactly 19 digits.
    pub const FIRST_SEQUENCE: i64 = 1_000_000_000_000;
    /// The largest sequence whose id still fits an `i64`.
    pub const LAST_SEQUENCE: i64 = (i64::MAX - 999_999) / 1_000_000;
    const SUFFIX_SPACE: i64 = UserId::SUFFIX_SPACE;

    pub fn new(sequence: i64, buyer: UserId) -> Self {
        assert!((Self::FIRST_SEQUENCE..=Self::LAST_SEQUENCE).contains(&sequence), "order sequence {sequence} out of range");
        Self(sequence * Self::SUFFIX_SPACE + i64::from(buyer.shard_suffix()))
    }

    /// Parses the 19-digit text form. Anything else (signs, spaces, other lengths) is refused.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new(field, "must be an order id: 19 digits");
        if raw.len() != 19 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let value: i64 = raw.parse().map_err(|_| invalid())?;
        if value / Self::SUFFIX_SPACE < Self::FIRST_SEQUENCE {
            return Err(invalid());
        }
        Ok(Self(value))
    }

    pub fn from_stored(raw: i64) -> Self {
        debug_assert!(raw / Self::SUFFIX_SPACE >= Self::FIRST_SEQUENCE, "stored order id {raw} is not 19 digits");
        Self(raw)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn sequence(self) -> i64 {
        self.0 / Self::SUFFIX_SPACE
    }

    /// The last six digits: the buyer's shard suffix.
    pub fn suffix(self) -> u32 {
        (self.0 % Self::SUFFIX_SPACE) as u32
    }
}

impl std::str::FromStr for OrderId {
    type Err = FieldError;

    fn from_str(raw: &str) -> Result<Self, FieldError> {
        Self::parse("id", raw)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:019}", self.0)
    }
}

impl Serialize for OrderId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OrderId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        OrderId::parse("order_id", &text).map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod order_id_tests {
    use super::*;
    use proptest::prelude::*;

    fn buyer() -> impl Strategy<Value = UserId> {
        (1i64..1_000_000_000).prop_map(UserId::from_sequence)
    }

    fn sequence() -> impl Strategy<Value = i64> {
        OrderId::FIRST_SEQUENCE..=OrderId::LAST_SEQUENCE
    }

    proptest! {
        #[test]
        fn every_id_has_19_digits_and_round_trips_through_text(seq in sequence(), buyer in buyer()) {
            let id = OrderId::new(seq, buyer);
            let text = id.to_string();
            prop_assert_eq!(text.len(), 19);
            prop_assert_eq!(OrderId::parse("id", &text).unwrap(), id);
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(json.clone(), format!("\"{text}\""));
            prop_assert_eq!(serde_json::from_str::<OrderId>(&json).unwrap(), id);
        }

        #[test]
        fn the_suffix_and_sequence_are_recovered_from_any_id(seq in sequence(), buyer in buyer()) {
            let id = OrderId::new(seq, buyer);
            prop_assert_eq!(id.sequence(), seq);
            prop_assert_eq!(id.suffix(), buyer.shard_suffix());
        }

        #[test]
        fn distinct_sequences_give_distinct_ids_for_one_buyer(a in sequence(), b in sequence(), buyer in buyer()) {
            prop_assume!(a != b);
            prop_assert_ne!(OrderId::new(a, buyer), OrderId::new(b, buyer));
        }

        #[test]
        fn arbitrary_text_never_panics_and_only_19_digits_parse(raw in "\\PC{0,25}") {
            if let Ok(id) = OrderId::parse("id", &raw) {
                prop_assert_eq!(id.to_string(), raw);
            }
        }

    }

    #[test]
    fn malformed_ids_are_refused() {
        for raw in ["", "123", "-100000000000000000", "0000000000000000001", "12345678901234567890", "1234567890123456789 ", "99999999999999999999"] {
            assert!(OrderId::parse("id", raw).is_err(), "{raw:?} parsed");
        }
        assert!(OrderId::parse("id", "9223372036854775807").is_ok());
        assert!(OrderId::parse("id", "9223372036854775808").is_err());
    }

}
