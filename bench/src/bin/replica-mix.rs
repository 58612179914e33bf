//! Replicas (issue 10, DESIGN.md failure mode 7): a mixed read/write run over HTTP.
//! `--buyers` buyers each do `--rounds` rounds of: browse the catalog (a page and
//! a product), open a checkout and place an order, pay it, read the order, list
//! their orders and read their wallet. Prints one table row: requests per second,
//! and, from the server's `/metrics`, how many display reads went to a replica and
//! how many to the primary (the replica's share), and the fallbacks by reason.

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    base: String,
    #[arg(long, default_value_t = 20)]
    buyers: usize,
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    #[arg(long, default_value = "primary only")]
    label: String,
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<&Value>) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {body}");
        }
        Ok(body)
    }

    async fn account(&self, email: &str, role: &str) -> anyhow::Result<String> {
        let password = "replica-mix-password";
        self.call(reqwest::Method::POST, "/api/v1/auth/register", None, Some(&json!({"email": email, "password": password, "name": "Bench", "role": role}))).await?;
        let body = self.call(reqwest::Method::POST, "/api/v1/auth/login", None, Some(&json!({"email": email, "password": password}))).await?;
        Ok(body["token"].as_str().context("a token")?.to_owned())
    }

    async fn metric(&self, name: &str, labels: &[&str]) -> anyhow::Result<f64> {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await?.text().await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|label| l.contains(label)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}

async fn buyer_rounds(client: Client, token: String, product: i64, rounds: usize) -> anyhow::Result<u64> {
    use reqwest::Method;
    let mut requests = 0;
    let address = json!({"name": "Mia", "line1": "1 Mix Road", "city": "Utrecht", "postal_code": "3511", "country": "NL"});
    for _ in 0..rounds {
        client.call(Method::GET, "/api/v1/products", None, None).await?;
        client.call(Method::GET, &format!("/api/v1/products/{product}"), Some(&token), None).await?;
        let checkout = client.call(Method::POST, "/api/v1/checkout", Some(&token), Some(&json!({"lines": [{"product_id": product, "quantity": 1}]}))).await?;
        let body = json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"], "shipping_address": address});
        let order = client.call(Method::POST, "/api/v1/orders", Some(&token), Some(&body)).await?;
        let id = order["id"].as_str().context("an order id")?.to_owned();
        client.call(Method::POST, &format!("/api/v1/orders/{id}/pay"), Some(&token), None).await?;
        let read = client.call(Method::GET, &format!("/api/v1/orders/{id}"), Some(&token), None).await?;
        if read["status"] != "paid" {
            bail!("read {id} as {} right after paying it", read["status"]);
        }
        client.call(Method::GET, "/api/v1/orders", Some(&token), None).await?;
        client.call(Method::GET, "/api/v1/wallet", Some(&token), None).await?;
        // A second look a moment later, as a shopper would.
        client.call(Method::GET, "/api/v1/products", None, None).await?;
        requests += 10;
    }
    Ok(requests)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = Client { http: reqwest::Client::new(), base: args.base.trim_end_matches('/').to_owned() };
    let seller = client.account("mix-seller@bench.test", "seller").await?;
    let product = client
        .call(reqwest::Method::POST, "/api/v1/seller/products", Some(&seller), Some(&json!({"title": "Mixed lamp", "price_cents": 100, "stock": 1_000_000, "inventory_mode": "on_order"})))
        .await?["id"]
        .as_i64()
        .context("a product id")?;
    let mut tokens = Vec::new();
    for b in 0..args.buyers {
        let token = client.account(&format!("mix-buyer-{b}@bench.test"), "buyer").await?;
        let top_up = client.http.post(format!("{}/api/v1/wallet/top-up", client.base)).bearer_auth(&token).header("idempotency-key", format!("mix-{b}")).json(&json!({"amount_cents": 1_000_000})).send().await?;
        if !top_up.status().is_success() {
            bail!("top-up: {}", top_up.status());
        }
        tokens.push(token);
    }
    let replica_before = client.metric("ninefold_db_reads_total", &["target=\"replica\""]).await?;
    let primary_before = client.metric("ninefold_db_reads_total", &["target=\"primary\""]).await?;
    let started = Instant::now();
    let runs: Vec<_> = tokens.into_iter().map(|token| tokio::spawn(buyer_rounds(client.clone(), token, product, args.rounds))).collect();
    let mut requests = 0;
    for run in runs {
        requests += run.await??;
    }
    let took = started.elapsed().as_secs_f64();
    let replica = client.metric("ninefold_db_reads_total", &["target=\"replica\""]).await? - replica_before;
    let primary = client.metric("ninefold_db_reads_total", &["target=\"primary\""]).await? - primary_before;
    let mut fallbacks = Vec::new();
    for reason in ["fence", "lag", "down"] {
        fallbacks.push(format!("{reason} {}", client.metric("ninefold_replica_fallbacks_total", &[&format!("reason=\"{reason}\"")]).await? + 0.0));
    }
    println!(
        "| {} | {} | {requests} | {:.0} | {replica} | {primary} | {:.0}% | {} |",
        args.label,
        args.buyers,
        requests as f64 / took,
        if replica + primary > 0.0 { 100.0 * replica / (replica + primary) } else { 0.0 },
        fallbacks.join(", ")
    );
    Ok(())
}
