#!/usr/bin/env python3
"""coapfleet-sim against a real coapfleet-server: a fleet of 50 simulated
nodes registers and reports health, the load generator's JSON, update jobs
installed by simulated nodes (succeeding and failing), a clean stop on
SIGINT, and the loopback-only rule.

The simulated nodes listen on 127.2.0.x:5683 (the simulator's default), so
this test takes the lock "sim_127_2".
"""
import json
import os
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def _find_sim():
    env = os.environ.get("COAPFLEET_SIM")
    if env:
        return env
    for build in ("build-sim", "build-it", "build"):
        candidate = os.path.join(h.REPO, build, "coapfleet-sim")
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("set COAPFLEET_SIM to the coapfleet-sim executable")


SIM_BIN = _find_sim()


def udp_rx_queue(port):
    """Bytes queued in the receive buffer of the UDP socket bound to `port`
    on 127.0.0.1, as the kernel counts them (/proc/net/udp)."""
    local = "0100007F:%04X" % port
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local:
                return int(fields[4].split(":")[1], 16)
    raise AssertionError("no UDP socket on 127.0.0.1:%d in /proc/net/udp" % port)


class SimTest(h.ServerTestCase):
    """A fresh server per test: the fleet-wide counts are checked."""

    start_server = False

    def setUp(self):
        self.server = self.new_server()
        self.sims = []

    def tearDown(self):
        for p in self.sims:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            for stream in (p.stdout, p.stderr):
                if stream:
                    stream.close()

    # -- helpers ---------------------------------------------------------------------

    def sim_args(self, mode, *args):
        return [SIM_BIN, mode, "--server", "coap://%s:%d" % (h.HOST, self.server.port)] + list(args)

    def run_sim(self, mode, *args, timeout=60):
        """Runs the simulator to its end; returns (returncode, stdout, stderr)."""
        p = subprocess.run(self.sim_args(mode, *args), capture_output=True, text=True,
                           timeout=timeout, preexec_fn=h._die_with_parent)
        return p.returncode, p.stdout, p.stderr

    def run_json(self, mode, *args, timeout=60):
        rc, out, err = self.run_sim(mode, *(list(args) + ["--json", "-q"]), timeout=timeout)
        self.assertEqual(rc, 0, "coapfleet-sim %s failed:\n%s\n%s" % (mode, out, err))
        lines = [line for line in out.splitlines() if line.startswith("{")]
        self.assertEqual(len(lines), 1, out)
        return json.loads(lines[0])

    def start_sim(self, mode, *args):
        p = subprocess.Popen(self.sim_args(mode, *args), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                             preexec_fn=h._die_with_parent)
        self.sims.append(p)
        return p

    def stop_sim(self, p, timeout=15):
        """SIGINT, then the JSON summary it prints on the way out."""
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=timeout)
        self.assertEqual(p.returncode, 0, "sim ended with %r:\n%s\n%s" % (p.returncode, out, err))
        lines = [line for line in out.splitlines() if line.startswith("{")]
        self.assertEqual(len(lines), 1, out + err)
        return json.loads(lines[0])

    def sim_nodes(self):
        r = self.server.coap("get", "nodes", wait=20)
        self.assertEqual(r.code, "2.05", r)
        return [n for n in r.json()["nodes"] if n["node_id"].startswith("sim-")]

    def wait_online(self, count, timeout=20):
        def ready():
            nodes = self.sim_nodes()
            online = [n for n in nodes if n["status"] == "online" and n.get("health")]
            return len(online) == count and online
        return h.deadline_poll(ready, timeout, interval=0.3,
                               what="%d simulated nodes online with health" % count)

    def create_job(self, script="true"):
        r = self.server.coap("post", "updates", {
            "name": "sim-script", "version": "1", "package_type": "script",
            "target_nodes": ["all"], "script": script})
        self.assertEqual(r.code, "2.01", r)
        return r.json()["job_id"]

    def job_status(self, job_id):
        r = self.server.coap("post", "updates", {"action": "status", "job_id": job_id}, wait=20)
        self.assertEqual(r.code, "2.05", r)
        return r.json()

    def run_job(self, nodes, fail_rate):
        """Installs a script job on a running fleet; returns (status, sim summary)."""
        p = self.start_sim("fleet", "--nodes", str(nodes), "--interval", "1",
                           "--install-seconds", "1", "--fail-rate", str(fail_rate),
                           "--duration", "120", "--json", "-q")
        self.wait_online(nodes)
        job_id = self.create_job()
        r = self.server.coap("post", "updates", {"action": "install", "job_id": job_id})
        self.assertEqual(r.code, "2.04", r)
        final = ("completed", "failed", "partially_failed", "cancelled")
        status = h.deadline_poll(
            lambda: (lambda s: s if s["status"] in final else None)(self.job_status(job_id)),
            30, interval=0.3, what="job %s finished" % job_id)
        return status, self.stop_sim(p)

    # -- tests -----------------------------------------------------------------------

    def test_fleet_registers_and_reports_health(self):
        t0 = time.monotonic()
        summary = self.run_json("fleet", "--nodes", "50", "--interval", "1", "--duration", "5")
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(summary["mode"], "fleet")
        self.assertEqual(summary["registered"], 50, summary)
        self.assertEqual(summary["register_codes"].get("2.01"), 50, summary)
        # 50 nodes, one report a second each for ~5 s.
        self.assertGreaterEqual(summary["health_answered"], 150, summary)
        self.assertEqual(summary["lost"], 0, summary)
        self.assertEqual(summary["codes"].get("4.04", 0), 0, summary)
        nodes = self.wait_online(50)
        ids = sorted(n["node_id"] for n in nodes)
        self.assertEqual(ids, ["sim-%05d" % i for i in range(1, 51)])
        for n in nodes:
            self.assertTrue(n["ip_address"].startswith("127.2.0."), n)
            self.assertEqual(n["port"], 5683, n)
            health = n["health"]
            for key in ("cpu_percent", "memory_percent", "disk_percent"):
                self.assertTrue(0 <= health[key] <= 100, health)
            self.assertIn("docker", health["services_status"])
        fleet = self.server.coap("get", "health").json()
        self.assertEqual(fleet["online_nodes"], 50, fleet)
        self.assertEqual(fleet["total_nodes"], 50, fleet)

    def test_load_json(self):
        summary = self.run_json("load", "--nodes", "20", "--duration", "3")
        self.assertEqual(summary["mode"], "load")
        self.assertEqual(summary["registered"], 20, summary)
        self.assertGreater(summary["throughput"], 0, summary)
        self.assertGreater(summary["answered"], 0, summary)
        self.assertIn("p99_ms", summary)
        self.assertGreater(summary["p99_ms"], 0, summary)
        self.assertGreaterEqual(summary["max_ms"], summary["p99_ms"], summary)
        self.assertGreaterEqual(summary["p99_ms"], summary["p50_ms"], summary)
        self.assertGreater(summary["codes"].get("2.04", 0), 0, summary)
        self.assertEqual(summary["losses"], 0, summary)
        self.assertEqual(sum(summary["codes"].values()), summary["answered"], summary)

    def test_backlog_refuses_every_report_while_the_database_stalls(self):
        """While more answered reports than --shed-backlog have not reached
        the persistence actor, every PUT /health is refused with 5.03 +
        Max-Age and a JSON error. Here another connection holds the
        database's write lock under a load of 1,000 nodes x 8 requests, so
        the persistence actor waits in a commit while reports pile up. The
        simulated nodes back off and lose nothing; once the database is free
        reports are stored again and every node's latest health reaches the
        database (a failed commit keeps it for the next)."""
        server = self.new_server(extra=["--shed-busy-ms", "0", "--shed-backlog", "256",
                                        "--shed-max-age", "1"], name="backlog")
        r = server.coap("post", "nodes", {"node_id": "probe", "ip_address": "127.0.0.1",
                                          "hostname": "probe"})
        self.assertEqual(r.code, "2.01", r)
        report = {"node_id": "probe", "overall_healthy": True}
        load = subprocess.Popen(
            [SIM_BIN, "load", "--server", "coap://%s:%d" % (h.HOST, server.port),
             "--nodes", "1000", "--inflight", "8", "--duration", "10", "--json", "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=h._die_with_parent)
        self.sims.append(load)
        h.deadline_poll(lambda: server.raw("get", "health").json().get("total_nodes") == 1001,
                        30, interval=0.2, what="1,000 simulated nodes registered")
        lock = sqlite3.connect(server.db, isolation_level=None, timeout=30)
        try:
            lock.execute("BEGIN EXCLUSIVE")

            def refused():
                r = server.raw("put", "health", report, timeout=5)
                return r if r.code == "5.03" else None
            busy = h.deadline_poll(refused, 20, interval=0.05, what="a 5.03 while the "
                                   "database is locked")
        finally:
            lock.execute("COMMIT")
            lock.close()
        self.assertEqual(h.decode_uint(busy.option_value(h.OPT_MAX_AGE)), 1, busy.options)
        self.assertEqual(busy.content_format, 50)
        self.assertIn("overloaded", busy.json()["error"])
        self.assertIn("too many: refusing all", server.log_text())

        out, err = load.communicate(timeout=60)
        self.assertEqual(load.returncode, 0, out + err)
        summary = json.loads([l for l in out.splitlines() if l.startswith("{")][0])
        self.assertGreater(summary["codes"].get("5.03", 0), 0, summary)
        self.assertGreater(summary["codes"].get("2.04", 0), 0, summary)
        self.assertGreater(summary["backoffs"], 0, summary)
        self.assertEqual(summary["lost"], 0, summary)
        h.deadline_poll(lambda: server.raw("put", "health", report, timeout=5).code == "2.04",
                        15, interval=0.2, what="PUT /health stored again after the load")

        def stored_health():
            db = sqlite3.connect("file:%s?mode=ro" % server.db, uri=True, timeout=30)
            try:
                return db.execute("SELECT count(*) FROM health").fetchone()[0] == 1001
            finally:
                db.close()
        h.deadline_poll(stored_health, 20, interval=0.2,
                        what="the health of 1,001 nodes in the database")

    def test_a_full_socket_refuses_a_share_with_503_and_max_age(self):
        """While its socket has not been empty for --shed-busy-ms and holds
        half its buffer, the server refuses a growing share (at most half)
        of PUT /health with 5.03 + Max-Age and a JSON error. The server is
        stopped (SIGSTOP) while this test fills its socket's receive queue
        with reports (the kernel's own count, /proc/net/udp, says when it is
        full); once it goes on, some are refused and some stored, and after
        the queue is drained a report is stored at once."""
        server = self.new_server(extra=["--shed-busy-ms", "5", "--shed-max-age", "1"],
                                 name="socket")
        r = server.coap("post", "nodes", {"node_id": "probe", "ip_address": "127.0.0.1",
                                          "hostname": "probe"})
        self.assertEqual(r.code, "2.01", r)
        buffer = int(re.search(r"receive buffer (\d+) KiB", server.log_text()).group(1)) * 1024
        payload = json.dumps({"node_id": "probe", "overall_healthy": True}).encode()
        options = h.request_options("health", content_format=50)

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        for opt in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, 32 << 20)
                break
            except OSError:
                continue
        sock.bind((h.HOST, 0))
        sock.settimeout(0.2)
        answers, done = [], threading.Event()

        def read():
            while not done.is_set():
                try:
                    m = h.decode_message(sock.recv(2048))
                except (socket.timeout, OSError):
                    continue
                if m is not None:
                    answers.append(m)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        self.addCleanup(done.set)

        sent, queued = 0, 0
        server.proc.send_signal(signal.SIGSTOP)
        try:
            while sent < 60000:
                for _ in range(250):
                    sock.sendto(h.encode_message(1, h.METHODS["put"], sent & 0xFFFF,
                                                 struct.pack("!I", sent), options, payload),
                                (h.HOST, server.port))
                    sent += 1
                before, queued = queued, udp_rx_queue(server.port)
                if queued >= 0.9 * buffer or queued == before:  # full: the kernel drops
                    break
        finally:
            server.proc.send_signal(signal.SIGCONT)
        self.assertGreaterEqual(queued, buffer // 2, "the receive queue held %d bytes of %d "
                                "after %d reports" % (queued, buffer, sent))

        def both():
            codes = {m.code_text for m in list(answers)}
            return {"5.03", "2.04"} <= codes
        h.deadline_poll(both, 30, interval=0.1, what="5.03 and 2.04 answers to the queued "
                        "reports")
        refused = [m for m in list(answers) if m.code_text == "5.03"]
        for m in refused[:20]:
            self.assertEqual(h.decode_uint(m.option(h.OPT_MAX_AGE)), 1, m)
            self.assertEqual(h.decode_uint(m.option(h.OPT_CONTENT_FORMAT)), 50, m)
            self.assertIn("overloaded", json.loads(m.payload)["error"], m)
        h.deadline_poll(lambda: udp_rx_queue(server.port) == 0, 30, interval=0.1,
                        what="the server's receive queue drained")
        r = server.raw("put", "health", {"node_id": "probe", "overall_healthy": True},
                       timeout=5)
        self.assertEqual(r.code, "2.04", r)
        self.assertIn("overloaded: refusing", server.log_text())

    def test_load_text_and_rate(self):
        rc, out, err = self.run_sim("load", "--nodes", "10", "--duration", "2", "--rate", "200")
        self.assertEqual(rc, 0, out + err)
        for word in ("throughput", "latency", "p50", "p99", "codes", "2.04", "losses"):
            self.assertIn(word, out)
        sent = int(out.split("requests")[1].split()[0])
        self.assertTrue(300 <= sent <= 420, out)  # 200/s for 2 s, paced

    def test_job_completes(self):
        status, summary = self.run_job(50, 0)
        self.assertEqual(status["status"], "completed", status)
        self.assertEqual(set(status["node_statuses"].values()), {"succeeded"}, status)
        self.assertEqual(len(status["node_statuses"]), 50)
        self.assertEqual(summary["jobs_succeeded"], 50, summary)
        self.assertEqual(summary["notifications"], 50, summary)
        self.assertEqual(summary["reports_answered"], 150, summary)

    def test_job_fails_with_fail_rate_one(self):
        status, summary = self.run_job(20, 1.0)
        self.assertEqual(status["status"], "failed", status)
        self.assertEqual(set(status["node_statuses"].values()), {"failed"}, status)
        for n in status["nodes"]:
            self.assertEqual(n["result"], 8, n)
            self.assertIn("simulated failure", n["error_message"] or "", n)
        self.assertEqual(summary["jobs_failed"], 20, summary)

    def test_refuses_a_non_loopback_server(self):
        p = subprocess.run([SIM_BIN, "load", "--server", "coap://192.0.2.1:5683", "--nodes", "1",
                            "--duration", "1"], capture_output=True, text=True, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("loopback", p.stderr)

    def test_clear_error_without_a_server(self):
        port = h.free_port()
        p = subprocess.run([SIM_BIN, "fleet", "--server", "coap://127.0.0.1:%d" % port,
                            "--nodes", "2", "--duration", "1"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("is the server up?", p.stderr)

    def test_help_names_units_and_defaults(self):
        for mode, words in (("fleet", ("--interval", "seconds", "--install-seconds",
                                       "--fail-rate", "--duration")),
                            ("load", ("--inflight", "--rate", "--target", "libcoap",
                                      "--no-register", "--json"))):
            p = subprocess.run([SIM_BIN, mode, "--help"], capture_output=True, text=True,
                               timeout=20)
            self.assertEqual(p.returncode, 0)
            for w in words:
                self.assertIn(w, p.stdout, "%s --help lacks %s" % (mode, w))


if __name__ == "__main__":
    h.main()
