#!/usr/bin/env python3
"""The cluster rows of the benchmark (deploy/bench.sh runs it).

Prints one JSON object:
  sqlite_1:   PUT /health stored (2.04) per second, one server on SQLite
  pg_1:       the same through one member on PostgreSQL
  pg_3:       the same through three members on PostgreSQL at once (three
              load generators, a third of the nodes each; the sum)
  read_s / read_nodes: GET /nodes of N nodes, read whole with coap-client
              from a member other than the one they registered through
  lease_lapse_s: kill -9 of a member until a survivor sees its lease lapsed
All in one run, on one machine, against a PostgreSQL of its own (deploy/pg.sh).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port(kind=socket.SOCK_DGRAM):
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    import random
    for _ in range(200):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", random.randint(max(1024, low - 20000), low - 1)))
            return s.getsockname()[1]
        except OSError:
            pass
        finally:
            s.close()
    raise RuntimeError("no free port")


class Bench:
    def __init__(self, args):
        self.a = args
        self.work = tempfile.mkdtemp(prefix="coapfleet-bench-cluster.")
        self.pg = tempfile.mkdtemp(prefix="coapfleet-bench-pg.")  # pg.sh opens it to postgres
        self.procs = []
        self.uri = subprocess.run([os.path.join(ROOT, "deploy", "pg.sh"), "start", self.pg],
                                  check=True, capture_output=True, text=True).stdout.strip()
        self.schemas = 0
        self.stuck_stops = 0

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run([os.path.join(ROOT, "deploy", "pg.sh"), "stop", self.pg],
                       capture_output=True)
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.pg, ignore_errors=True)

    def store(self):
        self.schemas += 1
        name = "bench%d" % self.schemas
        subprocess.run(["psql", self.uri, "-qAtX", "-c", "CREATE SCHEMA %s" % name],
                       check=True, capture_output=True)
        return self.uri + "?options=-csearch_path%3D" + name

    def server(self, store, extra=()):
        port = free_port()
        log = open(os.path.join(self.work, "server-%d.log" % port), "wb")
        p = subprocess.Popen([os.path.join(self.a.build, "coapfleet-server"), "--bind",
                              "127.0.0.1", "--port", str(port), "--store", store,
                              "--dtls-port", "0", "--log-level", "warn",
                              "--artifacts", os.path.join(self.work, "artifacts")] + list(extra),
                             stdout=log, stderr=subprocess.STDOUT, cwd=self.work)
        self.procs.append(p)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            r = subprocess.run([self.a.client, "-B", "1", "-m", "get",
                                "coap://127.0.0.1:%d/test" % port], capture_output=True, text=True)
            if "Test resource" in r.stdout:
                return p, port
            time.sleep(0.1)
        raise RuntimeError("server on %d did not start" % port)

    def members(self, n):
        store = self.store()
        links = [free_port(socket.SOCK_STREAM) for _ in range(n)]
        seeds = ",".join("127.0.0.1:%d" % l for l in links)
        out = []
        for i in range(n):
            out.append(self.server(store, ["--member-id", "m%d" % (i + 1), "--cluster-listen",
                                           "127.0.0.1:%d" % links[i], "--cluster-seed", seeds]))
        return out

    def load(self, ports, nodes, base_of=lambda i: "127.2.%d.0" % (i * 40)):
        """Concurrent load generators, one per port; the sum of 2.04 per second."""
        runs = []
        for i, port in enumerate(ports):
            runs.append(subprocess.Popen(
                [os.path.join(self.a.build, "coapfleet-sim"), "load", "--server",
                 "coap://127.0.0.1:%d" % port, "--nodes", str(nodes // len(ports)),
                 "--duration", str(self.a.seconds), "--base", base_of(i),
                 "--id-prefix", "b%d-" % i, "--json", "-q"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        total = 0.0
        for r in runs:
            out, _ = r.communicate(timeout=self.a.seconds + 300)
            try:
                d = json.loads(out)
            except ValueError:
                continue
            codes = d.get("codes", {})
            n = sum(codes.values())
            total += d.get("throughput", 0) * codes.get("2.04", 0) / n if n else 0
        return round(total, 1)

    def stop(self, pairs):
        for p, port in pairs:
            p.send_signal(signal.SIGTERM)
            p.wait(30)
            # A stop the server had to bound (actors that did not end) is a
            # defect to look into, not a figure: said on stderr.
            with open(os.path.join(self.work, "server-%d.log" % port), "rb") as f:
                for line in f:
                    if b"actors still running" in line:
                        sys.stderr.write("member on port %d: %s" % (port, line.decode()))
                        self.stuck_stops += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--read-nodes", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    b = Bench(a)
    out = {}
    try:
        sqlite = b.server(os.path.join(b.work, "one.db"))
        out["sqlite_1"] = b.load([sqlite[1]], a.nodes)
        b.stop([sqlite])
        one = b.members(1)
        out["pg_1"] = b.load([one[0][1]], a.nodes)
        b.stop(one)
        three = b.members(3)
        time.sleep(2)  # linked
        out["pg_3"] = b.load([p for _, p in three], a.nodes)
        # GET /nodes of read_nodes nodes registered through m1, read from m2.
        subprocess.run([os.path.join(a.build, "coapfleet-sim"), "load", "--server",
                        "coap://127.0.0.1:%d" % three[0][1], "--nodes", str(a.read_nodes),
                        "--duration", "1", "--base", "127.3.0.0", "--id-prefix", "r-", "-q"],
                       capture_output=True, timeout=600)
        t0 = time.monotonic()
        r = subprocess.run([a.client, "-B", "30", "-m", "get",
                            "coap://127.0.0.1:%d/nodes" % three[1][1]],
                           capture_output=True, text=True, timeout=120)
        out["read_s"] = round(time.monotonic() - t0, 3)
        try:
            out["read_nodes"] = sum(1 for n in json.loads(r.stdout)["nodes"]
                                    if n["node_id"].startswith("r-"))
        except (ValueError, KeyError):
            out["read_nodes"] = 0
        # kill -9 of m3 until m1 sees its lease lapsed.
        t0 = time.monotonic()
        three[2][0].kill()
        three[2][0].wait()
        lapse = None
        while time.monotonic() - t0 < 30:
            r = subprocess.run([a.client, "-B", "2", "-m", "get",
                                "coap://127.0.0.1:%d/cluster" % three[0][1]],
                               capture_output=True, text=True)
            try:
                ms = {m["member_id"]: m for m in json.loads(r.stdout)["members"]}
                if not ms["m3"]["live"]:
                    lapse = round(time.monotonic() - t0, 2)
                    break
            except (ValueError, KeyError):
                pass
            time.sleep(0.1)
        out["lease_lapse_s"] = lapse
        b.stop(three[:2])
        out["stuck_stops"] = b.stuck_stops
    finally:
        b.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
