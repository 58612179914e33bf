//! The seller index (issue 6, DESIGN.md failure mode 9), measured through the shop
//! services on one backend:
//! 1. places `--orders` orders from `--buyers` buyers (spread over every shard) to
//!    `--sellers` sellers, paying every other one;
//! 2. delivers every outbox event into the index (relay + job handler, the workers'
//!    own code, run here back to back) and reports events per second;
//! 3. reads a seller's newest page of 24 orders `--reads` times two ways: from the
//!    index (what the dashboard does) and, as the reference, by asking every shard
//!    for that seller's newest 24 and merging (what it would do without the index),
//!    and prints p50/p99 of each and their ratio.

use anyhow::Context;
use clap::Parser;
use shop::accounts::User;
use shop::catalog::PageLimit;
use shop::domain::{Description, InventoryMode, Money, PersonName, Quantity, Role, StockLevel, Title};
use shop::orders::{LineRequest, ShippingAddress};
use shop::services::accounts::NewAccount;
use shop::services::catalog::NewProduct;
use shop::services::orders::PlaceOrder;
use shop::{Shop, services::ShopSettings};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// `sqlite:<folder>` for embedded files, or a PostgreSQL server URL whose
    /// databases nf_main, nf_shard_0..3 and nf_archive exist.
    #[arg(long)]
    databases: String,
    #[arg(long, default_value_t = 10_000)]
    orders: usize,
    #[arg(long, default_value_t = 40)]
    buyers: usize,
    #[arg(long, default_value_t = 10)]
    sellers: usize,
    #[arg(long, default_value_t = 500)]
    reads: usize,
    /// A name for the table's first column.
    #[arg(long, default_value = "sqlite")]
    label: String,
}


