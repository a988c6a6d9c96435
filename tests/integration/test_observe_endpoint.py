#!/usr/bin/env python3
"""Observations keyed by endpoint and token (RFC 7641 §4.1): five tokens from
one socket on one resource are five observations, each notified; Observe=1
ends only its own token's, and so does a reset to a notification. Block-wise
notifications: the later blocks are served from the notification's own
snapshot (its ETag) and carry its Observe number when asked for with Observe
set (RFC 7959 §2.6; node-coap takes a notification's
number from its last block)."""
import json
import os
import select
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

OBS = 6


class Endpoint:
    """One UDP socket, several observations (tokens) on it."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((h.HOST, 0))
        self.sock.connect((h.HOST, port))
        self.mid = 100
        self.got = []  # Messages with a response code, in order

    def close(self):
        self.sock.close()

    def send(self, mtype, code, token, path, extra=(), mid=None):
        if mid is None:
            self.mid += 1
            mid = self.mid
        self.sock.send(h.encode_message(mtype, code, mid, token,
                                        h.request_options(path) + list(extra)))
        return mid

    def pump(self, seconds, ack=True):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return
            try:
                m = h.decode_message(self.sock.recv(70000))
            except ConnectionRefusedError:
                continue
            if m is None or m.code == 0:
                continue
            if m.type == h.CON and ack:
                self.sock.send(h.encode_message(h.ACK, 0, m.mid))
            self.got.append(m)

    def for_token(self, token):
        return [m for m in self.got if m.token == token]

    def wait(self, predicate, seconds, what):
        end = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > end:
                raise AssertionError("timed out waiting for " + what)
            self.pump(0.1)


class ObserveEndpointTest(h.ServerTestCase):
    fresh_per_test = True

    def change_health(self, i):
        r = self.server.coap("post", "nodes", {"node_id": "n-%d" % i, "hostname": "h",
                                               "ip_address": "127.0.4.%d" % (i % 250 + 1)})
        self.assertEqual(r.code, "2.01", r)

    def test_five_tokens_from_one_endpoint_are_five_observations(self):
        e = Endpoint(self.server.port)
        try:
            tokens = [b"tok-%d" % i for i in range(5)]
            for t in tokens:
                e.send(h.CON, 1, t, "health", [(OBS, b"")])
            e.wait(lambda: all(e.for_token(t) for t in tokens), 10, "five registrations")
            for t in tokens:
                first = e.for_token(t)[0]
                self.assertEqual(first.code_text, "2.05")
                self.assertTrue(first.has_option(OBS), first)
            self.change_health(1)
            e.wait(lambda: all(len(e.for_token(t)) >= 2 for t in tokens), 15,
                   "a notification for each of the five tokens")
            # Deregistering one token ends only that observation.
            e.send(h.CON, 1, tokens[2], "health", [(OBS, b"\x01")])
            e.wait(lambda: len(e.for_token(tokens[2])) >= 3, 10, "the deregistration's answer")
            self.assertFalse(e.for_token(tokens[2])[-1].has_option(OBS))
            counts = {t: len(e.for_token(t)) for t in tokens}
            self.change_health(2)
            others = [t for t in tokens if t != tokens[2]]
            e.wait(lambda: all(len(e.for_token(t)) > counts[t] for t in others), 15,
                   "notifications for the four tokens still observing")
            e.pump(1.5)
            self.assertEqual(len(e.for_token(tokens[2])), counts[tokens[2]],
                             "a deregistered token was notified")
        finally:
            e.close()

    def test_reset_ends_only_that_observation(self):
        e = Endpoint(self.server.port)
        try:
            keep, drop = b"keep", b"drop"
            for t in (keep, drop):
                e.send(h.CON, 1, t, "health", [(OBS, b"")])
            e.wait(lambda: e.for_token(keep) and e.for_token(drop), 10, "two registrations")
            self.change_health(1)
            e.wait(lambda: len(e.for_token(drop)) >= 2, 15, "a notification to reset")
            note = e.for_token(drop)[-1]
            e.sock.send(h.encode_message(h.RST, 0, note.mid))
            n_keep, n_drop = len(e.for_token(keep)), len(e.for_token(drop))
            self.change_health(2)
            e.wait(lambda: len(e.for_token(keep)) > n_keep, 15, "the other token's notification")
            e.pump(1.5)
            self.assertEqual(len(e.for_token(drop)), n_drop, "a reset observation was notified")
        finally:
            e.close()

    def test_blockwise_notification_blocks_come_from_its_snapshot(self):
        for i in range(40):
            self.change_health(100 + i)  # GET /nodes well above one block
        e = Endpoint(self.server.port)
        try:
            tok = b"blk"
            e.send(h.CON, 1, tok, "nodes", [(OBS, b"")])
            e.wait(lambda: e.for_token(tok), 10, "the registration")
            first = e.for_token(tok)[0]
            self.assertEqual(first.code_text, "2.05", first)
            self.assertTrue(first.has_option(OBS))
            b2 = h.decode_uint(first.option(h.OPT_BLOCK2))
            self.assertTrue(b2 & 8, "the first answer is block 0 of several")
            seq0, etag0 = h.decode_uint(first.option(OBS)), first.option(4)
            self.assertIsNotNone(etag0)
            # A notification, then a change before its later blocks are read.
            self.change_health(500)
            e.wait(lambda: len(e.for_token(tok)) >= 2, 15, "a block-wise notification")
            note = e.for_token(tok)[-1]
            seq1, etag1 = h.decode_uint(note.option(OBS)), note.option(4)
            self.assertTrue(0 < (seq1 - seq0) % (1 << 24) < (1 << 23), (seq0, seq1))
            self.assertNotEqual(etag0, etag1)
            body = bytearray(note.payload)
            num = 1
            while True:
                size = 16 << (h.decode_uint(note.option(h.OPT_BLOCK2)) & 7)
                e.got.clear()
                mid = e.send(h.CON, 1, tok, "nodes",
                             [(OBS, b""), (h.OPT_BLOCK2, h.encode_uint(num << 4 | 6))])
                answers = lambda: [m for m in e.got if m.type == h.ACK and m.mid == mid]
                e.wait(answers, 10, "block %d" % num)
                blk = answers()[0]
                self.assertEqual(blk.code_text, "2.05", blk)
                self.assertEqual(blk.option(4), etag1, "block %d of another version" % num)
                self.assertEqual(h.decode_uint(blk.option(OBS)), seq1,
                                 "block %d without the notification's Observe number" % num)
                body += blk.payload
                if not h.decode_uint(blk.option(h.OPT_BLOCK2)) & 8:
                    break
                num += 1
            nodes = json.loads(bytes(body))["nodes"]
            ids = {n["node_id"] for n in nodes}
            self.assertIn("n-500", ids)
            self.assertEqual(len(nodes), 41)
        finally:
            e.close()


if __name__ == "__main__":
    h.main()
