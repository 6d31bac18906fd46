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
  function s.sslhandshake(_, reused, name, verify)
    note("sslhandshake", reused, name, verify)
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
    -- calls[1] is settimeouts (from the remaining deadline, which may
    -- differ by a few ms); the pool name is connect's fourth field.
    local p1, p2 = called(s1, "connect")[1][4], called(s2, "connect")[1][4]
    assert.is_string(p1)
    assert.equal(p1, p2, "same pool name")
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
    local t = cosocket.wrap(fake)
    t:set_deadline(core.now() + 5)
    assert.is_true(t:starttls(smtp.tls_config { verify = "none" }, "mx.example.org"))
    assert.same({ false, "mx.example.org", false }, calls[1])
    assert.is_false(t:tls_info().peer_verified)
    local t2 = cosocket.wrap(fake)
    t2:set_deadline(core.now() + 5)
    assert.is_true(t2:starttls(smtp.tls_config {}, "127.0.0.1"))
    assert.same({ false, nil, true }, calls[2])
  end)

  it("closes the socket when the handshake fails", function()
    local closed = 0
    local fake = {
      send = function() return 1 end, receiveany = function() return nil, "closed" end,
      settimeouts = function() end, close = function() closed = closed + 1 end,
      sslhandshake = function() return nil, "handshake failed" end,
    }
    local t = cosocket.wrap(fake)
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
