-- lua-smtp in Tarantool (2.x, LuaJIT): the plain-table event loop of SPEC
-- 5.1 on Tarantool's own primitives, so a fiber that sends mail yields to
-- the other fibers instead of blocking the whole instance:
--   wait    socket.iowait(fd, "R" | "W" | "RW", seconds)
--   sleep   fiber.sleep
--   resolve socket.getaddrinfo (runs in Tarantool's thread pool)
-- Build the module for LuaJIT (`make LUA=luajit BUILD=build/luajit`) and
-- put lua/ and build/luajit/ on package.path / package.cpath, then:
--   local loop = dofile("examples/tarantool/smtp_loop.lua")
--   smtp.send { host = ..., loop = loop, ... }   -- from any fiber
-- SMTP_DEBUG=1 in the environment traces every wait to stderr.
local socket = require "socket"
local fiber = require "fiber"
local smtp = require "smtp"

local debug_waits = os.getenv("SMTP_DEBUG") == "1"

local EVENTS = { r = "R", w = "W", rw = "RW" }

return {
  wait = function(fd, events, deadline)
    local timeout = deadline and math.max(0, deadline - smtp.now()) or nil
    if debug_waits then io.stderr:write(("wait fd %d %s %s\n"):format(fd, events, tostring(timeout))) end
    -- iowait returns the events that are ready, "" once the time is up.
    local ready = socket.iowait(fd, EVENTS[events], timeout)
    if ready ~= nil and ready ~= "" and ready ~= 0 then return true end
    return nil, "timeout"
  end,
  sleep = fiber.sleep,
  resolve = function(host, port, deadline)
    local timeout = deadline and math.max(0, deadline - smtp.now()) or nil
    local list, err = socket.getaddrinfo(host, port, timeout, { type = "SOCK_STREAM" })
    if not list then return nil, tostring(err or "no address") end
    local out = {}
    for _, a in ipairs(list) do out[#out + 1] = a.host end
    return out
  end,
}
