//! Read replicas of one database role (DESIGN.md, failure mode 7).
//!
//! A background task polls, every [`POLL`], the primary's WAL position and each
//! replica's replay position. A display read picks a replica that answers, lags
//! less than the allowed maximum, and has replayed the caller's fence for this
//! role; otherwise it reads the primary. No read ever waits for a replica, and
//! no read queries a replica's position: it uses the last poll.

use super::dialect;
use sqlx::AnyPool;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How often replica positions are polled.
pub const POLL: Duration = Duration::from_millis(50);

/// Why a display read went to the primary although the role has replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// No replica had replayed the caller's own writes yet.
    Fence,
    /// Every replica that answers lags more than the allowed maximum.
    Lag,
    /// No replica answers.
    Down,
}

impl Fallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::Fence => "fence",
            Fallback::Lag => "lag",
            Fallback::Down => "down",
        }
    }
}

/// One replica and what the last poll saw of it.
#[derive(Debug)]
pub struct Replica {
    /// `replica_0`, `replica_1`, …: for metrics and health (never the URL).
    pub name: String,
    pub(super) pool: AnyPool,
    up: AtomicBool,
    replayed: AtomicU64,
    lag_ms: AtomicU64,
}

/// A replica's state as `/healthz` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplicaHealth {
    pub role: String,
    pub replica: String,
    /// `up`, `lagging` or `down`.
    pub state: &'static str,
    pub lag_ms: u64,
}

#[derive(Debug)]
pub struct ReplicaSet {
    role: Arc<str>,
    pub(super) replicas: Vec<Replica>,
    max_lag_ms: u64,
    /// Round robin over the replicas that qualify.
    next: AtomicUsize,
    /// Recent (when, primary position) samples, oldest first: a replica's lag is
    /// how long ago the primary was first past the replica's replay position.
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl ReplicaSet {
    pub(super) fn new(role: Arc<str>, pools: Vec<AnyPool>, max_lag_ms: u64) -> Arc<Self> {
        let replicas = pools
            .into_iter()
            .enumerate()
            .map(|(k, pool)| Replica { name: format!("replica_{k}"), pool, up: AtomicBool::new(false), replayed: AtomicU64::new(0), lag_ms: AtomicU64::new(0) })
            .collect();
        Arc::new(Self { role, replicas, max_lag_ms, next: AtomicUsize::new(0), samples: Mutex::new(VecDeque::new()) })
    }

    /// A replica for a display read under `fence`, or why there is none.
    pub(super) fn choose(&self, fence: Option<u64>) -> Result<&Replica, Fallback> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut reason = Fallback::Down;
        for k in 0..self.replicas.len() {
            let replica = &self.replicas[(start + k) % self.replicas.len()];
            if !replica.up.load(Ordering::Relaxed) {
                continue;
            }
            if replica.lag_ms.load(Ordering::Relaxed) > self.max_lag_ms {
                reason = Fallback::Lag;
                continue;
            }
            if fence.is_some_and(|fence| replica.replayed.load(Ordering::Relaxed) < fence) {
                reason = Fallback::Fence;
                continue;
            }
            return Ok(replica);
        }
        Err(reason)
    }

    /// A read on `replica` failed as if it were down: skip it until the next poll
    /// finds it answering.
    pub(super) fn mark_down(&self, replica: &Replica) {
        replica.up.store(false, Ordering::Relaxed);
    }

    pub fn health(&self) -> Vec<ReplicaHealth> {
        self.replicas
            .iter()
            .map(|r| {
                let lag_ms = r.lag_ms.load(Ordering::Relaxed);
                let state = match (r.up.load(Ordering::Relaxed), lag_ms > self.max_lag_ms) {
                    (false, _) => "down",
                    (true, true) => "lagging",
                    (true, false) => "up",
                };
                ReplicaHealth { role: self.role.to_string(), replica: r.name.clone(), state, lag_ms }
            })
            .collect()
    }

    /// Polls every [`POLL`] until the set is dropped.
    pub(super) fn watch(set: &Arc<Self>, primary: AnyPool) {
        let weak: Weak<Self> = Arc::downgrade(set);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(POLL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(set) = weak.upgrade() else { return };
                set.poll(&primary).await;
            }
        });
    }

    async fn poll(&self, primary: &AnyPool) {
        let now = Instant::now();
        let within = Duration::from_millis(self.max_lag_ms.clamp(200, 1000));
        if let Ok(Ok(position)) = tokio::time::timeout(within, dialect::wal_position(primary)).await {
            let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            if samples.back().is_none_or(|&(_, last)| position > last) {
                samples.push_back((now, position));
            }
            // Keep what can tell a lag up to twice the maximum, and the newest sample.
            let horizon = Duration::from_millis(self.max_lag_ms.saturating_mul(2).max(1000));
            while samples.len() > 1 && samples.front().is_some_and(|&(at, _)| now.duration_since(at) > horizon) {
                samples.pop_front();
            }
        }
        for replica in &self.replicas {
            match tokio::time::timeout(within, dialect::replay_position(&replica.pool)).await {
                Ok(Ok(Some(replayed))) => {
                    replica.replayed.store(replayed, Ordering::Relaxed);
                    replica.lag_ms.store(self.lag_ms(now, replayed), Ordering::Relaxed);
                    replica.up.store(true, Ordering::Relaxed);
                }
                // Not answering, or not a replica at all (no replay position).
                _ => replica.up.store(false, Ordering::Relaxed),
            }
            metrics::gauge!("ninefold_replica_lag_seconds", "role" => self.role.to_string(), "replica" => replica.name.clone())
                .set(replica.lag_ms.load(Ordering::Relaxed) as f64 / 1000.0);
        }
    }

    /// How long ago the primary first stood past `replayed`: 0 when the replica
    /// has replayed everything the primary had at the newest sample.
    fn lag_ms(&self, now: Instant, replayed: u64) -> u64 {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        match samples.iter().find(|&&(_, position)| position > replayed) {
            Some(&(at, _)) => now.duration_since(at).as_millis() as u64,
            None => 0,
        }
    }
}
