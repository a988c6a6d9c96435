#!/usr/bin/env python3
"""Block-wise sequences and mutated datagrams against a real agent and its
server: the Block1 sequence without Size1 that crashed libcoap 4.3.1's
reassembly, then a few thousand mutated block-wise requests (a seeded random
stream: flipped bits, cut and stretched datagrams, random Block1/Block2/Size1
values, repeated and out-of-order blocks) sent to both. Both stay up, answer
GET, and the agent keeps reporting to the server."""
import os
import random
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402
from mutations import mutate, requests  # noqa: E402

SEED = int(os.environ.get("COAPFLEET_MUTATION_SEED", "1125"))


class AgentBlockwiseTest(ah.AgentTestCase):
    workers = 1

    def test_size1_less_upload_and_mutated_stream_crash_nothing(self):
        w = self.workers_list[0]
        targets = [(w.ip, w.port), (h.HOST, self.server.port)]
        rng = random.Random(SEED)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((h.HOST, 0))
        try:
            # The sequence that crashed libcoap's reassembly, to both.
            for ip, port in targets:
                for mid, (num, more, data) in enumerate(((0, True, b"A" * 64), (1, False, b"B" * 10),
                                                         (1, False, b"B" * 10))):
                    opts = h.request_options("updates/available", 50) + [
                        (h.OPT_BLOCK1, h.encode_uint(num << 4 | (8 if more else 0) | 2))]
                    sock.sendto(h.encode_message(h.CON, 2, 1000 + mid, b"t%d" % mid, opts, data),
                                (ip, port))
                    time.sleep(0.05)
            valid = requests(rng)
            sent = 0
            for i in range(4000):
                d = mutate(rng, rng.choice(valid))
                sock.sendto(d, targets[i % 2])
                sent += 1
                if i % 200 == 0:
                    time.sleep(0.05)  # let both drain; the point is content, not load
                    while True:
                        try:
                            sock.recv(70000, socket.MSG_DONTWAIT)
                        except (BlockingIOError, ConnectionRefusedError):
                            break
        finally:
            sock.close()
        self.assertTrue(w.alive(), w.log_tail())
        self.assertTrue(self.server.alive(), self.server.log_tail())
        self.assertTrue(w.answers(timeout=3), "the agent no longer answers GET /health")
        self.assertTrue(self.server.answers_test())
        # The agent still reports: a fresh sample reaches the server.
        since = time.time()

        def reported():
            r = self.server.coap("get", "nodes/%s/health" % w.node_id)
            if r.code != "2.05":
                return None
            ts = r.json().get("timestamp", "")
            return ts if ts >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since)) else None
        h.deadline_poll(reported, 20, 0.2, what="a health report after the stream")


if __name__ == "__main__":
    ah.main()
