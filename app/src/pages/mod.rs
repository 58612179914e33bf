//! The pages of the storefront.

pub mod auth;
mod catalog;
pub mod errors;
pub mod orders;

pub use auth::{RegisterPage, SignInPage};
pub use catalog::{HomePage, ProductPage};
pub use errors::{ErrorBox, NotFound};
pub use orders::{CheckoutPage, MyOrdersPage, OrderPage};
