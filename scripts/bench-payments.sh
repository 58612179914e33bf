#!/usr/bin/env bash
# The payment benchmark (issue 14), on embedded SQLite and on a throwaway
# PostgreSQL cluster: 200 buyers each pay 5 orders of their own, all at once, to
# 50 sellers, against the release build; references: the bare transfer statement
# pair into per-seller escrow accounts and into one shared account (connections
# opened before they are timed). Ends with one JSON line per backend. See
# bench/src/bin/payments.rs.
#
#   scripts/bench-payments.sh                         (BUYERS=200 SELLERS=50 ORDERS=5 to change)
#   BEFORE=/path/to/older/server scripts/bench-payments.sh   (also runs that binary, side by side)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"

buyers=${BUYERS:-200}
sellers=${SELLERS:-50}
orders=${ORDERS:-5}
port=${APP_PORT:-3204}
target=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d /tmp/ninefold-pay.XXXXXX)
pg_dir=$(mktemp -d /tmp/ninefold-pay-pg.XXXXXX)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  scripts/pg-throwaway.sh stop "$pg_dir" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ensure_debian_packages "/usr/lib/postgresql/*/bin/initdb:postgresql"
log "building the release server and the load generator"
cargo build --release -p server --bin server -p bench --bin payments 2>&1 | tail -n 1

wait_for() { for _ in $(seq 1 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "no answer from $1" >&2; return 1; }

run_payments() { # label server-binary backend-name main-database-url [env for the server...]
  local label=$1 binary=$2 name=$3 url=$4; shift 4
  env "$@" NINEFOLD_ADDR=127.0.0.1:$port NINEFOLD_NO_DEMO=1 NINEFOLD_RATE_LIMITS=off NINEFOLD_MAX_UNPAID_ORDERS=1000000 NINEFOLD_DB_ACQUIRE_TIMEOUT_MS=30000 RUST_LOG=warn "$binary" >"$work/$name.log" 2>&1 &
  server_pid=$!
  wait_for "http://127.0.0.1:$port/healthz"
  log "payments on $name: $label"
  "$target"/release/payments --base "http://127.0.0.1:$port" --buyers "$buyers" --sellers "$sellers" --orders "$orders" --backend "$name" --label "$label" --database-url "$url" >"$work/pay.out"
  grep -v '^{' "$work/pay.out"
  grep '^{' "$work/pay.out" >>"$work/results.jsonl"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}

servers=("after:$target/release/server")
[ -n "${BEFORE:-}" ] && servers=("before:$BEFORE" "${servers[@]}")

printf '\nmachine: %s, %s cores; %s\n\n' "$(uname -m)" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
for entry in "${servers[@]}"; do
  rm -rf "$work/data"
  run_payments "${entry%%:*}" "${entry#*:}" sqlite "sqlite://$work/data/main.db" NINEFOLD_DATA_DIR="$work/data"
done

pg_url=$(scripts/pg-throwaway.sh start "$pg_dir")
base=${pg_url%/postgres}
for entry in "${servers[@]}"; do
  for db in main shard_0 shard_1 shard_2 shard_3 archive; do
    psql -q "$pg_url" -c "DROP DATABASE IF EXISTS nf_$db" -c "CREATE DATABASE nf_$db" >/dev/null
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
  run_payments "${entry%%:*}" "${entry#*:}" postgres "$base/nf_main" NINEFOLD_CONFIG="$work/ninefold.toml"
done

printf '\n'
cat "$work/results.jsonl"
