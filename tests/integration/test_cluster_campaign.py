#!/usr/bin/env python3
"""A campaign survives the loss of the member that runs it (the clustered
servers issue's failover test).

Runs under tests/with_pg.sh (a throwaway PostgreSQL in COAPFLEET_TEST_PG).
Three members m1-m3 share one store. 1,000 simulated nodes (three
coapfleet-sim fleets, each given all three members in a different order,
so a third of the nodes talk to each member) register; a campaign in
waves is created through m1, which then runs it, and triggered through m3
(delegated to m1). Mid-campaign m1 is killed with kill -9:

- the nodes that talked to m1 fail over: each is heard of again through a
  survivor within 10 s of the kill (its last contact in the shared store);
- a survivor takes the campaign over once m1's lease has lapsed and it
  completes with every node succeeded; its status and GET /updates are read
  through any survivor;
- GET /health on every member counts all 1,000 nodes, before and after;
- reads from the survivors list all 1,000 nodes;
- m1 restarts and takes the campaign back (rendezvous hashing gives it m1
  again); its status still reads the same through every member.

It prints the benchmark table's figure: the time from kill -9 of a member
until every one of its nodes has been heard of through a survivor.

The simulated nodes listen on 127.14.{0,4,8}.x:5683 (hence the lock
"sim_127_14", shared with test_cluster.py)."""
import datetime
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import cluster_harness as ch  # noqa: E402

NODES = int(os.environ.get("COAPFLEET_CLUSTER_NODES", "1000"))


