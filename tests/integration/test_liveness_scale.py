#!/usr/bin/env python3
"""Liveness (online → stale → offline → online again), GET /nodes filters,
offline targets skipped at trigger time, and 5,000 nodes listed whole by
coap-client."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def node_status(server, node_id):
    r = h.coap(server.port, "get", "nodes?node_id=" + node_id)
    assert r.code == "2.05", r
    nodes = r.json()["nodes"]
    return nodes[0]["status"] if nodes else None


class LivenessTest(h.ServerTestCase):
    """Each test has its own server (fleet-wide counts are checked)."""

    start_server = False

    def setUp(self):
        self.server = self.new_server(["--stale-after", "1", "--offline-after", "2"])

    def wait_status(self, node_id, status, timeout=15):
        try:
            return h.deadline_poll(lambda: node_status(self.server, node_id) == status, timeout,
                                   interval=0.1, what="%s %s" % (node_id, status))
        except AssertionError:
            self.fail("%s never became %s (now %s)"
                      % (node_id, status, node_status(self.server, node_id)))

    def fleet(self):
        r = self.server.coap("get", "health")
        self.assertEqual(r.code, "2.05", r)
        return r.json()

    def test_stale_offline_and_back(self):
        s = self.server
        self.assertEqual(s.coap("post", "nodes", {"node_id": "live-1"}).code, "2.01")
        self.assertEqual(s.coap("put", "health", {"node_id": "live-1", "overall_healthy": True,
                                                  "cpu_percent": 3.0}).code, "2.04")
        # Poll GET /nodes and GET /health side by side (raw client: fast) and
        # record the sequence of states each of them shows.
        seen_nodes, seen_health = [], []

        def fleet_state(f):
            if f["total_nodes"] != 1:
                return "total=%d" % f["total_nodes"]
            if f["online_nodes"] == 1:
                return "online"
            if f["offline_nodes"] == 1:
                return "offline"
            if f.get("stale_nodes", 1) == 1 and f["online_nodes"] == 0:
                return "stale"
            return repr(f)

        def track():
            r = s.raw("get", "nodes", query=["node_id=live-1"])
            st = r.json()["nodes"][0]["status"]
            if not seen_nodes or seen_nodes[-1] != st:
                seen_nodes.append(st)
            f = fleet_state(s.raw("get", "health").json())
            if not seen_health or seen_health[-1] != f:
                seen_health.append(f)
            return seen_nodes[-1] == "offline" and seen_health[-1] == "offline"
        h.deadline_poll(track, 15, interval=0.02, what="live-1 offline")
        self.assertEqual(seen_nodes, ["online", "stale", "offline"])
        self.assertEqual(seen_health, ["online", "stale", "offline"])
        fleet = self.fleet()
        self.assertEqual(fleet["offline_nodes"], 1, fleet)
        self.assertEqual(fleet["online_nodes"], 0, fleet)
        self.assertEqual(fleet["total_nodes"], 1, fleet)
        self.assertIn(fleet["status"], ("unhealthy", "degraded"), fleet)
        r = h.coap(s.port, "get", "nodes?status=offline")
        self.assertEqual([n["node_id"] for n in r.json()["nodes"]], ["live-1"])
        r = h.coap(s.port, "get", "nodes?status=online")
        self.assertEqual(r.json()["nodes"], [])
        before = [n for n in s.coap("get", "nodes").json()["nodes"]][0]["last_seen"]

        # A new report brings it back at once.
        self.assertEqual(s.coap("put", "health", {"node_id": "live-1",
                                                  "overall_healthy": True}).code, "2.04")
        self.wait_status("live-1", "online", timeout=2)
        # GET /health follows liveness within the publish interval.
        fleet = h.deadline_poll(lambda: (lambda f: f if f["online_nodes"] == 1 else None)(
            self.fleet()), 2, 0.02, what="GET /health to count live-1 online")
        self.assertEqual((fleet["online_nodes"], fleet["offline_nodes"]), (1, 0), fleet)
        self.assertEqual(fleet["status"], "healthy")
        after = s.coap("get", "nodes").json()["nodes"][0]["last_seen"]
        self.assertGreater(after, before)

        # Re-registration counts as a sign of life as well.
        self.wait_status("live-1", "offline")
        self.assertEqual(s.coap("post", "nodes", {"node_id": "live-1"}).code, "2.01")
        self.wait_status("live-1", "online", timeout=2)

    def test_offline_target_is_skipped(self):
        s = self.server
        agent = self.new_agent("127.1.0.9")
        for node in ("sk-on", "sk-off"):
            r = s.coap("post", "nodes", {"node_id": node, "ip_address": agent.ip,
                                         "port": agent.port})
            self.assertEqual(r.code, "2.01")
        self.wait_status("sk-off", "offline")
        self.assertEqual(s.coap("put", "health", {"node_id": "sk-on"}).code, "2.04")
        r = s.coap("post", "updates", {"name": "skip", "version": "1", "package_type": "pip",
                                       "target_nodes": ["sk-on", "sk-off"], "packages": ["x"]})
        job = r.json()["job_id"]
        self.assertEqual(s.coap("post", "updates", {"action": "install", "job_id": job}).code,
                         "2.04")
        h.deadline_poll(lambda: s.coap("post", "updates", {"action": "status", "job_id": job})
                        .json()["node_statuses"] == {"sk-on": "notified", "sk-off": "skipped"},
                        15, what="sk-on notified, sk-off skipped")
        self.assertEqual([b["node_id"] for b in agent.bodies()], ["sk-on"])

    def test_notify_offline_flag(self):
        s = self.new_server(["--stale-after", "1", "--offline-after", "2", "--notify-offline"])
        agent = self.new_agent("127.1.0.10")
        r = s.coap("post", "nodes", {"node_id": "no-1", "ip_address": agent.ip,
                                     "port": agent.port})
        self.assertEqual(r.code, "2.01")
        h.deadline_poll(lambda: node_status(s, "no-1") == "offline", 15, what="no-1 offline")
        job = s.coap("post", "updates", {"name": "n", "version": "1", "package_type": "pip",
                                         "target_nodes": ["no-1"], "packages": ["x"]}
                     ).json()["job_id"]
        self.assertEqual(s.coap("post", "updates", {"action": "install", "job_id": job}).code,
                         "2.04")
        h.deadline_poll(lambda: s.coap("post", "updates", {"action": "status", "job_id": job})
                        .json()["node_statuses"] == {"no-1": "notified"}, 15,
                        what="offline node notified anyway")
        self.assertEqual([b["node_id"] for b in agent.bodies()], ["no-1"])


class VirtualActorsTest(h.ServerTestCase):
    """A node's actor lives while the node talks: closed after --idle-after
    quiet, started again by its next report or a read, nothing lost."""

    start_server = False

    def test_quiet_nodes_are_closed_and_come_back(self):
        s = self.new_server(["--idle-after", "1"])  # the harness logs at debug
        for i in range(3):
            self.assertEqual(s.coap("post", "nodes", {"node_id": "va-%d" % i}).code, "2.01")
        # Registered, never heard from: no actor yet; a report starts one.
        for i in range(3):
            r = s.raw("put", "health", {"node_id": "va-%d" % i, "cpu_percent": i,
                                        "overall_healthy": i != 2,
                                        "error_messages": ["fan"] if i == 2 else []})
            self.assertEqual(r.code, "2.04", r)
        r = s.coap("get", "nodes/va-1/health")
        self.assertEqual(r.code, "2.05", r)
        self.assertEqual(r.json()["cpu_percent"], 1)
        # Quiet for a second: each actor is closed (the registry says so).
        h.deadline_poll(lambda: all("node va-%d is quiet: its actor is closed" % i
                                    in s.log_text() for i in range(3)),
                        20, 0.1, what="the three actors closed")
        # Counts, the listing and one node's health are as before.
        fleet = s.coap("get", "health").json()
        self.assertEqual((fleet["total_nodes"], fleet["healthy_nodes"],
                          fleet["unhealthy_nodes"]), (3, 2, 1), fleet)
        self.assertEqual(fleet["unhealthy"][0]["node_id"], "va-2", fleet)
        r = s.coap("get", "nodes/va-1/health")  # read from the store by a new actor
        self.assertEqual(r.code, "2.05", r)
        self.assertEqual(r.json()["cpu_percent"], 1)
        # A report of a quiet node is taken (through the registry) and shows.
        r = s.raw("put", "health", {"node_id": "va-0", "cpu_percent": 55})
        self.assertEqual(r.code, "2.04", r)
        r = s.coap("get", "nodes/va-0/health")
        self.assertEqual(r.json()["cpu_percent"], 55, r)
        # And with coap-client, as an agent would send it.
        r = s.coap("put", "health", {"node_id": "va-0", "cpu_percent": 56})
        self.assertEqual(r.code, "2.04", r)
        # Unknown nodes: 4.04 naming them, for a report and for a read.
        r = s.coap("put", "health", {"node_id": "va-ghost"})
        self.assertEqual(r.code, "4.04", r)
        self.assertEqual(r.json()["node_id"], "va-ghost")
        r = s.coap("get", "nodes/va-ghost/health")
        self.assertEqual(r.code, "4.04", r)
        self.assertEqual(r.json()["node_id"], "va-ghost")
        # After a restart the same: counts from the nodes' briefs, no actor.
        s.stop()
        s.start()
        fleet = s.coap("get", "health").json()
        self.assertEqual((fleet["total_nodes"], fleet["healthy_nodes"],
                          fleet["unhealthy_nodes"]), (3, 2, 1), fleet)
        r = s.coap("get", "nodes/va-0/health")
        self.assertEqual(r.json()["cpu_percent"], 56, r)


class UnhealthyListTest(h.ServerTestCase):
    """GET /health lists the first --health-list unhealthy nodes by id and
    counts the rest; GET /nodes?health=unhealthy lists them all."""

    start_server = False

    def test_health_lists_the_first_and_points_at_the_rest(self):
        s = self.new_server(["--health-list", "2"])
        for i in range(5):
            self.assertEqual(s.coap("post", "nodes", {"node_id": "uh-%d" % i}).code, "2.01")
            r = s.coap("put", "health", {"node_id": "uh-%d" % i, "overall_healthy": i == 0,
                                         "error_messages": [] if i == 0 else ["fan %d" % i]})
            self.assertEqual(r.code, "2.04", r)
        # Health reports are telemetry: GET /health follows within its interval.
        h.deadline_poll(lambda: s.coap("get", "health").json()["unhealthy_nodes"] == 4, 10,
                        what="four unhealthy counted")
        fleet = s.coap("get", "health").json()
        self.assertEqual([u["node_id"] for u in fleet["unhealthy"]], ["uh-1", "uh-2"], fleet)
        self.assertEqual(fleet["unhealthy"][1]["error_messages"], ["fan 2"], fleet)
        self.assertEqual(fleet["unhealthy_more"], 2, fleet)
        self.assertEqual(fleet["unhealthy_listing"], "/nodes?health=unhealthy", fleet)
        unhealthy = lambda: [n["node_id"] for n in
                             s.coap("get", "nodes?health=unhealthy").json()["nodes"]]
        # (the listing reads the store: reports are committed within --health-flush-ms)
        h.deadline_poll(lambda: unhealthy() == ["uh-1", "uh-2", "uh-3", "uh-4"], 10,
                        what="the four unhealthy listed")
        page = s.coap("get", "nodes?health=unhealthy&limit=3").json()
        self.assertEqual([n["node_id"] for n in page["nodes"]], ["uh-1", "uh-2", "uh-3"])
        self.assertEqual(page["next"], "uh-3")
        healthy = s.coap("get", "nodes?health=healthy").json()["nodes"]
        self.assertEqual([n["node_id"] for n in healthy], ["uh-0"])
        r = s.coap("get", "nodes?health=sick")
        self.assertEqual(r.code, "4.00", r)
        self.assertEqual(r.json()["field"], "health", r)
        # Healthy again: listed ones leave, nothing more to point at.
        for i in (1, 2, 3):
            s.coap("put", "health", {"node_id": "uh-%d" % i, "overall_healthy": True})
        h.deadline_poll(lambda: s.coap("get", "health").json()["unhealthy_nodes"] == 1, 10,
                        what="one unhealthy left")
        fleet = s.coap("get", "health").json()
        self.assertEqual([u["node_id"] for u in fleet["unhealthy"]], ["uh-4"], fleet)
        self.assertNotIn("unhealthy_more", fleet)


class RegistrationTest(h.ServerTestCase):
    def test_ip_address_defaults_to_source_and_upsert(self):
        with h.RawClient(h.HOST, self.server.port, local=("127.0.0.5", 0)) as c:
            r = c.request("post", "nodes", {"node_id": "src-1", "hostname": "first"})
            self.assertEqual(r.code, "2.01", r)
        nodes = self.server.coap("get", "nodes").json()["nodes"]
        self.assertEqual([(n["node_id"], n["ip_address"], n["hostname"]) for n in nodes],
                         [("src-1", "127.0.0.5", "first")])
        registered_at = nodes[0].get("registered_at")
        # Re-registration is normal: same node, new data.
        r = self.server.coap("post", "nodes", {"node_id": "src-1", "hostname": "second",
                                               "ip_address": "127.0.0.6", "port": 5700,
                                               "services": ["mqtt"]})
        self.assertEqual(r.code, "2.01", r)
        self.assertEqual(r.json(), {"message": "Node registered successfully",
                                    "node_id": "src-1"})
        nodes = self.server.coap("get", "nodes").json()["nodes"]
        self.assertEqual(len(nodes), 1)
        n = nodes[0]
        self.assertEqual((n["hostname"], n["ip_address"], n["port"], n["services"]),
                         ("second", "127.0.0.6", 5700, ["mqtt"]))
        if registered_at is not None:
            self.assertEqual(n["registered_at"], registered_at)


class NodeFilterTest(h.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for i in range(5):
            r = cls.server.coap("post", "nodes", {"node_id": "f-%d" % i, "hostname": "h%d" % i})
            assert r.code == "2.01", r

    def ids(self, query):
        r = h.coap(self.server.port, "get", "nodes" + query)
        self.assertEqual(r.code, "2.05", r)
        return sorted(n["node_id"] for n in r.json()["nodes"])

    def test_filters(self):
        all_ids = ["f-%d" % i for i in range(5)]
        self.assertEqual(self.ids(""), all_ids)
        self.assertEqual(self.ids("?status=online"), all_ids)
        self.assertEqual(self.ids("?status=offline"), [])
        self.assertEqual(self.ids("?status=stale"), [])
        self.assertEqual(self.ids("?node_id=f-3"), ["f-3"])
        self.assertEqual(self.ids("?node_id=f-3&status=online"), ["f-3"])
        self.assertEqual(self.ids("?node_id=f-3&status=offline"), [])
        self.assertEqual(self.ids("?node_id=nobody"), [])

    def test_bad_filters(self):
        for query, field in (("?status=bogus", "status"), ("?status=", "status"),
                             ("?status=ONLINE", "status"), ("?color=red", "color"),
                             ("?nodeid=f-1", "nodeid")):
            with self.subTest(query=query):
                r = h.coap(self.server.port, "get", "nodes" + query)
                self.assertErrorJson(r, "4.00", field)


class ScaleTest(h.ServerTestCase):
    N = 5000

    def test_5000_nodes_listed_whole(self):
        ids = ["scale-%05d" % i for i in range(self.N)]
        bodies = ({"node_id": i, "hostname": "host-" + i, "ip_address": "127.2.%d.%d"
                   % (n // 250, n % 250 + 1), "services": ["ssh", "docker"],
                   "drivers": ["gpio"], "system_info": {"os": "linux", "arch": "arm64"}}
                  for n, i in enumerate(ids))
        t0 = time.monotonic()
        acked, failures = h.register_stream(self.server.port, bodies, window=32)
        t1 = time.monotonic()
        self.assertEqual(failures, [])
        self.assertEqual(len(acked), self.N)
        # A listing this large follows registrations within twenty renderings'
        # time rather than before each acknowledgement (see README, Reads).
        def listed():
            r = h.coap(self.server.port, "get", "nodes", wait=60)
            self.assertEqual(r.code, "2.05", r.stdout[-500:])
            return r if len(r.json()["nodes"]) == self.N else None
        r = h.deadline_poll(listed, 30, 0.2, what="all %d nodes in GET /nodes" % self.N)
        t2 = time.monotonic()
        nodes = r.json()["nodes"]
        self.assertEqual(len(nodes), self.N)
        self.assertEqual(sorted(n["node_id"] for n in nodes), ids)
        self.assertEqual(len({n["ip_address"] for n in nodes}), self.N)
        self.assertTrue(all(n["hostname"] == "host-" + n["node_id"] for n in nodes))
        fleet = h.deadline_poll(lambda: (lambda f: f if f["total_nodes"] == self.N else None)(
            self.server.coap("get", "health").json()), 10, 0.1, what="GET /health to count them")
        self.assertEqual(fleet["total_nodes"], self.N)
        self.assertEqual(fleet["online_nodes"], self.N)
        sys.stderr.write("\n  %d registrations in %.2f s (%.0f/s); GET /nodes (%d bytes) "
                         "through coap-client in %.2f s\n"
                         % (self.N, t1 - t0, self.N / (t1 - t0), len(r.body), t2 - t1))


if __name__ == "__main__":
    h.main()
