//! What both doors — the pages' server functions and the JSON API — read from and
//! write to HTTP: the session cookie (holding the same token an API client gets as
//! a bearer token), the guest cart's cookie and header, and the bearer header.
//! Below both doors, so neither depends on the other.

use cookie::{Cookie, SameSite};
use http::HeaderMap;
use shop::secrets::{CartToken, SessionToken};

pub const SESSION_COOKIE: &str = "nf_session";
/// A guest's server-side cart (clients without script; API clients may use the
/// `X-Cart-Token` header instead).
pub const CART_COOKIE: &str = "nf_cart";
/// API clients' guest cart token.
pub const CART_TOKEN_HEADER: &str = "x-cart-token";
/// Guest carts are kept 30 days unused; the cookie lives as long.
const CART_COOKIE_MAX_AGE_SECS: i64 = 30 * 24 * 60 * 60;

/// How session cookies are issued. `secure` should be on whenever the site is
/// served over HTTPS (NINEFOLD_SECURE_COOKIES=1); it is off by default so the
/// embedded demo works on plain http://127.0.0.1.
#[derive(Debug, Clone, Copy, Default)]
pub struct CookiePolicy {
    pub secure: bool,
    pub max_age_secs: i64,
}

impl CookiePolicy {
    pub fn new(secure: bool) -> Self {
        Self { secure, max_age_secs: shop::services::Accounts::DEFAULT_SESSION_TTL_MS / 1000 }
    }

    /// HttpOnly so scripts cannot read it; SameSite=Lax so other sites cannot make
    /// a shopper's browser post forms with it.
    pub fn issue(&self, token: &SessionToken) -> String {
        self.build(token.expose().to_owned(), self.max_age_secs)
    }

    pub fn clear(&self) -> String {
        self.build(String::new(), 0)
    }

    /// The guest cart cookie: HttpOnly and SameSite=Lax like the session's.
    pub fn issue_cart(&self, token: &CartToken) -> String {
        self.build_named(CART_COOKIE, token.expose().to_owned(), CART_COOKIE_MAX_AGE_SECS)
    }

    pub fn clear_cart(&self) -> String {
        self.build_named(CART_COOKIE, String::new(), 0)
    }

    fn build(&self, value: String, max_age_secs: i64) -> String {
        self.build_named(SESSION_COOKIE, value, max_age_secs)
    }

    fn build_named(&self, name: &'static str, value: String, max_age_secs: i64) -> String {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(cookie::time::Duration::seconds(max_age_secs))
            .build()
            .to_string()
    }
}

/// What a request says about its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Nothing,
    /// A value we could have issued (right shape); still to be looked up.
    Token(SessionToken),
    /// Something that can never be a session of ours.
    Garbage,
}

/// Reads the session cookie. Several `nf_session` cookies (a stale one under
/// another path) resolve to the first well-formed one.
pub fn presented_cookie(headers: &HeaderMap) -> Presented {
    let mut saw_any = false;
    for header in headers.get_all(http::header::COOKIE) {
        let Ok(text) = header.to_str() else {
            saw_any = true;
            continue;
        };
        for cookie in Cookie::split_parse(text).flatten() {
            if cookie.name() == SESSION_COOKIE && !cookie.value().is_empty() {
                saw_any = true;
                if let Some(token) = SessionToken::parse(cookie.value()) {
                    return Presented::Token(token);
                }
            }
        }
    }
    if saw_any { Presented::Garbage } else { Presented::Nothing }
}

/// A cart cookie or header that is not a token we could have issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarbageCartToken;

/// Reads the guest cart cookie: `Ok(None)` when there is none.
pub fn presented_cart_cookie(headers: &HeaderMap) -> Result<Option<CartToken>, GarbageCartToken> {
    for header in headers.get_all(http::header::COOKIE) {
        for cookie in Cookie::split_parse(header.to_str().unwrap_or_default()).flatten() {
            if cookie.name() == CART_COOKIE && !cookie.value().is_empty() {
                return CartToken::parse(cookie.value()).map(Some).ok_or(GarbageCartToken);
            }
        }
    }
    Ok(None)
}

