#!/usr/bin/env python3
"""The seed's workflows with three real coapfleet-agent processes (worker-01..03
on 127.1.0.1..3, port 5683): the agents register themselves (Node
Registration Workflow), the Complete Update Workflow's pip job runs on every
node (with a fake pip that records its argv), the agents' own /health and
/system answer; and a real pip job installs a wheel built here into a
per-agent --target directory. An agent told 5.03 with Max-Age waits that
long before its next health report."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402

SEED_PACKAGES = ["aiocoap==0.4.7", "aiohttp==3.9.1"]
# The seed's "3. Create update" body, as the workflow script sends it.
SEED_CREATE = """{
  "name": "python-packages-update",
  "version": "2025.09.16",
  "package_type": "pip",
  "target_nodes": ["all"],
  "packages": ["aiocoap==0.4.7", "aiohttp==3.9.1"]
}"""
NODES = ["worker-01", "worker-02", "worker-03"]


class SeedWorkflowWithAgents(ah.AgentTestCase):
    @classmethod
    def worker_args_for(cls, index):
        fake = os.path.join(cls.tmp, "fake-pip")
        if not os.path.exists(fake):
            # Records its argv (one argument a line) in its working directory,
            # which is the agent's state directory, and succeeds.
            ah.write_script(fake, "#!/bin/sh\nprintf '%s\\n' \"$@\" > pip-argv.txt\n"
                                  "echo \"fake pip: installed $*\"\nexit 0\n")
        return ["--pip", fake]

    def test_1_node_registration_workflow(self):
        """The agents register themselves: GET /nodes lists worker-01..03 online
        with their own address, port and system_info, and their health."""
        r = self.server.coap("get", "nodes")
        self.assertEqual(r.code, "2.05", r)
        self.assertEqual(r.content_format, 50)
        nodes = {n["node_id"]: n for n in r.json()["nodes"]}
        self.assertEqual(sorted(nodes), NODES, r.body)
        for w in self.workers_list:
            n = nodes[w.node_id]
            self.assertEqual(n["status"], "online", n)
            self.assertEqual(n["ip_address"], w.ip, n)
            self.assertEqual(n["port"], 5683, n)
            self.assertTrue(n.get("hostname"), n)
            info = n.get("system_info")
            self.assertIsInstance(info, dict, n)
            for key in ("os", "arch", "kernel"):
                self.assertIsInstance(info.get(key), str, n)
                self.assertTrue(info[key], n)
            self.assertEqual(info.get("agent_version"), w.system()["agent_version"], n)
            self.assertTrue(n.get("last_seen"), n)
            self.assertTrue(n.get("registered_at"), n)
        # Step 3 of the workflow, "report health from new node": the agents do
        # it every --interval; the server has a health sample of each.
        def all_reported():
            r = self.server.coap("get", "nodes")
            ns = r.json()["nodes"] if r.code == "2.05" else []
            ok = len(ns) == 3 and all(isinstance(n.get("health"), dict)
                                      and isinstance(n["health"].get("cpu_percent"), (int, float))
                                      for n in ns)
            return ns if ok else None
        h.deadline_poll(all_reported, 15, 0.3, what="a health sample of every node")
        # The filters of GET /nodes see them as well.
        r = self.server.coap("get", "nodes?node_id=worker-02")
        self.assertEqual([n["node_id"] for n in r.json()["nodes"]], ["worker-02"], r.body)
        r = self.server.coap("get", "nodes?status=online")
        self.assertEqual(sorted(n["node_id"] for n in r.json()["nodes"]), NODES, r.body)
        r = self.server.coap("get", "health")
        self.assertEqual(r.code, "2.05", r)
        fleet = r.json()
        self.assertEqual(fleet["total_nodes"], 3, fleet)
        self.assertEqual(fleet["online_nodes"], 3, fleet)
        self.assertEqual(fleet["offline_nodes"], 0, fleet)

    def test_2_complete_update_workflow(self):
        """The seed's Complete Update Workflow against real agents."""
        # 1. Check system health, 2. list current nodes.
        r = self.server.coap("get", "health")
        self.assertEqual(r.code, "2.05", r)
        self.assertIn(r.json()["status"], ("healthy", "degraded", "unhealthy"), r.body)
        r = self.server.coap("get", "nodes")
        self.assertEqual(r.code, "2.05", r)
        # 3. Create update (the seed's body verbatim, piped with -f -).
        r = self.server.coap("post", "updates", SEED_CREATE)
        self.assertEqual(r.code, "2.01", r)
        created = r.json()
        self.assertEqual(created["status"], "created")
        self.assertEqual(created["message"], "Update request created successfully")
        job = created["job_id"]
        # 5. install, then status until done.
        r = self.server.coap("post", "updates", {"action": "install", "job_id": job})
        self.assertEqual(r.code, "2.04", r)
        self.assertEqual(r.json()["success"], True)
        self.assertEqual(r.json()["message"], "Update job %s triggered successfully" % job)
        self.assertEqual(r.json()["job_id"], job)
        body = self.wait_job_final(job, timeout=30)
        self.assertJobSucceeded(body, NODES)
        self.assertIsNone(body["error_message"], body)
        self.assertEqual(body["progress"], 100, body)
        self.assertEqual(body["counts"]["succeeded"], 3, body)
        # Each agent ran `pip install ... <the seed's packages>` exactly as
        # configured (argv recorded by the fake pip in its state directory).
        for w in self.workers_list:
            argv = w.read_state_file("pip-argv.txt").splitlines()
            self.assertTrue(argv, "%s never ran pip" % w.node_id)
            self.assertEqual(argv[0], "install", argv)
            self.assertEqual(argv[-2:], SEED_PACKAGES, argv)
        # GET /updates lists the job as completed.
        r = self.server.coap("get", "updates")
        self.assertEqual(r.code, "2.05", r)
        jobs = {j["job_id"]: j for j in r.json()["updates"]}
        self.assertEqual(jobs[job]["status"], "completed", jobs[job])
        # The agents are idle again.
        for w in self.workers_list:
            s = w.system()
            self.assertIsNone(s["current_job"], s)
            self.assertEqual(s["queued_jobs"], 0, s)

    def test_3_agent_health_and_system(self):
        """GET /health and GET /system on each agent (coap://127.1.0.N:5683)."""
        for w in self.workers_list:
            r = h.deadline_poll(lambda: (lambda r: r if r.code == "2.05" else None)(
                w.coap("get", "health")), 15, 0.3, what="GET /health of " + w.node_id)
            self.assertEqual(r.content_format, 50, r)
            health = r.json()
            self.assertEqual(health["node_id"], w.node_id, health)
            for key in ("cpu_percent", "memory_percent", "disk_percent"):
                self.assertIsInstance(health[key], (int, float), health)
                self.assertTrue(0 <= health[key] <= 100, health)
            self.assertIsInstance(health["overall_healthy"], bool, health)
            self.assertIsInstance(health["services_status"], dict, health)
            self.assertIsInstance(health["error_messages"], list, health)
            self.assertTrue(health.get("timestamp"), health)

            r = w.coap("get", "system")
            self.assertEqual(r.code, "2.05", r)
            self.assertEqual(r.content_format, 50, r)
            s = r.json()
            self.assertEqual(s["node_id"], w.node_id, s)
            self.assertEqual(s["server"], "coap://127.0.0.1:%d" % self.server.port, s)
            self.assertIs(s["registered"], True, s)
            for key in ("hostname", "os", "arch", "kernel", "agent_version"):
                self.assertIsInstance(s[key], str, s)
                self.assertTrue(s[key], s)
            self.assertGreaterEqual(s["cpus"], 1, s)
            self.assertGreater(s["memory_total_bytes"], 0, s)
            self.assertGreater(s["uptime_seconds"], 0, s)
            # The server's GET /system is the seed's.
        r = self.server.coap("get", "system")
        self.assertEqual(r.code, "2.05", r)
        s = r.json()
        self.assertEqual(s["status"], "running", s)
        for key in ("health", "nodes", "updates", "system"):
            self.assertEqual(s["endpoints"][key], "/" + key, s)
        self.assertEqual(sorted(s["available_actions"]), ["restart", "shutdown", "status"], s)

    def test_4_agent_rejects_what_it_does_not_serve(self):
        """An agent answers unknown paths 4.04, wrong methods 4.05 and a
        malformed notification from its server 4.00, with JSON errors."""
        w = self.workers_list[0]
        r = w.coap("get", "nope")
        self.assertErrorJson(r, "4.04")
        r = w.coap("put", "health", {"node_id": w.node_id})
        body = self.assertErrorJson(r, "4.05")
        self.assertEqual(body.get("allowed"), "GET", body)
        r = self.notify_as_server(w, "{not json")
        self.assertErrorJson(r, "4.00")
        r = self.notify_as_server(w, {"node_id": w.node_id})
        self.assertErrorJson(r, "4.00", "job_id")
        # A job the server does not have (the body's spec is never read).
        r = self.notify_as_server(w, {"job_id": "x", "node_id": w.node_id,
                                      "name": "n", "version": "1",
                                      "package_type": "script"})
        self.assertErrorJson(r, "4.04", "x")
        # A notification for another node is refused (and not run).
        r = self.notify_as_server(w, {
            "job_id": "not-mine-1", "node_id": "worker-99", "name": "n", "version": "1",
            "package_type": "script", "script": "echo ran >> not-mine.txt"})
        self.assertErrorJson(r, "4.00", "node_id")
        self.assertEqual(w.read_state_file("not-mine.txt"), "")


