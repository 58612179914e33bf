//! Settings, from (lowest to highest precedence) built-in defaults, the TOML file
//! named by `NINEFOLD_CONFIG`, and `NINEFOLD_*` environment variables. See the
//! operational contract at the end of ../shared/API.md.

use anyhow::Context;
use serde::Deserialize;
use shop::db::{DatabaseConfig, DatabaseUrl};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How many order shards the embedded SQLite default creates.
pub const DEFAULT_SQLITE_SHARDS: usize = 4;

#[derive(Debug, Clone)]
pub struct Settings {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub databases: DatabaseConfig,
    /// How long a reservation holds stock (failure mode 4).
    pub hold_ttl_secs: u64,
    /// Seed an empty database with the demo catalog.
    pub seed_demo: bool,
    /// Mark session cookies `Secure`: turn on whenever the site is served over HTTPS.
    pub secure_cookies: bool,
    /// Print logs as JSON lines rather than human-readable text.
    pub json_logs: bool,
    /// How often the background workers run.
    pub schedules: Schedules,
}

/// Worker periods (`[schedules]` in the TOML file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedules {
    /// Releasing lapsed holds and orphaned stock.
    pub recovery_ms: u64,
    /// Polling the job queue.
    pub jobs_ms: u64,
    /// Deleting expired sessions and idempotency keys.
    pub cleanup_ms: u64,
    /// Driving interrupted payments to an end; a payment is "interrupted" once it
    /// has sat in an intermediate state for this long.
    pub payments_ms: u64,
    /// Reconciling every balance with the journal.
    pub reconcile_ms: u64,
    /// Relaying order changes from the shards' outboxes into the job queue
    /// (the seller index's delivery path).
    pub seller_index_ms: u64,
}

impl Default for Schedules {
    fn default() -> Self {
        Self { recovery_ms: 5_000, jobs_ms: 1_000, cleanup_ms: 3_600_000, payments_ms: 10_000, reconcile_ms: 3_600_000, seller_index_ms: 250 }
    }
}

/// The TOML file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    addr: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    hold_ttl_secs: Option<u64>,
    seed_demo: Option<bool>,
    secure_cookies: Option<bool>,
    json_logs: Option<bool>,
    databases: Option<FileDatabases>,
    schedules: Option<Schedules>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabases {
    main: DatabaseUrl,
    shards: Vec<DatabaseUrl>,
    archive: DatabaseUrl,
}

impl Settings {
    pub fn shop_settings(&self) -> shop::services::ShopSettings {
        shop::services::ShopSettings { hold_ttl_ms: self.hold_ttl_secs as i64 * 1000, ..Default::default() }
    }

    /// Reads the process environment (and the file it names).
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Builds settings from any variable lookup, so tests need not touch the process environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let file = match var("NINEFOLD_CONFIG") {
            Some(path) => {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading NINEFOLD_CONFIG file {path}"))?;
                toml::from_str::<FileSettings>(&text).with_context(|| format!("parsing NINEFOLD_CONFIG file {path}"))?
            }
            None => FileSettings::default(),
        };
        let flag = |key: &str| var(key).map(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"));

        let addr = match var("NINEFOLD_ADDR") {
            Some(a) => a.parse().with_context(|| format!("NINEFOLD_ADDR is not an address: {a}"))?,
            None => file.addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000))),
        };
        let data_dir = var("NINEFOLD_DATA_DIR").map(PathBuf::from).or(file.data_dir).unwrap_or_else(|| PathBuf::from("./data"));
        let hold_ttl_secs = match var("NINEFOLD_HOLD_TTL_SECS") {
            Some(s) => s.parse().with_context(|| format!("NINEFOLD_HOLD_TTL_SECS is not a number of seconds: {s}"))?,
            None => file.hold_ttl_secs.unwrap_or(1800),
        };
        anyhow::ensure!(hold_ttl_secs > 0, "the hold TTL must be positive");
        let databases = match file.databases {
            Some(d) => DatabaseConfig { main: d.main, shards: d.shards, archive: d.archive },
            None => DatabaseConfig::sqlite_in(&data_dir, DEFAULT_SQLITE_SHARDS),
        };
        anyhow::ensure!(!databases.shards.is_empty(), "configure at least one order shard");
        Ok(Self {
            addr,
            data_dir,
            databases,
            hold_ttl_secs,
            seed_demo: !flag("NINEFOLD_NO_DEMO").unwrap_or(false) && file.seed_demo.unwrap_or(true),
            secure_cookies: flag("NINEFOLD_SECURE_COOKIES").or(file.secure_cookies).unwrap_or(false),
            json_logs: flag("NINEFOLD_JSON_LOGS").or(file.json_logs).unwrap_or(false),
            schedules: file.schedules.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn with_no_configuration_it_uses_sqlite_under_data_with_four_shards() {
        let settings = Settings::from_lookup(lookup(&[])).unwrap();
        assert_eq!(settings.addr.to_string(), "127.0.0.1:3000");
        assert!(settings.databases.main.url.starts_with("sqlite://./data/main.db"));
        assert_eq!(settings.databases.shards.len(), 4);
        assert_eq!(settings.hold_ttl_secs, 1800);
        assert!(settings.seed_demo);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ninefold.toml");
        std::fs::write(
            &path,
            r#"
            hold_ttl_secs = 60
            addr = "0.0.0.0:8080"
            [databases]
            main = { url = "postgres://u:p@db/main", max_connections = 30 }
            shards = [{ url = "postgres://u:p@db/s0" }, { url = "postgres://u:p@db/s1", replicas = ["postgres://u:p@replica/s1"] }]
            archive = { url = "postgres://u:p@db/archive" }
            [schedules]
            recovery_ms = 250
            "#,
        )
        .unwrap();
        let path = path.to_string_lossy().to_string();
        let settings = Settings::from_lookup(lookup(&[("NINEFOLD_CONFIG", &path), ("NINEFOLD_HOLD_TTL_SECS", "5"), ("NINEFOLD_NO_DEMO", "1")])).unwrap();
        assert_eq!(settings.hold_ttl_secs, 5);
        assert_eq!(settings.addr.to_string(), "0.0.0.0:8080");
        assert_eq!(settings.databases.shards.len(), 2);
        assert_eq!(settings.databases.shards[1].replicas.len(), 1);
        assert_eq!(settings.databases.main.max_connections, Some(30));
        assert!(!settings.seed_demo);
        assert_eq!((settings.schedules.recovery_ms, settings.schedules.jobs_ms), (250, 1_000));
    }

    #[test]
    fn nonsense_is_refused_with_the_variable_named() {
        let err = Settings::from_lookup(lookup(&[("NINEFOLD_HOLD_TTL_SECS", "soon")])).unwrap_err();
        assert!(err.to_string().contains("NINEFOLD_HOLD_TTL_SECS"));
        let err = Settings::from_lookup(lookup(&[("NINEFOLD_ADDR", "nowhere")])).unwrap_err();
        assert!(err.to_string().contains("NINEFOLD_ADDR"));
    }
}
