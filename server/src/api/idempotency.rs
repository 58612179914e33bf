//! `Idempotency-Key` on the API's POSTs (API.md): the same key and body replays
//! the first response with `Idempotent-Replayed: true`; the same key with another
//! body is 422 `idempotency_key_reused`; the same key while the first request is
//! still running is 409 `idempotency_key_in_use`. Keys are scoped to the caller.
//! Responses of 5xx are not kept, so a retry after an outage runs again.

use super::extract::AuthUser;
use super::problem::Problem;
use crate::state::AppState;
use web::Presented;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use shop::services::idempotency::Claim;

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The one limit on a key, for every POST: the top-up names its deposit after
/// the key, so a key the middleware accepts is one the deposit accepts too.
pub const MAX_KEY_CHARS: usize = 128;
const MAX_BODY_BYTES: usize = 64 * 1024;

pub async fn idempotent_posts(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(request).await;
    }
    // Sign-in answers with a new session token: never keep a secret in a stored
    // response. (Signing in twice is harmless; nothing there needs a replay.)
    if request.uri().path().starts_with("/api/v1/auth/") {
        return next.run(request).await;
    }
    let key = match request.headers().get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()) {
        Some(key) if !key.is_empty() && key.len() <= MAX_KEY_CHARS && key.bytes().all(|b| b.is_ascii_graphic()) => key.to_owned(),
        _ => {
            return Problem::new(StatusCode::BAD_REQUEST, "invalid_idempotency_key", format!("Idempotency-Key must be 1 to {MAX_KEY_CHARS} visible ASCII characters"))
                .with_field("Idempotency-Key")
                .into_response();
        }
    };
    // Keys are the caller's: without a live session the handler answers 401 itself.
    let (mut parts, body) = request.into_parts();
    let Presented::Token(token) = web::presented_session(&parts.headers) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let caller = match state.shop.accounts.user_for_token(&token).await {
        Ok(Some(user)) => user,
        Ok(None) => return next.run(Request::from_parts(parts, body)).await,
        Err(error) => return Problem::from(error).into_response(),
    };
    // The handler's `AuthUser` takes the caller from here instead of looking it up again.
    parts.extensions.insert(AuthUser { user: caller.clone(), token });
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the request body is too large").into_response();
    };
    let fingerprint = hex_sha256(&[parts.method.as_str().as_bytes(), parts.uri.path().as_bytes(), &bytes]);
    let store = &state.shop.idempotency;
    match store.claim(caller.id, &key, &fingerprint).await {
        Err(error) => Problem::from(error).into_response(),
        Ok(Claim::Reused) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
            .with_field("Idempotency-Key")
            .into_response(),
        Ok(Claim::InUse) => Problem::new(StatusCode::CONFLICT, "idempotency_key_in_use", "the first request with this Idempotency-Key is still running; retry shortly")
            .into_response(),
        Ok(Claim::Replay { status, content_type, body }) => {
            let mut response = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
            response
        }
        Ok(Claim::Claimed) => {
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            let (response_parts, body) = response.into_parts();
            let Ok(body) = axum::body::to_bytes(body, 4 * MAX_BODY_BYTES).await else {
                let _ = store.abandon(caller.id, &key).await;
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            let outcome = if response_parts.status.is_server_error() {
                store.abandon(caller.id, &key).await
            } else {
                let content_type = response_parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
                store.finish(caller.id, &key, response_parts.status.as_u16(), content_type, &String::from_utf8_lossy(&body)).await
            };
            if let Err(error) = outcome {
                tracing::error!(%error, "could not record an idempotent response");
            }
            Response::from_parts(response_parts, Body::from(body))
        }
    }
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}
