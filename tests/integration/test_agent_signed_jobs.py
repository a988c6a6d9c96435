#!/usr/bin/env python3
"""A notification names a job; the agent fetches the job's spec from its
server, and with --verify-key runs only jobs signed by the operator's key.
Real server, real agents (plain mode, on 127.1.0.N), the real CLI:

- a forged notification with a whole spec in its body: from another address
  it is 4.03; even from the server's own address and port, the body's spec is
  never run (a job the server does not have is 4.04, one it has runs the
  server's spec);
- GET /updates/<job>/spec gives a job to its target nodes only;
- worker-01 runs with --verify-key: an unsigned job, one signed with another
  key and one changed after signing all fail with the reason and run
  nothing; jobs signed with `coapfleet update create --sign-key` run (a
  script and a file job, whose artifact's SHA-256 the signature covers);
- worker-02, without --verify-key, runs unsigned jobs as before.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402

CLI_BIN = os.environ.get("COAPFLEET_CLI") or os.path.join(os.path.dirname(h.SERVER_BIN),
                                                          "coapfleet")


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=30)


class SignedJobs(ah.AgentTestCase):
    workers = 2

    @classmethod
    def start_processes(cls):
        cls.keydir = os.path.join(cls.tmp, "keys")
        os.makedirs(cls.keydir)
        for name in ("sign", "other"):
            pem = os.path.join(cls.keydir, name + ".pem")
            openssl("genpkey", "-algorithm", "ed25519", "-out", pem)
            os.chmod(pem, 0o600)
            openssl("pkey", "-in", pem, "-pubout", "-out", os.path.join(cls.keydir, name + ".pub"))
        super().start_processes()

    @classmethod
    def worker_args_for(cls, index):
        return ["--verify-key", os.path.join(cls.keydir, "sign.pub")] if index == 1 else []

    def setUp(self):
        super().setUp()
        self.verifying, self.plain = self.workers_list

    def cli(self, *args):
        p = subprocess.run([CLI_BIN, "--server", "coap://%s:%d" % (h.HOST, self.server.port)]
                           + list(args), capture_output=True, text=True, timeout=120)
        return p

    def cli_job(self, *args):
        """`coapfleet update create ...`: the job id."""
        p = self.cli("update", "create", *args)
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        return p.stdout.strip()

    def final_entry(self, job, worker):
        self.install(job)
        body = self.wait_job_final(job, timeout=30)
        return self.node_entry(body, worker.node_id)

    def assertRefusedWith(self, entry, words):
        self.assertEqual(entry["status"], "failed", entry)
        self.assertEqual(entry["result"], 5, entry)
        self.assertIn(words, entry["error_message"] or "", entry)

    # -- notifications carry ids only ------------------------------------------------------

    def test_forged_full_spec_from_another_address_runs_nothing(self):
        w = self.plain
        note = {"job_id": "forged-1", "node_id": w.node_id, "name": "evil", "version": "1",
                "package_type": "script", "script": "id > pwned-forged.txt"}
        r = w.coap("post", "updates/available", note, extra=["-a", "127.0.0.2"])
        self.assertErrorJson(r, "4.03")
        # Even from the server's own address and port the spec is not read:
        # the server has no such job, so the agent answers 4.04.
        r = self.notify_as_server(w, note)
        body = self.assertErrorJson(r, "4.04")
        self.assertIn("forged-1", body["error"], body)
        h.stays_true(lambda: (not os.path.exists(w.state_file("pwned-forged.txt"))
                              and "forged-1" not in w.read_state_file("journal.json")),
                     1.5, 0.2, what="nothing run for forged-1")

    def test_a_notification_runs_the_servers_spec_not_its_body(self):
        w = self.plain
        job = self.create_job({"name": "real", "version": "1", "package_type": "script",
                               "script": "echo real > real.txt", "target_nodes": [w.node_id]})
        # Known to the server but not triggered: no node is a target yet.
        r = self.notify_as_server(w, {"job_id": job, "node_id": w.node_id})
        self.assertErrorJson(r, "4.04")
        self.install(job)
        self.assertJobSucceeded(self.wait_job_final(job, timeout=30), [w.node_id])
        # The same job again, with a body that says something else: known, not run.
        r = self.notify_as_server(w, {"job_id": job, "node_id": w.node_id,
                                      "package_type": "script", "script": "touch pwned2.txt"})
        self.assertEqual(r.code, "2.04", r)
        self.assertEqual(w.read_state_file("real.txt"), "real\n")
        self.assertFalse(os.path.exists(w.state_file("pwned2.txt")))

    def test_a_job_spec_is_given_to_its_targets_only(self):
        w = self.plain
        job = self.create_job({"name": "spec", "version": "1", "package_type": "script",
                               "script": "true", "target_nodes": [w.node_id]})
        self.install(job)
        r = self.server.coap("get", "updates/%s/spec?node_id=%s" % (job, w.node_id))
        self.assertEqual(r.code, "2.05", r)
        spec = r.json()
        self.assertEqual((spec["job_id"], spec["node_id"], spec["script"]),
                         (job, w.node_id, "true"))
        r = self.server.coap("get", "updates/%s/spec?node_id=%s" % (job, self.verifying.node_id))
        self.assertErrorJson(r, "4.04")
        self.assertErrorJson(self.server.coap("get", "updates/nope/spec?node_id=x"), "4.04")
        self.assertErrorJson(self.server.coap("get", "updates/%s/spec" % job), "4.00")
        self.assertErrorJson(self.server.coap("get", "updates/%s/spec?x=1" % job), "4.00")
        self.assertErrorJson(self.server.coap("post", "updates/%s/spec" % job, {}), "4.05")

    def test_a_spec_larger_than_one_block_is_fetched(self):
        """The spec comes in a separate response: the agent fetches it one
        block at a time (libcoap 4.3.1 does not follow a block-wise body
        that starts in a separate response)."""
        w = self.verifying
        script = "echo big > big.txt\n# " + "x" * 5000 + "\n"
        job = self.cli_job("--name", "big", "--version", "1", "--type", "script",
                           "--script", script, "--nodes", w.node_id,
                           "--sign-key", os.path.join(self.keydir, "sign.pem"))
        self.assertEqual(self.final_entry(job, w)["status"], "succeeded")
        self.assertEqual(w.read_state_file("big.txt"), "big\n")

    # -- signed jobs ------------------------------------------------------------------------

    def test_an_unsigned_job_is_refused_with_the_reason(self):
        w = self.verifying
        job = self.create_job({"name": "unsigned", "version": "1", "package_type": "script",
                               "script": "touch unsigned.txt", "target_nodes": [w.node_id]})
        self.assertRefusedWith(self.final_entry(job, w), "job is not signed")
        self.assertFalse(os.path.exists(w.state_file("unsigned.txt")))
        self.assertTrue(ah.log_lines(w, "job %s failed .*not signed" % job), w.log_tail())

    def test_a_job_signed_with_another_key_is_refused(self):
        w = self.verifying
        job = self.cli_job("--name", "other", "--version", "1", "--type", "script",
                           "--script", "touch other.txt", "--nodes", w.node_id,
                           "--sign-key", os.path.join(self.keydir, "other.pem"))
        self.assertRefusedWith(self.final_entry(job, w),
                               "job signature does not verify with --verify-key")
        self.assertFalse(os.path.exists(w.state_file("other.txt")))

    def test_a_job_changed_after_signing_is_refused(self):
        w = self.verifying
        signed = self.cli_job("--name", "orig", "--version", "1", "--type", "script",
                              "--script", "echo orig", "--nodes", w.node_id,
                              "--sign-key", os.path.join(self.keydir, "sign.pem"))
        self.install(signed)
        self.assertJobSucceeded(self.wait_job_final(signed, timeout=30), [w.node_id])
        r = self.server.coap("get", "updates/%s/spec?node_id=%s" % (signed, w.node_id))
        self.assertEqual(r.code, "2.05", r)
        signature = r.json()["signature"]
        self.assertEqual(len(signature), 128)
        # The same signature on another script (what a tampered store or a
        # server in the middle would hand out).
        job = self.create_job({"name": "orig", "version": "1", "package_type": "script",
                               "script": "touch altered.txt", "target_nodes": [w.node_id],
                               "signature": signature})
        self.assertRefusedWith(self.final_entry(job, w),
                               "job signature does not verify with --verify-key")
        self.assertFalse(os.path.exists(w.state_file("altered.txt")))

    def test_signed_jobs_run(self):
        w = self.verifying
        job = self.cli_job("--name", "good", "--version", "1", "--type", "script",
                           "--script", "echo signed > signed.txt", "--nodes", w.node_id,
                           "--sign-key", os.path.join(self.keydir, "sign.pem"))
        self.assertEqual(self.final_entry(job, w)["status"], "succeeded")
        self.assertEqual(w.read_state_file("signed.txt"), "signed\n")
        # A file job: the signature covers the artifact's SHA-256.
        src = os.path.join(self.tmp, "signed.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(3000))
        self.upload(src, "signed.bin")
        job = self.cli_job("--name", "fw", "--version", "1", "--type", "file",
                           "--artifact", "signed.bin", "--target", "/opt/signed.bin",
                           "--nodes", w.node_id,
                           "--sign-key", os.path.join(self.keydir, "sign.pem"))
        self.assertEqual(self.final_entry(job, w)["status"], "succeeded")
        self.assertEqual(ah.sha256_file(os.path.join(w.root, "opt/signed.bin")),
                         ah.sha256_file(src))
        # A spec whose SHA-256 pin differs from the store is refused by the server.
        r = self.server.coap("post", "updates", {
            "name": "fw", "version": "1", "package_type": "file", "artifact": "signed.bin",
            "target_path": "/opt/x.bin", "artifact_sha256": "0" * 64})
        self.assertErrorJson(r, "4.09")

    def test_a_sign_key_others_may_read_is_refused(self):
        loose = os.path.join(self.keydir, "loose.pem")
        openssl("genpkey", "-algorithm", "ed25519", "-out", loose)
        os.chmod(loose, 0o644)
        p = self.cli("update", "create", "--name", "x", "--version", "1", "--type", "script",
                     "--script", "true", "--sign-key", loose)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("chmod 600", p.stderr)

    def test_without_verify_key_unsigned_jobs_run(self):
        w = self.plain
        job = self.create_job({"name": "plain", "version": "1", "package_type": "script",
                               "script": "echo plain > plain.txt", "target_nodes": [w.node_id]})
        self.assertEqual(self.final_entry(job, w)["status"], "succeeded")
        self.assertEqual(w.read_state_file("plain.txt"), "plain\n")


if __name__ == "__main__":
    ah.main()
