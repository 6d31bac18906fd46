"""aiosmtpd (RFC 5321 server) on loopback for the test suite.

Started by spec/helpers/servers.lua with /usr/bin/python3 (Debian
python3-aiosmtpd 1.4.3). Every accepted message is stored byte for byte as
the server received it after dot-unstuffing (envelope.original_content: line
ends untouched) in OUTDIR/N.eml, with N.meta (envelope, TLS, AUTH) written
before the N.done marker that tells the Lua side the message is complete.
When listening, writes "port PID" atomically to OUTDIR/ready.

usage: aiosmtpd_server.py OUTDIR [--port N] [--cert F --key F]
       [--require-tls] [--implicit-tls] [--auth-file F] [--auth-require-tls]
       [--pipelining] [--watch-pid PID]
"""
import argparse
import asyncio
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("outdir")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--auth-file")
    p.add_argument("--auth-require-tls", action="store_true")
    p.add_argument("--pipelining", action="store_true")
    p.add_argument("--watch-pid", type=int)
    return p.parse_args()


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class Store:
    """Writes each message to OUTDIR; N counts from 1 in arrival order."""

    def __init__(self, outdir, pipelining):
        self.outdir = outdir
        self.count = 0
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            # aiosmtpd processes pipelined commands in order but does not
            # advertise the extension (RFC 2920); insert it before the last
            # line so the "250 " final line stays last.
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        n = self.count
        base = os.path.join(self.outdir, str(n))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        lines = ["mail_from " + (envelope.mail_from or "")]
        lines += ["rcpt_to " + r for r in envelope.rcpt_tos]
        lines += ["mail_option " + o for o in envelope.mail_options]
        lines += ["rcpt_option " + o for o in envelope.rcpt_options]
        if session.peer:
            # The client's address and port: tells connections apart.
            lines.append("peer %s %s" % (session.peer[0], session.peer[1]))
        cipher = server.transport.get_extra_info("cipher")
        if cipher:
            lines.append("tls %s %s" % (cipher[1], cipher[0]))
        if session.authenticated:
            login = getattr(session.auth_data, "login", b"")
            lines.append("auth " + login.decode("utf-8", "replace"))
        meta = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
        write_atomic(base + ".meta", meta)
        write_atomic(base + ".done", b"")
        return "250 OK queued as %d" % n


def load_users(path):
    users = {}
    if path:
        with open(path, "rb") as f:
            for line in f.read().split(b"\n"):
                if b"\t" in line:
                    u, pw = line.split(b"\t", 1)
                    users[u] = pw
    return users


def main():
    args = parse_args()
    ctx = None
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
    users = load_users(args.auth_file)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and users.get(auth_data.login) == auth_data.password)
        # handled=False makes aiosmtpd answer a refusal with 535 itself;
        # its default (True) would leave the client waiting for a reply.
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    store = Store(args.outdir, args.pipelining)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        kw = dict(enable_SMTPUTF8=True, hostname="aiosmtpd.example.test",
                  loop=loop)
        if ctx is not None and not args.implicit_tls:
            kw["tls_context"] = ctx
            kw["require_starttls"] = args.require_tls
        if args.auth_file:
            kw["authenticator"] = authenticator
            kw["auth_require_tls"] = args.auth_require_tls
        return SMTP(store, **kw)

    server = loop.run_until_complete(loop.create_server(
        factory, host=args.host, port=args.port, reuse_address=True,
        ssl=ctx if args.implicit_tls else None))
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)

    async def watch():
        # Exit when the Lua process that started us is gone, so a crashed
        # test run leaves no server behind.
        while True:
            await asyncio.sleep(1)
            if not os.path.exists("/proc/%d" % args.watch_pid):
                stop.set()
                return

    if args.watch_pid:
        loop.create_task(watch())
    write_atomic(os.path.join(args.outdir, "ready"),
                 ("%d %d\n" % (port, os.getpid())).encode())
    loop.run_until_complete(stop.wait())
    server.close()
    loop.run_until_complete(server.wait_closed())
    return 0


if __name__ == "__main__":
    sys.exit(main())
