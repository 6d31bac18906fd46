-- Reaching servers through proxies (issue 9): SOCKS5 (RFC 1928, RFC 1929)
-- via Dante and HTTP CONNECT with Basic auth via tinyproxy, both started
-- on loopback, to aiosmtpd and read back; proxy failures as kind "io",
-- stalls as "timeout"; local_address; address fallback with a per-address
-- share of the connect timeout; STARTTLS through the tunnel.
local smtp = require "smtp"
local servers = require "helpers.servers"
local proxies = require "helpers.proxies"
local certs = require "helpers.certs"
local P = require "helpers.proc"
local V = require "helpers.luaver"

local SOCKS_AUTH = { user = "proxyuser", password = "Socks-Secret-9" }
local HTTP_AUTH = { user = "webuser", password = "Http-Secret-7" }

local function message(subject)
  return ("From: alice@example.org\r\nTo: bob@example.org\r\nSubject: %s\r\n\r\nThrough the tunnel.\r\n")
    :format(subject)
end

-- The smtp.Error raised by f(...), or fails the test when there is none.
local function raised(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(smtp.Error.is(err), tostring(err))
  return err
end

local function no_credentials(err)
  for _, a in ipairs({ SOCKS_AUTH, HTTP_AUTH }) do
    assert.is_nil(tostring(err):find(a.password, 1, true))
    assert.is_nil(tostring(err.message):find(a.password, 1, true))
  end
end

-- Visible skip when this machine cannot give danted a private namespace.
local function ns_it(name, fn)
  it(name, function()
    if not proxies.namespaces() then
      pending("needs unshare -m with bind mounts (root, CAP_SYS_ADMIN)")
      return
    end
    fn()
  end)
end

describe("proxies #interop #proxy", function()
  local server, dante, dante_auth, dante_dns, tiny

  setup(function()
    server = servers.aiosmtpd {}
    dante = proxies.dante { block_ports = { 1 } }
    tiny = proxies.tinyproxy { auth = HTTP_AUTH, connect_ports = { server.port } }
    if proxies.namespaces() then
      dante_auth = proxies.dante { auth = SOCKS_AUTH }
      dante_dns = proxies.dante { hosts = { ["smtp.proxy-only.test"] = "127.0.0.1" } }
    end
  end)

  teardown(function()
    for _, h in ipairs({ dante, dante_auth, dante_dns, tiny, server }) do
      pcall(h.stop, h)
    end
  end)

  -- Sends one message through the proxy and returns what aiosmtpd stored.
  local function send_through(proxy, subject, host)
    local before = #server:messages()
    local client = smtp.connect { host = host or "127.0.0.1", port = server.port, timeout = 10, proxy = proxy }
    local report = client:sendmail(message(subject))
    client:quit()
    assert.equal(250, report.reply.code)
    local got = assert(server:wait_messages(before + 1))
    assert.equal(message(subject), got[before + 1].data)
    return got[before + 1]
  end

  describe("SOCKS5 through Dante", function()
    it("sends a message without authentication", function()
      send_through({ type = "socks5", host = dante.host, port = dante.port }, "socks5 no auth")
      assert.truthy(dante:log():find("tcp/connect", 1, true), dante:log())
    end)

    ns_it("sends a message with username/password (RFC 1929)", function()
      send_through({ type = "socks5", host = dante_auth.host, port = dante_auth.port,
        user = SOCKS_AUTH.user, password = SOCKS_AUTH.password }, "socks5 auth")
    end)

    ns_it("lets the proxy resolve the host name (remote DNS, ATYP 3)", function()
      -- Only the proxy's private /etc/hosts knows this name.
      local err = raised(smtp.connect, { host = "smtp.proxy-only.test", port = server.port, timeout = 5 })
      assert.equal("io", err.kind)
      send_through({ type = "socks5", host = dante_dns.host, port = dante_dns.port },
        "socks5 remote dns", "smtp.proxy-only.test")
    end)

    ns_it("fails with kind io naming the failure on a wrong password", function()
      local err = raised(smtp.connect, { host = "127.0.0.1", port = server.port, timeout = 5,
        proxy = { type = "socks5", host = dante_auth.host, port = dante_auth.port,
                  user = SOCKS_AUTH.user, password = "wrong-" .. SOCKS_AUTH.password } })
      assert.equal("io", err.kind)
      assert.truthy(err.message:find("SOCKS5 proxy: authentication failed", 1, true), err.message)
      no_credentials(err)
    end)

    ns_it("fails with kind io when credentials are required but not given", function()
      local err = raised(smtp.connect, { host = "127.0.0.1", port = server.port, timeout = 5,
        proxy = { type = "socks5", host = dante_auth.host, port = dante_auth.port } })
      assert.equal("io", err.kind)
      assert.truthy(err.message:find("no acceptable authentication method", 1, true), err.message)
    end)

    it("names the SOCKS reply code when the proxy's rules refuse the target", function()
      local err = raised(smtp.connect, { host = "127.0.0.1", port = 1, timeout = 5,
        proxy = { type = "socks5", host = dante.host, port = dante.port } })
      assert.equal("io", err.kind)
      assert.truthy(err.message:find("SOCKS5 proxy: connection not allowed by ruleset (2)", 1, true),
        err.message)
    end)

    it("names the SOCKS reply code when the target refuses the connection", function()
      local closed = P.free_port()
      local err = raised(smtp.connect, { host = "127.0.0.1", port = closed, timeout = 5,
        proxy = { type = "socks5", host = dante.host, port = dante.port } })
      assert.equal("io", err.kind)
      assert.truthy(err.message:find("SOCKS5 proxy: connection refused by destination host (5)", 1, true),
        err.message)
    end)

    it("binds local_address for the connection to the proxy", function()
      local client = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 10,
        local_address = "127.0.0.2", proxy = { type = "socks5", host = dante.host, port = dante.port } }
      client:quit()
      assert.truthy(dante:log():find("127.0.0.2.%d+ 127.0.0.1." .. dante.port), dante:log())
    end)
  end)

  describe("HTTP CONNECT through tinyproxy", function()
    it("sends a message with Basic proxy authentication", function()
      send_through({ type = "http", host = tiny.host, port = tiny.port,
        user = HTTP_AUTH.user, password = HTTP_AUTH.password }, "http connect")
      assert.truthy(tiny:log():find("CONNECT", 1, true), tiny:log())
    end)

    it("fails with kind io and the status line on a wrong password", function()
      local err = raised(smtp.connect, { host = "127.0.0.1", port = server.port, timeout = 5,
        proxy = { type = "http", host = tiny.host, port = tiny.port,
                  user = HTTP_AUTH.user, password = "wrong-" .. HTTP_AUTH.password } })
      assert.equal("io", err.kind)
      assert.truthy(err.message:find("HTTP proxy refused CONNECT to 127.0.0.1:" .. server.port
        .. ": HTTP/1.%d 40[17]", 1), err.message) -- tinyproxy says 401
      no_credentials(err)
    end)

    it("fails with kind io and the status line when the port is not allowed", function()
      local other = P.free_port()
      local err = raised(smtp.connect, { host = "127.0.0.1", port = other, timeout = 5,
        proxy = { type = "http", host = tiny.host, port = tiny.port,
                  user = HTTP_AUTH.user, password = HTTP_AUTH.password } })
      assert.equal("io", err.kind)
      assert.truthy(err.message:find("HTTP/1.%d 403"), err.message)
    end)
  end)

  describe("failures common to both types", function()
    for _, kind in ipairs({ "socks5", "http" }) do
      it(kind .. ": a proxy that is down is kind io", function()
        local closed = P.free_port()
        local err = raised(smtp.connect, { host = "127.0.0.1", port = server.port, timeout = 5,
          proxy = { type = kind, host = "127.0.0.1", port = closed } })
        assert.equal("io", err.kind)
        assert.truthy(err.message:find(kind == "http" and "HTTP proxy: connect to" or "SOCKS5 proxy: connect to",
          1, true), err.message)
      end)

      it(kind .. ": a stalled proxy is kind timeout within the deadline + 1 s", function()
        local stalled = proxies.stalled()
        local t0 = P.now()
        local err = raised(smtp.connect, { host = "127.0.0.1", port = server.port, timeout = 1.5,
          proxy = { type = kind, host = stalled.host, port = stalled.port, user = "u", password = "p" } })
        local elapsed = P.now() - t0
        stalled:stop()
        assert.equal("timeout", err.kind)
        assert.truthy(elapsed >= 1.3 and elapsed < 2.5, "elapsed " .. elapsed)
        assert.truthy(err.message:find("timed out", 1, true), err.message)
      end)
    end
  end)

  describe("wire format against a scripted proxy", function()
    it("SOCKS5 sends names as ATYP 3, credentials per RFC 1929, and keeps the greeting", function()
      local fake = proxies.fake("socks5")
      local client = smtp.connect { host = "localhost", port = 25, timeout = 5,
        proxy = { type = "socks5", host = fake.host, port = fake.port, user = "ann", password = "pw" } }
      -- The greeting came in the same segment as the proxy's reply.
      assert.equal(250, client:noop().code)
      client:quit()
      fake:stop()
      assert.equal("\5\2\0\2" .. "\1\3ann\2pw" .. "\5\1\0\3\9localhost\0\25", fake.request())
    end)

    it("SOCKS5 sends IP literals as ATYP 1 and ATYP 4", function()
      local fake = proxies.fake("socks5")
      smtp.connect({ host = "127.0.0.1", port = 587, timeout = 5,
        proxy = { type = "socks5", host = fake.host, port = fake.port } }):quit()
      assert.equal("\5\1\0" .. "\5\1\0\1\127\0\0\1\2\75", fake.request())
      os.remove(fake.request_file)
      smtp.connect({ host = "::1", port = 25, timeout = 5,
        proxy = { type = "socks5", host = fake.host, port = fake.port } }):quit()
      fake:stop()
      assert.equal("\5\1\0" .. "\5\1\0\4" .. ("\0"):rep(15) .. "\1\0\25", fake.request())
    end)

    it("HTTP CONNECT sends the request line, Host and Basic credentials, and keeps the greeting", function()
      local fake = proxies.fake("http", 8000)
      local client = smtp.connect { host = "mail.example.test", port = 587, timeout = 5,
        proxy = { type = "http", host = fake.host, port = fake.port, user = "Aladdin", password = "open sesame" } }
      assert.equal(250, client:noop().code)
      client:quit()
      fake:stop()
      assert.equal("CONNECT mail.example.test:587 HTTP/1.1\r\nHost: mail.example.test:587\r\n" ..
        "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n", fake.request())
    end)

    it("HTTP CONNECT brackets IPv6 literals", function()
      local fake = proxies.fake("http")
      smtp.connect({ host = "::1", port = 25, timeout = 5,
        proxy = { type = "http", host = fake.host, port = fake.port } }):quit()
      fake:stop()
      assert.equal("CONNECT [::1]:25 HTTP/1.1\r\nHost: [::1]:25\r\n\r\n", fake.request())
    end)

    it("HTTP CONNECT bounds the response headers at 16 KiB", function()
      local fake = proxies.fake("http", 17000)
      local err = raised(smtp.connect, { host = "localhost", port = 25, timeout = 5,
        proxy = { type = "http", host = fake.host, port = fake.port } })
      fake:stop()
      assert.equal("io", err.kind)
      assert.truthy(err.message:find("longer than 16384 bytes", 1, true), err.message)
    end)
  end)

  describe("option checks", function()
    local cases = {
      { "a string proxy", "socks5://127.0.0.1" },
      { "an unknown type", { type = "socks4", host = "127.0.0.1", port = 1080 } },
      { "no host", { type = "socks5", port = 1080 } },
      { "a string port", { type = "socks5", host = "127.0.0.1", port = "1080" } },
      { "port 0", { type = "http", host = "127.0.0.1", port = 0 } },
      { "a password without user", { type = "socks5", host = "127.0.0.1", port = 1080, password = "x" } },
      { "a 256-byte user", { type = "socks5", host = "127.0.0.1", port = 1080, user = ("u"):rep(256) } },
      { "a colon in an HTTP user", { type = "http", host = "127.0.0.1", port = 8080, user = "a:b" } },
    }
    for _, c in ipairs(cases) do
      it("rejects " .. c[1] .. " with kind usage", function()
        local err = raised(smtp.connect, { host = "127.0.0.1", port = 25, proxy = c[2] })
        assert.equal("usage", err.kind)
      end)
    end

    it("rejects a UNIX socket host with a proxy", function()
      local err = raised(smtp.connect, { host = "/run/lmtp.sock",
        proxy = { type = "socks5", host = "127.0.0.1", port = 1080 } })
      assert.equal("usage", err.kind)
    end)

    it("rejects a non-string local_address", function()
      assert.equal("usage", raised(smtp.connect, { host = "127.0.0.1", local_address = 1 }).kind)
    end)
  end)
end)

