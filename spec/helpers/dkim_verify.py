#!/usr/bin/python3
"""Verifies the DKIM signatures of a message with dkimpy, the DNS lookup
replaced by the test's public key (for spec/unit/dkim_spec.lua and the
Postfix interop specs). Prints one line: "pass" or "fail: <reason>";
exits 0 on pass, 1 on fail.

usage: dkim_verify.py MESSAGE_FILE SELECTOR._domainkey.DOMAIN PUBLIC_KEY_B64
"""
import logging
import sys

import dkim


def main():
    path, name, pub = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(path, "rb") as f:
        msg = f.read()
    record = ("v=DKIM1; k=rsa; p=" + pub).encode()

    def dnsfunc(qname, timeout=5):
        q = qname.decode() if isinstance(qname, bytes) else qname
        return record if q.rstrip(".").lower() == name.lower() else None

    log = logging.getLogger("dkim")
    messages = []

    class Collect(logging.Handler):
        def emit(self, rec):
            messages.append(rec.getMessage())

    log.addHandler(Collect())
    log.setLevel(logging.DEBUG)
    d = dkim.DKIM(msg, logger=log)
    ok = False
    try:
        ok = d.verify(dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        messages.append(str(e))
    if ok:
        print("pass")
        return 0
    print("fail: " + " | ".join(m for m in messages if m)[-2000:])
    return 1


sys.exit(main())
