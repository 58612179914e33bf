#!/usr/bin/env bash
# The replica benchmark (issue 10): a throwaway PostgreSQL cluster with one
# streaming replica (no apply delay), the release server once on the primaries
# only and once with every role's replica, and the same mixed run against each
# (buyers browse, check out, pay, read their order, their orders and wallet; see
# bench/src/bin/replica-mix.rs). Prints requests/s, display reads by target and
# the replica's share, and the transactions each PostgreSQL server ran
# (pg_stat_database.xact_commit: every statement outside a transaction is one).
#
#   scripts/bench-replicas.sh        (BUYERS=20 ROUNDS=20 to change)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"

buyers=${BUYERS:-20}
rounds=${ROUNDS:-20}
port=${APP_PORT:-3204}
work=$(mktemp -d /tmp/ninefold-replicas.XXXXXX)
pg_dir=$(mktemp -d /tmp/ninefold-replicas-pg.XXXXXX)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  scripts/pg-throwaway.sh stop "$pg_dir" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ensure_debian_packages "/usr/lib/postgresql/*/bin/initdb:postgresql"
log "building the release server and the load generator"
cargo build --release -p server --bin server -p bench --bin replica-mix 2>&1 | tail -n 1

wait_for() { for _ in $(seq 1 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "no answer from $1" >&2; return 1; }
xacts() { # url prefix → committed transactions on the databases named prefix*
  sleep 2 # PostgreSQL publishes a backend's counts within a second or so
  psql -Atq "$1" -c "SELECT COALESCE(SUM(xact_commit), 0) FROM pg_stat_database WHERE datname LIKE '$2%'"
}

pg_url=$(scripts/pg-throwaway.sh start "$pg_dir")
replica_url=$(scripts/pg-throwaway.sh replica "$pg_dir" 0s)
base=${pg_url%/postgres}
replica=${replica_url%/postgres}
for set in solo dual; do
  for db in main shard_0 shard_1 archive; do psql -q "$pg_url" -c "CREATE DATABASE ${set}_$db" >/dev/null; done
done
config() { # set with-replicas?
  local role
  role() { if [ "$2" = yes ]; then printf '{ url = "%s/%s_%s", replicas = ["%s/%s_%s"] }' "$base" "$1" "$3" "$replica" "$1" "$3"; else printf '{ url = "%s/%s_%s" }' "$base" "$1" "$3"; fi; }
  printf '[wallet]\ntop_up = "demo"\ntop_up_daily_cap_cents = 1000000000000\n[rate_limits]\nenabled = false\n[databases]\nmain = %s\nshards = [%s, %s]\narchive = %s\n' \
    "$(role "$1" "$2" main)" "$(role "$1" "$2" shard_0)" "$(role "$1" "$2" shard_1)" "$(role "$1" "$2" archive)" >"$work/$1.toml"
}
config solo no
config dual yes
sleep 1 # the replica has the new databases

printf '\nmachine: %s, %s cores; %s\n\n' "$(uname -m)" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
echo "| setup | buyers | requests | requests/s | display reads on the replica | on the primary | replica share | fallbacks | primary xacts | replica xacts |"
echo "|-------|-------:|---------:|-----------:|-----------------------------:|---------------:|--------------:|-----------|--------------:|--------------:|"
for run in "solo:primary only" "dual:primary + replica"; do
  set=${run%%:*}; label=${run#*:}
  primary_before=$(xacts "$pg_url" "$set"); replica_before=$(xacts "$replica_url" "$set")
  NINEFOLD_CONFIG="$work/$set.toml" NINEFOLD_ADDR=127.0.0.1:$port NINEFOLD_MAX_UNPAID_ORDERS=1000000 RUST_LOG=warn ./target/release/server >"$work/$set.log" 2>&1 &
  server_pid=$!
  wait_for "http://127.0.0.1:$port/healthz"
  row=$(./target/release/replica-mix --base "http://127.0.0.1:$port" --buyers "$buyers" --rounds "$rounds" --label "$label")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  primary=$(( $(xacts "$pg_url" "$set") - primary_before )); replica_x=$(( $(xacts "$replica_url" "$set") - replica_before ))
  echo "$row $primary | $replica_x |"
done
