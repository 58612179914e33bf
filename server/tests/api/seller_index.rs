//! The seller index (DESIGN.md, failure mode 9): fed from the shards' outboxes
//! by the relay, with the job queue for what it cannot apply, idempotent and version-ordered, rebuildable; and every
//! seller endpoint keeps to the caller's own orders and products.

use crate::helpers::{Backend, TestApp, spawn_app_with};
use serde_json::{Value, json};
use shop::accounts::User;
use shop::domain::{Money, ProductId, Quantity};
use shop::orders::{LineRequest, OrderId, OrderStatus, ShippingAddress, WaybillInput};
use shop::services::accounts::SessionToken;
use shop::services::orders::PlaceOrder;
use shop::services::jobs::{Jobs, NewJob};
use shop::services::seller_index::DifferenceKind;
use std::time::{Duration, Instant};

crate::on_both_backends!(
    duplicate_and_out_of_order_deliveries_never_move_the_index_backwards,
    the_rebuild_reports_and_repairs_every_kind_of_difference,
    every_seller_endpoint_answers_404_for_another_sellers_order_or_product,
    the_seller_order_list_pages_and_filters_from_the_index,
    an_index_missing_entirely_is_built_from_the_shards_once,
    concurrent_runners_deliver_a_burst_once_each_in_a_few_statements,
    the_relay_runs_a_burst_of_events_in_a_few_statements_and_queues_what_it_cannot,
    events_the_relay_fails_to_apply_are_queued_and_delivered_by_the_runner,
);

const ORDERS: usize = 2000;
const BUYERS: usize = 10;

async fn user_of(app: &TestApp, token: &str) -> User {
    app.shop.accounts.user_for_token(&SessionToken::parse(token).unwrap()).await.unwrap().unwrap()
}

fn address() -> ShippingAddress {
    ShippingAddress { name: "Ann".into(), line1: "1 Main St".into(), line2: String::new(), city: "Springfield".into(), postal_code: "12345".into(), country: "US".into() }
}

/// Opens a checkout and places it, through the services the API calls.
async fn place(shop: &shop::Shop, buyer: &User, product: ProductId) -> OrderId {
    let lines = vec![LineRequest { product_id: product, quantity: Quantity::parse("quantity", 1).unwrap() }];
    let checkout = shop.checkouts.open(buyer, lines).await.unwrap();
    let request = PlaceOrder { order_id: checkout.order_id, checkout_token: shop::services::checkout::checkout_token(&checkout.checkout_token).unwrap(), lines: None, shipping_address: address(), expected_total_cents: None };
    shop.orders.place(buyer, request).await.unwrap().order.id
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(app.shop.databases.main.pool()).await.unwrap()
}

fn waybill(tracking: &str) -> WaybillInput {
    WaybillInput::parse("DHL", tracking).unwrap()
}

/// A seller with one product of plenty of stock: (token, user, product id).
async fn seller_with_product(app: &TestApp, name: &str, mode: &str) -> (String, User, ProductId) {
    let (token, _) = app.signed_in(&format!("{name}@example.com"), "seller").await;
    let body = json!({"title": format!("{name}'s lamp"), "price_cents": 300, "stock": 1_000_000, "inventory_mode": mode});
    let product = app.post("/api/v1/seller/products", Some(&token), &body).await.body["id"].as_i64().unwrap();
    (token.clone(), user_of(app, &token).await, ProductId::from_stored(product))
}

async fn buyer_with_money(app: &TestApp, name: &str) -> (String, User) {
    let (token, _) = app.signed_in(&format!("{name}@example.com"), "buyer").await;
    let user = user_of(app, &token).await;
    app.shop.ledger.top_up(&user, Money::parse_top_up("amount", 1_000_000).unwrap(), "seed").await.unwrap();
    (token, user)
}

