"""Shared helpers of the coapfleet-server integration tests.

Python 3 standard library only. Everything here talks to loopback addresses
(127.0.0.0/8) only.

- Server: one coapfleet-server process in a temporary directory (its own
  port, database and log file), started, waited for, stopped, killed.
- coap(): runs libcoap's real coap-client and returns (code, body) plus the
  content format of the answer.
- RawClient / register_stream(): a small CoAP-over-UDP client (RFC 7252) for
  exact codes, bulk registrations and malformed datagrams.
- FakeAgent: runs fake_agent.py, which plays a worker's POST /updates/available.
- ServerTestCase: a unittest base class that starts one server per class (or
  one per test, with fresh_per_test) and prints the server's log tail when a
  test fails.
- deadline_poll() waits, with a deadline, for something to happen;
  stays_true() checks, for a bounded time, that something does not.
"""
import ctypes
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HOST = "127.0.0.1"


def _find_server():
    env = os.environ.get("COAPFLEET_SERVER_BIN")
    if env:
        return env
    for build in ("build-it", "build"):
        candidate = os.path.join(REPO, build, "coapfleet-server")
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("set COAPFLEET_SERVER_BIN to the coapfleet-server executable")


def _find_coap_client():
    for name in ("coap-client-notls", "coap-client-openssl", "coap-client-gnutls",
                 "coap-client"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("no coap-client found (install libcoap3-bin)")


SERVER_BIN = _find_server()
COAP_CLIENT = _find_coap_client()
# DTLS (coaps://) needs libcoap's OpenSSL build of coap-client (libcoap3-bin).
COAP_CLIENT_DTLS = shutil.which("coap-client-openssl")


def deadline_poll(fn, timeout, interval=0.1, what="condition"):
    """Calls fn() until it returns a truthy value or `timeout` seconds pass.
    Returns that value; raises AssertionError with the last value otherwise."""
    end = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1f s waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


def stays_true(fn, duration, interval=0.1, what="condition"):
    """For checks that something does NOT happen: calls fn() every `interval`
    seconds for `duration` seconds and raises AssertionError at the first falsy
    value (so a violation fails at once, and the check never waits longer than
    `duration`). Returns the last value."""
    end = time.monotonic() + duration
    while True:
        last = fn()
        if not last:
            raise AssertionError("%s stopped holding after %.1f s (value: %r)"
                                 % (what, duration - max(0.0, end - time.monotonic()), last))
        if time.monotonic() >= end:
            return last
        time.sleep(interval)


def _die_with_parent():
    """preexec_fn: the child gets SIGTERM when the test process dies (so a
    killed test run leaves no servers or agents behind)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# -- ports and addresses ----------------------------------------------------------------

def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


# Ports this process has handed out: the kernel may offer a port again as
# soon as the probing socket is closed, before its new holder has bound it.
_handed_out = set()


def free_port(host=HOST, kind=socket.SOCK_DGRAM):
    """A port on `host` (UDP, or TCP with kind=SOCK_STREAM) that nothing is
    bound to right now and that this process has not handed out before,
    outside the kernel's ephemeral range. libcoap binds with SO_REUSEADDR,
    and Linux may give a client socket (a coap-client's, with SO_REUSEADDR
    too) an ephemeral port that such a server already holds: the client
    would then send its request to itself and answer it 4.04. A listening
    TCP port in that range could likewise be taken by an outgoing
    connection first."""
    low, high = _ephemeral_range()
    ranges = [(max(1024, low - 20000), low - 1)] if low > 2048 else []
    ranges.append((high + 1, 65535)) if high < 65000 else None
    for _ in range(200):
        first, last = random.choice(ranges) if ranges else (0, 0)
        port = random.randint(first, last) if ranges else 0
        if (kind, port) in _handed_out:
            continue
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((host, port))
            port = s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
        if (kind, port) in _handed_out:
            continue
        _handed_out.add((kind, port))
        return port
    raise RuntimeError("no free %s port on %s outside the ephemeral range"
                       % ("TCP" if kind == socket.SOCK_STREAM else "UDP", host))


def udp_port_free(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def silent_address():
    """(ip, port) on loopback where nothing listens: datagrams sent there get
    ICMP port unreachable."""
    ip = "127.1.%d.%d" % (random.randint(200, 250), random.randint(2, 250))
    return ip, free_port(ip)


# -- CoAP messages (RFC 7252) -----------------------------------------------------------

CON, NON, ACK, RST = 0, 1, 2, 3
METHODS = {"get": 1, "post": 2, "put": 3, "delete": 4, "fetch": 5, "patch": 6, "ipatch": 7}
OPT_URI_PATH, OPT_CONTENT_FORMAT, OPT_MAX_AGE, OPT_URI_QUERY = 11, 12, 14, 15
OPT_BLOCK2, OPT_BLOCK1, OPT_SIZE2, OPT_SIZE1 = 23, 27, 28, 60


def code_text(code):
    return "%d.%02d" % (code >> 5, code & 0x1F)


def encode_uint(value):
    if value == 0:
        return b""
    out = b""
    while value:
        out = bytes([value & 0xFF]) + out
        value >>= 8
    return out


def decode_uint(data):
    v = 0
    for b in data:
        v = v << 8 | b
    return v


def _ext(value):
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes([value - 13])
    return 14, struct.pack("!H", value - 269)


def encode_message(mtype, code, mid, token=b"", options=(), payload=b""):
    out = bytearray([0x40 | mtype << 4 | len(token), code, mid >> 8 & 0xFF, mid & 0xFF])
    out += token
    last = 0
    for number, value in sorted(options, key=lambda o: o[0]):
        delta, dext = _ext(number - last)
        length, lext = _ext(len(value))
        out.append(delta << 4 | length)
        out += dext + lext + value
        last = number
    if payload:
        out += b"\xff" + payload
    return bytes(out)


class Message:
    def __init__(self, mtype, code, mid, token, options, payload):
        self.type, self.code, self.mid, self.token = mtype, code, mid, token
        self.options, self.payload = options, payload

    @property
    def code_text(self):
        return code_text(self.code)

    def option(self, number):
        for n, v in self.options:
            if n == number:
                return v
        return None

    def has_option(self, number):
        return any(n == number for n, _ in self.options)

    def __repr__(self):
        return "Message(type=%d code=%s mid=%d token=%s options=%r payload=%r)" % (
            self.type, self.code_text, self.mid, self.token.hex(), self.options,
            self.payload[:80])


def decode_message(data):
    if len(data) < 4 or data[0] >> 6 != 1:
        return None
    mtype, tkl = data[0] >> 4 & 3, data[0] & 0xF
    if tkl > 8 or len(data) < 4 + tkl:
        return None
    code, mid = data[1], data[2] << 8 | data[3]
    token = data[4:4 + tkl]
    pos, number, options = 4 + tkl, 0, []
    while pos < len(data) and data[pos] != 0xFF:
        delta, length = data[pos] >> 4, data[pos] & 0xF
        pos += 1
        if delta == 13:
            delta = data[pos] + 13; pos += 1
        elif delta == 14:
            delta = (data[pos] << 8 | data[pos + 1]) + 269; pos += 2
        if length == 13:
            length = data[pos] + 13; pos += 1
        elif length == 14:
            length = (data[pos] << 8 | data[pos + 1]) + 269; pos += 2
        number += delta
        options.append((number, data[pos:pos + length]))
        pos += length
    payload = data[pos + 1:] if pos < len(data) else b""
    return Message(mtype, code, mid, token, options, payload)


def request_options(path, content_format=None, query=()):
    opts = [(OPT_URI_PATH, seg.encode()) for seg in path.strip("/").split("/") if seg]
    if content_format is not None:
        opts.append((OPT_CONTENT_FORMAT, encode_uint(content_format)))
    opts += [(OPT_URI_QUERY, q.encode()) for q in query]
    return opts


class Response:
    def __init__(self, code, payload, options):
        self.code, self.payload, self.options = code, payload, options

    @property
    def text(self):
        return self.payload.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.payload.decode("utf-8"))

    @property
    def content_format(self):
        for n, v in self.options:
            if n == OPT_CONTENT_FORMAT:
                return decode_uint(v)
        return None

    def option_value(self, number):
        for n, v in self.options:
            if n == number:
                return v
        return None

    def __repr__(self):
        return "Response(%s, %r)" % (self.code, self.payload[:300])


class RawClient:
    """A sequential CoAP client over one connected UDP socket: CON requests with
    retransmission, piggybacked or separate responses (the separate CON
    response is acknowledged), Block2 followed."""

    def __init__(self, host, port, local=(HOST, 0)):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(local)
        self.sock.connect((host, port))
        self.mid = random.randint(0, 0xFFFF)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def next_mid(self):
        self.mid = (self.mid + 1) & 0xFFFF
        return self.mid

    def send_raw(self, datagram):
        self.sock.send(datagram)

    def recv_raw(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        return self.sock.recv(70000)

    def _exchange(self, code, options, payload, timeout):
        token = os.urandom(4)
        mid = self.next_mid()
        datagram = encode_message(CON, code, mid, token, options, payload)
        end = time.monotonic() + timeout
        acked = False
        wait = 1.0
        next_send = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= end:
                raise TimeoutError("no CoAP response within %.1f s" % timeout)
            if not acked and now >= next_send:
                self.sock.send(datagram)
                next_send = now + wait
                wait *= 2
            r, _, _ = select.select([self.sock], [], [],
                                    max(0.0, min(end, next_send if not acked else end) - now))
            if not r:
                continue
            try:
                data = self.sock.recv(70000)
            except ConnectionRefusedError:
                raise ConnectionRefusedError("server port unreachable")
            msg = decode_message(data)
            if msg is None:
                continue
            if msg.type == ACK and msg.mid == mid:
                if msg.code == 0:
                    acked = True  # empty ACK: the answer comes separately
                    continue
                return msg
            if msg.type in (CON, NON) and msg.code >= 64:
                if msg.type == CON:
                    self.sock.send(encode_message(ACK, 0, msg.mid))
                if msg.token == token:
                    return msg
            if msg.type == RST and msg.mid == mid:
                raise ConnectionResetError("server answered RST")

    def request(self, method, path, payload=b"", content_format=50, query=(), timeout=15.0,
                extra_options=()):
        if isinstance(payload, str):
            payload = payload.encode()
        elif isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
        if not payload:
            content_format = None
        options = request_options(path, content_format, query) + list(extra_options)
        msg = self._exchange(METHODS[method.lower()], options, payload, timeout)
        body = bytearray(msg.payload)
        block = msg.option(OPT_BLOCK2)
        while block is not None and decode_uint(block) & 0x8:
            b = decode_uint(block)
            num, szx = (b >> 4) + 1, b & 0x7
            opts = request_options(path, None, query) + [(OPT_BLOCK2, encode_uint(num << 4 | szx))]
            msg = self._exchange(METHODS[method.lower()], opts, b"", timeout)
            if msg.code >> 5 != 2:
                break
            body += msg.payload
            block = msg.option(OPT_BLOCK2)
        return Response(msg.code_text, bytes(body), msg.options)


def raw_request(port, method, path, payload=b"", **kw):
    with RawClient(HOST, port) as c:
        return c.request(method, path, payload, **kw)


def register_stream(port, bodies, window=20, stop=None, acked=None, failures=None,
                    timeout=30.0):
    """Sends POST /nodes registrations (each body a dict with node_id) from one
    socket, `window` in flight. Appends to `acked` the node_id of each
    registration answered 2.01 (after the client ACKed the separate response),
    to `failures` (node_id, code or reason) the others. Stops when everything is
    answered, when `stop` (a threading.Event) is set, or when the server is gone.
    Returns (acked, failures)."""
    acked = [] if acked is None else acked
    failures = [] if failures is None else failures
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.connect((HOST, port))
    sock.setblocking(False)
    mid = random.randint(0, 0xFFFF)
    inflight = {}  # token -> [node_id, datagram, mid, sent_at, tries, empty_acked]
    by_mid = {}
    it = iter(bodies)
    exhausted = False
    last_progress = time.monotonic()
    try:
        while True:
            if stop is not None and stop.is_set():
                break
            while not exhausted and len(inflight) < window:
                try:
                    body = next(it)
                except StopIteration:
                    exhausted = True
                    break
                mid = (mid + 1) & 0xFFFF
                token = struct.pack("!I", mid) + os.urandom(2)
                datagram = encode_message(CON, 2, mid, token,
                                          request_options("nodes", 50),
                                          json.dumps(body).encode())
                inflight[token] = [body["node_id"], datagram, mid, time.monotonic(), 0, False]
                by_mid[mid] = token
                try:
                    sock.send(datagram)
                except ConnectionRefusedError:
                    return acked, failures
            if exhausted and not inflight:
                break
            r, _, _ = select.select([sock], [], [], 0.1)
            now = time.monotonic()
            if r:
                while True:
                    try:
                        data = sock.recv(70000)
                    except BlockingIOError:
                        break
                    except ConnectionRefusedError:
                        return acked, failures
                    msg = decode_message(data)
                    if msg is None:
                        continue
                    if msg.type == ACK:
                        token = by_mid.pop(msg.mid, None)
                        if token is None or token not in inflight:
                            continue
                        if msg.code == 0:
                            inflight[token][5] = True
                            continue
                        entry = inflight.pop(token)
                    elif msg.type in (CON, NON) and msg.code >= 64:
                        if msg.type == CON:
                            sock.send(encode_message(ACK, 0, msg.mid))
                        entry = inflight.pop(msg.token, None)
                        if entry is None:
                            continue  # a retransmitted separate response
                        by_mid.pop(entry[2], None)
                    else:
                        continue
                    last_progress = now
                    if msg.code_text == "2.01":
                        acked.append(entry[0])
                    else:
                        failures.append((entry[0], msg.code_text + " " + msg.payload.decode(
                            "utf-8", "replace")))
            for token, entry in list(inflight.items()):
                if entry[5]:
                    continue
                if now - entry[3] > 2.0 * (2 ** entry[4]):
                    if entry[4] >= 4:
                        failures.append((entry[0], "no answer"))
                        inflight.pop(token)
                        continue
                    entry[4] += 1
                    entry[3] = now
                    try:
                        sock.send(entry[1])
                    except ConnectionRefusedError:
                        return acked, failures
            if now - last_progress > timeout:
                for token, entry in inflight.items():
                    failures.append((entry[0], "stalled"))
                break
    finally:
        sock.close()
    return acked, failures


# -- coap-client ------------------------------------------------------------------------

_PDU_LINE = re.compile(r"^v:1 t:(CON|NON|ACK|RST) c:(\d\.\d\d) i:[0-9a-f]+ \{[0-9a-f]*\} "
                       r"\[(.*?)\]")
_CF_NAMES = [("application/link-format", 40), ("application/json", 50),
             ("text/plain", 0), ("application/cbor", 60), ("application/octet-stream", 42)]


class CoapResult:
    def __init__(self, code, body, content_format, stdout, stderr, returncode):
        self.code, self.body, self.content_format = code, body, content_format
        self.stdout, self.stderr, self.returncode = stdout, stderr, returncode

    def json(self):
        return json.loads(self.body)

    def __iter__(self):  # code, body = coap(...)
        return iter((self.code, self.body))

    def __repr__(self):
        return "CoapResult(code=%r, body=%r)" % (self.code, self.body[:400])


def coap(port_or_url, method, path="", body=None, content_format=None, wait=10, extra=(),
         pipe=True, host=HOST, client=None):
    """Runs coap-client: `-m method`, body piped with `-f -` (unless pipe is
    False, then the body is piped without -f - as the seed does). Returns a
    CoapResult: code ("2.05", "4.00", ... or None on no answer), body (the
    2.xx payload written with -o, or the payload of the error line on stderr),
    content_format of the last response."""
    if isinstance(port_or_url, int):
        url = "coap://%s:%d/%s" % (host, port_or_url, path.lstrip("/"))
    else:
        url = port_or_url
    fd, out = tempfile.mkstemp(prefix="coap-client-out-")
    os.close(fd)
    os.unlink(out)
    if client is None:
        client = COAP_CLIENT_DTLS if url.startswith("coaps://") else COAP_CLIENT
    if client is None:
        raise RuntimeError("coaps:// needs coap-client-openssl (install libcoap3-bin)")
    args = [client, "-m", method, "-B", str(wait), "-v", "6", "-o", out]
    if content_format is not None:
        args += ["-t", str(content_format)]
    args += list(extra)
    stdin = None
    if body is not None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        stdin = body.encode() if isinstance(body, str) else body
        if pipe:
            args += ["-f", "-"]
    args.append(url)
    try:
        p = subprocess.run(args, input=stdin if stdin is not None else b"",
                           capture_output=True, timeout=wait + 30)
        stdout = p.stdout.decode("utf-8", "replace")
        stderr = p.stderr.decode("utf-8", "replace")
        code, cf = None, None
        for line in stdout.splitlines():
            m = _PDU_LINE.match(line)
            if m and m.group(2) != "0.00" and not m.group(2).startswith("0."):
                code = m.group(2)
                cf = None
                for name, number in _CF_NAMES:
                    if "Content-Format:" + name in m.group(3):
                        cf = number
                        break
        if code is not None and code.startswith("2."):
            try:
                with open(out, "rb") as f:
                    payload = f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                payload = ""
        else:
            payload = ""
            if code is not None:
                for line in stderr.splitlines():
                    if line.startswith(code):
                        payload = line[len(code):].strip()
                        break
        return CoapResult(code, payload, cf, stdout, stderr, p.returncode)
    finally:
        if os.path.exists(out):
            os.unlink(out)


def _trace(result):
    """coap-client's own account of an exchange, for failure messages."""
    if isinstance(result, CoapResult):
        return "\n-- coap-client stdout:\n%s\n-- stderr:\n%s" % (result.stdout[-1500:],
                                                              result.stderr[-500:])
    return ""


def error_names(body_json, name):
    """True when an error body names `name` (its field or its text)."""
    return body_json.get("field") == name or name in json.dumps(body_json)


# -- the store ---------------------------------------------------------------------------

# When COAPFLEET_TEST_PG names a PostgreSQL database (tests/with_pg.sh), the
# servers' stores are there, each in a schema of its own, instead of SQLite
# files.
TEST_PG = os.environ.get("COAPFLEET_TEST_PG", "")
_pg_schemas = 0


def psql(uri, sql):
    """Runs SQL with psql; its output, unaligned and without headers."""
    p = subprocess.run(["psql", uri, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("psql %r failed: %s" % (sql, p.stderr))
    return p.stdout.strip()


def fresh_store(workdir, name):
    """A new, empty store: a SQLite file in workdir, or a PostgreSQL schema."""
    global _pg_schemas
    if not TEST_PG:
        return os.path.join(workdir, name + ".db")
    _pg_schemas += 1
    schema = "it%d_%d" % (os.getpid(), _pg_schemas)
    psql(TEST_PG, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s" % (schema, schema))
    return TEST_PG + ("&" if "?" in TEST_PG else "?") + "options=-csearch_path%3D" + schema


# -- the server process -----------------------------------------------------------------

class Server:
    def __init__(self, workdir, extra=(), port=None, db=None, name="server"):
        self.workdir = workdir
        self.extra = list(extra)
        self.port = port or free_port()
        # coaps:// beside coap:// (a free port: tests run side by side).
        self.dtls_port = free_port()
        while self.dtls_port == self.port:  # two picks may meet
            self.dtls_port = free_port()
        self.db = db or fresh_store(workdir, name)
        self.log_path = os.path.join(workdir, name + ".log")
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def url(self, path=""):
        return "coap://%s:%d/%s" % (HOST, self.port, path.lstrip("/"))

    def command(self):
        dtls = [] if "--dtls-port" in self.extra else ["--dtls-port", str(self.dtls_port)]
        return [SERVER_BIN, "--bind", HOST, "--port", str(self.port), "--db", self.db,
                "--log-level", "debug"] + dtls + self.extra

    def start(self, wait=True, timeout=30):
        log = open(self.log_path, "ab")
        log.write(("\n=== start %s\n" % " ".join(self.command())).encode())
        log.flush()
        # A stop that needs the server's own bound prints every thread's
        # stack into the log (where the stop waited).
        env = dict(os.environ, COAPFLEET_STOP_STACKS="1")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir, env=env,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def answers_test(self, timeout=1.5):
        try:
            with RawClient(HOST, self.port) as c:
                r = c.request("get", "test", timeout=timeout)
                return r.code == "2.05" and r.text == "Test resource working"
        except (TimeoutError, ConnectionError, OSError):
            return False

    def wait_ready(self, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("server exited with %s before answering GET /test\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            if self.answers_test():
                return
            time.sleep(0.1)
        raise AssertionError("server did not answer GET /test within %d s\n%s"
                             % (timeout, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=40):
        """SIGTERM, then wait; SIGKILL on timeout (longer than the server's
        own bound on its stop, whose log line names what did not end).
        Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                return "killed after SIGTERM timeout"
        return self.proc.returncode

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=60):
        text = self.log_text().splitlines()
        return "---- %s (last %d lines) ----\n%s\n----" % (
            self.log_path, min(lines, len(text)), "\n".join(text[-lines:]))

    # Convenience wrappers.
    def coap(self, method, path="", body=None, **kw):
        return coap(self.port, method, path, body, **kw)

    def raw(self, method, path, payload=b"", **kw):
        return raw_request(self.port, method, path, payload, **kw)


# -- fake agents ------------------------------------------------------------------------

class FakeAgent:
    """tests/integration/fake_agent.py on (ip, port): answers POST
    /updates/available and records the bodies. With port 5683 taken it falls
    back to a free port (see .port)."""

    def __init__(self, workdir, ip, port=5683, code=None):
        self.ip = ip
        self.record = os.path.join(workdir, "agent-%s.jsonl" % ip)
        args = [sys.executable, os.path.join(HERE, "fake_agent.py"), ip, str(port), self.record,
                "--fallback-any-port"]
        if code:
            args += ["--code", code]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True,
                                     preexec_fn=_die_with_parent)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError("fake agent on %s did not start: %r %s" % (ip, line, err))
        self.port = int(line[2]) if len(line) > 2 else port

    def bodies(self):
        try:
            with open(self.record) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


# -- unittest base ----------------------------------------------------------------------

class ServerTestCase(unittest.TestCase):
    """Starts one server per class (cls.server) in a temporary directory; prints
    the log tail of every server of the class when a test fails; keeps the
    directory when something failed (or COAPFLEET_IT_KEEP=1).

    With fresh_per_test = True every test gets its own processes instead, in a
    directory of its own (started in setUp, stopped after the test), so that
    no test depends on what another one did: each runs alone and in any order."""

    server_args = ()
    start_server = True
    fresh_per_test = False

    @classmethod
    def setUpClass(cls):
        cls.class_tmp = cls.tmp = tempfile.mkdtemp(prefix="coapfleet-it-%s-" % cls.__name__)
        cls.servers = []
        cls.agents = []
        cls.failed = False
        # A class cleanup runs even when setUpClass fails half-way.
        cls.addClassCleanup(cls._cleanup)
        if not cls.fresh_per_test:
            cls.start_processes()

    @classmethod
    def start_processes(cls):
        """The processes every test of the class starts from: the server."""
        if cls.start_server:
            cls.server = cls.new_server(list(cls.server_args))

    def setUp(self):
        if self.fresh_per_test:
            cls = type(self)
            cls.tmp = os.path.join(cls.class_tmp, self._testMethodName)
            os.makedirs(cls.tmp)
            cls.servers = []
            cls.agents = []
            # Runs after tearDown, and also when start_processes fails half-way.
            self.addCleanup(cls.stop_processes)
            cls.start_processes()

    @classmethod
    def new_server(cls, extra=(), start=True, name=None, **kw):
        s = Server(cls.tmp, extra, name=name or "server%d" % len(cls.servers), **kw)
        cls.servers.append(s)
        if start:
            try:
                s.start()
            except Exception:
                cls.failed = True
                raise
        return s

    @classmethod
    def new_agent(cls, ip, port=5683, **kw):
        a = FakeAgent(cls.tmp, ip, port, **kw)
        cls.agents.append(a)
        return a

    @classmethod
    def stop_processes(cls):
        for a in cls.agents:
            a.stop()
        wrong = []
        for s in cls.servers:
            rc = s.stop()
            if rc not in (0, None):
                # Stopping with SIGTERM must end cleanly: a crash before (a
                # signal, -11) or a stop that hung fails the test.
                cls.failed = True
                wrong.append("server %s ended with %r" % (s.log_path, rc))
                sys.stderr.write("server %s ended with %r\n%s\n" % (s.log_path, rc, s.log_tail()))
            elif rc == 0 and "actors still running" in s.log_text():
                # The stop's watch ended it: the log names what did not end.
                cls.failed = True
                sys.stderr.write("server %s needed the stop's watch\n%s\n"
                                 % (s.log_path, s.log_tail()))
        if wrong:
            raise AssertionError("; ".join(wrong))

    @classmethod
    def _cleanup(cls):
        try:
            cls.stop_processes()
        finally:
            if cls.failed or os.environ.get("COAPFLEET_IT_KEEP"):
                sys.stderr.write("kept %s\n" % cls.class_tmp)
            else:
                shutil.rmtree(cls.class_tmp, ignore_errors=True)

    def run(self, result=None):
        before = (len(result.failures) + len(result.errors)) if result else 0
        outcome = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            type(self).failed = True
            for s in type(self).servers:
                sys.stderr.write("\n%s failed; server log:\n%s\n" % (self.id(), s.log_tail()))
        return outcome

    # Assertions shared by the tests.
    def assertErrorJson(self, result, code, names=None):
        """`result` has `code` and a JSON body with "error" (naming `names`)."""
        self.assertEqual(result.code, code, "answer: %r%s" % (result, _trace(result)))
        body = result.json()
        self.assertIsInstance(body, dict, result)
        self.assertIn("error", body, result)
        self.assertIsInstance(body["error"], str)
        if names:
            self.assertTrue(error_names(body, names),
                            "error %r does not name %r" % (body, names))
        return body


def main():
    unittest.main(verbosity=2)
