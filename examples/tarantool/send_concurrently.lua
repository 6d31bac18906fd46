-- Two messages from two Tarantool fibers at once, through lua-smtp's
-- plain-table loop (examples/tarantool/smtp_loop.lua), while a third fiber
-- keeps a 50 ms timer going: none of them blocks the instance.
--   SMTP_HOST=127.0.0.1 SMTP_PORTS=2525,2526 SMTP_FROM=a@example.org \
--   SMTP_TO=b@example.org tarantool examples/tarantool/send_concurrently.lua
-- SMTP_ROOT (default .) is the lua-smtp checkout; SMTP_BUILD (default
-- build/luajit) the LuaJIT build of the C module. Prints one line per send
-- and the timer's tick count; exits 0 when both were accepted.
local root = os.getenv("SMTP_ROOT") or "."
local build = os.getenv("SMTP_BUILD") or (root .. "/build/luajit")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath

local fiber = require "fiber"
local smtp = require "smtp"
local loop = dofile(root .. "/examples/tarantool/smtp_loop.lua")

local host = os.getenv("SMTP_HOST") or "127.0.0.1"
local ports = {}
for p in (os.getenv("SMTP_PORTS") or "25"):gmatch("%d+") do ports[#ports + 1] = tonumber(p) end

local t0 = smtp.now()
local ticks, left, failed = 0, #ports, 0
local done = fiber.channel(#ports)

fiber.create(function()
  while left > 0 do
    fiber.sleep(0.05)
    ticks = ticks + 1
  end
end)

for i, port in ipairs(ports) do
  fiber.create(function()
    local ok, res = pcall(smtp.send, {
      host = host, port = port, loop = loop, timeout = 10, local_name = "tarantool.example",
      from = os.getenv("SMTP_FROM") or "a@example.org", to = { os.getenv("SMTP_TO") or "b@example.org" },
      raw = ("From: %s\r\nTo: %s\r\nSubject: from fiber %d\r\n\r\nSent from a Tarantool fiber.\r\n")
        :format(os.getenv("SMTP_FROM") or "a@example.org", os.getenv("SMTP_TO") or "b@example.org", i),
    })
    if ok then
      print(("sent %d: %d %s after %.2f s"):format(i, res.reply.code, tostring(res.reply.queue_id), smtp.now() - t0))
    else
      failed = failed + 1
      print(("failed %d: %s"):format(i, tostring(res)))
    end
    left = left - 1
    done:put(i)
  end)
end

for _ = 1, #ports do done:get(30) end
print(("elapsed %.2f s, ticks %d"):format(smtp.now() - t0, ticks))
os.exit(failed == 0 and 0 or 1)
