#!/usr/bin/python3
"""Reads a message back with Python's standard email package (policy.default)
for spec/unit/message_parse_back_spec.lua: prints a JSON summary (headers
decoded, text and html bodies, the tree of content types, defects) and
writes each attachment's bytes to OUT_DIR/att<N>.bin.

usage: parse_back.py MESSAGE_FILE OUT_DIR
"""
import email
import email.policy
import json
import os
import sys


def addresses(msg, name):
    h = msg[name]
    if h is None:
        return None
    return [{"name": a.display_name or None, "address": a.addr_spec} for a in h.addresses]


def tree(part):
    if part.is_multipart():
        return {"type": part.get_content_type(), "parts": [tree(p) for p in part.iter_parts()]}
    return {"type": part.get_content_type()}


def main():
    path, out_dir = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        raw = f.read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    defects = [repr(d) for d in msg.defects]
    for name, value in msg.items():
        defects.extend("%s: %r" % (name, d) for d in getattr(value, "defects", ()))

    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    body_parts = {id(p) for p in (text_part, html_part) if p is not None}
    attachments = []
    for part in msg.walk():
        defects.extend(repr(d) for d in part.defects)
        if part.is_multipart() or id(part) in body_parts:
            continue
        data = part.get_payload(decode=True) or b""
        n = len(attachments) + 1
        out = os.path.join(out_dir, "att%d.bin" % n)
        with open(out, "wb") as f:
            f.write(data)
        attachments.append({
            "filename": part.get_filename(),
            "content_type": part.get_content_type(),
            "content_id": part["content-id"],
            "disposition": part.get_content_disposition(),
            "transfer_encoding": part.get("content-transfer-encoding"),
            "size": len(data),
            "file": out,
        })

    summary = {
        "subject": msg["subject"],
        "from": addresses(msg, "from"),
        "to": addresses(msg, "to"),
        "cc": addresses(msg, "cc"),
        "reply_to": addresses(msg, "reply-to"),
        "sender": addresses(msg, "sender"),
        "has_bcc": msg["bcc"] is not None,
        "message_id": msg["message-id"],
        "date": msg["date"],
        "mime_version": msg["mime-version"],
        "headers": [[k, str(v)] for k, v in msg.items()],
        "text": text_part.get_content() if text_part is not None else None,
        "text_encoding": text_part.get("content-transfer-encoding") if text_part is not None else None,
        "html": html_part.get_content() if html_part is not None else None,
        "attachments": attachments,
        "tree": tree(msg),
        "defects": defects,
    }
    json.dump(summary, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
