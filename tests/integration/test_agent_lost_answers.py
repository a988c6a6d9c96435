#!/usr/bin/env python3
"""An agent against a scripted server that loses answers the way a crashed
server does: it acknowledges a job report with an empty ACK (a separate
response promised) and dies before sending it, then comes back on the same
port. The agent must deliver the report again (it never waits forever for
an answer that cannot come), and no request it gave up on while the server
was away may reach the server later (a stale health sample must never
overwrite a newer one)."""
import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402

CON, NON, ACK, RST = 0, 1, 2, 3
CREATED, CHANGED = 0x41, 0x44
URI_PATH, CONTENT_FORMAT = 11, 12
JOB = "0a1b2c-3d4e5f-000001"


class ScriptedServer:
    """A CoAP server on one UDP port that answers registrations (2.01) and
    health (2.04), acknowledges job reports according to `report_mode`
    ("empty-ack": an empty ACK and nothing more; "answer": 2.04), and records
    every request with the time it arrived. close()/reopen() take the port
    away and give it back (the agent sees ICMP port unreachable meanwhile)."""

    def __init__(self, host):
        self.host = host
        self.port = h.free_port(host)
        self.requests = []  # (time, epoch, method, path, mid, body)
        self.report_mode = "answer"
        self.jobs = {}  # job id -> spec, served at GET /updates/<job>/spec
        self.epoch = 0
        self.lock = threading.Lock()
        self.sock = None
        self.thread = None
        self.reopen()

    def reopen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.host, self.port))
        s.settimeout(0.1)
        with self.lock:
            self.epoch += 1
            self.sock = s
        self.stop_flag = False
        self.thread = threading.Thread(target=self._serve, args=(s,), daemon=True)
        self.thread.start()

    def close(self):
        self.stop_flag = True
        self.thread.join(5)
        with self.lock:
            self.sock.close()
            self.sock = None

    def _serve(self, s):
        while not self.stop_flag:
            try:
                data, src = s.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                continue
            m = h.decode_message(data)
            if m is None or m.type != CON or m.code == 0 or m.code >= 0x40:
                continue  # ACKs of our notifications and anything else
            path = "/".join(v.decode() for n, v in m.options if n == URI_PATH)
            method = {1: "GET", 2: "POST", 3: "PUT"}.get(m.code, str(m.code))
            with self.lock:
                self.requests.append((time.time(), self.epoch, method, path, m.mid, m.payload))
            if method == "POST" and path == "updates" and self.report_mode == "empty-ack":
                s.sendto(h.encode_message(ACK, 0, m.mid), src)
                continue
            if method == "GET" and path.startswith("updates/") and path.endswith("/spec"):
                spec = self.jobs.get(path.split("/")[1])
                if spec is None:
                    s.sendto(h.encode_message(ACK, 0x84, m.mid, m.token,
                                              [(CONTENT_FORMAT, b"\x32")],
                                              b'{"error":"job not found"}'), src)
                else:
                    s.sendto(h.encode_message(ACK, 0x45, m.mid, m.token,
                                              [(CONTENT_FORMAT, b"\x32")],
                                              json.dumps(spec).encode()), src)
                continue
            code = CREATED if (method, path) == ("POST", "nodes") else CHANGED
            s.sendto(h.encode_message(ACK, code, m.mid, m.token,
                                      [(CONTENT_FORMAT, b"\x32")], b'{"message":"ok"}'), src)

    def notify(self, agent_ip, agent_port, body):
        """POST /updates/available (the job id only; the agent fetches the
        spec) to the agent from the server's own port."""
        self.jobs[body["job_id"]] = body
        body = {"job_id": body["job_id"], "node_id": body["node_id"]}
        with self.lock:
            s = self.sock
        msg = h.encode_message(CON, 0x02, 0x7001, b"\x42\x42",
                               [(URI_PATH, b"updates"), (URI_PATH, b"available"),
                                (CONTENT_FORMAT, b"\x32")], json.dumps(body).encode())
        s.sendto(msg, (agent_ip, agent_port))

    def seen(self, method, path, epoch=None):
        with self.lock:
            return [r for r in self.requests
                    if r[2] == method and r[3] == path and (epoch is None or r[1] == epoch)]

    def reports(self, status, epoch=None):
        out = []
        for r in self.seen("POST", "updates", epoch):
            try:
                body = json.loads(r[5])
            except ValueError:
                continue
            if body.get("job_id") == JOB and body.get("status") == status:
                out.append(r)
        return out


