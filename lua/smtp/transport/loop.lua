-- The C connection driven by an event loop (SPEC 5.1, DESIGN "Waiting").
-- The C core runs in no-wait mode: where it would wait it returns
-- nil, "want", "r"|"w" and keeps its state; this transport then hands the
-- wait to `loop.wait(fd, events, deadline)` and calls the same operation
-- again. C never yields and never calls Lua, so this works the same on
-- Lua 5.1/LuaJIT. The methods and failure shapes are those of the C
-- connection (transport/socket.lua), so the Client cannot tell them apart.
local core = require "smtp.core"

local tostring, type, setmetatable, ipairs = tostring, type, setmetatable, ipairs
local now = core.now

local Transport = {}
Transport.__index = Transport

-- Waits for the connection's fd; on a timeout or a loop failure the
-- connection is dropped as after any failure (the stream is out of sync)
-- and the failure triple is returned.
local function wait(self, events, what, timeout_message)
  local ok, err = self._loop.wait(self._fd, events, self._deadline)
  if ok then return true end
  self._conn:abort()
  if err == "timeout" or err == nil then
    return nil, "timeout", timeout_message or (what .. ": timed out")
  end
  return nil, "io", what .. ": event loop wait failed: " .. tostring(err)
end

-- Runs op(conn, ...) until it stops wanting I/O.
local function drive(self, what, timeout_message, op, ...)
  for _ = 1, math.huge do
    local r, kind, ev, extra = op(self._conn, ...)
    if r ~= nil or kind ~= "want" then return r, kind, ev, extra end
    local ok, k, m = wait(self, ev, what, timeout_message)
    if not ok then return nil, k, m end
  end
end

local function flush(self)
  return drive(self, "send", nil, self._conn.flush)
end

--- set_deadline(abs | nil): checked by C as in blocking mode (NaN, huge
-- values refused); the loop's waits use it.
function Transport:set_deadline(deadline)
  local ok, kind, msg = self._conn:set_deadline(deadline)
  if not ok then
    self._deadline = now() -- passed: the next wait times out
    return ok, kind, msg
  end
  self._deadline = deadline
  return true
end

function Transport:send(data)
  local ok, kind, ev = self._conn:send(data)
  if ok or kind ~= "want" then return ok, kind, ev end
  local waited, k, m = wait(self, ev, "send")
  if not waited then return nil, k, m end
  return flush(self)
end

-- send_data queues its encoded bytes in C; a second value says the
-- socket took only part of them.
function Transport:send_data(...)
  local n, ev, msg, where = self._conn:send_data(...)
  if n == nil then return n, ev, msg, where end
  if ev then
    local waited, k, m = wait(self, ev, "send")
    if not waited then return nil, k, m end
    local ok, k2, m2 = flush(self)
    if not ok then return nil, k2, m2 end
  end
  return n
end

function Transport:read_reply(parser)
  return drive(self, "receive", nil, self._conn.read_reply, parser)
end

function Transport:receive_some(max)
  return drive(self, "receive", nil, self._conn.receive_some, max)
end

function Transport:starttls(cfg, peer)
  return drive(self, "TLS handshake", "TLS handshake timed out", self._conn.starttls, cfg, peer)
end

function Transport:tls_info() return self._conn:tls_info() end
function Transport:tls_channel_binding() return self._conn:tls_channel_binding() end
function Transport:is_closed() return self._conn:is_closed() end
function Transport:fileno() return self._conn:fileno() end
function Transport:input_pending() return self._conn:input_pending() end
function Transport:local_literal() return self._conn:local_literal() end
function Transport:close() return self._conn:close() end
Transport.__close = Transport.close
function Transport:__tostring() return "smtp loop transport: " .. tostring(self._conn) end

local M = {}

-- A literal needs no lookup (and no loop resolver).
local function is_literal(host)
  return host:find("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

-- Our own lookup (resolve.c: getaddrinfo in a helper thread) waited on
-- through the loop, for loops without a resolver of their own.
local function thread_resolve(loop, host, port, deadline)
  local r, kind, msg = core.resolve_start(host, tostring(port))
  if not r then return nil, kind, msg end
  for _ = 1, math.huge do
    local list, k, m = r:result()
    if list or k ~= "want" then
      r:close()
      if not list then return nil, k, m end
      return list
    end
    local ok, err = loop.wait(r:fileno(), "r", deadline)
    if not ok then
      r:close()
      if err == "timeout" or err == nil then return nil, "timeout", "cannot resolve " .. host .. ": timed out" end
      return nil, "io", "cannot resolve " .. host .. ": event loop wait failed: " .. tostring(err)
    end
  end
end

local function resolve(loop, host, port, deadline)
  if host:sub(1, 1) == "/" then return { host } end
  if is_literal(host) or not loop.resolve then return thread_resolve(loop, host, port, deadline) end
  local list, msg = loop.resolve(host, port, deadline)
  if deadline and now() >= deadline then
    return nil, "timeout", "cannot resolve " .. host .. ": timed out"
  end
  if type(list) ~= "table" or list[1] == nil then
    return nil, "io", "cannot resolve " .. host .. ": " .. tostring(msg or "no address")
  end
  return list
end

-- One attempt; returns conn or nil, kind, msg ("timeout" for this attempt).
local function connect_one(loop, addr, port, attempt_deadline, local_address)
  local conn, w, msg = core.connect_start(addr, port, local_address)
  if not conn then return nil, w, msg end
  if w then
    local ok, err = loop.wait(conn:fileno(), "w", attempt_deadline)
    if not ok then
      conn:abort()
      if err == "timeout" or err == nil then return nil, "timeout" end
      return nil, "io", ("connect to %s port %s: event loop wait failed: %s"):format(addr, port, tostring(err))
    end
    local done, kind, m = conn:connect_finish()
    if not done then return nil, kind, m end
  end
  return conn
end

--- Connects to host:port before the absolute deadline, every wait through
-- `loop`. Each address of the name gets an equal share of the time left,
-- at least 1 s, as the blocking connect gives it (RFC 8305 spirit).
function M.connect(loop, host, port, deadline, local_address, proxy)
  if proxy ~= nil then
    return nil, "usage", "'proxy' cannot be used with an event loop yet"
  end
  port = tostring(port)
  local list, kind, msg = resolve(loop, host, port, deadline)
  if not list then return nil, kind, msg end
  local last, timed_out = nil, false
  for i, addr in ipairs(list) do
    local t = now()
    if deadline and t >= deadline then timed_out = true break end
    local attempt = deadline
    local remaining = #list - i + 1
    if deadline and remaining > 1 then
      local share = (deadline - t) / remaining
      if share < 1 then share = 1 end
      if t + share < deadline then attempt = t + share end
    end
    local conn, k, m = connect_one(loop, addr, port, attempt, local_address)
    if conn then
      local self = setmetatable({ _conn = conn, _fd = conn:fileno(), _loop = loop, _deadline = deadline }, Transport)
      return self
    end
    if k == "usage" then return nil, k, m end
    if k == "timeout" then timed_out = true else last = m end
  end
  if timed_out and (not deadline or now() >= deadline or not last) then
    return nil, "timeout", ("connect to %s port %s timed out"):format(host, port)
  end
  return nil, "io", last or ("cannot connect to %s port %s"):format(host, port)
end

return M
