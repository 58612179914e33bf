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

/// What became of the stock one order took of one product (a `stock_takes` row).
/// Stored as text; `available + reserved + sold` stays equal to stock received
/// through every move between these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TakeState {
    /// Counted in `reserved` until the order is paid or its hold lapses.
    Held,
    /// Counted in `sold`.
    Sold,
    /// Given back to `available`.
    Released,
}

impl TakeState {
    pub const ALL: [TakeState; 3] = [Self::Held, Self::Sold, Self::Released];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Sold => "sold",
            Self::Released => "released",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == raw)
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

    #[test]
    fn every_take_state_round_trips_through_its_name() {
        for state in TakeState::ALL {
            assert_eq!(TakeState::parse(state.as_str()), Some(state));
        }
        assert_eq!(TakeState::parse("HELD"), None);
    }
}