/// Waits until nothing is pending between the shards and the index.
async fn wait_until_delivered(app: &TestApp, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let lag = app.shop.seller_index.lag(shop::clock::now_ms()).await.unwrap();
        assert_eq!(lag.failed_events, 0, "a seller-index job gave up");
        if lag.pending_events == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the index still had {} events pending after {within:?}", lag.pending_events);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the index should say, checked against every shard: no difference at all.
async fn assert_index_matches_shards(app: &TestApp, orders: usize) {
    let report = app.shop.seller_index.rebuild(false).await.unwrap();
    assert_eq!(report.differences, vec![], "the index differs from the shards");
    assert_eq!((report.orders_checked, report.index_rows_checked), (orders as u64, orders as u64));
}

/// 2000 orders from 10 buyers (so across both shards) to 2 sellers, while other
/// tasks pay, cancel, ship, correct waybills and confirm receipts of orders as
/// soon as they exist, and the real relay and job workers deliver meanwhile.
async fn converges_after_2000_orders_with_concurrent_status_changes(app: TestApp) {
    let (_, seller_a, product_a) = seller_with_product(&app, "seller-a", "reserve").await;
    let (_, seller_b, product_b) = seller_with_product(&app, "seller-b", "on_order").await;
    let mut buyers = Vec::new();
    for b in 0..BUYERS {
        buyers.push(buyer_with_money(&app, &format!("buyer-{b}")).await.1);
    }
    assert!(buyers.iter().map(|b| app.shop.orders.shards().index_of_buyer(b.id)).collect::<std::collections::HashSet<_>>().len() > 1, "buyers on one shard only");
    let started = Instant::now();
    let mut changes = tokio::task::JoinSet::new();
    let mut placing = tokio::task::JoinSet::new();
    let (changes_tx, mut changes_rx) = tokio::sync::mpsc::unbounded_channel();
    for (b, buyer) in buyers.into_iter().enumerate() {
        let (shop, changes_tx) = (app.shop.clone(), changes_tx.clone());
        let (seller_a, seller_b) = (seller_a.clone(), seller_b.clone());
        placing.spawn(async move {
            for i in 0..ORDERS / BUYERS {
                let (product, seller) = if (b + i) % 2 == 0 { (product_a, seller_a.clone()) } else { (product_b, seller_b.clone()) };
                let id = place(&shop, &buyer, product).await;
                changes_tx.send((buyer.clone(), seller, id, i % 5)).unwrap();
            }
        });
    }
    drop(changes_tx);
    // Each placed order's follow-up runs in its own task, racing the others and the delivery.
    while let Some((buyer, seller, id, plan)) = changes_rx.recv().await {
        let shop = app.shop.clone();
        changes.spawn(async move {
            match plan {
                0 => {}
                1 => drop(shop.payments.cancel(&buyer, id).await.unwrap()),
                _ => {
                    shop.payments.pay(&buyer, id).await.unwrap();
                    if plan >= 3 {
                        shop.shipping.set_waybill(&seller, id, 0, waybill("T-1")).await.unwrap();
                    }
                    if plan == 4 {
                        shop.shipping.set_waybill(&seller, id, 1, waybill("T-2")).await.unwrap();
                        shop.payments.confirm_receipt(&buyer, id).await.unwrap();
                    }
                }
            }
        });
    }
    while let Some(done) = placing.join_next().await {
        done.unwrap();
    }
    while let Some(done) = changes.join_next().await {
        done.unwrap();
    }
    let written = started.elapsed();
    wait_until_delivered(&app, Duration::from_secs(120)).await;
    eprintln!("{ORDERS} orders and their changes written in {written:?}, index caught up {:?} later", started.elapsed() - written);
    assert_index_matches_shards(&app, ORDERS).await;
    // Every order is in the index exactly once, under its seller, in its final state.
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM seller_orders").await, ORDERS as i64);
    assert_eq!(scalar(&app, "SELECT COUNT(DISTINCT order_id) FROM seller_orders").await, ORDERS as i64);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM seller_orders WHERE status = 'completed'").await, (ORDERS / 5) as i64);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM seller_orders WHERE status = 'cancelled'").await, (ORDERS / 5) as i64);
    let for_a = format!("SELECT COUNT(*) FROM seller_orders WHERE seller_id = {}", seller_a.id);
    assert_eq!(scalar(&app, &for_a).await, (ORDERS / 2) as i64);
    // The relay worker publishes the lag.
    let metrics = app.get("/metrics", None).await.text;
    for gauge in ["ninefold_seller_index_lag_seconds", "ninefold_seller_index_pending_events", "ninefold_seller_index_failed_events"] {
        assert!(metrics.contains(gauge), "{gauge} missing from /metrics");
    }
    // The outboxes are empty: nothing was left behind on a shard.
    for shard in &app.shop.databases.shards {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_outbox").fetch_one(shard.pool()).await.unwrap();
        assert_eq!(left, 0);
    }
}

