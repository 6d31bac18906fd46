"""Independent SMTP client for the server self-tests (servers_selftest_spec).

Python's smtplib (not lua-smtp) plus the SASL mechanisms smtplib lacks:
SCRAM-SHA-1/256 (RFC 5802, RFC 7677), DIGEST-MD5 (RFC 2831) and PLAIN with
a UTF-8 password (RFC 4616). Imported by snippets the spec runs with
/usr/bin/python3; each helper raises on an unexpected reply.
"""
import base64
import hashlib
import hmac
import os
import smtplib
import ssl


def b64(b):
    return base64.b64encode(b).decode("ascii")


def connect(port, mode="plain", cafile=None, host="127.0.0.1"):
    """mode: plain (no TLS), starttls (verified), smtps (verified)."""
    ctx = None
    if mode != "plain":
        ctx = ssl.create_default_context(cafile=cafile)
    if mode == "smtps":
        s = smtplib.SMTP_SSL(host, port, context=ctx, timeout=10)
        s.ehlo("client.example.test")
        return s
    s = smtplib.SMTP(host, port, timeout=10)
    s.ehlo("client.example.test")
    if mode == "starttls":
        s.starttls(context=ctx)
        s.ehlo("client.example.test")
    return s


def expect(reply, code):
    if reply[0] != code:
        raise RuntimeError("expected %d, got %r" % (code, reply))
    return reply[1]


def auth_plain_bytes(s, user, password):
    """AUTH PLAIN with raw UTF-8 (smtplib encodes credentials as ASCII)."""
    resp = b"\0" + user.encode() + b"\0" + password.encode("utf-8")
    return s.docmd("AUTH", "PLAIN " + b64(resp))


def auth_scram(s, user, password, hashname="sha256"):
    mech = "SCRAM-SHA-256" if hashname == "sha256" else "SCRAM-SHA-1"
    h = lambda data: hashlib.new(hashname, data).digest()
    mac = lambda key, data: hmac.new(key, data, hashname).digest()
    cnonce = b64(os.urandom(18))
    name = user.replace("=", "=3D").replace(",", "=2C")
    first_bare = ("n=%s,r=%s" % (name, cnonce)).encode()
    code, chal = s.docmd("AUTH", mech + " " + b64(b"n,," + first_bare))
    if code != 334:
        return code, chal
    server_first = base64.b64decode(chal)
    attrs = dict(kv.split(b"=", 1) for kv in server_first.split(b","))
    nonce, salt, iters = attrs[b"r"], base64.b64decode(attrs[b"s"]), int(attrs[b"i"])
    if not nonce.startswith(cnonce.encode()):
        raise RuntimeError("server nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac(hashname, password.encode("utf-8"), salt, iters)
    client_key = mac(salted, b"Client Key")
    without_proof = b"c=biws,r=" + nonce
    auth_message = first_bare + b"," + server_first + b"," + without_proof
    sig = mac(h(client_key), auth_message)
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    code, final = s.docmd(b64(without_proof + b",p=" + b64(proof).encode()))
    if code != 334:
        return code, final
    want = b"v=" + base64.b64encode(mac(mac(salted, b"Server Key"), auth_message))
    if base64.b64decode(final) != want:
        raise RuntimeError("wrong SCRAM server signature")
    return s.docmd("")


def auth_digest_md5(s, user, password, host="localhost"):
    code, chal = s.docmd("AUTH", "DIGEST-MD5")
    if code != 334:
        return code, chal
    fields = {}
    for part in base64.b64decode(chal).decode().split(","):
        k, _, v = part.partition("=")
        fields[k.strip()] = v.strip().strip('"')
    realm = fields.get("realm", "")
    nonce = fields["nonce"]
    cnonce = b64(os.urandom(12))
    uri = "smtp/" + host
    md5 = lambda b: hashlib.md5(b).digest()
    hexmd5 = lambda b: hashlib.md5(b).hexdigest()
    a1 = (md5(("%s:%s:" % (user, realm)).encode() + password.encode("utf-8"))
          + (":%s:%s" % (nonce, cnonce)).encode())
    tail = ":%s:00000001:%s:auth:" % (nonce, cnonce)
    response = hexmd5((hexmd5(a1) + tail + hexmd5(("AUTHENTICATE:" + uri).encode())).encode())
    resp = ('username="%s",%snonce="%s",cnonce="%s",nc=00000001,qop=auth,'
            'digest-uri="%s",response=%s,charset=utf-8'
            % (user, ('realm="%s",' % realm) if realm else "", nonce, cnonce,
               uri, response))
    code, final = s.docmd(b64(resp.encode()))
    if code != 334:
        return code, final
    rspauth = hexmd5((hexmd5(a1) + tail + hexmd5((":" + uri).encode())).encode())
    if base64.b64decode(final).decode() != "rspauth=" + rspauth:
        raise RuntimeError("wrong DIGEST-MD5 rspauth")
    return s.docmd("")
