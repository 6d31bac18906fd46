-- Handshake benchmark peer (issue 26): count fresh connections, each
-- connect + implicit TLS + greeting + EHLO + QUIT, one after another.
--   handshake_peer.lua smtp|smtp-resume|luasec <host> <port> <count> <ca_file> <name>
-- smtp: lua-smtp, one tls_config with session_cache = false (every
-- handshake full); smtp-resume: one shared tls_config (resumption);
-- luasec: LuaSocket + LuaSec (OpenSSL), the certificate checked against
-- the same CA. Every client verifies the chain and the name.
-- BENCH_GROUPS / BENCH_SUITES (comma-separated IANA names) set lua-smtp's
-- groups / ciphersuites options.
-- Prints "ok <count> <seconds> resumed=<n> tls=<version> cipher=<cipher>
-- cpu=<this process's CPU seconds>".
local mode, host, port, count, ca, name = ...
count = tonumber(count)
port = tonumber(port)

local now
local last, resumed = "", 0

local run
if mode == "smtp" or mode == "smtp-resume" then
  local smtp = require "smtp"
  now = require("smtp.core").now
  local function list(var)
    local v, out = os.getenv(var), {}
    for n in (v or ""):gmatch("[^,%s]+") do out[#out + 1] = n end
    return out[1] and out or nil
  end
  local cfg = smtp.tls_config { ca_file = ca, server_name = name, session_cache = mode == "smtp-resume",
    groups = list("BENCH_GROUPS"), ciphersuites = list("BENCH_SUITES") }
  run = function()
    local c = smtp.connect { host = host, port = port, tls_mode = "implicit", tls = cfg, local_name = "bench.example" }
    c:helo()
    local info = c:tls_info()
    if info.resumed then resumed = resumed + 1 end
    last = ("tls=%s cipher=%s"):format(info.version, info.cipher)
    c:quit()
  end
elseif mode == "luasec" then
  local socket = require "socket"
  local ssl = require "ssl"
  now = socket.gettime
  local params = { mode = "client", protocol = "any", verify = "peer", cafile = ca,
    options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" } }
  local ctx = assert(ssl.newcontext(params))
  local function reply(s)
    local line
    repeat
      line = assert(s:receive("*l"))
    until line:sub(4, 4) ~= "-"
    return line
  end
  run = function()
    local s = assert(socket.tcp())
    assert(s:connect(host, port))
    s = assert(ssl.wrap(s, ctx))
    s:sni(name)
    assert(s:dohandshake())
    -- LuaSec 1.2 checks the chain, not the name: check it as the others do.
    local cert = assert(s:getpeercertificate())
    local ok = false
    for _, dns in ipairs((cert:extensions()["2.5.29.17"] or {}).dNSName or {}) do
      if dns == name then ok = true end
    end
    assert(ok, "name mismatch")
    reply(s)
    assert(s:send("EHLO bench.example\r\n"))
    reply(s)
    assert(s:send("QUIT\r\n"))
    reply(s)
    local info = s:info()
    last = ("tls=%s cipher=%s"):format(info.protocol, info.cipher)
    s:close()
  end
else
  error("mode must be smtp, smtp-resume or luasec")
end

local t0, c0 = now(), os.clock()
for _ = 1, count do run() end
io.write(("ok %d %.4f resumed=%d %s cpu=%.4f\n"):format(count, now() - t0, resumed, last, os.clock() - c0))
