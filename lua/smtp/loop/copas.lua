-- smtp.loop.copas(): copas 2 or later (copas.sleep). Copas waits only on
-- LuaSocket objects, never on a raw descriptor, so a wait here looks at
-- the fd with socket.select(…, 0) and, while it is not ready, yields to
-- the other copas threads with copas.sleep for a few milliseconds (at most
-- 20 ms between looks). copas 1.2, Debian 12's, has no sleep: there the
-- adapter refuses (kind usage) and the README shows the plain-table form
-- (examples/loop_select.lua).
local copas = require "copas"
local socket = require "socket"
local core = require "smtp.core"

local now, min = core.now, math.min

local M = {}

local MAX_STEP = 0.02

function M.new()
  if type(copas.sleep) ~= "function" then
    error(tostring(copas._VERSION or "this copas") .. " has no copas.sleep, so it cannot bound a wait "
      .. "by a deadline; use copas 2 or later, or a plain {wait, sleep} loop (examples/loop_select.lua)", 0)
  end
  local loop = {}

  function loop.wait(fd, events, deadline)
    local obj = { getfd = function() return fd end, dirty = function() return false end }
    local rd = events:find("r", 1, true) and { obj } or {}
    local wr = events:find("w", 1, true) and { obj } or {}
    local step = 0.001
    while true do
      local r, w = socket.select(rd, wr, 0)
      if r[obj] or w[obj] then return true end
      if deadline and now() >= deadline then return nil, "timeout" end
      copas.sleep(deadline and min(step, deadline - now()) or step)
      step = min(step * 2, MAX_STEP)
    end
  end

  function loop.sleep(seconds)
    copas.sleep(seconds)
  end

  return loop
end

return M
