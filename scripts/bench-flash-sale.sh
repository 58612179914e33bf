#!/usr/bin/env bash
# The flash-sale benchmark (issue 3), on embedded SQLite and on a throwaway
# PostgreSQL cluster: 200 buyers on distinct accounts buy 1000 units over HTTP
# against the release build; the reference is the bare conditional decrement on
# the same database from 200 connections. See bench/src/bin/flash-sale.rs.
#
#   scripts/bench-flash-sale.sh            (BUYERS=200 STOCK=1000 MODE=reserve to change)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"

buyers=${BUYERS:-200}
stock=${STOCK:-1000}
mode=${MODE:-reserve}
port=${APP_PORT:-3203}
work=$(mktemp -d /tmp/ninefold-flash.XXXXXX)
# Its own folder: the cluster runs as `postgres`, which cannot enter $work.
pg_dir=$(mktemp -d /tmp/ninefold-flash-pg.XXXXXX)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  scripts/pg-throwaway.sh stop "$pg_dir" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ensure_debian_packages "/usr/lib/postgresql/*/bin/initdb:postgresql"
log "building the release server and the load generator"
cargo build --release -p server --bin server -p bench --bin flash-sale 2>&1 | tail -n 1

wait_for() { for _ in $(seq 1 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "no answer from $1" >&2; return 1; }

run_sale() { # backend-name main-database-url [env for the server...]
  local name=$1 url=$2; shift 2
  env "$@" NINEFOLD_ADDR=127.0.0.1:$port NINEFOLD_NO_DEMO=1 NINEFOLD_RATE_LIMITS=off NINEFOLD_MAX_UNPAID_ORDERS=1000000 NINEFOLD_DB_ACQUIRE_TIMEOUT_MS=30000 RUST_LOG=warn ./target/release/server >"$work/$name.log" 2>&1 &
  server_pid=$!
  wait_for "http://127.0.0.1:$port/healthz"
  log "flash sale on $name"
  ./target/release/flash-sale --base "http://127.0.0.1:$port" --buyers "$buyers" --stock "$stock" --mode "$mode" --database-url "$url" | sed -e "s/^| $buyers |/| $name | $buyers |/" -e "s/^| buyers |/| backend | buyers |/" -e "s/^|-------:|/|---------|-------:|/"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}

printf '\nmachine: %s, %s cores; %s\n\n' "$(uname -m)" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
run_sale sqlite "sqlite://$work/data/main.db" NINEFOLD_DATA_DIR="$work/data"

pg_url=$(scripts/pg-throwaway.sh start "$pg_dir")
base=${pg_url%/postgres}
for db in main shard_0 shard_1 shard_2 shard_3 archive; do
  psql -q "$pg_url" -c "CREATE DATABASE nf_$db" >/dev/null
done
cat >"$work/ninefold.toml" <<TOML
[wallet]
top_up = "demo"
top_up_daily_cap_cents = 1000000000000
[databases]
main = { url = "$base/nf_main", max_connections = 32 }
archive = { url = "$base/nf_archive" }
shards = [{ url = "$base/nf_shard_0" }, { url = "$base/nf_shard_1" }, { url = "$base/nf_shard_2" }, { url = "$base/nf_shard_3" }]
TOML
run_sale postgres "$base/nf_main" NINEFOLD_CONFIG="$work/ninefold.toml"
