-- smtp.pool's on_event hook (issue 25 item 10): one event per outcome
-- and per relay going down or coming back, against scripted servers,
-- with a fake clock (the pool's _now and sleep) so that ms is exact.
local smtp = require "smtp"
local scripted = require "helpers.scripted"

local GREET = "S: 220 mx ESMTP\nC: EHLO client.example\nS: 250-mx\nS: 250 ENHANCEDSTATUSCODES\n"
local QUIT = "C: QUIT\nS: 221 2.0.0 bye\n"
local RAW = "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n"
local TXN = "C: MAIL FROM:<a@example.org>\nS: 250 2.1.0 ok\nC: RCPT TO:<b@example.org>\nS: 250 2.1.5 ok\n"
  .. "C: DATA\nS: 354 go\nBODY\n"

local started = {}
after_each(function()
  for _, h in ipairs(started) do h:stop() end
  started = {}
end)

local function server(transcript, connections)
  local h = scripted.start(transcript, connections)
  started[#started + 1] = h
  return h
end

-- A pool over one scripted server, its events, and its fake clock.
local function pool_on(h, extra)
  local clock, events = { t = 1000 }, {}
  local opts = {
    servers = { { host = "127.0.0.1", port = h.port } }, timeout = 5, local_name = "client.example",
    _now = function() return clock.t end, sleep = function(s) clock.t = clock.t + s end,
    cooldown = 30, check_idle_after = 0, retry = { limit = 3, base = 1, factor = 2, jitter = 0 },
    on_event = function(ev) events[#events + 1] = ev end,
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return smtp.pool(opts), events, "127.0.0.1:" .. h.port
end

describe("smtp.pool on_event", function()
  it("reports sent with server, tries, ms and the reply code", function()
    local h = server(GREET .. TXN .. "S: 250 2.0.0 queued\n" .. QUIT)
    local pool, events, label = pool_on(h)
    pool:send(RAW)
    pool:close()
    assert.same({ { type = "sent", server = label, tries = 1, ms = 0, code = 250 } }, events)
  end)

  it("reports a relay going down, the deferred try, the relay back up, then sent", function()
    local h = server("S: 421 4.3.2 busy\nNEXT\n" .. GREET .. TXN .. "S: 250 2.0.0 queued\n" .. QUIT, 2)
    local pool, events, label = pool_on(h)
    local report = pool:send(RAW)
    pool:close()
    assert.equal(2, report.tries)
    assert.same({
      { type = "relay_down", server = label, tries = 1, ms = 0, code = 421 },
      { type = "deferred", server = label, tries = 1, ms = 0, code = 421 },
      { type = "relay_up", server = label, tries = 2, ms = 30000 },
      { type = "sent", server = label, tries = 2, ms = 30000, code = 250 },
    }, events)
  end)

  it("reports failed for a permanent refusal and unknown for a lost final reply", function()
    local h = server(GREET .. "C: MAIL FROM:<a@example.org>\nS: 550 5.7.1 no\n"
      .. "C: RSET\nS: 250 ok\n" .. QUIT)
    local pool, events, label = pool_on(h)
    assert.is_false(pcall(pool.send, pool, RAW))
    pool:close()
    assert.same({ { type = "failed", server = label, tries = 1, ms = 0, code = 550 } }, events)

    h = server(GREET .. TXN .. "CLOSE\n")
    pool, events, label = pool_on(h)
    local ok, err = pcall(pool.send, pool, RAW)
    pool:close()
    assert.is_false(ok)
    assert.equal("unknown", err.outcome)
    -- The lost connection also puts the relay in cool-down.
    assert.same({ { type = "relay_down", server = label, tries = 1, ms = 0 },
      { type = "unknown", server = label, tries = 1, ms = 0 } }, events)
  end)

  it("a hook that raises does not break sending; a hook that is no function is kind usage", function()
    local h = server(GREET .. TXN .. "S: 250 2.0.0 queued\n" .. QUIT)
    local pool = pool_on(h, { on_event = function() error("statsd is down") end })
    assert.same({ "b@example.org" }, pool:send(RAW).accepted)
    pool:close()
    local ok, err = pcall(smtp.pool, { servers = { { host = "x" } }, on_event = "yes" })
    assert.is_false(ok)
    assert.equal("usage", err.kind)
  end)
end)
