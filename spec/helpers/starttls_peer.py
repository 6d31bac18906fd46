#!/usr/bin/python3
"""A small SMTP peer with real STARTTLS (Python ssl), for the security specs:
what the client sends before and after TLS, and what it holds back. Logs
each command line it receives, prefixed "plain " or "tls ", to LOGFILE.
Standard library only; independent of the client code.

usage: starttls_peer.py MODE CERT KEY LOGFILE PORTFILE

MODE
  normal            STARTTLS offered; after TLS: AUTH PLAIN LOGIN, REQUIRETLS
  auth-before-only  AUTH PLAIN offered before STARTTLS only, none after TLS
Serves connections one after another for at most 60 s.
"""
import os
import socket
import ssl
import sys
import time

mode, cert, key, logpath, portpath = sys.argv[1:6]
log = open(logpath, "a", buffering=1)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
with open(portpath + ".tmp", "w") as f:
    f.write("%d\n" % srv.getsockname()[1])
os.rename(portpath + ".tmp", portpath)


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.tls = False

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")


def ehlo_lines(tls):
    lines = ["mx.example.test"]
    if not tls:
        lines.append("STARTTLS")
        if mode == "auth-before-only":
            lines.append("AUTH PLAIN")
    elif mode == "normal":
        lines += ["AUTH PLAIN LOGIN", "REQUIRETLS"]
    return lines


def serve(c):
    c.send("220 mx.example.test ESMTP")
    while True:
        line = c.line()
        log.write("%s %s\n" % ("tls" if c.tls else "plain", line.decode("latin-1")))
        verb = line.split(b" ", 1)[0].upper()
        if verb == b"EHLO":
            lines = ehlo_lines(c.tls)
            for i, text in enumerate(lines):
                c.send("250%s%s" % ("-" if i < len(lines) - 1 else " ", text))
        elif verb == b"STARTTLS" and not c.tls:
            c.send("220 go ahead")
            c.sock = ctx.wrap_socket(c.sock, server_side=True)
            c.tls = True
        elif verb == b"AUTH":
            c.send("235 2.7.0 ok")
        elif verb == b"DATA":
            c.send("354 go")
            while c.line() != b".":
                pass
            c.send("250 2.0.0 queued as TLS1")
        elif verb == b"QUIT":
            c.send("221 bye")
            return
        else:
            c.send("250 ok")


deadline = time.time() + 60
srv.settimeout(1)
while time.time() < deadline:
    try:
        raw, _ = srv.accept()
    except socket.timeout:
        continue
    raw.settimeout(10)
    try:
        serve(Conn(raw))
    except (EOFError, OSError, ssl.SSLError) as e:
        log.write("end %s\n" % e)
    finally:
        raw.close()
