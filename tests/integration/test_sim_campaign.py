#!/usr/bin/env python3
"""A campaign over 10,000 simulated nodes (coapfleet-sim fleet), as the
campaigns issue asks:

- waves [1, 10, 50, 100] of the nodes labelled fleet=sim (target_labels), a
  dynamic campaign; the first attempt fails on exactly 5 % of the nodes
  (--fail-first 0.05, spread evenly over node ids);
- it pauses itself at its error threshold (3 %) with a pause_reason; `retry`
  and `resume` (through coap-client) carry it on, wave by wave;
- 500 nodes that register mid-campaign join later waves;
- `kill -9` of the server mid-wave: after the restart the campaign stands in
  the same wave and goes on;
- in the end every node succeeded, and its inventory names the version
  (fw 1.0 → 2.0).

It prints the figures of the README's benchmark row: the time the campaign
took beyond the simulated installs, and the server's peak RSS.

The simulated nodes listen on 127.2.x.y and 127.3.x.y:5683, hence the lock
"sim_127_2"."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SIM_BIN = os.environ.get("COAPFLEET_SIM") or os.path.join(h.REPO, "build", "coapfleet-sim")

NODES = int(os.environ.get("COAPFLEET_CAMPAIGN_NODES", "10000"))
LATE = NODES // 20
# Long enough that a wave runs for seconds (the test kills the server while
# one does).
INSTALL_SECONDS = 3.0


def rss_peak_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class SimCampaignTest(h.ServerTestCase):
    start_server = False

    def setUp(self):
        self.server = self.new_server()
        self.sims = []

    def tearDown(self):
        for p in self.sims:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            for stream in (p.stdout, p.stderr):
                if stream:
                    stream.close()

    def start_sim(self, *args):
        p = subprocess.Popen([SIM_BIN, "fleet", "--server",
                              "coap://%s:%d" % (h.HOST, self.server.port)] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True, preexec_fn=h._die_with_parent)
        self.sims.append(p)
        return p

    def fleet_size(self):
        try:
            r = h.raw_request(self.server.port, "get", "health", timeout=5)
        except (TimeoutError, ConnectionError, OSError):
            return 0
        return r.json()["total_nodes"] if r.code == "2.05" else 0

    def status(self):
        # A status that changes while its blocks are read is read again
        # (the server refuses a block of a representation that is gone).
        for _ in range(20):
            r = h.raw_request(self.server.port, "post", "updates",
                              {"action": "status", "job_id": self.job}, timeout=30)
            if r.code == "2.05":
                return r.json()
        self.fail("status: %s %r" % (r.code, r.payload[:300]))

    def action(self, name, moot=None):
        """coap-client POST /updates {"action": name}; a 4.00 whose error
        contains `moot` is taken too (what the status showed had changed)."""
        r = self.server.coap("post", "updates", {"action": name, "job_id": self.job}, wait=30)
        if moot and r.code == "4.00" and moot in r.body:
            return None
        self.assertEqual(r.code, "2.04", "%s: %r" % (name, r))
        return r.json()

    def wait_for(self, what, pred, timeout):
        last = [None]

        def check():
            last[0] = self.status()
            return last[0] if pred(last[0]) else None
        try:
            return h.deadline_poll(check, timeout, 0.5, what=what)
        except AssertionError:
            st = last[0] or {}
            self.fail("%s: not within %d s; counts %s campaign %s" % (
                what, timeout, st.get("counts"), json.dumps(st.get("campaign"))))

    def test_campaign_of_ten_thousand_nodes(self):
        common = ["--interval", "10", "--install-seconds", str(INSTALL_SECONDS),
                  "--fail-first", "0.05", "--label", "fleet=sim", "--inventory", "fw=1.0",
                  "--report-every", "30", "-q"]
        self.start_sim("--nodes", str(NODES - LATE), *common)
        h.deadline_poll(lambda: self.fleet_size() >= NODES - LATE, 180, 0.5,
                        what="%d simulated nodes registered" % (NODES - LATE))
        r = self.server.coap("post", "updates", {
            "name": "fw", "version": "2.0", "package_type": "script", "script": "true",
            "target_labels": {"fleet": "sim"}, "waves": [1, 10, 50, 100],
            "error_threshold": 3, "dynamic": True, "node_timeout_seconds": 120})
        self.assertEqual(r.code, "2.01", r)
        self.job = r.json()["job_id"]
        started = time.monotonic()
        r = self.server.coap("post", "updates", {"action": "install", "job_id": self.job}, wait=60)
        self.assertEqual(r.code, "2.04", r)

        # 5 % fail: at 3 % failed among the started nodes the campaign pauses
        # itself (in its first waves: the failing nodes are spread evenly).
        st = self.wait_for("the campaign to pause at its error threshold",
                           lambda s: s["campaign"]["paused"], 120)
        self.assertLessEqual(st["campaign"]["wave"], 1, st["campaign"])
        self.assertIn("error threshold", st["campaign"]["pause_reason"])
        self.assertEqual(st["status"], "in_progress")

        # Late joiners register now: they join a later wave of this dynamic campaign.
        self.start_sim("--nodes", str(LATE), "--id-prefix", "late-", "--base", "127.3.0.0",
                       *common)
        h.deadline_poll(lambda: self.fleet_size() >= NODES, 120, 0.5,
                        what="%d late nodes registered" % LATE)

        killed = False
        peak_before = 0
        rounds = 0
        deadline = time.monotonic() + 300
        while True:
            st = self.status()
            c = st["campaign"]
            n_succeeded = st["counts"]["succeeded"]
            if n_succeeded == NODES and len(st["nodes"]) == NODES:
                break
            self.assertLess(time.monotonic(), deadline, "campaign stuck: %s %s"
                            % (st["counts"], json.dumps(c)))
            counts = st["counts"]
            unfinished = sum(counts[k] for k in ("pending", "notified", "downloading",
                                                  "downloaded", "installing"))
            # Paused, or every wave ran and some nodes failed (or timed
            # out) below the threshold (the last ones need not reach it):
            # the operator retries them and resumes.
            if c["paused"] or (unfinished == 0 and counts["failed"] + counts["timed_out"] > 0
                               and all(w["state"] != "waiting" for w in c["waves"])):
                rounds += 1
                self.assertLess(rounds, 30, json.dumps(c))
                if st["counts"]["failed"] + st["counts"]["timed_out"] > 0:
                    self.action("retry", moot="no failed")
                if c["paused"]:
                    self.action("resume", moot="not paused")
                # The status follows within moments: wait for it to change
                # (a stale copy would only ask for what is done already).
                before = (st["counts"], c)
                h.deadline_poll(lambda: (lambda s: (s["counts"], s["campaign"]) != before or None)(
                    self.status()), 30, 0.2, what="the campaign to go on")
                continue
            waves = c["waves"]
            current = c["wave"]
            if not killed and current == 2 and waves[2]["state"] == "running":
                # kill -9 mid-wave: the restarted server resumes the same wave.
                peak_before = rss_peak_kib(self.server.pid)
                self.server.kill9()
                self.server.start()
                after = self.status()["campaign"]
                self.assertEqual(after["wave"], 2, after)
                self.assertFalse(after["paused"] and "error" not in after["pause_reason"], after)
                killed = True
                continue
            time.sleep(0.5)
        self.assertTrue(killed, "the server was never killed mid-wave")
        elapsed = time.monotonic() - started

        # Every node, late joiners included, succeeded; late ones in later waves.
        late_waves = {n["wave"] for n in st["nodes"] if n["node_id"].startswith("late-")}
        self.assertEqual(len([n for n in st["nodes"] if n["node_id"].startswith("late-")]), LATE)
        self.assertTrue(late_waves and min(late_waves) >= 1, late_waves)
        self.assertEqual(st["status"], "in_progress")  # dynamic: open until closed
        self.action("close")
        st = self.wait_for("the closed campaign to complete",
                           lambda s: s["status"] == "completed", 60)
        for node in ("sim-00001", "late-00001"):
            r = h.raw_request(self.server.port, "get", "nodes", query=("node_id=" + node,))
            self.assertEqual(r.json()["nodes"][0]["inventory"], {"fw": "2.0"}, node)
        peak = max(peak_before, rss_peak_kib(self.server.pid))
        # The waves and the retries each wait for installs: the time beyond
        # them is the campaign's own (planning, notifying, the operator's
        # round trips, the restart).
        installs = (4 + rounds) * INSTALL_SECONDS
        figures = os.environ.get("COAPFLEET_CAMPAIGN_FIGURES")
        if figures:
            with open(figures, "w") as f:
                json.dump({"nodes": NODES, "rounds": rounds, "elapsed_s": elapsed,
                           "install_seconds": installs, "beyond_install_s": elapsed - installs,
                           "peak_rss_kib": peak}, f)
        print("\ncampaign of %d nodes (waves 1/10/50/100 %%, 5 %% failing their first attempt, "
              "%d retry+resume rounds, kill -9 mid-wave): %.1f s from install to every node "
              "succeeded, %.1f s beyond the %.1f s of installs on its path (4 waves and %d "
              "retries of %.0f s); server peak RSS %.0f MiB"
              % (NODES, rounds, elapsed, elapsed - installs, installs, rounds, INSTALL_SECONDS,
                 peak / 1024.0), flush=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
