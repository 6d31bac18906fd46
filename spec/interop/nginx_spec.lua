-- OpenResty in a real nginx (SPEC 5): Debian's nginx with the lua module
-- (LuaJIT) runs on a private prefix with one worker; its handler sends
-- mail with transport = ngx.socket.tcp() and answers with the report as
-- JSON. Proves delivery (STARTTLS + AUTH, read back), that a slow SMTP
-- server does not block the worker, and that the keepalive pool bounds
-- the SMTP connections. Skipped (visibly) when nginx is not installed.
local P = require "helpers.proc"
local servers = require "helpers.servers"
local certs = require "helpers.certs"
local scripted = require "helpers.scripted"
local cb_peer = require "helpers.cb_peer"
local socket = require "socket"

local NGINX = "/usr/sbin/nginx"
local LUA_MODULE = "/usr/lib/nginx/modules/ngx_http_lua_module.so"
local have_nginx = P.exists(NGINX) and P.exists(LUA_MODULE)
local nit = have_nginx and it or function(name) pending(name .. " (needs nginx and libnginx-mod-http-lua)") end

local ROOT = P.run("pwd"):gsub("\n$", "")
local BUILD = os.getenv("SMTP_NGINX_BUILD") or "build/luajit"

local function fill(template, vars)
  return (template:gsub("@(%u+)@", function(k) return assert(vars[k], k) end))
end

-- One HTTP/1.0 GET on a fresh connection: status, body, seconds taken.
local function http_get(port, path, timeout)
  local t0 = socket.gettime()
  local c = socket.tcp()
  c:settimeout(timeout or 30)
  assert(c:connect("127.0.0.1", port))
  assert(c:send("GET " .. path .. " HTTP/1.0\r\nHost: localhost\r\n\r\n"))
  local resp, err, partial = c:receive("*a")
  c:close()
  resp = resp or partial
  assert(resp and resp ~= "", "no HTTP response: " .. tostring(err))
  return tonumber(resp:match("^HTTP/%d%.%d (%d+)")), resp:match("\r\n\r\n(.*)$"), socket.gettime() - t0
end

