#!/usr/bin/env bash
# A three-member coapfleet cluster on loopback with one command: a
# PostgreSQL of its own (deploy/pg.sh) and coapfleet-server members m1, m2,
# m3 on 127.0.1.1, 127.0.1.2 and 127.0.1.3 (CoAP on udp port 5683 each,
# members linked on tcp port 5700 each).
#
#   deploy/cluster.sh start    installs, builds, starts PostgreSQL and the members
#   deploy/cluster.sh status   coapfleet cluster status, asked of every member
#   deploy/cluster.sh stop     stops the members, then PostgreSQL
#   deploy/cluster.sh restart-member N   starts member N again (after a kill)
#
# State (database, logs, pid files) is in $CLUSTER_DIR (default ./cluster-data).
# Extra arguments to start go to every member (e.g. --log-level debug).
# The links between members are plain TCP here (loopback); across hosts give
# each member --cluster-cert, --cluster-key and --cluster-ca.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CLUSTER_DIR:-$PWD/cluster-data}"
bin="${BUILD_DIR:-$root/build}"
members=(1 2 3)

start_member() {
  local n=$1; shift
  local args=(--store "$(cat "$dir/pg/uri")" --bind "127.0.1.$n" --port 5683 --dtls-port 0
              --member-id "m$n" --cluster-listen "127.0.1.$n:5700"
              --cluster-seed "127.0.1.1:5700,127.0.1.2:5700,127.0.1.3:5700"
              --artifacts "$dir/artifacts" --log-level "${LOG_LEVEL:-info}")
  mkdir -p "$dir/m$n"
  (cd "$dir/m$n" && exec setsid "$bin/coapfleet-server" "${args[@]}" "$@" \
     >>"$dir/m$n/server.log" 2>&1 </dev/null) &
  echo $! >"$dir/m$n/pid"
}

wait_member() {
  local n=$1
  for _ in $(seq 1 100); do
    if "$bin/coapfleet" --server "coap://127.0.1.$n" --timeout 1 test >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$(cat "$dir/m$n/pid")" 2>/dev/null; then
      echo "cluster.sh: member m$n exited; its log:" >&2
      tail -20 "$dir/m$n/server.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "cluster.sh: member m$n did not answer within 20 s" >&2
  return 1
}

case "${1:-}" in
start)
  shift
  "$root/deploy/install-deps.sh"
  "$root/deploy/build.sh"
  mkdir -p "$dir/artifacts"
  uri=$("$root/deploy/pg.sh" start "$dir/pg" "${PG_PORT:-}")
  echo "cluster.sh: PostgreSQL at $uri (data in $dir/pg)"
  for n in "${members[@]}"; do start_member "$n" "$@"; done
  for n in "${members[@]}"; do wait_member "$n"; done
  echo "cluster.sh: members m1, m2, m3 answer on coap://127.0.1.1, coap://127.0.1.2, coap://127.0.1.3"
  sleep 1.5  # a heartbeat: every member has read the others' leases
  "$bin/coapfleet" --server coap://127.0.1.1 cluster status
  ;;
status)
  for n in "${members[@]}"; do
    echo "== asked of m$n (coap://127.0.1.$n)"
    "$bin/coapfleet" --server "coap://127.0.1.$n" --timeout 2 cluster status || echo "(no answer)"
  done
  ;;
restart-member)
  n=${2:?member number}
  start_member "$n"
  wait_member "$n"
  ;;
stop)
  for n in "${members[@]}"; do
    if [ -f "$dir/m$n/pid" ]; then
      kill "$(cat "$dir/m$n/pid")" 2>/dev/null || true
    fi
  done
  for n in "${members[@]}"; do
    if [ -f "$dir/m$n/pid" ]; then
      pid=$(cat "$dir/m$n/pid")
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/m$n/pid"
    fi
  done
  "$root/deploy/pg.sh" stop "$dir/pg"
  echo "cluster.sh: stopped (state kept in $dir)"
  ;;
*)
  echo "usage: $0 start|status|stop|restart-member N" >&2
  exit 2
  ;;
esac