/// The guest cart token a request presents, if any: the `X-Cart-Token` header
/// first, then the cookie.
pub fn presented_cart_token(headers: &HeaderMap) -> Result<Option<CartToken>, GarbageCartToken> {
    match headers.get(CART_TOKEN_HEADER).filter(|value| !value.is_empty()) {
        Some(value) => value.to_str().ok().and_then(|v| CartToken::parse(v.trim())).map(Some).ok_or(GarbageCartToken),
        None => presented_cart_cookie(headers),
    }
}

/// The session a request presents, if any: the bearer header first, then the cookie.
pub fn presented_session(headers: &HeaderMap) -> Presented {
    match presented_bearer(headers) {
        Presented::Nothing => presented_cookie(headers),
        presented => presented,
    }
}

/// Reads `Authorization: Bearer <token>`.
pub fn presented_bearer(headers: &HeaderMap) -> Presented {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Presented::Nothing;
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .and_then(|t| SessionToken::parse(t.trim()));
    token.map_or(Presented::Garbage, Presented::Token)
}

/// The address a request came from, as the server determined it once per request
/// (the TCP peer, or a trusted proxy's `X-Forwarded-For`), kept in the request's
/// extensions for both doors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub std::net::IpAddr);

impl ClientAddr {
    /// The client of a request from `peer`: behind a proxy that is trusted to
    /// append it, the last address in `X-Forwarded-For` (the one that proxy saw);
    /// otherwise the peer itself, whatever the headers claim.
    pub fn of(headers: &HeaderMap, peer: std::net::IpAddr, trust_forwarded_for: bool) -> Self {
        if trust_forwarded_for {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .filter_map(|part| part.trim().parse::<std::net::IpAddr>().ok())
                .next_back();
            if let Some(client) = forwarded {
                return Self(client);
            }
        }
        Self(peer)
    }

    /// The client address a request's extensions hold; "unspecified" if none was
    /// recorded (a request that did not come through the server's middleware).
    pub fn from_extensions(extensions: &http::Extensions) -> std::net::IpAddr {
        extensions.get::<ClientAddr>().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |client| client.0)
    }
}

/// Where a request says it was made, by the first of `Origin`, `Sec-Fetch-Site`
/// and `Referer` it carries: `Some(true)` from this site's own origin (the one in
/// `Host`), `Some(false)` from another, `None` when it carries none of them (not a
/// browser, or a very old one).
pub fn made_on_this_site(headers: &HeaderMap) -> Option<bool> {
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_ascii_lowercase);
    let same_authority = |url: &str| {
        let authority = url.split_once("://").map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or("")).unwrap_or("");
        host.as_deref().is_some_and(|host| !authority.is_empty() && authority.eq_ignore_ascii_case(host))
    };
    if let Some(origin) = headers.get(http::header::ORIGIN) {
        // "null" (a sandboxed frame, a file, some redirects) is no origin of ours.
        return Some(origin.to_str().is_ok_and(same_authority));
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return Some(matches!(site.to_str(), Ok("same-origin") | Ok("none")));
    }
    headers.get(http::header::REFERER).map(|referer| referer.to_str().is_ok_and(same_authority))
}

/// Whether the request carries a cookie that authenticates it (a session, or a
/// guest cart): what a forged cross-site request would ride on.
pub fn carries_credentials_cookie(headers: &HeaderMap) -> bool {
    !matches!(presented_cookie(headers), Presented::Nothing) || !matches!(presented_cart_cookie(headers), Ok(None))
}

