//! Kills the real server process with SIGKILL at every step boundary of paying,
//! refunding and releasing money (the crash points of `shop::faults`, compiled in
//! only with the `fault-injection` feature), restarts it, and checks that the
//! recovery worker drives each interrupted flow to an end with every amount moved
//! exactly once — or, for a crash inside the paying transaction, not at all.
//! It also kills the seller index's delivery mid-way and checks that the index
//! still ends exactly equal to the shards.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use reqwest::Client;
use shop::db::DatabaseConfig;
use serde_json::{Value, json};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PRICE: i64 = 1250;
const TOP_UP: i64 = 10_000;

struct Server {
    child: Child,
    base: String,
}

/// The server's configuration file: the payment recovery worker looks every
/// 200 ms at payments stuck that long, the seller index is relayed and the job
/// queue polled every 50 ms; PostgreSQL databases when given. Demo money on and no
/// abuse limits: the tests fund and place many orders from one address.
fn write_config(data_dir: &Path, databases: Option<&DatabaseConfig>) {
    let mut text = String::from(
        "max_unpaid_orders = 1000000\n[rate_limits]\nenabled = false\n[wallet]\ntop_up = \"demo\"\ntop_up_daily_cap_cents = 1000000000000\n\
         [schedules]\npayments_ms = 200\nseller_index_ms = 50\njobs_ms = 50\narchive_ms = 200\n",
    );
    if let Some(databases) = databases {
        let url = |u: &shop::db::DatabaseUrl| format!("{{ url = {:?} }}", u.url);
        text.push_str(&format!(
            "[databases]\nmain = {}\nshards = [{}]\narchive = {}\n",
            url(&databases.main),
            databases.shards.iter().map(url).collect::<Vec<_>>().join(", "),
            url(&databases.archive)
        ));
    }
    std::fs::write(data_dir.join("ninefold.toml"), text).unwrap();
}

/// Starts the server on a free port. Another test may take the port between our
/// probe and the server's bind; the server then exits, and we try another port.
fn start(data_dir: &Path, crash_at: Option<&str>) -> Server {
    for _ in 0..5 {
        if let Some(server) = try_start(data_dir, crash_at) {
            return server;
        }
    }
    panic!("the server never started listening");
}

fn try_start(data_dir: &Path, crash_at: Option<&str>) -> Option<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = data_dir.join("ninefold.toml");
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .env("NINEFOLD_ADDR", format!("127.0.0.1:{port}"))
        .env("NINEFOLD_DATA_DIR", data_dir)
        .env("NINEFOLD_CONFIG", &config)
        .env("NINEFOLD_NO_DEMO", "1")
        .env("RUST_LOG", "warn")
        .env_remove("NINEFOLD_CRASH_AT")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(point) = crash_at {
        command.env("NINEFOLD_CRASH_AT", point);
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            if status.signal() == Some(9) {
                // Killed at its crash point before it listened: the caller checks that.
                return Some(Server { child, base: format!("http://127.0.0.1:{port}") });
            }
            eprintln!("the server exited before listening ({status}); trying another port");
            return None;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the server never started listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Server { child, base: format!("http://127.0.0.1:{port}") })
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Api<'a> {
    client: &'a Client,
    base: &'a str,
}

impl Api<'_> {
    async fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Value) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn ok(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Value) -> Value {
        let (status, body) = self.send(method, path, token, body).await.unwrap();
        assert!((200..300).contains(&status), "{path} → {status} {body}");
        body
    }

    async fn account(&self, email: &str, role: &str) -> String {
        let credentials = json!({"email": email, "password": "correct horse"});
        self.ok(reqwest::Method::POST, "/api/v1/auth/register", None, json!({"email": email, "password": "correct horse", "name": "Crash Test", "role": role})).await;
        self.ok(reqwest::Method::POST, "/api/v1/auth/login", None, credentials).await["token"].as_str().unwrap().to_owned()
    }

    async fn balance(&self, token: &str) -> i64 {
        self.ok(reqwest::Method::GET, "/api/v1/wallet", Some(token), Value::Null).await["balance_cents"].as_i64().unwrap()
    }
}

