//! Hot and cold orders (issue 11, DESIGN.md failure mode 8), on one backend:
//! 1. generates `--orders` orders with bulk SQL on one shard (one buyer in a
//!    hundred is the measured buyer, the rest are other buyers of that shard),
//!    spread evenly over the last two years, one line each, a waybill on every
//!    shipped or completed one; those older than 90 days are completed or cancelled;
//! 2. reads the measured buyer's first page of "my orders" `--reads` times (p50, p99);
//! 3. runs one archive pass with the default 90-day window and reports orders moved
//!    per second;
//! 4. reads the first page again, now that the shard holds only the last 90 days.

use anyhow::Context;
use clap::Parser;
use shop::accounts::User;
use shop::catalog::PageLimit;
use shop::domain::{Email, Password, PersonName, Role};
use shop::services::accounts::NewAccount;
use shop::services::archive::{ArchivePolicy, Quiet};
use shop::{Shop, services::ShopSettings};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// `sqlite:<folder>` for embedded files, or a PostgreSQL server URL whose
    /// databases nf_main, nf_shard_0..3 and nf_archive exist.
    #[arg(long)]
    databases: String,
    #[arg(long, default_value_t = 100_000)]
    orders: i64,
    #[arg(long, default_value_t = 500)]
    reads: usize,
    #[arg(long, default_value = "sqlite")]
    label: String,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Rows per generating statement.
const CHUNK: i64 = 50_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shop = Shop::open(&bench::databases(&args.databases), &ShopSettings::default()).await.context("opening the databases")?;
    let buyer = shop
        .accounts
        .register(NewAccount {
            email: Email::parse("email", "archive-buyer@bench.test")?,
            password: Password::parse("password", "archive-bench-pass")?,
            name: PersonName::parse("name", "Archive Buyer")?,
            role: Role::Buyer,
        })
        .await?;
    let now = shop::clock::now_ms();
    eprintln!("{}: generating {} orders…", args.label, args.orders);
    let started = Instant::now();
    generate(&shop, &buyer, args.orders, now).await?;
    eprintln!("{}: generated in {:.1} s", args.label, started.elapsed().as_secs_f64());
    let shard = shop.orders.shards().of_buyer(buyer.id);
    let hot_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders").fetch_one(shard.pool()).await?;
    let before = read_first_pages(&shop, &buyer, args.reads).await?;

    eprintln!("{}: archiving…", args.label);
    let started = Instant::now();
    let report = shop.archive.pass(shop::clock::now_ms(), ArchivePolicy::default(), &mut Quiet).await?;
    let archiving = started.elapsed();
    let moved = report.moved();
    anyhow::ensure!(report.shards.iter().all(|s| s.failed_batches == 0), "a batch failed: {report:?}");
    let hot_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders").fetch_one(shard.pool()).await?;
    let after = read_first_pages(&shop, &buyer, args.reads).await?;

    println!(
        "| {} | {} | {hot_before} | {:.3} | {:.3} | {moved} | {:.1} | {:.0} | {hot_after} | {:.3} | {:.3} |",
        args.label,
        args.orders,
        bench::percentile_ms(&before, 0.5),
        bench::percentile_ms(&before, 0.99),
        archiving.as_secs_f64(),
        moved as f64 / archiving.as_secs_f64(),
        bench::percentile_ms(&after, 0.5),
        bench::percentile_ms(&after, 0.99),
    );
    shop.databases.close().await;
    Ok(())
}

/// Bulk rows on the buyer's shard: order `n` (0-based, oldest first) is the
/// measured buyer's when `n % 100 == 0`, another buyer's of the same shard
/// otherwise. One recursive CTE per chunk, the same SQL on both backends.
async fn generate(shop: &Shop, buyer: &User, orders: i64, now: i64) -> anyhow::Result<()> {
    let shard = shop.orders.shards().of_buyer(buyer.id);
    let suffix = i64::from(buyer.id.shard_suffix());
    let span_ms = 730 * DAY_MS;
    let step_ms = (span_ms / orders).max(1);
    let window_start = now - ArchivePolicy::DEFAULT_AFTER_MS;
    let mut from = 0;
    while from < orders {
        let to = (from + CHUNK).min(orders);
        let mut tx = shard.begin_write().await?;
        // n → id, buyer, times; status by age: final when older than 90 days.
        let rows = "WITH RECURSIVE seq(n) AS (SELECT $1 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < $2), \
                    timed AS (SELECT n, (2000000000000 + n) * 1000000 + $3 AS id, \
                    CASE WHEN n % 100 = 0 THEN $4 ELSE ((n % 997) + 10) * 1000000 + $3 END AS buyer_id, \
                    $5 - $6 + n * $7 AS created FROM seq)";
        sqlx::query(&format!(
            "{rows} INSERT INTO orders (id, buyer_id, seller_id, status, total_cents, shipping_address, hold_expires_at_ms, created_at_ms, updated_at_ms, version) \
             SELECT id, buyer_id, 42, \
             CASE WHEN created + 86400000 < $8 THEN (CASE WHEN n % 10 = 0 THEN 'cancelled' ELSE 'completed' END) \
                  ELSE (CASE n % 3 WHEN 0 THEN 'paid' WHEN 1 THEN 'shipped' ELSE 'completed' END) END, \
             1500, '{{\"name\":\"B\",\"line1\":\"1 St\",\"line2\":\"\",\"city\":\"C\",\"postal_code\":\"1\",\"country\":\"NL\"}}', NULL, created, created + 86400000, 3 FROM timed"
        ))
        .bind(from)
        .bind(to)
        .bind(suffix)
        .bind(buyer.id.get())
        .bind(now)
        .bind(span_ms)
        .bind(step_ms)
        .bind(window_start)
        .execute(&mut *tx)
        .await?;
        let range = "id >= (2000000000000 + $1) * 1000000 AND id < (2000000000000 + $2) * 1000000";
        sqlx::query(&format!(
            "INSERT INTO order_lines (order_id, line_no, product_id, seller_id, quantity, unit_price_cents, snapshot_digest) \
             SELECT id, 0, 7, 42, 1, 1500, '0123456789abcdef0123456789abcdef' FROM orders WHERE {range}"
        ))
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO shipping_records (order_id, carrier, tracking_number, version, updated_at_ms, updated_by) \
             SELECT id, 'DHL', 'JD' || id, 1, created_at_ms, 42 FROM orders WHERE {range} AND status IN ('shipped', 'completed')"
        ))
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO shipping_history (order_id, version, carrier, tracking_number, changed_at_ms, changed_by) \
             SELECT order_id, 1, carrier, tracking_number, updated_at_ms, 42 FROM shipping_records WHERE order_id >= (2000000000000 + $1) * 1000000 AND order_id < (2000000000000 + $2) * 1000000"
        ))
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        from = to;
    }
    Ok(())
}

/// `reads` reads of the buyer's first page of recent orders, sorted.
async fn read_first_pages(shop: &Shop, buyer: &User, reads: usize) -> anyhow::Result<Vec<Duration>> {
    let mut took = Vec::with_capacity(reads);
    for _ in 0..reads {
        let started = Instant::now();
        let page = shop.orders.list_mine(buyer, None, None, PageLimit::DEFAULT).await?;
        took.push(started.elapsed());
        anyhow::ensure!(!page.items.is_empty(), "the buyer has no recent orders");
    }
    took.sort();
    Ok(took)
}
