//! Wires the Leptos app into the router: server-rendered pages, server
//! functions under `/fn/`, static assets, and the 404 page for everything else.

use crate::state::AppState;
use app::{App, shell};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::IntoResponse;
use axum::routing::post;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list, handle_server_fns_with_context};

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = generate_route_list(App);
    let context = page_context(state);
    Router::new()
        .route("/fn/{*name}", post(server_function).get(server_function))
        .leptos_routes_with_context(state, routes, context.clone(), {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
}

/// What pages and server functions may `use_context` for.
fn page_context(state: &AppState) -> impl Fn() + Clone + Send + Sync + 'static + use<> {
    let shop = state.shop.clone();
    let cookies = state.cookies;
    move || {
        provide_context(shop.clone());
        provide_context(cookies);
    }
}

async fn server_function(State(state): State<AppState>, request: Request<Body>) -> impl IntoResponse {
    handle_server_fns_with_context(page_context(&state), request).await
}
