//! What the load generators share: where their databases are, and percentiles.

use shop::db::{DatabaseConfig, DatabaseUrl, DbTimeouts};
use std::time::Duration;

/// Every benchmark runs on four order shards.
pub const SHARDS: usize = 4;

/// `sqlite:<folder>` for embedded files, or a PostgreSQL server URL whose
/// databases `nf_main`, `nf_shard_0..3` and `nf_archive` exist (the scripts make them).
/// Timeouts are generous: a benchmark measures, it does not shed load.
pub fn databases(spec: &str) -> DatabaseConfig {
    match spec.strip_prefix("sqlite:") {
        Some(folder) => DatabaseConfig::sqlite_in(std::path::Path::new(folder), SHARDS),
        None => {
            let base = spec.trim_end_matches('/');
            let url = |name: &str| DatabaseUrl::new(format!("{base}/nf_{name}"));
            DatabaseConfig {
                main: url("main"),
                shards: (0..SHARDS).map(|k| url(&format!("shard_{k}"))).collect(),
                archive: url("archive"),
                timeouts: DbTimeouts { acquire_ms: 60_000, statement_ms: 3_600_000 },
                max_replica_lag_ms: shop::db::default_max_replica_lag_ms(),
            }
        }
    }
}

/// The `p`-th percentile (0..=1) of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}
