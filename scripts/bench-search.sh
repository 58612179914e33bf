#!/usr/bin/env bash
# The search benchmark (issue 16): PRODUCTS products generated in bulk on embedded
# SQLite and on a throwaway PostgreSQL cluster; each query READS times through the
# catalog's full-text search (FTS5 / tsvector with a GIN index) and as a plain
# LIKE scan. See bench/src/bin/search.rs.
#
#   scripts/bench-search.sh        (PRODUCTS=100000 READS=200 to change)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"

products=${PRODUCTS:-100000}
reads=${READS:-200}
work=$(mktemp -d /tmp/ninefold-search.XXXXXX)
pg_dir=$(mktemp -d /tmp/ninefold-search-pg.XXXXXX)
cleanup() {
  scripts/pg-throwaway.sh stop "$pg_dir" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ensure_debian_packages "/usr/lib/postgresql/*/bin/initdb:postgresql"
log "building the load generator"
cargo build --release -p bench --bin search 2>&1 | tail -n 1

printf '\nmachine: %s, %s cores; %s\n\n' "$(uname -m)" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
mkdir -p "$work/sqlite"
RUST_LOG=warn ./target/release/search --databases "sqlite:$work/sqlite" --products "$products" --reads "$reads" --label sqlite

pg_url=$(scripts/pg-throwaway.sh start "$pg_dir")
base=${pg_url%/postgres}
for db in main shard_0 shard_1 shard_2 shard_3 archive; do
  psql -q "$pg_url" -c "CREATE DATABASE nf_$db" >/dev/null
done
RUST_LOG=warn ./target/release/search --databases "$base" --products "$products" --reads "$reads" --label postgres | tail -n +3
