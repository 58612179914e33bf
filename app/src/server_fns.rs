//! Server functions: the pages' door into the `shop` services.

use crate::error::AppError;
use leptos::prelude::*;
use shop::accounts::User;
use shop::catalog::{Page, Product};

pub mod cart;
pub mod money;
pub mod seller;

#[cfg(feature = "ssr")]
mod ssr {
    use crate::error::AppError;
    use web::{CookiePolicy, Presented, presented_cookie};
    use leptos::prelude::*;
    use shop::Shop;
    use shop::accounts::User;
    use shop::services::accounts::SessionToken;

    pub fn shop() -> Result<Shop, AppError> {
        use_context::<Shop>().ok_or_else(|| AppError::new(503, "unavailable", "The shop is not available right now."))
    }

    pub fn cookie_policy() -> CookiePolicy {
        use_context::<CookiePolicy>().unwrap_or_default()
    }

    pub fn session_token() -> Option<SessionToken> {
        let parts = use_context::<http::request::Parts>()?;
        match presented_cookie(&parts.headers) {
            Presented::Token(token) => Some(token),
            Presented::Nothing | Presented::Garbage => None,
        }
    }

    /// The signed-in user, if any. A garbage or expired cookie is just "signed out"
    /// for pages: the visitor can still browse.
    pub async fn caller() -> Result<Option<User>, AppError> {
        match session_token() {
            Some(token) => Ok(shop()?.accounts.user_for_token(&token).await?),
            None => Ok(None),
        }
    }

    /// The address this request came from (recorded by the server's middleware).
    pub fn client_addr() -> std::net::IpAddr {
        use_context::<http::request::Parts>().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |parts| web::ClientAddr::from_extensions(&parts.extensions))
    }

    pub fn set_cookie(value: String) {
        if let (Some(response), Ok(value)) = (use_context::<leptos_axum::ResponseOptions>(), http::HeaderValue::from_str(&value)) {
            response.append_header(http::header::SET_COOKIE, value);
        }
    }

    /// A browser's own form post (no script ran): it will follow a redirect and
    /// render HTML, and cannot read a server function's return value.
    pub fn is_plain_form_post() -> bool {
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.headers.get(http::header::ACCEPT)?.to_str().ok().map(|accept| accept.contains("text/html")))
            .unwrap_or(false)
    }


    /// After sign-in: merges a server-side guest cart into the account and says
    /// so on the page it lands on (`cart_merged`, `cart_capped` in the query).
    pub async fn land_after_sign_in(user: &User, next: String) -> Result<String, AppError> {
        let Some(notice) = super::cart::merge_guest_cookie_cart(user).await? else { return Ok(next) };
        if notice.sentence().is_none() {
            return Ok(next);
        }
        let separator = if next.contains('?') { '&' } else { '?' };
        Ok(format!("{next}{separator}cart_merged={}&cart_capped={}", notice.added, notice.capped.len()))
    }
}

#[server(prefix = "/fn", endpoint = "current_user")]
pub async fn current_user() -> Result<Option<User>, AppError> {
    ssr::caller().await
}

#[server(prefix = "/fn", endpoint = "list_products")]
pub async fn list_products(cursor: Option<String>) -> Result<Page<Product>, AppError> {
    use shop::catalog::{Cursor, PageLimit};
    let cursor = shop::catalog::optional_cursor(cursor.as_deref(), Cursor::decode)?;
    Ok(ssr::shop()?.catalog.list(cursor, PageLimit::DEFAULT).await?)
}

/// A search or category page: the products, the categories to filter by, and
/// the name of the category shown (when the page is one).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchView {
    pub products: Page<Product>,
    pub categories: Vec<shop::catalog::Category>,
    pub category_name: Option<String>,
    /// What is wrong with the filters, when something is: the page shows it above
    /// the form (kept as the shopper filled it) instead of results.
    pub problem: Option<String>,
}

