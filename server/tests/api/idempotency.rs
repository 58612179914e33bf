use crate::helpers::{Reply, TestApp};
use futures::future::join_all;
use serde_json::{Value, json};

crate::on_both_backends!(
    an_idempotency_key_replays_the_first_response_and_refuses_another_body,
    concurrent_requests_with_one_key_make_one_order,
);

async fn post_with_key(app: &TestApp, path: &str, token: &str, key: &str, body: &Value) -> Reply {
    let response = app.client.post(app.url(path)).bearer_auth(token).header("idempotency-key", key).json(body).send().await.unwrap();
    Reply::read(response).await
}

async fn setup(app: &TestApp) -> (String, String, i64) {
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    let id = app.create_product(&seller, "Bowl", 900, 30).await["id"].as_i64().unwrap();
    let (buyer, _) = app.signed_in("b@example.com", "buyer").await;
    let (other, _) = app.signed_in("o@example.com", "buyer").await;
    (buyer, other, id)
}

fn order_body(checkout: &Value) -> Value {
    json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"],
           "shipping_address": {"name": "B", "line1": "2 Side St", "city": "Town", "postal_code": "999", "country": "NL"}})
}

async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body(app: TestApp) {
    let (buyer, other, id) = setup(&app).await;
    let lines = json!({"lines": [{"product_id": id, "quantity": 2}]});
    let first = post_with_key(&app, "/api/v1/checkout", &buyer, "checkout-1", &lines).await;
    assert_eq!(first.status, 201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = post_with_key(&app, "/api/v1/checkout", &buyer, "checkout-1", &lines).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, first.body, "the same checkout, not a second one");
    assert_eq!(again.content_type(), "application/json");

    let placed = post_with_key(&app, "/api/v1/orders", &buyer, "order-1", &order_body(&first.body)).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    let replayed = post_with_key(&app, "/api/v1/orders", &buyer, "order-1", &order_body(&first.body)).await;
    assert_eq!((replayed.status.as_u16(), replayed.headers["idempotent-replayed"].to_str().unwrap()), (201, "true"));
    assert_eq!(replayed.body, placed.body);

    let mut different = order_body(&first.body);
    different["shipping_address"]["city"] = json!("Elsewhere");
    post_with_key(&app, "/api/v1/orders", &buyer, "order-1", &different).await.assert_problem(422, "idempotency_key_reused");

    // Keys are the caller's own: another buyer's "checkout-1" is a new request.
    let theirs = post_with_key(&app, "/api/v1/checkout", &other, "checkout-1", &lines).await;
    assert_eq!(theirs.status, 201);
    assert!(theirs.headers.get("idempotent-replayed").is_none());
    assert_ne!(theirs.body["order_id"], first.body["order_id"]);

    for bad in ["", &"k".repeat(256), "spaces are not allowed"] {
        let reply = post_with_key(&app, "/api/v1/checkout", &buyer, bad, &lines).await;
        reply.assert_problem(400, "invalid_idempotency_key");
    }

    // Kept a day, then cleaned up.
    let day_later = shop::clock::now_ms() + shop::services::idempotency::KEY_TTL_MS + 1;
    assert_eq!(app.shop.idempotency.delete_expired(day_later).await.unwrap(), 3);
    assert_eq!(app.count("idempotency_keys").await, 0);
}

async fn concurrent_requests_with_one_key_make_one_order(app: TestApp) {
    let (buyer, _, id) = setup(&app).await;
    let checkout = app.post("/api/v1/checkout", Some(&buyer), &json!({"lines": [{"product_id": id, "quantity": 1}]})).await.body;
    let body = order_body(&checkout);
    let replies = join_all((0..20).map(|_| post_with_key(&app, "/api/v1/orders", &buyer, "same-key", &body))).await;
    let created = replies.iter().filter(|r| r.status == 201 && r.headers.get("idempotent-replayed").is_none()).count();
    let replayed = replies.iter().filter(|r| r.status == 201 && r.headers.get("idempotent-replayed").is_some()).count();
    let in_use = replies.iter().filter(|r| r.status == 409 && r.body["code"] == "idempotency_key_in_use").count();
    assert_eq!(created, 1, "{:?}", replies.iter().map(|r| (r.status, &r.text)).collect::<Vec<_>>());
    assert_eq!(created + replayed + in_use, 20);
    assert_eq!(app.get("/api/v1/orders", Some(&buyer)).await.body["items"].as_array().unwrap().len(), 1);
}
