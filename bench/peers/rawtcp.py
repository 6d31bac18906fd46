"""Reference ceilings for S3 (bench/run.lua drives it).
  rawtcp.py tcp <bytes>            raw loopback TCP: a forked receiver
                                   discards, the parent sends 1 MiB buffers
  rawtcp.py replay <host> <port> <file>
                                   the sink's ceiling: a pre-encoded SMTP
                                   transaction (file already CRLF and
                                   dot-safe) sent with sendfile
Prints "ok 1 <seconds>"."""
import os, socket, sys, time

BUF = 1 << 20


def tcp(total):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        c, _ = ls.accept()
        buf = bytearray(BUF)
        got = 0
        while got < total:
            n = c.recv_into(buf)
            if n == 0:
                break
            got += n
        c.sendall(b"k")
        c.close()
        os._exit(0 if got == total else 1)
    ls.close()
    data = b"x" * BUF
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    left = total
    while left > 0:
        n = min(left, BUF)
        s.sendall(data if n == BUF else data[:n])
        left -= n
    assert s.recv(1) == b"k"
    dt = time.monotonic() - t0
    s.close()
    _, status = os.waitpid(pid, 0)
    assert status == 0
    return dt


def replies(f, n):
    for _ in range(n):
        while True:
            line = f.readline()
            if not line:
                raise SystemExit("connection closed")
            if line[3:4] != b"-":
                break
        if line[:1] not in (b"2", b"3"):
            raise SystemExit("refused: %r" % line)


def replay(host, port, path):
    t0 = time.monotonic()
    s = socket.create_connection((host, port))
    f = s.makefile("rb")
    replies(f, 1)
    s.sendall(b"EHLO bench.example.test\r\n")
    replies(f, 1)
    s.sendall(b"MAIL FROM:<bench@example.test>\r\nRCPT TO:<sink@example.test>\r\nDATA\r\n")
    replies(f, 3)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        off = 0
        while off < size:
            off += os.sendfile(s.fileno(), fh.fileno(), off, size - off)
    s.sendall(b".\r\nQUIT\r\n")
    replies(f, 2)
    s.close()
    return time.monotonic() - t0


if sys.argv[1] == "tcp":
    dt = tcp(int(sys.argv[2]))
else:
    dt = replay(sys.argv[2], int(sys.argv[3]), sys.argv[4])
print("ok 1 %.4f" % dt)
