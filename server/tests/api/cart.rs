use crate::helpers::{Reply, TestApp};
use futures::future::join_all;
use serde_json::{Value, json};

crate::on_both_backends!(
    a_guest_cart_lives_under_its_token_and_bad_input_changes_nothing,
    a_signed_in_shopper_merges_browser_and_server_guest_carts_once,
    fifty_concurrent_merges_with_one_merge_id_give_the_same_cart_as_one,
    an_order_placed_through_the_api_takes_its_lines_out_of_the_cart,
);

/// Both doors empty the cart of what was ordered (the page always did; the API
/// now does too, because the rule lives in the order service), and only of that.
async fn an_order_placed_through_the_api_takes_its_lines_out_of_the_cart(app: TestApp) {
    let (seller, _) = app.signed_in("cart-order-seller@example.com", "seller").await;
    let ordered = app.create_product(&seller, "Teapot", 3000, 5).await["id"].as_i64().unwrap();
    let kept = app.create_product(&seller, "Cup", 800, 5).await["id"].as_i64().unwrap();
    let (buyer, _) = app.signed_in("cart-order-buyer@example.com", "buyer").await;
    assert_eq!(put_line(&app, ordered, json!(2), None, Some(&buyer)).await.status, 200);
    assert_eq!(put_line(&app, kept, json!(1), None, Some(&buyer)).await.status, 200);
    let checkout = app.post("/api/v1/checkout", Some(&buyer), &json!({"lines": [{"product_id": ordered, "quantity": 2}]})).await;
    assert_eq!(checkout.status, 201, "{}", checkout.text);
    let address = json!({"name": "B", "line1": "1 Road", "city": "Town", "postal_code": "1000", "country": "NL"});
    let body = json!({"order_id": checkout.body["order_id"], "checkout_token": checkout.body["checkout_token"], "lines": checkout.body["lines"], "shipping_address": address});
    assert_eq!(app.post("/api/v1/orders", Some(&buyer), &body).await.status, 201);
    let cart = get_cart(&app, None, Some(&buyer)).await;
    let products: Vec<i64> = cart.body["lines"].as_array().unwrap().iter().map(|l| l["product_id"].as_i64().unwrap()).collect();
    assert_eq!(products, vec![kept]);
}

async fn put_line(app: &TestApp, product_id: i64, quantity: Value, token: Option<&str>, bearer: Option<&str>) -> Reply {
    let mut request = app.client.put(app.url(&format!("/api/v1/cart/lines/{product_id}"))).json(&json!({"quantity": quantity}));
    if let Some(token) = token {
        request = request.header("x-cart-token", token);
    }
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    Reply::read(request.send().await.unwrap()).await
}

async fn get_cart(app: &TestApp, token: Option<&str>, bearer: Option<&str>) -> Reply {
    let mut request = app.client.get(app.url("/api/v1/cart"));
    if let Some(token) = token {
        request = request.header("x-cart-token", token);
    }
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    Reply::read(request.send().await.unwrap()).await
}

fn quantities(cart: &Value) -> Vec<(i64, i64)> {
    let mut lines: Vec<_> = cart["lines"].as_array().unwrap().iter().map(|l| (l["product_id"].as_i64().unwrap(), l["quantity"].as_i64().unwrap())).collect();
    lines.sort();
    lines
}

async fn products(app: &TestApp, stocks: &[i64]) -> Vec<i64> {
    let (seller, _) = app.signed_in("cart-seller@example.com", "seller").await;
    let mut ids = Vec::new();
    for (i, stock) in stocks.iter().enumerate() {
        ids.push(app.create_product(&seller, &format!("Thing {i}"), 100 + i as i64, *stock).await["id"].as_i64().unwrap());
    }
    ids
}

async fn a_guest_cart_lives_under_its_token_and_bad_input_changes_nothing(app: TestApp) {
    let ids = products(&app, &[10, 10]).await;
    let empty = get_cart(&app, None, None).await;
    assert_eq!((empty.status.as_u16(), quantities(&empty.body)), (200, vec![]));
    assert_eq!(app.count("guest_carts").await, 0, "reading creates nothing");

    let first = put_line(&app, ids[0], json!(2), None, None).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let token = first.body["cart_token"].as_str().unwrap().to_owned();
    assert!(first.headers["set-cookie"].to_str().unwrap().starts_with("nf_cart="));
    put_line(&app, ids[1], json!(1), Some(&token), None).await;
    put_line(&app, ids[0], json!(5), Some(&token), None).await;
    assert_eq!(quantities(&get_cart(&app, Some(&token), None).await.body), vec![(ids[0], 5), (ids[1], 1)]);
    let by_cookie = app.client.get(app.url("/api/v1/cart")).header("cookie", format!("nf_cart={token}")).send().await.unwrap();
    assert_eq!(quantities(&by_cookie.json::<Value>().await.unwrap()), vec![(ids[0], 5), (ids[1], 1)]);

    for bad in [json!(-1), json!(100), json!(1e12), json!("two"), json!(null), json!(1.5)] {
        let reply = put_line(&app, ids[0], bad.clone(), Some(&token), None).await;
        assert_eq!(reply.status, 422, "{bad} → {}", reply.text);
    }
    put_line(&app, 999_999, json!(1), Some(&token), None).await.assert_problem(404, "not_found");
    put_line(&app, ids[0], json!(1), Some("garbage"), None).await.assert_problem(400, "invalid_cart_token");
    get_cart(&app, Some("'; DROP TABLE carts; --"), None).await.assert_problem(400, "invalid_cart_token");
    assert_eq!(quantities(&get_cart(&app, Some(&token), None).await.body), vec![(ids[0], 5), (ids[1], 1)], "nothing changed");
    // Another guest's well-formed token that does not exist is an empty cart, not theirs.
    assert_eq!(quantities(&get_cart(&app, Some(&"a".repeat(64)), None).await.body), vec![]);

    assert_eq!(put_line(&app, ids[1], json!(0), Some(&token), None).await.status, 200);
    assert_eq!(quantities(&get_cart(&app, Some(&token), None).await.body), vec![(ids[0], 5)]);

    // Unused for the TTL: the job deletes the cart and its lines.
    let later = shop::clock::now_ms() + shop::services::carts::Carts::DEFAULT_GUEST_TTL_MS + 1;
    assert_eq!(app.shop.carts.delete_expired_guest_carts(later).await.unwrap(), 1);
    assert_eq!(app.count("cart_lines").await, 0);
}

