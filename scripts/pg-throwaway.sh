#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests: its own folder, a free port, trust auth
# on loopback, durability off (it is deleted afterwards). The server runs as the
# `postgres` user when we are root, since PostgreSQL refuses to run as root.
#
#   scripts/pg-throwaway.sh start <dir>   prints the admin URL on stdout
#   scripts/pg-throwaway.sh halt <dir>    kills it (as a crash would) and keeps <dir>
#   scripts/pg-throwaway.sh resume <dir>  starts a halted cluster again, same port
#   scripts/pg-throwaway.sh stop <dir>    stops it and deletes <dir>
#   scripts/pg-throwaway.sh replica <dir> [delay]
#                                         adds a streaming replica of the cluster in
#                                         <dir> (pg_basebackup -R, its own port), which
#                                         applies WAL `delay` late (default 0s); prints its URL
#   scripts/pg-throwaway.sh replica-halt <dir>    kills the replica (immediate stop)
#   scripts/pg-throwaway.sh replica-resume <dir>  starts it again, same port
set -euo pipefail

action=${1:?start or stop}
dir=${2:?a folder for the cluster}
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$pg_bin" ] || { echo "PostgreSQL server binaries not found under /usr/lib/postgresql" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

run_cluster() {
  local port=$1 data=${2:-$dir/data} log=${3:-$dir/server.log}
  as_owner "$pg_bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=500 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB" \
    start >/dev/null || { cat "$log" >&2; exit 1; }
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "$action" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    chmod 700 "$dir"
    as_owner "$pg_bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(free_port)
    echo "$port" >"$dir/port"
    run_cluster "$port"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  halt)
    as_owner "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
  resume)
    run_cluster "$(cat "$dir/port")"
    ;;
  replica)
    delay=${3:-0s}
    as_owner "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$(cat "$dir/port")" -U postgres -D "$dir/replica" -R -X stream --no-sync >"$dir/basebackup.log" 2>&1 \
      || { cat "$dir/basebackup.log" >&2; exit 1; }
    echo "recovery_min_apply_delay = '$delay'" | as_owner tee -a "$dir/replica/postgresql.auto.conf" >/dev/null
    port=$(free_port)
    echo "$port" >"$dir/replica_port"
    run_cluster "$port" "$dir/replica" "$dir/replica.log"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  replica-halt)
    as_owner "$pg_bin/pg_ctl" -D "$dir/replica" -m immediate -w stop >/dev/null
    ;;
  replica-resume)
    run_cluster "$(cat "$dir/replica_port")" "$dir/replica" "$dir/replica.log"
    ;;
  stop)
    if [ -d "$dir/replica" ]; then
      as_owner "$pg_bin/pg_ctl" -D "$dir/replica" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ -d "$dir/data" ]; then
      as_owner "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop <dir>" >&2; exit 2 ;;
esac
