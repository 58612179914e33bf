//! Web hardening: spoofable text, the target after sign-in, Idempotency-Key edges,
//! the metrics token, and the accounts controls a user expects (change password,
//! sign out everywhere, an idle timeout).

use crate::helpers::{Reply, TestApp};
use serde_json::json;

crate::on_both_backends!(
    names_and_titles_that_read_other_than_they_show_are_refused,
    the_target_after_sign_in_never_leaves_the_site,
    idempotency_keys_have_one_limit_and_sign_in_is_never_stored,
    changing_the_password_ends_every_other_session,
    signing_out_everywhere_ends_every_session,
    pages_carry_a_nonce_policy_and_the_security_headers,
);


crate::with_settings_on_both_backends!(metrics_need_the_configured_token, |s| s.metrics_token = Some("s3cret-metrics".to_owned()), false);
crate::with_settings_on_both_backends!(an_unused_session_ends_after_the_idle_timeout, |s| s.session_idle_secs = 1, false);
crate::with_settings_on_both_backends!(behind_https_browsers_are_told_to_keep_to_it, |s| s.secure_cookies = true, false);

async fn names_and_titles_that_read_other_than_they_show_are_refused(app: TestApp) {
    let (seller, _) = app.signed_in("spoof-seller@example.com", "seller").await;
    let reply = app.post("/api/v1/seller/products", Some(&seller), &json!({"title": "Photo\u{202E}gpj.exe", "description": "x", "price_cents": 100, "stock": 1})).await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.body["field"], "title");
    let reply = app.post("/api/v1/auth/register", None, &json!({"email": "spoof@example.com", "password": "correct horse", "name": "Ad\u{200B}min", "role": "buyer"})).await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.body["field"], "name");
    assert_eq!(app.count("products").await, 0);
    assert_eq!(app.count("users").await, 1);
}

