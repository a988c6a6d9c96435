#!/usr/bin/env python3
"""File jobs and failures with three real agents: a multi-megabyte artifact
uploaded block-wise with coap-client reaches every node's --root with the
right SHA-256 and mode; failing scripts, timeouts, a changed artifact and an
unknown artifact end as they should, with their reasons."""
import json
import os
import stat
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402

NODES = ["worker-01", "worker-02", "worker-03"]
MiB = 1024 * 1024


class FileJobs(ah.AgentTestCase):
    def test_file_job_multi_megabyte(self):
        src = os.path.join(self.tmp, "fw-4m.bin")
        digest = ah.write_random(src, 4 * MiB)
        self.upload(src, "fw.bin")
        arts = self.artifacts()
        self.assertIn("fw.bin", arts)
        self.assertEqual(arts["fw.bin"]["size"], 4 * MiB, arts)
        self.assertEqual(arts["fw.bin"]["sha256"], digest, arts)
        # Downloading it back block-wise gives the same bytes.
        out = os.path.join(self.tmp, "fw-4m.out")
        code, stdout, stderr = ah.coap_client_file(self.server.url("artifacts/fw.bin"), "get",
                                                   outfile=out)
        self.assertEqual(code, "2.05", stderr[-400:])
        self.assertEqual(os.path.getsize(out), 4 * MiB)
        self.assertEqual(ah.sha256_file(out), digest)

        job = self.create_job({"name": "firmware", "version": "4.0", "package_type": "file",
                               "artifact": "fw.bin", "target_path": "/opt/fw/fw.bin",
                               "mode": "0755"})
        self.install(job)
        body = self.wait_job_final(job, timeout=90)
        self.assertJobSucceeded(body, NODES)
        for w in self.workers_list:
            dest = os.path.join(w.root, "opt", "fw", "fw.bin")
            self.assertTrue(os.path.isfile(dest), "%s: %s missing" % (w.node_id, dest))
            self.assertEqual(ah.sha256_file(dest), digest, w.node_id)
            self.assertEqual(stat.S_IMODE(os.stat(dest).st_mode), 0o755, w.node_id)
            # Nothing left over: no temp file beside it, no partial download.
            self.assertEqual(os.listdir(os.path.dirname(dest)), ["fw.bin"])
            downloads = os.path.join(w.state_dir, "downloads")
            left = os.listdir(downloads) if os.path.isdir(downloads) else []
            self.assertEqual(left, [], "%s keeps %r" % (w.node_id, left))

    def test_file_job_unknown_artifact_is_404_at_create(self):
        r = self.server.coap("post", "updates", {
            "name": "firmware", "version": "1", "package_type": "file",
            "artifact": "no-such-artifact.bin", "target_path": "/opt/fw/x.bin"})
        self.assertErrorJson(r, "4.04", "artifact")
        # And it is not a job.
        r = self.server.coap("get", "updates")
        self.assertFalse([j for j in r.json()["updates"]
                          if j.get("artifact") == "no-such-artifact.bin"], r.body)

    def test_file_job_artifact_replaced_after_create(self):
        """A job pins the artifact's SHA-256 at create. While it is not
        finished, other content under that name is refused (4.09, naming the
        job) and the same content is taken; the job installs what it pinned,
        and once it has finished the name takes new content."""
        a = os.path.join(self.tmp, "pinned-a.bin")
        b = os.path.join(self.tmp, "pinned-b.bin")
        digest_a = ah.write_random(a, 64 * 1024)
        digest_b = ah.write_random(b, 64 * 1024)
        self.upload(a, "pinned.bin")
        job = self.create_job({"name": "pinned", "version": "1", "package_type": "file",
                               "artifact": "pinned.bin", "target_path": "/opt/pinned.bin"})
        code, out, err = ah.coap_client_file(self.server.url("artifacts/pinned.bin"), "put",
                                             infile=b)
        self.assertEqual(code, "4.09", out[-800:] + err[-400:])
        line = [l for l in err.splitlines() if l.startswith("4.09")][0]
        body = json.loads(line[len("4.09"):].strip())
        self.assertIn("unfinished job", body["error"])
        self.assertEqual(body.get("jobs"), job, body)
        self.assertEqual(self.artifacts()["pinned.bin"]["sha256"], digest_a)
        self.upload(a, "pinned.bin")  # the same content: taken
        self.install(job)
        body = self.wait_job_final(job, timeout=60)
        self.assertJobSucceeded(body, NODES)
        for w in self.workers_list:
            self.assertEqual(ah.sha256_file(os.path.join(w.root, "opt", "pinned.bin")),
                             digest_a, w.node_id)
        self.upload(b, "pinned.bin")
        self.assertEqual(self.artifacts()["pinned.bin"]["sha256"], digest_b)


