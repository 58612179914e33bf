//! The pages of the storefront.

pub mod auth;
pub mod cart;
mod catalog;
pub mod errors;
pub mod orders;

pub use auth::{RegisterPage, SignInPage};
pub use cart::CartPage;
pub use catalog::{HomePage, ProductPage};
pub use errors::{ErrorBox, NotFound};
pub use orders::{CheckoutPage, MyOrdersPage, OrderPage};
