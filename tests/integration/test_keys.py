#!/usr/bin/env python3
"""Keys end to end, with the real binaries on loopback:

- `coapfleet-server --db PATH keys add|list|revoke|rotate` while a server
  runs on the same database: the key is printed alone on stdout, exit codes
  say what happened, and the running server's transport gets the new table
  of valid keys within a check interval (its log line "keys: N valid keys
  (version V)"; never a secret in the log). A rotated key's grace period
  ends in the transport's table too.
- The printed key is a working PSK: libcoap's own coap-server-openssl with
  `-k KEY` answers coap-client-openssl `-u ID -k KEY` (the DTLS of our own
  transport is not there yet).
- POST /keys and GET /keys with coap-client: the answers' shapes and codes,
  4.00 naming the field, 4.09 and 4.04, a listing of many keys that needs
  block-wise transfer, 4.01 for a request from a non-loopback address
  (anonymous until the --plain-trusted policy exists), trusted from ::1.
- `coapfleet key add|list|rotate|revoke` (the CLI).

Environment: COAPFLEET_SERVER_BIN, COAPFLEET_CLI."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

KEY_RE = re.compile(r"^[0-9a-f]{64}$")
CHECK_INTERVAL = 1.0  # the keys actor's


def _find_cli():
    env = os.environ.get("COAPFLEET_CLI")
    if env:
        return env
    candidate = os.path.join(os.path.dirname(h.SERVER_BIN), "coapfleet")
    if os.access(candidate, os.X_OK):
        return candidate
    raise RuntimeError("set COAPFLEET_CLI to the coapfleet executable")


CLI = _find_cli()


def offline(db, *args, timeout=30):
    """Runs `coapfleet-server --db DB keys ARGS...`; returns the process."""
    return subprocess.run([h.SERVER_BIN, "--db", db, "keys"] + list(args), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def table_lines(server):
    """The transport's "keys: N valid keys (version V)" lines, as (N, V)."""
    return [(int(m.group(1)), int(m.group(2)))
            for m in re.finditer(r"transport: keys: (\d+) valid keys \(version (\d+)\)",
                                 server.log_text())]


def wait_table(server, count, version=None, timeout=5 * CHECK_INTERVAL):
    """Waits (with a deadline) until the transport took a table of `count`
    keys (at `version`, when given)."""
    def seen():
        return any(n == count and (version is None or v == version)
                   for n, v in table_lines(server))
    return h.deadline_poll(seen, timeout, 0.05,
                           what="a key table of %d keys%s in the transport" % (
                               count, "" if version is None else " at version %d" % version))


def post_keys(port, body, host=h.HOST, **kw):
    return h.coap(port, "post", "keys", body, host=host, **kw)


class KeysServer(h.Server):
    """A server bound to another address than the harness's 127.0.0.1."""

    def __init__(self, workdir, bind, **kw):
        self.bind = bind
        super().__init__(workdir, port=kw.pop("port", None) or h.free_port(
            bind if ":" not in bind else h.HOST), **kw)

    def command(self):
        return [h.SERVER_BIN, "--bind", self.bind, "--port", str(self.port), "--db", self.db,
                "--dtls-port", str(self.dtls_port), "--log-level", "debug"] + self.extra

    def url(self, path=""):
        host = "[%s]" % self.bind if ":" in self.bind else self.bind
        return "coap://%s:%d/%s" % (host, self.port, path.lstrip("/"))

    def answers_test(self, timeout=1.5):
        r = h.coap(self.url("test"), "get", wait=2)
        return r.code == "2.05"


# -- the offline command against a running server -----------------------------------------

