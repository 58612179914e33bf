//! Cross-site request forgery: a state-changing request that rides on the session
//! cookie must come from the site's own pages; a forged sign-in is refused too.

use crate::helpers::{Reply, TestApp};
use serde_json::json;

crate::on_both_backends!(cross_site_writes_are_refused_and_change_nothing, the_sites_own_writes_and_bearer_clients_pass);

async fn post(app: &TestApp, path: &str, headers: &[(&str, String)], form: Option<&str>) -> Reply {
    let mut request = app.client.post(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request = match form {
        Some(form) => request.header("content-type", "application/x-www-form-urlencoded").body(form.to_owned()),
        None => request.header("content-type", "application/json").body("{}"),
    };
    Reply::read(request.send().await.unwrap()).await
}

async fn unpaid_order(app: &TestApp, buyer: &str) -> String {
    let seller_email = format!("csrf-seller-{}@example.com", app.count("users").await);
    let (seller, _) = app.signed_in(&seller_email, "seller").await;
    let product = app.create_product(&seller, "Vase", 1500, 5).await["id"].clone();
    let checkout = app.post("/api/v1/checkout", Some(buyer), &json!({"lines": [{"product_id": product, "quantity": 1}]})).await;
    let address = json!({"name": "V", "line1": "1 Road", "city": "Town", "postal_code": "1000", "country": "NL"});
    let body = json!({"order_id": checkout.body["order_id"], "checkout_token": checkout.body["checkout_token"], "lines": checkout.body["lines"], "shipping_address": address});
    app.post("/api/v1/orders", Some(buyer), &body).await.body["id"].as_str().unwrap().to_owned()
}

async fn cross_site_writes_are_refused_and_change_nothing(app: TestApp) {
    let (buyer, _) = app.signed_in("csrf-victim@example.com", "buyer").await;
    let order = unpaid_order(&app, &buyer).await;
    let cookie = ("cookie", format!("nf_session={buyer}"));
    let forged = [
        vec![cookie.clone(), ("origin", "http://evil.example".to_owned())],
        vec![cookie.clone(), ("origin", "null".to_owned())],
        vec![cookie.clone(), ("sec-fetch-site", "cross-site".to_owned())],
        vec![cookie.clone(), ("referer", "http://evil.example/win-a-prize".to_owned())],
        vec![cookie.clone()],
    ];
    for headers in &forged {
        post(&app, &format!("/api/v1/orders/{order}/cancel"), headers, None).await.assert_problem(403, "cross_site_request");
        post(&app, "/fn/cancel_order", headers, Some(&format!("order_id={order}"))).await.assert_problem(403, "cross_site_request");
        post(&app, "/fn/sign_out", headers, Some("")).await.assert_problem(403, "cross_site_request");
    }
    assert_eq!(app.get(&format!("/api/v1/orders/{order}"), Some(&buyer)).await.body["status"], "pending_payment");
    assert_eq!(app.get("/api/v1/me", Some(&buyer)).await.status, 200, "still signed in");

    // Login CSRF: no cookie needed, the victim would end up in the attacker's account.
    app.register("csrf-attacker@example.com", "buyer").await;
    let sessions = app.count("sessions").await;
    let evil = [("origin", "http://evil.example".to_owned())];
    post(&app, "/fn/sign_in", &evil, Some("email=csrf-attacker%40example.com&password=correct+horse")).await.assert_problem(403, "cross_site_request");
    let json_login = app.client.post(app.url("/api/v1/auth/login")).header("origin", "http://evil.example").json(&json!({"email": "csrf-attacker@example.com", "password": "correct horse"}));
    Reply::read(json_login.send().await.unwrap()).await.assert_problem(403, "cross_site_request");
    post(&app, "/fn/register", &evil, Some("email=csrf-new%40example.com&password=correct+horse&name=N&role=buyer")).await.assert_problem(403, "cross_site_request");
    assert_eq!(app.count("sessions").await, sessions, "no session was opened");
    assert_eq!(app.count("users").await, 3, "victim, seller, attacker: nobody registered");
}

async fn the_sites_own_writes_and_bearer_clients_pass(app: TestApp) {
    let (buyer, _) = app.signed_in("csrf-own@example.com", "buyer").await;
    let order = unpaid_order(&app, &buyer).await;
    let own = [("cookie", format!("nf_session={buyer}")), ("origin", app.base.clone())];
    let cancelled = post(&app, &format!("/api/v1/orders/{order}/cancel"), &own, None).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    let second = unpaid_order(&app, &buyer).await;
    let bearer = [("authorization", format!("Bearer {buyer}")), ("origin", "http://evil.example".to_owned())];
    assert_eq!(post(&app, &format!("/api/v1/orders/{second}/cancel"), &bearer, None).await.status, 200, "a bearer token is never sent by a browser on its own");
    let referer = [("cookie", format!("nf_session={buyer}")), ("referer", format!("{}/wallet", app.base))];
    assert_ne!(post(&app, "/api/v1/wallet/top-up", &referer, None).await.body["code"], "cross_site_request");
}
