#!/usr/bin/env python3
"""Observe (RFC 7641) end to end, with a raw observer written here (its own UDP
socket and token per observation, GET with Observe=0, CON notifications
acknowledged with an empty ACK, every payload kept separately, unlike
coap-client which prints them back to back):

- /updates/<job>/status follows a three-agent script job from `created` to
  `completed`, every node's states in the order of the chain;
- 100 observers of one /nodes/<id>/health all end with the latest report;
- deleting a job ends its observations with 4.04;
- /.well-known/core stays the same size as nodes and jobs are added (their
  resources are served by one handler), and those resources are observable;
- the agent's own GET /health is observable;
- (expected failure, a known bug) a new observer is served a stale cached
  representation after a change nobody observed.

Loopback only: the server on 127.0.0.1 (free port), real agents on
127.1.0.N:5683 (agent_harness.Worker)."""
import calendar
import json
import os
import random
import re
import select
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402

OPT_OBSERVE = 6
NODES = ["worker-01", "worker-02", "worker-03"]
# The success path of a node (README "Node update states"); a node's observed
# states never go back along it.
CHAIN = ["pending", "notified", "downloading", "downloaded", "installing", "succeeded"]
RANK = {s: i for i, s in enumerate(CHAIN)}


# -- a raw observer ---------------------------------------------------------------------

class Observer:
    """One observation over its own connected UDP socket. start() sends the
    registration (CON GET, Observe=0, a random 8-byte token), retransmitted
    until answered; handle() reads what arrived: every response with our token
    (piggybacked, separate or notification) is appended to .notes in arrival
    order, CON ones are ACKed (and their retransmissions dropped)."""

    def __init__(self, host, port, path, query=()):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((h.HOST, 0))
        self.sock.connect((host, port))
        self.sock.setblocking(False)
        self.where = "coap://%s:%d/%s" % (host, port, path)
        self.path, self.query = path, list(query)
        self.token = os.urandom(8)
        self.mid = random.randint(0, 0xFFFF)
        self.notes = []          # h.Message, in arrival order
        self.strays = []         # datagrams that were not ours
        self.seen_con = set()    # mids of CON notifications already taken
        self.reg_mid = None
        self.reg_answered = False
        self.reg_tries = 0
        self.reg_next = 0.0
        self.refused = None      # an RST to the registration

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()

    def start(self):
        self.mid = (self.mid + 1) & 0xFFFF
        self.reg_mid = self.mid
        opts = h.request_options(self.path, None, self.query) + [(OPT_OBSERVE, b"")]
        self.reg = h.encode_message(h.CON, h.METHODS["get"], self.reg_mid, self.token, opts)
        self.reg_tries = 0
        self.reg_next = 0.0
        self.tick()
        return self

    def tick(self):
        """Retransmits the registration while it is unanswered (2, 4, 8 s)."""
        if self.reg_answered or self.reg_tries > 4:
            return
        now = time.monotonic()
        if now >= self.reg_next:
            try:
                self.sock.send(self.reg)
            except OSError:
                pass
            self.reg_next = now + 2.0 * 2 ** self.reg_tries
            self.reg_tries += 1

    def handle(self):
        """Reads every datagram waiting on the socket."""
        while True:
            try:
                data = self.sock.recv(70000)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                continue  # ICMP for something we sent earlier
            msg = h.decode_message(data)
            if msg is None:
                self.strays.append(data)
                continue
            if msg.type == h.ACK and msg.mid == self.reg_mid:
                self.reg_answered = True  # an empty ACK: the answer comes separately
                if msg.code != 0 and msg.token == self.token:
                    self.notes.append(msg)
                continue
            if msg.type == h.RST and msg.mid == self.reg_mid:
                self.refused = msg
                self.reg_answered = True
                continue
            if msg.type in (h.CON, h.NON) and msg.code >= 64:
                if msg.type == h.CON:
                    self.sock.send(h.encode_message(h.ACK, 0, msg.mid))
                    if msg.mid in self.seen_con:
                        continue  # a retransmission of one we have
                    self.seen_con.add(msg.mid)
                if msg.token != self.token:
                    self.strays.append(msg)
                    continue
                self.reg_answered = True
                self.notes.append(msg)
                continue
            self.strays.append(msg)

    # -- reading the notes ---------------------------------------------------------------

    def ok_notes(self):
        return [m for m in self.notes if m.code_text.startswith("2.")]

    def body_of(self, m):
        """A notification's representation: its payload, or, when it is the
        first block of a larger one (RFC 7959 2.6), the whole of it as a
        GET reads it now."""
        block = m.option(h.OPT_BLOCK2)
        if block is not None and h.decode_uint(block) & 0x8:
            host, port = self.sock.getpeername()
            r = h.raw_request(port, "get", self.path, query=tuple(self.query))
            return json.loads(r.payload.decode("utf-8"))
        return json.loads(m.payload.decode("utf-8"))

    def bodies(self):
        return [self.body_of(m) for m in self.ok_notes()]

    def last_body(self):
        ok = self.ok_notes()
        return self.body_of(ok[-1]) if ok else None

    def observe_numbers(self):
        return [h.decode_uint(m.option(OPT_OBSERVE)) for m in self.ok_notes()
                if m.has_option(OPT_OBSERVE)]

    def describe(self, last=8):
        return "%s: %d responses, last %d:\n  %s" % (
            self.where, len(self.notes), min(last, len(self.notes)),
            "\n  ".join("%s obs=%s %s" % (m.code_text,
                                           h.decode_uint(m.option(OPT_OBSERVE))
                                           if m.has_option(OPT_OBSERVE) else "-",
                                           m.payload[:300].decode("utf-8", "replace"))
                        for m in self.notes[-last:]))