class OfflineKeysTest(h.ServerTestCase):
    fresh_per_test = True

    def secrets_never_logged(self, *secrets):
        log = self.server.log_text()
        for s in secrets:
            self.assertNotIn(s, log)

    def test_added_key_reaches_the_running_server(self):
        s = self.server
        wait_table(s, 0, 0)
        p = offline(s.db, "add", "node-1", "--role", "node")
        self.assertEqual(p.returncode, 0, p)
        # One line on stdout: the key, nothing else; messages on stderr.
        self.assertRegex(p.stdout, r"^[0-9a-f]{64}\n$")
        key = p.stdout.strip()
        self.assertIn("node-1", p.stderr)
        self.assertNotIn(key, p.stderr)
        wait_table(s, 1, 1)
        # The listing of the running server has it (never the key itself).
        r = s.coap("get", "keys")
        self.assertEqual((r.code, r.content_format), ("2.05", 50), r)
        keys = r.json()["keys"]
        self.assertEqual([(k["id"], k["role"], k["expires_at"]) for k in keys],
                         [("node-1", "node", None)])
        self.assertNotIn(key, r.body)
        self.secrets_never_logged(key)

    def test_list_revoke_and_exit_codes(self):
        s = self.server
        a = offline(s.db, "add", "alice", "--role", "operator")
        b = offline(s.db, "add", "dash", "--role", "reader")
        self.assertEqual((a.returncode, b.returncode), (0, 0), (a, b))
        ls = offline(s.db, "list")
        self.assertEqual(ls.returncode, 0, ls)
        lines = ls.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "ROLE", "CREATED", "EXPIRES"])
        self.assertEqual([l.split()[:2] for l in lines[1:]], [["alice", "operator"],
                                                              ["dash", "reader"]])
        self.assertTrue(all(l.split()[3] == "never" for l in lines[1:]), lines)
        for secret in (a.stdout.strip(), b.stdout.strip()):
            self.assertNotIn(secret, ls.stdout + ls.stderr)
        # A second key for an identity that has one: refused (3), nothing printed.
        again = offline(s.db, "add", "alice", "--role", "operator")
        self.assertEqual((again.returncode, again.stdout), (3, ""), again)
        self.assertIn("already has a key", again.stderr)
        # Bad arguments: 2.
        for args in (["add", "bad id", "--role", "node"], ["add", "x", "--role", "admin"],
                     ["add", "x"], ["rotate", "alice", "--grace", "-5"], []):
            p = offline(s.db, *args)
            self.assertEqual((p.returncode, p.stdout), (2, ""), (args, p))
        wait_table(s, 2, 2)
        rv = offline(s.db, "revoke", "alice")
        self.assertEqual(rv.returncode, 0, rv)
        self.assertIn("revoked 1 key", rv.stderr)
        wait_table(s, 1, 3)
        rv = offline(s.db, "revoke", "alice")
        self.assertEqual(rv.returncode, 3, rv)
        self.assertEqual(offline(s.db, "rotate", "nobody").returncode, 3)
        self.secrets_never_logged(a.stdout.strip(), b.stdout.strip())

    def test_rotation_grace_period_ends_in_the_transport(self):
        s = self.server
        old = offline(s.db, "add", "ops", "--role", "operator")
        self.assertEqual(old.returncode, 0, old)
        wait_table(s, 1, 1)
        new = offline(s.db, "rotate", "ops", "--grace", "3")
        self.assertEqual(new.returncode, 0, new)
        self.assertRegex(new.stdout, r"^[0-9a-f]{64}\n$")
        self.assertNotEqual(new.stdout, old.stdout)
        self.assertIn("previous keys work until", new.stderr)
        # Both keys valid during the grace period ...
        wait_table(s, 2, 2)
        listed = s.coap("get", "keys").json()["keys"]
        self.assertEqual([k["id"] for k in listed], ["ops", "ops"])
        self.assertIsNone(listed[0]["expires_at"])  # the new one first
        self.assertIsNotNone(listed[1]["expires_at"])
        self.assertEqual({k["role"] for k in listed}, {"operator"})
        # ... and only the new one after it, without another change.
        wait_table(s, 1, 2, timeout=3 + 5 * CHECK_INTERVAL)
        self.assertEqual(len(s.coap("get", "keys").json()["keys"]), 1)
        self.secrets_never_logged(old.stdout.strip(), new.stdout.strip())

    def test_offline_changes_while_the_server_writes(self):
        """The offline command waits for the server's write lock (WAL, busy
        timeout) while the server commits registrations."""
        s = self.server
        stop = threading.Event()
        failures = []

        def register():
            i = 0
            while not stop.is_set():
                i += 1
                r = s.raw("post", "nodes", json.dumps({"node_id": "busy-%d" % (i % 50),
                                                       "ip_address": "127.1.0.1"}).encode())
                if r.code != "2.01":
                    failures.append(r)

        t = threading.Thread(target=register, daemon=True)
        t.start()
        try:
            for i in range(15):
                p = offline(s.db, "add", "n-%d" % i, "--role", "node")
                self.assertEqual(p.returncode, 0, p)
                self.assertRegex(p.stdout.strip(), KEY_RE)
        finally:
            stop.set()
            t.join(30)
        self.assertEqual(failures, [])
        wait_table(s, 15, 15)

    def test_a_database_created_by_the_offline_command(self):
        """Keys may be enrolled before the server ever ran; it starts with them."""
        s = self.new_server(start=False, name="later")
        p = offline(s.db, "add", "first", "--role", "reader")
        self.assertEqual(p.returncode, 0, p)
        s.start()
        wait_table(s, 1, 1)


