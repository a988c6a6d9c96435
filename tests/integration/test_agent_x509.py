#!/usr/bin/env python3
"""X.509 end to end (DESIGN §9): a server, three real agents and the CLI,
all over DTLS with certificates that the test makes with the `openssl`
command line, and a server that trusts no plain network (so nothing below
can pass without DTLS and the role checks).

- Each agent runs with `--server coaps://127.0.0.1:PORT --cert --key --ca
  --server-name coapfleet-server`: it registers and reports over DTLS showing
  its certificate, checks the server's certificate against the CA and its
  name, and its own endpoint (127.1.0.N:5683, as in agent_harness.py) is DTLS
  only, admitting a certificate from the CA that names the server.
- The server notifies them showing its own certificate (--cert/--key), and
  checks that each agent's certificate names the node.
- The CLI runs with --cert/--key/--ca (the server's name checked against
  the IP address of --server, an IP subjectAltName of its certificate).
- A peer with a certificate from the same CA but another name, or with the
  server's name from another CA, gets no session at an agent: nothing is
  journaled and nothing runs."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402
import test_x509 as tx  # noqa: E402  (Pki, add_key: no tests of its own run here)

CLI_BIN = os.environ.get("COAPFLEET_CLI") or os.path.join(os.path.dirname(h.SERVER_BIN),
                                                          "coapfleet")
BOTH = "serverAuth,clientAuth"  # agents and the server are clients and servers both
SERVER_NAME = "coapfleet-server"


class CertWorker(ah.Worker):
    """An agent whose server is coaps:// with a certificate. Its endpoint
    answers nothing but DTLS from its server, so it is ready when it says
    where it listens."""

    def __init__(self, workdir, index, dtls_port, cert, key, ca):
        super().__init__(workdir, index, dtls_port)
        self.cert, self.key, self.ca = cert, key, ca

    def command(self):
        return [ah.AGENT_BIN, "--bind", self.ip, "--port", str(self.port),
                "--node-id", self.node_id,
                "--server", "coaps://%s:%d" % (h.HOST, self.server_port),
                "--cert", self.cert, "--key", self.key, "--ca", self.ca,
                "--server-name", SERVER_NAME,
                "--state-dir", self.state_dir, "--root", self.root,
                "--interval", "1", "--log-level", "debug"]

    def answers(self, timeout=1.5):
        return "listening on coaps://%s:%d" % (self.ip, self.port) in self.log_text()


class AgentsWithCertificates(h.ServerTestCase):
    start_server = False

    @classmethod
    def start_processes(cls):
        cls.pki = tx.Pki(cls.tmp, "fleet-ca")
        cls.other = tx.Pki(cls.tmp, "other-ca")
        cls.server_cert = cls.pki.issue("server", "/CN=%s" % SERVER_NAME,
                                        san="DNS:%s,IP:127.0.0.1" % SERVER_NAME, usage=BOTH)
        cls.certs = {"alice": cls.pki.issue("alice", "/CN=alice")}
        for i in (1, 2, 3):
            name = "worker-%02d" % i
            cls.certs[name] = cls.pki.issue(name, "/CN=%s" % name, usage=BOTH)
        # Same CA, another name; the server's name from another CA.
        cls.certs["impostor"] = cls.pki.issue("impostor", "/CN=impostor", usage=BOTH)
        cls.certs["fake-server"] = cls.other.issue("fake-server", "/CN=%s" % SERVER_NAME,
                                                   san="DNS:%s" % SERVER_NAME, usage=BOTH)
        cert, key = cls.server_cert
        cls.server = cls.new_server(["--cert", cert, "--key", key, "--ca", cls.pki.cert,
                                     "--plain-trusted", "", "--plain-access", "none"],
                                    start=False)
        tx.add_key(cls.server.db, "alice", "operator")
        for i in (1, 2, 3):
            tx.add_key(cls.server.db, "worker-%02d" % i, "node")
        cls.server.start()
        h.deadline_poll(lambda: cls.cli("--json", "nodes").returncode == 0, 30,
                        what="the CLI gets an answer over coaps:// with a certificate")
        cls.workers_list = []
        for i in (1, 2, 3):
            c, k = cls.certs["worker-%02d" % i]
            w = CertWorker(cls.tmp, i, cls.server.dtls_port, c, k, cls.pki.cert)
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

    @classmethod
    def cli(cls, *args, cert="alice", extra=()):
        c, k = cls.certs[cert]
        return subprocess.run([CLI_BIN, "--server", "coaps://%s:%d" % (h.HOST, cls.server.dtls_port),
                               "--cert", c, "--key", k, "--ca", cls.pki.cert] + list(extra)
                              + list(args), capture_output=True, text=True, timeout=60)

    def cli_json(self, *args):
        p = self.cli("--json", *args)
        self.assertEqual(p.returncode, 0, "coapfleet %s: %s" % (" ".join(args), p.stderr))
        return json.loads(p.stdout)

    def wait_fleet(self):
        def check():
            p = self.cli("--json", "nodes")
            if p.returncode != 0:
                return None
            nodes = {n["node_id"]: n for n in json.loads(p.stdout)["nodes"]}
            for w in self.workers_list:
                n = nodes.get(w.node_id)
                if n is None or n.get("status") != "online" or not n.get("health"):
                    return None
            return nodes
        return h.deadline_poll(check, 60, 0.3, what="three agents registered with health")

    def test_a_script_job_runs_on_three_agents_over_x509(self):
        nodes = self.wait_fleet()
        for w in self.workers_list:
            # Registered over its own DTLS session: notified where it listens.
            self.assertEqual(nodes[w.node_id]["port"], w.port, nodes[w.node_id])
        health = self.cli_json("health")
        self.assertGreaterEqual(health.get("total_nodes", 3), 3, health)
        p = self.cli("update", "create", "--name", "x509-e2e", "--version", "1",
                     "--type", "script", "--script", "echo ok > ran-over-x509", "--nodes", "all")
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
            with open(w.state_file("ran-over-x509")) as f:
                self.assertEqual(f.read().strip(), "ok")
            # The notification came over DTLS from the server's certificate,
            # and the spec was fetched over the agent's own session.
            self.assertIn("job %s: fetching its spec" % job, w.log_text())
            self.assertIn("notifying %s at coaps://%s:%d (X.509)" % (w.node_id, w.ip, w.port),
                          self.server.log_text())

    def notify_with(self, worker, cert_name, ca=None):
        c, k = self.certs[cert_name]
        body = {"job_id": "forged-%s" % cert_name, "node_id": worker.node_id}
        return h.coap("coaps://%s:%d/updates/available" % (worker.ip, worker.port), "post",
                      body=body, wait=4, extra=["-c", c, "-j", k, "-C", ca or self.pki.cert])

    def test_an_agent_refuses_a_certificate_that_does_not_name_its_server(self):
        self.wait_fleet()
        w = self.workers_list[0]
        r = self.notify_with(w, "impostor")
        self.assertIsNone(r.code, r)
        h.deadline_poll(lambda: 'refused the certificate of "impostor"' in w.log_text(), 15,
                        what="the agent logs the refusal")
        # The server's name from another CA does not get a session either.
        r = self.notify_with(w, "fake-server", ca=self.other.cert)
        self.assertIsNone(r.code, r)
        # Another node of the fleet is not the server.
        r = self.notify_with(w, "worker-02")
        self.assertIsNone(r.code, r)
        self.assertNotIn("forged-", w.read_state_file("journal.json"))
        self.assertNotIn("forged-", w.log_text())

    def test_the_cli_checks_the_servers_name_and_its_files(self):
        # The certificate has IP:127.0.0.1 (the default name here) and
        # DNS:coapfleet-server; another name is refused with a reason.
        p = self.cli("--json", "nodes", extra=["--server-name", SERVER_NAME])
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.cli("--json", "nodes", extra=["--server-name", "elsewhere.example"])
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("does not name elsewhere.example", p.stderr)
        # A private key others may read is refused before anything is sent.
        c, k = self.certs["alice"]
        loose = os.path.join(self.tmp, "loose.key")
        with open(k) as src, open(loose, "w") as dst:
            dst.write(src.read())
        os.chmod(loose, 0o644)
        p = subprocess.run([CLI_BIN, "--server", "coaps://%s:%d" % (h.HOST, self.server.dtls_port),
                            "--cert", c, "--key", loose, "--ca", self.pki.cert, "nodes"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("chmod 600", p.stderr)
        # Not the key of this certificate; a missing --ca.
        _, other_key = self.certs["impostor"]
        p = subprocess.run([CLI_BIN, "--server", "coaps://%s:%d" % (h.HOST, self.server.dtls_port),
                            "--cert", c, "--key", other_key, "--ca", self.pki.cert, "nodes"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("is not the private key of", p.stderr)
        p = subprocess.run([CLI_BIN, "--server", "coaps://%s:%d" % (h.HOST, self.server.dtls_port),
                            "--cert", c, "--key", k, "nodes"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--ca", p.stderr)
        # The environment names them too.
        env = dict(os.environ, COAPFLEET_CERT=c, COAPFLEET_KEY=k, COAPFLEET_CA=self.pki.cert,
                   COAPFLEET_SERVER="coaps://%s:%d" % (h.HOST, self.server.dtls_port))
        p = subprocess.run([CLI_BIN, "--json", "nodes"], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_an_agent_refuses_bad_certificate_options(self):
        c, k = self.certs["worker-01"]
        base = [ah.AGENT_BIN, "--server", "coaps://127.0.0.1:%d" % self.server.dtls_port,
                "--bind", "127.0.0.1", "--port", "0", "--node-id", "worker-01",
                "--state-dir", os.path.join(self.tmp, "bad-agent")]
        cases = [
            (["--cert", c, "--key", k], "--ca"),
            (["--cert", c, "--key", k, "--ca", self.pki.cert, "--key-file", k], "not both"),
            (["--cert", c, "--key", os.path.join(self.tmp, "missing.key"), "--ca", self.pki.cert],
             "missing.key"),
            (["--cert", self.pki.cert + ".nope", "--key", k, "--ca", self.pki.cert], "--cert"),
        ]
        for extra, words in cases:
            with self.subTest(extra=extra):
                p = subprocess.run(base + extra, capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(words, p.stderr)
        p = subprocess.run([ah.AGENT_BIN, "--server", "coap://127.0.0.1:5683", "--cert", c,
                            "--key", k, "--ca", self.pki.cert], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("coaps://", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
