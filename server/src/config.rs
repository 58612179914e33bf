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
    /// Seed an empty database with the demo catalog and accounts: only on the
    /// embedded default, or when the configuration says `demo = true`.
    pub seed_demo: bool,
    /// How many unpaid orders one buyer may hold at once.
    pub max_unpaid_orders: i64,
    /// Wallet top-ups (demo money): on in demo mode, with a daily cap per user.
    pub top_ups: shop::services::ledger::TopUpPolicy,
    /// A shipped order the buyer never confirms completes after this long.
    pub auto_complete_secs: u64,
    /// Per-client-address limits on sign-in, registration, guest carts and checkout.
    pub rate_limits: RateLimitSettings,
    /// Behind a proxy that appends the client's address to `X-Forwarded-For`:
    /// take the client address from there. Off, the header is ignored (anyone can send it).
    pub trust_forwarded_for: bool,
    /// Every request's deadline: past it the answer is 503 with `Retry-After`.
    pub request_timeout_ms: u64,
    /// How long SIGTERM waits for in-flight requests and workers before stopping anyway.
    pub shutdown_grace_secs: u64,
    /// When set, `/metrics` requires `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<String>,
    /// A session unused this long ends (besides its absolute expiry).
    pub session_idle_secs: u64,
    /// Mark session cookies `Secure`: turn on whenever the site is served over HTTPS.
    pub secure_cookies: bool,
    /// Print logs as JSON lines rather than human-readable text.
    pub json_logs: bool,
    /// How often the background workers run.
    pub schedules: Schedules,
    /// Which finished orders move to the archive, and in what batches.
    pub archive: shop::services::archive::ArchivePolicy,
    /// Where product images are kept: a folder under the data folder by default,
    /// or any store `[images] url` names (`s3://bucket/prefix`, with `[images.options]`).
    pub image_store_url: String,
    pub image_store_options: std::collections::HashMap<String, String>,
}

/// Per-client-address rate limits (`[rate_limits]` in the TOML file): a rate per
/// minute and a burst for each limited action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub sign_in_per_minute: u32,
    pub sign_in_burst: u32,
    pub registration_per_minute: u32,
    pub registration_burst: u32,
    pub guest_cart_per_minute: u32,
    pub guest_cart_burst: u32,
    pub checkout_per_minute: u32,
    pub checkout_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            sign_in_per_minute: 60,
            sign_in_burst: 10,
            registration_per_minute: 30,
            registration_burst: 5,
            guest_cart_per_minute: 120,
            guest_cart_burst: 20,
            checkout_per_minute: 120,
            checkout_burst: 20,
        }
    }
}

impl RateLimitSettings {
    /// No limits (load tests and benchmarks that register hundreds of accounts from one address).
    pub fn off() -> Self {
        Self { enabled: false, ..Self::default() }
    }
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
    /// Completing shipped orders whose buyer never confirmed receipt.
    pub auto_complete_ms: u64,
    /// Moving finished orders past the hot window to the archive.
    pub archive_ms: u64,
}

impl Default for Schedules {
    fn default() -> Self {
        Self { recovery_ms: 5_000, jobs_ms: 1_000, cleanup_ms: 3_600_000, payments_ms: 10_000, reconcile_ms: 3_600_000, seller_index_ms: 250, auto_complete_ms: 60_000, archive_ms: 3_600_000 }
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
    /// Seed the demo catalog and accounts into an empty database.
    demo: Option<bool>,
    max_unpaid_orders: Option<i64>,
    auto_complete_days: Option<u64>,
    wallet: Option<FileWallet>,
    rate_limits: Option<RateLimitSettings>,
    trust_forwarded_for: Option<bool>,
    request_timeout_ms: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    metrics_token: Option<String>,
    session_idle_days: Option<u64>,
    secure_cookies: Option<bool>,
    json_logs: Option<bool>,
    databases: Option<FileDatabases>,
    schedules: Option<Schedules>,
    archive: Option<FileArchive>,
    images: Option<FileImages>,
}

/// `[images]` in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileImages {
    /// `file:///var/lib/ninefold/images` or `s3://bucket/prefix`.
    url: Option<String>,
    /// For S3: `region`, `endpoint`, `access_key_id`, `secret_access_key`, … (object_store's names).
    #[serde(default)]
    options: std::collections::HashMap<String, String>,
}

