-- Self-tests of the test setup's real servers (spec/helpers/servers.lua,
-- certs.lua): each server is driven by an independent client, Python's
-- smtplib (spec/helpers/smtplib_client.py), never by lua-smtp, and what it
-- stored is read back: RFC 5321 delivery, RFC 3207 STARTTLS, RFC 8314
-- implicit TLS, RFC 4954 AUTH with every mechanism Dovecot offers.
local P = require "helpers.proc"
local certs = require "helpers.certs"
local servers = require "helpers.servers"

local HELPERS = P.run("pwd"):gsub("\n$", "") .. "/spec/helpers"

-- A Python bytes literal for any Lua string.
local function pyb(s)
  return "b'" .. s:gsub("[^%w ]", function(ch)
    return ("\\x%02x"):format(ch:byte())
  end) .. "'"
end

-- Runs Python code with smtplib_client imported; returns ok, output.
local function py(code)
  local prelude = "import sys; sys.path.insert(0, " .. ("%q"):format(HELPERS)
    .. ")\nfrom smtplib_client import *\n"
  return P.try("timeout 60 /usr/bin/python3 -c " .. P.q(prelude .. code))
end

local function py_ok(code)
  local ok, out = py(code)
  assert(ok, out)
  return out
end

local MSG1 = "From: a@example.org\r\nTo: b@example.test\r\nSubject: one\r\n\r\n"
  .. "line 1\r\n.leading dot\r\n..two dots\r\n\r\nutf8 \195\164\226\130\172\r\nlast\r\n"
local MSG2 = "Subject: two\r\n\r\n" .. ("x"):rep(998) .. "\r\n.\r\nend\r\n"

describe("test PKI #interop", function()
  local c
  setup(function() c = certs.make() end)

  it("issues a server certificate the CA verifies, with the loopback SANs", function()
    local out = P.run(("openssl verify -CAfile %s %s && openssl x509 -in %s -noout -ext subjectAltName")
      :format(c.ca_cert, c.server_cert, c.server_cert))
    assert.matches("OK", out)
    assert.matches("DNS:localhost", out)
    assert.matches("IP Address:127.0.0.1", out)
    assert.matches("IP Address:0:0:0:0:0:0:0:1", out)
  end)

  it("issues wrong-host, expired, future and untrusted certificates", function()
    local ok, out = P.try(("openssl verify -CAfile %s %s"):format(c.ca_cert, c.expired_cert))
    assert.is_false(ok)
    assert.matches("expired", out)
    ok, out = P.try(("openssl verify -CAfile %s %s"):format(c.ca_cert, c.future_cert))
    assert.is_false(ok)
    assert.matches("not yet valid", out)
    ok = P.try(("openssl verify -CAfile %s %s"):format(c.ca_cert, c.untrusted_cert))
    assert.is_false(ok)
    assert.is_true((P.try(("openssl verify -CAfile %s %s"):format(c.other_ca_cert, c.untrusted_cert))))
    out = P.run(("openssl verify -CAfile %s %s && openssl x509 -in %s -noout -ext subjectAltName")
      :format(c.ca_cert, c.wrong_host_cert, c.wrong_host_cert))
    assert.matches("DNS:wrong.example.org", out)
    assert.not_matches("localhost", out)
  end)

  it("issues a client certificate and encrypted copies of its key", function()
    assert.matches("OK", P.run(("openssl verify -CAfile %s %s"):format(c.ca_cert, c.client_cert)))
    assert.matches("CN = client", P.run("openssl x509 -noout -subject -in " .. c.client_cert))
    local plain = P.run("openssl pkey -in " .. c.client_key)
    for _, f in ipairs({ c.client_key_encrypted, c.client_key_encrypted_pkcs8 }) do
      assert.is_false((P.try("openssl pkey -passin pass:wrong -in " .. f)))
      assert.equal(plain, P.run(("openssl pkey -passin %s -in %s")
        :format(P.q("pass:" .. c.client_key_password), f)))
    end
    assert.matches("DEK%-Info: AES%-256%-CBC", c.pem("client_key_encrypted"))
  end)

  it("is made once per process", function()
    assert.equal(c, certs.make())
  end)
end)

