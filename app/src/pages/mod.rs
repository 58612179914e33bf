//! The pages of the storefront.

pub mod auth;
pub mod cart;
pub(crate) mod catalog;
pub mod errors;
pub mod money;
pub mod orders;
pub mod seller;

pub use auth::{AccountPage, RegisterPage, SignInPage};
pub use cart::CartPage;
pub use catalog::{CategoryPage, HomePage, ProductPage, SearchPage};
pub use errors::{ErrorBox, NotFound};
pub use money::{PaymentSuccessPage, ReconcilePage, WalletPage};
pub use orders::{CheckoutPage, MyOrdersPage, OrderHistoryPage, OrderPage};
pub use seller::{EditProductPage, NewProductPage, SellerOrderPage, SellerOrdersPage, SellerProductsPage};
