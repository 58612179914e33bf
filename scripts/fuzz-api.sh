#!/usr/bin/env bash
# Schema-driven fuzzing of the JSON API with Schemathesis (PyPI, in a virtual
# environment under target/): every operation of /api/v1/openapi.json, every check
# Schemathesis has (no 5xx, request and response schema conformance, declared
# status codes and content types, ...), as a buyer and as a seller, against a fresh
# release server. Seeded, so a failure reproduces; bounded in time.
# Expects `cargo leptos build --release` to have run (scripts/test.sh does).
#   scripts/fuzz-api.sh [--max-examples N] [--seed S]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$(repo_root)"

SCHEMATHESIS_VERSION=4.32.5
max_examples=25
seed=20261125
while [ $# -gt 0 ]; do
  case "$1" in
    --max-examples) max_examples=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

venv=target/fuzz-venv
if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
  log "installing Schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

work=$(mktemp -d /tmp/ninefold-fuzz.XXXXXX)
trap 'stop_release_server; rm -rf "$work"' EXIT
start_release_server "$work" NINEFOLD_RATE_LIMITS=off NINEFOLD_MAX_UNPAID_ORDERS=100000 NINEFOLD_TOP_UP_DAILY_CAP_CENTS=1000000000000 RUST_LOG=error
base=$server_base

token_of() {
  python3 - "$base" "$1" "$2" <<'PY'
import json, sys, urllib.request
base, email, password = sys.argv[1:]
request = urllib.request.Request(f"{base}/api/v1/auth/login", data=json.dumps({"email": email, "password": password}).encode(), headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(request))["token"])
PY
}

register() {
  python3 - "$base" "$1" <<'PY'
import json, sys, urllib.request
base, email = sys.argv[1:]
body = {"email": email, "password": "fuzzing password", "name": "Fuzz", "role": "buyer"}
urllib.request.urlopen(urllib.request.Request(f"{base}/api/v1/auth/register", data=json.dumps(body).encode(), headers={"content-type": "application/json"}))
PY
}

fuzz() {
  "$venv/bin/schemathesis" --config-file scripts/schemathesis.toml run "$base/api/v1/openapi.json" \
    --checks all --seed "$seed" --max-examples "$max_examples" --max-time "$max_time" --workers 1 \
    --request-timeout 10 --no-color --generation-codec utf-8 \
    --generation-database none --suppress-health-check too_slow "$@"
}

# One worker: with several, the tool's own regex compilation sometimes fails on
# Python 3.11 ("SystemError: AST constructor recursion depth mismatch"), a crash of
# the fuzzer, not a finding.
status=0
max_time=${FUZZ_MAX_TIME:-60}
# Operations that end the caller's sessions get a throwaway account of their own,
# so the other operations keep a live session.
session_enders='/auth/(logout|logout-all|password)$'
for who in buyer seller; do
  token=$(token_of "$who@ninefold.test" "$who-demo-pass")
  log "fuzzing the API as the demo $who (seed $seed, up to $max_examples cases per operation)"
  fuzz --header "Authorization: Bearer $token" --exclude-path-regex "$session_enders" || status=1
done
register fuzz-sessions@example.com
token=$(token_of fuzz-sessions@example.com "fuzzing password")
log "fuzzing the operations that end sessions, as a throwaway account"
fuzz --header "Authorization: Bearer $token" --include-path-regex "$session_enders" || status=1
exit $status
