#!/usr/bin/env bash
# The sign-in flood against the release build (see bench/src/bin/sign-in-flood.rs):
# a fresh demo-seeded server with its default rate limits, flooded from 127.0.0.1
# while the demo buyer signs in and orders from 127.0.0.2. Exits non-zero on failure.
# Expects `cargo leptos build --release` to have run (scripts/test.sh does).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"
work=$(mktemp -d /tmp/ninefold-flood.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
NINEFOLD_ADDR=127.0.0.1:$port NINEFOLD_DATA_DIR="$work/data" RUST_LOG=warn ./target/release/server >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen(\"http://127.0.0.1:$port/healthz\", timeout=1)" 2>/dev/null && break
  sleep 0.2
done
cargo run --quiet --release -p bench --bin sign-in-flood -- --base "http://127.0.0.1:$port" --pid "$server" "$@"
