#!/usr/bin/env python3
"""The agent's part of the security model with real agents and a real server on
loopback, driven by the real coap-client:

- file jobs stay inside --root: a target_path through a symbolic link that
  leads out of the root, or through an absolute link, fails the job with the
  reason and writes nothing; setuid, setgid and sticky modes fail the job
  unless the agent runs with --allow-setid, and are kept when it does.
"""
import json
import os
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402


class FileJobsStayInsideTheRoot(ah.AgentTestCase):
    """worker-01 runs as by default; worker-02 with --allow-setid."""
    workers = 2

    @classmethod
    def worker_args_for(cls, index):
        return ["--allow-setid"] if index == 2 else []

    def setUp(self):
        super().setUp()
        self.plain, self.setid = self.workers_list

    def file_job(self, worker, name, target, mode=None):
        """Uploads a small artifact, runs a file job on `worker` alone; returns
        (the artifact's bytes, the node's entry in the final status)."""
        content = ("%s for %s\n" % (name, target)).encode()
        src = os.path.join(self.tmp, name)
        with open(src, "wb") as f:
            f.write(content)
        self.upload(src, name)
        spec = {"name": name, "version": "1", "package_type": "file", "artifact": name,
                "target_path": target, "target_nodes": [worker.node_id]}
        if mode:
            spec["mode"] = mode
        job = self.create_job(spec)
        self.install(job)
        body = self.wait_job_final(job, timeout=30)
        return content, self.node_entry(body, worker.node_id), body

    def assertFailedWith(self, entry, body, result, *words):
        self.assertEqual(body["node_statuses"][entry["node_id"]], "failed", json.dumps(body))
        self.assertEqual(entry["result"], result, entry)
        for word in words:
            self.assertIn(word, entry["error_message"] or "", entry)

    def test_link_out_of_the_root_fails_and_writes_nothing_outside(self):
        w = self.plain
        outside = os.path.join(self.tmp, "outside-1")
        os.makedirs(outside)
        opt = os.path.join(w.root, "opt")
        os.makedirs(opt, exist_ok=True)
        os.symlink(outside, os.path.join(opt, "link"))                     # absolute
        os.symlink(os.path.relpath(outside, opt), os.path.join(opt, "up"))  # ../../../outside-1
        for target in ("/opt/link/app.conf", "/opt/link/sub/dir/app.conf", "/opt/up/app.conf"):
            with self.subTest(target=target):
                _, entry, body = self.file_job(w, "escape-%d.conf" % len(target), target)
                self.assertFailedWith(entry, body, 7, "install root", target.split("/")[2])
                self.assertEqual(os.listdir(outside), [])
        self.assertEqual(sorted(os.listdir(os.path.join(w.root, "opt"))), ["link", "up"])

    def test_path_through_an_absolute_link_is_refused(self):
        """No "..": an absolute link, even one that points back into the root."""
        w = self.plain
        inside = os.path.join(w.root, "srv", "v1")
        os.makedirs(inside)
        os.makedirs(os.path.join(w.root, "etc"), exist_ok=True)
        os.symlink(inside, os.path.join(w.root, "etc", "abs"))
        _, entry, body = self.file_job(w, "abs.conf", "/etc/abs/app.conf")
        self.assertFailedWith(entry, body, 7, "/etc/abs", "install root")
        self.assertEqual(os.listdir(inside), [])

    def test_setid_modes_are_refused_without_allow_setid(self):
        w = self.plain
        for mode in ("4755", "2755", "1755"):
            with self.subTest(mode=mode):
                target = "/usr/local/bin/tool-%s" % mode
                _, entry, body = self.file_job(w, "tool-%s" % mode, target, mode)
                self.assertFailedWith(entry, body, 8, mode, "--allow-setid")
                self.assertFalse(os.path.lexists(w.root + target))
                # Refused before the artifact was fetched.
                self.assertEqual(ah.log_lines(w, "job %s: downloading" % body["job_id"]), [],
                                 w.log_tail())

    def test_setid_modes_are_kept_with_allow_setid(self):
        w = self.setid
        for mode in ("4755", "2755", "1755"):
            with self.subTest(mode=mode):
                target = "/usr/local/bin/tool-ok-%s" % mode
                content, entry, body = self.file_job(w, "tool-ok-%s" % mode, target, mode)
                self.assertEqual(body["node_statuses"], {w.node_id: "succeeded"},
                                 json.dumps(body))
                path = w.root + target
                with open(path, "rb") as f:
                    self.assertEqual(f.read(), content)
                self.assertEqual(stat.S_IMODE(os.lstat(path).st_mode), int(mode, 8))


if __name__ == "__main__":
    ah.main()