def pump(observers, timeout):
    """Waits up to `timeout` for datagrams on any of `observers` and handles
    what arrived (returns after the first batch)."""
    for o in observers:
        o.tick()
    r, _, _ = select.select(observers, [], [], max(0.0, timeout))
    for o in r:
        o.handle()


def wait_until(observers, predicate, timeout, what):
    """Pumps `observers` until predicate() is true; AssertionError after
    `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        if predicate():
            return
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        pump(observers, min(left, 0.2))


def observe(host, port, path, timeout=10, query=()):
    """Registers an observer and waits for its first answer."""
    o = Observer(host, port, path, query).start()
    try:
        wait_until([o], lambda: o.notes or o.refused, timeout,
                   "the first answer to observing %s" % o.where)
    except AssertionError:
        o.close()
        raise
    return o


def parse_time(stamp):
    """Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS[.fff]Z"."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", stamp)
    if not m:
        raise ValueError("not a UTC timestamp: %r" % stamp)
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + float(
        m.group(2) or 0)


def parse_links(text):
    """Link format (RFC 6690) → [(target, {attribute: value or True})]."""
    links = []
    for m in re.finditer(r'<([^>]*)>((?:;[^;,="]+(?:="[^"]*"|=[^;,]*)?)*)', text):
        attrs = {}
        for a in re.finditer(r';([^;,="]+)(?:="([^"]*)"|=([^;,]*))?', m.group(2)):
            value = a.group(2) if a.group(2) is not None else a.group(3)
            attrs[a.group(1)] = True if value is None else value
        links.append((m.group(1), attrs))
    return links


class ObserveAssertions:
    def assertRegistered(self, o, code="2.05"):
        self.assertIsNone(o.refused, "%s answered the registration with RST" % o.where)
        first = o.notes[0]
        self.assertEqual(first.code_text, code, o.describe())
        self.assertTrue(first.has_option(OPT_OBSERVE),
                        "%s: the first answer carries no Observe option, so this is no "
                        "observation\n%s" % (o.where, o.describe()))
        return first

    def assertObserveIncreasing(self, o):
        seq = o.observe_numbers()
        self.assertEqual(len(seq), len(o.ok_notes()),
                         "a 2.xx notification without Observe option\n" + o.describe())
        for a, b in zip(seq, seq[1:]):
            # RFC 7641 3.4: newer when (b - a) mod 2^24 is in 1 .. 2^23.
            self.assertTrue(0 < (b - a) % (1 << 24) < (1 << 23),
                            "Observe numbers do not increase: %r\n%s" % (seq, o.describe(20)))


# -- the server's job status, with three real agents ------------------------------------

