//! The flash sale (issues 3 and 14): `--stock` units spread over `--products`
//! products (one: the hot row; a thousand: no hot row), `--buyers` buyers on
//! distinct accounts. Every buyer loops "open a checkout, place the order" over HTTP
//! until everything is sold out, starting at a product of its own and moving on
//! when one is gone. Prints successful orders per second, p50/p99 latency of a
//! purchase (checkout + place) and the oversell count, then, as the reference, the
//! rate of the bare conditional decrement on the same database from the same number
//! of connections over the same products — a table row, then one JSON line.

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use sqlx::any::AnyPoolOptions;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The server under test.
    #[arg(long, default_value = "http://127.0.0.1:3203")]
    base: String,
    #[arg(long, default_value_t = 200)]
    buyers: usize,
    #[arg(long, default_value_t = 1000)]
    stock: i64,
    /// The server's main database, for the reference statement.
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value = "reserve")]
    mode: String,
    /// How many products the units are spread over.
    #[arg(long, default_value_t = 1)]
    products: usize,
    /// The backend's name, for the JSON line.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// A command run for the length of the sale (not the set-up) and interrupted
    /// when it ends: a profiler attached to the server, say
    /// `perf record -g -p <pid> -o sale.perf.data`.
    #[arg(long)]
    profile_hook: Option<String>,
    /// The same, for the length of the bare reference instead: what the bare
    /// decrement costs the machine, beside what the sale does.
    #[arg(long)]
    reference_profile_hook: Option<String>,
    /// Before the sale, every buyer opens its connection (a health check), as a
    /// shopper waiting on the product page has one: the sale then measures no TCP
    /// handshakes. A diagnostic; the script does not set it.
    #[arg(long)]
    open_connections_first: bool,
    /// Time the bare reference from cold connections, opened inside its window, as
    /// it was before the thirteenth pass (BENCHMARKS.md); for comparing with old runs.
    #[arg(long)]
    cold_reference: bool,
}

/// The profiler, from the sale's start to its end.
struct Profiler(std::process::Child);

impl Profiler {
    fn start(command: &str) -> anyhow::Result<Self> {
        Ok(Self(std::process::Command::new("sh").arg("-c").arg(format!("exec {command}")).spawn().context("starting the profile hook")?))
    }

    /// SIGINT, as a profiler expects at the end of a recording, then wait for it to write.
    fn stop(mut self) -> anyhow::Result<()> {
        std::process::Command::new("kill").arg("-INT").arg(self.0.id().to_string()).status()?;
        self.0.wait()?;
        Ok(())
    }
}

use bench::Client;

/// How long one purchase took: its checkout, and all of it.
#[derive(Debug, Clone, Copy)]
struct Purchase {
    checkout: Duration,
    total: Duration,
}

/// One purchase: checkout, then place — and, in `on_payment` mode, where stock is
/// taken only when paying, pay. `Ok(None)` when sold out.
async fn buy(client: &Client, token: &str, product_id: i64, pays: bool) -> anyhow::Result<Option<Purchase>> {
    let started = Instant::now();
    let (status, checkout) = client.post("/api/v1/checkout", Some(token), &json!({"lines": [{"product_id": product_id, "quantity": 1}]})).await?;
    if status != 201 {
        bail!("checkout: {status} {checkout}");
    }
    let checkout_took = started.elapsed();
    let done = || Some(Purchase { checkout: checkout_took, total: started.elapsed() });
    let body = json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"],
        "shipping_address": {"name": "B", "line1": "1 St", "city": "C", "postal_code": "1", "country": "NL"}});
    let (status, placed) = client.post("/api/v1/orders", Some(token), &body).await?;
    match status {
        201 if !pays => Ok(done()),
        201 => {
            let id = placed["id"].as_str().context("an order id")?;
            let (status, paid) = client.post(&format!("/api/v1/orders/{id}/pay"), Some(token), &Value::Null).await?;
            match status {
                200 => Ok(done()),
                409 if paid["code"] == "insufficient_stock" => {
                    // Sold out while this order waited: it stays unpaid; cancel it so it holds nothing.
                    client.post(&format!("/api/v1/orders/{id}/cancel"), Some(token), &Value::Null).await?;
                    Ok(None)
                }
                _ => bail!("pay: {status} {paid}"),
            }
        }
        409 if placed["code"] == "insufficient_stock" => Ok(None),
        _ => bail!("place: {status} {placed}"),
    }
}

