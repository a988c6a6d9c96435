#!/usr/bin/env python3
"""Durability (DESIGN §5): what the server acknowledged survives kill -9.

(a) 200 nodes, jobs and per-node states survive kill -9 and a restart on the
    same database; the job goes on where it stood.
(b) kill -9 in the middle of a stream of registrations (raw CoAP client, ~20 in
    flight): every registration answered 2.01 before the kill is there after.
(c) health telemetry reported more than a second before kill -9 is there.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

NODE_KEYS = ("node_id", "hostname", "ip_address", "port", "services", "drivers", "system_info",
             "registered_at")


def node_view(nodes):
    return {n["node_id"]: {k: n.get(k) for k in NODE_KEYS} for n in nodes}


def job_view(status):
    nodes = {n["node_id"]: (n["status"], n.get("progress"), n.get("result"), n.get("error_message"))
             for n in status.get("nodes", [])}
    return {"status": status["status"], "node_statuses": status["node_statuses"],
            "nodes": nodes, "counts": status.get("counts")}


class DurabilityTest(h.ServerTestCase):
    start_server = False

    def get_nodes(self, server, wait=60):
        r = server.coap("get", "nodes", wait=wait)
        self.assertEqual(r.code, "2.05", r)
        return r.json()["nodes"]

    def job_status(self, server, job):
        r = server.coap("post", "updates", {"action": "status", "job_id": job})
        self.assertEqual(r.code, "2.05", r)
        return r.json()

    def test_a_nodes_jobs_states_survive_kill9(self):
        server = self.new_server()
        agent = self.new_agent("127.1.0.7")
        bodies = [{"node_id": "dur-%03d" % i, "hostname": "host-%03d" % i,
                   "ip_address": agent.ip, "port": agent.port,
                   "services": ["ssh", "svc-%d" % (i % 7)], "drivers": ["gpio"],
                   "system_info": {"os": "linux", "arch": "arm64", "index": i}}
                  for i in range(200)]
        acked, failures = h.register_stream(server.port, bodies, window=20)
        self.assertEqual(failures, [])
        self.assertEqual(len(acked), 200)
        r = server.coap("post", "updates", {"name": "fleet-wide", "version": "7",
                                            "package_type": "apt", "target_nodes": ["all"],
                                            "packages": ["curl", "jq=1.6-2.1"]})
        self.assertEqual(r.code, "2.01", r)
        job = r.json()["job_id"]
        r = server.coap("post", "updates", {"name": "later", "version": "8",
                                            "package_type": "pip", "target_nodes": ["dur-001"],
                                            "packages": ["six==1.16.0"]})
        self.assertEqual(r.code, "2.01", r)
        job2 = r.json()["job_id"]
        # The raw client: coap-client cannot read this answer (see
        # test_jobs.LargeJobTest).
        r = server.raw("post", "updates", {"action": "install", "job_id": job})
        self.assertEqual(r.code, "2.04", r)
        self.assertEqual(r.json()["job_id"], job)
        h.deadline_poll(lambda: set(self.job_status(server, job)["node_statuses"].values())
                        == {"notified"}, 60, interval=0.3, what="200 nodes notified")
        self.assertEqual(len({b["node_id"] for b in agent.bodies() if b["job_id"] == job}), 200)

        def report(i, status, **extra):
            body = {"action": "report", "job_id": job, "node_id": "dur-%03d" % i,
                    "status": status}
            body.update(extra)
            r = server.raw("post", "updates", body)
            self.assertEqual(r.code, "2.04", r)
        for i in range(0, 40):
            report(i, "succeeded")
        for i in range(40, 70):
            report(i, "downloading", progress=30 + i % 50)
        for i in range(70, 80):
            report(i, "failed", result=2, error_message="not enough storage on node %d" % i)
        for i in range(80, 90):
            report(i, "installing")
        r = server.raw("put", "health", {"node_id": "dur-005", "cpu_percent": 55.5})
        self.assertEqual(r.code, "2.04")

        nodes_before = node_view(self.get_nodes(server))
        job_before = job_view(self.job_status(server, job))
        job2_before = job_view(self.job_status(server, job2))
        updates_before = server.coap("get", "updates").json()["updates"]
        self.assertEqual(len(nodes_before), 200)
        self.assertEqual(job_before["counts"]["succeeded"], 40)

        server.kill9()
        server.start()

        nodes_after = node_view(self.get_nodes(server))
        self.assertEqual(nodes_after, nodes_before)
        self.assertEqual(job_view(self.job_status(server, job)), job_before)
        self.assertEqual(job_view(self.job_status(server, job2)), job2_before)
        self.assertEqual(self.job_status(server, job2)["status"], "created")
        updates_after = server.coap("get", "updates").json()["updates"]
        strip = lambda us: sorted(({k: v for k, v in u.items() if k != "updated_at"}
                                   for u in us), key=lambda u: u["job_id"])
        self.assertEqual(strip(updates_after), strip(updates_before))
        # The job goes on where it stood.
        report(40, "succeeded")
        report(80, "succeeded")
        self.assertErrorJson(server.coap("post", "updates", {
            "action": "report", "job_id": job, "node_id": "dur-000", "status": "downloading"}),
            "4.00", "status")
        st = self.job_status(server, job)
        self.assertEqual(st["counts"]["succeeded"], 42)
        self.assertEqual(st["status"], "in_progress")
        self.assertErrorJson(server.coap("post", "updates", {"action": "install", "job_id": job}),
                             "4.00", "job_id")
        # Nobody was notified twice (every node had answered before the kill).
        notes = [b["node_id"] for b in agent.bodies() if b["job_id"] == job]
        self.assertEqual(len(notes), 200)
        # The job can still be installed and finished after the restart.
        self.assertEqual(server.coap("post", "updates",
                                     {"action": "install", "job_id": job2}).code, "2.04")
        h.deadline_poll(lambda: self.job_status(server, job2)["node_statuses"]
                        == {"dur-001": "notified"}, 20, what="job2 notified")

    def test_b_kill9_during_registration_stream(self):
        server = self.new_server()
        acked, failures = [], []
        stop = threading.Event()
        bodies = ({"node_id": "stream-%06d" % i, "hostname": "s%d" % i,
                   "ip_address": "127.1.200.1", "services": ["ssh"]} for i in range(1000000))
        worker = threading.Thread(target=h.register_stream, args=(server.port, bodies),
                                  kwargs=dict(window=20, stop=stop, acked=acked,
                                              failures=failures),
                                  daemon=True)
        worker.start()
        try:
            h.deadline_poll(lambda: len(acked) >= 1000, 120, interval=0.005,
                            what="1,000 acknowledged registrations")
            self.assertTrue(worker.is_alive(), "the stream ended before the kill")
            server.kill9()
        finally:
            stop.set()
            worker.join(30)
        self.assertFalse(worker.is_alive())
        confirmed = list(acked)  # answered 2.01 before the stream stopped
        self.assertGreaterEqual(len(confirmed), 1000)
        self.assertEqual([f for f in failures if f[1] != "stalled"], [])
        server.start()
        stored = {n["node_id"] for n in self.get_nodes(server)}
        lost = [n for n in confirmed if n not in stored]
        self.assertEqual(lost, [], "%d of %d acknowledged registrations lost"
                         % (len(lost), len(confirmed)))
        self.assertGreaterEqual(len(stored), len(confirmed))
        sys.stderr.write("\n  %d registrations acknowledged before kill -9, %d stored\n"
                         % (len(confirmed), len(stored)))

    def test_c_health_survives_kill9(self):
        server = self.new_server(["--health-flush-ms", "1000"])
        for node in ("hl-1", "hl-2"):
            self.assertEqual(server.coap("post", "nodes", {"node_id": node}).code, "2.01")
        report = {"node_id": "hl-1", "overall_healthy": False, "cpu_percent": 91.25,
                  "memory_percent": 12.5, "disk_percent": 77.0, "temperature": 65.5,
                  "services_status": {"docker": False}, "error_messages": ["docker down"]}
        self.assertEqual(server.coap("put", "health", report).code, "2.04")
        self.assertEqual(server.coap("put", "health", {"node_id": "hl-2", "cpu_percent": 1.0,
                                                       "overall_healthy": True}).code, "2.04")
        # A later report replaces the earlier one.
        report2 = dict(report, cpu_percent=92.75, error_messages=["docker down", "disk 77%"])
        self.assertEqual(server.coap("put", "health", report2).code, "2.04")
        time.sleep(1.5)  # the contract: health at most one second old after kill -9
        server.kill9()
        server.start()
        nodes = {n["node_id"]: n for n in self.get_nodes(server)}
        health = nodes["hl-1"]["health"]
        self.assertIsInstance(health, dict, nodes["hl-1"])
        self.assertEqual(health["cpu_percent"], 92.75)
        self.assertEqual(health["memory_percent"], 12.5)
        self.assertEqual(health["disk_percent"], 77.0)
        self.assertEqual(health["temperature"], 65.5)
        self.assertIs(health["overall_healthy"], False)
        self.assertEqual(health["error_messages"], ["docker down", "disk 77%"])
        self.assertEqual(nodes["hl-2"]["health"]["cpu_percent"], 1.0)
        fleet = server.coap("get", "health").json()
        self.assertEqual(fleet["unhealthy_nodes"], 1)
        self.assertEqual(fleet["unhealthy"][0]["node_id"], "hl-1")

    def test_d_graceful_stop_keeps_latest_health(self):
        server = self.new_server(["--health-flush-ms", "1000"])
        self.assertEqual(server.coap("post", "nodes", {"node_id": "gs-1"}).code, "2.01")
        self.assertEqual(server.coap("put", "health", {"node_id": "gs-1",
                                                       "cpu_percent": 33.0}).code, "2.04")
        self.assertEqual(server.stop(), 0)  # SIGTERM right away: flushed on the way out
        server.start()
        nodes = self.get_nodes(server)
        self.assertEqual(nodes[0]["health"]["cpu_percent"], 33.0)


if __name__ == "__main__":
    h.main()
