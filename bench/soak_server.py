#!/usr/bin/python3
"""Loopback SMTP server for bench/soak.lua that fails in rotating ways.

usage: soak_server.py PORTFILE CERT KEY MAX_SECONDS

Connection n (counted from 0 in accept order) gets MODES[n % len(MODES)].
The soak client is sequential, so it knows which mode each of its
connections meets and checks the error it got. Standard library only;
exits by itself after MAX_SECONDS so that it cannot outlive the soak.
"""
import asyncio
import os
import ssl
import sys

MODES = ["accept_close", "greet_421", "garbage_greeting", "mail_5xx", "rcpt_4xx",
         "stall_mail", "data_close", "good", "tls_garbage", "tls_good"]
# Bounds every read: a client that goes quiet costs a handler, not the server.
READ_LIMIT = 10

counter = 0


async def read_line(reader):
    line = await asyncio.wait_for(reader.readline(), READ_LIMIT)
    if not line:
        raise ConnectionError("client closed")
    return line


async def wait_close(reader):
    """Reads until the client closes (it gives up on its own deadline)."""
    while await asyncio.wait_for(reader.read(65536), READ_LIMIT):
        pass


async def read_body(reader, partial):
    """Reads a DATA body up to its CRLF.CRLF, or only its first bytes."""
    # Starts as if after a line end: an empty body is just ".\r\n".
    seen = b"\r\n"
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), READ_LIMIT)
        if not chunk:
            raise ConnectionError("client closed in the body")
        if partial:
            return
        seen = (seen + chunk)[-5:]
        if seen.endswith(b"\r\n.\r\n"):
            return


async def session(mode, reader, writer, tls_ctx):
    if mode == "accept_close":
        return
    if mode == "greet_421":
        writer.write(b"421 4.3.2 soak: not now\r\n")
        return
    if mode == "garbage_greeting":
        writer.write(b"\x00\xff\xfe soak garbage\r\n")
        await writer.drain()
        await wait_close(reader)
        return
    writer.write(b"220 soak ESMTP\r\n")
    offer_tls = mode in ("tls_garbage", "tls_good")
    while True:
        line = await read_line(reader)
        verb = line[:4].upper()
        if verb == b"EHLO":
            ext = b"250-STARTTLS\r\n" if offer_tls else b""
            writer.write(b"250-soak\r\n" + ext + b"250 PIPELINING\r\n")
        elif verb == b"STAR":
            writer.write(b"220 2.0.0 go ahead\r\n")
            await writer.drain()
            if mode == "tls_garbage":
                # Content type 0 is no TLS record: the client fails at once.
                writer.write(b"\x00\x03\x03\x00\x10 this is no TLS record\r\n")
                await writer.drain()
                await wait_close(reader)
                return
            await writer.start_tls(tls_ctx)
            offer_tls = False
        elif verb == b"MAIL":
            if mode == "mail_5xx":
                writer.write(b"550 5.7.1 soak: sender refused\r\n")
            elif mode == "stall_mail":
                await wait_close(reader)
                return
            else:
                writer.write(b"250 2.1.0 ok\r\n")
        elif verb == b"RCPT":
            if mode == "rcpt_4xx":
                writer.write(b"451 4.3.0 soak: try later\r\n")
            else:
                writer.write(b"250 2.1.5 ok\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go\r\n")
            await writer.drain()
            await read_body(reader, mode == "data_close")
            if mode == "data_close":
                return
            writer.write(b"250 2.0.0 queued as SOAK\r\n")
        elif verb == b"RSET":
            writer.write(b"250 2.0.0 ok\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 2.0.0 bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"500 5.5.1 soak: unknown command\r\n")
        await writer.drain()


async def handle(reader, writer, tls_ctx):
    global counter
    mode = MODES[counter % len(MODES)]
    counter += 1
    try:
        await session(mode, reader, writer, tls_ctx)
        await writer.drain()
    except (ConnectionError, asyncio.TimeoutError, ssl.SSLError, OSError):
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError, OSError):
            pass


async def main():
    portfile, cert, key, max_seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    tls_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(lambda r, w: handle(r, w, tls_ctx), "127.0.0.1", 0, backlog=64)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    async with server:
        try:
            await asyncio.wait_for(server.serve_forever(), max_seconds)
        except asyncio.TimeoutError:
            pass


if __name__ == "__main__":
    asyncio.run(main())
