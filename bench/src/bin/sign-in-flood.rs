//! The sign-in flood (issue: abuse and faults): a script floods sign-in with random
//! emails from one address while a real buyer, from another address, signs in,
//! checks out and places an order. Passes when the buyer is done within
//! `--buyer-deadline-secs`, the flood was answered only with 401, 429 or 503
//! (never another 5xx), and the server's memory levelled off: it grew by less than
//! `--max-rss-growth-mb` over the second half of the flood (the first half sees the
//! allocator's arenas and connection buffers fill once).
//! Prints one summary line, and exits non-zero on any failure.

use anyhow::{Context, bail, ensure};
use clap::Parser;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The server under test (listening on 127.0.0.1).
    #[arg(long)]
    base: String,
    /// Its process id, to read its memory.
    #[arg(long)]
    pid: u32,
    #[arg(long, default_value_t = 64)]
    flooders: usize,
    #[arg(long, default_value_t = 20)]
    flood_secs: u64,
    #[arg(long, default_value_t = 15)]
    buyer_deadline_secs: u64,
    #[arg(long, default_value_t = 64)]
    max_rss_growth_mb: u64,
    #[arg(long, default_value = "buyer@ninefold.test")]
    buyer_email: String,
    #[arg(long, default_value = "buyer-demo-pass")]
    buyer_password: String,
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the server's /proc status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("no VmRSS value")?.parse()?)
}

fn client_from(address: [u8; 4]) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().local_address(IpAddr::from(address)).timeout(Duration::from_secs(30)).build()?)
}

async fn post(client: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> anyhow::Result<(u16, Value)> {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Signs in (retrying on 503 as Retry-After asks), finds a product in stock,
/// opens a checkout and places the order. Returns how long it took.
async fn buy(args: &Args) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let client = client_from([127, 0, 0, 2])?;
    let token = loop {
        let (status, body) = post(&client, format!("{}/api/v1/auth/login", args.base), None, json!({"email": args.buyer_email, "password": args.buyer_password})).await?;
        match status {
            200 => break body["token"].as_str().context("a token")?.to_owned(),
            503 | 429 => tokio::time::sleep(Duration::from_millis(500)).await,
            other => bail!("the buyer's sign-in answered {other}: {body}"),
        }
    };
    let products: Value = client.get(format!("{}/api/v1/products", args.base)).send().await?.json().await?;
    let product = products["items"].as_array().context("products")?.iter().find(|p| p["stock"]["available"].as_i64() > Some(0)).context("a product in stock")?.clone();
    let (status, checkout) = post(&client, format!("{}/api/v1/checkout", args.base), Some(&token), json!({"lines": [{"product_id": product["id"], "quantity": 1}]})).await?;
    ensure!(status == 201, "checkout answered {status}: {checkout}");
    let address = json!({"name": "Bea Buyer", "line1": "1 Tea Street", "city": "Leafton", "postal_code": "12345", "country": "NL"});
    let body = json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"], "shipping_address": address, "expected_total_cents": checkout["total_cents"]});
    let (status, order) = post(&client, format!("{}/api/v1/orders", args.base), Some(&token), body).await?;
    ensure!(status == 201, "placing the order answered {status}: {order}");
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let rss_before = rss_kib(args.pid)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flood = client_from([127, 0, 0, 1])?;
    let mut flooders = Vec::new();
    for worker in 0..args.flooders {
        let (flood, stop, args) = (flood.clone(), stop.clone(), args.clone());
        flooders.push(tokio::spawn(async move {
            let mut seen: BTreeMap<u16, u64> = BTreeMap::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"email": format!("flood-{worker}-{n}@example.com"), "password": "guess guess guess"});
                let status = match post(&flood, format!("{}/api/v1/auth/login", args.base), None, body).await {
                    Ok((status, _)) => status,
                    Err(_) => 0,
                };
                *seen.entry(status).or_default() += 1;
            }
            seen
        }));
    }
    // Let the flood build up before the buyer arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bought = buy(&args).await;
    let half = Duration::from_secs(args.flood_secs) / 2;
    tokio::time::sleep(half.saturating_sub(Duration::from_secs(2))).await;
    let rss_half = rss_kib(args.pid)?;
    tokio::time::sleep(half).await;
    let rss_peak = rss_kib(args.pid)?;
    stop.store(true, Ordering::Relaxed);
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for flooder in flooders {
        for (status, count) in flooder.await? {
            *statuses.entry(status).or_default() += count;
        }
    }
    let growth_mb = rss_peak.saturating_sub(rss_half) / 1024;
    let total: u64 = statuses.values().sum();
    println!(
        "sign-in flood: {total} requests from {} connections in {} s, statuses {statuses:?}; buyer {}; server RSS {} MB before, {} MB half-way, {} MB at the end",
        args.flooders,
        args.flood_secs,
        match &bought { Ok(took) => format!("ordered in {:.2} s", took.as_secs_f64()), Err(error) => format!("FAILED: {error:#}") },
        rss_before / 1024,
        rss_half / 1024,
        rss_peak / 1024
    );
    let took = bought?;
    ensure!(took < Duration::from_secs(args.buyer_deadline_secs), "the buyer took {took:?}");
    let unexpected: Vec<_> = statuses.keys().filter(|s| !matches!(s, 401 | 429 | 503)).collect();
    ensure!(unexpected.is_empty(), "the flood got statuses other than 401, 429 and 503: {unexpected:?}");
    ensure!(statuses.get(&429).copied().unwrap_or(0) + statuses.get(&503).copied().unwrap_or(0) > 0, "the flood was never refused");
    ensure!(growth_mb < args.max_rss_growth_mb, "server memory grew by {growth_mb} MB over the second half of the flood");
    Ok(())
}
