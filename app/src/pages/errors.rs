use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;

/// The page for a path that leads nowhere. It answers 404, not 200, so crawlers
/// and monitors see the truth.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <section class="notice" data-testid="not-found">
            <h1>"We couldn't find that page"</h1>
            <p>"The link may be mistyped, or the item may have been removed."</p>
            <p><a class="button" href="/">"Back to the shop"</a></p>
        </section>
    }
}

/// A failed request explained to a person, with a way forward. Rendered on the
/// server for a page that could not load, it answers with the failure's status
/// (a database outage is a 503 with `Retry-After`, never a 200).
#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if error.status >= 500
        && let Some(response) = use_context::<leptos_axum::ResponseOptions>()
    {
        response.set_status(http::StatusCode::from_u16(error.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR));
        if error.status == 503 {
            response.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from_static("5"));
        }
    }
    view! {
        <section class="notice error" role="alert">
            <h2>"Something went wrong"</h2>
            <p>{error.message}</p>
            <p><a href="/">"Back to the shop"</a></p>
        </section>
    }
}

/// The message of a form's last failed submit, if any, where screen readers announce it.
pub fn form_failure(last: impl Fn() -> Option<Result<(), AppError>> + Send + Sync + 'static) -> impl IntoView {
    move || last().and_then(Result::err).map(|error| view! { <p class="form-error" role="alert" data-testid="form-error">{error.message}</p> })
}
