#!/usr/bin/env bash
# A local fleet in one command: a main server on 127.0.0.1 and N agents on
# their own loopback addresses (127.1.0.1, 127.1.0.2, ... all on port 5683,
# as real nodes), each with its own state directory and install root under
# .fleet/ (or $FLEET_DIR).
#
#   deploy/fleet.sh start [N]    build if needed, start the server and N agents (default 3)
#   deploy/fleet.sh status       what runs, and the server's view of the nodes
#   deploy/fleet.sh stop         stop them all cleanly (SIGTERM, then SIGKILL after 10 s)
#   deploy/fleet.sh logs [NAME]  tail a log (server, agent-1, ...)
#
# Environment: FLEET_DIR (.fleet), FLEET_PORT (server port, 5683),
# FLEET_INTERVAL (agents' report interval in seconds, 2), BUILD_DIR (build).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${FLEET_DIR:-$root/.fleet}"
port="${FLEET_PORT:-5683}"
interval="${FLEET_INTERVAL:-2}"
build="${BUILD_DIR:-$root/build}"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  local n="${1:-3}"
  if [ ! -x "$build/coapfleet-server" ] || [ ! -x "$build/coapfleet-agent" ]; then
    "$root/deploy/install-deps.sh"
    BUILD_DIR="$build" "$root/deploy/build.sh"
  fi
  mkdir -p "$dir"
  if running "$dir/server.pid"; then
    echo "server already running (pid $(cat "$dir/server.pid"))"
  else
    "$build/coapfleet-server" --bind 127.0.0.1 --port "$port" --dtls-port $((port + 1)) --db "$dir/fleet.db" \
      --stale-after $((interval * 3)) --offline-after $((interval * 10)) \
      >"$dir/server.log" 2>&1 &
    echo $! >"$dir/server.pid"
    echo "server: coap://127.0.0.1:$port (pid $!, log $dir/server.log)"
  fi
  for i in $(seq 1 "$n"); do
    local a="$dir/agent-$i"
    mkdir -p "$a/root"
    if running "$a/pid"; then
      continue
    fi
    "$build/coapfleet-agent" --server "coap://127.0.0.1:$port" --bind "127.1.0.$i" --port 5683 \
      --node-id "worker-$(printf %02d "$i")" --interval "$interval" --state-dir "$a/state" \
      --root "$a/root" >"$a/agent.log" 2>&1 &
    echo $! >"$a/pid"
    echo "agent worker-$(printf %02d "$i"): coap://127.1.0.$i:5683 (pid $!, root $a/root)"
  done
  # Wait until every agent is registered (bounded).
  local client
  client="$(command -v coap-client-notls || command -v coap-client-openssl || command -v coap-client-gnutls || true)"
  if [ -n "$client" ]; then
    for _ in $(seq 1 50); do
      local count
      count=$("$client" -B 2 -m get "coap://127.0.0.1:$port/nodes?status=online" 2>/dev/null \
        | grep -o '"node_id"' | wc -l || true)
      [ "$count" -ge "$n" ] && { echo "$count nodes online"; return 0; }
      sleep 0.2
    done
    echo "warning: not every agent registered yet; see $dir/agent-*/agent.log" >&2
  fi
}

stop_pid() {
  local file="$1" name="$2"
  running "$file" || { rm -f "$file"; return 0; }
  local pid
  pid="$(cat "$file")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$file"; echo "stopped $name"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
  echo "killed $name (did not stop within 10 s)"
}

stop() {
  for a in "$dir"/agent-*; do
    [ -d "$a" ] && stop_pid "$a/pid" "$(basename "$a")"
  done
  stop_pid "$dir/server.pid" server
}

status() {
  if running "$dir/server.pid"; then echo "server: running (pid $(cat "$dir/server.pid"))"; else echo "server: stopped"; fi
  for a in "$dir"/agent-*; do
    [ -d "$a" ] || continue
    if running "$a/pid"; then echo "$(basename "$a"): running (pid $(cat "$a/pid"))"; else echo "$(basename "$a"): stopped"; fi
  done
  if [ -x "$build/coapfleet" ] && running "$dir/server.pid"; then
    "$build/coapfleet" --server "coap://127.0.0.1:$port" nodes || true
  fi
}

case "${1:-}" in
  start) start "${2:-3}" ;;
  stop) stop ;;
  status) status ;;
  logs)
    name="${2:-server}"
    if [ "$name" = server ]; then tail -n 50 -f "$dir/server.log"; else tail -n 50 -f "$dir/$name/agent.log"; fi ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac
