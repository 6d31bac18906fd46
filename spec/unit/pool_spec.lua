-- smtp.pool against scripted servers: connection reuse with an RSET
-- health check, max_messages, idle_timeout, failover (connect refused,
-- 421 greeting, TLS failure), cool-down, smooth weighted spreading,
-- retries only to recipients not yet accepted with exponential backoff,
-- permanent and unknown outcomes, and per-server rate limits. Every byte
-- the pool sends is checked by the transcripts; time is a fake clock
-- (the undocumented _now option) advanced by the injected sleep.
local smtp = require "smtp"
local scripted = require "helpers.scripted"

local GREET = "S: 220 mx ESMTP\nC: EHLO client.example\nS: 250-mx\nS: 250 ENHANCEDSTATUSCODES\n"
local RSET = "C: RSET\nS: 250 2.0.0 ok\n"
local QUIT = "C: QUIT\nS: 221 2.0.0 bye\n"
local RAW = "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n"
local RAW3 = "From: a@example.org\r\nTo: b@example.org, c@example.org, d@example.org\r\n\r\nhi\r\n"

-- One lockstep transaction; 'rcpts' = { {address, reply}, ... }.
local function txn(rcpts, final)
  local t = { "C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok" }
  for _, r in ipairs(rcpts or { { "b@example.org", "250 2.1.5 ok" } }) do
    t[#t + 1] = "C: RCPT TO:<" .. r[1] .. ">"
    t[#t + 1] = "S: " .. r[2]
  end
  t[#t + 1] = "C: DATA\nS: 354 go\nBODY\nS: " .. (final or "250 2.0.0 queued as Q1")
  return table.concat(t, "\n") .. "\n"
end

-- n transactions over one connection, RSET before each reused one.
local function txns(n)
  local t = { GREET }
  for i = 1, n do
    if i > 1 then t[#t + 1] = RSET end
    t[#t + 1] = txn()
  end
  return table.concat(t)
end

local function fake_time()
  local clock = { t = 1000, delays = {} }
  clock.now = function() return clock.t end
  clock.sleep = function(s)
    clock.delays[#clock.delays + 1] = s
    clock.t = clock.t + s
  end
  return clock
end

local started = {}
local function server(transcript, connections)
  local h = scripted.start(transcript, connections)
  started[#started + 1] = h
  return h
end

-- A port nothing listens on: a scripted server's, after it is stopped.
local function dead_port()
  local h = scripted.start("S: 220 x\n")
  local port = h.port
  h:stop()
  return port
end

local function pool_of(servers, clock, extra)
  local opts = {
    servers = servers, timeout = 5, local_name = "client.example",
    _now = clock.now, sleep = clock.sleep, cooldown = 30,
    retry = { limit = 5, base = 1, factor = 2, jitter = 0.2 },
    -- The fake clock does not move between sends: 0 keeps the RSET check
    -- on every reuse, which the transcripts below spell out.
    check_idle_after = 0,
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return smtp.pool(opts)
end

local function entry(h, more)
  local e = { host = "127.0.0.1", port = type(h) == "number" and h or h.port }
  for k, v in pairs(more or {}) do e[k] = v end
  return e
end

local function label(h) return "127.0.0.1:" .. (type(h) == "number" and h or h.port) end

local function expect_ok(h)
  local ok, why, received = h:result(10)
  assert.is_true(ok, why)
  return received
end

local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

after_each(function()
  for _, h in ipairs(started) do h:stop() end
  started = {}
end)

describe("smtp.pool options", function()
  it("rejects bad options with kind usage", function()
    for _, opts in ipairs({
      {}, { servers = {} }, { servers = { { port = 25 } } },
      { servers = { { host = "x", weight = 0 } } },
      { servers = { { host = "x" } }, max_messages = 0 },
      { servers = { { host = "x" } }, retry = { limit = 0 } },
      { servers = { { host = "x" } }, retry = { jitter = 2 } },
      { servers = { { host = "x" } }, rate = { per = 1 } },
      { servers = { { host = "x" } }, transport = {} },
      { servers = { { host = "x" } }, sleep = 1 },
    }) do
      local ok, err = pcall(smtp.pool, opts)
      assert.is_false(ok)
      assert.is_true(smtp.Error.is(err), tostring(err))
      assert.equal("usage", err.kind)
    end
  end)
end)

describe("smtp.pool envelope", function()
  it("checks a given envelope before any connection, with kind usage", function()
    -- Nothing listens on the port: a usage error must come first.
    local pool = smtp.pool { servers = { { host = "127.0.0.1", port = dead_port() } }, retry = { limit = 1 } }
    for _, opts in ipairs({
      { from = "a@example.org", to = { "b@example.org>\r\nRCPT TO:<evil@example.org" } },
      { from = "a@example.org\r\nRSET", to = "b@example.org" },
      { from = "a@example.org", to = {} },
      { from = "a@example.org", to = { 42 } },
    }) do
      local ok, err = pcall(pool.send, pool, RAW, opts)
      assert.is_false(ok)
      assert.is_true(smtp.Error.is(err), tostring(err))
      assert.equal("usage", err.kind, err.message)
    end
  end)

  it("takes one address or a list, bare or in angle brackets", function()
    local h = server(GREET .. txn() .. RSET .. txn() .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, { check_idle_after = 0 })
    local r1 = pool:send(RAW, { from = "<a@example.org>", to = "B <b@example.org>" })
    local r2 = pool:send(RAW, { from = "a@example.org", to = { { address = "b@example.org" } } })
    assert.same({ "b@example.org" }, r1.accepted)
    assert.same({ "b@example.org" }, r2.accepted)
    assert.equal(1, r2.tries)
    assert.same({ label(h) }, r2.servers)
    assert.equal(label(h), r2.server)
    pool:close()
    expect_ok(h)
  end)
end)

describe("smtp.pool connections", function()
  it("reuses a connection after RSET and reconnects after max_messages", function()
    local h = server(txns(2) .. QUIT .. "NEXT\n" .. txns(1) .. QUIT, 2)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, { max_messages = 2 })
    for _ = 1, 3 do
      local report = pool:send(RAW)
      assert.same({ "b@example.org" }, report.accepted)
      assert.equal(1, report.tries)
      assert.equal(label(h), report.server)
      assert.same({ label(h) }, report.servers)
      assert.equal("Q1", report.reply.queue_id)
    end
    pool:close()
    local received = expect_ok(h)
    assert.equal(1, count(received[1], "RSET\r\n"))
    assert.equal(0, count(received[2], "RSET\r\n"))
    assert.same({}, clock.delays)
  end)

  it("drops an idle connection that fails its health check, without a try", function()
    local h = server(GREET .. txn() .. "C: RSET\nS: 451 4.3.0 not now\nNEXT\n" .. GREET .. txn() .. QUIT, 2)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock)
    assert.equal(1, pool:send(RAW).tries)
    local report = pool:send(RAW)
    assert.equal(1, report.tries)
    assert.same({ "b@example.org" }, report.accepted)
    pool:close()
    expect_ok(h)
  end)

  it("closes a connection idle longer than idle_timeout instead of reusing it", function()
    local h = server(GREET .. txn() .. "NEXT\n" .. GREET .. txn() .. QUIT, 2)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, { idle_timeout = 10 })
    pool:send(RAW)
    clock.t = clock.t + 11
    pool:send(RAW)
    pool:close()
    local received = expect_ok(h)
    assert.equal(0, count(received[1], "RSET\r\n"))
  end)
end)

-- Issue 23: a connection idle less than check_idle_after seconds is
-- reused without RSET; one the server closed meanwhile is replaced within
-- the same try when nothing of the message can have been accepted.
describe("smtp.pool reuse without RSET", function()
  local PIPE_GREET = "S: 220 mx ESMTP\nC: EHLO client.example\nS: 250-mx\nS: 250 PIPELINING\n"
  local CHUNK_GREET = "S: 220 mx ESMTP\nC: EHLO client.example\nS: 250-mx\nS: 250-PIPELINING\nS: 250 CHUNKING\n"
  local MAIL = "C: MAIL FROM:<a@example.org>\n"
  -- MAIL, RCPT and DATA in one write, then the replies (RFC 2920).
  local PIPE_TXN = MAIL .. "C: RCPT TO:<b@example.org>\nC: DATA\n"
    .. "S: 250 2.1.0 ok\nS: 250 2.1.5 ok\nS: 354 go\nBODY\nS: 250 2.0.0 queued as Q1\n"

  local function young(extra)
    local opts = { check_idle_after = 1 }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return opts
  end

  it("rejects a bad check_idle_after with kind usage", function()
    for _, v in ipairs({ -1, "1", 0 / 0, 1e9 }) do
      local ok, err = pcall(smtp.pool, { servers = { { host = "x" } }, check_idle_after = v })
      assert.is_false(ok)
      assert.is_true(smtp.Error.is(err), tostring(err))
      assert.equal("usage", err.kind)
    end
  end)

  it("sends MAIL at once on a connection idle less than check_idle_after", function()
    local h = server(GREET .. txn() .. txn() .. txn() .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, young())
    for _ = 1, 3 do
      assert.equal(1, pool:send(RAW).tries)
      clock.t = clock.t + 0.9
    end
    pool:close()
    assert.equal(0, count(expect_ok(h)[1], "RSET"))
  end)

  it("is the default: check_idle_after = 1", function()
    local h = server(GREET .. txn() .. txn() .. QUIT)
    local clock = fake_time()
    local pool = smtp.pool { servers = { entry(h) }, timeout = 5, local_name = "client.example",
      _now = clock.now, sleep = clock.sleep }
    pool:send(RAW)
    clock.t = clock.t + 0.5
    pool:send(RAW)
    clock.t = clock.t + 1
    pool:close()
    assert.equal(0, count(expect_ok(h)[1], "RSET"))
  end)

  it("checks with RSET a connection idle check_idle_after seconds or more", function()
    local h = server(GREET .. txn() .. RSET .. txn() .. txn() .. RSET .. txn() .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, young())
    pool:send(RAW)
    clock.t = clock.t + 1
    pool:send(RAW)
    clock.t = clock.t + 0.5
    pool:send(RAW)
    clock.t = clock.t + 5
    pool:send(RAW)
    pool:close()
    assert.equal(2, count(expect_ok(h)[1], "RSET"))
  end)

  it("checks with RSET a young connection whose last transaction failed", function()
    local h = server(GREET .. "C: MAIL FROM:<a@example.org>\nS: 451 4.3.0 try later\nC: RSET\nS: 250 ok\n"
      .. RSET .. txn() .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, young({ retry = { limit = 2, base = 0.1, jitter = 0 } }))
    assert.equal(2, pool:send(RAW).tries)
    pool:close()
    assert.equal(2, count(expect_ok(h)[1], "RSET"))
  end)

  local BDAT_TXN = MAIL .. "C: RCPT TO:<b@example.org>\nBDAT\n"
    .. "S: 250 2.1.0 ok\nS: 250 2.1.5 ok\nS: 250 2.0.0 queued as Q1\n"

  it("reuses a young CHUNKING session without RSET when nothing arrived while it idled", function()
    local h = server(CHUNK_GREET .. BDAT_TXN .. BDAT_TXN .. BDAT_TXN .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, young())
    for _ = 1, 3 do
      assert.equal(1, pool:send(RAW).tries)
      clock.t = clock.t + 0.5
    end
    pool:close()
    assert.equal(0, count(expect_ok(h)[1], "RSET"))
  end)

  it("checks an old CHUNKING session with RSET, and one whose last transaction failed", function()
    local h = server(CHUNK_GREET .. BDAT_TXN .. RSET .. BDAT_TXN .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, young())
    pool:send(RAW)
    clock.t = clock.t + 2
    pool:send(RAW)
    pool:close()
    assert.equal(1, count(expect_ok(h)[1], "RSET"))
  end)

  -- The message would leave with the first write, so a session the server
  -- dropped must be found before it: by its FIN (or a 421 it sent), which
  -- the socket already holds, not by writing into it.
  for _, case in ipairs({ { "FIN", "" }, { "421 then FIN", "S: 421 4.4.2 mx idle too long\n" } }) do
    it("replaces a young CHUNKING session the server dropped (" .. case[1] .. ") before writing to it", function()
      local h = server(CHUNK_GREET .. BDAT_TXN .. case[2] .. "NEXT\n" .. CHUNK_GREET .. BDAT_TXN .. QUIT, 2)
      local clock = fake_time()
      local pool = pool_of({ entry(h) }, clock, young({ retry = { limit = 1 } }))
      assert.equal(1, pool:send(RAW).tries)
      os.execute("sleep 1") -- the server's NEXT closes after 0.5 s
      clock.t = clock.t + 0.5
      local report = pool:send(RAW)
      assert.equal(1, report.tries)
      assert.equal("Q1", report.reply.queue_id)
      pool:close()
      assert.same({}, clock.delays)
      local received = expect_ok(h)
      assert.equal(1, count(received[1], "MAIL FROM"))
      assert.equal(0, count(received[1], "RSET"))
      assert.equal(1, count(received[2], "MAIL FROM"))
    end)
  end

  it("checks every reuse of a CHUNKING session whose transport cannot peek (RSET)", function()
    local h = server(CHUNK_GREET .. BDAT_TXN .. RSET .. BDAT_TXN .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, young())
    pool:send(RAW)
    -- As a host socket's transport (no input_pending): the pool cannot know.
    local client = pool.servers[1].idle[1].client
    rawset(client, "_input_pending", function() return nil end)
    pool:send(RAW)
    pool:close()
    assert.equal(1, count(expect_ok(h)[1], "RSET"))
  end)

  it("sends DATA sessions without RSET whatever CHUNKING says when chunking = false", function()
    local h = server(CHUNK_GREET .. BDAT_TXN .. MAIL
      .. "C: RCPT TO:<b@example.org>\nC: DATA\nS: 250 2.1.0 ok\nS: 250 2.1.5 ok\nS: 354 go\nBODY\n"
      .. "S: 250 2.0.0 queued as Q1\n" .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, young())
    pool:send(RAW)
    pool:send(RAW, { chunking = false })
    pool:close()
    assert.equal(0, count(expect_ok(h)[1], "RSET"))
  end)

  -- The server drops the connection (NEXT: it reads for 0.5 s, closes,
  -- and takes the next one): the pool sends MAIL, finds it dead, and
  -- delivers on a fresh connection in the same try; the relay is not
  -- cooled down (a third send needs no wait).
  local function replaced(first, label_of_case, real_idle)
    it("replaces a connection the server closed: " .. label_of_case, function()
      local h = server(first .. "NEXT\n" .. GREET .. txn() .. txn() .. QUIT, 2)
      local clock = fake_time()
      local pool = pool_of({ entry(h) }, clock, young({ retry = { limit = 1 } }))
      assert.equal(1, pool:send(RAW).tries)
      -- Idle long enough (really) for the server to have closed first.
      if real_idle then os.execute("sleep " .. real_idle) end
      clock.t = clock.t + 0.5
      for _ = 1, 2 do
        local report = pool:send(RAW)
        assert.equal(1, report.tries)
        assert.same({ label(h) }, report.servers)
        assert.same({ "b@example.org" }, report.accepted)
        assert.equal("Q1", report.reply.queue_id)
      end
      pool:close()
      assert.same({}, clock.delays)
      local received = expect_ok(h)
      assert.equal(0, count(received[1], "RSET"))
      assert.equal(2, count(received[2], "MAIL FROM"))
    end)
  end
  replaced(GREET .. txn(), "while idle, before MAIL", 1)
  replaced(GREET .. txn() .. MAIL, "MAIL read, no reply")
  replaced(GREET .. txn() .. MAIL .. "S: 421 4.4.2 mx idle too long\n", "421 to MAIL")
  replaced(PIPE_GREET .. PIPE_TXN .. MAIL, "pipelined MAIL RCPT DATA, no reply")

  it("is not fooled into resending once the body went out on a reused connection", function()
    local h = server(GREET .. txn() .. MAIL .. "S: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\n"
      .. "C: DATA\nS: 354 go\nBODY\nCLOSE\n")
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, young())
    pool:send(RAW)
    local ok, err = pcall(pool.send, pool, RAW)
    pool:close()
    assert.is_false(ok)
    assert.equal("unknown", err.outcome)
    assert.equal(1, err.tries)
    local _, _, received = h:result(10)
    assert.equal(2, count(received[1], "\r\n%.\r\n"))
    assert.is_nil(received[2])
  end)

  it("counts a try and cools the relay down when the connection dies after MAIL was accepted", function()
    local h = server(GREET .. txn() .. MAIL .. "S: 250 ok\nC: RCPT TO:<b@example.org>\nNEXT\n"
      .. GREET .. txn() .. QUIT, 2)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, young({ cooldown = 7, retry = { limit = 2, base = 1, jitter = 0 } }))
    pool:send(RAW)
    local report = pool:send(RAW)
    pool:close()
    expect_ok(h)
    assert.equal(2, report.tries)
    -- The backoff, then the rest of the 7 s cool-down.
    assert.same({ 1, 6 }, clock.delays)
  end)
end)

describe("smtp.pool failover", function()
  it("goes to the next server at once when a connection is refused, and skips it while cooling down", function()
    local dead = dead_port()
    local good = server(txns(4) .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(dead), entry(good) }, clock)
    local report = pool:send(RAW)
    assert.equal(2, report.tries)
    assert.same({ label(dead), label(good) }, report.servers)
    assert.equal(label(good), report.server)
    assert.same({}, clock.delays) -- no backoff: another server was ready
    -- Within the cool-down the dead server is not tried.
    clock.t = clock.t + 29
    report = pool:send(RAW)
    assert.same({ label(good) }, report.servers)
    -- After it, it is in the rotation again (and fails over again).
    clock.t = clock.t + 2
    local tried = 0
    for _ = 1, 2 do
      report = pool:send(RAW)
      assert.equal(label(good), report.server)
      if report.servers[1] == label(dead) then tried = tried + 1 end
    end
    assert.equal(1, tried)
    pool:close()
    expect_ok(good)
  end)

  it("fails over on a 421 greeting", function()
    local busy = server("S: 421 4.3.2 busy\n")
    local good = server(txns(1) .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(busy), entry(good) }, clock)
    local report = pool:send(RAW)
    assert.same({ label(busy), label(good) }, report.servers)
    assert.equal(label(good), report.server)
    assert.same({}, clock.delays)
    pool:close()
    expect_ok(busy)
    expect_ok(good)
  end)

  it("fails over on a TLS failure", function()
    -- Implicit TLS to a plaintext server: the handshake fails. The
    -- greeting waits until the ClientHello is out (plaintext already there
    -- before the handshake would be a protocol error instead).
    local plain = server("SLEEP 0.2\nS: 220 not tls\n")
    local good = server(txns(1) .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(plain, { tls_mode = "implicit", tls = { verify = "none" } }), entry(good) }, clock)
    local report = pool:send(RAW)
    assert.same({ label(plain), label(good) }, report.servers)
    assert.equal(label(good), report.server)
    pool:close()
    expect_ok(good)
  end)

  it("waits for the earliest server back when every one is cooling down", function()
    local dead = dead_port()
    local clock = fake_time()
    local pool = pool_of({ entry(dead) }, clock, { cooldown = 7, retry = { limit = 2, base = 1, jitter = 0 } })
    local ok, err = pcall(pool.send, pool, RAW)
    assert.is_false(ok)
    assert.equal("io", err.kind)
    assert.equal(2, err.tries)
    assert.same({ label(dead), label(dead) }, err.report.servers)
    assert.same({ "b@example.org" }, { err.report.rejected[1].recipient })
    -- Backoff 1 s, then the rest of the 7 s cool-down.
    assert.same({ 1, 6 }, clock.delays)
  end)

  it("spreads 3:1 weights over 40 messages", function()
    local a = server(txns(30) .. QUIT)
    local b = server(txns(10) .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(a, { weight = 3 }), entry(b, { weight = 1 }) }, clock)
    local by = {}
    for _ = 1, 40 do
      local s = pool:send(RAW).server
      by[s] = (by[s] or 0) + 1
    end
    pool:close()
    assert.is_true(math.abs(by[label(a)] - 30) <= 3, tostring(by[label(a)]))
    assert.is_true(math.abs(by[label(b)] - 10) <= 1, tostring(by[label(b)]))
    local ra, rb = expect_ok(a), expect_ok(b)
    assert.equal(30, count(ra[1], "MAIL FROM"))
    assert.equal(10, count(rb[1], "MAIL FROM"))
  end)
