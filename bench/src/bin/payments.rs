//! Payments (issue 14): `--buyers` buyers on distinct accounts each pay
//! `--orders` orders of their own, all at once, over HTTP. The orders are spread
//! over `--sellers` sellers, one product each, so no product row is shared by
//! many payers: what payments share is the escrow account. Prints payments per
//! second and p50/p99 of a payment, then two references on the same database
//! from as many connections, as many times: the bare transfer statement pair
//! (debit the buyer's wallet, credit an escrow account, one transaction) into the
//! seller's own escrow account, and into one shared account — a table row, then
//! one JSON line.

use anyhow::{Context, bail, ensure};
use bench::Client;
use clap::Parser;
use serde_json::{Value, json};
use sqlx::any::AnyPoolOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3204")]
    base: String,
    #[arg(long, default_value_t = 200)]
    buyers: usize,
    #[arg(long, default_value_t = 50)]
    sellers: usize,
    /// Orders each buyer pays.
    #[arg(long, default_value_t = 5)]
    orders: usize,
    /// The server's main database, for the references.
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// What the server under test is called in the output (`before`, `after`).
    #[arg(long, default_value = "server")]
    label: String,
}

const PRICE: i64 = 500;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.buyers >= 1 && args.sellers >= 1 && args.orders >= 1, "at least one of each");
    let client = Arc::new(Client::new(&args.base, args.buyers)?);
    let run = std::process::id();

    eprintln!("opening {} sellers' shops…", args.sellers);
    let sellers = client.accounts(&format!("pay-seller-{run}"), args.sellers, "seller").await?;
    let mut products = Vec::with_capacity(args.sellers);
    for seller in &sellers {
        let (status, product) = client
            .post("/api/v1/seller/products", Some(seller), &json!({"title": "Payment bench item", "price_cents": PRICE, "stock": 1_000_000, "inventory_mode": "reserve"}))
            .await?;
        ensure!(status == 201, "create product: {status} {product}");
        products.push(product["id"].as_i64().context("product id")?);
    }
    eprintln!("{} buyers place {} orders each…", args.buyers, args.orders);
    let buyers = client.accounts(&format!("pay-buyer-{run}"), args.buyers, "buyer").await?;
    let mut orders: Vec<Vec<String>> = Vec::with_capacity(args.buyers);
    for (b, buyer) in buyers.iter().enumerate() {
        let reply = client
            .http
            .post(format!("{}/api/v1/wallet/top-up", args.base))
            .bearer_auth(buyer)
            .header("idempotency-key", format!("pay-{run}-{b}"))
            .json(&json!({"amount_cents": PRICE * args.orders as i64}))
            .send()
            .await?;
        ensure!(reply.status().is_success(), "top-up: {}", reply.status());
        let mut mine = Vec::with_capacity(args.orders);
        for _ in 0..args.orders {
            mine.push(place(&client, buyer, products[b % products.len()]).await?);
        }
        orders.push(mine);
    }

    eprintln!("paying {} orders…", args.buyers * args.orders);
    let started = Instant::now();
    let payers = buyers.iter().cloned().zip(orders).map(|(buyer, mine)| {
        let client = client.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(mine.len());
            for id in mine {
                let paid_at = Instant::now();
                let (status, paid) = client.post(&format!("/api/v1/orders/{id}/pay"), Some(&buyer), &Value::Null).await?;
                ensure!(status == 200 && paid["status"] == "paid", "pay: {status} {paid}");
                latencies.push(paid_at.elapsed());
            }
            anyhow::Ok(latencies)
        })
    });
    let mut latencies: Vec<Duration> = Vec::new();
    for payer in futures::future::join_all(payers).await {
        latencies.extend(payer??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let payments = latencies.len();
    let per_s = payments as f64 / elapsed.as_secs_f64();

    sqlx::any::install_default_drivers();
    let sqlite = args.database_url.starts_with("sqlite:");
    // As patient as the server's own connections: 200 writers queue on SQLite's lock.
    // The same pool settings as the server's (no ping while a connection is busy).
    let pool = shop::db::ping_only_after_idle(AnyPoolOptions::new())
        .max_connections(args.buyers as u32)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    sqlx::Executor::execute(conn, "PRAGMA busy_timeout = 60000").await?;
                }
                Ok(())
            })
        })
        .connect(&args.database_url)
        .await?;
    bench::open_connections(&pool, args.buyers).await?;
    // Each reference connection moves a cent from a wallet of its own to an escrow
    // account, as often as the buyers paid: first into per-seller accounts, then into one.
    let own = bare_transfers(&pool, &args, |k| format!("bench-escrow:{}", k % args.sellers)).await?;
    let shared = bare_transfers(&pool, &args, |_| "bench-escrow:shared".to_owned()).await?;

    println!("| server | backend | buyers | sellers | payments | payments/s | p50 ms | p99 ms | bare pair, own escrow /s | bare pair, one escrow /s | ratio to own |");
    println!("|--------|---------|-------:|--------:|---------:|-----------:|-------:|-------:|-------------------------:|-------------------------:|------:|");
    println!(
        "| {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} | {:.1}% |",
        args.label,
        args.backend,
        args.buyers,
        args.sellers,
        payments,
        per_s,
        bench::percentile_ms(&latencies, 0.50),
        bench::percentile_ms(&latencies, 0.99),
        own,
        shared,
        per_s / own * 100.0
    );
    println!(
        "{}",
        json!({"server": args.label, "backend": args.backend, "payments": payments, "payments_per_s": (per_s * 10.0).round() / 10.0,
            "p99_ms": (bench::percentile_ms(&latencies, 0.99) * 10.0).round() / 10.0, "bare_own_per_s": (own * 10.0).round() / 10.0, "bare_shared_per_s": (shared * 10.0).round() / 10.0})
    );
    Ok(())
}

