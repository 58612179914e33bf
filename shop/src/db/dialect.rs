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

/// The statement that locks the rows of `table` whose `key` is among the rows
/// of the JSON parameter `$1` (see [`json_rows`]), in key order, if the backend
/// needs one. A multi-row UPDATE on PostgreSQL locks rows in whatever order its
/// scan meets them, so two batches over the same rows could each hold one the
/// other wants; locking them first, sorted, gives every batch one order. SQLite
/// has one writer: nothing to order.
pub fn lock_in_key_order(backend: Backend, table: &str, key: JsonColumn) -> Option<String> {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let name = key.name();
            Some(format!("SELECT {name} FROM {table} WHERE {} ORDER BY {name} FOR UPDATE", json_key_in(backend, key, 1, 0)))
        }
    }
}

/// As [`json_key_in`], for the target of an UPDATE that must lock its rows in key
/// order (see [`lock_in_key_order`]): on PostgreSQL the condition locks them itself,
/// sorted, in a sub-select, so the lock costs no statement (a round trip inside a
/// batch that others queue behind) of its own. Every row the sub-select locks
/// comes from its sorted output, whatever plan joins it to the UPDATE.
pub fn json_key_in_locked(backend: Backend, table: &str, column: JsonColumn, param: usize, position: usize) -> String {
    match backend {
        Backend::Sqlite => json_key_in(backend, column, param, position),
        Backend::Postgres => {
            let name = column.name();
            format!("{name} IN (SELECT {name} FROM {table} WHERE {} ORDER BY {name} FOR UPDATE)", json_key_in(backend, column, param, position))
        }
    }
}

/// The condition "`column` is among the values at `position` of the rows in
/// `$param`" (see [`json_rows`]), the values read as `column`'s type; `column`'s
/// name may be qualified (`t.order_id`). Written so that PostgreSQL answers it from
/// `column`'s index. `column IN (SELECT … FROM json_rows(…))` is not: the planner
/// takes a set-returning function for 100 rows whatever the batch holds, and
/// against a table of a few thousand rows picks a sequential scan and a hash join.
/// An `= ANY(ARRAY(…))` is estimated as a handful of values, and looked up.
pub fn json_key_in(backend: Backend, column: JsonColumn, param: usize, position: usize) -> String {
    let name = column.name();
    match backend {
        Backend::Postgres => {
            let value = match column {
                JsonColumn::Int(_) => format!("CAST(e->>{position} AS BIGINT)"),
                JsonColumn::Text(_) => format!("e->>{position}"),
            };
            format!("{name} = ANY(ARRAY(SELECT {value} FROM jsonb_array_elements(CAST(${param} AS jsonb)) AS e))")
        }
        Backend::Sqlite => format!("{name} IN (SELECT json_extract(value, '$[{position}]') FROM json_each(${param}))"),
    }
}

/// The backend a connection talks to.
pub fn backend_of(conn: &AnyConnection) -> Backend {
    if conn.backend_name() == "SQLite" { Backend::Sqlite } else { Backend::Postgres }
}

