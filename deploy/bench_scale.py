#!/usr/bin/env python3
"""The fleet-size rows of the benchmark: one coapfleet-server grown to N
registered nodes by coapfleet-sim (nodes share sockets where the open-file
limit needs it), then, at that size:

- registration rate into the fleet of 10,000 (after the first 10,000) and
  into the fleet of N at rest: each the median of three batches of 5,000 new
  nodes (fewer below 100,000 nodes; one batch takes a fraction of a second:
  one alone is noisy);
- server RSS; CPU with no traffic for 10 s while the nodes go stale and
  offline (the server runs with --stale-after 15 --offline-after 30), then
  idle CPU and RSS at rest (every node offline, every node actor closed);
- RSS while 100,000 of the nodes (or all, if fewer) report every 10 s, and
  60 s after they stopped (their actors closed after --idle-after, 40 s);
- a page of 1,000 nodes (GET /nodes?limit=1000&after=...): time to the first
  block and to the whole page, over 20 random cursors;
- GET /test p50/p99 while a whole GET /nodes of the fleet is being read;
- start-up: time from starting the server on that database until GET /health
  answers with every node counted.

Usage: bench_scale.py --build DIR [--nodes 100000 [--nodes 1000000]] [--quick]
(--quick: shorter phases, for the smoke run.) One JSON object per size.
Talks only to 127.0.0.0/8.
"""
import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness as h  # noqa: E402  (raw CoAP client, message codec)

FD_LIMIT = resource.getrlimit(resource.RLIMIT_NOFILE)[1]