/// Where in the sale the slow purchases are: a tail made in the first fifth is the
/// cold start (connections opened, statements prepared), one spread evenly is the
/// steady state.
fn p99_by_fifth(timed: &mut [(Duration, Duration)]) -> String {
    timed.sort();
    let fifth = timed.len().div_ceil(5).max(1);
    timed
        .chunks(fifth)
        .map(|chunk| {
            let mut latencies: Vec<Duration> = chunk.iter().map(|(_, latency)| *latency).collect();
            latencies.sort();
            format!("{:.0}", bench::percentile_ms(&latencies, 0.99))
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Where the opening herd's time goes: each buyer's first purchase starts at
/// once with every other's, on a new connection and an uncached session. The
/// p99 of its checkout and of the rest (placing, paying), against the same for
/// every later purchase.
fn opening_and_rest(timed: &[(Duration, Purchase, bool)]) -> String {
    fn p99(timed: &[(Duration, Purchase, bool)], first: bool, part: impl Fn(&Purchase) -> Duration) -> f64 {
        let mut latencies: Vec<Duration> = timed.iter().filter(|(_, _, f)| *f == first).map(|(_, purchase, _)| part(purchase)).collect();
        latencies.sort();
        bench::percentile_ms(&latencies, 0.99)
    }
    let checkout = |p: &Purchase| p.checkout;
    let rest = |p: &Purchase| p.total - p.checkout;
    format!(
        "p99 ms of checkout / the rest: each buyer's first purchase {:.0} / {:.0}, later purchases {:.0} / {:.0}",
        p99(timed, true, checkout),
        p99(timed, true, rest),
        p99(timed, false, checkout),
        p99(timed, false, rest)
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = std::sync::Arc::new(Client::new(&args.base, args.buyers)?);
    let run = std::process::id();

    let seller = client.account(&format!("flash-seller-{run}@bench.test"), "seller").await?;
    anyhow::ensure!(args.products >= 1 && args.stock >= args.products as i64, "at least one unit per product");
    let per_product = args.stock / args.products as i64;
    let stock = per_product * args.products as i64;
    let mut product_ids = Vec::with_capacity(args.products);
    for n in 0..args.products {
        let (status, product) = client
            .post("/api/v1/seller/products", Some(&seller), &json!({"title": format!("Flash sale item {n}"), "price_cents": 999, "stock": per_product, "inventory_mode": args.mode}))
            .await?;
        if status != 201 {
            bail!("create product: {status} {product}");
        }
        product_ids.push(product["id"].as_i64().context("product id")?);
    }
    let product_ids = std::sync::Arc::new(product_ids);
    // Shared, so a product found sold out is not tried again by every buyer.
    let sold_out = || std::sync::Arc::new((0..args.products).map(|_| std::sync::atomic::AtomicBool::new(false)).collect::<Vec<_>>());
    let gone = sold_out();

    eprintln!("registering {} buyers…", args.buyers);
    let tokens = client.accounts(&format!("flash-buyer-{run}"), args.buyers, "buyer").await?;

    eprintln!("selling {stock} units of {} product(s) to {} buyers…", args.products, args.buyers);
    let pays = args.mode == "on_payment";
    if pays {
        // Money to pay with: every buyer's wallet gets enough for the whole sale.
        for (b, token) in tokens.iter().enumerate() {
            let reply = client.http.post(format!("{}/api/v1/wallet/top-up", args.base)).bearer_auth(token).header("idempotency-key", format!("flash-{run}-{b}"))
                .json(&json!({"amount_cents": 999 * stock})).send().await?;
            anyhow::ensure!(reply.status().is_success(), "top-up: {}", reply.status());
        }
    }
    if args.open_connections_first {
        let opened = futures::future::join_all((0..args.buyers).map(|_| client.http.get(format!("{}/healthz", args.base)).send())).await;
        for reply in opened {
            reply?.bytes().await?;
        }
    }
    let profiler = args.profile_hook.as_deref().map(Profiler::start).transpose()?;
    let started = Instant::now();
    let buyers = tokens.into_iter().enumerate().map(|(b, token)| {
        let (client, product_ids, gone) = (client.clone(), product_ids.clone(), gone.clone());
        tokio::spawn(async move {
            // Each buyer starts at a product of its own and moves on when it is gone.
            let mut latencies = Vec::new();
            for k in 0..product_ids.len() {
                let index = (b * 7 + k) % product_ids.len();
                if gone[index].load(std::sync::atomic::Ordering::Relaxed) {
                    continue;
                }
                loop {
                    let at = started.elapsed();
                    let Some(purchase) = buy(&client, &token, product_ids[index], pays).await? else { break };
                    latencies.push((at, purchase));
                }
                gone[index].store(true, std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok(latencies)
        })
    });
    let mut timed = Vec::new();
    for buyer in futures::future::join_all(buyers).await {
        timed.extend(buyer??.into_iter().enumerate().map(|(k, (at, purchase))| (at, purchase, k == 0)));
    }
    let elapsed = started.elapsed();
    if let Some(profiler) = profiler {
        profiler.stop()?;
    }
    eprintln!("{}", opening_and_rest(&timed));
    // The refusals after the last unit sold are part of the run: how long they took.
    let last_sold = timed.iter().map(|(at, purchase, _)| *at + purchase.total).max().unwrap_or_default();
    eprintln!("last unit sold at {:.0} ms; every buyer told sold out at {:.0} ms", last_sold.as_secs_f64() * 1000.0, elapsed.as_secs_f64() * 1000.0);
    let mut timed: Vec<(Duration, Duration)> = timed.into_iter().map(|(at, purchase, _)| (at, purchase.total)).collect();
    eprintln!("p99 ms by fifth of the sale (purchases by start time): {}", p99_by_fifth(&mut timed));
    let mut latencies: Vec<Duration> = timed.into_iter().map(|(_, latency)| latency).collect();
    latencies.sort();

    let (mut available, mut reserved, mut sold) = (0, 0, 0);
    let mut oversold = 0;
    for product_id in product_ids.iter() {
        let product = client.http.get(format!("{}/api/v1/products/{product_id}", args.base)).send().await?.json::<Value>().await?;
        let units = &product["stock"];
        let (a, r, s) = (units["available"].as_i64().unwrap_or(-1), units["reserved"].as_i64().unwrap_or(-1), units["sold"].as_i64().unwrap_or(-1));
        oversold += (-a).max(0) + (r + s - per_product).max(0);
        available += a;
        reserved += r;
        sold += s;
    }
    let successes = latencies.len() as i64;
    oversold += (successes - stock).max(0);
    let invariant = available + reserved + sold == stock;

    // The reference: the bare statement, same database, same number of connections,
    // over the same products, and the same pool settings (no ping while a connection is busy).
    sqlx::any::install_default_drivers();
    let pool = shop::db::ping_only_after_idle(AnyPoolOptions::new()).max_connections(args.buyers as u32).connect(&args.database_url).await?;
    for product_id in product_ids.iter() {
        sqlx::query("UPDATE stock SET available = $1, received = received + $1 WHERE product_id = $2").bind(per_product).bind(product_id).execute(&pool).await?;
    }
    if !args.cold_reference {
        bench::open_connections(&pool, args.buyers).await?;
    }
    let profiler = args.reference_profile_hook.as_deref().map(Profiler::start).transpose()?;
    let reference_started = Instant::now();
    let gone = sold_out();
    let workers = (0..args.buyers).map(|w| {
        let (pool, product_ids, gone) = (pool.clone(), product_ids.clone(), gone.clone());
        tokio::spawn(async move {
            let mut taken = 0u64;
            for k in 0..product_ids.len() {
                let index = (w * 7 + k) % product_ids.len();
                if gone[index].load(std::sync::atomic::Ordering::Relaxed) {
                    continue;
                }
                loop {
                    let done = sqlx::query("UPDATE stock SET available = available - 1, sold = sold + 1 WHERE product_id = $1 AND available >= 1")
                        .bind(product_ids[index])
                        .execute(&pool)
                        .await?;
                    if done.rows_affected() == 0 {
                        break;
                    }
                    taken += 1;
                }
                gone[index].store(true, std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok(taken)
        })
    });
    let mut reference_taken = 0;
    for worker in futures::future::join_all(workers).await {
        reference_taken += worker??;
    }
    let reference_elapsed = reference_started.elapsed();
    if let Some(profiler) = profiler {
        profiler.stop()?;
    }
    let reference_units = stock;
    let orders_per_sec = successes as f64 / elapsed.as_secs_f64();
    let reference_per_sec = reference_taken as f64 / reference_elapsed.as_secs_f64();
    println!("| buyers | stock | products | mode | orders | orders/s | p50 ms | p99 ms | oversold | invariant | bare decrements/s | ratio |");
    println!("|-------:|------:|---------:|------|-------:|---------:|-------:|-------:|---------:|-----------|------------------:|------:|");
    println!(
        "| {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {} | {} | {:.0} | {:.1}% |",
        args.buyers,
        stock,
        args.products,
        args.mode,
        successes,
        orders_per_sec,
        bench::percentile_ms(&latencies, 0.50),
        bench::percentile_ms(&latencies, 0.99),
        oversold,
        if invariant { "holds" } else { "BROKEN" },
        reference_per_sec,
        orders_per_sec / reference_per_sec * 100.0
    );
    println!(
        "{}",
        json!({"backend": args.backend, "mode": args.mode, "products": args.products, "orders": successes, "orders_per_s": (orders_per_sec * 10.0).round() / 10.0,
            "bare_per_s": (reference_per_sec * 10.0).round() / 10.0, "p99_ms": (bench::percentile_ms(&latencies, 0.99) * 10.0).round() / 10.0, "oversold": oversold})
    );
    if oversold != 0 || !invariant || successes != stock || reference_taken as i64 != reference_units {
        bail!("the sale went wrong: {successes} orders, {oversold} oversold, {available}+{reserved}+{sold} of {stock}, reference took {reference_taken}");
    }
    Ok(())
}
