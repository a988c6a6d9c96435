#!/usr/bin/env python3
"""Block-wise request bodies (RFC 7959 Block1) against the real server: a
legal upload without Size1 is stored whole (it used to crash the server inside
libcoap), every odd sequence (gaps, blocks out of order, repeats, SZX changes,
SZX 7, lying Size1, a new upload over one in progress) gets the right answer
with a JSON body, the final answer carries Block1 (RFC 7959 §2.3), a body too
large for one datagram is 4.13 with Size1 and Block1, and 2,000 uploads left
unfinished keep the server's memory bounded."""
import hashlib
import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PUT, POST = 3, 2


def block1(num, more, szx):
    return (h.OPT_BLOCK1, h.encode_uint(num << 4 | (8 if more else 0) | szx))


def decode_block(value):
    v = h.decode_uint(value)
    return v >> 4, bool(v & 8), v & 7


class Uploader(h.RawClient):
    def block(self, path, num, more, szx, payload, size1=None, code=PUT, content_format=42,
              extra=()):
        opts = h.request_options(path, content_format) + [block1(num, more, szx)] + list(extra)
        if size1 is not None:
            opts.append((h.OPT_SIZE1, h.encode_uint(size1)))
        return self._exchange(code, opts, payload, 10)


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class BlockwiseTest(h.ServerTestCase):
    fresh_per_test = True

    def client(self):
        return Uploader(h.HOST, self.server.port)

    def assertJsonError(self, msg, code, words=()):
        self.assertEqual(msg.code_text, code, msg)
        body = json.loads(msg.payload.decode())
        self.assertIn("error", body, msg)
        for w in words:
            self.assertIn(w, body["error"], msg)
        return body

    def artifact(self, name):
        arts = {a["name"]: a for a in self.server.coap("get", "artifacts").json()["artifacts"]}
        return arts.get(name)

    def test_upload_without_size1_is_stored_whole(self):
        """Block 0 (M=1, 64 bytes) then block 1 (M=0, 10 bytes), no Size1:
        one artifact of 74 bytes; the final answer carries Block1 1/0/2."""
        with self.client() as c:
            r0 = c.block("artifacts/z", 0, True, 2, b"A" * 64)
            self.assertEqual(r0.code_text, "2.31", r0)
            self.assertEqual(decode_block(r0.option(h.OPT_BLOCK1)), (0, True, 2))
            r1 = c.block("artifacts/z", 1, False, 2, b"B" * 10)
            self.assertEqual(r1.code_text, "2.04", r1)
            self.assertEqual(decode_block(r1.option(h.OPT_BLOCK1)), (1, False, 2), r1)
            self.assertEqual(json.loads(r1.payload)["size"], 74)
            # The last block again, with a new message id: no upload is in
            # progress any more (4.08); it once crashed the server.
            again = c.block("artifacts/z", 1, False, 2, b"B" * 10)
            self.assertJsonError(again, "4.08", ["block 0"])
        self.assertTrue(self.server.alive())
        body = b"A" * 64 + b"B" * 10
        self.assertEqual(self.artifact("z")["sha256"], hashlib.sha256(body).hexdigest())
        self.assertEqual(self.artifact("z")["size"], 74)
        self.assertIn("stored z size=74", self.server.log_text())
        self.assertNotIn("stored z size=64", self.server.log_text())

    def test_gap_out_of_order_and_orphan_blocks_are_408(self):
        with self.client() as c:
            self.assertJsonError(c.block("artifacts/g", 1, False, 2, b"x"), "4.08")
            self.assertEqual(c.block("artifacts/g", 0, True, 2, b"a" * 64).code_text, "2.31")
            self.assertJsonError(c.block("artifacts/g", 2, False, 2, b"x"), "4.08", ["gap"])
            self.assertJsonError(c.block("artifacts/g", 1, False, 2, b"x"), "4.08")
        self.assertIsNone(self.artifact("g"))

    def test_repeats_and_smaller_blocks(self):
        with self.client() as c:
            self.assertEqual(c.block("artifacts/r", 0, True, 6, b"a" * 1024).code_text, "2.31")
            self.assertEqual(c.block("artifacts/r", 0, True, 6, b"a" * 1024).code_text, "2.31")
            self.assertEqual(c.block("artifacts/r", 2, True, 5, b"b" * 512).code_text, "2.31")
            self.assertEqual(c.block("artifacts/r", 2, True, 5, b"b" * 512).code_text, "2.31")
            done = c.block("artifacts/r", 3, False, 5, b"end")
            self.assertEqual(done.code_text, "2.04", done)
        body = b"a" * 1024 + b"b" * 512 + b"end"
        self.assertEqual(self.artifact("r")["sha256"], hashlib.sha256(body).hexdigest())

    def test_new_upload_over_one_in_progress_replaces_it(self):
        with self.client() as c:
            c.block("artifacts/n", 0, True, 2, b"o" * 64)
            c.block("artifacts/n", 1, True, 2, b"o" * 64)
            self.assertEqual(c.block("artifacts/n", 0, True, 2, b"n" * 64).code_text, "2.31")
            self.assertEqual(c.block("artifacts/n", 1, False, 2, b"new").code_text, "2.04")
        self.assertEqual(self.artifact("n")["sha256"],
                         hashlib.sha256(b"n" * 64 + b"new").hexdigest())

    def test_content_format_change_between_blocks_is_408_with_json(self):
        """A later block with another Content-Format than block 0's: 4.08
        with a JSON body (libcoap would answer it itself, with text)."""
        with self.client() as c:
            self.assertEqual(c.block("artifacts/cf", 0, True, 2, b"a" * 64).code_text, "2.31")
            r = c.block("artifacts/cf", 1, False, 2, b"b", content_format=50)
            self.assertJsonError(r, "4.08", ["Content-Format"])
            # And without any Content-Format (text/plain) after block 0's 42.
            self.assertEqual(c.block("artifacts/cf", 0, True, 2, b"a" * 64).code_text, "2.31")
            r = c.block("artifacts/cf", 1, False, 2, b"b", content_format=None)
            self.assertJsonError(r, "4.08", ["Content-Format"])
        self.assertIsNone(self.artifact("cf"))
        self.assertTrue(self.server.answers_test())

    def test_reserved_szx_and_wrong_block_sizes_are_400(self):
        with self.client() as c:
            self.assertJsonError(c.block("artifacts/s", 0, True, 7, b"a" * 1024), "4.00", ["SZX 7"])
            self.assertJsonError(c.block("artifacts/s", 0, True, 6, b"a" * 100), "4.00",
                                 ["exactly 1024"])
        self.assertIsNone(self.artifact("s"))

    def test_lying_size1_is_held_to_the_limit(self):
        with self.client() as c:
            r = c.block("artifacts/big", 0, True, 6, b"a" * 1024, size1=4000 * 1000 * 1000)
            self.assertJsonError(r, "4.13", ["limit"])
            self.assertGreater(h.decode_uint(r.option(h.OPT_SIZE1)), 0)

    def test_blockwise_registration_body(self):
        """A JSON body sent block-wise (as node-coap does above 1 KiB) is
        decoded whole."""
        body = json.dumps({"node_id": "bw-1", "hostname": "h", "ip_address": "127.0.3.3",
                           "system_info": {"note": "x" * 1500}}).encode()
        with self.client() as c:
            blocks = [body[i:i + 256] for i in range(0, len(body), 256)]
            for i, part in enumerate(blocks):
                more = i < len(blocks) - 1
                r = c.block("nodes", i, more, 4, part, code=POST, content_format=50)
                self.assertEqual(r.code_text, "2.31" if more else "2.01", r)
        nodes = {n["node_id"] for n in self.server.coap("get", "nodes").json()["nodes"]}
        self.assertIn("bw-1", nodes)

    def test_body_too_large_for_one_datagram_is_413(self):
        """40 KB in one datagram: 4.13 with Size1 (the body limit) and Block1
        (the block size to use), for a request with a token."""
        for path, cf in (("nodes", 50), ("artifacts/one", 42)):
            with h.RawClient(h.HOST, self.server.port) as c:
                msg = c._exchange(PUT if path.startswith("a") else POST,
                                  h.request_options(path, cf), b"{" + b"x" * 40000 + b"}", 10)
            self.assertJsonError(msg, "4.13", ["block-wise"])
            self.assertIsNotNone(msg.option(h.OPT_SIZE1), msg)
            self.assertEqual(decode_block(msg.option(h.OPT_BLOCK1))[2], 6, msg)
        self.assertTrue(self.server.answers_test())

    def test_2000_unfinished_uploads_stay_bounded(self):
        """2,000 uploads send block 0 with Size1 = 60 MB and stop: virtual
        size and RSS stay within a few MB, the caps answer 4.29/5.03 with
        Max-Age, and the server keeps answering."""
        pid = self.server.pid
        vm0, rss0 = status_kb(pid, "VmSize"), status_kb(pid, "VmRSS")
        codes = {}
        socks = [Uploader(h.HOST, self.server.port) for _ in range(50)]
        try:
            for i in range(2000):
                c = socks[i % len(socks)]
                r = c.block("artifacts/u%d" % i, 0, True, 6, b"u" * 1024, size1=60 * 1000 * 1000)
                codes[r.code_text] = codes.get(r.code_text, 0) + 1
        finally:
            for c in socks:
                c.close()
        vm1, rss1 = status_kb(pid, "VmSize"), status_kb(pid, "VmRSS")
        print("codes %r; VmSize %d -> %d kB, VmRSS %d -> %d kB" % (codes, vm0, vm1, rss0, rss1))
        self.assertEqual(set(codes) - {"2.31", "4.29", "5.03"}, set(), codes)
        self.assertLess(vm1 - vm0, 200 * 1024)
        self.assertLess(rss1 - rss0, 64 * 1024)
        self.assertTrue(self.server.answers_test())


if __name__ == "__main__":
    h.main()
