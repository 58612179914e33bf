use super::FieldError;
use serde::{Deserialize, Serialize};

/// What an account may do. Only buyers and sellers can sign up; admins are made by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub enum Role {
    Buyer,
    Seller,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Buyer => "buyer",
            Role::Seller => "seller",
            Role::Admin => "admin",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        match raw {
            "buyer" => Ok(Role::Buyer),
            "seller" => Ok(Role::Seller),
            "admin" => Ok(Role::Admin),
            _ => Err(FieldError::new(field, "must be one of buyer, seller, admin")),
        }
    }

    /// The roles a person may pick when registering.
    pub fn parse_self_service(field: &str, raw: &str) -> Result<Self, FieldError> {
        match Self::parse(field, raw)? {
            Role::Admin => Err(FieldError::new(field, "must be buyer or seller")),
            role => Ok(role),
        }
    }
}
