#!/usr/bin/env python3
"""Ports and the process name: a server or an agent refuses, at start, an
address and port that another socket already has (libcoap binds with
SO_REUSEADDR, and two such UDP sockets share a port on Linux: the second
process would take the first one's datagrams), unless --reuse-port says
sharing is meant; a server restarted by POST /system binds its own port
again and still shows as coapfleet-server in ps.

Free ports on 127.0.0.1 only: no lock."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

import agent_harness as ah  # noqa: E402

AGENT_BIN = ah.AGENT_BIN  # found or an error: this test never skips


def wait_exit(proc, timeout=20):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


class PortsTest(h.ServerTestCase):
    fresh_per_test = True

    def refused(self, server, port):
        """`server` (started without waiting) exits non-zero naming `port`."""
        rc = wait_exit(server.proc)
        self.assertIsNotNone(rc, "a second server on port %d kept running\n%s"
                             % (port, server.log_tail()))
        self.assertNotEqual(rc, 0, server.log_tail())
        log = server.log_text()
        self.assertIn("%s:%d" % (h.HOST, port), log)
        self.assertIn("in use", log)
        self.assertIn("--reuse-port", log)
        # Its exit code is the point here, not a crash for the cleanup to report.
        type(self).servers.remove(server)

    def test_second_server_on_the_same_port_exits(self):
        first = self.server
        second = self.new_server(start=False, port=first.port)
        second.start(wait=False)
        self.refused(second, first.port)
        self.assertTrue(first.alive())
        self.assertTrue(first.answers_test())

    def test_second_server_on_the_same_dtls_port_exits(self):
        first = self.server
        second = self.new_server(["--dtls-port", str(first.dtls_port)], start=False)
        second.start(wait=False)
        self.refused(second, first.dtls_port)
        self.assertTrue(first.alive())

    def test_reuse_port_lets_a_second_server_start(self):
        first = self.server
        second = self.new_server(["--reuse-port", "--dtls-port", str(first.dtls_port)],
                                 start=False, port=first.port)
        second.start(wait=False)
        # Which of the two answers a datagram is the kernel's choice: wait
        # until the second says it listens, then it must keep running.
        h.deadline_poll(lambda: "listening on" in second.log_text() or not second.alive(), 30,
                        what="the second server listening")
        h.stays_true(second.alive, 1.0, what="the second server running")
        self.assertIn("listening on", second.log_text())
        self.assertEqual(second.stop(), 0)
        self.assertTrue(first.alive())

    def test_help_names_reuse_port(self):
        out = subprocess.run([h.SERVER_BIN, "--help"], capture_output=True, text=True).stdout
        self.assertIn("--reuse-port", out)

    def test_agent_on_the_servers_port_exits(self):
        out = subprocess.run([AGENT_BIN, "--help"], capture_output=True, text=True).stdout
        self.assertIn("--reuse-port", out)
        work = os.path.join(self.tmp, "agent")
        os.makedirs(os.path.join(work, "state"))
        os.makedirs(os.path.join(work, "root"))
        log_path = os.path.join(work, "agent.log")
        with open(log_path, "wb") as log:
            agent = subprocess.Popen(
                [AGENT_BIN, "--bind", h.HOST, "--port", str(self.server.port),
                 "--node-id", "self-talker", "--server", "coap://%s:%d" % (h.HOST, self.server.port),
                 "--state-dir", os.path.join(work, "state"), "--root", os.path.join(work, "root"),
                 "--interval", "1"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work,
                start_new_session=True)
        rc = wait_exit(agent)
        if rc is None:
            agent.kill()
            agent.wait(10)
        with open(log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        self.assertIsNotNone(rc, "the agent kept running on the server's port\n" + text)
        self.assertNotEqual(rc, 0, text)
        self.assertIn("%s:%d" % (h.HOST, self.server.port), text)
        self.assertIn("in use", text)
        # The server was never disturbed, and nothing registered.
        self.assertTrue(self.server.answers_test())
        self.assertEqual(self.server.coap("get", "nodes").json()["nodes"], [])

    def test_restart_binds_again_and_keeps_the_process_name(self):
        server = self.server
        pid = server.pid

        def comm():
            return subprocess.run(["ps", "-o", "comm=", "-p", str(pid)], capture_output=True,
                                  text=True).stdout.strip()

        self.assertEqual(comm(), "coapfleet-serve")  # the kernel keeps 15 characters
        r = server.coap("post", "system", {"action": "restart"})
        self.assertEqual(r.code, "2.04", r)
        h.deadline_poll(lambda: server.log_text().count("listening on") == 2
                        or not server.alive(), 30, what="the restarted server listening")
        server.wait_ready(30)
        self.assertEqual(server.pid, pid)
        self.assertNotIn("in use", server.log_text())
        self.assertEqual(comm(), "coapfleet-serve")
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
        self.assertEqual(argv[0], h.SERVER_BIN.encode())
        # And once more: the second restart's sockets are its own too.
        r = server.coap("post", "system", {"action": "restart"})
        self.assertEqual(r.code, "2.04", r)
        h.deadline_poll(lambda: server.log_text().count("listening on") == 3
                        or not server.alive(), 30, what="the second restart listening")
        server.wait_ready(30)
        self.assertEqual(comm(), "coapfleet-serve")


if __name__ == "__main__":
    h.main()