# -- the printed key is a PSK for libcoap's tools -------------------------------------------

class PrintedKeyIsAPskTest(unittest.TestCase):
    def test_coap_client_openssl_with_the_printed_key(self):
        server = shutil.which("coap-server-openssl")
        client = shutil.which("coap-client-openssl")
        # libcoap3-bin has both (deploy/install-deps.sh installs it).
        self.assertTrue(server and client,
                        "coap-server-openssl / coap-client-openssl not found (libcoap3-bin)")
        tmp = tempfile.mkdtemp(prefix="coapfleet-it-psk-")
        try:
            p = offline(os.path.join(tmp, "k.db"), "add", "node-7", "--role", "node")
            self.assertEqual(p.returncode, 0, p)
            key = p.stdout.strip()
            self.assertRegex(key, KEY_RE)
            for _ in range(50):  # coap-server listens on PORT (plain) and PORT+1 (DTLS)
                port = h.free_port()
                if h.udp_port_free(h.HOST, port + 1):
                    break
            proc = subprocess.Popen([server, "-A", h.HOST, "-p", str(port), "-k", key],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    preexec_fn=h._die_with_parent)
            try:
                url = "coaps://%s:%d/" % (h.HOST, port + 1)

                def answer(k):
                    r = subprocess.run([client, "-B", "3", "-u", "node-7", "-k", k, url],
                                       capture_output=True, text=True, timeout=30)
                    return r.stdout
                h.deadline_poll(lambda: "libcoap" in answer(key), 10,
                                what="coap-server-openssl answering the printed key")
                # Every character counts: a key that differs in its last one
                # gets no answer.
                wrong = key[:-1] + ("0" if key[-1] != "0" else "1")
                self.assertNotIn("libcoap", answer(wrong))
            finally:
                proc.terminate()
                proc.wait(10)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# -- the API --------------------------------------------------------------------------------

