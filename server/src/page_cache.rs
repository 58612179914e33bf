//! A micro-cache for anonymous page views.
//!
//! Rendering a page with Leptos costs on the order of 100 µs of CPU, about ten
//! times what the same product costs as JSON (see BENCHMARKS.md). Most storefront
//! traffic is signed-out visitors looking at the same catalog pages, so a page
//! rendered for one anonymous visitor is kept for [`TTL`] and served to the next.
//! Rendering is then bounded by one render per page per second, whatever the load.
//!
//! Only safe responses are kept: GET requests without a session (no session
//! cookie, no `Authorization`), answered 200 and without `Set-Cookie`. Stock shown
//! to an anonymous visitor may be up to [`TTL`] old; nothing is decided from it
//! (orders take stock with conditional statements), and signed-in shoppers always
//! get a fresh render.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

pub const TTL: Duration = Duration::from_secs(1);
/// Bounds memory: at ~20 KiB a page, 2048 pages is ~40 MiB at most.
const MAX_PAGES: u64 = 2048;
const MAX_PAGE_BYTES: usize = 512 * 1024;

#[derive(Clone)]
struct CachedPage {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
pub struct PageCache(moka::future::Cache<String, Arc<CachedPage>>);

impl PageCache {
    pub fn new() -> Self {
        Self(moka::future::Cache::builder().max_capacity(MAX_PAGES).time_to_live(TTL).build())
    }
}

impl Default for PageCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: answer from the cache when the request is cacheable and a fresh
/// copy exists; otherwise render, and keep the result if it is safe to share.
pub async fn serve_cached(State(cache): State<PageCache>, request: Request, next: Next) -> Response {
    if !is_anonymous_page_view(&request) {
        return next.run(request).await;
    }
    let key = request.uri().to_string();
    if let Some(page) = cache.0.get(&key).await {
        let mut response = Body::from(page.body.clone()).into_response();
        *response.headers_mut() = page.headers.clone();
        return response;
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::OK || response.headers().contains_key(header::SET_COOKIE) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_PAGE_BYTES).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    cache.0.insert(key, Arc::new(CachedPage { headers: parts.headers.clone(), body: body.clone() })).await;
    Response::from_parts(parts, Body::from(body))
}

fn is_anonymous_page_view(request: &Request) -> bool {
    let headers = request.headers();
    // A guest's server-side cart shows in the header: a page with one is theirs alone.
    let has_session_cookie = headers.get_all(header::COOKIE).iter().any(|value| {
        value.to_str().map_or(true, |text| text.contains(web::SESSION_COOKIE) || text.contains(web::CART_COOKIE))
    });
    request.method() == Method::GET
        && !headers.contains_key(header::AUTHORIZATION)
        && !has_session_cookie
        && is_catalog_page(request.uri().path())
}

/// The pages that look the same to every signed-out visitor.
fn is_catalog_page(path: &str) -> bool {
    path == "/" || path.strip_prefix("/products/").is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn only_signed_out_catalog_views_are_cacheable() {
        assert!(is_anonymous_page_view(&request("/", &[])));
        assert!(is_anonymous_page_view(&request("/products/3", &[("cookie", "theme=dark")])));
        assert!(is_anonymous_page_view(&request("/?cursor=p1a", &[])));
        assert!(!is_anonymous_page_view(&request("/products/3", &[("cookie", "nf_session=abc")])));
        assert!(!is_anonymous_page_view(&request("/products/3", &[("cookie", "nf_cart=abc")])));
        assert!(!is_anonymous_page_view(&request("/products/3", &[("authorization", "Bearer x")])));
        assert!(!is_anonymous_page_view(&request("/login", &[])));
        assert!(!is_anonymous_page_view(&request("/products/3/edit", &[])));
        assert!(!is_anonymous_page_view(&request("/api/v1/products/3", &[])));
    }
}
