#!/usr/bin/env bash
# The archive benchmark (issue 11): on embedded SQLite (ORDERS, and SQLITE_BIG
# orders) and on a throwaway PostgreSQL cluster (ORDERS), generates that many orders
# on one shard with bulk SQL, reads one buyer's first page of "my orders" (p50/p99),
# archives everything older than 90 days, and reads it again. See
# bench/src/bin/archive.rs.
#
#   scripts/bench-archive.sh        (ORDERS=100000 SQLITE_BIG=1000000 READS=500 to change)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"

orders=${ORDERS:-100000}
big=${SQLITE_BIG:-1000000}
reads=${READS:-500}
work=$(mktemp -d /tmp/ninefold-archive-bench.XXXXXX)
pg_dir=$(mktemp -d /tmp/ninefold-archive-bench-pg.XXXXXX)
cleanup() {
  scripts/pg-throwaway.sh stop "$pg_dir" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ensure_debian_packages "/usr/lib/postgresql/*/bin/initdb:postgresql"
log "building the load generator"
cargo build --release -p bench --bin archive 2>&1 | tail -n 1

printf '\nmachine: %s, %s cores; %s\n\n' "$(uname -m)" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
echo "| backend | orders | hot before | my orders p50 ms | p99 ms | moved | archive s | moved/s | hot after | my orders p50 ms | p99 ms |"
echo "|---------|-------:|-----------:|-----------------:|-------:|----------:|------:|--------:|----------:|-----------------:|-------:|"
for n in "$orders" "$big"; do
  rm -rf "$work/sqlite" && mkdir -p "$work/sqlite"
  RUST_LOG=warn ./target/release/archive --databases "sqlite:$work/sqlite" --orders "$n" --reads "$reads" --label sqlite
done
rm -rf "$work/sqlite"

pg_url=$(scripts/pg-throwaway.sh start "$pg_dir")
base=${pg_url%/postgres}
for db in main shard_0 shard_1 shard_2 shard_3 archive; do
  psql -q "$pg_url" -c "CREATE DATABASE nf_$db" >/dev/null
done
RUST_LOG=warn ./target/release/archive --databases "$base" --orders "$orders" --reads "$reads" --label postgres
