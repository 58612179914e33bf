//! The error a page can receive from a server function: the stable code of the
//! shop error, a message fit for a person, and the field it is about.

use serde::{Deserialize, Serialize};
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl AppError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into(), field: None }
    }

    pub fn is_not_found(&self) -> bool {
        self.code == "not_found"
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    /// Transport failures (network down, server gone) arrive here on the client.
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let message = match value {
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                "We could not reach the shop. Check your connection and try again.".to_owned()
            }
            _ => "Something went wrong on our side. Please try again.".to_owned(),
        };
        Self::new("request_failed", message)
    }
}

impl From<shop::domain::FieldError> for AppError {
    fn from(error: shop::domain::FieldError) -> Self {
        let label = error.field.replace('_', " ");
        let mut label_chars = label.chars();
        let label = label_chars.next().map(|c| c.to_uppercase().chain(label_chars).collect::<String>()).unwrap_or_default();
        Self { code: "validation_failed".to_owned(), message: format!("{label} {}", error.message), field: Some(error.field) }
    }
}

#[cfg(feature = "ssr")]
impl From<shop::ShopError> for AppError {
    fn from(error: shop::ShopError) -> Self {
        match error {
            shop::ShopError::Invalid(field) => field.into(),
            shop::ShopError::Internal(ref inner) => {
                tracing::error!(error = ?inner, "server function failed");
                Self::new(error.code(), "Something went wrong on our side. Please try again.")
            }
            other => Self::new(other.code(), capitalise(&other.to_string())),
        }
    }
}

#[cfg(feature = "ssr")]
fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
