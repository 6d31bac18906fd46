-- Runs inside a network namespace whose resolv.conf names 127.0.0.1
-- (spec/interop/idn_spec.lua sets it up): starts the stub DNS server, which
-- knows only xn--bcher-kva.test, and a scripted SMTP server, then connects
-- to "bücher.test". Prints "RESULT ok" or "RESULT err <kind> <message>",
-- then the stub's log (one "QUERY <name>" line per query).
-- usage: <lua> spec/helpers/idn_dns_probe.lua
local smtp = require "smtp"
local scripted = require "helpers.scripted"
local P = require "helpers.proc"

local dir = P.tempdir("idn-dns")
local log = dir .. "/dns.log"
local stub = P.spawn("/usr/bin/python3 spec/helpers/dns_stub.py --port 53 --answer xn--bcher-kva.test=127.0.0.1 "
  .. "--log-queries --max-seconds 30", log)
assert(P.wait_for(10, function() return (P.read_file(log) or ""):find("ready") end), "dns stub did not start")

local server = scripted.start([[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250 mx.example.org
C: QUIT
S: 221 bye
]])
local ok, err = pcall(function()
  local c = smtp.connect { host = "b\195\188cher.test", port = server.port, timeout = 5, local_name = "client.example" }
  c:helo()
  c:quit()
end)
local sok, serr = server:result()
P.kill(stub)
if ok and sok then
  print("RESULT ok")
else
  print("RESULT err " .. tostring(err and err.kind) .. " " .. tostring(err and err.message or serr))
end
io.write(P.read_file(log) or "")
