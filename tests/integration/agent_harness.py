"""Helpers of the coapfleet-agent integration tests (tests/integration/test_agent_*.py).

Python 3 standard library only; loopback addresses (127.0.0.0/8) only. Builds
on harness.py (server process, coap-client, raw CoAP client) and adds:

- Worker: one real coapfleet-agent process on its own loopback address
  (127.1.0.N, port 5683 like a real node), with its own --state-dir and
  --root in the test's temporary directory; start, wait ready, kill -9,
  restart with the same state, stop.
- coap_client_file(): coap-client with binary bodies (-f FILE / -o FILE, -b).
- AgentTestCase: a ServerTestCase that also starts workers (per class, or per
  test with fresh_per_test), prints their logs when a test fails, and has the
  operator's job helpers (create, install, status, wait for node states) built
  on the real coap-client.
- make_wheel(): a tiny pure-Python wheel written with zipfile.
"""
import base64
import calendar
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

AGENT_PORT = 5683
FINAL_NODE_STATES = ("succeeded", "failed", "timed_out", "cancelled", "skipped", "rolled_back")
FINAL_JOB_STATES = ("completed", "failed", "partially_failed", "cancelled")


def _find_agent():
    env = os.environ.get("COAPFLEET_AGENT")
    if env:
        return env
    for build in ("build-agent-it", "build-it", "build"):
        candidate = os.path.join(h.REPO, build, "coapfleet-agent")
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("set COAPFLEET_AGENT to the coapfleet-agent executable")


AGENT_BIN = _find_agent()


def sha256_file(path):
    d = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            d.update(chunk)
    return d.hexdigest()


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n
    return sha256_file(path)