async fn account(shop: &Shop, name: &str, role: Role) -> anyhow::Result<User> {
    let account = NewAccount {
        email: shop::domain::Email::parse("email", &format!("{name}@bench.test"))?,
        password: shop::domain::Password::parse("password", "seller-index-bench")?,
        name: PersonName::parse("name", name)?,
        role,
    };
    Ok(shop.accounts.register(account).await?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shop = Shop::open(&bench::databases(&args.databases), &ShopSettings::default()).await.context("opening the databases")?;
    let mut sellers = Vec::new();
    let mut products = Vec::new();
    for s in 0..args.sellers {
        let seller = account(&shop, &format!("seller-{s}"), Role::Seller).await?;
        let product = NewProduct {
            title: Title::parse("title", &format!("Item of seller {s}"))?,
            description: Description::parse("description", "")?,
            price: Money::parse_price("price", 500)?,
            stock: StockLevel::parse("stock", 1_000_000)?,
            inventory_mode: InventoryMode::OnOrder,
            categories: Vec::new(),
        };
        products.push(shop.catalog.create(&seller, product).await?.id);
        sellers.push(seller);
    }
    let mut buyers = Vec::new();
    for b in 0..args.buyers {
        let buyer = account(&shop, &format!("buyer-{b}"), Role::Buyer).await?;
        shop.ledger.top_up(&buyer, Money::parse_top_up("amount", 10_000_000)?, "bench").await?;
        buyers.push(buyer);
    }
    // A rare seller: 30 orders, all older than everyone else's. Without the index,
    // finding its newest page means walking back past every newer order on each shard.
    let rare = account(&shop, "rare-seller", Role::Seller).await?;
    let rare_product = NewProduct {
        title: Title::parse("title", "A rare item")?,
        description: Description::parse("description", "")?,
        price: Money::parse_price("price", 500)?,
        stock: StockLevel::parse("stock", 1_000)?,
        inventory_mode: InventoryMode::OnOrder,
        categories: Vec::new(),
    };
    let rare_product = shop.catalog.create(&rare, rare_product).await?.id;
    for i in 0..30 {
        place(&shop, &buyers[i % buyers.len()], rare_product).await?;
    }

    eprintln!("{}: placing {} orders…", args.label, args.orders);
    let started = Instant::now();
    let per_buyer = args.orders / args.buyers;
    let tasks = buyers.into_iter().enumerate().map(|(b, buyer)| {
        let (shop, products) = (shop.clone(), products.clone());
        tokio::spawn(async move {
            for i in 0..per_buyer {
                let id = place(&shop, &buyer, products[(b + i) % products.len()]).await?;
                if i % 2 == 0 {
                    shop.payments.pay(&buyer, id).await?;
                }
            }
            anyhow::Ok(())
        })
    });
    for task in futures::future::join_all(tasks).await {
        task??;
    }
    let placed = per_buyer * args.buyers;
    let writing = started.elapsed();
    let events = shop.seller_index.lag(shop::clock::now_ms()).await?.pending_events;

    eprintln!("{}: delivering {events} events…", args.label);
    let started = Instant::now();
    loop {
        shop.seller_index.relay(500).await?;
        let stats = shop.jobs.run_due(shop::clock::now_ms(), 500).await?;
        if stats.done == 0 && shop.seller_index.lag(shop::clock::now_ms()).await?.pending_events == 0 {
            break;
        }
    }
    let delivering = started.elapsed();
    let report = shop.seller_index.rebuild(false).await?;
    anyhow::ensure!(report.differences.is_empty(), "the index differs from the shards: {:?}", &report.differences[..report.differences.len().min(5)]);

    eprintln!("{}: reading…", args.label);
    println!("| backend | orders | write s | events | deliver events/s | seller | index p50 ms | index p99 ms | all shards p50 ms | all shards p99 ms | shards / index |");
    println!("|---------|-------:|--------:|-------:|-----------------:|--------|-------------:|-------------:|------------------:|------------------:|---------------:|");
    let rare = [rare];
    for (kind, group) in [("busy", &sellers[..]), ("rare", &rare[..])] {
        let (from_index, from_shards) = read_both_ways(&shop, group, args.reads).await?;
        let (index_p50, shards_p50) = (bench::percentile_ms(&from_index, 0.5), bench::percentile_ms(&from_shards, 0.5));
        println!(
            "| {} | {placed} | {:.1} | {events} | {:.0} | {kind} | {index_p50:.3} | {:.3} | {shards_p50:.3} | {:.3} | {:.1}× |",
            args.label,
            writing.as_secs_f64(),
            events as f64 / delivering.as_secs_f64(),
            bench::percentile_ms(&from_index, 0.99),
            bench::percentile_ms(&from_shards, 0.99),
            shards_p50 / index_p50,
        );
    }
    shop.databases.close().await;
    Ok(())
}

async fn place(shop: &Shop, buyer: &User, product: shop::domain::ProductId) -> anyhow::Result<shop::orders::OrderId> {
    let lines = vec![LineRequest { product_id: product, quantity: Quantity::parse("quantity", 1)? }];
    let checkout = shop.checkouts.open(buyer, lines).await?;
    let address = ShippingAddress { name: "B".into(), line1: "1 St".into(), line2: String::new(), city: "C".into(), postal_code: "1".into(), country: "NL".into() };
    Ok(shop.orders.place(buyer, PlaceOrder { order_id: checkout.order_id, checkout_token: shop::services::checkout::checkout_token(&checkout.checkout_token)?, lines: None, shipping_address: address, expected_total_cents: None }).await?.order.id)
}

/// `reads` newest-page reads over `sellers`, each from the index and then from the
/// shards, checked to agree: (index latencies, shard latencies), sorted.
async fn read_both_ways(shop: &Shop, sellers: &[User], reads: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let limit = PageLimit::DEFAULT;
    let (mut from_index, mut from_shards) = (Vec::with_capacity(reads), Vec::with_capacity(reads));
    for r in 0..reads {
        let seller = &sellers[r % sellers.len()];
        let started = Instant::now();
        let page = shop.seller_index.list(seller, None, None, limit).await?;
        from_index.push(started.elapsed());
        let started = Instant::now();
        let merged = scatter_gather(shop, seller, i64::from(limit.get())).await?;
        from_shards.push(started.elapsed());
        let indexed: Vec<i64> = page.items.iter().map(|o| o.order.id.get()).collect();
        anyhow::ensure!(indexed == merged, "the two reads disagree");
    }
    from_index.sort();
    from_shards.sort();
    Ok((from_index, from_shards))
}

/// The read the index replaces: every shard's newest 24 of this seller, merged,
/// then each of the 24 loaded whole (as the index's page carries each order whole).
async fn scatter_gather(shop: &Shop, seller: &User, limit: i64) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::new();
    for shard in &shop.databases.shards {
        let found: Vec<i64> = sqlx::query_scalar("SELECT id FROM orders WHERE seller_id = $1 ORDER BY id DESC LIMIT $2").bind(seller.id.get()).bind(limit).fetch_all(shard.pool()).await?;
        ids.extend(found);
    }
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.truncate(limit as usize);
    for id in &ids {
        let shard = &shop.databases.shards[shop.orders.shards().index_of_buyer(shop::domain::UserId::from_stored(id % 1_000_000))];
        sqlx::query("SELECT o.id, o.status, o.total_cents FROM orders o WHERE o.id = $1").bind(id).fetch_one(shard.pool()).await?;
        sqlx::query("SELECT product_id, quantity FROM order_lines WHERE order_id = $1").bind(id).fetch_all(shard.pool()).await?;
    }
    Ok(ids)
}