/// Waits for the process that reached its crash point, checks SIGKILL ended it,
/// and starts the server again on the same databases, disarmed.
fn restart_after_kill(mut dead: Server, data_dir: &Path, point: &str) -> Server {
    let status = dead.child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{point}: the server was not killed by SIGKILL ({status})");
    drop(dead);
    start(data_dir, None)
}

/// Runs a `server` subcommand against the same databases; (exit 0?, its JSON output).
fn run_subcommand(data_dir: &Path, args: &[&str]) -> (bool, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("NINEFOLD_DATA_DIR", data_dir)
        .env("NINEFOLD_CONFIG", data_dir.join("ninefold.toml"))
        .env("NINEFOLD_NO_DEMO", "1")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    (output.status.success(), serde_json::from_str(&text).unwrap_or_else(|_| panic!("{args:?} printed no JSON: {text}")))
}

/// Where a flow is cut, and what it was doing.
#[derive(Clone, Copy, PartialEq)]
enum Flow {
    Pay,
    Refund,
    Release,
}

/// A server started with a crash point armed, a seller with one product of
/// `stock` units, and a buyer whose wallet holds `top_up`.
struct Scene {
    data_dir: tempfile::TempDir,
    client: Client,
    server: Server,
    seller: String,
    buyer: String,
    product: Value,
}

/// `None` when PostgreSQL is wanted but not configured on a developer's machine.
async fn scene(point: &str, backend: helpers::Backend, stock: i64, top_up: i64) -> Option<Scene> {
    let data_dir = tempfile::tempdir().unwrap();
    let databases = match backend {
        helpers::Backend::Sqlite => None,
        helpers::Backend::Postgres => Some(helpers::postgres_databases().await?),
    };
    write_config(data_dir.path(), databases.as_ref());
    let client = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let server = start(data_dir.path(), Some(point));
    let api = Api { client: &client, base: &server.base };
    let seller = api.account("seller@example.com", "seller").await;
    let buyer = api.account("buyer@example.com", "buyer").await;
    let product = api.ok(reqwest::Method::POST, "/api/v1/seller/products", Some(&seller), json!({"title": "Kettle", "price_cents": PRICE, "stock": stock})).await["id"].clone();
    let request = client.post(format!("{}/api/v1/wallet/top-up", server.base)).bearer_auth(&buyer).header("idempotency-key", "first").json(&json!({"amount_cents": top_up}));
    assert!(request.send().await.unwrap().status().is_success());
    Some(Scene { data_dir, client, server, seller, buyer, product })
}

