#!/usr/bin/python3
"""Scripted SMTP peer for the dialogue specs: plays a transcript against one
client connection and records every byte the client sent. Independent of the
client code (Python standard library only).

usage: scripted_server.py TRANSCRIPT PORTFILE RESULTFILE [CONNECTIONS]

Transcript lines (escapes \\r \\n \\t \\0 \\xHH are decoded in S:, R:, C:):
  S: text       send text + CRLF
  R: bytes      send bytes as they are (no CRLF added), in one write
  C: text       read one line; it must equal text (its CRLF is required)
  BODY          read a DATA body up to and including CRLF.CRLF
  BDAT          read one "BDAT n [LAST]" line and its n bytes
  CLOSE         close the connection now
  SLEEP s       pause s seconds
  STALL         stop answering (until the client closes or 60 s pass); it
                still reads, so the client's writes never block
  DEAF s        stop reading and answering for s seconds, so the client's
                writes block once the socket buffers are full; then STALL
  TRICKLE s text  send text + CRLF one byte every s seconds
  BIGLINE n     send a reply line of n bytes ("250 xxxx...") + CRLF
  MANYLINES n   send n continuation lines "250-x" then "250 end"
  ENDLESS text  send text + CRLF over and over until the client closes
                (or 30 s pass): a reply that never ends
  NEXT          accept the next connection (with CONNECTIONS > 1)
The result file gets "ok" or "error: <why>" on its first line; the bytes each
connection received go to RESULTFILE.1, RESULTFILE.2, ... exactly.
"""
import os
import re
import socket
import sys
import time


def unescape(text):
    """UTF-8 bytes of text with the escapes decoded to single bytes."""
    def rep(m):
        s = m.group(0)
        simple = {b"\\r": b"\r", b"\\n": b"\n", b"\\t": b"\t", b"\\0": b"\0",
                  b"\\\\": b"\\"}
        if s in simple:
            return simple[s]
        return bytes([int(s[2:], 16)])
    return re.sub(rb"\\x[0-9a-fA-F]{2}|\\[rnt0\\]", rep, text.encode("utf-8"))


class Mismatch(Exception):
    pass


class Peer:
    def __init__(self, conn):
        self.conn = conn
        self.buf = b""
        self.received = b""
        self.conn.settimeout(30)

    def fill(self):
        data = self.conn.recv(65536)
        if not data:
            raise Mismatch("client closed the connection")
        self.received += data
        self.buf += data

    def read_line(self):
        while b"\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_body(self):
        while b"\r\n.\r\n" not in self.buf and not self.buf.startswith(b".\r\n"):
            self.fill()
        if self.buf.startswith(b".\r\n"):
            self.buf = self.buf[3:]
            return
        _, self.buf = self.buf.split(b"\r\n.\r\n", 1)

    def drain_until_close(self, limit):
        if self.conn.fileno() == -1:
            return  # CLOSE already closed it: nothing more can arrive
        end = time.monotonic() + limit
        self.conn.settimeout(0.2)
        while time.monotonic() < end:
            try:
                data = self.conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            self.received += data


def play(lines, listener, nconn):
    received = []
    error = ""
    conn, _ = listener.accept()
    peer = Peer(conn)
    try:
        for raw in lines:
            if not raw.strip() or raw.startswith("#"):
                continue
            op, _, arg = raw.partition(" ")
            if op == "S:":
                conn.sendall(unescape(arg) + b"\r\n")
            elif op == "R:":
                conn.sendall(unescape(arg))
            elif op == "C:":
                want = unescape(arg) + b"\r\n"
                got = peer.read_line()
                if got != want:
                    raise Mismatch("expected %r, got %r" % (want, got))
            elif op == "BODY":
                peer.read_body()
            elif op == "BDAT":
                line = peer.read_line()
                m = re.match(rb"BDAT (\d+)( LAST)?\r\n$", line)
                if not m:
                    raise Mismatch("expected BDAT, got %r" % line)
                peer.read_exact(int(m.group(1)))
            elif op == "CLOSE":
                conn.close()
            elif op == "SLEEP":
                time.sleep(float(arg))
            elif op == "STALL":
                peer.drain_until_close(60)
            elif op == "DEAF":
                time.sleep(float(arg))
                peer.drain_until_close(60)
            elif op == "TRICKLE":
                delay, _, text = arg.partition(" ")
                for b in unescape(text) + b"\r\n":
                    conn.sendall(bytes([b]))
                    time.sleep(float(delay))
            elif op == "BIGLINE":
                conn.sendall(b"250 " + b"x" * (int(arg) - 4) + b"\r\n")
            elif op == "MANYLINES":
                conn.sendall(b"250-x\r\n" * int(arg) + b"250 end\r\n")
            elif op == "ENDLESS":
                line = unescape(arg) + b"\r\n"
                end = time.monotonic() + 30
                try:
                    while time.monotonic() < end:
                        conn.sendall(line * 64)
                except OSError:
                    pass
            elif op == "NEXT":
                peer.drain_until_close(0.5)
                received.append(peer.received)
                conn.close()
                conn, _ = listener.accept()
                peer = Peer(conn)
            else:
                raise Mismatch("bad transcript line %r" % raw)
        # Whatever the client sends after the script ends is recorded too.
        peer.drain_until_close(2)
    except Mismatch as e:
        error = str(e)
    except OSError as e:
        error = "socket error: %s" % e
    finally:
        received.append(peer.received)
        try:
            conn.close()
        except OSError:
            pass
    return error, received


def main():
    transcript, portfile, resultfile = sys.argv[1:4]
    nconn = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(30)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    # The transcript may be written after the port is known (it can
    # depend on it); wait for it, bounded.
    deadline = time.monotonic() + 10
    while not os.path.exists(transcript) and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(transcript, encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        error, received = play(lines, listener, nconn)
    except socket.timeout:
        error, received = "no client connected", []
    for i, data in enumerate(received, 1):
        with open("%s.%d" % (resultfile, i), "wb") as f:
            f.write(data)
    with open(resultfile + ".tmp", "w") as f:
        f.write("ok\n" if error == "" else "error: %s\n" % error)
    os.rename(resultfile + ".tmp", resultfile)


if __name__ == "__main__":
    main()
