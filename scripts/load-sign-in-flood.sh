#!/usr/bin/env bash
# The sign-in flood against the release build (see bench/src/bin/sign-in-flood.rs):
# a fresh demo-seeded server with its default rate limits, flooded from 127.0.0.1
# while the demo buyer signs in and orders from 127.0.0.2. Exits non-zero on failure.
# Expects `cargo leptos build --release` to have run (scripts/test.sh does).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"
work=$(mktemp -d /tmp/ninefold-flood.XXXXXX)
trap 'stop_release_server; rm -rf "$work"' EXIT
start_release_server "$work" RUST_LOG=warn
cargo run --quiet --release -p bench --bin sign-in-flood -- --base "$server_base" --pid "$server_pid" "$@"
