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
    is fenced: it says so, the others see its lease lapse, a write sent to it
    is not acknowledged and not stored; once the store is back it joins again
    with a new epoch and writes again;
(d) a real agent given two members (--server twice) fails over to the
    second when the first is killed, registers there and reports on;
(e) 200 simulated nodes given two members fail over to the second when
    the first is killed, and every one registers there;
(f) bad cluster options are refused with a clear message; a server on its
    own answers GET /cluster with "clustered": false.
"""
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

LEASE_MS = 3000


def free_tcp_port():
    s = socket.socket()
    s.bind((h.HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class HoldingProxy:
    """A TCP proxy to PostgreSQL that can hold all traffic (a cut network:
    connections stay open, nothing gets through) and let it go again."""

    def __init__(self, target_port):
        self.target = (h.HOST, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((h.HOST, 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.held = threading.Event()
        self.stopped = False
        self.pairs = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._pump, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.pairs.append((c, u))

    def _pump(self):
        while not self.stopped:
            if self.held.is_set():
                time.sleep(0.05)
                continue
            with self.lock:
                socks = [s for p in self.pairs for s in p]
            if not socks:
                time.sleep(0.02)
                continue
            try:
                ready, _, _ = select.select(socks, [], [], 0.05)
            except (OSError, ValueError):
                self._drop_closed()
                continue
            for s in ready:
                if self.held.is_set():
                    break
                peer = self._peer_of(s)
                if peer is None:
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._close_pair(s)
                    continue
                try:
                    peer.sendall(data)
                except OSError:
                    self._close_pair(s)

    def _peer_of(self, s):
        with self.lock:
            for a, b in self.pairs:
                if s is a:
                    return b
                if s is b:
                    return a
        return None

    def _close_pair(self, s):
        with self.lock:
            for p in list(self.pairs):
                if s in p:
                    self.pairs.remove(p)
                    for x in p:
                        try:
                            x.close()
                        except OSError:
                            pass

    def _drop_closed(self):
        with self.lock:
            self.pairs = [p for p in self.pairs if p[0].fileno() >= 0 and p[1].fileno() >= 0]

    def hold(self):
        self.held.set()

    def release(self):
        self.held.clear()

    def close(self):
        self.stopped = True
        self.listener.close()
        with self.lock:
            for p in self.pairs:
                for x in p:
                    x.close()
            self.pairs = []


def with_port(uri, port):
    u = urllib.parse.urlsplit(uri)
    host = u.hostname
    netloc = (u.username + "@" if u.username else "") + "%s:%d" % (host, port)
    return urllib.parse.urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))


class ClusterTest(h.ServerTestCase):
    start_server = False
    fresh_per_test = True

    @classmethod
    def start_processes(cls):
        if not h.TEST_PG:
            raise AssertionError("test_cluster.py runs under tests/with_pg.sh (COAPFLEET_TEST_PG)")
        cls.store = h.fresh_store(cls.tmp, "cluster")
        cls.links = {n: free_tcp_port() for n in ("m1", "m2", "m3")}
        cls.proxy = None

    @classmethod
    def stop_processes(cls):
        super().stop_processes()
        if cls.proxy:
            cls.proxy.close()
            cls.proxy = None

    def member(self, name, store=None, start=True):
        seeds = ",".join("%s:%d" % (h.HOST, p) for p in self.links.values())
        extra = ["--member-id", name, "--cluster-listen", "%s:%d" % (h.HOST, self.links[name]),
                 "--cluster-seed", seeds, "--lease-ms", str(LEASE_MS),
                 "--artifacts", os.path.join(self.tmp, name + "-artifacts")]
        return self.new_server(extra, name=name, db=store or self.store, start=start)

    def cluster(self, server, wait=10):
        r = server.coap("get", "cluster", wait=wait)
        self.assertEqual(r.code, "2.05", r)
        return r.json()

    def members_of(self, server):
        try:
            c = self.cluster(server)
        except AssertionError:
            return None
        return {m["member_id"]: m for m in c["members"]}

    def wait_for(self, what, predicate, timeout=20):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            last = predicate()
            if last:
                return last
            time.sleep(0.2)
        self.fail("%s not within %d s (last: %r)" % (what, timeout, last))

    def all_live_and_linked(self, servers, names):
        for s in servers:
            ms = self.members_of(s)
            if ms is None or sorted(ms) != sorted(names):
                return False
            if not all(ms[n]["live"] and ms[n]["linked"] for n in names):
                return False
        return True

    def register(self, server, node_id, wait=10):
        return server.coap("post", "nodes", {
            "node_id": node_id, "hostname": node_id, "ip_address": "127.0.0.1", "port": 5699,
            "services": [], "drivers": [], "system_info": {}}, wait=wait)

    def node_ids(self, server):
        r = server.coap("get", "nodes")
        self.assertEqual(r.code, "2.05", r)
        return {n["node_id"] for n in r.json()["nodes"]}

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
        # A write sent to the cut-off member is not acknowledged, and not stored.
        r = self.register(m2, "during-cut", wait=30)
        self.assertNotIn(r.code, ("2.01", "2.04"), r)
        self.proxy.release()
        self.wait_for("m2 active again with a new epoch", lambda: (
            lambda c: c["state"] == "active" and c["epoch"] > epoch)(self.cluster(m2, wait=15)),
            timeout=30)
        self.assertIn("joined again", m2.log_text())
        ids = self.node_ids(m1)
        self.assertIn("before-cut", ids)
        self.assertNotIn("during-cut", ids)
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
        log_path = os.path.join(self.tmp, "agent.log")
        log = open(log_path, "wb")
        agent = subprocess.Popen(
            [agent_bin, "--server", m1.url(), "--server", m2.url(), "--node-id", "fo-1",
             "--bind", h.HOST, "--port", str(h.free_port()),
             "--state-dir", os.path.join(self.tmp, "agent-state"),
             "--root", os.path.join(self.tmp, "agent-root"), "--interval", "0.5",
             "--request-timeout", "2", "--log-level", "debug"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.addCleanup(lambda: (agent.kill(), agent.wait()))
        def agent_log():
            with open(log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
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
