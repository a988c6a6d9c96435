#!/usr/bin/env python3
"""Stopping is real, with real agents and scripts that leave traces:

- a forced cancel stops a running script (its side effect never happens) and
  the node shows `cancelled` once its agent says so;
- a cancel without force drops a job queued behind another (it never runs)
  and lets the running one end: the node shows what really happened;
- an agent killed with SIGKILL mid-script leaves nothing running once it is
  back (the script's background work is killed, its side effect never
  happens), and SIGTERM ends an agent within seconds, script and all;
- retry runs failed nodes again (a second attempt on the agent) until the job
  completes.

Every script writes its pid and its children's, so that a test can tell
whether they still run (and ends them itself if they do: nothing leaks past
the test)."""
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402


def pid_alive(pid_text):
    try:
        pid = int(pid_text.strip())
    except ValueError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"  # a zombie has ended
    except (OSError, IndexError):
        return False


def kill_if_alive(pid_text):
    if pid_alive(pid_text):
        try:
            os.kill(int(pid_text.strip()), signal.SIGKILL)
        except OSError:
            pass


# A script whose side effect comes `delay` seconds after it starts, from a
# background child (so that killing the shell alone would not stop it).
def delayed_side_effect(delay, name="side-effect.txt"):
    return ("echo $$ > script.pid; (sleep %d; echo done > %s) & echo $! > child.pid; wait"
            % (delay, name))


