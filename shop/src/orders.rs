//! Orders as both doors and the browser see them: statuses, lines, addresses,
//! waybills and checkouts. Plain types (no storage), shared with the browser. The
//! order id lives in `domain::ids`, the shard map in `shard_map`.

use crate::domain::{FieldError, UserId};
use serde::{Deserialize, Serialize};

pub use crate::domain::OrderId;

/// The most lines one order may hold.
pub const MAX_ORDER_LINES: usize = 50;

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

    /// The buyer's money was taken for it and is not given back.
    pub fn is_paid(self) -> bool {
        matches!(self, Self::Paid | Self::Shipped | Self::Completed)
    }

    /// Still waiting for the buyer's money: it can be paid, and it lapses at its deadline.
    pub fn awaits_payment(self) -> bool {
        self == Self::PendingPayment
    }

    /// The buyer may still cancel: outright before paying, with a refund until it ships.
    pub fn can_cancel(self) -> bool {
        matches!(self, Self::PendingPayment | Self::Paid)
    }

    /// Cancelling now gives money back to the buyer's wallet.
    pub fn cancel_refunds(self) -> bool {
        self == Self::Paid
    }

    /// The buyer can confirm it arrived, which releases the money to the seller.
    pub fn can_confirm_receipt(self) -> bool {
        self == Self::Shipped
    }

    /// A waybill may be written: the first one once the order is paid (it ships the
    /// order), a correction whenever one is on file.
    pub fn accepts_waybill(self, has_waybill: bool) -> bool {
        self == Self::Paid || has_waybill
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
        let bounded = |name: &str, value: &str, min: usize, max: usize| crate::domain::one_line(&format!("shipping_address.{name}"), value, min, max);
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
    /// Moved to the archive (DESIGN.md, failure mode 8): final, and no longer changes.
    #[serde(default)]
    pub archived: bool,
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
        Ok(Self {
            carrier: crate::domain::one_line("carrier", carrier, 1, Self::MAX_CHARS)?,
            tracking_number: crate::domain::one_line("tracking_number", tracking_number, 1, Self::MAX_CHARS)?,
        })
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
