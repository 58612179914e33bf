//! `/api/v1/checkout` and `/api/v1/orders`.

use super::extract::{ApiJson, ApiQuery, AuthUser};
use super::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shop::catalog::PageLimit;
use shop::domain::{ProductId, Quantity};
use shop::orders::{Checkout, LineRequest, Order, OrderId, OrderStatus, ShippingAddress};
use shop::services::orders::PlaceOrder;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_checkout))
        .routes(routes!(place_order, list_orders))
        .routes(routes!(order_history))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
}

const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

#[derive(Deserialize, ToSchema)]
pub struct LineBody {
    product_id: i64,
    quantity: i64,
}

fn parse_lines(lines: Vec<LineBody>) -> Result<Vec<LineRequest>, Problem> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let field = format!("lines[{i}].quantity");
            if !(1..=shop::cart::MAX_LINE_QUANTITY).contains(&line.quantity) {
                return Err(shop::domain::FieldError::new(&field, format!("must be between 1 and {}", shop::cart::MAX_LINE_QUANTITY)).into());
            }
            Ok(LineRequest { product_id: ProductId::parse(&format!("lines[{i}].product_id"), line.product_id)?, quantity: Quantity::parse(&field, line.quantity)? })
        })
        .collect()
}

#[derive(Deserialize, ToSchema)]
pub struct CheckoutRequest {
    lines: Vec<LineBody>,
}

/// Open a checkout: allocates the order id and a one-time token (valid 30 minutes).
/// Nothing is reserved yet.
#[utoipa::path(post, path = "/checkout", tag = "orders", security(("bearer" = [])), request_body = CheckoutRequest,
    responses((status = 201, body = Checkout), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn open_checkout(State(state): State<AppState>, caller: AuthUser, ApiJson(body): ApiJson<CheckoutRequest>) -> Result<(StatusCode, Json<Checkout>), Problem> {
    let checkout = state.shop.checkouts.open(&caller.user, parse_lines(body.lines)?).await?;
    Ok((StatusCode::CREATED, Json(checkout)))
}

#[derive(Deserialize, ToSchema)]
pub struct PlaceOrderRequest {
    /// The 19-digit id from the checkout, as a string.
    order_id: String,
    checkout_token: String,
    lines: Vec<LineBody>,
    shipping_address: ShippingAddress,
    /// The total the caller was shown (the checkout's `total_cents`): if the order
    /// would now cost another, 409 `price_changed` with the new `total_cents`.
    expected_total_cents: Option<i64>,
}

/// Place the order a checkout opened. A replay of the same token and id answers 200
/// with the same order and `Idempotent-Replayed: true`.
#[utoipa::path(post, path = "/orders", tag = "orders", security(("bearer" = [])), request_body = PlaceOrderRequest,
    responses((status = 201, body = Order), (status = 200, description = "a replay: the order already placed", body = Order),
        (status = 409, description = "invalid_checkout_token, insufficient_stock, price_changed (with `total_cents`) or too_many_unpaid_orders", body = Problem),
        (status = 422, body = Problem)))]
async fn place_order(State(state): State<AppState>, caller: AuthUser, ApiJson(body): ApiJson<PlaceOrderRequest>) -> Result<Response, Problem> {
    // Checked before anything else, a replay included: the body must be one the
    // contract accepts whatever the order's state.
    if body.lines.is_empty() || body.lines.len() > shop::orders::MAX_ORDER_LINES {
        return Err(shop::domain::FieldError::new("lines", format!("must hold 1 to {} lines", shop::orders::MAX_ORDER_LINES)).into());
    }
    if body.expected_total_cents.is_some_and(|total| !(0..=shop::domain::ProductId::MAX).contains(&total)) {
        return Err(shop::domain::FieldError::new("expected_total_cents", format!("must be between 0 and {}", shop::domain::ProductId::MAX)).into());
    }
    let request = PlaceOrder {
        order_id: OrderId::parse("order_id", &body.order_id)?,
        checkout_token: shop::services::checkout::checkout_token(&body.checkout_token)?,
        lines: Some(parse_lines(body.lines)?),
        shipping_address: ShippingAddress::parse(body.shipping_address)?,
        expected_total_cents: body.expected_total_cents,
    };
    let placed = state.shop.orders.place(&caller.user, request).await?;
    Ok(if placed.replayed {
        (StatusCode::OK, [(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"))], Json(placed.order)).into_response()
    } else {
        (StatusCode::CREATED, Json(placed.order)).into_response()
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

impl OrdersQuery {
    /// The status filter, the cursor and the page size, or 422 naming the bad one.
    pub(super) fn parse(&self) -> Result<(Option<OrderStatus>, Option<OrderId>, PageLimit), Problem> {
        let status = self.status.as_deref().filter(|s| !s.is_empty()).map(|s| OrderStatus::parse("status", s)).transpose()?;
        let after = shop::catalog::optional_cursor(self.cursor.as_deref(), OrderId::parse)?;
        Ok((status, after, PageLimit::parse("limit", self.limit)?))
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrderList {
    items: Vec<Order>,
    next_cursor: Option<String>,
}

/// The caller's recent orders, newest first.
#[utoipa::path(get, path = "/orders", tag = "orders", security(("bearer" = [])), params(OrdersQuery),
    responses((status = 200, body = OrderList), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn list_orders(State(state): State<AppState>, caller: AuthUser, ApiQuery(query): ApiQuery<OrdersQuery>) -> Result<Json<OrderList>, Problem> {
    let (status, after, limit) = query.parse()?;
    let page = state.shop.orders.list_mine(&caller.user, status, after, limit).await?;
    Ok(Json(OrderList { items: page.items, next_cursor: page.next_cursor }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// The caller's archived orders (final, moved out of hot storage), newest first.
#[utoipa::path(get, path = "/orders/history", tag = "orders", security(("bearer" = [])), params(HistoryQuery),
    responses((status = 200, body = OrderList), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn order_history(State(state): State<AppState>, caller: AuthUser, ApiQuery(query): ApiQuery<HistoryQuery>) -> Result<Json<OrderList>, Problem> {
    let after = shop::catalog::optional_cursor(query.cursor.as_deref(), OrderId::parse)?;
    let page = state.shop.orders.history(&caller.user, after, PageLimit::parse("limit", query.limit)?).await?;
    Ok(Json(OrderList { items: page.items, next_cursor: page.next_cursor }))
}

/// An id in a path that cannot name an order names no order.
pub(super) fn order_id(raw: &str) -> Result<OrderId, Problem> {
    Ok(shop::error::id_or_not_found(raw, "order")?)
}

/// One of the caller's orders. Someone else's order is 404.
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem)))]
async fn get_order(State(state): State<AppState>, caller: AuthUser, Path(id): Path<String>) -> Result<Json<Order>, Problem> {
    Ok(Json(state.shop.orders.get(&caller.user, order_id(&id)?).await?))
}

/// Cancel an order: an unpaid one releases its stock at once; a paid one that has
/// not shipped is refunded to the wallet (escrow → buyer) and its stock comes back.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem), (status = 409, description = "invalid_transition, or archived", body = Problem)))]
async fn cancel_order(State(state): State<AppState>, caller: AuthUser, Path(id): Path<String>) -> Result<Json<Order>, Problem> {
    Ok(Json(state.shop.payments.cancel(&caller.user, order_id(&id)?).await?))
}
