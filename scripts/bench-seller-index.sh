#!/usr/bin/env bash
# The seller-index benchmark (issue 6), on embedded SQLite and on a throwaway
# PostgreSQL cluster, four order shards each: places ORDERS orders (every other one
# paid) through the shop services, delivers every outbox event into the index, then
# reads sellers' newest 24 orders from the index and, as the reference, from every
# shard merged. See bench/src/bin/seller-index.rs.
#
#   scripts/bench-seller-index.sh          (ORDERS=10000 READS=500 to change)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"

orders=${ORDERS:-10000}
reads=${READS:-500}
work=$(mktemp -d /tmp/ninefold-seller-index.XXXXXX)
pg_dir=$(mktemp -d /tmp/ninefold-seller-index-pg.XXXXXX)
cleanup() {
  scripts/pg-throwaway.sh stop "$pg_dir" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ensure_debian_packages "/usr/lib/postgresql/*/bin/initdb:postgresql"
log "building the load generator"
cargo build --release -p bench --bin seller-index 2>&1 | tail -n 1

printf '\nmachine: %s, %s cores; %s\n\n' "$(uname -m)" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
mkdir -p "$work/sqlite"
RUST_LOG=warn ./target/release/seller-index --databases "sqlite:$work/sqlite" --orders "$orders" --reads "$reads" --label sqlite

pg_url=$(scripts/pg-throwaway.sh start "$pg_dir")
base=${pg_url%/postgres}
for db in main shard_0 shard_1 shard_2 shard_3 archive; do
  psql -q "$pg_url" -c "CREATE DATABASE nf_$db" >/dev/null
done
RUST_LOG=warn ./target/release/seller-index --databases "$base" --orders "$orders" --reads "$reads" --label postgres | tail -n 2
