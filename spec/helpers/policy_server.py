#!/usr/bin/python3
"""Postfix policy service (SMTPD_POLICY_README: name=value lines, an empty
line ends a request; the answer is "action=...", then an empty line) for
the pool interop spec. Python standard library only.

usage: policy_server.py MODE PORTFILE COUNTFILE [N]

  greylist  the first request for each (client address, sender, recipient)
            answers "action=450 4.7.1 greylisted", later ones DUNNO
  busy      the first N requests answer "action=421 4.7.0 busy" (access(5):
            421 makes smtpd reply and disconnect), later ones DUNNO

Listens on 127.0.0.1 (a free port, written to PORTFILE). After each
answer, COUNTFILE holds "<requests> <refusals>". Exits after 10 minutes
at most.
"""
import os
import socketserver
import sys
import threading

MODE = sys.argv[1]
PORTFILE, COUNTFILE = sys.argv[2], sys.argv[3]
LIMIT = int(sys.argv[4]) if len(sys.argv) > 4 else 0
LIFETIME = 600

lock = threading.Lock()
seen = set()
counts = {"requests": 0, "refusals": 0}


def decide(attrs):
    """The action for one request; updates the counters."""
    with lock:
        counts["requests"] += 1
        action = "DUNNO"
        if MODE == "greylist":
            triple = (attrs.get("client_address"), attrs.get("sender"),
                      attrs.get("recipient"))
            if triple not in seen:
                seen.add(triple)
                action = "450 4.7.1 greylisted"
        elif MODE == "busy" and counts["requests"] <= LIMIT:
            action = "421 4.7.0 busy"
        if action != "DUNNO":
            counts["refusals"] += 1
        tmp = COUNTFILE + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %d\n" % (counts["requests"], counts["refusals"]))
        os.replace(tmp, COUNTFILE)
    return action


class Handler(socketserver.StreamRequestHandler):
    """One smtpd connection: any number of requests in turn."""

    def handle(self):
        attrs = {}
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                name, _, value = line.partition("=")
                attrs[name] = value
                continue
            self.wfile.write(("action=%s\n\n" % decide(attrs)).encode())
            self.wfile.flush()
            attrs = {}


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    if MODE not in ("greylist", "busy"):
        sys.exit("unknown mode %r" % MODE)
    server = Server(("127.0.0.1", 0), Handler)
    tmp = PORTFILE + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, PORTFILE)
    # Bounded life even if the spec that started it dies.
    threading.Timer(LIFETIME, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