/// The search page and the category pages, from their plain GET form: prices in
/// major units ("12.50"), empty fields meaning "any".
#[server(prefix = "/fn", endpoint = "search_products")]
pub async fn search_products(
    q: Option<String>,
    category: Option<String>,
    min_price: Option<String>,
    max_price: Option<String>,
    in_stock: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
) -> Result<SearchView, AppError> {
    use shop::catalog::{Page, PageLimit};
    use shop::domain::FieldError;
    use shop::search::{CategorySlug, ProductCursor, ProductFilter, ProductSort, SearchTerms};
    let given = |value: &Option<String>| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let price = |field: &str, value: &Option<String>| given(value).map(|v| shop::domain::Money::parse_major(field, &v)).transpose();
    let parsed = (|| -> Result<_, FieldError> {
        let terms = SearchTerms::parse("q", q.as_deref())?;
        let sort = ProductSort::parse("sort", sort.as_deref(), terms.is_some())?;
        let category = given(&category).map(|c| CategorySlug::parse("category", &c)).transpose()?;
        let filter = ProductFilter { terms, category, in_stock: given(&in_stock).is_some(), ..ProductFilter::default() }
            .with_prices(price("min_price", &min_price)?, price("max_price", &max_price)?)?;
        let after = given(&cursor).map(|c| ProductCursor::decode("cursor", &c, sort)).transpose()?;
        Ok((filter, sort, after))
    })();
    let catalog = ssr::shop()?.catalog.clone();
    let categories = catalog.categories().await?;
    let category_name = |filter: &ProductFilter| -> Result<Option<String>, AppError> {
        match &filter.category {
            Some(slug) => Ok(Some(categories.iter().find(|c| c.slug == slug.as_str()).map(|c| c.name.clone()).ok_or(shop::ShopError::NotFound("category"))?)),
            None => Ok(None),
        }
    };
    match parsed {
        Ok((filter, sort, after)) => {
            let category_name = category_name(&filter)?;
            let products = catalog.search(&filter, sort, after, PageLimit::DEFAULT).await?;
            Ok(SearchView { products, categories, category_name, problem: None })
        }
        Err(problem) => Ok(SearchView { products: Page { items: Vec::new(), next_cursor: None }, categories, category_name: None, problem: Some(problem.to_string()) }),
    }
}

#[server(prefix = "/fn", endpoint = "get_product")]
pub async fn get_product(id: String) -> Result<Product, AppError> {
    Ok(ssr::shop()?.catalog.get(shop::error::id_or_not_found(&id, "product")?).await?)
}

#[server(prefix = "/fn", endpoint = "sign_in")]
pub async fn sign_in(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use shop::domain::{Email, Password};
    let email = Email::parse("email", &email)?;
    let password = Password::parse_attempt("password", &password)?;
    let (token, user) = ssr::shop()?.accounts.sign_in(&email, password, ssr::client_addr()).await?;
    ssr::set_cookie(ssr::cookie_policy().issue(&token));
    leptos_axum::redirect(&ssr::land_after_sign_in(&user, web::safe_next(next.as_deref())).await?);
    Ok(())
}

#[server(prefix = "/fn", endpoint = "register")]
pub async fn register(email: String, password: String, name: String, role: String) -> Result<(), AppError> {
    use shop::domain::{Email, Password, PersonName, Role};
    use shop::services::accounts::NewAccount;
    let account = NewAccount {
        email: Email::parse("email", &email)?,
        password: Password::parse("password", &password)?,
        name: PersonName::parse("name", &name)?,
        role: Role::parse_self_service("role", &role)?,
    };
    let (token, user) = ssr::shop()?.accounts.register_and_sign_in(account).await?;
    ssr::set_cookie(ssr::cookie_policy().issue(&token));
    leptos_axum::redirect(&ssr::land_after_sign_in(&user, "/".to_owned()).await?);
    Ok(())
}