class KeysApiTest(h.ServerTestCase):
    def test_add_list_rotate_revoke(self):
        port = self.server.port
        r = post_keys(port, {"action": "add", "id": "api-node", "role": "node"})
        self.assertEqual((r.code, r.content_format), ("2.01", 50), r)
        body = r.json()
        self.assertEqual(sorted(body), ["id", "key", "role"])
        self.assertEqual((body["id"], body["role"]), ("api-node", "node"))
        self.assertRegex(body["key"], KEY_RE)
        old = body["key"]

        listed = self.server.coap("get", "keys").json()["keys"]
        mine = [k for k in listed if k["id"] == "api-node"]
        self.assertEqual(len(mine), 1)
        self.assertEqual(sorted(mine[0]), ["created_at", "expires_at", "id", "role"])
        self.assertIsNone(mine[0]["expires_at"])
        h_iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertRegex(mine[0]["created_at"], h_iso)
        # POST {"action":"list"} is the same listing.
        same = post_keys(port, {"action": "list"})
        self.assertEqual(same.code, "2.05", same)
        self.assertEqual(same.json(), self.server.coap("get", "keys").json())

        r = post_keys(port, {"action": "rotate", "id": "api-node", "grace_seconds": 120})
        self.assertEqual(r.code, "2.01", r)
        rotated = r.json()
        self.assertEqual((rotated["id"], rotated["role"], rotated["grace_seconds"]),
                         ("api-node", "node", 120))
        self.assertRegex(rotated["key"], KEY_RE)
        self.assertNotEqual(rotated["key"], old)
        listed = [k for k in self.server.coap("get", "keys").json()["keys"]
                  if k["id"] == "api-node"]
        self.assertEqual(len(listed), 2)
        self.assertIsNone(listed[0]["expires_at"])
        self.assertRegex(listed[1]["expires_at"], h_iso)
        # The offline listing of the same database agrees.
        ls = offline(self.server.db, "list")
        self.assertEqual(sum(1 for l in ls.stdout.splitlines() if l.startswith("api-node ")), 2)

        r = post_keys(port, {"action": "revoke", "id": "api-node"})
        self.assertEqual((r.code, r.content_format), ("2.04", 50), r)
        self.assertEqual(r.json()["id"], "api-node")
        self.assertFalse(any(k["id"] == "api-node"
                             for k in self.server.coap("get", "keys").json()["keys"]))
        log = self.server.log_text()
        self.assertNotIn(old, log)
        self.assertNotIn(rotated["key"], log)

    def test_refusals_name_the_field(self):
        port = self.server.port
        self.assertEqual(post_keys(port, {"action": "add", "id": "dup", "role": "reader"}).code,
                         "2.01")
        cases = [
            ({"id": "x"}, "4.00", "action"),
            ({"action": "drop"}, "4.00", "action"),
            ({"action": "add", "role": "node"}, "4.00", "id"),
            ({"action": "add", "id": "has space", "role": "node"}, "4.00", "id"),
            ({"action": "add", "id": "x", "role": "admin"}, "4.00", "role"),
            ({"action": "add", "id": "x", "role": "trusted"}, "4.00", "role"),
            ({"action": "rotate", "id": "dup", "grace_seconds": -1}, "4.00", "grace_seconds"),
            ({"action": "revoke"}, "4.00", "id"),
            ({"action": "add", "id": "dup", "role": "node"}, "4.09", "id"),
            ({"action": "revoke", "id": "nobody"}, "4.04", "id"),
            ({"action": "rotate", "id": "nobody"}, "4.04", "id"),
        ]
        for body, code, field in cases:
            with self.subTest(body=body):
                r = post_keys(port, body)
                self.assertErrorJson(r, code, field)
                self.assertEqual(r.json().get("field"), field, r)
        r = post_keys(port, "")
        self.assertErrorJson(r, "4.00")
        r = post_keys(port, "{not json")
        self.assertErrorJson(r, "4.00")
        r = h.coap(port, "put", "keys", {"action": "list"})
        self.assertErrorJson(r, "4.05")

    def test_a_long_listing_goes_block_wise(self):
        """Many keys (a fleet has one per node) make a listing of several
        blocks; coap-client follows it."""
        db = self.server.db
        before = len(self.server.coap("get", "keys").json()["keys"])
        for i in range(40):
            p = offline(db, "add", "block-%02d" % i, "--role", "node")
            self.assertEqual(p.returncode, 0, p)
        h.deadline_poll(lambda: len(self.server.coap("get", "keys").json()["keys"])
                        == before + 40, 5 * CHECK_INTERVAL, 0.1, what="40 more keys listed")
        r = self.server.coap("get", "keys")
        self.assertGreater(len(r.body), 2048)
        ids = [k["id"] for k in r.json()["keys"]]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(post_keys(self.server.port, {"action": "list"}).json(), r.json())

    def test_the_cli(self):
        env = dict(os.environ)
        env.pop("NO_COLOR", None)
        env["COAPFLEET_SERVER"] = "coap://%s:%d" % (h.HOST, self.server.port)

        def cli(*args):
            return subprocess.run([CLI] + list(args), capture_output=True, text=True,
                                  timeout=60, env=env, stdin=subprocess.DEVNULL)

        p = cli("key", "add", "cli-op", "--role", "operator")
        self.assertEqual(p.returncode, 0, p)
        self.assertRegex(p.stdout, r"^[0-9a-f]{64}\n$")
        key = p.stdout.strip()
        p = cli("key", "add", "cli-op", "--role", "operator")
        self.assertEqual((p.returncode, p.stdout), (3, ""), p)
        self.assertIn("4.09", p.stderr)
        p = cli("key", "add", "cli-x", "--role", "admin")
        self.assertEqual(p.returncode, 2, p)

        p = cli("key", "list")
        self.assertEqual(p.returncode, 0, p)
        rows = [l.split() for l in p.stdout.splitlines()]
        self.assertEqual(rows[0], ["ID", "ROLE", "CREATED", "EXPIRES"])
        self.assertIn(["cli-op", "operator"], [r[:2] for r in rows[1:]])
        self.assertNotIn(key, p.stdout)
        p = cli("--json", "key", "list")
        self.assertEqual(json.loads(p.stdout), self.server.coap("get", "keys").json())

        p = cli("key", "rotate", "cli-op", "--grace", "60")
        self.assertEqual(p.returncode, 0, p)
        self.assertRegex(p.stdout, r"^[0-9a-f]{64}\n$")
        self.assertNotEqual(p.stdout.strip(), key)
        p = cli("--json", "key", "rotate", "cli-op")
        self.assertEqual(p.returncode, 0, p)
        self.assertEqual(json.loads(p.stdout)["grace_seconds"], 3600)
        rows = [l.split() for l in cli("key", "list").stdout.splitlines()]
        self.assertEqual(sum(1 for r in rows if r[0] == "cli-op"), 3)

        p = cli("key", "revoke", "cli-op")
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("cli-op", p.stdout)
        p = cli("key", "revoke", "cli-op")
        self.assertEqual(p.returncode, 3, p)
        self.assertIn("4.04", p.stderr)