describe("aiosmtpd #interop", function()
  local srv
  setup(function() srv = servers.aiosmtpd({ pipelining = true }) end)
  teardown(function() srv:stop() end)

  it("stores several messages from one connection byte for byte", function()
    local out = py_ok(([[
s = connect(%d)
print(s.esmtp_features)
s.sendmail("a@example.org", ["b@example.test", "c@example.test"], %s)
s.sendmail("", ["d@example.test"], %s, mail_options=["BODY=8BITMIME"])
s.quit()
]]):format(srv.port, pyb(MSG1), pyb(MSG2)))
    assert.matches("'smtputf8'", out)
    assert.matches("'8bitmime'", out)
    assert.matches("'pipelining'", out)
    local msgs = assert(srv:wait_messages(2, 5))
    assert.equal(2, #msgs)
    assert.equal("a@example.org", msgs[1].mail_from)
    assert.same({ "b@example.test", "c@example.test" }, msgs[1].rcpt_tos)
    assert.equal(MSG1, msgs[1].data)
    assert.equal("<>", msgs[2].mail_from) -- aiosmtpd keeps the null path's brackets
    assert.equal("BODY=8BITMIME", msgs[2].mail_options[#msgs[2].mail_options]) -- after SIZE=
    assert.equal(MSG2, msgs[2].data)
    assert.is_nil(msgs[1].tls)
  end)

  it("answers commands pipelined in one write, in order", function()
    local out = py_ok(([[
import socket
c = socket.create_connection(("127.0.0.1", %d), 10)
f = c.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline()
        lines.append(l)
        if l[3:4] != b"-":
            return b"".join(lines)
reply(); c.sendall(b"EHLO x\r\n"); reply()
c.sendall(b"MAIL FROM:<p@example.org>\r\nRCPT TO:<q@example.test>\r\nDATA\r\n")
print([reply()[:3] for _ in range(3)])
c.sendall(b"piped\r\n.\r\nQUIT\r\n")
print([reply()[:3] for _ in range(2)])
]]):format(srv.port))
    assert.matches("%[b'250', b'250', b'354'%]", out)
    assert.matches("%[b'250', b'221'%]", out)
    local msgs = assert(srv:wait_messages(3, 5))
    assert.equal("piped\r\n", msgs[3].data)
  end)

  it("keeps its files after stop() and stop() is idempotent", function()
    local s2 = servers.aiosmtpd()
    py_ok(("s = connect(%d); s.sendmail('a@x.org', ['b@y.org'], b'bare\\nlf\\r\\n'); s.quit()")
      :format(s2.port))
    s2:stop()
    s2:stop()
    assert.is_false(P.alive(s2.pid))
    assert.equal("bare\nlf\r\n", s2:messages()[1].data)
  end)
end)

describe("aiosmtpd with TLS and AUTH #interop", function()
  local c, starttls, implicit
  setup(function()
    c = certs.make()
    starttls = servers.aiosmtpd({ tls = true, require_tls = true,
                                  auth = { { user = "u1", password = "pw1" } } })
    implicit = servers.aiosmtpd({ tls = true, implicit_tls = true })
  end)
  teardown(function() servers.stop_all() end)

  it("offers STARTTLS with the test CA's certificate, then AUTH", function()
    local out = py_ok(([[
s = connect(%d)
print("before", s.has_extn("starttls"))
print("mail", s.docmd("MAIL", "FROM:<a@example.org>")[0])
s.starttls(context=ssl.create_default_context(cafile=%q)); s.ehlo()
print("auth", s.has_extn("auth"), s.login("u1", "pw1")[0])
s.sendmail("a@example.org", ["b@example.test"], b"tls body\r\n")
s.quit()
]]):format(starttls.port, c.ca_cert))
    assert.matches("before True", out)
    assert.matches("mail 530", out)
    assert.matches("auth True 235", out)
    local m = assert(starttls:wait_messages(1, 5))[1]
    assert.equal("tls body\r\n", m.data)
    assert.matches("^TLSv1%.[23] ", m.tls)
    assert.equal("u1", m.auth)
  end)

  it("speaks implicit TLS", function()
    py_ok(([[
s = connect(%d, "smtps", %q)
s.sendmail("a@example.org", ["b@example.test"], b"smtps body\r\n")
s.quit()
]]):format(implicit.port, c.ca_cert))
    local m = assert(implicit:wait_messages(1, 5))[1]
    assert.equal("smtps body\r\n", m.data)
    assert.truthy(m.tls)
  end)
end)

describe("smtp-sink #interop", function()
  local sink
  setup(function() sink = servers.smtp_sink() end)
  teardown(function() sink:stop() end)

  it("accepts 1000 messages on one connection and counts them", function()
    local out = py_ok(([[
s = connect(%d)
print(s.has_extn("pipelining"))
for i in range(1000):
    s.sendmail("a@example.org", ["b@example.test"], b"Subject: %%d\r\n\r\nx\r\n" %% i)
s.quit()
]]):format(sink.port))
    assert.matches("True", out)
    assert.equal(1000, sink:wait_count(1000, 10))
  end)
end)

describe("Postfix + Dovecot mail stack #interop", function()
  local stack, ca
  local started, start_time
  setup(function()
    local t = P.now()
    stack = servers.mail_stack()
    start_time = P.now() - t
    ca = stack.certs.ca_cert
    started = true
  end)
  teardown(function()
    if started then stack:stop() end
  end)

  local ALL = "PLAIN LOGIN CRAM%-MD5 DIGEST%-MD5 SCRAM%-SHA%-1 SCRAM%-SHA%-256"

  it("starts quickly on three ports", function()
    assert.is_true(start_time < 5, "start took " .. start_time .. " s")
    assert.is_true(P.listening(stack.ports.plain))
    assert.is_true(P.listening(stack.ports.starttls))
    assert.is_true(P.listening(stack.ports.smtps))
  end)

  it("offers STARTTLS, then AUTH with all six mechanisms, PIPELINING, CHUNKING", function()
    local out = py_ok(([[
s = connect(%d)
print("BEFORE", s.ehlo_resp.decode())
s.starttls(context=ssl.create_default_context(cafile=%q)); s.ehlo()
print("AFTER", s.ehlo_resp.decode())
s.quit()
]]):format(stack.ports.starttls, ca))
    local before, after = out:match("BEFORE(.*)AFTER(.*)")
    assert.matches("STARTTLS", before)
    assert.not_matches("AUTH", before)
    assert.matches("AUTH " .. ALL .. "\n", after)
    assert.matches("PIPELINING", after)
    assert.matches("CHUNKING", after)
    assert.matches("SMTPUTF8", after)
  end)

  local function deliver_with(mech, code)
    local user = mech == "CRAM-MD5" and "bob" or "alice"
    local pw = user == "bob" and servers.USERS[2].password or servers.USERS[1].password
    local rcpt = user .. "@example.test"
    local body = ("Subject: via %s\r\n\r\nauthenticated with %s\r\n.dot\r\n"):format(mech, mech)
    local before = #stack:messages(user)
    local out = py_ok(([[
s = connect(%d, "starttls", %q)
%s
print("AUTH", code)
s.sendmail("sender@example.org", [%q], %s)
s.quit()
]]):format(stack.ports.starttls, ca, code:format(user, pw), rcpt, pyb(body)))
    assert.matches("AUTH 235", out)
    local msgs = assert(stack:wait_messages(before + 1, 10, user))
    local m = msgs[#msgs]
    assert.equal(body, m.data)
    assert.equal("sender@example.org", m.mail_from)
    assert.equal(rcpt, m.rcpt_to)
    assert.matches("with ESMTPSA", m.added)
    assert.matches("Authenticated sender: " .. user, m.added)
    assert.matches("using TLSv1", m.added)
    assert.equal(m.raw, m.added .. m.body)
  end

  for _, mech in ipairs({ "PLAIN", "LOGIN", "CRAM-MD5" }) do
    it("STARTTLS + AUTH " .. mech .. " (smtplib) delivers to the Maildir byte for byte", function()
      local auth = ({ PLAIN = "auth_plain", LOGIN = "auth_login", ["CRAM-MD5"] = "auth_cram_md5" })[mech]
      deliver_with(mech, "s.user, s.password = %q, %q\ncode = s.auth(" .. ("%q"):format(mech)
        .. ", s." .. auth .. ")[0]")
    end)
  end

  for _, v in ipairs({ { "SCRAM-SHA-1", "sha1" }, { "SCRAM-SHA-256", "sha256" } }) do
    it("STARTTLS + AUTH " .. v[1] .. " (server signature verified)", function()
      deliver_with(v[1], "code = auth_scram(s, %q, %q, " .. ("%q"):format(v[2]) .. ")[0]")
    end)
  end

  it("STARTTLS + AUTH DIGEST-MD5 (rspauth verified)", function()
    deliver_with("DIGEST-MD5", "code = auth_digest_md5(s, %q, %q)[0]")
  end)

  it("accepts the UTF-8 password and rejects a wrong one with 535 5.7.8", function()
    local carol = servers.USERS[3]
    assert.matches("[\128-\255]", carol.password)
    local out = py_ok(([[
s = connect(%d, "starttls", %q)
print("WRONG", auth_plain_bytes(s, "alice", "nope"))
print("UNKNOWN", auth_plain_bytes(s, "nobody", "nope")[0])
print("SCRAMWRONG", auth_scram(s, "alice", "nope")[0])
print("UTF8", auth_plain_bytes(s, "carol", %s.decode("utf-8"))[0])
s.quit()
]]):format(stack.ports.starttls, ca, pyb(carol.password)))
    assert.matches("WRONG %(535, b'5%.7%.8 Error: authentication failed", out)
    assert.matches("UNKNOWN 535", out)
    assert.matches("SCRAMWRONG 535", out)
    assert.matches("UTF8 235", out)
  end)

  it("speaks implicit TLS on the smtps port, with AUTH", function()
    local out = py_ok(([[
s = connect(%d, "smtps", %q)
print(s.ehlo_resp.decode())
print("AUTH", s.login("alice", %q)[0])
s.sendmail("x@example.org", ["alice@example.test"], b"Subject: smtps\r\n\r\nsmtps\r\n")
s.quit()
]]):format(stack.ports.smtps, ca, servers.USERS[1].password))
    assert.matches("AUTH " .. ALL, out)
    assert.matches("AUTH 235", out)
    local found
    assert(P.wait_for(10, function()
      for _, m in ipairs(stack:messages("alice")) do
        if m.data == "Subject: smtps\r\n\r\nsmtps\r\n" then found = m end
      end
      return found
    end), "message not delivered")
    assert.matches("using TLSv1", found.added)
  end)

  it("rejects an unknown recipient with 550 5.1.1 and other domains with 554", function()
    local out = py_ok(([[
s = connect(%d)
s.mail("x@example.org")
print("UNKNOWN", s.rcpt("nobody@example.test"))
print("RELAY", s.rcpt("someone@elsewhere.example")[0])
print("KNOWN", s.rcpt("bob@example.test")[0])
s.quit()
]]):format(stack.ports.plain))
    assert.matches("UNKNOWN %(550, b'5%.1%.1 <nobody@example%.test>", out)
    assert.matches("RELAY 554", out)
    assert.matches("KNOWN 250", out)
  end)

  it("offers AUTH without STARTTLS on the plain port and takes BDAT", function()
    local body = "Subject: bdat\r\n\r\nchunked\r\n"
    local out = py_ok(([[
s = connect(%d)
print(s.ehlo_resp.decode())
print("AUTH", s.login("alice", %q)[0])
s.mail("x@example.org"); s.rcpt("carol@example.test")
data = %s
s.send(b"BDAT 6\r\n" + data[:6]); print("BDAT1", s.getreply()[0])
s.send(b"BDAT %%d LAST\r\n" %% (len(data) - 6) + data[6:]); print("BDAT2", s.getreply()[0])
s.quit()
]]):format(stack.ports.plain, servers.USERS[1].password, pyb(body)))
    assert.not_matches("STARTTLS", out)
    assert.matches("AUTH " .. ALL, out)
    assert.matches("AUTH 235", out)
    assert.matches("BDAT1 250", out)
    assert.matches("BDAT2 250", out)
    local m = assert(stack:wait_messages(1, 10, "carol"))[1]
    assert.equal(body, m.data)
    assert.matches("with ESMTPA", m.added)
  end)

  it("logs the TLS sessions in its maillog", function()
    assert.matches("TLS connection established from localhost", stack.postfix:log())
  end)
end)

describe("Postfix alone with another certificate #interop", function()
  local pf, c
  setup(function()
    c = certs.make()
    pf = servers.postfix({ tls = { cert = c.wrong_host_cert, key = c.wrong_host_key } })
  end)
  teardown(function() if pf then pf:stop() end end)

  it("serves the given certificate, offers no AUTH, and delivers", function()
    local out = py_ok(([[
ctx = ssl.create_default_context(cafile=%q)
s = connect(%d)
print("AUTH" in s.ehlo_resp.decode())
try:
    s.starttls(context=ctx)
except ssl.SSLCertVerificationError as e:
    print("VERIFY", e.verify_message)
ctx.check_hostname = False
s = connect(%d, "plain")
s.starttls(context=ctx); s.ehlo()
print("PEER", s.sock.getpeercert()["subjectAltName"])
s.sendmail("x@example.org", ["bob@example.test"], b"Subject: alone\r\n\r\nok\r\n")
s.quit()
]]):format(c.ca_cert, pf.ports.starttls, pf.ports.starttls))
    assert.matches("^False", out)
    assert.matches("VERIFY IP address mismatch", out)
    assert.matches("PEER %(%('DNS', 'wrong%.example%.org'%),%)", out)
    local m = assert(pf:wait_messages(1, 10, "bob"))[1]
    assert.equal("Subject: alone\r\n\r\nok\r\n", m.data)
  end)
end)

describe("server lifecycle #interop", function()
  it("stop_all() stops every server, and nothing is left listening", function()
    local a = servers.aiosmtpd()
    local k = servers.smtp_sink()
    local s = servers.mail_stack()
    local pids = { a.pid, k.pid, s.postfix.pid, s.dovecot.pid }
    local t = P.now()
    servers.stop_all()
    local took = P.now() - t
    for _, pid in ipairs(pids) do assert.is_false(P.alive(pid)) end
    for _, port in ipairs({ a.port, k.port, s.ports.plain, s.ports.starttls, s.ports.smtps }) do
      assert.is_false(P.listening(port))
    end
    assert.is_false(P.unix_listening(s.dovecot.auth_socket))
    assert.is_true(took < 5, "stop took " .. took .. " s")
  end)
end)