async fn with_fast_delivery(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |settings| {
        settings.schedules.seller_index_ms = 20;
        settings.schedules.jobs_ms = 20;
    }, true)
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn converges_after_2000_orders_with_concurrent_status_changes_on_sqlite() {
    converges_after_2000_orders_with_concurrent_status_changes(with_fast_delivery(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn converges_after_2000_orders_with_concurrent_status_changes_on_postgres() {
    if let Some(app) = with_fast_delivery(Backend::Postgres).await {
        converges_after_2000_orders_with_concurrent_status_changes(app).await;
    }
}

/// Runs the delivery path by hand (no workers in this app): relay, then jobs.
async fn deliver(app: &TestApp) {
    app.shop.seller_index.relay(500).await.unwrap();
    app.shop.jobs.run_due(shop::clock::now_ms(), 500).await.unwrap();
}

async fn duplicate_and_out_of_order_deliveries_never_move_the_index_backwards(app: TestApp) {
    let (_, seller, product) = seller_with_product(&app, "seller", "reserve").await;
    let (_, buyer) = buyer_with_money(&app, "buyer").await;
    let id = place(&app.shop, &buyer, product).await;
    let outbox = &app.shop.databases.shards[app.shop.orders.shards().index_of_buyer(buyer.id)];
    let payload_of = |version: i64| {
        sqlx::query_scalar::<_, String>("SELECT payload FROM order_outbox WHERE order_id = $1 AND version = $2").bind(id.get()).bind(version).fetch_one(outbox.pool())
    };
    let first_payload = payload_of(1).await.unwrap();
    deliver(&app).await;
    let first = app.shop.seller_index.indexed(id).await.unwrap().expect("indexed after delivery");
    assert_eq!((first.version, first.order.status), (1, OrderStatus::PendingPayment));
    app.shop.payments.pay(&buyer, id).await.unwrap();
    app.shop.shipping.set_waybill(&seller, id, 0, waybill("A-1")).await.unwrap();
    let third_payload = payload_of(3).await.unwrap();
    deliver(&app).await;
    let shipped = app.shop.seller_index.indexed(id).await.unwrap().unwrap();
    assert_eq!((shipped.version, shipped.order.status), (3, OrderStatus::Shipped));
    assert_eq!(shipped.order.shipping.as_ref().unwrap().tracking_number, "A-1");
    // Through the job queue (where an event the relay could not apply waits), the
    // version-1 event arrives again, late (a redelivery after a lost
    // acknowledgement), and the version-3 event is delivered a second time.
    let main = app.shop.databases.main.pool();
    for (key, payload) in [("seller_index:late", &first_payload), ("seller_index:again", &third_payload)] {
        sqlx::query("INSERT INTO jobs (key, kind, payload, state, run_at_ms, created_at_ms) VALUES ($1, 'seller_index', $2, 'queued', 0, 0)")
            .bind(key)
            .bind(payload)
            .execute(main)
            .await
            .unwrap();
    }
    let stats = app.shop.jobs.run_due(shop::clock::now_ms(), 500).await.unwrap();
    assert_eq!(stats.done, 2, "both deliveries handled, neither failed");
    assert_eq!(app.shop.seller_index.indexed(id).await.unwrap().unwrap(), shipped, "the index did not move");
    assert_eq!(app.shop.seller_index.rebuild(false).await.unwrap().differences, vec![]);
    // A crash between applying and deleting the outbox rows sends them again: still one copy.
    app.shop.shipping.set_waybill(&seller, id, 1, waybill("A-2")).await.unwrap();
    let saved = outbox_rows(outbox).await;
    deliver(&app).await;
    put_back_in_outbox(outbox, &saved).await;
    deliver(&app).await;
    let corrected = app.shop.seller_index.indexed(id).await.unwrap().unwrap();
    assert_eq!((corrected.version, corrected.order.shipping.unwrap().tracking_number), (4, "A-2".to_owned()));
    assert_eq!(app.count("seller_orders").await, 1);
    // Delivered events are cleared from the queue; snapshot jobs stay (they dedupe by digest).
    let snapshots = scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'snapshot'").await;
    assert_eq!(app.shop.jobs.delete_done("seller_index", shop::clock::now_ms() + 1).await.unwrap(), 2);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'seller_index'").await, 0);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'snapshot'").await, snapshots);
    assert_eq!(app.shop.seller_index.indexed(id).await.unwrap().unwrap().version, 4, "the index is untouched");
}

/// A shard's outbox rows: (order, version, payload, created).
async fn outbox_rows(outbox: &shop::db::Db) -> Vec<(i64, i64, String, i64)> {
    sqlx::query_as("SELECT order_id, version, payload, created_at_ms FROM order_outbox").fetch_all(outbox.pool()).await.unwrap()
}

/// Puts rows read by [`outbox_rows`] back, as a relay killed before clearing them leaves them.
async fn put_back_in_outbox(outbox: &shop::db::Db, rows: &[(i64, i64, String, i64)]) {
    for (order_id, version, payload, created) in rows {
        sqlx::query("INSERT INTO order_outbox (order_id, version, payload, created_at_ms) VALUES ($1, $2, $3, $4)")
            .bind(order_id)
            .bind(version)
            .bind(payload)
            .bind(created)
            .execute(outbox.pool())
            .await
            .unwrap();
    }
}

/// Moves the buyer's shard's outbox into the job queue, as a relay whose
/// transaction failed leaves it: the events wait for the runner.
async fn queue_the_outbox_for_the_runner(app: &TestApp, buyer: &User) {
    let outbox = &app.shop.databases.shards[app.shop.orders.shards().index_of_buyer(buyer.id)];
    let events = outbox_rows(outbox).await;
    let jobs: Vec<NewJob> = events
        .iter()
        .map(|(order_id, version, payload, created)| NewJob { kind: "seller_index", key: format!("seller_index:{order_id}:{version}"), payload, since_ms: *created })
        .collect();
    let mut tx = app.shop.databases.main.begin_write().await.unwrap();
    Jobs::enqueue_in(&mut tx, &jobs).await.unwrap();
    tx.commit().await.unwrap();
    sqlx::query("DELETE FROM order_outbox").execute(outbox.pool()).await.unwrap();
}

/// A burst of events (one per order, as in a sale) is claimed, applied and marked
/// done a poll at a time, not three statements per event; four runners polling at
/// once deliver each event once; an event that does not parse fails alone.
async fn concurrent_runners_deliver_a_burst_once_each_in_a_few_statements(app: TestApp) {
    const EVENTS: usize = 150;
    let (_, _, product) = seller_with_product(&app, "seller", "reserve").await;
    let (_, buyer) = buyer_with_money(&app, "buyer").await;
    for _ in 0..EVENTS {
        place(&app.shop, &buyer, product).await;
    }
    let main = &app.shop.databases.main;
    queue_the_outbox_for_the_runner(&app, &buyer).await;
    sqlx::query("INSERT INTO jobs (key, kind, payload, state, run_at_ms, created_at_ms) VALUES ('seller_index:garbage', 'seller_index', '{not json', 'queued', 0, 0)")
        .execute(main.pool())
        .await
        .unwrap();
    let queued = scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'seller_index' AND state = 'queued'").await;
    assert_eq!(queued, EVENTS as i64 + 1);
    // The product's snapshot job is due as well.
    let others = scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind <> 'seller_index' AND state = 'queued'").await as u64;

    let used_before = main.uses();
    let now = shop::clock::now_ms();
    let runs = futures::future::join_all((0..4).map(|_| app.shop.jobs.run_due(now, 500))).await;
    let used = main.uses() - used_before;
    let (mut done, mut retried) = (0, 0);
    for run in runs {
        let stats = run.unwrap();
        done += stats.done;
        retried += stats.retried;
    }
    assert_eq!((done, retried), (EVENTS as u64 + others, 1), "each event delivered by exactly one runner; the garbage one failed alone");
    // Per runner: the poll, and per kind the claim, and for the one that won them
    // the upsert (the snapshot job writes its own), the mark and the garbage's
    // failure. One statement per event would be hundreds.
    assert!(used <= 4 * 8, "{used} statements on main for {EVENTS} events");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'seller_index' AND state = 'done'").await, EVENTS as i64);
    let (state, error): (String, Option<String>) =
        sqlx::query_as("SELECT state, last_error FROM jobs WHERE key = 'seller_index:garbage'").fetch_one(main.pool()).await.unwrap();
    assert_eq!(state, "queued", "retried after its backoff");
    assert!(error.is_some_and(|e| !e.is_empty()));
    assert_index_matches_shards(&app, EVENTS).await;
}

/// The relay applies a burst of events (one per order, as in a sale) in one
/// `main` transaction, a few statements for all, and leaves no job behind; a payload that does not
/// parse is queued for the runner and fails there alone; relays racing on the
/// same outbox rows (two servers, or a resend after a crash) apply each once.
async fn the_relay_runs_a_burst_of_events_in_a_few_statements_and_queues_what_it_cannot(app: TestApp) {
    const EVENTS: usize = 150;
    let (_, _, product) = seller_with_product(&app, "seller", "reserve").await;
    let (_, buyer) = buyer_with_money(&app, "buyer").await;
    for _ in 0..EVENTS {
        place(&app.shop, &buyer, product).await;
    }
    let outbox = &app.shop.databases.shards[app.shop.orders.shards().index_of_buyer(buyer.id)];
    let garbage = OrderId::new(OrderId::FIRST_SEQUENCE + 999_999, buyer.id);
    sqlx::query("INSERT INTO order_outbox (order_id, version, payload, created_at_ms) VALUES ($1, 1, '{not json', 0)").bind(garbage.get()).execute(outbox.pool()).await.unwrap();
    let saved = outbox_rows(outbox).await;
    let main = &app.shop.databases.main;

    let used_before = main.uses();
    assert_eq!(app.shop.seller_index.relay(500).await.unwrap(), EVENTS as u64 + 1);
    let used = main.uses() - used_before;
    // The transaction, the garbage's enqueue, the record of the rest, the upsert.
    assert!(used <= 6, "{used} statements on main for {EVENTS} events");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'seller_index' AND state = 'queued'").await, 1, "only the garbage waits for the runner");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'seller_index'").await, 1, "the applied events left no job behind");
    assert_index_matches_shards(&app, EVENTS).await;
    let lag = app.shop.seller_index.lag(shop::clock::now_ms()).await.unwrap();
    assert_eq!((lag.pending_events, lag.failed_events), (1, 0));

    // The same rows again, to three relays at once: the index does not move.
    sqlx::query("UPDATE seller_orders SET indexed_at_ms = 0").execute(main.pool()).await.unwrap();
    put_back_in_outbox(outbox, &saved).await;
    let relays = futures::future::join_all((0..3).map(|_| app.shop.seller_index.relay(500))).await;
    assert!(relays.into_iter().all(|relay| relay.is_ok()));
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM seller_orders WHERE indexed_at_ms <> 0").await, 0, "the index moved on a resend");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'seller_index'").await, 1, "the garbage is queued once");
    let stats = app.shop.jobs.run_due(shop::clock::now_ms(), 500).await.unwrap();
    assert_eq!(stats.retried, 1, "the garbage fails at the runner, alone");
    assert_index_matches_shards(&app, EVENTS).await;
}