# -- who may: --plain-trusted networks, anything else 4.01 ------------------------------------

class KeysFromElsewhereTest(h.ServerTestCase):
    start_server = False

    def test_untrusted_requests_get_4_01(self):
        # 127.0.0.2 stands in for another host: only 127.0.0.1 is trusted.
        s = self.new_server(["--plain-trusted", "127.0.0.1/32"], name="outside")
        for method, body in (("get", None), ("post", {"action": "list"}),
                             ("post", {"action": "add", "id": "x", "role": "node"}),
                             ("post", {"action": "revoke", "id": "x"}),
                             ("post", {"action": "rotate", "id": "x"})):
            with self.subTest(method=method, body=body):
                r = h.coap(s.url("keys"), method, body=body, extra=["-a", "127.0.0.2"])
                self.assertErrorJson(r, "4.01")
                self.assertEqual(r.json()["role"], "reader")  # --plain-access read
        # Nothing was added; the rest of the API answers as before.
        p = offline(s.db, "list")
        self.assertEqual(p.stdout.strip(), "no keys")
        self.assertEqual(h.coap(s.url("test"), "get").code, "2.05")

    def test_ipv6_loopback_is_trusted(self):
        s = KeysServer(self.tmp, "::1", name="v6")
        self.servers.append(s)
        s.start()
        r = h.coap(s.url("keys"), "post", body={"action": "add", "id": "v6", "role": "node"})
        self.assertEqual(r.code, "2.01", r)
        r = h.coap(s.url("keys"), "get")
        self.assertEqual(r.code, "2.05", r)
        self.assertEqual([k["id"] for k in r.json()["keys"]], ["v6"])


if __name__ == "__main__":
    h.main()
