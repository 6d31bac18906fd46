-- smtp.core TLS (csrc/tls.c, csrc/ltls.c): tls_config, conn:starttls and
-- conn:tls_info against independent peers on loopback -- Python's ssl
-- module and `openssl s_server` -- with certificates made by openssl at
-- test time (SPEC 3 and 7; RFC 6125 host names; CVE-2025-27809).
local core = require "smtp.core"
local peer = require "helpers.tls_peer"

local function now() return core.now() end

describe("smtp.core TLS #tls", function()
  local pki
  local servers = {}

  local function server(name, opts)
    if not servers[name] then
      servers[name] = peer.python_server(pki, opts or {})
    end
    return servers[name]
  end

  setup(function()
    assert(peer.usable(), "openssl and /usr/bin/python3 are needed")
    pki = peer.make_pki()
  end)

  teardown(function()
    for _, s in pairs(servers) do s.stop() end
  end)

  local function config(opts)
    opts = opts or {}
    if opts.ca_file == nil and opts.ca_pem == nil and opts.verify ~= "none" then
      opts.ca_file = pki.ca_cert
    end
    return assert(core.tls_config(opts))
  end

  local function connect(port, host)
    local c = assert(core.connect(host or "127.0.0.1", tostring(port), now() + 5))
    c:set_deadline(now() + 5)
    return c
  end

  -- connect + starttls; returns the conn or nil, kind, message.
  local function tls_connect(port, cfg, peer_name, host)
    local c = connect(port, host)
    local ok, kind, msg = c:starttls(cfg, peer_name)
    if not ok then
      assert.is_true(c:is_closed())
      return nil, kind, msg
    end
    return c
  end

  -- Plaintext bytes in a full record: 16 KiB under TLS 1.2; mbedTLS 3.6
  -- counts TLS 1.3's inner content type byte in those 16 KiB, so 16383.
  local function full_record(c)
    return c:tls_info().version == "TLSv1.3" and 16383 or 16384
  end

  -- Reads until a CRLF-terminated line arrives (bounded by the deadline).
  local function read_line(c)
    local buf = ""
    for _ = 1, 100 do
      local i = buf:find("\r?\n")
      if i then return buf:sub(1, i - 1) end
      buf = buf .. assert(c:receive_some())
    end
    error("no line")
  end

  describe("tls_config()", function()
    it("defaults to verify = peer and no server_name", function()
      local cfg = config()
      assert.equal("peer", cfg:verify_mode())
      assert.is_nil(cfg:server_name())
      assert.matches("smtp.core.TlsConfig", tostring(cfg))
    end)

    it("keeps verify = none and server_name", function()
      local cfg = config { verify = "none", server_name = "mail.example.org" }
      assert.equal("none", cfg:verify_mode())
      assert.equal("mail.example.org", cfg:server_name())
    end)

    it("loads the system CA bundle when no CA is given", function()
      local f = io.open("/etc/ssl/certs/ca-certificates.crt")
      if not f then return pending("no system CA bundle on this machine") end
      f:close()
      assert.is_not_nil(core.tls_config {})
      assert.is_not_nil(core.tls_config())
    end)

    local usage_cases = {
      { { verfy = "none" }, "unknown TLS option 'verfy'" },
      { { verify = "maybe" }, "'verify' must be" },
      { { min_version = "2.0" }, "'min_version' must be" },
      { { ca_file = 42 }, "'ca_file' must be a string" },
      { { ca_file = "a\0b" }, "NUL" },
      { { cert_file = "/nonexistent.crt" }, "needs both" },
      { { key_pem = "x" }, "needs both" },
    }
    for _, case in ipairs(usage_cases) do
      it("refuses bad options with kind usage: " .. case[2], function()
        local cfg, kind, msg = core.tls_config(case[1])
        assert.is_nil(cfg)
        assert.equal("usage", kind)
        assert.matches(case[2], msg, 1, true)
      end)
    end

    it("refuses TLS 1.3 clearly where mbedTLS lacks it, and accepts 1.2", function()
      assert.is_not_nil(core.tls_config { ca_file = pki.ca_cert, min_version = "1.2" })
      local cfg, kind, msg = core.tls_config { ca_file = pki.ca_cert, min_version = "1.3" }
      if cfg == nil then
        assert.equal("tls", kind)
        assert.matches("min_version 1.3 is not supported by this mbedTLS build", msg, 1, true)
      end
    end)

    it("reports a CA file that cannot be read, with its path", function()
      local cfg, kind, msg = core.tls_config { ca_file = "/nonexistent/ca.pem" }
      assert.is_nil(cfg)
      assert.equal("tls", kind)
      assert.matches("/nonexistent/ca.pem", msg, 1, true)
    end)

    it("explains an encrypted client key without or with a wrong password", function()
      local _, kind, msg = core.tls_config { ca_file = pki.ca_cert, cert_file = pki.client_cert,
                                             key_file = pki.client_key_encrypted }
      assert.equal("tls", kind)
      assert.matches("key_password is required", msg, 1, true)
      _, kind, msg = core.tls_config { ca_file = pki.ca_cert, cert_file = pki.client_cert,
                                       key_file = pki.client_key_encrypted, key_password = "nope" }
      assert.equal("tls", kind)
      assert.matches("wrong key_password", msg, 1, true)
    end)

    it("says 'wrong key_password' for every wrong password, also when the decrypted padding looks valid", function()
      -- About one wrong password in 256 decrypts to bytes with valid
      -- padding; the key then fails to parse as ASN.1 instead.
      -- 1,500 tries meet that case with 99.7% odds (cheap with the
      -- traditional PEM key; PKCS#8's PBKDF2 costs 6x more per try).
      for _, case in ipairs({ { pki.client_key_encrypted, 1500 }, { pki.client_key_encrypted_pkcs8, 100 } }) do
        local key = case[1]
        for i = 1, case[2] do
          local _, kind, msg = core.tls_config { ca_file = pki.ca_cert, cert_file = pki.client_cert,
                                                 key_file = key, key_password = "wrong-" .. i }
          assert.equal("tls", kind)
          if not msg:find("wrong key_password", 1, true) then
            error(("password %d: %s"):format(i, msg))
          end
        end
      end
    end)

    it("refuses a client certificate with somebody else's key", function()
      local _, kind, msg = core.tls_config { ca_file = pki.ca_cert, cert_file = pki.client_cert,
                                             key_file = pki.server_key }
      assert.equal("tls", kind)
      assert.matches("do not match", msg, 1, true)
    end)

    it("is closed by <close> and __gc; closing twice is harmless", function()
      local cfg = config()
      getmetatable(cfg).__close(cfg)
      getmetatable(cfg).__close(cfg)
      assert.matches("closed", tostring(cfg))
      local c = connect(server("main").port)
      assert.has_error(function() c:starttls(cfg, "localhost") end)
      c:close()
    end)
  end)

  describe("conn:starttls()", function()
    it("talks to openssl s_server with the certificate verified", function()
      local s = peer.openssl_server(pki)
      finally(s.stop)
      local c = assert(tls_connect(s.port, config(), "localhost"))
      assert.is_true(c:send("hello world\n"))
      assert.equal("dlrow olleh", read_line(c))
      local info = c:tls_info()
      assert.matches("^TLSv1%.[23]$", info.version)   -- 1.3 where mbedTLS 3.x has it
      assert.matches("^TLS", info.cipher)
      assert.equal("CN=localhost", info.peer_subject)
      assert.is_true(info.peer_verified)
      c:close()
    end)

    it("echoes bytes through the Python ssl peer and reports tls_info", function()
      local c = connect(server("main").port)
      assert.is_nil(c:tls_info())
      assert.is_true(c:starttls(config(), "localhost"))
      local hello = read_line(c)
      assert.matches("^hello TLSv1%.[23] %S*AES%S*GCM%S* client=%-$", hello)
      assert.is_true(c:send { "ping ", "with ", "three parts\n" })
      assert.equal("ping with three parts", read_line(c))
      local info = c:tls_info()
      assert.same({ version = info.version, peer_subject = "CN=localhost", peer_verified = true,
                    cipher = info.cipher, resumed = false, group = info.group,
                    peer_pin_sha256 = info.peer_pin_sha256 }, info)
      assert.matches("^[%w+/]+=$", info.peer_pin_sha256)   -- 32 bytes: 43 + "="
      assert.equal(44, #info.peer_pin_sha256)
      assert.matches("^TLSv1%.[23]$", info.version)
      -- The key share group: named under TLS 1.3 (our first choice, which
      -- Python's OpenSSL takes), unknown under 1.2.
      assert.equal(info.version == "TLSv1.3" and "x25519" or nil, info.group)
      assert.matches("GCM", info.cipher)   -- this peer keeps its own order: AES-GCM
      c:close()
    end)

    it("gathers many small pieces into full records (16 KiB, 16383 bytes under TLS 1.3)", function()
      local c = assert(tls_connect(server("main").port, config(), "localhost"))
      read_line(c)
      local parts = {}
      for i = 1, 2000 do parts[i] = ("%099d\n"):format(i) end
      local blob = table.concat(parts)
      table.insert(parts, 1, "DIGEST " .. #blob .. "\n")
      assert.is_true(c:send(parts))
      local n, digest, maxrec, reads = read_line(c):match("^(%d+) (%x+) (%d+) (%d+)$")
      assert.equal(#blob, tonumber(n))
      assert.equal(full_record(c), tonumber(maxrec))
      assert.is_true(tonumber(reads) <= 14, "records: " .. reads)  -- 200000 / 16383 -> 13
      local tmp = os.tmpname()
      local f = assert(io.open(tmp, "wb"))
      f:write(blob)
      f:close()
      local p = io.popen("sha256sum " .. tmp)
      local want = p:read("*l"):match("^(%x+)")
      p:close()
      os.remove(tmp)
      assert.equal(want, digest)
      c:close()
    end)

    it("sends a 1 MiB buffer intact", function()
      local c = assert(tls_connect(server("main").port, config(), "localhost"))
      read_line(c)
      local blob = ("0123456789abcdef"):rep(65536)
      assert.is_true(c:send { "DIGEST " .. #blob .. "\n", blob })
      local n, _, maxrec = read_line(c):match("^(%d+) (%x+) (%d+)")
      assert.equal(#blob, tonumber(n))
      assert.equal(full_record(c), tonumber(maxrec))
      c:close()
    end)

    it("sends close_notify on close()", function()
      local s = peer.python_server(pki, {})
      finally(s.stop)
      local c = assert(tls_connect(s.port, config(), "localhost"))
      read_line(c)
      c:close()
      assert.is_true(c:is_closed())
      peer.sleep(0.3)
      assert.matches("clean%-close", s.read_log())
    end)

    it("runs STARTTLS after a plaintext exchange", function()
      local c = connect(server("starttls", { mode = "starttls" }).port)
      assert.equal("220 ready", read_line(c))
      assert.is_true(c:send("STARTTLS\r\n"))
      assert.equal("220 go\r\n", c:receive_some(8))
      assert.is_true(c:starttls(config(), "localhost"))
      assert.matches("^hello TLS", read_line(c))
      c:close()
    end)

    it("refuses to handshake when plaintext bytes are pending (STARTTLS injection)", function()
      local s = peer.python_server(pki, { mode = "inject" })
      finally(s.stop)
      local c = connect(s.port)
      assert.equal("220 ready", read_line(c))
      assert.is_true(c:send("STARTTLS\r\n"))
      assert.equal("220 go\r\n", c:receive_some(8))   -- "250 injected\r\n" stays queued
      local ok, kind, msg = c:starttls(config(), "localhost")
      assert.is_nil(ok)
      assert.equal("protocol", kind)
      assert.matches("injection", msg)
      assert.is_true(c:is_closed())
      peer.sleep(0.3)
      assert.matches("after%-inject 0\n", s.read_log())   -- not even a ClientHello
    end)

    it("times out a handshake the server never answers, within the deadline", function()
      local c = connect(server("silent", { mode = "silent" }).port)
      local t0 = now()
      c:set_deadline(t0 + 1)
      local ok, kind, msg = c:starttls(config(), "localhost")
      local elapsed = now() - t0
      assert.is_nil(ok)
      assert.equal("timeout", kind)
      assert.matches("handshake timed out", msg)
      assert.is_true(elapsed >= 0.9 and elapsed < 2, "elapsed " .. elapsed)
      assert.is_true(c:is_closed())
    end)

    it("reports io when the peer sends close_notify", function()
      local c = assert(tls_connect(server("main").port, config(), "localhost"))
      read_line(c)
      assert.is_true(c:send("BYE\n"))
      assert.equal("bye", read_line(c))
      local data, kind, msg = c:receive_some()
      assert.is_nil(data)
      assert.equal("io", kind)
      assert.equal("connection closed by peer", msg)
      assert.is_true(c:is_closed())
    end)

    it("reports io when the peer drops the connection", function()
      local c = assert(tls_connect(server("main").port, config(), "localhost"))
      read_line(c)
      c:send("DIGEST x\n")   -- int("x") fails: the server drops the connection
      local data, kind = c:receive_some()
      assert.is_nil(data)
      assert.equal("io", kind)
    end)

    it("raises when TLS is already active", function()
      local c = assert(tls_connect(server("main").port, config(), "localhost"))
      assert.has_error(function() c:starttls(config(), "localhost") end)
      c:close()
    end)
  end)

  describe("certificate verification", function()
    local function expect_tls_failure(srv, cfg, name, pattern)
      local c, kind, msg = tls_connect(srv.port, cfg, name)
      assert.is_nil(c)
      assert.equal("tls", kind)
      assert.matches(pattern, msg, 1, true)
      return msg
    end

    it("accepts the test CA given as ca_pem", function()
      local cfg = config { ca_pem = pki.pem("ca_cert") }
      local c = assert(tls_connect(server("main").port, cfg, "localhost"))
      assert.is_true(c:tls_info().peer_verified)
      c:close()
    end)

    it("rejects a certificate from an unknown CA", function()
      local srv = server("untrusted", { cert = pki.untrusted_cert, key = pki.untrusted_key })
      expect_tls_failure(srv, config(), "localhost", "certificate not trusted (unknown CA)")
    end)

    it("rejects a server that the system CAs do not know", function()
      local f = io.open("/etc/ssl/certs/ca-certificates.crt")
      if not f then return pending("no system CA bundle") end
      f:close()
      expect_tls_failure(server("main"), assert(core.tls_config {}), "localhost",
                         "certificate not trusted")
    end)

    it("rejects a certificate for another host (CVE-2025-27809)", function()
      local srv = server("wrong", { cert = pki.wrong_host_cert, key = pki.wrong_host_key })
      local msg = expect_tls_failure(srv, config(), "mail.example.org",
        "host name mismatch: expected mail.example.org, certificate is for wrong.example.org")
      assert.not_matches("not trusted", msg)
      expect_tls_failure(srv, config(), "localhost", "host name mismatch: expected localhost")
    end)

    it("rejects an expired certificate", function()
      local srv = server("expired", { cert = pki.expired_cert, key = pki.expired_key })
      expect_tls_failure(srv, config(), "localhost", "certificate expired")
    end)

    it("rejects a certificate that is not yet valid", function()
      local srv = server("future", { cert = pki.future_cert, key = pki.future_key })
      expect_tls_failure(srv, config(), "localhost", "certificate not yet valid")
    end)

    it("refuses verify = peer without any peer name, before the handshake", function()
      local s = peer.python_server(pki, {})
      finally(s.stop)
      local t0 = now()
      expect_tls_failure(s, config(), nil, "no server name known")
      assert.is_true(now() - t0 < 1)
      peer.sleep(0.2)
      assert.not_matches("handshake TLS", s.read_log())
    end)

    it("lets server_name override the peer name", function()
      local srv = server("wrong", { cert = pki.wrong_host_cert, key = pki.wrong_host_key })
      local c = assert(tls_connect(srv.port, config { server_name = "wrong.example.org" }, "localhost"))
      c:close()
      c = assert(tls_connect(srv.port, config { server_name = "WRONG.example.org." }, nil))
      c:close()
    end)

    it("accepts anything with verify = none, and says it was not verified", function()
      local cfg = config { verify = "none" }
      for _, n in ipairs { "untrusted", "wrong", "expired" } do
        local key = n == "wrong" and "wrong_host" or n
        local srv = server(n, { cert = pki[key .. "_cert"], key = pki[key .. "_key"] })
        local c = assert(tls_connect(srv.port, cfg, "localhost"))
        assert.matches("^hello", read_line(c))
        assert.is_false(c:tls_info().peer_verified)
        c:close()
      end
      local c = assert(tls_connect(server("main").port, cfg, nil))
      c:close()
    end)

    describe("IP literals (RFC 6125: against iPAddress SANs only)", function()
      it("accepts 127.0.0.1 listed as an IP SAN", function()
        local c = assert(tls_connect(server("main").port, config(), "127.0.0.1"))
        assert.is_true(c:tls_info().peer_verified)
        c:close()
        c = assert(tls_connect(server("main").port, config(), "[127.0.0.1]"))
        c:close()
      end)

      it("rejects 127.0.0.2 and an address absent from the certificate", function()
        expect_tls_failure(server("main"), config(), "127.0.0.2",
          "host name mismatch: expected 127.0.0.2, certificate is for localhost, 127.0.0.1, ::1")
        local srv = server("wrong", { cert = pki.wrong_host_cert, key = pki.wrong_host_key })
        expect_tls_failure(srv, config(), "127.0.0.1", "host name mismatch: expected 127.0.0.1")
      end)

      it("does not take a DNS SAN spelled like an address", function()
        local srv = server("ipdns", { cert = pki.ipdns_cert, key = pki.ipdns_key })
        expect_tls_failure(srv, config(), "127.0.0.1", "host name mismatch")
      end)

      it("accepts ::1 over IPv6", function()
        local ok, srv = pcall(peer.python_server, pki, { family = "6" })
        if not ok then return pending("no IPv6 loopback: " .. tostring(srv)) end
        finally(srv.stop)
        local c = assert(tls_connect(srv.port, config(), "::1", "::1"))
        assert.matches("^hello", read_line(c))
        c:close()
        local bad, kind, msg = tls_connect(srv.port, config(), "::2", "::1")
        assert.is_nil(bad)
        assert.equal("tls", kind)
        assert.matches("host name mismatch: expected ::2", msg, 1, true)
      end)
    end)

    describe("DNS names (RFC 6125 6.4)", function()
      local cases = {
        { "wild", "mail.example.test", true },
        { "wild", "MAIL.Example.Test", true },
        { "wild", "a.b.example.test", false },
        { "wild", "example.test", false },
        { "cnonly", "cn-only.example.test", true },
        { "cnonly", "other.example.test", false },
      }
      for _, case in ipairs(cases) do
        it(("%s %s for the %s certificate"):format(case[3] and "accepts" or "rejects",
                                                   case[2], case[1]), function()
          local srv = server(case[1], { cert = pki[case[1] .. "_cert"], key = pki[case[1] .. "_key"] })
          local c, kind, msg = tls_connect(srv.port, config { server_name = case[2] })
          if case[3] then
            assert(c, msg)
            c:close()
          else
            assert.is_nil(c)
            assert.equal("tls", kind)
            assert.matches("host name mismatch: expected " .. case[2], msg, 1, true)
          end
        end)
      end
    end)
  end)

  describe("client certificates", function()
    local function client_server()
      return server("client-auth", { ca = pki.ca_cert })
    end

    local variants = {
      { "a plain key file", function()
          return { cert_file = pki.client_cert, key_file = pki.client_key } end },
      { "an encrypted key (PEM DEK-Info)", function()
          return { cert_file = pki.client_cert, key_file = pki.client_key_encrypted,
                   key_password = pki.client_key_password } end },
      { "an encrypted PKCS#8 key", function()
          return { cert_file = pki.client_cert, key_file = pki.client_key_encrypted_pkcs8,
                   key_password = pki.client_key_password } end },
      { "PEM strings with an encrypted key", function()
          return { cert_pem = pki.pem("client_cert"), key_pem = pki.pem("client_key_encrypted"),
                   key_password = pki.client_key_password } end },
    }
    for _, v in ipairs(variants) do
      it("presents one from " .. v[1], function()
        local c = assert(tls_connect(client_server().port, config(v[2]()), "localhost"))
        assert.matches("client=client$", read_line(c))
        c:close()
      end)
    end

    it("fails the handshake when the server requires one and none is given", function()
      local c = tls_connect(client_server().port, config(), "localhost")
      if c then   -- TLS 1.3 servers may reject only after the handshake
        local data, kind = c:receive_some()
        assert.is_nil(data)
        assert.is_truthy(kind == "tls" or kind == "io")
      end
    end)
  end)

  describe("config lifetime", function()
    it("serves two live connections at once", function()
      local cfg = config()
      local a = assert(tls_connect(server("main").port, cfg, "localhost"))
      local b = assert(tls_connect(server("main").port, cfg, "localhost"))
      read_line(a); read_line(b)
      assert.is_true(a:send("one\n"))
      assert.is_true(b:send("two\n"))
      assert.equal("two", read_line(b))
      assert.equal("one", read_line(a))
      a:close(); b:close()
    end)

    it("stays alive while a connection uses it, even when collected or closed", function()
      local c
      do
        local cfg = config()
        c = assert(tls_connect(server("main").port, cfg, "localhost"))
      end
      collectgarbage("collect")
      collectgarbage("collect")
      read_line(c)
      assert.is_true(c:send("still here\n"))
      assert.equal("still here", read_line(c))
      local cfg2 = config()
      local d = assert(tls_connect(server("main").port, cfg2, "localhost"))
      getmetatable(cfg2).__close(cfg2)   -- explicit close: the session holds on
      read_line(d)
      assert.is_true(d:send("and here\n"))
      assert.equal("and here", read_line(d))
      c:close(); d:close()
    end)

    it("survives a connection and its config collected in the same cycle", function()
      -- The config is made after the conn, so it is finalized first.
      local function open_and_drop()
        local c = connect(server("main").port)
        assert.is_true(c:starttls(config(), "localhost"))
      end
      for _ = 1, 3 do
        open_and_drop()
        collectgarbage("collect")
      end
      collectgarbage("collect")
    end)
  end)
end)
