//! Read replicas with read-your-writes (DESIGN.md, failure mode 7), against a real
//! PostgreSQL streaming replica that applies WAL two seconds late
//! (`scripts/pg-throwaway.sh replica <dir> 2s`, started by `scripts/test.sh`):
//! a caller always reads its own writes, whichever instance answers; anonymous
//! reads really use the replica; a replica that stops is skipped and used again
//! when it returns; a forged fence costs nothing.
//!
//! The tests share the one replica (and one stops it), so they run one at a time.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use helpers::TestApp;
use serde_json::{Value, json};
use shop::db::DatabaseConfig;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every role of a fresh test database on the primary, each with the same
/// database on the replica; `None` (or a failure under CI) without a replica.
async fn databases_with_replica() -> Option<DatabaseConfig> {
    let Ok(replica) = std::env::var("NINEFOLD_TEST_PG_REPLICA_URL") else {
        let required = std::env::var_os("CI").is_some() || std::env::var_os("NINEFOLD_TEST_REQUIRE_PG").is_some();
        assert!(!required, "NINEFOLD_TEST_PG_REPLICA_URL is not set, and the replica tests are required here");
        eprintln!("skipped: set NINEFOLD_TEST_PG_REPLICA_URL (scripts/pg-throwaway.sh replica) to run the replica tests");
        return None;
    };
    let mut databases = helpers::postgres_databases().await?;
    let primary_host = host_of(&std::env::var("NINEFOLD_TEST_PG_URL").unwrap());
    let replica_host = host_of(&replica);
    for role in std::iter::once(&mut databases.main).chain(databases.shards.iter_mut()).chain(std::iter::once(&mut databases.archive)) {
        role.replicas = vec![role.url.replacen(&primary_host, &replica_host, 1)];
    }
    Some(databases)
}

/// `127.0.0.1:5432` from `postgres://user@127.0.0.1:5432/db`.
fn host_of(url: &str) -> String {
    let rest = &url[url.find('@').map_or(url.find("://").unwrap() + 3, |at| at + 1)..];
    rest[..rest.find('/').unwrap_or(rest.len())].to_owned()
}

async fn app_on(databases: DatabaseConfig) -> TestApp {
    helpers::spawn_app_on(databases, tempfile::tempdir().unwrap(), |_| {}, true).await
}

/// Waits until the replica at `url` has replayed the product's creation.
async fn wait_until_replica_has_product(url: &str, product: i64) {
    use sqlx::Connection;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut replica) = sqlx::PgConnection::connect(url).await {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM products WHERE id = $1").bind(product).fetch_optional(&mut replica).await.ok().flatten();
            if found.is_some() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the replica never replayed product {product}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every replica of the app answers and keeps up (the test database
/// reaches the replica two seconds after it is created).
async fn wait_for_replicas(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = app.get("/healthz", None).await.body;
        let replicas = health["replicas"].as_array().cloned().unwrap_or_default();
        if !replicas.is_empty() && replicas.iter().all(|r| r["state"] == "up") {
            return;
        }
        assert!(Instant::now() < deadline, "the replicas never came up: {health}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The sum of a counter's samples whose labels include all of `labels`.
async fn counter(app: &TestApp, name: &str, labels: &[&str]) -> f64 {
    app.get("/metrics", None)
        .await
        .text
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && labels.iter().all(|l| line.contains(l)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Shop {
    seller: String,
    buyer: String,
    product: i64,
}

async fn seller_and_buyer(app: &TestApp, tag: &str) -> Shop {
    let (seller, _) = app.signed_in(&format!("seller-{tag}@example.com"), "seller").await;
    let product = app.create_product(&seller, "Lantern", 500, 10_000).await["id"].as_i64().unwrap();
    let (buyer, _) = app.signed_in(&format!("buyer-{tag}@example.com"), "buyer").await;
    let top_up = app.client.post(app.url("/api/v1/wallet/top-up")).bearer_auth(&buyer).header("idempotency-key", format!("seed-{tag}")).json(&json!({"amount_cents": 1_000_000})).send().await.unwrap();
    assert!(top_up.status().is_success());
    Shop { seller, buyer, product }
}

async fn place(app: &TestApp, buyer: &str, product: i64) -> String {
    let checkout = app.post("/api/v1/checkout", Some(buyer), &json!({"lines": [{"product_id": product, "quantity": 1}]})).await.body;
    let body = json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"],
        "shipping_address": {"name": "Ray", "line1": "1 Lag Lane", "city": "Delft", "postal_code": "2611", "country": "NL"}});
    let placed = app.post("/api/v1/orders", Some(buyer), &body).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    placed.body["id"].as_str().unwrap().to_owned()
}

/// The order page as served (server-rendered): its status as the buyer reads it.
async fn order_page_status(app: &TestApp, buyer: &str, id: &str) -> String {
    let page = app.client.get(app.url(&format!("/orders/{id}"))).header("cookie", format!("nf_session={buyer}")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let at = html.find("data-testid=\"order-status\">").unwrap_or_else(|| panic!("no status on the order page: {html}"));
    let rest = &html[at + "data-testid=\"order-status\">".len()..];
    rest[..rest.find('<').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_buyer_who_pays_reads_the_order_paid_at_once_twenty_times_in_a_row() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(databases) = databases_with_replica().await else { return };
    let app = app_on(databases).await;
    wait_for_replicas(&app).await;
    let shop = seller_and_buyer(&app, "pay").await;
    for round in 0..20 {
        let id = place(&app, &shop.buyer, shop.product).await;
        let paid = app.post(&format!("/api/v1/orders/{id}/pay"), Some(&shop.buyer), &Value::Null).await;
        assert_eq!(paid.status, 200, "{}", paid.text);
        let read = app.get(&format!("/api/v1/orders/{id}"), Some(&shop.buyer)).await;
        assert_eq!((read.status.as_u16(), read.body["status"].as_str()), (200, Some("paid")), "round {round}: the API read trails the payment");
        assert_eq!(order_page_status(&app, &shop.buyer, &id).await, "Paid", "round {round}: the order page trails the payment");
        let mine = app.get("/api/v1/orders", Some(&shop.buyer)).await.body;
        assert_eq!(mine["items"][0]["status"], "paid", "round {round}: my orders trails the payment");
    }
    // The guarantee came from the fence, not from an idle replica: the replica
    // was asked and found behind.
    assert!(counter(&app, "ninefold_replica_fallbacks_total", &["reason=\"fence\""]).await > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_seller_reads_a_saved_waybill_and_a_product_edit_at_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(databases) = databases_with_replica().await else { return };
    let app = app_on(databases).await;
    wait_for_replicas(&app).await;
    let shop = seller_and_buyer(&app, "ship").await;
    for round in 0..10 {
        let id = place(&app, &shop.buyer, shop.product).await;
        app.post(&format!("/api/v1/orders/{id}/pay"), Some(&shop.buyer), &Value::Null).await;
        let tracking = format!("JD-{round}");
        let saved = app
            .send_json(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{id}/shipping"), Some(&shop.seller), &json!({"carrier": "DHL", "tracking_number": tracking, "expected_version": 0}))
            .await;
        assert_eq!(saved.status, 200, "{}", saved.text);
        let read = app.get(&format!("/api/v1/seller/orders/{id}"), Some(&shop.seller)).await.body;
        assert_eq!(read["shipping"]["tracking_number"], tracking.as_str(), "round {round}: the seller's order trails the waybill");
        let title = format!("Lantern, mark {round}");
        let version = app.get(&format!("/api/v1/products/{}", shop.product), Some(&shop.seller)).await.body["version"].clone();
        let edited = app.patch(&format!("/api/v1/seller/products/{}", shop.product), Some(&shop.seller), &json!({"expected_version": version, "title": title})).await;
        assert_eq!(edited.status, 200, "{}", edited.text);
        let shown = app.get(&format!("/api/v1/products/{}", shop.product), Some(&shop.seller)).await.body;
        assert_eq!(shown["title"], title.as_str(), "round {round}: the product trails its edit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_through_one_instance_is_read_through_another_with_the_same_session() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(databases) = databases_with_replica().await else { return };
    let first = app_on(databases.clone()).await;
    let second = app_on(databases).await;
    wait_for_replicas(&first).await;
    wait_for_replicas(&second).await;
    let shop = seller_and_buyer(&first, "two").await;
    for round in 0..10 {
        let id = place(&first, &shop.buyer, shop.product).await;
        let paid = first.post(&format!("/api/v1/orders/{id}/pay"), Some(&shop.buyer), &Value::Null).await;
        assert_eq!(paid.status, 200);
        let read = second.get(&format!("/api/v1/orders/{id}"), Some(&shop.buyer)).await;
        assert_eq!((read.status.as_u16(), read.body["status"].as_str()), (200, Some("paid")), "round {round}: the other instance served a stale order");
        assert_eq!(order_page_status(&second, &shop.buyer, &id).await, "Paid", "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anonymous_reads_use_the_replica_and_a_forged_fence_costs_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(databases) = databases_with_replica().await else { return };
    let replica_of_main = databases.main.replicas[0].clone();
    let app = app_on(databases).await;
    let shop = seller_and_buyer(&app, "anon").await;
    wait_for_replicas(&app).await;
    // Another caller's writes reach anonymous readers within the lag. Asking the
    // replica itself, not the app: an app read may come from the primary (a
    // replica that lags past the maximum is skipped) and prove nothing.
    wait_until_replica_has_product(&replica_of_main, shop.product).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    assert_eq!(app.get(&format!("/api/v1/products/{}", shop.product), None).await.status, 200, "the replica has the product");
    let before = counter(&app, "ninefold_db_reads_total", &["role=\"main\"", "target=\"replica\""]).await;
    loop {
        for _ in 0..10 {
            assert_eq!(app.get("/api/v1/products", None).await.status, 200);
            assert_eq!(app.get(&format!("/api/v1/products/{}", shop.product), None).await.status, 200);
            assert_eq!(app.client.get(app.url("/")).send().await.unwrap().status(), 200);
        }
        if counter(&app, "ninefold_db_reads_total", &["role=\"main\"", "target=\"replica\""]).await > before {
            break;
        }
        assert!(Instant::now() < deadline, "anonymous catalog reads never used the replica");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let fence_fallbacks = counter(&app, "ninefold_replica_fallbacks_total", &["role=\"main\"", "reason=\"fence\""]).await;
    for fence in ["garbage; =;main=-3;main=0x1f", "main=18446744073709551615", "main=9223372036854775807;shard_0=1"] {
        let started = Instant::now();
        let reply = app.client.get(app.url(&format!("/api/v1/products/{}", shop.product))).header("ninefold-fence", fence).send().await.unwrap();
        assert_eq!(reply.status(), 200, "fence {fence:?}");
        assert!(started.elapsed() < Duration::from_millis(1500), "fence {fence:?} made the read wait {:?}", started.elapsed());
    }
    assert!(counter(&app, "ninefold_replica_fallbacks_total", &["role=\"main\"", "reason=\"fence\""]).await > fence_fallbacks, "a future fence reads the primary");
    // A signed-in buyer with a forged header still reads, at once.
    let started = Instant::now();
    let reply = app.client.get(app.url("/api/v1/orders")).bearer_auth(&shop.buyer).header("ninefold-fence", "shard_0=999999999999999;shard_1=abc").send().await.unwrap();
    assert_eq!(reply.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_stops_is_skipped_and_used_again_when_it_returns() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(databases) = databases_with_replica().await else { return };
    let Ok(cluster) = std::env::var("NINEFOLD_TEST_PG_DIR") else {
        assert!(std::env::var_os("CI").is_none(), "NINEFOLD_TEST_PG_DIR names the throwaway cluster's folder under CI");
        return;
    };
    let app = app_on(databases).await;
    let shop = seller_and_buyer(&app, "fault").await;
    let id = place(&app, &shop.buyer, shop.product).await;
    wait_for_replicas(&app).await;
    let replica_reads = || counter(&app, "ninefold_db_reads_total", &["target=\"replica\""]);
    let pages = [
        "/api/v1/products".to_owned(),
        format!("/api/v1/products/{}", shop.product),
        format!("/api/v1/orders/{id}"),
        "/api/v1/orders".to_owned(),
        "/api/v1/wallet".to_owned(),
        "/".to_owned(),
        format!("/products/{}", shop.product),
    ];
    let read_everything = || async {
        for path in &pages {
            let reply = app.client.get(app.url(path)).bearer_auth(&shop.buyer).send().await.unwrap();
            assert_eq!(reply.status(), 200, "{path} while the replica is away");
        }
    };
    let pg = |action: &str| {
        let status = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg-throwaway.sh")).args([action, &cluster]).status().unwrap();
        assert!(status.success(), "pg-throwaway.sh {action}");
    };

    let down_before = counter(&app, "ninefold_replica_fallbacks_total", &["reason=\"down\""]).await;
    pg("replica-halt");
    let stopped = Instant::now();
    while stopped.elapsed() < Duration::from_secs(2) {
        read_everything().await;
    }
    assert!(counter(&app, "ninefold_replica_fallbacks_total", &["reason=\"down\""]).await > down_before, "no read fell back for a replica that is down");
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status, 200, "the primaries answer: {}", health.text);
    assert!(health.body["replicas"].as_array().unwrap().iter().all(|r| r["state"] == "down"), "{}", health.text);

    pg("replica-resume");
    wait_for_replicas(&app).await;
    let before = replica_reads().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        read_everything().await;
        if replica_reads().await > before {
            break;
        }
        assert!(Instant::now() < deadline, "replica reads never resumed after the replica returned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
