#!/usr/bin/env python3
"""X.509 over DTLS and credentials in CoAP option 4209 (DESIGN §9), end to
end: a CA, a server certificate and client certificates made with the
`openssl` command line in a temporary directory, a real coapfleet-server
started with --cert/--key/--ca, and coap-client-openssl as the client.

Identity and role: a client certificate from the CA names its identity (the
first DNS SAN, else the CN); the role is that identity's entry in the key
table (`keys add ID --role R`); a name the key table does not know has no
role. Option 4209 carries base64(user:password) (optionally after "Basic ",
as Drogue's examples send it), accepted only over a DTLS session where the
client showed no identity of its own."""
import base64
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CLI_BIN = os.environ.get("COAPFLEET_CLI") or os.path.join(os.path.dirname(h.SERVER_BIN),
                                                          "coapfleet")
AGENT_BIN = os.environ.get("COAPFLEET_AGENT") or os.path.join(os.path.dirname(h.SERVER_BIN),
                                                              "coapfleet-agent")
CREDENTIALS = 4209


def run(*args, cwd=None):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=60, cwd=cwd)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
    return p.stdout


def keys(db, *args):
    return run(h.SERVER_BIN, "--db", db, "keys", *args)


def add_key(db, ident, role):
    lines = keys(db, "add", ident, "--role", role).splitlines()
    assert len(lines) == 1 and len(lines[0]) >= 32, lines
    return lines[0]


