//! `/api/v1/products` and the seller's catalog endpoints.

use super::extract::{ApiJson, ApiQuery, AuthUser};
use super::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use shop::catalog::{Category, PageLimit, Product};
use shop::search::{CategorySlug, ProductCursor, ProductFilter, ProductSort, SearchTerms};
use shop::domain::{Description, InventoryMode, Money, ProductId, Quantity, StockLevel, Title, UserId};
use shop::services::catalog::{NewProduct, ProductEdit};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products))
        .routes(routes!(list_categories))
        .routes(routes!(get_product))
        .routes(routes!(create_product))
        .routes(routes!(edit_product))
        .routes(routes!(restock_product))
        .merge(OpenApiRouter::new().routes(routes!(upload_image)).layer(axum::extract::DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)))
        .routes(routes!(get_snapshot))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// From the previous page's `next_cursor` (of the same `sort`).
    cursor: Option<String>,
    /// 1..=100, default 24.
    limit: Option<i64>,
    /// Words to find in titles and descriptions (each as a word prefix; all must match).
    q: Option<String>,
    /// A category's slug.
    category: Option<String>,
    seller_id: Option<i64>,
    min_price_cents: Option<i64>,
    max_price_cents: Option<i64>,
    /// Only products with units available now.
    in_stock: Option<bool>,
    /// `newest` (the default), `price_asc`, `price_desc`, or `relevance` (the default with `q`).
    sort: Option<String>,
}

impl ListQuery {
    /// The filter, the order and where the page starts, or 422 naming the bad part.
    fn parse(&self) -> Result<(ProductFilter, ProductSort, Option<ProductCursor>), Problem> {
        let terms = SearchTerms::parse("q", self.q.as_deref())?;
        let sort = ProductSort::parse("sort", self.sort.as_deref(), terms.is_some())?;
        let filter = ProductFilter {
            terms,
            category: self.category.as_deref().filter(|c| !c.is_empty()).map(|c| CategorySlug::parse("category", c)).transpose()?,
            seller: self.seller_id.map(|id| UserId::parse("seller_id", id)).transpose()?,
            in_stock: self.in_stock.unwrap_or(false),
            ..ProductFilter::default()
        }
        .with_prices(self.min_price_cents, self.max_price_cents)?;
        let after = self.cursor.as_deref().filter(|c| !c.is_empty()).map(|c| ProductCursor::decode("cursor", c, sort)).transpose()?;
        Ok((filter, sort, after))
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProductList {
    items: Vec<Product>,
    next_cursor: Option<String>,
}

/// Products: all, or those matching a search and filters, in the order asked
/// (newest first by default, best match first for a search), a page at a time.
#[utoipa::path(get, path = "/products", tag = "catalog", params(ListQuery),
    responses((status = 200, body = ProductList), (status = 400, body = Problem), (status = 422, body = Problem)))]
async fn list_products(State(state): State<AppState>, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Json<ProductList>, Problem> {
    let (filter, sort, after) = query.parse()?;
    let limit = PageLimit::parse("limit", query.limit)?;
    let page = state.shop.catalog.search(&filter, sort, after, limit).await?;
    Ok(Json(ProductList { items: page.items, next_cursor: page.next_cursor }))
}

#[derive(Serialize, ToSchema)]
pub struct CategoryList {
    items: Vec<Category>,
}

/// Every category a product can be in.
#[utoipa::path(get, path = "/categories", tag = "catalog", responses((status = 200, body = CategoryList)))]
async fn list_categories(State(state): State<AppState>) -> Result<Json<CategoryList>, Problem> {
    Ok(Json(CategoryList { items: state.shop.catalog.categories().await? }))
}

/// Category slugs as a seller sent them: each must name a category (checked when stored).
fn category_slugs(raw: Option<&[String]>) -> Result<Option<Vec<CategorySlug>>, Problem> {
    Ok(raw.map(|slugs| slugs.iter().map(|s| CategorySlug::parse("categories", s)).collect::<Result<Vec<_>, _>>()).transpose()?)
}

/// An id in a path that cannot name a product names no product.
fn product_id(raw: &str) -> Result<ProductId, Problem> {
    Ok(shop::error::id_or_not_found(raw, "product")?)
}

/// One product, with its price and stock.
#[utoipa::path(get, path = "/products/{id}", tag = "catalog", params(("id" = i64, Path)),
    responses((status = 200, body = Product), (status = 404, body = Problem)))]
