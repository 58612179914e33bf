//! Product images outside the JSON API: serving them, and the dashboard's upload
//! form (a plain multipart form, with or without script).

use crate::api::extract::AuthUser;
use crate::api::problem::Problem;
use crate::state::AppState;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// An image by its key. Keys are content hashes, so a response never changes:
/// browsers and CDNs may keep it for a year without asking again.
pub async fn serve(State(state): State<AppState>, Path(key): Path<String>) -> Result<Response, Problem> {
    let Some((bytes, content_type)) = state.shop.images.object(&key).await? else {
        return Err(shop::ShopError::NotFound("image").into());
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    Ok(response)
}

/// The dashboard's "Add an image" form: back to the product's page, saying what happened.
pub async fn dashboard_upload(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let multipart = match multipart {
        Ok(multipart) => multipart,
        Err(rejection) => return crate::api::catalog::not_multipart(rejection).into_response(),
    };
    let Ok(product) = shop::error::id_or_not_found::<shop::domain::ProductId>(&id, "product") else {
        return Problem::from(shop::ShopError::NotFound("product")).into_response();
    };
    let outcome = match crate::api::catalog::read_upload(multipart).await {
        Ok((bytes, declared, alt)) => state.shop.images.add(&caller.user, product, bytes, declared.as_deref(), alt).await.map_err(Problem::from),
        Err(problem) => Err(problem),
    };
    match outcome {
        Ok(_) => Redirect::to(&format!("/seller/products/{product}?image=added")).into_response(),
        Err(problem) if problem.status == StatusCode::NOT_FOUND.as_u16() || problem.status == StatusCode::FORBIDDEN.as_u16() => problem.into_response(),
        Err(problem) => {
            let reason: String = problem.detail.chars().filter(|c| c.is_alphanumeric() || " .,:;×-()".contains(*c)).take(200).collect();
            Redirect::to(&format!("/seller/products/{product}?image_error={}", urlencoding(&reason))).into_response()
        }
    }
}

fn urlencoding(text: &str) -> String {
    text.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
