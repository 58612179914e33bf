//! Starts the real server in-process on port 0 with a fresh database per test,
//! on SQLite (a temporary folder) or PostgreSQL (a fresh database on the server
//! named by NINEFOLD_TEST_PG_URL, one schema per role), and offers typed helpers.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use server::config::Settings;
use shop::Shop;
use shop::db::{DatabaseConfig, DatabaseUrl};
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    /// The same services the server uses, to check stored state directly.
    pub shop: Shop,
    /// The databases it was started on.
    pub databases: DatabaseConfig,
    shutdown: CancellationToken,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    /// The app's data folder (SQLite files, images).
    pub fn data_dir(&self) -> &std::path::Path {
        self._data_dir.path()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

const SHARDS: usize = 2;

/// The app on `backend`, or `None` when PostgreSQL is not configured on a
/// developer's machine. Under CI (or NINEFOLD_TEST_REQUIRE_PG) a missing
/// PostgreSQL fails the test instead of skipping it.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}, false).await
}

/// As [`spawn_app`], with changed settings, and with the background workers
/// running when `workers` is set (off by default, so tests that drive a worker's
/// pass themselves are not raced by it).
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings), workers: bool) -> Option<TestApp> {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let databases = match backend {
        Backend::Sqlite => DatabaseConfig { timeouts: slow_machine_timeouts(), ..DatabaseConfig::sqlite_in(data_dir.path(), SHARDS) },
        Backend::Postgres => postgres_databases().await?,
    };
    Some(spawn_app_on(databases, data_dir, adjust, workers).await)
}

/// The app on given databases (another instance may already serve them).
pub async fn spawn_app_on(databases: DatabaseConfig, data_dir: tempfile::TempDir, adjust: impl FnOnce(&mut Settings), workers: bool) -> TestApp {
    let mut settings = Settings {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: PathBuf::from(data_dir.path()),
        databases,
        hold_ttl_secs: 1800,
        seed_demo: false,
        // Tests place many orders per buyer; the cap has its own tests (abuse.rs).
        max_unpaid_orders: 1_000_000,
        // Tests fund many orders; the cap has its own tests (abuse.rs).
        top_ups: shop::services::ledger::TopUpPolicy { enabled: true, daily_cap_cents: i64::MAX / 4 },
        auto_complete_secs: 14 * 24 * 60 * 60,
        // Tests register many accounts from one address; the limits have their own tests.
        rate_limits: server::config::RateLimitSettings::off(),
        trust_forwarded_for: false,
        request_timeout_ms: 30_000,
        shutdown_grace_secs: 10,
        metrics_token: None,
        session_idle_secs: 7 * 24 * 60 * 60,
        secure_cookies: false,
        json_logs: false,
        schedules: Default::default(),
        archive: Default::default(),
        image_store_url: format!("file://{}", data_dir.path().join("images").display()),
        image_store_options: Default::default(),
    };
    adjust(&mut settings);
    server::telemetry::init(false);
    let app = server::Application::build(&settings).await.expect("the application builds");
    let shop = app.shop.clone();
    let databases = settings.databases.clone();
    let listener = tokio::net::TcpListener::bind(settings.addr).await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    if workers {
        server::workers::spawn_all(&shop, &settings, &shutdown);
    }
    tokio::spawn(app.serve(listener, shutdown.clone()));
    let client = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { base, client, shop, databases, shutdown, _data_dir: data_dir }
}

pub async fn postgres_databases() -> Option<DatabaseConfig> {
    let Ok(admin_url) = std::env::var("NINEFOLD_TEST_PG_URL") else {
        let required = std::env::var_os("CI").is_some() || std::env::var_os("NINEFOLD_TEST_REQUIRE_PG").is_some();
        assert!(!required, "NINEFOLD_TEST_PG_URL is not set, and PostgreSQL tests are required here");
        eprintln!("skipped: set NINEFOLD_TEST_PG_URL to run the PostgreSQL variant");
        return None;
    };
    use sqlx::Connection;
    let name = format!("nf_test_{}", uuid_like());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connecting to NINEFOLD_TEST_PG_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("creating a test database");
    let base = match admin_url.rfind('/') {
        Some(slash) if admin_url[..slash].contains("://") && slash > admin_url.find("://").unwrap() + 2 => admin_url[..slash].to_owned(),
        _ => admin_url.clone(),
    };
    let db_url = format!("{base}/{name}");
    let mut conn = sqlx::PgConnection::connect(&db_url).await.expect("connecting to the test database");
    let mut schemas = vec!["main".to_owned(), "archive".to_owned()];
    schemas.extend((0..SHARDS).map(|k| format!("shard_{k}")));
    for schema in &schemas {
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.unwrap();
    }
    let role = |schema: &str| DatabaseUrl::new(format!("{db_url}?options[search_path]={schema}"));
    Some(DatabaseConfig { main: role("main"), shards: (0..SHARDS).map(|k| role(&format!("shard_{k}"))).collect(), archive: role("archive"), timeouts: slow_machine_timeouts(), max_replica_lag_ms: 5000 })
}

