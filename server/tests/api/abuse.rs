//! Cheap abuse, tried as an attacker would (issue: abuse and faults): hoarding stock
//! through unpaid orders, huge lines, a changed price, escrow held forever, free
//! money, a worker stalled by one bad row, tables that only grow.

use crate::helpers::{Reply, TestApp};
use futures::future::join_all;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

crate::on_both_backends!(
    a_line_is_capped_at_99_units_at_every_door,
    a_changed_price_refuses_the_order_with_the_new_total_and_writes_nothing,
    a_price_edit_is_seen_at_once_while_reads_of_the_product_are_shared,
    a_worker_pass_survives_a_bad_row_and_finishes_the_good_ones,
    signing_in_in_a_loop_keeps_twenty_sessions_and_the_cleanup_trims_spent_rows,
    a_full_hashing_queue_turns_sign_ins_away_with_503_never_500,
);

crate::with_settings_on_both_backends!(unpaid_orders_in_every_mode_lapse_at_their_deadline_and_give_the_stock_back, |s| {
    s.hold_ttl_secs = 1;
    s.schedules.recovery_ms = 100;
}, true);
crate::with_settings_on_both_backends!(a_buyer_holds_at_most_the_configured_unpaid_orders_even_when_racing, |s| s.max_unpaid_orders = 3, true);
crate::with_settings_on_both_backends!(a_shipped_order_never_confirmed_completes_and_pays_the_seller, |s| {
    s.auto_complete_secs = 1;
    s.schedules.auto_complete_ms = 100;
}, true);
crate::with_settings_on_both_backends!(top_ups_are_capped_per_day_even_when_racing, |s| s.top_ups = shop::services::ledger::TopUpPolicy::DEMO, true);
crate::with_settings_on_both_backends!(top_ups_can_be_switched_off, |s| s.top_ups = shop::services::ledger::TopUpPolicy::OFF, true);
crate::with_settings_on_both_backends!(floods_are_rate_limited_per_client_address, |s| s.rate_limits = Default::default(), true);
crate::with_settings_on_both_backends!(forwarded_addresses_count_only_behind_a_trusted_proxy, |s| {
    s.rate_limits = Default::default();
    s.trust_forwarded_for = true;
}, true);
crate::with_settings_on_both_backends!(a_request_past_its_deadline_gets_503_with_retry_after, |s| s.request_timeout_ms = 1, true);

fn address() -> Value {
    json!({"name": "Mallory", "line1": "1 Road", "city": "Town", "postal_code": "1000", "country": "NL"})
}

