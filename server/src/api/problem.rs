//! `application/problem+json` (RFC 9457) responses: every API error goes through
//! [`Problem`], so the shape is the same everywhere. 500s are logged in full and
//! shown to the client as an opaque message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shop::ShopError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:ninefold:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable and machine-readable: branch on this.
    pub code: String,
    /// The input field the problem is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The current state of a record an edit went stale against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<serde_json::Value>,
    /// `price_changed`: the order's total as priced now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cents: Option<i64>,
    #[serde(skip)]
    retry_after_secs: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:ninefold:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            field: None,
            current: None,
            total_cents: None,
            retry_after_secs: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds `Retry-After` to the response.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn unauthenticated(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }
}

impl From<ShopError> for Problem {
    fn from(error: ShopError) -> Self {
        let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut problem = Problem::new(status, error.code(), error.to_string());
        match error {
            ShopError::Invalid(field) => problem = problem.with_field(field.field),
            ShopError::EmailTaken => problem = problem.with_field("email"),
            ShopError::StaleVersion { current_version } => problem.current = Some(serde_json::json!({ "version": current_version })),
            ShopError::TooManyAttempts { retry_after_secs } | ShopError::Overloaded { retry_after_secs } => problem.retry_after_secs = Some(retry_after_secs),
            ShopError::TopUpLimit { retry_after_secs, ref resets_at, .. } => {
                problem.current = Some(serde_json::json!({ "resets_at": resets_at }));
                problem.retry_after_secs = Some(retry_after_secs);
            }
            ShopError::StaleWaybill { current } => problem.current = serde_json::to_value(current).ok(),
            ShopError::PriceChanged { total_cents } => problem.total_cents = Some(total_cents),
            ShopError::InsufficientFunds { balance_cents, needed_cents } => {
                problem.current = Some(serde_json::json!({ "balance_cents": balance_cents, "needed_cents": needed_cents }))
            }
            ShopError::Internal(inner) => {
                tracing::error!(error = ?inner, "request failed");
                problem.detail = "something went wrong on our side; it has been logged".to_owned();
            }
            ShopError::NotFound(_)
            | ShopError::InvalidCredentials
            | ShopError::Unauthenticated
            | ShopError::Forbidden
            | ShopError::InsufficientStock { .. }
            | ShopError::InvalidCheckoutToken
            | ShopError::TooManyUnpaidOrders { .. }
            | ShopError::TopUpDisabled
            | ShopError::InvalidTransition { .. }
            | ShopError::Archived
            | ShopError::TooLarge { .. }
            | ShopError::UnsupportedMedia => {}
            ShopError::Unavailable => problem.retry_after_secs = Some(5),
        }
        problem
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after_secs;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The API's answer to a path under `/api/v1` that names no route.
pub async fn no_such_route() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no_such_route", "no API route has this path; see /api/v1/openapi.json")
}

impl From<shop::domain::FieldError> for Problem {
    fn from(error: shop::domain::FieldError) -> Self {
        ShopError::Invalid(error).into()
    }
}
