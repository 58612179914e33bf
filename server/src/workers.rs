//! Background workers. Each runs until the shutdown token fires, and stops
//! between units of work, never in the middle of one.

use crate::config::Settings;
use shop::Shop;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How many jobs one poll runs, and orders one recovery pass handles; the next
/// tick takes the rest.
const JOBS_BATCH: i64 = 200;
const RECOVERY_BATCH: i64 = 500;
/// How long a delivered seller-index event stays in the queue (for inspection).
const DELIVERED_EVENTS_KEPT_MS: i64 = 60 * 60 * 1000;
/// Outbox rows one relay pass takes from each shard.
const RELAY_BATCH: i64 = 500;

pub fn spawn_all(shop: &Shop, settings: &Settings, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
    let schedules = &settings.schedules;
    let auto_complete_ms = settings.auto_complete_secs as i64 * 1000;
    let every = |ms: u64| Duration::from_millis(ms.max(10));
    let recovery = spawn_periodic("hold-expiry", every(schedules.recovery_ms), shutdown.clone(), {
        let shop = shop.clone();
        move || {
            let shop = shop.clone();
            async move {
                let pass = shop.stock.recover(shop::clock::now_ms(), RECOVERY_BATCH).await;
                if pass.acted > 0 {
                    tracing::info!(orders = pass.acted, failed = pass.failed, "lapsed unpaid orders cancelled and their stock released");
                }
                Ok(())
            }
        }
    });
    let jobs = spawn_periodic("jobs", every(schedules.jobs_ms), shutdown.clone(), {
        let shop = shop.clone();
        move || {
            let shop = shop.clone();
            async move {
                // Drain what is due: a burst of orders should not wait a tick per batch.
                loop {
                    let stats = shop.jobs.run_due(shop::clock::now_ms(), JOBS_BATCH).await?;
                    if stats.done + stats.retried + stats.failed < JOBS_BATCH as u64 {
                        return Ok(());
                    }
                }
            }
        }
    });
    let payments = spawn_periodic("payment-recovery", every(schedules.payments_ms), shutdown.clone(), {
        let shop = shop.clone();
        let grace_ms = schedules.payments_ms as i64;
        move || {
            let shop = shop.clone();
            async move {
                let handled = shop.payments.recover(shop::clock::now_ms() - grace_ms, RECOVERY_BATCH).await?;
                if handled > 0 {
                    tracing::info!(payments = handled, "interrupted payments driven to an end");
                }
                Ok(())
            }
        }
    });
    let reconcile = spawn_periodic("reconcile", every(schedules.reconcile_ms), shutdown.clone(), {
        let shop = shop.clone();
        move || {
            let shop = shop.clone();
            async move {
                let report = shop.ledger.reconcile().await?;
                tracing::info!(accounts = report.accounts_checked, mismatches = report.mismatches.len(), "ledger reconciled");
                Ok(())
            }
        }
    });
    let seller_index = spawn_periodic("seller-index-relay", every(schedules.seller_index_ms), shutdown.clone(), {
        let shop = shop.clone();
        move || {
            let shop = shop.clone();
            async move {
                while shop.seller_index.relay(RELAY_BATCH).await? >= RELAY_BATCH as u64 {}
                let lag = shop.seller_index.lag(shop::clock::now_ms()).await?;
                metrics::gauge!("ninefold_seller_index_pending_events").set(lag.pending_events as f64);
                metrics::gauge!("ninefold_seller_index_lag_seconds").set(lag.oldest_pending_ms as f64 / 1000.0);
                metrics::gauge!("ninefold_seller_index_failed_events").set(lag.failed_events as f64);
                Ok(())
            }
        }
    });
    // Once, at start-up: orders written before the seller index existed reach it here.
    let backfill = tokio::spawn({
        let shop = shop.clone();
        async move {
            match shop.seller_index.backfill_if_empty().await {
                Ok(Some(report)) => tracing::info!(orders = report.orders_checked, added = report.repaired, "seller index built from the shards"),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "building the seller index failed; run `server rebuild-seller-index`"),
            }
        }
    });
    let auto_complete = spawn_periodic("auto-complete", every(schedules.auto_complete_ms), shutdown.clone(), {
        let shop = shop.clone();
        let window_ms = auto_complete_ms;
        move || {
            let shop = shop.clone();
            async move {
                let completed = shop.payments.complete_unconfirmed(shop::clock::now_ms(), window_ms, RECOVERY_BATCH).await;
                if completed > 0 {
                    tracing::info!(orders = completed, "shipped orders never confirmed were completed");
                }
                Ok(())
            }
        }
    });
    let cleanup = spawn_periodic("expiry-cleanup", every(schedules.cleanup_ms), shutdown.clone(), {
        let shop = shop.clone();
        move || {
            let shop = shop.clone();
            async move {
                clean_up(&shop).await;
                Ok(())
            }
        }
    });
    let archive = spawn_periodic("archive", every(schedules.archive_ms), shutdown.clone(), {
        let shop = shop.clone();
        let policy = settings.archive;
        move || {
            let shop = shop.clone();
            async move {
                let report = shop.archive.pass(shop::clock::now_ms(), policy, &mut shop::services::archive::Quiet).await?;
                if report.moved() + report.resumed > 0 {
                    tracing::info!(moved = report.moved(), resumed = report.resumed, "finished orders moved to the archive");
                }
                Ok(())
            }
        }
    });
    vec![backfill, recovery, jobs, payments, reconcile, seller_index, auto_complete, cleanup, archive]
}

/// Trims every table that would otherwise only grow. Each step runs whatever the
/// others did: one failing table does not keep the rest from being trimmed.
pub async fn clean_up(shop: &Shop) {
    let now = shop::clock::now_ms();
    let steps: [(&str, shop::ShopResult<u64>); 9] = [
        ("sessions", shop.accounts.delete_expired_sessions().await),
        ("idempotency keys", shop.idempotency.delete_expired(now).await),
        ("guest carts", shop.carts.delete_expired_guest_carts(now).await),
        ("cart merges", shop.carts.delete_old_merges(now).await),
        ("checkout tokens", shop.checkouts.delete_expired(now).await),
        ("top-up days", shop.ledger.delete_old_top_up_days(now).await),
        ("sign-in throttle rows", shop.accounts.delete_old_throttles(now).await),
        // One job per order change: without this the queue grows with every order.
        ("seller index events", shop.jobs.delete_done(shop::services::seller_index::JOB_KIND, now - DELIVERED_EVENTS_KEPT_MS).await),
        ("snapshot jobs", shop.jobs.delete_done(shop::services::snapshots::JOB_KIND, now - DELIVERED_EVENTS_KEPT_MS).await),
    ];
    for (what, outcome) in steps {
        match outcome {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, what, "cleanup: expired rows removed"),
            Err(error) => {
                metrics::counter!("ninefold_worker_failures_total", "worker" => "expiry-cleanup").increment(1);
                tracing::warn!(what, %error, "cleanup step failed; it runs again next time");
            }
        }
    }
}

/// Runs `work` every `period` until shutdown. A failed run is logged and retried
/// at the next tick; it never kills the worker.
fn spawn_periodic<F, Fut>(name: &'static str, period: Duration, shutdown: CancellationToken, work: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = shop::ShopResult<()>> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            if let Err(error) = work().await {
                tracing::warn!(worker = name, error = %error, "worker run failed");
            }
        }
        tracing::debug!(worker = name, "worker stopped");
    })
}
