--- Event loops (SPEC 5.1): what `loop` may be, and the adapters.
-- A loop is a table `{wait = function(fd, events, deadline),
-- sleep = function(seconds), resolve = function(host, port, deadline)}`
-- (`resolve` optional). `events` is "r", "w" or "rw"; `deadline` is an
-- absolute time on `smtp.now()` or nil for none; `wait` returns true when
-- the fd is ready, or nil, "timeout" once the deadline has passed (any
-- other second value is a failure of the loop: kind `io`). `resolve`
-- returns a list of address strings or nil, message; without it names
-- are looked up in a helper thread whose descriptor goes through `wait`.
-- The adapters below are loaded on first use, so their libraries are
-- only needed by those who call them.
-- @module smtp.loop
local Error = require "smtp.error"

local type, error, rawget = type, error, rawget

local M = {}

local function usage(msg)
  error(Error.new { kind = "usage", message = msg }, 0)
end

--- Checks a loop given as an option (`where` names the caller).
function M.check(loop, where)
  if type(loop) ~= "table" then
    usage(where .. ": 'loop' must be a table {wait=, sleep=, resolve=} (see smtp.loop)")
  end
  if type(loop.wait) ~= "function" then usage(where .. ": loop.wait must be a function(fd, events, deadline)") end
  if type(loop.sleep) ~= "function" then usage(where .. ": loop.sleep must be a function(seconds)") end
  if loop.resolve ~= nil and type(loop.resolve) ~= "function" then
    usage(where .. ": loop.resolve must be a function(host, port, deadline) or nil")
  end
  return loop
end

--- Whether a wait may yield from inside the library: Lua 5.1 (not
-- LuaJIT) cannot yield across pcall, which the client uses around every
-- exchange, so its coroutine-based loops cannot work there.
M.can_yield = not (_VERSION == "Lua 5.1" and type(rawget(_G, "jit")) ~= "table")

-- Loads lua/smtp/loop/<name>.lua; a missing library or one the adapter
-- cannot work with is kind usage.
local function adapter(name, ...)
  if not M.can_yield then
    error(Error.new { kind = "usage", message = "smtp.loop." .. name .. ": Lua 5.1 cannot yield across pcall; "
      .. "event loops need Lua 5.2 or later, or LuaJIT" }, 0)
  end
  local ok, mod = pcall(require, "smtp.loop." .. name)
  local loop
  if ok then ok, loop = pcall(mod.new, ...) else loop = mod end
  if not ok then
    error(Error.new { kind = "usage", message = "smtp.loop." .. name .. ": " .. tostring(loop) }, 0)
  end
  return loop
end

--- cqueues (call from a coroutine a controller runs: `cq:wrap(fn)`);
-- names resolve through `cqueues.dns`.
function M.cqueues() return adapter("cqueues") end

--- luv / libuv (Neovim's `vim.uv`, luvit): call from a coroutine; waits
-- use `uv.new_socket_poll` and timers, names `uv.getaddrinfo`.
-- @param[opt] uv the luv module (default `require "luv"`)
function M.luv(uv) return adapter("luv", uv) end

--- copas 2 or later (from a copas thread); copas 1.x has no sleep and
-- is refused: use a plain table there (examples/loop_select.lua).
function M.copas() return adapter("copas") end

return M
