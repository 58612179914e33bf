//! Order identity and placement: the 19-digit order id and the shard map.
//! Plain types (no storage), shared with the browser.

use crate::domain::{FieldError, UserId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

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

/// Which physical shard holds the orders of a suffix range. `starts[k]` is the
/// first suffix of shard `k`; ranges are contiguous and cover 0..=999_999, so a
/// shard can later be split by moving one boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMap {
    starts: Vec<u32>,
}

impl ShardMap {
    const SUFFIXES: u32 = UserId::SUFFIX_SPACE as u32;

    /// `shards` equal ranges.
    pub fn even(shards: usize) -> Self {
        assert!(shards > 0 && shards <= Self::SUFFIXES as usize, "shard count {shards} out of range");
        let width = Self::SUFFIXES as u64;
        Self { starts: (0..shards as u64).map(|k| (k * width / shards as u64) as u32).collect() }
    }

    /// Explicit range starts: must begin at 0, increase strictly, stay below 10^6.
    pub fn from_starts(starts: Vec<u32>) -> Result<Self, String> {
        if starts.first() != Some(&0) {
            return Err("the first shard range must start at suffix 0".to_owned());
        }
        if !starts.windows(2).all(|w| w[0] < w[1]) || starts.last().is_some_and(|&s| s >= Self::SUFFIXES) {
            return Err("shard range starts must increase strictly and stay below 1000000".to_owned());
        }
        Ok(Self { starts })
    }

    pub fn shard_count(&self) -> usize {
        self.starts.len()
    }

    pub fn shard_for_suffix(&self, suffix: u32) -> usize {
        debug_assert!(suffix < Self::SUFFIXES);
        self.starts.partition_point(|&start| start <= suffix) - 1
    }

    pub fn shard_for_buyer(&self, buyer: UserId) -> usize {
        self.shard_for_suffix(buyer.shard_suffix())
    }

    pub fn shard_for_order(&self, order: OrderId) -> usize {
        self.shard_for_suffix(order.suffix())
    }
}

#[cfg(test)]
mod tests {
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
        fn the_suffix_sequence_and_shard_are_recovered_from_any_id(seq in sequence(), buyer in buyer(), shards in 1usize..64) {
            let id = OrderId::new(seq, buyer);
            prop_assert_eq!(id.sequence(), seq);
            prop_assert_eq!(id.suffix(), buyer.shard_suffix());
            let map = ShardMap::even(shards);
            prop_assert_eq!(map.shard_for_order(id), map.shard_for_buyer(buyer));
            prop_assert!(map.shard_for_order(id) < shards);
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

        #[test]
        fn even_maps_cover_every_suffix_in_order(shards in 1usize..100, suffix in 0u32..1_000_000) {
            let map = ShardMap::even(shards);
            let shard = map.shard_for_suffix(suffix);
            prop_assert!(shard < shards);
            if suffix > 0 {
                prop_assert!(map.shard_for_suffix(suffix - 1) <= shard);
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

    #[test]
    fn shard_maps_route_by_range() {
        let map = ShardMap::from_starts(vec![0, 500_000, 750_000]).unwrap();
        assert_eq!(map.shard_for_suffix(0), 0);
        assert_eq!(map.shard_for_suffix(499_999), 0);
        assert_eq!(map.shard_for_suffix(500_000), 1);
        assert_eq!(map.shard_for_suffix(999_999), 2);
        assert!(ShardMap::from_starts(vec![1, 2]).is_err());
        assert!(ShardMap::from_starts(vec![0, 5, 5]).is_err());
        assert!(ShardMap::from_starts(vec![0, 1_000_000]).is_err());
        assert_eq!(ShardMap::even(4), ShardMap::from_starts(vec![0, 250_000, 500_000, 750_000]).unwrap());
    }
}

/// Where an order is in its life. Transitions are conditional updates on the
/// current status, so two racing transitions cannot both win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Shipped,
    Completed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [Self::PendingPayment, Self::Paid, Self::Shipped, Self::Completed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| FieldError::new(field, "is not an order status"))
    }
}

/// One line of a checkout: a product and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct LineRequest {
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub product_id: crate::domain::ProductId,
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub quantity: crate::domain::Quantity,
}

