#!/usr/bin/env python3
"""Interoperability: the server with the CoAP clients its users run — libcoap's
coap-client, aiocoap (../shared/peers/aiocoap) and node-coap (vendored in
tests/peers/node-coap, run by Debian's nodejs). Each registers a node, reports
its health, reads GET /nodes of 5,000 nodes block-wise, observes /nodes
(block-wise notifications) and /nodes/<id>/health, uploads an artifact of
300 KB block-wise and downloads it again; aiocoap prints no warning."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
AIOCOAP = os.path.normpath(os.path.join(ROOT, "..", "shared", "peers", "aiocoap"))
NODE_MODULES = os.path.join(ROOT, "tests", "peers", "node-coap", "node_modules")
NODE_CLIENT = os.path.join(HERE, "peers", "nodecoap_client.js")
FLEET = 5000


def aiocoap(args, timeout=60):
    env = dict(os.environ, PYTHONPATH=AIOCOAP)
    p = subprocess.run([sys.executable, os.path.join(AIOCOAP, "aiocoap-client")] + args,
                       capture_output=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def aiocoap_observe(url, seconds):
    """aiocoap-client --observe for `seconds`: the payloads of the first answer
    (stdout) and of the notifications (stderr, each after a '---' on stdout)."""
    env = dict(os.environ, PYTHONPATH=AIOCOAP)
    p = subprocess.Popen([sys.executable, os.path.join(AIOCOAP, "aiocoap-client"), "--observe",
                          url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        p.terminate()
        out, err = p.communicate(timeout=10)
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def json_documents(text):
    """The JSON documents in `text`, one after another (other lines skipped)."""
    dec, docs, i = json.JSONDecoder(), [], 0
    while True:
        start = text.find("{", i)
        if start < 0:
            return docs
        try:
            doc, end = dec.raw_decode(text, start)
        except ValueError:
            i = start + 1
            continue
        docs.append(doc)
        i = end


def nodecoap(args, timeout=60):
    env = dict(os.environ, NODE_PATH=NODE_MODULES)
    p = subprocess.run(["node", NODE_CLIENT] + args, capture_output=True, timeout=timeout,
                       env=env, stdin=subprocess.DEVNULL)
    lines = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
    return p.returncode, lines, p.stderr.decode("utf-8", "replace")


class InteropTest(h.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        bodies = [{"node_id": "fleet-%05d" % i, "hostname": "f%d" % i,
                   "ip_address": "127.2.%d.%d" % (i // 250, i % 250 + 1)} for i in range(FLEET)]
        acked, failures = h.register_stream(cls.server.port, bodies, window=32, timeout=120)
        assert len(acked) == FLEET, failures[:5]
        cls.blob_dir = tempfile.mkdtemp(prefix="interop-")
        cls.blob = os.path.join(cls.blob_dir, "blob.bin")
        with open(cls.blob, "wb") as f:
            f.write(os.urandom(300 * 1000))
        with open(cls.blob, "rb") as f:
            cls.blob_sha = hashlib.sha256(f.read()).hexdigest()

    @classmethod
    def start_processes(cls):
        super().start_processes()
        # A real agent on a free port of its own address (no fixed port:
        # this suite runs beside the others).
        cls.agent = ah.Worker(cls.tmp, 1, cls.server.port, [],
                              node_id="interop-agent", ip="127.4.0.1")
        cls.agent.port = h.free_port("127.4.0.1")
        cls.agents.append(cls.agent)
        cls.agent.start()

        def registered():
            nodes = h.raw_request(cls.server.port, "get", "nodes",
                                  query=("node_id=interop-agent",)).json()["nodes"]
            return nodes or None
        h.deadline_poll(registered, 30, 0.2, what="the agent's registration")

    def big_job(self, script="true"):
        """A script job over the agent and 39 nodes of the fleet (which nobody
        answers for), installed: its status is well above 1 KiB, and changes
        while the agent runs `script`."""
        r = self.server.coap("post", "updates", {
            "name": "wide", "version": "1", "package_type": "script", "script": script,
            "target_nodes": ["interop-agent"] + ["fleet-%05d" % i for i in range(39)]})
        self.assertEqual(r.code, "2.01", r)
        job = r.json()["job_id"]
        self.assertEqual(self.server.coap("post", "updates",
                                          {"action": "install", "job_id": job}).code, "2.04")
        return job

    def node_body(self, client):
        return {"node_id": "interop-" + client, "hostname": client,
                "ip_address": "127.3.0.%d" % (1 + ["libcoap", "aiocoap", "node"].index(client))}

    def health_body(self, client):
        return {"node_id": "interop-" + client, "overall_healthy": True, "cpu_percent": 1.5,
                "memory_percent": 2.5, "services_status": {"ssh": True}, "error_messages": []}

    def check_nodes_listing(self, raw):
        nodes = json.loads(raw)["nodes"]
        self.assertGreaterEqual(len(nodes), FLEET)

    def check_artifact(self, name):
        arts = {a["name"]: a for a in self.server.coap("get", "artifacts").json()["artifacts"]}
        self.assertEqual(arts[name]["sha256"], self.blob_sha)
        self.assertEqual(arts[name]["size"], 300 * 1000)

    def observe_nodes_while_registering(self, start_observer, client):
        """Starts the observer, registers one more node once it runs, and
        returns what the observer printed."""
        result = {}
        t = threading.Thread(target=lambda: result.update(out=start_observer()))
        t.start()
        time.sleep(1.5)
        extra = {"node_id": "late-" + client, "hostname": "l", "ip_address": "127.3.1.1"}
        self.assertEqual(self.server.coap("post", "nodes", extra).code, "2.01")
        t.join(90)
        return result.get("out")

    # -- aiocoap -------------------------------------------------------------------------
    def test_aiocoap(self):
        url = self.server.url
        rc, out, err = aiocoap(["-m", "POST", "--content-format", "application/json",
                                "--payload", json.dumps(self.node_body("aiocoap")), url("nodes")])
        self.assertEqual(rc, 0, err)
        self.assertIn(b"registered", out)
        rc, out, err = aiocoap(["-m", "PUT", "--content-format", "application/json",
                                "--payload", json.dumps(self.health_body("aiocoap")), url("health")])
        self.assertEqual(rc, 0, err)
        rc, out, err = aiocoap([url("nodes")], timeout=120)
        self.assertEqual(rc, 0, err)
        self.check_nodes_listing(out)
        self.assertNotIn("WARNING", err.upper())
        rc, out, err = aiocoap(["-m", "PUT", "--payload", "@" + self.blob, url("artifacts/aio.bin")],
                               timeout=120)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("ignored", err)  # "Block1 option completely ignored by server"
        self.assertNotIn("WARNING", err.upper())
        self.check_artifact("aio.bin")
        rc, out, err = aiocoap([url("artifacts/aio.bin")], timeout=120)
        self.assertEqual(rc, 0, err)
        self.assertEqual(hashlib.sha256(out).hexdigest(), self.blob_sha)
        rc, out, err = aiocoap([url("nodes/interop-aiocoap/health")])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["cpu_percent"], 1.5)

    def test_aiocoap_observes(self):
        """A job's status above 1 KiB (block-wise notifications: the first, and
        those while the agent runs it), /health and the agent's /health."""
        job = self.big_job("sleep 3")
        result = {}
        t = threading.Thread(target=lambda: result.update(
            out=aiocoap_observe(self.server.url("updates/%s/status" % job), 10)))
        t.start()
        t.join(30)
        out, err = result["out"]
        first, later = json_documents(out), json_documents(err)
        self.assertEqual(len(first), 1, out[:300] + err[-300:])
        self.assertGreater(len(json.dumps(first[0])), 1024)
        self.assertEqual(len(first[0]["node_statuses"]), 40)
        self.assertTrue(later, err[-500:])
        self.assertEqual(later[-1]["node_statuses"]["interop-agent"], "succeeded", later[-1])
        self.assertNotIn("WARNING", err.upper())
        out, err = aiocoap_observe(self.server.url("health"), 3)
        self.assertIn("total_nodes", json_documents(out)[0])
        out, err = aiocoap_observe(self.agent.url("health"), 4.5)
        self.assertTrue(json_documents(out), out + err)
        self.assertGreaterEqual(len(json_documents(err)), 1, "no notification from the agent")
        self.assertNotIn("WARNING", err.upper())

    # -- node-coap -----------------------------------------------------------------------
    def test_nodecoap(self):
        url = self.server.url
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(dict(self.node_body("node"), system_info={"note": "n" * 1500}), f)
        rc, lines, err = nodecoap(["post", url("nodes"), "--payload-file", f.name, "--format", "json"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(lines[0]["code"], "2.01", lines)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(self.health_body("node"), f)
        rc, lines, err = nodecoap(["put", url("health"), "--payload-file", f.name, "--format", "json"])
        self.assertEqual(lines[0]["code"], "2.04", lines)
        rc, lines, err = nodecoap(["get", url("nodes")], timeout=120)
        self.assertEqual(rc, 0, (lines, err))
        self.assertEqual(lines[0]["code"], "2.05")
        self.check_nodes_listing(bytes.fromhex(lines[0]["payload_hex"]))
        rc, lines, err = nodecoap(["put", url("artifacts/node.bin"), "--payload-file", self.blob,
                                   "--format", "octets"], timeout=120)
        self.assertEqual(rc, 0, (lines, err))
        self.assertEqual(lines[0]["code"], "2.04", lines)
        self.check_artifact("node.bin")
        rc, lines, err = nodecoap(["get", url("artifacts/node.bin")], timeout=120)
        self.assertEqual(hashlib.sha256(bytes.fromhex(lines[0]["payload_hex"])).hexdigest(),
                         self.blob_sha)
        # Observe a block-wise resource: node-coap asks for the later blocks
        # with Observe still set (RFC 7959 §2.6) and takes a notification's
        # Observe number from its last block; the second notification (after
        # a registration) lists the new node.
        out = self.observe_nodes_while_registering(
            lambda: nodecoap(["get", url("nodes"), "--observe", "100", "--until", "late-node",
                              "--timeout", "60"], timeout=120), "node")
        rc, lines, err = out
        self.assertEqual(rc, 0, (lines, err))
        self.assertGreaterEqual(len(lines), 2, err)
        self.assertEqual({l.get("code") for l in lines}, {"2.05"}, err)
        self.check_nodes_listing(bytes.fromhex(lines[0]["payload_hex"]))
        later = json.loads(bytes.fromhex(lines[-1]["payload_hex"]))["nodes"]
        self.assertIn("late-node", {n["node_id"] for n in later})
        rc, lines, err = nodecoap(["get", url("nodes/interop-node/health"), "--observe", "1"])
        self.assertEqual(lines[0]["code"], "2.05", lines)
        self.assertEqual(json.loads(bytes.fromhex(lines[0]["payload_hex"]))["cpu_percent"], 1.5)
        job = self.big_job()
        rc, lines, err = nodecoap(["get", url("updates/%s/status" % job), "--observe", "1"])
        status = json.loads(bytes.fromhex(lines[0]["payload_hex"]))
        self.assertEqual(len(status["node_statuses"]), 40)
        rc, lines, err = nodecoap(["get", url("health"), "--observe", "1"])
        self.assertIn("total_nodes", json.loads(bytes.fromhex(lines[0]["payload_hex"])))
        # The agent: GET and two notifications of its /health (one a second).
        rc, lines, err = nodecoap(["get", self.agent.url("health"), "--observe", "2"], timeout=30)
        self.assertEqual([l.get("code") for l in lines], ["2.05", "2.05"], (lines, err))

    # -- libcoap's coap-client -----------------------------------------------------------
    def test_libcoap(self):
        r = self.server.coap("post", "nodes", self.node_body("libcoap"))
        self.assertEqual(r.code, "2.01", r)
        self.assertEqual(self.server.coap("put", "health", self.health_body("libcoap")).code, "2.04")
        r = self.server.coap("get", "nodes", wait=120)
        self.assertEqual(r.code, "2.05")
        self.check_nodes_listing(r.body)
        code, out, err = ah.coap_client_file(self.server.url("artifacts/lc.bin"), "put",
                                             infile=self.blob)
        self.assertEqual(code, "2.04", out + err)
        self.check_artifact("lc.bin")
        down = os.path.join(self.blob_dir, "down.bin")
        code, out, err = ah.coap_client_file(self.server.url("artifacts/lc.bin"), "get",
                                             outfile=down)
        self.assertEqual(code, "2.05", out + err)
        with open(down, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), self.blob_sha)


if __name__ == "__main__":
    h.main()