class FailingJobs(ah.AgentTestCase):
    def test_failing_script(self):
        job = self.create_job({"name": "boom", "version": "1", "package_type": "script",
                               "script": "echo boom >&2; exit 3"})
        self.install(job)
        body = self.wait_job_final(job, timeout=30)
        self.assertEqual(body["status"], "failed", json.dumps(body))
        self.assertEqual(body["node_statuses"], {n: "failed" for n in NODES}, body)
        for n in NODES:
            entry = self.node_entry(body, n)
            self.assertEqual(entry["result"], 8, entry)  # update failed
            self.assertRegex(entry["error_message"], r"\b3\b", entry)
            self.assertIn("exit", entry["error_message"], entry)
            self.assertIn("boom", entry["error_message"], entry)
        # The job's own error message says why as well.
        self.assertTrue(body["error_message"], body)

    def run_slow_job(self):
        """`sleep 30` with timeout_seconds 2 on worker-01 and -02; returns the
        final status and the seconds it took."""
        start = time.monotonic()
        job = self.create_job({"name": "slow", "version": "1", "package_type": "script",
                               "script": "echo $$ > slow.pid; exec sleep 30",
                               "timeout_seconds": 2,
                               "target_nodes": ["worker-01", "worker-02"]})
        self.install(job)
        body = self.wait_job_final(job, timeout=25)
        return job, body, time.monotonic() - start

    def test_script_timeout(self):
        """A script over its timeout ends the node `failed` well before the
        script would, with the agent's own reason (the server's deadline for
        the job leaves room for that report); the script is killed and the
        agent is free for the next job."""
        job, body, elapsed = self.run_slow_job()
        self.assertLess(elapsed, 20, "a 2 s timeout took %.1f s" % elapsed)
        self.assertEqual(body["status"], "failed", json.dumps(body))
        self.assertEqual(body["node_statuses"], {"worker-01": "failed", "worker-02": "failed"},
                         json.dumps(body))
        for n in ("worker-01", "worker-02"):
            entry = self.node_entry(body, n)
            self.assertEqual(entry["result"], 8, entry)
            self.assertIn("script timed out after 2 s", entry["error_message"], entry)
        for w in self.workers_list[:2]:
            # The agent stopped the script (its sleep is gone) ...
            pid = int(w.read_state_file("slow.pid").strip())
            h.deadline_poll(lambda: not os.path.exists("/proc/%d" % pid) or
                            open("/proc/%d/stat" % pid).read().split()[2] == "Z",
                            10, 0.2, what="the script's sleep (pid %d) to be gone" % pid)
        # ... and is free again: a job after it runs at once.
        job2 = self.create_job({"name": "after", "version": "1", "package_type": "script",
                                "script": "true", "target_nodes": ["worker-01"]})
        self.install(job2)
        self.assertJobSucceeded(self.wait_job_final(job2, timeout=20), ["worker-01"])

    def test_script_runs_in_state_dir(self):
        job = self.create_job({"name": "pwd", "version": "1", "package_type": "script",
                               "script": "pwd > where.txt"})
        self.install(job)
        self.assertJobSucceeded(self.wait_job_final(job, timeout=30), NODES)
        for w in self.workers_list:
            self.assertEqual(os.path.realpath(w.read_state_file("where.txt").strip()),
                             os.path.realpath(w.state_dir))