# Liveness of the benchmark's server: short, so that "at rest" (every node
# offline, nothing left to change) comes within a minute of registering.
STALE_S = 15
OFFLINE_S = 30
IDLE_S = 40  # the server's default --idle-after


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class Bench:
    def __init__(self, build, work):
        self.build = build
        self.work = work
        self.server = None
        self.port = free_port()
        self.db = os.path.join(work, "fleet.db")

    def start(self):
        log = open(os.path.join(self.work, "server.log"), "ab")
        t0 = time.monotonic()
        self.server = subprocess.Popen(
            [os.path.join(self.build, "coapfleet-server"), "--bind", "127.0.0.1", "--port",
             str(self.port), "--dtls-port", "0", "--db", self.db, "--log-level", "warn",
             "--max-nodes", "2000000", "--stale-after", str(STALE_S), "--offline-after",
             str(OFFLINE_S)],
            stdout=log, stderr=subprocess.STDOUT)
        return t0

    def stop(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(120)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None

    def get(self, path, query=(), timeout=30):
        with h.RawClient("127.0.0.1", self.port) as c:
            return c.request("get", path, query=query, timeout=timeout)

    def wait_up(self, t0, nodes, limit=600):
        """Seconds from t0 until GET /health counts `nodes` nodes (None: not within `limit`)."""
        while time.monotonic() - t0 < limit:
            try:
                r = self.get("health", timeout=2)
                if r.code == "2.05" and r.json()["total_nodes"] >= nodes:
                    return time.monotonic() - t0
            except (TimeoutError, ConnectionError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        return None

    def sim(self, mode, nodes, base, prefix, *extra, timeout=3600):
        per_socket = max(1, -(-nodes // max(1000, FD_LIMIT - 2000)))
        cmd = [os.path.join(self.build, "coapfleet-sim"), mode, "--server",
               "coap://127.0.0.1:%d" % self.port, "--nodes", str(nodes), "--base", base,
               "--id-prefix", prefix, "--nodes-per-socket", str(per_socket),
               "--register-window", "512"] + list(extra)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def register(self, nodes, base, prefix):
        """Registers `nodes` new nodes; returns registrations per second."""
        p = self.sim("load", nodes, base, prefix, "--duration", "0.1", "--drain", "0.5")
        m = re.search(r"registered (\d+)/(\d+) nodes in ([\d.]+) s", p.stdout + p.stderr)
        if not m or m.group(1) != m.group(2):
            raise RuntimeError("registration failed:\n%s\n%s" % (p.stdout[-2000:], p.stderr[-2000:]))
        return int(m.group(1)) / max(float(m.group(3)), 1e-3)

    def page_times(self, ids_hint, count=20):
        """(first block ms, whole page ms) of GET /nodes?limit=1000&after=X."""
        firsts, wholes = [], []
        for _ in range(count):
            after = ids_hint()
            q = ["limit=1000", "after=" + after]
            with h.RawClient("127.0.0.1", self.port) as c:
                t0 = time.monotonic()
                opts = h.request_options("nodes", None, q)
                msg = c._exchange(1, opts, b"", 30)
                firsts.append((time.monotonic() - t0) * 1000)
                block = msg.option(h.OPT_BLOCK2)
                got = len(msg.payload)
                while block is not None and h.decode_uint(block) & 8:
                    num = (h.decode_uint(block) >> 4) + 1
                    msg = c._exchange(1, h.request_options("nodes", None, q)
                                      + [(h.OPT_BLOCK2, h.encode_uint(num << 4 | 6))], b"", 30)
                    got += len(msg.payload)
                    block = msg.option(h.OPT_BLOCK2)
                wholes.append((time.monotonic() - t0) * 1000)
        return firsts, wholes

    def probe_while_reading(self, client, seconds=15):
        """GET /test latencies while coap-client reads the whole GET /nodes."""
        reader = subprocess.Popen([client, "-m", "get", "-B", "600",
                                   "coap://127.0.0.1:%d/nodes" % self.port],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        lat = []
        end = time.monotonic() + seconds
        with h.RawClient("127.0.0.1", self.port) as c:
            while time.monotonic() < end:
                t0 = time.monotonic()
                c.request("get", "test", timeout=5)
                lat.append((time.monotonic() - t0) * 1000)
                time.sleep(0.02)
        reading = reader.poll() is None
        reader.kill()
        reader.wait()
        return lat, reading


def run_size(build, n, client, out, quick=False):
    work = tempfile.mkdtemp(prefix="coapfleet-scale.")
    b = Bench(build, work)
    try:
        b.start()
        if b.wait_up(time.monotonic(), 0, 60) is None:
            raise RuntimeError("the server did not start")
        say = lambda what, v: print("  %d nodes: %s %s" % (n, what, v), file=sys.stderr, flush=True)
        batch = 10000 if n >= 30000 else max(1000, n // 4)
        b.register(batch, "127.20.0.0", "a-")  # the first 10,000
        part = 5000 if n >= 100000 else max(500, n // 50)
        rate_small = statistics.median(
            b.register(part, "127.%d.0.0" % (21 + k), "a%d-" % k) for k in range(3))
        rest = n - batch - 6 * part
        t0 = time.monotonic()
        if rest > 0:
            b.register(rest, "127.40.0.0", "b-")
        bulk_end = time.monotonic()
        bulk_s = bulk_end - t0
        pid = b.server.pid
        time.sleep(5)
        rss_registered = rss_kib(pid)
        # No traffic: first while the nodes go stale and offline (liveness
        # work), then at rest once every node is offline.
        t1 = cpu_ticks(pid)
        time.sleep(10)
        busy_cpu = (cpu_ticks(pid) - t1) / os.sysconf("SC_CLK_TCK") / 10 * 100
        # At rest: every node offline, and every node actor the registration's
        # first reports started closed (--idle-after, 40 s).
        deadline = time.monotonic() + OFFLINE_S + 120
        while time.monotonic() < deadline:
            f = b.get("health", timeout=10).json()
            if f["offline_nodes"] == f["total_nodes"] and time.monotonic() > bulk_end + IDLE_S + 5:
                break
            time.sleep(1)
        say("at rest:", "every node offline")
        time.sleep(2)
        t1 = cpu_ticks(pid)
        time.sleep(10)
        idle_cpu = (cpu_ticks(pid) - t1) / os.sysconf("SC_CLK_TCK") / 10 * 100
        rss_rest = rss_kib(pid)
        say("RSS KiB registered, CPU % going offline, idle CPU % at rest, RSS KiB at rest:",
            (rss_registered, round(busy_cpu, 2), round(idle_cpu, 2), rss_rest))
        # Three batches register into the fleet at rest.
        rate_big = statistics.median(
            b.register(part, "127.%d.0.0" % (30 + k), "c%d-" % k) for k in range(3))
        say("registrations/s at %d and at %d registered:" % (batch, n), (round(rate_small), round(rate_big)))
        # 100,000 (or all) of them report every 10 s.
        reporting = min(100000, max(0, rest))
        fleet_s = 16 if quick else 40
        rss_reporting = None
        if reporting:
            fleet = subprocess.Popen(
                [os.path.join(build, "coapfleet-sim"), "fleet", "--server",
                 "coap://127.0.0.1:%d" % b.port, "--nodes", str(reporting), "--base",
                 "127.40.0.0", "--id-prefix", "b-", "--nodes-per-socket",
                 str(max(1, -(-reporting // max(1000, FD_LIMIT - 2000)))), "--interval", "10",
                 "--duration", str(fleet_s), "-q"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            samples = []
            for _ in range(fleet_s):
                time.sleep(1)
                samples.append(rss_kib(pid))
            fleet.wait(120)
            rss_reporting = max(samples[fleet_s // 2:])
        say("RSS KiB while %d report:" % reporting, rss_reporting)
        rss_after = None
        if reporting and not quick:
            # Their actors are closed after --idle-after (40 s) quiet.
            time.sleep(60)
            rss_after = rss_kib(pid)
            say("RSS KiB 60 s after they stopped:", rss_after)
        ids = lambda: "b-%05d" % random.randint(1, max(1, rest))
        firsts, wholes = b.page_times(ids, 5 if quick else 20)
        lat, still_reading = b.probe_while_reading(client, 5 if quick else 15)
        b.stop()
        say("page ms first block / whole, GET /test ms while reading:",
            (round(pct(firsts, 50), 1), round(pct(wholes, 50)), round(pct(lat, 99), 2)))
        t0 = b.start()
        startup = b.wait_up(t0, n, 180)
        rss_start = rss_kib(b.server.pid)
        say("start-up s (None: not within 180 s):", startup)
        out.append({
            "nodes": n, "batch": batch, "register_part": part,
            "register_rate_at_10k": round(rate_small),
            "register_rate_at_n": round(rate_big),
            "register_ratio": round(rate_big / rate_small, 2), "bulk_register_s": round(bulk_s, 1),
            "rss_registered_kib": rss_registered, "cpu_going_offline_percent": round(busy_cpu, 2),
            "idle_cpu_percent": round(idle_cpu, 2), "rss_rest_kib": rss_rest,
            "reporting": reporting, "rss_reporting_kib": rss_reporting,
            "rss_60s_after_reporting_kib": rss_after,
            "page_first_block_ms": [round(pct(firsts, 50), 1), round(pct(firsts, 99), 1)],
            "page_whole_ms": [round(pct(wholes, 50), 1), round(pct(wholes, 99), 1)],
            "test_while_reading_ms": [round(pct(lat, 50), 2), round(pct(lat, 99), 2)],
            "listing_still_being_read": still_reading,
            "startup_s": round(startup, 2) if startup is not None else None,
            "rss_after_start_kib": rss_start,
        })
    finally:
        b.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--nodes", type=int, action="append")
    ap.add_argument("--client", default=shutil.which("coap-client-notls")
                    or shutil.which("coap-client-openssl"))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    out = []
    for n in args.nodes or [100000]:
        run_size(args.build, n, args.client, out, args.quick)
        print(json.dumps(out[-1]), flush=True)


if __name__ == "__main__":
    main()