class StoppingTest(ah.AgentTestCase):
    workers = 1
    fresh_per_test = True

    def setUp(self):
        super().setUp()
        self.w = self.workers_list[0]

    def tearDown(self):
        for name in ("script.pid", "child.pid"):
            kill_if_alive(self.w.read_state_file(name))
        super().tearDown()

    def script_job(self, script, **extra):
        body = {"name": "script", "version": "1", "package_type": "script",
                "target_nodes": [self.w.node_id], "script": script}
        body.update(extra)
        return self.create_job(body)

    def wait_node(self, job, states, timeout=20):
        def check():
            st = self.status(job)
            return st if st["node_statuses"].get(self.w.node_id) in states else None
        try:
            return h.deadline_poll(check, timeout, 0.1, what="node in %s" % (states,))
        except AssertionError:
            self.fail("node never in %s; last status %s" % (states, json.dumps(self.status(job))))

    def wait_script_running(self, job):
        self.wait_node(job, ("installing",))
        h.deadline_poll(lambda: pid_alive(self.w.read_state_file("child.pid")), 10, 0.05,
                        what="the script's child to run")

    def assertSideEffectNever(self, until, name="side-effect.txt"):
        """Checks until monotonic time `until` that the file never appears."""
        path = os.path.join(self.w.state_dir, name)
        h.stays_true(lambda: not os.path.exists(path), max(until - time.monotonic(), 0.5), 0.1,
                     what=name + " never written")

    def cancel(self, job, force=False):
        body = {"action": "cancel", "job_id": job}
        if force:
            body["force"] = True
        r = self.server.coap("post", "updates", body)
        self.assertEqual(r.code, "2.04", r)
        return r.json()

    def test_forced_cancel_stops_a_running_script(self):
        job = self.script_job(delayed_side_effect(4))
        self.install(job)
        started = time.monotonic()
        self.wait_script_running(job)
        self.cancel(job, force=True)
        st = self.wait_node(job, ("cancelled",))
        entry = self.node_entry(st, self.w.node_id)
        self.assertEqual(entry["result"], 10, entry)  # LwM2M: cancelled
        self.assertIn("stopped", entry["error_message"], entry)
        self.assertEqual(st["status"], "cancelled", st)
        h.deadline_poll(lambda: not pid_alive(self.w.read_state_file("child.pid")), 10, 0.1,
                        what="the script's background child to be gone")
        self.assertSideEffectNever(started + 6)
        # The agent is free for the next job.
        job2 = self.script_job("echo ok > second.txt")
        self.install(job2)
        self.assertJobSucceeded(self.wait_job_final(job2), [self.w.node_id])

    def test_cancel_drops_queued_work_and_lets_running_work_end(self):
        first = self.script_job("sleep 2; echo first > first.txt")
        queued = self.script_job("echo queued > queued.txt")
        self.install(first)
        self.wait_node(first, ("installing",))
        self.install(queued)
        h.deadline_poll(lambda: self.w.system()["queued_jobs"] == 1, 10, 0.1,
                        what="the second job queued on the agent")
        self.cancel(queued)
        st = self.wait_node(queued, ("cancelled",))
        self.assertIn("queued", self.node_entry(st, self.w.node_id)["error_message"])
        # A cancel without force lets the install that runs end; what it did
        # is what the node shows.
        self.cancel(first)
        body = self.wait_job_final(first, timeout=30)
        self.assertEqual(body["status"], "cancelled", body)
        self.assertEqual(body["node_statuses"], {self.w.node_id: "succeeded"}, body)
        self.assertEqual(self.w.read_state_file("first.txt"), "first\n")
        self.assertFalse(os.path.exists(os.path.join(self.w.state_dir, "queued.txt")))
        s = self.w.system()
        self.assertIsNone(s["current_job"], s)
        self.assertEqual(s["queued_jobs"], 0, s)

    def test_kill9_mid_script_leaves_nothing_running(self):
        job = self.script_job(delayed_side_effect(5))
        self.install(job)
        started = time.monotonic()
        self.wait_script_running(job)
        self.w.kill9()
        self.w.start()
        # The restarted agent kills what its previous life left running.
        h.deadline_poll(lambda: not pid_alive(self.w.read_state_file("child.pid")), 10, 0.1,
                        what="the orphaned child to be killed")
        body = self.wait_job_final(job, timeout=30)
        entry = self.node_entry(body, self.w.node_id)
        self.assertEqual(entry["status"], "failed", entry)
        self.assertIn("restarted", entry["error_message"], entry)
        self.assertIn("killed", self.w.log_text().rsplit("=== start", 1)[-1])
        self.assertSideEffectNever(started + 7)

    def test_sigterm_ends_the_agent_and_its_script_within_seconds(self):
        job = self.script_job(delayed_side_effect(30))
        self.install(job)
        self.wait_script_running(job)
        asked = time.monotonic()
        rc = self.w.stop(timeout=15)
        self.assertEqual(rc, 0, self.w.log_tail())
        self.assertLess(time.monotonic() - asked, 8, "the agent waited for its script")
        self.assertFalse(pid_alive(self.w.read_state_file("child.pid")))
        self.assertFalse(pid_alive(self.w.read_state_file("script.pid")))
        # Back up, it does not run the script again: the job fails once.
        self.w.start()
        body = self.wait_job_final(job, timeout=30)
        self.assertEqual(body["node_statuses"], {self.w.node_id: "failed"}, body)

    def test_retry_runs_failed_nodes_again(self):
        # Fails the first time, succeeds the second.
        job = self.script_job("if [ -f tried ]; then echo ok > retried.txt; "
                              "else touch tried; exit 3; fi")
        self.install(job)
        body = self.wait_job_final(job)
        self.assertEqual(body["status"], "failed", body)
        entry = self.node_entry(body, self.w.node_id)
        self.assertEqual(entry["attempt"], 1, entry)
        r = self.server.coap("post", "updates", {"action": "retry", "job_id": job})
        self.assertEqual(r.code, "2.04", r)
        body = self.wait_job_final(job)
        self.assertJobSucceeded(body, [self.w.node_id])
        self.assertEqual(self.node_entry(body, self.w.node_id)["attempt"], 2)
        self.assertEqual(self.w.read_state_file("retried.txt"), "ok\n")
        # Nothing left to retry.
        r = self.server.coap("post", "updates", {"action": "retry", "job_id": job})
        self.assertErrorJson(r, "4.00", "job_id")


if __name__ == "__main__":
    ah.main()
