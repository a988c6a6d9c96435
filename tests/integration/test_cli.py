#!/usr/bin/env python3
"""The operator CLI (`coapfleet`) against a real coapfleet-server on a free
loopback port: --json answers equal what coap-client gets, the exit codes
(0 ok, 1 job failed, 2 usage, 3 CoAP error, 4 no answer), block-wise artifact
upload with SHA-256 check, discovery, and `update run` / `update watch` with a
fake agent driven by reports. The watch logic is also checked against a small
fake observable endpoint, so it is covered whatever the server supports.

Environment: COAPFLEET_CLI (the coapfleet executable) and COAPFLEET_SERVER_BIN
(the server executable, as for every integration test). The CLI reads
COAPFLEET_SERVER as its default server URI: the tests never inherit one and
always pass the URI explicitly (through --server or that variable)."""
import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def _find_cli():
    env = os.environ.get("COAPFLEET_CLI")
    if env:
        return env
    for build in ("build-cli", "build-it", "build"):
        candidate = os.path.join(h.REPO, build, "coapfleet")
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("set COAPFLEET_CLI to the coapfleet executable")


CLI = _find_cli()


class CliResult:
    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.stdout)

    def __repr__(self):
        return "CliResult(rc=%r, %.2f s, stdout=%r, stderr=%r)" % (
            self.rc, self.elapsed, self.stdout[-600:], self.stderr[-600:])


def cli_env(server_url=None):
    env = dict(os.environ)
    env.pop("COAPFLEET_SERVER", None)  # an operator's own default server
    env.pop("NO_COLOR", None)
    if server_url:
        env["COAPFLEET_SERVER"] = server_url
    return env


def run_cli(args, server_url=None, timeout=60, stdin=None):
    """Runs the CLI (stdout piped: plain output) and returns a CliResult."""
    start = time.monotonic()
    p = subprocess.run([CLI] + list(args), capture_output=True, text=True, timeout=timeout,
                       env=cli_env(server_url), input=stdin or "")
    return CliResult(p, time.monotonic() - start)


class LineReader:
    """Collects a running process's stdout lines in a thread, so a test can
    wait for a line with a deadline."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def wait_for(self, predicate, timeout, what):
        return h.deadline_poll(lambda: next((l for l in self.snapshot() if predicate(l)), None),
                               timeout, what=what)


def start_cli(args, server_url):
    proc = subprocess.Popen([CLI] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=cli_env(server_url))
    return proc, LineReader(proc)


def stop(proc):
    """Kills a CLI process still running and closes its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)
    for stream in (proc.stdout, proc.stderr):
        if stream and not stream.closed:
            try:
                stream.close()
            except OSError:
                pass