async fn product(app: &TestApp, seller: &str, stock: i64, mode: &str) -> i64 {
    let reply = app.post("/api/v1/seller/products", Some(seller), &json!({"title": format!("Item {mode}"), "price_cents": 500, "stock": stock, "inventory_mode": mode})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["id"].as_i64().unwrap()
}

async fn open_checkout(app: &TestApp, buyer: &str, product: i64, quantity: i64) -> Value {
    let reply = app.post("/api/v1/checkout", Some(buyer), &json!({"lines": [{"product_id": product, "quantity": quantity}]})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body
}

fn place_body(checkout: &Value) -> Value {
    json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"], "shipping_address": address()})
}

async fn place(app: &TestApp, buyer: &str, checkout: &Value) -> Reply {
    app.post("/api/v1/orders", Some(buyer), &place_body(checkout)).await
}

async fn stock(app: &TestApp, product: i64) -> Value {
    app.get(&format!("/api/v1/products/{product}"), None).await.body["stock"].clone()
}

async fn top_up(app: &TestApp, token: &str, cents: i64, key: &str) -> Reply {
    let request = app.client.post(app.url("/api/v1/wallet/top-up")).bearer_auth(token).header("idempotency-key", key).json(&json!({"amount_cents": cents}));
    Reply::read(request.send().await.unwrap()).await
}

/// Polls `check` until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The attack: check out a product's whole stock and never pay. With the real
/// expiry worker and a 1-second payment window, every unpaid order — stock taken
/// at order time, reserved, or only checked — is cancelled and the stock is back.
async fn unpaid_orders_in_every_mode_lapse_at_their_deadline_and_give_the_stock_back(app: TestApp) {
    let (seller, _) = app.signed_in("hoard-seller@example.com", "seller").await;
    let (hoarder, _) = app.signed_in("hoarder@example.com", "buyer").await;
    let mut placed = Vec::new();
    for mode in ["on_order", "reserve", "on_payment"] {
        let id = product(&app, &seller, 40, mode).await;
        let order = place(&app, &hoarder, &open_checkout(&app, &hoarder, id, 40).await).await;
        assert_eq!(order.status, 201, "{}", order.text);
        assert!(order.body["hold_expires_at"].is_string(), "every unpaid order has a payment deadline: {}", order.text);
        placed.push((id, mode, order.body["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(stock(&app, placed[0].0).await["available"], 0, "on order: taken");
    assert_eq!(stock(&app, placed[1].0).await["reserved"], 40, "reserve: held");
    for (id, mode, order) in &placed {
        let lapsed = eventually(Duration::from_secs(15), || async { app.get(&format!("/api/v1/orders/{order}"), Some(&hoarder)).await.body["status"] == "cancelled" }).await;
        assert!(lapsed, "the unpaid {mode} order was never cancelled");
        assert_eq!(stock(&app, *id).await, json!({"available": 40, "reserved": 0, "sold": 0}), "{mode}: every unit is back");
    }
    // Cancelled orders no longer count against the cap on unpaid orders.
    for _ in 0..5 {
        assert_eq!(place(&app, &hoarder, &open_checkout(&app, &hoarder, placed[0].0, 1).await).await.status, 201);
    }
}

async fn a_line_is_capped_at_99_units_at_every_door(app: TestApp) {
    let (seller, _) = app.signed_in("cap-seller@example.com", "seller").await;
    let id = product(&app, &seller, 2_000_000, "on_order").await;
    let (buyer, _) = app.signed_in("cap-buyer@example.com", "buyer").await;
    for quantity in [1_000_000, 100] {
        let refused = app.post("/api/v1/checkout", Some(&buyer), &json!({"lines": [{"product_id": id, "quantity": quantity}]})).await;
        assert_eq!(refused.status, 422, "{quantity}: {}", refused.text);
    }
    assert_eq!(place(&app, &buyer, &open_checkout(&app, &buyer, id, 99).await).await.status, 201);
    assert_eq!(stock(&app, id).await["available"], 2_000_000 - 99);
}

/// The buyer's concurrent submits race for the last slots: the cap holds exactly,
/// and a refused order takes no stock.
async fn a_buyer_holds_at_most_the_configured_unpaid_orders_even_when_racing(app: TestApp) {
    let (seller, _) = app.signed_in("slots-seller@example.com", "seller").await;
    let id = product(&app, &seller, 100, "on_order").await;
    let (buyer, _) = app.signed_in("slots-buyer@example.com", "buyer").await;
    let mut checkouts = Vec::new();
    for _ in 0..12 {
        checkouts.push(open_checkout(&app, &buyer, id, 2).await);
    }
    let replies = join_all(checkouts.iter().map(|c| place(&app, &buyer, c))).await;
    let placed = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(placed, 3, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    for refused in replies.iter().filter(|r| r.status != 201) {
        refused.assert_problem(409, "too_many_unpaid_orders");
    }
    assert_eq!(stock(&app, id).await, json!({"available": 94, "reserved": 0, "sold": 6}), "refused orders took nothing");
    // Paying one frees a slot.
    let first = replies.iter().find(|r| r.status == 201).unwrap().body["id"].as_str().unwrap().to_owned();
    assert_eq!(top_up(&app, &buyer, 5000, "slots").await.status, 200);
    assert_eq!(app.post(&format!("/api/v1/orders/{first}/pay"), Some(&buyer), &json!({})).await.status, 200);
    // A refused submit consumed nothing: its checkout places the order now.
    let (again, _) = checkouts.iter().zip(&replies).find(|(_, r)| r.status != 201).unwrap();
    assert_eq!(place(&app, &buyer, again).await.status, 201, "the refused checkout is still usable");
    place(&app, &buyer, &open_checkout(&app, &buyer, id, 1).await).await.assert_problem(409, "too_many_unpaid_orders");
}

async fn a_changed_price_refuses_the_order_with_the_new_total_and_writes_nothing(app: TestApp) {
    let (seller, _) = app.signed_in("price-seller@example.com", "seller").await;
    let id = product(&app, &seller, 10, "reserve").await;
    let (buyer, _) = app.signed_in("price-buyer@example.com", "buyer").await;
    let checkout = open_checkout(&app, &buyer, id, 2).await;
    assert_eq!(checkout["total_cents"], 1000);
    let edited = app.patch(&format!("/api/v1/seller/products/{id}"), Some(&seller), &json!({"expected_version": 1, "price_cents": 900})).await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let mut body = place_body(&checkout);
    body["expected_total_cents"] = json!(1000);
    let refused = app.post("/api/v1/orders", Some(&buyer), &body).await;
    refused.assert_problem(409, "price_changed");
    assert_eq!(refused.body["total_cents"], 1800);
    assert_eq!(stock(&app, id).await, json!({"available": 10, "reserved": 0, "sold": 0}));
    assert_eq!(app.get(&format!("/api/v1/orders/{}", checkout["order_id"].as_str().unwrap()), Some(&buyer)).await.status, 404);
    body["expected_total_cents"] = json!(1800);
    let placed = app.post("/api/v1/orders", Some(&buyer), &body).await;
    assert_eq!((placed.status.as_u16(), placed.body["total_cents"].as_i64()), (201, Some(1800)), "{}", placed.text);
}

/// Pricing reads of one product share a statement when they meet (issue 14), yet
/// none may answer with a price older than its request: while checkouts of the
/// product keep the reads batched, each edit is seen by the checkout and the
/// placing that follow it.
async fn a_price_edit_is_seen_at_once_while_reads_of_the_product_are_shared(app: TestApp) {
    let (seller, _) = app.signed_in("fresh-price-seller@example.com", "seller").await;
    let id = product(&app, &seller, 1000, "reserve").await;
    let (crowd, _) = app.signed_in("fresh-price-crowd@example.com", "buyer").await;
    let (buyer, _) = app.signed_in("fresh-price-buyer@example.com", "buyer").await;
    let (batches_before, _) = app.shop.catalog.shared_pricing_batches();
    let done = std::sync::atomic::AtomicBool::new(false);
    let crowd_checkouts = join_all((0..16).map(|_| async {
        let mut opened = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            open_checkout(&app, &crowd, id, 1).await;
            opened += 1;
        }
        opened
    }));
    let edits = async {
        for round in 1..=6i64 {
            let price = 500 + round;
            let edited = app.patch(&format!("/api/v1/seller/products/{id}"), Some(&seller), &json!({"expected_version": round, "price_cents": price})).await;
            assert_eq!(edited.status, 200, "{}", edited.text);
            let checkout = open_checkout(&app, &buyer, id, 2).await;
            assert_eq!(checkout["total_cents"], 2 * price, "round {round}: a checkout after the edit priced it as before");
            let mut body = place_body(&checkout);
            body["expected_total_cents"] = json!(2 * price);
            let placed = app.post("/api/v1/orders", Some(&buyer), &body).await;
            assert_eq!((placed.status.as_u16(), placed.body["total_cents"].as_i64()), (201, Some(2 * price)), "round {round}: {}", placed.text);
            let order = placed.body["id"].as_str().unwrap();
            assert_eq!(app.post(&format!("/api/v1/orders/{order}/cancel"), Some(&buyer), &json!({})).await.status, 200);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let (opened, ()) = futures::join!(crowd_checkouts, edits);
    let (batches_after, _) = app.shop.catalog.shared_pricing_batches();
    assert!(batches_after > batches_before, "the crowd's {} checkouts never shared a pricing read", opened.iter().sum::<i32>());
    assert_eq!(stock(&app, id).await, json!({"available": 1000, "reserved": 0, "sold": 0}), "every cancelled order gave its units back");
}

async fn a_shipped_order_never_confirmed_completes_and_pays_the_seller(app: TestApp) {
    let (seller, _) = app.signed_in("escrow-seller@example.com", "seller").await;
    let id = product(&app, &seller, 5, "reserve").await;
    let (buyer, _) = app.signed_in("escrow-buyer@example.com", "buyer").await;
    assert_eq!(top_up(&app, &buyer, 5000, "escrow").await.status, 200);
    let order = place(&app, &buyer, &open_checkout(&app, &buyer, id, 2).await).await.body["id"].as_str().unwrap().to_owned();
    assert_eq!(app.post(&format!("/api/v1/orders/{order}/pay"), Some(&buyer), &json!({})).await.status, 200);
    let waybill = json!({"carrier": "DHL", "tracking_number": "1", "expected_version": 0});
    assert_eq!(app.send_json(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{order}/shipping"), Some(&seller), &waybill).await.status, 200);
    let completed = eventually(Duration::from_secs(15), || async { app.get(&format!("/api/v1/orders/{order}"), Some(&buyer)).await.body["status"] == "completed" }).await;
    assert!(completed, "the shipped order never completed by itself");
    // The shard says "completed" a moment before the release step moves the money.
    let released = eventually(Duration::from_secs(15), || async { app.get("/api/v1/wallet", Some(&seller)).await.body["balance_cents"] == 1000 }).await;
    assert!(released, "escrow was never released to the seller");
    let report = app.shop.ledger.reconcile().await.unwrap();
    assert!(report.mismatches.is_empty() && report.unbalanced_transfers.is_empty());
}

/// Demo money is capped per user and day: racing top-ups cannot pass it together,
/// a refused one deposits nothing, and a replayed key does not count twice.
async fn top_ups_are_capped_per_day_even_when_racing(app: TestApp) {
    let (buyer, _) = app.signed_in("mint@example.com", "buyer").await;
    let replies = join_all((0..20).map(|i| {
        let buyer = buyer.clone();
        let app = &app;
        async move { top_up(app, &buyer, 100_000, &format!("race-{i}")).await }
    }))
    .await;
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 10);
    for refused in replies.iter().filter(|r| r.status != 200) {
        refused.assert_problem(429, "top_up_limit");
        assert!(refused.headers.get("retry-after").is_some());
        assert!(refused.body["current"]["resets_at"].is_string(), "{}", refused.text);
    }
    let granted = replies.iter().position(|r| r.status == 200).unwrap();
    assert_eq!(top_up(&app, &buyer, 100_000, &format!("race-{granted}")).await.status, 200, "a replay is answered, not refused");
    assert_eq!(app.get("/api/v1/wallet", Some(&buyer)).await.body["balance_cents"], 1_000_000);
}

async fn top_ups_can_be_switched_off(app: TestApp) {
    let (buyer, _) = app.signed_in("nomint@example.com", "buyer").await;
    top_up(&app, &buyer, 100, "off").await.assert_problem(403, "top_up_disabled");
    assert_eq!(app.get("/api/v1/wallet", Some(&buyer)).await.body["balance_cents"], 0);
}

/// One unpaid order whose row cannot be read back (its address is garbage) is
/// past its deadline beside a good one: the pass cancels the good one, counts the
/// bad one as a failure, and does not stop.
async fn a_worker_pass_survives_a_bad_row_and_finishes_the_good_ones(app: TestApp) {
    let (seller, _) = app.signed_in("bad-row-seller@example.com", "seller").await;
    let id = product(&app, &seller, 10, "on_order").await;
    let (buyer, user) = app.signed_in("bad-row-buyer@example.com", "buyer").await;
    let good = place(&app, &buyer, &open_checkout(&app, &buyer, id, 3).await).await.body["id"].as_str().unwrap().to_owned();
    let bad = place(&app, &buyer, &open_checkout(&app, &buyer, id, 2).await).await.body["id"].as_str().unwrap().to_owned();
    let buyer_id = shop::domain::UserId::parse("id", user["id"].as_i64().unwrap()).unwrap();
    let shard = app.shop.orders.shards().of_buyer(buyer_id).clone();
    sqlx::query("UPDATE orders SET shipping_address = 'not json' WHERE id = $1").bind(bad.parse::<i64>().unwrap()).execute(shard.pool()).await.unwrap();
    let pass = app.shop.stock.recover(shop::clock::now_ms() + 31 * 60 * 1000, 1).await;
    assert!(pass.acted == 1 && pass.failed >= 1, "{pass:?}");
    assert_eq!(app.get(&format!("/api/v1/orders/{good}"), Some(&buyer)).await.body["status"], "cancelled");
    assert_eq!(stock(&app, id).await["available"], 8, "the good order's 3 units are back; the bad one's 2 wait for a repair");
    assert!(app.get("/metrics", None).await.text.contains("ninefold_worker_failures_total{worker=\"hold-expiry\"}"));
}

async fn signing_in_in_a_loop_keeps_twenty_sessions_and_the_cleanup_trims_spent_rows(app: TestApp) {
    app.register("loop@example.com", "buyer").await;
    let first = app.login("loop@example.com").await;
    for _ in 0..24 {
        app.login("loop@example.com").await;
    }
    assert_eq!(app.count("sessions").await, 20);
    assert_eq!(app.get("/api/v1/me", Some(&first)).await.status, 401, "the oldest session was ended");

    let (seller, _) = app.signed_in("trim-seller@example.com", "seller").await;
    let id = product(&app, &seller, 10, "reserve").await;
    let (buyer, _) = app.signed_in("trim-buyer@example.com", "buyer").await;
    let spent = open_checkout(&app, &buyer, id, 1).await;
    assert_eq!(place(&app, &buyer, &spent).await.status, 201);
    let day = 24 * 60 * 60 * 1000;
    for shard in &app.shop.databases.shards {
        sqlx::query("UPDATE checkout_tokens SET expires_at_ms = expires_at_ms - $1").bind(2 * day).execute(shard.pool()).await.unwrap();
    }
    let main = app.shop.databases.main.pool();
    sqlx::query("INSERT INTO cart_merges (user_id, merge_id, applied_at_ms) VALUES (1, 'old', 0)").execute(main).await.unwrap();
    sqlx::query("INSERT INTO sign_in_throttle (key, failures, last_failure_ms, blocked_until_ms) VALUES ('old', 3, 0, 0)").execute(main).await.unwrap();
    app.shop.jobs.run_due(shop::clock::now_ms(), 100).await.unwrap();
    sqlx::query("UPDATE jobs SET finished_at_ms = 0").execute(main).await.unwrap();
    server::workers::clean_up(&app.shop).await;
    let mut tokens = 0;
    for shard in &app.shop.databases.shards {
        tokens += sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM checkout_tokens").fetch_one(shard.pool()).await.unwrap();
    }
    assert_eq!(tokens, 0);
    assert_eq!(app.count("cart_merges").await, 0);
    assert_eq!(app.count("sign_in_throttle").await, 0, "throttle rows nobody failed at for a day are forgotten");
    assert_eq!(app.count("jobs").await, 0, "done snapshot and index jobs are gone");
    assert_eq!(app.get(&format!("/api/v1/orders/{}", spent["order_id"].as_str().unwrap()), Some(&buyer)).await.status, 200, "the order stays");
}

fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from(address)).build().unwrap()
}

async fn post_from(app: &TestApp, client: &reqwest::Client, path: &str, body: Value, forwarded_for: Option<&str>) -> Reply {
    let mut request = client.post(app.url(path)).json(&body);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    Reply::read(request.send().await.unwrap()).await
}

/// Sign-in, registration and new guest carts from one address are limited after
/// their burst (429 `rate_limited`, Retry-After); another address is not affected,
/// and a cart write that names its cart opens none and is not limited.
async fn floods_are_rate_limited_per_client_address(app: TestApp) {
    let flood = client_from([127, 0, 0, 4]);
    let login = json!({"email": "nobody@example.com", "password": "guess guess guess"});
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(post_from(&app, &flood, "/api/v1/auth/login", login.clone(), None).await);
    }
    let limited: Vec<_> = statuses.iter().filter(|r| r.body["code"] == "rate_limited").collect();
    assert!(limited.len() >= 4, "{:?}", statuses.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(limited[0].headers.get("retry-after").is_some() && limited[0].status == 429);
    assert!(statuses.iter().all(|r| r.status.as_u16() < 500));
    let elsewhere = post_from(&app, &client_from([127, 0, 0, 5]), "/api/v1/auth/login", login, None).await;
    assert_ne!(elsewhere.body["code"], "rate_limited");

    let mut registrations = Vec::new();
    for i in 0..8 {
        let body = json!({"email": format!("flood{i}@example.com"), "password": "correct horse", "name": "F", "role": "buyer"});
        registrations.push(post_from(&app, &flood, "/api/v1/auth/register", body, None).await.status.as_u16());
    }
    assert!(registrations.contains(&429) && registrations.iter().filter(|s| **s == 201).count() >= 5, "{registrations:?}");

    let (seller, _) = app.signed_in("carts-seller@example.com", "seller").await;
    let id = product(&app, &seller, 10, "reserve").await;
    let mut opened = Vec::new();
    for _ in 0..25 {
        let reply = flood.put(app.url(&format!("/api/v1/cart/lines/{id}"))).json(&json!({"quantity": 1})).send().await.unwrap();
        opened.push(Reply::read(reply).await);
    }
    assert!(opened.iter().any(|r| r.body["code"] == "rate_limited"), "new guest carts are limited");
    let token = opened.iter().find(|r| r.status == 200).unwrap().body["cart_token"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        let reply = flood.put(app.url(&format!("/api/v1/cart/lines/{id}"))).header("x-cart-token", &token).json(&json!({"quantity": 2})).send().await.unwrap();
        assert_eq!(reply.status(), 200, "writing to one's own cart is not limited");
    }
}

/// `X-Forwarded-For` is anyone's to send: it names the client only when the
/// server is told it sits behind a proxy that sets it.
async fn forwarded_addresses_count_only_behind_a_trusted_proxy(app: TestApp) {
    let proxy = client_from([127, 0, 0, 6]);
    let login = json!({"email": "nobody@example.com", "password": "guess guess guess"});
    for _ in 0..12 {
        post_from(&app, &proxy, "/api/v1/auth/login", login.clone(), Some("198.51.100.7")).await;
    }
    let same_client = post_from(&app, &proxy, "/api/v1/auth/login", login.clone(), Some("198.51.100.7")).await;
    assert_eq!(same_client.body["code"], "rate_limited");
    let other_client = post_from(&app, &proxy, "/api/v1/auth/login", login, Some("10.1.2.3, 198.51.100.8")).await;
    assert_ne!(other_client.body["code"], "rate_limited", "the last forwarded address is the client");
}

async fn a_request_past_its_deadline_gets_503_with_retry_after(app: TestApp) {
    // Sign-in costs a password hash: far longer than the 1 ms deadline.
    let reply = app.post("/api/v1/auth/login", None, &json!({"email": "late@example.com", "password": "correct horse"})).await;
    reply.assert_problem(503, "request_timeout");
    assert!(reply.headers.get("retry-after").is_some());
    assert_eq!(reply.content_type(), "application/problem+json");
}

/// Hundreds of sign-ins at once (limits off, as from many addresses): a few hash,
/// a bounded number wait, the rest are turned away at once with 503 and
/// Retry-After; none fails with a 500.
async fn a_full_hashing_queue_turns_sign_ins_away_with_503_never_500(app: TestApp) {
    let replies = join_all((0..300).map(|i| {
        let app = &app;
        async move { app.post("/api/v1/auth/login", None, &json!({"email": format!("x{i}@example.com"), "password": "guess guess guess"})).await }
    }))
    .await;
    let overloaded: Vec<_> = replies.iter().filter(|r| r.status == 503).collect();
    assert!(!overloaded.is_empty(), "the queue never filled");
    assert!(overloaded.iter().all(|r| r.body["code"] == "overloaded" && r.headers.get("retry-after").is_some()));
    assert!(replies.iter().all(|r| r.status == 401 || r.status == 503), "{:?}", replies.iter().map(|r| r.status).collect::<std::collections::BTreeSet<_>>());
}
