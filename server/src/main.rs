//! `server`: serves the storefront, or runs a maintenance command.

use clap::{Parser, Subcommand};
use server::config::Settings;

#[derive(Parser)]
#[command(version, about = "Ninefold: storefront and order system. Configured by NINEFOLD_* variables; see README.md.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the storefront and the API (the default).
    Serve,
    /// Create and migrate every database, then exit.
    Migrate,
    /// Sum the journal per account, compare with every balance, print the report
    /// as JSON; exits 1 if anything disagrees.
    Reconcile,
    /// Compare the seller index with the order shards, print every difference as
    /// JSON, and repair them; with --dry-run only report, exiting 1 if any was found.
    RebuildSellerIndex {
        #[arg(long)]
        dry_run: bool,
    },
    /// Move every finished order past the hot window to the archive (one full
    /// pass over every shard), print what moved as JSON, then exit; with
    /// --dry-run only count what would move.
    Archive {
        #[arg(long)]
        dry_run: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::from_env()?;
    server::telemetry::init(settings.json_logs);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => server::run(settings).await,
        Command::Migrate => {
            let shop = shop::Shop::open(&settings.databases, &settings.shop_settings()?).await?;
            shop.databases.close().await;
            tracing::info!("all databases migrated");
            Ok(())
        }
        Command::Reconcile => {
            let shop = shop::Shop::open(&settings.databases, &settings.shop_settings()?).await?;
            let report = shop.ledger.reconcile().await?;
            shop.databases.close().await;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.mismatches.is_empty() || !report.unbalanced_transfers.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::RebuildSellerIndex { dry_run } => {
            let shop = shop::Shop::open(&settings.databases, &settings.shop_settings()?).await?;
            let report = shop.seller_index.rebuild(!dry_run).await?;
            shop.databases.close().await;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if dry_run && !report.differences.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Archive { dry_run } => {
            let shop = shop::Shop::open(&settings.databases, &settings.shop_settings()?).await?;
            let now = shop::clock::now_ms();
            let report = if dry_run {
                let eligible = shop.archive.eligible(now - settings.archive.after_ms).await?;
                serde_json::json!({ "dry_run": true, "eligible": eligible.into_iter().collect::<std::collections::BTreeMap<_, _>>() })
            } else {
                let mut progress = server::archive_progress::ArchiveBars::new();
                serde_json::to_value(shop.archive.pass(now, settings.archive, &mut progress).await?)?
            };
            shop.databases.close().await;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
}
