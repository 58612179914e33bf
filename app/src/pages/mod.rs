//! The pages of the storefront.

pub mod auth;
mod catalog;
mod errors;

pub use auth::{RegisterPage, SignInPage};
pub use catalog::{HomePage, ProductPage};
pub use errors::{ErrorBox, NotFound};
