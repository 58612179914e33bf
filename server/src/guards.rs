//! What every request passes first: a state-changing request from another site
//! is refused (CSRF), its client address is settled once (the TCP peer, or a
//! trusted proxy's `X-Forwarded-For`), the actions a script could flood —
//! sign-in, registration, opening a guest cart, checkout — are rate limited per
//! client address, and every request has a deadline.

use crate::api::problem::Problem;
use crate::config::RateLimitSettings;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use web::ClientAddr;

/// An action limited per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    SignIn,
    Registration,
    GuestCart,
    Checkout,
}

impl Limited {
    fn as_str(self) -> &'static str {
        match self {
            Limited::SignIn => "sign_in",
            Limited::Registration => "registration",
            Limited::GuestCart => "guest_cart",
            Limited::Checkout => "checkout",
        }
    }

    /// Which limited action a request is, through either door. Guest-cart writes
    /// count only when they present no session and no cart: those open a new cart.
    pub fn of(method: &Method, path: &str, headers: &axum::http::HeaderMap) -> Option<Self> {
        if method != Method::POST && method != Method::PUT {
            return None;
        }
        match path {
            "/api/v1/auth/login" | "/fn/sign_in" => Some(Limited::SignIn),
            "/api/v1/auth/register" | "/fn/register" => Some(Limited::Registration),
            "/api/v1/checkout" | "/fn/start_checkout" | "/fn/checkout_seller" => Some(Limited::Checkout),
            _ if path.starts_with("/api/v1/cart/lines/") || path == "/fn/add_to_cart" || path == "/fn/set_cart_line" => {
                let anonymous = matches!(web::presented_session(headers), web::Presented::Nothing);
                let no_cart = matches!(web::presented_cart_token(headers), Ok(None));
                (anonymous && no_cart).then_some(Limited::GuestCart)
            }
            _ => None,
        }
    }
}

struct Limiters {
    sign_in: DefaultKeyedRateLimiter<IpAddr>,
    registration: DefaultKeyedRateLimiter<IpAddr>,
    guest_cart: DefaultKeyedRateLimiter<IpAddr>,
    checkout: DefaultKeyedRateLimiter<IpAddr>,
}

impl Limiters {
    fn new(settings: &RateLimitSettings) -> Self {
        let quota = |per_minute: u32, burst: u32| {
            Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("at least 1")).allow_burst(NonZeroU32::new(burst.max(1)).expect("at least 1"))
        };
        Self {
            sign_in: RateLimiter::keyed(quota(settings.sign_in_per_minute, settings.sign_in_burst)),
            registration: RateLimiter::keyed(quota(settings.registration_per_minute, settings.registration_burst)),
            guest_cart: RateLimiter::keyed(quota(settings.guest_cart_per_minute, settings.guest_cart_burst)),
            checkout: RateLimiter::keyed(quota(settings.checkout_per_minute, settings.checkout_burst)),
        }
    }

    fn of(&self, action: Limited) -> &DefaultKeyedRateLimiter<IpAddr> {
        match action {
            Limited::SignIn => &self.sign_in,
            Limited::Registration => &self.registration,
            Limited::GuestCart => &self.guest_cart,
            Limited::Checkout => &self.checkout,
        }
    }

    /// Forgets addresses whose buckets are full again, so a flood from many
    /// addresses cannot grow the limiters' memory without bound.
    fn forget_idle(&self) {
        for limiter in [&self.sign_in, &self.registration, &self.guest_cart, &self.checkout] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The guards' settings and state, shared by every request.
pub struct Guards {
    limiters: Option<Limiters>,
    trust_forwarded_for: bool,
    request_timeout: Duration,
    /// Served over HTTPS (secure cookies on): browsers are told to keep to it.
    strict_transport_security: bool,
}

impl Guards {
    /// Past this many tracked addresses the idle ones are forgotten.
    const TRACKED_ADDRESSES: usize = 50_000;

    pub fn new(settings: &RateLimitSettings, trust_forwarded_for: bool, request_timeout: Duration, strict_transport_security: bool) -> Arc<Self> {
        let limiters = settings.enabled.then(|| Limiters::new(settings));
        Arc::new(Self { limiters, trust_forwarded_for, request_timeout, strict_transport_security })
    }

    /// `Some(wait)` when `client` must wait before doing `action` again.
    fn refusal(&self, action: Limited, client: IpAddr) -> Option<Duration> {
        let limiters = self.limiters.as_ref()?;
        let limiter = limiters.of(action);
        if limiter.len() > Self::TRACKED_ADDRESSES {
            limiters.forget_idle();
        }
        limiter.check_key(&client).err().map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Headers every response carries (the pages' Content-Security-Policy, with its
/// per-response nonce, is set where the page is rendered).
fn add_security_headers(response: &mut Response, strict_transport_security: bool) {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if strict_transport_security {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
}

/// The middleware: cross-site check, client address, rate limit, deadline.
pub async fn guard(State(guards): State<Arc<Guards>>, mut request: Request, next: Next) -> Response {
    if web::is_cross_site_write(request.method(), request.headers()) {
        metrics::counter!("ninefold_cross_site_requests_refused_total").increment(1);
        return Problem::new(StatusCode::FORBIDDEN, "cross_site_request", "this request came from another site; make it from the shop's own pages").into_response();
    }
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
    let client = ClientAddr::of(request.headers(), peer, guards.trust_forwarded_for);
    request.extensions_mut().insert(client);
    if let Some(action) = Limited::of(request.method(), request.uri().path(), request.headers())
        && let Some(wait) = guards.refusal(action, client.0)
    {
        metrics::counter!("ninefold_rate_limited_total", "action" => action.as_str()).increment(1);
        let retry_after_secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        return Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", format!("too many {} requests from your address; try again in {retry_after_secs} s", action.as_str().replace('_', " ")))
            .with_retry_after(retry_after_secs)
            .into_response();
    }
    match tokio::time::timeout(guards.request_timeout, next.run(request)).await {
        Ok(mut response) => {
            add_security_headers(&mut response, guards.strict_transport_security);
            response
        }
        Err(_) => {
            metrics::counter!("ninefold_request_timeouts_total").increment(1);
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "request_timeout", "the request took too long; try again in a moment").with_retry_after(1).into_response()
        }
    }
}
