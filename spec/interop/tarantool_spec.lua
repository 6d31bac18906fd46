-- Tarantool (issue 24): two fibers send at once through the plain-table
-- loop of examples/tarantool/smtp_loop.lua, with the LuaJIT build of the
-- module, to scripted servers that each hold the final dot for 1 s: both
-- finish together in under 1.6 s while a third fiber's 50 ms timer ticks.
local scripted = require "helpers.scripted"
local P = require "helpers.proc"

local ROOT = P.run("pwd"):gsub("\n$", "")

local function slow_dot()
  return [[
S: 220 mx.example.org ESMTP
C: EHLO tarantool.example
S: 250 mx.example.org
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
SLEEP 1
S: 250 2.0.0 queued as T1
C: QUIT
S: 221 bye
]]
end

describe("Tarantool fibers #interop", function()
  local build = ROOT .. "/build/luajit"
  if not P.exists("/usr/bin/tarantool") then
    pending("tarantool is not installed (make deps installs it)")
    return
  end

  setup(function()
    -- Tarantool embeds LuaJIT: it loads the LuaJIT build (up to date
    -- already when `make test` runs; built here for a lone run).
    local ok, out = P.try(("cd %s && make --no-print-directory -s build-luajit 2>&1"):format(P.q(ROOT)))
    assert(ok, out)
  end)

  it("two fibers send concurrently while a timer fiber ticks", function()
    assert.truthy(P.exists(build .. "/smtp/core.so"), "no LuaJIT build at " .. build)
    local s1, s2 = scripted.start(slow_dot()), scripted.start(slow_dot())
    local out = P.run(("cd %s && SMTP_ROOT=%s SMTP_BUILD=%s SMTP_HOST=127.0.0.1 SMTP_PORTS=%d,%d " ..
      "timeout 30 tarantool examples/tarantool/send_concurrently.lua 2>&1; echo exit=$?")
      :format(P.q(ROOT), P.q(ROOT), P.q(build), s1.port, s2.port))
    for _, s in ipairs({ s1, s2 }) do
      local ok, why = s:result()
      assert.is_true(ok, tostring(why) .. "\n" .. out)
    end
    assert.truthy(out:find("exit=0", 1, true), out)
    assert.truthy(out:find("sent 1: 250 T1", 1, true), out)
    assert.truthy(out:find("sent 2: 250 T1", 1, true), out)
    local elapsed, ticks = out:match("elapsed ([%d.]+) s, ticks (%d+)")
    assert.is_true(tonumber(elapsed) < 1.6, "the sends did not overlap:\n" .. out)
    assert.is_true(tonumber(ticks) >= 15, "the timer fiber was starved:\n" .. out)
  end)
end)
