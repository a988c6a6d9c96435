#!/usr/bin/env python3
"""Targeting and the version inventory, with real agents:

- agents register the labels they are started with (--label); a job for
  target_labels reaches the matching nodes only;
- a successful job puts its name and version in the node's inventory (the
  agent's inventory.json, sent with its success and every registration), and
  the server shows it in GET /nodes; a job may target `inventory.<name>`;
- an operator labels a node (`coapfleet node label`, POST /nodes action
  label): the next job for that label reaches it, and a later registration of
  the agent keeps the operator's label;
- a success report whose inventory names another version is failed (the
  node does not run what the job installs)."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402

CLI_BIN = os.environ.get("COAPFLEET_CLI") or os.path.join(os.path.dirname(h.SERVER_BIN),
                                                          "coapfleet")


class TargetsTest(ah.AgentTestCase):
    workers = 2

    @classmethod
    def worker_args_for(cls, index):
        return ["--label", "site=berlin" if index == 1 else "site=paris", "--label", "ring=stable"]

    def setUp(self):
        super().setUp()
        self.berlin, self.paris = self.workers_list

    def cli(self, *args):
        p = subprocess.run([CLI_BIN, "--server", "coap://%s:%d" % (h.HOST, self.server.port)]
                           + list(args), capture_output=True, text=True, timeout=120)
        return p

    def node(self, node_id):
        r = self.server.coap("get", "nodes?node_id=" + node_id)
        self.assertEqual(r.code, "2.05", r)
        nodes = r.json()["nodes"]
        self.assertEqual(len(nodes), 1, r)
        return nodes[0]

    def run_job(self, name, version, labels, script="true"):
        job = self.create_job({"name": name, "version": version, "package_type": "script",
                               "script": script, "target_labels": labels})
        self.install(job)
        return self.wait_job_final(job, timeout=60)

    def test_1_labels_target_and_success_fills_the_inventory(self):
        self.assertEqual(self.node(self.berlin.node_id)["labels"],
                         {"site": "berlin", "ring": "stable"})
        body = self.run_job("tool", "2.0", {"site": "berlin"})
        self.assertEqual(body["node_statuses"], {self.berlin.node_id: "succeeded"})
        self.assertEqual(body["status"], "completed")
        self.assertEqual(self.node(self.berlin.node_id)["inventory"], {"tool": "2.0"})
        self.assertEqual(self.node(self.paris.node_id)["inventory"], {})
        on_disk = json.loads(self.berlin.read_state_file("inventory.json"))
        self.assertEqual(on_disk, {"tool": "2.0"})
        # Targeting what a node runs.
        body = self.run_job("tool-check", "1", {"inventory.tool": "2.0"})
        self.assertEqual(list(body["node_statuses"]), [self.berlin.node_id])
        # Nothing matches: the trigger names target_labels, no job runs.
        job = self.create_job({"name": "x", "version": "1", "package_type": "script",
                               "script": "true", "target_labels": {"site": "tokyo"}})
        r = self.server.coap("post", "updates", {"action": "install", "job_id": job})
        self.assertEqual(r.code, "4.00", r)
        self.assertEqual(r.json().get("field"), "target_labels", r)

    def test_2_operator_labels_reach_jobs_and_outlive_registrations(self):
        p = self.cli("node", "label", self.paris.node_id, "ring=canary")
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assertIn("ring=canary", p.stdout)
        body = self.run_job("canary-tool", "1", {"ring": "canary"})
        self.assertEqual(body["node_statuses"], {self.paris.node_id: "succeeded"})
        # The agent registers again (restarted): its own labels come back,
        # the operator's one stays, and so does its inventory.
        self.paris.stop()
        self.paris.start()
        self.wait_registered([self.paris])
        n = self.node(self.paris.node_id)
        self.assertEqual(n["labels"], {"site": "paris", "ring": "canary"})
        self.assertEqual(n["inventory"].get("canary-tool"), "1")
        # Removing a label (KEY=).
        p = self.cli("node", "label", self.paris.node_id, "ring=")
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assertEqual(self.node(self.paris.node_id)["labels"], {"site": "paris"})
        # Bad labels name the field.
        r = self.server.coap("post", "nodes", {"action": "label", "node_id": self.paris.node_id,
                                               "labels": {"bad key": "x"}})
        self.assertEqual(r.code, "4.00", r)
        self.assertEqual(r.json()["field"], "labels")
        r = self.server.coap("post", "nodes", {"action": "label", "node_id": "ghost",
                                               "labels": {"a": "b"}})
        self.assertEqual(r.code, "4.04", r)

    def test_3_a_success_naming_another_version_is_failed(self):
        # A node that reports success while its inventory still names the
        # old version (the install did not take) is not counted succeeded.
        job = self.create_job({"name": "fw", "version": "9.9", "package_type": "script",
                               "script": "sleep 30", "target_labels": {"site": "berlin"}})
        self.install(job)
        h.deadline_poll(lambda: self.status(job)["node_statuses"][self.berlin.node_id]
                        == "installing" or None, 20, 0.2, what="installing")
        r = self.server.coap("post", "updates", {
            "action": "report", "job_id": job, "node_id": self.berlin.node_id,
            "status": "succeeded", "inventory": {"fw": "1.0"}})
        self.assertEqual(r.code, "2.04", r)
        st = self.status(job)
        self.assertEqual(st["node_statuses"][self.berlin.node_id], "failed")
        entry = [n for n in st["nodes"] if n["node_id"] == self.berlin.node_id][0]
        self.assertIn("names fw at version 1.0, not 9.9", entry["error_message"])
        self.assertEqual(st["status"], "failed")

    def test_4_a_failed_health_check_rolls_a_file_back(self):
        # The paris node has /opt/app.conf "v1"; v2's health check fails on
        # it: the node is rolled_back, v1 is back, the inventory keeps v1.
        os.makedirs(os.path.join(self.paris.root, "opt"), exist_ok=True)
        with open(os.path.join(self.paris.root, "opt", "app.conf"), "w") as f:
            f.write("v1\n")
        src = os.path.join(self.tmp, "app-v2.conf")
        with open(src, "w") as f:
            f.write("v2 broken\n")
        self.upload(src, "app-v2.conf")
        job = self.create_job({
            "name": "app-conf", "version": "2", "package_type": "file",
            "artifact": "app-v2.conf", "target_path": "/opt/app.conf",
            "target_labels": {"site": "paris"},
            "health_check": "! grep -q broken %s/opt/app.conf" % self.paris.root})
        self.install(job)
        body = self.wait_job_final(job, timeout=60)
        self.assertEqual(body["node_statuses"], {self.paris.node_id: "rolled_back"})
        self.assertEqual(body["status"], "failed")
        self.assertEqual(body["counts"]["rolled_back"], 1)
        entry = body["nodes"][0]
        self.assertIn("health check failed", entry["error_message"])
        with open(os.path.join(self.paris.root, "opt", "app.conf")) as f:
            self.assertEqual(f.read(), "v1\n")
        self.assertNotIn("app-conf", self.node(self.paris.node_id)["inventory"])
        # A rolled-back node is retried like a failed one.
        r = self.server.coap("post", "updates", {"action": "retry", "job_id": job})
        self.assertEqual(r.code, "2.04", r)
        self.assertEqual(r.json().get("retried"), "1", r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
