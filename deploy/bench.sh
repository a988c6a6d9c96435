#!/usr/bin/env bash
# The benchmark: builds in release mode, runs every scenario of the design's
# targets against real processes on loopback, and prints a table with the
# figures and the machine. Each scenario reports the median of its runs.
#
#   deploy/bench.sh            full run (10,000 nodes, then 100,000 and 1,000,000; ~25 minutes)
#   deploy/bench.sh --quick    smoke run (small N, a few seconds each; CI runs it)
#
# Environment: BENCH_RUNS (runs per scenario, default 3; quick 1),
# BUILD_DIR (default build-release), BENCH_SCALE (fleet sizes of the scale
# rows, default "100000 1000000", quick "25000"; "" skips them).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
quick=0
[ "${1:-}" = "--quick" ] && quick=1
build="${BUILD_DIR:-$root/build-release}"
if [ $quick = 1 ]; then
  runs="${BENCH_RUNS:-1}"; nodes_big=300; nodes_mid=100; nodes_small=100; load_s=3; fleet_s=8; job_nodes=50; agent_s=12
  over_s=6; read_nodes=1000; readers=5; dtls_nodes=50; dtls_big=200
else
  runs="${BENCH_RUNS:-3}"; nodes_big=10000; nodes_mid=2000; nodes_small=1000; load_s=10; fleet_s=35; job_nodes=1000; agent_s=60
  over_s=40; read_nodes=20000; readers=20; dtls_nodes=2000; dtls_big=10000
fi

"$root/deploy/install-deps.sh" >/dev/null
apt_missing=()
command -v python3 >/dev/null || apt_missing+=(python3)
BUILD_TYPE=Release BUILD_DIR="$build" "$root/deploy/build.sh" >/dev/null