/// When the relay's transaction fails (here the index refuses every write, as a
/// full disk or a broken constraint would), the events wait in the queue, and
/// the runner delivers them once the index takes writes again. Nothing is lost.
async fn events_the_relay_fails_to_apply_are_queued_and_delivered_by_the_runner(app: TestApp) {
    let (_, _, product) = seller_with_product(&app, "seller", "on_order").await;
    let (_, buyer) = buyer_with_money(&app, "buyer").await;
    for _ in 0..5 {
        place(&app.shop, &buyer, product).await;
    }
    let main = app.shop.databases.main.pool();
    let postgres = app.shop.databases.main.backend() == shop::db::Backend::Postgres;
    let refuse: &[&str] = if postgres {
        &[
            "CREATE FUNCTION refuse_index_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'index closed'; END $$",
            "CREATE TRIGGER refuse_index_writes BEFORE INSERT OR UPDATE ON seller_orders FOR EACH ROW EXECUTE FUNCTION refuse_index_writes()",
        ]
    } else {
        &["CREATE TRIGGER refuse_index_writes BEFORE INSERT ON seller_orders BEGIN SELECT RAISE(ABORT, 'index closed'); END"]
    };
    for statement in refuse {
        sqlx::query(statement).execute(main).await.unwrap();
    }
    assert_eq!(app.shop.seller_index.relay(500).await.unwrap(), 5, "the outbox is cleared into the queue");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'seller_index' AND state = 'queued'").await, 5);
    assert_eq!(app.count("seller_orders").await, 0);
    let stats = app.shop.jobs.run_due(shop::clock::now_ms(), 500).await.unwrap();
    assert_eq!(stats.retried, 5, "the runner fails too while the index refuses");
    assert_eq!(app.shop.seller_index.lag(shop::clock::now_ms()).await.unwrap().pending_events, 5);

    let reopen = if postgres { "DROP TRIGGER refuse_index_writes ON seller_orders" } else { "DROP TRIGGER refuse_index_writes" };
    sqlx::query(reopen).execute(main).await.unwrap();
    let after_backoff = shop::clock::now_ms() + shop::services::jobs::backoff_ms(1) + 1;
    assert_eq!(app.shop.jobs.run_due(after_backoff, 500).await.unwrap().done, 5);
    assert_eq!(app.shop.seller_index.lag(shop::clock::now_ms()).await.unwrap().pending_events, 0);
    assert_index_matches_shards(&app, 5).await;
}

async fn the_rebuild_reports_and_repairs_every_kind_of_difference(app: TestApp) {
    let (_, _, product) = seller_with_product(&app, "seller", "on_order").await;
    let (_, buyer) = buyer_with_money(&app, "buyer").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(place(&app.shop, &buyer, product).await);
    }
    app.shop.payments.pay(&buyer, ids[1]).await.unwrap();
    deliver(&app).await;
    assert_index_matches_shards(&app, 5).await;
    let main = app.shop.databases.main.pool();
    // Damage the index four ways: a row lost, a row left at an old version, a row
    // whose content was garbled, and a row for an order no shard has.
    sqlx::query("DELETE FROM seller_orders WHERE order_id = $1").bind(ids[0].get()).execute(main).await.unwrap();
    let stale = app.shop.seller_index.indexed(ids[1]).await.unwrap().unwrap();
    let mut older = stale.clone();
    older.version = 1;
    older.order.status = OrderStatus::PendingPayment;
    sqlx::query("UPDATE seller_orders SET version = 1, status = 'pending_payment', summary = $1 WHERE order_id = $2")
        .bind(serde_json::to_string(&older).unwrap())
        .bind(ids[1].get())
        .execute(main)
        .await
        .unwrap();
    sqlx::query("UPDATE seller_orders SET summary = 'not json' WHERE order_id = $1").bind(ids[2].get()).execute(main).await.unwrap();
    let ghost = OrderId::new(OrderId::FIRST_SEQUENCE + 999_999, buyer.id);
    sqlx::query("INSERT INTO seller_orders (order_id, seller_id, status, version, summary, indexed_at_ms) SELECT $1, seller_id, status, version, summary, 0 FROM seller_orders WHERE order_id = $2")
        .bind(ghost.get())
        .bind(ids[3].get())
        .execute(main)
        .await
        .unwrap();
    let report = app.shop.seller_index.rebuild(false).await.unwrap();
    let kinds: Vec<(OrderId, DifferenceKind)> = report.differences.iter().map(|d| (d.order_id, d.kind)).collect();
    let mut expected = vec![(ids[0], DifferenceKind::Missing), (ids[1], DifferenceKind::Stale), (ids[2], DifferenceKind::Different), (ghost, DifferenceKind::Extra)];
    let mut found = kinds.clone();
    expected.sort_by_key(|(id, _)| *id);
    found.sort_by_key(|(id, _)| *id);
    assert_eq!(found, expected);
    assert_eq!(report.repaired, 0, "a dry run changes nothing");
    let repaired = app.shop.seller_index.rebuild(true).await.unwrap();
    assert_eq!((repaired.differences.len(), repaired.repaired), (4, 4));
    assert_index_matches_shards(&app, 5).await;
    assert_eq!(app.shop.seller_index.indexed(ids[1]).await.unwrap().unwrap(), stale);
}

