use crate::helpers::TestApp;
use futures::future::join_all;
use serde_json::{Value, json};

crate::on_both_backends!(
    a_thousand_orders_of_an_unchanged_product_share_one_snapshot_and_an_edit_makes_another,
    a_failing_snapshot_job_never_fails_an_order_and_is_retried,
);

fn address() -> Value {
    json!({"name": "Ann", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"})
}

/// Places `count` orders of one unit each, 50 at a time, from `buyers`; returns the orders.
async fn order_many(app: &TestApp, buyers: &[String], product_id: i64, count: usize) -> Vec<Value> {
    let mut orders = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(50) {
        let placed = join_all(chunk.iter().map(|&i| async move {
            let buyer = &buyers[i % buyers.len()];
            let opened = app.post("/api/v1/checkout", Some(buyer), &json!({"lines": [{"product_id": product_id, "quantity": 1}]})).await.body;
            let body = json!({"order_id": opened["order_id"], "checkout_token": opened["checkout_token"], "lines": opened["lines"], "shipping_address": address()});
            let reply = app.post("/api/v1/orders", Some(buyer), &body).await;
            assert_eq!(reply.status, 201, "{}", reply.text);
            reply.body
        }))
        .await;
        orders.extend(placed);
    }
    orders
}

async fn run_jobs(app: &TestApp, now: i64) -> shop::services::jobs::RunStats {
    app.shop.jobs.run_due(now, 1000).await.unwrap()
}

async fn a_thousand_orders_of_an_unchanged_product_share_one_snapshot_and_an_edit_makes_another(app: TestApp) {
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    let product = app.post("/api/v1/seller/products", Some(&seller), &json!({"title": "Mug", "description": "Blue glaze.", "price_cents": 1200, "stock": 5000, "inventory_mode": "on_order"})).await.body;
    let id = product["id"].as_i64().unwrap();
    let mut buyers = Vec::new();
    for b in 0..10 {
        buyers.push(app.signed_in(&format!("b{b}@example.com"), "buyer").await.0);
    }
    let orders = order_many(&app, &buyers, id, 1000).await;
    let digest = orders[0]["lines"][0]["snapshot_digest"].as_str().unwrap().to_owned();
    assert!(orders.iter().all(|o| o["lines"][0]["snapshot_digest"] == digest.as_str()));
    assert_eq!(app.count("jobs").await, 1, "one job for one content");
    assert_eq!(run_jobs(&app, shop::clock::now_ms()).await.done, 1);
    assert_eq!(app.count("snapshots").await, 1);
    // The clean-up clears done jobs; the snapshot stays. This process knows it
    // enqueued the content, so later take batches do not enqueue it again (a
    // statement less in the hot product's transaction).
    assert_eq!(app.shop.jobs.delete_done("snapshot", shop::clock::now_ms() + 1).await.unwrap(), 1);
    order_many(&app, &buyers, id, 20).await;
    assert_eq!(app.count("jobs").await, 0, "a known content was enqueued again");

    let edited = app.patch(&format!("/api/v1/seller/products/{id}"), Some(&seller), &json!({"expected_version": 1, "price_cents": 1500, "description": "Green glaze."})).await;
    assert_eq!(edited.status, 200);
    let newer = order_many(&app, &buyers, id, 3).await;
    let new_digest = newer[0]["lines"][0]["snapshot_digest"].as_str().unwrap().to_owned();
    assert_ne!(new_digest, digest);
    run_jobs(&app, shop::clock::now_ms()).await;
    assert_eq!(app.count("snapshots").await, 2);

    // The old order still shows the product as it was sold.
    let old = app.get(&format!("/api/v1/snapshots/{digest}"), None).await;
    assert_eq!(old.status, 200);
    assert_eq!((old.body["price_cents"].as_i64(), old.body["description"].as_str(), old.body["title"].as_str()), (Some(1200), Some("Blue glaze."), Some("Mug")));
    let new = app.get(&format!("/api/v1/snapshots/{new_digest}"), None).await;
    assert_eq!(new.body["price_cents"], 1500);
    assert_eq!(orders[0]["lines"][0]["unit_price_cents"], 1200);
    for bad in ["nope", "0123456789abcdef0123456789ABCDEF", &"0".repeat(32)] {
        app.get(&format!("/api/v1/snapshots/{bad}"), None).await.assert_problem(404, "not_found");
    }
}

async fn a_failing_snapshot_job_never_fails_an_order_and_is_retried(app: TestApp) {
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    let id = app.create_product(&seller, "Lamp", 4000, 100).await["id"].as_i64().unwrap();
    let (buyer, _) = app.signed_in("b@example.com", "buyer").await;
    let main = app.shop.databases.main.pool();
    // Break the snapshot write for real: its table is gone.
    sqlx::query("ALTER TABLE snapshots RENAME TO snapshots_away").execute(main).await.unwrap();

    let orders = order_many(&app, std::slice::from_ref(&buyer), id, 5).await;
    assert_eq!(orders.len(), 5, "every order was placed while snapshots fail");
    let now = shop::clock::now_ms();
    let stats = run_jobs(&app, now).await;
    assert_eq!((stats.done, stats.retried), (0, 1));
    let (state, attempts, error): (String, i64, Option<String>) = sqlx::query_as("SELECT state, attempts, last_error FROM jobs").fetch_one(main).await.unwrap();
    assert_eq!((state.as_str(), attempts), ("queued", 1));
    assert!(error.is_some());
    // Not due again until its backoff has passed.
    assert_eq!(run_jobs(&app, now + 500).await, Default::default());
    let more = order_many(&app, &[buyer], id, 2).await;
    assert_eq!(more.len(), 2);

    sqlx::query("ALTER TABLE snapshots_away RENAME TO snapshots").execute(main).await.unwrap();
    let stats = run_jobs(&app, now + shop::services::jobs::backoff_ms(1) + 1).await;
    assert_eq!(stats.done, 1);
    let digest = orders[0]["lines"][0]["snapshot_digest"].as_str().unwrap();
    assert_eq!(app.get(&format!("/api/v1/snapshots/{digest}"), None).await.body["title"], "Lamp");
}
