//! Order id blocks on a real database: concurrent allocators (standing in for
//! several servers) never hand out the same id. Runs on SQLite, and on PostgreSQL
//! when NINEFOLD_TEST_PG_URL names a server.

use shop::db::{DatabaseUrl, Databases};
use shop::domain::UserId;
use shop::orders::OrderId;
use shop::services::order_ids::OrderIdAllocator;
use std::collections::HashSet;
use std::sync::Arc;

/// `servers` allocators (one per simulated server) with blocks of `block` ids,
/// each with several tasks drawing ids at once.
async fn allocate_concurrently(databases: Databases, server_count: usize, block: i64, ids_per_task: usize) {
    const TASKS_PER_SERVER: usize = 4;
    let servers: Vec<_> = (0..server_count).map(|_| Arc::new(OrderIdAllocator::new(databases.main.clone(), block))).collect();
    let mut tasks = Vec::new();
    for (s, server) in servers.iter().enumerate() {
        for t in 0..TASKS_PER_SERVER {
            let server = server.clone();
            tasks.push(tokio::spawn(async move {
                let buyer = UserId::from_sequence((s * TASKS_PER_SERVER + t + 1) as i64);
                let mut ids = Vec::with_capacity(ids_per_task);
                for _ in 0..ids_per_task {
                    ids.push(server.next(buyer).await.unwrap());
                }
                (buyer, ids)
            }));
        }
    }
    let mut all = HashSet::new();
    let mut sequences = HashSet::new();
    for task in tasks {
        let (buyer, ids) = task.await.unwrap();
        for id in ids {
            assert_eq!(id.suffix(), buyer.shard_suffix());
            assert_eq!(id.to_string().len(), 19);
            assert!(all.insert(id), "{id} handed out twice");
            assert!(sequences.insert(id.sequence()), "sequence {} handed out twice", id.sequence());
        }
    }
    assert_eq!(all.len(), server_count * TASKS_PER_SERVER * ids_per_task);
    assert!(all.iter().all(|id| id.sequence() >= OrderId::FIRST_SEQUENCE));
}

/// The next block is reserved while half of the current one is left, so the
/// checkout that empties a block does not wait for the database (issue 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_block_is_reserved_before_the_current_one_runs_out() {
    const BLOCK: i64 = 10;
    let dir = tempfile::tempdir().unwrap();
    let databases = Databases::connect_and_migrate(&shop::db::DatabaseConfig::sqlite_in(dir.path(), 1)).await.unwrap();
    let ids = OrderIdAllocator::new(databases.main.clone(), BLOCK);
    ids.reserve_ahead().await;
    assert_eq!(ids.blocks_in_hand().await, 1, "one block reserved at start-up");
    let buyer = UserId::from_sequence(1);
    let mut handed = Vec::new();
    for _ in 0..3 * BLOCK {
        handed.push(ids.next(buyer).await.unwrap().sequence());
        // Past the first half of a block, the next is reserved within moments.
        let into_block = (handed.len() as i64 - 1) % BLOCK;
        if into_block >= BLOCK / 2 {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while ids.blocks_in_hand().await < 2 - usize::from(into_block == BLOCK - 1) {
                assert!(std::time::Instant::now() < deadline, "no block reserved ahead after {} ids", handed.len());
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }
    let used_before = databases.main.uses();
    // The fourth block is already in hand: its first id needs no statement.
    handed.push(ids.next(buyer).await.unwrap().sequence());
    assert_eq!(databases.main.uses(), used_before, "the id came from the block reserved ahead");
    let unique: HashSet<i64> = handed.iter().copied().collect();
    assert_eq!(unique.len(), handed.len());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]

    /// Property: whatever the number of servers, block size and load, no id is
    /// handed out twice. Each case runs on a fresh SQLite database.
    #[test]
    fn concurrent_allocators_never_share_an_id_on_sqlite(servers in 1usize..6, block in 1i64..60, per_task in 1usize..80) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let databases = Databases::connect_and_migrate(&shop::db::DatabaseConfig::sqlite_in(dir.path(), 1)).await.unwrap();
            allocate_concurrently(databases, servers, block, per_task).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_allocators_never_share_an_id_on_postgres() {
    let Ok(admin_url) = std::env::var("NINEFOLD_TEST_PG_URL") else {
        assert!(std::env::var_os("NINEFOLD_TEST_REQUIRE_PG").is_none(), "NINEFOLD_TEST_PG_URL is required here");
        eprintln!("skipped: set NINEFOLD_TEST_PG_URL to run the PostgreSQL variant");
        return;
    };
    use sqlx::Connection;
    let name = format!("nf_ids_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let url = format!("{}/{name}", &admin_url[..admin_url.rfind('/').unwrap()]);
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    for schema in ["main", "shard_0", "archive"] {
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.unwrap();
    }
    // Each role in its own schema of one database, as the API tests do.
    let role = |schema: &str| DatabaseUrl::new(format!("{url}?options[search_path]={schema}"));
    let config = shop::db::DatabaseConfig { main: role("main"), shards: vec![role("shard_0")], archive: role("archive"), timeouts: Default::default(), max_replica_lag_ms: 5000 };
    let databases = Databases::connect_and_migrate(&config).await.unwrap();
    allocate_concurrently(databases, 6, 37, 120).await;
}
