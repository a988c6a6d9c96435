#!/usr/bin/env python3
"""Clustered main servers: membership (DESIGN §10).

Runs under tests/with_pg.sh (a throwaway PostgreSQL in COAPFLEET_TEST_PG).
Three members share one store (a schema of their own), link over CAF's
middleman on free TCP ports and keep their leases in the store:

(a) they find each other from the seeds and the store: GET /cluster and
    `coapfleet cluster status` on every member show three live, linked members;
(b) kill -9 of a member: the others lose the link at once and see its lease
    lapse within the lease; restarted, it joins again with a new epoch;
(c) a member cut off from the store (its database traffic held by a proxy)
    is fenced: it says so, the others see its lease lapse, it owns no node
    (a registration sent to it is handed to the member that owns the node
    now), a job sent to it is refused and not stored; once the store is
    back it joins again with a new epoch and writes again;
(d) a real agent given two members (--server twice) fails over to the
    second when the first is killed, registers there and reports on;
(e) 200 simulated nodes given two members fail over to the second when
    the first is killed, and every one registers there;
(f) bad cluster options are refused with a clear message; a member whose
    --cluster-listen port is taken says so and exits 1 without joining; a
    server on its own answers GET /cluster with "clustered": false;
(g) each node is owned by one live member: reports and reads through any
    member reach its actor there, and only that member hosts one;
(h) agents over DTLS, with the node's key or with certificates from the
    cluster's CA, fail over to the next member and take a job's
    notification from it.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import cluster_harness as ch  # noqa: E402
import test_observe as ob  # noqa: E402
import test_x509 as tx  # noqa: E402  (Pki, add_key: no tests of its own run here)
from cluster_harness import LEASE_MS, HoldingProxy, with_port  # noqa: E402


class ClusterTest(ch.ClusterCase):
    def test_members_link_and_show_in_status(self):
        ms = [self.member(n) for n in ("m1", "m2", "m3")]
        self.wait_for("three live, linked members on every member",
                      lambda: self.all_live_and_linked(ms, ["m1", "m2", "m3"]))
        c = self.cluster(ms[1])
        self.assertTrue(c["clustered"])
        self.assertEqual(c["member_id"], "m2")
        self.assertEqual(c["state"], "active")
        self.assertFalse(c["tls"])
        epochs = {m["member_id"]: m["epoch"] for m in c["members"]}
        self.assertEqual(len(set(epochs.values())), 3, epochs)
        self.assertIn("plain TCP", ms[0].log_text())
        # The operator's view through the CLI.
        cli = os.environ.get("COAPFLEET_CLI")
        if cli:
            p = subprocess.run([cli, "--server", ms[2].url(), "cluster", "status"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            for name in ("m1", "m2", "m3"):
                self.assertIn(name, p.stdout)
            self.assertIn("active", p.stdout)
            self.assertEqual(p.stdout.count("live"), 3, p.stdout)
        # A write through one member is read through another (one store).
        self.assertEqual(self.register(ms[0], "via-m1").code, "2.01")
        self.assertIn("via-m1", self.node_ids(ms[2]))

    def test_job_status_through_a_member_that_joined_later(self):
        # m3 starts after the job was created and nothing about it changes
        # since: its transport has never heard of the job, yet the job is
        # the cluster's, and its status reads through m3 like through m1.
        m1, m2 = self.member("m1"), self.member("m2")
        self.wait_for("two live, linked members",
                      lambda: self.all_live_and_linked([m1, m2], ["m1", "m2"]))
        self.assertEqual(self.register(m1, "st-1").code, "2.01")
        r = m1.coap("post", "updates", {"name": "fw", "version": "2.0", "package_type": "script",
                                        "script": "true", "target_nodes": ["st-1"]})
        self.assertEqual(r.code, "2.01", r)
        job = r.json()["job_id"]
        m3 = self.member("m3")
        self.wait_for("three live, linked members",
                      lambda: self.all_live_and_linked([m1, m2, m3], ["m1", "m2", "m3"]))
        def answered(ask):
            # 5.03 while the job moves to the member that runs it now (m3
            # changed the live set) or m3 has yet to hear where that is:
            # asked again, as its Max-Age says.
            return self.wait_for("an answer other than 5.03", lambda: (
                lambda r: r if r.code != "5.03" else None)(ask()))
        for s in (m3, m2, m1):
            r = answered(lambda: s.coap("post", "updates", {"action": "status", "job_id": job}))
            self.assertEqual(r.code, "2.05", (s.port, r))
            self.assertEqual(r.json()["job_id"], job)
            r = answered(lambda: s.coap("get", "updates/%s/status" % job))
            self.assertEqual(r.code, "2.05", (s.port, r))
            self.assertEqual(r.json()["status"], "created")
        # A job that does not exist is still not found, through any member,
        # and asking for it leaves nothing behind.
        # (Ids of another shape are refused without asking the store.)
        for s in (m3, m1):
            for bogus in ("000000-000000-000000", "000000-000000-000000", "no-such-job"):
                r = s.coap("post", "updates", {"action": "status", "job_id": bogus})
                self.assertEqual(r.code, "4.04", (s.port, r))
                self.assertIn("job not found", r.body)
                r = s.coap("get", "updates/%s/status" % bogus)
                self.assertEqual(r.code, "4.04", (s.port, r))

    def test_job_status_observed_through_another_member(self):
        # Jobs created through m1 run on m1; observers on m2 hear of their
        # changes (relayed), and of a deletion (4.04, which ends the
        # observation).
        m1, m2 = self.member("m1"), self.member("m2")
        self.wait_for("two live, linked members",
                      lambda: self.all_live_and_linked([m1, m2], ["m1", "m2"]))
        self.assertEqual(self.register(m1, "ob-1").code, "2.01")
        jobs = []
        for _ in range(2):
            r = m1.coap("post", "updates", {"name": "fw", "version": "2.0",
                                            "package_type": "script", "script": "true",
                                            "target_nodes": ["ob-1"]})
            self.assertEqual(r.code, "2.01", r)
            jobs.append(r.json()["job_id"])
        runs, goes = jobs

        def observed(job):
            # 5.03 (and no observation) while m2 has yet to hear where m1's
            # jobs are run: registered again, as a client does after Max-Age.
            def attempt():
                o = ob.observe(h.HOST, m2.port, "updates/%s/status" % job, timeout=20)
                if o.notes and o.notes[0].code_text == "5.03":
                    o.close()
                    return None
                self.addCleanup(o.close)
                return o
            return self.wait_for("an observation of %s on m2" % job, attempt)
        o1, o2 = observed(runs), observed(goes)
        self.assertEqual((o1.last_body() or {}).get("status"), "created", o1.describe())
        self.assertEqual((o2.last_body() or {}).get("status"), "created", o2.describe())
        r = m1.coap("post", "updates", {"action": "install", "job_id": runs})
        self.assertEqual(r.code, "2.04", r)
        # (It fails soon after: nothing answers at ob-1's address.)
        ob.wait_until([o1, o2], lambda: (o1.last_body() or {}).get("status") != "created",
                      20, "the observer on m2 to hear the job started on m1")
        r = m1.coap("delete", "updates/%s" % goes)
        self.assertEqual(r.code, "2.02", r)
        ob.wait_until([o1, o2], lambda: o2.notes[-1].code_text == "4.04", 20,
                      "the observer on m2 to hear the job was deleted on m1")
        r = m2.coap("get", "updates/%s/status" % goes)
        self.assertEqual(r.code, "4.04", r)

    def test_job_changes_through_another_member(self):
        # /updates/changes through m2 lists the jobs m1 and m3 run as they
        # change (as their members list them), and their deletion.
        m1, m2, m3 = self.linked_members("m1", "m2", "m3")
        self.assertEqual(self.register(m1, "ch-1").code, "2.01")
        def copy():
            r = m2.coap("get", "updates/changes")
            self.assertEqual(r.code, "2.05", r)
            return r.json()
        last = copy()["to"]  # what changed before the test: taken
        seen = {}
        def changed(until):
            # Copies are chained (from = the previous to); each lists what
            # changed since the previous one.
            nonlocal last
            c = copy()
            self.assertEqual(c["from"], last, c)
            self.assertFalse(c["reset"], c)
            last = c["to"]
            for u in c["updates"]:
                seen[u["job_id"]] = u
            return until()
        r = m3.coap("post", "updates", {"name": "fw3", "version": "3.3",
                                        "package_type": "script", "script": "true",
                                        "target_nodes": ["ch-1"]})
        self.assertEqual(r.code, "2.01", r)
        other = r.json()["job_id"]  # run by m3
        r = m1.coap("post", "updates", {"name": "fw", "version": "3.0",
                                        "package_type": "script", "script": "true",
                                        "target_nodes": ["ch-1"]})
        self.assertEqual(r.code, "2.01", r)
        job = r.json()["job_id"]  # run by m1
        self.wait_for("m2's /updates/changes to list the jobs created through m1 and m3",
                      lambda: changed(lambda: seen.get(job, {}).get("status") == "created"
                                      and seen.get(other, {}).get("status") == "created"))
        self.assertEqual(seen[job]["name"], "fw", seen[job])
        self.assertEqual(seen[job]["version"], "3.0", seen[job])
        self.assertEqual(seen[other]["version"], "3.3", seen[other])
        r = m1.coap("post", "updates", {"action": "install", "job_id": job})
        self.assertEqual(r.code, "2.04", r)
        self.wait_for("m2's /updates/changes to list the job started",
                      lambda: changed(lambda: seen[job].get("status") not in (None, "created")))
        r = m1.coap("delete", "updates/%s" % job)
        self.assertEqual(r.code, "2.02", r)
        self.wait_for("m2's /updates/changes to list the job deleted",
                      lambda: changed(lambda: seen[job].get("deleted") is True))

    def test_a_node_is_served_by_the_member_that_owns_it(self):
        # Each node is owned by one live member (rendezvous hashing of its
        # id): reports and reads through any member reach its actor there,
        # so a read through one member shows a report made through another
        # at once, and only one member hosts an actor of the node.
        ms = self.linked_members("m1", "m2", "m3")
        self.assertEqual(self.register(ms[0], "own-1").code, "2.01")
        def report(s, cpu):
            self.report(s, "own-1", cpu)
        def cpu_at(s):
            r = s.coap("get", "nodes/own-1/health")
            self.assertEqual(r.code, "2.05", (s.port, r))
            body = r.json()
            # An absent number stays absent through the owner (null, not -1).
            self.assertIsNone(body["disk_percent"], body)
            return body["cpu_percent"]
        report(ms[1], 11.0)
        self.assertEqual(cpu_at(ms[2]), 11.0)
        report(ms[2], 22.0)
        self.assertEqual(cpu_at(ms[1]), 22.0)
        self.assertEqual(cpu_at(ms[0]), 22.0)
        # GET /health through the member it was registered with counts it.
        self.assertEqual(ms[0].coap("get", "health").json()["total_nodes"], 1)
        # One member hosts its actor (GET /cluster: nodes served per member,
        # as each member's heartbeat wrote it). Watched for three heartbeats
        # after the count first shows.
        def hosts():
            return {n: m["nodes"] for n, m in (self.members_of(ms[0]) or {}).items()}
        self.wait_for("the node's actor counted", lambda: sum(hosts().values()) >= 1)
        end = time.monotonic() + 3 * LEASE_MS / 3000.0
        while time.monotonic() < end:
            self.assertEqual(sum(hosts().values()), 1, hosts())
            time.sleep(0.2)

    def test_node_health_observed_through_every_member(self):
        # An observer of /nodes/<id>/health on any member hears of every
        # report, whichever member took it: the node's owner relays its
        # changes to the members that observe it. A deletion ends every
        # observation with 4.04.
        ms = self.linked_members("m1", "m2", "m3")
        self.assertEqual(self.register(ms[0], "obs-1").code, "2.01")
        def report(s, cpu):
            self.report(s, "obs-1", cpu)
        report(ms[0], 1.0)
        observers = []
        for s in ms:
            o = ob.observe(h.HOST, s.port, "nodes/obs-1/health", timeout=20)
            self.addCleanup(o.close)
            self.assertEqual(o.notes[0].code_text, "2.05", o.describe())
            observers.append(o)
        def cpu(o):
            return (o.last_body() or {}).get("cpu_percent")
        # Each member takes a report in turn: every observer hears of each,
        # also the ones on the two members the report did not pass through
        # (within 3 s: relayed, not read from the store every 5 s).
        for n, s in enumerate(ms):
            value = 50.0 + n
            report(s, value)
            ob.wait_until(observers, lambda: all(cpu(o) == value for o in observers), 3,
                          "every member's observer to hear of cpu %s reported through port %s"
                          % (value, s.port))
        # (5.03 if the owner's link dropped while it had the request: asked
        # again, as the API says; the owner may have deleted it already,
        # and then the repeated DELETE finds nothing, 4.04.)
        codes = []

        def delete():
            r = ms[1].coap("delete", "nodes/obs-1")
            codes.append(r.code)
            return r if r.code != "5.03" else None
        r = self.wait_for("an answer other than 5.03 to the deletion", delete, timeout=15)
        self.assertIn(r.code, ("2.02", "4.04") if "5.03" in codes else ("2.02",), (codes, r))
        ob.wait_until(observers, lambda: all(o.notes[-1].code_text == "4.04" for o in observers),
                      20, "every member's observer to hear the node was deleted")

    def test_killed_member_lapses_and_joins_again(self):
        ms = [self.member(n) for n in ("m1", "m2", "m3")]
        self.wait_for("three live, linked members",
                      lambda: self.all_live_and_linked(ms, ["m1", "m2", "m3"]))
        old_epoch = self.members_of(ms[0])["m3"]["epoch"]
        killed_at = time.monotonic()
        ms[2].kill9()
        self.wait_for("the link to m3 down on m1 and m2", lambda: all(
            not (self.members_of(s) or {}).get("m3", {}).get("linked", True) for s in ms[:2]),
            timeout=10)
        self.wait_for("m3's lease lapsed on m1 and m2", lambda: all(
            not (self.members_of(s) or {}).get("m3", {}).get("live", True) for s in ms[:2]),
            timeout=10)
        lapsed_after = time.monotonic() - killed_at
        self.assertLess(lapsed_after, 10)
        sys.stderr.write("m3's lease seen lapsed %.1f s after kill -9 (lease %d ms)\n"
                         % (lapsed_after, LEASE_MS))
        # Nothing acknowledged before the kill is lost; writes go on through the others.
        self.assertEqual(self.register(ms[0], "after-kill").code, "2.01")
        ms[2].start()
        self.wait_for("m3 back, live and linked everywhere",
                      lambda: self.all_live_and_linked(ms, ["m1", "m2", "m3"]))
        self.assertGreater(self.members_of(ms[0])["m3"]["epoch"], old_epoch)
        self.assertIn("after-kill", self.node_ids(ms[2]))

    def test_member_cut_off_from_the_store_is_fenced(self):
        pg_port = urllib.parse.urlsplit(h.TEST_PG).port
        type(self).proxy = HoldingProxy(pg_port)
        proxied = self.store.replace(h.TEST_PG, with_port(h.TEST_PG, self.proxy.port), 1)
        m1 = self.member("m1")
        m2 = self.member("m2", store=proxied)
        self.wait_for("two live, linked members",
                      lambda: self.all_live_and_linked([m1, m2], ["m1", "m2"]))
        epoch = self.cluster(m2)["epoch"]
        self.assertEqual(self.register(m2, "before-cut").code, "2.01")
        self.proxy.hold()
        self.wait_for("m2 fenced by its own account",
                      lambda: self.cluster(m2, wait=15)["state"] == "fenced", timeout=20)
        self.wait_for("m2's lease lapsed on m1",
                      lambda: not self.members_of(m1)["m2"]["live"], timeout=15)
        self.assertIn("stops acting", m2.log_text())
        # The cut-off member owns no node: a registration sent to it is
        # handed to m1, which owns every node now (acknowledged once m1 has
        # stored it). What it would write itself is refused and not stored.
        r = self.register(m2, "during-cut", wait=30)
        self.assertEqual(r.code, "2.01", r)
        r = m2.coap("post", "updates", {"name": "cut", "version": "1", "package_type": "script",
                                        "script": "true", "target_nodes": ["before-cut"]},
                    wait=30)
        self.assertEqual(r.code, "5.03", r)
        self.assertIn("lease", r.body)
        self.proxy.release()
        self.wait_for("m2 active again with a new epoch", lambda: (
            lambda c: c["state"] == "active" and c["epoch"] > epoch)(self.cluster(m2, wait=15)),
            timeout=30)
        self.assertIn("joined again", m2.log_text())
        ids = self.node_ids(m1)
        self.assertIn("before-cut", ids)
        self.assertIn("during-cut", ids)
        self.assertEqual(m1.coap("get", "updates").json()["updates"], [])
        # Back in the cluster, it writes again.
        self.wait_for("a registration through m2 acknowledged again",
                      lambda: self.register(m2, "after-cut").code == "2.01", timeout=20)
        self.assertIn("after-cut", self.node_ids(m1))

    def test_agent_fails_over_to_the_next_member(self):
        agent_bin = os.environ.get("COAPFLEET_AGENT")
        self.assertTrue(agent_bin, "COAPFLEET_AGENT names the agent to run")
        m1, m2 = self.member("m1"), self.member("m2")
        self.wait_for("two live, linked members",
                      lambda: self.all_live_and_linked([m1, m2], ["m1", "m2"]))
        agent, agent_log = self.start_agent(agent_bin, "agent", "fo-1", [m1.url(), m2.url()])
        self.wait_for("the agent registered with m1",
                      lambda: "registered as fo-1 with 127.0.0.1:%d" % m1.port in agent_log())
        self.assertIn("fails over to the next --server", agent_log())
        m1.kill9()
        type(self).servers.remove(m1)  # killed on purpose: not a crash to report
        self.wait_for("the agent failed over to m2 and registered there", lambda: (
            "failing over to 127.0.0.1:%d" % m2.port in agent_log()
            and "registered as fo-1 with 127.0.0.1:%d" % m2.port in agent_log()), timeout=40)
        # Its reports reach m2 now: its health there is fresh and changes.
        def health_at_m2():
            r = m2.coap("get", "nodes/fo-1/health")
            return r.json().get("timestamp") if r.code == "2.05" else None
        first = self.wait_for("fo-1's health on m2", health_at_m2, timeout=20)
        self.wait_for("a newer report on m2", lambda: health_at_m2() not in (None, first),
                      timeout=20)
        self.assertEqual(agent.poll(), None, agent_log()[-2000:])

    def secure_agent_fails_over(self, node_id, agent_args, member_args=()):
        """Members m1 and m2 (with `member_args`), a real agent `node_id`
        given both as coaps:// (with `agent_args`): it registers with m1 over
        DTLS, fails over to m2 once m1 is killed, registers there, and runs
        a job m2 runs, whose notification m2 sends it over DTLS."""
        agent_bin = os.environ.get("COAPFLEET_AGENT")
        self.assertTrue(agent_bin, "COAPFLEET_AGENT names the agent to run")
        m1, m2 = self.member("m1", extra=member_args), self.member("m2", extra=member_args)
        self.wait_for("two live, linked members",
                      lambda: self.all_live_and_linked([m1, m2], ["m1", "m2"]))
        agent, agent_log = self.start_agent(
            agent_bin, node_id + "-agent", node_id,
            ["coaps://%s:%d" % (h.HOST, m.dtls_port) for m in (m1, m2)], agent_args)
        self.wait_for("the agent registered with m1 over DTLS", lambda: (
            "registered as %s with 127.0.0.1:%d" % (node_id, m1.dtls_port) in agent_log()
            or agent.poll() is not None))
        self.assertIsNone(agent.poll(), agent_log()[-2000:])
        m1.kill9()
        type(self).servers.remove(m1)  # killed on purpose: not a crash to report
        self.wait_for("the agent failed over to m2 and registered there", lambda: (
            "failing over to 127.0.0.1:%d" % m2.dtls_port in agent_log()
            and "registered as %s with 127.0.0.1:%d" % (node_id, m2.dtls_port) in agent_log()),
            timeout=40)
        marker = os.path.join(self.tmp, node_id + "-ran")
        self.assertEqual(self.run_job(m2, {"name": "t", "version": "1",
                                           "package_type": "script",
                                           "script": "touch %s" % marker}, node_id),
                         "succeeded", agent_log()[-3000:])
        self.assertTrue(os.path.exists(marker))
        self.assertIsNone(agent.poll(), agent_log()[-2000:])

    def test_dtls_agent_fails_over_and_takes_commands_from_any_member(self):
        # Over DTLS with the node's key (in the shared store, so every
        # member knows it): the agent fails over like a plain one, and takes
        # the notification of a job from the member it failed over to (any
        # member that holds the node's key proves it is the agent's server).
        p = subprocess.run([h.SERVER_BIN, "--db", self.store, "keys", "add", "dt-1",
                            "--role", "node"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        key_path = os.path.join(self.tmp, "dt-1.key")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(p.stdout.strip() + "\n")
        self.secure_agent_fails_over("dt-1", ["--key-file", key_path])

    def test_agent_with_a_certificate_fails_over_and_takes_commands_from_any_member(self):
        # Over DTLS with certificates from the cluster's CA: every member
        # shows the one server certificate (the cluster's server identity),
        # the agent checks it and its name (a notification from m2 proves
        # it), and each member finds the node's role in the shared key table.
        pki = tx.Pki(self.tmp, "cluster-ca")
        both = "serverAuth,clientAuth"  # members and agents are clients and servers both
        cert, key = pki.issue("server", "/CN=coapfleet-server", san="DNS:coapfleet-server",
                              usage=both)
        node_cert, node_key = pki.issue("pk-1", "/CN=pk-1", usage=both)
        tx.add_key(self.store, "pk-1", "node")
        self.secure_agent_fails_over(
            "pk-1", ["--cert", node_cert, "--key", node_key, "--ca", pki.cert,
                     "--server-name", "coapfleet-server"],
            member_args=["--cert", cert, "--key", key, "--ca", pki.cert])

    def test_simulated_nodes_fail_over_to_the_next_member(self):
        sim = os.environ.get("COAPFLEET_SIM")
        self.assertTrue(sim, "COAPFLEET_SIM names the simulator to run")
        m1, m2 = self.member("m1"), self.member("m2")
        self.wait_for("two live, linked members",
                      lambda: self.all_live_and_linked([m1, m2], ["m1", "m2"]))
        nodes = 200
        p = subprocess.Popen(
            [sim, "fleet", "--server", m1.url(), "--server", m2.url(), "--nodes", str(nodes),
             "--interval", "1", "--duration", "25", "--base", "127.14.0.0",
             "--id-prefix", "fo-", "--ack-timeout", "0.5", "--max-retransmit", "2", "--json",
             "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        self.wait_for("every simulated node registered through m1",
                      lambda: len([n for n in self.node_ids(m1) if n.startswith("fo-")]) == nodes,
                      timeout=20)
        m1.kill9()
        type(self).servers.remove(m1)  # killed on purpose: not a crash to report
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, err[-2000:])
        r = json.loads(out)
        self.assertGreaterEqual(r["failovers"], nodes, r)
        self.assertEqual(r["registered"], nodes, r)
        # m2 has them all, with fresh health.
        fresh = 0
        for i in (1, 50, 100, 150, 200):
            h2 = m2.coap("get", "nodes/fo-%05d/health" % i)
            fresh += h2.code == "2.05"
        self.assertEqual(fresh, 5)

    def test_a_member_whose_link_port_is_taken_stops_and_never_joins(self):
        m1 = self.member("m1")
        taken = socket.socket()
        taken.bind((h.HOST, self.links["m2"]))
        taken.listen(1)
        self.addCleanup(taken.close)
        args = [h.SERVER_BIN, "--bind", h.HOST, "--port", str(h.free_port()), "--db", self.store,
                "--dtls-port", "0", "--member-id", "m2",
                "--cluster-listen", "%s:%d" % (h.HOST, self.links["m2"]),
                "--lease-ms", str(LEASE_MS), "--artifacts", os.path.join(self.tmp, "m2-artifacts")]
        started = time.monotonic()
        p = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=self.tmp)
        self.assertEqual(p.returncode, 1, (p.stdout, p.stderr))
        self.assertIn("cannot listen on %s:%d" % (h.HOST, self.links["m2"]), p.stderr)
        self.assertLess(time.monotonic() - started, 20, p.stderr)
        # It never joined: the store has no row of it (a join writes one,
        # and a leave only ends its lease), and m1 knows no other member.
        self.assertEqual(h.psql(self.store, "SELECT member_id FROM members ORDER BY member_id"),
                         "m1")
        self.assertEqual([m["member_id"] for m in self.cluster(m1)["members"]], ["m1"])

    def test_a_member_started_twice_leaves_the_running_one_alone(self):
        m1 = self.member("m1")
        self.wait_for("m1 live", lambda: (self.members_of(m1) or {}).get("m1", {}).get("live"))
        epoch = h.psql(self.store, "SELECT epoch FROM members WHERE member_id = 'm1'")
        # The same --member-id on other ports: it waits for m1's lease,
        # sees it renewed, and exits without taking m1's row.
        args = [h.SERVER_BIN, "--bind", h.HOST, "--port", str(h.free_port()), "--db", self.store,
                "--dtls-port", "0", "--member-id", "m1",
                "--cluster-listen", "%s:%d" % (h.HOST, ch.free_tcp_port()),
                "--lease-ms", str(LEASE_MS), "--artifacts", os.path.join(self.tmp, "m1b-artifacts")]
        p = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=self.tmp)
        self.assertEqual(p.returncode, 1, (p.stdout, p.stderr))
        self.assertIn("member m1 runs elsewhere", p.stderr)
        self.assertEqual(h.psql(self.store, "SELECT epoch FROM members WHERE member_id = 'm1'"),
                         epoch)
        self.assertTrue(self.members_of(m1)["m1"]["live"])
        self.assertNotIn("lapsed: this member stops acting", m1.log_text())
        # Once m1 is gone (kill -9: its lease lapses), the same start joins.
        m1.kill9()
        type(self).servers.remove(m1)  # killed on purpose: not a crash to report
        again = self.member("m1")
        self.wait_for("m1 live again", lambda: (self.members_of(again) or {}).get("m1", {})
                      .get("live"))
        self.assertGreater(int(h.psql(self.store,
                                      "SELECT epoch FROM members WHERE member_id = 'm1'")),
                           int(epoch))

    def test_bad_options_and_a_server_on_its_own(self):
        def refused(args, words):
            p = subprocess.run([h.SERVER_BIN] + args, capture_output=True, text=True, timeout=30,
                               cwd=self.tmp)
            self.assertEqual(p.returncode, 2, (args, p.stdout, p.stderr))
            self.assertIn(words, p.stderr)
        sqlite = os.path.join(self.tmp, "alone.db")
        refused(["--db", sqlite, "--member-id", "m1", "--cluster-listen", "127.0.0.1:5700"],
                "PostgreSQL")
        refused(["--store", self.store, "--member-id", "m1"], "--cluster-listen")
        refused(["--store", self.store, "--cluster-listen", "127.0.0.1:5700"], "--member-id")
        refused(["--store", self.store, "--member-id", "bad id!", "--cluster-listen",
                 "127.0.0.1:5700"], "--member-id")
        refused(["--store", self.store, "--member-id", "m1", "--cluster-listen", "127.0.0.1:5700",
                 "--cluster-cert", "x.pem"], "go together")
        alone = self.new_server(name="alone", db=sqlite)
        c = self.cluster(alone)
        self.assertFalse(c["clustered"])
        self.assertEqual(c["members"], [])


if __name__ == "__main__":
    h.main()
