"""Valid CoAP requests of every shape the server and the agent take, and a
mutator for them: the material of the datagram-level fuzzer
(fuzz/datagrams.py) and of the mutated-stream integration test. Pure: no I/O;
everything from the random.Random given."""
import json
import os

import harness as h

OBSERVE, ETAG, ACCEPT, IF_MATCH, REQUEST_TAG, CREDENTIALS = 6, 4, 17, 1, 292, 4209

_BODIES = {
    "nodes": [{"node_id": "fz-1", "hostname": "fz", "ip_address": "127.0.5.1"},
              {"node_id": "fz-2", "hostname": "fz", "ip_address": "127.0.5.2", "port": 5683,
               "system_info": {"arch": "x86_64", "note": "n" * 300}}],
    "health": [{"node_id": "fz-1", "overall_healthy": True, "cpu_percent": 1.5,
                "memory_percent": 2.5, "services_status": {"ssh": True}, "error_messages": []}],
    "updates": [{"name": "fz", "version": "1", "package_type": "pip", "target_nodes": ["fz-1"],
                 "packages": ["a==1"]},
                {"action": "status", "job_id": "00-00-00"},
                {"action": "install", "job_id": "00-00-00"}],
    "system": [{"action": "status"}],
    "keys": [{"action": "list"}],
    "updates/available": [{"job_id": "00-00-00", "node_id": "fz-1"}],
}

_GETS = ["test", "health", "nodes", "updates", "system", "artifacts", "keys", "audit",
         ".well-known/core", "nodes/fz-1/health", "updates/00-00-00/status",
         "updates/00-00-00/spec", "artifacts/fz.bin", "no/such/path"]


def _opts(rng, path, cf=None, query=()):
    opts = h.request_options(path, cf, query)
    if rng.random() < 0.15:
        opts.append((OBSERVE, h.encode_uint(rng.choice([0, 1, 2, 0xFFFFFF]))))
    if rng.random() < 0.1:
        opts.append((ETAG, os.urandom(rng.randint(0, 8))))
    if rng.random() < 0.05:
        opts.append((REQUEST_TAG, os.urandom(rng.randint(0, 8))))
    if rng.random() < 0.05:
        opts.append((CREDENTIALS, os.urandom(rng.randint(0, 40))))
    if rng.random() < 0.05:
        opts.append((ACCEPT, h.encode_uint(rng.choice([0, 42, 50, 60]))))
    return opts


def requests(rng):
    """A list of valid datagrams: GETs (plain, Observe, Block2), bodies in one
    datagram, and block-wise sequences (in order, as a client sends them)."""
    out = []
    mid = rng.randint(0, 0xFFFF)

    def msg(code, opts, payload=b"", mtype=None):
        nonlocal mid
        mid = (mid + 1) & 0xFFFF
        return h.encode_message(h.CON if mtype is None else mtype, code, mid,
                                os.urandom(rng.randint(0, 8)), opts, payload)

    for path in _GETS:
        out.append(msg(1, _opts(rng, path)))
        out.append(msg(1, _opts(rng, path) + [(OBSERVE, b"")]))
        for num in (0, 1, 5):
            out.append(msg(1, _opts(rng, path) + [(h.OPT_BLOCK2, h.encode_uint(num << 4 | rng.randint(0, 7)))]))
        out.append(msg(1, _opts(rng, path, query=("status=online", "limit=3", "node_id=fz-1"))))
    for path, bodies in _BODIES.items():
        method = 3 if path == "health" else 2
        for b in bodies:
            body = json.dumps(b).encode()
            out.append(msg(method, _opts(rng, path, 50), body, mtype=rng.choice([h.CON, h.NON])))
            szx = rng.choice([0, 2, 4, 6])
            size = 16 << szx
            parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
            for i, part in enumerate(parts):
                more = i < len(parts) - 1
                extra = [(h.OPT_BLOCK1, h.encode_uint(i << 4 | (8 if more else 0) | szx))]
                if i == 0 and rng.random() < 0.5:
                    extra.append((h.OPT_SIZE1, h.encode_uint(len(body))))
                out.append(msg(method, _opts(rng, path, 50) + extra, part))
    blob = os.urandom(rng.randint(100, 3000))
    for szx in (2, 6, 7):
        size = 16 << min(szx, 6)
        parts = [blob[i:i + size] for i in range(0, len(blob), size)]
        for i, part in enumerate(parts):
            more = i < len(parts) - 1
            out.append(msg(3, _opts(rng, "artifacts/fz.bin", 42)
                           + [(h.OPT_BLOCK1, h.encode_uint(i << 4 | (8 if more else 0) | szx))],
                           part))
    out.append(h.encode_message(h.CON, 0, mid, b""))        # ping
    out.append(h.encode_message(h.RST, 0, mid ^ 1, b""))    # a reset
    out.append(h.encode_message(h.ACK, 0, mid ^ 2, b""))    # an acknowledgement
    return out


def mutate(rng, d):
    """Flipped bits, cut, stretched and spliced datagrams, option bytes that
    announce extended lengths; sometimes the datagram as it was."""
    d = bytearray(d)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.35 and d:
            i = rng.randrange(len(d))
            d[i] ^= 1 << rng.randrange(8)
        elif op < 0.5 and len(d) > 4:
            del d[rng.randrange(4, len(d)):]
        elif op < 0.65:
            i = rng.randrange(len(d) + 1)
            d[i:i] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 8)))
        elif op < 0.8 and len(d) > 5:
            i = rng.randrange(4, len(d))
            d[i] = rng.choice([0x0d, 0x0e, 0x0f, 0xff, 0xd1, 0xe1, 0xdd, 0xee, 0x00])
        elif op < 0.9 and len(d) > 4:
            i = rng.randrange(4, len(d))
            d[i:i] = d[i:i + rng.randint(1, 16)] * rng.randint(1, 8)  # repeated options
        # else: unchanged
    return bytes(d)
