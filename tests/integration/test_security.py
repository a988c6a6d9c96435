#!/usr/bin/env python3
"""Security (DESIGN §9): who may do what over plain CoAP and over DTLS.

Plain CoAP: full access only from --plain-trusted networks; from anywhere
else what --plain-access allows (default: reads). Requests from another
loopback address (127.0.0.2, coap-client -a) stand in for a second host."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

OUTSIDE = ["-a", "127.0.0.2"]  # a source address outside --plain-trusted 127.0.0.1/32


class PlainPolicy(h.ServerTestCase):
    server_args = ["--plain-trusted", "127.0.0.1/32"]

    def assert_refused(self, r, code="4.01"):
        self.assertEqual(r.code, code, r)
        body = r.json()
        self.assertIn("error", body, r)
        return body

    def test_untrusted_shutdown_is_refused_and_the_server_keeps_running(self):
        r = self.server.coap("post", "system", {"action": "shutdown"}, extra=OUTSIDE)
        body = self.assert_refused(r)
        self.assertIn("authentication required", body["error"])
        self.assertTrue(self.server.answers_test())
        self.assertIsNone(self.server.proc.poll())

    def test_untrusted_changes_get_4_01_and_change_nothing(self):
        s = self.server
        r = s.coap("post", "nodes", {"node_id": "intruder", "ip_address": "127.0.0.2"},
                   extra=OUTSIDE)
        self.assert_refused(r)
        r = s.coap("post", "updates", {"name": "x", "version": "1", "package_type": "script",
                                       "script": "id > pwned", "target_nodes": ["all"]},
                   extra=OUTSIDE)
        self.assert_refused(r)
        nodes = s.coap("get", "nodes").json()["nodes"]
        self.assertFalse([n for n in nodes if n["node_id"] == "intruder"])
        self.assertEqual(s.coap("get", "updates").json()["updates"], [])

    def test_untrusted_health_report_for_a_registered_node_is_refused(self):
        s = self.server
        r = s.coap("post", "nodes", {"node_id": "victim", "ip_address": "127.0.0.1"})
        self.assertEqual(r.code, "2.01", r)
        r = s.coap("put", "health", {"node_id": "victim", "cpu_percent": 99}, extra=OUTSIDE)
        self.assert_refused(r)
        node = [n for n in s.coap("get", "nodes").json()["nodes"] if n["node_id"] == "victim"]
        self.assertIsNone(node[0]["health"])

    def test_untrusted_reads_are_allowed_by_default(self):
        r = self.server.coap("get", "nodes", extra=OUTSIDE)
        self.assertEqual(r.code, "2.05", r)
        r = self.server.coap("get", "health", extra=OUTSIDE)
        self.assertEqual(r.code, "2.05", r)


class PlainAccessNone(h.ServerTestCase):
    server_args = ["--plain-trusted", "127.0.0.1/32", "--plain-access", "none"]

    def test_untrusted_reads_need_an_identity_too(self):
        r = self.server.coap("get", "nodes", extra=OUTSIDE)
        self.assertEqual(r.code, "4.01", r)
        self.assertIn("error", r.json())
        # GET /test stays open (liveness checks); trusted reads work.
        r = self.server.coap("get", "test", extra=OUTSIDE)
        self.assertEqual(r.code, "2.05", r)
        self.assertEqual(self.server.coap("get", "nodes").code, "2.05")


if __name__ == "__main__":
    unittest.main(verbosity=2)
