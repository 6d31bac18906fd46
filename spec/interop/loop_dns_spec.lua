-- Names under the deadline (issue 24): in a network namespace of its own
-- whose resolver is a stub DNS server on 127.0.0.1 (no query leaves the
-- machine), a name answered at once resolves and a name answered only
-- after 4 s fails with kind timeout at the 1 s connect deadline: in
-- blocking mode (the core's helper-thread lookup), and through cqueues.dns,
-- uv.getaddrinfo and a plain table (helper thread, waited on through the
-- table), with the loop's 50 ms timer ticking meanwhile.
local V = require "helpers.luaver"
local P = require "helpers.proc"

local function netns_ok()
  return V.execute("unshare --net --mount true") and V.execute("command -v ip")
end

local function probe(mode)
  local dir = P.tempdir("netns")
  P.write_file(dir .. "/resolv.conf", "nameserver 127.0.0.1\noptions timeout:5 attempts:1\n")
  local inner = ("ip link set lo up && mount --bind %s /etc/resolv.conf && exec %s spec/helpers/loop_dns_probe.lua %s")
    :format(P.q(dir .. "/resolv.conf"), V.interpreter, mode)
  local out = P.run(("timeout 60 unshare --net --mount sh -c %s 2>&1"):format(P.q(inner)))
  local cases = {}
  for name, result, elapsed, ticks in out:gmatch("CASE (%S+) (%S+ ?%a*) ([%d.]+) (%d+)") do
    cases[name] = { result = result, elapsed = tonumber(elapsed), ticks = tonumber(ticks) }
  end
  return cases, out
end

describe("names under the connect deadline", function()
  if not netns_ok() then
    pending("needs root for a network namespace (unshare --net --mount) and iproute2")
    return
  end
  local has_cqueues = pcall(require, "cqueues")
  -- The probe runs luv in a child: look for it without loading it here
  -- (a dropped luv module table takes libuv's loop with it, helpers/luv.lua).
  local has_luv = require("helpers.luv").installed()

  for _, mode in ipairs({ "blocking", "cqueues", "luv", "plain" }) do
    local missing = (mode == "cqueues" or mode == "plain") and not has_cqueues or (mode == "luv" and not has_luv)
      or (mode ~= "blocking" and not require("smtp.loop").can_yield)
    it(mode .. ": a fast name resolves, a slow one times out at the deadline", function()
      if missing then
        pending("the loop library is not installed for this Lua, or it is Lua 5.1 (no yield across pcall)")
        return
      end
      local cases, out = probe(mode)
      assert.is_table(cases.fast, out)
      assert.equal("ok", cases.fast.result, out)
      assert.is_table(cases.slow, out)
      assert.equal("err timeout", cases.slow.result, out)
      assert.is_true(cases.slow.elapsed >= 0.9 and cases.slow.elapsed < 2, out)
      if mode ~= "blocking" then
        assert.is_true(cases.slow.ticks >= 15, out)
      end
    end)
  end
end)
