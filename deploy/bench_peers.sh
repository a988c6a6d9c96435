#!/usr/bin/env bash
# Scenario 1 of deploy/bench.sh alone, one run per peer count: PUT /health as fast
# as answered from N distinct peers, against coapfleet-server and libcoap's
# example server in the same run; then at half and at 80% of our rate.
#   deploy/bench_peers.sh                 # 2,000 and 10,000 peers (BUILD_DIR, default build-release)
#   SIZES="2000" EXTRA="--shed-backlog 4096" deploy/bench_peers.sh
set -u
ulimit -n 20000 2>/dev/null || true
root="$(cd "$(dirname "$0")/.." && pwd)"
B="${BUILD_DIR:-$root/build-release}"; W=$(mktemp -d)
lib=$(command -v coap-server-notls)
port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
for size in ${SIZES:-2000 10000}; do
  p=$(port); $lib -A 127.0.0.1 -p $p >/dev/null 2>&1 & lp=$!; sleep 0.3
  $B/coapfleet-sim load --server coap://127.0.0.1:$p --target libcoap --nodes $size --duration 10 --json -q > $W/lib.json 2>/dev/null
  kill $lp; wait $lp 2>/dev/null
  p=$(port); $B/coapfleet-server --bind 127.0.0.1 --port $p --db $W/s$size.db --log-level warn --dtls-port 0 ${EXTRA:-} > $W/srv.log 2>&1 & sp=$!; sleep 1
  $B/coapfleet-sim load --server coap://127.0.0.1:$p --nodes $size --duration 10 --json -q > $W/ours.json 2>/dev/null
  ours=$(python3 -c 'import json;d=json.load(open("'$W'/ours.json"));c=d["codes"];n=sum(c.values());print("%.0f"%(d["throughput"]*c.get("2.04",0)/n))')
  half=$((ours/2)); eighty=$((ours*8/10))
  $B/coapfleet-sim load --server coap://127.0.0.1:$p --nodes $size --no-register --rate $half --duration 10 --json -q > $W/half.json 2>/dev/null
  $B/coapfleet-sim load --server coap://127.0.0.1:$p --nodes $size --no-register --rate $eighty --duration 10 --json -q > $W/eighty.json 2>/dev/null
  kill $sp; wait $sp 2>/dev/null
  python3 - "$W" $size <<'PY'
import json,sys
w,size=sys.argv[1],sys.argv[2]
def rate(f,code):
    d=json.load(open(f)); c=d.get("codes",{}); n=sum(c.values()); return d["throughput"]*c.get(code,0)/n if n else 0
lib=rate(w+"/lib.json","2.04"); o=json.load(open(w+"/ours.json")); ours=rate(w+"/ours.json","2.04")
h=json.load(open(w+"/half.json")); e=json.load(open(w+"/eighty.json"))
print("peers %s: stored %.0f/s (all %.0f/s), libcoap %.0f/s, ratio %.2f; p50/p99 full %.2f/%.2f ms; p99 at half %.2f ms; 5.03 at 80%% %d; lost %s"%(size,ours,o["throughput"],lib,ours/lib if lib else 0,o["p50_ms"],o["p99_ms"],h["p99_ms"],e.get("codes",{}).get("5.03",0),o.get("lost")))
PY
done
rm -rf $W
