//! Extractors that turn every malformed request into a [`Problem`] naming what was
//! wrong, instead of axum's plain-text rejections.

use super::problem::Problem;
use crate::state::AppState;
use web::Presented;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use shop::accounts::User;
use shop::secrets::SessionToken;

/// A JSON body. Syntax errors are 400 `malformed_json`; a well-formed body with a
/// wrong type, a missing field or a number out of range is 422 naming the field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !declares_json(&req) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the request body is too large")
            } else {
                Problem::new(StatusCode::BAD_REQUEST, "unreadable_body", "the request body could not be read")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn declares_json(req: &Request) -> bool {
    let Some(content_type) = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    // Syntax first, so a body that is not JSON at all (or has trailing bytes) is a 400
    // whatever its prefix holds. Bodies are capped at 64 KiB, so the extra scan is cheap.
    let mut body = serde_json::from_slice::<serde_json::Value>(bytes)
        .map_err(|error| Problem::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {error}")))?;
    whole_numbers_as_integers(&mut body);
    let value = serde_path_to_error::deserialize(body).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        let field = if path == "." { named_in_message(&message).unwrap_or_default() } else { path };
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", strip_position(&message)).with_field(field)
    })?;
    Ok(value)
}

/// JSON has one number type: `113.0` is the integer 113 to JSON Schema (and to
/// any client that wrote it from a float), so it is read as one.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| !number.is_i64() && !number.is_u64())
                && float.fract() == 0.0
                && float.abs() <= 9_007_199_254_740_992.0
            {
                *value = serde_json::Value::from(float as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// serde names missing and unknown fields only in its message: "missing field `email`".
fn named_in_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// Drops serde's " at line 1 column 20", which means nothing to an API client.
fn strip_position(message: &str) -> String {
    message.split(" at line ").next().unwrap_or(message).to_owned()
}

/// A query string, with bad values reported as 400 `invalid_query`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded_from_str(query)
            .map(ApiQuery)
            .map_err(|message| Problem::new(StatusCode::BAD_REQUEST, "invalid_query", format!("the query string is invalid: {message}")))
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(query: &str) -> Result<T, String> {
    axum::extract::Query::<T>::try_from_uri(&format!("/?{query}").parse().map_err(|_| "unreadable query".to_owned())?)
        .map(|q| q.0)
        .map_err(|rejection| rejection.body_text().trim_start_matches("Failed to deserialize query string: ").to_owned())
}

/// The signed-in caller. A bearer token wins over the cookie. No credentials is
/// 401 `unauthenticated`; a malformed, unknown or expired token is 401 `invalid_token`.
/// (An `Option<AuthUser>` would silently treat a bad token as "signed out", which
/// hides expired sessions from API clients.)
#[derive(Clone)]
pub struct AuthUser {
    pub user: User,
    pub token: SessionToken,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        // A middleware earlier in the request (Idempotency-Key) may have found the caller already.
        if let Some(found) = parts.extensions.get::<AuthUser>() {
            return Ok(found.clone());
        }
        let invalid = || Problem::new(StatusCode::UNAUTHORIZED, "invalid_token", "the session token is invalid or has expired; sign in again");
        match web::presented_session(&parts.headers) {
            Presented::Nothing => Err(Problem::unauthenticated("sign in first: send Authorization: Bearer <token> from POST /api/v1/auth/login")),
            Presented::Garbage => Err(invalid()),
            Presented::Token(token) => match state.shop.accounts.user_for_token(&token).await? {
                Some(user) => Ok(AuthUser { user, token }),
                None => Err(invalid()),
            },
        }
    }
}

