use super::FieldError;
use serde::{Deserialize, Serialize};

/// When an order takes stock. See DESIGN.md, failure mode 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub enum InventoryMode {
    /// Placing the order decrements available stock.
    OnOrder,
    /// Placing the order only checks stock; paying decrements it.
    OnPayment,
    /// Placing the order moves stock from available to reserved under a hold that expires.
    #[default]
    Reserve,
}

impl InventoryMode {
    pub const ALL: [InventoryMode; 3] = [InventoryMode::OnOrder, InventoryMode::OnPayment, InventoryMode::Reserve];

    pub fn as_str(self) -> &'static str {
        match self {
            InventoryMode::OnOrder => "on_order",
            InventoryMode::OnPayment => "on_payment",
            InventoryMode::Reserve => "reserve",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == raw)
            .ok_or_else(|| FieldError::new(field, "must be one of on_order, on_payment, reserve"))
    }

    pub fn label(self) -> &'static str {
        match self {
            InventoryMode::OnOrder => "Stock taken when ordered",
            InventoryMode::OnPayment => "Stock taken when paid",
            InventoryMode::Reserve => "Reserved for 30 minutes at checkout",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_round_trips_through_its_name() {
        for mode in InventoryMode::ALL {
            assert_eq!(InventoryMode::parse("m", mode.as_str()).unwrap(), mode);
        }
        assert!(InventoryMode::parse("m", "RESERVE").is_err());
    }
}
