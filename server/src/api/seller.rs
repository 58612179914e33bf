//! `/api/v1/seller/orders`: a seller's orders and their waybills.

use super::extract::{ApiJson, ApiQuery, AuthUser};
use super::orders::{OrdersQuery, order_id};
use super::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use shop::orders::{SellerOrder, Waybill, WaybillChange, WaybillInput};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(seller_orders)).routes(routes!(seller_order)).routes(routes!(set_shipping)).routes(routes!(shipping_history))
}

#[derive(Serialize, ToSchema)]
pub struct SellerOrderList {
    items: Vec<SellerOrder>,
    next_cursor: Option<String>,
}

/// The seller's orders, newest first, from the seller index (which trails the
/// order shards by the relay's delay; `version` tells which copy is newer).
#[utoipa::path(get, path = "/seller/orders", tag = "seller", security(("bearer" = [])), params(OrdersQuery),
    responses((status = 200, body = SellerOrderList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn seller_orders(State(state): State<AppState>, caller: AuthUser, ApiQuery(query): ApiQuery<OrdersQuery>) -> Result<Json<SellerOrderList>, Problem> {
    let (status, after, limit) = query.parse()?;
    let page = state.shop.seller_index.list(&caller.user, status, after, limit).await?;
    Ok(Json(SellerOrderList { items: page.items, next_cursor: page.next_cursor }))
}

/// One of the seller's orders, read from its shard (current, not the index's copy).
#[utoipa::path(get, path = "/seller/orders/{id}", tag = "seller", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = SellerOrder), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn seller_order(State(state): State<AppState>, caller: AuthUser, Path(id): Path<String>) -> Result<Json<SellerOrder>, Problem> {
    Ok(Json(state.shop.shipping.seller_order(&caller.user, order_id(&id)?).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct ShippingRequest {
    carrier: String,
    tracking_number: String,
    /// 0 for the first waybill (which marks the order shipped), else the version you read.
    expected_version: i64,
}

/// Enter or correct an order's waybill. A stale `expected_version` is refused with
/// 409 `stale_version` and the current record under `current`, so a delayed retry
/// can never put back an older waybill.
#[utoipa::path(put, path = "/seller/orders/{id}/shipping", tag = "seller", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = ShippingRequest,
    responses((status = 200, body = Waybill), (status = 404, body = Problem), (status = 409, description = "stale_version (with `current`), invalid_transition or archived", body = Problem),
        (status = 422, body = Problem)))]
async fn set_shipping(State(state): State<AppState>, caller: AuthUser, Path(id): Path<String>, ApiJson(body): ApiJson<ShippingRequest>) -> Result<Json<Waybill>, Problem> {
    let id = order_id(&id)?;
    let input = WaybillInput::parse(&body.carrier, &body.tracking_number)?;
    Ok(Json(state.shop.shipping.set_waybill(&caller.user, id, body.expected_version, input).await?))
}

#[derive(Serialize, ToSchema)]
pub struct ShippingHistory {
    items: Vec<WaybillChange>,
}

/// Every accepted waybill change, oldest first.
#[utoipa::path(get, path = "/seller/orders/{id}/shipping/history", tag = "seller", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ShippingHistory), (status = 404, body = Problem)))]
async fn shipping_history(State(state): State<AppState>, caller: AuthUser, Path(id): Path<String>) -> Result<Json<ShippingHistory>, Problem> {
    Ok(Json(ShippingHistory { items: state.shop.shipping.history(&caller.user, order_id(&id)?).await? }))
}