class Pki:
    """A test CA in `directory`, made with the openssl command line: EC P-256
    keys, certificates valid for 30 days (or with given dates, through
    `openssl ca`, for an expired one)."""

    def __init__(self, directory, name):
        self.dir = os.path.join(directory, name)
        os.makedirs(os.path.join(self.dir, "db"))
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.pem")
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "30",
            "-subj", "/CN=%s" % name, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        with open(os.path.join(self.dir, "db", "index.txt"), "w"):
            pass
        with open(os.path.join(self.dir, "db", "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(self.dir, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = test\n[test]\ndatabase = db/index.txt\n"
                    "new_certs_dir = db\nserial = db/serial\ndefault_md = sha256\n"
                    "policy = any\ncopy_extensions = copy\nunique_subject = no\n"
                    "[any]\ncommonName = supplied\n")

    def issue(self, filename, subject, san=None, server=False, dates=None, usage=None):
        """Returns (certificate, key) paths. `dates`: (start, end) as
        YYYYMMDDHHMMSSZ for a certificate outside its validity. `usage`: the
        extendedKeyUsage (default serverAuth for `server`, else clientAuth;
        a certificate used in both directions needs "serverAuth,clientAuth")."""
        key = os.path.join(self.dir, filename + ".key")
        csr = os.path.join(self.dir, filename + ".csr")
        cert = os.path.join(self.dir, filename + ".pem")
        ext = os.path.join(self.dir, filename + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyAgreement\n"
                    "extendedKeyUsage=%s\n" % (usage or ("serverAuth" if server else "clientAuth")))
            if san:
                f.write("subjectAltName=%s\n" % san)
        run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
        if dates:
            run("openssl", "ca", "-batch", "-config", "ca.cnf", "-cert", self.cert,
                "-keyfile", self.key, "-in", csr, "-out", cert, "-notext",
                "-startdate", dates[0], "-enddate", dates[1], "-extfile", ext, cwd=self.dir)
        else:
            run("openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                "-CAcreateserial", "-out", cert, "-days", "30", "-sha256", "-extfile", ext)
        os.chmod(key, 0o600)
        return cert, key


def credentials(user, password, basic=True):
    text = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    return ("Basic " + text) if basic else text


class X509Base(h.ServerTestCase):
    # Plain CoAP from loopback stays trusted (the default), so that a plain
    # request carrying option 4209 shows it is refused, not ignored.
    start_server = False

    @classmethod
    def start_processes(cls):
        cls.pki = Pki(cls.tmp, "fleet-ca")
        cls.other = Pki(cls.tmp, "other-ca")
        cls.server_cert = cls.pki.issue("server", "/CN=coapfleet-server",
                                        san="DNS:coapfleet-server,IP:127.0.0.1", server=True)
        cls.certs = {
            "node-1": cls.pki.issue("node-1", "/O=fleet/CN=node-1"),
            # The identity is the DNS SAN when there is one (the CN is not an id).
            "node-2": cls.pki.issue("node-2", "/CN=Second Node", san="DNS:node-2"),
            "node-3": cls.pki.issue("node-3", "/CN=node-3"),
            "alice": cls.pki.issue("alice", "/CN=alice"),
            "stranger": cls.pki.issue("stranger", "/CN=stranger"),
            "expired": cls.pki.issue("expired", "/CN=node-1",
                                     dates=("20200101000000Z", "20200201000000Z")),
            "foreign": cls.other.issue("foreign", "/CN=node-1"),
        }
        cert, key = cls.server_cert
        cls.server = cls.new_server(["--cert", cert, "--key", key, "--ca", cls.pki.cert]
                                    + list(getattr(cls, "more_server_args", [])), start=False)
        db = cls.server.db
        cls.keys = {"alice": add_key(db, "alice", "operator"),
                    "dash": add_key(db, "dash", "reader"),
                    "node-1": add_key(db, "node-1", "node"),
                    "node-2": add_key(db, "node-2", "node"),
                    "node-3": add_key(db, "node-3", "node")}
        cls.server.start()
        h.deadline_poll(lambda: cls.as_cert("alice", "get", "test").code == "2.05", 30,
                        what="coaps:// answers a client certificate")

    @classmethod
    def url(cls, path):
        return "coaps://%s:%d/%s" % (h.HOST, cls.server.dtls_port, path)

    @classmethod
    def as_cert(cls, name, method, path, body=None, **kw):
        """A request with the client certificate `name`, checking the server's
        certificate against the fleet CA."""
        cert, key = cls.certs[name]
        extra = ["-c", cert, "-j", key, "-C", cls.pki.cert] + list(kw.pop("extra", []))
        return h.coap(cls.url(path), method, body=body, extra=extra, **kw)

    @classmethod
    def server_only(cls, method, path, body=None, creds=None, **kw):
        """A request over DTLS where only the server shows a certificate,
        with option 4209 when `creds` is given."""
        extra = ["-C", cls.pki.cert]
        if creds is not None:
            extra += ["-O", "%d,%s" % (CREDENTIALS, creds)]
        return h.coap(cls.url(path), method, body=body, extra=extra + list(kw.pop("extra", [])),
                      **kw)


class X509(X509Base):
    def test_a_node_certificate_speaks_for_its_node_only(self):
        r = self.as_cert("node-1", "post", "nodes", {"node_id": "node-1", "ip_address": "127.0.0.1"})
        self.assertEqual(r.code, "2.01", r)
        r = self.as_cert("node-1", "put", "health", {"node_id": "node-1", "cpu_percent": 5})
        self.assertEqual(r.code, "2.04", r)
        self.as_cert("node-2", "post", "nodes", {"node_id": "node-2", "ip_address": "127.0.0.1"})
        r = self.as_cert("node-1", "put", "health", {"node_id": "node-2", "cpu_percent": 99})
        body = self.assertErrorJson(r, "4.03", "node-1")
        self.assertEqual(body.get("role"), "node", body)
        r = self.as_cert("node-1", "post", "nodes", {"node_id": "node-2", "ip_address": "127.0.0.1"})
        self.assertErrorJson(r, "4.03", "node-1")
        r = self.as_cert("node-1", "post", "updates", {"name": "x", "version": "1",
                                                       "package_type": "script", "script": "id",
                                                       "target_nodes": ["node-1"]})
        self.assertErrorJson(r, "4.03")

    def test_the_identity_is_the_dns_san_when_there_is_one(self):
        r = self.as_cert("node-2", "post", "nodes", {"node_id": "node-2", "ip_address": "127.0.0.1"})
        self.assertEqual(r.code, "2.01", r)
        r = self.as_cert("node-2", "put", "health", {"node_id": "node-2", "cpu_percent": 7})
        self.assertEqual(r.code, "2.04", r)
        r = self.as_cert("node-2", "put", "health", {"node_id": "node-1", "cpu_percent": 7})
        self.assertErrorJson(r, "4.03", "node-2")

    def test_an_operator_certificate_creates_a_job(self):
        self.as_cert("node-1", "post", "nodes", {"node_id": "node-1", "ip_address": "127.0.0.1"})
        r = self.as_cert("alice", "post", "updates", {"name": "fw", "version": "1",
                                                      "package_type": "script", "script": "true",
                                                      "target_nodes": ["node-1"]})
        self.assertEqual(r.code, "2.01", r)
        job = r.json()["job_id"]
        r = self.as_cert("alice", "post", "updates", {"action": "status", "job_id": job})
        self.assertEqual(r.code, "2.05", r)
        self.assertEqual(self.as_cert("alice", "get", "nodes").code, "2.05")

    def test_expired_and_foreign_certificates_get_no_session(self):
        for name in ("expired", "foreign"):
            r = self.as_cert(name, "get", "nodes", wait=3)
            self.assertIsNone(r.code, "%s: %r" % (name, r))
            r = self.as_cert(name, "put", "health", {"node_id": "node-1", "cpu_percent": 1},
                             wait=3)
            self.assertIsNone(r.code, "%s: %r" % (name, r))
        h.deadline_poll(lambda: "DTLS with 127.0.0.1 failed" in self.server.log_text(), 10,
                        what="the server logs the refused handshakes")
        self.assertTrue(self.server.answers_test())
        self.assertEqual(self.as_cert("alice", "get", "test").code, "2.05")

    def test_a_name_the_key_table_does_not_know_gets_no_role(self):
        r = self.as_cert("stranger", "get", "nodes")
        body = self.assertErrorJson(r, "4.03", "stranger")
        self.assertEqual(body.get("role"), "anonymous", body)
        r = self.as_cert("stranger", "post", "nodes",
                         {"node_id": "stranger", "ip_address": "127.0.0.1"})
        self.assertErrorJson(r, "4.03", "stranger")
        self.assertEqual(self.as_cert("stranger", "get", "test").code, "2.05")

    def test_revoking_the_key_table_entry_ends_a_certificate_role(self):
        r = self.as_cert("node-3", "post", "nodes", {"node_id": "node-3", "ip_address": "127.0.0.1"})
        self.assertEqual(r.code, "2.01", r)
        keys(self.server.db, "revoke", "node-3")
        h.deadline_poll(lambda: self.as_cert("node-3", "put", "health",
                                             {"node_id": "node-3", "cpu_percent": 1}).code == "4.03",
                        15, what="node-3's certificate has no role once its entry is revoked")

    def test_pre_shared_keys_work_beside_certificates(self):
        r = h.coap(self.url("nodes"), "get", extra=["-u", "dash", "-k", self.keys["dash"]])
        self.assertEqual(r.code, "2.05", r)
        r = h.coap(self.url("nodes"), "get", extra=["-u", "dash", "-k", "0" * 64], wait=3)
        self.assertIsNone(r.code, r)


class Credentials(X509Base):
    """Option 4209 over a session where only the server has a certificate."""

    def test_operator_credentials_create_a_job(self):
        r = self.server_only("post", "updates", {"name": "fw", "version": "2",
                                                 "package_type": "script", "script": "true",
                                                 "target_nodes": ["all"]},
                             creds=credentials("alice", self.keys["alice"]))
        self.assertEqual(r.code, "2.01", r)
        # The bare form (no "Basic ") works too.
        r = self.server_only("get", "nodes", creds=credentials("alice", self.keys["alice"], False))
        self.assertEqual(r.code, "2.05", r)

    def test_node_credentials_speak_for_their_node_only(self):
        creds = credentials("node-1", self.keys["node-1"])
        r = self.server_only("post", "nodes", {"node_id": "node-1", "ip_address": "127.0.0.1"},
                             creds=creds)
        self.assertEqual(r.code, "2.01", r)
        r = self.server_only("put", "health", {"node_id": "node-1", "cpu_percent": 3}, creds=creds)
        self.assertEqual(r.code, "2.04", r)
        r = self.server_only("put", "health", {"node_id": "node-2", "cpu_percent": 3}, creds=creds)
        self.assertErrorJson(r, "4.03", "node-1")

    def test_wrong_unknown_or_malformed_credentials_get_4_01(self):
        cases = {"wrong password": credentials("alice", "0" * 64),
                 "unknown user": credentials("mallory", self.keys["alice"]),
                 "not base64": "Basic ***",
                 "no colon": "Basic " + base64.b64encode(b"alice").decode(),
                 "empty password": credentials("alice", "")}
        for what, creds in cases.items():
            r = self.server_only("post", "system", {"action": "status"}, creds=creds)
            body = self.assertErrorJson(r, "4.01", "4209")
            self.assertNotIn(self.keys["alice"], json.dumps(body), what)
        # Nothing secret in the log.
        self.assertNotIn(self.keys["alice"], self.server.log_text())
        self.assertNotIn(credentials("alice", "0" * 64, False), self.server.log_text())

    def test_without_credentials_a_server_only_session_has_no_role(self):
        r = self.server_only("post", "nodes", {"node_id": "node-1", "ip_address": "127.0.0.1"})
        self.assertErrorJson(r, "4.01")
        self.assertEqual(self.server_only("get", "test").code, "2.05")

    def test_plain_coap_with_credentials_gets_4_01(self):
        creds = credentials("alice", self.keys["alice"])
        # Loopback is a trusted plain network here: the same request without
        # the option is served, so the refusal is about the option.
        self.assertEqual(self.server.coap("get", "nodes").code, "2.05")
        for method, path, body in (("get", "nodes", None), ("get", "test", None),
                                   ("post", "system", {"action": "status"}),
                                   ("put", "health", {"node_id": "node-1", "cpu_percent": 1})):
            r = self.server.coap(method, path, body, extra=["-O", "%d,%s" % (CREDENTIALS, creds)])
            self.assertErrorJson(r, "4.01", "4209")
        # A wrong password over plain is refused the same way: never checked.
        r = self.server.coap("get", "nodes",
                             extra=["-O", "%d,%s" % (CREDENTIALS, credentials("alice", "x"))])
        self.assertErrorJson(r, "4.01", "4209")

    def test_credentials_on_a_session_with_its_own_identity_get_4_01(self):
        creds = credentials("alice", self.keys["alice"])
        r = self.as_cert("node-1", "get", "nodes", extra=["-O", "%d,%s" % (CREDENTIALS, creds)])
        self.assertErrorJson(r, "4.01", "4209")
        r = h.coap(self.url("nodes"), "get",
                   extra=["-u", "dash", "-k", self.keys["dash"],
                          "-O", "%d,%s" % (CREDENTIALS, creds)])
        self.assertErrorJson(r, "4.01", "4209")


if __name__ == "__main__":
    unittest.main(verbosity=2)
