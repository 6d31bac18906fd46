#!/usr/bin/python3
"""An SMTP server for the TLS session resumption and SCRAM-PLUS specs
(issue 16), built from parts independent of the client: OpenSSL (through
pyOpenSSL) for TLS and a SCRAM server (RFC 5802, RFC 7677) written here
with hashlib/hmac, channel binding per RFC 5929 (tls-unique) and RFC 9266
(tls-exporter), the binding data computed from the server's own side of
the TLS connection.

usage: tls_cb_peer.py --cert C --key K --log LOG --port-file P [options]

  --tls starttls|implicit|none   how TLS starts (none: plaintext only)
  --max-version 1.2|1.3          highest TLS version offered (default 1.3)
  --mechs "A B ..."              AUTH mechanisms advertised (after TLS;
                                 with --tls none, in plaintext)
  --user U --password P          the one account (default u / p)
  --no-tickets                   no TLS 1.2 session tickets (session IDs
                                 only; TLS 1.3 then uses stateful tickets)
  --corrupt-cb                   compute channel binding data wrongly (one
                                 bit flipped): every -PLUS exchange fails
  --time-limit S                 exit after S seconds (at most 90)
  --no-ems                       TLS 1.2 without extended master secret
                                 (RFC 7627; OpenSSL's
                                 SSL_OP_NO_EXTENDED_MASTER_SECRET)
  --hide-plus                    leave the -PLUS mechanisms out of the EHLO
                                 (as a man in the middle who strips them)
                                 while still accepting them and rejecting
                                 gs2 flag y as a downgrade (RFC 5802 6)
  --tickets-first-only           TLS 1.3: tickets after the first connection's
                                 handshake only, none after later ones (as
                                 Postfix after a resumption)
  --port N                       listen on N (default: a free port); a
                                 restarted peer on the same port has
                                 neither the old session cache nor the
                                 old ticket keys

Serves connections concurrently, one thread each. Writes its port to
PORTFILE atomically. Appends one line per event to LOG, fields key=value:
  conn n=N
  tls n=N version=TLSv1.3 reused=0|1 sni=NAME ems=0|1
  auth n=N mech=M gs2=n|y|p=TYPE cb=TYPE|none result=ok|fail reason=WORD
  cmd n=N VERB          (every command line's verb, AUTH data excluded)
  end n=N reason=...
"""
import argparse
import base64
import ctypes
import hashlib
import hmac
import os
import signal
import socket
import sys
import threading
import time

from OpenSSL import SSL

p = argparse.ArgumentParser()
p.add_argument("--cert", required=True)
p.add_argument("--key", required=True)
p.add_argument("--log", required=True)
p.add_argument("--port-file", required=True)
p.add_argument("--tls", choices=("starttls", "implicit", "none"), default="starttls")
p.add_argument("--max-version", choices=("1.2", "1.3"), default="1.3")
p.add_argument("--mechs", default="SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS SCRAM-SHA-256 SCRAM-SHA-1")
p.add_argument("--user", default="u")
p.add_argument("--password", default="p")
p.add_argument("--no-tickets", action="store_true")
p.add_argument("--corrupt-cb", action="store_true")
p.add_argument("--time-limit", type=float, default=60)
p.add_argument("--port", type=int, default=0)
p.add_argument("--tickets-first-only", action="store_true")
p.add_argument("--no-ems", action="store_true")
p.add_argument("--hide-plus", action="store_true")
args = p.parse_args()

limit = min(max(args.time_limit, 1), 90)
# Exit whatever the threads are doing: a hard bound on the process's life.
signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
signal.alarm(int(limit) + 5)

MECHS = args.mechs.split()
ADVERTISES_PLUS = any(m.endswith("-PLUS") for m in MECHS)
HASHES = {"SCRAM-SHA-1": hashlib.sha1, "SCRAM-SHA-256": hashlib.sha256}

log_lock = threading.Lock()
logf = open(args.log, "a", buffering=1)


