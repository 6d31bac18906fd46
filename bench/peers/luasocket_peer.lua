-- A hand-tuned LuaSocket SMTP loop (Debian lua-socket) as a benchmark
-- peer: one connection, lockstep MAIL / RCPT / DATA / body+"." (4 reply
-- waits per message), each command one send. Messages are pre-stuffed
-- once (CRLF, dot-stuffing) as a hand-tuned sender would.
--   luasocket_peer.lua loop <host> <port> <count> <msgfile>
-- Prints "ok <messages> <seconds>".
local socket = require "socket"

local mode, host, port, count, path = ...
assert(mode == "loop", "only 'loop' is implemented")
count = tonumber(count)

local function reply(s)
  local code
  repeat
    local line, err = s:receive("*l")
    if not line then error("receive: " .. tostring(err)) end
    code = line:sub(1, 3)
  until line:sub(4, 4) ~= "-"
  return tonumber(code)
end

local function expect(s, want)
  local code = reply(s)
  if code ~= want then error(("expected %d, got %d"):format(want, code)) end
end

local f = assert(io.open(path, "rb"))
local body = f:read("a")
f:close()
body = body:gsub("\r?\n", "\r\n"):gsub("\n%.", "\n..")
if body:sub(1, 1) == "." then body = "." .. body end
if body:sub(-2) ~= "\r\n" then body = body .. "\r\n" end
body = body .. ".\r\n"

local t0 = socket.gettime()
local s = assert(socket.connect(host, tonumber(port)))
s:setoption("tcp-nodelay", true)
expect(s, 220)
s:send("EHLO bench.example.test\r\n"); expect(s, 250)
for _ = 1, count do
  s:send("MAIL FROM:<bench@example.test>\r\n"); expect(s, 250)
  s:send("RCPT TO:<sink@example.test>\r\n"); expect(s, 250)
  s:send("DATA\r\n"); expect(s, 354)
  s:send(body); expect(s, 250)
end
s:send("QUIT\r\n"); expect(s, 221)
s:close()
io.write(("ok %d %.4f\n"):format(count, socket.gettime() - t0))
