//! The seller dashboard's door into the `seller_index`, `shipping` and `catalog`
//! services. A caller who is not a seller gets 403; another seller's order or
//! product is "not found", exactly as the JSON API answers.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shop::catalog::{Page, Product};
use shop::orders::{OrderStatus, SellerOrder, Waybill, WaybillChange};

/// The orders list: one page from the seller index, and how many orders are in
/// each status (the filter tabs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerOrdersData {
    pub orders: Page<SellerOrder>,
    pub counts: Vec<(OrderStatus, i64)>,
    /// Counts above this were not counted further ("1000+").
    pub count_cap: i64,
}

/// One order as its dashboard page shows it, read from its shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerOrderData {
    pub order: SellerOrder,
    /// Each line's title as it was sold.
    pub titles: Vec<String>,
    /// Each line's picture as sold, if its product had one.
    pub pictures: Vec<Option<String>>,
}

/// What a waybill submit came to. A stale submit is not a failure of the
/// request: the page shows what changed and keeps the seller's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaybillOutcome {
    Saved(Waybill),
    Stale { current: Waybill },
}

/// What a product edit came to; a stale edit carries the product as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductEditOutcome {
    Saved(Product),
    Stale { current: Product },
}

#[cfg(feature = "ssr")]
mod ssr {
    use crate::error::AppError;
    use shop::accounts::User;
    use shop::domain::ProductId;

    /// The signed-in seller. Signed out: 401; signed in as anyone else: 403.
    pub async fn seller() -> Result<User, AppError> {
        let user = crate::server_fns::ssr::caller().await?.ok_or_else(|| AppError::new(401, "unauthenticated", "Sign in to open your dashboard."))?;
        shop::services::catalog::require_seller(&user)?;
        Ok(user)
    }

    pub fn product_id_or_not_found(raw: &str) -> Result<ProductId, AppError> {
        Ok(shop::error::id_or_not_found(raw, "product")?)
    }

    /// Where a browser without script goes after a waybill submit: back to the
    /// order's own address when saved; when refused, the same page with the
    /// seller's entry riding along, so it can say what changed and keep it.
    pub fn waybill_page_after(id: shop::orders::OrderId, outcome: &super::WaybillOutcome, carrier: &str, tracking_number: &str) -> String {
        match outcome {
            super::WaybillOutcome::Saved(_) => format!("/seller/orders/{id}"),
            super::WaybillOutcome::Stale { .. } => {
                let kept = form_urlencoded::Serializer::new(String::new())
                    .append_pair("stale", "1")
                    .append_pair("carrier", carrier)
                    .append_pair("tracking_number", tracking_number)
                    .finish();
                format!("/seller/orders/{id}?{kept}")
            }
        }
    }

    /// The edit form's fields, parsed.
    pub fn product_edit(expected_version: &str, title: &str, description: &str, price: &str, inventory_mode: &str) -> Result<shop::services::catalog::ProductEdit, AppError> {
        use shop::domain::{Description, InventoryMode, Money, Title};
        Ok(shop::services::catalog::ProductEdit {
            expected_version: whole_number("expected_version", expected_version)?,
            title: Some(Title::parse("title", title)?),
            description: Some(Description::parse("description", description)?),
            price: Some(Money::parse_price("price", Money::parse_major("price", price)?)?),
            inventory_mode: Some(InventoryMode::parse("inventory_mode", inventory_mode)?),
            categories: None,
        })
    }

    /// The slugs of the checked category boxes.
    pub fn category_slugs(raw: &[String]) -> Result<Vec<shop::search::CategorySlug>, AppError> {
        Ok(raw.iter().map(|slug| shop::search::CategorySlug::parse("categories", slug)).collect::<Result<Vec<_>, _>>()?)
    }

    /// A whole number typed into a form field.
    pub fn whole_number(field: &str, raw: &str) -> Result<i64, AppError> {
        Ok(shop::domain::whole_number(field, raw)?)
    }
}

#[server(prefix = "/fn", endpoint = "seller_orders")]
pub async fn seller_orders(status: Option<String>, cursor: Option<String>) -> Result<SellerOrdersData, AppError> {
    use shop::catalog::PageLimit;
    use shop::orders::OrderId;
    let seller = ssr::seller().await?;
    let status = status.filter(|s| !s.is_empty()).map(|s| OrderStatus::parse("status", &s)).transpose()?;
    let after = shop::catalog::optional_cursor(cursor.as_deref(), OrderId::parse)?;
    let shop = super::ssr::shop()?;
    let orders = shop.seller_index.list(&seller, status, after, PageLimit::DEFAULT).await?;
    let counts = shop.seller_index.counts(&seller).await?;
    Ok(SellerOrdersData { orders, counts, count_cap: shop::services::seller_index::SellerIndex::COUNT_CAP })
}

#[server(prefix = "/fn", endpoint = "load_seller_order")]
pub async fn load_seller_order(order_id: String) -> Result<SellerOrderData, AppError> {
    let seller = ssr::seller().await?;
    let id = super::order_id_or_not_found(&order_id, "order")?;
    let shop = super::ssr::shop()?;
    let order = shop.shipping.seller_order(&seller, id).await?;
    let titles = shop.snapshots.titles_as_sold(&order.order.lines).await?;
    let pictures = shop.snapshots.pictures_as_sold(&order.order.lines).await?;
    Ok(SellerOrderData { order, titles, pictures })
}