def log(line):
    with log_lock:
        logf.write(line + "\n")


ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
ctx.use_certificate_chain_file(args.cert)
ctx.use_privatekey_file(args.key)
ctx.check_privatekey()
ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
ctx.set_max_proto_version(SSL.TLS1_3_VERSION if args.max_version == "1.3" else SSL.TLS1_2_VERSION)
# Server-side session cache (session IDs) and, unless --no-tickets,
# stateless tickets; OpenSSL sends TLS 1.3 tickets after each handshake.
ctx.set_session_id(b"lua-smtp-tls-cb-peer")
ctx.set_session_cache_mode(SSL.SESS_CACHE_SERVER)
if args.no_tickets:
    ctx.set_options(SSL.OP_NO_TICKET)
# pyOpenSSL 23 does not name it; OpenSSL 3.0's ssl.h: SSL_OP_BIT(0).
OP_NO_EXTENDED_MASTER_SECRET = 0x1
if args.no_ems:
    ctx.set_options(OP_NO_EXTENDED_MASTER_SECRET)


# SSL_set_num_tickets is not bound by pyOpenSSL; cryptography links the
# system libssl, so ctypes reaches the same library.
libssl = ctypes.CDLL("libssl.so.3")
# SSL_get_extms_support is a macro over SSL_ctrl (OpenSSL 3.0 ssl.h).
SSL_CTRL_GET_EXTMS_SUPPORT = 122
libssl.SSL_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
libssl.SSL_ctrl.restype = ctypes.c_long
set_num_tickets = None
if args.tickets_first_only:
    set_num_tickets = libssl.SSL_set_num_tickets
    set_num_tickets.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def reused(conn):
    return SSL._lib.SSL_session_reused(conn._ssl) == 1


def ems(conn):
    """Whether this TLS 1.2 connection's master secret is extended."""
    return libssl.SSL_ctrl(int(SSL._ffi.cast("uintptr_t", conn._ssl)),
                           SSL_CTRL_GET_EXTMS_SUPPORT, 0, None) == 1


def cb_data(conn, cbtype):
    """Channel binding data from this (the server's) side, or None."""
    version = conn.get_protocol_version_name()
    if cbtype == "tls-exporter":
        data = conn.export_keying_material(b"EXPORTER-Channel-Binding", 32)
    elif cbtype == "tls-unique":
        if version == "TLSv1.3":
            return None   # RFC 9266: tls-unique is undefined for TLS 1.3
        # RFC 5929 3.1: the first Finished of the latest handshake -- the
        # client's in a full handshake, the server's in an abbreviated one.
        data = conn.get_finished() if reused(conn) else conn.get_peer_finished()
    else:
        return None
    if data is None:
        return None
    if args.corrupt_cb:
        data = bytes([data[0] ^ 1]) + data[1:]
    return data


class Closed(Exception):
    pass


class Stream:
    def __init__(self, sock):
        self.raw = sock
        self.tls = None
        self.buf = b""

    def _recv(self):
        try:
            data = (self.tls or self.raw).recv(65536)
        except (SSL.ZeroReturnError, SSL.SysCallError):
            data = b""
        if not data:
            raise Closed("eof")
        return data

    def line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > 100000:
                raise Closed("line too long")
            self.buf += self._recv()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("latin-1")

    def send(self, text):
        (self.tls or self.raw).sendall(text.encode("latin-1") + b"\r\n")

    def start_tls(self, n):
        conn = SSL.Connection(ctx, self.raw)
        if set_num_tickets is not None and n > 1:
            assert set_num_tickets(int(SSL._ffi.cast("uintptr_t", conn._ssl)), 0) == 1
        conn.set_accept_state()
        conn.do_handshake()
        self.tls = conn
        self.buf = b""
        log("tls n=%d version=%s reused=%d sni=%s ems=%d" % (
            n, conn.get_protocol_version_name(), 1 if reused(conn) else 0,
            (conn.get_servername() or b"-").decode("latin-1"), 1 if ems(conn) else 0))


