//! Hot and cold orders (DESIGN.md, failure mode 8): finished orders move to the
//! archive while the shop keeps selling; each order is in exactly one place with
//! the content it had; buyers and sellers still find it; nothing writes to it.

use crate::helpers::TestApp;
use serde_json::{Value, json};
use shop::accounts::User;
use shop::domain::{Money, ProductId, Quantity};
use shop::orders::{LineRequest, Order, OrderId, ShippingAddress, Waybill, WaybillInput};
use shop::services::accounts::SessionToken;
use shop::services::archive::{ArchivePolicy, Quiet};
use shop::services::orders::PlaceOrder;
use shop::{Shop, ShopError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

crate::on_both_backends!(
    while_orders_move_through_every_state_archive_passes_keep_each_in_exactly_one_place_unchanged,
    archived_orders_are_found_listed_in_history_and_refuse_every_write,
    nothing_moves_inside_the_hot_window,
);

/// Everything final moves, in small batches, so passes interleave with writes.
const EAGER: ArchivePolicy = ArchivePolicy { after_ms: 0, batch: 7 };

async fn user_of(app: &TestApp, token: &str) -> User {
    app.shop.accounts.user_for_token(&SessionToken::parse(token).unwrap()).await.unwrap().unwrap()
}

fn address() -> ShippingAddress {
    ShippingAddress { name: "Ann".into(), line1: "1 Main St".into(), line2: String::new(), city: "Springfield".into(), postal_code: "12345".into(), country: "US".into() }
}

async fn place(shop: &Shop, buyer: &User, product: ProductId, quantity: i64) -> Order {
    let lines = vec![LineRequest { product_id: product, quantity: Quantity::parse("quantity", quantity).unwrap() }];
    let checkout = shop.checkouts.open(buyer, lines).await.unwrap();
    let request = PlaceOrder { order_id: checkout.order_id, checkout_token: shop::services::checkout::checkout_token(&checkout.checkout_token).unwrap(), lines: None, shipping_address: address(), expected_total_cents: None };
    shop.orders.place(buyer, request).await.unwrap().order
}

fn waybill(tracking: &str) -> WaybillInput {
    WaybillInput::parse("DHL", tracking).unwrap()
}

/// Runs the relay and the job queue until the seller index has every change.
async fn deliver_to_seller_index(shop: &Shop) {
    for _ in 0..200 {
        shop.seller_index.relay(500).await.unwrap();
        shop.jobs.run_due(shop::clock::now_ms(), 500).await.unwrap();
        if shop.seller_index.lag(shop::clock::now_ms()).await.unwrap().pending_events == 0 {
            return;
        }
    }
    panic!("the seller index never caught up");
}

/// Where an order is: (rows on its shard, rows in the archive, archive rows still settling).
async fn places_of(shop: &Shop, id: OrderId) -> (i64, i64, i64) {
    let hot: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE id = $1").bind(id.get()).fetch_one(shop.orders.shards().of_order(id).pool()).await.unwrap();
    let row: (i64, i64) = sqlx::query_as("SELECT COUNT(*), COUNT(CASE WHEN settling = 1 THEN 1 END) FROM orders WHERE id = $1").bind(id.get()).fetch_one(shop.databases.archive.pool()).await.unwrap();
    (hot, row.0, row.1)
}

/// What an order should hold at the end: its status, and its waybill history as
/// accepted (the last entry is the current waybill).
#[derive(Debug, Default, Clone)]
struct Expected {
    placed: Option<Order>,
    status: &'static str,
    waybills: Vec<Waybill>,
}

/// 8 buyers place 40 orders each; every order then takes one of five paths (left
/// unpaid; cancelled unpaid; paid then refunded; shipped and completed; completed
/// and then its waybill corrected, racing the archive), while archive passes with
/// a zero hot window run back to back. Afterwards every order is in exactly one
/// place, final ones in the archive, each with exactly the lines, address, status,
/// waybill and waybill history it was given, and the seller index agrees.
async fn while_orders_move_through_every_state_archive_passes_keep_each_in_exactly_one_place_unchanged(app: TestApp) {
    let (seller_token, _) = app.signed_in("archive-seller@example.com", "seller").await;
    let seller = user_of(&app, &seller_token).await;
    let product = app.post("/api/v1/seller/products", Some(&seller_token), &json!({"title": "Kettle", "price_cents": 700, "stock": 1_000_000, "inventory_mode": "reserve"})).await.body["id"].as_i64().unwrap();
    let product = ProductId::from_stored(product);
    let mut buyers = Vec::new();
    for b in 0..8 {
        let (token, _) = app.signed_in(&format!("archive-buyer-{b}@example.com"), "buyer").await;
        let user = user_of(&app, &token).await;
        app.shop.ledger.top_up(&user, Money::parse_top_up("amount", 1_000_000).unwrap(), "seed").await.unwrap();
        buyers.push(user);
    }

    let writing = Arc::new(AtomicBool::new(true));
    let archiver = tokio::spawn({
        let (shop, writing) = (app.shop.clone(), writing.clone());
        async move {
            let mut passes = 0u32;
            let mut moved = 0u64;
            while writing.load(Ordering::Relaxed) {
                moved += shop.archive.pass(shop::clock::now_ms(), EAGER, &mut Quiet).await.expect("an archive pass").moved();
                passes += 1;
            }
            (passes, moved)
        }
    });
    let mut work = tokio::task::JoinSet::new();
    for (b, buyer) in buyers.into_iter().enumerate() {
        let (shop, seller) = (app.shop.clone(), seller.clone());
        work.spawn(async move {
            let mut expected = Vec::new();
            for i in 0..40 {
                let order = place(&shop, &buyer, product, 1 + (i % 3) as i64).await;
                let id = order.id;
                let mut want = Expected { placed: Some(order), status: "pending_payment", waybills: Vec::new() };
                match (b + i) % 5 {
                    0 => {}
                    1 => {
                        shop.payments.cancel(&buyer, id).await.unwrap();
                        want.status = "cancelled";
                    }
                    2 => {
                        shop.payments.pay(&buyer, id).await.unwrap();
                        shop.payments.cancel(&buyer, id).await.unwrap();
                        want.status = "cancelled";
                    }
                    plan => {
                        shop.payments.pay(&buyer, id).await.unwrap();
                        want.waybills.push(shop.shipping.set_waybill(&seller, id, 0, waybill(&format!("T-{id}-1"))).await.unwrap());
                        shop.payments.confirm_receipt(&buyer, id).await.unwrap();
                        want.status = "completed";
                        if plan == 4 {
                            // Completed orders are eligible at once: this races the archive.
                            match shop.shipping.set_waybill(&seller, id, 1, waybill(&format!("T-{id}-2"))).await {
                                Ok(corrected) => want.waybills.push(corrected),
                                Err(ShopError::Archived) => {}
                                Err(other) => panic!("correcting the waybill of {id}: {other}"),
                            }
                        }
                    }
                }
                expected.push(want);
            }
            expected
        });
    }
    let mut expected: Vec<Expected> = Vec::new();
    while let Some(done) = work.join_next().await {
        expected.extend(done.unwrap());
    }
    writing.store(false, Ordering::Relaxed);
    let (passes, _) = archiver.await.unwrap();
    assert!(passes >= 2, "only {passes} archive passes ran beside the writes");
    tokio::time::sleep(Duration::from_millis(5)).await;
    app.shop.archive.pass(shop::clock::now_ms(), EAGER, &mut Quiet).await.unwrap();

    let archived_total = expected.iter().filter(|e| e.status != "pending_payment").count();
    assert!(archived_total > 100, "too few final orders to mean anything: {archived_total}");
    for want in &expected {
        let placed = want.placed.as_ref().unwrap();
        let id = placed.id;
        let (hot, cold, settling) = places_of(&app.shop, id).await;
        let final_state = want.status != "pending_payment";
        assert_eq!((hot, cold, settling), if final_state { (0, 1, 0) } else { (1, 0, 0) }, "order {id} ({}) is not in exactly one place", want.status);
        let buyer = User { id: placed.buyer_id, ..seller.clone() };
        let found = app.shop.orders.get(&buyer, id).await.unwrap();
        assert_eq!(found.archived, final_state, "{id}");
        assert_eq!((found.status.as_str(), &found.lines, found.total_cents, &found.shipping_address, &found.created_at), (want.status, &placed.lines, placed.total_cents, &placed.shipping_address, &placed.created_at), "{id}");
        assert_eq!(found.shipping, want.waybills.last().cloned(), "{id}: the current waybill");
        let seller_view = app.shop.shipping.seller_order(&seller, id).await.unwrap();
        let history = app.shop.shipping.history(&seller, id).await.unwrap();
        let accepted: Vec<_> = want.waybills.iter().map(|w| (w.version, w.tracking_number.clone())).collect();
        assert_eq!(history.iter().map(|h| (h.version, h.tracking_number.clone())).collect::<Vec<_>>(), accepted, "{id}: the waybill history");
        assert_eq!(seller_view.order, found);
    }

    // The seller index: every order exactly once, archived ones marked, nothing the
    // rebuild would change (it consults the archive, so it reports nothing extra).
    deliver_to_seller_index(&app.shop).await;
    let report = app.shop.seller_index.rebuild(false).await.unwrap();
    assert_eq!(report.differences, vec![], "the seller index differs from the shards and the archive");
    assert_eq!((report.orders_checked, report.index_rows_checked), (expected.len() as u64, expected.len() as u64));
    let mut listed: HashMap<String, bool> = HashMap::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/api/v1/seller/orders?limit=100&cursor={cursor}"), Some(&seller_token)).await.body;
        for order in page["items"].as_array().unwrap() {
            assert!(listed.insert(order["id"].as_str().unwrap().to_owned(), order["archived"].as_bool().unwrap()).is_none(), "listed twice: {order}");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(listed.len(), expected.len());
    assert_eq!(listed.values().filter(|archived| **archived).count(), archived_total);
}

/// The API contract around an archived order: found by id with `"archived":
/// true`, gone from "my orders", listed (and paged) under history, every write a
/// 409 `archived`, and still another buyer's 404.
async fn archived_orders_are_found_listed_in_history_and_refuse_every_write(app: TestApp) {
    let (seller, _) = app.signed_in("history-seller@example.com", "seller").await;
    let product = app.create_product(&seller, "Teapot", 900, 100).await["id"].as_i64().unwrap();
    let (buyer, _) = app.signed_in("history-buyer@example.com", "buyer").await;
    let (other, _) = app.signed_in("history-other@example.com", "buyer").await;
    let top_up = app.client.post(app.url("/api/v1/wallet/top-up")).bearer_auth(&buyer).header("idempotency-key", "history").json(&json!({"amount_cents": 100_000})).send().await.unwrap();
    assert!(top_up.status().is_success());
    let order = |n: i64| {
        let (app, buyer) = (&app, buyer.clone());
        async move {
            let checkout = app.post("/api/v1/checkout", Some(&buyer), &json!({"lines": [{"product_id": product, "quantity": n}]})).await.body;
            let body = json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"], "shipping_address": {"name": "Bo", "line1": "2 Elm", "city": "Oslo", "postal_code": "0150", "country": "NO"}});
            app.post("/api/v1/orders", Some(&buyer), &body).await.body["id"].as_str().unwrap().to_owned()
        }
    };
    let completed = order(1).await;
    app.post(&format!("/api/v1/orders/{completed}/pay"), Some(&buyer), &Value::Null).await;
    let shipped = app.send_json(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{completed}/shipping"), Some(&seller), &json!({"carrier": "DHL", "tracking_number": "JD1", "expected_version": 0})).await;
    assert_eq!(shipped.status, 200, "{}", shipped.text);
    app.post(&format!("/api/v1/orders/{completed}/confirm-receipt"), Some(&buyer), &Value::Null).await;
    let cancelled = order(2).await;
    app.post(&format!("/api/v1/orders/{cancelled}/cancel"), Some(&buyer), &Value::Null).await;
    let unpaid = order(3).await;
    let before = app.get(&format!("/api/v1/orders/{completed}"), Some(&buyer)).await.body;
    assert_eq!(before["archived"], false);

    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = app.shop.archive.pass(shop::clock::now_ms(), ArchivePolicy { after_ms: 0, batch: 500 }, &mut Quiet).await.unwrap();
    assert_eq!(report.moved(), 2, "{report:?}");

    let after = app.get(&format!("/api/v1/orders/{completed}"), Some(&buyer)).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body["archived"], true);
    let strip = |mut order: Value| {
        order.as_object_mut().unwrap().remove("archived");
        order
    };
    assert_eq!(strip(after.body.clone()), strip(before), "the archived order reads back as it was");
    let recent: Vec<String> = app.get("/api/v1/orders", Some(&buyer)).await.body["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(recent, vec![unpaid.clone()]);
    let history = app.get("/api/v1/orders/history", Some(&buyer)).await.body;
    let ids: Vec<&str> = history["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![cancelled.as_str(), completed.as_str()], "newest first");
    assert!(history["items"].as_array().unwrap().iter().all(|o| o["archived"] == true));
    let first = app.get("/api/v1/orders/history?limit=1", Some(&buyer)).await.body;
    assert_eq!(first["items"][0]["id"], cancelled.as_str());
    let next = first["next_cursor"].as_str().expect("a second page");
    let second = app.get(&format!("/api/v1/orders/history?limit=1&cursor={next}"), Some(&buyer)).await.body;
    assert_eq!((second["items"][0]["id"].as_str(), second["next_cursor"].is_null()), (Some(completed.as_str()), true));

    // Writes: refused with 409 `archived`, nothing changed.
    for action in ["pay", "cancel", "confirm-receipt"] {
        for id in [&completed, &cancelled] {
            app.post(&format!("/api/v1/orders/{id}/{action}"), Some(&buyer), &Value::Null).await.assert_problem(409, "archived");
        }
    }
    let correction = json!({"carrier": "UPS", "tracking_number": "1Z", "expected_version": 1});
    app.send_json(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{completed}/shipping"), Some(&seller), &correction).await.assert_problem(409, "archived");
    assert_eq!(strip(app.get(&format!("/api/v1/orders/{completed}"), Some(&buyer)).await.body), strip(after.body.clone()));

    // The seller still sees it, with its waybill history, marked archived.
    let seller_view = app.get(&format!("/api/v1/seller/orders/{completed}"), Some(&seller)).await;
    assert_eq!((seller_view.status.as_u16(), &seller_view.body["archived"]), (200, &json!(true)));
    let waybills = app.get(&format!("/api/v1/seller/orders/{completed}/shipping/history"), Some(&seller)).await.body;
    assert_eq!(waybills["items"].as_array().unwrap().len(), 1, "{waybills}");
    deliver_to_seller_index(&app.shop).await;
    let listed: BTreeMap<String, Value> =
        app.get("/api/v1/seller/orders", Some(&seller)).await.body["items"].as_array().unwrap().iter().map(|o| (o["id"].as_str().unwrap().to_owned(), o["archived"].clone())).collect();
    assert_eq!(listed, BTreeMap::from([(completed.clone(), json!(true)), (cancelled.clone(), json!(true)), (unpaid.clone(), json!(false))]));

    // Bad input and other people.
    for garbage in ["abc", "-1", "99999999999999999999999", "1.5", "%27%20OR%201=1"] {
        app.get(&format!("/api/v1/orders/history?cursor={garbage}"), Some(&buyer)).await.assert_problem(422, "validation_failed");
    }
    app.get(&format!("/api/v1/orders/{completed}"), Some(&other)).await.assert_problem(404, "not_found");
    app.post(&format!("/api/v1/orders/{completed}/cancel"), Some(&other), &Value::Null).await.assert_problem(404, "not_found");
    assert_eq!(app.get("/api/v1/orders/history", Some(&other)).await.body["items"], json!([]));
    app.get("/api/v1/orders/history", None).await.assert_problem(401, "unauthenticated");
    let metrics = app.get("/metrics", None).await.text;
    assert!(metrics.lines().any(|l| l.starts_with("ninefold_archived_orders_total") && !l.ends_with(" 0")), "{metrics}");
    assert!(metrics.contains("ninefold_archive_eligible_orders{shard=\"shard_0\"}"), "per-shard gauge");
    assert!(metrics.contains("ninefold_archive_batch_seconds"), "batch histogram");
}

/// With the default 90-day window, a pass finds nothing to move and moves nothing.
async fn nothing_moves_inside_the_hot_window(app: TestApp) {
    let (seller, _) = app.signed_in("window-seller@example.com", "seller").await;
    let product = app.create_product(&seller, "Cup", 300, 10).await["id"].as_i64().unwrap();
    let (token, _) = app.signed_in("window-buyer@example.com", "buyer").await;
    let buyer = user_of(&app, &token).await;
    let order = place(&app.shop, &buyer, ProductId::from_stored(product), 1).await;
    app.shop.payments.cancel(&buyer, order.id).await.unwrap();
    let now = shop::clock::now_ms();
    let eligible = app.shop.archive.eligible(now - ArchivePolicy::DEFAULT_AFTER_MS).await.unwrap();
    assert!(eligible.iter().all(|(_, n)| *n == 0), "{eligible:?}");
    let report = app.shop.archive.pass(now, ArchivePolicy::default(), &mut Quiet).await.unwrap();
    assert_eq!(report.moved(), 0);
    assert_eq!(places_of(&app.shop, order.id).await, (1, 0, 0));
    // 91 days later it moves.
    let later = now + 91 * 24 * 60 * 60 * 1000;
    assert_eq!(app.shop.archive.eligible(later - ArchivePolicy::DEFAULT_AFTER_MS).await.unwrap().iter().map(|(_, n)| n).sum::<u64>(), 1);
    assert_eq!(app.shop.archive.pass(later, ArchivePolicy::default(), &mut Quiet).await.unwrap().moved(), 1);
    assert_eq!(places_of(&app.shop, order.id).await, (0, 1, 0));
}