class DuplicatesAndQueue(ah.AgentTestCase):
    def notification(self, job, node_id, spec):
        """The body the server sends in POST /updates/available."""
        body = {"job_id": job, "node_id": node_id}
        body.update(spec)
        return body

    def test_same_notification_twice_runs_once(self):
        """A notification that arrives again (CoAP retransmission after a lost
        ACK, a server that notifies again after a restart) is not run again."""
        w = self.workers_list[0]
        spec = {"name": "append-once", "version": "1", "package_type": "script",
                "target_nodes": [w.node_id], "packages": [],
                "script": "echo ran >> dup.txt; sleep 1"}
        job = self.create_job(spec)
        self.install(job)  # the server notifies worker-01 ...
        h.deadline_poll(lambda: ah.log_lines(w, "job %s accepted" % job), 15, 0.1,
                        what="worker-01 to take the server's notification first")
        note = self.notification(job, w.node_id, spec)
        for _ in range(2):  # ... and the same notification comes twice more
            r = self.notify_as_server(w, note)
            self.assertEqual(r.code, "2.04", r)
            self.assertEqual(r.json().get("job_id"), job, r)
        self.assertJobSucceeded(self.wait_job_final(job, timeout=30), [w.node_id])
        # Once the job is finished, yet another copy is not run either: the
        # agent answers 2.04 after its installer looked the job up (accepted
        # once, known since) ...
        r = self.notify_as_server(w, note)
        self.assertEqual(r.code, "2.04", r)
        self.assertEqual(len(ah.log_lines(w, "job %s accepted" % job)), 1, w.log_tail())
        self.assertGreaterEqual(len(ah.log_lines(w, "job %s already known" % job)), 3,
                                w.log_tail())
        # ... and the script does not run again.
        h.stays_true(lambda: (w.read_state_file("dup.txt") == "ran\n"
                              and w.system()["current_job"] is None), 1.5, 0.1,
                     what="dup.txt holding one run and no job running")

    def test_direct_notification_of_an_unknown_job_runs_nothing(self):
        """A notification straight to an agent from the server's address and
        port, with a whole spec in its body, of a job the server does not
        have: the agent fetches the job from its server, gets none, answers
        4.04 (twice) and runs nothing."""
        w = self.workers_list[1]
        spec = {"name": "direct", "version": "1", "package_type": "script",
                "target_nodes": ["all"], "packages": [],
                "script": "echo ran >> direct.txt"}
        note = self.notification("direct-job-0001", w.node_id, spec)
        for _ in range(2):
            r = self.notify_as_server(w, note)
            self.assertErrorJson(r, "4.04")
        h.stays_true(lambda: (w.read_state_file("direct.txt") == ""
                              and not ah.log_lines(w, "job direct-job-0001 accepted")),
                     1.0, 0.1, what="nothing run for direct-job-0001")

    def test_second_job_while_one_runs_is_queued(self):
        first = self.create_job({"name": "first", "version": "1", "package_type": "script",
                                 "script": "sleep 2; echo first >> order.txt"})
        second = self.create_job({"name": "second", "version": "1", "package_type": "script",
                                  "script": "echo second >> order.txt"})
        self.install(first)
        self.install(second)
        b1 = self.wait_job_final(first, timeout=30)
        b2 = self.wait_job_final(second, timeout=30)
        self.assertJobSucceeded(b1, NODES)
        self.assertJobSucceeded(b2, NODES)
        for w in self.workers_list:
            self.assertEqual(w.read_state_file("order.txt"), "first\nsecond\n", w.node_id)
            # The second arrived while the first ran, and waited for it.
            self.assertTrue(ah.log_lines(w, "job %s accepted.*queued behind %s" % (second, first)),
                            w.log_tail())
            s = w.system()
            self.assertIsNone(s["current_job"], s)
            self.assertEqual(s["queued_jobs"], 0, s)


if __name__ == "__main__":
    ah.main()