class LostAnswers(ah.AgentTestCase):
    workers = 0
    start_server = False
    fresh_per_test = True

    @classmethod
    def start_processes(cls):
        cls.workers_list = []

    def setUp(self):
        super().setUp()
        self.srv = ScriptedServer(h.HOST)
        self.addCleanup(lambda: self.srv.sock and self.srv.close())
        self.agent = ah.Worker(type(self).tmp, 1, self.srv.port,
                               extra=["--request-timeout", "3"])
        type(self).workers_list.append(self.agent)
        type(self).agents.append(self.agent)
        self.agent.start()

    def test_report_answered_never_is_sent_again_after_the_server_returns(self):
        srv, agent = self.srv, self.agent
        h.deadline_poll(lambda: srv.seen("POST", "nodes"), 10, what="the agent registering")
        srv.report_mode = "empty-ack"
        srv.notify(agent.ip, agent.port, {
            "job_id": JOB, "node_id": agent.node_id, "name": "lost-answer", "version": "1",
            "package_type": "script", "script": "sleep 2; echo ran >> ran.txt"})
        # The first step report is acknowledged, and its answer never comes.
        h.deadline_poll(lambda: srv.reports("installing"), 10, what="the installing report")
        srv.close()
        # Away long enough for a health report to meet the closed port.
        time.sleep(2.5)
        srv.report_mode = "answer"
        srv.reopen()
        h.deadline_poll(lambda: srv.reports("succeeded", epoch=2), 30,
                        what="the succeeded report after the server returned")
        self.assertEqual(agent.read_state_file("ran.txt"), "ran\n")

    def test_a_promised_answer_that_never_comes_is_not_waited_for_forever(self):
        # No outage at all (no ICMP error): the separate response simply
        # never comes; after --request-timeout the report is sent again.
        srv, agent = self.srv, self.agent
        h.deadline_poll(lambda: srv.seen("POST", "nodes"), 10, what="the agent registering")
        srv.report_mode = "empty-ack"
        srv.notify(agent.ip, agent.port, {
            "job_id": JOB, "node_id": agent.node_id, "name": "silent", "version": "1",
            "package_type": "script", "script": "echo ran >> ran.txt"})
        h.deadline_poll(lambda: srv.reports("installing"), 10, what="the installing report")
        first = srv.reports("installing")[0][0]
        srv.report_mode = "answer"
        h.deadline_poll(lambda: srv.reports("succeeded"), 20,
                        what="the succeeded report after the unanswered one timed out")
        again = srv.reports("installing")
        self.assertGreaterEqual(len(again), 2, "the unanswered report was sent again")
        self.assertGreaterEqual(again[1][0] - first, 2.5, "not before --request-timeout")
        self.assertIn("within 3 s", agent.log_text())

    def test_requests_given_up_on_never_reach_the_returned_server(self):
        srv, agent = self.srv, self.agent
        h.deadline_poll(lambda: len(srv.seen("PUT", "health")) >= 2, 10, what="health reports")
        srv.close()
        # Several health reports and registrations meet the closed port.
        time.sleep(4)
        srv.reopen()
        h.deadline_poll(lambda: len(srv.seen("PUT", "health", epoch=2)) >= 6, 30,
                        what="health reports after the server returned")
        samples = [json.loads(r[5])["timestamp"] for r in srv.seen("PUT", "health", epoch=2)]
        self.assertEqual(samples, sorted(samples),
                         "a health sample older than one already delivered arrived: %r" % samples)
        before = {r[4] for r in srv.requests if r[1] == 1}
        late = [r for r in srv.requests if r[1] == 2 and r[4] in before]
        self.assertEqual(late, [], "requests from before the outage arrived after it")
        regs = srv.seen("POST", "nodes", epoch=2)
        self.assertEqual(len({r[4] for r in regs}), 1,
                         "one registration after the outage, not the abandoned ones: %r"
                         % [(r[0], r[4]) for r in regs])


if __name__ == "__main__":
    ah.main()