/// The tests run hundreds of requests at once on two cores: a pooled connection
/// may take longer than the production default's 2 s to come free.
pub fn slow_machine_timeouts() -> shop::db::DbTimeouts {
    shop::db::DbTimeouts { acquire_ms: 30_000, statement_ms: 60_000 }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}_{}_{}", std::process::id(), nanos % 1_000_000_000_000, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A response read whole: status, headers and JSON (or text) body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn read(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self { status, headers, body, text }
    }

    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts an RFC 9457 problem with this status and code, and returns it.
    pub fn assert_problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        assert_eq!(self.content_type(), "application/problem+json", "body: {}", self.text);
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert_eq!(self.body["status"], status);
        for key in ["type", "title", "detail"] {
            assert!(self.body[key].is_string(), "problem lacks {key}: {}", self.text);
        }
        &self.body
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::read(request.send().await.expect("GET sent")).await
    }

    pub async fn send_json(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: &Value) -> Reply {
        let mut request = self.client.request(method, self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::read(request.send().await.expect("request sent")).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send_json(reqwest::Method::POST, path, token, body).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send_json(reqwest::Method::PATCH, path, token, body).await
    }

    /// Registers an account and returns its user object.
    pub async fn register(&self, email: &str, role: &str) -> Value {
        let reply = self.post("/api/v1/auth/register", None, &json!({"email": email, "password": "correct horse", "name": "Test Person", "role": role})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "register {email}: {}", reply.text);
        reply.body["user"].clone()
    }

    /// Signs in with the password `register` uses and returns the bearer token.
    pub async fn login(&self, email: &str) -> String {
        let reply = self.post("/api/v1/auth/login", None, &json!({"email": email, "password": "correct horse"})).await;
        assert_eq!(reply.status, StatusCode::OK, "login {email}: {}", reply.text);
        reply.body["token"].as_str().unwrap().to_owned()
    }

    /// A new account of `role`, signed in: (token, user).
    pub async fn signed_in(&self, email: &str, role: &str) -> (String, Value) {
        let user = self.register(email, role).await;
        (self.login(email).await, user)
    }

    /// Creates a product as `seller` and returns it.
    pub async fn create_product(&self, seller: &str, title: &str, price_cents: i64, stock: i64) -> Value {
        let reply = self
            .post("/api/v1/seller/products", Some(seller), &json!({"title": title, "description": "A thing.", "price_cents": price_cents, "stock": stock}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "create product: {}", reply.text);
        reply.body
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(self.shop.databases.main.pool()).await.unwrap()
    }
}

/// An admin account, signed in. Registration only makes buyers and sellers; an
/// operator promotes admins in the database, as this does.
pub async fn make_admin(app: &TestApp, email: &str) -> String {
    let user = app.register(email, "buyer").await;
    sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1").bind(user["id"].as_i64().unwrap()).execute(app.shop.databases.main.pool()).await.unwrap();
    app.login(email).await
}

/// Generates one test per backend for each listed `async fn(TestApp)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await.expect("SQLite is always available");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

/// Runs `$test` on both backends with `$adjust`ed settings, the background
/// workers running when `$workers` is true.
#[macro_export]
macro_rules! with_settings_on_both_backends {
    ($test:ident, $adjust:expr, $workers:expr) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app_with($crate::helpers::Backend::Sqlite, $adjust, $workers).await.expect("SQLite is always available");
                super::$test(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::spawn_app_with($crate::helpers::Backend::Postgres, $adjust, $workers).await {
                    super::$test(app).await;
                }
            }
        }
    };
}