async fn a_signed_in_shopper_merges_browser_and_server_guest_carts_once(app: TestApp) {
    let ids = products(&app, &[100, 100, 3, 500]).await;
    let guest = put_line(&app, ids[0], json!(2), None, None).await.body["cart_token"].as_str().unwrap().to_owned();
    put_line(&app, ids[2], json!(2), Some(&guest), None).await;

    let (buyer, _) = app.signed_in("merger@example.com", "buyer").await;
    put_line(&app, ids[0], json!(1), None, Some(&buyer)).await;
    put_line(&app, ids[3], json!(98), None, Some(&buyer)).await;

    let merge = json!({
        "merge_id": "browser-cart-7f3a",
        "cart_token": guest,
        "lines": [
            {"product_id": ids[1], "quantity": 4, "added_at": "2026-01-01T00:00:00Z"},
            {"product_id": ids[2], "quantity": 3},
            {"product_id": ids[3], "quantity": 5}
        ]
    });
    let merged = app.post("/api/v1/cart/merge", Some(&buyer), &merge).await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    // ids[0]: 1 + 2; ids[1]: 4; ids[2]: 2 + 3 capped by stock 3; ids[3]: 98 + 5 capped at 99.
    assert_eq!(quantities(&merged.body), vec![(ids[0], 3), (ids[1], 4), (ids[2], 3), (ids[3], 99)]);
    assert_eq!(merged.body["merge"]["lines_added"], 4);
    assert_eq!(merged.body["merge"]["capped"].as_array().unwrap().len(), 2);
    let line1 = merged.body["lines"].as_array().unwrap().iter().find(|l| l["product_id"] == ids[1]).unwrap().clone();
    assert_eq!(line1["added_at"], "2026-01-01T00:00:00Z", "the earliest added_at is kept");
    assert_eq!(app.count("guest_carts").await, 0, "the server guest cart is gone");

    let again = app.post("/api/v1/cart/merge", Some(&buyer), &merge).await;
    assert_eq!(quantities(&again.body), quantities(&merged.body));
    assert_eq!(again.body["merge"]["already_applied"], true);

    for (body, field) in [
        (json!({"merge_id": "", "lines": []}), "merge_id"),
        (json!({"merge_id": "m2", "lines": [{"product_id": ids[0], "quantity": -3}]}), "lines[0].quantity"),
        (json!({"merge_id": "m2", "lines": [{"product_id": ids[0], "quantity": 1, "added_at": "yesterday"}]}), "lines[0].added_at"),
        (json!({"merge_id": "m2", "cart_token": "garbage", "lines": []}), "cart_token"),
    ] {
        let reply = app.post("/api/v1/cart/merge", Some(&buyer), &body).await;
        assert!(reply.status == 422 || reply.status == 400, "{body} → {}", reply.text);
        assert_eq!(reply.body["field"], field, "{body} → {}", reply.text);
    }
    app.post("/api/v1/cart/merge", None, &merge).await.assert_problem(401, "unauthenticated");
    assert_eq!(quantities(&get_cart(&app, None, Some(&buyer)).await.body), quantities(&merged.body), "nothing changed");
}

async fn fifty_concurrent_merges_with_one_merge_id_give_the_same_cart_as_one(app: TestApp) {
    let ids = products(&app, &[500, 500, 500]).await;
    let (buyer, _) = app.signed_in("tabs@example.com", "buyer").await;
    put_line(&app, ids[0], json!(1), None, Some(&buyer)).await;
    let merge = json!({"merge_id": "one-browser-cart", "lines": [
        {"product_id": ids[0], "quantity": 2}, {"product_id": ids[1], "quantity": 3}, {"product_id": ids[2], "quantity": 4}]});
    let replies = join_all((0..50).map(|_| app.post("/api/v1/cart/merge", Some(&buyer), &merge))).await;
    let expected = vec![(ids[0], 3), (ids[1], 3), (ids[2], 4)];
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(quantities(&reply.body), expected);
    }
    assert_eq!(replies.iter().filter(|r| r.body["merge"]["already_applied"] == false).count(), 1);
    assert_eq!(quantities(&get_cart(&app, None, Some(&buyer)).await.body), expected);
}