/// A paid order of `seller`'s product by a fresh buyer; returns its id.
async fn paid_order(app: &TestApp, buyer_name: &str, product: ProductId) -> OrderId {
    let (_, buyer) = buyer_with_money(app, buyer_name).await;
    let id = place(&app.shop, &buyer, product).await;
    app.shop.payments.pay(&buyer, id).await.unwrap();
    id
}

async fn every_seller_endpoint_answers_404_for_another_sellers_order_or_product(app: TestApp) {
    let (owner, _, product) = seller_with_product(&app, "owner", "reserve").await;
    let (other, _, other_product) = seller_with_product(&app, "other", "reserve").await;
    let id = paid_order(&app, "buyer", product).await;
    paid_order(&app, "other-buyer", other_product).await;
    deliver(&app).await;
    let waybill = json!({"carrier": "DHL", "tracking_number": "X", "expected_version": 0});
    let calls: Vec<(reqwest::Method, String, Value)> = vec![
        (reqwest::Method::GET, format!("/api/v1/seller/orders/{id}"), Value::Null),
        (reqwest::Method::PUT, format!("/api/v1/seller/orders/{id}/shipping"), waybill.clone()),
        (reqwest::Method::GET, format!("/api/v1/seller/orders/{id}/shipping/history"), Value::Null),
        (reqwest::Method::PATCH, format!("/api/v1/seller/products/{product}"), json!({"expected_version": 1, "title": "Mine now"})),
        (reqwest::Method::POST, format!("/api/v1/seller/products/{product}/restock"), json!({"quantity": 5})),
    ];
    for (method, path, body) in &calls {
        let reply = if body.is_null() { app.get(path, Some(&other)).await } else { app.send_json(method.clone(), path, Some(&other), body).await };
        reply.assert_problem(404, "not_found");
        // Ids that name nothing, or cannot name anything, are not found either.
        for unknown in ["9999999999999999999", "12", "abc", "-1"] {
            let path = path.replace(&id.to_string(), unknown).replace(&format!("/products/{product}"), &format!("/products/{unknown}"));
            let reply = if body.is_null() { app.get(&path, Some(&owner)).await } else { app.send_json(method.clone(), &path, Some(&owner), body).await };
            reply.assert_problem(404, "not_found");
        }
    }
    // The other seller's list holds only the other seller's order.
    let listed = app.get("/api/v1/seller/orders", Some(&other)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_ne!(listed.body["items"][0]["id"], json!(id.to_string()));
    // Nothing changed: the owner's order and product are as they were.
    let order = app.get(&format!("/api/v1/seller/orders/{id}"), Some(&owner)).await;
    assert_eq!((order.body["status"].clone(), order.body.get("shipping").cloned()), (json!("paid"), None));
    let stored = app.get(&format!("/api/v1/products/{product}"), None).await.body;
    assert_eq!((stored["title"].clone(), stored["stock"]["available"].clone()), (json!("owner's lamp"), json!(999_999)));
    // Buyers and strangers cannot reach seller endpoints at all.
    let (buyer, _) = app.signed_in("plain-buyer@example.com", "buyer").await;
    app.get("/api/v1/seller/orders", Some(&buyer)).await.assert_problem(403, "forbidden");
    app.get(&format!("/api/v1/seller/orders/{id}"), Some(&buyer)).await.assert_problem(403, "forbidden");
    app.get("/api/v1/seller/orders", None).await.assert_problem(401, "unauthenticated");
    app.get("/api/v1/seller/orders", Some("garbage-token")).await.assert_problem(401, "invalid_token");
}

async fn the_seller_order_list_pages_and_filters_from_the_index(app: TestApp) {
    let (seller, _, product) = seller_with_product(&app, "seller", "on_order").await;
    let (_, buyer) = buyer_with_money(&app, "buyer").await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(place(&app.shop, &buyer, product).await);
    }
    for id in &ids[..3] {
        app.shop.payments.pay(&buyer, *id).await.unwrap();
    }
    // Before delivery the index has nothing: the list reads the index, not the shards.
    assert_eq!(app.get("/api/v1/seller/orders", Some(&seller)).await.body["items"], json!([]));
    deliver(&app).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/api/v1/seller/orders?limit=3&cursor={cursor}"), Some(&seller)).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(page.body["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let mut newest_first: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let paid = app.get("/api/v1/seller/orders?status=paid", Some(&seller)).await;
    assert_eq!(paid.body["items"].as_array().unwrap().len(), 3);
    assert!(paid.body["items"].as_array().unwrap().iter().all(|o| o["status"] == "paid" && o["version"] == 2 && o["buyer_id"] == json!(buyer.id.get())));
    let seller_user = user_of(&app, &seller).await;
    let counts = app.shop.seller_index.counts(&seller_user).await.unwrap();
    assert_eq!(counts.iter().filter(|(_, n)| *n > 0).copied().collect::<Vec<_>>(), vec![(OrderStatus::PendingPayment, 4), (OrderStatus::Paid, 3)]);
    // A big seller's counts stop at the cap instead of counting the whole history.
    let main = app.shop.databases.main.pool();
    for chunk in 0..11i64 {
        let values = (0..100).map(|i| format!("({}, {}, 'completed', 1, '{{}}', 0)", 9_000_000_000_000 + chunk * 100 + i, seller_user.id)).collect::<Vec<_>>().join(", ");
        sqlx::query(&format!("INSERT INTO seller_orders (order_id, seller_id, status, version, summary, indexed_at_ms) VALUES {values}")).execute(main).await.unwrap();
    }
    let counts = app.shop.seller_index.counts(&seller_user).await.unwrap();
    let cap = shop::services::seller_index::SellerIndex::COUNT_CAP;
    assert!(counts.contains(&(OrderStatus::Completed, cap + 1)) && counts.contains(&(OrderStatus::Paid, 3)), "{counts:?}");
    app.get("/api/v1/seller/orders?status=lost", Some(&seller)).await.assert_problem(422, "validation_failed");
    app.get("/api/v1/seller/orders?cursor=abc", Some(&seller)).await.assert_problem(422, "validation_failed");
    app.get("/api/v1/seller/orders?limit=100000", Some(&seller)).await.assert_problem(422, "validation_failed");
}

/// A database from before the index existed: orders on the shards, none indexed.
async fn an_index_missing_entirely_is_built_from_the_shards_once(app: TestApp) {
    assert_eq!(app.shop.seller_index.backfill_if_empty().await.unwrap(), None, "nothing to do on empty shards");
    let (_, _, product) = seller_with_product(&app, "seller", "on_order").await;
    let (_, buyer) = buyer_with_money(&app, "buyer").await;
    for _ in 0..3 {
        place(&app.shop, &buyer, product).await;
    }
    for shard in &app.shop.databases.shards {
        sqlx::query("DELETE FROM order_outbox").execute(shard.pool()).await.unwrap();
    }
    let report = app.shop.seller_index.backfill_if_empty().await.unwrap().expect("built");
    assert_eq!((report.orders_checked, report.repaired), (3, 3));
    assert!(report.differences.iter().all(|d| d.kind == DifferenceKind::Missing));
    assert_index_matches_shards(&app, 3).await;
    assert_eq!(app.shop.seller_index.backfill_if_empty().await.unwrap(), None, "a built index is left to the events");
}
