#!/usr/bin/env python3
"""Artifacts of a cluster are the shared store's (DESIGN §10).

Runs under tests/with_pg.sh (a throwaway PostgreSQL in COAPFLEET_TEST_PG).
An upload through any member is acknowledged once PostgreSQL has it; each
member serves copies in its own --artifacts directory:

(a) an artifact uploaded through m1, then kill -9 of m1: m2 lists it, serves
    it byte for byte, and a file job created through m2 installs it on a
    real agent that only knows m2;
(b) a member that was stopped while an artifact was deleted and another
    uploaded drops the one and serves the other once restarted, and its stop
    ends cleanly (nothing left running, exit 0);
(c) an unfinished job run by one member keeps its artifact's content on
    every member: other content and a deletion through another member are
    refused (4.09) naming the job.
"""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import agent_harness as ah  # noqa: E402
import cluster_harness as ch  # noqa: E402


def content(size, seed):
    """`size` bytes of every value (NUL included), the same for a seed."""
    return bytes(((i * 131 + seed * 7 + (i >> 11)) & 0xFF) for i in range(size))


class ClusterArtifactsTest(ch.ClusterCase):
    def upload(self, server, name, body):
        path = os.path.join(self.tmp, "%s-%d.upload" % (name, len(body)))
        with open(path, "wb") as f:
            f.write(body)
        code, out, err = ah.coap_client_file(server.url("artifacts/" + name), "put", infile=path)
        self.assertIn(code, ("2.01", "2.04"), "%s\n%s" % (out[-800:], err[-400:]))

    def listed(self, server):
        r = server.coap("get", "artifacts")
        self.assertEqual(r.code, "2.05", r)
        return {a["name"]: a["sha256"] for a in r.json()["artifacts"]}

    def download(self, server, name):
        out = os.path.join(self.tmp, "%s-%d.download" % (name, server.port))
        code, stdout, stderr = ah.coap_client_file(server.url("artifacts/" + name), "get",
                                                   outfile=out)
        if code != "2.05":
            return code
        with open(out, "rb") as f:
            return f.read()

    def test_a_file_job_outlives_the_member_its_artifact_was_uploaded_to(self):
        agent_bin = os.environ.get("COAPFLEET_AGENT")
        self.assertTrue(agent_bin, "COAPFLEET_AGENT names the agent to run")
        m1, m2 = self.member("m1"), self.member("m2")
        self.wait_for("two live, linked members",
                      lambda: self.all_live_and_linked([m1, m2], ["m1", "m2"]))
        body = content(40000, 1)
        digest = hashlib.sha256(body).hexdigest()
        self.upload(m1, "fw.bin", body)
        # Acknowledged means stored: m1 dies at once, nothing is lost.
        m1.kill9()
        type(self).servers.remove(m1)  # killed on purpose: not a crash to report
        # Every member copies it within a second (its refresh).
        self.wait_for("m2 listing fw.bin", lambda: self.listed(m2).get("fw.bin") == digest,
                      timeout=5)
        self.assertEqual(self.download(m2, "fw.bin"), body)
        agent, agent_log = self.start_agent(agent_bin, "agent", "art-1", [m2.url()])
        self.wait_for("the agent registered with m2",
                      lambda: "registered as art-1 with" in agent_log(), timeout=30)
        self.assertEqual(self.run_job(m2, {"name": "fw", "version": "1", "package_type": "file",
                                           "artifact": "fw.bin", "target_path": "/opt/fw.bin"},
                                      "art-1"),
                         "succeeded", agent_log()[-3000:])
        with open(os.path.join(self.tmp, "agent-root", "opt", "fw.bin"), "rb") as f:
            self.assertEqual(f.read(), body)

    def test_a_member_that_was_away_catches_up(self):
        m1, m2 = self.member("m1"), self.member("m2")
        self.wait_for("two live, linked members",
                      lambda: self.all_live_and_linked([m1, m2], ["m1", "m2"]))
        old, new = content(3000, 2), content(5000, 3)
        self.upload(m1, "old.bin", old)
        self.wait_for("m2 serving old.bin", lambda: self.download(m2, "old.bin") == old,
                      timeout=10)
        self.assertEqual(m2.stop(), 0, m2.log_tail())
        self.assertIn("stopped cleanly", m2.log_text())
        self.assertNotIn("still referenced", m2.log_text())
        # While m2 is away: one deleted, one uploaded.
        r = m1.coap("delete", "artifacts/old.bin")
        self.assertEqual(r.code, "2.02", r)
        self.upload(m1, "new.bin", new)
        m2.start()
        self.assertEqual(self.listed(m2), {"new.bin": hashlib.sha256(new).hexdigest()})
        self.assertEqual(self.download(m2, "old.bin"), "4.04")
        self.assertEqual(self.download(m2, "new.bin"), new)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "m2-artifacts", "old.bin")))
        self.assertIn("dropped old.bin: deleted from the shared store", m2.log_text())
        # And a deletion through m2 reaches m1 within a refresh.
        r = m2.coap("delete", "artifacts/new.bin")
        self.assertEqual(r.code, "2.02", r)
        self.wait_for("m1 no longer serving new.bin",
                      lambda: self.download(m1, "new.bin") == "4.04", timeout=10)
        self.assertEqual(self.listed(m1), {})

    def test_an_artifact_a_job_on_another_member_needs_is_kept(self):
        m1, m2 = self.member("m1"), self.member("m2")
        self.wait_for("two live, linked members",
                      lambda: self.all_live_and_linked([m1, m2], ["m1", "m2"]))
        v1 = content(2000, 4)
        self.upload(m1, "app.bin", v1)
        # A job m1 runs (it created it) pins the version; not started: unfinished.
        r = m1.coap("post", "updates", {"name": "app", "version": "1", "package_type": "file",
                                        "artifact": "app.bin", "target_path": "/opt/app.bin",
                                        "target_nodes": ["all"]})
        self.assertEqual(r.code, "2.01", r)
        job = r.json()["job_id"]
        self.wait_for("m2 serving app.bin", lambda: self.download(m2, "app.bin") == v1,
                      timeout=10)
        # Through m2, which does not run the job: other content and a
        # deletion are refused naming it, as they are through m1.
        path = os.path.join(self.tmp, "other.upload")
        with open(path, "wb") as f:
            f.write(content(2000, 5))
        # (5.03 while the job moves to the member it hashes to, as m2 joined:
        # asked again, as a client does.)
        def answered(ask):
            return self.wait_for("an answer other than 5.03", lambda: (
                lambda r: r if r[0] != "5.03" else None)(ask()), timeout=15)
        for m in (m2, m1):
            code, out, err = answered(lambda: ah.coap_client_file(
                m.url("artifacts/app.bin"), "put", infile=path))
            self.assertEqual(code, "4.09", "%s\n%s" % (out[-800:], err[-400:]))
            r = answered(lambda: (lambda r: (r.code, r))(m.coap("delete", "artifacts/app.bin")))[1]
            self.assertEqual(r.code, "4.09", r)
            self.assertEqual(r.json()["jobs"], job)
        self.assertEqual(self.download(m1, "app.bin"), v1)
        self.assertEqual(self.download(m2, "app.bin"), v1)
        # The same content is taken; once the job is gone, the deletion is.
        self.upload(m2, "app.bin", v1)
        self.assertEqual(answered(lambda: (lambda r: (r.code, r))(
            m2.coap("delete", "updates/" + job)))[0], "2.02")
        r = answered(lambda: (lambda r: (r.code, r))(m2.coap("delete", "artifacts/app.bin")))[1]
        self.assertEqual(r.code, "2.02", r)
        self.wait_for("m1 no longer serving app.bin",
                      lambda: self.download(m1, "app.bin") == "4.04", timeout=10)


if __name__ == "__main__":
    h.main()
