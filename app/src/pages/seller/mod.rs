//! The seller dashboard: orders (from the seller index), one order with its
//! waybill form and history ([`orders`]), and the seller's products — list,
//! create, edit, restock ([`products`]). What both halves share is here.

mod orders;
mod products;

pub use orders::{SellerOrderPage, SellerOrdersPage};
pub use products::{EditProductPage, NewProductPage, SellerProductsPage};

use crate::error::AppError;
use crate::pages::orders::sign_in_prompt;
use crate::pages::{ErrorBox, NotFound};
use leptos::prelude::*;
use leptos_meta::Title;

/// "2026-11-24T14:02:31Z" → "14:02" (UTC, as every time on the dashboard).
pub(super) fn clock_time(rfc3339: &str) -> String {
    rfc3339.get(11..16).unwrap_or(rfc3339).to_owned()
}

/// What a failed dashboard load shows: sign in, not for you, not found, or the error.
pub(super) fn load_failure(error: AppError, here: String) -> AnyView {
    match error.status {
        401 => sign_in_prompt(here).into_any(),
        403 => view! { <SellersOnly/> }.into_any(),
        404 => view! { <NotFound/> }.into_any(),
        _ => view! { <ErrorBox error/> }.into_any(),
    }
}

/// A signed-in buyer (or admin) on a seller page: answered 403, with a way on.
#[component]
pub(super) fn SellersOnly() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::FORBIDDEN);
    }
    view! {
        <Title text="For sellers"/>
        <section class="notice" data-testid="sellers-only">
            <h1>"This page is for sellers"</h1>
            <p>"You are signed in with a buyer account. Sellers run their orders and products here."</p>
            <p><a class="button" href="/">"Back to the shop"</a></p>
        </section>
    }
}

#[component]
pub(super) fn DashboardNav(current: &'static str) -> impl IntoView {
    let link = move |href: &'static str, label: &'static str| {
        view! { <a href=href aria-current=(current == label).then_some("page")>{label}</a> }
    };
    view! { <nav class="dashboard-nav">{link("/seller/orders", "Orders")}{link("/seller/products", "Products")}</nav> }
}