class JobStatusWithAgents(ah.AgentTestCase, ObserveAssertions):
    """worker-01..03 (real agents, --interval 1) on 127.1.0.1..3:5683."""

    def test_job_status_follows_three_agents_in_order(self):
        job = self.create_job({"name": "observe-three", "version": "1",
                               "package_type": "script", "script": "sleep 1; true"})
        o = observe(h.HOST, self.server.port, "updates/%s/status" % job)
        self.addCleanup(o.close)
        self.assertRegistered(o)
        first = o.bodies()[0]
        self.assertEqual(first["job_id"], job, first)
        self.assertIn(first["status"], ("created", "in_progress"), first)

        self.install(job)

        def done():
            last = o.last_body()
            return last is not None and last.get("status") == "completed"
        try:
            wait_until([o], done, 40, "job %s completed" % job)
        except AssertionError as e:
            self.fail("%s\n%s\nstatus action: %s" % (e, o.describe(20),
                                                     json.dumps(self.status(job))))

        self.assertObserveIncreasing(o)
        bodies = o.bodies()
        last = bodies[-1]
        self.assertEqual(last["node_statuses"], {n: "succeeded" for n in NODES},
                         json.dumps(last))
        self.assertEqual(last["counts"]["succeeded"], 3, last)
        for body in bodies:
            self.assertEqual(body["job_id"], job, body)
        # No node's state goes back along the chain, and each ends succeeded.
        for node in NODES:
            seen = [b["node_statuses"][node] for b in bodies if node in b.get("node_statuses", {})]
            self.assertTrue(seen, "no notification names %s\n%s" % (node, o.describe(20)))
            for s in seen:
                self.assertIn(s, RANK, "%s: state %r off the success chain: %r" % (node, s, seen))
            ranks = [RANK[s] for s in seen]
            self.assertEqual(ranks, sorted(ranks),
                             "%s went backwards: %r\n%s" % (node, seen, o.describe(20)))
            self.assertEqual(seen[-1], "succeeded", (node, seen))
        # The job's own status never goes back either: created, in_progress, completed.
        job_chain = {"created": 0, "in_progress": 1, "completed": 2}
        states = [b["status"] for b in bodies]
        for s in states:
            self.assertIn(s, job_chain, states)
        self.assertEqual([job_chain[s] for s in states],
                         sorted(job_chain[s] for s in states), states)
        # The last notification is what the status action says now.
        now = self.status(job)
        for key in ("status", "node_statuses", "counts"):
            self.assertEqual(last[key], now[key], key)

    def test_agent_health_is_observable(self):
        w = self.workers_list[0]
        o = observe(w.ip, w.port, "health")
        self.addCleanup(o.close)
        self.assertRegistered(o)
        try:
            wait_until([o], lambda: len(o.ok_notes()) >= 4, 15,
                       "3 notifications of %s after the first answer" % o.where)
        except AssertionError as e:
            self.fail("%s\n%s" % (e, o.describe()))
        self.assertObserveIncreasing(o)
        bodies = o.bodies()
        stamps = [b.get("timestamp") for b in bodies]
        for b in bodies:
            self.assertEqual(b.get("node_id"), w.node_id, b)
        times = [parse_time(s) for s in stamps]
        self.assertEqual(times, sorted(set(times)),
                         "timestamps do not increase: %r" % stamps)


# -- the server alone -------------------------------------------------------------------