def finish(proc, reader, timeout):
    """Waits for the process and its output; kills it on timeout. Returns
    (rc, stderr)."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise AssertionError("%s did not end within %d s" % (proc.args, timeout))
    reader.thread.join(10)
    err = proc.stderr.read()
    stop(proc)
    return proc.returncode, err


# -- the CLI against the real server ----------------------------------------------------

class CliTest(h.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.url = "coap://%s:%d" % (h.HOST, cls.server.port)
        ip = "127.1.%d.%d" % (random.randint(100, 199), random.randint(2, 250))
        cls.agent = cls.new_agent(ip, h.free_port(ip))
        r = cls.server.coap("post", "nodes", {"node_id": "cli-node", "hostname": "cli-host",
                                              "ip_address": cls.agent.ip,
                                              "port": cls.agent.port})
        assert r.code == "2.01", r
        r = cls.server.coap("put", "health", {"node_id": "cli-node", "overall_healthy": False,
                                              "cpu_percent": 12.5, "memory_percent": 40.0,
                                              "disk_percent": 10.0,
                                              "error_messages": ["Service docker is not running"]})
        assert r.code == "2.04", r

    def cli(self, *args, **kw):
        return run_cli(["--server", self.url] + list(args), **kw)

    def ok(self, *args, **kw):
        r = self.cli(*args, **kw)
        self.assertEqual(r.rc, 0, r)
        return r

    def coap_json(self, method, path, body=None):
        r = self.server.coap(method, path, body)
        self.assertTrue(r.code and r.code.startswith("2."), r)
        return r.json()

    def create_job(self, *extra):
        r = self.ok("update", "create", "--name", "cli-tools", "--version", "1.0", "--type", "pip",
                    "--packages", "rich==13.0,click", *extra)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 1, r)
        return lines[0]

    def report(self, job, node, status, **extra):
        body = {"action": "report", "job_id": job, "node_id": node, "status": status}
        body.update(extra)
        r = self.server.coap("post", "updates", body)
        self.assertEqual(r.code, "2.04", r)

    def observe_supported(self, job):
        """True when the server serves /updates/<job>/status observably."""
        r = h.coap(self.server.url("updates/%s/status" % job), "get", extra=("-s", "1"))
        return r.code == "2.05" and "Observe:" in r.stdout

    # -- --json equals what coap-client gets ---------------------------------------------

    def test_json_nodes_and_node(self):
        r = self.ok("nodes", "--json")
        self.assertEqual(r.json(), self.coap_json("get", "nodes"))
        r = self.ok("nodes", "--status", "online", "--json")
        self.assertEqual([n["node_id"] for n in r.json()["nodes"]], ["cli-node"])
        for verdict in ("healthy", "unhealthy"):
            r = self.ok("nodes", "--health", verdict, "--json")
            self.assertEqual(r.json(), self.coap_json("get", "nodes?health=" + verdict))
        r = self.ok("node", "cli-node", "--json")
        self.assertEqual(r.json()["node_id"], "cli-node")
        self.assertEqual(r.json()["ip_address"], self.agent.ip)

    def test_json_health(self):
        mine = self.ok("health", "--json").json()
        theirs = self.coap_json("get", "health")
        for volatile in ("timestamp", "server"):
            self.assertIn(volatile, mine)
            mine.pop(volatile)
            theirs.pop(volatile)
        self.assertEqual(mine, theirs)

    def test_json_update_list_and_status(self):
        job = self.create_job("--nodes", "cli-node")
        listed = self.ok("update", "list", "--json").json()
        self.assertEqual(listed, self.coap_json("get", "updates"))
        self.assertIn(job, [u["job_id"] for u in listed["updates"]])
        mine = self.ok("update", "status", job, "--json").json()
        self.assertEqual(mine, self.coap_json("post", "updates",
                                              {"action": "status", "job_id": job}))
        self.assertEqual(mine["job_id"], job)

    def test_tables_for_people(self):
        r = self.ok("nodes")
        head, *rows = r.stdout.splitlines()
        self.assertEqual(head.split()[:4], ["NODE", "HOST", "ADDRESS", "STATUS"])
        row = next(l for l in rows if l.startswith("cli-node"))
        self.assertIn("%s:%d" % (self.agent.ip, self.agent.port), row)
        self.assertIn("online", row)
        self.assertIn("unhealthy: Service docker is not running", row)
        self.assertRegex(row, r"\d+s ago")
        self.assertNotIn("\033[", r.stdout)  # no colours when piped
        r = self.ok("health")
        self.assertIn("Service docker is not running", r.stdout)
        r = self.ok("node", "cli-node")
        self.assertIn("cli-host", r.stdout)

    # -- jobs -------------------------------------------------------------------------------

    def test_create_install_status_cancel(self):
        job = self.create_job("--nodes", "cli-node", "--timeout-seconds", "300")
        spec = next(u for u in self.coap_json("get", "updates")["updates"] if u["job_id"] == job)
        self.assertEqual(spec["packages"], ["rich==13.0", "click"])
        self.assertEqual(spec["target_nodes"], ["cli-node"])
        r = self.ok("update", "install", job)
        self.assertIn("triggered on 1 node", r.stdout)
        h.deadline_poll(lambda: [b for b in self.agent.bodies() if b.get("job_id") == job], 20,
                        what="the agent's notification")
        self.report(job, "cli-node", "downloading", progress=40)
        r = self.ok("update", "status", job)
        row = next(l for l in r.stdout.splitlines() if l.startswith("cli-node"))
        self.assertIn("downloading", row)
        self.assertIn("40%", row)
        self.assertIn("in_progress", r.stdout.splitlines()[-1])
        self.ok("update", "cancel", job)
        st = self.coap_json("post", "updates", {"action": "status", "job_id": job})
        self.assertEqual(st["status"], "cancelled")

    def test_file_job_options(self):
        r = self.cli("update", "create", "--name", "fw", "--version", "2", "--type", "file",
                     "--artifact", "no-such-artifact.bin", "--target", "/opt/fw.bin",
                     "--mode", "0644")
        self.assertEqual(r.rc, 3, r)  # the server: 4.04 unknown artifact
        self.assertIn("4.04", r.stderr)

    def test_unknown_job_is_a_coap_error(self):
        for args in (["update", "status", "no-such-job"], ["update", "install", "no-such-job"],
                     ["update", "cancel", "no-such-job"], ["node", "no-such-node"]):
            r = self.cli(*args)
            self.assertEqual(r.rc, 3, (args, r))
            self.assertIn("4.04", r.stderr)
            self.assertEqual(r.stdout, "")
        r = self.cli("update", "status", "no-such-job")
        self.assertIn("job not found", r.stderr)

    # -- exit codes 2 and 4 ---------------------------------------------------------------

    def test_usage_errors_exit_2(self):
        for args in ([], ["no-such-command"], ["update"], ["update", "status"],
                     ["update", "create", "--name", "x"],
                     ["update", "create", "--name", "x", "--version", "1", "--type", "rpm"],
                     ["update", "create", "--name", "x", "--version", "1", "--type", "file",
                      "--artifact", "a.bin"],
                     ["nodes", "--status", "sleeping"], ["nodes", "--no-such-option"],
                     ["--timeout", "-1", "nodes"], ["--timeout", "soon", "nodes"],
                     ["artifact", "upload", "/no/such/file"],
                     ["--server", "http://127.0.0.1:5683", "test"],
                     ["--server", "coap://example.org", "test"]):
            r = self.cli(*args)
            self.assertEqual(r.rc, 2, (args, r))
            self.assertTrue(r.stderr.strip(), (args, r))

    def test_help_exits_0_with_exit_codes(self):
        for args in (["--help"], ["update", "--help"], ["update", "run", "--help"]):
            r = self.cli(*args)
            self.assertEqual(r.rc, 0, (args, r))
            self.assertIn("Exit codes:", r.stdout)
            self.assertIn("no answer", r.stdout)

    def test_no_answer_exits_4_within_timeout(self):
        # Nothing bound there: ICMP port unreachable ends it early.
        ip, port = h.silent_address()
        r = run_cli(["--server", "coap://%s:%d" % (ip, port), "--timeout", "2", "nodes"])
        self.assertEqual(r.rc, 4, r)
        self.assertIn("no answer from coap://%s:%d" % (ip, port), r.stderr)
        self.assertLess(r.elapsed, 2 + 3)
        # A socket that swallows everything: the full timeout, then 4.
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sink.bind((h.HOST, 0))
            url = "coap://%s:%d" % sink.getsockname()
            r = run_cli(["--server", url, "--timeout", "1.5", "health"])
            self.assertEqual(r.rc, 4, r)
            self.assertIn("no answer from %s within 1.5 s" % url, r.stderr)
            self.assertGreaterEqual(r.elapsed, 1.4)
            self.assertLess(r.elapsed, 1.5 + 3)
        finally:
            sink.close()

    def test_server_from_environment(self):
        r = run_cli(["test"], server_url=self.url)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.stdout.strip(), "Test resource working")

    # -- artifacts ----------------------------------------------------------------------------

    def test_artifact_upload_2mb(self):
        data = os.urandom(2 * 1024 * 1024 + 123)
        path = os.path.join(self.tmp, "firmware.bin")
        with open(path, "wb") as f:
            f.write(data)
        digest = hashlib.sha256(data).hexdigest()
        r = self.ok("artifact", "upload", path, timeout=120)
        self.assertIn(digest, r.stdout)
        self.assertIn("firmware.bin", r.stdout)
        r = self.ok("artifact", "upload", path, "--name", "fw-copy.bin", "--json", timeout=120)
        self.assertEqual(r.json()["sha256"], digest)
        self.assertEqual(r.json()["size"], len(data))
        listed = {a["name"]: a for a in self.ok("artifact", "list", "--json").json()["artifacts"]}
        for name in ("firmware.bin", "fw-copy.bin"):
            self.assertEqual(listed[name]["sha256"], digest)
        r = self.ok("artifact", "list")
        self.assertIn("firmware.bin", r.stdout)
        self.assertIn(digest, r.stdout)

    def test_artifact_upload_refused_name(self):
        path = os.path.join(self.tmp, "small.bin")
        with open(path, "wb") as f:
            f.write(b"x" * 100)
        r = self.cli("artifact", "upload", path, "--name", "bad name")
        self.assertEqual(r.rc, 3, r)
        self.assertIn("4.00", r.stderr)

    # -- the server itself --------------------------------------------------------------------

    def test_discover(self):
        r = self.ok("discover")
        paths = [l.split()[0] for l in r.stdout.splitlines()[1:]]
        for p in ("/test", "/health", "/nodes", "/updates", "/system"):
            self.assertIn(p, paths)
        links = self.ok("discover", "--rt", "coapfleet.nodes", "--json").json()
        self.assertEqual([l["path"] for l in links], ["/nodes"])
        self.assertEqual(links[0]["ct"], "50")

    def test_test_and_system_status(self):
        self.assertEqual(self.ok("test").stdout.strip(), "Test resource working")
        r = self.ok("system", "status", "--json")
        self.assertEqual(r.json()["status"], "running")
        self.assertIn("database", self.ok("system", "status").stdout)

    def test_system_restart_and_shutdown(self):
        other = self.new_server(name="restarted")
        url = "coap://%s:%d" % (h.HOST, other.port)
        r = run_cli(["--server", url, "system", "restart"])
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.stdout.strip(), r)
        # The same process starts again (re-executes itself) and says so.
        h.deadline_poll(lambda: other.log_text().count("listening on") >= 2, 20,
                        what="the server to start again")
        h.deadline_poll(other.answers_test, 20, what="the restarted server")
        self.assertTrue(other.alive())
        r = run_cli(["--server", url, "system", "shutdown", "--json"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json()["action"], "shutdown")
        self.assertEqual(other.wait_exit(20), 0, other.log_tail())

    # -- update run (needs observable /updates/<job>/status) ----------------------------------

    def run_update(self, final_steps):
        probe = self.create_job("--nodes", "cli-node")
        self.assertTrue(self.observe_supported(probe),
                        "the server does not serve /updates/<job>/status observably "
                        "(coap-client -s 1 got no Observe option)")
        proc, out = start_cli(["--server", self.url, "update", "run", "--name", "cli-run",
                               "--version", "2", "--type", "pip", "--packages", "rich",
                               "--nodes", "cli-node"], self.url)
        try:
            first = out.wait_for(lambda l: l.startswith("job "), 20, what="the job line")
            job = first.split()[1]
            h.deadline_poll(lambda: [b for b in self.agent.bodies() if b.get("job_id") == job],
                            20, what="the agent's notification")
            out.wait_for(lambda l: " in_progress " in l and "notified=1" in l, 20,
                         what="a notification with the node notified")
            for status, extra in final_steps:
                self.report(job, "cli-node", status, **extra)
            rc, err = finish(proc, out, 30)
        finally:
            stop(proc)
        return rc, out.snapshot(), err, job

    def test_update_run_succeeds(self):
        rc, lines, err, job = self.run_update([("downloading", {"progress": 50}),
                                               ("downloaded", {}), ("installing", {}),
                                               ("succeeded", {"result": 1})])
        self.assertEqual(rc, 0, (lines, err))
        self.assertTrue(any("succeeded=1" in l for l in lines), lines)
        self.assertIn("completed", lines[-1])

    def test_update_run_fails(self):
        rc, lines, err, job = self.run_update([("downloading", {}),
                                               ("failed", {"result": 8,
                                                           "error_message": "pip exited 1"})])
        self.assertEqual(rc, 1, (lines, err))
        self.assertEqual(len([l for l in lines if "cli-node failed: pip exited 1" in l]), 1, lines)

    def test_watch_unknown_job_exits_3(self):
        r = self.cli("update", "watch", "no-such-job")
        self.assertEqual(r.rc, 3, r)
        self.assertIn("4.04", r.stderr)

    def test_update_run_checks_its_targets_before_creating_anything(self):
        before = len(self.coap_json("get", "updates")["updates"])
        r = self.cli("update", "run", "--name", "ghosts", "--version", "1", "--type", "pip",
                     "--packages", "rich", "--nodes", "cli-node,ghost-1,ghost-2")
        self.assertEqual(r.rc, 3, r)
        self.assertIn("not registered: ghost-1, ghost-2; nothing was created", r.stderr)
        self.assertEqual(len(self.coap_json("get", "updates")["updates"]), before)

    def test_node_history_delete_and_artifact_delete(self):
        job = self.create_job("--nodes", "cli-node")
        self.ok("update", "install", job)
        h.deadline_poll(lambda: [b for b in self.agent.bodies() if b.get("job_id") == job], 20,
                        what="the agent's notification")
        self.report(job, "cli-node", "failed", result=8, error_message="pip exited 1")
        r = self.ok("node", "history", "cli-node")
        rows = [l for l in r.stdout.splitlines() if job in l]
        self.assertTrue(any("failed" in l and "pip exited 1" in l for l in rows), r.stdout)
        self.assertTrue(any("notified" in l for l in rows), r.stdout)
        r = self.ok("--json", "node", "history", "cli-node", "--limit", "1")
        self.assertEqual(json.loads(r.stdout.splitlines()[0])["node_id"], "cli-node")
        r = self.ok("update", "history", job)
        rows = [l for l in r.stdout.splitlines() if "cli-node" in l]
        self.assertTrue(any("failed" in l and "pip exited 1" in l for l in rows), r.stdout)
        self.assertIn("NODE", r.stdout.splitlines()[0])
        r = self.server.coap("post", "nodes", {"node_id": "gone-node", "ip_address": "127.0.0.1"})
        self.assertEqual(r.code, "2.01", r)
        r = self.ok("node", "delete", "gone-node")
        self.assertIn("node gone-node deleted", r.stdout)
        r = self.cli("node", "gone-node")
        self.assertEqual(r.rc, 3, r)
        r = self.cli("node", "delete", "gone-node")
        self.assertEqual(r.rc, 3, r)
        self.assertIn("4.04", r.stderr)
        r = self.cli("node")
        self.assertEqual(r.rc, 2, r)  # an id or a subcommand
        r = self.cli("artifact", "delete", "no-such.bin")
        self.assertEqual(r.rc, 3, r)

    def test_cancel_force_and_retry(self):
        job = self.create_job("--nodes", "cli-node")
        self.ok("update", "install", job)
        h.deadline_poll(lambda: [b for b in self.agent.bodies() if b.get("job_id") == job], 20,
                        what="the agent's notification")
        self.report(job, "cli-node", "failed", result=8, error_message="pip exited 1")
        r = self.ok("update", "retry", job)
        self.assertIn("1 failed, timed-out or skipped nodes start another attempt", r.stdout)
        st = self.coap_json("post", "updates", {"action": "status", "job_id": job})
        self.assertEqual(st["nodes"][0]["attempt"], 2, st)
        self.report(job, "cli-node", "installing", attempt=2)
        r = self.ok("update", "cancel", "--force", job)
        self.assertIn("1 nodes told to stop (running installs are stopped)", r.stdout)
        h.deadline_poll(lambda: [b for b in self.agent.bodies()
                                 if b.get("job_id") == job and b.get("action") == "cancel"
                                 and b.get("force") is True], 20, what="the forced cancel")
        st = self.coap_json("post", "updates", {"action": "status", "job_id": job})
        self.assertEqual((st["status"], st["node_statuses"]["cli-node"]),
                         ("cancelled", "installing"))


class WatchRestartTest(h.ServerTestCase):
    """`update watch` goes on across a server restart, graceful or kill -9."""

    fresh_per_test = True

    def start_job(self):
        ip = "127.1.%d.%d" % (random.randint(100, 199), random.randint(2, 250))
        agent = self.new_agent(ip, h.free_port(ip))
        r = self.server.coap("post", "nodes", {"node_id": "w-node", "ip_address": agent.ip,
                                               "port": agent.port})
        self.assertEqual(r.code, "2.01", r)
        r = self.server.coap("post", "updates", {"name": "w", "version": "1",
                                                 "package_type": "script", "script": "true",
                                                 "target_nodes": ["w-node"]})
        job = r.json()["job_id"]
        r = self.server.coap("post", "updates", {"action": "install", "job_id": job})
        self.assertEqual(r.code, "2.04", r)
        url = "coap://%s:%d" % (h.HOST, self.server.port)
        proc, out = start_cli(["--server", url, "update", "watch", job], url)
        self.addCleanup(stop, proc)
        out.wait_for(lambda l: l.startswith("job "), 20, what="the first line")
        return job, proc, out

    def finish_after(self, restart):
        job, proc, out = self.start_job()
        restart()
        r = self.server.coap("post", "updates", {"action": "report", "job_id": job,
                                                 "node_id": "w-node", "status": "succeeded"})
        self.assertEqual(r.code, "2.04", r)
        started = time.monotonic()
        rc, err = finish(proc, out, 30)
        self.assertEqual(rc, 0, (out.snapshot(), err))
        self.assertIn("completed", out.snapshot()[-1])
        return time.monotonic() - started

    def test_graceful_restart(self):
        def restart():
            self.server.stop()
            self.server.start()
        self.finish_after(restart)

    def test_kill9_and_restart(self):
        def restart():
            self.server.kill9()
            self.server.start()
        took = self.finish_after(restart)
        self.assertLess(took, 15, "the watch noticed the restarted server late")


# -- the watch logic against a fake observable endpoint ----------------------------------

class FakeObservable:
    """A CoAP endpoint on 127.0.0.1 that serves one observable path: a GET
    with Observe=0 registers (answered piggybacked with the current state and
    an Observe option), set() sends every observer a CON notification, a GET
    with Observe=1 or an RST deregisters (recorded in .deregistered)."""

    def __init__(self, path):
        self.path = path.strip("/")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((h.HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.body = b""
        self.observers = {}  # (addr, token) -> True
        self.deregistered = []
        self.registrations = 0
        self.max_age = None  # seconds: sent as Max-Age with every 2.05
        self.silent = False  # True: a dead server (answers nothing)
        self.seq = 2
        self.mid = random.randint(0, 0xFFFF)
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "coap://%s:%d" % (h.HOST, self.port)

    def close(self):
        self.stopped = True
        self.sock.close()

    def observer_count(self):
        with self.lock:
            return len(self.observers)

    def _options(self, code):
        opts = [(h.OPT_CONTENT_FORMAT, h.encode_uint(50))]
        if code == 0x45:
            opts.append((6, h.encode_uint(self.seq)))
            if self.max_age is not None:
                opts.append((h.OPT_MAX_AGE, h.encode_uint(self.max_age)))
        return opts

    def set(self, state, code=0x45):
        """New representation (a dict) or, with code 0x84, the end (4.04)."""
        with self.lock:
            self.seq += 1
            self.code = code  # what a new request gets too (a deleted job stays 4.04)
            self.body = json.dumps(state).encode()
            for addr, token in list(self.observers):
                self.mid = (self.mid + 1) & 0xFFFF
                self.sock.sendto(h.encode_message(h.CON, code, self.mid, token,
                                                  self._options(code), self.body), addr)
            if code != 0x45:
                self.observers.clear()

    def _serve(self):
        while not self.stopped:
            try:
                data, addr = self.sock.recvfrom(65536)
            except OSError:
                return
            msg = h.decode_message(data)
            if msg is None:
                continue
            with self.lock:
                if self.silent:
                    continue
                if msg.type == h.RST:
                    self.deregistered.append("rst")
                    self.observers = {k: v for k, v in self.observers.items() if k[0] != addr}
                    continue
                if msg.type != h.CON or msg.code != 1:
                    continue
                path = "/".join(v.decode() for n, v in msg.options if n == h.OPT_URI_PATH)
                observe = msg.option(6)
                if path != self.path:
                    reply = h.encode_message(h.ACK, 0x84, msg.mid, msg.token)
                elif observe is not None and h.decode_uint(observe) == 1:
                    self.deregistered.append("get")
                    self.observers.pop((addr, msg.token), None)
                    reply = h.encode_message(h.ACK, 0x45, msg.mid, msg.token,
                                             [(h.OPT_CONTENT_FORMAT, h.encode_uint(50))],
                                             self.body)
                elif getattr(self, "code", 0x45) != 0x45:
                    reply = h.encode_message(h.ACK, self.code, msg.mid, msg.token,
                                             [(h.OPT_CONTENT_FORMAT, h.encode_uint(50))],
                                             self.body)
                else:
                    if observe is not None:
                        self.observers[(addr, msg.token)] = True
                        self.registrations += 1
                    opts = self._options(0x45) if observe is not None else \
                        [(h.OPT_CONTENT_FORMAT, h.encode_uint(50))]
                    reply = h.encode_message(h.ACK, 0x45, msg.mid, msg.token, opts, self.body)
                self.sock.sendto(reply, addr)


def job_state(job, status, nodes):
    """A status representation as POST /updates {"action":"status"} has it."""
    names = ["pending", "notified", "downloading", "downloaded", "installing", "succeeded",
             "failed", "timed_out", "cancelled", "skipped"]
    counts = {n: 0 for n in names}
    for n in nodes:
        counts[n["status"]] += 1
    counts["total"] = len(nodes)
    done = sum(counts[n] for n in ("succeeded", "failed", "timed_out", "cancelled", "skipped"))
    return {"job_id": job, "status": status,
            "node_statuses": {n["node_id"]: n["status"] for n in nodes},
            "error_message": None, "counts": counts,
            "progress": int(100 * done / max(1, len(nodes))),
            "nodes": [dict({"progress": None, "result": 0, "error_message": None}, **n)
                      for n in nodes]}


class WatchLogicTest(unittest.TestCase):
    JOB = "fake-job-1"

    def setUp(self):
        self.fake = FakeObservable("updates/%s/status" % self.JOB)
        self.addCleanup(self.fake.close)

    def watch(self, *extra):
        proc, out = start_cli(["--server", self.fake.url, "--timeout", "5", "update", "watch",
                               self.JOB] + list(extra), self.fake.url)
        self.addCleanup(stop, proc)
        h.deadline_poll(lambda: self.fake.observer_count() == 1 or proc.poll() is not None, 10,
                        what="the watch to register")
        return proc, out

    def test_lines_failures_once_and_exit_1(self):
        a, b = {"node_id": "a", "status": "notified"}, {"node_id": "b", "status": "notified"}
        self.fake.set(job_state(self.JOB, "in_progress", [a, b]))
        proc, out = self.watch()
        out.wait_for(lambda l: "notified=2" in l, 10, what="the first line")
        b = {"node_id": "b", "status": "failed", "result": 8, "error_message": "boom"}
        self.fake.set(job_state(self.JOB, "in_progress", [a, b]))
        out.wait_for(lambda l: "node b failed: boom" in l, 10, what="the failure line")
        a = {"node_id": "a", "status": "downloading", "progress": 10}
        self.fake.set(job_state(self.JOB, "in_progress", [a, b]))
        out.wait_for(lambda l: "downloading=1" in l, 10, what="the downloading line")
        a = {"node_id": "a", "status": "succeeded", "result": 1}
        self.fake.set(job_state(self.JOB, "partially_failed", [a, b]))
        rc, err = finish(proc, out, 15)
        lines = out.snapshot()
        self.assertEqual(rc, 1, (lines, err))
        self.assertEqual(len([l for l in lines if "node b failed" in l]), 1, lines)
        self.assertTrue(all(l.startswith("job ") or l.startswith("node ") for l in lines), lines)
        self.assertTrue(any("total=2" in l and "succeeded=1" in l and "failed=1" in l
                            for l in lines), lines)
        self.assertIn("partially_failed", lines[-1])
        h.deadline_poll(lambda: self.fake.deregistered, 5, what="the deregistration")

    def test_json_lines_and_exit_0(self):
        a = {"node_id": "a", "status": "installing"}
        self.fake.set(job_state(self.JOB, "in_progress", [a]))
        proc, out = self.watch("--json")
        out.wait_for(lambda l: '"installing"' in l, 10, what="the first document")
        self.fake.set(job_state(self.JOB, "completed", [{"node_id": "a", "status": "succeeded"}]))
        rc, err = finish(proc, out, 15)
        self.assertEqual(rc, 0, err)
        docs = [json.loads(l) for l in out.snapshot()]
        self.assertEqual([d["status"] for d in docs], ["in_progress", "completed"])

    def test_job_deleted_ends_with_3(self):
        self.fake.set(job_state(self.JOB, "in_progress", [{"node_id": "a", "status": "pending"}]))
        proc, out = self.watch()
        out.wait_for(lambda l: "pending=1" in l, 10, what="the first line")
        self.fake.set({"error": "job not found"}, code=0x84)
        rc, err = finish(proc, out, 15)
        self.assertEqual(rc, 3, err)
        self.assertIn("4.04", err)
        self.assertIn("job not found", err)

    def test_reregisters_after_max_age_and_gives_up_on_silence(self):
        self.fake.max_age = 1
        self.fake.set(job_state(self.JOB, "in_progress", [{"node_id": "a", "status": "pending"}]))
        proc, out = start_cli(["--server", self.fake.url, "--timeout", "2", "update", "watch",
                               "--wait-server", "3", self.JOB], self.fake.url)
        self.addCleanup(stop, proc)
        # No notification within Max-Age (+ leeway): the watch asks again.
        h.deadline_poll(lambda: self.fake.registrations >= 2, 15, what="a re-registration")
        self.assertIsNone(proc.poll())
        self.assertEqual(len([l for l in out.snapshot() if l.startswith("job ")]), 1,
                         "an unchanged state is shown once")
        self.fake.silent = True
        rc, err = finish(proc, out, 20)
        self.assertEqual(rc, 4, err)
        self.assertIn("waiting for it", err)  # a restart is waited for (--wait-server) ...
        self.assertIn("no answer from %s within 2 s" % self.fake.url, err)  # ... not forever

    def test_already_finished_job(self):
        self.fake.set(job_state(self.JOB, "cancelled", [{"node_id": "a", "status": "cancelled"}]))
        r = run_cli(["--server", self.fake.url, "update", "watch", self.JOB])
        self.assertEqual(r.rc, 1, r)
        self.assertIn("cancelled", r.stdout.splitlines()[-1])


if __name__ == "__main__":
    h.main()
