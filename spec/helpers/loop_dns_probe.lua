-- Runs inside a network namespace whose resolv.conf names 127.0.0.1
-- (spec/interop/loop_dns_spec.lua sets that up): starts the stub DNS server
-- (spec/helpers/dns_stub.py) there, then resolves a fast and a slow name in
-- the mode given (blocking, cqueues, luv, plain) and prints one line per
-- case: "CASE <name> <ok|err kind> <elapsed s> <timer ticks>".
-- usage: <lua> spec/helpers/loop_dns_probe.lua MODE
local smtp = require "smtp"
local scripted = require "helpers.scripted"
local P = require "helpers.proc"

local mode = arg[1]
local dir = P.tempdir("dns")
local stub = P.spawn(("/usr/bin/python3 spec/helpers/dns_stub.py --port 53 --answer fast.test=127.0.0.1 " ..
  "--slow slow.test --delay 4 --max-seconds 40"), dir .. "/dns.log")
assert(P.wait_for(10, function() return (P.read_file(dir .. "/dns.log") or ""):find("ready") end), "dns stub did not start")

local RAW = "From: a@example.org\r\nTo: b@example.org\r\nSubject: dns\r\n\r\nbody\r\n"
local SCRIPT = [[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250 mx.example.org
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 queued
C: QUIT
S: 221 bye
]]

local make_loop, run
if mode == "cqueues" or mode == "plain" then
  local cqueues = require "cqueues"
  if mode == "cqueues" then
    make_loop = smtp.loop.cqueues
  else
    make_loop = function()
      return {
        wait = function(fd, events, deadline)
          local want = { pollfd = fd, events = events }
          local ready = cqueues.poll(want, deadline and math.max(0, deadline - smtp.now()))
          cqueues.cancel(fd)
          if ready == want then return true end
          return nil, "timeout"
        end,
        sleep = cqueues.sleep,
      }
    end
  end
  run = function(main, ticker)
    local cq = cqueues.new()
    cq:wrap(function() ticker(cqueues.sleep) end)
    cq:wrap(main)
    assert(cq:loop())
  end
elseif mode == "luv" then
  local uv = require "luv"
  make_loop = function() return smtp.loop.luv(uv) end
  local function sleep(s)
    local co, t = coroutine.running(), uv.new_timer()
    t:start(math.floor(s * 1000), 0, function() t:close(); assert(coroutine.resume(co)) end)
    coroutine.yield()
  end
  run = function(main, ticker)
    coroutine.wrap(function() ticker(sleep) end)()
    coroutine.wrap(main)()
    uv.run()
  end
else
  make_loop = function() return nil end
  run = function(main) main() end
end

local function case(name, host, timeout)
  local server = scripted.start(SCRIPT)
  local result, ticks, done, elapsed = nil, 0, false, nil
  local t0 = smtp.now()
  run(function()
    local ok, err = pcall(smtp.send, { host = host, port = server.port, timeout = timeout, loop = make_loop(),
      local_name = "client.example", from = "a@example.org", to = { "b@example.org" }, raw = RAW })
    result = ok and "ok" or ("err " .. tostring(err.kind or err))
    -- Taken here: a libuv loop stays alive until an abandoned lookup ends.
    elapsed = smtp.now() - t0
    done = true
  end, function(sleep)
    while not done and smtp.now() - t0 < 10 do
      sleep(0.05)
      ticks = ticks + 1
    end
  end)
  server:stop()
  print(("CASE %s %s %.2f %d"):format(name, result, elapsed, ticks))
  io.stdout:flush()
end

case("fast", "fast.test", 5)
case("slow", "slow.test", 1)
P.terminate(stub, 1)
