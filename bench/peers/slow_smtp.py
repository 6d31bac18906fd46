#!/usr/bin/python3
"""A slow SMTP sink for the event-loop bench (S9): every reply comes 20 ms
(--delay) after the command that asks for it; commands that arrive
together (pipelined) are answered together after one delay. Any number of
sessions at once (asyncio, standard library only). Counts messages.

usage: slow_smtp.py PORTFILE [--delay SECONDS] [--max-seconds N]
Writes the bound port to PORTFILE; exits after --max-seconds (default 900).
"""
import asyncio
import sys


async def session(reader, writer, delay, stats):
    async def reply(lines):
        await asyncio.sleep(delay)
        writer.write(b"".join(lines))
        await writer.drain()

    await reply([b"220 slow.example ESMTP\r\n"])
    in_data = False
    try:
        while True:
            pending = []
            line = await reader.readline()
            if not line:
                return
            while True:
                if in_data:
                    if line == b".\r\n":
                        in_data = False
                        stats["messages"] += 1
                        pending.append(b"250 2.0.0 ok\r\n")
                else:
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"LHLO"):
                        pending.append(b"250-slow.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                    elif verb == b"DATA":
                        in_data = True
                        pending.append(b"354 go\r\n")
                    elif verb == b"QUIT":
                        await reply(pending + [b"221 bye\r\n"])
                        return
                    else:
                        pending.append(b"250 ok\r\n")
                # Take what is already buffered (pipelined) without waiting.
                if b"\n" not in reader._buffer:  # noqa: SLF001 (stdlib internals, read only)
                    break
                line = await reader.readline()
            if pending:
                await reply(pending)
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def main():
    portfile = sys.argv[1]
    delay, max_seconds = 0.02, 900.0
    args = sys.argv[2:]
    while args:
        flag, value = args[0], float(args[1])
        args = args[2:]
        if flag == "--delay":
            delay = value
        elif flag == "--max-seconds":
            max_seconds = value
    stats = {"messages": 0}
    server = await asyncio.start_server(
        lambda r, w: session(r, w, delay, stats), "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    with open(portfile + ".tmp", "w") as f:
        f.write(str(port))
    import os
    os.rename(portfile + ".tmp", portfile)
    async with server:
        await asyncio.sleep(max_seconds)


asyncio.run(main())
