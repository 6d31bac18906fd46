#!/usr/bin/python3
"""Verifies the DKIM signatures of messages with dkimpy, the DNS lookup
replaced by the test's public key (for spec/unit/dkim_spec.lua and the
interop specs). Prints one line per message: "pass" or "fail: <reason>";
exits 0 when every message passes, 1 otherwise.

usage: dkim_verify.py SELECTOR._domainkey.DOMAIN PUBLIC_KEY_B64 MESSAGE_FILE...
"""
import logging
import sys

import dkim


def verify(path, name, pub):
    with open(path, "rb") as f:
        msg = f.read()
    record = ("v=DKIM1; k=rsa; p=" + pub).encode()

    def dnsfunc(qname, timeout=5):
        q = qname.decode() if isinstance(qname, bytes) else qname
        return record if q.rstrip(".").lower() == name.lower() else None

    messages = []

    class Collect(logging.Handler):
        def emit(self, rec):
            messages.append(rec.getMessage())

    log = logging.getLogger("dkim-" + path)
    log.addHandler(Collect())
    log.setLevel(logging.DEBUG)
    log.propagate = False
    ok = False
    try:
        ok = dkim.DKIM(msg, logger=log).verify(dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        messages.append(str(e))
    if ok:
        return "pass"
    return "fail: " + " | ".join(m for m in messages if m)[-2000:].replace("\n", " ")


def main():
    name, pub = sys.argv[1], sys.argv[2]
    results = [verify(path, name, pub) for path in sys.argv[3:]]
    for r in results:
        print(r)
    return 0 if all(r == "pass" for r in results) else 1


sys.exit(main())
