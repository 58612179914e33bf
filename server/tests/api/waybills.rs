//! Waybills with versions (DESIGN.md, failure mode 5): a stale or retried update
//! never puts back an older waybill.

use crate::helpers::TestApp;
use futures::future::join_all;
use serde_json::{Value, json};

crate::on_both_backends!(
    the_seed_articles_delayed_retry_is_refused,
    fifty_concurrent_updates_with_one_version_let_exactly_one_through,
    other_sellers_and_buyers_cannot_reach_a_sellers_waybill,
);

/// A paid order of one of `seller`'s products: (seller token, buyer token, order id).
async fn paid_order(app: &TestApp, name: &str) -> (String, String, String) {
    let (seller, _) = app.signed_in(&format!("{name}-seller@example.com"), "seller").await;
    let product = app.create_product(&seller, "Lamp", 900, 10).await["id"].clone();
    let (buyer, _) = app.signed_in(&format!("{name}-buyer@example.com"), "buyer").await;
    let request = app.client.post(app.url("/api/v1/wallet/top-up")).bearer_auth(&buyer).header("idempotency-key", "t").json(&json!({"amount_cents": 5000}));
    assert!(request.send().await.unwrap().status().is_success());
    let opened = app.post("/api/v1/checkout", Some(&buyer), &json!({"lines": [{"product_id": product, "quantity": 1}]})).await;
    let address = json!({"name": "Ann", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"});
    let body = json!({"order_id": opened.body["order_id"], "checkout_token": opened.body["checkout_token"], "lines": opened.body["lines"], "shipping_address": address});
    let id = app.post("/api/v1/orders", Some(&buyer), &body).await.body["id"].as_str().unwrap().to_owned();
    assert_eq!(app.post(&format!("/api/v1/orders/{id}/pay"), Some(&buyer), &json!({})).await.status, 200);
    (seller, buyer, id)
}

async fn put_waybill(app: &TestApp, token: &str, id: &str, tracking: &str, expected_version: i64) -> crate::helpers::Reply {
    let body = json!({"carrier": "DHL", "tracking_number": tracking, "expected_version": expected_version});
    app.send_json(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{id}/shipping"), Some(token), &body).await
}

async fn history(app: &TestApp, token: &str, id: &str) -> Vec<(i64, String)> {
    let reply = app.get(&format!("/api/v1/seller/orders/{id}/shipping/history"), Some(token)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["items"].as_array().unwrap().iter().map(|c| (c["version"].as_i64().unwrap(), c["tracking_number"].as_str().unwrap().to_owned())).collect()
}

async fn the_seed_articles_delayed_retry_is_refused(app: TestApp) {
    let (seller, buyer, id) = paid_order(&app, "aba").await;
    let first = put_waybill(&app, &seller, &id, "100", 0).await;
    assert_eq!((first.status.as_u16(), first.body["version"].clone()), (200, json!(1)), "{}", first.text);
    assert_eq!(app.get(&format!("/api/v1/orders/{id}"), Some(&buyer)).await.body["status"], "shipped");
    // A reads version 1 and sets 123, but is delayed. B, also from version 1, sets 456.
    let b = put_waybill(&app, &seller, &id, "456", 1).await;
    assert_eq!(b.status, 200, "{}", b.text);
    // A's retry, with its original expected version, is refused with the current record.
    let a = put_waybill(&app, &seller, &id, "123", 1).await;
    let problem = a.assert_problem(409, "stale_version");
    assert_eq!((problem["current"]["tracking_number"].clone(), problem["current"]["version"].clone()), (json!("456"), json!(2)));
    let order = app.get(&format!("/api/v1/orders/{id}"), Some(&buyer)).await.body;
    assert_eq!(order["shipping"]["tracking_number"], "456");
    assert_eq!(history(&app, &seller, &id).await, vec![(1, "100".to_owned()), (2, "456".to_owned())], "exactly B's change on top of the earlier state");
}

async fn fifty_concurrent_updates_with_one_version_let_exactly_one_through(app: TestApp) {
    let (seller, _, id) = paid_order(&app, "race").await;
    put_waybill(&app, &seller, &id, "start", 0).await;
    let (app_ref, seller_ref, id_ref) = (&app, &seller, &id);
    let replies = join_all((0..50).map(|i| async move { put_waybill(app_ref, seller_ref, id_ref, &format!("T{i}"), 1).await })).await;
    let winners: Vec<&Value> = replies.iter().filter(|r| r.status == 200).map(|r| &r.body).collect();
    assert_eq!(winners.len(), 1, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(replies.iter().filter(|r| r.status != 200).all(|r| r.status == 409 && r.body["code"] == "stale_version"));
    let changes = history(&app, &seller, &id).await;
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[1].1, winners[0]["tracking_number"].as_str().unwrap());
    // Bad input changes nothing.
    for body in [json!({"carrier": "", "tracking_number": "x", "expected_version": 2}), json!({"carrier": "DHL", "tracking_number": "x".repeat(61), "expected_version": 2}), json!({"carrier": "DHL", "tracking_number": "x", "expected_version": "two"})] {
        let reply = app.send_json(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{id}/shipping"), Some(&seller), &body).await;
        assert_eq!(reply.status, 422, "{body} → {}", reply.text);
    }
    assert_eq!(history(&app, &seller, &id).await.len(), 2);
}

async fn other_sellers_and_buyers_cannot_reach_a_sellers_waybill(app: TestApp) {
    let (seller, buyer, id) = paid_order(&app, "owner").await;
    let (other, _) = app.signed_in("other-seller@example.com", "seller").await;
    put_waybill(&app, &other, &id, "evil", 0).await.assert_problem(404, "not_found");
    app.get(&format!("/api/v1/seller/orders/{id}/shipping/history"), Some(&other)).await.assert_problem(404, "not_found");
    put_waybill(&app, &buyer, &id, "evil", 0).await.assert_problem(403, "forbidden");
    put_waybill(&app, &seller, "1234", "x", 0).await.assert_problem(404, "not_found");
    put_waybill(&app, &seller, "9999999999999999999", "x", 0).await.assert_problem(404, "not_found");
    app.send_json(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{id}/shipping"), None, &json!({"carrier": "x", "tracking_number": "y", "expected_version": 0})).await.assert_problem(401, "unauthenticated");
    assert!(app.get(&format!("/api/v1/orders/{id}"), Some(&buyer)).await.body.get("shipping").is_none(), "nothing was written");
    assert_eq!(put_waybill(&app, &seller, &id, "ok", 0).await.status, 200);
}
