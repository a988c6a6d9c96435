#!/usr/bin/env python3
"""Campaigns through coap-client with fake agents (127.1.2.x, port 5683):
waves start in turn, an error threshold pauses the campaign, retry and
resume go on, `kill -9` of the server keeps the campaign where it stood,
max_parallel caps the nodes in flight, an operator pauses and resumes."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_jobs import JobHelpers  # noqa: E402

NODES = ["c0", "c1", "c2", "c3", "c4"]


class CampaignTest(JobHelpers, h.ServerTestCase):
    fresh_per_test = True

    @classmethod
    def start_processes(cls):
        super().start_processes()
        cls.fakes = {}
        for i, node in enumerate(NODES):
            agent = cls.new_agent("127.1.2.%d" % (i + 1))
            cls.fakes[node] = agent
            r = cls.server.coap("post", "nodes", {"node_id": node, "ip_address": agent.ip,
                                                  "port": agent.port})
            assert r.code == "2.01", r

    def notified(self, node, job, attempt=1):
        return [b for b in self.notifications(self.fakes[node], job)
                if b.get("action") != "cancel" and b.get("attempt", 1) == attempt]

    def wait_notified(self, nodes, job, attempt=1):
        for n in nodes:
            h.deadline_poll(lambda: self.notified(n, job, attempt), 20,
                            what="%s notified (attempt %d)" % (n, attempt))

    def action(self, job, action, code="2.04"):
        r = self.server.coap("post", "updates", {"action": action, "job_id": job})
        self.assertEqual(r.code, code, r)
        return r

    def test_waves_threshold_retry_resume_and_kill9(self):
        job = self.create(NODES, waves=[20, 60, 100], error_threshold=50)
        self.assertEqual(self.install(job).code, "2.04")
        self.wait_notified(["c0"], job)  # wave 0: 20% of 5 nodes
        h.stays_true(lambda: all(not self.notified(n, job) for n in NODES[1:]), 1.0,
                     what="later waves wait")
        st = self.status(job)
        self.assertEqual([w["nodes"] for w in st["campaign"]["waves"]], [1, 2, 2])
        self.assertEqual(st["campaign"]["waves"][0]["state"], "running")
        self.report_ok(job, "c0", "failed")
        st = h.deadline_poll(lambda: (lambda s: s if s["campaign"]["paused"] else None)(
            self.status(job)), 10, what="the campaign paused")
        self.assertIn("error threshold", st["campaign"]["pause_reason"])
        self.assertEqual(st["status"], "in_progress")
        self.assertErrorJson(self.action(job, "pause", "4.00"), "4.00", "job_id")
        self.assertEqual(self.action(job, "retry").json()["retried"], "1")
        h.stays_true(lambda: not self.notified("c0", job, 2), 1.0, what="no start while paused")
        self.action(job, "resume")
        self.wait_notified(["c0"], job, attempt=2)
        # kill -9 mid-wave: the campaign is where it stood.
        self.server.kill9()
        self.server.start()
        st = self.status(job)
        self.assertEqual(st["campaign"]["wave"], 0)
        self.assertFalse(st["campaign"]["paused"])
        entry = next(n for n in st["nodes"] if n["node_id"] == "c0")
        self.assertEqual(entry["attempt"], 2, entry)
        self.report_ok(job, "c0", "succeeded")
        self.wait_notified(["c1", "c2"], job)
        self.assertEqual(self.status(job)["campaign"]["wave"], 1)
        self.action(job, "pause")
        self.report_ok(job, "c1", "succeeded")
        self.report_ok(job, "c2", "succeeded")
        h.stays_true(lambda: not self.notified("c3", job), 1.0, what="paused by the operator")
        st = self.status(job)
        self.assertIn("paused by an operator", st["campaign"]["pause_reason"])
        self.action(job, "resume")
        self.wait_notified(["c3", "c4"], job)
        self.report_ok(job, "c3", "succeeded")
        self.report_ok(job, "c4", "succeeded")
        st = self.wait_job(job, "completed")
        self.assertEqual([w["state"] for w in st["campaign"]["waves"]],
                         ["succeeded"] * 3, json.dumps(st["campaign"]))
        self.assertErrorJson(self.action(job, "resume", "4.00"), "4.00", "job_id")
        # History: every change of c0 in both attempts, newest first.
        r = self.server.coap("get", "nodes/c0/history")
        self.assertEqual(r.code, "2.05", r)
        h0 = r.json()
        self.assertEqual(h0["node_id"], "c0")
        steps = [(e["attempt"], e["status"]) for e in h0["history"] if e["job_id"] == job]
        self.assertEqual(steps[::-1], [(1, "pending"), (1, "notified"), (1, "failed"),
                                       (2, "pending"), (2, "notified"), (2, "succeeded")], h0)
        # Paged: one entry at a time, `next` leads to the older ones.
        r = self.server.coap("get", "nodes/c0/history?limit=1")
        first = r.json()
        self.assertEqual(len(first["history"]), 1)
        r = self.server.coap("get", "nodes/c0/history?limit=1&before=%d" % first["next"])
        self.assertLess(r.json()["history"][0]["seq"], first["history"][0]["seq"])
        # A job's history, page by page (each answer fits one datagram).
        entries, before = [], None
        while True:
            r = self.server.coap("get", "updates/%s/history%s"
                                 % (job, "" if before is None else "?before=%d" % before))
            self.assertEqual(r.code, "2.05", r)
            entries += r.json()["history"]
            before = r.json()["next"]
            if before is None:
                break
        self.assertEqual({e["node_id"] for e in entries}, set(NODES))
        self.assertEqual(len(entries), 6 + 4 * 3)  # c0: 6 steps, the others 3 each
        self.assertErrorJson(self.server.coap("get", "nodes/c0/history?limit=0"), "4.00",
                             "limit")
        self.assertErrorJson(self.server.coap("get", "nodes/c0/history?x=1"), "4.00", "x")

    def test_max_parallel_and_bad_fields(self):
        job = self.create(NODES, max_parallel=2)
        self.install(job)
        h.deadline_poll(lambda: sum(1 for n in NODES if self.notified(n, job)) == 2, 20,
                        what="two nodes started")
        h.stays_true(lambda: sum(1 for n in NODES if self.notified(n, job)) == 2, 1.0,
                     what="no third node in flight")
        first = [n for n in NODES if self.notified(n, job)]
        self.report_ok(job, first[0], "succeeded")
        h.deadline_poll(lambda: sum(1 for n in NODES if self.notified(n, job)) == 3, 20,
                        what="a third node once one finished")
        for body, field in (({"waves": [50, 20, 100]}, "waves"), ({"waves": [10, 50]}, "waves"),
                            ({"window": "25:00-01:00"}, "window"),
                            ({"error_threshold": 101}, "error_threshold"),
                            ({"max_parallel": -1}, "max_parallel")):
            b = {"name": "x", "version": "1", "package_type": "script", "script": "true"}
            b.update(body)
            self.assertErrorJson(self.server.coap("post", "updates", b), "4.00", field)

    def test_delete_node_decommissions_it(self):
        job = self.create(NODES)
        self.install(job)
        self.wait_notified(NODES, job)
        self.report_ok(job, "c0", "succeeded")
        r = self.server.coap("delete", "nodes/c1")
        self.assertEqual(r.code, "2.02", r)
        self.assertEqual(r.json()["node_id"], "c1")
        # The job hears of the deletion after the answer (it skips the node
        # in its own time).
        def c1_entry():
            e = next(n for n in self.status(job)["nodes"] if n["node_id"] == "c1")
            return e if e["status"] != "notified" else None
        entry = h.deadline_poll(c1_entry, 10, 0.1, what="c1 skipped in the job")
        self.assertEqual((entry["status"], entry["error_message"]), ("skipped", "node was deleted"))
        ids = [n["node_id"] for n in self.server.coap("get", "nodes").json()["nodes"]]
        self.assertNotIn("c1", ids)
        self.assertEqual(self.server.coap("get", "health").json()["total_nodes"], len(NODES) - 1)
        self.assertErrorJson(self.server.coap("get", "nodes/c1/health"), "4.04", "node_id")
        self.assertErrorJson(self.server.coap("delete", "nodes/c1"), "4.04", "node_id")
        # Its reports are refused; its history stays.
        self.assertErrorJson(self.server.coap("put", "health", {"node_id": "c1"}), "4.04",
                             "node_id")
        hist = self.server.coap("get", "nodes/c1/history").json()["history"]
        self.assertEqual(hist[0]["status"], "skipped")
        # A finished node's entry stays as it was.
        r = self.server.coap("delete", "nodes/c0")
        self.assertEqual(r.code, "2.02", r)
        entry = next(n for n in self.status(job)["nodes"] if n["node_id"] == "c0")
        self.assertEqual(entry["status"], "succeeded")

    def test_delete_artifact_unless_a_job_needs_it(self):
        import agent_harness as ah
        src = os.path.join(self.tmp, "fw.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(3000))
        url = "coap://%s:%d/artifacts/fw.bin" % (h.HOST, self.server.port)
        code, out, err = ah.coap_client_file(url, "put", infile=src)
        self.assertEqual(code, "2.04", err)
        job = self.create(["c0"], package_type="file", artifact="fw.bin",
                          target_path="/opt/fw.bin", packages=[])
        r = self.server.coap("delete", "artifacts/fw.bin")
        self.assertErrorJson(r, "4.09", "name")
        self.assertEqual(r.json()["jobs"], job)
        self.assertEqual(self.server.coap("delete", "updates/" + job).code, "2.02")
        r = self.server.coap("delete", "artifacts/fw.bin")
        self.assertEqual(r.code, "2.02", r)
        self.assertErrorJson(self.server.coap("get", "artifacts/fw.bin"), "4.04", "artifact")
        names = [a["name"] for a in self.server.coap("get", "artifacts").json()["artifacts"]]
        self.assertNotIn("fw.bin", names)
        self.assertErrorJson(self.server.coap("delete", "artifacts/fw.bin"), "4.04", "artifact")
        self.assertErrorJson(self.server.coap("delete", "artifacts/never-was.bin"), "4.04",
                             "path")
        # Uploaded again, it is served again.
        code, out, err = ah.coap_client_file(url, "put", infile=src)
        self.assertEqual(code, "2.04", err)
        back = os.path.join(self.tmp, "back.bin")
        code, out, err = ah.coap_client_file(url, "get", outfile=back)
        self.assertEqual(code, "2.05", err)
        with open(src, "rb") as a, open(back, "rb") as b:
            self.assertEqual(a.read(), b.read())


if __name__ == "__main__":
    h.main()
