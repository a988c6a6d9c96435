#!/usr/bin/env python3
"""Crashes with real agents: an agent killed with SIGKILL in the middle of a
download resumes it after a restart (same --state-dir); one killed while a
script runs reports the job failed instead of losing it or running it twice;
a server killed with SIGKILL (restarted on the same database, or on a fresh
one) gets every agent back by itself, and a job report made while it was
down is delivered when it returns."""
import json
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402

NODES = ["worker-01", "worker-02", "worker-03"]
MiB = 1024 * 1024


def kill_leftover(pid_text, expect="sleep"):
    """Ends a script's process that outlived its killed agent (the pid the
    script wrote itself), if it is still the process we think it is."""
    try:
        pid = int(pid_text.strip())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if expect.encode() in f.read():
                os.kill(pid, signal.SIGKILL)
    except (ValueError, OSError):
        pass


class AgentKilledMidJob(ah.AgentTestCase):
    """Each test has its own server and agents (it runs alone, in any order)."""

    fresh_per_test = True

    def kill_mid_download(self, victim):
        """Uploads ever bigger artifacts until `victim` is caught downloading one
        with 0 < progress < 100 and kill -9s it there. Returns (job, artifact
        name, sha256, size, status entry when caught)."""
        for size_mib in (20, 40, 64):
            src = os.path.join(self.tmp, "big-%d.bin" % size_mib)
            size = size_mib * MiB if size_mib < 64 else 64 * MiB - 4096
            digest = ah.write_random(src, size)
            name = "big-%d.bin" % size_mib
            self.upload(src, name)
            self.assertEqual(self.artifacts()[name]["sha256"], digest)
            job = self.create_job({"name": "big", "version": str(size_mib),
                                   "package_type": "file", "artifact": name,
                                   "target_path": "/opt/big/big.bin"})
            self.install(job)
            # Poll quickly (raw client: no process per poll) for the victim
            # downloading with 0 < progress < 100.
            end = time.monotonic() + 60
            while time.monotonic() < end:
                st = self.fast_status(job)
                entry = self.node_entry(st, victim.node_id) if st else None
                if entry and entry["status"] == "downloading" and entry["progress"] is not None \
                        and 0 < entry["progress"] < 100:
                    victim.kill9()
                    return job, name, digest, size, entry
                if entry and entry["status"] not in ("pending", "notified", "downloading"):
                    break  # too fast to catch: try a bigger artifact
                time.sleep(0.02)
            self.wait_job_final(job, timeout=120)
        self.fail("could not catch %s downloading even with a 64 MiB artifact" % victim.node_id)

    # A restarted agent resumes with a Block2 request for block N > 0 on a new
    # exchange; the server sends the ETag with such a block too, so the agent
    # can check the blocks belong to the version the job names.
    def test_download_resumes_after_kill9(self):
        """kill -9 an agent in the middle of a download and restart it on the
        same state directory: it resumes after the blocks it has, the server
        takes its reports of `downloading` again (not refused as going
        backwards), and every node ends with the whole file."""
        victim = self.workers_list[1]  # worker-02
        job, name, digest, size, caught = self.kill_mid_download(victim)
        part = os.path.join(victim.state_dir, "downloads", job + ".part")
        self.assertTrue(os.path.exists(part), "no partial download %s" % part)
        partial = os.path.getsize(part)
        self.assertTrue(0 < partial < size, "partial download holds %d of %d bytes"
                        % (partial, size))
        victim.start()
        body = self.wait_job_final(job, timeout=120)
        # It resumed where it stood instead of starting again.
        resumed = ah.log_lines(victim, r"job %s: resuming download of %s at block (\d+)"
                               % (job, re.escape(name)))
        self.assertEqual(len(resumed), 1, victim.log_tail())
        block = int(re.search(r"at block (\d+)", resumed[0]).group(1))
        self.assertGreaterEqual(block, (partial // 1024) - 1, resumed[0])
        self.assertGreater(block, 0, resumed[0])
        fresh = ah.log_lines(victim, r"job %s: downloading %s \(" % (job, re.escape(name)))
        self.assertEqual(len(fresh), 1, "downloaded from the start again: %r" % fresh)
        # Every node, the victim too, got it whole.
        self.assertJobSucceeded(body, NODES)
        for w in self.workers_list:
            dest = os.path.join(w.root, "opt", "big", "big.bin")
            self.assertEqual(ah.sha256_file(dest), digest, w.node_id)
        # The server took the victim's reports after the restart.
        refused = ah.log_lines(victim, r"server refused report")
        self.assertEqual(refused, [], "\n".join(refused))
        # Nothing left in its downloads directory.
        self.assertEqual(os.listdir(os.path.join(victim.state_dir, "downloads")), [])
        sys.stderr.write("caught %s at %r; %d of %d bytes on disk; resumed at block %d\n"
                         % (victim.node_id, caught, partial, size, block))

    def test_script_interrupted_by_kill9_fails_once(self):
        w = self.workers_list[0]  # worker-01
        job = self.create_job({"name": "long-script", "version": "1",
                               "package_type": "script", "target_nodes": [w.node_id],
                               "script": "echo run >> runs.txt; echo $$ > sleeper.pid; "
                                         "exec sleep 20"})
        self.install(job)
        try:
            def running():
                st = self.status(job)
                return (st["node_statuses"].get(w.node_id) == "installing"
                        and w.read_state_file("sleeper.pid").strip())
            h.deadline_poll(running, 20, 0.1, what="the script to run on " + w.node_id)
            w.kill9()
            started = time.monotonic()
            w.start()
            body = self.wait_job_final(job, timeout=30)
            self.assertLess(time.monotonic() - started, 15,
                            "the restarted agent waited for the script's 20 s")
            entry = self.node_entry(body, w.node_id)
            self.assertEqual(entry["status"], "failed", json.dumps(body))
            self.assertEqual(entry["result"], 8, entry)
            self.assertIn("restarted", entry["error_message"], entry)
            self.assertEqual(body["status"], "failed", body)
            # Not run a second time: the restarted agent has nothing to do ...
            s = w.system()
            self.assertIsNone(s["current_job"], s)
            self.assertEqual(s["queued_jobs"], 0, s)
            # ... and the script does not run again.
            h.stays_true(lambda: w.read_state_file("runs.txt") == "run\n", 1.0, 0.1,
                         what="runs.txt holding one run")
        finally:
            kill_leftover(w.read_state_file("sleeper.pid"))


class ServerKilled(ah.AgentTestCase):
    """Each test has its own server and agents (it runs alone, in any order)."""

    fresh_per_test = True

    def restart_server(self, db=None, downtime=0.0, name=None):
        """kill -9 the current server, wait `downtime`, start a server on the
        same port (same database unless `db`)."""
        old = type(self).server
        old.kill9()
        if downtime:
            time.sleep(downtime)
        if db is None:
            old.start()
            return old
        type(self).servers.remove(old)  # killed on purpose: not a crash to report
        new = type(self).new_server(start=False, port=old.port, db=db, name=name)
        new.start()
        type(self).server = new
        return new

    def test_same_db(self):
        """kill -9, 3 s down, restart on the same database: every node reports
        again (last_seen after the restart) without help."""
        server = self.restart_server(downtime=3.0)
        since = ah.iso_now()
        nodes = self.wait_registered(self.workers_list, server=server, timeout=40, since=since)
        for w in self.workers_list:
            self.assertEqual(nodes[w.node_id]["ip_address"], w.ip)
            # The agent knows it is registered again (a health report retransmitted
            # across the restart can reach the server before the agent's own
            # re-registration, so this can lag GET /nodes by a retry).
            h.deadline_poll(lambda: w.system()["registered"] is True, 30, 0.2,
                            what="%s registered again" % w.node_id)

    def test_fresh_db(self):
        """A restart on an empty database: the agents' health reports get
        4.04 and they register again."""
        server = self.restart_server(db=os.path.join(self.tmp, "fresh.db"), name="fresh")
        nodes = self.wait_registered(self.workers_list, server=server, timeout=40)
        self.assertEqual(sorted(nodes), NODES)
        for w in self.workers_list:
            self.assertEqual(nodes[w.node_id]["ip_address"], w.ip, nodes[w.node_id])
            self.assertEqual(nodes[w.node_id]["port"], 5683, nodes[w.node_id])
            self.assertIsInstance(nodes[w.node_id]["system_info"], dict)
            # Registered again by itself (told 4.04 by the new server, or its
            # registration reached the new server), and reporting to it.
            h.deadline_poll(lambda: w.system()["registered"] is True, 30, 0.2,
                            what="%s registered again" % w.node_id)
        def all_health():
            r = server.coap("get", "nodes")
            ns = r.json()["nodes"] if r.code == "2.05" else []
            return len(ns) == 3 and all(isinstance(n.get("health"), dict) for n in ns)
        h.deadline_poll(all_health, 20, 0.3, what="health of every node on the fresh server")
        # And jobs work with them.
        job = self.create_job({"name": "after-fresh", "version": "1",
                               "package_type": "script", "script": "true"})
        self.install(job)
        self.assertJobSucceeded(self.wait_job_final(job, timeout=30), NODES)

    def test_report_made_while_server_down_is_delivered(self):
        job = self.create_job({"name": "during-outage", "version": "1",
                               "package_type": "script",
                               "script": "sleep 3; echo done >> outage.txt"})
        self.install(job)
        # Every agent has the job (so the outage hits its reports, not the
        # notification), then the server dies.
        for w in self.workers_list:
            h.deadline_poll(lambda: w.system()["current_job"] == job, 3, 0.05,
                            what="%s running the job" % w.node_id)
        killed_at = time.time()
        self.restart_server(downtime=5.0)
        back_at = time.time()
        body = self.wait_job_final(job, timeout=60)
        self.assertJobSucceeded(body, NODES)
        for w in self.workers_list:
            self.assertEqual(w.read_state_file("outage.txt"), "done\n", w.node_id)
            # The final report was made while the server was down.
            lines = ah.log_lines(w, "job %s succeeded" % job)
            self.assertEqual(len(lines), 1, w.log_tail())
            at = ah.log_time(lines[0])
            self.assertTrue(killed_at - 0.01 <= at <= back_at,
                            "%s finished at %.3f, the server was down from %.3f to %.3f"
                            % (w.node_id, at, killed_at, back_at))


if __name__ == "__main__":
    ah.main()
