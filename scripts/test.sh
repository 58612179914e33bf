#!/usr/bin/env bash
# Runs every test: the Rust tests on SQLite and on a throwaway PostgreSQL cluster,
# then the Playwright suite in Chromium against a real server. Installs what is
# missing, cleans up after itself, and exits non-zero on any failure.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"
started=$(date +%s)
# A clean CI build gains nothing from incremental caches, and they cost disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

ensure_disk_space
ensure_rust_tools
ensure_debian_packages "chromium:chromium" "/usr/lib/postgresql/*/bin/initdb:postgresql" "python3:python3"
ensure_playwright
ensure_wasm_opt

pg_dir=$(mktemp -d /tmp/ninefold-test-pg.XXXXXX)
cleanup() { scripts/pg-throwaway.sh stop "$pg_dir"; }
trap cleanup EXIT
log "starting a throwaway PostgreSQL cluster, and a streaming replica of it that applies WAL 2 s late"
NINEFOLD_TEST_PG_URL=$(scripts/pg-throwaway.sh start "$pg_dir")
NINEFOLD_TEST_PG_REPLICA_URL=$(scripts/pg-throwaway.sh replica "$pg_dir" 2s)
export NINEFOLD_TEST_PG_URL NINEFOLD_TEST_PG_REPLICA_URL NINEFOLD_TEST_PG_DIR="$pg_dir" NINEFOLD_TEST_REQUIRE_PG=1

# The browser's read-your-writes test: every role a fresh database on the primary,
# each with its copy on the replica.
write_replica_config() {
  local base=${NINEFOLD_TEST_PG_URL%/postgres} replica=${NINEFOLD_TEST_PG_REPLICA_URL%/postgres}
  role() { printf '{ url = "%s/e2e_%s", replicas = ["%s/e2e_%s"] }' "$base" "$1" "$replica" "$1"; }
  for db in main shard_0 shard_1 archive; do
    PGOPTIONS="-c client_min_messages=warning" psql -q "$NINEFOLD_TEST_PG_URL" -c "DROP DATABASE IF EXISTS e2e_$db" -c "CREATE DATABASE e2e_$db" >/dev/null
  done
  printf '[wallet]\ntop_up = "demo"\n[rate_limits]\nenabled = false\n[databases]\nmain = %s\nshards = [%s, %s]\narchive = %s\n' \
    "$(role main)" "$(role shard_0)" "$(role shard_1)" "$(role archive)" >"$1"
}

log "shop: unit and property tests (plain types, as compiled for the browser)"
cargo test -p shop
log "web: what both doors read from HTTP (cookies, tokens, origins)"
cargo test -p web
log "shop: storage and services"
cargo test -p shop --features server
log "server: configuration, the API, the crash tests (SIGKILL mid-payment, mid-delivery, mid-archive) on SQLite and on PostgreSQL, and read-your-writes against the lagging replica"
cargo test -p server --features fault-injection

# The README's own build command, typed as a newcomer would: a fresh shell with no
# variables but the usual PATH. The browser tests then run against that build.
log "building the release as the README says: 'cargo leptos build --release' in a fresh shell"
env -i HOME="$HOME" PATH="$HOME/.cargo/bin:/usr/local/bin:/usr/bin:/bin" bash --noprofile --norc -c 'cargo leptos build --release'
log "load: a sign-in flood while a real buyer signs in and orders (limits, bounded hashing queue, memory)"
scripts/load-sign-in-flood.sh
log "fuzz: Schemathesis over every operation of the JSON API, every check, seeded (scripts/fuzz-api.sh)"
scripts/fuzz-api.sh
log "Playwright in Chromium against the release build (screenshots in end2end/test-results), and a second server on PostgreSQL with the lagging replica"
write_replica_config "$pg_dir/e2e-replica.toml"
(cd end2end && E2E_PROFILE=release E2E_REPLICA_CONFIG="$pg_dir/e2e-replica.toml" npx playwright test)

log "all tests passed in $(( $(date +%s) - started )) s"
