#!/usr/bin/env python3
"""GET /nodes in pages (?limit=N&after=<node_id>, a `next` cursor) on a fleet
of 2,345 nodes registered by coapfleet-sim, read with the real coap-client
(block-wise) and the CLI, which pages:

- the pages together are the full listing, in node id order, none twice;
- `next` is the last id of a page when more follow, null after the last;
- the filters (status, node_id) page too; bad limits and cursors get 4.00
  naming the parameter;
- `coapfleet nodes --json` gives what GET /nodes gives, read page by page.

The simulated nodes listen on 127.12.x.y:5683 (their own base address)."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SIM_BIN = os.environ.get("COAPFLEET_SIM") or os.path.join(h.REPO, "build", "coapfleet-sim")
CLI_BIN = os.environ.get("COAPFLEET_CLI") or os.path.join(h.REPO, "build", "coapfleet")
FLEET = 2345


class PagesTest(h.ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        p = subprocess.run([SIM_BIN, "load", "--server", "coap://%s:%d" % (h.HOST, cls.server.port),
                            "--nodes", str(FLEET), "--base", "127.12.0.0", "--id-prefix", "pg-",
                            "--duration", "0.2", "--drain", "1"],
                           capture_output=True, text=True, timeout=120,
                           preexec_fn=h._die_with_parent)
        if p.returncode != 0 or "registered %d/%d" % (FLEET, FLEET) not in p.stdout + p.stderr:
            raise AssertionError("the simulator did not register %d nodes:\n%s\n%s"
                                 % (FLEET, p.stdout, p.stderr))
        # Reports are acknowledged before they are committed (telemetry,
        # within the health flush interval), and GET /nodes is read from the
        # database: the tests compare listings once the last reports are in
        # (two reads a second apart that agree).
        def listing():
            r = cls.server.coap("get", "nodes", wait=30)
            return r.body if r.code == "2.05" else None
        before = [listing()]
        def settled():
            time.sleep(1)
            now = listing()
            same = now is not None and now == before[0]
            before[0] = now
            return same
        h.deadline_poll(settled, 60, what="GET /nodes to settle after the simulator's reports")

    def get(self, query=""):
        r = self.server.coap("get", "nodes" + ("?" + query if query else ""), wait=30)
        self.assertEqual(r.code, "2.05", "%r%s" % (r, h._trace(r)))
        return r.json()

    def ids(self, body):
        return [n["node_id"] for n in body["nodes"]]

    def test_pages_together_are_the_listing(self):
        full = self.ids(self.get())
        self.assertEqual(len([i for i in full if i.startswith("pg-")]), FLEET)
        self.assertEqual(full, sorted(full))
        seen, after, pages = [], None, 0
        while True:
            body = self.get("limit=1000" + ("&after=" + after if after else ""))
            page = self.ids(body)
            pages += 1
            self.assertLessEqual(len(page), 1000)
            self.assertIn("next", body)
            seen += page
            if body["next"] is None:
                break
            self.assertEqual(body["next"], page[-1], "next is the last id of its page")
            after = body["next"]
            self.assertLess(pages, 10, "paging does not end")
        self.assertIn(pages, (3,))
        self.assertEqual(seen, full)
        # Each node object of a page is what the full listing has of it.
        first = self.get("limit=3")
        whole = self.get()
        self.assertEqual(first["nodes"], whole["nodes"][:3])
        # A cursor past the end: an empty last page.
        body = self.get("limit=5&after=" + full[-1])
        self.assertEqual((body["nodes"], body["next"]), ([], None))
        # The cursor need not be a registered id: the page starts after it.
        body = self.get("limit=2&after=pg-00010a")
        self.assertEqual(self.ids(body), ["pg-00011", "pg-00012"])
        # after= alone pages with the default limit (1000).
        body = self.get("after=" + full[0])
        self.assertEqual(self.ids(body), full[1:1001])
        self.assertEqual(body["next"], full[1000])

    def test_filters_page_too(self):
        body = self.get("status=online&limit=7")
        self.assertEqual(len(body["nodes"]), 7)
        self.assertTrue(all(n["status"] == "online" for n in body["nodes"]))
        self.assertEqual(body["next"], body["nodes"][-1]["node_id"])
        body = self.get("status=offline&limit=10")
        self.assertEqual((body["nodes"], body["next"]), ([], None))
        body = self.get("node_id=pg-00100&limit=5")
        self.assertEqual(self.ids(body), ["pg-00100"])
        self.assertIsNone(body["next"])
        body = self.get("node_id=pg-00100&limit=5&after=pg-00100")
        self.assertEqual(body["nodes"], [])

    def test_bad_pages_are_refused_naming_the_parameter(self):
        for query, field in (("limit=0", "limit"), ("limit=10001", "limit"),
                             ("limit=ten", "limit"), ("limit=5&limit=6", "limit"),
                             ("after=", "after"), ("after=a%20b", "after"),
                             ("limit=5&page=2", "page")):
            r = self.server.coap("get", "nodes?" + query)
            self.assertEqual(r.code, "4.00", (query, r))
            self.assertEqual(r.content_format, 50, (query, r))
            self.assertEqual(r.json().get("field"), field, (query, r.body))

    def block(self, client, num, query=()):
        opts = h.request_options("nodes", None, query) + [(h.OPT_BLOCK2, h.encode_uint(num << 4 | 6))]
        return client._exchange(1, opts, b"", 10)

    def test_the_whole_listing_is_one_moment_read_block_by_block(self):
        """GET /nodes is read from a snapshot as the blocks are asked for: a
        node registered while it is being read is not in it (it is in the
        next read), every block carries the same ETag, and the blocks after
        the first are answered from the snapshot."""
        with h.RawClient(h.HOST, self.server.port) as c:
            first = self.block(c, 0)
            self.assertEqual(first.code_text, "2.05")
            etag = first.option(4)
            self.assertIsNotNone(etag)
            self.assertTrue(h.decode_uint(first.option(h.OPT_BLOCK2)) & 8, "more blocks follow")
            r = self.server.coap("post", "nodes", {"node_id": "zz-late"})
            self.assertEqual(r.code, "2.01", r)
            body, num = bytearray(first.payload), 1
            while True:
                m = self.block(c, num)
                self.assertEqual(m.code_text, "2.05", (num, m))
                self.assertEqual(m.option(4), etag, "block %d of another version" % num)
                body += m.payload
                if not h.decode_uint(m.option(h.OPT_BLOCK2)) & 8:
                    break
                num += 1
            listed = self.ids(json.loads(bytes(body)))
            self.assertEqual(len([i for i in listed if i.startswith("pg-")]), FLEET)
            self.assertNotIn("zz-late", listed)
            # Past the end: 4.00; the last block again: the same bytes.
            self.assertEqual(self.block(c, num + 5).code_text, "4.00")
        self.assertIn("zz-late", self.ids(self.get()))
        # A later block without a read from block 0 by this endpoint: 4.08, JSON.
        with h.RawClient(h.HOST, self.server.port) as c:
            m = self.block(c, 3)
            self.assertEqual(m.code_text, "4.08", m)
            self.assertIn("block 0", json.loads(m.payload)["error"])
        # The nodes of one status, block-wise as well.
        online = self.get("status=online")
        self.assertEqual(len([n for n in online["nodes"] if n["node_id"].startswith("pg-")]), FLEET)
        self.assertIn("zz-late", self.ids(online))

    def test_cli_reads_the_fleet_page_by_page(self):
        p = subprocess.run([CLI_BIN, "--server", self.server.url(), "--timeout", "30",
                            "nodes", "--json"], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = json.loads(p.stdout)
        self.assertEqual(listed, self.get())
        p = subprocess.run([CLI_BIN, "--server", self.server.url(), "--timeout", "30",
                            "nodes"], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [line for line in p.stdout.splitlines() if line.startswith("pg-")]
        self.assertEqual(len(rows), FLEET, p.stdout[-500:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
