//! The JSON API under `/api/v1`: the contract in ../shared/API.md. Routes are
//! registered through utoipa-axum, so a route cannot exist without appearing in
//! the OpenAPI document served at `/api/v1/openapi.json`.

mod accounts;
mod cart;
pub mod catalog;
pub mod document;
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
        components.add_security_scheme("metrics", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("the configured metrics_token")).build()));
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
    /// Each role (`main`, `shard_0` …, `archive`): `up` or `down` (its primary).
    roles: std::collections::BTreeMap<String, &'static str>,
    /// Each configured read replica, by role: `up`, `lagging` or `down`, and its lag
    /// in milliseconds. Not required for `ok`: reads fall back to the primary.
    replicas: Vec<ReplicaState>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ReplicaState {
    role: String,
    replica: String,
    state: &'static str,
    lag_ms: u64,
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
    let replicas = state.shop.databases.replica_health().into_iter().map(|r| ReplicaState { role: r.role, replica: r.replica, state: r.state, lag_ms: r.lag_ms }).collect();
    (status, axum::Json(Health { status: if healthy { "ok" } else { "unavailable" }, roles, replicas })).into_response()
}

/// Prometheus text: HTTP requests and their latency (`ninefold_http_*`), orders
/// paid, oversells refused, stale waybill updates refused, ledger mismatches and
/// the seller index's lag.
/// With `metrics_token` configured, only `Authorization: Bearer <metrics_token>`
/// is answered: the figures tell a competitor the shop's sales.
#[utoipa::path(get, path = "/metrics", tag = "operations", security((), ("metrics" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 401, body = problem::Problem)))]
async fn metrics_text(State(state): State<AppState>, headers: axum::http::HeaderMap) -> axum::response::Response {
    if let Some(expected) = &state.metrics_token {
        let presented = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        let matches = presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes()));
        if !matches {
            return problem::Problem::unauthenticated("send Authorization: Bearer <metrics_token> to read the metrics").into_response();
        }
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::telemetry::metrics().render()).into_response()
}

/// Compares without stopping at the first difference, so the time taken does not
/// reveal how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "the OpenAPI 3.1 document")))]
async fn openapi_document(State(state): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], state.openapi_json.to_string())
}
