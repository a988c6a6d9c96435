#!/usr/bin/env python3
"""Reads while large reads are in progress: GET /test latency while N
coap-client processes each read the whole block-wise GET /nodes, and
GET /health twice a second apart (its timestamp must differ).

Usage: bench_reads.py --port P --client PATH [--readers 20] [--expect-nodes N]
Prints one JSON object: probe latency percentiles (ms), how many probes,
the readers' times and node counts, and both /health timestamps.
Talks only to 127.0.0.1.
"""
import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time


def coap_get(sock, port, path, timeout=2.0):
    """One confirmable GET (single datagram answer); returns (ms, code, payload)."""
    mid = random.randint(0, 0xFFFF)
    token = os.urandom(4)
    msg = bytearray(struct.pack("!BBH", 0x40 | len(token), 0x01, mid)) + token
    last = 0
    for seg in path.split("/"):
        data = seg.encode()
        delta = 11 - last
        last = 11
        if len(data) < 13:
            msg += bytes([(delta << 4) | len(data)])
        else:
            msg += bytes([(delta << 4) | 13, len(data) - 13])
        msg += data
        delta = 0
    t0 = time.monotonic()
    sock.sendto(bytes(msg), ("127.0.0.1", port))
    sock.settimeout(timeout)
    while True:
        try:
            data, _ = sock.recvfrom(65536)
        except socket.timeout:
            return None, None, None
        if len(data) >= 4 and struct.unpack("!H", data[2:4])[0] == mid:
            ms = (time.monotonic() - t0) * 1000.0
            code = "%d.%02d" % (data[1] >> 5, data[1] & 31)
            payload = data.split(b"\xff", 1)[1] if b"\xff" in data[4:] else b""
            return ms, code, payload


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--readers", type=int, default=20)
    ap.add_argument("--expect-nodes", type=int, default=0)
    a = ap.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    tmp = tempfile.mkdtemp(prefix="bench-reads.")
    readers = []
    t_start = time.monotonic()
    for i in range(a.readers):
        out = os.path.join(tmp, "nodes-%d.json" % i)
        p = subprocess.Popen([a.client, "-B", "120", "-m", "get", "-o", out,
                              "coap://127.0.0.1:%d/nodes" % a.port],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        readers.append((p, out, time.monotonic()))
    probes, lost = [], 0
    done_at = {}
    while len(done_at) < len(readers):
        ms, code, _ = coap_get(sock, a.port, "test", timeout=1.0)
        if ms is None or code != "2.05":
            lost += 1
        else:
            probes.append(ms)
        for i, (p, _, _) in enumerate(readers):
            if i not in done_at and p.poll() is not None:
                done_at[i] = time.monotonic()
        if time.monotonic() - t_start > 300:
            break
        time.sleep(0.005)
    counts = []
    for i, (p, out, started) in enumerate(readers):
        if p.poll() is None:
            p.kill()
        try:
            counts.append(len(json.load(open(out))["nodes"]))
        except (OSError, ValueError, KeyError):
            counts.append(0)
    read_times = [round(done_at.get(i, time.monotonic()) - r[2], 3) for i, r in enumerate(readers)]

    stamps = []
    for k in range(2):
        if k:
            time.sleep(1.05)
        # coap-client follows a block-wise answer (the unhealthy list can be long).
        out = subprocess.run([a.client, "-B", "10", "-m", "get",
                              "coap://127.0.0.1:%d/health" % a.port],
                             capture_output=True, timeout=30).stdout
        try:
            stamps.append(json.loads(out.decode())["timestamp"])
        except (ValueError, KeyError, UnicodeDecodeError):
            stamps.append(None)
    print(json.dumps({
        "probes": len(probes), "probes_lost": lost,
        "test_p50_ms": round(percentile(probes, 50) or 0, 3),
        "test_p99_ms": round(percentile(probes, 99) or 0, 3),
        "test_max_ms": round(max(probes) if probes else 0, 3),
        "readers": a.readers,
        "readers_complete": sum(1 for c in counts if a.expect_nodes == 0 or c == a.expect_nodes),
        "nodes_listed_min": min(counts) if counts else 0,
        "read_s_median": sorted(read_times)[len(read_times) // 2] if read_times else 0,
        "health_timestamps": stamps,
        "health_timestamps_differ": len(stamps) == 2 and None not in stamps
                                    and stamps[0] != stamps[1],
    }))


if __name__ == "__main__":
    sys.exit(main())
