#!/usr/bin/python3
"""A hostile SCRAM-SHA-256 SMTP server for one connection: it checks the
client's proof correctly (RFC 5802) but then sends a server signature of
its choosing, to prove the client verifies it. Standard library only.

usage: scram_server.py PORTFILE LOGFILE USER PASSWORD MODE
MODE: "wrong-signature" (v= of another key), "good" (correct v=),
      "early-235" (235 right after the client's final message, no v=).
Everything the client sent is appended to LOGFILE.
"""
import base64
import hashlib
import hmac
import os
import socket
import sys


def h(data):
    return hashlib.sha256(data).digest()


def hm(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def main():
    portfile, logfile, user, password, mode = sys.argv[1:6]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(30)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    conn, _ = ls.accept()
    conn.settimeout(30)
    f = conn.makefile("rwb", buffering=0)
    log = open(logfile, "ab", buffering=0)

    def send(line):
        f.write(line.encode() + b"\r\n")

    def recv():
        line = f.readline()
        log.write(line)
        return line.rstrip(b"\r\n").decode()

    send("220 scram.test ESMTP")
    recv()  # EHLO
    send("250-scram.test")
    send("250 AUTH SCRAM-SHA-256")
    auth = recv().split(" ")
    client_first = base64.b64decode(auth[2]).decode()
    bare = client_first.split(",", 2)[2]
    cnonce = dict(kv.split("=", 1) for kv in bare.split(","))["r"]
    salt, iters = b"lua-smtp-salt", 4096
    server_first = "r=%sSRV,s=%s,i=%d" % (cnonce, base64.b64encode(salt).decode(), iters)
    send("334 " + base64.b64encode(server_first.encode()).decode())
    client_final = base64.b64decode(recv()).decode()
    without_proof, proof = client_final.rsplit(",p=", 1)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
    auth_message = ",".join([bare, server_first, without_proof]).encode()
    client_key = hm(salted, b"Client Key")
    signature = hm(h(client_key), auth_message)
    expected = bytes(a ^ b for a, b in zip(client_key, signature))
    if base64.b64decode(proof) != expected:
        send("535 5.7.8 bad proof")
    elif mode == "early-235":
        send("235 2.7.0 ok")
    else:
        server_key = hm(salted if mode == "good" else b"not the key", b"Server Key")
        v = base64.b64encode(hm(server_key, auth_message)).decode()
        send("334 " + base64.b64encode(("v=" + v).encode()).decode())
        reply = recv()
        if reply == "*":
            send("501 5.7.0 authentication cancelled")
        else:
            send("235 2.7.0 ok")
    try:
        while True:
            line = f.readline()
            if not line:
                break
            log.write(line)
            if line.startswith(b"QUIT"):
                send("221 bye")
                break
            send("250 ok")
    except OSError:
        pass
    conn.close()


if __name__ == "__main__":
    main()
