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

  it("the OpenResty handler runs under nginx", function()
    local missing = {}
    for _, f in ipairs({ "lua/smtp/transport/cosocket.lua", "spec/interop/nginx_spec.lua" }) do
      if not P.exists(ROOT .. "/" .. f) then missing[#missing + 1] = f end
    end
    pending("not run yet" .. (#missing > 0 and (" (missing: " .. table.concat(missing, ", ") .. ")") or "") ..
      ": needs the cosocket transport and smtp.core built for LuaJIT; with the test nginx of " ..
      "spec/interop/nginx_spec.lua, start it with -p examples/openresty/ -c nginx.conf (SMTP_* set, " ..
      "lua_ssl_trusted_certificate pointed at the test CA, lua_package_cpath at the LuaJIT build) " ..
      "and POST to /notify and /notify?async=1")
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

    it("starttls_scram.lua reports a wrong password by its kind and exits 1", function()
      local e = env(stack.ports.starttls, "example wrong")
      e.SMTP_PASSWORD = "wrong"
      local code, _, err = example("starttls_scram.lua", e)
      assert.equal(1, code, err)
      assert.truthy(err:find("smtp: authentication 535", 1, true), err)
      assert.truthy(err:find("check SMTP_USER and SMTP_PASSWORD", 1, true), err)
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