def parse_at(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class ClusterCampaignTest(ch.ClusterCase):
    def start_fleet(self, k, servers, nodes):
        sim = os.environ.get("COAPFLEET_SIM")
        self.assertTrue(sim, "COAPFLEET_SIM names the simulator to run")
        args = [sim, "fleet"]
        for s in servers:
            args += ["--server", s.url()]
        args += ["--nodes", str(nodes), "--interval", "2", "--duration", "600",
                 "--base", "127.14.%d.0" % (4 * k), "--id-prefix", "c%d-" % k,
                 "--install-seconds", "1", "--label", "fleet=sim", "--inventory", "fw=1.0",
                 "--ack-timeout", "0.5", "--max-retransmit", "1", "-q"]
        log = open(os.path.join(self.tmp, "sim-%d.log" % k), "w")
        self.addCleanup(log.close)
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log,
                             stdin=subprocess.DEVNULL, preexec_fn=h._die_with_parent)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        return p

    def listing(self, server):
        # A member reads a bounded number of whole listings at once: 5.03
        # with Max-Age while others are under way.
        end = time.monotonic() + 60
        while True:
            r = server.coap("get", "nodes", wait=30)
            if r.code != "5.03" or time.monotonic() > end:
                break
            time.sleep(1)
        self.assertEqual(r.code, "2.05", r)
        return {n["node_id"]: n for n in r.json()["nodes"]}

    def fleet_health(self, server):
        r = server.coap("get", "health", wait=30)
        self.assertEqual(r.code, "2.05", r)
        return r.json()

    def status(self, server, job):
        r = server.coap("post", "updates", {"action": "status", "job_id": job}, wait=30)
        return r.json() if r.code == "2.05" else None

    def test_campaign_completes_when_its_member_is_killed(self):
        names = ["m1", "m2", "m3"]
        ms = {n: self.member(n) for n in names}
        self.wait_for("three live, linked members",
                      lambda: self.all_live_and_linked(list(ms.values()), names))
        sizes = [NODES - 2 * (NODES // 3), NODES // 3, NODES // 3]
        for k in range(3):
            order = names[k:] + names[:k]
            self.start_fleet(k, [ms[n] for n in order], sizes[k])
        self.wait_for("%d nodes registered" % NODES,
                      lambda: len(self.listing(ms["m2"])) == NODES, timeout=90)
        # GET /health on every member counts the whole fleet (each member
        # serves a third of it; the rest is read from the shared store).
        for n in names:
            self.wait_for("GET /health on %s counting %d nodes" % (n, NODES),
                          lambda: self.fleet_health(ms[n])["total_nodes"] == NODES, timeout=30)

        r = ms["m1"].coap("post", "updates", {
            "name": "fw", "version": "2.0", "package_type": "script", "script": "true",
            "target_labels": {"fleet": "sim"}, "waves": [5, 20, 50, 100],
            "node_timeout_seconds": 60})
        self.assertEqual(r.code, "2.01", r)
        job = r.json()["job_id"]
        # Triggered through another member: delegated to the one that runs it.
        r = ms["m3"].coap("post", "updates", {"action": "install", "job_id": job}, wait=60)
        self.assertEqual(r.code, "2.04", r)
        self.assertIn("job %s created" % job, ms["m1"].log_text())

        st = self.wait_for("the first waves under way", lambda: (
            lambda s: s if s and s["counts"]["succeeded"] >= NODES // 10 else None)(
                self.status(ms["m2"], job)), timeout=120)
        self.assertLess(st["counts"]["succeeded"], NODES, "the campaign ended before the kill")

        killed_at = time.time()
        ms["m1"].kill9()
        type(self).servers.remove(ms["m1"])  # killed on purpose: not a crash to report

        # Its nodes are heard of again through the survivors.
        m1_nodes = ["c0-%05d" % i for i in range(1, sizes[0] + 1)]

        def rehomed():
            nodes = self.listing(ms["m2"])
            late = [n for n in m1_nodes if parse_at(nodes[n]["last_seen"]) < killed_at]
            return (time.time() - killed_at) if not late else None
        rehomed_after = self.wait_for("m1's nodes heard of through a survivor", rehomed,
                                      timeout=30)
        sys.stderr.write("kill -9 of m1: all %d of its nodes heard of through a survivor "
                         "%.1f s later\n" % (len(m1_nodes), rehomed_after))
        self.assertLessEqual(rehomed_after, 10.0)

        # A survivor takes the campaign over; it completes.
        last = {}

        def all_succeeded():
            s = self.status(ms["m3"], job)
            if s:
                last["status"] = s
            return s if s and s["counts"]["succeeded"] == NODES else None
        try:
            final = self.wait_for("every node succeeded", all_succeeded, timeout=240)
        except AssertionError:
            s = last.get("status") or {}
            bad = [n for n in s.get("nodes", []) if n.get("status") != "succeeded"][:5]
            self.fail("the campaign did not complete: %s %s; e.g. %s" % (
                s.get("status"), s.get("counts"), json.dumps(bad)))
        self.assertEqual(final["status"], "completed", final["counts"])
        self.assertEqual(len(final["nodes"]), NODES)
        taken = [n for n in ("m2", "m3") if "job %s is run by this member now" % job
                 in ms[n].log_text()]
        self.assertEqual(len(taken), 1, "exactly one survivor took the campaign over")
        self.assertEqual(len(self.listing(ms["m3"])), NODES)
        for n in ("m2", "m3"):
            self.wait_for("GET /health on %s: %d nodes, all online" % (n, NODES), lambda: (
                lambda f: f["total_nodes"] == NODES and f["online_nodes"] == NODES)(
                    self.fleet_health(ms[n])), timeout=30)
        # GET /updates lists the campaign through either survivor (the
        # listing follows the job's move like any telemetry change: asked
        # until it shows, within a deadline).
        for n in ("m2", "m3"):
            seen = []
            def listed(n=n, seen=seen):
                r = ms[n].coap("get", "updates", wait=30)
                self.assertEqual(r.code, "2.05", r)
                seen.append([u["job_id"] for u in r.json()["updates"]])
                return seen[-1] == [job]
            try:
                self.wait_for("GET /updates on %s lists the campaign" % n, listed, timeout=15)
            except AssertionError:
                self.fail("GET /updates on %s lists %r, not [%s]" % (n, seen[-1:], job))
            if len(seen) > 1:
                sys.stderr.write("GET /updates on %s listed the campaign at read %d (before: %r)\n"
                                 % (n, len(seen), seen[0]))

        # m1 comes back and takes its campaign back.
        ms["m1"].start()
        type(self).servers.append(ms["m1"])
        self.wait_for("m1 back, live and linked everywhere",
                      lambda: self.all_live_and_linked(list(ms.values()), names))
        self.wait_for("m1 runs the campaign again", lambda: "job %s is run by this member now"
                      % job in ms["m1"].log_text(), timeout=30)
        # Through every member (5.03, retry, while a member still hands the
        # job over: asked until it answers, within a deadline).
        for n in names:
            s = self.wait_for("the campaign's status through %s" % n,
                              lambda n=n: self.status(ms[n], job), timeout=15)
            self.assertEqual(s["counts"]["succeeded"], NODES, n)
        # The job's history (the store's) reads the same through any member.
        r = ms["m2"].coap("get", "updates/%s/history" % job, wait=30)
        self.assertEqual(r.code, "2.05", r)


if __name__ == "__main__":
    h.main()
