#!/usr/bin/env python3
"""Datagram-level fuzzer: a real coapfleet-server and coapfleet-agent (built
with AddressSanitizer and UBSan for this: build-asan/) on loopback, fed a
seeded stream of mutated valid requests and block-wise sequences
(tests/integration/mutations.py) from several sockets. Every few hundred
datagrams both must still be running; at the end both must answer (GET /test,
GET /health), stop cleanly on SIGTERM and have logged no sanitizer report.

When a process dies, the last datagrams sent to it are written to
fuzz/regressions/datagrams/ (one hex datagram per line) and the run fails;
--replay sends every file there to fresh processes first (CI does).

  fuzz/datagrams.py --server build-asan/coapfleet-server --agent build-asan/coapfleet-agent \\
                    [--seconds 60] [--seed N] [--replay fuzz/regressions/datagrams]
"""
import argparse
import collections
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness as h  # noqa: E402
from mutations import mutate, requests  # noqa: E402

SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer", "UndefinedBehaviorSanitizer")
AGENT_IP = "127.5.0.1"


class Target:
    def __init__(self, name, args, log, address):
        self.name, self.args, self.log_path, self.address = name, args, log, address
        self.recent = collections.deque(maxlen=256)
        self.sent = 0
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def sanitizer_report(self):
        text = self.log_text()
        for mark in SANITIZER_MARKS:
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 2000):i + 6000]
        return None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                return "no exit within 30 s of SIGTERM"
        self.log.close()
        return self.proc.returncode


def wait_answer(port, host, path, timeout):
    """True once GET path answers 2.xx; else the last thing that happened."""
    end = time.monotonic() + timeout
    last = "nothing"
    while time.monotonic() < end:
        try:
            with h.RawClient(host, port) as c:
                r = c.request("get", path, timeout=2)
                if r.code.startswith("2."):
                    return True
                last = "%s %s" % (r.code, r.text[:200])
        except (TimeoutError, ConnectionError, OSError) as e:
            last = repr(e)
        time.sleep(0.2)
    return last


def start(workdir, server_bin, agent_bin):
    port, dtls = h.free_port(), h.free_port()
    while dtls == port:
        dtls = h.free_port()
    server = Target("server", [server_bin, "--bind", h.HOST, "--port", str(port), "--dtls-port",
                               str(dtls), "--db", os.path.join(workdir, "fuzz.db"),
                               "--log-level", "warn"],
                    os.path.join(workdir, "server.log"), (h.HOST, port))
    if wait_answer(port, h.HOST, "test", 60) is not True:
        raise SystemExit("the server did not start:\n" + server.log_text()[-3000:])
    aport = h.free_port(AGENT_IP)
    for d in ("state", "root"):
        os.makedirs(os.path.join(workdir, d), exist_ok=True)
    agent = Target("agent", [agent_bin, "--bind", AGENT_IP, "--port", str(aport),
                             "--node-id", "fz-agent", "--server", "coap://%s:%d" % (h.HOST, port),
                             "--state-dir", os.path.join(workdir, "state"),
                             "--root", os.path.join(workdir, "root"), "--interval", "1",
                             "--log-level", "warn"],
                   os.path.join(workdir, "agent.log"), (AGENT_IP, aport))
    if wait_answer(aport, AGENT_IP, "health", 60) is not True:
        raise SystemExit("the agent did not start:\n" + agent.log_text()[-3000:])
    return server, agent


def save(target, seed):
    d = os.path.join(HERE, "regressions", "datagrams")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "%s-seed%d-%d.hex" % (target.name, seed, int(time.time())))
    with open(path, "w") as f:
        f.write("# %s: the last %d datagrams before it died (seed %d)\n"
                % (target.name, len(target.recent), seed))
        for d_ in target.recent:
            f.write(d_.hex() + "\n")
    return path


