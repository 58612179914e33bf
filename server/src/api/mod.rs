//! The JSON API under `/api/v1`: the contract in ../shared/API.md. Routes are
//! registered through utoipa-axum, so a route cannot exist without appearing in
//! the OpenAPI document served at `/api/v1/openapi.json`.

mod accounts;
mod cart;
mod catalog;
mod orders;
mod seller;
mod wallet;
pub mod extract;
pub mod idempotency;
pub mod problem;

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Ninefold API", version = "1", description = "The storefront's JSON API. Errors are application/problem+json (RFC 9457)."),
    modifiers(&BearerAuth),
    components(schemas(problem::Problem))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The operational routes and the `/api/v1` tree, with the OpenAPI document built from them.
pub fn router() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new().merge(accounts::router()).merge(catalog::router()).merge(orders::router()).merge(cart::router()).merge(wallet::router()).merge(seller::router()).routes(routes!(openapi_document));
    OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(healthz)).routes(routes!(metrics_text)).nest("/api/v1", v1)
}

/// What `/healthz` says: overall, and each database role up or down. Never an
/// error's text: that would tell anyone how the databases are reached.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` when every database answers, else `unavailable`.
    status: &'static str,
    /// Each role (`main`, `shard_0` …, `archive`): `up` or `down`.
    roles: std::collections::BTreeMap<String, &'static str>,
}

/// 200 when every database answers within a second, else 503; the body names
/// each role's state. Answers within about a second whatever the databases do.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn healthz(State(state): State<AppState>) -> axum::response::Response {
    let answers = state.shop.health(std::time::Duration::from_millis(900)).await;
    let healthy = answers.iter().all(|(_, up)| *up);
    for (role, _) in answers.iter().filter(|(_, up)| !*up) {
        tracing::warn!(database = %role, "health check: database down");
    }
    let roles = answers.into_iter().map(|(role, up)| (role, if up { "up" } else { "down" })).collect();
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(Health { status: if healthy { "ok" } else { "unavailable" }, roles })).into_response()
}

/// Prometheus text: HTTP requests and their latency (`ninefold_http_*`), orders
/// paid, oversells refused, stale waybill updates refused, ledger mismatches and
/// the seller index's lag.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics_text() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::telemetry::metrics().render())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "the OpenAPI 3.1 document")))]
async fn openapi_document(State(state): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], state.openapi_json.to_string())
}