/// `[archive]` in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileArchive {
    /// The hot window: finished orders unchanged this long move to the archive (default 90).
    after_days: Option<u64>,
    /// Orders per shard per batch (default 500).
    batch: Option<i64>,
}

/// `[wallet]` in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWallet {
    /// `"demo"`: wallets can be topped up with demo money; `"off"`: they cannot.
    top_up: Option<TopUpMode>,
    /// Per user and UTC day, in cents (demo mode).
    top_up_daily_cap_cents: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TopUpMode {
    Demo,
    Off,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabases {
    main: DatabaseUrl,
    shards: Vec<DatabaseUrl>,
    archive: DatabaseUrl,
    /// `[databases.timeouts]`: `acquire_ms` (default 2000), `statement_ms` (default 10000).
    #[serde(default)]
    timeouts: shop::db::DbTimeouts,
    /// A replica lagging more than this is skipped until it catches up (default 5000).
    #[serde(default = "shop::db::default_max_replica_lag_ms")]
    max_replica_lag_ms: u64,
}

impl Settings {
    /// What the shop's services need, the image store opened.
    pub fn shop_settings(&self) -> anyhow::Result<shop::services::ShopSettings> {
        let store = shop::services::images::open_store(&self.image_store_url, &self.image_store_options)
            .with_context(|| format!("opening the image store {}", self.image_store_url))?;
        Ok(shop::services::ShopSettings {
            hold_ttl_ms: self.hold_ttl_secs as i64 * 1000,
            max_unpaid_orders: self.max_unpaid_orders,
            top_ups: self.top_ups,
            auto_complete_ms: self.auto_complete_secs as i64 * 1000,
            session_idle_ms: self.session_idle_secs as i64 * 1000,
            image_store: Some(store),
            ..Default::default()
        })
    }

    /// Reads the process environment (and the file it names).
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Builds settings from any variable lookup, so tests need not touch the process environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let configured = var("NINEFOLD_CONFIG").is_some();
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
            Some(d) => DatabaseConfig { main: d.main, shards: d.shards, archive: d.archive, timeouts: d.timeouts, max_replica_lag_ms: d.max_replica_lag_ms },
            None => DatabaseConfig::sqlite_in(&data_dir, DEFAULT_SQLITE_SHARDS),
        };
        anyhow::ensure!(!databases.shards.is_empty(), "configure at least one order shard");
        for db in databases.all() {
            db.check_pool_sizes().map_err(|e| anyhow::anyhow!("[databases] {e}"))?;
        }
        let mut databases = databases;
        if let Some(ms) = var("NINEFOLD_DB_ACQUIRE_TIMEOUT_MS") {
            databases.timeouts.acquire_ms = ms.parse().with_context(|| format!("NINEFOLD_DB_ACQUIRE_TIMEOUT_MS is not a number of milliseconds: {ms}"))?;
        }
        let max_unpaid_orders = match var("NINEFOLD_MAX_UNPAID_ORDERS") {
            Some(s) => s.parse().with_context(|| format!("NINEFOLD_MAX_UNPAID_ORDERS is not a number: {s}"))?,
            None => file.max_unpaid_orders.unwrap_or(5),
        };
        anyhow::ensure!(max_unpaid_orders > 0, "NINEFOLD_MAX_UNPAID_ORDERS must be at least 1");
        let auto_complete_secs = match var("NINEFOLD_AUTO_COMPLETE_SECS") {
            Some(s) => s.parse().with_context(|| format!("NINEFOLD_AUTO_COMPLETE_SECS is not a number of seconds: {s}"))?,
            None => file.auto_complete_days.unwrap_or(14) * 24 * 60 * 60,
        };
        anyhow::ensure!(auto_complete_secs > 0, "the auto-complete window must be positive");
        // Demo money and demo data only on the embedded default, unless a configuration asks.
        let wallet = file.wallet.unwrap_or_default();
        let top_up_on = wallet.top_up.map_or(!configured, |mode| mode == TopUpMode::Demo);
        let daily_cap_cents = match var("NINEFOLD_TOP_UP_DAILY_CAP_CENTS") {
            Some(s) => s.parse().with_context(|| format!("NINEFOLD_TOP_UP_DAILY_CAP_CENTS is not a number of cents: {s}"))?,
            None => wallet.top_up_daily_cap_cents.unwrap_or(shop::services::ledger::TopUpPolicy::DEFAULT_DAILY_CAP_CENTS),
        };
        let top_ups = shop::services::ledger::TopUpPolicy { enabled: top_up_on, daily_cap_cents };
        let demo = file.demo.or(file.seed_demo).unwrap_or(!configured);
        let mut rate_limits = file.rate_limits.unwrap_or_default();
        if let Some(value) = var("NINEFOLD_RATE_LIMITS") {
            rate_limits.enabled = match value.trim() {
                "off" | "0" | "false" => false,
                "on" | "1" | "true" => true,
                other => anyhow::bail!("NINEFOLD_RATE_LIMITS must be on or off, not {other}"),
            };
        }
        let request_timeout_ms = match var("NINEFOLD_REQUEST_TIMEOUT_MS") {
            Some(s) => s.parse().with_context(|| format!("NINEFOLD_REQUEST_TIMEOUT_MS is not a number of milliseconds: {s}"))?,
            None => file.request_timeout_ms.unwrap_or(10_000),
        };
        anyhow::ensure!(request_timeout_ms > 0, "the request timeout must be positive");
        let archive = archive_policy(var("NINEFOLD_ARCHIVE_AFTER_SECS"), file.archive.unwrap_or_default())?;
        let images = file.images.unwrap_or_default();
        let image_store_url = images.url.unwrap_or_else(|| format!("file://{}", data_dir.join("images").display()));
        Ok(Self {
            addr,
            data_dir,
            databases,
            hold_ttl_secs,
            seed_demo: !flag("NINEFOLD_NO_DEMO").unwrap_or(false) && demo,
            max_unpaid_orders,
            top_ups,
            auto_complete_secs,
            rate_limits,
            trust_forwarded_for: flag("NINEFOLD_TRUST_FORWARDED_FOR").or(file.trust_forwarded_for).unwrap_or(false),
            request_timeout_ms,
            shutdown_grace_secs: match var("NINEFOLD_SHUTDOWN_GRACE_SECS") {
                Some(s) => s.parse().with_context(|| format!("NINEFOLD_SHUTDOWN_GRACE_SECS is not a number of seconds: {s}"))?,
                None => file.shutdown_grace_secs.unwrap_or(10),
            },
            session_idle_secs: match var("NINEFOLD_SESSION_IDLE_SECS") {
                Some(s) => s.parse().with_context(|| format!("NINEFOLD_SESSION_IDLE_SECS is not a number of seconds: {s}"))?,
                None => file.session_idle_days.unwrap_or(7) * 24 * 60 * 60,
            },
            metrics_token: var("NINEFOLD_METRICS_TOKEN").or(file.metrics_token).filter(|t| !t.is_empty()),
            secure_cookies: flag("NINEFOLD_SECURE_COOKIES").or(file.secure_cookies).unwrap_or(false),
            json_logs: flag("NINEFOLD_JSON_LOGS").or(file.json_logs).unwrap_or(false),
            schedules: file.schedules.unwrap_or_default(),
            archive,
            image_store_url,
            image_store_options: images.options,
        })
    }
}