/// The account page's form: the current password, then the new one. Every other
/// session of the shopper ends; this one stays.
#[server(prefix = "/fn", endpoint = "change_password")]
pub async fn change_password(current_password: String, new_password: String) -> Result<(), AppError> {
    use shop::domain::Password;
    let user = ssr::caller().await?.ok_or_else(|| AppError::new(401, "unauthenticated", "Sign in to change your password."))?;
    let token = ssr::session_token().ok_or_else(|| AppError::new(401, "unauthenticated", "Sign in to change your password."))?;
    let current = Password::parse_attempt("current_password", &current_password)?;
    let new = Password::parse("new_password", &new_password)?;
    ssr::shop()?.accounts.change_password(&user, &token, current, new, ssr::client_addr()).await?;
    Ok(())
}

/// Ends every session of the shopper, this one too (a lost phone, a shared computer).
#[server(prefix = "/fn", endpoint = "sign_out_everywhere")]
pub async fn sign_out_everywhere() -> Result<(), AppError> {
    if let Some(user) = ssr::caller().await? {
        ssr::shop()?.accounts.sign_out_everywhere(&user).await?;
    }
    ssr::set_cookie(ssr::cookie_policy().clear());
    leptos_axum::redirect("/login");
    Ok(())
}

#[server(prefix = "/fn", endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    if let Some(token) = ssr::session_token() {
        ssr::shop()?.accounts.sign_out(&token).await?;
    }
    ssr::set_cookie(ssr::cookie_policy().clear());
    leptos_axum::redirect("/");
    Ok(())
}

/// A checkout line as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckoutLineView {
    pub title: String,
    pub quantity: i64,
    pub unit_price: shop::domain::Money,
    pub line_total: shop::domain::Money,
}

/// What the checkout page renders.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CheckoutPageData {
    Open {
        order_id: String,
        checkout_token: String,
        lines: Vec<CheckoutLineView>,
        total: shop::domain::Money,
        expires_at: String,
        /// Whether placing the order reserves stock for a while.
        reserves: bool,
    },
    Placed { order_id: String },
    Expired,
}

/// An order as its page shows it, with each line's title as it was sold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderView {
    pub order: shop::orders::Order,
    pub titles: Vec<String>,
    /// Each line's picture as sold, if its product had one.
    pub pictures: Vec<Option<String>>,
    /// The buyer's wallet balance, for the "pay" button.
    pub balance_cents: i64,
}

#[cfg(feature = "ssr")]
async fn signed_in_buyer() -> Result<User, AppError> {
    ssr::caller().await?.ok_or_else(|| AppError::new(401, "unauthenticated", "Sign in to buy."))
}

#[cfg(feature = "ssr")]
fn order_id_or_not_found(raw: &str, what: &'static str) -> Result<shop::orders::OrderId, AppError> {
    Ok(shop::error::id_or_not_found(raw, what)?)
}

/// "Buy now" on a product page: opens a checkout and goes to it.
#[server(prefix = "/fn", endpoint = "start_checkout")]
pub async fn start_checkout(product_id: String, quantity: String) -> Result<(), AppError> {
    use shop::domain::{FieldError, ProductId, Quantity, whole_number};
    use shop::orders::LineRequest;
    let buyer = signed_in_buyer().await?;
    let product_id: ProductId = product_id.parse().map_err(|_| FieldError::new("product_id", "is not a product"))?;
    let line = LineRequest { product_id, quantity: Quantity::parse("quantity", whole_number("quantity", &quantity)?)? };
    let checkout = ssr::shop()?.checkouts.open(&buyer, vec![line]).await?;
    leptos_axum::redirect(&format!("/checkout/{}", checkout.order_id));
    Ok(())
}

#[server(prefix = "/fn", endpoint = "get_checkout")]
pub async fn get_checkout(order_id: String) -> Result<CheckoutPageData, AppError> {
    let buyer = signed_in_buyer().await?;
    let id = order_id_or_not_found(&order_id, "checkout")?;
    Ok(checkout_page(ssr::shop()?.checkouts.view(&buyer, id).await?))
}

