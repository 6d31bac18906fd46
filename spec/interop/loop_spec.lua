-- Event loops (SPEC 5.1, issue 24): sends through cqueues, luv and a plain
-- {wait, sleep} table overlap in one thread while the loop's own timers
-- keep ticking; deadlines hold; TLS and AUTH work the same as blocking.
local smtp = require "smtp"
local scripted = require "helpers.scripted"

local has_cqueues, cqueues = pcall(require, "cqueues")
-- Through helpers.luv, which keeps luv's first module table (and with it
-- libuv's loop) alive across busted's per-file insulation.
local uv = require("helpers.luv").load()
local has_luv = uv ~= nil
-- Lua 5.1 (not LuaJIT) cannot yield across pcall: no coroutine loop there.
local CAN_YIELD = require("smtp.loop").can_yield
local NO_YIELD = "Lua 5.1 cannot yield across pcall: event loops need 5.2+ or LuaJIT"
if not CAN_YIELD then has_cqueues, has_luv = false, false end

local RAW = "From: a@example.org\r\nTo: b@example.org\r\nSubject: loop\r\n\r\nbody\r\n"

-- One transaction; the server takes `delay` seconds to answer the dot.
local function slow_dot(delay)
  return ([[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250 ENHANCEDSTATUSCODES
C: MAIL FROM:<a@example.org>
S: 250 2.1.0 ok
C: RCPT TO:<b@example.org>
S: 250 2.1.5 ok
C: DATA
S: 354 go
BODY
SLEEP %s
S: 250 2.0.0 queued as Q1
C: QUIT
S: 221 2.0.0 bye
]]):format(delay)
end

local function send_opts(port, loop, extra)
  local o = { host = "127.0.0.1", port = port, loop = loop, timeout = 10, local_name = "client.example",
              from = "a@example.org", to = { "b@example.org" }, raw = RAW }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- Two sends to servers that each hold the dot for 1 s, in one thread,
-- beside a 50 ms timer. `run(tasks)` runs the functions concurrently on
-- the loop under test and returns when all are done.
local function overlap(run, make_loop)
  local s1, s2 = scripted.start(slow_dot(1)), scripted.start(slow_dot(1))
  local results, ticks, done = {}, 0, 0
  local t0 = smtp.now()
  run({
    function(sleep)
      while done < 2 and smtp.now() - t0 < 5 do
        sleep(0.05)
        ticks = ticks + 1
      end
    end,
    function()
      results[1] = { pcall(smtp.send, send_opts(s1.port, make_loop())) }
      done = done + 1
    end,
    function()
      results[2] = { pcall(smtp.send, send_opts(s2.port, make_loop())) }
      done = done + 1
    end,
  })
  local elapsed = smtp.now() - t0
  for i = 1, 2 do
    assert.is_true(results[i][1], tostring(results[i][2]))
    assert.equal("Q1", results[i][2].reply.queue_id)
  end
  for _, s in ipairs({ s1, s2 }) do
    local ok, why = s:result()
    assert.is_true(ok, why)
  end
  assert.is_true(elapsed < 1.6, ("two 1 s sends took %.2f s: they did not overlap"):format(elapsed))
  assert.is_true(ticks >= 15, ("the 50 ms timer ticked %d times in %.2f s"):format(ticks, elapsed))
end

-- A server that never answers: kind timeout at the deadline, timer ticking.
local function stalled(run, make_loop)
  local s = scripted.start("STALL\n")
  local err, ticks, finished = nil, 0, false
  local t0 = smtp.now()
  run({
    function(sleep)
      while not finished and smtp.now() - t0 < 5 do
        sleep(0.05)
        ticks = ticks + 1
      end
    end,
    function()
      local ok, e = pcall(smtp.connect, { host = "127.0.0.1", port = s.port, timeout = 1, loop = make_loop() })
      assert.is_false(ok)
      err = e
      finished = true
    end,
  })
  local elapsed = smtp.now() - t0
  s:stop()
  assert.is_true(smtp.Error.is(err), tostring(err))
  assert.equal("timeout", err.kind)
  assert.is_true(elapsed >= 0.95 and elapsed < 2, ("timed out after %.2f s"):format(elapsed))
  assert.is_true(ticks >= 15, ("the timer ticked %d times"):format(ticks))
end