def write_script(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


def coap_client_file(url, method="get", infile=None, outfile=None, block=1024, wait=60,
                     extra=()):
    """coap-client with a file body (-f FILE) and/or a binary answer (-o FILE),
    block-wise with -b. Returns (code of the last response or None, stdout,
    stderr)."""
    args = [h.COAP_CLIENT, "-m", method, "-B", str(wait), "-v", "6"]
    if block:
        args += ["-b", str(block)]
    if infile:
        args += ["-f", infile]
    if outfile:
        args += ["-o", outfile]
    args += list(extra) + [url]
    p = subprocess.run(args, capture_output=True, timeout=wait + 60, stdin=subprocess.DEVNULL)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    code = None
    for line in out.splitlines():
        m = h._PDU_LINE.match(line)
        if m and not m.group(2).startswith("0."):
            code = m.group(2)
    return code, out, err


def udp_holders(ip, port):
    """How many UDP sockets are bound to ip:port (from /proc/net/udp)."""
    want = "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(ip))[0], port)
    try:
        with open("/proc/net/udp") as f:
            return sum(1 for line in f.readlines()[1:] if line.split()[1] == want)
    except (OSError, IndexError):
        return 1


# -- the agent process ------------------------------------------------------------------

class Worker:
    """One coapfleet-agent. Its files live in workdir/<node_id>/: state/, root/,
    agent.log. `ip` is 127.1.0.N unless something else holds that address's
    port 5683, then another 127.1.x.y (see `fallback`)."""

    def __init__(self, workdir, index, server_port, extra=(), node_id=None, ip=None):
        self.index = index
        self.node_id = node_id or "worker-%02d" % index
        self.base = os.path.join(workdir, self.node_id)
        self.state_dir = os.path.join(self.base, "state")
        self.root = os.path.join(self.base, "root")
        self.log_path = os.path.join(self.base, "agent.log")
        for d in (self.state_dir, self.root):
            os.makedirs(d, exist_ok=True)
        self.server_port = server_port
        self.extra = list(extra)
        self.ip = ip or self._pick_address(index)
        self.port = AGENT_PORT
        self.proc = None
        self.started_once = False
        self.exit_codes = []  # of the runs stopped with SIGTERM

    @staticmethod
    def _pick_address(index, skip=()):
        preferred = "127.1.0.%d" % index
        if preferred not in skip and h.udp_port_free(preferred, AGENT_PORT):
            return preferred
        for third in range(1, 200):
            ip = "127.1.%d.%d" % (third, index)
            if ip not in skip and h.udp_port_free(ip, AGENT_PORT):
                sys.stderr.write("%s:%d is taken; using %s\n" % (preferred, AGENT_PORT, ip))
                return ip
        raise RuntimeError("no free loopback address for agent %d" % index)

    def url(self, path=""):
        return "coap://%s:%d/%s" % (self.ip, self.port, path.lstrip("/"))

    def command(self):
        return [AGENT_BIN, "--bind", self.ip, "--port", str(self.port),
                "--node-id", self.node_id,
                "--server", "coap://%s:%d" % (h.HOST, self.server_port),
                "--state-dir", self.state_dir, "--root", self.root,
                "--interval", "1", "--log-level", os.environ.get("CF_AGENT_LOG","debug")] + self.extra

    def start(self, wait=True, timeout=30):
        first = not self.started_once
        self.started_once = True
        tried = [self.ip]
        # The agent refuses an address whose port another socket took since
        # it was picked (a process of a test running beside): move away
        # (first start only; a restart must keep the address the server knows).
        while True:
            try:
                self._start(wait, timeout)
                break
            except AssertionError:
                this_run = self.log_text().rsplit("\n=== start", 1)[-1]
                if not (first and "in use by another socket" in this_run):
                    raise
            sys.stderr.write("%s:%d was taken; moving %s\n" % (self.ip, self.port, self.node_id))
            self.ip = self._pick_address(self.index, tried)
            tried.append(self.ip)
        # libcoap binds with SO_REUSEADDR: a process that started elsewhere on
        # the same address at the same moment with --reuse-port, or one that
        # sets SO_REUSEADDR itself, would share the port and take our
        # datagrams. Move away from such an address too.
        while wait and first and udp_holders(self.ip, self.port) > 1:
            sys.stderr.write("%s:%d is shared with another process; moving %s\n"
                             % (self.ip, self.port, self.node_id))
            self.stop()
            self.ip = self._pick_address(self.index, tried)
            tried.append(self.ip)
            self._start(wait, timeout)
        return self

    def _start(self, wait, timeout):
        log = open(self.log_path, "ab")
        log.write(("\n=== start %s\n" % " ".join(self.command())).encode())
        log.flush()
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.base,
                                     start_new_session=True, preexec_fn=h._die_with_parent)
        log.close()
        if wait:
            self.wait_ready(timeout)

    def answers(self, timeout=1.5):
        try:
            with h.RawClient(self.ip, self.port) as c:
                return c.request("get", "system", timeout=timeout).code == "2.05"
        except (TimeoutError, ConnectionError, OSError):
            return False

    def wait_ready(self, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("agent %s exited with %s before answering GET /system\n%s"
                                     % (self.node_id, self.proc.returncode, self.log_tail()))
            if self.answers():
                return
            time.sleep(0.1)
        raise AssertionError("agent %s did not answer GET /system within %d s\n%s"
                             % (self.node_id, timeout, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout=15):
        """SIGTERM and wait (SIGKILL on timeout); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self.exit_codes.append("killed after SIGTERM timeout")
                return self.exit_codes[-1]
            self.exit_codes.append(self.proc.returncode)
        return self.proc.returncode

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40):
        text = self.log_text().splitlines()
        return "---- %s (last %d lines) ----\n%s\n----" % (
            self.log_path, min(lines, len(text)), "\n".join(text[-lines:]))

    def coap(self, method, path="", body=None, **kw):
        return h.coap(self.url(path), method, body=body, **kw)

    def system(self):
        r = self.coap("get", "system")
        if r.code != "2.05":
            raise AssertionError("GET %s: %r" % (self.url("system"), r))
        return r.json()

    def state_file(self, name):
        return os.path.join(self.state_dir, name)

    def read_state_file(self, name, default=""):
        try:
            with open(self.state_file(name)) as f:
                return f.read()
        except FileNotFoundError:
            return default


# -- wheels -----------------------------------------------------------------------------

def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


def make_wheel(directory, name="mypkg", version="1.0", marker="hello from mypkg"):
    """Writes <name>-<version>-py3-none-any.whl (pure Python, one module) into
    `directory` and returns its absolute path."""
    dist = "%s-%s.dist-info" % (name, version)
    files = {
        "%s/__init__.py" % name: ("VERSION = %r\nMARKER = %r\n" % (version, marker)).encode(),
        "%s/METADATA" % dist: ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
                               "Summary: coapfleet integration test package\n"
                               % (name, version)).encode(),
        "%s/WHEEL" % dist: (b"Wheel-Version: 1.0\nGenerator: coapfleet-tests\n"
                            b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    record = "".join("%s,%s,%d\n" % (path, _record_hash(data), len(data))
                     for path, data in files.items())
    record += "%s/RECORD,,\n" % dist
    files["%s/RECORD" % dist] = record.encode()
    path = os.path.abspath(os.path.join(directory, "%s-%s-py3-none-any.whl" % (name, version)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, data in files.items():
            z.writestr(p, data)
    return path


def pip_available():
    """(True, version line) when `python3 -m pip --version` works."""
    try:
        p = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                           timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    text = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
    return p.returncode == 0, text


# -- test base --------------------------------------------------------------------------

class AgentTestCase(h.ServerTestCase):
    """One server per class (cls.server) plus `workers` agents (worker-01..)
    started in setUpClass with `worker_args` (in setUp for each test with
    fresh_per_test). Prints the logs of every agent and server of the class
    when a test fails."""

    workers = 3
    worker_args = ()

    @classmethod
    def start_processes(cls):
        super().start_processes()
        cls.workers_list = []
        try:
            for i in range(1, cls.workers + 1):
                cls.new_worker(i, cls.worker_args_for(i))
            cls.wait_registered(cls.workers_list)
        except Exception:
            cls.failed = True
            raise

    @classmethod
    def worker_args_for(cls, index):
        return list(cls.worker_args)

    @classmethod
    def new_worker(cls, index, extra=(), start=True, server=None):
        w = Worker(cls.tmp, index, (server or cls.server).port, extra)
        cls.workers_list.append(w)
        cls.agents.append(w)  # stopped by ServerTestCase's cleanup
        if start:
            w.start()
        return w

    @classmethod
    def stop_processes(cls):
        # Agents first (ServerTestCase stops them too, but their exit codes
        # matter: SIGTERM must end an agent cleanly).
        for w in getattr(cls, "workers_list", []):
            rc = w.stop()
            if rc not in (0, None):
                cls.failed = True
                sys.stderr.write("agent %s ended with %r\n%s\n" % (w.node_id, rc, w.log_tail()))
        super().stop_processes()

    @classmethod
    def wait_registered(cls, workers, server=None, timeout=30, since=None):
        """Until GET /nodes shows every worker online (with a last_seen not
        older than `since`, an ISO-8601 UTC string, when given)."""
        server = server or cls.server

        def check():
            r = server.coap("get", "nodes")
            if r.code != "2.05":
                return None
            nodes = {n["node_id"]: n for n in r.json()["nodes"]}
            for w in workers:
                n = nodes.get(w.node_id)
                if n is None or n.get("status") != "online":
                    return None
                if since is not None and n.get("last_seen", "") < since:
                    return None
            return nodes
        return h.deadline_poll(check, timeout, 0.2,
                               what="nodes %s online" % [w.node_id for w in workers])

    def run(self, result=None):
        before = (len(result.failures) + len(result.errors)) if result else 0
        outcome = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            for w in getattr(type(self), "workers_list", []):
                sys.stderr.write("\n%s failed; agent %s log:\n%s\n"
                                 % (self.id(), w.node_id, w.log_tail(60)))
        return outcome

    # -- operator side (real coap-client) ------------------------------------------------

    def create_job(self, body, server=None):
        r = (server or self.server).coap("post", "updates", body)
        self.assertEqual(r.code, "2.01", "create %r: %r%s" % (body, r, h._trace(r)))
        self.assertEqual(r.json()["status"], "created")
        return r.json()["job_id"]

    def install(self, job, server=None):
        r = (server or self.server).coap("post", "updates", {"action": "install", "job_id": job})
        self.assertEqual(r.code, "2.04", "install %s: %r%s" % (job, r, h._trace(r)))
        self.assertTrue(r.json().get("success"), r)
        return r.json()

    def status(self, job, server=None):
        r = (server or self.server).coap("post", "updates", {"action": "status", "job_id": job})
        self.assertEqual(r.code, "2.05", "status %s: %r%s" % (job, r, h._trace(r)))
        body = r.json()
        self.assertEqual(body["job_id"], job)
        return body

    def notify_as_server(self, worker, body, server=None):
        """POST /updates/available to `worker` from the server's own address and
        port, which is all an agent in plain mode goes by: coap-client binds
        that port beside the server (libcoap sets SO_REUSEADDR on both) and,
        being the newest socket connected to the agent, gets the answer. Any
        local process could do the same; plain mode is for trusted networks.
        To the agent this is the server's endpoint, so the request carries a
        token of its own, never one of the server's (which count from 1)."""
        server = server or self.server
        token = "t%07x" % random.getrandbits(28)
        return worker.coap("post", "updates/available", body,
                           extra=["-a", h.HOST, "-p", str(server.port), "-T", token])

    def fast_status(self, job, server=None):
        """The job's status through the raw client (no process per request), for
        polls that must not miss a short state; None when the server does not
        answer."""
        server = server or self.server
        try:
            r = h.raw_request(server.port, "post", "updates",
                              {"action": "status", "job_id": job}, timeout=3)
        except (TimeoutError, ConnectionError, OSError):
            return None
        return r.json() if r.code == "2.05" else None

    @staticmethod
    def node_entry(status, node_id):
        for n in status.get("nodes", []):
            if n["node_id"] == node_id:
                return n
        return None

    def wait_job_final(self, job, timeout=60, server=None):
        """Polls until the job and all its nodes are in final states; returns
        the status body."""
        def check():
            body = self.status(job, server)
            if body["status"] in FINAL_JOB_STATES and all(
                    s in FINAL_NODE_STATES for s in body["node_statuses"].values()):
                return body
            return None
        try:
            return h.deadline_poll(check, timeout, 0.3, what="job %s to finish" % job)
        except AssertionError:
            self.fail("job %s did not finish within %d s; last status: %s"
                      % (job, timeout, json.dumps(self.status(job, server))))

    def assertJobSucceeded(self, body, node_ids):
        self.assertEqual(body["status"], "completed", json.dumps(body))
        self.assertEqual(body["node_statuses"], {n: "succeeded" for n in node_ids},
                         json.dumps(body))
        for n in node_ids:
            entry = self.node_entry(body, n)
            self.assertIsNotNone(entry, body)
            self.assertEqual(entry["result"], 1, entry)      # LwM2M: success
            self.assertIsNone(entry["error_message"], entry)

    def upload(self, path, name, server=None):
        server = server or self.server
        code, out, err = coap_client_file(server.url("artifacts/" + name), "put", infile=path)
        self.assertTrue(code in ("2.01", "2.04"),
                        "upload of %s answered %r\n%s\n%s" % (name, code, out[-800:], err[-400:]))
        return code

    def artifacts(self, server=None):
        r = (server or self.server).coap("get", "artifacts")
        self.assertEqual(r.code, "2.05", r)
        return {a["name"]: a for a in r.json()["artifacts"]}


def iso_now():
    """UTC now, in the server's timestamp format, rounded down to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def log_lines(worker, pattern):
    return [l for l in worker.log_text().splitlines() if re.search(pattern, l)]


def log_time(line):
    """Seconds since the epoch of a log line ("2026-11-22T02:56:00.782Z ...")."""
    stamp = line.split()[0]
    whole, _, frac = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))


def main():
    h.main()
