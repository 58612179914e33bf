//! `/api/v1/wallet`, paying for orders, receipts, and `/api/v1/admin/reconcile`.

use super::extract::{ApiJson, ApiQuery, AuthUser};
use super::orders::order_id;
use super::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use shop::domain::Money;
use shop::orders::Order;
use shop::secrets::FormNonce;
use shop::services::ledger::{Ledger, Reconciliation, Wallet};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_wallet))
        .routes(routes!(top_up))
        .routes(routes!(pay_order))
        .routes(routes!(confirm_receipt))
        .routes(routes!(reconcile))
}

const ENTRIES_PER_PAGE: i64 = Ledger::STATEMENT_PAGE;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WalletQuery {
    cursor: Option<String>,
}

/// The caller's balance and statement, newest first.
#[utoipa::path(get, path = "/wallet", tag = "wallet", security(("bearer" = [])), params(WalletQuery),
    responses((status = 200, body = Wallet), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn get_wallet(State(state): State<AppState>, caller: AuthUser, ApiQuery(query): ApiQuery<WalletQuery>) -> Result<Json<Wallet>, Problem> {
    let cursor = query.cursor.filter(|c| !c.is_empty());
    Ok(Json(state.shop.ledger.wallet(&caller.user, cursor.as_deref(), ENTRIES_PER_PAGE).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct TopUpRequest {
    /// 1 ..= 10 000 000 cents.
    amount_cents: i64,
}

/// Deposit into the wallet (stands in for an external payment provider). Send an
/// `Idempotency-Key`: a retry with the same key deposits once.
#[utoipa::path(post, path = "/wallet/top-up", tag = "wallet", security(("bearer" = [])), request_body = TopUpRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Wallet), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn top_up(State(state): State<AppState>, caller: AuthUser, headers: HeaderMap, ApiJson(body): ApiJson<TopUpRequest>) -> Result<Json<Wallet>, Problem> {
    let amount = Money::parse_top_up("amount_cents", body.amount_cents)?;
    // The key also names the transfer, so even a replay that outlived the
    // idempotency store could not deposit twice.
    let key = match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(key) => format!("key:{key}"),
        None => format!("once:{}", FormNonce::generate()?.expose()),
    };
    state.shop.ledger.top_up(&caller.user, amount, &key).await?;
    Ok(Json(state.shop.ledger.wallet(&caller.user, None, ENTRIES_PER_PAGE).await?))
}


/// Pay an order from the wallet: buyer → escrow, stock settled. Paying again
/// returns the paid order and moves nothing.
#[utoipa::path(post, path = "/orders/{id}/pay", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 402, description = "insufficient_funds", body = Problem), (status = 404, body = Problem),
        (status = 409, description = "insufficient_stock (the hold lapsed and the stock is gone), invalid_transition or archived", body = Problem)))]
async fn pay_order(State(state): State<AppState>, caller: AuthUser, Path(id): Path<String>) -> Result<Json<Order>, Problem> {
    Ok(Json(state.shop.payments.pay(&caller.user, order_id(&id)?).await?))
}

/// Confirm a shipped order arrived: escrow → seller; the order is completed.
#[utoipa::path(post, path = "/orders/{id}/confirm-receipt", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem), (status = 409, description = "invalid_transition or archived", body = Problem)))]
async fn confirm_receipt(State(state): State<AppState>, caller: AuthUser, Path(id): Path<String>) -> Result<Json<Order>, Problem> {
    Ok(Json(state.shop.payments.confirm_receipt(&caller.user, order_id(&id)?).await?))
}

/// Admin: sum the journal per account and compare with every balance.
#[utoipa::path(get, path = "/admin/reconcile", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Reconciliation), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn reconcile(State(state): State<AppState>, caller: AuthUser) -> Result<Json<Reconciliation>, Problem> {
    Ok(Json(state.shop.ledger.reconcile_for(&caller.user).await?))
}