def parse_attrs(s):
    out = {}
    for kv in s.split(","):
        if len(kv) < 2 or kv[1] != "=":
            raise ValueError("bad attribute " + kv)
        out.setdefault(kv[0], kv[2:])
    return out


def b64d(s):
    return base64.b64decode(s.encode(), validate=True)


def b64e(b):
    return base64.b64encode(b).decode()


def scram(s, n, mech, initial):
    """One SCRAM exchange; returns (ok, gs2 flag, cb type, reason)."""
    plus = mech.endswith("-PLUS")
    hname = mech[:-5] if plus else mech
    H = HASHES[hname]

    if initial is None:
        s.send("334 ")
        initial = s.line()
    first = b64d(initial).decode("utf-8")
    # gs2-header: cbflag "," [authzid] ","
    flag, authz, bare = first.split(",", 2)
    gs2 = flag + "," + authz + ","
    cbtype = flag[2:] if flag.startswith("p=") else None
    attrs = parse_attrs(bare)
    user, cnonce = attrs.get("n"), attrs.get("r")
    if user is None or not cnonce:
        return False, flag, cbtype, "bad-client-first"

    # Channel binding negotiation, RFC 5802 section 6.
    if plus:
        if cbtype not in ("tls-unique", "tls-exporter"):
            return False, flag, cbtype, "plus-without-p"
        if s.tls is None:
            return False, flag, cbtype, "plus-without-tls"
    else:
        if flag.startswith("p="):
            return False, flag, cbtype, "p-with-non-plus"
        if flag == "y" and ADVERTISES_PLUS and s.tls is not None:
            return False, flag, cbtype, "downgrade"
        if flag not in ("n", "y"):
            return False, flag, cbtype, "bad-gs2-flag"

    salt = os.urandom(16)
    iters = 4096
    snonce = b64e(os.urandom(18))
    server_first = "r=%s%s,s=%s,i=%d" % (cnonce, snonce, b64e(salt), iters)
    s.send("334 " + b64e(server_first.encode()))
    reply = s.line()
    if reply == "*":
        s.send("501 5.7.0 authentication cancelled")
        return False, flag, cbtype, "cancelled"
    final = b64d(reply).decode("utf-8")
    without_proof, proof = final.rsplit(",p=", 1)
    fattrs = parse_attrs(without_proof)
    if fattrs.get("r") != cnonce + snonce:
        return False, flag, cbtype, "nonce"
    expected_c = gs2.encode()
    if cbtype is not None:
        data = cb_data(s.tls, cbtype) if s.tls is not None else None
        if data is None:
            return False, flag, cbtype, "cb-unavailable"
        expected_c += data
    if fattrs.get("c") is None or b64d(fattrs["c"]) != expected_c:
        return False, flag, cbtype, "cb-mismatch"
    if user != args.user:
        return False, flag, cbtype, "unknown-user"

    salted = hashlib.pbkdf2_hmac(hname[5:].replace("-", "").lower(),
                                 args.password.encode(), salt, iters)
    auth_message = ",".join([bare, server_first, without_proof]).encode()
    client_key = hmac.new(salted, b"Client Key", H).digest()
    signature = hmac.new(H(client_key).digest(), auth_message, H).digest()
    want = bytes(a ^ b for a, b in zip(client_key, signature))
    if not hmac.compare_digest(b64d(proof), want):
        return False, flag, cbtype, "bad-proof"
    server_key = hmac.new(salted, b"Server Key", H).digest()
    v = b64e(hmac.new(server_key, auth_message, H).digest())
    s.send("334 " + b64e(("v=" + v).encode()))
    last = s.line()
    if last == "*":
        s.send("501 5.7.0 authentication cancelled")
        return False, flag, cbtype, "client-rejected-v"
    return True, flag, cbtype, "-"


def ehlo_lines(s):
    lines = ["cbpeer.example.test", "PIPELINING", "8BITMIME"]
    if args.tls == "starttls" and s.tls is None:
        lines.append("STARTTLS")
    shown = [m for m in MECHS if not (args.hide_plus and m.endswith("-PLUS"))]
    if (s.tls is not None or args.tls == "none") and shown:
        lines.append("AUTH " + " ".join(shown))
    return lines