async fn get_product(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Product>, Problem> {
    Ok(Json(state.shop.catalog.get(product_id(&id)?).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateProductRequest {
    title: String,
    #[serde(default)]
    description: String,
    price_cents: i64,
    /// Units received, 0..=1e9.
    stock: i64,
    /// `on_order`, `on_payment` or `reserve` (the default).
    inventory_mode: Option<String>,
    /// Category slugs (`GET /api/v1/categories`), at most 5.
    categories: Option<Vec<String>>,
}

/// Seller: list a new product.
#[utoipa::path(post, path = "/seller/products", tag = "seller", security(("bearer" = [])), request_body = CreateProductRequest,
    responses((status = 201, body = Product), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_product(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(body): ApiJson<CreateProductRequest>,
) -> Result<(StatusCode, Json<Product>), Problem> {
    let product = NewProduct {
        title: Title::parse("title", &body.title)?,
        description: Description::parse("description", &body.description)?,
        price: Money::parse_price("price_cents", body.price_cents)?,
        stock: StockLevel::parse("stock", body.stock)?,
        inventory_mode: body.inventory_mode.as_deref().map(|m| InventoryMode::parse("inventory_mode", m)).transpose()?.unwrap_or_default(),
        categories: category_slugs(body.categories.as_deref())?.unwrap_or_default(),
    };
    let created = state.shop.catalog.create(&caller.user, product).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Unknown fields are refused here: a typo in an edit must not become a silent no-op.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditProductRequest {
    /// The `version` the edit was made against.
    expected_version: i64,
    title: Option<String>,
    description: Option<String>,
    price_cents: Option<i64>,
    inventory_mode: Option<String>,
    /// The category slugs from now on.
    categories: Option<Vec<String>>,
}

/// Seller: edit a product. A stale `expected_version` gets 409 `stale_version`.
#[utoipa::path(patch, path = "/seller/products/{id}", tag = "seller", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = EditProductRequest,
    responses((status = 200, body = Product), (status = 404, body = Problem), (status = 409, description = "stale_version", body = Problem), (status = 422, body = Problem)))]
async fn edit_product(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EditProductRequest>,
) -> Result<Json<Product>, Problem> {
    let id = product_id(&id)?;
    let edit = ProductEdit {
        expected_version: body.expected_version,
        title: body.title.as_deref().map(|t| Title::parse("title", t)).transpose()?,
        description: body.description.as_deref().map(|d| Description::parse("description", d)).transpose()?,
        price: body.price_cents.map(|p| Money::parse_price("price_cents", p)).transpose()?,
        inventory_mode: body.inventory_mode.as_deref().map(|m| InventoryMode::parse("inventory_mode", m)).transpose()?,
        categories: category_slugs(body.categories.as_deref())?,
    };
    Ok(Json(state.shop.catalog.edit(&caller.user, id, edit).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct RestockRequest {
    /// Units received, 1..=1e6.
    quantity: i64,
}

/// Seller: record received stock.
#[utoipa::path(post, path = "/seller/products/{id}/restock", tag = "seller", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = RestockRequest,
    responses((status = 200, body = Product), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn restock_product(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RestockRequest>,
) -> Result<Json<Product>, Problem> {
    let id = product_id(&id)?;
    let quantity = Quantity::parse("quantity", body.quantity)?;
    Ok(Json(state.shop.catalog.restock(&caller.user, id, quantity).await?))
}

/// An upload's body: the image's limit and room for the form around it.
pub const UPLOAD_BODY_LIMIT: usize = shop::services::images::MAX_BYTES + 256 * 1024;

/// What an image upload carries (multipart/form-data).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImageUpload {
    /// A JPEG, PNG or WebP image, at most 5 MB and 40 megapixels.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Alt text, up to 200 characters. A multipart part is text whatever it
    /// looks like, so the schema gives it no JSON type.
    #[schema(value_type = Value, required = false)]
    alt: Option<String>,
}

/// A body that is not `multipart/form-data` (with a boundary): 415, as a problem.
pub fn not_multipart(rejection: axum::extract::multipart::MultipartRejection) -> Problem {
    Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", format!("send the image as multipart/form-data with a `file` part ({rejection})"))
}

/// The image parts of an upload: the file's bytes and declared type, and the alt text.
pub async fn read_upload(mut multipart: axum::extract::Multipart) -> Result<(bytes::Bytes, Option<String>, String), Problem> {
    let mut file = None;
    let mut alt = String::new();
    let refused = |error: axum::extract::multipart::MultipartError| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::from(shop::ShopError::TooLarge { max_bytes: shop::services::images::MAX_BYTES as u64 })
        } else {
            Problem::from(shop::ShopError::from(shop::domain::FieldError::new("file", format!("the upload could not be read as multipart/form-data: {error}"))))
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(refused)? {
        match field.name() {
            Some("file") => {
                let declared = field.content_type().map(str::to_owned);
                file = Some((field.bytes().await.map_err(refused)?, declared));
            }
            Some("alt") => alt = field.text().await.map_err(refused)?,
            _ => {}
        }
    }
    let (bytes, declared) = file.ok_or_else(|| Problem::from(shop::ShopError::from(shop::domain::FieldError::new("file", "is missing: send the image as the `file` part"))))?;
    Ok((bytes, declared, shop::services::images::alt_text(&alt)?))
}

/// Seller: add an image to a product (multipart: `file`, `alt`). The same bytes
/// twice give the same `key`; anything but a JPEG, PNG or WebP of at most 5 MB and
/// 40 megapixels is refused, with nothing stored.
#[utoipa::path(post, path = "/seller/products/{id}/images", tag = "seller", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body(content = ImageUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = shop::catalog::ProductImage), (status = 404, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn upload_image(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<shop::catalog::ProductImage>), Problem> {
    let id = product_id(&id)?;
    let (bytes, declared, alt) = read_upload(multipart.map_err(not_multipart)?).await?;
    let image = state.shop.images.add(&caller.user, id, bytes, declared.as_deref(), alt).await?;
    Ok((StatusCode::CREATED, Json(image)))
}

/// A product as it was sold, by the digest an order line names.
#[utoipa::path(get, path = "/snapshots/{digest}", tag = "orders", params(("digest" = String, Path)),
    responses((status = 200, body = shop::snapshot::Snapshot), (status = 404, body = Problem)))]
async fn get_snapshot(State(state): State<AppState>, Path(digest): Path<String>) -> Result<Json<shop::snapshot::Snapshot>, Problem> {
    Ok(Json(state.shop.snapshots.get(&digest).await?))
}
