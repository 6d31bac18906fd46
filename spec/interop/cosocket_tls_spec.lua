-- lua-smtp's own TLS over a host's socket (issue 27): the cosocket
-- transport with a LuaSocket stand-in for the host socket, in both shapes
-- (receiveany, and exact-count receive as HAProxy's), against real
-- servers: Postfix + Dovecot (STARTTLS + SCRAM, implicit TLS + PLAIN,
-- read back byte for byte), the pyOpenSSL peer (SCRAM-SHA-256-PLUS,
-- session resumption), Python's ssl (IP SANs, a wrong CA, bytes injected
-- after 220). The same checks and results as the C socket.
local smtp = require "smtp"
local servers = require "helpers.servers"
local certs = require "helpers.certs"
local cb_peer = require "helpers.cb_peer"
local tls_peer = require "helpers.tls_peer"
local tlsver = require "helpers.tlsver"
local host_socket = require "helpers.host_socket"

local has_socket = pcall(require, "socket")

local function raises(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "no error")
  assert.is_true(smtp.Error.is(err), tostring(err))
  return err
end

describe("our TLS over a host socket, Postfix + Dovecot #interop #tls", function()
  if not has_socket then
    pending("LuaSocket is not installed")
    return
  end
  local stack, alice

  setup(function()
    stack = servers.mail_stack()
    alice = stack.users[1]
  end)

  teardown(function()
    if stack then stack:stop() end
  end)

  local function find_delivery(subject)
    for _ = 1, 100 do
      for _, m in ipairs(stack:messages("bob")) do
        if m.data:find("Subject: " .. subject .. "\r\n", 1, true) then return m end
      end
      os.execute("sleep 0.1")
    end
  end

  local function message(subject)
    return ("From: alice@%s\r\nTo: bob@%s\r\nSubject: %s\r\n\r\nLine one.\r\n.Leading dot survives.\r\n")
      :format(stack.domain, stack.domain, subject)
  end

  for _, shape in ipairs(host_socket.shapes) do
    it(shape .. ": STARTTLS + AUTH SCRAM-SHA-256, verified, delivered byte for byte", function()
      local subject = "host socket starttls " .. shape
      local raw = message(subject)
      local sock = host_socket[shape]()
      local c = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10, transport = sock }
      c:authenticate { tls = { ca_file = stack.certs.ca_cert }, tls_required = true,
        mechanisms = { "SCRAM-SHA-256" }, user = alice.user, password = alice.password }
      local report = c:sendmail(raw)
      local info = c:tls_info()
      c:quit()
      assert.equal(250, report.reply.code)
      assert.is_true(info.peer_verified)
      assert.equal(tlsver.best(), info.version)
      assert.is_string(info.cipher)
      local m = find_delivery(subject)
      assert.is_table(m, "message not delivered")
      assert.equal(raw, m.data)
    end)

    it(shape .. ": implicit TLS with AUTH PLAIN through smtp.send, a 1 MiB message intact", function()
      local subject = "host socket implicit " .. shape
      local body = {}
      for i = 1, 16384 do body[i] = ("%05d "):format(i) .. ("x"):rep(56) end
      local raw = message(subject) .. table.concat(body, "\r\n") .. "\r\n"
      local report = smtp.send { host = "localhost", port = stack.ports.smtps, tls_mode = "implicit",
        tls = { ca_file = stack.certs.ca_cert }, timeout = 20, transport = host_socket[shape](),
        user = alice.user, password = alice.password, mechanisms = { "PLAIN" }, raw = raw }
      assert.equal(250, report.reply.code)
      local m = find_delivery(subject)
      assert.is_table(m, "message not delivered")
      assert.equal(raw, m.data)
    end)

    it(shape .. ": a certificate for another name is refused (kind tls) before AUTH", function()
      local sock = host_socket[shape]()
      local c = smtp.connect { host = "127.0.0.1", port = stack.ports.starttls, timeout = 10, transport = sock }
      local err = raises(function()
        c:authenticate { tls = { ca_file = stack.certs.ca_cert }, tls_peer = "wrong.example",
          tls_required = true, user = alice.user, password = alice.password }
      end)
      assert.equal("tls", err.kind, tostring(err))
    end)
  end
end)