/// The checkout as its page renders it.
#[cfg(feature = "ssr")]
fn checkout_page(view: shop::services::checkout::CheckoutView) -> CheckoutPageData {
    use shop::services::checkout::CheckoutView;
    match view {
        CheckoutView::Placed(id) => CheckoutPageData::Placed { order_id: id.to_string() },
        CheckoutView::Expired => CheckoutPageData::Expired,
        CheckoutView::Open { checkout, products } => CheckoutPageData::Open {
            order_id: checkout.order_id.to_string(),
            checkout_token: checkout.checkout_token,
            lines: products
                .iter()
                .zip(&checkout.lines)
                .map(|(p, l)| CheckoutLineView {
                    title: p.title.to_string(),
                    quantity: l.quantity.get(),
                    unit_price: p.price,
                    line_total: shop::domain::Money::from_stored(p.price.cents() * l.quantity.get()),
                })
                .collect(),
            total: shop::domain::Money::from_stored(checkout.total_cents),
            expires_at: checkout.expires_at,
            reserves: products.iter().any(|p| p.inventory_mode == shop::domain::InventoryMode::Reserve),
        },
    }
}

/// The checkout page's submit. Submitting the same checkout again (double click,
/// Enter twice, a resubmit after reload or Back) lands on the same order.
#[server(prefix = "/fn", endpoint = "place_order")]
#[allow(clippy::too_many_arguments)]
pub async fn place_order(
    order_id: String,
    checkout_token: String,
    name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    postal_code: String,
    country: String,
    expected_total_cents: String,
) -> Result<(), AppError> {
    use shop::orders::ShippingAddress;
    use shop::services::orders::PlaceOrder;
    let buyer = signed_in_buyer().await?;
    let request = PlaceOrder {
        order_id: shop::orders::OrderId::parse("order_id", &order_id)?,
        checkout_token: shop::services::checkout::checkout_token(&checkout_token)?,
        expected_total_cents: Some(shop::domain::whole_number("expected_total_cents", &expected_total_cents)?),
        lines: None,
        shipping_address: ShippingAddress::parse(ShippingAddress { name, line1, line2: line2.unwrap_or_default(), city, postal_code, country })?,
    };
    let placed = ssr::shop()?.orders.place(&buyer, request).await?;
    leptos_axum::redirect(&format!("/orders/{}?placed=1", placed.order.id));
    Ok(())
}

#[server(prefix = "/fn", endpoint = "my_orders")]
pub async fn my_orders(cursor: Option<String>) -> Result<Page<shop::orders::Order>, AppError> {
    let buyer = signed_in_buyer().await?;
    let after = shop::catalog::optional_cursor(cursor.as_deref(), shop::orders::OrderId::parse)?;
    Ok(ssr::shop()?.orders.list_mine(&buyer, None, after, shop::catalog::PageLimit::DEFAULT).await?)
}

/// The buyer's archived orders, newest first ("Order history").
#[server(prefix = "/fn", endpoint = "order_history")]
pub async fn order_history(cursor: Option<String>) -> Result<Page<shop::orders::Order>, AppError> {
    let buyer = signed_in_buyer().await?;
    let after = shop::catalog::optional_cursor(cursor.as_deref(), shop::orders::OrderId::parse)?;
    Ok(ssr::shop()?.orders.history(&buyer, after, shop::catalog::PageLimit::DEFAULT).await?)
}

#[server(prefix = "/fn", endpoint = "get_order")]
pub async fn get_order(order_id: String) -> Result<OrderView, AppError> {
    let buyer = signed_in_buyer().await?;
    let shop = ssr::shop()?;
    let order = shop.orders.get(&buyer, order_id_or_not_found(&order_id, "order")?).await?;
    let titles = shop.snapshots.titles_as_sold(&order.lines).await?;
    let pictures = shop.snapshots.pictures_as_sold(&order.lines).await?;
    let balance_cents = shop.ledger.balance(buyer.id).await?;
    Ok(OrderView { order, titles, pictures, balance_cents })
}

#[server(prefix = "/fn", endpoint = "cancel_order")]
pub async fn cancel_order(order_id: String) -> Result<(), AppError> {
    let buyer = signed_in_buyer().await?;
    let id = order_id_or_not_found(&order_id, "order")?;
    ssr::shop()?.payments.cancel(&buyer, id).await?;
    leptos_axum::redirect(&format!("/orders/{id}"));
    Ok(())
}
