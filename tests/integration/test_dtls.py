#!/usr/bin/env python3
"""DTLS with pre-shared keys (DESIGN §9): keys made with `coapfleet-server
keys add`, used with coap-client-openssl -u/-k against coaps://, the CLI and
a real agent, with a server that trusts no plain network (so everything
below has to pass DTLS and the role checks)."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402

CLI_BIN = os.environ.get("COAPFLEET_CLI") or os.path.join(os.path.dirname(h.SERVER_BIN),
                                                          "coapfleet")
AGENT_BIN = os.environ.get("COAPFLEET_AGENT") or os.path.join(os.path.dirname(h.SERVER_BIN),
                                                              "coapfleet-agent")


def keys(db, *args):
    p = subprocess.run([h.SERVER_BIN, "--db", db, "keys"] + list(args), capture_output=True,
                       text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError("keys %s failed (%d): %s" % (args, p.returncode, p.stderr))
    return p.stdout


def add_key(db, ident, role):
    out = keys(db, "add", ident, "--role", role)
    lines = out.splitlines()
    assert len(lines) == 1 and len(lines[0]) >= 32, out
    return lines[0]


def key_file(directory, ident, key):
    path = os.path.join(directory, ident + ".key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return path


class DtlsBase(h.ServerTestCase):
    # No plain network is trusted and plain reads are off: only DTLS counts.
    server_args = ["--plain-trusted", "", "--plain-access", "none"]
    start_server = False
    more_keys = ()  # (identity, role) beside alice, dash, node-1 and node-2

    @classmethod
    def start_processes(cls):
        cls.server = cls.new_server(list(cls.server_args), start=False)
        db = cls.server.db
        cls.keys = {"alice": add_key(db, "alice", "operator"),
                    "dash": add_key(db, "dash", "reader"),
                    "node-1": add_key(db, "node-1", "node"),
                    "node-2": add_key(db, "node-2", "node")}
        for ident, role in cls.more_keys:
            cls.keys[ident] = add_key(db, ident, role)
        cls.server.start()  # plain GET /test stays open: ready
        h.deadline_poll(lambda: cls.sec("alice", "get", "test").code == "2.05", 30,
                        what="coaps:// answers")

    @classmethod
    def url(cls, path):
        return "coaps://%s:%d/%s" % (h.HOST, cls.server.dtls_port, path)

    @classmethod
    def sec(cls, ident, method, path, body=None, key=None, **kw):
        k = key if key is not None else cls.keys[ident]
        return h.coap(cls.url(path), method, body=body,
                      extra=["-u", ident, "-k", k] + list(kw.pop("extra", [])), **kw)



class Dtls(DtlsBase):
    def test_seed_examples_over_coaps(self):
        r = self.sec("alice", "get", "health")
        self.assertEqual(r.code, "2.05", r)
        r = self.sec("alice", "post", "nodes", {"node_id": "seed-node", "ip_address": "127.0.0.1"})
        self.assertEqual(r.code, "2.01", r)
        r = self.sec("alice", "put", "health", {"node_id": "seed-node", "cpu_percent": 3})
        self.assertEqual(r.code, "2.04", r)
        r = self.sec("alice", "get", "nodes")
        self.assertEqual(r.code, "2.05", r)
        self.assertIn("seed-node", [n["node_id"] for n in r.json()["nodes"]])
        r = self.sec("alice", "post", "updates", {"name": "fw", "version": "1",
                                                  "package_type": "script", "script": "true",
                                                  "target_nodes": ["seed-node"]})
        self.assertEqual(r.code, "2.01", r)
        job = r.json()["job_id"]
        r = self.sec("alice", "post", "updates", {"action": "status", "job_id": job})
        self.assertEqual(r.code, "2.05", r)
        r = self.sec("alice", "get", "system")
        self.assertEqual(r.code, "2.05", r)
        r = self.sec("alice", "post", "system", {"action": "status"})
        self.assertEqual(r.code, "2.05", r)
        self.assertEqual(self.sec("alice", "get", "test").code, "2.05")
        r = self.sec("alice", "get", "updates")
        self.assertEqual(r.code, "2.05", r)
        self.assertIn(job, [j["job_id"] for j in r.json()["updates"]])
        r = self.sec("alice", "post", "updates", {"action": "install", "job_id": job})
        self.assertIn(r.code, ("2.04", "2.01"), r)
        r = self.sec("alice", "get", ".well-known/core")
        self.assertEqual(r.code, "2.05", r)
        self.assertIn("</health>", r.body)

    def test_a_wrong_key_gets_no_answer(self):
        r = self.sec("alice", "get", "nodes", key="0" * 64, wait=3)
        self.assertIsNone(r.code, r)
        r = self.sec("mallory", "get", "nodes", key="0" * 64, wait=3)
        self.assertIsNone(r.code, r)

    def test_a_node_speaks_for_itself_only(self):
        r = self.sec("node-1", "post", "nodes", {"node_id": "node-1", "ip_address": "127.0.0.1"})
        self.assertEqual(r.code, "2.01", r)
        r = self.sec("node-1", "put", "health", {"node_id": "node-1", "cpu_percent": 5})
        self.assertEqual(r.code, "2.04", r)
        # node-1 taking over node-2, or reporting for it: 4.03 with a JSON body.
        r = self.sec("node-1", "post", "nodes", {"node_id": "node-2", "ip_address": "127.0.0.1"})
        self.assertEqual(r.code, "4.03", r)
        self.assertIn("node-1", r.json()["error"])
        self.sec("node-2", "post", "nodes", {"node_id": "node-2", "ip_address": "127.0.0.1"})
        r = self.sec("node-1", "put", "health", {"node_id": "node-2", "cpu_percent": 99})
        self.assertEqual(r.code, "4.03", r)
        r = self.sec("node-1", "post", "system", {"action": "shutdown"})
        self.assertEqual(r.code, "4.03", r)
        r = self.sec("node-1", "get", "nodes")
        self.assertEqual(r.code, "4.03", r)
        self.assertTrue(self.server.answers_test())

    def test_a_node_is_notified_where_it_registers_from(self):
        # node-2 claims another host's address; it is kept as information only.
        r = self.sec("node-2", "post", "nodes", {"node_id": "node-2", "ip_address": "127.9.9.9",
                                                 "port": 5683}, extra=["-a", "127.0.0.3"])
        self.assertEqual(r.code, "2.01", r)
        n = [x for x in self.sec("alice", "get", "nodes").json()["nodes"]
             if x["node_id"] == "node-2"][0]
        self.assertEqual(n["ip_address"], "127.0.0.3")
        self.assertEqual(n["reported_ip_address"], "127.9.9.9")
        # An operator says where a node listens, and that stands.
        r = self.sec("alice", "post", "nodes", {"node_id": "op-set", "ip_address": "127.9.9.8"})
        self.assertEqual(r.code, "2.01", r)
        n = [x for x in self.sec("alice", "get", "nodes").json()["nodes"]
             if x["node_id"] == "op-set"][0]
        self.assertEqual(n["ip_address"], "127.9.9.8")
        self.assertNotIn("reported_ip_address", n)

    def test_no_multicast_broadcast_or_unspecified_address(self):
        for ip, what in (("224.0.1.187", "multicast"), ("255.255.255.255", "broadcast"),
                         ("0.0.0.0", "unspecified"), ("ff02::fd", "multicast"), ("::", "unspecified"),
                         ("::ffff:239.1.1.1", "multicast")):
            with self.subTest(ip=ip):
                r = self.sec("alice", "post", "nodes", {"node_id": "bad-addr", "ip_address": ip})
                body = self.assertErrorJson(r, "4.00", "ip_address")
                self.assertIn(what, body["error"])
        self.assertNotIn("bad-addr", [x["node_id"] for x in
                                      self.sec("alice", "get", "nodes").json()["nodes"]])

    def test_a_reader_reads_and_changes_nothing(self):
        self.assertEqual(self.sec("dash", "get", "nodes").code, "2.05")
        r = self.sec("dash", "post", "updates", {"name": "x", "version": "1",
                                                 "package_type": "script", "script": "id",
                                                 "target_nodes": ["all"]})
        self.assertEqual(r.code, "4.03", r)
        self.assertIn("error", r.json())

    def test_plain_requests_need_dtls_here(self):
        r = self.server.coap("post", "system", {"action": "shutdown"})
        self.assertEqual(r.code, "4.01", r)
        self.assertEqual(self.server.coap("get", "nodes").code, "4.01")
        self.assertTrue(self.server.answers_test())

    def test_a_key_added_while_running_works_and_a_revoked_one_stops(self):
        db = self.server.db
        key = add_key(db, "late", "reader")
        h.deadline_poll(lambda: self.sec("late", "get", "nodes", key=key, wait=3).code == "2.05",
                        15, what="a key added by the offline command works without a restart")
        keys(db, "revoke", "late")
        h.deadline_poll(lambda: self.sec("late", "get", "nodes", key=key, wait=3).code != "2.05",
                        15, what="a revoked key stops working")

    def test_the_cli_over_dtls(self):
        kf = key_file(self.tmp, "alice", self.keys["alice"])
        p = subprocess.run([CLI_BIN, "--server", self.url("").rstrip("/"), "--identity", "alice",
                            "--key-file", kf, "--json", "nodes"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("nodes", json.loads(p.stdout))
        os.chmod(kf, 0o644)
        p = subprocess.run([CLI_BIN, "--server", self.url("").rstrip("/"), "--identity", "alice",
                            "--key-file", kf, "nodes"], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("chmod 600", p.stderr)


class DtlsPortChecks(unittest.TestCase):
    def test_the_same_port_for_coap_and_coaps_is_refused(self):
        port = h.free_port()
        p = subprocess.run([h.SERVER_BIN, "--bind", h.HOST, "--port", str(port),
                            "--dtls-port", str(port), "--db", os.devnull + ".x"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("need a port each", p.stderr)


class DtlsSystemActions(DtlsBase):
    """The seed's restart and shutdown over coaps://: an operator's key may,
    a reader's may not; the process restarts in place, then ends with 0."""

    def test_restart_then_shutdown_over_coaps(self):
        r = self.sec("dash", "post", "system", {"action": "shutdown"})
        self.assertErrorJson(r, "4.03")
        pid = self.server.pid
        r = self.sec("alice", "post", "system", {"action": "restart"})
        self.assertEqual(r.code, "2.04", r)
        h.deadline_poll(lambda: "restarting" in self.server.log_text(), 20, what="restart logged")
        h.deadline_poll(lambda: self.sec("alice", "get", "test").code == "2.05", 30,
                        what="coaps:// answers after the restart")
        self.assertEqual(self.server.pid, pid)
        r = self.sec("alice", "post", "system", {"action": "shutdown"})
        self.assertEqual(r.code, "2.04", r)
        self.assertEqual(self.server.wait_exit(30), 0, "shutdown must end the process with 0")


