#!/usr/bin/env python3
"""Budgets against abuse: a plain source outside --plain-trusted that sends
faster than --source-rate gets 4.29 Too Many Requests with Max-Age (once a
second; further requests are not answered), trusted sources are not
throttled; answers to such a source travel in small datagrams, so a forged
small request never brings a large answer (RFC 7252 section 11.3); new node
ids beyond --max-nodes and jobs beyond --jobs-per-minute get 4.29 too."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

OTHER = "127.0.0.2"  # another host, outside --plain-trusted 127.0.0.1/32
MAX_AGE = 14


def node(i):
    return {"node_id": "budget-%02d" % i, "ip_address": "127.0.0.1", "port": 5683,
            "hostname": "host-%02d-with-a-longer-name-for-a-larger-listing" % i}


class SourceBudget(h.ServerTestCase):
    server_args = ["--plain-trusted", "127.0.0.1/32", "--source-rate", "2", "--source-burst", "5"]

    def burst_from(self, host, n):
        """n quick GET /test from `host`: the answers' codes, None where no
        answer came (each request sent once, answers awaited briefly)."""
        codes = []
        with h.RawClient(h.HOST, self.server.port, local=(host, 0)) as c:
            for _ in range(n):
                mid = c.next_mid()
                tok = os.urandom(4)
                c.send_raw(h.encode_message(h.CON, 1, mid, tok, h.request_options("test")))
                got = None
                end = time.monotonic() + 0.5
                while time.monotonic() < end:
                    data = c.recv_raw(max(0.0, end - time.monotonic()))
                    if data is None:
                        break
                    m = h.decode_message(data)
                    if m is not None and m.mid == mid:
                        got = m
                        break
                if got is None or got.code == 0:
                    codes.append(None)
                else:
                    codes.append(got)
        return codes

    def test_an_untrusted_source_over_its_budget_gets_4_29_with_max_age(self):
        answers = self.burst_from(OTHER, 12)
        texts = [a.code_text if a else None for a in answers]
        self.assertEqual(texts[:5], ["2.05"] * 5, texts)
        refused = [a for a in answers if a is not None and a.code_text == "4.29"]
        self.assertEqual(len(refused), 1, "one 4.29 a second, the rest unanswered: %r" % texts)
        r = refused[0]
        self.assertIsNotNone(r.option(MAX_AGE), "4.29 carries Max-Age")
        wait = h.decode_uint(r.option(MAX_AGE))
        self.assertGreaterEqual(wait, 1)
        body = json.loads(r.payload)
        self.assertIn("too many requests", body["error"])
        self.assertEqual(str(wait), body["retry_after_seconds"])
        # After Max-Age the source is served again.
        time.sleep(wait + 0.1)
        again = self.burst_from(OTHER, 1)
        self.assertEqual(again[0].code_text if again[0] else None, "2.05")

    def test_a_trusted_source_is_not_throttled(self):
        answers = self.burst_from(h.HOST, 30)
        self.assertEqual([a.code_text if a else None for a in answers], ["2.05"] * 30)

    def test_answers_to_an_untrusted_source_are_small_datagrams(self):
        for i in range(20):
            r = self.server.coap("post", "nodes", json.dumps(node(i)))
            self.assertEqual(r.code, "2.01", r)
        time.sleep(2.6)  # a full bucket again for OTHER
        with h.RawClient(h.HOST, self.server.port, local=(OTHER, 0)) as c:
            request = h.encode_message(h.CON, 1, c.next_mid(), b"\x01\x02", h.request_options("nodes"))
            c.send_raw(request)
            data = c.recv_raw(5)
        self.assertIsNotNone(data)
        m = h.decode_message(data)
        self.assertEqual(m.code_text, "2.05")
        self.assertIsNotNone(m.option(h.OPT_BLOCK2), "a large listing goes block-wise")
        self.assertLessEqual(len(data), 160, "%d-byte answer to a %d-byte request"
                             % (len(data), len(request)))
        # A trusted source still gets full-size blocks.
        with h.RawClient(h.HOST, self.server.port) as c:
            c.send_raw(h.encode_message(h.CON, 1, c.next_mid(), b"\x01\x02",
                                        h.request_options("nodes")))
            big = c.recv_raw(5)
        self.assertGreater(len(big), 500)
        # And the whole listing still arrives at the untrusted source.
        with h.RawClient(h.HOST, self.server.port, local=(OTHER, 0)) as c:
            time.sleep(2.6)
            r = c.request("get", "nodes")
        self.assertEqual(len(r.json()["nodes"]), 20)


class NodeAndJobCaps(h.ServerTestCase):
    server_args = ["--max-nodes", "3", "--jobs-per-minute", "3"]

    def test_a_new_node_beyond_max_nodes_gets_4_29(self):
        for i in range(3):
            self.assertEqual(self.server.coap("post", "nodes", json.dumps(node(i))).code, "2.01")
        r = self.server.raw("post", "nodes", node(3))
        self.assertEqual(r.code, "4.29", r)
        self.assertIn("node limit", r.json()["error"])
        self.assertEqual(h.decode_uint(r.option_value(MAX_AGE)), 60)
        # A node already registered may register again.
        self.assertEqual(self.server.raw("post", "nodes", node(1)).code, "2.01")
        self.assertEqual(len(self.server.raw("get", "nodes").json()["nodes"]), 3)

    def test_jobs_beyond_the_per_minute_budget_get_4_29(self):
        job = {"action": "create", "name": "n", "version": "1", "package_type": "script",
               "script": "true", "target_nodes": ["budget-00"]}
        codes = [self.server.raw("post", "updates", job).code for _ in range(3)]
        self.assertEqual(codes, ["2.01"] * 3)
        r = self.server.raw("post", "updates", job)
        self.assertEqual(r.code, "4.29", r)
        self.assertIn("jobs per minute", r.json()["error"])
        self.assertGreaterEqual(h.decode_uint(r.option_value(MAX_AGE)), 1)


if __name__ == "__main__":
    h.main()