/// A column of [`json_rows`]: its name and type.
#[derive(Debug, Clone, Copy)]
pub enum JsonColumn {
    Int(&'static str),
    Text(&'static str),
}

impl JsonColumn {
    pub fn name(self) -> &'static str {
        match self {
            JsonColumn::Int(name) | JsonColumn::Text(name) => name,
        }
    }
}

/// A table `r` of the rows passed in one JSON parameter `$param` (see
/// [`super::JsonRows`]): an array of rows, each an array of values in `columns`'
/// order, JSON `null` for SQL `NULL`. Use it as `FROM {json_rows(…)}` or `IN
/// (SELECT … FROM {json_rows(…)})`.
///
/// Why (issue 14): a batched statement written with one placeholder per value has
/// a different text for every batch length, so each batch was a statement the
/// connection had never seen: a Parse and Describe round trip, and a fresh parse
/// and plan in PostgreSQL. A thousand-purchase sale sent a thousand distinct texts.
/// With the rows in one parameter the text is the same for any length, prepared
/// once per connection.
pub fn json_rows(backend: Backend, param: usize, columns: &[JsonColumn]) -> String {
    let fields = columns
        .iter()
        .enumerate()
        .map(|(i, column)| match (backend, column) {
            (Backend::Postgres, JsonColumn::Int(name)) => format!("CAST(e->>{i} AS BIGINT) AS {name}"),
            (Backend::Postgres, JsonColumn::Text(name)) => format!("e->>{i} AS {name}"),
            (Backend::Sqlite, JsonColumn::Int(name) | JsonColumn::Text(name)) => format!("json_extract(value, '$[{i}]') AS {name}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    match backend {
        Backend::Postgres => format!("(SELECT {fields} FROM jsonb_array_elements(CAST(${param} AS jsonb)) AS e) AS r"),
        Backend::Sqlite => format!("(SELECT {fields} FROM json_each(${param})) AS r"),
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

/// How long a SQLite statement waits for another connection's write lock.
pub const SQLITE_BUSY_TIMEOUT_MS: u64 = 30_000;

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
        conn.execute(format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str()).await?;
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

/// How a product list matches search words, in one backend's full-text search:
/// what to join, what to require, and the relevance score (higher is better).
pub struct TextMatch {
    pub join: String,
    pub condition: Option<String>,
    pub score: String,
}

/// The full-text match of the products (`p`) against the query bound at `$param`
/// (made by [`text_query`]). SQLite: the FTS5 index `products_fts` and its BM25
/// rank (negated, so higher is better; a title match weighs ten times a
/// description match). PostgreSQL: the weighted `tsvector` column `search` and `ts_rank`.
pub fn text_match(backend: Backend, param: usize) -> TextMatch {
    match backend {
        Backend::Sqlite => TextMatch {
            join: format!("JOIN (SELECT rowid AS match_id, -bm25(products_fts, 10.0, 1.0) AS match_score FROM products_fts WHERE products_fts MATCH ${param}) m ON m.match_id = p.id"),
            condition: None,
            score: "m.match_score".to_owned(),
        },
        Backend::Postgres => TextMatch {
            join: String::new(),
            condition: Some(format!("p.search @@ to_tsquery('english', ${param})")),
            score: format!("ts_rank(p.search, to_tsquery('english', ${param}))::float8"),
        },
    }
}

/// The query text for [`text_match`]: every word required, each as a prefix.
/// The words hold only letters and digits ([`crate::search::SearchTerms`]), so
/// nothing in them is an operator of either query language.
pub fn text_query(backend: Backend, words: &[String]) -> String {
    match backend {
        Backend::Sqlite => words.iter().map(|w| format!("\"{w}\"*")).collect::<Vec<_>>().join(" "),
        Backend::Postgres => words.iter().map(|w| format!("{w}:*")).collect::<Vec<_>>().join(" & "),
    }
}

/// Creates the full-text index of product titles and descriptions if it is
/// missing, and fills it from the products already there. Idempotent; run after
/// the main database's migrations, because the two backends build it differently.
pub async fn install_text_search(backend: Backend, pool: &sqlx::AnyPool) -> Result<(), sqlx::Error> {
    match backend {
        Backend::Sqlite => {
            let exists: Option<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'products_fts'").fetch_optional(pool).await?;
            pool.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS products_fts USING fts5(title, description, content = 'products', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2')",
            )
            .await?;
            pool.execute(
                "CREATE TRIGGER IF NOT EXISTS products_fts_insert AFTER INSERT ON products BEGIN \
                 INSERT INTO products_fts (rowid, title, description) VALUES (new.id, new.title, new.description); END",
            )
            .await?;
            pool.execute(
                "CREATE TRIGGER IF NOT EXISTS products_fts_delete AFTER DELETE ON products BEGIN \
                 INSERT INTO products_fts (products_fts, rowid, title, description) VALUES ('delete', old.id, old.title, old.description); END",
            )
            .await?;
            pool.execute(
                "CREATE TRIGGER IF NOT EXISTS products_fts_update AFTER UPDATE OF title, description ON products BEGIN \
                 INSERT INTO products_fts (products_fts, rowid, title, description) VALUES ('delete', old.id, old.title, old.description); \
                 INSERT INTO products_fts (rowid, title, description) VALUES (new.id, new.title, new.description); END",
            )
            .await?;
            if exists.is_none() {
                pool.execute("INSERT INTO products_fts (products_fts) VALUES ('rebuild')").await?;
            }
        }
        Backend::Postgres => {
            pool.execute(
                "ALTER TABLE products ADD COLUMN IF NOT EXISTS search tsvector GENERATED ALWAYS AS \
                 (setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', description), 'B')) STORED",
            )
            .await?;
            pool.execute("CREATE INDEX IF NOT EXISTS products_search ON products USING GIN (search)").await?;
        }
    }
    Ok(())
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