class DtlsAgent(DtlsBase):
    """A real agent whose server is coaps:// with its node key: it registers
    and reports over DTLS, runs a job the server notifies it of over DTLS,
    and answers nothing to plain CoAP."""

    @classmethod
    def start_processes(cls):
        super().start_processes()
        cls.agent_ip = "127.1.%d.%d" % (os.getpid() % 200 + 20, 7)
        cls.agent_port = h.free_port(cls.agent_ip)
        base = os.path.join(cls.tmp, "agent")
        os.makedirs(os.path.join(base, "state"), exist_ok=True)
        os.makedirs(os.path.join(base, "root"), exist_ok=True)
        kf = key_file(base, "node-1", cls.keys["node-1"])
        cls.agent_log = os.path.join(base, "agent.log")
        log = open(cls.agent_log, "ab")
        cls.agent = subprocess.Popen(
            [AGENT_BIN, "--bind", cls.agent_ip, "--port", str(cls.agent_port), "--node-id", "node-1",
             "--server", "coaps://%s:%d" % (h.HOST, cls.server.dtls_port), "--key-file", kf,
             "--state-dir", os.path.join(base, "state"), "--root", os.path.join(base, "root"),
             "--interval", "1", "--log-level", "debug"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=base,
            start_new_session=True, preexec_fn=h._die_with_parent)
        log.close()

    @classmethod
    def stop_processes(cls):
        if getattr(cls, "agent", None) and cls.agent.poll() is None:
            cls.agent.terminate()
            try:
                cls.agent.wait(15)
            except subprocess.TimeoutExpired:
                cls.agent.kill()
        super().stop_processes()

    def node(self):
        r = self.sec("alice", "get", "nodes")
        if r.code != "2.05":
            return None
        found = [n for n in r.json()["nodes"] if n["node_id"] == "node-1"]
        return found[0] if found else None

    def test_agent_registers_reports_and_runs_a_job_over_dtls(self):
        n = h.deadline_poll(lambda: (lambda x: x if x and x.get("health") else None)(self.node()),
                            30, what="node-1 registered with health over DTLS")
        self.assertEqual(n["status"], "online")
        marker = os.path.join(self.tmp, "agent", "ran-over-dtls")
        r = self.sec("alice", "post", "updates", {"name": "t", "version": "1",
                                                  "package_type": "script",
                                                  "script": "touch %s" % marker,
                                                  "target_nodes": ["node-1"]})
        self.assertEqual(r.code, "2.01", r)
        job = r.json()["job_id"]
        r = self.sec("alice", "post", "updates", {"action": "install", "job_id": job})
        self.assertEqual(r.code, "2.04", r)

        def done():
            r = self.sec("alice", "post", "updates", {"action": "status", "job_id": job})
            st = r.json().get("node_statuses", {}).get("node-1") if r.code == "2.05" else None
            return st if st in ("succeeded", "failed", "timed_out") else None
        self.assertEqual(h.deadline_poll(done, 60, what="the job on node-1 finished"),
                         "succeeded")
        self.assertTrue(os.path.exists(marker))
        # The notification named the job; the agent fetched its spec over DTLS.
        with open(self.agent_log, errors="replace") as f:
            self.assertIn("job %s: fetching its spec" % job, f.read())
        # A node reads its own part of a job only: 4.03 for another's.
        r = self.sec("node-1", "get", "updates/%s/spec" % job)
        self.assertEqual(r.code, "2.05", r)
        self.assertEqual(r.json()["script"], "touch %s" % marker)
        r = self.sec("node-2", "get", "updates/%s/spec" % job)
        self.assertErrorJson(r, "4.03")
        r = self.sec("node-2", "get", "updates/%s/spec?node_id=node-1" % job)
        self.assertErrorJson(r, "4.03")

    def test_the_agent_answers_no_plain_coap(self):
        h.deadline_poll(lambda: self.node(), 30, what="node-1 registered")
        body = {"job_id": "forged", "node_id": "node-1",
                "package_type": "script", "script": "touch /tmp/never"}
        r = h.coap("coap://%s:%d/updates/available" % (self.agent_ip, self.agent_port), "post",
                   body=body, wait=3)
        self.assertIsNone(r.code, r)
        # Nor over DTLS with another identity's key.
        r = h.coap("coaps://%s:%d/updates/available" % (self.agent_ip, self.agent_port), "post",
                   body=body, wait=3, extra=["-u", "node-2", "-k", self.keys["node-2"]])
        self.assertIsNone(r.code, r)


class PskWorker(ah.Worker):
    """An agent on 127.1.0.N:5683 (agent_harness) whose server is coaps://
    with its node key. Its endpoint answers DTLS from its server only, so it
    is ready when it says where it listens."""

    def __init__(self, workdir, index, dtls_port, key_path):
        super().__init__(workdir, index, dtls_port)
        self.key_path = key_path

    def command(self):
        return [ah.AGENT_BIN, "--bind", self.ip, "--port", str(self.port),
                "--node-id", self.node_id,
                "--server", "coaps://%s:%d" % (h.HOST, self.server_port),
                "--key-file", self.key_path,
                "--state-dir", self.state_dir, "--root", self.root,
                "--interval", "1", "--log-level", "debug"]

    def answers(self, timeout=1.5):
        return "listening on coaps://%s:%d" % (self.ip, self.port) in self.log_text()


class DtlsFleet(DtlsBase):
    """Three real agents and the CLI, everything over DTLS with pre-shared
    keys: the agents register and report with their node keys, the operator
    creates and installs a script job with `coapfleet --identity alice
    --key-file`, the server notifies each agent over DTLS with its key, and
    the job succeeds on all three."""

    more_keys = tuple(("worker-%02d" % i, "node") for i in (1, 2, 3))

    @classmethod
    def start_processes(cls):
        super().start_processes()
        cls.alice_key = key_file(cls.tmp, "alice", cls.keys["alice"])
        cls.workers_list = []
        for i in (1, 2, 3):
            name = "worker-%02d" % i
            w = PskWorker(cls.tmp, i, cls.server.dtls_port,
                          key_file(cls.tmp, name, cls.keys[name]))
            cls.workers_list.append(w)
            cls.agents.append(w)
            w.start()

    @classmethod
    def stop_processes(cls):
        for w in getattr(cls, "workers_list", []):
            rc = w.stop()
            if rc not in (0, None):
                cls.failed = True
                sys.stderr.write("agent %s ended with %r\n%s\n" % (w.node_id, rc, w.log_tail()))
        super().stop_processes()

    def run(self, result=None):
        before = (len(result.failures) + len(result.errors)) if result else 0
        outcome = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            for w in getattr(type(self), "workers_list", []):
                sys.stderr.write("\n%s failed; agent %s log:\n%s\n"
                                 % (self.id(), w.node_id, w.log_tail(60)))
        return outcome

    def cli(self, *args):
        return subprocess.run([CLI_BIN, "--server", self.url("").rstrip("/"), "--identity", "alice",
                               "--key-file", self.alice_key] + list(args),
                              capture_output=True, text=True, timeout=60)

    def cli_json(self, *args):
        p = self.cli("--json", *args)
        self.assertEqual(p.returncode, 0, "coapfleet %s: %s" % (" ".join(args), p.stderr))
        return json.loads(p.stdout)

    def test_three_agents_and_the_cli_run_a_job_over_dtls(self):
        def fleet():
            p = self.cli("--json", "nodes")
            if p.returncode != 0:
                return None
            nodes = {n["node_id"]: n for n in json.loads(p.stdout)["nodes"]}
            ok = all(nodes.get(w.node_id, {}).get("status") == "online"
                     and nodes[w.node_id].get("health") for w in self.workers_list)
            return nodes if ok else None
        h.deadline_poll(fleet, 60, 0.3, what="three agents registered with health over DTLS")
        health = self.cli_json("health")
        self.assertGreaterEqual(health.get("total_nodes", 3), 3, health)
        p = self.cli("update", "create", "--name", "psk-e2e", "--version", "1", "--type", "script",
                     "--script", "echo ok > ran-over-psk",
                     "--nodes", ",".join(w.node_id for w in self.workers_list))
        self.assertEqual(p.returncode, 0, p.stderr)
        job = p.stdout.strip().split()[-1]
        p = self.cli("update", "install", job)
        self.assertEqual(p.returncode, 0, p.stderr)

        def done():
            st = self.cli_json("update", "status", job)
            states = st.get("node_statuses", {})
            if len(states) == 3 and all(s in ah.FINAL_NODE_STATES for s in states.values()):
                return st
            return None
        st = h.deadline_poll(done, 90, 0.5, what="the job finished on three agents")
        self.assertEqual(st["node_statuses"],
                         {w.node_id: "succeeded" for w in self.workers_list}, st)
        self.assertEqual(st["status"], "completed", st)
        for w in self.workers_list:
            with open(w.state_file("ran-over-psk")) as f:
                self.assertEqual(f.read().strip(), "ok")
            self.assertIn("job %s: fetching its spec" % job, w.log_text())
            self.assertIn("notifying %s at coaps://%s:%d" % (w.node_id, w.ip, w.port),
                          self.server.log_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
