#!/usr/bin/env python3
"""The agent's part of the security model with real agents and a real server on
loopback, driven by the real coap-client:

- an agent obeys only its server: a notification from another address
  (127.0.0.2) or from the server's address but another port is answered 4.03
  with a JSON error, and nothing runs; the server's own notifications leave
  from its listening port and still work;
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


def script_note(job, node_id, script):
    """A complete notification body, as an attacker would send it."""
    return {"job_id": job, "node_id": node_id, "name": "evil", "version": "1",
            "package_type": "script", "target_nodes": [node_id], "packages": [],
            "script": script}


class AgentObeysOnlyItsServer(ah.AgentTestCase):
    workers = 1

    def assertNothingRan(self, w, job, marker):
        """For a while: no marker file, the job never accepted, nothing running."""
        def clean():
            return (not os.path.exists(w.state_file(marker))
                    and not ah.log_lines(w, "job %s accepted" % job)
                    and w.system()["current_job"] is None
                    and job not in w.read_state_file("journal.json"))
        h.stays_true(clean, 2.0, 0.2, what="nothing run for %s" % job)

    def assertRefused(self, r, sender):
        body = self.assertErrorJson(r, "4.03")
        self.assertIn("server", body["error"], body)
        self.assertEqual(body.get("from"), sender, body)
        return body

    def test_notification_from_another_address_is_403(self):
        w = self.workers_list[0]
        note = script_note("foreign-addr-1", w.node_id, "id > pwned-addr.txt")
        r = w.coap("post", "updates/available", note, extra=["-a", "127.0.0.2"])
        # coap-client picks its port; the answer names the address it saw.
        body = self.assertErrorJson(r, "4.03")
        self.assertTrue(body.get("from", "").startswith("127.0.0.2:"), body)
        self.assertNothingRan(w, "foreign-addr-1", "pwned-addr.txt")

    def test_notification_from_the_servers_address_but_another_port_is_403(self):
        w = self.workers_list[0]
        port = h.free_port()
        self.assertNotEqual(port, self.server.port)
        note = script_note("foreign-port-1", w.node_id, "id > pwned-port.txt")
        r = w.coap("post", "updates/available", note, extra=["-a", h.HOST, "-p", str(port)])
        self.assertRefused(r, "%s:%d" % (h.HOST, port))
        self.assertNothingRan(w, "foreign-port-1", "pwned-port.txt")

    def test_a_stranger_learns_nothing_from_a_bad_body(self):
        """Refused before the body is looked at: 4.03, not 4.00."""
        w = self.workers_list[0]
        port = h.free_port("127.0.0.2")
        r = w.coap("post", "updates/available", "{not json",
                   extra=["-a", "127.0.0.2", "-p", str(port)])
        self.assertRefused(r, "127.0.0.2:%d" % port)
        r = w.coap("post", "updates/available", {"job_id": "x"},
                   extra=["-a", "127.0.0.2", "-p", str(port)])
        self.assertRefused(r, "127.0.0.2:%d" % port)

    def test_the_servers_notification_still_runs(self):
        """The server notifies from its listening port (the agent's log names
        the sender), and the job runs."""
        w = self.workers_list[0]
        job = self.create_job({"name": "mine", "version": "1", "package_type": "script",
                               "script": "echo mine > mine.txt"})
        self.install(job)
        self.assertJobSucceeded(self.wait_job_final(job, timeout=30), [w.node_id])
        self.assertEqual(w.read_state_file("mine.txt"), "mine\n")
        self.assertTrue(ah.log_lines(w, r"notification of job %s from %s:%d\b"
                                     % (job, h.HOST.replace(".", r"\."), self.server.port)),
                        w.log_tail())


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
