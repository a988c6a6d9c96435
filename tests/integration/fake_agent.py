#!/usr/bin/env python3
"""A minimal CoAP endpoint that plays a worker agent in tests: it answers
POST /updates/available with 2.04 (piggybacked ACK) and records each body.

Usage: fake_agent.py HOST PORT RECORD_FILE [--code 2.04] [--fallback-any-port] [--reuse]
Each notification body is appended to RECORD_FILE as one line of JSON.
Prints "ready HOST PORT" once it listens. The port is bound exclusively (so
two agents never share one address unnoticed) unless --reuse is given; with
--fallback-any-port a taken PORT is replaced by a free one, printed on the
ready line.
"""
import socket
import sys


def parse(datagram):
    if len(datagram) < 4:
        return None
    ver_t_tkl, code, mid_hi, mid_lo = datagram[:4]
    if ver_t_tkl >> 6 != 1:
        return None
    mtype = (ver_t_tkl >> 4) & 3
    tkl = ver_t_tkl & 0xF
    token = datagram[4:4 + tkl]
    pos = 4 + tkl
    number = 0
    path = []
    while pos < len(datagram) and datagram[pos] != 0xFF:
        delta, length = datagram[pos] >> 4, datagram[pos] & 0xF
        pos += 1
        if delta == 13:
            delta = datagram[pos] + 13; pos += 1
        elif delta == 14:
            delta = (datagram[pos] << 8 | datagram[pos + 1]) + 269; pos += 2
        if length == 13:
            length = datagram[pos] + 13; pos += 1
        elif length == 14:
            length = (datagram[pos] << 8 | datagram[pos + 1]) + 269; pos += 2
        number += delta
        if number == 11:
            path.append(datagram[pos:pos + length].decode())
        pos += length
    payload = datagram[pos + 1:] if pos < len(datagram) else b""
    return mtype, code, (mid_hi << 8) | mid_lo, token, "/".join(path), payload


def main():
    host, port, record = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    answer = 0x44  # 2.04
    if "--code" in sys.argv:
        c = sys.argv[sys.argv.index("--code") + 1]
        cls, detail = c.split(".")
        answer = int(cls) << 5 | int(detail)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if "--reuse" in sys.argv:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        if "--fallback-any-port" not in sys.argv:
            raise
        sock.bind((host, 0))
    print("ready %s %d" % sock.getsockname(), flush=True)
    while True:
        data, src = sock.recvfrom(65536)
        msg = parse(data)
        if msg is None:
            continue
        mtype, code, mid, token, path, payload = msg
        if mtype != 0 or code == 0:  # only CON requests
            continue
        reply_code = answer if path == "updates/available" and code == 2 else 0x84
        reply = bytes([0x60 | len(token), reply_code, mid >> 8, mid & 0xFF]) + token
        if reply_code == answer and path == "updates/available":
            # Recorded before the answer leaves: whoever sees the effect of
            # the answer finds the body already written.
            with open(record, "a") as f:
                f.write(payload.decode() + "\n")
        sock.sendto(reply, src)


if __name__ == "__main__":
    main()
