//! `/api/v1/cart`: a signed-in caller's cart, or a guest's server-side cart under
//! `X-Cart-Token` (or the `nf_cart` cookie), created on first write.

use super::extract::{ApiJson, AuthUser};
use super::problem::Problem;
use crate::state::AppState;
use web::Presented;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shop::cart::{CartLine, MergeReport, parse_line_quantity, parse_merge_id};
use shop::clock::rfc3339;
use shop::domain::ProductId;
use shop::secrets::CartToken;
use shop::services::carts::CartOwner;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_cart)).routes(routes!(set_line)).routes(routes!(merge_cart))
}

use web::CART_TOKEN_HEADER;

#[derive(Serialize, ToSchema)]
pub struct LineBody {
    product_id: i64,
    quantity: i64,
    /// RFC 3339.
    added_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct CartBody {
    lines: Vec<LineBody>,
    /// A guest's cart token: send it back as `X-Cart-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    cart_token: Option<String>,
    /// After a merge: what it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    merge: Option<MergeReport>,
}

fn body(lines: Vec<CartLine>, cart_token: Option<String>, merge: Option<MergeReport>) -> CartBody {
    let lines = lines.into_iter().map(|l| LineBody { product_id: l.product_id.get(), quantity: l.quantity, added_at: rfc3339(l.added_at_ms) }).collect();
    CartBody { lines, cart_token, merge }
}

fn malformed_cart_token(field: &str) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "invalid_cart_token", "the cart token is malformed").with_field(field)
}

/// Who is asking about a cart: the signed-in caller and the guest cart token
/// presented. A bad session is 401 rather than a silent switch to a guest cart.
async fn presented_owner(state: &AppState, parts: &mut Parts) -> Result<(Option<shop::accounts::User>, Option<CartToken>), Problem> {
    let user = match web::presented_session(&parts.headers) {
        Presented::Nothing => None,
        _ => Some(<AuthUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(parts, state).await?.user),
    };
    let guest = web::presented_cart_token(&parts.headers).map_err(|_| malformed_cart_token(CART_TOKEN_HEADER))?;
    Ok((user, guest))
}

async fn owner(state: &AppState, parts: &mut Parts) -> Result<Option<CartOwner>, Problem> {
    let (user, guest) = presented_owner(state, parts).await?;
    Ok(state.shop.carts.owner(user, guest).await?)
}

/// The caller's cart. A guest without a cart gets an empty one (none is created).
#[utoipa::path(get, path = "/cart", tag = "cart", params(("X-Cart-Token" = Option<String>, Header)),
    responses((status = 200, body = CartBody), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn get_cart(State(state): State<AppState>, mut parts: Parts) -> Result<Json<CartBody>, Problem> {
    Ok(Json(match owner(&state, &mut parts).await? {
        Some(owner @ CartOwner::User(_)) => body(state.shop.carts.lines(&owner).await?, None, None),
        Some(owner @ CartOwner::Guest(_)) => {
            let token = match &owner { CartOwner::Guest(t) => Some(t.expose().to_owned()), CartOwner::User(_) => None };
            body(state.shop.carts.lines(&owner).await?, token, None)
        }
        None => body(Vec::new(), None, None),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct SetLineRequest {
    /// 0..=99; 0 removes the line.
    quantity: i64,
}

/// Set a line's quantity (0 removes it). A guest's first write creates the cart and
/// returns its token (and sets the `nf_cart` cookie).
#[utoipa::path(put, path = "/cart/lines/{product_id}", tag = "cart", params(("product_id" = i64, Path), ("X-Cart-Token" = Option<String>, Header)),
    request_body = SetLineRequest,
    responses((status = 200, body = CartBody), (status = 400, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_line(State(state): State<AppState>, mut parts: Parts, Path(product_id): Path<String>, ApiJson(request): ApiJson<SetLineRequest>) -> Result<Response, Problem> {
    let product_id: ProductId = shop::error::id_or_not_found(&product_id, "product")?;
    let quantity = parse_line_quantity("quantity", request.quantity)?;
    let (user, guest) = presented_owner(&state, &mut parts).await?;
    let (owner, new_token) = state.shop.carts.owner_or_new_guest(user, guest).await?;
    let lines = state.shop.carts.set_line(&owner, product_id, quantity).await?;
    let token = match &owner { CartOwner::Guest(t) => Some(t.expose().to_owned()), CartOwner::User(_) => None };
    let mut response = Json(body(lines, token, None)).into_response();
    if let Some(cookie) = new_token.and_then(|t| HeaderValue::from_str(&state.cookies.issue_cart(&t)).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[derive(Deserialize, ToSchema)]
pub struct MergeLine {
    product_id: i64,
    quantity: i64,
    /// RFC 3339; defaults to now.
    added_at: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct MergeRequest {
    /// Chosen once per guest cart and reused on every retry.
    merge_id: String,
    #[serde(default)]
    lines: Vec<MergeLine>,
    /// The guest's server-side cart, merged too and then deleted.
    cart_token: Option<String>,
}

/// The lines of a merge: at most a cart's worth, each valid, none added in the future.
fn parse_merge_lines(raw: &[MergeLine]) -> Result<Vec<CartLine>, shop::domain::FieldError> {
    if raw.len() > shop::cart::MAX_LINES {
        return Err(shop::domain::FieldError::new("lines", format!("at most {} lines", shop::cart::MAX_LINES)));
    }
    let now = shop::clock::now_ms();
    let mut lines = Vec::with_capacity(raw.len());
    for (i, line) in raw.iter().enumerate() {
        let added_at_ms = match line.added_at.as_deref().filter(|text| !text.is_empty()) {
            Some(text) => time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| shop::domain::FieldError::new(&format!("lines[{i}].added_at"), "must be an RFC 3339 time"))?
                .min(now),
            None => now,
        };
        let quantity = parse_line_quantity(&format!("lines[{i}].quantity"), line.quantity)?;
        lines.push(CartLine::new(ProductId::parse(&format!("lines[{i}].product_id"), line.product_id)?, quantity, added_at_ms));
    }
    Ok(lines)
}

/// Signed in: merge the guest's browser lines and server-side guest cart into the
/// account's cart, once per `merge_id`.
#[utoipa::path(post, path = "/cart/merge", tag = "cart", security(("bearer" = [])), request_body = MergeRequest,
    responses((status = 200, body = CartBody), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn merge_cart(State(state): State<AppState>, caller: AuthUser, ApiJson(request): ApiJson<MergeRequest>) -> Result<Json<CartBody>, Problem> {
    let merge_id = parse_merge_id("merge_id", &request.merge_id)?;
    let lines = parse_merge_lines(&request.lines)?;
    let guest = request.cart_token.as_deref().map(|raw| CartToken::parse(raw).ok_or_else(|| malformed_cart_token("cart_token"))).transpose()?;
    let (lines, report) = state.shop.carts.merge(&caller.user, &merge_id, &lines, guest.as_ref()).await?;
    Ok(Json(body(lines, None, Some(report))))
}