describe("local_address and address fallback #interop #proxy", function()
  local server

  setup(function() server = servers.aiosmtpd {} end)
  teardown(function() if server then server:stop() end end)

  -- The remote address of the server's accepted socket (what getpeername
  -- gives aiosmtpd), from /proc/net/tcp.
  local function server_peer()
    local s = P.read_file("/proc/net/tcp") or ""
    local want = (":%04X"):format(server.port)
    for la, ra, st in s:gmatch("\n%s*%d+: (%x+:%x+) (%x+:%x+) (%x%x)") do
      if st == "01" and la == "0100007F" .. want then
        local a, b, c, d = ra:match("^(%x%x)(%x%x)(%x%x)(%x%x):")
        return ("%d.%d.%d.%d"):format(tonumber(d, 16), tonumber(c, 16), tonumber(b, 16), tonumber(a, 16))
      end
    end
  end

  for _, addr in ipairs({ "127.0.0.1", "127.0.0.2" }) do
    it("binds local_address " .. addr .. " and the server sees it as the peer", function()
      local client = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 5, local_address = addr }
      local peer = P.wait_for(2, server_peer)
      client:quit()
      assert.equal(addr, peer)
    end)
  end

  it("fails with kind io when local_address is not on this machine", function()
    -- bind() fails locally; nothing is sent anywhere.
    local err = raised(smtp.connect, { host = "127.0.0.1", port = server.port, timeout = 5,
      local_address = "192.0.2.1" })
    assert.equal("io", err.kind)
  end)

  ns_it("gives a dead first address only its share of the timeout", function()
    -- "fallback.test" resolves to ::1 first (RFC 6724 order), then
    -- 127.0.0.1, in a private /etc/hosts. On [::1] at the server's port a
    -- listener with a full accept queue drops SYNs: connects there hang as
    -- for an unreachable address. 127.0.0.1 has the real server.
    local hole = proxies.blackhole("::1", server.port)
    local dir = P.tempdir("fallback")
    P.write_file(dir .. "/hosts", "127.0.0.1 localhost\n::1 fallback.test\n127.0.0.1 fallback.test\n", "0644")
    local cwd = P.run("pwd"):gsub("\n$", "")
    P.write_file(dir .. "/client.lua", ([[
      package.path = %q .. "/lua/?.lua;" .. package.path
      package.cpath = %q .. "/?.so;" .. package.cpath
      local smtp = require "smtp"
      local core = require "smtp.core"
      local t0 = core.now()
      local ok, err = pcall(function()
        local c = smtp.connect { host = "fallback.test", port = %d, timeout = 4 }
        c:sendmail("From: a@example.org\r\nTo: b@example.org\r\nSubject: fallback\r\n\r\nx\r\n")
        c:quit()
      end)
      print(("elapsed %%.3f %%s %%s"):format(core.now() - t0, tostring(ok), tostring(err)))
    ]]):format(cwd, cwd .. "/" .. (os.getenv("SMTP_BUILD") or "build"), server.port))
    local before = #server:messages()
    local out = P.run("timeout 20 " .. proxies.in_namespace({ ["/etc/hosts"] = dir .. "/hosts" },
      V.interpreter .. " " .. P.q(dir .. "/client.lua")))
    hole:stop()
    local elapsed, ok = out:match("elapsed (%S+) (%S+)")
    assert.equal("true", ok, out)
    elapsed = tonumber(elapsed)
    -- ::1 got half of the 4 s (two addresses), then 127.0.0.1 answered.
    assert.truthy(elapsed >= 1.8 and elapsed < 4, out)
    local got = assert(server:wait_messages(before + 1))
    assert.truthy(got[before + 1].data:find("Subject: fallback", 1, true))
  end)