local function cqueues_run(tasks)
  local cq = cqueues.new()
  for _, fn in ipairs(tasks) do
    cq:wrap(function() fn(cqueues.sleep) end)
  end
  local deadline = smtp.now() + 20
  while not cq:empty() do
    assert(cq:step(0.1))
    assert(smtp.now() < deadline, "cqueues controller still busy after 20 s")
  end
end

local function luv_sleep(seconds)
  local co = coroutine.running()
  local t = uv.new_timer()
  t:start(math.floor(seconds * 1000), 0, function()
    t:close()
    assert(coroutine.resume(co))
  end)
  coroutine.yield()
end

local function luv_run(tasks)
  local failures = {}
  for _, fn in ipairs(tasks) do
    local co = coroutine.create(function()
      local ok, err = pcall(fn, luv_sleep)
      if not ok then failures[#failures + 1] = err end
    end)
    assert(coroutine.resume(co))
  end
  -- A timer bounds the run: nothing here may keep the loop alive.
  local guard = uv.new_timer()
  guard:start(20000, 0, function() failures[#failures + 1] = "luv loop still busy after 20 s"; uv.stop() end)
  guard:unref()
  uv.run()
  guard:close()
  uv.run("nowait")
  assert(failures[1] == nil, tostring(failures[1]))
end

describe("smtp.loop.cqueues()", function()
  if not has_cqueues then
    pending("lua-cqueues is not installed for this Lua")
    return
  end

  it("two sends to 1 s servers overlap while a 50 ms timer ticks", function()
    overlap(cqueues_run, smtp.loop.cqueues)
  end)

  it("a server that never answers gives kind timeout at the deadline, the loop still running", function()
    stalled(cqueues_run, smtp.loop.cqueues)
  end)

  it("resolves a name the hosts file knows (no DNS query)", function()
    local s = scripted.start(slow_dot(0))
    local report
    cqueues_run({ function()
      report = smtp.send(send_opts(s.port, smtp.loop.cqueues(), { host = "localhost" }))
    end })
    assert.equal(250, report.reply.code)
    assert.is_true((s:result()))
  end)
end)

describe("smtp.loop.luv()", function()
  if not has_luv then
    pending("lua-luv is not installed for this Lua")
    return
  end

  it("two sends to 1 s servers overlap while a 50 ms timer ticks", function()
    overlap(luv_run, function() return smtp.loop.luv(uv) end)
  end)

  it("a server that never answers gives kind timeout at the deadline, the loop still running", function()
    stalled(luv_run, function() return smtp.loop.luv(uv) end)
  end)

  it("resolves a name through uv.getaddrinfo (hosts file)", function()
    local s = scripted.start(slow_dot(0))
    local report
    luv_run({ function()
      report = smtp.send(send_opts(s.port, smtp.loop.luv(uv), { host = "localhost" }))
    end })
    assert.equal(250, report.reply.code)
    assert.is_true((s:result()))
  end)

  -- luv 1.44 runs its callbacks on the thread that loaded it: loaded in the
  -- coroutine a wait then resumes, that crashes. A fresh process, as this
  -- one has luv loaded.
  it("will not load luv itself inside a coroutine (kind usage); loaded in the main thread first, it may", function()
    local P, V = require "helpers.proc", require "helpers.luaver"
    local build = os.getenv("SMTP_BUILD") or "build"
    local script = [[
      local smtp = require "smtp"
      local function from_coroutine()
        local res
        coroutine.wrap(function()
          local ok, err = pcall(smtp.loop.luv)
          res = ok and "ok" or (err.kind .. ": " .. err.message)
        end)()
        return res
      end
      print("IN COROUTINE " .. from_coroutine())
      print("LOADED " .. tostring(package.loaded.luv ~= nil))
      require "luv"
      print("AFTER MAIN " .. from_coroutine())
    ]]
    local out = P.run(("LUA_PATH=%s LUA_CPATH=%s timeout 30 %s -e %s 2>&1; echo exit=$?"):format(
      P.q("lua/?.lua;lua/?/init.lua;;"), P.q(build .. "/?.so;;"), V.interpreter, P.q(script)))
    assert.truthy(out:find("exit=0", 1, true), out)
    assert.matches("IN COROUTINE usage: smtp.loop.luv: require \"luv\" from the main thread", out, 1, true)
    assert.matches("LOADED false", out, 1, true)
    assert.matches("AFTER MAIN ok", out, 1, true)
  end)
end)

describe("a plain {wait, sleep} loop table", function()
  if not has_cqueues then
    pending("lua-cqueues is not installed for this Lua")
    return
  end

  -- What a host without an adapter writes: wait on cqueues.poll directly.
  local function plain_loop()
    return {
      wait = function(fd, events, deadline)
        local want = { pollfd = fd, events = events }
        local timeout = deadline and math.max(0, deadline - smtp.now())
        local ready = cqueues.poll(want, timeout)
        cqueues.cancel(fd)
        if ready == want then return true end
        return nil, "timeout"
      end,
      sleep = cqueues.sleep,
    }
  end

  it("two sends overlap through the table's wait", function()
    overlap(cqueues_run, plain_loop)
  end)

  it("names resolve in the core's helper thread, waited on through the table", function()
    local s = scripted.start(slow_dot(0))
    local report
    cqueues_run({ function()
      report = smtp.send(send_opts(s.port, plain_loop(), { host = "localhost" }))
    end })
    assert.equal(250, report.reply.code)
    assert.is_true((s:result()))
  end)

  it("refuses a loop without wait or sleep (kind usage)", function()
    for _, bad in ipairs({ {}, { wait = function() end }, { sleep = function() end }, "cqueues" }) do
      local ok, err = pcall(smtp.connect, { host = "127.0.0.1", port = 1, loop = bad })
      assert.is_false(ok)
      assert.equal("usage", err.kind)
    end
  end)

  it("a wait that fails gives kind io and closes", function()
    local s = scripted.start(slow_dot(0))
    local loop = { wait = function() return nil, "loop is shutting down" end, sleep = function() end }
    local ok, err = pcall(smtp.send, send_opts(s.port, loop))
    s:stop()
    assert.is_false(ok)
    assert.equal("io", err.kind)
    assert.matches("loop is shutting down", err.message, 1, true)
  end)
end)

describe("smtp.pool and outbox:run with a loop", function()
  local servers = require "helpers.servers"
  local P = require "helpers.proc"
  local runs = {}
  if has_cqueues then runs[#runs + 1] = { "cqueues", cqueues_run, smtp.loop.cqueues } end
  if has_luv then runs[#runs + 1] = { "luv", luv_run, function() return smtp.loop.luv(uv) end } end
  if #runs == 0 then
    pending("neither lua-cqueues nor lua-luv is installed for this Lua")
    return
  end
  local sink

  setup(function() sink = servers.aiosmtpd {} end)
  teardown(function() if sink then sink:stop() end end)

  for _, r in ipairs(runs) do
    local name, run, make_loop = r[1], r[2], r[3]

    it(name .. ": a pool fails over past a dead relay while the loop's timer ticks", function()
      local dead = P.free_port() -- nothing listens: connection refused
      local before = #sink:messages()
      local report, ticks, done = nil, 0, false
      run({
        function(sleep)
          while not done do
            sleep(0.05)
            ticks = ticks + 1
          end
        end,
        function()
          local ok, err = pcall(function()
            local pool = smtp.pool { loop = make_loop(), timeout = 5, local_name = "client.example",
              servers = { { host = "127.0.0.1", port = dead, weight = 100 }, { host = "127.0.0.1", port = sink.port } },
              retry = { limit = 3, base = 0.2, jitter = 0 } }
            report = pool:send(RAW, { from = "a@example.org", to = { "b@example.org" } })
            pool:close()
          end)
          done = true
          assert(ok, tostring(err))
        end,
      })
      assert.equal(250, report.reply.code)
      local msgs = assert(sink:wait_messages(before + 1, 10))
      assert.matches("Subject: loop", msgs[#msgs].data, 1, true)
      assert.is_true(ticks >= 1)
    end)

    it(name .. ": the pool's backoff between tries sleeps through the loop", function()
      local dead = P.free_port()
      local slept, ticks, done, err = 0, 0, false, nil
      local t0 = smtp.now()
      run({
        function(sleep)
          while not done do
            sleep(0.05)
            ticks = ticks + 1
          end
        end,
        function()
          local loop = make_loop()
          local inner = loop.sleep
          loop.sleep = function(s) slept = slept + s; return inner(s) end
          local pool = smtp.pool { loop = loop, timeout = 5, cooldown = 0.3,
            servers = { { host = "127.0.0.1", port = dead } }, retry = { limit = 2, base = 0.5, jitter = 0 } }
          local ok, e = pcall(pool.send, pool, RAW, { from = "a@example.org", to = { "b@example.org" } })
          err = not ok and e or nil
          done = true
        end,
      })
      assert.equal("io", err and err.kind, tostring(err))
      assert.is_true(slept >= 0.45, "the loop slept " .. slept .. " s")
      assert.is_true(ticks >= 6, ("%d ticks in %.2f s"):format(ticks, smtp.now() - t0))
    end)

    it(name .. ": outbox:run drains the queue through a pool on the same loop", function()
      local dir = P.tempdir("outbox-loop")
      local box = smtp.outbox(dir .. "/box")
      for i = 1, 3 do
        box:put("From: a@example.org\r\nTo: b@example.org\r\nSubject: drained " .. i .. "\r\n\r\nbody\r\n",
          { from = "a@example.org", to = { "b@example.org" } })
      end
      local before = #sink:messages()
      local stats
      run({ function()
        local loop = make_loop()
        local pool = smtp.pool { loop = loop, timeout = 5, local_name = "client.example",
          servers = { { host = "127.0.0.1", port = sink.port } } }
        stats = box:run(pool, { loop = loop, max_seconds = 10 })
        pool:close()
      end })
      assert.equal(3, stats.delivered)
      assert(sink:wait_messages(before + 3, 10))
      assert.same({}, box:list("queue"))
    end)
  end
end)

describe("Lua 5.1 without LuaJIT", function()
  it("refuses the adapters with kind usage (no yield across pcall)", function()
    if CAN_YIELD then
      pending("this Lua can yield across pcall")
      return
    end
    for _, name in ipairs({ "cqueues", "luv", "copas" }) do
      local ok, err = pcall(smtp.loop[name])
      assert.is_false(ok)
      assert.equal("usage", err.kind)
      assert.matches("cannot yield across pcall", err.message, 1, true)
    end
  end)
end)

describe("copas and the socket.select alternative", function()
  local P = require "helpers.proc"
  local V = require "helpers.luaver"
  local ROOT = P.run("pwd"):gsub("\n$", "")
  local BUILD = os.getenv("SMTP_BUILD") or "build"
  if BUILD:sub(1, 1) ~= "/" then BUILD = ROOT .. "/" .. BUILD end

  it("smtp.loop.copas() refuses a copas without sleep (Debian's 1.x) with kind usage naming the alternative", function()
    local has_copas, copas = pcall(require, "copas")
    if not CAN_YIELD then
      pending(NO_YIELD)
      return
    end
    if not has_copas then
      pending("lua-copas is not installed for this Lua")
      return
    end
    if type(copas.sleep) == "function" then
      pending("this copas has sleep: the adapter is usable here")
      return
    end
    local ok, err = pcall(smtp.loop.copas)
    assert.is_false(ok)
    assert.equal("usage", err.kind)
    assert.matches("examples/loop_select.lua", err.message, 1, true)
  end)

  it("examples/loop_select.lua overlaps two sends on socket.select under " .. V.interpreter, function()
    if not CAN_YIELD then
      pending(NO_YIELD)
      return
    end
    local s1, s2 = scripted.start((slow_dot(1):gsub("client%.example", "select.example"))),
      scripted.start((slow_dot(1):gsub("client%.example", "select.example")))
    local out = P.run(("cd %s && SMTP_PORTS=%d,%d LUA_PATH=%s LUA_CPATH=%s timeout 30 %s examples/loop_select.lua 2>&1; " ..
      "echo exit=$?"):format(P.q(ROOT), s1.port, s2.port, P.q(ROOT .. "/lua/?.lua;;"), P.q(BUILD .. "/?.so;;"),
      V.interpreter))
    for _, s in ipairs({ s1, s2 }) do
      local ok, why = s:result()
      assert.is_true(ok, tostring(why) .. "\n" .. out)
    end
    assert.truthy(out:find("exit=0", 1, true), out)
    local elapsed, ticks = out:match("elapsed ([%d.]+) s, ticks (%d+)")
    assert.is_true(tonumber(elapsed) < 1.6, out)
    assert.is_true(tonumber(ticks) >= 15, out)
  end)
end)
