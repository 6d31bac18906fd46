-- smtp.loop.luv([uv]): libuv through luv (luvit, Neovim's vim.uv). Each
-- wait is a socket poll handle plus a timer for the deadline, closed as
-- soon as either fires; the calling coroutine yields until then, so call
-- from a coroutine (coroutine.wrap(fn)() before uv.run()).
--
-- Two rules of luv itself (1.44, Debian 12); breaking either crashes the
-- process. Require "luv" first from the main thread: luv runs every
-- callback on the thread that loaded it, even while that coroutine is
-- suspended (luvit/luv#503; luv 1.50 uses the main thread, on Lua 5.2+).
-- Keep the module table the first require returned for as long as luv is
-- used (do not clear package.loaded.luv): libuv's loop lives in that table
-- and is freed with it, and a later require goes on with the freed loop
-- (luvit/luv#819).
local core = require "smtp.core"

local now, coroutine, max, floor = core.now, coroutine, math.max, math.floor
local tostring, error = tostring, error

local M = {}

local function close(handle, cb)
  if handle:is_closing() then
    if cb then cb() end
    return
  end
  handle:close(cb)
end

local function ms_until(deadline)
  return max(0, floor((deadline - now()) * 1000 + 0.5))
end

-- libuv times its timers from the loop's cached clock, which stands still
-- while Lua runs between callbacks: refresh it so that a deadline counts
-- from now.
local function start_timer(uv, ms, fn)
  local timer = uv.new_timer()
  uv.update_time()
  timer:start(ms, 0, fn)
  return timer
end

-- Resumes co with the values; an error in it is raised from the loop's
-- callback with its traceback, not lost.
local function resume(co, ...)
  local ok, err = coroutine.resume(co, ...)
  if not ok then error(debug.traceback(co, tostring(err)), 0) end
end

local function current(what)
  local co, main = coroutine.running()
  if co == nil or main then
    error("smtp.loop.luv: " .. what .. " must run inside a coroutine (coroutine.wrap(fn)() before uv.run())", 0)
  end
  return co
end

function M.new(uv)
  if uv == nil then
    local co, main = coroutine.running()
    if package.loaded.luv == nil and co ~= nil and not main then
      error("require \"luv\" from the main thread before calling smtp.loop.luv() in a coroutine "
        .. "(luv runs its callbacks on the thread that loaded it), or pass it: smtp.loop.luv(uv)", 0)
    end
    uv = require "luv"
  end
  local loop = {}

  function loop.wait(fd, events, deadline)
    if deadline and deadline <= now() then return nil, "timeout" end
    local co = current("wait")
    local poll, timer, done = uv.new_socket_poll(fd), nil, false
    local function finish(ok, err)
      if done then return end
      done = true
      poll:stop()
      if timer then
        timer:stop()
        close(timer)
      end
      -- The caller may close fd as soon as it runs again: resume only once
      -- libuv has let go of it (close callbacks run in the same turn).
      close(poll, function() resume(co, ok, err) end)
    end
    -- libuv reports an error condition on the fd (POLLERR: a refused
    -- connect, a reset) as an error of the poll; like poll(), that is
    -- "ready": the operation run next reports the real error.
    local ok, err = poll:start(events, function() finish(true) end)
    if not ok then
      close(poll)
      return nil, err
    end
    if deadline then
      timer = start_timer(uv, ms_until(deadline), function() finish(nil, "timeout") end)
    end
    return coroutine.yield()
  end

  function loop.sleep(seconds)
    local co = current("sleep")
    local timer
    timer = start_timer(uv, max(0, floor(seconds * 1000 + 0.5)), function()
      close(timer)
      resume(co)
    end)
    coroutine.yield()
  end

  function loop.resolve(host, port, deadline)
    local co = current("resolve")
    local timer, done = nil, false
    local function finish(list, err)
      if done then return end
      done = true
      if timer then
        timer:stop()
        close(timer)
      end
      resume(co, list, err)
    end
    local req, rerr
    req, rerr = uv.getaddrinfo(host, tostring(port), { socktype = "stream" }, function(err, res)
      if err then return finish(nil, err) end
      local list = {}
      for _, ai in ipairs(res or {}) do list[#list + 1] = ai.addr end
      if list[1] == nil then return finish(nil, "no address") end
      finish(list)
    end)
    if not req then return nil, rerr end
    if deadline then
      timer = start_timer(uv, ms_until(deadline), function()
        -- A lookup already running in libuv's pool cannot be stopped; its
        -- answer is ignored when it comes.
        pcall(uv.cancel, req)
        finish(nil, "timed out")
      end)
    end
    return coroutine.yield()
  end

  return loop
end

return M
