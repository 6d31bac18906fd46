-- Host sockets for the transport specs, over LuaSocket: objects with the
-- methods a host gives Lua (connect, send, receive..., close), in two
-- shapes. "receiveany" is an OpenResty cosocket's (settimeouts in ms,
-- receiveany returns what arrived); "receive" is one that reads only
-- exact counts or lines (lua-nginx-module before 0.10.14, and what
-- smtp.transport.haproxy makes of HAProxy's core.tcp()): settimeout in
-- ms, no receiveany. Real TCP on loopback; every wait bounded.
local socket = require "socket"

local M = {}

local function base()
  local s = { timeout = 30, sent = 0, received = 0 }
  function s:connect(host, port)
    local sock = socket.tcp()
    sock:settimeout(self.timeout)
    local ok, err = sock:connect(host, port)
    if not ok then sock:close(); return nil, err end
    self.sock = sock
    return 1
  end
  function s:send(data)
    if type(data) == "table" then data = table.concat(data) end
    if not self.sock then return nil, "closed" end
    local n, err = self.sock:send(data)
    if not n then return nil, err end
    self.sent = self.sent + #data
    return n
  end
  function s:close()
    if self.sock then self.sock:close() end
    self.sock = nil
    return 1
  end
  -- As a cosocket's: nil until connected (smtp.connect then connects it).
  function s:getreusedtimes()
    if not self.sock then return nil, "closed" end
    return 0
  end
  function s:getsockname()
    if not self.sock then return nil, "closed" end
    return self.sock:getsockname()
  end
  return s
end

-- The cosocket shape.
function M.receiveany()
  local s = base()
  function s:settimeouts(_, _, r)
    self.timeout = r / 1000
    if self.sock then self.sock:settimeout(self.timeout) end
  end
  function s:receiveany(max)
    if not self.sock then return nil, "closed" end
    -- LuaSocket may hold bytes it read ahead: select sees only the kernel's.
    if not self.sock:dirty() then
      local ready = socket.select({ self.sock }, nil, self.timeout)
      if #ready == 0 then return nil, "timeout" end
    end
    self.sock:settimeout(0)
    local data, err, partial = self.sock:receive(max)
    self.sock:settimeout(self.timeout)
    data = data or partial
    if data and data ~= "" then
      self.received = self.received + #data
      return data
    end
    return nil, err == "timeout" and "timeout" or "closed"
  end
  return s
end

-- Exact counts and lines only.
function M.receive()
  local s = base()
  function s:settimeout(ms)
    self.timeout = ms / 1000
    if self.sock then self.sock:settimeout(self.timeout) end
  end
  function s:receive(pattern)
    if not self.sock then return nil, "closed" end
    local data, err = self.sock:receive(pattern)
    if data then self.received = self.received + #data end
    return data, err
  end
  return s
end

M.shapes = { "receiveany", "receive" }

return M
