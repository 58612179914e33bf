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
log "starting a throwaway PostgreSQL cluster"
NINEFOLD_TEST_PG_URL=$(scripts/pg-throwaway.sh start "$pg_dir")
export NINEFOLD_TEST_PG_URL NINEFOLD_TEST_REQUIRE_PG=1

log "shop: unit and property tests (plain types, as compiled for the browser)"
cargo test -p shop
log "web: what both doors read from HTTP (cookies, tokens, origins)"
cargo test -p web
log "shop: storage and services"
cargo test -p shop --features server
log "server: configuration, the API, and the crash tests (SIGKILL at every step of paying) on SQLite and on PostgreSQL"
cargo test -p server --features fault-injection

# The README's own build command, typed as a newcomer would: a fresh shell with no
# variables but the usual PATH. The browser tests then run against that build.
log "building the release as the README says: 'cargo leptos build --release' in a fresh shell"
env -i HOME="$HOME" PATH="$HOME/.cargo/bin:/usr/local/bin:/usr/bin:/bin" bash --noprofile --norc -c 'cargo leptos build --release'
log "load: a sign-in flood while a real buyer signs in and orders (limits, bounded hashing queue, memory)"
scripts/load-sign-in-flood.sh
log "fuzz: Schemathesis over every operation of the JSON API, every check, seeded (scripts/fuzz-api.sh)"
scripts/fuzz-api.sh
log "Playwright in Chromium against the release build (screenshots in end2end/test-results)"
(cd end2end && E2E_PROFILE=release npx playwright test)

log "all tests passed in $(( $(date +%s) - started )) s"
