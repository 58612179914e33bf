use crate::helpers::TestApp;
use futures::future::join_all;
use serde_json::{Value, json};
use std::collections::HashSet;

crate::on_both_backends!(
    a_seller_lists_edits_and_restocks_and_buyers_see_it,
    a_stale_edit_gets_409_with_the_current_version,
    of_concurrent_edits_against_one_version_exactly_one_wins,
    concurrent_restocks_all_count_and_keep_the_stock_invariant,
    only_the_owning_seller_may_change_a_product,
    bad_product_input_is_refused_and_changes_nothing,
    the_product_list_pages_through_everything_once,
);

async fn a_seller_lists_edits_and_restocks_and_buyers_see_it(app: TestApp) {
    let (seller, seller_user) = app.signed_in("s@example.com", "seller").await;
    let created = app
        .post("/api/v1/seller/products", Some(&seller), &json!({"title": " Teapot ", "description": "Blue.", "price_cents": 2500, "stock": 10, "inventory_mode": "on_order"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let product = created.body;
    assert_eq!(product["title"], "Teapot");
    assert_eq!(product["seller_id"], seller_user["id"]);
    assert_eq!(product["price_cents"], 2500);
    assert_eq!(product["stock"], json!({"available": 10, "reserved": 0, "sold": 0}));
    assert_eq!(product["inventory_mode"], "on_order");
    assert_eq!(product["version"], 1);
    let id = product["id"].as_i64().unwrap();

    let defaulted = app.post("/api/v1/seller/products", Some(&seller), &json!({"title": "Cup", "price_cents": 100, "stock": 0})).await;
    assert_eq!(defaulted.body["inventory_mode"], "reserve");
    assert_eq!(defaulted.body["description"], "");

    let edited = app.patch(&format!("/api/v1/seller/products/{id}"), Some(&seller), &json!({"expected_version": 1, "price_cents": 2700})).await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.body["price_cents"], 2700);
    assert_eq!(edited.body["title"], "Teapot");
    assert_eq!(edited.body["version"], 2);

    let restocked = app.post(&format!("/api/v1/seller/products/{id}/restock"), Some(&seller), &json!({"quantity": 5})).await;
    assert_eq!(restocked.status, 200, "{}", restocked.text);
    assert_eq!(restocked.body["stock"]["available"], 15);
    assert_eq!(restocked.body["version"], 2, "restocking is not an edit of the product");

    let seen = app.get(&format!("/api/v1/products/{id}"), None).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body, restocked.body);
}

async fn a_stale_edit_gets_409_with_the_current_version(app: TestApp) {
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    let id = app.create_product(&seller, "Lamp", 4000, 3).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/seller/products/{id}");
    assert_eq!(app.patch(&path, Some(&seller), &json!({"expected_version": 1, "title": "Desk Lamp"})).await.status, 200);
    let stale = app.patch(&path, Some(&seller), &json!({"expected_version": 1, "title": "Old Lamp"})).await;
    let problem = stale.assert_problem(409, "stale_version");
    assert_eq!(problem["current"]["version"], 2);
    assert_eq!(app.get(&format!("/api/v1/products/{id}"), None).await.body["title"], "Desk Lamp");
}

async fn of_concurrent_edits_against_one_version_exactly_one_wins(app: TestApp) {
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    let id = app.create_product(&seller, "Chair", 9000, 3).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/seller/products/{id}");
    let edits = (0..24).map(|i| {
        let path = path.clone();
        let seller = seller.clone();
        let app = &app;
        async move { (i, app.patch(&path, Some(&seller), &json!({"expected_version": 1, "price_cents": 1000 + i})).await) }
    });
    let replies = join_all(edits).await;
    let winners: Vec<_> = replies.iter().filter(|(_, r)| r.status == 200).collect();
    assert_eq!(winners.len(), 1, "{:?}", replies.iter().map(|(_, r)| r.status).collect::<Vec<_>>());
    assert!(replies.iter().all(|(_, r)| r.status == 200 || r.body["code"] == "stale_version"));
    let stored = app.get(&format!("/api/v1/products/{id}"), None).await.body;
    assert_eq!(stored["version"], 2);
    assert_eq!(stored["price_cents"], 1000 + winners[0].0);
}

async fn concurrent_restocks_all_count_and_keep_the_stock_invariant(app: TestApp) {
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    let id = app.create_product(&seller, "Pen", 300, 7).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/seller/products/{id}/restock");
    let restocks = (0..40).map(|_| async { app.post(&path, Some(&seller), &json!({"quantity": 3})).await });
    let watcher = async {
        // Read the invariant while the writes run, not only after.
        for _ in 0..20 {
            let (stock, received) = app.shop.catalog.stock_totals(shop::domain::ProductId::parse("id", id).unwrap()).await.unwrap();
            assert_eq!(stock.available + stock.reserved + stock.sold, received);
            tokio::task::yield_now().await;
        }
    };
    let (replies, ()) = tokio::join!(join_all(restocks), watcher);
    assert!(replies.iter().all(|r| r.status == 200), "{:?}", replies.iter().map(|r| &r.text).collect::<Vec<_>>());
    let (stock, received) = app.shop.catalog.stock_totals(shop::domain::ProductId::parse("id", id).unwrap()).await.unwrap();
    assert_eq!((stock.available, received), (7 + 40 * 3, 7 + 40 * 3));
}

async fn only_the_owning_seller_may_change_a_product(app: TestApp) {
    let (owner, _) = app.signed_in("owner@example.com", "seller").await;
    let (rival, _) = app.signed_in("rival@example.com", "seller").await;
    let (buyer, _) = app.signed_in("buyer@example.com", "buyer").await;
    let id = app.create_product(&owner, "Rug", 12000, 2).await["id"].as_i64().unwrap();

    let edit = json!({"expected_version": 1, "title": "Mine now"});
    app.patch(&format!("/api/v1/seller/products/{id}"), Some(&rival), &edit).await.assert_problem(404, "not_found");
    app.post(&format!("/api/v1/seller/products/{id}/restock"), Some(&rival), &json!({"quantity": 1})).await.assert_problem(404, "not_found");
    app.patch(&format!("/api/v1/seller/products/{id}"), Some(&buyer), &edit).await.assert_problem(403, "forbidden");
    app.post("/api/v1/seller/products", Some(&buyer), &json!({"title": "X", "price_cents": 1, "stock": 1})).await.assert_problem(403, "forbidden");
    app.post("/api/v1/seller/products", None, &json!({"title": "X", "price_cents": 1, "stock": 1})).await.assert_problem(401, "unauthenticated");

    let stored = app.get(&format!("/api/v1/products/{id}"), None).await.body;
    assert_eq!((stored["title"].as_str(), stored["version"].as_i64(), stored["stock"]["available"].as_i64()), (Some("Rug"), Some(1), Some(2)));
    assert_eq!(app.count("products").await, 1);
}

async fn bad_product_input_is_refused_and_changes_nothing(app: TestApp) {
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    let product = app.create_product(&seller, "Vase", 5000, 4).await;
    let id = product["id"].as_i64().unwrap();
    let valid = json!({"title": "Ok", "price_cents": 100, "stock": 1});
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let creates = [
        (with("title", json!("")), "title"),
        (with("title", json!("   ")), "title"),
        (with("title", json!("t".repeat(201))), "title"),
        (with("description", json!("d".repeat(5001))), "description"),
        (with("price_cents", json!(-1)), "price_cents"),
        (with("price_cents", json!(0)), "price_cents"),
        (with("price_cents", json!(1_000_000_001i64)), "price_cents"),
        (with("price_cents", json!(99999999999999999999.0)), "price_cents"),
        (with("price_cents", json!("12")), "price_cents"),
        (with("price_cents", json!(12.5)), "price_cents"),
        (with("stock", json!(-5)), "stock"),
        (with("stock", json!(i64::MAX)), "stock"),
        (with("inventory_mode", json!("someday")), "inventory_mode"),
        (json!({"title": "No price", "stock": 1}), "price_cents"),
    ];
    for (body, field) in creates {
        let reply = app.post("/api/v1/seller/products", Some(&seller), &body).await;
        assert_eq!(reply.status, 422, "{body} → {}", reply.text);
        assert_eq!(reply.body["field"], field, "{body} → {}", reply.text);
    }
    let path = format!("/api/v1/seller/products/{id}");
    let edits = [
        (json!({"expected_version": 1, "price_cents": -3}), "price_cents"),
        (json!({"expected_version": 1, "title": ""}), "title"),
        (json!({"expected_version": 1, "stock": 100}), "stock"),
        (json!({"expected_version": "one", "title": "X"}), "expected_version"),
        (json!({"title": "X"}), "expected_version"),
    ];
    for (body, field) in edits {
        let reply = app.patch(&path, Some(&seller), &body).await;
        assert_eq!(reply.status, 422, "{body} → {}", reply.text);
        assert_eq!(reply.body["field"], field, "{body} → {}", reply.text);
    }
    for quantity in [json!(0), json!(-1), json!(1_000_001), json!(null), json!("many")] {
        let reply = app.post(&format!("{path}/restock"), Some(&seller), &json!({"quantity": quantity})).await;
        assert_eq!(reply.status, 422, "{quantity} → {}", reply.text);
    }
    assert_eq!(app.count("products").await, 1);
    assert_eq!(app.get(&format!("/api/v1/products/{id}"), None).await.body, product);
}

async fn the_product_list_pages_through_everything_once(app: TestApp) {
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    for i in 0..30 {
        app.create_product(&seller, &format!("Item {i}"), 100 + i, i).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/products?limit=7&cursor={c}"),
            None => "/api/v1/products?limit=7".to_owned(),
        };
        let page = app.get(&path, None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 7);
        seen.extend(items.iter().map(|p| p["id"].as_i64().unwrap()));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 30);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");
    app.get("/api/v1/products?cursor=bogus", None).await.assert_problem(422, "validation_failed");
    app.get("/api/v1/products?limit=0", None).await.assert_problem(422, "validation_failed");
    app.get("/api/v1/products?limit=1000", None).await.assert_problem(422, "validation_failed");
    app.get("/api/v1/products?limit=ten", None).await.assert_problem(400, "invalid_query");
}
