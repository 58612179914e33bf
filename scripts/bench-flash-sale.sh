#!/usr/bin/env bash
# The flash-sale benchmark (issues 3 and 14), on embedded SQLite and on a throwaway
# PostgreSQL cluster: 200 buyers on distinct accounts buy 1000 units over HTTP
# against the release build — one hot product in each inventory mode (reserve,
# on_order, on_payment), then the same units over 1000 products (no hot row). The
# reference is the bare conditional decrement on the same database from 200
# connections over the same products, every connection opened before it is timed. Ends with one JSON line per run:
# {"backend", "mode", "products", "orders", "orders_per_s", "bare_per_s", "p99_ms", "oversold"}.
# See bench/src/bin/flash-sale.rs.
#
#   scripts/bench-flash-sale.sh            (BUYERS=200 STOCK=1000 MODES="reserve on_order on_payment"
#                                           BACKENDS="sqlite postgres" NO_HOT_ROW=1 MAIN_POOL=6
#                                           SHARD_POOL=4 to change; the pools are PostgreSQL's,
#                                           sized for this 2-core box: BENCHMARKS.md, tenth pass)
#   BEFORE=/path/to/older/server [AFTER=/path/to/another] scripts/bench-flash-sale.sh
#                                          also runs that binary before each sale of this
#                                          build, on a fresh database, side by side; rows
#                                          and JSON lines then name the server.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"

buyers=${BUYERS:-200}
stock=${STOCK:-1000}
modes=${MODES:-reserve on_order on_payment}
backends=${BACKENDS:-sqlite postgres}
no_hot_row=${NO_HOT_ROW:-1}
main_pool=${MAIN_POOL:-6}
shard_pool=${SHARD_POOL:-4}
port=${APP_PORT:-3203}
target=${CARGO_TARGET_DIR:-target}
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

run_sale() { # server-label server-binary backend-name main-database-url mode products [env for the server...]
  local label=$1 binary=$2 name=$3 url=$4 mode=$5 products=$6; shift 6
  env "$@" NINEFOLD_ADDR=127.0.0.1:$port NINEFOLD_NO_DEMO=1 NINEFOLD_RATE_LIMITS=off NINEFOLD_MAX_UNPAID_ORDERS=1000000 NINEFOLD_DB_ACQUIRE_TIMEOUT_MS=30000 RUST_LOG=warn "$binary" >"$work/$name.log" 2>&1 &
  server_pid=$!
  wait_for "http://127.0.0.1:$port/healthz"
  log "flash sale on $name ($label): $mode, $products product(s)"
  "$target"/release/flash-sale --base "http://127.0.0.1:$port" --buyers "$buyers" --stock "$stock" --mode "$mode" --products "$products" --backend "$name" --database-url "$url" >"$work/sale.out"
  local prefix="| $name |" json_prefix='{'
  if [ -n "${BEFORE:-}" ]; then prefix="| $label | $name |"; json_prefix="{\"server\": \"$label\", "; fi
  grep -v '^{' "$work/sale.out" | sed -e "s/^| $buyers |/$prefix $buyers |/" -e "s/^| buyers |/| ${BEFORE:+server | }backend | buyers |/" -e "s/^|-------:|/|${BEFORE:+--------|}---------|-------:|/"
  grep '^{' "$work/sale.out" | sed -e "s/^{/$json_prefix/" >>"$work/results.jsonl"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}

servers=("after:${AFTER:-$target/release/server}")
[ -n "${BEFORE:-}" ] && servers=("before:$BEFORE" "${servers[@]}")

# Every sale of every server: backend, mode, products.
sales=()
for mode in $modes; do sales+=("$mode:1"); done
[ "$no_hot_row" = 1 ] && sales+=("reserve:1000")
runs_on() { [[ " $backends " == *" $1 "* ]]; }

printf '\nmachine: %s, %s cores; %s\n\n' "$(uname -m)" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
if runs_on sqlite; then
  for sale in "${sales[@]}"; do
    for entry in "${servers[@]}"; do
      rm -rf "$work/data"
      run_sale "${entry%%:*}" "${entry#*:}" sqlite "sqlite://$work/data/main.db" "${sale%%:*}" "${sale#*:}" NINEFOLD_DATA_DIR="$work/data"
    done
  done
fi

if ! runs_on postgres; then printf '\n'; cat "$work/results.jsonl"; exit 0; fi
pg_url=$(scripts/pg-throwaway.sh start "$pg_dir")
base=${pg_url%/postgres}
fresh_postgres() {
  for db in main shard_0 shard_1 shard_2 shard_3 archive; do
    psql -q "$pg_url" -c "DROP DATABASE IF EXISTS nf_$db" -c "CREATE DATABASE nf_$db" >/dev/null
  done
}
# Fixed-size pools (min = max): the sale opens on a server that was quiet, as a
# real one does, and should not wait for PostgreSQL to start connections.
cat >"$work/ninefold.toml" <<TOML
[wallet]
top_up = "demo"
top_up_daily_cap_cents = 1000000000000
[databases]
main = { url = "$base/nf_main", max_connections = $main_pool, min_connections = $main_pool }
archive = { url = "$base/nf_archive" }
shards = [$(for n in 0 1 2 3; do printf '{ url = "%s/nf_shard_%s", max_connections = %s, min_connections = %s }, ' "$base" "$n" "$shard_pool" "$shard_pool"; done)]
TOML
for sale in "${sales[@]}"; do
  for entry in "${servers[@]}"; do
    fresh_postgres
    run_sale "${entry%%:*}" "${entry#*:}" postgres "$base/nf_main" "${sale%%:*}" "${sale#*:}" NINEFOLD_CONFIG="$work/ninefold.toml"
  done
done

printf '\n'
cat "$work/results.jsonl"
