#!/usr/bin/python3
"""A stub DNS server for the name-resolution specs (standard library only).
Answers A queries for the names given with --answer NAME=IPV4 at once, and
holds the answer to --slow NAME for --delay seconds (default 5); every
other query gets NXDOMAIN; AAAA queries get an empty answer (NOERROR). It
only ever listens on 127.0.0.1 (run it inside a network namespace to be
the resolver there). Exits after --max-seconds (default 60).

--log-queries prints "QUERY <name>" for each query (non-ASCII bytes as U+FFFD).

usage: dns_stub.py --port 53 [--answer NAME=IP ...] [--slow NAME] [--delay S] [--log-queries]
"""
import argparse
import socket
import struct
import threading
import time


def parse_question(data):
    qid, flags, qd = struct.unpack(">HHH", data[:6])
    pos, labels = 12, []
    while data[pos] != 0:
        n = data[pos]
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += n + 1
    qtype, qclass = struct.unpack(">HH", data[pos + 1:pos + 5])
    return qid, flags, ".".join(labels).lower(), qtype, data[12:pos + 5]


def answer(data, table):
    qid, flags, name, qtype, question = parse_question(data)
    rd = flags & 0x0100
    if name in table and qtype == 1:
        rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(table[name])
        head = struct.pack(">HHHHHH", qid, 0x8400 | rd | 0x0080, 1, 1, 0, 0)
        return head + question + rr
    rcode = 0 if name in table else 3
    head = struct.pack(">HHHHHH", qid, 0x8400 | rd | 0x0080 | rcode, 1, 0, 0, 0)
    return head + question


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--answer", action="append", default=[])
    ap.add_argument("--slow", action="append", default=[])
    ap.add_argument("--delay", type=float, default=5.0)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--log-queries", action="store_true")
    args = ap.parse_args()
    table = dict(a.split("=", 1) for a in args.answer)
    slow = set(n.lower() for n in args.slow)
    for n in slow:
        table.setdefault(n, "127.0.0.1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.port))
    sock.settimeout(0.5)
    stop_at = time.monotonic() + args.max_seconds
    print("ready", flush=True)

    def reply_later(data, addr):
        time.sleep(args.delay)
        try:
            sock.sendto(answer(data, table), addr)
        except OSError:
            pass

    while time.monotonic() < stop_at:
        try:
            data, addr = sock.recvfrom(4096)
        except socket.timeout:
            continue
        try:
            name = parse_question(data)[2]
        except (IndexError, struct.error):
            continue
        if args.log_queries:
            print("QUERY " + name, flush=True)
        if name in slow:
            threading.Thread(target=reply_later, args=(data, addr), daemon=True).start()
        else:
            sock.sendto(answer(data, table), addr)


main()
