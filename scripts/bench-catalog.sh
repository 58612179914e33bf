#!/usr/bin/env bash
# Catalog read benchmark (issue 2). Measures throughput and p50/p99 latency of the
# product list page, a product page and GET /api/v1/products/{id} on the release
# build, at 64 connections for 10 s each, and in the same run a bare axum server
# (server/src/bin/bench-reference.rs) answering the same bytes. Prints a table
# with the ratio to the reference. Load generator: wrk, from Debian's packages.
#
#   scripts/bench-catalog.sh            (DURATION=10s CONNECTIONS=64 to change)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"

duration=${DURATION:-10s}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
app_port=${APP_PORT:-3201}
ref_port=${REF_PORT:-3202}
work=$(mktemp -d /tmp/ninefold-bench.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

ensure_rust_tools
ensure_wasm_opt
ensure_debian_packages "wrk:wrk"
log "building the release"
cargo leptos build --release >/dev/null 2>&1 || cargo leptos build --release
cargo build --release -p server --bin bench-reference >/dev/null 2>&1

wait_for() { for _ in $(seq 1 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "no answer from $1" >&2; return 1; }

# One log line per request is the product's default; at these rates it would
# measure the terminal, so the benchmark logs warnings only.
NINEFOLD_ADDR=127.0.0.1:$app_port NINEFOLD_DATA_DIR="$work/data" NINEFOLD_RATE_LIMITS=off RUST_LOG=warn ./target/release/server >"$work/server.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$app_port/healthz"

product_id=$(curl -fs "http://127.0.0.1:$app_port/api/v1/products?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
paths=("/" "/products/$product_id" "/api/v1/products/$product_id")
names=("product list page" "product page" "GET /api/v1/products/{id}")
# Anonymous page views are served from a 1 s micro-cache (server/src/page_cache.rs);
# a session cookie bypasses it, so these rows measure a full render every time.
uncached_paths=("/" "/products/$product_id")
uncached_names=("product list page, rendered" "product page, rendered")
mappings=()
for i in "${!paths[@]}"; do
  ext=html; [ "$i" = 2 ] && ext=json
  curl -fs "http://127.0.0.1:$app_port${paths[$i]}" >"$work/body$i.$ext"
  mappings+=("${paths[$i]}=$work/body$i.$ext")
done
./target/release/bench-reference "127.0.0.1:$ref_port" "${mappings[@]}" &
pids+=($!)
wait_for "http://127.0.0.1:$ref_port${paths[2]}"

# wrk's summary → "requests/s p50_ms p99_ms non2xx"; extra arguments go to wrk.
measure() {
  local url=$1; shift
  wrk -t"$threads" -c"$connections" -d"$duration" --latency "$@" "$url" >"$work/wrk.out" 2>&1
  python3 - "$work/wrk.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % label, text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{rps:.0f} {ms('50%'):.2f} {ms('99%'):.2f} {errors.group(1) if errors else 0}")
PY
}

printf '\nmachine: %s, %s cores; wrk -t%s -c%s -d%s; %s\n\n' "$(uname -m)" "$(nproc)" "$threads" "$connections" "$duration" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf '| %-28s | %10s | %8s | %8s | %10s | %8s | %8s | %7s |\n' "target" "req/s" "p50 ms" "p99 ms" "ref req/s" "ref p50" "ref p99" "ratio"
printf '|%s|\n' "------------------------------|------------|----------|----------|------------|----------|----------|---------"
for i in "${!paths[@]}"; do
  read -r rps p50 p99 bad < <(measure "http://127.0.0.1:$app_port${paths[$i]}")
  read -r rrps rp50 rp99 _ < <(measure "http://127.0.0.1:$ref_port${paths[$i]}")
  [ "$bad" = 0 ] || echo "warning: $bad non-2xx responses from ${paths[$i]}" >&2
  ratio=$(python3 -c "print(f'{$rps / $rrps * 100:.1f}%')")
  printf '| %-28s | %10s | %8s | %8s | %10s | %8s | %8s | %7s |\n' "${names[$i]}" "$rps" "$p50" "$p99" "$rrps" "$rp50" "$rp99" "$ratio"
done
# A well-formed session token nobody holds: the page renders as signed out, uncached.
cookie="Cookie: nf_session=$(printf '0%.0s' $(seq 1 64))"
for i in "${!uncached_paths[@]}"; do
  read -r rps p50 p99 bad < <(measure "http://127.0.0.1:$app_port${uncached_paths[$i]}" -H "$cookie")
  read -r rrps rp50 rp99 _ < <(measure "http://127.0.0.1:$ref_port${uncached_paths[$i]}")
  [ "$bad" = 0 ] || echo "warning: $bad non-2xx responses from ${uncached_paths[$i]}" >&2
  ratio=$(python3 -c "print(f'{$rps / $rrps * 100:.1f}%')")
  printf '| %-28s | %10s | %8s | %8s | %10s | %8s | %8s | %7s |\n' "${uncached_names[$i]}" "$rps" "$p50" "$p99" "$rrps" "$rp50" "$rp99" "$ratio"
done
echo
