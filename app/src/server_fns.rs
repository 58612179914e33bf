//! Server functions: the pages' door into the `shop` services.

use crate::error::AppError;
use leptos::prelude::*;
use shop::accounts::User;
use shop::catalog::{Page, Product};

#[cfg(feature = "ssr")]
mod ssr {
    use crate::error::AppError;
    use crate::session::{CookiePolicy, Presented, presented_cookie};
    use leptos::prelude::*;
    use shop::Shop;
    use shop::accounts::User;
    use shop::services::accounts::SessionToken;

    pub fn shop() -> Result<Shop, AppError> {
        use_context::<Shop>().ok_or_else(|| AppError::new(503, "unavailable", "The shop is not available right now."))
    }

    pub fn cookie_policy() -> CookiePolicy {
        use_context::<CookiePolicy>().unwrap_or_default()
    }

    pub fn session_token() -> Option<SessionToken> {
        let parts = use_context::<http::request::Parts>()?;
        match presented_cookie(&parts.headers) {
            Presented::Token(token) => Some(token),
            Presented::Nothing | Presented::Garbage => None,
        }
    }

    /// The signed-in user, if any. A garbage or expired cookie is just "signed out"
    /// for pages: the visitor can still browse.
    pub async fn caller() -> Result<Option<User>, AppError> {
        match session_token() {
            Some(token) => Ok(shop()?.accounts.user_for_token(&token).await?),
            None => Ok(None),
        }
    }

    pub fn set_cookie(value: String) {
        if let (Some(response), Ok(value)) = (use_context::<leptos_axum::ResponseOptions>(), http::HeaderValue::from_str(&value)) {
            response.append_header(http::header::SET_COOKIE, value);
        }
    }

    /// Only local paths, so a crafted link cannot bounce a shopper to another site.
    pub fn safe_next(next: Option<String>) -> String {
        next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\')).unwrap_or_else(|| "/".to_owned())
    }
}

#[server(prefix = "/fn", endpoint = "current_user")]
pub async fn current_user() -> Result<Option<User>, AppError> {
    ssr::caller().await
}

#[server(prefix = "/fn", endpoint = "list_products")]
pub async fn list_products(cursor: Option<String>) -> Result<Page<Product>, AppError> {
    use shop::catalog::{Cursor, PageLimit};
    let cursor = cursor.filter(|c| !c.is_empty()).map(|c| Cursor::decode("cursor", &c)).transpose()?;
    Ok(ssr::shop()?.catalog.list(cursor, PageLimit::DEFAULT).await?)
}

#[server(prefix = "/fn", endpoint = "get_product")]
pub async fn get_product(id: String) -> Result<Product, AppError> {
    // An id that cannot be one is simply a product that does not exist.
    let id = id.parse::<shop::domain::ProductId>().map_err(|_| AppError::from(shop::ShopError::NotFound("product")))?;
    Ok(ssr::shop()?.catalog.get(id).await?)
}

#[server(prefix = "/fn", endpoint = "sign_in")]
pub async fn sign_in(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use shop::domain::{Email, Password};
    let email = Email::parse("email", &email)?;
    let password = Password::parse_attempt("password", &password)?;
    let (token, _user) = ssr::shop()?.accounts.sign_in(&email, password).await?;
    ssr::set_cookie(ssr::cookie_policy().issue(&token));
    leptos_axum::redirect(&ssr::safe_next(next));
    Ok(())
}

#[server(prefix = "/fn", endpoint = "register")]
pub async fn register(email: String, password: String, name: String, role: String) -> Result<(), AppError> {
    use shop::domain::{Email, Password, PersonName, Role};
    use shop::services::accounts::NewAccount;
    let account = NewAccount {
        email: Email::parse("email", &email)?,
        password: Password::parse("password", &password)?,
        name: PersonName::parse("name", &name)?,
        role: Role::parse_self_service("role", &role)?,
    };
    let shop = ssr::shop()?;
    let user = shop.accounts.register(account.clone()).await?;
    let (token, _) = shop.accounts.sign_in(&user.email, account.password).await?;
    ssr::set_cookie(ssr::cookie_policy().issue(&token));
    leptos_axum::redirect("/");
    Ok(())
}

#[server(prefix = "/fn", endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    if let Some(token) = ssr::session_token() {
        ssr::shop()?.accounts.sign_out(&token).await?;
    }
    ssr::set_cookie(ssr::cookie_policy().clear());
    leptos_axum::redirect("/");
    Ok(())
}
