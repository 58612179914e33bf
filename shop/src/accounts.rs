//! Accounts as the rest of the system sees them. The storage and password
//! handling live in [`crate::services::accounts`].

use crate::domain::{Email, PersonName, Role, UserId};
use serde::{Deserialize, Serialize};

/// A signed-in person. Carries no secret, so it may be sent to the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct User {
    #[cfg_attr(feature = "server", schema(value_type = i64))]
    pub id: UserId,
    #[cfg_attr(feature = "server", schema(value_type = String))]
    pub email: Email,
    #[cfg_attr(feature = "server", schema(value_type = String))]
    pub name: PersonName,
    pub role: Role,
}

