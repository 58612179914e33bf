use crate::helpers::TestApp;
use futures::future::join_all;
use serde_json::{Value, json};
use shop::domain::ProductId;
use std::collections::HashSet;

crate::on_both_backends!(
    a_buyer_checks_out_places_replays_lists_and_cancels,
    five_hundred_concurrent_orders_for_fifty_reserved_units_sell_exactly_fifty,
    five_hundred_concurrent_orders_for_fifty_units_taken_on_order_sell_exactly_fifty,
    fifty_concurrent_submits_of_one_checkout_make_one_order,
    bad_checkouts_and_other_peoples_orders_are_refused,
    lapsed_holds_cancel_unpaid_orders_and_return_the_stock_exactly,
    stock_taken_for_an_order_lost_in_a_crash_is_released,
    my_orders_and_order_by_id_touch_only_the_buyers_shard,
    orders_in_on_payment_mode_only_check_stock,
    an_order_of_several_lines_takes_all_its_stock_or_none,
    a_changed_number_of_shards_is_refused_and_moves_nothing,
    an_oversell_refused_at_placing_is_counted,
    concurrent_orders_of_mixed_sizes_are_granted_whole_and_exactly,
    concurrent_orders_over_many_products_share_stock_transactions_and_each_product_grants_exactly,
    orders_placed_at_once_share_shard_transactions_and_each_is_whole,
    awkward_text_in_an_address_is_stored_and_read_back_exactly,
);

