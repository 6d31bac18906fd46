-- Prosody 0.12 (issue 24): a real prosody (Lua 5.4, epoll backend) loads
-- examples/prosody/mod_smtp_notify.lua, which mails a notification when the
-- server has started. The message is read back at aiosmtpd; and while a
-- slow SMTP server holds the final dot for 2 s, Prosody still answers a
-- client's XMPP stream header at once: the send does not block the server.
local servers = require "helpers.servers"
local scripted = require "helpers.scripted"
local P = require "helpers.proc"
local V = require "helpers.luaver"

local ROOT = P.run("pwd"):gsub("\n$", "")
local BUILD = os.getenv("SMTP_BUILD") or "build"
if BUILD:sub(1, 1) ~= "/" then BUILD = ROOT .. "/" .. BUILD end

local function start_prosody(smtp_port)
  local dir = P.tempdir("prosody")
  local c2s = P.free_port()
  P.run("mkdir -p " .. P.q(dir .. "/data"))
  P.write_file(dir .. "/prosody.cfg.lua", ([[
run_as_root = true
daemonize = false
pidfile = %q
data_path = %q
plugin_paths = { %q }
interfaces = { "127.0.0.1" }
c2s_ports = { %d }
s2s_ports = { }
http_ports = { }
https_ports = { }
c2s_require_encryption = false
network_backend = "epoll"
log = { { levels = { min = "info" }, to = "file", filename = %q } }
modules_enabled = { "smtp_notify" }
modules_disabled = { "s2s", "http", "admin_telnet", "admin_shell", "posix" }
smtp_notify = { host = "127.0.0.1", port = %d, from = "xmpp@example.test", to = "admin@example.test",
  timeout = 10, local_name = "prosody.example" }
VirtualHost "example.test"
]]):format(dir .. "/prosody.pid", dir .. "/data", ROOT .. "/examples/prosody", c2s, dir .. "/prosody.log",
    smtp_port))
  local env = ("LUA_PATH=%s LUA_CPATH=%s"):format(P.q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
    P.q(BUILD .. "/?.so;;"))
  local pid = P.spawn(("env %s prosody --config %s"):format(env, P.q(dir .. "/prosody.cfg.lua")),
    dir .. "/stdout.log")
  P.watchdog("kill " .. pid, pid)
  local h = { pid = pid, c2s = c2s, dir = dir }
  function h.log() return (P.read_file(dir .. "/prosody.log") or "") .. (P.read_file(dir .. "/stdout.log") or "") end
  function h.stop() P.terminate(pid, 3) end
  return h
end

describe("Prosody with mod_smtp_notify #interop", function()
  if not V.lua54 then
    pending("Prosody 0.12 runs Lua 5.4: this run's " .. V.interpreter .. " build is not the one it loads")
    return
  end
  if not P.exists("/usr/bin/prosody") then
    pending("prosody is not installed (make deps installs it)")
    return
  end

  it("mails a notification at start-up, read back at aiosmtpd", function()
    local sink = servers.aiosmtpd {}
    local h = start_prosody(sink.port)
    local msgs, err = sink:wait_messages(1, 20)
    -- The module logs "sent" only after QUIT's reply, which comes after
    -- aiosmtpd has handed over the message: wait for that line too.
    P.wait_for(10, function() return h.log():find("smtp_notify: sent", 1, true) end)
    local log = h.log()
    h.stop()
    sink:stop()
    assert.is_table(msgs, tostring(err) .. "\n" .. log)
    assert.same({ "admin@example.test" }, msgs[1].rcpt_tos)
    assert.equal("xmpp@example.test", msgs[1].mail_from)
    assert.truthy(msgs[1].data:find("Subject: Prosody started", 1, true), msgs[1].data)
    assert.truthy(log:find("smtp_notify: sent \"Prosody started\"", 1, true), log)
  end)

  it("keeps serving XMPP clients while the SMTP server is slow", function()
    local s = scripted.start([[
S: 220 mx.example.org ESMTP
C: EHLO prosody.example
S: 250 mx.example.org
C: MAIL FROM:<xmpp@example.test>
S: 250 ok
C: RCPT TO:<admin@example.test>
S: 250 ok
C: DATA
S: 354 go
BODY
SLEEP 2
S: 250 2.0.0 queued as P1
C: QUIT
S: 221 bye
]])
    local h = start_prosody(s.port)
    -- Once the body is in (the scripted server sleeps), ask Prosody for a
    -- stream: it must answer within half a second.
    local answered, took
    local ok = P.wait_for(20, function() return h.log():find("smtp_notify", 1, true) or P.listening(h.c2s) end)
    assert.truthy(ok, h.log())
    P.sleep(0.5)
    local t0 = P.now()
    local out = P.run(("printf '%%s' %s | timeout 3 /usr/bin/python3 -c %s %d 2>&1"):format(
      P.q("<?xml version='1.0'?><stream:stream to='example.test' xmlns='jabber:client' " ..
        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"),
      P.q("import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1])), 3); " ..
        "s.sendall(sys.stdin.buffer.read()); s.settimeout(3); print(s.recv(4096).decode('utf-8','replace'))"),
      h.c2s))
    took = P.now() - t0
    answered = out:find("stream:features", 1, true) or out:find("<stream:stream", 1, true)
    local sent = P.wait_for(10, function() return h.log():find("smtp_notify: sent", 1, true) end)
    local log = h.log()
    h.stop()
    local sok, why = s:result()
    assert.truthy(answered, out .. "\n" .. log)
    assert.is_true(took < 1, ("Prosody took %.2f s to answer a stream header"):format(took))
    assert.truthy(sent, log)
    assert.truthy(log:find("P1", 1, true), log)
    assert.is_true(sok, why)
  end)
end)
