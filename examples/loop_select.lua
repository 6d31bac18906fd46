-- A plain-table event loop (SPEC 5.1) for hosts that have no adapter, on
-- nothing but LuaSocket's socket.select and coroutines: any Lua from 5.1
-- and LuaJIT to 5.4. This is also the way for copas 1.2 (Debian 12's),
-- which can neither wait on a raw descriptor nor sleep, so
-- smtp.loop.copas() needs copas 2 or later. It sends one message to each
-- port in SMTP_PORTS at once, while a 50 ms ticker runs beside them.
--   SMTP_HOST=127.0.0.1 SMTP_PORTS=2525,2526 SMTP_FROM=a@example.org \
--   SMTP_TO=b@example.org luajit examples/loop_select.lua
-- Prints one line per send and "elapsed S s, ticks N"; exits 1 if a send failed.
local socket = require "socket"
local smtp = require "smtp"

-- The scheduler: coroutines waiting on a descriptor (or only on a time).
local waiting, ready = {}, {}

local function spawn(fn)
  ready[#ready + 1] = { co = coroutine.create(fn) }
end

-- LuaSocket's select takes any object with getfd().
local function fd_object(fd)
  return { getfd = function() return fd end, dirty = function() return false end }
end

local loop = {
  wait = function(fd, events, deadline)
    local w = { co = coroutine.running(), obj = fd_object(fd), events = events, deadline = deadline }
    waiting[w] = true
    return coroutine.yield()
  end,
  sleep = function(seconds)
    local w = { co = coroutine.running(), deadline = smtp.now() + seconds, sleep = true }
    waiting[w] = true
    coroutine.yield()
  end,
}

local function resume(task, ...)
  local ok, err = coroutine.resume(task.co, ...)
  if not ok then error(debug.traceback(task.co, tostring(err)), 0) end
end

local function run()
  while true do
    while #ready > 0 do resume(table.remove(ready, 1)) end
    if next(waiting) == nil then return end
    local rd, wr, nearest = {}, {}, nil
    for w in pairs(waiting) do
      if w.obj then
        if w.events:find("r", 1, true) then rd[#rd + 1] = w.obj end
        if w.events:find("w", 1, true) then wr[#wr + 1] = w.obj end
      end
      if w.deadline and (not nearest or w.deadline < nearest) then nearest = w.deadline end
    end
    local timeout = nearest and math.max(0, nearest - smtp.now()) or nil
    local r, wl = socket.select(rd, wr, timeout)
    -- Pick the tasks first: a resumed one adds to `waiting` at once.
    local now, due = smtp.now(), {}
    for w in pairs(waiting) do
      if w.obj and (r[w.obj] or wl[w.obj]) then
        due[#due + 1] = { w, true }
      elseif w.deadline and now >= w.deadline then
        due[#due + 1] = { w, not w.sleep and "timeout" or nil }
      end
    end
    for _, d in ipairs(due) do
      waiting[d[1]] = nil
      if d[2] == true then resume(d[1], true)
      elseif d[2] then resume(d[1], nil, d[2])
      else resume(d[1]) end
    end
  end
end

local host = os.getenv("SMTP_HOST") or "127.0.0.1"
local from, to = os.getenv("SMTP_FROM") or "a@example.org", os.getenv("SMTP_TO") or "b@example.org"
local t0, ticks, left, failed = smtp.now(), 0, 0, 0
for port in (os.getenv("SMTP_PORTS") or "25"):gmatch("%d+") do
  left = left + 1
  local n = left
  spawn(function()
    local ok, res = pcall(smtp.send, {
      host = host, port = tonumber(port), loop = loop, timeout = 10, local_name = "select.example",
      from = from, to = { to },
      raw = ("From: %s\r\nTo: %s\r\nSubject: select %d\r\n\r\nSent from a socket.select loop.\r\n"):format(from, to, n),
    })
    if ok then
      print(("sent %d: %d %s"):format(n, res.reply.code, tostring(res.reply.queue_id)))
    else
      failed = failed + 1
      print(("failed %d: %s"):format(n, tostring(res)))
    end
    left = left - 1
  end)
end
spawn(function()
  while left > 0 do
    loop.sleep(0.05)
    ticks = ticks + 1
  end
end)
run()
print(("elapsed %.2f s, ticks %d"):format(smtp.now() - t0, ticks))
os.exit(failed == 0 and 0 or 1)
