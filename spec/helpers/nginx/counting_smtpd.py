#!/usr/bin/python3
"""spec/helpers/aiosmtpd_server.py that also counts the connections it
accepts into OUTDIR/connections (the keepalive pool proof of
nginx_spec.lua). Same arguments as aiosmtpd_server.py."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import aiosmtpd_server as base  # noqa: E402

OUTDIR = sys.argv[1]


class CountingSMTP(base.SMTP):
    accepted = 0

    def connection_made(self, transport):
        CountingSMTP.accepted += 1
        base.write_atomic(os.path.join(OUTDIR, "connections"),
                          b"%d" % CountingSMTP.accepted)
        super().connection_made(transport)


base.SMTP = CountingSMTP
base.main()
