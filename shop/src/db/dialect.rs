//! Everything that differs between SQLite and PostgreSQL. The rest of the crate
//! writes one dialect; if you need a `match backend` elsewhere, it belongs here.

use sqlx::{AnyConnection, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!("unsupported database URL (expected sqlite:// or postgres://): {}", redact(url))
        }
    }

    /// SQLite has one writer at a time, so more connections only add lock waits;
    /// PostgreSQL runs writers in parallel.
    pub fn default_max_connections(self) -> u32 {
        match self {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        }
    }
}

/// The statement that opens a write transaction, if it differs from plain `BEGIN`.
pub fn write_transaction_begin(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Sqlite => Some("BEGIN IMMEDIATE"),
        // PostgreSQL locks rows, not the database: conditional UPDATEs give the
        // ordering we need without a database-wide lock.
        Backend::Postgres => None,
    }
}

/// Per-connection settings. SQLite's are per connection, not per file. On
/// PostgreSQL a statement running longer than `statement_timeout_ms` is cancelled
/// by the server, so a stuck database answers a request with a 503, not a hang.
pub async fn prepare_connection(backend: Backend, conn: &mut AnyConnection, statement_timeout_ms: u64) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        conn.execute(format!("SET statement_timeout = {statement_timeout_ms}").as_str()).await?;
    }
    if backend == Backend::Sqlite {
        // WAL lets readers run beside the single writer; the busy timeout makes
        // writers queue instead of failing; foreign keys are off by default in SQLite.
        // `synchronous = NORMAL` is safe in WAL mode (a power cut may lose the last
        // commits, never corrupt the file).
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA busy_timeout = 30000").await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
    }
    Ok(())
}

/// Tables whose rows, once written, never change: the money journal.
const APPEND_ONLY: [&str; 2] = ["ledger_transfers", "ledger_entries"];

/// Makes the journal append-only in the database itself: triggers refuse every
/// UPDATE and DELETE (and, on PostgreSQL, TRUNCATE), whoever connects. Idempotent;
/// run after the main database's migrations, because the trigger syntax differs.
pub async fn install_append_only_guards(backend: Backend, pool: &sqlx::AnyPool) -> Result<(), sqlx::Error> {
    match backend {
        Backend::Sqlite => {
            for table in APPEND_ONLY {
                for operation in ["UPDATE", "DELETE"] {
                    let name = format!("{table}_no_{}", operation.to_lowercase());
                    pool.execute(
                        format!("CREATE TRIGGER IF NOT EXISTS {name} BEFORE {operation} ON {table} BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
                            .as_str(),
                    )
                    .await?;
                }
            }
        }
        Backend::Postgres => {
            pool.execute(
                "CREATE OR REPLACE FUNCTION ninefold_refuse_change() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$",
            )
            .await?;
            for table in APPEND_ONLY {
                pool.execute(
                    format!("CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION ninefold_refuse_change()")
                        .as_str(),
                )
                .await?;
                pool.execute(
                    format!("CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION ninefold_refuse_change()")
                        .as_str(),
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// PostgreSQL's WAL page size: a position just past a page boundary, inside the
/// page header, is where the next record will go, not the end of one.
const WAL_PAGE: u64 = 8192;
/// The longest page header (the first page of a segment).
const WAL_LONG_PAGE_HEADER: u64 = 40;

/// A WAL position comparable with a replica's replay position: a position inside
/// a page header (the insert position right after a record that filled its page)
/// means the end of that page, which is where the replica's replay stops.
pub fn comparable_wal_position(position: u64) -> u64 {
    let into_page = position % WAL_PAGE;
    if into_page > 0 && into_page <= WAL_LONG_PAGE_HEADER { position - into_page } else { position }
}

/// The primary's WAL insert position now, as bytes. Asked after a commit, it is
/// at or past that commit's record: `pg_current_wal_lsn()` can still be short of
/// it when `synchronous_commit` is off.
pub async fn wal_position(primary: &sqlx::AnyPool) -> Result<u64, sqlx::Error> {
    let position: i64 = sqlx::query_scalar("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint").fetch_one(primary).await?;
    Ok(comparable_wal_position(position.max(0) as u64))
}

/// How far a replica has replayed, as bytes; `None` if it is not a replica.
pub async fn replay_position(replica: &sqlx::AnyPool) -> Result<Option<u64>, sqlx::Error> {
    let position: Option<i64> = sqlx::query_scalar("SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint").fetch_one(replica).await?;
    Ok(position.map(|p| p.max(0) as u64))
}

/// SQLite creates the file (`mode=rwc`) but not its folder.
pub fn create_sqlite_parent_dir(url: &str) -> anyhow::Result<()> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

/// Whether an error is a unique-constraint violation, whichever backend raised it.
/// Whether the error means a database did not answer (as opposed to refusing a
/// statement): no connection within the acquire timeout, a connection lost, a
/// statement cancelled by its timeout, a server shutting down. These are 503s.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: 57014 query_canceled (statement_timeout), 57P01..57P03 shutting
        // down or cannot connect now, class 08 connection exceptions.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code == "57014" || code.starts_with("57P") || code.starts_with("08")),
        _ => false,
    }
}

pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// A URL with its password replaced, for error messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact("postgres://app:secret@db:5432/shop"), "postgres://app:***@db:5432/shop");
        assert_eq!(redact("sqlite://data/main.db"), "sqlite://data/main.db");
    }

    #[test]
    fn positions_inside_a_page_header_mean_the_end_of_the_page() {
        // 0/B000028, as an idle primary reports after a segment switch, and the
        // replica's replay position there, 0/B000000.
        assert_eq!(comparable_wal_position(184_549_416), 184_549_376);
        assert_eq!(comparable_wal_position(184_549_376), 184_549_376);
        assert_eq!(comparable_wal_position(8192 + 24), 8192);
        assert_eq!(comparable_wal_position(8192 + 48), 8192 + 48);
    }

    #[test]
    fn backend_is_read_from_the_scheme() {
        assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::from_url("postgresql://h/db").unwrap(), Backend::Postgres);
        assert!(Backend::from_url("mysql://h/db").is_err());
    }
}
