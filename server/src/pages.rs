//! Wires the Leptos app into the router: server-rendered pages, server
//! functions under `/fn/` (registered by `leptos_routes` at their own paths),
//! static assets, and the 404 page for everything else.

use crate::state::AppState;
use app::{App, shell};
use axum::Router;
use axum::body::Body;
use app::error::AppError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leptos::prelude::provide_context;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use std::sync::OnceLock;

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = route_list().to_vec();
    let context = page_context(state);
    Router::new()
        .leptos_routes_with_context(state, routes, context.clone(), {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        .layer(axum::middleware::map_response(server_function_status))
        .layer(axum::middleware::from_fn_with_state(crate::page_cache::PageCache::new(), crate::page_cache::serve_cached))
}

/// The app's routes, listed once per process. Listing them runs the app with
/// resource loading suppressed through a process-wide flag (leptos_server 0.8):
/// a resource of a page being rendered meanwhile, by another router in the same
/// process, that is first polled while the flag is up never loads, and its page
/// hangs until the request times out (leptos-rs/leptos#4773). One server builds
/// one router before it serves, but the test suites build one per test, in
/// parallel with other tests' renders: that was the rare 503 after 30 s on
/// `/search` under a full CI run.
pub fn route_list() -> &'static [AxumRouteListing] {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App))
}

/// What pages and server functions may `use_context` for.
fn page_context(state: &AppState) -> impl Fn() + Clone + Send + Sync + 'static + use<> {
    let shop = state.shop.clone();
    let cookies = state.cookies;
    move || {
        provide_context(shop.clone());
        provide_context(cookies);
        app::set_content_security_policy();
    }
}

/// Leptos answers every failed server-function call with 500; ours carry their
/// real status (422, 401, 409, 400, ...) in the encoded [`AppError`], which is
/// applied here, once for all functions: bad input is never a 5xx.
///
/// A plain form post (no script) that failed is answered with a redirect back to
/// the form, the error encoded in its URL; that stays a redirect.
async fn server_function_status(response: Response) -> Response {
    if !response.headers().contains_key(SERVER_FN_ERROR_HEADER) || response.headers().contains_key(axum::http::header::LOCATION) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BYTES).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Some(status) = serde_json::from_slice::<AppError>(&bytes).ok().and_then(|e| StatusCode::from_u16(e.status).ok()) {
        parts.status = status;
    }
    Response::from_parts(parts, Body::from(bytes))
}

const SERVER_FN_ERROR_HEADER: &str = "serverfnerror";
const MAX_ERROR_BYTES: usize = 64 * 1024;
