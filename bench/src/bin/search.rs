//! Catalog search (issue 16), on one backend: `--products` products generated in
//! bulk (titles and descriptions from word lists), then the same searches
//! `--reads` times each through the catalog service (full-text: FTS5 or tsvector)
//! and, as the reference, as a plain `LIKE` scan over titles and descriptions.
//! Prints p50/p99 of each and their ratio.

use anyhow::Context;
use clap::Parser;
use shop::catalog::PageLimit;
use shop::domain::{Email, Password, PersonName, Role};
use shop::search::{ProductFilter, ProductSort, SearchTerms};
use shop::services::accounts::NewAccount;
use shop::{Shop, services::ShopSettings};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// `sqlite:<folder>`, or a PostgreSQL server URL whose databases nf_main,
    /// nf_shard_0..3 and nf_archive exist.
    #[arg(long)]
    databases: String,
    #[arg(long, default_value_t = 100_000)]
    products: i64,
    #[arg(long, default_value_t = 200)]
    reads: usize,
    #[arg(long, default_value = "sqlite")]
    label: String,
}

const ADJECTIVES: [&str; 17] = ["sturdy", "compact", "classic", "vintage", "modern", "rustic", "bright", "quiet", "gentle", "rugged", "slim", "cozy", "handmade", "polished", "foldable", "sleek", "hardy"];
const MATERIALS: [&str; 13] = ["copper", "oak", "walnut", "linen", "wool", "steel", "ceramic", "bamboo", "leather", "glass", "cotton", "brass", "stone"];
const NOUNS: [&str; 31] = [
    "kettle", "lamp", "chair", "notebook", "backpack", "teapot", "blanket", "knife", "mug", "bowl", "jacket", "tent", "pen", "clock", "vase", "basket", "scarf", "stool",
    "shelf", "candle", "board", "bottle", "tray", "brush", "rug", "pillow", "mirror", "frame", "planter", "apron", "ladle",
];

fn title_of(n: i64) -> (String, String) {
    let n = n as usize;
    let (adjective, material, noun) = (ADJECTIVES[n % 17], MATERIALS[(n / 17) % 13], NOUNS[(n / 221) % 31]);
    let title = format!("{adjective} {material} {noun} no. {n}");
    let description = format!("A {adjective} {noun} made of {material}. {} and {} go well with it.", NOUNS[(n * 7) % 31], MATERIALS[(n * 3) % 13]);
    (title, description)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shop = Shop::open(&bench::databases(&args.databases), &ShopSettings::default()).await.context("opening the databases")?;
    let seller = shop
        .accounts
        .register(NewAccount {
            email: Email::parse("email", "search-seller@bench.test")?,
            password: Password::parse("password", "search-bench-pass")?,
            name: PersonName::parse("name", "Search Seller")?,
            role: Role::Seller,
        })
        .await?;
    eprintln!("{}: generating {} products…", args.label, args.products);
    let started = Instant::now();
    let main = &shop.databases.main;
    let mut next = 1_000_000i64;
    while next < 1_000_000 + args.products {
        let end = (next + 500).min(1_000_000 + args.products);
        let mut tx = main.begin_write().await?;
        let rows = (next..end).map(|i| { let k = (i - next) as usize * 5; format!("(${}, {}, ${}, ${}, ${}, 'on_order', 1, ${}, ${})", k + 1, seller.id.get(), k + 2, k + 3, k + 4, k + 5, k + 5) }).collect::<Vec<_>>();
        let sql = format!("INSERT INTO products (id, seller_id, title, description, price_cents, inventory_mode, version, created_at_ms, updated_at_ms) VALUES {}", rows.join(", "));
        let mut query = sqlx::query(&sql);
        for i in next..end {
            let (title, description) = title_of(i);
            query = query.bind(i).bind(title).bind(description).bind(100 + (i * 37) % 20_000).bind(i);
        }
        query.execute(&mut *tx).await?;
        sqlx::query("INSERT INTO stock (product_id, available, reserved, sold, received) SELECT id, 10, 0, 0, 10 FROM products WHERE id >= $1 AND id < $2")
            .bind(next)
            .bind(end)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        next = end;
    }
    eprintln!("{}: generated in {:.1} s", args.label, started.elapsed().as_secs_f64());

    println!("| backend | products | query | matches (first page) | search p50 ms | p99 ms | LIKE p50 ms | p99 ms | LIKE / search (p50) |");
    println!("|---------|---------:|-------|---------------------:|--------------:|-------:|------------:|-------:|--------------------:|");
    for q in ["kettle", "walnut lamp", "handmade ceramic teapot"] {
        let terms = SearchTerms::parse("q", Some(q))?;
        let filter = ProductFilter { terms, ..ProductFilter::default() };
        let mut searched = Vec::with_capacity(args.reads);
        let mut first_page = 0;
        for _ in 0..args.reads {
            let started = Instant::now();
            let page = shop.catalog.search(&filter, ProductSort::Relevance, None, PageLimit::DEFAULT).await?;
            searched.push(started.elapsed());
            first_page = page.items.len();
        }
        let words: Vec<&str> = q.split(' ').collect();
        let condition = (0..words.len()).map(|i| format!("(lower(p.title) LIKE ${0} OR lower(p.description) LIKE ${0})", i + 1)).collect::<Vec<_>>().join(" AND ");
        let sql = format!(
            "SELECT p.id, p.title, p.price_cents, s.available FROM products p JOIN stock s ON s.product_id = p.id WHERE {condition} ORDER BY p.id DESC LIMIT 24"
        );
        let mut scanned = Vec::with_capacity(args.reads);
        for _ in 0..args.reads {
            let started = Instant::now();
            let query = words.iter().fold(sqlx::query(&sql), |query, w| query.bind(format!("%{w}%")));
            query.fetch_all(main.pool()).await?;
            scanned.push(started.elapsed());
        }
        searched.sort();
        scanned.sort();
        println!(
            "| {} | {} | {q} | {first_page} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}× |",
            args.label,
            args.products,
            bench::percentile_ms(&searched, 0.5),
            bench::percentile_ms(&searched, 0.99),
            bench::percentile_ms(&scanned, 0.5),
            bench::percentile_ms(&scanned, 0.99),
            bench::percentile_ms(&scanned, 0.5) / bench::percentile_ms(&searched, 0.5)
        );
    }
    shop.databases.close().await;
    Ok(())
}