/// Where to send an order. Every field is bounded; `line2` may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ShippingAddress {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

impl ShippingAddress {
    /// Trims every field and checks its length; `field` prefixes the names in errors.
    pub fn parse(raw: ShippingAddress) -> Result<Self, FieldError> {
        let bounded = |name: &str, value: &str, min: usize, max: usize| -> Result<String, FieldError> {
            let value = value.trim();
            let chars = value.chars().count();
            let field = format!("shipping_address.{name}");
            if chars < min {
                return Err(FieldError::new(&field, "must not be empty"));
            }
            if chars > max || value.chars().any(char::is_control) {
                return Err(FieldError::new(&field, format!("must be at most {max} characters, on one line")));
            }
            Ok(value.to_owned())
        };
        Ok(Self {
            name: bounded("name", &raw.name, 1, 100)?,
            line1: bounded("line1", &raw.line1, 1, 200)?,
            line2: bounded("line2", &raw.line2, 0, 200)?,
            city: bounded("city", &raw.city, 1, 100)?,
            postal_code: bounded("postal_code", &raw.postal_code, 1, 20)?,
            country: bounded("country", &raw.country, 2, 60)?,
        })
    }
}

/// A line of a placed order, with the price it was sold at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct OrderLine {
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub product_id: crate::domain::ProductId,
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub seller_id: UserId,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub snapshot_digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Order {
    #[cfg_attr(feature = "server", schema(value_type = String, example = "1000000000001777778"))]
    pub id: OrderId,
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub buyer_id: UserId,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    pub total_cents: i64,
    /// RFC 3339.
    pub created_at: String,
    /// While stock is reserved for an unpaid order: when the hold lapses (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_expires_at: Option<String>,
    pub shipping_address: ShippingAddress,
    /// The waybill, once the seller has entered one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Waybill>,
}

/// An order as its seller sees it: the copy the seller index holds, built on the
/// order's shard in the same transaction as each write. `version` grows with every
/// write to the order, so the newer of two copies is the one with the higher version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SellerOrder {
    #[serde(flatten)]
    pub order: Order,
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub seller_id: UserId,
    pub version: i64,
    /// RFC 3339: when the order last changed.
    pub updated_at: String,
}

/// An order's waybill. Every accepted change bumps `version`; a change must name
/// the version it was made against (DESIGN.md, failure mode 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Waybill {
    pub carrier: String,
    pub tracking_number: String,
    pub version: i64,
    /// RFC 3339.
    pub updated_at: String,
}

/// A waybill as a seller enters it, parsed: both fields trimmed, 1 to 60
/// characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaybillInput {
    pub carrier: String,
    pub tracking_number: String,
}

impl WaybillInput {
    pub const MAX_CHARS: usize = 60;

    pub fn parse(carrier: &str, tracking_number: &str) -> Result<Self, FieldError> {
        let field = |name: &str, raw: &str| {
            let value = raw.trim();
            if value.is_empty() || value.chars().count() > Self::MAX_CHARS || value.chars().any(char::is_control) {
                Err(FieldError::new(name, format!("must be 1 to {} characters", Self::MAX_CHARS)))
            } else {
                Ok(value.to_owned())
            }
        };
        Ok(Self { carrier: field("carrier", carrier)?, tracking_number: field("tracking_number", tracking_number)? })
    }
}

/// One accepted waybill change, as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct WaybillChange {
    pub version: i64,
    pub carrier: String,
    pub tracking_number: String,
    /// RFC 3339.
    pub changed_at: String,
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub changed_by: UserId,
}

/// What the checkout page (or `POST /api/v1/checkout`) hands the buyer: the order's
/// id, allocated now, and the one-time token that places it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Checkout {
    #[cfg_attr(feature = "server", schema(value_type = String))]
    pub order_id: OrderId,
    pub checkout_token: String,
    pub expires_at: String,
    pub lines: Vec<LineRequest>,
    pub total_cents: i64,
}
