//! The error a page can receive from a server function: the stable code of the
//! shop error, a message fit for a person, and the field it is about.

use serde::{Deserialize, Serialize};
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// The HTTP status the server answered with.
    pub status: u16,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl AppError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_owned(), message: message.into(), field: None }
    }

    pub fn is_not_found(&self) -> bool {
        self.code == "not_found"
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    /// Failures outside the function body: on the server, arguments that do not
    /// decode (a 400, the caller's fault); on the client, a network that is down.
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) | ServerFnErrorErr::Deserialization(_) => {
                Self::new(400, "bad_request", "The form was incomplete or malformed. Please reload the page and try again.")
            }
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                Self::new(503, "request_failed", "We could not reach the shop. Check your connection and try again.")
            }
            _ => Self::new(500, "request_failed", "Something went wrong on our side. Please try again."),
        }
    }
}

impl From<shop::domain::FieldError> for AppError {
    fn from(error: shop::domain::FieldError) -> Self {
        let label = error.field.replace('_', " ");
        let mut label_chars = label.chars();
        let label = label_chars.next().map(|c| c.to_uppercase().chain(label_chars).collect::<String>()).unwrap_or_default();
        Self { status: 422, code: "validation_failed".to_owned(), message: format!("{label} {}", error.message), field: Some(error.field) }
    }
}

#[cfg(feature = "ssr")]
impl From<shop::ShopError> for AppError {
    fn from(error: shop::ShopError) -> Self {
        match error {
            shop::ShopError::Invalid(field) => field.into(),
            shop::ShopError::Internal(ref inner) => {
                tracing::error!(error = ?inner, "server function failed");
                Self::new(500, error.code(), "Something went wrong on our side. Please try again.")
            }
            other => Self::new(other.http_status(), other.code(), capitalise(&other.to_string())),
        }
    }
}

#[cfg(feature = "ssr")]
fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
