#!/usr/bin/env bash
# Runs the storefront on http://127.0.0.1:3000 on embedded SQLite under ./data,
# migrated and seeded with the demo catalog on first start. Installs what is missing.
# Environment: see README.md (NINEFOLD_ADDR, NINEFOLD_DATA_DIR, NINEFOLD_CONFIG, ...).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"

ensure_rust_tools
ensure_wasm_opt
log "building the release (first time: several minutes)"
cargo leptos build --release
log "serving on http://${NINEFOLD_ADDR:-127.0.0.1:3000}  (Ctrl-C stops)"
exec ./target/release/server