class ServerObserve(h.ServerTestCase, ObserveAssertions):

    def register_node(self, node_id):
        r = self.server.coap("post", "nodes", {"node_id": node_id, "hostname": node_id + "-host"})
        self.assertEqual(r.code, "2.01", "%r%s" % (r, h._trace(r)))
        return node_id

    def create_job(self, name):
        r = self.server.coap("post", "updates", {"name": name, "version": "1",
                                                 "package_type": "script", "script": "true"})
        self.assertEqual(r.code, "2.01", "%r%s" % (r, h._trace(r)))
        return r.json()["job_id"]

    def test_node_changes_carry_only_what_changed(self):
        """GET /nodes/changes, observed: each notification lists the nodes that
        changed since the previous one (from/to chain them), never the fleet."""
        s = self.server
        fleet = ["chg-%02d" % i for i in range(40)]  # registered before anyone reads changes
        with h.RawClient(h.HOST, s.port) as c:
            for node in fleet:
                self.assertEqual(c.request("post", "nodes", {"node_id": node}).code, "2.01")
        # A plain GET takes the registrations (40 nodes: a block-wise body).
        r = s.raw("get", "nodes/changes")
        self.assertEqual(r.code, "2.05", r)
        self.assertTrue(set(fleet) <= {n["node_id"] for n in r.json()["nodes"]}, r)
        o = observe(h.HOST, s.port, "nodes/changes")
        self.addCleanup(o.close)
        self.assertRegistered(o)
        first = o.bodies()[0]
        self.assertEqual(sorted(first), ["from", "nodes", "reset", "to"], first)
        # One node reports, twice: the notifications that follow name it alone.
        for cpu in (11, 12):
            r = s.coap("put", "health", {"node_id": "chg-07", "cpu_percent": cpu})
            self.assertEqual(r.code, "2.04", r)

        def shows(cpu):
            return any(n["node_id"] == "chg-07" and n.get("health", {}).get("cpu_percent") == cpu
                       for b in o.bodies()[1:] for n in b["nodes"])
        wait_until([o], lambda: shows(12), 20, "a notification with chg-07 at 12% CPU")
        bodies = o.bodies()
        for prev, cur in zip(bodies, bodies[1:]):
            self.assertEqual(cur["from"], prev["to"], o.describe())  # none missed
            self.assertGreater(cur["to"], cur["from"])
        # Never the fleet: of the 40, only the one that reported (nodes of the
        # class's other tests may change liveness meanwhile).
        later = [n["node_id"] for b in bodies[1:] for n in b["nodes"]]
        self.assertEqual({i for i in later if i.startswith("chg-")}, {"chg-07"}, later)
        self.assertObserveIncreasing(o)
        # A plain GET (coap-client) has the shape too.
        r = h.coap(s.port, "get", "nodes/changes")
        self.assertEqual(r.code, "2.05", r)
        self.assertIn("nodes", r.json())

    def test_update_changes_carry_only_the_jobs_that_changed(self):
        """GET /updates/changes, observed: each notification lists the jobs
        changed since the previous one (a deleted one as deleted), not all jobs."""
        s = self.server
        spec = {"name": "chg", "version": "1", "package_type": "pip",
                "target_nodes": ["all"], "packages": ["x"]}
        made = [s.coap("post", "updates", spec).json()["job_id"] for _ in range(5)]
        r = s.raw("get", "updates/changes")  # takes the creations
        self.assertEqual(r.code, "2.05", r)
        self.assertTrue(set(made) <= {u["job_id"] for u in r.json()["updates"]}, r)
        o = observe(h.HOST, s.port, "updates/changes")
        self.addCleanup(o.close)
        self.assertRegistered(o)
        self.assertEqual(sorted(o.bodies()[0]), ["from", "reset", "to", "updates"])
        # One job is deleted: the notifications that follow name it alone.
        r = s.coap("post", "updates", {"action": "delete", "job_id": made[2]})
        self.assertIn(r.code, ("2.02", "2.04"), r)

        def gone():
            return any(u["job_id"] == made[2] and u.get("deleted") is True
                       for b in o.bodies()[1:] for u in b["updates"])
        wait_until([o], gone, 20, "a notification naming the deleted job")
        bodies = o.bodies()
        for prev, cur in zip(bodies, bodies[1:]):
            self.assertEqual(cur["from"], prev["to"], o.describe())
        later = {u["job_id"] for b in bodies[1:] for u in b["updates"]}
        self.assertEqual(later & set(made), {made[2]}, later)
        self.assertObserveIncreasing(o)
        # A plain GET with coap-client has the shape too; POST is not allowed.
        r = h.coap(s.port, "get", "updates/changes")
        self.assertEqual(r.code, "2.05", r)
        self.assertIn("updates", r.json())
        self.assertEqual(h.coap(s.port, "post", "updates/changes", {}).code, "4.05")

    def test_hundred_observers_get_the_latest_health(self):
        node = self.register_node("observed-node")
        path = "nodes/%s/health" % node
        observers = []
        self.addCleanup(lambda: [o.close() for o in observers])
        for _ in range(100):
            observers.append(Observer(h.HOST, self.server.port, path).start())
        try:
            wait_until(observers, lambda: all(o.notes or o.refused for o in observers), 20,
                       "the 100 registrations to be answered")
        except AssertionError as e:
            self.fail("%s; unanswered: %d" % (e, sum(1 for o in observers if not o.notes)))
        for o in observers:
            self.assertRegistered(o)
            self.assertEqual(o.bodies()[0]["node_id"], node, o.describe())

        for cpu in (10, 20, 30, 40, 50):
            r = self.server.coap("put", "health", {
                "node_id": node, "overall_healthy": True, "cpu_percent": cpu,
                "memory_percent": 40.0, "disk_percent": 30.0})
            self.assertEqual(r.code, "2.04", "%r%s" % (r, h._trace(r)))

        def latest(o):
            b = o.last_body()
            return b is not None and b.get("cpu_percent") == 50

        try:
            wait_until(observers, lambda: all(latest(o) for o in observers), 20,
                       "every observer's last notification to show cpu_percent 50")
        except AssertionError as e:
            behind = [o for o in observers if not latest(o)]
            self.fail("%s: %d of 100 behind; e.g. %s" % (e, len(behind), behind[0].describe()))
        for o in observers:
            self.assertObserveIncreasing(o)
            cpus = [b.get("cpu_percent") for b in o.bodies()[1:]]
            self.assertEqual(cpus, sorted(cpus), "older report after a newer one: %r" % cpus)
            last = o.last_body()
            self.assertEqual(last["node_id"], node, last)
            self.assertIsNotNone(last.get("received_at"), last)

    def test_deleting_a_job_ends_its_observation_with_404(self):
        job = self.create_job("observe-delete")
        path = "updates/%s/status" % job
        o = observe(h.HOST, self.server.port, path)
        self.addCleanup(o.close)
        self.assertRegistered(o)
        self.assertEqual(o.bodies()[0]["status"], "created", o.describe())

        r = self.server.coap("post", "updates", {"action": "delete", "job_id": job})
        self.assertEqual(r.code, "2.02", "%r%s" % (r, h._trace(r)))
        try:
            wait_until([o], lambda: any(m.code_text == "4.04" for m in o.notes), 10,
                       "a 4.04 notification of %s" % o.where)
        except AssertionError as e:
            self.fail("%s\n%s" % (e, o.describe()))
        r = self.server.raw("get", path)
        self.assertEqual(r.code, "4.04", r)
        pump([o], 0)
        codes = [m.code_text for m in o.notes]
        self.assertEqual(codes.count("4.04"), 1, o.describe())
        self.assertEqual(codes[-1], "4.04", "notifications after the 4.04\n" + o.describe())

    # A representation cached by a plain GET and changed while nobody
    # observed it: a new observer may get that copy first, and the current
    # state must follow at once.
    def test_new_observer_gets_the_current_state_after_an_unobserved_change(self):
        job = self.create_job("observe-stale")
        path = "updates/%s/status" % job
        r = self.server.raw("get", path)  # a plain GET: the server caches "created"
        self.assertEqual(r.code, "2.05", r)
        self.assertEqual(r.json()["status"], "created", r)
        r = self.server.coap("post", "updates", {"action": "cancel", "job_id": job})
        self.assertEqual(r.code, "2.04", "%r%s" % (r, h._trace(r)))
        r = self.server.coap("post", "updates", {"action": "status", "job_id": job})
        self.assertEqual(r.json()["status"], "cancelled", r)
        o = observe(h.HOST, self.server.port, path)
        self.addCleanup(o.close)
        self.assertRegistered(o)

        def current():
            b = o.last_body()
            return b is not None and b.get("status") == "cancelled"
        try:
            wait_until([o], current, 5, "the observer to see the job cancelled")
        except AssertionError as e:
            self.fail("%s\n%s" % (e, o.describe()))

    def test_well_known_core_does_not_grow_with_the_fleet(self):
        """/nodes/<id>/health and /updates/<id>/status are served by one
        handler, not a libcoap resource each (a million nodes would be a
        million resources, which libcoap walks on every I/O turn after a
        change): discovery names the collections, which list their members,
        and stays the same size however many nodes and jobs there are."""
        before = self.server.coap("get", ".well-known/core")
        self.assertEqual(before.code, "2.05", before)
        nodes = [self.register_node("wk-node-%d" % i) for i in range(1, 21)]
        job = self.create_job("observe-discovery")
        after = self.server.coap("get", ".well-known/core")
        self.assertEqual(after.code, "2.05", after)
        self.assertEqual(after.body, before.body)
        links = dict(parse_links(after.body))
        for path in ("/nodes", "/updates", "/health"):
            self.assertIs(links[path].get("obs"), True, (path, after.body))
        for rt in ("coapfleet.node.health", "coapfleet.job.status"):
            r = self.server.coap("get", ".well-known/core?rt=" + rt)
            self.assertIn(r.code, ("2.05", "4.04"), r)
            self.assertEqual(parse_links(r.body) if r.code == "2.05" else [], [], r.body)
        # ... and each of them is still there, observable, and 4.05 to other methods.
        for path in ["nodes/%s/health" % n for n in nodes[:3]] + ["updates/%s/status" % job]:
            o = observe(h.HOST, self.server.port, path)
            self.addCleanup(o.close)
            self.assertRegistered(o)
            r = self.server.coap("post", path, {"x": 1})
            self.assertEqual(r.code, "4.05", r)
            self.assertEqual(r.json()["allowed"], "GET", r)
            self.assertIn("POST not allowed on /" + path, r.json()["error"], r)
        r = self.server.coap("get", "nodes/never-registered/health")
        self.assertEqual(r.code, "4.04", r)
        self.assertEqual(r.json()["node_id"], "never-registered", r)
        r = self.server.coap("get", "updates/no-such-job/status")
        self.assertEqual(r.code, "4.04", r)


if __name__ == "__main__":
    ah.main()
