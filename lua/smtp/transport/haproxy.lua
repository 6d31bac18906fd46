-- HAProxy's Lua socket (core.tcp(), HAProxy 2.x) in the shape the
-- cosocket transport drives (issue 27): timeouts in ms (HAProxy counts
-- seconds), "timeout" and "closed" as the only error words, and no
-- receiveany, so the cosocket transport reads lines in plaintext and
-- whole TLS records under lua-smtp's own TLS. HAProxy's socket has no TLS
-- a client can verify, so TLS is always ours here.
local tostring, type, concat, setmetatable, getmetatable, pcall =
  tostring, type, table.concat, setmetatable, getmetatable, pcall

local M = {}

local Socket = {}
Socket.__index = Socket

local function word(err)
  local e = tostring(err or ""):lower()
  if e:find("timeout", 1, true) then return "timeout" end
  if e == "" or e:find("close", 1, true) or e:find("reset", 1, true) or e:find("abort", 1, true) then
    return "closed"
  end
  return e
end

function Socket:connect(host, port)
  local ok, err = self._sock:connect(host, port)
  if not ok then return nil, word(err) end
  self._connected = true
  return 1
end

-- nil before connect, so that smtp.connect connects it (as a cosocket).
function Socket:getreusedtimes()
  if not self._connected then return nil, "not connected" end
  return 0
end

function Socket:settimeout(ms)
  -- HAProxy takes whole seconds in 2.6 (later versions take fractions).
  local s = ms / 1000
  if s < 1 then s = 1 end
  self._sock:settimeout(math.ceil(s))
end

function Socket:send(data)
  if type(data) == "table" then data = concat(data) end
  local n, err = self._sock:send(data)
  if not n then return nil, word(err) end
  return n
end

function Socket:receive(pattern)
  local data, err = self._sock:receive(pattern)
  if data == nil then return nil, word(err) end
  return data
end

function Socket:getsockname()
  local ok, ip = pcall(self._sock.getsockname, self._sock)
  if ok then return ip end
  return nil
end

function Socket:close()
  self._connected = false
  return self._sock:close()
end

--- Wraps `core.tcp()` for `smtp.connect{transport = ...}`.
function M.wrap(sock)
  return setmetatable({ _sock = sock, _connected = false }, Socket)
end

--- Whether `sock` is an HAProxy socket (smtp.connect then wraps it).
function M.is_haproxy_socket(sock)
  local core = rawget(_G, "core")
  return type(core) == "table" and type(core.tcp) == "function" and type(core.register_service) == "function"
    and (type(sock) == "userdata" or type(sock) == "table") and sock.receiveany == nil and sock.settimeouts == nil
    and getmetatable(sock) ~= Socket
end

return M
