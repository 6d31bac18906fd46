-- The event-loop bench client (S9): SESSIONS sessions of PER messages each
-- to HOST:PORT, either one session after another with blocking waits
-- ("seq"), or all sessions at once in one thread ("cqueues", "luv").
-- usage: lua5.4 bench/peers/loop_sessions.lua MODE HOST PORT SESSIONS PER MSGFILE
local smtp = require "smtp"

local mode, host, port, sessions, per, msgfile = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]),
  tonumber(arg[5]), arg[6]
local f = assert(io.open(msgfile, "rb"))
local msg = f:read("a")
f:close()

local sent = 0
local function session(loop)
  local c = smtp.connect { host = host, port = port, loop = loop, timeout = 60, local_name = "bench.example" }
  for _ = 1, per do
    c:sendmail(msg, { from = "bench@example.test", to = { "sink@example.test" } })
    sent = sent + 1
  end
  c:quit()
end

if mode == "seq" then
  for _ = 1, sessions do session(nil) end
elseif mode == "cqueues" then
  local cqueues = require "cqueues"
  local cq = cqueues.new()
  local loop = smtp.loop.cqueues()
  for _ = 1, sessions do cq:wrap(function() session(loop) end) end
  assert(cq:loop())
elseif mode == "luv" then
  local uv = require "luv"
  local loop = smtp.loop.luv(uv)
  local failure
  for _ = 1, sessions do
    coroutine.wrap(function()
      local ok, err = pcall(session, loop)
      if not ok then failure = failure or err end
    end)()
  end
  uv.run()
  if failure then error(failure, 0) end
else
  error("mode must be seq, cqueues or luv")
end
assert(sent == sessions * per, ("sent %d of %d"):format(sent, sessions * per))
