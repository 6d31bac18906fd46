#!/usr/bin/python3
"""Reads two messages back with Python's email package and compares them
part by part (for the downgrade specs): the tree of content types, each
leaf's decoded bytes, and each entity's header fields other than
Content-Transfer-Encoding (and DKIM-Signature), which must be the same. Prints one JSON object:
{"same": bool, "why": text, "cte": [the second message's leaf encodings]}.

usage: compare_parts.py ORIGINAL SENT
"""
import email
import email.policy
import json
import sys


def leaves(msg):
    out = []
    for part in msg.walk():
        fields = [(k.lower(), v) for k, v in part.items()
                  if k.lower() not in ("content-transfer-encoding", "dkim-signature")]
        if part.is_multipart():
            out.append(("multipart", part.get_content_type(), fields, None, None))
        elif part.get_content_type() == "message/rfc822":
            out.append(("message", part.get_content_type(), fields, None, None))
        else:
            cte = (part.get("content-transfer-encoding") or "7bit").strip().lower()
            out.append(("leaf", part.get_content_type(), fields, part.get_payload(decode=True), cte))
    return out


def main():
    msgs = []
    for path in sys.argv[1:3]:
        with open(path, "rb") as f:
            msgs.append(email.message_from_bytes(f.read(), policy=email.policy.compat32))
    a, b = leaves(msgs[0]), leaves(msgs[1])
    why = ""
    if len(a) != len(b):
        why = "%d entities, then %d" % (len(a), len(b))
    else:
        for i, (x, y) in enumerate(zip(a, b)):
            if x[:3] != y[:3]:
                why = "entity %d differs: %r / %r" % (i, x[:3], y[:3])
                break
            if x[3] != y[3]:
                why = "leaf %d decodes to %r, was %r" % (i, y[3][:80], x[3][:80])
                break
    print(json.dumps({"same": why == "", "why": why, "cte": [e[4] for e in b if e[0] == "leaf"]}))


main()