async fn the_target_after_sign_in_never_leaves_the_site(app: TestApp) {
    app.register("next@example.com", "buyer").await;
    for (next, expected) in [("/orders", "/orders"), ("/\t/evil.example", "/"), ("//evil.example", "/"), ("/\\evil.example", "/"), ("/orders\r\nSet-Cookie: x=1", "/"), ("https://evil.example", "/")] {
        let form: String = form_urlencoded_pairs(&[("email", "next@example.com"), ("password", "correct horse"), ("next", next)]);
        let reply = app
            .client
            .post(app.url("/fn/sign_in"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html")
            .header("origin", app.base.clone())
            .body(form)
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_redirection(), "{next:?}: {}", reply.status());
        assert_eq!(reply.headers()["location"].to_str().unwrap(), expected, "{next:?}");
    }
}

fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let encode = |s: &str| s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect::<String>();
            format!("{}={}", encode(k), encode(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn top_up(app: &TestApp, token: &str, key: &str) -> Reply {
    let request = app.client.post(app.url("/api/v1/wallet/top-up")).bearer_auth(token).header("idempotency-key", key).json(&json!({"amount_cents": 500}));
    Reply::read(request.send().await.unwrap()).await
}

async fn idempotency_keys_have_one_limit_and_sign_in_is_never_stored(app: TestApp) {
    let (buyer, _) = app.signed_in("keys@example.com", "buyer").await;
    let longest = "k".repeat(128);
    assert_eq!(top_up(&app, &buyer, &longest).await.status, 200);
    let replay = top_up(&app, &buyer, &longest).await;
    assert_eq!(replay.status, 200, "a key the middleware takes is one the deposit takes: {}", replay.text);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    top_up(&app, &buyer, &"k".repeat(129)).await.assert_problem(400, "invalid_idempotency_key");
    assert_eq!(app.get("/api/v1/wallet", Some(&buyer)).await.body["balance_cents"], 500);

    let stored = app.count("idempotency_keys").await;
    let login = || {
        app.client.post(app.url("/api/v1/auth/login")).bearer_auth(&buyer).header("idempotency-key", "sign-in").json(&json!({"email": "keys@example.com", "password": "correct horse"})).send()
    };
    let first = Reply::read(login().await.unwrap()).await;
    let second = Reply::read(login().await.unwrap()).await;
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (200, 200));
    assert_ne!(first.body["token"], second.body["token"], "not replayed: each sign-in opens its own session");
    assert_eq!(app.count("idempotency_keys").await, stored, "no session token kept in a stored response");
}

async fn changing_the_password_ends_every_other_session(app: TestApp) {
    app.register("change@example.com", "buyer").await;
    let here = app.login("change@example.com").await;
    let elsewhere = app.login("change@example.com").await;
    let change = |current: &'static str, new: &'static str| {
        let (app, here) = (&app, here.clone());
        async move { app.post("/api/v1/auth/password", Some(&here), &json!({"current_password": current, "new_password": new})).await }
    };
    change("not my password", "a brand new password").await.assert_problem(401, "invalid_credentials");
    change("correct horse", "short").await.assert_problem(422, "validation_failed");
    assert_eq!(app.get("/api/v1/me", Some(&elsewhere)).await.status, 200, "a refused change ends nothing");
    assert_eq!(change("correct horse", "a brand new password").await.status, 204);
    assert_eq!(app.get("/api/v1/me", Some(&here)).await.status, 200, "this session stays");
    app.get("/api/v1/me", Some(&elsewhere)).await.assert_problem(401, "invalid_token");
    let old = app.post("/api/v1/auth/login", None, &json!({"email": "change@example.com", "password": "correct horse"})).await;
    old.assert_problem(401, "invalid_credentials");
    assert_eq!(app.post("/api/v1/auth/login", None, &json!({"email": "change@example.com", "password": "a brand new password"})).await.status, 200);
    // Wrong current passwords are failed sign-ins: the throttle applies.
    let mut last = None;
    for _ in 0..shop::services::sign_in_throttle::FREE_FAILURES + 2 {
        last = Some(change("guess guess", "another new password").await);
    }
    last.unwrap().assert_problem(429, "too_many_attempts");
}

async fn signing_out_everywhere_ends_every_session(app: TestApp) {
    app.register("everywhere@example.com", "buyer").await;
    let one = app.login("everywhere@example.com").await;
    let two = app.login("everywhere@example.com").await;
    let reply = app.post("/api/v1/auth/logout-all", Some(&one), &json!({})).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert!(reply.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    app.get("/api/v1/me", Some(&one)).await.assert_problem(401, "invalid_token");
    app.get("/api/v1/me", Some(&two)).await.assert_problem(401, "invalid_token");
}

async fn metrics_need_the_configured_token(app: TestApp) {
    app.get("/metrics", None).await.assert_problem(401, "unauthenticated");
    app.get("/metrics", Some("wrong-token")).await.assert_problem(401, "unauthenticated");
    let reply = app.get("/metrics", Some("s3cret-metrics")).await;
    assert_eq!(reply.status, 200);
    assert!(reply.text.contains("ninefold_http_requests_total"));
}

async fn an_unused_session_ends_after_the_idle_timeout(app: TestApp) {
    app.register("idle@example.com", "buyer").await;
    let token = app.login("idle@example.com").await;
    // In use, it lives on past the timeout.
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, 200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    app.get("/api/v1/me", Some(&token)).await.assert_problem(401, "invalid_token");
}

/// Every page: a Content-Security-Policy whose nonce is the one on the page's own
/// scripts (and a new one each response), no framing, no sniffing, a referrer policy.
async fn pages_carry_a_nonce_policy_and_the_security_headers(app: TestApp) {
    let mut nonces = Vec::new();
    for path in ["/", "/login", "/no-such-page"] {
        let response = app.client.get(app.url(path)).header("cookie", "nf_session=garbage").send().await.unwrap();
        let headers = response.headers().clone();
        let html = response.text().await.unwrap();
        let policy = headers["content-security-policy"].to_str().unwrap().to_owned();
        assert!(policy.contains("frame-ancestors 'none'") && policy.contains("object-src 'none'") && policy.contains("'strict-dynamic'"), "{policy}");
        let nonce = policy.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap().to_owned();
        assert!(html.contains(&format!("nonce=\"{nonce}\"")), "{path}: the page's scripts carry the policy's nonce");
        assert!(!html.contains("<script>"), "{path}: no script without a nonce");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(headers.contains_key("referrer-policy"));
        assert!(!headers.contains_key("strict-transport-security"), "not over plain HTTP");
        nonces.push(nonce);
    }
    nonces.dedup();
    assert_eq!(nonces.len(), 3, "a fresh nonce for every response");
    let api = app.client.get(app.url("/api/v1/products")).send().await.unwrap();
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
}

async fn behind_https_browsers_are_told_to_keep_to_it(app: TestApp) {
    let response = app.client.get(app.url("/")).send().await.unwrap();
    assert!(response.headers()["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
}