/// Batched writes carry their rows in one JSON parameter (`dialect::json_rows`):
/// text that looks like JSON or SQL, quotes, backslashes, and characters outside
/// ASCII come back exactly as sent, placed alone and placed at once with others.
async fn awkward_text_in_an_address_is_stored_and_read_back_exactly(app: TestApp) {
    let id = product(&app, 100, "reserve").await;
    let awkward = [r#"O'Brien "the" \ buyer"#, r#"{"a": [1, "x"]}"#, "'); DROP TABLE orders; --", "Zürich 東京 🚀", r"tab\there\nline"];
    let mut buyers = Vec::new();
    for (n, text) in awkward.iter().enumerate() {
        let (token, _) = app.signed_in(&format!("awkward-{n}@example.com"), "buyer").await;
        buyers.push((token, *text));
    }
    let app = &app;
    let placed = join_all(buyers.iter().map(|(token, text)| async move {
        let opened = checkout(app, token, id, 1).await;
        let mut body = place_body(&opened);
        body["shipping_address"]["name"] = json!(text);
        body["shipping_address"]["line2"] = json!(text);
        let reply = app.post("/api/v1/orders", Some(token), &body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.body["id"].as_str().unwrap().to_owned()
    }))
    .await;
    for ((token, text), order_id) in buyers.iter().zip(placed) {
        let read = app.get(&format!("/api/v1/orders/{order_id}"), Some(token)).await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!((read.body["shipping_address"]["name"].as_str(), read.body["shipping_address"]["line2"].as_str()), (Some(*text), Some(*text)));
        assert_eq!(read.body["lines"][0]["quantity"], 1);
    }
    assert_eq!(stock(app, id).await.0.reserved, awkward.len() as i64);
}

/// `ninefold_oversell_refused_total` counts every refusal, at placing as at paying
/// (it used to count only the payment step's).
async fn an_oversell_refused_at_placing_is_counted(app: TestApp) {
    let counted = |text: &str| -> f64 {
        text.lines().find(|l| l.starts_with("ninefold_oversell_refused_total")).and_then(|l| l.split_whitespace().last()?.parse().ok()).unwrap_or(0.0)
    };
    let scarce = product(&app, 1, "on_order").await;
    let (buyer, _) = app.signed_in("counted@example.com", "buyer").await;
    let opened = checkout(&app, &buyer, scarce, 2).await;
    let before = counted(&app.get("/metrics", None).await.text);
    app.post("/api/v1/orders", Some(&buyer), &place_body(&opened)).await.assert_problem(409, "insufficient_stock");
    let after = counted(&app.get("/metrics", None).await.text);
    assert!(after >= before + 1.0, "counter went from {before} to {after}");
}

/// The shard map is stored in `main` on the first start: opening the same
/// databases with fewer or more shards configured is refused with a message that
/// names both counts, and changes neither the map nor where orders are found.
async fn a_changed_number_of_shards_is_refused_and_moves_nothing(app: TestApp) {
    let held = product(&app, 5, "reserve").await;
    let (buyer, _) = app.signed_in("map@example.com", "buyer").await;
    let order = place(&app, &buyer, held, 1).await;
    let ranges = || async { sqlx::query_as::<_, (i64, i64)>("SELECT shard, start_suffix FROM shard_ranges ORDER BY shard").fetch_all(app.shop.databases.main.pool()).await.unwrap() };
    let before = ranges().await;
    let configured = app.databases.shards.len();
    assert_eq!(before.len(), configured);
    for shards in [configured - 1, configured + 1] {
        let mut changed = app.databases.clone();
        changed.shards.resize(shards, app.databases.shards[0].clone());
        let refused = shop::Shop::open(&changed, &Default::default()).await.expect_err("a changed shard count must be refused");
        let message = format!("{refused:#}");
        assert!(message.contains(&format!("names {shards} order shard(s)")) && message.contains(&format!("has {configured}")), "{message}");
    }
    assert_eq!(ranges().await, before);
    let found = app.get(&format!("/api/v1/orders/{}", order["id"].as_str().unwrap()), Some(&buyer)).await;
    assert_eq!(found.status, 200, "{}", found.text);
}

async fn an_order_of_several_lines_takes_all_its_stock_or_none(app: TestApp) {
    let (seller, _) = app.signed_in("two@example.com", "seller").await;
    let create = |title: &'static str, stock: i64, mode: &'static str| {
        let seller = seller.clone();
        let app = &app;
        async move {
            app.post("/api/v1/seller/products", Some(&seller), &json!({"title": title, "price_cents": 500, "stock": stock, "inventory_mode": mode})).await.body["id"].as_i64().unwrap()
        }
    };
    let plenty = create("Plenty", 5, "reserve").await;
    let scarce = create("Scarce", 1, "on_order").await;
    let (buyer, _) = app.signed_in("multi@example.com", "buyer").await;
    let lines = json!({"lines": [{"product_id": plenty, "quantity": 2}, {"product_id": scarce, "quantity": 2}]});
    let opened = app.post("/api/v1/checkout", Some(&buyer), &lines).await;
    assert_eq!(opened.status, 201, "{}", opened.text);
    assert_eq!(opened.body["total_cents"], 2000);
    let refused = app.post("/api/v1/orders", Some(&buyer), &place_body(&opened.body)).await;
    refused.assert_problem(409, "insufficient_stock");
    let (p, _) = stock(&app, plenty).await;
    let (s, _) = stock(&app, scarce).await;
    assert_eq!((p.available, p.reserved, s.available, s.sold), (5, 0, 1, 0), "nothing taken for any line");
    assert_eq!(app.count("stock_takes").await, 0);

    let fits = app.post("/api/v1/checkout", Some(&buyer), &json!({"lines": [{"product_id": plenty, "quantity": 2}, {"product_id": scarce, "quantity": 1}]})).await;
    let placed = app.post("/api/v1/orders", Some(&buyer), &place_body(&fits.body)).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    assert_eq!(placed.body["lines"].as_array().unwrap().len(), 2);
    assert_eq!((stock(&app, plenty).await.0.reserved, stock(&app, scarce).await.0.sold), (2, 1));
}

async fn my_orders_and_order_by_id_touch_only_the_buyers_shard(app: TestApp) {
    let id = product(&app, 100, "reserve").await;
    let shards = app.shop.databases.shards.len();
    assert!(shards >= 2, "the test app runs several shards");
    let map = shop::shard_map::ShardMap::even(shards);
    // Buyers until every shard has one, so the other shards hold orders too.
    let mut buyers: Vec<(String, usize)> = Vec::new();
    let mut n = 0;
    while (0..shards).any(|k| !buyers.iter().any(|(_, s)| *s == k)) {
        n += 1;
        let (token, user) = app.signed_in(&format!("spread{n}@example.com"), "buyer").await;
        let shard = map.shard_for_buyer(shop::domain::UserId::parse("id", user["id"].as_i64().unwrap()).unwrap());
        place(&app, &token, id, 1).await;
        buyers.push((token, shard));
    }
    for (token, shard) in &buyers {
        let before = app.shop.databases.shard_uses();
        let list = app.get("/api/v1/orders", Some(token)).await;
        let order_id = list.body["items"][0]["id"].as_str().unwrap().to_owned();
        assert!(order_id.len() == 19);
        let one = app.get(&format!("/api/v1/orders/{order_id}"), Some(token)).await;
        assert_eq!(one.status, 200);
        let after = app.shop.databases.shard_uses();
        for k in 0..shards {
            if k == *shard {
                assert!(after[k] > before[k], "the buyer's shard {k} was read");
            } else {
                assert_eq!(after[k], before[k], "shard {k} is not the buyer's ({shard}) but was touched");
            }
        }
    }
}

async fn orders_in_on_payment_mode_only_check_stock(app: TestApp) {
    // In on_payment mode an order only checks stock; the units are taken when it is
    // paid (the money issue enforces the limit there).
    let id = product(&app, 3, "on_payment").await;
    let (buyer, _) = app.signed_in("later@example.com", "buyer").await;
    let replies = join_all((0..10).map(|_| async { let opened = checkout(&app, &buyer, id, 2).await; app.post("/api/v1/orders", Some(&buyer), &place_body(&opened)).await })).await;
    assert!(replies.iter().all(|r| r.status == 201), "{:?}", replies.iter().map(|r| &r.text).collect::<Vec<_>>());
    let (s, received) = stock(&app, id).await;
    assert_eq!((s.available, s.reserved, s.sold, received), (3, 0, 0, 3));
    let too_many = checkout(&app, &buyer, id, 4).await;
    app.post("/api/v1/orders", Some(&buyer), &place_body(&too_many)).await.assert_problem(409, "insufficient_stock");
}

const MINUTE_MS: i64 = 60 * 1000;

async fn place(app: &TestApp, buyer: &str, product_id: i64, quantity: i64) -> Value {
    let opened = checkout(app, buyer, product_id, quantity).await;
    let placed = app.post("/api/v1/orders", Some(buyer), &place_body(&opened)).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    placed.body
}

mod short_hold {
    use super::*;
    use crate::helpers::{Backend, spawn_app_with};

    async fn with_one_second_holds(backend: Backend) -> Option<TestApp> {
        spawn_app_with(backend, |settings| {
            settings.hold_ttl_secs = 1;
            settings.schedules.recovery_ms = 100;
        }, true)
        .await
    }

    /// The real worker, a real one-second TTL: unpaid orders cancel on their own
    /// and the stock comes back exactly.
    async fn holds_lapse_on_their_own(app: TestApp) {
        let id = product(&app, 10, "reserve").await;
        let (buyer, _) = app.signed_in("short@example.com", "buyer").await;
        let mut orders = Vec::new();
        for quantity in [1, 3] {
            orders.push(place(&app, &buyer, id, quantity).await);
        }
        assert_eq!(stock(&app, id).await.0.reserved, 4);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stock(&app, id).await.0.reserved > 0 {
            assert!(std::time::Instant::now() < deadline, "holds did not lapse within 10 s");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let (s, received) = stock(&app, id).await;
        assert_eq!((s.available, s.reserved, s.sold, received), (10, 0, 0, 10));
        for order in orders {
            let seen = app.get(&format!("/api/v1/orders/{}", order["id"].as_str().unwrap()), Some(&buyer)).await;
            assert_eq!(seen.body["status"], "cancelled");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn holds_lapse_on_their_own_on_sqlite() {
        holds_lapse_on_their_own(with_one_second_holds(Backend::Sqlite).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn holds_lapse_on_their_own_on_postgres() {
        if let Some(app) = with_one_second_holds(Backend::Postgres).await {
            holds_lapse_on_their_own(app).await;
        }
    }
}

async fn lapsed_holds_cancel_unpaid_orders_and_return_the_stock_exactly(app: TestApp) {
    let held = product(&app, 20, "reserve").await;
    let sold = product(&app, 20, "on_order").await;
    let (buyer, _) = app.signed_in("slow@example.com", "buyer").await;
    let mut held_orders = Vec::new();
    for quantity in [1, 2, 3] {
        held_orders.push(place(&app, &buyer, held, quantity).await);
    }
    let kept = place(&app, &buyer, sold, 4).await;
    assert_eq!(stock(&app, held).await.0.reserved, 6);

    // Before the hold lapses nothing happens.
    let orders = &app.shop.stock;
    assert_eq!(orders.recover_expired_takes(shop::clock::now_ms(), 100).await.unwrap(), 0);
    // After it lapses, two passes racing each other cancel each order once.
    let later = shop::clock::now_ms() + 31 * MINUTE_MS;
    let (a, b) = tokio::join!(orders.recover_expired_takes(later, 100), orders.recover_expired_takes(later, 100));
    assert!(a.unwrap() + b.unwrap() >= 4);
    assert_eq!(orders.recover_expired_takes(later, 100).await.unwrap(), 0, "a third pass finds nothing");

    for order in &held_orders {
        let seen = app.get(&format!("/api/v1/orders/{}", order["id"].as_str().unwrap()), Some(&buyer)).await;
        assert_eq!(seen.body["status"], "cancelled");
        assert!(seen.body.get("hold_expires_at").is_none());
    }
    let (s, received) = stock(&app, held).await;
    assert_eq!((s.available, s.reserved, s.sold, received), (20, 0, 0, 20));
    // Stock taken at order time has the same payment deadline: hoarding by never
    // paying gets nothing held.
    let seen = app.get(&format!("/api/v1/orders/{}", kept["id"].as_str().unwrap()), Some(&buyer)).await;
    assert_eq!(seen.body["status"], "cancelled");
    let (s, _) = stock(&app, sold).await;
    assert_eq!((s.available, s.sold), (20, 0));
}

async fn stock_taken_for_an_order_lost_in_a_crash_is_released(app: TestApp) {
    let id = product(&app, 10, "on_order").await;
    let (buyer, _) = app.signed_in("crash@example.com", "buyer").await;
    let order = place(&app, &buyer, id, 3).await;
    // Simulate a crash after step 1 (stock taken) and before step 2 (order inserted).
    let order_id = shop::orders::OrderId::parse("id", order["id"].as_str().unwrap()).unwrap();
    let shard = &app.shop.databases.shards[shop::shard_map::ShardMap::even(app.shop.databases.shards.len()).shard_for_order(order_id)];
    sqlx::query("DELETE FROM order_lines WHERE order_id = $1").bind(order_id.get()).execute(shard.pool()).await.unwrap();
    sqlx::query("DELETE FROM orders WHERE id = $1").bind(order_id.get()).execute(shard.pool()).await.unwrap();
    assert_eq!(stock(&app, id).await.0.sold, 3);

    let orders = &app.shop.stock;
    // While the checkout could still be submitted, the take is left alone.
    assert_eq!(orders.recover_expired_takes(shop::clock::now_ms() + 29 * MINUTE_MS, 100).await.unwrap(), 0);
    assert_eq!(orders.recover_expired_takes(shop::clock::now_ms() + 31 * MINUTE_MS, 100).await.unwrap(), 1);
    let (s, received) = stock(&app, id).await;
    assert_eq!((s.available, s.sold, received), (10, 0, 10));
    assert_eq!(orders.recover_expired_takes(shop::clock::now_ms() + 60 * MINUTE_MS, 100).await.unwrap(), 0);
}

fn address() -> Value {
    json!({"name": "Ann Buyer", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"})
}

async fn product(app: &TestApp, stock: i64, mode: &str) -> i64 {
    let (seller, _) = app.signed_in(&format!("seller-{mode}-{stock}@example.com"), "seller").await;
    let reply = app.post("/api/v1/seller/products", Some(&seller), &json!({"title": "Widget", "price_cents": 700, "stock": stock, "inventory_mode": mode})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["id"].as_i64().unwrap()
}

async fn checkout(app: &TestApp, buyer: &str, product_id: i64, quantity: i64) -> Value {
    let reply = app.post("/api/v1/checkout", Some(buyer), &json!({"lines": [{"product_id": product_id, "quantity": quantity}]})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body
}

fn place_body(checkout: &Value) -> Value {
    json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"], "shipping_address": address()})
}

async fn stock(app: &TestApp, id: i64) -> (shop::catalog::Stock, i64) {
    app.shop.catalog.stock_totals(ProductId::parse("id", id).unwrap()).await.unwrap()
}

async fn a_buyer_checks_out_places_replays_lists_and_cancels(app: TestApp) {
    let id = product(&app, 10, "reserve").await;
    let (buyer, user) = app.signed_in("ann@example.com", "buyer").await;
    let opened = checkout(&app, &buyer, id, 3).await;
    let order_id = opened["order_id"].as_str().unwrap().to_owned();
    assert_eq!(order_id.len(), 19);
    assert!(order_id.ends_with(&format!("{:06}", user["id"].as_i64().unwrap() % 1_000_000)));
    assert_eq!(opened["total_cents"], 2100);
    assert_eq!(stock(&app, id).await.0.available, 10, "opening a checkout reserves nothing");

    let placed = app.post("/api/v1/orders", Some(&buyer), &place_body(&opened)).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    assert_eq!(placed.body["id"], order_id.as_str());
    assert_eq!(placed.body["status"], "pending_payment");
    assert_eq!(placed.body["total_cents"], 2100);
    assert!(placed.body["hold_expires_at"].is_string());
    assert_eq!(placed.body["lines"][0]["snapshot_digest"].as_str().unwrap().len(), 32);
    let (after, _) = stock(&app, id).await;
    assert_eq!((after.available, after.reserved), (7, 3));

    let replay = app.post("/api/v1/orders", Some(&buyer), &place_body(&opened)).await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    // A replay is answered only for a body a first submit would take.
    for (field, bad) in [("lines", json!([])), ("lines", json!([{"product_id": 1, "quantity": 100}])), ("expected_total_cents", json!(-1))] {
        let mut body = place_body(&opened);
        body[field] = bad;
        app.post("/api/v1/orders", Some(&buyer), &body).await.assert_problem(422, "validation_failed");
    }
    assert_eq!(replay.body, placed.body);
    assert_eq!(stock(&app, id).await.0.reserved, 3, "a replay takes nothing more");

    assert_eq!(app.get(&format!("/api/v1/orders/{order_id}"), Some(&buyer)).await.body, placed.body);
    let list = app.get("/api/v1/orders", Some(&buyer)).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["next_cursor"], Value::Null);

    let cancelled = app.post(&format!("/api/v1/orders/{order_id}/cancel"), Some(&buyer), &json!({})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.body["status"], "cancelled");
    let (back, received) = stock(&app, id).await;
    assert_eq!((back.available, back.reserved, received), (10, 0, 10));
    let again = app.post(&format!("/api/v1/orders/{order_id}/cancel"), Some(&buyer), &json!({})).await;
    assert_eq!(again.status, 200);
    assert_eq!(stock(&app, id).await.0.available, 10, "cancelling twice gives back once");
}

/// 500 attempts from 25 buyers (20 checkouts each) race for 50 units.
async fn race_for_fifty(app: &TestApp, mode: &str) {
    let id = product(app, 50, mode).await;
    let mut buyers = Vec::new();
    for b in 0..25 {
        buyers.push(app.signed_in(&format!("racer{b}@example.com"), "buyer").await.0);
    }
    let checkouts = join_all((0..500).map(|i| {
        let buyer = buyers[i % buyers.len()].clone();
        async move { (buyer.clone(), checkout(app, &buyer, id, 1).await) }
    }))
    .await;
    let placing = join_all(checkouts.iter().map(|(buyer, opened)| async move { app.post("/api/v1/orders", Some(buyer), &place_body(opened)).await }));
    let watching = async {
        for _ in 0..50 {
            let (s, received) = stock(app, id).await;
            assert!(s.available >= 0 && s.reserved >= 0 && s.sold >= 0);
            assert_eq!(s.available + s.reserved + s.sold, received, "invariant broken mid-run");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    let (replies, ()) = tokio::join!(placing, watching);
    let placed = replies.iter().filter(|r| r.status == 201).count();
    let refused = replies.iter().filter(|r| r.status == 409 && r.body["code"] == "insufficient_stock").count();
    assert_eq!((placed, refused), (50, 450), "{:?}", replies.iter().find(|r| r.status != 201 && r.status != 409).map(|r| &r.text));
    let (s, received) = stock(app, id).await;
    assert_eq!(s.available, 0);
    assert_eq!(s.available + s.reserved + s.sold, received);
    assert_eq!(received, 50);
    match mode {
        "reserve" => assert_eq!((s.reserved, s.sold), (50, 0)),
        _ => assert_eq!((s.reserved, s.sold), (0, 50)),
    }
}

/// 300 one-line orders of 1 to 3 units, placed at once, for 100 units: they share
/// stock transactions (issue 14), and a batch that does not fit grants exactly the
/// units that exist, to whole orders; a refused order holds nothing.
async fn concurrent_orders_of_mixed_sizes_are_granted_whole_and_exactly(app: TestApp) {
    let app = &app;
    let id = product(app, 100, "reserve").await;
    let mut buyers = Vec::new();
    for b in 0..30 {
        buyers.push(app.signed_in(&format!("mixed{b}@example.com"), "buyer").await.0);
    }
    let checkouts = join_all((0..300).map(|i| {
        let buyer = buyers[i % buyers.len()].clone();
        async move { (buyer.clone(), (1 + i % 3) as i64, checkout(&app, &buyer, id, (1 + i % 3) as i64).await) }
    }))
    .await;
    let (batches_before, _) = app.shop.orders.shared_stock_batches();
    let replies = join_all(checkouts.iter().map(|(buyer, _, opened)| async move { app.post("/api/v1/orders", Some(buyer), &place_body(opened)).await })).await;
    let mut granted = 0;
    let mut placed = 0;
    for ((_, quantity, _), reply) in checkouts.iter().zip(&replies) {
        match reply.status.as_u16() {
            201 => {
                granted += quantity;
                placed += 1;
            }
            409 => assert_eq!(reply.body["code"], "insufficient_stock", "{}", reply.text),
            _ => panic!("unexpected reply: {}", reply.text),
        }
    }
    let (s, received) = stock(&app, id).await;
    assert_eq!(received, 100);
    assert_eq!(s.reserved, granted, "every granted unit belongs to a placed order");
    assert_eq!(s.available + s.reserved + s.sold, 100);
    assert!(s.available < 3, "units were left ({}) while orders that fit were refused", s.available);
    let (takes, units): (i64, i64) = sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM stock_takes WHERE product_id = $1")
        .bind(id)
        .fetch_one(app.shop.databases.main.pool())
        .await
        .unwrap();
    assert_eq!((takes, units), (placed, granted), "a refused order keeps no take");
    let (batches_after, _) = app.shop.orders.shared_stock_batches();
    assert!(batches_after > batches_before, "300 orders at once shared no stock transaction");
}

/// Stock takes of different products share transactions too (issue 14): orders for
/// 60 distinct products placed at once meet in batches, where one queue per
/// product never would. Then 390 orders of 1 to 3 units over 13 scarce products,
/// in two inventory modes, placed at once: each product grants exactly its units,
/// to whole orders, a refused order wanted more than was left and keeps no take.
async fn concurrent_orders_over_many_products_share_stock_transactions_and_each_product_grants_exactly(app: TestApp) {
    let app = &app;
    let mut buyers = Vec::new();
    for b in 0..30 {
        buyers.push(app.signed_in(&format!("many{b}@example.com"), "buyer").await.0);
    }

    // Registering sellers is hashing passwords: one at a time, not a burst the
    // server sheds.
    let mut plenty = Vec::new();
    for k in 0..60 {
        plenty.push(product(app, 100 + k, "reserve").await);
    }
    let opened = join_all(plenty.iter().enumerate().map(|(k, id)| checkout(app, &buyers[k % buyers.len()], *id, 1))).await;
    let (batches_before, _) = app.shop.orders.shared_stock_batches();
    let replies = join_all(opened.iter().enumerate().map(|(k, o)| {
        let (buyer, body) = (&buyers[k % buyers.len()], place_body(o));
        async move { app.post("/api/v1/orders", Some(buyer), &body).await }
    }))
    .await;
    assert!(replies.iter().all(|r| r.status == 201), "{:?}", replies.iter().find(|r| r.status != 201).map(|r| &r.text));
    let (batches_after, _) = app.shop.orders.shared_stock_batches();
    assert!(batches_after > batches_before, "orders for 60 products at once shared no stock transaction");
    for id in &plenty {
        let (s, received) = stock(app, *id).await;
        assert_eq!((s.available, s.reserved, s.sold), (received - 1, 1, 0), "product {id}");
    }

    let modes = ["reserve", "on_order"];
    let mut scarce = Vec::new();
    for k in 0..13 {
        scarce.push(product(app, 4 + k, modes[k as usize % 2]).await);
    }
    let wanted: Vec<(usize, i64)> = (0..390).map(|i| (i % 13, 1 + (i % 3) as i64)).collect();
    let opened = join_all(wanted.iter().enumerate().map(|(i, (p, quantity))| checkout(app, &buyers[i % buyers.len()], scarce[*p], *quantity))).await;
    let replies = join_all(opened.iter().enumerate().map(|(i, o)| {
        let (buyer, body) = (&buyers[i % buyers.len()], place_body(o));
        async move { app.post("/api/v1/orders", Some(buyer), &body).await }
    }))
    .await;
    let mut granted = vec![(0i64, 0i64); scarce.len()]; // (orders, units) per product
    let mut refused: Vec<Vec<i64>> = vec![Vec::new(); scarce.len()];
    for ((p, quantity), reply) in wanted.iter().zip(&replies) {
        match reply.status.as_u16() {
            201 => {
                granted[*p].0 += 1;
                granted[*p].1 += quantity;
            }
            409 if reply.body["code"] == "insufficient_stock" => refused[*p].push(*quantity),
            _ => panic!("unexpected reply: {}", reply.text),
        }
    }
    for (p, id) in scarce.iter().enumerate() {
        let (s, received) = stock(app, *id).await;
        assert_eq!(received, 4 + p as i64);
        assert_eq!(s.available + s.reserved + s.sold, received, "product {p}");
        let taken = if p % 2 == 0 { (s.reserved, s.sold) } else { (s.sold, s.reserved) };
        assert_eq!(taken, (granted[p].1, 0), "product {p}: every granted unit, and no other, belongs to a placed order");
        assert!(refused[p].iter().all(|q| *q > s.available), "product {p}: an order of {:?} units was refused with {} left", refused[p], s.available);
        let (takes, units): (i64, i64) = sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM stock_takes WHERE product_id = $1")
            .bind(*id)
            .fetch_one(app.shop.databases.main.pool())
            .await
            .unwrap();
        assert_eq!((takes, units), granted[p], "product {p}: a refused order keeps no take");
    }
}

/// 150 orders of 50 buyers (three each), placed at once: their shard writes share
/// transactions (issue 14), and every order is written whole, with its lines, its
/// outbox row and its buyer's unpaid slot, exactly once.
async fn orders_placed_at_once_share_shard_transactions_and_each_is_whole(app: TestApp) {
    let app = &app;
    let id = product(app, 1000, "on_order").await;
    let mut buyers = Vec::new();
    for b in 0..50 {
        buyers.push(app.signed_in(&format!("together{b}@example.com"), "buyer").await.0);
    }
    let checkouts = join_all((0..150).map(|i| {
        let buyer = buyers[i % buyers.len()].clone();
        async move { (buyer.clone(), checkout(app, &buyer, id, 1 + (i % 4) as i64).await) }
    }))
    .await;
    let (batches_before, _) = app.shop.orders.shared_order_batches();
    // Each checkout submitted twice at once: one order each, the other a replay.
    let replies = join_all(checkouts.iter().flat_map(|(buyer, opened)| [0, 1].map(move |_| async move { app.post("/api/v1/orders", Some(buyer), &place_body(opened)).await }))).await;
    for (k, pair) in replies.chunks(2).enumerate() {
        let mut statuses: Vec<u16> = pair.iter().map(|r| r.status.as_u16()).collect();
        statuses.sort();
        assert_eq!(statuses, [200, 201], "checkout {k}: {} / {}", pair[0].text, pair[1].text);
        assert_eq!(pair[0].body, pair[1].body, "checkout {k}: the replay is the order");
        let (_, opened) = &checkouts[k];
        assert_eq!(pair[0].body["id"], opened["order_id"]);
        assert_eq!(pair[0].body["total_cents"], opened["total_cents"]);
        assert_eq!(pair[0].body["lines"][0]["quantity"], opened["lines"][0]["quantity"]);
    }
    let (batches_after, _) = app.shop.orders.shared_order_batches();
    assert!(batches_after > batches_before, "300 submits at once shared no shard transaction");
    let mut orders = 0;
    let mut outbox = 0;
    let mut lines = 0;
    let mut unpaid = 0;
    for shard in app.shop.orders.shards().all() {
        let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(shard.pool()).await.unwrap() };
        orders += count("SELECT COUNT(*) FROM orders").await;
        outbox += count("SELECT COUNT(*) FROM order_outbox").await;
        lines += count("SELECT COUNT(*) FROM order_lines").await;
        unpaid += count("SELECT CAST(COALESCE(SUM(unpaid), 0) AS BIGINT) FROM buyer_unpaid").await;
    }
    assert_eq!((orders, lines, unpaid), (150, 150, 150), "every order once, whole, holding one slot");
    assert!(outbox <= 150, "one outbox row per new order at most (the feed may have taken some)");
    let sold: i64 = checkouts.iter().map(|(_, c)| c["lines"][0]["quantity"].as_i64().unwrap()).sum();
    assert_eq!(stock(app, id).await.0.sold, sold, "stock taken once per order");
    for buyer in &buyers[..3] {
        assert_eq!(app.get("/api/v1/orders", Some(buyer)).await.body["items"].as_array().unwrap().len(), 3);
    }
}

async fn five_hundred_concurrent_orders_for_fifty_reserved_units_sell_exactly_fifty(app: TestApp) {
    race_for_fifty(&app, "reserve").await;
}

async fn five_hundred_concurrent_orders_for_fifty_units_taken_on_order_sell_exactly_fifty(app: TestApp) {
    race_for_fifty(&app, "on_order").await;
}

async fn fifty_concurrent_submits_of_one_checkout_make_one_order(app: TestApp) {
    let id = product(&app, 5, "reserve").await;
    let (buyer, _) = app.signed_in("clicker@example.com", "buyer").await;
    let opened = checkout(&app, &buyer, id, 2).await;
    let body = place_body(&opened);
    let replies = join_all((0..50).map(|_| app.post("/api/v1/orders", Some(&buyer), &body))).await;
    assert!(replies.iter().all(|r| r.status == 201 || r.status == 200), "{:?}", replies.iter().map(|r| &r.text).collect::<Vec<_>>());
    assert_eq!(replies.iter().filter(|r| r.status == 201).count(), 1);
    let ids: HashSet<_> = replies.iter().map(|r| r.body["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, HashSet::from([opened["order_id"].as_str().unwrap().to_owned()]));
    let (s, _) = stock(&app, id).await;
    assert_eq!((s.available, s.reserved), (3, 2), "stock taken once");
    assert_eq!(app.get("/api/v1/orders", Some(&buyer)).await.body["items"].as_array().unwrap().len(), 1);
}

async fn bad_checkouts_and_other_peoples_orders_are_refused(app: TestApp) {
    let id = product(&app, 5, "on_order").await;
    let other_seller_product = product(&app, 7, "reserve").await;
    let (buyer, _) = app.signed_in("b1@example.com", "buyer").await;
    let (stranger, _) = app.signed_in("b2@example.com", "buyer").await;

    for lines in [json!([]), json!([{"product_id": id, "quantity": 0}]), json!([{"product_id": 999999, "quantity": 1}]),
                  json!([{"product_id": id, "quantity": 1}, {"product_id": id, "quantity": 2}]),
                  json!([{"product_id": id, "quantity": 1}, {"product_id": other_seller_product, "quantity": 1}]),
                  json!([{"product_id": id, "quantity": "two"}])] {
        let reply = app.post("/api/v1/checkout", Some(&buyer), &json!({"lines": lines})).await;
        assert_eq!(reply.status, 422, "{lines} → {}", reply.text);
    }
    app.post("/api/v1/checkout", None, &json!({"lines": [{"product_id": id, "quantity": 1}]})).await.assert_problem(401, "unauthenticated");

    let opened = checkout(&app, &buyer, id, 1).await;
    let order_id = opened["order_id"].as_str().unwrap();
    // No lines at all: refused before anything, even for an order already placed
    // (a replay must not accept a body a first submit would refuse).
    let mut no_lines = place_body(&opened);
    no_lines["lines"] = json!([]);
    app.post("/api/v1/orders", Some(&buyer), &no_lines).await.assert_problem(422, "validation_failed");
    // Someone else's token or order: refused, and nothing taken.
    app.post("/api/v1/orders", Some(&stranger), &place_body(&opened)).await.assert_problem(409, "invalid_checkout_token");
    let mut wrong_token = place_body(&opened);
    wrong_token["checkout_token"] = json!("0".repeat(64));
    app.post("/api/v1/orders", Some(&buyer), &wrong_token).await.assert_problem(409, "invalid_checkout_token");
    let mut other_lines = place_body(&opened);
    other_lines["lines"] = json!([{"product_id": id, "quantity": 2}]);
    app.post("/api/v1/orders", Some(&buyer), &other_lines).await.assert_problem(409, "invalid_checkout_token");
    let mut bad_id = place_body(&opened);
    bad_id["order_id"] = json!(12345);
    assert_eq!(app.post("/api/v1/orders", Some(&buyer), &bad_id).await.status, 422);
    let mut no_city = place_body(&opened);
    no_city["shipping_address"]["city"] = json!("  ");
    let reply = app.post("/api/v1/orders", Some(&buyer), &no_city).await;
    assert_eq!((reply.status.as_u16(), reply.body["field"].as_str()), (422, Some("shipping_address.city")), "{}", reply.text);
    assert_eq!(stock(&app, id).await.0.available, 5);

    let placed = app.post("/api/v1/orders", Some(&buyer), &place_body(&opened)).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    app.get(&format!("/api/v1/orders/{order_id}"), Some(&stranger)).await.assert_problem(404, "not_found");
    app.post(&format!("/api/v1/orders/{order_id}/cancel"), Some(&stranger), &json!({})).await.assert_problem(404, "not_found");
    for path in ["/api/v1/orders/abc", "/api/v1/orders/1", "/api/v1/orders/99999999999999999999"] {
        app.get(path, Some(&buyer)).await.assert_problem(404, "not_found");
    }
    // Too much stock: 409, and nothing taken.
    let greedy = checkout(&app, &buyer, id, 5).await;
    app.post("/api/v1/orders", Some(&buyer), &place_body(&greedy)).await.assert_problem(409, "insufficient_stock");
    assert_eq!(stock(&app, id).await.0.available, 4);
}
