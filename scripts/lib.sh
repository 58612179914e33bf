# Shared by scripts/run.sh, scripts/test.sh and scripts/bench-*.sh: install what is
# missing, and skip each step in well under a second when it is already done.
# Nothing here downloads from anywhere but crates.io, npm and Debian's packages.

CARGO_LEPTOS_VERSION=0.3.8
# wasm-opt for release builds. cargo-leptos would download Binaryen from GitHub
# (unreachable here), and Debian's binaryen 108 corrupts modules that use reference
# types; npm's binaryen 132 works.
BINARYEN_VERSION=132

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

free_kib() { df -Pk . | awk 'NR == 2 { print $4 }'; }

# The linker writes test binaries of a few hundred MB each, and on a full disk it
# dies with SIGBUS instead of a clear message (CI, 2026-11). Make room first: drop
# incremental caches, then stale builds; warn if that is still not enough.
ensure_disk_space() {
  local need_kib=$((6 * 1024 * 1024))
  if [ "$(free_kib)" -lt "$need_kib" ] && [ -d target ]; then
    log "low on disk ($(( $(free_kib) / 1024 )) MiB free): removing incremental build caches"
    rm -rf target/debug/incremental target/release/incremental target/wasm-release/incremental target/front/*/debug/incremental
  fi
  if [ "$(free_kib)" -lt "$need_kib" ] && [ -d target ]; then
    log "still low on disk ($(( $(free_kib) / 1024 )) MiB free): cargo clean"
    cargo clean
  fi
  if [ "$(free_kib)" -lt "$need_kib" ]; then
    log "warning: only $(( $(free_kib) / 1024 )) MiB free; a full test build needs about 6 GiB"
  fi
}

# The wasm-bindgen version cargo-leptos must match: the one Cargo.lock pins.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$(repo_root)/Cargo.lock"
}

ensure_rust_tools() {
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  local want_bindgen; want_bindgen=$(wasm_bindgen_version)
  # cargo-leptos downloads wasm-bindgen from the internet when none is on PATH,
  # which fails here: install the exact version Cargo.lock pins first.
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want_bindgen" ]; then
    log "installing wasm-bindgen-cli $want_bindgen (about 3 minutes)"
    cargo install wasm-bindgen-cli --version "$want_bindgen" --force
  fi
  if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
    log "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 13 minutes on 2 cores)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --force
  fi
}

# Installs Debian packages whose command (or file) is missing. Arguments: pairs of
# "path-or-command:package".
ensure_debian_packages() {
  local missing=() pair probe package
  for pair in "$@"; do
    probe=${pair%%:*}; package=${pair#*:}
    if [ "${probe#/}" != "$probe" ]; then
      compgen -G "$probe" >/dev/null || missing+=("$package")
    else
      command -v "$probe" >/dev/null || missing+=("$package")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# wasm-opt for `cargo leptos build --release`: npm's binaryen, installed globally so
# that the README's `cargo leptos build --release` works in any shell, not only
# inside these scripts (cargo-leptos runs the wasm-opt it finds on PATH).
ensure_wasm_opt() {
  if [ "$(wasm-opt --version 2>/dev/null | awk '{print $3}')" != "$BINARYEN_VERSION" ]; then
    log "installing wasm-opt (binaryen $BINARYEN_VERSION) from npm"
    as_root npm install --global --no-audit --no-fund --loglevel=error "binaryen@$BINARYEN_VERSION.0.0"
  fi
}

# Starts ./target/release/server on a free port with a fresh data folder under
# `$1` and the variables given after it, waits until it answers, and sets
# `server_pid` and `server_base`. The caller kills it (see `stop_release_server`).
start_release_server() {
  local work=$1; shift
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  server_base="http://127.0.0.1:$port"
  env "$@" NINEFOLD_ADDR=127.0.0.1:$port NINEFOLD_DATA_DIR="$work/data" ./target/release/server >"$work/server.log" 2>&1 &
  server_pid=$!
  local _
  for _ in $(seq 1 300); do
    python3 -c "import urllib.request; urllib.request.urlopen('$server_base/healthz', timeout=1)" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "the server did not come up; its log:" >&2; cat "$work/server.log" >&2; return 1
}

stop_release_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

ensure_playwright() {
  local dir; dir="$(repo_root)/end2end"
  # Reinstall only when the lock file changed since the last install.
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing Playwright from npm (no browser download: Debian's Chromium is used)"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
}