end)

describe("smtp.pool retries", function()
  it("retries only the recipients refused with 4xx, with exponential backoff", function()
    local h = server(GREET
      .. txn({ { "b@example.org", "250 2.1.5 ok" }, { "c@example.org", "450 4.2.0 later" },
        { "d@example.org", "550 5.1.1 unknown" } }, "250 2.0.0 queued as FIRST")
      .. RSET .. txn({ { "c@example.org", "451 4.3.0 still later" } }):gsub("C: DATA.*$", "")
      .. RSET .. RSET .. txn({ { "c@example.org", "250 2.1.5 ok" } }, "250 2.0.0 queued as THIRD")
      .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock)
    local report = pool:send(RAW3)
    pool:close()
    expect_ok(h)
    assert.equal(3, report.tries)
    assert.same({ "b@example.org", "c@example.org" }, report.accepted)
    assert.equal(1, #report.rejected)
    assert.equal("d@example.org", report.rejected[1].recipient)
    assert.equal(550, report.rejected[1].error.code)
    assert.equal("THIRD", report.reply.queue_id)
    assert.equal(2, #clock.delays)
    assert.is_true(clock.delays[1] >= 0.8 and clock.delays[1] <= 1.2, tostring(clock.delays[1]))
    assert.is_true(clock.delays[2] >= 1.6 and clock.delays[2] <= 2.4, tostring(clock.delays[2]))
  end)

  it("returns the report when some recipients were accepted and the rest stay refused after the last try", function()
    local h = server(GREET
      .. txn({ { "b@example.org", "250 2.1.5 ok" }, { "c@example.org", "450 4.2.0 later" } })
      .. RSET .. "C: MAIL FROM:<a@example.org>\nS: 250 2.1.0 ok\nC: RCPT TO:<c@example.org>\nS: 451 4.3.0 still\n"
      .. RSET .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, { retry = { limit = 2, base = 0.5, jitter = 0 } })
    local raw = "From: a@example.org\r\nTo: b@example.org, c@example.org\r\n\r\nhi\r\n"
    local report = pool:send(raw)
    pool:close()
    expect_ok(h)
    assert.equal(2, report.tries)
    assert.same({ "b@example.org" }, report.accepted)
    assert.equal(1, #report.rejected)
    assert.equal("c@example.org", report.rejected[1].recipient)
    assert.equal(451, report.rejected[1].error.code)
    assert.same({ 0.5 }, clock.delays)
  end)

  it("keeps backoff delays within base * factor^(try-1), capped, +- jitter", function()
    local pool = smtp.pool { servers = { { host = "x" } },
      retry = { base = 0.5, factor = 3, max_delay = 10, jitter = 0.25 } }
    for try = 1, 5 do
      local want = math.min(0.5 * 3 ^ (try - 1), 10)
      local lo, hi = math.huge, 0
      for _ = 1, 400 do
        local d = pool:_backoff(try)
        if d < lo then lo = d end
        if d > hi then hi = d end
      end
      assert.is_true(lo >= want * 0.75 - 1e-9 and hi <= want * 1.25 + 1e-9, try .. ": " .. lo .. " " .. hi)
      -- The jitter is really applied: the draws spread over the band.
      assert.is_true(lo < want * 0.9 and hi > want * 1.1, try .. ": " .. lo .. " " .. hi)
    end
  end)

  it("gives up after retry.limit tries and raises the last error with tries and report", function()
    local mail451 = "C: MAIL FROM:<a@example.org>\nS: 451 4.3.0 busy\n"
    -- sendmail RSETs after a refused MAIL; the pool's health check adds one.
    local h = server(GREET .. mail451 .. RSET .. RSET .. mail451 .. RSET .. RSET .. mail451 .. RSET .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, { retry = { limit = 3, base = 0.5, factor = 2, jitter = 0 } })
    local ok, err = pcall(pool.send, pool, RAW)
    pool:close()
    expect_ok(h)
    assert.is_false(ok)
    assert.equal("transient", err.kind)
    assert.equal(451, err.code)
    assert.equal(3, err.tries)
    assert.same({}, err.report.accepted)
    assert.equal("b@example.org", err.report.rejected[1].recipient)
    assert.same({ 0.5, 1 }, clock.delays)
  end)

  it("does not retry a permanent failure", function()
    local h = server(GREET .. "C: MAIL FROM:<a@example.org>\nS: 550 5.7.1 no\n" .. RSET .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock)
    local ok, err = pcall(pool.send, pool, RAW)
    pool:close()
    expect_ok(h)
    assert.is_false(ok)
    assert.equal("permanent", err.kind)
    assert.equal(1, err.tries)
    assert.same({}, clock.delays)
  end)

  it("does not resend when the outcome is unknown", function()
    local h = server(GREET .. "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\n"
      .. "C: DATA\nS: 354 go\nBODY\nCLOSE\n")
    local clock = fake_time()
    local pool = pool_of({ entry(h), entry(dead_port()) }, clock)
    local ok, err = pcall(pool.send, pool, RAW)
    pool:close()
    -- The server's own verdict trips over its CLOSE; the bytes tell.
    local _, _, received = h:result(10)
    assert.equal(1, count(received[1], "\r\n%.\r\n"))
    assert.is_false(ok)
    assert.equal("unknown", err.outcome)
    assert.equal(1, err.tries)
    assert.same({ label(h) }, err.report.servers)
  end)

  it("resends after an unknown outcome when retry.on_unknown says so", function()
    local h = server(GREET .. "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\n"
      .. "C: DATA\nS: 354 go\nBODY\nNEXT\n" .. txns(1) .. QUIT, 2)
    local clock = fake_time()
    local seen
    local pool = pool_of({ entry(h) }, clock, { cooldown = 0, retry = { limit = 3, base = 0.1, jitter = 0,
      on_unknown = function(err, msg) seen = { err.outcome, msg }; return true end } })
    local report = pool:send(RAW)
    pool:close()
    expect_ok(h)
    assert.same({ "unknown", RAW }, seen)
    assert.equal(2, report.tries)
    assert.same({ "b@example.org" }, report.accepted)
  end)

  it("replays a chunk-function message on a retry", function()
    local h = server(GREET .. "C: MAIL FROM:<a@example.org>\nS: 451 4.3.0 busy\n" .. RSET .. RSET .. txn() .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock)
    local parts, i = { RAW:sub(1, 20), RAW:sub(21) }, 0
    local report = pool:send(function() i = i + 1; return parts[i] end)
    pool:close()
    local received = expect_ok(h)
    assert.equal(2, report.tries)
    assert.truthy(received[1]:find("Subject: t\r\n\r\nbody\r\n.\r\n", 1, true))
  end)
end)

describe("smtp.pool rate limits", function()
  it("holds one server to rate.messages per rate.per seconds", function()
    local h = server(txns(5) .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(h) }, clock, { rate = { messages = 2, per = 1 } })
    local start = clock.t
    for _ = 1, 5 do pool:send(RAW) end
    pool:close()
    expect_ok(h)
    -- Sends at 0, 0, 1, 1, 2.
    assert.equal(2, clock.t - start)
  end)

  it("uses another server when one is at its limit", function()
    local a = server(txns(4) .. QUIT)
    local b = server(txns(2) .. QUIT)
    local clock = fake_time()
    local pool = pool_of({ entry(a, { weight = 10 }), entry(b) }, clock, { rate = { messages = 2, per = 1 } })
    local seq = {}
    for i = 1, 6 do seq[i] = pool:send(RAW).server == label(a) and "a" or "b" end
    pool:close()
    expect_ok(a)
    expect_ok(b)
    assert.same({ "a", "a", "b", "b", "a", "a" }, seq)
    assert.same({ 1 }, clock.delays)
  end)
end)

-- A caller's cosocket (OpenResty): a minimal double over LuaSocket, with
-- a Lua-side keepalive pool by name, as ngx keeps one per worker.
describe("smtp.pool with a transport function", function()
  local socket = require "socket"
  local keepalive = {}

  local function cosocket_double(made)
    local s = { timeout = 5 }
    made[#made + 1] = s
    function s:connect(host, port, copts)
      self.pool = copts and copts.pool or (host .. ":" .. port)
      local idle = keepalive[self.pool]
      if idle and #idle > 0 then
        self.sock, self.reused = table.remove(idle), 1
        return 1
      end
      local sock = socket.tcp()
      sock:settimeout(self.timeout)
      local ok, err = sock:connect(host, port)
      if not ok then sock:close(); return nil, err end
      self.sock, self.reused = sock, 0
      return 1
    end
    function s:settimeouts(_, _, r)
      self.timeout = r / 1000
      if self.sock then self.sock:settimeout(self.timeout) end
    end
    function s:send(data)
      if not self.sock then return nil, "closed" end
      return self.sock:send(data)
    end
    function s:receiveany(max)
      if not self.sock then return nil, "closed" end
      if #socket.select({ self.sock }, nil, self.timeout) == 0 then return nil, "timeout" end
      self.sock:settimeout(0)
      local data, err, partial = self.sock:receive(max)
      self.sock:settimeout(self.timeout)
      data = data or partial
      if data and data ~= "" then return data end
      return nil, err == "timeout" and "timeout" or "closed"
    end
    function s:getreusedtimes()
      if not self.sock then return nil, "closed" end
      return self.reused
    end
    function s:setkeepalive(idle_ms)
      self.kept_ms = idle_ms
      keepalive[self.pool] = keepalive[self.pool] or {}
      table.insert(keepalive[self.pool], self.sock)
      self.sock = nil
      return 1
    end
    function s:close()
      if self.sock then self.sock:close() end
      self.sock = nil
      return 1
    end
    return s
  end

  after_each(function()
    for _, idle in pairs(keepalive) do
      for _, sock in ipairs(idle) do sock:close() end
    end
    keepalive = {}
  end)

  it("opens a cosocket per connection and leaves reuse to its keepalive pool", function()
    -- set_keepalive checks with RSET before pooling, smtp.connect again
    -- when it takes the connection back.
    local h = server(GREET .. txn() .. RSET .. RSET .. txn() .. RSET)
    local clock = fake_time()
    local made = {}
    local pool = pool_of({ entry(h) }, clock,
      { transport = function() return cosocket_double(made) end, idle_timeout = 7 })
    assert.equal(1, pool:send(RAW).tries)
    assert.equal(1, pool:send(RAW).tries)
    pool:close()
    assert.equal(2, #made)
    assert.equal(7000, made[1].kept_ms)
    assert.equal(1, made[2].reused)
    for _, idle in pairs(keepalive) do
      for _, sock in ipairs(idle) do sock:close() end
    end
    keepalive = {}
    expect_ok(h)
  end)
end)
