#!/usr/bin/env python3
"""The audit log end to end (README, Security: Audit), with the real server on
loopback, keys made by `coapfleet-server keys add`, coap-client-openssl
-u/-k over coaps:// and plain coap-client from a trusted (127.0.0.1) and an
untrusted (127.0.0.2, coap-client -a) source:

- an operator's job create, its cancel, an artifact upload, a key add and a
  refused plain shutdown from an untrusted source are listed by GET /audit,
  newest first, with identity, role, address, action, target and outcome;
  the new key never appears in the log;
- GET /audit: an operator and the trusted plain source may, a reader gets
  4.03, the untrusted plain source 4.01, each with a JSON error body; bad
  queries 4.00 naming the parameter;
- paging with ?limit=N and ?before=<next> walks the whole log once;
- `--audit-keep N` keeps the newest N records;
- `coapfleet audit` prints the table, and --json the server's pages.

Every wait is a poll with a deadline. Environment: COAPFLEET_SERVER_BIN,
COAPFLEET_CLI."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CLI_BIN = os.environ.get("COAPFLEET_CLI") or os.path.join(os.path.dirname(h.SERVER_BIN),
                                                          "coapfleet")
OUTSIDE = ["-a", "127.0.0.2"]  # a source outside --plain-trusted 127.0.0.1/32


def add_key(db, ident, role):
    p = subprocess.run([h.SERVER_BIN, "--db", db, "keys", "add", ident, "--role", role],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError("keys add %s failed (%d): %s" % (ident, p.returncode, p.stderr))
    return p.stdout.strip()


class AuditBase(h.ServerTestCase):
    server_args = ["--plain-trusted", "127.0.0.1/32"]
    start_server = False

    @classmethod
    def start_processes(cls):
        cls.server = cls.new_server(list(cls.server_args), start=False)
        cls.keys = {"alice": add_key(cls.server.db, "alice", "operator"),
                    "dash": add_key(cls.server.db, "dash", "reader")}
        cls.server.start()
        h.deadline_poll(lambda: cls.sec("alice", "get", "test").code == "2.05", 30,
                        what="coaps:// answers")

    @classmethod
    def sec(cls, ident, method, path, body=None, **kw):
        url = "coaps://%s:%d/%s" % (h.HOST, cls.server.dtls_port, path)
        return h.coap(url, method, body=body,
                      extra=["-u", ident, "-k", cls.keys[ident]] + list(kw.pop("extra", [])),
                      **kw)

    def audit(self, query=""):
        r = self.server.coap("get", "audit" + ("?" + query if query else ""))
        self.assertEqual(r.code, "2.05", r)
        return r.json()


class Audit(AuditBase):
    def test_actions_are_listed_newest_first_with_who_and_outcome(self):
        r = self.sec("alice", "post", "updates", {"name": "fw", "version": "1",
                                                  "package_type": "script", "script": "true",
                                                  "target_nodes": ["all"]})
        self.assertEqual(r.code, "2.01", r)
        job = r.json()["job_id"]
        r = self.sec("alice", "post", "updates", {"action": "cancel", "job_id": job})
        self.assertEqual(r.code, "2.04", r)
        r = self.server.coap("post", "system", {"action": "shutdown"}, extra=OUTSIDE)
        self.assertErrorJson(r, "4.01")
        path = os.path.join(self.tmp, "a.bin")
        with open(path, "wb") as f:
            f.write(b"x" * 300)
        r = h.coap("coaps://%s:%d/artifacts/a.bin" % (h.HOST, self.server.dtls_port), "put",
                   extra=["-u", "alice", "-k", self.keys["alice"], "-f", path])
        self.assertEqual(r.code, "2.04", r)
        r = self.sec("alice", "post", "keys", {"action": "add", "id": "node-7", "role": "node"})
        self.assertEqual(r.code, "2.01", r)
        new_key = r.json()["key"]
        self.assertTrue(self.server.answers_test(), "the server keeps running")

        wanted = ["key.add", "artifact.upload", "system.shutdown", "job.cancel", "job.create"]

        def listed():
            body = self.audit("limit=1000")
            return [x for x in body["records"] if x["action"] in wanted]
        h.deadline_poll(lambda: len(listed()) == 5, 10, 0.1, what="five audit records")
        records = listed()
        self.assertEqual([x["action"] for x in records], wanted)
        seqs = [x["seq"] for x in records]
        self.assertEqual(seqs, sorted(seqs, reverse=True))
        key_add, upload, shutdown, cancel, create = records
        for x in (key_add, upload, cancel, create):
            self.assertEqual(x["identity"], "alice", x)
            self.assertEqual(x["role"], "operator", x)
            self.assertTrue(x["secure"], x)
            self.assertEqual(x["address"], "127.0.0.1", x)
            self.assertIsNone(x["detail"], x)
        self.assertEqual((create["target"], create["outcome"]), (job, "2.01"))
        self.assertEqual((cancel["target"], cancel["outcome"]), (job, "2.04"))
        self.assertEqual((upload["target"], upload["outcome"]), ("a.bin", "2.04"))
        self.assertEqual((key_add["target"], key_add["outcome"]), ("node-7", "2.01"))
        self.assertIsNone(shutdown["identity"])
        self.assertFalse(shutdown["secure"])
        self.assertEqual(shutdown["address"], "127.0.0.2")
        self.assertEqual(shutdown["outcome"], "4.01")
        self.assertIn("authentication required", shutdown["detail"])
        self.assertIsInstance(create["at_ms"], int)
        self.assertTrue(create["at"].endswith("Z"))
        # Over DTLS too, and never the key itself.
        r = self.sec("alice", "get", "audit?limit=1000")
        self.assertEqual(r.code, "2.05", r)
        self.assertEqual(r.content_format, 50)
        self.assertNotIn(new_key, r.body)
        self.assertNotIn(self.keys["alice"], r.body)
        with open(self.server.log_path, errors="replace") as f:
            self.assertNotIn(new_key, f.read())

    def test_who_may_read_it(self):
        self.assertErrorJson(self.sec("dash", "get", "audit"), "4.03")
        self.assertErrorJson(self.server.coap("get", "audit", extra=OUTSIDE), "4.01")
        self.assertEqual(self.sec("alice", "get", "audit").code, "2.05")
        self.assertEqual(self.server.coap("get", "audit").code, "2.05")

    def test_bad_queries(self):
        for q, name in (("limit=0", "limit"), ("limit=1001", "limit"), ("limit=x", "limit"),
                        ("before=0", "before"), ("before=-1", "before"), ("page=2", "page")):
            r = self.server.coap("get", "audit?" + q)
            self.assertErrorJson(r, "4.00", name)

    def test_paging_walks_the_whole_log_once(self):
        for i in range(7):
            r = self.server.coap("post", "updates", {"name": "page-%d" % i, "version": "1",
                                                     "package_type": "script",
                                                     "script": "true"})
            self.assertEqual(r.code, "2.01", r)
        everything = self.audit("limit=1000")
        self.assertIsNone(everything["next"])
        self.assertGreaterEqual(len(everything["records"]), 7)
        seen, before, pages = [], None, 0
        while True:
            body = self.audit("limit=2" + ("&before=%d" % before if before else ""))
            self.assertLessEqual(len(body["records"]), 2)
            seen += [x["seq"] for x in body["records"]]
            pages += 1
            before = body["next"]
            if before is None:
                break
            self.assertEqual(before, body["records"][-1]["seq"])
            self.assertLess(pages, 1000)
        # Records added meanwhile by other tests are newer: compare the tail.
        expected = [x["seq"] for x in everything["records"]]
        self.assertEqual(seen[-len(expected):], expected)
        self.assertEqual(len(seen), len(set(seen)))
        self.assertEqual(seen, sorted(seen, reverse=True))

    def test_the_cli(self):
        r = self.server.coap("post", "updates", {"name": "cli-job", "version": "1",
                                                 "package_type": "script", "script": "true"})
        self.assertEqual(r.code, "2.01", r)
        base = [CLI_BIN, "--server", "coap://%s:%d" % (h.HOST, self.server.port)]
        p = subprocess.run(base + ["audit"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertTrue(lines[0].split()[:4] == ["SEQ", "TIME", "IDENTITY", "ROLE"], p.stdout)
        self.assertIn("job.create", p.stdout)
        self.assertIn("2.01", p.stdout)
        p = subprocess.run(base + ["audit", "--limit", "1", "--json"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        body = json.loads(p.stdout)
        self.assertEqual(len(body["records"]), 1)
        self.assertIsNotNone(body["next"])
        p = subprocess.run(base + ["audit", "--limit", "1", "--before", str(body["next"]),
                                   "--json"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(json.loads(p.stdout)["records"][0]["seq"], body["records"][0]["seq"])
        p = subprocess.run(base + ["audit", "--limit", "2", "--all", "--json"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        pages = [json.loads(x) for x in p.stdout.splitlines()]
        self.assertIsNone(pages[-1]["next"])
        p = subprocess.run(base + ["audit", "--limit", "0"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        # A reader over DTLS is refused: exit 3, the error on stderr.
        kf = os.path.join(self.tmp, "dash.key")
        fd = os.open(kf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.keys["dash"] + "\n")
        p = subprocess.run([CLI_BIN, "--server", "coaps://%s:%d" % (h.HOST, self.server.dtls_port),
                            "--identity", "dash", "--key-file", kf, "audit"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("4.03", p.stderr)


class AuditKeep(AuditBase):
    server_args = ["--plain-trusted", "127.0.0.1/32", "--audit-keep", "4"]

    def test_the_newest_records_are_kept(self):
        for i in range(6):
            r = self.server.coap("post", "system", {"action": "restart"}, extra=OUTSIDE)
            self.assertErrorJson(r, "4.01")
        r = self.server.coap("post", "updates", {"name": "last", "version": "1",
                                                 "package_type": "script", "script": "true"})
        self.assertEqual(r.code, "2.01", r)
        body = self.audit("limit=100")
        self.assertEqual(len(body["records"]), 4, body)
        self.assertEqual(body["records"][0]["action"], "job.create")
        self.assertEqual([x["action"] for x in body["records"][1:]], ["system.restart"] * 3)
        self.assertIsNone(body["next"])


if __name__ == "__main__":
    h.main()