/// The hot window from `NINEFOLD_ARCHIVE_AFTER_SECS` (tests and demos), else
/// `[archive] after_days`, else 90 days.
fn archive_policy(after_secs: Option<String>, file: FileArchive) -> anyhow::Result<shop::services::archive::ArchivePolicy> {
    use shop::services::archive::ArchivePolicy;
    let after_ms = match after_secs {
        Some(s) => s.parse::<u32>().with_context(|| format!("NINEFOLD_ARCHIVE_AFTER_SECS is not a number of seconds: {s}"))? as i64 * 1000,
        None => match file.after_days {
            Some(days) => {
                anyhow::ensure!(days <= 100 * 365, "[archive] after_days must be at most 36500");
                days as i64 * 24 * 60 * 60 * 1000
            }
            None => ArchivePolicy::DEFAULT_AFTER_MS,
        },
    };
    let batch = file.batch.unwrap_or(ArchivePolicy::DEFAULT_BATCH);
    anyhow::ensure!((1..=10_000).contains(&batch), "[archive] batch must be between 1 and 10000");
    Ok(ArchivePolicy { after_ms, batch })
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
        assert_eq!(settings.max_unpaid_orders, 5);
        assert!(settings.top_ups.enabled, "demo money on the embedded default");
        assert_eq!(settings.top_ups.daily_cap_cents, 1_000_000);
        assert_eq!(settings.auto_complete_secs, 14 * 24 * 60 * 60);
        assert_eq!(settings.archive, shop::services::archive::ArchivePolicy { after_ms: 90 * 24 * 60 * 60 * 1000, batch: 500 });
    }

    #[test]
    fn the_hot_window_comes_from_the_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.toml");
        std::fs::write(&path, "[archive]\nafter_days = 30\nbatch = 100\n").unwrap();
        let config = path.to_string_lossy().into_owned();
        let settings = Settings::from_lookup(lookup(&[("NINEFOLD_CONFIG", &config)])).unwrap();
        assert_eq!((settings.archive.after_ms, settings.archive.batch), (30 * 24 * 60 * 60 * 1000, 100));
        let settings = Settings::from_lookup(lookup(&[("NINEFOLD_CONFIG", &config), ("NINEFOLD_ARCHIVE_AFTER_SECS", "5")])).unwrap();
        assert_eq!(settings.archive.after_ms, 5000);
        for bad in ["-1", "soon", "99999999999"] {
            assert!(Settings::from_lookup(lookup(&[("NINEFOLD_ARCHIVE_AFTER_SECS", bad)])).is_err(), "{bad} accepted");
        }
    }

    /// A production configuration starts empty and mints no money unless it says so.
    #[test]
    fn a_configuration_seeds_no_demo_and_turns_top_ups_off_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.toml");
        std::fs::write(&plain, "hold_ttl_secs = 60\n").unwrap();
        let settings = Settings::from_lookup(lookup(&[("NINEFOLD_CONFIG", &plain.to_string_lossy())])).unwrap();
        assert!(!settings.seed_demo);
        assert!(!settings.top_ups.enabled);
        let demo = dir.path().join("demo.toml");
        std::fs::write(&demo, "demo = true\nauto_complete_days = 3\nmax_unpaid_orders = 2\n[wallet]\ntop_up = \"demo\"\ntop_up_daily_cap_cents = 5000\n").unwrap();
        let settings = Settings::from_lookup(lookup(&[("NINEFOLD_CONFIG", &demo.to_string_lossy()), ("NINEFOLD_MAX_UNPAID_ORDERS", "7")])).unwrap();
        assert!(settings.seed_demo);
        assert_eq!(settings.top_ups, shop::services::ledger::TopUpPolicy { enabled: true, daily_cap_cents: 5000 });
        assert_eq!((settings.auto_complete_secs, settings.max_unpaid_orders), (3 * 24 * 60 * 60, 7));
        let off = dir.path().join("off.toml");
        std::fs::write(&off, "[wallet]\ntop_up = \"off\"\n").unwrap();
        assert!(!Settings::from_lookup(lookup(&[("NINEFOLD_CONFIG", &off.to_string_lossy())])).unwrap().top_ups.enabled);
        // NINEFOLD_NO_DEMO governs seeded data only, not top-ups.
        let settings = Settings::from_lookup(lookup(&[("NINEFOLD_NO_DEMO", "1")])).unwrap();
        assert!(!settings.seed_demo && settings.top_ups.enabled);
    }

    #[test]
    fn pool_sizes_that_cannot_be_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ninefold.toml");
        let with_main = |main: &str| {
            let toml = format!("[databases]\nmain = {{ url = \"postgres://u:p@db/main\", {main} }}\nshards = [{{ url = \"postgres://u:p@db/s0\" }}]\narchive = {{ url = \"postgres://u:p@db/archive\" }}\n");
            std::fs::write(&path, toml).unwrap();
            Settings::from_lookup(lookup(&[("NINEFOLD_CONFIG", &path.to_string_lossy())]))
        };
        let fixed = with_main("max_connections = 32, min_connections = 32").unwrap();
        assert_eq!((fixed.databases.main.min_connections, fixed.databases.main.max_connections), (Some(32), Some(32)));
        let err = with_main("max_connections = 8, min_connections = 9").unwrap_err().to_string();
        assert!(err.contains("min_connections (9) is more than max_connections (8)") && !err.contains("u:p@"), "{err}");
        assert!(with_main("max_connections = 0").unwrap_err().to_string().contains("max_connections must be at least 1"));
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