end)

describe("STARTTLS through a SOCKS5 tunnel #interop #proxy #tls", function()
  local server, dante

  setup(function()
    server = servers.aiosmtpd { tls = true, auth = { sam = "Sam-Secret-3" }, auth_require_tls = true }
    dante = proxies.dante {}
  end)

  teardown(function()
    for _, h in ipairs({ dante, server }) do if h then pcall(h.stop, h) end end
  end)

  it("verifies the server certificate for the SMTP host and authenticates", function()
    local before = #server:messages()
    local client = smtp.connect { host = "localhost", port = server.port, timeout = 10,
      proxy = { type = "socks5", host = dante.host, port = dante.port } }
    client:authenticate { tls = { ca_file = certs.make().ca_cert }, tls_required = true,
      user = "sam", password = "Sam-Secret-3" }
    assert.is_true(client:authenticated())
    assert.is_true(client:tls_info().peer_verified)
    local report = client:sendmail(message("starttls via socks5"))
    client:quit()
    assert.equal(250, report.reply.code)
    local got = assert(server:wait_messages(before + 1))[before + 1]
    assert.equal(message("starttls via socks5"), got.data)
    assert.truthy(got.tls, "stored without TLS")
    assert.equal("sam", got.auth)
  end)
end)

describe("Postfix with STARTTLS + AUTH through proxies #interop #proxy #tls", function()
  local stack, dante_auth, tiny, alice

  setup(function()
    stack = servers.mail_stack()
    alice = stack.users[1]
    tiny = proxies.tinyproxy { auth = HTTP_AUTH, connect_ports = { stack.ports.starttls } }
    if proxies.namespaces() then dante_auth = proxies.dante { auth = SOCKS_AUTH } end
  end)

  teardown(function()
    for _, h in ipairs({ dante_auth, tiny, stack }) do if h then pcall(h.stop, h) end end
  end)

  local function deliver(proxy, subject)
    local msg = ("From: %s@%s\r\nTo: bob@%s\r\nSubject: %s\r\n\r\nTunnelled.\r\n")
      :format(alice.user, stack.domain, stack.domain, subject)
    local client = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10, proxy = proxy }
    client:authenticate { tls = { ca_file = stack.certs.ca_cert }, tls_required = true,
      user = alice.user, password = alice.password }
    assert.is_true(client:authenticated())
    assert.is_true(client:tls_info().peer_verified)
    local report = client:sendmail(msg)
    client:quit()
    assert.equal(250, report.reply.code)
    local found = P.wait_for(10, function()
      for _, m in ipairs(stack:messages("bob")) do
        if m.data:find("Subject: " .. subject, 1, true) then return m end
      end
    end)
    assert.truthy(found, "not delivered: " .. subject)
    assert.equal(msg, found.data)
  end

  ns_it("delivers through SOCKS5 with username/password", function()
    deliver({ type = "socks5", host = dante_auth.host, port = dante_auth.port,
      user = SOCKS_AUTH.user, password = SOCKS_AUTH.password }, "postfix via socks5")
  end)

  it("delivers through HTTP CONNECT with Basic auth", function()
    deliver({ type = "http", host = tiny.host, port = tiny.port,
      user = HTTP_AUTH.user, password = HTTP_AUTH.password }, "postfix via http connect")
  end)
end)
