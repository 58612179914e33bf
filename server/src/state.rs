use web::CookiePolicy;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use shop::Shop;
use std::sync::Arc;

/// What every handler can reach. Cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub shop: Shop,
    /// For the pages: where the site's assets are and what they are called.
    pub leptos_options: LeptosOptions,
    pub cookies: CookiePolicy,
    /// The OpenAPI document, serialised once at start-up.
    pub openapi_json: Arc<str>,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>`.
    pub metrics_token: Option<Arc<str>>,
}
