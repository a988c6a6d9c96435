"""Helpers of the cluster tests (test_cluster.py, test_cluster_campaign.py):
members on free ports sharing a throwaway PostgreSQL, and a TCP proxy that
can hold a member's database traffic."""
import os
import select
import socket
import subprocess
import threading
import time
import urllib.parse

import harness as h

LEASE_MS = 3000


def free_tcp_port():
    return h.free_port(kind=socket.SOCK_STREAM)


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


class ClusterCase(h.ServerTestCase):
    """Three members m1-m3 on free ports sharing one store (a schema of
    their own in COAPFLEET_TEST_PG), and the helpers to read them."""
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
        try:
            super().stop_processes()
        finally:
            if cls.proxy:
                cls.proxy.close()
                cls.proxy = None

    def member(self, name, store=None, start=True, extra=()):
        seeds = ",".join("%s:%d" % (h.HOST, p) for p in self.links.values())
        args = ["--member-id", name, "--cluster-listen", "%s:%d" % (h.HOST, self.links[name]),
                "--cluster-seed", seeds, "--lease-ms", str(LEASE_MS),
                "--artifacts", os.path.join(self.tmp, name + "-artifacts")] + list(extra)
        return self.new_server(args, name=name, db=store or self.store, start=start)

    def start_agent(self, agent_bin, name, node_id, servers, extra=()):
        """A real agent with `servers` (--server each, in order), reporting every
        0.5 s; returns it and a function that reads its log."""
        log_path = os.path.join(self.tmp, name + ".log")
        args = [agent_bin]
        for url in servers:
            args += ["--server", url]
        args += ["--node-id", node_id, "--bind", h.HOST, "--port", str(h.free_port()),
                 "--state-dir", os.path.join(self.tmp, name + "-state"),
                 "--root", os.path.join(self.tmp, name + "-root"), "--interval", "0.5",
                 "--request-timeout", "2", "--log-level", "debug"] + list(extra)
        with open(log_path, "wb") as log:
            agent = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: (agent.kill(), agent.wait()))
        def agent_log():
            with open(log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        return agent, agent_log

    def run_job(self, server, spec, node_id, timeout=60):
        """Creates the job `spec` through `server` for `node_id`, installs it
        there and waits until the node's part is final; returns its status."""
        r = server.coap("post", "updates", dict(spec, target_nodes=[node_id]))
        self.assertEqual(r.code, "2.01", r)
        job = r.json()["job_id"]
        r = server.coap("post", "updates", {"action": "install", "job_id": job})
        self.assertEqual(r.code, "2.04", r)

        def finished():
            r = server.coap("get", "updates/%s/status" % job)
            st = r.json().get("node_statuses", {}).get(node_id) if r.code == "2.05" else None
            return st if st in ("succeeded", "failed", "timed_out") else None
        return self.wait_for("the job on %s finished" % node_id, finished, timeout=timeout)

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

    def linked_members(self, *names):
        """Starts the named members and waits until each sees all live and linked."""
        ms = [self.member(n) for n in names]
        self.wait_for("%d live, linked members" % len(ms),
                      lambda: self.all_live_and_linked(ms, list(names)))
        return ms

    def report(self, server, node_id, cpu):
        """A PUT /health of `node_id` through `server`, which must take it (2.04)."""
        r = server.coap("put", "health", {"node_id": node_id, "overall_healthy": True,
                                          "cpu_percent": cpu, "memory_percent": 10.0,
                                          "services_status": {}, "error_messages": []})
        self.assertEqual(r.code, "2.04", (server.port, r))

    def register(self, server, node_id, wait=10):
        return server.coap("post", "nodes", {
            "node_id": node_id, "hostname": node_id, "ip_address": "127.0.0.1", "port": 5699,
            "services": [], "drivers": [], "system_info": {}}, wait=wait)

    def node_ids(self, server):
        r = server.coap("get", "nodes")
        self.assertEqual(r.code, "2.05", r)
        return {n["node_id"] for n in r.json()["nodes"]}
