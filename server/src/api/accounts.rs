//! `/api/v1/auth/*` and `/api/v1/me`.

use super::extract::{ApiJson, AuthUser};
use super::problem::Problem;
use crate::state::AppState;
use web::Presented;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use shop::accounts::User;
use shop::domain::{Email, Password, PersonName, Role};
use shop::services::accounts::NewAccount;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(change_password))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    email: String,
    password: String,
    name: String,
    /// `buyer` (the default) or `seller`.
    role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    user: User,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`. The same value is set as the session cookie.
    token: String,
    user: User,
}

/// Open an account.
#[utoipa::path(post, path = "/auth/register", tag = "accounts", request_body = RegisterRequest,
    responses((status = 201, body = UserResponse), (status = 409, description = "email_taken", body = Problem), (status = 422, body = Problem)))]
async fn register(State(state): State<AppState>, ApiJson(body): ApiJson<RegisterRequest>) -> Result<(StatusCode, Json<UserResponse>), Problem> {
    let account = NewAccount {
        email: Email::parse("email", &body.email)?,
        password: Password::parse("password", &body.password)?,
        name: PersonName::parse("name", &body.name)?,
        role: Role::parse_self_service("role", body.role.as_deref().unwrap_or("buyer"))?,
    };
    let user = state.shop.accounts.register(account).await?;
    Ok((StatusCode::CREATED, Json(UserResponse { user })))
}

/// Sign in: returns a bearer token and sets the session cookie.
#[utoipa::path(post, path = "/auth/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem), (status = 429, description = "too_many_attempts, with Retry-After", body = Problem)))]
async fn login(State(state): State<AppState>, parts: Parts, ApiJson(body): ApiJson<LoginRequest>) -> Result<impl IntoResponse, Problem> {
    let email = Email::parse("email", &body.email)?;
    let password = Password::parse_attempt("password", &body.password)?;
    let client = web::ClientAddr::from_extensions(&parts.extensions);
    let (token, user) = state.shop.accounts.sign_in(&email, password, client).await?;
    let cookie = HeaderValue::from_str(&state.cookies.issue(&token)).map_err(|e| shop::ShopError::Internal(e.into()))?;
    Ok(([(header::SET_COOKIE, cookie)], Json(LoginResponse { token: token.expose().to_owned(), user })))
}

/// Sign out: ends the presented session (bearer or cookie) and clears the cookie.
/// Signing out without a live session is not an error.
#[utoipa::path(post, path = "/auth/logout", tag = "accounts", responses((status = 204)))]
async fn logout(State(state): State<AppState>, parts: Parts) -> Result<impl IntoResponse, Problem> {
    if let Presented::Token(token) = web::presented_session(&parts.headers) {
        state.shop.accounts.sign_out(&token).await?;
    }
    let mut headers = HeaderMap::new();
    if let Ok(cookie) = HeaderValue::from_str(&state.cookies.clear()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    Ok((StatusCode::NO_CONTENT, headers))
}

/// The signed-in caller.
#[utoipa::path(get, path = "/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 401, body = Problem)))]
async fn me(caller: AuthUser) -> Json<UserResponse> {
    Json(UserResponse { user: caller.user })
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    current_password: String,
    /// 8 to 128 characters.
    new_password: String,
}

/// Change the password, giving the current one. Every other session of the user
/// ends; this one stays. A wrong current password is 401 and counts as a failed
/// sign-in.
#[utoipa::path(post, path = "/auth/password", tag = "accounts", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn change_password(State(state): State<AppState>, caller: AuthUser, parts: Parts, ApiJson(body): ApiJson<ChangePasswordRequest>) -> Result<StatusCode, Problem> {
    let current = Password::parse_attempt("current_password", &body.current_password)?;
    let new = Password::parse("new_password", &body.new_password)?;
    let client = web::ClientAddr::from_extensions(&parts.extensions);
    state.shop.accounts.change_password(&caller.user, &caller.token, current, new, client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out everywhere: every session of the user ends, this one too.
#[utoipa::path(post, path = "/auth/logout-all", tag = "accounts", security(("bearer" = [])), responses((status = 204), (status = 401, body = Problem)))]
async fn logout_all(State(state): State<AppState>, caller: AuthUser) -> Result<impl IntoResponse, Problem> {
    state.shop.accounts.sign_out_everywhere(&caller.user).await?;
    let mut headers = HeaderMap::new();
    if let Ok(cookie) = HeaderValue::from_str(&state.cookies.clear()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    Ok((StatusCode::NO_CONTENT, headers))
}
