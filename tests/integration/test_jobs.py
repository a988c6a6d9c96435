#!/usr/bin/env python3
"""Update jobs end to end: the server notifies fake agents (fake_agent.py on
127.1.0.x, port 5683 when free), agents' reports move the per-node states,
the job status follows, unreachable targets fail, timeouts and cancel work."""
import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PIP_PACKAGES = ["aiocoap==0.4.7", "aiohttp==3.9.1"]


class JobHelpers:
    def create(self, targets, server=None, **extra):
        server = server or self.server
        body = {"name": "pkg-update", "version": "1.2.3", "package_type": "pip",
                "target_nodes": targets, "packages": PIP_PACKAGES}
        body.update(extra)
        r = server.coap("post", "updates", body)
        self.assertEqual(r.code, "2.01", r)
        self.assertEqual(r.json()["status"], "created")
        return r.json()["job_id"]

    def install(self, job, server=None):
        return (server or self.server).coap("post", "updates",
                                            {"action": "install", "job_id": job})

    def status(self, job, server=None):
        r = (server or self.server).coap("post", "updates", {"action": "status", "job_id": job})
        self.assertEqual(r.code, "2.05", r)
        body = r.json()
        self.assertEqual(body["job_id"], job)
        return body

    def report(self, job, node, status, server=None, **extra):
        body = {"action": "report", "job_id": job, "node_id": node, "status": status}
        body.update(extra)
        return (server or self.server).coap("post", "updates", body)

    def report_ok(self, job, node, *steps, server=None):
        for step in steps:
            r = self.report(job, node, step, server=server)
            self.assertEqual(r.code, "2.04", "%s %s: %r" % (node, step, r))

    def wait_states(self, job, expected, timeout=20, server=None):
        """Polls the job's status until node_statuses == expected."""
        def check():
            body = self.status(job, server)
            return body if body["node_statuses"] == expected else None
        try:
            return h.deadline_poll(check, timeout, what="node states %r" % expected)
        except AssertionError:
            self.fail("node states never became %r; last status: %r"
                      % (expected, self.status(job, server)))

    def wait_job(self, job, status, timeout=20, server=None):
        def check():
            body = self.status(job, server)
            return body if body["status"] == status else None
        try:
            return h.deadline_poll(check, timeout, what="job " + status)
        except AssertionError:
            self.fail("job never became %s; last status: %r" % (status, self.status(job, server)))

    def notifications(self, agent, job):
        return [b for b in agent.bodies() if b.get("job_id") == job]

    def register(self, node_id, ip, port, server=None):
        r = (server or self.server).coap("post", "nodes", {
            "node_id": node_id, "hostname": node_id + ".lab", "ip_address": ip, "port": port})
        self.assertEqual(r.code, "2.01", r)