def pace(target, timeout=30):
    """A CoAP ping (empty CON, answered with RST) through the target's queue:
    the stream goes no faster than the target takes it, and a target that
    stops answering is found at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((h.HOST, 0))
        mid = random.randrange(1 << 16)
        end = time.monotonic() + timeout
        next_send = 0.0
        while time.monotonic() < end:
            if time.monotonic() >= next_send:
                s.sendto(h.encode_message(h.CON, 0, mid, b""), target.address)
                next_send = time.monotonic() + 2
            s.settimeout(0.2)
            try:
                m = h.decode_message(s.recv(70000))
            except (socket.timeout, ConnectionRefusedError):
                continue
            if m and m.mid == mid and m.type in (h.RST, h.ACK):
                return
    raise SystemExit("FAIL: the %s answered no ping within %d s\n%s"
                     % (target.name, timeout, target.log_text()[-3000:]))


def check(targets, seed, replaying=None):
    for t in targets:
        report = t.sanitizer_report()
        if not t.alive() or report:
            where = replaying or save(t, seed)
            raise SystemExit("FAIL: the %s %s (%s)\n%s" % (
                t.name, "died" if not t.alive() else "reported", where,
                report or t.log_text()[-4000:]))


def drain(socks):
    for s in socks:
        while True:
            try:
                s.recv(70000, socket.MSG_DONTWAIT)
            except (BlockingIOError, ConnectionRefusedError, InterruptedError):
                break


def run(targets, datagrams_for, seconds, seed, replaying=None):
    socks = []
    for _ in range(8):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((h.HOST, 0))
        socks.append(s)
    end = time.monotonic() + seconds
    i = 0
    try:
        for d, t in datagrams_for():
            if time.monotonic() > end:
                break
            try:
                socks[i % len(socks)].sendto(d, t.address)
            except OSError:
                pass
            t.recent.append(d)
            t.sent += 1
            i += 1
            if i % 64 == 0:
                drain(socks)
                time.sleep(0.002)  # content, not load: the budgets would shed a flood
            if i % 500 == 0:
                check(targets, seed, replaying)
                for t_ in targets:
                    pace(t_)
        time.sleep(0.5)
        drain(socks)
        check(targets, seed, replaying)
    finally:
        for s in socks:
            s.close()


def finish(targets, seed):
    server, agent = targets
    ok_server = wait_answer(server.address[1], h.HOST, "test", 30)
    ok_agent = wait_answer(agent.address[1], AGENT_IP, "health", 30)
    check(targets, seed)
    codes = {t.name: t.stop() for t in targets}
    for t in targets:
        report = t.sanitizer_report()
        if report:
            raise SystemExit("FAIL: the %s reported at exit\n%s" % (t.name, report))
    if ok_server is not True or ok_agent is not True:
        raise SystemExit("FAIL: no answer after the stream (server %s, agent %s)" % (ok_server, ok_agent))
    if any(c != 0 for c in codes.values()):
        raise SystemExit("FAIL: exit codes after SIGTERM %r" % codes)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--replay", default=None, help="a directory of .hex files to replay first")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)

    if args.replay and os.path.isdir(args.replay):
        files = sorted(f for f in os.listdir(args.replay) if f.endswith(".hex"))
        for name in files:
            with open(os.path.join(args.replay, name)) as f:
                grams = [bytes.fromhex(l.strip()) for l in f if l.strip() and not l.startswith("#")]
            with tempfile.TemporaryDirectory(prefix="fuzz-replay-") as wd:
                targets = start(wd, args.server, args.agent)
                try:
                    who = targets[0] if name.startswith("server") else targets[1]
                    run(targets, lambda: ((g, who) for g in grams), 120, seed, replaying=name)
                    finish(targets, seed)
                finally:
                    for t in targets:
                        if t.alive():
                            t.proc.kill()
        print("datagrams: replayed %d regression file(s)" % len(files))

    with tempfile.TemporaryDirectory(prefix="fuzz-datagrams-") as wd:
        targets = start(wd, args.server, args.agent)
        rng = random.Random(seed)

        def stream():
            valid = requests(rng)
            while True:
                for _ in range(1000):
                    t = targets[rng.randrange(2)]
                    yield mutate(rng, rng.choice(valid)), t
                valid = requests(rng)  # fresh tokens, ids and blobs
        started = time.monotonic()
        try:
            run(targets, stream, args.seconds, seed)
            finish(targets, seed)
        finally:
            for t in targets:
                if t.alive():
                    t.proc.kill()
        took = time.monotonic() - started
        print("datagrams: seed %d, %.0f s: %d datagrams to the server, %d to the agent; "
              "nothing crashed, no sanitizer report" % (seed, took, targets[0].sent, targets[1].sent))


if __name__ == "__main__":
    main()