/// Whether a state-changing request must be refused as cross-site request
/// forgery: it is authenticated by a bearer token (exempt: no browser sends one by
/// itself) or made on this site, or it says nothing of where it was made and rides
/// on no cookie (a script, not a browser). Anything else is refused, sign-in and
/// registration included (a forged sign-in would put the victim in the attacker's account).
pub fn is_cross_site_write(method: &http::Method, headers: &HeaderMap) -> bool {
    let writes = !matches!(*method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
    if !writes || !matches!(presented_bearer(headers), Presented::Nothing) {
        return false;
    }
    match made_on_this_site(headers) {
        Some(same_site) => !same_site,
        None => carries_credentials_cookie(headers),
    }
}

/// Where to send a shopper after signing in: `next` if it is a path on this
/// site, else the home page. Only a path that starts with one `/` and holds
/// nothing but visible ASCII is a path on this site: browsers drop tabs and
/// newlines and read `\` as `/`, so `/\t/evil.example` or `/\evil.example` would
/// take them elsewhere, and a newline could not go in the redirect's header anyway.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') => path.to_owned(),
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Method};
    use proptest::prelude::*;

    proptest! {
        /// Whatever `next` holds, the target stays on this site and fits a header.
        #[test]
        fn the_target_after_sign_in_never_leaves_the_site(raw in "\\PC{0,40}|[/\\\\\t\n\r ]{0,3}[a-z./:@%]{0,20}") {
            let target = safe_next(Some(&raw));
            let base = url::Url::parse("http://shop.invalid/login").unwrap();
            let resolved = base.join(&target).unwrap();
            prop_assert_eq!(resolved.host_str(), Some("shop.invalid"), "{:?} -> {:?}", raw, target);
            prop_assert!(target.starts_with('/') && !target.starts_with("//"));
            prop_assert!(HeaderValue::from_str(&target).is_ok());
        }
    }

    #[test]
    fn known_escapes_go_home_and_local_paths_stay() {
        for evil in ["//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "https://evil.example", " /orders", "/\\/evil.example", "javascript:alert(1)", "/orders\r\nSet-Cookie: x=1"] {
            assert_eq!(safe_next(Some(evil)), "/", "{evil:?}");
        }
        assert_eq!(safe_next(None), "/");
        for local in ["/", "/orders", "/checkout/1000000000001000001?x=1&y=%2F%2Fevil", "/seller/orders#top"] {
            assert_eq!(safe_next(Some(local)), local);
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const SESSION: &str = "nf_session=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn writes_from_another_origin_are_refused_and_this_sites_pass() {
        let post = Method::POST;
        assert!(is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("origin", "https://evil.test"), ("cookie", SESSION)])));
        assert!(is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("origin", "null"), ("cookie", SESSION)])));
        assert!(is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("origin", "https://evil.test")])), "login CSRF: no cookie needed");
        assert!(is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("sec-fetch-site", "cross-site"), ("cookie", SESSION)])));
        assert!(is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("sec-fetch-site", "same-site"), ("cookie", SESSION)])), "a sibling subdomain is another origin");
        assert!(is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("referer", "https://evil.test/page"), ("cookie", SESSION)])));
        assert!(is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("cookie", SESSION)])), "a cookie and no word of where");
        assert!(is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("origin", "https://shop.test.evil.test"), ("cookie", SESSION)])));
        assert!(!is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("origin", "https://shop.test"), ("cookie", SESSION)])));
        assert!(!is_cross_site_write(&post, &headers(&[("host", "127.0.0.1:3000"), ("origin", "http://127.0.0.1:3000"), ("cookie", SESSION)])));
        assert!(!is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("referer", "https://shop.test/checkout/1"), ("cookie", SESSION)])));
        assert!(!is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("sec-fetch-site", "same-origin"), ("cookie", SESSION)])));
        assert!(!is_cross_site_write(&post, &headers(&[("host", "shop.test")])), "a script with no cookie");
        assert!(!is_cross_site_write(&post, &headers(&[("host", "shop.test"), ("origin", "https://evil.test"), ("authorization", "Bearer x")])), "bearer tokens are exempt");
        assert!(!is_cross_site_write(&Method::GET, &headers(&[("host", "shop.test"), ("origin", "https://evil.test"), ("cookie", SESSION)])));
    }
}