describe("our TLS over a host socket, Python ssl peer #interop #tls", function()
  if not has_socket then
    pending("LuaSocket is not installed")
    return
  end
  local pki, peer, injector

  setup(function()
    assert(tls_peer.usable(), "openssl and /usr/bin/python3 are needed")
    pki = tls_peer.make_pki()
    peer = tls_peer.python_server(pki, { mode = "starttls" })
    injector = tls_peer.python_server(pki, { mode = "inject" })
  end)

  teardown(function()
    if peer then peer.stop() end
    if injector then injector.stop() end
  end)

  -- STARTTLS by hand (the peer is not SMTP after its 220): the transport
  -- alone, as the client drives it.
  local function handshake(shape, cfg, name, port)
    local cosocket = require "smtp.transport.cosocket"
    local sock = host_socket[shape]()
    assert(sock:connect("127.0.0.1", port or peer.port))
    local t = cosocket.wrap(sock)
    t._label = "127.0.0.1:" .. (port or peer.port)
    t:set_deadline(smtp.now() + 10)
    local parser = require("smtp.core").reply_parser()
    local greeting = assert(t:read_reply(parser))
    assert.equal(220, greeting.code)
    assert(t:send("STARTTLS\r\n"))
    local go = assert(t:read_reply(parser))
    assert.equal(220, go.code)
    if parser:buffered() > 0 then
      t:close()
      return nil, "protocol", "injected"
    end
    local ok, kind, msg = t:starttls(cfg, name)
    if not ok then return nil, kind, msg end
    return t
  end

  for _, shape in ipairs(host_socket.shapes) do
    it(shape .. ": an IP-literal host is checked against the certificate's IP SANs", function()
      local t = assert(handshake(shape, smtp.tls_config { ca_file = pki.ca_cert }, "127.0.0.1"))
      assert.is_true(t:tls_info().peer_verified)
      t:close()
      local ok, kind, msg = handshake(shape, smtp.tls_config { ca_file = pki.ca_cert }, "127.0.0.2")
      assert.is_nil(ok)
      assert.equal("tls", kind, msg)
    end)

    it(shape .. ": ca_file inside a tls_config object is honoured (another CA: refused)", function()
      local other = certs.make(require("helpers.proc").tempdir("other-ca"))
      local ok, kind, msg = handshake(shape, smtp.tls_config { ca_file = other.ca_cert }, "localhost")
      assert.is_nil(ok)
      assert.equal("tls", kind, msg)
      local t = assert(handshake(shape, smtp.tls_config { ca_file = pki.ca_cert }, "localhost"))
      t:close()
    end)

    it(shape .. ": a second connection with the same tls_config resumes the session", function()
      local cfg = smtp.tls_config { ca_file = pki.ca_cert }
      local t1 = assert(handshake(shape, cfg, "localhost"))
      assert.is_false(t1:tls_info().resumed)
      -- A TLS 1.3 ticket comes after the handshake: read the peer's hello.
      local line = assert(t1:receive_some())
      assert.truthy(line:find("hello", 1, true), line)
      t1:close()
      local t2 = assert(handshake(shape, cfg, "localhost"))
      assert.is_true(t2:tls_info().resumed)
      t2:close()
    end)

    it(shape .. ": bytes injected after the 220 are never taken as TLS replies", function()
      local ok, kind, msg = handshake(shape, smtp.tls_config { ca_file = pki.ca_cert }, "localhost", injector.port)
      assert.is_nil(ok)
      assert.truthy(kind == "protocol" or kind == "tls", tostring(kind) .. ": " .. tostring(msg))
    end)
  end
end)

describe("our TLS over a host socket, SCRAM-SHA-256-PLUS (pyOpenSSL peer) #interop #tls #sasl", function()
  if not has_socket then
    pending("LuaSocket is not installed")
    return
  end
  local pki, peer

  setup(function()
    assert(cb_peer.usable())
    pki = certs.make()
    peer = cb_peer.start(pki, { tls = "starttls" })
  end)

  teardown(function()
    if peer then peer:stop() end
  end)

  for _, shape in ipairs(host_socket.shapes) do
    it(shape .. ": binds the exchange to the TLS channel and authenticates", function()
      peer:clear()
      local c = smtp.connect { host = "127.0.0.1", port = peer.port, timeout = 10, transport = host_socket[shape]() }
      c:authenticate { tls = smtp.tls_config { ca_file = pki.ca_cert }, tls_peer = "localhost",
        mechanisms = { "SCRAM-SHA-256-PLUS" }, user = cb_peer.USER, password = cb_peer.PASSWORD }
      assert.is_true(c:authenticated())
      c:quit()
      local ok, log = peer:wait_ended(1)
      assert(ok, tostring(log))
      local auth = peer:events("auth")
      local last = auth[#auth]
      assert.equal("SCRAM-SHA-256-PLUS", last.mech)
      assert.equal("ok", last.result)
      assert.matches("^p=tls%-", last.gs2)
    end)
  end
end)
