-- HAProxy (issue 27): Debian's haproxy 2.6 (Lua 5.3) loads
-- examples/haproxy/smtp_notify.lua; an HTTP request to its service sends
-- a message through HAProxy's own socket (core.tcp()) over STARTTLS with
-- AUTH, lua-smtp's TLS checking the certificate, to a real aiosmtpd that
-- requires TLS and AUTH. The message is read back at the server.
local P = require "helpers.proc"
local servers = require "helpers.servers"
local certs = require "helpers.certs"
local socket = require "socket"

local HAPROXY = "/usr/sbin/haproxy"
local have = P.exists(HAPROXY) and P.try(HAPROXY .. " -vv 2>/dev/null | grep -q '+LUA'")
local hit = have and it or function(name) pending(name .. " (needs haproxy with Lua: `make deps`)") end

local ROOT = P.run("pwd"):gsub("\n$", "")
local BUILD = os.getenv("SMTP_HAPROXY_BUILD") or "build/lua5.3"

local function http_get(port, path)
  local c = socket.tcp()
  c:settimeout(30)
  assert(c:connect("127.0.0.1", port))
  assert(c:send("GET " .. path .. " HTTP/1.0\r\nHost: localhost\r\n\r\n"))
  local resp, err, partial = c:receive("*a")
  c:close()
  resp = resp or partial
  assert(resp and resp ~= "", "no HTTP response: " .. tostring(err))
  return tonumber(resp:match("^HTTP/%d%.%d (%d+)")), resp:match("\r\n\r\n(.*)$")
end

describe("smtp in HAProxy with core.tcp() #interop #haproxy #tls", function()
  local pid, port, dir, server

  setup(function()
    if not have then return end
    -- test-all-luas builds it first: no make running beside other runs.
    if not os.getenv("SMTP_HAPROXY_BUILD") then P.run("make -s LUA=lua5.3 BUILD=" .. P.q(BUILD) .. " all") end
    assert(P.exists(BUILD .. "/smtp/core.so"), "no Lua 5.3 build at " .. BUILD)
    local c = certs.make()
    server = servers.aiosmtpd { tls = true, auth = { alice = "s3cret" }, auth_require_tls = true,
      require_tls = true, pipelining = true }
    dir = P.tempdir("haproxy")
    port = P.free_port()
    local conf = table.concat({
      "global",
      "  lua-prepend-path " .. ROOT .. "/lua/?.lua",
      "  lua-prepend-path " .. ROOT .. "/lua/?/init.lua",
      "  lua-prepend-path " .. ROOT .. "/" .. BUILD .. "/?.so cpath",
      "  setenv SMTP_HOST 127.0.0.1",
      "  setenv SMTP_PORT " .. server.port,
      "  setenv SMTP_USER alice",
      "  setenv SMTP_PASSWORD s3cret",
      "  setenv SMTP_CA_FILE " .. c.ca_cert,
      "  setenv SMTP_FROM alice@example.org",
      "  setenv SMTP_TO bob@example.org",
      "  lua-load " .. ROOT .. "/examples/haproxy/smtp_notify.lua",
      "defaults",
      "  mode http",
      "  timeout connect 5s",
      "  timeout client 30s",
      "  timeout server 30s",
      "frontend web",
      "  bind 127.0.0.1:" .. port,
      "  http-request use-service lua.smtp_notify if { path /notify }",
      "",
    }, "\n")
    P.write_file(dir .. "/haproxy.cfg", conf)
    pid = P.spawn(("%s -db -f %s"):format(HAPROXY, P.q(dir .. "/haproxy.cfg")), dir .. "/haproxy.log")
    P.watchdog("kill " .. pid, pid)
    local up = P.wait_for(10, function() return P.listening(port) or not P.alive(pid) end)
    assert(up and P.alive(pid), "haproxy did not start: " .. tostring(P.read_file(dir .. "/haproxy.log")))
  end)

  teardown(function()
    if pid then P.terminate(pid) end
    if server then server:stop() end
  end)

  hit("sends over STARTTLS with AUTH through HAProxy's socket, certificate checked, read back", function()
    local status, body = http_get(port, "/notify?subject=From+HAProxy")
    assert.equal(200, status, tostring(body) .. "\n" .. tostring(P.read_file(dir .. "/haproxy.log")))
    assert.truthy(body:match("^sent 250 TLSv1%.[23] verified=true resumed=false\n$"), body)
    local got = assert(server:wait_messages(1))[1]
    assert.equal("alice", got.auth)
    assert.truthy(got.tls, "not over TLS")
    assert.same({ "bob@example.org" }, got.rcpt_tos)
    assert.truthy(got.data:find("\r\nSubject: From HAProxy\r\n", 1, true), got.data)
    assert.truthy(got.data:find("\r\n\r\nSent by HAProxy's Lua service.\r\n$"), got.data)
  end)

  hit("a second request resumes the TLS session of the service's tls_config", function()
    local status, body = http_get(port, "/notify?subject=second")
    assert.equal(200, status, body)
    assert.truthy(body:match("^sent 250 TLSv1%.[23] verified=true resumed=true\n$"), body)
    assert(server:wait_messages(2))
  end)
end)