local function query(t)
  local out = {}
  for k, v in pairs(t) do
    out[#out + 1] = k .. "=" .. tostring(v):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end)
  end
  table.sort(out)
  return table.concat(out, "&")
end

-- The few JSON facts the specs look at, without a JSON library.
local function json_field(body, name)
  return body:match('"' .. name .. '":("?[^,}"]*"?)')
end

describe("smtp in nginx with ngx.socket.tcp() #interop #nginx", function()
  local nginx_pid, port, prefix, ca

  setup(function()
    if not have_nginx then return end
    if not os.getenv("SMTP_NGINX_BUILD") then
      P.run("make -s LUA=luajit BUILD=" .. P.q(BUILD) .. " all")
    end
    assert(P.exists(BUILD .. "/smtp/core.so"), "no LuaJIT build at " .. BUILD)
    ca = certs.make().ca_cert
    prefix = P.tempdir("nginx")
    P.run("mkdir -p " .. P.q(prefix .. "/tmp") .. " " .. P.q(prefix .. "/logs"))
    port = P.free_port()
    local conf = fill(P.read_file("spec/helpers/nginx/nginx.conf.tmpl"),
      { PREFIX = prefix, ROOT = ROOT, BUILD = BUILD, CA = ca, PORT = tostring(port) })
    P.write_file(prefix .. "/nginx.conf", conf)
    nginx_pid = P.spawn(("%s -p %s -c %s -e %s"):format(NGINX, P.q(prefix), P.q(prefix .. "/nginx.conf"),
      P.q(prefix .. "/error.log")), prefix .. "/stderr.log")
    P.watchdog("kill " .. nginx_pid, nginx_pid)
    local up = P.wait_for(10, function() return P.listening(port) or not P.alive(nginx_pid) end)
    assert(up and P.alive(nginx_pid), "nginx did not start: " .. tostring(P.read_file(prefix .. "/stderr.log"))
      .. tostring(P.read_file(prefix .. "/error.log")))
  end)

  teardown(function()
    if nginx_pid then P.terminate(nginx_pid) end
    servers.stop_all()
  end)

  -- Fails the spec with nginx's error log when the handler raised.
  local function send(q, timeout)
    local status, body = http_get(port, "/send?" .. query(q), timeout)
    assert(status == 200, "HTTP " .. tostring(status) .. ": " .. tostring(body) .. "\n"
      .. tostring(P.read_file(prefix .. "/error.log")))
    return body
  end

  for _, engine in ipairs({ "lua-smtp", "host" }) do
  nit("loads the C module in nginx's LuaJIT and sends STARTTLS + AUTH mail from a request handler (TLS engine "
    .. engine .. ")", function()
    local server = servers.aiosmtpd { tls = true, auth = { alice = "s3cret" }, auth_require_tls = true,
      require_tls = true, pipelining = true }
    local body = send { host = server.host, port = server.port, tls = 1, user = "alice", password = "s3cret",
      from = "alice@example.org", to = "bob@example.org", subject = "from nginx", engine = engine, ca = ca }
    if engine == "lua-smtp" then
      -- Ours names the version (nginx's does not tell the cosocket).
      assert.truthy(body:find('"version":"TLSv1.', 1, true), body)
    end
    assert.equal("true", json_field(body, "ok"), body)
    assert.equal("250", json_field(body, "code"), body)
    assert.equal("true", json_field(body, "peer_verified"), body)
    assert.equal("true", json_field(body, "authenticated"), body)
    local got = assert(server:wait_messages(1))[1]
    assert.equal("From: alice@example.org\r\nTo: bob@example.org\r\nSubject: from nginx\r\n\r\n"
      .. "Sent from an nginx request handler.\r\n.dot line\r\n", got.data)
    assert.same({ "bob@example.org" }, got.rcpt_tos)
    assert.equal("alice", got.auth)
    assert.truthy(got.tls, "message did not arrive over TLS")
    server:stop()
  end)
  end

  nit("reports a refused certificate check as kind tls", function()
    local server = servers.aiosmtpd { tls = { cert = certs.make().wrong_host_cert, key = certs.make().wrong_host_key } }
    local body = send { host = server.host, port = server.port, tls = 1, ca = ca,
      from = "alice@example.org", to = "bob@example.org" }
    assert.equal("false", json_field(body, "ok"), body)
    assert.equal('"tls"', json_field(body, "kind"), body)
    assert.same({}, server:messages())
    server:stop()
  end)

  nit("refuses to 'verify' an IP address it cannot check, and checks tls.server_name instead (H2)", function()
    local server = servers.aiosmtpd { tls = true }
    local body = send { host = server.host, port = server.port, tls = 1, peer = "-", engine = "host",
      from = "alice@example.org", to = "bob@example.org" }
    assert.equal("false", json_field(body, "ok"), body)
    assert.equal('"tls"', json_field(body, "kind"), body)
    assert.truthy(body:find("server_name", 1, true), body)
    assert.same({}, server:messages())
    body = send { host = server.host, port = server.port, tls = 1, peer = "-", server_name = "localhost",
      engine = "host", from = "alice@example.org", to = "bob@example.org" }
    assert.equal("true", json_field(body, "ok"), body)
    assert.equal("true", json_field(body, "peer_verified"), body)
    server:stop()
  end)

  nit("never hands a pooled verify=none connection to a verify=peer request (L8)", function()
    local c = certs.make()
    local server = servers.aiosmtpd { tls = { cert = c.wrong_host_cert, key = c.wrong_host_key } }
    local q = { host = server.host, port = server.port, tls = 1, keepalive = 4, engine = "host",
      from = "alice@example.org", to = "bob@example.org" }
    q.verify = "none"
    local b1 = send(q)
    assert.equal("true", json_field(b1, "ok"), b1)
    assert.equal("true", json_field(b1, "pooled"), b1)
    assert.equal("false", json_field(b1, "peer_verified"), b1)
    -- The certificate is for another name: a new, checked connection fails.
    q.verify = nil
    local b2 = send(q)
    assert.equal("false", json_field(b2, "ok"), b2)
    assert.equal('"tls"', json_field(b2, "kind"), b2)
    assert(server:wait_messages(1))
    assert.equal(1, #server:messages())
    server:stop()
  end)

  -- lua-smtp's TLS under the cosocket (issue 27): the C socket's checks.
  nit("our TLS: an IP-literal host is checked against the certificate's IP SANs (a wrong IP refused)", function()
    local server = servers.aiosmtpd { tls = true }
    local body = send { host = server.host, port = server.port, tls = 1, peer = "-", ca = ca,
      from = "alice@example.org", to = "bob@example.org" }
    assert.equal("true", json_field(body, "ok"), body)
    assert.equal("true", json_field(body, "peer_verified"), body)
    body = send { host = server.host, port = server.port, tls = 1, peer = "127.0.0.2", ca = ca,
      from = "alice@example.org", to = "bob@example.org" }
    assert.equal("false", json_field(body, "ok"), body)
    assert.equal('"tls"', json_field(body, "kind"), body)
    assert(server:wait_messages(1))
    assert.equal(1, #server:messages())
    server:stop()
  end)

  nit("our TLS: ca_file in the worker's tls_config is honoured (another CA: refused)", function()
    local server = servers.aiosmtpd { tls = true }
    local other = certs.make(P.tempdir("other-ca")).ca_cert
    local body = send { host = server.host, port = server.port, tls = 1, ca = other,
      from = "alice@example.org", to = "bob@example.org" }
    assert.equal("false", json_field(body, "ok"), body)
    assert.equal('"tls"', json_field(body, "kind"), body)
    assert.same({}, server:messages())
    server:stop()
  end)

  nit("our TLS: later requests resume the session of the worker's tls_config", function()
    local server = servers.aiosmtpd { tls = true }
    local q = { host = server.host, port = server.port, tls = 1, ca = ca, server_name = "localhost",
      from = "alice@example.org", to = "bob@example.org", keepalive = 2 }
    local resumed = 0
    for i = 1, 4 do
      local body = send(q)
      assert.equal("true", json_field(body, "ok"), body)
      -- Our TLS state lives in the request's C object: not pooled.
      assert.equal("false", json_field(body, "pooled"), body)
      if i > 1 and json_field(body, "resumed") == "true" then resumed = resumed + 1 end
    end
    assert.equal(3, resumed)
    assert(server:wait_messages(4))
    server:stop()
  end)

  nit("our TLS: bytes injected after the STARTTLS 220 are refused, nothing more is sent", function()
    local inj = scripted.start([[
S: 220 mx.example.org ESMTP
C: EHLO nginx.test
S: 250-mx.example.org
S: 250 STARTTLS
C: STARTTLS
R: 220 go ahead\r\n250 injected\r\n
]])
    local body = send { host = "127.0.0.1", port = inj.port, tls = 1, ca = ca,
      from = "alice@example.org", to = "bob@example.org" }
    assert.equal("false", json_field(body, "ok"), body)
    local kind = json_field(body, "kind")
    assert.truthy(kind == '"protocol"' or kind == '"tls"', body)
    inj:stop()
  end)

  nit("our TLS: SCRAM-SHA-256-PLUS binds to the TLS channel (pyOpenSSL peer)", function()
    assert(cb_peer.usable())
    local peer = cb_peer.start(certs.make(), { tls = "starttls" })
    local ok, err = pcall(function()
      local body = send { host = "127.0.0.1", port = peer.port, tls = 1, ca = ca, mech = "SCRAM-SHA-256-PLUS",
        user = cb_peer.USER, password = cb_peer.PASSWORD, from = "alice@example.org", to = "bob@example.org" }
      assert.equal("true", json_field(body, "authenticated"), body)
      local auth = peer:events("auth")
      assert.equal("SCRAM-SHA-256-PLUS", auth[#auth].mech)
      assert.equal("ok", auth[#auth].result)
      assert.matches("^p=tls%-", auth[#auth].gs2)
    end)
    peer:stop()
    assert(ok, err)
  end)

  nit("our TLS: implicit TLS to Postfix (submissions) with AUTH, read back from the Maildir", function()
    local stack = servers.mail_stack()
    local ok, err = pcall(function()
      local alice = stack.users[1]
      local body = send { host = "127.0.0.1", port = stack.ports.smtps, tls = 1, implicit = 1,
        ca = stack.certs.ca_cert, user = alice.user, password = alice.password,
        from = "alice@" .. stack.domain, to = "bob@" .. stack.domain, subject = "nginx implicit" }
      assert.equal("true", json_field(body, "ok"), body)
      assert.equal("true", json_field(body, "authenticated"), body)
      local found
      for _ = 1, 100 do
        for _, m in ipairs(stack:messages("bob")) do
          if m.data:find("Subject: nginx implicit\r\n", 1, true) then found = m end
        end
        if found then break end
        os.execute("sleep 0.1")
      end
      assert.is_table(found, "not delivered")
      assert.truthy(found.data:find("\r\n\r\nSent from an nginx request handler.\r\n.dot line\r\n$"), found.data)
    end)
    stack:stop()
    assert(ok, err)
  end)

  nit("keeps serving other requests while one waits on a slow SMTP server", function()
    local slow = scripted.start([[
SLEEP 3
S: 220 slow.example.org ESMTP
C: EHLO nginx.test
SLEEP 3
S: 250 slow.example.org
C: MAIL FROM:<a@example.org>
SLEEP 3
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 queued
C: QUIT
S: 221 bye
]])
    -- The slow request goes out first and is read back last.
    local c = socket.tcp()
    c:settimeout(40)
    assert(c:connect("127.0.0.1", port))
    assert(c:send("GET /send?" .. query { host = "127.0.0.1", port = slow.port, timeout = 20,
      from = "a@example.org", to = "b@example.org" } .. " HTTP/1.0\r\n\r\n"))
    local t0 = socket.gettime()
    socket.sleep(0.3)
    local worst, answered = 0, 0
    for _ = 1, 50 do
      local status, body, took = http_get(port, "/ping", 5)
      if status == 200 and body == "pong\n" then answered = answered + 1 end
      if took > worst then worst = took end
    end
    local pings_done = socket.gettime() - t0
    local resp = c:receive("*a")
    c:close()
    local total = socket.gettime() - t0
    local sok, serr = slow:result(5)
    assert.truthy(resp and resp:find('"ok":true', 1, true), resp)
    assert.equal(50, answered)
    assert.is_true(worst < 0.2, ("slowest ping took %.3f s"):format(worst))
    assert.is_true(pings_done < 3, "the pings were not served during the first 3 s wait")
    assert.is_true(total > 8, ("the slow dialogue took only %.1f s"):format(total))
    assert.is_true(sok, serr)
  end)

  nit("opens at most pool_size SMTP connections for 100 sequential requests (keepalive pool)", function()
    local dir = P.tempdir("counting")
    P.run("mkdir " .. P.q(dir .. "/out"))
    local c = certs.make()
    P.write_file(dir .. "/users", "alice\ts3cret\n")
    local pid = P.spawn(("/usr/bin/python3 -u %s %s --cert %s --key %s --auth-file %s --auth-require-tls"
      .. " --require-tls --pipelining --watch-pid %d"):format(
      P.q(ROOT .. "/spec/helpers/nginx/counting_smtpd.py"), P.q(dir .. "/out"), P.q(c.server_cert),
      P.q(c.server_key), P.q(dir .. "/users"), P.lua_pid()), dir .. "/log")
    local ready = P.wait_for(10, function() return P.read_file(dir .. "/out/ready") or not P.alive(pid) end)
    assert(type(ready) == "string", "counting server did not start: " .. tostring(P.read_file(dir .. "/log")))
    local sport = tonumber(ready:match("^(%d+)"))
    local POOL = 2
    local ok_count, pooled = 0, 0
    for i = 1, 100 do
      local body = send { host = "127.0.0.1", port = sport, tls = 1, user = "alice", password = "s3cret",
        from = "alice@example.org", to = "bob@example.org", subject = "pooled " .. i, keepalive = POOL,
        engine = "host" }
      if json_field(body, "ok") == "true" then ok_count = ok_count + 1 end
      if json_field(body, "pooled") == "true" then pooled = pooled + 1 end
    end
    local delivered = P.wait_for(10, function() return P.exists(dir .. "/out/100.done") end)
    local connections = tonumber(P.read_file(dir .. "/out/connections"))
    P.terminate(pid)
    assert.equal(100, ok_count)
    assert.equal(100, pooled)
    assert.truthy(delivered, "not all 100 messages were stored")
    assert.is_true(connections >= 1 and connections <= POOL, "connections: " .. tostring(connections))
  end)

  nit("smtp.pool in a request handler fails over past a dead relay and reuses connections across requests", function()
    local server = servers.aiosmtpd { pipelining = true }
    local dead = P.free_port()
    local reports = {}
    for i = 1, 6 do
      local body = send { host = "127.0.0.1", relays = dead .. "," .. server.port,
        from = "alice@example.org", to = "bob@example.org", subject = "pool " .. i }
      assert.equal("true", json_field(body, "ok"), body)
      reports[i] = body
    end
    local got = assert(server:wait_messages(6))
    -- Every message once, through the live relay; only the first request
    -- met the dead one (then in cool-down).
    for i = 1, 6 do
      local n = 0
      for _, m in ipairs(got) do
        if m.data:find("Subject: pool " .. i .. "\r\n", 1, true) then n = n + 1 end
      end
      assert.equal(1, n, "pool " .. i)
      assert.truthy(reports[i]:find('"server":"127.0.0.1:' .. server.port .. '"', 1, true), reports[i])
    end
    assert.truthy(reports[1]:find('"tries":2', 1, true), reports[1])
    assert.truthy(reports[6]:find('"tries":1', 1, true), reports[6])
    -- The keepalive pool carried the connection between requests.
    local peers, distinct = {}, 0
    for _, m in ipairs(got) do
      assert.truthy(m.peer, "no peer recorded")
      if not peers[m.peer] then peers[m.peer], distinct = true, distinct + 1 end
    end
    assert.equal(1, distinct)
    server:stop()
  end)

  nit("does not hand a pooled authenticated connection to other credentials", function()
    local server = servers.aiosmtpd { auth = { alice = "s3cret", bob = "hunter2" } }
    local function go(user, password, timeout)
      return send { host = server.host, port = server.port, user = user, password = password, plaintext = 1,
        timeout = timeout or 10,
        from = user .. "@example.org", to = "x@example.org", keepalive = 4 }
    end
    local b1 = go("alice", "s3cret")
    -- aiosmtpd 1.4 leaves a refused AUTH unanswered, hence the short
    -- timeout: what matters is that alice's pooled session is not reused.
    local b2 = go("alice", "wrong", 2)
    local b3 = go("bob", "hunter2")
    local b4 = go("alice", "s3cret")
    local got = assert(server:wait_messages(3))
    server:stop()
    assert.equal("true", json_field(b1, "pooled"), b1)
    assert.equal("false", json_field(b2, "ok"), b2)
    assert.equal("true", json_field(b3, "ok"), b3)
    assert.equal("true", json_field(b4, "ok"), b4)
    assert.same({ "alice", "bob", "alice" }, { got[1].auth, got[2].auth, got[3].auth })
  end)
end)