class JobsTest(JobHelpers, h.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a1 = cls.new_agent("127.1.0.1")
        cls.a2 = cls.new_agent("127.1.0.2")
        cls.a3 = cls.new_agent("127.1.0.3")
        cls.refusing = cls.new_agent("127.1.0.4", code="5.03")
        cls.far_ip, cls.far_port = h.silent_address()
        for node, agent in (("n1", cls.a1), ("n2", cls.a2), ("n3", cls.a3),
                            ("busy", cls.refusing)):
            r = cls.server.coap("post", "nodes", {"node_id": node, "ip_address": agent.ip,
                                                  "port": agent.port, "hostname": node})
            assert r.code == "2.01", r
        r = cls.server.coap("post", "nodes", {"node_id": "far", "ip_address": cls.far_ip,
                                              "port": cls.far_port})
        assert r.code == "2.01", r

    def test_install_notifies_every_target(self):
        job = self.create(["n1", "n2", "n3"])
        r = self.install(job)
        self.assertEqual(r.code, "2.04", r)
        body = r.json()
        self.assertIs(body["success"], True)
        self.assertEqual(body["job_id"], job)
        self.assertEqual(body["message"], "Update job %s triggered successfully" % job)
        for node, agent in (("n1", self.a1), ("n2", self.a2), ("n3", self.a3)):
            got = h.deadline_poll(lambda: self.notifications(agent, job), 20,
                                  what="notification at " + agent.ip)
            self.assertEqual(len(got), 1, got)
            self.assertEqual(got[0]["job_id"], job)
            self.assertEqual(got[0]["node_id"], node)
            # The ids and the hints of what it installs (name, version):
            # never the spec.
            self.assertEqual(sorted(got[0]), ["job_id", "name", "node_id", "version"])
            r = self.server.coap("get", "updates/%s/spec?node_id=%s" % (job, node))
            self.assertEqual(r.code, "2.05", r)
            self.assertEqual(r.json()["package_type"], "pip")
            self.assertEqual(r.json()["packages"], PIP_PACKAGES)
        st = self.wait_states(job, {"n1": "notified", "n2": "notified", "n3": "notified"})
        self.assertEqual(st["status"], "in_progress")
        self.assertIsNone(st["error_message"])
        # A node that is not a target heard nothing.
        self.assertEqual(self.notifications(self.refusing, job), [])

    def test_all_targets(self):
        job = self.create(["all"])
        r = self.install(job)
        self.assertEqual(r.code, "2.04", r)
        st = self.wait_states(job, {"n1": "notified", "n2": "notified", "n3": "notified",
                                    "busy": "failed", "far": "failed"})
        self.assertEqual(st["status"], "in_progress")

    def test_reports_move_states_to_completed(self):
        job = self.create(["n1", "n2"])
        self.assertEqual(self.install(job).code, "2.04")
        self.wait_states(job, {"n1": "notified", "n2": "notified"})
        self.report_ok(job, "n1", "downloading")
        r = self.report(job, "n1", "downloading", progress=40)
        self.assertEqual(r.code, "2.04", r)
        st = self.status(job)
        self.assertEqual(st["node_statuses"], {"n1": "downloading", "n2": "notified"})
        self.assertEqual(st["status"], "in_progress")
        nodes = {n["node_id"]: n for n in st.get("nodes", [])}
        if nodes:
            self.assertEqual(nodes["n1"]["progress"], 40)
        self.report_ok(job, "n1", "downloaded", "installing")
        self.assertEqual(self.status(job)["node_statuses"]["n1"], "installing")
        self.report_ok(job, "n1", "succeeded")
        self.assertEqual(self.status(job)["status"], "in_progress")
        # Steps may be skipped forward.
        self.report_ok(job, "n2", "installing", "succeeded")
        st = self.status(job)
        self.assertEqual(st["node_statuses"], {"n1": "succeeded", "n2": "succeeded"})
        self.assertEqual(st["status"], "completed")
        self.assertEqual(st.get("progress", 100), 100)
        listed = {j["job_id"]: j for j in self.server.coap("get", "updates").json()["updates"]}
        self.assertEqual(listed[job]["status"], "completed")
        self.assertEqual(listed[job]["counts"]["succeeded"], 2)

    def test_partially_failed_and_failed(self):
        job = self.create(["n1", "n2"])
        self.assertEqual(self.install(job).code, "2.04")
        self.wait_states(job, {"n1": "notified", "n2": "notified"})
        self.report_ok(job, "n1", "downloading", "succeeded")
        r = self.report(job, "n2", "failed", result=5, error_message="integrity check failed")
        self.assertEqual(r.code, "2.04", r)
        st = self.status(job)
        self.assertEqual(st["status"], "partially_failed")
        nodes = {n["node_id"]: n for n in st.get("nodes", [])}
        if nodes:
            self.assertEqual(nodes["n2"]["error_message"], "integrity check failed")
            self.assertEqual(nodes["n2"]["result"], 5)

        job = self.create(["n1", "n2"])
        self.assertEqual(self.install(job).code, "2.04")
        self.wait_states(job, {"n1": "notified", "n2": "notified"})
        self.report_ok(job, "n1", "failed")
        self.assertEqual(self.status(job)["status"], "in_progress")
        self.report_ok(job, "n2", "downloading", "failed")
        self.assertEqual(self.status(job)["status"], "failed")

    def test_illegal_transitions(self):
        job = self.create(["n1", "n2"])
        self.assertEqual(self.install(job).code, "2.04")
        self.wait_states(job, {"n1": "notified", "n2": "notified"})
        self.report_ok(job, "n1", "installing")
        cases = [
            ("n1", "downloading", {}),      # backwards
            ("n2", "pending", {}),          # set by the server only
            ("n2", "timed_out", {}),        # set by the server only
            ("n2", "skipped", {}),          # set by the server only
        ]
        for node, status, extra in cases:
            with self.subTest(node=node, status=status):
                r = self.report(job, node, status, **extra)
                self.assertErrorJson(r, "4.00", "status")
        self.report_ok(job, "n1", "succeeded")
        for status in ("downloading", "failed", "installing"):
            with self.subTest(after="succeeded", status=status):
                self.assertErrorJson(self.report(job, "n1", status), "4.00", "status")
        r = self.report(job, "n2", "rebooting")
        self.assertErrorJson(r, "4.00", "status")
        # Nothing moved.
        self.assertEqual(self.status(job)["node_statuses"], {"n1": "succeeded", "n2": "notified"})

    def test_report_for_node_not_in_job(self):
        job = self.create(["n1"])
        self.assertEqual(self.install(job).code, "2.04")
        for node in ("n2", "never-registered"):
            with self.subTest(node=node):
                self.assertErrorJson(self.report(job, node, "downloading"), "4.04", "node_id")
        self.assertErrorJson(self.report("no-such-job", "n1", "downloading"), "4.04", "job_id")
        self.assertEqual(sorted(self.status(job)["node_statuses"]), ["n1"])

    def test_report_before_install(self):
        job = self.create(["n1"])
        self.assertErrorJson(self.report(job, "n1", "downloading"), "4.00")
        self.assertEqual(self.status(job)["status"], "created")

    def test_unreachable_target_fails(self):
        job = self.create(["far", "n3"])
        self.assertEqual(self.install(job).code, "2.04")
        # ICMP port unreachable on loopback makes this quick; allow the CoAP
        # retransmission window (~93 s) in case it is not.
        st = self.wait_states(job, {"far": "failed", "n3": "notified"}, timeout=100)
        nodes = {n["node_id"]: n for n in st["nodes"]}
        msg = nodes["far"]["error_message"]
        self.assertIsInstance(msg, str)
        self.assertIn("unreachable", msg)
        self.assertIn(self.far_ip, msg)
        self.assertEqual(st["status"], "in_progress")
        self.report_ok(job, "n3", "succeeded")
        self.assertEqual(self.status(job)["status"], "partially_failed")

    def test_agent_refusing_the_notification_fails(self):
        job = self.create(["busy"])
        self.assertEqual(self.install(job).code, "2.04")
        st = self.wait_job(job, "failed")
        node = st["nodes"][0]
        self.assertEqual(node["status"], "failed")
        self.assertIn("5.03", node["error_message"])
        self.assertEqual(len(self.notifications(self.refusing, job)), 1)

    def test_unknown_target_at_install(self):
        job = self.create(["n1", "ghost-7"])
        r = self.install(job)
        self.assertErrorJson(r, "4.04", "target_nodes")
        self.assertIn("ghost-7", r.body)
        st = self.status(job)
        self.assertEqual(st["status"], "created")
        self.assertEqual(self.notifications(self.a1, job), [])

    def test_install_twice(self):
        job = self.create(["n1"])
        self.assertEqual(self.install(job).code, "2.04")
        r = self.install(job)
        self.assertErrorJson(r, "4.00", "job_id")
        self.assertIn("already", r.json()["error"])
        self.wait_states(job, {"n1": "notified"})
        self.assertEqual(len(self.notifications(self.a1, job)), 1)

    def test_install_unknown_job(self):
        for action in ("install", "status", "cancel"):
            with self.subTest(action=action):
                r = self.server.coap("post", "updates", {"action": action, "job_id": "nope-1"})
                self.assertErrorJson(r, "4.04", "job_id")

    def test_cancel(self):
        """A cancel reaches the agents; a node is cancelled on its agent's word
        only, and what an agent really did afterwards is taken."""
        job = self.create(["n1", "n2"])
        self.assertEqual(self.install(job).code, "2.04")
        self.wait_states(job, {"n1": "notified", "n2": "notified"})
        self.report_ok(job, "n1", "succeeded")
        self.report_ok(job, "n2", "downloading")
        r = self.server.coap("post", "updates", {"action": "cancel", "job_id": job})
        self.assertEqual(r.code, "2.04", r)
        st = self.status(job)
        self.assertEqual(st["status"], "cancelled")
        self.assertEqual(st["node_statuses"], {"n1": "succeeded", "n2": "downloading"})
        # n2's agent is told; n1, finished, is not.
        h.deadline_poll(lambda: [b for b in self.notifications(self.a2, job)
                                 if b.get("action") == "cancel"], 10, what="cancel sent to n2")
        self.assertEqual([b for b in self.notifications(self.a1, job)
                          if b.get("action") == "cancel"], [])
        # What the agent did next is the truth: it installed, then confirmed.
        self.report_ok(job, "n2", "installing", "cancelled")
        self.assertEqual(self.status(job)["node_statuses"],
                         {"n1": "succeeded", "n2": "cancelled"})
        self.assertErrorJson(self.install(job), "4.00", "job_id")
        r = self.server.coap("post", "updates", {"action": "cancel", "job_id": job})
        self.assertErrorJson(r, "4.00", "job_id")
        self.assertErrorJson(self.server.coap("post", "updates",
                                              {"action": "retry", "job_id": job}),
                             "4.00", "job_id")
        # A job cancelled before its trigger never notifies anyone.
        job2 = self.create(["n3"])
        r = self.server.coap("post", "updates", {"action": "cancel", "job_id": job2})
        self.assertEqual(r.code, "2.04", r)
        self.assertEqual(self.status(job2)["status"], "cancelled")
        self.assertErrorJson(self.install(job2), "4.00", "job_id")
        self.assertEqual(self.notifications(self.a3, job2), [])

    def test_forced_cancel_again_and_an_agent_that_finished_anyway(self):
        job = self.create(["n1", "n2"])
        self.assertEqual(self.install(job).code, "2.04")
        self.wait_states(job, {"n1": "notified", "n2": "notified"})
        self.report_ok(job, "n1", "installing")
        r = self.server.coap("post", "updates", {"action": "cancel", "job_id": job})
        self.assertEqual(r.code, "2.04", r)
        r = self.server.coap("post", "updates",
                             {"action": "cancel", "job_id": job, "force": True})
        self.assertEqual(r.code, "2.04", r)
        h.deadline_poll(lambda: [b for b in self.notifications(self.a1, job)
                                 if b.get("action") == "cancel" and b.get("force")],
                        10, what="forced cancel sent to n1")
        # n1 ended before the cancel reached it: its success stands.
        self.report_ok(job, "n1", "succeeded")
        self.report_ok(job, "n2", "cancelled")
        st = self.status(job)
        self.assertEqual(st["status"], "cancelled")
        self.assertEqual(st["node_statuses"], {"n1": "succeeded", "n2": "cancelled"})
        # Everything confirmed: the job may go.
        r = self.server.coap("delete", "updates/" + job)
        self.assertIn(r.code, ("2.02",), r)

    def test_retransmitted_requests_act_once(self):
        """A CON retransmitted after its answer was sent (the answer or our ACK
        lost) is answered again, and acts once (DESIGN §8: deduplicate)."""
        def exchange(c, datagram, token):
            c.send_raw(datagram)
            end = time.monotonic() + 10
            while time.monotonic() < end:
                data = c.recv_raw(0.5)
                m = h.decode_message(data) if data else None
                if m is None:
                    continue
                if m.type == h.CON:
                    c.send_raw(h.encode_message(h.ACK, 0, m.mid))
                if m.code >= 64 and m.token == token:
                    return m
            self.fail("no answer")

        name = "dedup-%d" % os.getpid()
        body = json.dumps({"name": name, "version": "1", "package_type": "pip",
                           "target_nodes": ["n1"], "packages": ["x==1"]}).encode()
        with h.RawClient(h.HOST, self.server.port) as c:
            token = b"dd01"
            dg = h.encode_message(h.CON, 2, 0x4D01, token,
                                  h.request_options("updates", 50), body)
            first = exchange(c, dg, token)
            second = exchange(c, dg, token)
            self.assertEqual(first.code_text, "2.01")
            self.assertEqual(second.code_text, "2.01")
            job = json.loads(first.payload)["job_id"]
            self.assertEqual(json.loads(second.payload)["job_id"], job)
            listed = [j for j in self.server.coap("get", "updates").json()["updates"]
                      if j["name"] == name]
            self.assertEqual(len(listed), 1, listed)
            # A retransmitted report is not refused as an illegal transition.
            self.assertEqual(self.install(job).code, "2.04")
            self.wait_states(job, {"n1": "notified"})
            token = b"dd02"
            rep = json.dumps({"action": "report", "job_id": job, "node_id": "n1",
                              "status": "succeeded"}).encode()
            dg = h.encode_message(h.CON, 2, 0x4D02, token, h.request_options("updates", 50), rep)
            self.assertEqual(exchange(c, dg, token).code_text, "2.04")
            self.assertEqual(exchange(c, dg, token).code_text, "2.04")
            self.assertEqual(self.status(job)["status"], "completed")

    def test_job_listing(self):
        job = self.create(["n1", "n2"], description="listing check")
        listed = {j["job_id"]: j for j in self.server.coap("get", "updates").json()["updates"]}
        self.assertIn(job, listed)
        j = listed[job]
        self.assertEqual((j["name"], j["version"], j["package_type"], j["status"]),
                         ("pkg-update", "1.2.3", "pip", "created"))
        self.assertEqual(j["target_nodes"], ["n1", "n2"])
        self.assertIn("created_at", j)
        self.assertIn("counts", j)


class JobTimeoutTest(JobHelpers, h.ServerTestCase):
    server_args = ("--job-timeout", "2")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent = cls.new_agent("127.1.0.5")
        # Takes the notification and never answers it: the node stays pending.
        cls.mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cls.addClassCleanup(cls.mute.close)
        cls.mute.bind(("127.1.0.6", 0))

    def test_unfinished_nodes_time_out(self):
        self.register("t-done", self.agent.ip, self.agent.port)
        self.register("t-slow", self.agent.ip, self.agent.port)
        self.register("t-mute", *self.mute.getsockname())
        job = self.create(["t-done", "t-slow", "t-mute"])
        self.assertEqual(self.install(job).code, "2.04")
        self.report_ok(job, "t-done", "downloading", "succeeded")
        self.report_ok(job, "t-slow", "downloading")
        st = self.wait_job(job, "partially_failed", timeout=30)
        self.assertEqual(st["node_statuses"],
                         {"t-done": "succeeded", "t-slow": "timed_out", "t-mute": "timed_out"})
        nodes = {n["node_id"]: n for n in st["nodes"]}
        self.assertIn("2 s", nodes["t-slow"]["error_message"])
        # A late report cannot revive a timed-out node.
        self.assertErrorJson(self.report(job, "t-slow", "succeeded"), "4.00", "status")

    def test_all_timed_out_is_failed(self):
        self.register("t-only", *self.mute.getsockname())
        job = self.create(["t-only"])
        self.assertEqual(self.install(job).code, "2.04")
        st = self.wait_job(job, "failed", timeout=30)
        self.assertEqual(st["node_statuses"], {"t-only": "timed_out"})


class LargeJobTest(JobHelpers, h.ServerTestCase):
    """A job on 150 nodes (all at one fake agent)."""

    N = 150

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent = cls.new_agent("127.1.0.8")
        bodies = [{"node_id": "big-%03d" % i, "ip_address": cls.agent.ip,
                   "port": cls.agent.port} for i in range(cls.N)]
        acked, failures = h.register_stream(cls.server.port, bodies)
        assert len(acked) == cls.N and not failures, failures

    def raw_updates(self, body):
        r = self.server.raw("post", "updates", body)
        return r

    def test_large_job_runs_to_completed(self):
        job = self.create(["all"])
        r = self.raw_updates({"action": "install", "job_id": job})
        self.assertEqual(r.code, "2.04", r)
        self.assertEqual(r.json()["job_id"], job)
        ids = ["big-%03d" % i for i in range(self.N)]
        self.wait_states(job, {i: "notified" for i in ids}, timeout=60)
        self.assertEqual(sorted(b["node_id"] for b in self.notifications(self.agent, job)), ids)
        for i in ids:
            r = self.raw_updates({"action": "report", "job_id": job, "node_id": i,
                                  "status": "succeeded"})
            self.assertEqual(r.code, "2.04", r)
        # The status read (piggybacked, block-wise) is whole through coap-client.
        st = self.status(job)
        self.assertEqual(st["status"], "completed")
        self.assertEqual(len(st["node_statuses"]), self.N)
        self.assertEqual(st["counts"]["succeeded"], self.N)

    # Control-plane answers go out as separate (async) responses, and
    # libcoap 4.3.1's coap-client cannot follow a block-wise body that starts
    # in a separate response: the install and cancel answers must stay one
    # datagram whatever the number of targets.
    def test_install_answer_readable_by_coap_client(self):
        job = self.create(["all"])
        r = self.server.coap("post", "updates", {"action": "install", "job_id": job}, wait=3)
        self.assertEqual(r.code, "2.04", r)
        self.assertEqual(r.json()["job_id"], job)

    def test_cancel_answer_readable_by_coap_client(self):
        job = self.create(["all"])
        r = self.raw_updates({"action": "install", "job_id": job})
        self.assertEqual(r.code, "2.04", r)
        r = self.server.coap("post", "updates", {"action": "cancel", "job_id": job}, wait=3)
        self.assertEqual(r.code, "2.04", r)
        self.assertEqual(r.json()["status"], "cancelled")


if __name__ == "__main__":
    h.main()
