//! Read-your-writes for every caller (DESIGN.md, failure mode 7).
//!
//! Each request runs as a [`Caller`] whose fences (per database role, the WAL
//! position a replica must have replayed before it serves this caller's display
//! reads) come from its user's stored fences and from the `Ninefold-Fence`
//! request header. After a write request the primary's position is taken on every
//! role the request used and raised in `read_fences` (in `main`'s primary), so
//! the fence travels with the caller to whichever server instance answers next,
//! and to the user's other devices. The response echoes the fences in
//! `Ninefold-Fence`, for clients without a session.
//!
//! The fences are kept server-side rather than in a cookie because API callers
//! (bearer tokens) do not keep cookies, a row cannot be forged, and one user's
//! phone and laptop share it; the header is only a hint that can send reads to
//! the primary, never delay one.

use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use shop::db::fence::{self, Caller};

pub const FENCE_HEADER: HeaderName = HeaderName::from_static("ninefold-fence");

pub async fn read_your_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let shop = &state.shop;
    if !shop.databases.has_replicas() {
        return next.run(request).await;
    }
    let writes = !request.method().is_safe();
    let session = match web::presented_session(request.headers()) {
        web::Presented::Token(token) => Some(token),
        _ => None,
    };
    let mut fences = request.headers().get(FENCE_HEADER).and_then(|v| v.to_str().ok()).map(fence::parse_header).unwrap_or_default();
    if let Some(token) = &session {
        match shop.accounts.session_fences(token).await {
            Ok(stored) => fences.extend(stored),
            // The primary will answer the reads then: no fence means "maybe stale" only for replicas that qualify.
            Err(error) => tracing::warn!(%error, "could not read the session's read fences"),
        }
    }
    let caller = Caller::new(fences, writes);
    let mut response = caller.clone().scope(next.run(request)).await;
    if writes {
        let positions = shop.databases.wal_positions(&caller.touched()).await;
        caller.raise(positions.iter().cloned());
        if let Some(token) = &session
            && !positions.is_empty()
            && let Err(error) = shop.accounts.raise_session_fences(token, &positions).await
        {
            tracing::warn!(%error, "could not store the session's read fences");
        }
    }
    let fences = caller.fences();
    if !fences.is_empty()
        && let Ok(value) = HeaderValue::from_str(&fence::format_header(&fences))
    {
        response.headers_mut().insert(FENCE_HEADER, value);
    }
    response
}

/// Leptos renders a page's parts in tasks it spawns: this executor carries the
/// request's [`Caller`] into them, so their display reads honour its fences.
pub struct CarryingExecutor;

impl any_spawner::CustomExecutor for CarryingExecutor {
    fn spawn(&self, future: any_spawner::PinnedFuture<()>) {
        tokio::spawn(fence::carry(future));
    }

    fn spawn_local(&self, future: any_spawner::PinnedLocalFuture<()>) {
        tokio::task::spawn_local(fence::carry_local(future));
    }

    fn poll_local(&self) {}
}
