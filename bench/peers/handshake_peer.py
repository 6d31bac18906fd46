"""Handshake benchmark peer (issue 26), Python's ssl (OpenSSL): count fresh
connections, each connect + implicit TLS + greeting + EHLO + QUIT, one
after another, with the chain and name checked against ca_file.
    handshake_peer.py <host> <port> <count> <ca_file> <name>
Prints "ok <count> <seconds> resumed=0 tls=<version> cipher=<cipher>
cpu=<this process's CPU seconds>"."""
import socket
import ssl
import sys
import time

host, port, count, ca, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)


def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("connection closed")
        if line[3:4] != b"-":
            return line


last = ""
t0, c0 = time.monotonic(), time.process_time()
for _ in range(count):
    with socket.create_connection((host, port)) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            f = s.makefile("rb")
            reply(f)
            s.sendall(b"EHLO bench.example\r\n")
            reply(f)
            s.sendall(b"QUIT\r\n")
            reply(f)
            last = "tls=%s cipher=%s" % (s.version(), s.cipher()[0])
            f.close()
print("ok %d %.4f resumed=0 %s cpu=%.4f" % (count, time.monotonic() - t0, last, time.process_time() - c0))
