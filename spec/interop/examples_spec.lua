-- Every example in examples/ runs as a user would run it (a subprocess,
-- `lua5.4 examples/x.lua` or this run's interpreter, settings from the
-- environment) against the test servers, and the message is read back
-- where it arrived: Postfix + Dovecot (STARTTLS + SCRAM, port 465), a
-- scripted server (XOAUTH2 exact bytes), aiosmtpd (sendmany, large
-- attachment), Dovecot LMTP.
local servers = require "helpers.servers"
local scripted = require "helpers.scripted"
local lmtp = require "helpers.lmtp"
local certs = require "helpers.certs"
local P = require "helpers.proc"
local V = require "helpers.luaver"

local BUILD = os.getenv("SMTP_BUILD") or "build"
local ROOT = P.run("pwd"):gsub("\n$", "")
if BUILD:sub(1, 1) ~= "/" then BUILD = ROOT .. "/" .. BUILD end
local dir = P.tempdir("examples")
local SKIPPED = 77

-- Runs examples/<name> with the environment 'env' (a table); returns the
-- exit code, stdout and stderr. Bounded by 'limit' seconds.
local n = 0
local function example(name, env, limit)
  -- Examples that show `<close>` are Lua 5.4 programs; the others run
  -- under the interpreter of this run (with its own build of smtp.core).
  if not V.lua54 and (P.read_file(ROOT .. "/examples/" .. name) or ""):find("<close>", 1, true) then
    pending(name .. " is a Lua 5.4 program (<close>); " .. V.interpreter .. " does not run it")
  end
  n = n + 1
  local base = dir .. "/run" .. n
  local vars = {
    "LUA_PATH=" .. P.q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
    "LUA_CPATH=" .. P.q(BUILD .. "/?.so;;"),
  }
  for k, v in pairs(env) do vars[#vars + 1] = k .. "=" .. P.q(v) end
  table.sort(vars)
  local cmd = ("cd %s && timeout %d env %s %s examples/%s < /dev/null > %s.out 2> %s.err"):format(
    P.q(ROOT), limit or 60, table.concat(vars, " "), V.interpreter, name, base, base)
  local _, code = V.execute(cmd)
  return code, P.read_file(base .. ".out") or "", P.read_file(base .. ".err") or ""
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  return (s:gsub("..?.?", function(c)
    local a, b, d = c:byte(1, 3)
    local v = a * 65536 + (b or 0) * 256 + (d or 0)
    local out = {}
    for i = 1, 4 do
      local idx = math.floor(v / 64 ^ (4 - i)) % 64
      out[i] = B64:sub(idx + 1, idx + 1)
    end
    if not b then out[3], out[4] = "=", "=" elseif not d then out[4] = "=" end
    return table.concat(out)
  end))
end

describe("examples/ #interop", function()
  it("every example passes luacheck (the OpenResty one with the ngx global)", function()
    if not P.try("command -v luacheck") then
      pending("luacheck is not installed")
      return
    end
    local ok, out = P.try("cd " .. P.q(ROOT) .. " && luacheck --no-color -q examples")
    assert.is_true(ok, out)
    assert.truthy(P.exists(ROOT .. "/examples/openresty/handler.lua"))
    assert.truthy(P.exists(ROOT .. "/examples/openresty/nginx.conf"))
  end)

  it("every example says how to run it and reads its settings from the environment", function()
    local list = P.run("cd " .. P.q(ROOT) .. " && ls examples/*.lua examples/openresty/*.lua")
    local count = 0
    for path in list:gmatch("[^\n]+") do
      count = count + 1
      local src = assert(P.read_file(ROOT .. "/" .. path))
      assert.truthy(src:find("^%-%- "), path .. " has no header comment")
      assert.truthy(src:find("os.getenv", 1, true), path .. " takes no settings from the environment")
    end
    assert.is_true(count >= 7, list)
  end)

  it("the OpenResty nginx.conf passes nginx -t (Debian nginx with the lua module)", function()
    if not (P.exists("/usr/sbin/nginx") and P.exists("/usr/lib/nginx/modules/ngx_http_lua_module.so")) then
      pending("nginx with the lua module is not installed (make deps installs it)")
      return
    end
    local copy = P.tempdir("nginx-conf")
    P.run(("cp %s/examples/openresty/nginx.conf %s/examples/openresty/handler.lua %s/"):format(
      P.q(ROOT), P.q(ROOT), P.q(copy)))
    local ok, out = P.try(("/usr/sbin/nginx -t -p %s/ -c nginx.conf -e stderr"):format(P.q(copy)))
    assert.is_true(ok, out)
    assert.truthy(out:find("test is successful", 1, true), out)
  end)

  describe("against Postfix + Dovecot #tls", function()
    local stack, alice
    setup(function()
      stack = servers.mail_stack()
      alice = stack.users[1]
    end)
    teardown(function() if stack then stack:stop() end end)

    local function env(port, subject)
      return {
        SMTP_HOST = "localhost", SMTP_PORT = tostring(port), SMTP_USER = alice.user,
        SMTP_PASSWORD = alice.password, SMTP_CAFILE = stack.certs.ca_cert,
        SMTP_FROM = "alice@" .. stack.domain, SMTP_TO = "bob@" .. stack.domain,
        SMTP_SUBJECT = subject, SMTP_DEBUG = "1",
      }
    end

    local function delivered(subject)
      return P.wait_for(10, function()
        for _, m in ipairs(stack:messages("bob")) do
          if m.data:find("Subject: " .. subject .. "\r\n", 1, true) then return m end
        end
      end)
    end

    it("starttls_scram.lua submits with STARTTLS + SCRAM-SHA-256", function()
      local code, out, err = example("starttls_scram.lua", env(stack.ports.starttls, "example starttls"))
      assert.equal(0, code, err)
      assert.truthy(out:find("^sent: 250"), out)
      assert.truthy(err:find("C: STARTTLS", 1, true), err)
      assert.truthy(err:find("C: AUTH SCRAM-SHA-256 ***", 1, true), err)
      assert.is_nil(err:find(alice.password, 1, true))
      local m = assert(delivered("example starttls"), "not delivered")
      assert.truthy(m.added:find("using TLS", 1, true))
      assert.truthy(m.data:find("submitted with STARTTLS and SCRAM-SHA-256", 1, true))
    end)

    for _, ex in ipairs({ { "loop_cqueues.lua", "cqueues" }, { "loop_luv.lua", "luv" } }) do
      it(ex[1] .. " submits with STARTTLS + AUTH through its event loop", function()
        -- luv is looked for, not loaded: a luv module table this process
        -- dropped would take libuv's loop with it (helpers/luv.lua).
        local installed
        if ex[2] == "luv" then installed = require("helpers.luv").installed() else installed = pcall(require, ex[2]) end
        if not installed or not require("smtp.loop").can_yield then
          pending(ex[2] .. " is not installed for " .. V.interpreter .. ", or it is Lua 5.1 (no yield across pcall)")
          return
        end
        local subject = "example " .. ex[2]
        local code, out, err = example(ex[1], env(stack.ports.starttls, subject))
        assert.equal(0, code, err)
        assert.truthy(out:find("^sent: 250"), out)
        assert.truthy(err:find("C: STARTTLS", 1, true), err)
        local m = assert(delivered(subject), "not delivered")
        assert.truthy(m.added:find("using TLS", 1, true))
      end)
    end

    it("starttls_scram.lua reports a wrong password by its kind and exits 1", function()
      local e = env(stack.ports.starttls, "example wrong")
      e.SMTP_PASSWORD = "wrong"
      local code, _, err = example("starttls_scram.lua", e)
      assert.equal(1, code, err)
      assert.truthy(err:find("smtp: authentication 535", 1, true), err)
      assert.truthy(err:find("check SMTP_USER and SMTP_PASSWORD", 1, true), err)
    end)

    -- The example nginx.conf as shipped, with only what a user would edit:
    -- the listening port, where the checkout is, and the CA to trust.
    local function openresty_conf(copy, http_port)
      local conf = assert(P.read_file(ROOT .. "/examples/openresty/nginx.conf"))
      local function edit(old, new)
        local at = conf:find(old, 1, true)
        assert(at, "examples/openresty/nginx.conf no longer has: " .. old)
        conf = conf:sub(1, at - 1) .. new .. conf:sub(at + #old)
      end
      edit("listen 127.0.0.1:8080;", "listen 127.0.0.1:" .. http_port .. ";")
      edit("'$prefix/../../lua/?.lua;$prefix/../../lua/?/init.lua;;'",
        "'" .. ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;'")
      edit("'$prefix/../../build/luajit/?.so;;'", "'" .. ROOT .. "/build/luajit/?.so;;'")
      edit("/etc/ssl/certs/ca-certificates.crt", stack.certs.ca_cert)
      P.write_file(copy .. "/nginx.conf", conf)
      P.run(("cp %s/examples/openresty/handler.lua %s/"):format(P.q(ROOT), P.q(copy)))
      P.run("mkdir -p " .. P.q(copy .. "/tmp"))
    end

    it("the OpenResty handler sends STARTTLS + AUTH mail from nginx, waiting and in a timer", function()
      if not (P.exists("/usr/sbin/nginx") and P.exists("/usr/lib/nginx/modules/ngx_http_lua_module.so")) then
        pending("nginx with the lua module is not installed (make deps installs it)")
        return
      end
      -- tools/test-all-luas.sh builds it first and says so (no parallel make).
      if not os.getenv("SMTP_NGINX_BUILD") then
        P.run("cd " .. P.q(ROOT) .. " && make -s LUA=luajit BUILD=build/luajit all")
      end
      local copy = P.tempdir("openresty")
      local http_port = P.free_port()
      openresty_conf(copy, http_port)
      -- No SMTP_TLS_NAME: 127.0.0.1 is checked against the IP SANs.
      local vars = {}
      for k, v in pairs(env(stack.ports.starttls, "unused")) do
        if k ~= "SMTP_SUBJECT" and k ~= "SMTP_DEBUG" then
          vars[#vars + 1] = k .. "=" .. P.q(k == "SMTP_HOST" and "127.0.0.1" or v)
        end
      end
      local pid = P.spawn(("env %s /usr/sbin/nginx -p %s/ -c nginx.conf -e stderr"):format(
        table.concat(vars, " "), P.q(copy)), copy .. "/stderr.log")
      P.watchdog("kill " .. pid, pid)
      local ok, why = pcall(function()
        assert(P.wait_for(10, function() return P.listening(http_port) or not P.alive(pid) end)
          and P.alive(pid), "nginx did not start: " .. tostring(P.read_file(copy .. "/stderr.log")))
        local function post(path, text)
          local _, out = P.try(("curl -sS -m 30 -w '\n%%{http_code}' --data %s http://127.0.0.1:%d%s")
            :format(P.q(text), http_port, path))
          local body, status = out:match("^(.*)\n(%d+)%s*$")
          return tonumber(status), body or out
        end
        local status, body = post("/notify", "Disk almost full (waited)")
        assert.equal(200, status, body .. "\n" .. tostring(P.read_file(copy .. "/stderr.log")))
        assert.truthy(body:find("^sent: 250 .*queue id %w+"), body)
        status, body = post("/notify?async=1", "Disk almost full (timer)")
        assert.equal(202, status, body)
        assert.equal("queued\n", body)
        local function arrived(text)
          local m = assert(P.wait_for(10, function()
            for _, m in ipairs(stack:messages("bob")) do
              if m.data:find("\r\n\r\n" .. text .. "\r\n", 1, true) then return m end
            end
          end), text .. ": not delivered; nginx said: " .. tostring(P.read_file(copy .. "/stderr.log")))
          return m
        end
        for _, m in ipairs({ arrived("Disk almost full (waited)"), arrived("Disk almost full (timer)") }) do
          assert.truthy(m.data:find("Subject: Notification from 127.0.0.1\r\n", 1, true), m.data)
          assert.truthy(m.added:find("using TLS", 1, true), m.added)
          assert.truthy(m.added:find("Authenticated sender: " .. alice.user, 1, true), m.added)
        end
      end)
      P.terminate(pid)
      assert(ok, why)
    end)

    it("implicit_tls.lua sends over TLS from the first byte (port 465)", function()
      local code, out, err = example("implicit_tls.lua", env(stack.ports.smtps, "example implicit"))
      assert.equal(0, code, err)
      assert.truthy(out:find("^sent to 1 recipient%(s%): 250"), out)
      assert.is_nil(err:find("STARTTLS", 1, true), err)
      local m = assert(delivered("example implicit"), "not delivered")
      assert.truthy(m.added:find("using TLS", 1, true))
    end)
  end)

  it("xoauth2.lua sends exactly the XOAUTH2 bytes Gmail and Outlook expect", function()
    local user, token = "alice@example.org", "ya29.example-token"
    local initial = b64("user=" .. user .. "\1auth=Bearer " .. token .. "\1\1")
    local h = scripted.start(table.concat({
      "S: 220 smtp.example ESMTP",
      "C: EHLO client.example",
      "S: 250-smtp.example",
      "S: 250 AUTH LOGIN PLAIN XOAUTH2 OAUTHBEARER",
      "C: AUTH XOAUTH2 " .. initial,
      "S: 235 2.7.0 Accepted",
      "C: MAIL FROM:<alice@example.org>",
      "S: 250 2.1.0 OK",
      "C: RCPT TO:<bob@example.org>",
      "S: 250 2.1.5 OK",
      "C: DATA",
      "S: 354 Go ahead",
      "BODY",
      "S: 250 2.0.0 OK queued as XO123",
      "C: QUIT",
      "S: 221 2.0.0 closing connection",
      "" }, "\n"))
    local code, out, err = example("xoauth2.lua", {
      SMTP_HOST = "127.0.0.1", SMTP_PORT = tostring(h.port), SMTP_TLS = "none", SMTP_EHLO = "client.example",
      SMTP_USER = user, SMTP_TOKEN = token, SMTP_FROM = user, SMTP_TO = "bob@example.org", SMTP_DEBUG = "1",
    })
    local ok, why, received = h:result(10)
    assert.is_true(ok, why)
    assert.equal(0, code, err)
    assert.truthy(out:find("sent: 250 OK queued as XO123", 1, true), out)
    assert.truthy(received[1]:find("AUTH XOAUTH2 " .. initial .. "\r\n", 1, true))
    assert.truthy(received[1]:find("Authenticated with XOAUTH2.", 1, true))
    assert.is_nil(err:find(token, 1, true))
    assert.is_nil(err:find(initial, 1, true))
  end)

  describe("against aiosmtpd (STARTTLS required, AUTH)", function()
    local server, ca
    setup(function()
      ca = certs.make().ca_cert
      server = servers.aiosmtpd { tls = true, pipelining = true, auth_require_tls = true,
        auth = { { user = "news", password = "news-Secret-9" } } }
    end)
    teardown(function() if server then server:stop() end end)

    local function env(extra)
      local e = { SMTP_HOST = "localhost", SMTP_PORT = tostring(server.port), SMTP_CAFILE = ca,
        SMTP_USER = "news", SMTP_PASSWORD = "news-Secret-9", SMTP_FROM = "news@example.org" }
      for k, v in pairs(extra) do e[k] = v end
      return e
    end

    it("sendmany.lua sends one message per recipient over one connection", function()
      local before = #server:messages()
      local code, out, err = example("sendmany.lua", env {
        SMTP_TO = "a@example.org,b@example.org,c@example.org,d@example.org", SMTP_DEBUG = "1" })
      assert.equal(0, code, err)
      assert.truthy(out:find("4 sent, 0 failed, over one connection", 1, true), out)
      local _, ehlos = err:gsub("C: EHLO", "")
      assert.equal(2, ehlos, err) -- before and after STARTTLS: one connection
      local got = assert(server:wait_messages(before + 4))
      for i, to in ipairs({ "a@example.org", "b@example.org", "c@example.org", "d@example.org" }) do
        local m = got[before + i]
        assert.same({ to }, m.rcpt_tos)
        assert.truthy(m.tls, "not sent over TLS")
        assert.equal("news", m.auth)
        assert.truthy(m.data:find("this is message " .. i .. "%."), m.data)
      end
    end)

    it("large_attachment.lua streams a 5 MB file from disk", function()
      local path = dir .. "/large.bin"
      local f = assert(io.open(path, "wb"))
      local block = {}
      for i = 0, 255 do block[#block + 1] = string.char(i) end
      block = table.concat(block):rep(64) -- 16 KiB of every byte value
      for _ = 1, 320 do f:write(block) end
      f:close()
      local before = #server:messages()
      local code, out, err = example("large_attachment.lua", env {
        SMTP_TO = "bob@example.org", SMTP_ATTACHMENT = path, SMTP_SUBJECT = "large" })
      if code == SKIPPED then
        assert.truthy(err:find("skipped: this version of lua-smtp has no smtp.message", 1, true), err)
        pending("smtp.message is not available yet: " .. err:gsub("\n$", ""))
        return
      end
      assert.equal(0, code, err)
      assert.truthy(out:find("^sent: 250"), out)
      assert.truthy(err:find("100%", 1, true), "no progress reported: " .. err:sub(-200))
      local m = assert(server:wait_messages(before + 1))[before + 1]
      assert.truthy(#m.data > 5242880 * 4 / 3, #m.data)
      assert.truthy(m.data:find("large.bin", 1, true))
      assert.truthy(m.data:find(b64(block:sub(1, 57)), 1, true), "attachment bytes not found in base64")
    end)
  end)

  describe("reliable_delivery.lua against aiosmtpd and a relay that is down", function()
    local server
    setup(function() server = servers.aiosmtpd { pipelining = true } end)
    teardown(function() if server then server:stop() end end)

    local function count_subject(subject)
      local found = 0
      for _, m in ipairs(server:messages()) do
        if m.data:find("Subject: " .. subject .. "\r\n", 1, true) then found = found + 1 end
      end
      return found
    end

    it("queues on disk, fails over past the dead relay and delivers each message once", function()
      local spool = dir .. "/outbox1"
      local dead = P.free_port()
      local code, out, err = example("reliable_delivery.lua", {
        SMTP_SERVERS = ("127.0.0.1:%d,127.0.0.1:%d"):format(dead, server.port), SMTP_OUTBOX = spool,
        SMTP_FROM = "app@example.org", SMTP_TO = "ops@example.org", SMTP_COUNT = "3",
        SMTP_RETRY_BASE = "0.05", SMTP_COOLDOWN = "0.2", SMTP_MAX_SECONDS = "20" })
      assert.equal(0, code, out .. err)
      assert.truthy(out:find("3 delivered, 0 deferred, 0 failed, 0 unknown; 0 waiting in the outbox", 1, true), out)
      for i = 1, 3 do assert.equal(1, count_subject("Report " .. i), "Report " .. i) end
      assert.equal("3", P.run("ls " .. P.q(spool .. "/sent") .. " | wc -l"):match("%d+"))
    end)

    it("keeps the messages queued while every relay is down, and a later run delivers them", function()
      local spool = dir .. "/outbox2"
      local dead = P.free_port()
      local before1, before2 = count_subject("Report 1"), count_subject("Report 2")
      -- Attempts 2 s apart: the first worker (1 s) makes one attempt each.
      local base = { SMTP_OUTBOX = spool, SMTP_FROM = "app@example.org", SMTP_TO = "ops@example.org",
        SMTP_RETRY_BASE = "2", SMTP_COOLDOWN = "0.1" }
      local e1 = { SMTP_SERVERS = "127.0.0.1:" .. dead, SMTP_COUNT = "2", SMTP_MAX_SECONDS = "1" }
      for k, v in pairs(base) do e1[k] = v end
      local code, out, err = example("reliable_delivery.lua", e1)
      assert.equal(1, code, out .. err)
      assert.truthy(out:find("0 delivered, 2 deferred, 0 failed, 0 unknown; 2 waiting in the outbox", 1, true), out)
      -- A later worker (with the relay back) sends what was left, plus its own one.
      local e2 = { SMTP_SERVERS = "127.0.0.1:" .. server.port, SMTP_COUNT = "1", SMTP_MAX_SECONDS = "15" }
      for k, v in pairs(base) do e2[k] = v end
      code, out, err = example("reliable_delivery.lua", e2)
      assert.equal(0, code, out .. err)
      assert.truthy(out:find("3 delivered, 0 deferred, 0 failed, 0 unknown; 0 waiting", 1, true), out)
      assert.equal("3", P.run("ls " .. P.q(spool .. "/sent") .. " | wc -l"):match("%d+"))
      -- Each message once: both workers queued a "Report 1", the first a "Report 2".
      assert.equal(before1 + 2, count_subject("Report 1"))
      assert.equal(before2 + 1, count_subject("Report 2"))
    end)
  end)

  describe("against Dovecot LMTP", function()
    local server
    setup(function() server = lmtp.start { users = { "alice", "bob" } } end)
    teardown(function() if server then server:stop() end end)

    local function delivered(user, subject)
      return P.wait_for(10, function()
        for _, raw in ipairs(server:messages(user)) do
          if raw:find("Subject: " .. subject, 1, true) then return raw end
        end
      end)
    end

    it("lmtp.lua delivers over the UNIX socket and reports each recipient", function()
      local code, out, err = example("lmtp.lua", { LMTP_SOCKET = server.socket, SMTP_FROM = "sender@example.org",
        SMTP_TO = "alice,bob", SMTP_SUBJECT = "example lmtp socket" })
      assert.equal(0, code, err)
      assert.equal("delivered: alice\ndelivered: bob\n", out)
      assert.truthy(delivered("alice", "example lmtp socket"))
      assert.truthy(delivered("bob", "example lmtp socket"))
    end)

    it("lmtp.lua over TCP reports a refused recipient and exits 1", function()
      local code, out, err = example("lmtp.lua", { SMTP_HOST = server.host, SMTP_PORT = tostring(server.port),
        SMTP_FROM = "sender@example.org", SMTP_TO = "alice,nobody", SMTP_SUBJECT = "example lmtp tcp" })
      assert.equal(1, code, err)
      assert.truthy(out:find("delivered: alice\n", 1, true), out)
      assert.truthy(out:find("refused:   nobody: smtp: permanent 550", 1, true), out)
      assert.truthy(delivered("alice", "example lmtp tcp"))
    end)
  end)

  it("an example without its settings names the missing variable and exits 1", function()
    local code, _, err = example("starttls_scram.lua", {})
    assert.equal(1, code)
    assert.truthy(err:find("set SMTP_FROM", 1, true), err)
  end)
end)
