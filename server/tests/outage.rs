//! A database that stops answering under a running server (PostgreSQL, the
//! cluster killed): every request fails fast with 503 and Retry-After (pages too,
//! never a 200), `/healthz` answers within a second, the site recovers by itself
//! when the database returns, and SIGTERM still stops the process in bounded time.

mod common;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn pg_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-throwaway.sh")
}

fn cluster(action: &str, dir: &Path) -> String {
    let output = Command::new(pg_script()).args([action, &dir.to_string_lossy()]).output().unwrap();
    assert!(output.status.success(), "pg-throwaway {action}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A throwaway cluster of this test's own (stopping it must not stop the others'),
/// or `None` on a machine without PostgreSQL (never in CI).
fn own_cluster(dir: &Path) -> Option<String> {
    let installed = std::fs::read_dir("/usr/lib/postgresql").is_ok();
    let required = std::env::var_os("CI").is_some() || std::env::var_os("NINEFOLD_TEST_REQUIRE_PG").is_some();
    if !installed {
        assert!(!required, "PostgreSQL is required here");
        eprintln!("skipped: PostgreSQL is not installed");
        return None;
    }
    Some(cluster("start", dir))
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn start_server(data_dir: &Path, admin_url: &str) -> Server {
    let base_url = admin_url.trim_end_matches("/postgres");
    let role = |schema: &str| format!("{{ url = \"{base_url}/postgres?options[search_path]={schema}\" }}");
    let config = format!(
        "[databases]\nmain = {}\nshards = [{}, {}]\narchive = {}\n",
        role("main"),
        role("shard_0"),
        role("shard_1"),
        role("archive")
    );
    std::fs::write(data_dir.join("ninefold.toml"), config).unwrap();
    let port = common::free_port();
    let child = common::server_command(port)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("NINEFOLD_CONFIG", data_dir.join("ninefold.toml"))
        .env("NINEFOLD_SHUTDOWN_GRACE_SECS", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server { child: common::listening(child, port).expect("the server starts"), base: format!("http://127.0.0.1:{port}") }
}

async fn timed(client: &reqwest::Client, url: &str) -> (u16, Option<String>, String, Duration) {
    let started = Instant::now();
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    (status, retry_after, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_gets_fast_503s_recovery_and_a_bounded_shutdown() {
    let pg_dir = tempfile::tempdir().unwrap();
    let pg_path = pg_dir.path().join("cluster");
    let Some(admin_url) = own_cluster(&pg_path) else { return };
    {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        for schema in ["main", "shard_0", "shard_1", "archive"] {
            sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.unwrap();
        }
    }
    let data_dir = tempfile::tempdir().unwrap();
    let server = start_server(data_dir.path(), &admin_url);
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);

    // A seller and two products; the second page is never rendered before the outage.
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = client.post(url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    post("/api/v1/auth/register", None, json!({"email": "s@example.com", "password": "a long enough password", "name": "S", "role": "seller"})).await;
    let seller = post("/api/v1/auth/login", None, json!({"email": "s@example.com", "password": "a long enough password"})).await["token"].as_str().unwrap().to_owned();
    let first = post("/api/v1/seller/products", Some(&seller), json!({"title": "Lamp", "price_cents": 900, "stock": 3})).await["id"].clone();
    let unseen = post("/api/v1/seller/products", Some(&seller), json!({"title": "Kettle", "price_cents": 900, "stock": 3})).await["id"].clone();
    assert_eq!(timed(&client, &url(&format!("/products/{first}"))).await.0, 200);
    assert_eq!(timed(&client, &url("/healthz")).await.0, 200);

    cluster("halt", &pg_path);
    let (status, retry_after, body, took) = timed(&client, &url("/api/v1/products")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database_unavailable") && retry_after.is_some(), "{body}");
    assert!(took < Duration::from_secs(4), "the API took {took:?}");
    let (status, _, body, took) = timed(&client, &url("/healthz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"main\":\"down\""), "{body}");
    assert!(took < Duration::from_millis(1500), "/healthz took {took:?}");
    let (status, retry_after, body, took) = timed(&client, &url(&format!("/products/{unseen}"))).await;
    assert_eq!(status, 503, "a page that cannot load is no 200: {body}");
    assert!(retry_after.is_some());
    assert!(took < Duration::from_secs(4), "the page took {took:?}");

    cluster("resume", &pg_path);
    let recovering = Instant::now();
    loop {
        let (health, ..) = timed(&client, &url("/healthz")).await;
        let (products, ..) = timed(&client, &url("/api/v1/products")).await;
        if health == 200 && products == 200 {
            break;
        }
        assert!(recovering.elapsed() < Duration::from_secs(20), "never recovered: healthz {health}, products {products}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A restart between two quiet moments: every pooled connection is dead but idle for
    // longer than shop::db::PING_AFTER_IDLE, so it is pinged, found dead and replaced
    // before use. No request after the restart may see the old connections. (The
    // throwaway cluster runs with synchronous_commit off, so an immediate halt may
    // forget the last commits, even ones read back: these reads need no row of ours.)
    for _ in 0..5 {
        assert_eq!(timed(&client, &url("/api/v1/products")).await.0, 200);
    }
    cluster("halt", &pg_path);
    cluster("resume", &pg_path);
    tokio::time::sleep(shop::db::PING_AFTER_IDLE + Duration::from_millis(300)).await;
    for path in ["/api/v1/products", "/", "/healthz"] {
        let (status, _, body, _) = timed(&client, &url(path)).await;
        assert_eq!(status, 200, "{path} after a restart: {body}");
    }

    // Gone again, and the server is told to stop: it stops within its grace period.
    cluster("halt", &pg_path);
    let mut server = server;
    common::terminate(&server.child);
    let stopping = Instant::now();
    loop {
        if server.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(stopping.elapsed() < Duration::from_secs(8), "still running 8 s after SIGTERM (grace 3 s)");
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster("stop", &pg_path);
}