def serve(s, n):
    if args.tls == "implicit":
        s.start_tls(n)
    s.send("220 cbpeer.example.test ESMTP")
    authed = False
    while True:
        line = s.line()
        verb = line.split(" ", 1)[0].upper()
        log("cmd n=%d %s" % (n, verb))
        if verb in ("EHLO", "HELO"):
            lines = ehlo_lines(s)
            for i, text in enumerate(lines):
                s.send("250%s%s" % ("-" if i < len(lines) - 1 else " ", text))
        elif verb == "STARTTLS":
            if args.tls != "starttls" or s.tls is not None:
                s.send("503 5.5.1 TLS not available now")
                continue
            s.send("220 2.0.0 go ahead")
            s.start_tls(n)
        elif verb == "AUTH":
            parts = line.split(" ")
            mech = parts[1].upper() if len(parts) > 1 else ""
            if authed:
                s.send("503 5.5.1 already authenticated")
                continue
            if mech not in MECHS or mech.replace("-PLUS", "") not in HASHES:
                s.send("504 5.5.4 mechanism not available")
                log("auth n=%d mech=%s gs2=- cb=none result=fail reason=not-offered" % (n, mech))
                continue
            initial = parts[2] if len(parts) > 2 else None
            if initial == "=":
                initial = ""
            try:
                ok, flag, cbtype, reason = scram(s, n, mech, initial)
            except (ValueError, UnicodeDecodeError, base64.binascii.Error):
                ok, flag, cbtype, reason = False, "-", None, "malformed"
            log("auth n=%d mech=%s gs2=%s cb=%s result=%s reason=%s" % (
                n, mech, flag, cbtype or "none", "ok" if ok else "fail", reason))
            if ok:
                authed = True
                s.send("235 2.7.0 authentication successful")
            elif reason != "cancelled" and reason != "client-rejected-v":
                s.send("535 5.7.8 authentication credentials invalid")
        elif verb == "MAIL":
            s.send("250 2.1.0 ok")
        elif verb == "RCPT":
            s.send("250 2.1.5 ok")
        elif verb == "DATA":
            s.send("354 end with <CRLF>.<CRLF>")
            while s.line() != ".":
                pass
            s.send("250 2.0.0 queued as CB%d" % n)
        elif verb in ("RSET", "NOOP"):
            s.send("250 2.0.0 ok")
        elif verb == "QUIT":
            s.send("221 2.0.0 bye")
            if s.tls is not None:
                try:
                    s.tls.shutdown()
                except SSL.Error:
                    pass
            return "quit"
        else:
            s.send("502 5.5.2 command not recognized")


def handle(raw, n):
    # Blocking socket (pyOpenSSL needs one) with kernel receive/send
    # timeouts so that a silent client cannot hold a thread for ever.
    raw.setblocking(True)
    tv = (20).to_bytes(8, sys.byteorder) + (0).to_bytes(8, sys.byteorder)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    log("conn n=%d" % n)
    try:
        reason = serve(Stream(raw), n)
    except Closed as e:
        reason = str(e)
    except SSL.Error as e:
        reason = "tls-error:" + repr(e).replace(" ", "_")[:200]
    except OSError as e:
        reason = "os-error:" + repr(e).replace(" ", "_")[:200]
    log("end n=%d reason=%s" % (n, reason))
    try:
        raw.close()
    except OSError:
        pass


srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", args.port))
srv.listen(16)
with open(args.port_file + ".tmp", "w") as f:
    f.write("%d\n" % srv.getsockname()[1])
os.rename(args.port_file + ".tmp", args.port_file)

deadline = time.time() + limit
srv.settimeout(0.5)
count = 0
while time.time() < deadline:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        continue
    count += 1
    threading.Thread(target=handle, args=(c, count), daemon=True).start()
os._exit(0)
