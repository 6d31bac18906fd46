-- smtp.transport.cosocket driven over real sockets: LuaSocket wrapped to
-- look like an OpenResty cosocket (connect, settimeouts, send,
-- receiveany, close, getreusedtimes, setkeepalive with a Lua-side pool),
-- against the scripted server. Every client byte is asserted.
local smtp = require "smtp"
local core = require "smtp.core"
local cosocket = require "smtp.transport.cosocket"
local scripted = require "helpers.scripted"
local socket = require "socket"

-- Idle connections by pool name, as ngx's keepalive pool keeps them.
local fake_pool = {}

-- A cosocket look-alike over LuaSocket. Records each call.
local function luasocket_cosocket(opts)
  opts = opts or {}
  local s = { calls = {}, sends = {}, timeout_ms = 60000 }
  local function note(name, ...) s.calls[#s.calls + 1] = { name, ... } end
  function s:connect(host, port, copts)
    note("connect", host, port, copts and copts.pool)
    local pool = copts and copts.pool or (host .. ":" .. port)
    self.pool = pool
    local idle = fake_pool[pool]
    if idle and #idle > 0 then
      self.sock = table.remove(idle)
      self.reused = 1
      return 1
    end
    local sock = socket.tcp()
    sock:settimeout(self.timeout_ms / 1000)
    local ok, err = sock:connect(host, port)
    if not ok then sock:close(); return nil, err end
    self.sock, self.reused = sock, 0
    return 1
  end
  function s:settimeouts(c, w, r)
    note("settimeouts", c, w, r)
    self.timeout_ms = r
    if self.sock then self.sock:settimeout(r / 1000) end
  end
  function s:send(data)
    if type(data) == "table" then
      assert(opts.send_tables, "send got a table")
      data = table.concat(data)
    end
    self.sends[#self.sends + 1] = data
    if not self.sock then return nil, "closed" end
    local n, err = self.sock:send(data)
    if not n then return nil, err end
    return n
  end
  function s:receiveany(max)
    if not self.sock then return nil, "closed" end
    local ready = socket.select({ self.sock }, nil, self.timeout_ms / 1000)
    if #ready == 0 then return nil, "timeout" end
    self.sock:settimeout(0)
    local data, err, partial = self.sock:receive(max)
    self.sock:settimeout(self.timeout_ms / 1000)
    data = data or partial
    if data and data ~= "" then return data end
    return nil, err == "timeout" and "timeout" or "closed"
  end
  function s:getreusedtimes()
    if not self.sock then return nil, "closed" end
    return self.reused
  end
  function s:setkeepalive(idle_ms, size)
    note("setkeepalive", idle_ms, size)
    local idle = fake_pool[self.pool] or {}
    fake_pool[self.pool] = idle
    idle[#idle + 1] = self.sock
    self.sock = nil
    return 1
  end
  -- With opts.fake_tls the "handshake" succeeds and the bytes stay
  -- plaintext, so the scripted server can play both sides of STARTTLS.
  function s.sslhandshake(_, reused, name, verify)
    note("sslhandshake", reused, name, verify)
    if opts.fake_tls then return true end
    return nil, "no TLS in this test double"
  end
  function s:close()
    note("close")
    if self.sock then self.sock:close(); self.sock = nil end
    return 1
  end
  return s
end

local function called(s, name)
  local out = {}
  for _, c in ipairs(s.calls) do
    if c[1] == name then out[#out + 1] = c end
  end
  return out
end

local RAW = "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n.dot line\nbare lf\r\n"
local STUFFED = "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n..dot line\r\nbare lf\r\n"

local EHLO = [[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250 ENHANCEDSTATUSCODES
]]

local function connect_opts(server, sock, extra)
  local o = { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "client.example", transport = sock }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("smtp.transport.cosocket over LuaSocket", function()
  it("connects an unconnected socket and runs EHLO/MAIL/RCPT/DATA byte for byte", function()
    local server = scripted.start(EHLO .. [[
C: MAIL FROM:<a@example.org>
S: 250 2.1.0 ok
C: RCPT TO:<b@example.org>
S: 250 2.1.5 ok
C: DATA
S: 354 go ahead
BODY
S: 250 2.0.0 Ok: queued as ABC123
C: QUIT
S: 221 2.0.0 bye
]])
    local sock = luasocket_cosocket()
    local ok, report = pcall(function()
      local c = smtp.connect(connect_opts(server, sock))
      local r = c:sendmail(RAW)
      c:quit()
      return r
    end)
    local sok, serr, received = server:result()
    assert.is_true(ok, tostring(report))
    assert.is_true(sok, serr)
    assert.same({ "b@example.org" }, report.accepted)
    assert.equal(250, report.reply.code)
    assert.equal("ABC123", report.reply.queue_id)
    assert.equal("EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
      .. STUFFED .. ".\r\nQUIT\r\n", received[1])
    -- One write per command, the body and its terminator in one.
    assert.same({ "EHLO client.example\r\n", "MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.org>\r\n",
      "DATA\r\n", STUFFED .. ".\r\n", "QUIT\r\n" }, sock.sends)
    local conn = called(sock, "connect")
    assert.equal(1, #conn)
    assert.equal("127.0.0.1", conn[1][2])
    assert.equal(server.port, conn[1][3])
    -- Every wait is armed with what is left of a 5 s deadline.
    for _, c in ipairs(called(sock, "settimeouts")) do
      assert.is_true(c[4] > 0 and c[4] <= 5000, "timeout " .. c[4])
    end
    assert.is_nil(sock.sock, "socket left open")
  end)

  it("pipelines the envelope and frames BDAT chunks, writing arrays in one send", function()
    local server = scripted.start([[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250-PIPELINING
S: 250 CHUNKING
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
S: 250 ok
S: 250 ok
BDAT
S: 250 2.0.0 queued
C: QUIT
S: 221 bye
]])
    local sock = luasocket_cosocket { send_tables = true }
    local ok, err = pcall(function()
      local c = smtp.connect(connect_opts(server, sock))
      c._t._tables = true
      c:sendmail(RAW)
      c:quit()
    end)
    local sok, serr, received = server:result()
    assert.is_true(ok, tostring(err))
    assert.is_true(sok, serr)
    local body = RAW:gsub("\r?\n", "\r\n")
    assert.equal("EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
      .. "BDAT " .. #body .. " LAST\r\n" .. body .. "QUIT\r\n", received[1])
  end)

  it("raises timeout when the server stalls, within the deadline, and closes the socket", function()
    local server = scripted.start(EHLO .. "C: NOOP\nSTALL\n")
    local sock = luasocket_cosocket()
    local c, t0
    local ok, err = pcall(function()
      c = smtp.connect(connect_opts(server, sock, { timeout = 1 }))
      c:helo()
      t0 = core.now()
      c:noop()
    end)
    local elapsed = core.now() - t0
    server:result(3)
    assert.is_false(ok)
    assert.is_true(smtp.Error.is(err), tostring(err))
    assert.equal("timeout", err.kind)
    assert.is_true(elapsed >= 0.9 and elapsed < 2, "elapsed " .. elapsed)
    assert.is_true(c:closed())
    assert.is_nil(sock.sock, "socket left open")
    assert.equal(1, #called(sock, "close"))
  end)

  it("raises protocol on a malformed reply and closes the socket", function()
    local server = scripted.start([[
S: 220 mx.example.org ESMTP
C: EHLO client.example
R: 2x0 not a reply\r\n
]])
    local sock = luasocket_cosocket()
    local c
    local ok, err = pcall(function()
      c = smtp.connect(connect_opts(server, sock))
      c:helo()
    end)
    server:result(3)
    assert.is_false(ok)
    assert.equal("protocol", err.kind)
    assert.is_true(c:closed())
    assert.is_nil(sock.sock)
  end)

  it("reports a refused connect as io", function()
    local probe = socket.bind("127.0.0.1", 0)
    local _, port = probe:getsockname()
    probe:close()
    local sock = luasocket_cosocket()
    local ok, err = pcall(smtp.connect, { host = "127.0.0.1", port = tonumber(port), timeout = 2, transport = sock })
    assert.is_false(ok)
    assert.equal("io", err.kind)
  end)

  it("pools with RSET and resumes without a greeting or a second EHLO", function()
    local server = scripted.start(EHLO .. [[
C: RSET
S: 250 2.0.0 reset
C: RSET
S: 250 2.0.0 reset
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 2.0.0 queued
C: QUIT
S: 221 bye
]])
    local s1, s2 = luasocket_cosocket(), luasocket_cosocket()
    local ok, err = pcall(function()
      local c1 = smtp.connect(connect_opts(server, s1))
      c1:authenticate {}
      assert.is_true(c1:set_keepalive(10000, 5))
      assert.is_true(c1:closed())
      local c2 = smtp.connect(connect_opts(server, s2))
      c2:authenticate {}
      c2:sendmail(RAW)
      c2:quit()
    end)
    local sok, serr, received = server:result()
    assert.is_true(ok, tostring(err))
    assert.is_true(sok, serr)
    assert.equal(1, #called(s1, "setkeepalive"))
    -- The connect calls' pool names (the first call may be settimeouts,
    -- whose remaining-time values differ on a slow run).
    local pool1 = called(s1, "connect")[1][4]
    assert.is_string(pool1)
    assert.equal(pool1, called(s2, "connect")[1][4], "same pool name")
    assert.equal("EHLO client.example\r\nRSET\r\nRSET\r\nMAIL FROM:<a@example.org>\r\n"
      .. "RCPT TO:<b@example.org>\r\nDATA\r\n" .. STUFFED .. ".\r\nQUIT\r\n", received[1])
  end)

  it("quits instead of pooling when RSET is refused", function()
    local server = scripted.start(EHLO .. [[
C: RSET
S: 451 4.3.0 no
C: QUIT
S: 221 bye
]])
    local s1 = luasocket_cosocket()
    local ok, pooled = pcall(function()
      local c = smtp.connect(connect_opts(server, s1))
      c:helo()
      return c:set_keepalive(1000, 5)
    end)
    local sok, serr = server:result()
    assert.is_true(ok, tostring(pooled))
    assert.is_false(pooled)
    assert.is_true(sok, serr)
    assert.equal(0, #called(s1, "setkeepalive"))
  end)
end)

describe("smtp.transport.cosocket pool names and TLS", function()
  it("puts credentials and TLS wishes in the pool name, never in clear", function()
    local a = cosocket.pool_name({ user = "alice", password = "one" }, "mx", 25, "none")
    local b = cosocket.pool_name({ user = "alice", password = "two" }, "mx", 25, "none")
    local c = cosocket.pool_name({ user = "alice", password = "one", tls = {} }, "mx", 25, "none")
    local d = cosocket.pool_name({ user = "alice", password = "one" }, "mx", 25, "none")
    assert.are_not.equal(a, b)
    assert.are_not.equal(a, c)
    assert.equal(a, d)
  end)

  it("hands STARTTLS to sslhandshake with the peer name and the config's verify mode", function()
    local calls = {}
    local fake = {
      send = function() return 1 end,
      receiveany = function() return nil, "closed" end,
      settimeouts = function() end,
      close = function() calls[#calls + 1] = "close" end,
      sslhandshake = function(_, reused, name, verify)
        calls[#calls + 1] = { reused, name, verify }
        return true
      end,
    }
    local t = cosocket.wrap(fake, { tls_engine = "host" })
    t:set_deadline(core.now() + 5)
    assert.is_true(t:starttls(smtp.tls_config { verify = "none" }, "mx.example.org"))
    assert.same({ false, "mx.example.org", false }, calls[1])
    assert.is_false(t:tls_info().peer_verified)
    local t2 = cosocket.wrap(fake, { tls_engine = "host" })
    t2:set_deadline(core.now() + 5)
    assert.is_true(t2:starttls(smtp.tls_config {}, "mx.example.org"))
    assert.same({ false, "mx.example.org", true }, calls[2])
    assert.is_true(t2:tls_info().peer_verified)
  end)

  it("closes the socket when the handshake fails", function()
    local closed = 0
    local fake = {
      send = function() return 1 end, receiveany = function() return nil, "closed" end,
      settimeouts = function() end, close = function() closed = closed + 1 end,
      sslhandshake = function() return nil, "handshake failed" end,
    }
    local t = cosocket.wrap(fake, { tls_engine = "host" })
    local ok, kind = t:starttls(smtp.tls_config {}, "mx.example.org")
    assert.is_nil(ok)
    assert.equal("tls", kind)
    assert.equal(1, closed)
    assert.is_true(t:is_closed())
  end)

  it("fails with timeout, without waiting, once the deadline has passed", function()
    local fake = { send = function() error("must not write") end, settimeouts = function() end,
      close = function() end, receiveany = function() error("must not read") end }
    local t = cosocket.wrap(fake)
    t:set_deadline(core.now() - 1)
    local ok, kind = t:send("NOOP\r\n")
    assert.is_nil(ok)
    assert.equal("timeout", kind)
  end)
end)

-- A connected cosocket-like table without a server: 'chunks' are what
-- receiveany (or receive("*l") with lines = true) hands out in turn.
local function fake_transport(chunks, lines)
  local f = { sent = {}, handshakes = {}, closed = 0 }
  function f:send(d)
    if type(d) == "table" then d = table.concat(d) end
    self.sent[#self.sent + 1] = d
    return #d
  end
  local function next_chunk()
    local c = table.remove(chunks, 1)
    if not c then return nil, "closed" end
    return c
  end
  if lines then
    function f.receive(_, pattern)
      assert(pattern == "*l", "unexpected receive pattern")
      return next_chunk()
    end
  else
    function f.receiveany() return next_chunk() end
  end
  function f.settimeouts() end
  function f:close() self.closed = self.closed + 1; return 1 end
  function f:sslhandshake(reused, name, verify)
    self.handshakes[#self.handshakes + 1] = { reused, name, verify }
    return true
  end
  return f
end

local function raises(kind, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "no error")
  assert.is_true(smtp.Error.is(err), tostring(err))
  assert.equal(kind, err.kind, tostring(err))
  return err
end

describe("smtp.transport.cosocket security (review 2026-12)", function()
  it("H2: refuses verify=peer to an IP literal without tls.server_name (kind tls)", function()
    for _, ip in ipairs({ "192.0.2.25", "2001:db8::25", "[2001:db8::25]", "[IPv6:2001:db8::25]" }) do
      local f = fake_transport({ "220 mx.example.org ESMTP\r\n" })
      local t = cosocket.wrap(f, { tls_engine = "host" })
      t:set_deadline(core.now() + 5)
      local ok, kind, msg = t:starttls(smtp.tls_config {}, ip)
      assert.is_nil(ok, ip)
      assert.equal("tls", kind)
      assert.truthy(msg:find("server_name", 1, true), msg)
      assert.equal(0, #f.handshakes, ip)
      assert.is_true(t:is_closed())
      assert.is_nil(t:tls_info())
    end
    for _, host in ipairs({ "192.0.2.25", "[2001:db8::25]" }) do
      local f = fake_transport({ "220 mx.example.org ESMTP\r\n" })
      local err = raises("tls", smtp.connect, { host = host, tls_mode = "implicit", tls = {}, transport = f,
        tls_engine = "host", timeout = 5 })
      assert.truthy(tostring(err):find("IP address", 1, true), tostring(err))
      assert.equal(0, #f.handshakes)
      assert.same({}, f.sent)
    end
  end)

  it("H2: checks tls.server_name for an IP target, and verify=none is never reported as verified", function()
    local f = fake_transport({ "220 mx.example.org ESMTP\r\n" })
    local c = smtp.connect { host = "192.0.2.25", tls_mode = "implicit", transport = f, tls_engine = "host", timeout = 5,
      tls = { server_name = "mx.example.org" } }
    assert.same({ false, "mx.example.org", true }, f.handshakes[1])
    assert.is_true(c:tls_info().peer_verified)
    c:close()
    local f2 = fake_transport({ "220 mx.example.org ESMTP\r\n" })
    local c2 = smtp.connect { host = "192.0.2.25", tls_mode = "implicit", transport = f2, tls_engine = "host", timeout = 5,
      tls = { verify = "none" } }
    assert.same({ false, nil, false }, f2.handshakes[1])
    assert.is_false(c2:tls_info().peer_verified)
    c2:close()
  end)

  it("M5: refuses STARTTLS (kind tls) on a transport that reads with receive('*l')", function()
    -- The MITM's forged EHLO reply rides in the same segment as the 220.
    local f = fake_transport({ "220 mx.example.org ESMTP", "250-mx.example.org", "250 STARTTLS",
      "220 go ahead", "250-mx.example.org", "250 AUTH INJECTED-BY-MITM" }, true)
    local c = smtp.connect { host = "mx.example.org", transport = f,
      tls_engine = "host", timeout = 5, local_name = "client.example" }
    local err = raises("tls", c.authenticate, c, { tls = {}, tls_required = true })
    assert.truthy(tostring(err):find("receiveany", 1, true), tostring(err))
    assert.equal(0, #f.handshakes)
    assert.is_true(c:closed())
    -- Asked for at connect, STARTTLS is refused before anything is sent.
    local f2 = fake_transport({ "220 mx.example.org ESMTP" }, true)
    raises("tls", smtp.connect, { host = "mx.example.org", transport = f2, tls_engine = "host", timeout = 5, tls = {} })
    assert.same({}, f2.sent)
  end)

  it("M5: allows implicit TLS on such a transport (the handshake precedes every read)", function()
    local f = fake_transport({ "220 mx.example.org ESMTP" }, true)
    local c = smtp.connect { host = "mx.example.org", tls_mode = "implicit", tls = {}, transport = f,
      tls_engine = "host", timeout = 5 }
    assert.same({ false, "mx.example.org", true }, f.handshakes[1])
    assert.is_true(c:tls_info().peer_verified)
    c:close()
  end)

  it("L8: keys pools by verify mode, server name and peer name", function()
    local function name(tls, extra)
      local o = { user = "alice", password = "one", tls = tls }
      for k, v in pairs(extra or {}) do o[k] = v end
      return cosocket.pool_name(o, "mx", 25, "none")
    end
    assert.are_not.equal(name { verify = "none" }, name { verify = "peer" })
    assert.are_not.equal(name { verify = "none" }, name {})
    assert.are_not.equal(name { verify = false }, name { verify = true })
    assert.equal(name { verify = "peer" }, name { verify = true })
    assert.are_not.equal(name { server_name = "a.example" }, name { server_name = "b.example" })
    assert.are_not.equal(name({}, { tls_peer = "a.example" }), name({}, { tls_peer = "b.example" }))
    assert.are_not.equal(name(smtp.tls_config { verify = "none" }), name(smtp.tls_config {}))
    assert.equal(name(smtp.tls_config { verify = "none" }), name { verify = "none" })
  end)

  it("L8: never hands a pooled verify=none connection to a verify=peer request", function()
    local TLS_EHLO = [[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250 STARTTLS
C: STARTTLS
S: 220 go ahead
C: EHLO client.example
S: 250-mx.example.org
S: 250 ENHANCEDSTATUSCODES
]]
    local server = scripted.start(TLS_EHLO .. "C: RSET\nS: 250 reset\nNEXT\n" .. TLS_EHLO .. "C: QUIT\nS: 221 bye\n", 2)
    local s1, s2 = luasocket_cosocket { fake_tls = true }, luasocket_cosocket { fake_tls = true }
    local ok, err = pcall(function()
      local o1 = connect_opts(server, s1, { tls_engine = "host", tls = { verify = "none" }, tls_peer = "mx.example.org" })
      local c1 = smtp.connect(o1)
      c1:authenticate { tls = o1.tls, tls_peer = o1.tls_peer }
      assert.is_false(c1:tls_info().peer_verified)
      assert.is_true(c1:set_keepalive(10000, 5))
      local o2 = connect_opts(server, s2, { tls_engine = "host", tls = { verify = "peer" }, tls_peer = "mx.example.org" })
      local c2 = smtp.connect(o2)
      c2:authenticate { tls = o2.tls, tls_peer = o2.tls_peer }
      assert.is_true(c2:tls_info().peer_verified)
      c2:quit()
    end)
    local sok, serr = server:result(5)
    assert.is_true(ok, tostring(err))
    assert.is_true(sok, serr)
    assert.are_not.equal(called(s1, "connect")[1][4], called(s2, "connect")[1][4])
    assert.same({ "sslhandshake", false, "mx.example.org", true }, called(s2, "sslhandshake")[1])
  end)

  it("L8: pools a connection only in the TLS state its pool name promises", function()
    local server = scripted.start([[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250 mx.example.org
C: QUIT
S: 221 bye
NEXT
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250 STARTTLS
C: STARTTLS
S: 220 go ahead
C: EHLO client.example
S: 250 mx.example.org
C: QUIT
S: 221 bye
]], 2)
    local s1, s2 = luasocket_cosocket { fake_tls = true }, luasocket_cosocket { fake_tls = true }
    local ok, err = pcall(function()
      -- Opportunistic TLS that fell back to plaintext: not what the name says.
      local tls = { verify = "none" }
      local o = { tls = tls, tls_peer = "mx.example.org", tls_required = false }
      local c1 = smtp.connect(connect_opts(server, s1, o))
      c1:authenticate(o)
      assert.is_nil(c1:tls_info())
      assert.is_false(c1:set_keepalive(10000, 5))
      -- TLS asked for only in authenticate: the pool name promised none.
      local c2 = smtp.connect(connect_opts(server, s2, { tls_engine = "host" }))
      c2:authenticate(o)
      assert.is_false(c2:set_keepalive(10000, 5))
    end)
    local sok, serr = server:result(5)
    assert.is_true(ok, tostring(err))
    assert.is_true(sok, serr)
    assert.equal(0, #called(s1, "setkeepalive"))
    assert.equal(0, #called(s2, "setkeepalive"))
  end)

  it("L8: a resumed connection reports the TLS facts of its own handshake", function()
    local server = scripted.start([[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250 STARTTLS
C: STARTTLS
S: 220 go ahead
C: EHLO client.example
S: 250 mx.example.org
C: RSET
S: 250 reset
C: RSET
S: 250 reset
C: QUIT
S: 221 bye
]])
    local s1, s2 = luasocket_cosocket { fake_tls = true }, luasocket_cosocket { fake_tls = true }
    local ok, err = pcall(function()
      local o = { tls = { verify = "peer" }, tls_peer = "mx.example.org", tls_required = true, tls_engine = "host" }
      local c1 = smtp.connect(connect_opts(server, s1, o))
      c1:authenticate(o)
      assert.is_true(c1:set_keepalive(10000, 5))
      local c2 = smtp.connect(connect_opts(server, s2, o))
      c2:authenticate(o)
      local info = c2:tls_info()
      assert.is_table(info, "no tls_info on the resumed connection")
      assert.is_true(info.peer_verified)
      c2:quit()
    end)
    local sok, serr = server:result(5)
    assert.is_true(ok, tostring(err))
    assert.is_true(sok, serr)
    assert.equal(0, #called(s2, "sslhandshake"))
  end)

  it("L9: refuses TLS options the cosocket transport cannot honour (kind usage, naming the option)", function()
    local values = { ca_file = "/etc/ssl/private-ca.pem", ca_path = "/etc/ssl/certs", ca_pem = "-----BEGIN",
      min_version = "1.3", max_version = "1.2", cert_file = "/c.pem", key_file = "/k.pem", cert_pem = "-----BEGIN",
      key_pem = "-----BEGIN", key_password = "x" }
    for opt, v in pairs(values) do
      for _, mode in ipairs({ "implicit", "none" }) do
        local f = fake_transport({ "220 mx.example.org ESMTP\r\n" })
        local err = raises("usage", smtp.connect, { host = "mx.example.org", tls_mode = mode, transport = f, tls_engine = "host",
          timeout = 5, tls = { [opt] = v } })
        assert.truthy(err.message:find("'" .. opt .. "'", 1, true), err.message)
        assert.equal(0, #f.handshakes)
      end
    end
    -- In authenticate too, before STARTTLS is sent.
    local f = fake_transport({ "220 mx.example.org ESMTP\r\n" })
    local c = smtp.connect { host = "mx.example.org", transport = f, tls_engine = "host", timeout = 5 }
    local err = raises("usage", c.authenticate, c, { tls = { ca_file = "/etc/ssl/private-ca.pem" } })
    assert.truthy(err.message:find("'ca_file'", 1, true), err.message)
    assert.same({}, f.sent)
    c:close()
  end)

  it("L9r: refuses the same options inside an smtp.tls_config object (kind usage, naming the option)", function()
    local pki = require("helpers.certs").make()
    local objects = {
      ca_file = smtp.tls_config { ca_file = pki.ca_cert },
      ca_pem = smtp.tls_config { ca_pem = assert(io.open(pki.ca_cert)):read("*a") },
      min_version = smtp.tls_config { min_version = "1.2" },
      max_version = smtp.tls_config { max_version = "1.2" },
      cert_file = smtp.tls_config { cert_file = pki.client_cert, key_file = pki.client_key },
    }
    for opt, cfg in pairs(objects) do
      for _, mode in ipairs({ "implicit", "none" }) do
        local f = fake_transport({ "220 mx.example.org ESMTP\r\n" })
        local err = raises("usage", smtp.connect, { host = "mx.example.org", tls_mode = mode, transport = f, tls_engine = "host",
          timeout = 5, tls = cfg })
        assert.truthy(err.message:find("'" .. opt .. "'", 1, true), opt .. ": " .. err.message)
        assert.equal(0, #f.handshakes)
      end
    end
    local f = fake_transport({ "220 mx.example.org ESMTP\r\n" })
    local c = smtp.connect { host = "mx.example.org", transport = f, tls_engine = "host", timeout = 5 }
    local err = raises("usage", c.authenticate, c, { tls = objects.ca_file })
    assert.truthy(err.message:find("'ca_file'", 1, true), err.message)
    assert.same({}, f.sent)
    c:close()
    -- What nginx does honour (verify, server_name) stays accepted.
    assert.same({ "verify", "server_name" },
      smtp.tls_config { verify = "none", server_name = "mx.example.org" }:given_options())
    local f2 = fake_transport({ "220 mx.example.org ESMTP\r\n" })
    local c2 = smtp.connect { host = "mx.example.org", transport = f2, tls_engine = "host", timeout = 5,
      tls = smtp.tls_config { verify = "none", server_name = "mx.example.org" } }
    c2:close()
  end)

  it("L10: keeps the user and the password out of pool names and module tables", function()
    local USER, PW = "alice-the-user", "s3cret-PW!"
    local server = scripted.start(([[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250 AUTH PLAIN
C: AUTH PLAIN %s
S: 235 ok
C: RSET
S: 250 reset
]]):format(core.b64_encode("\0" .. USER .. "\0" .. PW)))
    local s1 = luasocket_cosocket()
    local client
    local ok, err = pcall(function()
      local o = { user = USER, password = PW, allow_plaintext = true }
      client = smtp.connect(connect_opts(server, s1, o))
      client:authenticate(o)
      assert.is_true(client:set_keepalive(10000, 5))
    end)
    local sok, serr = server:result(5)
    assert.is_true(ok, tostring(err))
    assert.is_true(sok, serr)
    local pool = called(s1, "connect")[1][4]
    assert.is_string(pool)
    for _, secret in ipairs({ USER, PW }) do
      assert.is_nil(pool:find(secret, 1, true), pool)
      assert.is_nil(tostring(client._auth_creds):find(secret, 1, true))
    end
    -- Everything the module keeps: its tables and its functions' upvalues.
    local seen = {}
    local function scan(v, path)
      if seen[v] then return end
      if type(v) == "string" then
        assert.is_nil(v:find(USER, 1, true), path)
        assert.is_nil(v:find(PW, 1, true), path)
      elseif type(v) == "table" and v ~= _G and v ~= package.loaded then
        seen[v] = true
        for k, x in pairs(v) do
          scan(k, path .. ".<key>")
          scan(x, path .. "." .. tostring(k))
        end
      elseif type(v) == "function" then
        seen[v] = true
        local i = 1
        while true do
          local name, x = debug.getupvalue(v, i)
          if not name then break end
          if name ~= "_ENV" then scan(x, path .. "^" .. name) end
          i = i + 1
        end
      end
    end
    scan(cosocket, "cosocket")
  end)

  it("L14: a NUL byte in the message fails as usage/not_sent before any body byte or terminator", function()
    for _, chunking in ipairs({ false, true }) do
      local ext = chunking and "250-CHUNKING\r\n" or ""
      local f = fake_transport({ "220 mx.example.org ESMTP\r\n", "250-mx.example.org\r\n" .. ext .. "250 8BITMIME\r\n",
        "250 ok\r\n", "250 ok\r\n", "354 go\r\n" })
      local c = smtp.connect { host = "mx.example.org", transport = f,
        tls_engine = "host", timeout = 5, local_name = "c.example" }
      -- A function source: a string with a NUL is judged before MAIL.
      local chunks = { "Subject: t\r\n\r\n", "before\0after\r\n" }
      local err = raises("usage", c.sendmail, c, function() return table.remove(chunks, 1) end,
        { from = "a@example.org", to = { "b@example.org" } })
      assert.equal("not_sent", err.outcome)
      assert.is_false(err.retryable)
      assert.truthy(err.message:find("NUL", 1, true), err.message)
      local wire = table.concat(f.sent)
      assert.is_nil(wire:find("before", 1, true), wire)
      assert.is_nil(wire:find("\r\n.\r\n", 1, true), wire)
      assert.is_nil(wire:find("BDAT", 1, true), wire)
      assert.is_true(f.closed >= 1)
    end
  end)

  it("reports a socket closed by the certificate check right after a 'successful' handshake as kind tls", function()
    -- lua-nginx-module 0.10.23: a handshake that completes at once may
    -- return true after its certificate check failed and closed the socket.
    local f = fake_transport({ "220 mx.example.org ESMTP\r\n", "250-mx.example.org\r\n250 STARTTLS\r\n",
      "220 go ahead\r\n" })
    local sends = 0
    function f:send(d)
      sends = sends + 1
      if #self.handshakes > 0 then return nil, "closed" end
      self.sent[#self.sent + 1] = type(d) == "table" and table.concat(d) or d
      return #self.sent[#self.sent]
    end
    local c = smtp.connect { host = "mx.example.org", transport = f, tls_engine = "host", timeout = 5, local_name = "c.example" }
    local err = raises("tls", c.authenticate, c, { tls = { verify = "peer" } })
    assert.truthy(err.message:find("certificate", 1, true), err.message)
    assert.equal(3, sends)
    assert.same({ "EHLO c.example\r\n", "STARTTLS\r\n" }, f.sent)
  end)

  it("L10: pool_key is a keyed digest (64 hex digits, stable within the process)", function()
    local a = core.pool_key("alice|s3cret")
    assert.equal(64, #a)
    assert.truthy(a:find("^%x+$"))
    assert.equal(a, core.pool_key("alice|s3cret"))
    assert.are_not.equal(a, core.pool_key("alice|s3creT"))
  end)
end)