client="$(command -v coap-client-notls || command -v coap-client-openssl || command -v coap-client-gnutls)"
libcoap_server="$(command -v coap-server-notls || command -v coap-server-openssl || command -v coap-server-gnutls)"
work="$(mktemp -d /tmp/coapfleet-bench.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A free UDP port below the kernel's ephemeral range: libcoap binds with
# SO_REUSEADDR, and a client (coap-client) given an ephemeral port that a
# server holds would talk to itself.
free_port() { python3 -c 'import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", random.randint(max(1024, low - 20000), low - 1))); print(s.getsockname()[1]); break
    except OSError:
        pass
    finally:
        s.close()'; }
median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(("%.6g" % statistics.median(v)) if v else "n/a")' "$@"; }
# Answers per second with code $2 (e.g. 2.04): the throughput times that code's share.
code_rate() { python3 -c 'import json,sys
try:
    d=json.load(open(sys.argv[1])); c=d.get("codes", {}); n=sum(c.values())
    print("%.1f" % (d.get("throughput", 0) * c.get(sys.argv[2], 0) / n) if n else 0)
except (OSError, ValueError):
    print(0)' "$1" "$2"; }
# How many answers had code $2 (e.g. 5.03).
code_count() { python3 -c 'import json,sys
try:
    print(json.load(open(sys.argv[1])).get("codes", {}).get(sys.argv[2], 0))
except (OSError, ValueError):
    print(0)' "$1" "$2"; }
json_get() { python3 -c 'import json,sys
try:
    v=json.load(open(sys.argv[1]))
except (OSError, ValueError):
    v={}
for k in sys.argv[2].split("."): v=v.get(k, {}) if isinstance(v, dict) else {}
print(v if v != {} else 0)' "$1" "$2"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_server() {  # $1: port, $2: db; prints the pid
  "$build/coapfleet-server" --bind 127.0.0.1 --port "$1" --db "$2" --log-level warn \
    --dtls-port "$(free_port)" >"$work/server-$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do
    "$client" -B 1 -m get "coap://127.0.0.1:$1/test" 2>/dev/null | grep -q "Test resource" && break
    sleep 0.05
  done
  echo "$pid"
}

declare -A results

# -- 1. PUT /health throughput and latency: ours and libcoap's example server --
# From $nodes_mid and from $nodes_big distinct peers (addresses): stored
# (2.04) per second against libcoap's example server's answers per second in
# the same run; p99 at half that rate; 5.03 answers at 80% of it.
s1_sizes=("$nodes_mid" "$nodes_big")
for size in "${s1_sizes[@]}"; do
  s1_ours=(); s1_all=(); s1_lib=(); s1_p50=(); s1_p99=(); s1_p99half=(); s1_loss=(); s1_shed80=()
  for run in $(seq 1 "$runs"); do
    port=$(free_port)
    "$libcoap_server" -A 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    lpid=$!; pids+=("$lpid"); sleep 0.3
    "$build/coapfleet-sim" load --server "coap://127.0.0.1:$port" --target libcoap \
      --nodes "$size" --duration "$load_s" --json -q >"$work/lib.json" 2>/dev/null || true
    kill "$lpid"; wait "$lpid" 2>/dev/null || true
    s1_lib+=("$(code_rate "$work/lib.json" 2.04)")

    port=$(free_port)
    spid=$(start_server "$port" "$work/s1-$size-$run.db"); pids+=("$spid")
    "$build/coapfleet-sim" load --server "coap://127.0.0.1:$port" --nodes "$size" \
      --duration "$load_s" --json -q >"$work/ours.json" 2>/dev/null || true
    tput="$(json_get "$work/ours.json" throughput)"
    s1_all+=("$tput"); s1_ours+=("$(code_rate "$work/ours.json" 2.04)")
    s1_p50+=("$(json_get "$work/ours.json" p50_ms)")
    s1_p99+=("$(json_get "$work/ours.json" p99_ms)"); s1_loss+=("$(json_get "$work/ours.json" lost)")
    half=$(python3 -c "print(max(1, int(float('${s1_ours[-1]}') / 2)))")
    "$build/coapfleet-sim" load --server "coap://127.0.0.1:$port" --nodes "$size" --no-register \
      --rate "$half" --duration "$load_s" --json -q >"$work/half.json" 2>/dev/null || true
    s1_p99half+=("$(json_get "$work/half.json" p99_ms)")
    eighty=$(python3 -c "print(max(1, int(float('${s1_ours[-1]}') * 0.8)))")
    "$build/coapfleet-sim" load --server "coap://127.0.0.1:$port" --nodes "$size" --no-register \
      --rate "$eighty" --duration "$load_s" --json -q >"$work/eighty.json" 2>/dev/null || true
    s1_shed80+=("$(code_count "$work/eighty.json" 5.03)")
    kill "$spid"; wait "$spid" 2>/dev/null || true
  done
  results[s1_ours_$size]=$(median "${s1_ours[@]}"); results[s1_lib_$size]=$(median "${s1_lib[@]}")
  results[s1_ratio_$size]=$(python3 -c "l=float('${results[s1_lib_$size]}'); print('%.2f' % (float('${results[s1_ours_$size]}')/l) if l > 0 else 'n/a')")
  results[s1_all_$size]=$(median "${s1_all[@]}")
  results[s1_p50_$size]=$(median "${s1_p50[@]}"); results[s1_p99_$size]=$(median "${s1_p99[@]}")
  results[s1_p99half_$size]=$(median "${s1_p99half[@]}"); results[s1_loss_$size]=$(median "${s1_loss[@]}")
  results[s1_shed80_$size]=$(median "${s1_shed80[@]}")
done

# -- 2 + 3. RSS with 1,000 and 10,000 nodes reporting every 10 s; GET /nodes --
rss_small=(); rss_big=(); get_nodes=()
for run in $(seq 1 "$runs"); do
  for n in "$nodes_small" "$nodes_big"; do
    port=$(free_port)
    spid=$(start_server "$port" "$work/s2-$run-$n.db"); pids+=("$spid")
    "$build/coapfleet-sim" fleet --server "coap://127.0.0.1:$port" --nodes "$n" --interval 10 \
      --duration "$fleet_s" -q >/dev/null 2>&1 &
    fpid=$!; pids+=("$fpid")
    wait "$fpid" 2>/dev/null || true
    if [ "$n" = "$nodes_small" ]; then rss_small+=("$(rss_kib "$spid")"); else rss_big+=("$(rss_kib "$spid")"); fi
    if [ "$n" = "$nodes_big" ]; then
      t0=$(date +%s.%N)
      "$client" -B 10 -m get "coap://127.0.0.1:$port/nodes" >"$work/nodes.json" 2>/dev/null || true
      t1=$(date +%s.%N)
      count=$(python3 -c "import json; print(len(json.load(open('$work/nodes.json'))['nodes']))" 2>/dev/null || echo 0)
      get_nodes+=("$(python3 -c "print(round($t1 - $t0, 3))")")
      got_nodes=$count
    fi
    kill "$spid"; wait "$spid" 2>/dev/null || true
  done
done

# -- 4. A job on N simulated nodes: install → completed, minus the install time --
job_times=()
install_s=1
for run in $(seq 1 "$runs"); do
  port=$(free_port)
  spid=$(start_server "$port" "$work/s4-$run.db"); pids+=("$spid")
  "$build/coapfleet-sim" fleet --server "coap://127.0.0.1:$port" --nodes "$job_nodes" --interval 10 \
    --install-seconds "$install_s" --duration 600 -q >/dev/null 2>&1 &
  fpid=$!; pids+=("$fpid")
  for _ in $(seq 1 300); do
    n=$({ "$client" -B 5 -m get "coap://127.0.0.1:$port/nodes?status=online" 2>/dev/null || true; } | { grep -o '"node_id"' || true; } | wc -l)
    [ "$n" -ge "$job_nodes" ] && break; sleep 0.2
  done
  job=$("$build/coapfleet" --timeout 30 --server "coap://127.0.0.1:$port" update create --name bench --version "$run" \
        --type script --script true)
  t0=$(date +%s.%N)
  "$build/coapfleet" --server "coap://127.0.0.1:$port" --timeout 30 update install "$job" >/dev/null
  "$build/coapfleet" --server "coap://127.0.0.1:$port" --timeout 60 update watch "$job" >/dev/null 2>&1 || true
  t1=$(date +%s.%N)
  job_times+=("$(python3 -c "print(round($t1 - $t0 - $install_s, 3))")")
  kill "$fpid" "$spid" 2>/dev/null || true; wait "$fpid" "$spid" 2>/dev/null || true
done

# -- 5. The agent: RSS and CPU share while reporting every 10 s --
port=$(free_port)
spid=$(start_server "$port" "$work/s5.db"); pids+=("$spid")
mkdir -p "$work/agent"
"$build/coapfleet-agent" --server "coap://127.0.0.1:$port" --bind 127.4.0.1 --port "$(free_port)" \
  --node-id bench-agent --interval 10 --state-dir "$work/agent" --root "$work/agent" --log-level warn \
  >/dev/null 2>&1 &
apid=$!; pids+=("$apid")
sleep 2
c0=$(cpu_ticks "$apid"); t0=$(date +%s.%N)
sleep "$agent_s"
c1=$(cpu_ticks "$apid"); t1=$(date +%s.%N)
agent_rss=$(rss_kib "$apid")
agent_cpu=$(python3 -c "import os; print('%.3f' % (100.0 * ($c1 - $c0) / os.sysconf('SC_CLK_TCK') / ($t1 - $t0)))")
kill "$apid" "$spid" 2>/dev/null || true; wait "$apid" "$spid" 2>/dev/null || true

# -- overload: far more than the server can take; shedding, memory, recovery --
port=$(free_port)
spid=$(start_server "$port" "$work/s6.db"); pids+=("$spid")
"$build/coapfleet-sim" load --server "coap://127.0.0.1:$port" --nodes "$nodes_big" --inflight 8 \
  --duration "$over_s" --json -q >"$work/over.json" 2>/dev/null &
opid=$!
# RSS once a second while it runs (the first samples include registration).
samples=()
while kill -0 "$opid" 2>/dev/null; do samples+=("$(rss_kib "$spid")"); sleep 1; done
wait "$opid" 2>/dev/null || true
half=$(( ${#samples[@]} / 2 ))
late=("${samples[@]:$half}")
rss_during_min=$(printf '%s\n' "${late[@]}" | sort -n | head -1)
rss_during_max=$(printf '%s\n' "${late[@]}" | sort -n | tail -1)
sleep 3; rss_after=$(rss_kib "$spid")
# Recovered: a new node registers and its report is stored (2.04) at once.
recovered=no
"$client" -B 5 -m post -t json -e '{"node_id":"bench-probe","ip_address":"127.0.0.1","hostname":"probe"}' \
  "coap://127.0.0.1:$port/nodes" >/dev/null 2>&1 || true
probe=$("$client" -B 5 -m put -t json -e '{"node_id":"bench-probe","overall_healthy":true}' \
  "coap://127.0.0.1:$port/health" 2>/dev/null || true)
case "$probe" in *"Health status updated"*) recovered=yes ;; esac
over_ok=$(code_rate "$work/over.json" 2.04)
over_shed=$(code_rate "$work/over.json" 5.03)
over_lost=$(json_get "$work/over.json" lost)
over_p50=$(json_get "$work/over.json" p50_ms); over_p99=$(json_get "$work/over.json" p99_ms)
kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true

# -- reads never wait: GET /test while block-wise GET /nodes are read --
r_p99=(); r_p50=(); r_complete=(); r_read=(); r_stamps=()
for run in $(seq 1 "$runs"); do
  port=$(free_port)
  spid=$(start_server "$port" "$work/s7-$run.db"); pids+=("$spid")
  # Registered in halves of at most 10,000 (one socket per simulated node).
  half_nodes=$(( read_nodes / 2 ))
  for part in 5 6; do
    "$build/coapfleet-sim" load --server "coap://127.0.0.1:$port" --nodes "$half_nodes" \
      --base "127.$part.0.0" --id-prefix "rd$part-" --duration 1 --json -q >/dev/null 2>&1 || true
  done
  python3 "$root/deploy/bench_reads.py" --port "$port" --client "$client" --readers "$readers" \
    --expect-nodes "$read_nodes" >"$work/reads.json" 2>/dev/null || true
  r_p99+=("$(json_get "$work/reads.json" test_p99_ms)"); r_p50+=("$(json_get "$work/reads.json" test_p50_ms)")
  r_complete+=("$(json_get "$work/reads.json" readers_complete)")
  r_read+=("$(json_get "$work/reads.json" read_s_median)")
  r_stamps+=("$(json_get "$work/reads.json" health_timestamps_differ)")
  kill "$spid"; wait "$spid" 2>/dev/null || true
done
stamps_ok=yes
for v in "${r_stamps[@]}"; do [ "$v" = "True" ] || stamps_ok=no; done

# -- 7. DTLS (PSK): a session and a key per node --
# Keys are made with the offline command (as an operator enrolls nodes);
# coapfleet-dtls-load opens one DTLS session per node, registers each, then
# reports health with one request in flight per node.
make_keys() {  # $1: db, $2: count, $3: prefix; writes "$work/$3.keys"
  : >"$work/$3.keys"
  for i in $(seq -w 1 "$2"); do
    echo "$3-$i $("$build/coapfleet-server" --db "$1" keys add "$3-$i" --role node 2>/dev/null)" \
      >>"$work/$3.keys"
  done
}
d_stored=(); d_hs=(); d_p99=(); d_plain=()
for run in $(seq 1 "$runs"); do
  make_keys "$work/s8-$run.db" "$dtls_nodes" "dt$run"
  port=$(free_port); dport=$(free_port)
  "$build/coapfleet-server" --bind 127.0.0.1 --port "$port" --dtls-port "$dport" \
    --db "$work/s8-$run.db" --log-level warn >"$work/server-$port.log" 2>&1 &
  spid=$!; pids+=("$spid")
  for _ in $(seq 1 100); do
    "$client" -B 1 -m get "coap://127.0.0.1:$port/test" 2>/dev/null | grep -q "Test resource" && break
    sleep 0.1
  done
  "$build/coapfleet-dtls-load" --server "coaps://127.0.0.1:$dport" --keys "$work/dt$run.keys" \
    --duration "$load_s" --json >"$work/dtls.json" 2>/dev/null || true
  d_stored+=("$(json_get "$work/dtls.json" stored_per_s)")
  d_hs+=("$(json_get "$work/dtls.json" handshakes_per_s)")
  d_p99+=("$(json_get "$work/dtls.json" p99_ms)")
  # Plain CoAP from as many nodes against the same server, right after.
  "$build/coapfleet-sim" load --server "coap://127.0.0.1:$port" --nodes "$dtls_nodes" \
    --base 127.9.0.0 --id-prefix "pl$run-" --duration "$load_s" --json -q >"$work/plain.json" \
    2>/dev/null || true
  d_plain+=("$(code_rate "$work/plain.json" 2.04)")
  kill "$spid"; wait "$spid" 2>/dev/null || true
done
# Server RSS with many DTLS sessions (one run: the keys take a while to make).
make_keys "$work/s9.db" "$dtls_big" "db"
port=$(free_port); dport=$(free_port)
"$build/coapfleet-server" --bind 127.0.0.1 --port "$port" --dtls-port "$dport" \
  --db "$work/s9.db" --log-level warn >"$work/server-$port.log" 2>&1 &
spid=$!; pids+=("$spid")
for _ in $(seq 1 100); do
  "$client" -B 1 -m get "coap://127.0.0.1:$port/test" 2>/dev/null | grep -q "Test resource" && break
  sleep 0.1
done
"$build/coapfleet-dtls-load" --server "coaps://127.0.0.1:$dport" --keys "$work/db.keys" \
  --duration 5 --json >"$work/dtls-big.json" 2>/dev/null || true
dtls_rss=$(rss_kib "$spid")
dtls_big_sessions=$(json_get "$work/dtls-big.json" sessions)
kill "$spid"; wait "$spid" 2>/dev/null || true

# -- 8. A campaign over simulated nodes (tests/integration/test_sim_campaign.py):
# waves 1/10/50/100 %, 5 % failing their first attempt, paused at a 3 % error
# threshold, retry + resume until done, late joiners, kill -9 mid-wave --
campaign_nodes=$([ $quick = 1 ] && echo 1000 || echo 10000)
COAPFLEET_SERVER_BIN="$build/coapfleet-server" COAPFLEET_SIM="$build/coapfleet-sim" \
  COAPFLEET_CAMPAIGN_NODES=$campaign_nodes COAPFLEET_CAMPAIGN_FIGURES="$work/campaign.json" \
  python3 "$root/tests/integration/test_sim_campaign.py" >"$work/campaign.log" 2>&1 \
  || { tail -40 "$work/campaign.log" >&2; echo '{}' >"$work/campaign.json"; }

# -- 9. Clustered servers (deploy/bench_cluster.py): PUT /health stored per
# second through SQLite on one server, PostgreSQL through one member and
# through three members at once (same run); GET /nodes of N nodes from a
# member they did not register through; kill -9 of a member until a
# survivor sees its lease lapsed --
if [ $quick = 1 ]; then cl_args=(--nodes 300 --read-nodes 1000 --seconds 3); else
  cl_args=(--nodes "$nodes_mid" --read-nodes "$nodes_big" --seconds "$load_s"); fi
python3 "$root/deploy/bench_cluster.py" --build "$build" --client "$client" "${cl_args[@]}" \
  >"$work/cluster.json" 2>"$work/cluster.err" || echo '{}' >"$work/cluster.json"
cat "$work/cluster.err" >&2  # a failure's trace; a member's bounded stop

# -- fleet size: 100,000 and 1,000,000 registered nodes (quick: 25,000) --
# BENCH_SCALE: the fleet sizes (default "100000 1000000"; quick 25000; "" skips them).
if [ $quick = 1 ]; then scale_sizes="${BENCH_SCALE-25000}"; scale_args=(--quick); else
  scale_sizes="${BENCH_SCALE-100000 1000000}"; scale_args=(); fi
for n in $scale_sizes; do scale_args+=(--nodes "$n"); done
: >"$work/scale.json"
if [ -n "$scale_sizes" ]; then
  python3 "$root/deploy/bench_scale.py" --build "$build" --client "$client" "${scale_args[@]}" \
    >"$work/scale.json" 2>"$work/scale.err" || cat "$work/scale.err" >&2
fi

# -- the table --
cpu_model=$(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')
echo
echo "coapfleet benchmark $( [ $quick = 1 ] && echo '(quick smoke run: small N, not the real figures)')"
echo "machine: $(nproc) cores, ${cpu_model:-unknown CPU}, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r); median of $runs run(s)"
echo
printf '| %-58s | %-28s | %-22s |\n' "scenario" "figure" "target"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..30})" "$(printf -- '-%.0s' {1..24})"
for size in "${s1_sizes[@]}"; do
printf '| %-58s | %-28s | %-22s |\n' "1. PUT /health, $size peers: coapfleet, stored" "${results[s1_ours_$size]} answers/s" ""
printf '| %-58s | %-28s | %-22s |\n' "   all answers (2.04 + 5.03 of the excess)" "${results[s1_all_$size]} answers/s" ""
printf '| %-58s | %-28s | %-22s |\n' "   libcoap's coap-server PUT /example_data, same run" "${results[s1_lib_$size]} answers/s" ""
printf '| %-58s | %-28s | %-22s |\n' "   ratio coapfleet / libcoap" "${results[s1_ratio_$size]}" ">= 0.8"
printf '| %-58s | %-28s | %-22s |\n' "   latency p50 / p99 at full load" "${results[s1_p50_$size]} / ${results[s1_p99_$size]} ms" ""
printf '| %-58s | %-28s | %-22s |\n' "   p99 at half that rate" "${results[s1_p99half_$size]} ms" "< 10 ms"
printf '| %-58s | %-28s | %-22s |\n' "   5.03 answers at 80% of that rate" "${results[s1_shed80_$size]}" "0"
printf '| %-58s | %-28s | %-22s |\n' "   losses (no answer after all retransmissions)" "${results[s1_loss_$size]}" "0"
done
printf '| %-58s | %-28s | %-22s |\n' "2. server RSS, $nodes_small nodes reporting every 10 s" "$(median "${rss_small[@]}") KiB" ""
printf '| %-58s | %-28s | %-22s |\n' "   server RSS, $nodes_big nodes reporting every 10 s" "$(median "${rss_big[@]}") KiB" "< 65536 KiB"
printf '| %-58s | %-28s | %-22s |\n' "3. GET /nodes of $nodes_big nodes, all blocks ($got_nodes listed)" "$(median "${get_nodes[@]}") s" "< 1 s"
printf '| %-58s | %-28s | %-22s |\n' "4. job on $job_nodes nodes: install → completed, minus 1 s install" "$(median "${job_times[@]}") s" "< 5 s"
printf '| %-58s | %-28s | %-22s |\n' "5. agent at a 10 s interval: RSS / CPU" "$agent_rss KiB / $agent_cpu %" "< 12288 KiB / < 1 %"
printf '| %-58s | %-28s | %-22s |\n' "6. GET /test while $readers GET /nodes of $read_nodes are read: p50 / p99" "$(median "${r_p50[@]}") / $(median "${r_p99[@]}") ms" "p99 < 5 ms"
printf '| %-58s | %-28s | %-22s |\n' "   readers complete; median time of one whole read" "$(median "${r_complete[@]}") of $readers; $(median "${r_read[@]}") s" "all"
printf '| %-58s | %-28s | %-22s |\n' "   GET /health 1 s apart: timestamps differ" "$stamps_ok" "yes"
printf '| %-58s | %-28s | %-22s |\n' "overload, $over_s s: $nodes_big nodes x 8 in flight: stored / shed" "$over_ok / $over_shed per s" "excess gets 5.03"
printf '| %-58s | %-28s | %-22s |\n' "   latency p50 / p99; lost" "$over_p50 / $over_p99 ms; $over_lost" "0 lost"
printf '| %-58s | %-28s | %-22s |\n' "   server RSS, 2nd half of the overload (min..max)" "$rss_during_min..$rss_during_max KiB" "flat"
printf '| %-58s | %-28s | %-22s |\n' "   server RSS 3 s after; stores reports again" "$rss_after KiB; $recovered" "yes"
printf '| %-58s | %-28s | %-22s |\n' "7. PUT /health over DTLS (PSK), $dtls_nodes sessions: stored" "$(median "${d_stored[@]}") answers/s" ""
printf '| %-58s | %-28s | %-22s |\n' "   plain CoAP from $dtls_nodes nodes, same server, right after" "$(median "${d_plain[@]}") answers/s" ""
printf '| %-58s | %-28s | %-22s |\n' "   DTLS p99; handshakes + registrations per second" "$(median "${d_p99[@]}") ms; $(median "${d_hs[@]}")/s" ""
printf '| %-58s | %-28s | %-22s |\n' "   server RSS with $dtls_big_sessions DTLS sessions" "$dtls_rss KiB" ""
python3 - "$work/campaign.json" <<'PY'
import json, sys
row = lambda a, b, c: print("| %-58s | %-28s | %-22s |" % (a, b, c))
d = json.load(open(sys.argv[1]))
if d:
    row("8. campaign, %s nodes: done beyond the %.0f s installs (%d rounds)"
        % ("{:,}".format(d["nodes"]), d["install_seconds"], d["rounds"]),
        "%.1f s" % d["beyond_install_s"], "")
    row("   server peak RSS while it runs", "%.0f MiB" % (d["peak_rss_kib"] / 1024.0), "")
else:
    row("8. campaign", "failed (see above)", "")
PY
python3 - "$work/cluster.json" <<'PY'
import json, sys
row = lambda a, b, c: print("| %-58s | %-28s | %-22s |" % (a, b, c))
d = json.load(open(sys.argv[1]))
if d:
    row("9. PUT /health stored: SQLite 1 / PostgreSQL 1 / 3 members",
        "%.0f / %.0f / %.0f answers/s" % (d["sqlite_1"], d["pg_1"], d["pg_3"]), "")
    row("   GET /nodes of %s from a member they did not come through" % "{:,}".format(d["read_nodes"]),
        "%.2f s" % d["read_s"], "")
    lapse = d.get("lease_lapse_s")
    row("   kill -9 of a member until a survivor sees its lease lapsed",
        "%.1f s" % lapse if lapse is not None else "not within 30 s", "< 10 s")
    row("   members whose stop had actors left after 15 s", str(d.get("stuck_stops", 0)), "0")
else:
    row("9. cluster", "failed (see above)", "")
PY
python3 - "$work/scale.json" <<'PY'
import json, sys
row = lambda a, b, c: print("| %-58s | %-28s | %-22s |" % (a, b, c))
for line in open(sys.argv[1]):
    d = json.loads(line)
    n = "{:,}".format(d["nodes"])
    mib = lambda k: "%.0f MiB" % (k / 1024.0) if k else "n/a"
    row("scale, %s nodes: registrations/s into %s / into %s (3 x %s)" % (n, "{:,}".format(d["batch"]), n, "{:,}".format(d["register_part"])),
        "%d / %d (%.2f)" % (d["register_rate_at_10k"], d["register_rate_at_n"], d["register_ratio"]),
        ">= 0.8 at 1,000,000")
    row("   server RSS registered; at rest; %s reporting every 10 s; 60 s after" % "{:,}".format(d["reporting"]),
        "%s; %s; %s; %s" % (mib(d["rss_registered_kib"]), mib(d["rss_rest_kib"]),
                            mib(d["rss_reporting_kib"]), mib(d.get("rss_60s_after_reporting_kib"))),
        "<= 768 MiB at 1,000,000")
    row("   CPU going offline; idle CPU at rest (10 s each)",
        "%.2f %%; %.2f %% of a core" % (d["cpu_going_offline_percent"], d["idle_cpu_percent"]), "< 1 %")
    row("   page of 1,000: first block / all blocks, p50; p99",
        "%.1f / %.0f ms; %.1f / %.0f ms" % (d["page_first_block_ms"][0], d["page_whole_ms"][0],
                                            d["page_first_block_ms"][1], d["page_whole_ms"][1]),
        "first block < 20 ms")
    row("   GET /test p50 / p99 while GET /nodes is read whole",
        "%.2f / %.2f ms" % tuple(d["test_while_reading_ms"]), "p99 < 5 ms")
    up = "%.1f s" % d["startup_s"] if d["startup_s"] is not None else "not within 180 s"
    row("   start-up until GET /health counts every node", "%s (RSS %s)" % (up, mib(d["rss_after_start_kib"])), "< 10 s")
PY