async fn crash_and_recover(point: &str, flow: Flow, backend: helpers::Backend) {
    let Some(Scene { data_dir, client, server, seller, buyer, product }) = scene(point, backend, 5, TOP_UP).await else { return };
    let api = Api { client: &client, base: &server.base };
    let checkout = api.ok(reqwest::Method::POST, "/api/v1/checkout", Some(&buyer), json!({"lines": [{"product_id": product, "quantity": 2}]})).await;
    let address = json!({"name": "Bea", "line1": "1 Tea St", "city": "Leafton", "postal_code": "1234", "country": "NL"});
    let placed = api
        .ok(reqwest::Method::POST, "/api/v1/orders", Some(&buyer), json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"], "shipping_address": address}))
        .await;
    let id = placed["id"].as_str().unwrap().to_owned();
    let total = 2 * PRICE;

    let fatal = match flow {
        Flow::Pay => format!("/api/v1/orders/{id}/pay"),
        Flow::Refund => {
            api.ok(reqwest::Method::POST, &format!("/api/v1/orders/{id}/pay"), Some(&buyer), Value::Null).await;
            format!("/api/v1/orders/{id}/cancel")
        }
        Flow::Release => {
            api.ok(reqwest::Method::POST, &format!("/api/v1/orders/{id}/pay"), Some(&buyer), Value::Null).await;
            let waybill = json!({"carrier": "DHL", "tracking_number": "JD0001", "expected_version": 0});
            api.ok(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{id}/shipping"), Some(&seller), waybill).await;
            format!("/api/v1/orders/{id}/confirm-receipt")
        }
    };
    // The request dies with the process: no answer.
    assert!(api.send(reqwest::Method::POST, &fatal, Some(&buyer), Value::Null).await.is_err(), "{point}: the server answered instead of dying");
    let server = restart_after_kill(server, data_dir.path(), point);
    let api = Api { client: &client, base: &server.base };
    let expected = match (flow, point) {
        (Flow::Pay, "pay:charging") => "pending_payment",
        (Flow::Pay, _) => "paid",
        (Flow::Refund, _) => "cancelled",
        (Flow::Release, _) => "completed",
    };
    // Recovery runs in the background; wait for the order and its money to settle.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (order, buyer_balance, seller_balance) = loop {
        let order = api.ok(reqwest::Method::GET, &format!("/api/v1/orders/{id}"), Some(&buyer), Value::Null).await;
        let buyer_balance = api.balance(&buyer).await;
        let seller_balance = api.balance(&seller).await;
        let settled = match flow {
            Flow::Pay => true,
            Flow::Refund => buyer_balance == TOP_UP,
            Flow::Release => seller_balance == total,
        };
        if order["status"] == expected && settled {
            break (order, buyer_balance, seller_balance);
        }
        assert!(Instant::now() < deadline, "{point}: not recovered: order {order}, buyer {buyer_balance}, seller {seller_balance}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (want_buyer, want_seller) = match expected {
        "pending_payment" | "cancelled" => (TOP_UP, 0),
        "paid" => (TOP_UP - total, 0),
        _ => (TOP_UP - total, total),
    };
    assert_eq!((buyer_balance, seller_balance), (want_buyer, want_seller), "{point}: {order}");
    let stock = api.ok(reqwest::Method::GET, &format!("/api/v1/products/{product}"), None, Value::Null).await["stock"].clone();
    let want_stock = match expected {
        "cancelled" => json!({"available": 5, "reserved": 0, "sold": 0}),
        "pending_payment" => json!({"available": 3, "reserved": 2, "sold": 0}),
        _ => json!({"available": 3, "reserved": 0, "sold": 2}),
    };
    assert_eq!(stock, want_stock, "{point}");

    // The admin command agrees: every balance equals the sum of its journal.
    let (succeeded, report) = run_subcommand(data_dir.path(), &["reconcile"]);
    assert!(succeeded, "{point}: reconcile failed: {report}");
    assert_eq!(report["mismatches"], json!([]), "{point}");

    // After an interrupted payment that moved nothing, paying again works, once.
    if expected == "pending_payment" {
        let paid = api.ok(reqwest::Method::POST, &format!("/api/v1/orders/{id}/pay"), Some(&buyer), Value::Null).await;
        assert_eq!(paid["status"], "paid");
        assert_eq!(api.balance(&buyer).await, TOP_UP - total);
    }
}

/// One test per crash point and backend: `name: runner(arguments before the backend);`.
macro_rules! crash_tests {
    ($($name:ident: $run:ident($($arg:expr),*);)*) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    $run($($arg,)* helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    $run($($arg,)* helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}


/// The seller index's delivery is killed mid-way (SIGKILL after the `n`-th pass
/// through `point`) while orders keep arriving; after a restart the index holds
/// exactly the shards' state, and the rebuild command finds no difference.
async fn kill_the_seller_index_delivery(point: &str, backend: helpers::Backend) {
    let Some(Scene { data_dir, client, server, seller, buyer, product }) = scene(point, backend, 1000, 1_000_000).await else { return };
    let api = Api { client: &client, base: &server.base };
    // Orders (every other one paid) until the delivery kills the process.
    let mut died = false;
    for i in 0..400 {
        if place_and_maybe_pay(&api, &buyer, &product, i % 2 == 0).await.is_err() {
            died = true;
            break;
        }
    }
    assert!(died, "{point}: the server never reached its crash point");
    let server = restart_after_kill(server, data_dir.path(), point);
    let api = Api { client: &client, base: &server.base };
    for i in 0..10 {
        place_and_maybe_pay(&api, &buyer, &product, i % 2 == 0).await.unwrap();
    }
    // The buyer's view (from the shard) and the seller's (from the index) agree once delivered.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mine = all_orders(&api, "/api/v1/orders", &buyer).await;
        let sellers = all_orders(&api, "/api/v1/seller/orders", &seller).await;
        if mine == sellers {
            assert!(mine.len() > 10, "{point}: only {} orders", mine.len());
            break;
        }
        assert!(Instant::now() < deadline, "{point}: the index never caught up: shards {} orders, index {}", mine.len(), sellers.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (clean, report) = run_subcommand(data_dir.path(), &["rebuild-seller-index", "--dry-run"]);
    assert!(clean, "{point}: the rebuild found differences: {report}");
    assert_eq!(report["differences"], json!([]));
    assert_eq!(report["orders_checked"], report["index_rows_checked"]);
}

/// The archive job is killed after copying a batch, after verifying it, in the
/// middle of deleting it from the shard, and after deleting it (before the seller
/// index and the archive know the move is done); after a restart the next pass
/// finishes the move: every order is found, with the content it had, in exactly
/// one place, and the seller index lists each once, marked archived.
async fn kill_the_archive_move(point: &str, backend: helpers::Backend) {
    let Some(Scene { data_dir, client, server, seller, buyer, product }) = scene(point, backend, 1000, 1_000_000).await else { return };
    let api = Api { client: &client, base: &server.base };
    let mut ids = Vec::new();
    for i in 0..12 {
        place_and_maybe_pay(&api, &buyer, &product, i % 2 == 0).await.unwrap();
        let id = all_orders(&api, "/api/v1/orders", &buyer).await.into_iter().map(|(id, _)| id).max().unwrap();
        if i % 2 == 0 {
            let waybill = json!({"carrier": "DHL", "tracking_number": format!("JD{i}"), "expected_version": 0});
            api.ok(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{id}/shipping"), Some(&seller), waybill).await;
            api.ok(reqwest::Method::POST, &format!("/api/v1/orders/{id}/confirm-receipt"), Some(&buyer), Value::Null).await;
        } else {
            api.ok(reqwest::Method::POST, &format!("/api/v1/orders/{id}/cancel"), Some(&buyer), Value::Null).await;
        }
        ids.push(id);
    }
    let mut before = Vec::new();
    for id in &ids {
        before.push(api.ok(reqwest::Method::GET, &format!("/api/v1/orders/{id}"), Some(&buyer), Value::Null).await);
    }
    // Every order is final: with the hot window at zero the next pass takes them
    // all, in batches of 5, and reaches the armed crash point.
    drop(server);
    let config = data_dir.path().join("ninefold.toml");
    let text = std::fs::read_to_string(&config).unwrap() + "[archive]\nafter_days = 0\nbatch = 5\n";
    std::fs::write(&config, text).unwrap();
    let server = start(data_dir.path(), Some(point));
    let mut child = server;
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{point}: the archive job never reached its crash point");
        std::thread::sleep(Duration::from_millis(50));
    }
    let server = restart_after_kill(child, data_dir.path(), point);
    let api = Api { client: &client, base: &server.base };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let history = all_orders(&api, "/api/v1/orders/history", &buyer).await;
        let recent = all_orders(&api, "/api/v1/orders", &buyer).await;
        let seller_rows = all_orders(&api, "/api/v1/seller/orders", &seller).await;
        if history.len() == ids.len() && recent.is_empty() && seller_rows.len() == ids.len() {
            break;
        }
        assert!(Instant::now() < deadline, "{point}: the move never finished: {} in history, {} recent", history.len(), recent.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (id, was) in ids.iter().zip(before) {
        let mut now = api.ok(reqwest::Method::GET, &format!("/api/v1/orders/{id}"), Some(&buyer), Value::Null).await;
        assert_eq!(now["archived"], true, "{point}: {id}");
        now["archived"] = json!(false);
        assert_eq!(now, was, "{point}: {id} changed on its way to the archive");
    }
    let (clean, report) = run_subcommand(data_dir.path(), &["rebuild-seller-index", "--dry-run"]);
    assert!(clean, "{point}: the seller index differs: {report}");
    drop(server);
    // In exactly one place: gone from every shard, once in the archive, nothing settling.
    let databases = match backend {
        helpers::Backend::Sqlite => DatabaseConfig::sqlite_in(data_dir.path(), 4),
        helpers::Backend::Postgres => read_databases(&config),
    };
    let shop = shop::Shop::open(&databases, &Default::default()).await.unwrap();
    for id in &ids {
        let id: shop::orders::OrderId = id.parse().unwrap();
        let hot: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE id = $1").bind(id.get()).fetch_one(shop.orders.shards().of_order(id).pool()).await.unwrap();
        let cold: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE id = $1 AND settling = 0").bind(id.get()).fetch_one(shop.databases.archive.pool()).await.unwrap();
        assert_eq!((hot, cold), (0, 1), "{point}: order {id}");
    }
    let settling: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE settling = 1").fetch_one(shop.databases.archive.pool()).await.unwrap();
    assert_eq!(settling, 0, "{point}");
    shop.databases.close().await;
}

/// The PostgreSQL URLs written into a test's configuration file.
fn read_databases(config: &Path) -> DatabaseConfig {
    #[derive(serde::Deserialize)]
    struct File {
        databases: DatabaseConfig,
    }
    let text = std::fs::read_to_string(config).unwrap();
    let start = text.find("[databases]").unwrap();
    let end = text[start..].find("[archive]").map_or(text.len(), |n| start + n);
    toml::from_str::<File>(&text[start..end]).unwrap().databases
}

async fn place_and_maybe_pay(api: &Api<'_>, buyer: &str, product: &Value, pay: bool) -> Result<(), reqwest::Error> {
    let (_, checkout) = api.send(reqwest::Method::POST, "/api/v1/checkout", Some(buyer), json!({"lines": [{"product_id": product, "quantity": 1}]})).await?;
    let address = json!({"name": "Bea", "line1": "1 Tea St", "city": "Leafton", "postal_code": "1234", "country": "NL"});
    let body = json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"], "shipping_address": address});
    let (status, placed) = api.send(reqwest::Method::POST, "/api/v1/orders", Some(buyer), body).await?;
    assert_eq!(status, 201, "{placed}");
    if pay {
        let id = placed["id"].as_str().unwrap();
        api.send(reqwest::Method::POST, &format!("/api/v1/orders/{id}/pay"), Some(buyer), Value::Null).await?;
    }
    Ok(())
}

/// Every order in a paginated list, as (id, status), sorted by id.
async fn all_orders(api: &Api<'_>, path: &str, token: &str) -> Vec<(String, String)> {
    let mut orders = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = api.ok(reqwest::Method::GET, &format!("{path}?limit=100&cursor={cursor}"), Some(token), Value::Null).await;
        orders.extend(page["items"].as_array().unwrap().iter().map(|o| (o["id"].as_str().unwrap().to_owned(), o["status"].as_str().unwrap().to_owned())));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    orders.sort();
    orders
}

crash_tests! {
    a_crash_inside_the_paying_transaction_moves_nothing: crash_and_recover("pay:charging", Flow::Pay);
    a_crash_after_charging_completes_the_payment_once: crash_and_recover("pay:charged", Flow::Pay);
    a_crash_after_marking_paid_completes_the_payment_once: crash_and_recover("pay:marked_paid", Flow::Pay);
    a_crash_after_requesting_a_refund_refunds_once: crash_and_recover("refund:requested", Flow::Refund);
    a_crash_after_cancelling_a_paid_order_refunds_once: crash_and_recover("refund:cancelled", Flow::Refund);
    a_crash_after_requesting_a_release_pays_the_seller_once: crash_and_recover("release:requested", Flow::Release);
    a_crash_after_completing_an_order_pays_the_seller_once: crash_and_recover("release:completed", Flow::Release);
    the_seller_index_delivery_killed_after_applying_an_event_stays_exact: kill_the_seller_index_delivery("seller_index.after_apply#25");
    the_seller_index_relay_killed_before_clearing_the_outbox_stays_exact: kill_the_seller_index_delivery("seller_index.before_clearing_outbox#10");
    the_archive_killed_after_copying_a_batch_finishes_the_move: kill_the_archive_move("archive:copied#2");
    the_archive_killed_after_verifying_a_batch_finishes_the_move: kill_the_archive_move("archive:verified#2");
    the_archive_killed_mid_delete_finishes_the_move: kill_the_archive_move("archive:mid_delete#2");
    the_archive_killed_after_deleting_finishes_the_move: kill_the_archive_move("archive:deleted#2");
}
