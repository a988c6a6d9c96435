#!/usr/bin/env bash
# A PostgreSQL server of its own in a directory, on 127.0.0.1, for the
# tests, the benchmarks and deploy/cluster.sh (not for production: use the
# distribution's managed cluster and its replication there).
#
#   deploy/pg.sh start DIR [PORT] [--no-fsync]   initdb (first time) and start;
#                                                 prints the database's URI
#   deploy/pg.sh stop DIR                         fast shutdown
#   deploy/pg.sh uri DIR                          prints the URI again
#
# The server runs as the `postgres` user when started by root (initdb
# refuses root); the database `coapfleet` trusts connections from 127.0.0.1
# only. --no-fsync trades durability across a power loss for speed (the
# unit tests); a server process killed with -9 still loses nothing.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|uri DIR [PORT] [--no-fsync]" >&2; exit 2; }

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -x "$bin/initdb" ] || { echo "pg.sh: PostgreSQL is not installed (deploy/install-deps.sh)" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  port=${3:-}
  fsync=on
  for a in "${@:3}"; do [ "$a" = "--no-fsync" ] && fsync=off; done
  [ "$port" = "--no-fsync" ] && port=""
  if [ -z "$port" ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  chmod 755 "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$dir"
    runuser -u postgres -- test -w "$dir" || {
      echo "pg.sh: the postgres user cannot reach $dir: every directory above it must be searchable (o+x)" >&2
      exit 1
    }
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c fsync=$fsync -c max_connections=400 -c shared_buffers=128MB" \
    start >/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
  as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt \
    -c "SELECT 1 FROM pg_database WHERE datname = 'coapfleet'" | grep -q 1 \
    || as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres coapfleet
  echo "postgresql://postgres@127.0.0.1:$port/coapfleet" | tee "$dir/uri"
  ;;
stop)
  [ -d "$dir/data" ] || exit 0
  as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  ;;
uri)
  cat "$dir/uri"
  ;;
*)
  echo "usage: $0 start|stop|uri DIR [PORT] [--no-fsync]" >&2; exit 2
  ;;
esac
