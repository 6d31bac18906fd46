-- smtp.pool against three real Postfix instances on loopback: one
-- greylists (a policy service answers 450 to the first try of each
-- client/sender/recipient triple), one answers 421 and disconnects for its
-- first requests, and one is stopped part-way through. 1,000 messages go
-- through one pool; every Message-ID must land in the sinks exactly once,
-- in the sink of the server its report names. Then a per-server rate
-- limit is timed against a fourth instance.
local smtp = require "smtp"
local core = require "smtp.core"
local servers = require "helpers.servers"
local P = require "helpers.proc"

local PY = "/usr/bin/python3"
local POLICY = "spec/helpers/policy_server.py"
local MESSAGES = 1000
local STOP_AT = 400 -- the third server is stopped before this message
local BUSY_REQUESTS = 5

-- Starts the policy service; returns {pid=, port=, countfile=}.
local function policy(mode, n)
  local dir = P.tempdir("policy")
  local h = { portfile = dir .. "/port", countfile = dir .. "/count" }
  h.pid = P.spawn(("%s %s %s %s %s %d"):format(PY, POLICY, mode, P.q(h.portfile), P.q(h.countfile), n or 0),
    dir .. "/log")
  P.watchdog("kill " .. h.pid, h.pid)
  h.port = P.wait_for(10, function() return tonumber(P.read_file(h.portfile) or "") end, 0.02)
  assert(h.port, "policy service did not start: " .. tostring(P.read_file(dir .. "/log")))
  function h.counts()
    local req, refused = (P.read_file(h.countfile) or "0 0"):match("(%d+) (%d+)")
    return tonumber(req), tonumber(refused)
  end
  return h
end

local function with_policy(p)
  return { main = { smtpd_recipient_restrictions = "check_policy_service inet:127.0.0.1:" .. p.port } }
end

local function message_id_of(m)
  return m.data:match("\nMessage%-ID: <([^>\r\n]+)>")
end