class RealPipJob(ah.AgentTestCase):
    """pip with --no-index --target=<tmp>/site-N installs a wheel built here."""

    @classmethod
    def setUpClass(cls):
        ok, text = ah.pip_available()
        if not ok:
            raise AssertionError("python3 -m pip --version failed (deploy/install-deps.sh "
                                 "installs python3-pip): %s" % text)
        super().setUpClass()

    @classmethod
    def worker_args_for(cls, index):
        wrapper = os.path.join(cls.tmp, "pip-wrapper")
        if not os.path.exists(wrapper):
            ah.write_script(wrapper, "#!/bin/sh\nexec '%s' -m pip \"$@\"\n" % sys.executable)
        site = os.path.join(cls.tmp, "site-%d" % index)
        return ["--pip", wrapper, "--pip-arg=--no-index", "--pip-arg=--target=" + site,
                "--pip-arg=--no-cache-dir"]

    def test_pip_installs_a_wheel_on_every_node(self):
        wheel = ah.make_wheel(self.tmp, "mypkg", "1.0", marker="coapfleet agent test")
        job = self.create_job({"name": "mypkg", "version": "1.0", "package_type": "pip",
                               "target_nodes": ["all"], "packages": [wheel],
                               "timeout_seconds": 120})
        self.install(job)
        body = self.wait_job_final(job, timeout=120)
        self.assertJobSucceeded(body, NODES)
        for i, w in enumerate(self.workers_list, 1):
            site = os.path.join(self.tmp, "site-%d" % i)
            init = os.path.join(site, "mypkg", "__init__.py")
            self.assertTrue(os.path.isfile(init), "%s: %s missing; site holds %r"
                            % (w.node_id, init, os.listdir(site) if os.path.isdir(site) else None))
            with open(init) as f:
                self.assertIn("coapfleet agent test", f.read())
            self.assertTrue(os.path.isdir(os.path.join(site, "mypkg-1.0.dist-info")),
                            os.listdir(site))
            # Importable from there.
            out = subprocess.run(
                [sys.executable, "-c", "import sys; sys.path.insert(0, %r); import mypkg; "
                                       "print(mypkg.VERSION)" % site],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(out.stdout.strip(), "1.0", out)

    def test_pip_failure_is_reported(self):
        """A package that does not exist offline: failed with pip's words."""
        job = self.create_job({"name": "missing", "version": "1", "package_type": "pip",
                               "target_nodes": ["worker-02"],
                               "packages": ["coapfleet-no-such-package==9.9"],
                               "timeout_seconds": 120})
        self.install(job)
        body = self.wait_job_final(job, timeout=120)
        self.assertEqual(body["node_statuses"], {"worker-02": "failed"}, json.dumps(body))
        self.assertEqual(body["status"], "failed", body)
        entry = self.node_entry(body, "worker-02")
        self.assertEqual(entry["result"], 8, entry)
        self.assertIn("pip install exited with code", entry["error_message"], entry)
        self.assertIn("coapfleet-no-such-package", entry["error_message"], entry)


class BusyServer:
    """A stand-in main server on a free 127.0.0.1 port: registrations get 2.01,
    the first health report 5.03 with Max-Age `max_age`, later ones 2.04. It
    records when each health report arrived and what it answered."""

    def __init__(self, max_age):
        self.max_age = max_age
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((h.HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.health = []  # (monotonic time, answer code text, body)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            msg = h.decode_message(data)
            if msg is None or msg.type != h.CON:
                continue
            path = "/".join(v.decode() for n, v in msg.options if n == h.OPT_URI_PATH)
            options, payload = [], b""
            if path == "nodes":
                code = 2 << 5 | 1
            elif path == "health":
                if not any(c == "5.03" for _, c, _ in self.health):
                    code = 5 << 5 | 3
                    options = [(h.OPT_CONTENT_FORMAT, h.encode_uint(50)),
                               (h.OPT_MAX_AGE, h.encode_uint(self.max_age))]
                    payload = b'{"error":"server overloaded"}'
                else:
                    code = 2 << 5 | 4
                self.health.append((time.monotonic(), h.code_text(code),
                                    json.loads(msg.payload.decode())))
            else:
                code = 4 << 5 | 4
            self.sock.sendto(h.encode_message(h.ACK, code, msg.mid, msg.token, options, payload),
                             peer)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


class AgentHonoursMaxAge(h.ServerTestCase):
    """A health report answered 5.03 with Max-Age: the agent sends nothing
    for that long, then the refused sample (or a newer one) again."""

    start_server = False

    def agent(self, index, port, interval):
        w = ah.Worker(self.tmp, index, port)
        command = w.command()
        command[command.index("--interval") + 1] = str(interval)
        w.command = lambda: command
        self.agents.append(w)
        return w.start()

    def test_waits_max_age_after_503(self):
        # Max-Age longer than the interval: the next report waits for it.
        busy = BusyServer(max_age=3)
        self.addCleanup(busy.close)
        w = self.agent(9, busy.port, 1)
        h.deadline_poll(lambda: len(busy.health) >= 3, 30, interval=0.2,
                        what="three health reports at the busy server")
        (t_refused, first, _), (t_next, second, _) = busy.health[0], busy.health[1]
        self.assertEqual((first, second), ("5.03", "2.04"), busy.health)
        self.assertGreaterEqual(t_next - t_refused, 3.0, busy.health)
        self.assertIn("server busy: next health report in 3 s", w.log_text())

    def test_resends_the_refused_sample(self):
        # Max-Age shorter than the interval (60 s): the refused sample is sent
        # again after Max-Age, not dropped until the next one.
        busy = BusyServer(max_age=1)
        self.addCleanup(busy.close)
        self.agent(8, busy.port, 60)
        h.deadline_poll(lambda: len(busy.health) >= 2, 30, interval=0.2,
                        what="the refused health report sent again")
        (t_refused, first, body1), (t_next, second, body2) = busy.health[0], busy.health[1]
        self.assertEqual((first, second), ("5.03", "2.04"), busy.health)
        self.assertGreaterEqual(t_next - t_refused, 1.0, busy.health)
        self.assertEqual(body1["timestamp"], body2["timestamp"], busy.health)


if __name__ == "__main__":
    ah.main()
