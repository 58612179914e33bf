//! What sqlx's `Any` driver costs on the purchase path (issue 14): the same
//! statements through an `AnyPool` and through the native `SqlitePool` /
//! `PgPool`, side by side in one run, from 1 and from 64 tasks. The statements are
//! the purchase's two commonest kinds: the pricing read (a three-table join by
//! primary key, one row of eleven columns) and a one-row conditional UPDATE.
//! Prints a table row per backend, statement and concurrency, with the ratio.
//!
//!   drivers --sqlite /tmp/drivers.db [--postgres postgres://…/db] [--statements 20000]

use clap::Parser;
use sqlx::{Any, Database, Executor, IntoArguments, Pool};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// A SQLite file to create the tables in (replaced).
    #[arg(long)]
    sqlite: String,
    /// A PostgreSQL database to create the tables in (replaced), if any.
    #[arg(long)]
    postgres: Option<String>,
    /// Statements per measurement.
    #[arg(long, default_value_t = 20_000)]
    statements: usize,
}

const SCHEMA: [&str; 6] = [
    "DROP TABLE IF EXISTS d_stock",
    "DROP TABLE IF EXISTS d_products",
    "DROP TABLE IF EXISTS d_users",
    "CREATE TABLE d_users (id BIGINT PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE d_products (id BIGINT PRIMARY KEY, seller_id BIGINT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL, price_cents BIGINT NOT NULL, inventory_mode TEXT NOT NULL, version BIGINT NOT NULL)",
    "CREATE TABLE d_stock (product_id BIGINT PRIMARY KEY, available BIGINT NOT NULL, reserved BIGINT NOT NULL, sold BIGINT NOT NULL)",
];
const PRODUCTS: i64 = 1000;
const READ: &str = "SELECT p.id, p.seller_id, u.name AS seller_name, p.title, p.description, p.price_cents, p.inventory_mode, p.version, \
     s.available, s.reserved, s.sold FROM d_products p JOIN d_stock s ON s.product_id = p.id JOIN d_users u ON u.id = p.seller_id WHERE p.id = $1";
const WRITE: &str = "UPDATE d_stock SET available = available - 1, reserved = reserved + 1 WHERE product_id = $1 AND available >= 1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    sqlx::any::install_default_drivers();
    println!("| backend | statement | tasks | Any /s | native /s | Any ÷ native |");
    println!("|---------|-----------|------:|-------:|----------:|-------------:|");
    let _ = std::fs::remove_file(&args.sqlite);
    let sqlite_url = format!("sqlite://{}?mode=rwc", args.sqlite);
    let native = sqlx::sqlite::SqlitePoolOptions::new().max_connections(8).connect(&sqlite_url).await?;
    native.execute("PRAGMA journal_mode = WAL").await?;
    let any = sqlx::any::AnyPoolOptions::new().max_connections(8).connect(&sqlite_url).await?;
    compare("sqlite", &any, &native, args.statements).await?;
    if let Some(url) = &args.postgres {
        let native = sqlx::postgres::PgPoolOptions::new().max_connections(32).connect(url).await?;
        let any = sqlx::any::AnyPoolOptions::new().max_connections(32).connect(url).await?;
        compare("postgres", &any, &native, args.statements).await?;
    }
    Ok(())
}

async fn compare<DB>(backend: &str, any: &Pool<Any>, native: &Pool<DB>, statements: usize) -> anyhow::Result<()>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for statement in SCHEMA {
        any.execute(statement).await?;
    }
    any.execute("INSERT INTO d_users (id, name) VALUES (1, 'Seller')").await?;
    for id in 1..=PRODUCTS {
        sqlx::query::<Any>("INSERT INTO d_products VALUES ($1, 1, 'A product title', 'A description of some length, as products have.', 999, 'reserve', 1)").bind(id).execute(any).await?;
        sqlx::query::<Any>("INSERT INTO d_stock VALUES ($1, 1000000000, 0, 0)").bind(id).execute(any).await?;
    }
    for (name, sql) in [("pricing read", READ), ("conditional update", WRITE)] {
        for tasks in [1usize, 64] {
            // Alternate, so neither side always runs on a warmer machine.
            let any_rate = rate::<Any>(any, sql, tasks, statements).await?;
            let native_rate = rate::<DB>(native, sql, tasks, statements).await?;
            println!("| {backend} | {name} | {tasks} | {any_rate:.0} | {native_rate:.0} | {:.2} |", any_rate / native_rate);
        }
    }
    Ok(())
}

/// Statements per second: `statements` runs of `sql` spread over `tasks` tasks,
/// each fetching every row it returns.
async fn rate<DB>(pool: &Pool<DB>, sql: &'static str, tasks: usize, statements: usize) -> anyhow::Result<f64>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let started = Instant::now();
    let workers = (0..tasks).map(|t| {
        let pool = pool.clone();
        tokio::spawn(async move {
            for n in 0..statements / tasks {
                let id = ((t * 7919 + n * 104_729) as i64 % PRODUCTS) + 1;
                sqlx::query(sql).bind(id).fetch_all(&pool).await?;
            }
            anyhow::Ok(())
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker??;
    }
    Ok((statements / tasks * tasks) as f64 / started.elapsed().as_secs_f64())
}