/// Opens a checkout for one unit and places it: the order id.
async fn place(client: &Client, buyer: &str, product: i64) -> anyhow::Result<String> {
    let (status, checkout) = client.post("/api/v1/checkout", Some(buyer), &json!({"lines": [{"product_id": product, "quantity": 1}]})).await?;
    ensure!(status == 201, "checkout: {status} {checkout}");
    let body = json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"],
        "shipping_address": {"name": "B", "line1": "1 St", "city": "C", "postal_code": "1", "country": "NL"}});
    let (status, placed) = client.post("/api/v1/orders", Some(buyer), &body).await?;
    if status != 201 {
        bail!("place: {status} {placed}");
    }
    Ok(placed["id"].as_str().context("an order id")?.to_owned())
}

/// The bare statement pair of a payment, `buyers × orders` times from `buyers`
/// connections, the credit going to `escrow(connection)`: transfers per second.
async fn bare_transfers(pool: &sqlx::AnyPool, args: &Args, escrow: impl Fn(usize) -> String) -> anyhow::Result<f64> {
    let sqlite = args.database_url.starts_with("sqlite:");
    for k in 0..args.buyers {
        sqlx::query("INSERT INTO ledger_accounts (id, kind, user_id, balance_cents, created_at_ms) VALUES ($1, 'escrow', NULL, 0, 0) ON CONFLICT (id) DO NOTHING")
            .bind(escrow(k))
            .execute(pool)
            .await?;
        sqlx::query("INSERT INTO ledger_accounts (id, kind, user_id, balance_cents, created_at_ms) VALUES ($1, 'wallet', NULL, $2, 0) ON CONFLICT (id) DO NOTHING")
            .bind(format!("bench-wallet:{k}"))
            .bind(args.orders as i64 * 2)
            .execute(pool)
            .await?;
    }
    let started = Instant::now();
    let workers = (0..args.buyers).map(|k| {
        let (pool, wallet, escrow, times) = (pool.clone(), format!("bench-wallet:{k}"), escrow(k), args.orders);
        tokio::spawn(async move {
            for _ in 0..times {
                let mut tx = if sqlite { pool.begin_with("BEGIN IMMEDIATE").await? } else { pool.begin().await? };
                let debited = sqlx::query("UPDATE ledger_accounts SET balance_cents = balance_cents - 1 WHERE id = $1 AND balance_cents >= 1").bind(&wallet).execute(&mut *tx).await?;
                ensure!(debited.rows_affected() == 1, "the reference wallet ran dry");
                sqlx::query("UPDATE ledger_accounts SET balance_cents = balance_cents + 1 WHERE id = $1").bind(&escrow).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            anyhow::Ok(())
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker??;
    }
    Ok((args.buyers * args.orders) as f64 / started.elapsed().as_secs_f64())
}