/// Every accepted waybill change, oldest first. Loaded apart from the order, so
/// the page can refresh it after any submit without resetting the form.
#[server(prefix = "/fn", endpoint = "waybill_history")]
pub async fn waybill_history(order_id: String) -> Result<Vec<WaybillChange>, AppError> {
    let seller = ssr::seller().await?;
    let id = super::order_id_or_not_found(&order_id, "order")?;
    Ok(super::ssr::shop()?.shipping.history(&seller, id).await?)
}

/// The waybill form. `expected_version` is the version the form was filled
/// against (0 for the first waybill, which marks the order shipped).
#[server(prefix = "/fn", endpoint = "save_waybill")]
pub async fn save_waybill(order_id: String, carrier: String, tracking_number: String, expected_version: String) -> Result<WaybillOutcome, AppError> {
    use shop::orders::WaybillInput;
    let seller = ssr::seller().await?;
    let id = super::order_id_or_not_found(&order_id, "order")?;
    let expected_version = ssr::whole_number("expected_version", &expected_version)?;
    let input = WaybillInput::parse(&carrier, &tracking_number)?;
    let outcome = match super::ssr::shop()?.shipping.set_waybill(&seller, id, expected_version, input).await {
        Ok(saved) => WaybillOutcome::Saved(saved),
        Err(shop::ShopError::StaleWaybill { current }) => WaybillOutcome::Stale { current },
        Err(other) => return Err(other.into()),
    };
    if super::ssr::is_plain_form_post() {
        leptos_axum::redirect(&ssr::waybill_page_after(id, &outcome, &carrier, &tracking_number));
    }
    Ok(outcome)
}

#[server(prefix = "/fn", endpoint = "seller_products")]
pub async fn seller_products(cursor: Option<String>) -> Result<Page<Product>, AppError> {
    use shop::catalog::{Cursor, PageLimit};
    let seller = ssr::seller().await?;
    let cursor = shop::catalog::optional_cursor(cursor.as_deref(), Cursor::decode)?;
    Ok(super::ssr::shop()?.catalog.list_for_seller(&seller, cursor, PageLimit::DEFAULT).await?)
}

#[server(prefix = "/fn", endpoint = "seller_product")]
pub async fn seller_product(product_id: String) -> Result<Product, AppError> {
    let seller = ssr::seller().await?;
    Ok(super::ssr::shop()?.catalog.owned(&seller, ssr::product_id_or_not_found(&product_id)?).await?)
}

/// The new-product form; `price` is in major units ("12.50").
/// Every category, for the seller's product forms.
#[server(prefix = "/fn", endpoint = "all_categories")]
pub async fn all_categories() -> Result<Vec<shop::catalog::Category>, AppError> {
    Ok(super::ssr::shop()?.catalog.categories().await?)
}

#[server(prefix = "/fn", endpoint = "list_new_product")]
pub async fn list_new_product(
    title: String,
    description: String,
    price: String,
    stock: String,
    inventory_mode: String,
    /// The checked category boxes (`categories[]`); none checked sends none.
    #[server(default)]
    categories: Vec<String>,
) -> Result<(), AppError> {
    use shop::domain::{Description, InventoryMode, Money, StockLevel, Title};
    use shop::services::catalog::NewProduct;
    let seller = ssr::seller().await?;
    let product = NewProduct {
        title: Title::parse("title", &title)?,
        description: Description::parse("description", &description)?,
        price: Money::parse_price("price", Money::parse_major("price", &price)?)?,
        stock: StockLevel::parse("stock", ssr::whole_number("stock", &stock)?)?,
        inventory_mode: InventoryMode::parse("inventory_mode", &inventory_mode)?,
        categories: ssr::category_slugs(&categories)?,
    };
    let created = super::ssr::shop()?.catalog.create(&seller, product).await?;
    leptos_axum::redirect(&format!("/seller/products/{}?created=1", created.id));
    Ok(())
}

/// The edit form. Every field is sent; only what differs from the stored product
/// changes it (and a changed title, description or price gives new orders a new snapshot).
#[server(prefix = "/fn", endpoint = "save_product")]
pub async fn save_product(
    product_id: String,
    expected_version: String,
    title: String,
    description: String,
    price: String,
    inventory_mode: String,
    /// The checked category boxes; the form always holds them, so none checked means none.
    #[server(default)]
    categories: Vec<String>,
) -> Result<ProductEditOutcome, AppError> {
    let seller = ssr::seller().await?;
    let id = ssr::product_id_or_not_found(&product_id)?;
    let mut edit = ssr::product_edit(&expected_version, &title, &description, &price, &inventory_mode)?;
    edit.categories = Some(ssr::category_slugs(&categories)?);
    let catalog = super::ssr::shop()?.catalog.clone();
    match catalog.edit(&seller, id, edit).await {
        Ok(saved) => Ok(ProductEditOutcome::Saved(saved)),
        Err(shop::ShopError::StaleVersion { .. }) => Ok(ProductEditOutcome::Stale { current: catalog.owned(&seller, id).await? }),
        Err(other) => Err(other.into()),
    }
}

#[server(prefix = "/fn", endpoint = "restock")]
pub async fn restock(product_id: String, quantity: String) -> Result<Product, AppError> {
    use shop::domain::Quantity;
    let seller = ssr::seller().await?;
    let id = ssr::product_id_or_not_found(&product_id)?;
    let quantity = Quantity::parse("quantity", ssr::whole_number("quantity", &quantity)?)?;
    Ok(super::ssr::shop()?.catalog.restock(&seller, id, quantity).await?)
}