describe("smtp.pool over three Postfix instances #interop #pool", function()
  local grey_policy, busy_policy, grey, busy, plain

  setup(function()
    grey_policy = policy("greylist")
    busy_policy = policy("busy", BUSY_REQUESTS)
    grey = servers.postfix(with_policy(grey_policy))
    busy = servers.postfix(with_policy(busy_policy))
    plain = servers.postfix()
  end)

  teardown(function()
    for _, h in ipairs({ grey, busy, plain }) do h:stop() end
    for _, p in ipairs({ grey_policy, busy_policy }) do P.terminate(p.pid) end
  end)

  it("delivers 1,000 messages exactly once through greylisting, 421s and a server that goes away", function()
    local by_label = {
      ["127.0.0.1:" .. grey.ports.plain] = grey,
      ["127.0.0.1:" .. busy.ports.plain] = busy,
      ["127.0.0.1:" .. plain.ports.plain] = plain,
    }
    local pool = smtp.pool {
      servers = {
        { host = "127.0.0.1", port = grey.ports.plain },
        { host = "127.0.0.1", port = busy.ports.plain },
        { host = "127.0.0.1", port = plain.ports.plain },
      },
      timeout = 10, local_name = "pool.lua-smtp.test", cooldown = 0.2,
      retry = { limit = 8, base = 0.05, factor = 2, max_delay = 1, jitter = 0.2 },
    }
    local users = { "alice", "bob", "carol" }
    local expected, per_server, tries_hist = {}, {}, {}
    local max_tries, retried = 0, 0
    local started = core.now()
    for i = 1, MESSAGES do
      if i == STOP_AT then
        -- Let it deliver what it accepted, then take it away.
        local n = per_server[plain] or 0
        assert(plain:wait_messages(n, 30))
        plain:stop()
      end
      local id = ("pool-%d-%d@lua-smtp.test"):format(i, os.time())
      -- 7 senders x 3 recipients: 21 triples, each greylisted once.
      local raw = ("From: sender%d@example.org\r\nTo: %s@example.test\r\nSubject: pool %d\r\n"
        .. "Message-ID: <%s>\r\n\r\nmessage %d\r\n"):format(i % 7, users[i % 3 + 1], i, id, i)
      local report = pool:send(raw)
      assert.equal(1, #report.accepted)
      assert.equal(report.tries, #report.servers)
      assert.equal(report.server, report.servers[#report.servers])
      local h = assert(by_label[report.server], tostring(report.server))
      if i >= STOP_AT then assert.are_not.equal(plain, h) end
      expected[id] = h
      per_server[h] = (per_server[h] or 0) + 1
      tries_hist[report.tries] = (tries_hist[report.tries] or 0) + 1
      if report.tries > max_tries then max_tries = report.tries end
      if report.tries > 1 then retried = retried + 1 end
    end
    local elapsed = core.now() - started
    pool:close()

    -- Every server took a share; greylisting and the 421s made retries.
    for _, h in ipairs({ grey, busy, plain }) do assert.is_true((per_server[h] or 0) > 0, h.ports.plain .. " took none") end
    assert.is_true(retried > 0)
    local _, greylisted = grey_policy.counts()
    local _, busied = busy_policy.counts()
    assert.is_true(greylisted > 0)
    assert.equal(BUSY_REQUESTS, busied)
    -- Postfix logs the policy's 421 as sent (it then disconnects).
    local _, n421 = busy:log():gsub(" 421 4%.7%.0 ", "")
    assert.is_true(n421 >= 1, "no 421 in the busy server's log")

    local seen = {}
    for _, h in ipairs({ grey, busy, plain }) do
      local list = assert(h:wait_messages(per_server[h], 60))
      for _, m in ipairs(list) do
        local id = assert(message_id_of(m), "a delivery without Message-ID")
        assert.is_nil(seen[id], "delivered twice: " .. id)
        seen[id] = h
      end
    end
    local n = 0
    for id, h in pairs(expected) do
      assert.equal(h, seen[id], "not in the sink its report names: " .. id)
      n = n + 1
    end
    assert.equal(MESSAGES, n)
    for id in pairs(seen) do assert.truthy(expected[id], "unexpected delivery " .. id) end
    local hist = {}
    for t = 1, max_tries do hist[#hist + 1] = t .. ":" .. (tries_hist[t] or 0) end
    io.stderr:write(("\n# pool: %d messages in %.1f s; tries %s; per server grey %d, busy %d, stopped %d\n")
      :format(MESSAGES, elapsed, table.concat(hist, " "), per_server[grey], per_server[busy], per_server[plain]))
  end)
end)

describe("smtp.pool rate limit against Postfix #interop #pool", function()
  local pf

  setup(function() pf = servers.postfix() end)
  teardown(function() if pf then pf:stop() end end)

  local function raw(i)
    return ("From: a@example.org\r\nTo: bob@example.test\r\nSubject: rate %d\r\n"
      .. "Message-ID: <rate-%d-%d@lua-smtp.test>\r\n\r\nrate\r\n"):format(i, i, os.time())
  end

  it("sends 60 messages at 20 per second in about 2 s plus one unthrottled batch", function()
    local opts = { servers = { { host = "127.0.0.1", port = pf.ports.plain } }, timeout = 10,
      local_name = "pool.lua-smtp.test" }
    -- The time 20 messages take without a limit, on a warm connection.
    local free = smtp.pool(opts)
    free:send(raw(0))
    local t0 = core.now()
    for i = 1, 20 do free:send(raw(i)) end
    local batch = core.now() - t0
    free:close()

    opts.rate = { messages = 20, per = 1 }
    local limited = smtp.pool(opts)
    limited:send(raw(100))
    P.sleep(1.1) -- the warm-up message leaves the window
    t0 = core.now()
    for i = 1, 60 do limited:send(raw(100 + i)) end
    local elapsed = core.now() - t0
    limited:close()
    -- Messages 41..60 each wait for 1..20 to be 2 s old.
    local expected = 2 + batch
    io.stderr:write(("\n# rate: 60 messages at 20/s in %.3f s, expected %.3f (20 unthrottled: %.3f s)\n")
      :format(elapsed, expected, batch))
    assert.is_true(elapsed >= 2, tostring(elapsed))
    assert.is_true(math.abs(elapsed - expected) <= 0.1 * expected,
      ("%.3f s, expected %.3f s"):format(elapsed, expected))
    assert(pf:wait_messages(82, 30))
  end)
end)

-- Issue 23: a connection idle less than check_idle_after is reused
-- without RSET. Here the threshold (5 s) is above the relay's own idle
-- timeout (smtpd_timeout = 1s), the misjudgement the pool must survive:
-- Postfix answers 421 and closes while the connection sits idle, the next
-- MAIL finds it, and the message goes on a fresh connection in the same
-- try, delivered exactly once, with no cool-down. With BDAT (Postfix
-- offers CHUNKING) the RSET check stays and finds the same close first.
describe("smtp.pool reuse after a relay's idle timeout (Postfix) #interop #pool", function()
  local pf

  setup(function() pf = servers.postfix { main = { smtpd_timeout = "1s" } } end)
  teardown(function() if pf then pf:stop() end end)

  it("delivers exactly once through connections Postfix closed while idle", function()
    local pool = smtp.pool { servers = { { host = "127.0.0.1", port = pf.ports.plain } }, timeout = 10,
      local_name = "pool.lua-smtp.test", check_idle_after = 5, cooldown = 30, retry = { limit = 1 } }
    local ids, n = {}, 0
    for _, chunking in ipairs({ false, true }) do
      for i = 1, 3 do
        n = n + 1
        local id = ("idle-%d-%d@lua-smtp.test"):format(n, os.time())
        ids[id] = true
        local t0 = core.now()
        local report = pool:send(("From: a@example.org\r\nTo: bob@example.test\r\nSubject: idle %d\r\n"
          .. "Message-ID: <%s>\r\n\r\nidle %d\r\n"):format(n, id, i), { chunking = chunking })
        assert.equal(1, report.tries)
        assert.same({ "bob@example.test" }, report.accepted)
        -- A relay put in cool-down would make a later send wait 30 s.
        assert.is_true(core.now() - t0 < 5, tostring(core.now() - t0))
        P.sleep(1.6) -- past smtpd_timeout: Postfix says 421 and closes
      end
    end
    pool:close()
    local _, timeouts = pf:log():gsub("timeout after ", "")
    assert.is_true(timeouts >= 5, "Postfix timed out " .. timeouts .. " idle connections")
    local list = assert(pf:wait_messages(n, 30))
    assert.equal(n, #list)
    for _, m in ipairs(list) do
      local id = assert(message_id_of(m))
      assert.is_true(ids[id], "delivered twice or unexpected: " .. id)
      ids[id] = nil
    end
    assert.is_nil(next(ids))
  end)
end)
