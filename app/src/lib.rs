//! Pages, components and the server functions behind them. Server functions are
//! thin: they find the caller, parse input into `shop` types, call a `shop`
//! service and shape the result. No business rule lives here.

pub mod error;
pub mod pages;
pub mod server_fns;
pub mod state;

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};
use pages::{AccountPage, CategoryPage, SearchPage, EditProductPage, NewProductPage, SellerOrderPage, SellerOrdersPage, SellerProductsPage, CartPage, CheckoutPage, PaymentSuccessPage, ReconcilePage, WalletPage, HomePage, MyOrdersPage, NotFound, OrderHistoryPage, OrderPage, ProductPage, RegisterPage, SignInPage, auth::Header};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HashedStylesheet options=options.clone() id="leptos"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The text of the document's `<title>`. leptos_meta writes it into the server-rendered
/// `<head>` as it is, unescaped, so on the server it must be escaped here: a product
/// titled `</title><script>…` would otherwise run script in every visitor's browser. In
/// the browser the same text becomes `document.title`, which is plain text, so escaping
/// there would show the entities.
pub fn document_title(page: String) -> String {
    let title = if page.is_empty() { "Ninefold".to_owned() } else { format!("{page} · Ninefold") };
    #[cfg(feature = "ssr")]
    let title = html_escape::encode_text(&title).into_owned();
    title
}

/// Every page's Content-Security-Policy, with this response's nonce: only the
/// scripts the server itself wrote run (Leptos puts the nonce on its hydration
/// and data scripts; they load the rest), so markup injected through data could
/// not run script even if it got past escaping. No framing (clickjacking), no
/// plugins, forms only to this site. Called by the server for every response it
/// renders, right after Leptos has made the response's nonce and before anything
/// renders (set from inside the app, the header was now and then missing).
#[cfg(feature = "ssr")]
pub fn set_content_security_policy() {
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>()) else { return };
    let policy = format!(
        "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' ws://127.0.0.1:3001 ws://localhost:3001; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    state::auth::provide_auth();
    state::cart::provide_cart();
    // Effects run only in the browser, after hydration: a marker that the page is
    // interactive, which the browser tests wait for before they click.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Title formatter=document_title/>
        <Router>
            <Header/>
            <main class="page">
                <pages::cart::CartNotices/>
                // Async SSR: the whole page renders before the first byte is sent, so a
                // page can still set its status (404) and cookies.
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/products/:id") view=ProductPage ssr=SsrMode::Async/>
                    <Route path=path!("/search") view=SearchPage ssr=SsrMode::Async/>
                    <Route path=path!("/c/:slug") view=CategoryPage ssr=SsrMode::Async/>
                    <Route path=path!("/cart") view=CartPage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=SignInPage ssr=SsrMode::Async/>
                    <Route path=path!("/register") view=RegisterPage ssr=SsrMode::Async/>
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async/>
                    <Route path=path!("/checkout/:order_id") view=CheckoutPage ssr=SsrMode::Async/>
                    <Route path=path!("/orders") view=MyOrdersPage ssr=SsrMode::Async/>
                    <Route path=path!("/orders/history") view=OrderHistoryPage ssr=SsrMode::Async/>
                    <Route path=path!("/orders/:id") view=OrderPage ssr=SsrMode::Async/>
                    <Route path=path!("/orders/:id/paid") view=PaymentSuccessPage ssr=SsrMode::Async/>
                    <Route path=path!("/wallet") view=WalletPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/reconcile") view=ReconcilePage ssr=SsrMode::Async/>
                    <Route path=path!("/seller/orders") view=SellerOrdersPage ssr=SsrMode::Async/>
                    <Route path=path!("/seller/orders/:id") view=SellerOrderPage ssr=SsrMode::Async/>
                    <Route path=path!("/seller/products") view=SellerProductsPage ssr=SsrMode::Async/>
                    <Route path=path!("/seller/products/new") view=NewProductPage ssr=SsrMode::Async/>
                    <Route path=path!("/seller/products/:id") view=EditProductPage ssr=SsrMode::Async/>
                </Routes>
            </main>
            <footer class="site-footer">"Ninefold — an open-source storefront"</footer>
        </Router>
    }
}
