//! The real binary refuses to start when the configured order shards do not match
//! the shard map stored on its first start: a clear message, exit 1, nothing moved.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};

/// Runs the server on `data_dir` (with `config`, if given) until it listens, and
/// returns its port and the child; or, if it exits first, its output.
fn start(data_dir: &Path, config: Option<&Path>) -> Result<(u16, std::process::Child), Output> {
    let port = common::free_port();
    let mut command = common::server_command(port);
    command.env("NINEFOLD_DATA_DIR", data_dir).env("NINEFOLD_NO_DEMO", "1");
    if let Some(config) = config {
        command.env("NINEFOLD_CONFIG", config);
    }
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    Ok((port, common::listening(child, port)?))
}

fn stop(mut child: std::process::Child) {
    common::terminate(&child);
    child.wait().unwrap();
}

async fn place_an_order(port: u16) -> (String, String) {
    use serde_json::{Value, json};
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://127.0.0.1:{port}/api/v1{path}");
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = client.post(url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let mut tokens = Vec::new();
    for (email, role) in [("s@example.com", "seller"), ("b@example.com", "buyer")] {
        post("/auth/register", None, json!({"email": email, "password": "a long enough password", "name": "Someone", "role": role})).await;
        tokens.push(post("/auth/login", None, json!({"email": email, "password": "a long enough password"})).await["token"].as_str().unwrap().to_owned());
    }
    let product = post("/seller/products", Some(&tokens[0]), json!({"title": "Lamp", "price_cents": 900, "stock": 3})).await;
    let checkout = post("/checkout", Some(&tokens[1]), json!({"lines": [{"product_id": product["id"], "quantity": 1}]})).await;
    let address = json!({"name": "B", "line1": "1 Road", "city": "Town", "postal_code": "1000", "country": "NL"});
    let order = post("/orders", Some(&tokens[1]), json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"], "shipping_address": address})).await;
    (order["id"].as_str().expect("an order id").to_owned(), tokens[1].clone())
}

#[tokio::test]
async fn a_start_with_fewer_shards_than_the_stored_map_is_refused() {
    let data_dir = tempfile::tempdir().unwrap();
    let (port, child) = start(data_dir.path(), None).expect("the first start (4 shards, the embedded default)");
    let (order_id, buyer) = place_an_order(port).await;
    stop(child);

    let sqlite = |name: &str| format!("{{ url = \"sqlite://{}?mode=rwc\" }}", data_dir.path().join(name).display());
    let config = data_dir.path().join("three-shards.toml");
    let shards = (0..3).map(|k| sqlite(&format!("shard_{k}.db"))).collect::<Vec<_>>().join(", ");
    std::fs::write(&config, format!("[databases]\nmain = {}\narchive = {}\nshards = [{shards}]\n", sqlite("main.db"), sqlite("archive.db"))).unwrap();
    let refused = start(data_dir.path(), Some(&config)).map(|(_, child)| stop(child)).expect_err("a start with 3 shards must be refused");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("names 3 order shard(s)") && stderr.contains("has 4"), "{stderr}");

    let (port, child) = start(data_dir.path(), None).expect("the start with the right shards");
    let found = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/api/v1/orders/{order_id}")).bearer_auth(&buyer).send().await.unwrap();
    assert_eq!(found.status(), 200, "the order is where it was");
    stop(child);
}
