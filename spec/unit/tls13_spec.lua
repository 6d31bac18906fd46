-- TLS versions (issue 16): with smtp.core built against mbedTLS 3.6
-- (the default build, issue 26) TLS 1.3 is negotiated with independent peers --
-- Python's ssl module and `openssl s_server`, each reporting the version
-- from its own side -- min_version/max_version pin the range, and the
-- certificate rules of tls_spec.lua hold under each pinned version. Under
-- the system mbedTLS 2.28 build the TLS 1.3 cases are pending and asking
-- for 1.3 is a clear kind "tls" refusal.
local core = require "smtp.core"
local smtp = require "smtp"
local peer = require "helpers.tls_peer"
local tlsver = require "helpers.tlsver"

describe("smtp.core TLS versions #tls", function()
  local pki
  local servers = {}
  local has13 = tlsver.has_tls13()

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
    if opts.ca_file == nil and opts.verify ~= "none" then opts.ca_file = pki.ca_cert end
    return assert(core.tls_config(opts))
  end

  -- connect + starttls; returns the conn or nil, kind, message.
  local function tls_connect(port, cfg, peer_name)
    local c = assert(core.connect("127.0.0.1", tostring(port), core.now() + 5))
    c:set_deadline(core.now() + 5)
    local ok, kind, msg = c:starttls(cfg, peer_name)
    if not ok then
      assert.is_true(c:is_closed())
      return nil, kind, msg
    end
    return c
  end

  local function read_line(c)
    local buf = ""
    for _ = 1, 100 do
      local i = buf:find("\r?\n")
      if i then return buf:sub(1, i - 1) end
      buf = buf .. assert(c:receive_some())
    end
    error("no line")
  end

  -- The Python peer greets with "hello <its version> <its cipher> client=<CN>".
  local function python_session(srv, cfg, name)
    local c = assert(tls_connect(srv.port, cfg, name or "localhost"))
    local version, cipher, client = read_line(c):match("^hello (%S+) (%S+) client=(%S+)$")
    local info = c:tls_info()
    c:close()
    return info, { version = version, cipher = cipher, client = client }
  end

  describe("min_version and max_version", function()
    local usage_cases = {
      { { max_version = "2.0" }, "TLS option 'max_version' must be \"1.0\", \"1.1\", \"1.2\" or \"1.3\", got 2.0" },
      { { max_version = true }, "TLS option 'max_version' must be" },
      { { min_version = "1.3", max_version = "1.2" },
        "TLS option 'min_version' (1.3) is above 'max_version' (1.2)" },
    }
    for _, case in ipairs(usage_cases) do
      it("refuses with kind usage: " .. case[2], function()
        local cfg, kind, msg = core.tls_config(case[1])
        assert.is_nil(cfg)
        assert.equal("usage", kind)
        assert.matches(case[2], msg, 1, true)
      end)
    end

    it("accepts 1.2 as both bounds under every build", function()
      assert.is_not_nil(core.tls_config { ca_file = pki.ca_cert, min_version = "1.2", max_version = "1.2" })
    end)

    it("refuses TLS 1.3 with kind tls where the build lacks it, naming the mbedTLS version", function()
      if has13 then
        -- mbedTLS 3.x has 1.3 and no longer has 1.0 or 1.1.
        assert.is_not_nil(core.tls_config { ca_file = pki.ca_cert, min_version = "1.3" })
        assert.is_not_nil(core.tls_config { ca_file = pki.ca_cert, max_version = "1.3" })
        local cfg, kind, msg = core.tls_config { ca_file = pki.ca_cert, min_version = "1.1" }
        assert.is_nil(cfg)
        assert.equal("tls", kind)
        assert.matches("^min_version 1%.1 is not supported by this mbedTLS build %(mbedTLS 3%.[%d.]+ has no TLS 1%.1%)$",
                       msg)
        return
      end
      for _, opt in ipairs { "min_version", "max_version" } do
        local cfg, kind, msg = core.tls_config { ca_file = pki.ca_cert, [opt] = "1.3" }
        assert.is_nil(cfg)
        assert.equal("tls", kind)
        assert.matches("^" .. opt .. " 1%.3 is not supported by this mbedTLS build %(mbedTLS 2%.[%d.]+ has no TLS 1%.3%)$",
                       msg)
      end
      -- The same through the public API: an smtp.Error of kind tls.
      local ok, err = pcall(smtp.tls_config, { min_version = "1.3" })
      assert.is_false(ok)
      assert.equal("tls", err.kind)
      assert.matches("has no TLS 1.3", err.message, 1, true)
    end)
  end)

  describe("negotiation", function()
    it("reaches the build's highest version by default (" .. tlsver.best() .. " here)", function()
      local info, seen = python_session(server("main"), config())
      assert.equal(tlsver.best(), info.version)
      assert.equal(tlsver.best(), seen.version)   -- the server agrees
      if has13 then
        assert.matches("^TLS1%-3%-", info.cipher)   -- mbedTLS's names for the 1.3 suites
      else
        assert.matches("^TLS%-ECDHE%-", info.cipher)
      end
    end)

    it("negotiates TLS 1.3 with openssl s_server", function()
      if not has13 then return pending(tlsver.no_tls13_reason()) end
      local s = peer.openssl_server(pki)
      finally(s.stop)
      local c = assert(tls_connect(s.port, config(), "localhost"))
      assert.is_true(c:send("hello\n"))
      assert.equal("olleh", read_line(c))
      local info = c:tls_info()
      assert.equal("TLSv1.3", info.version)
      assert.is_true(info.peer_verified)
      assert.equal("CN=localhost", info.peer_subject)
      c:close()
    end)

    it("max_version = 1.2 gives TLS 1.2 against the same servers", function()
      local info, seen = python_session(server("main"), config { max_version = "1.2" })
      assert.equal("TLSv1.2", info.version)
      assert.equal("TLSv1.2", seen.version)
      local s = peer.openssl_server(pki)
      finally(s.stop)
      local c = assert(tls_connect(s.port, config { max_version = "1.2" }, "localhost"))
      assert.is_true(c:send("twelve\n"))
      assert.equal("evlewt", read_line(c))
      assert.equal("TLSv1.2", c:tls_info().version)
      c:close()
    end)

    it("min_version = max_version = 1.3 gives TLS 1.3", function()
      if not has13 then return pending(tlsver.no_tls13_reason()) end
      local info, seen = python_session(server("main"), config { min_version = "1.3", max_version = "1.3" })
      assert.equal("TLSv1.3", info.version)
      assert.equal("TLSv1.3", seen.version)
    end)

    it("min_version = 1.3 fails with kind tls against a server that stops at 1.2", function()
      if not has13 then return pending(tlsver.no_tls13_reason()) end
      local s = peer.openssl_server(pki, { args = "-no_tls1_3" })
      finally(s.stop)
      local c, kind, msg = tls_connect(s.port, config { min_version = "1.3" }, "localhost")
      assert.is_nil(c)
      assert.equal("tls", kind)
      assert.matches("^TLS handshake failed", msg)
      -- Without the floor the same server is reached over 1.2.
      c = assert(tls_connect(s.port, config(), "localhost"))
      assert.equal("TLSv1.2", c:tls_info().version)
      c:close()
    end)
  end)

  -- The rules of tls_spec.lua (RFC 6125 names, IP SANs, CVE-2025-27809),
  -- each under a session pinned to one version.
  for _, v in ipairs { "1.2", "1.3" } do
    describe("certificate checks pinned to TLS " .. v, function()
      local want = "TLSv" .. v
      local function pinned(opts)
        opts = opts or {}
        opts.min_version, opts.max_version = v, v
        return config(opts)
      end
      local function lacking()
        return v == "1.3" and not has13
      end
      local function expect_failure(srv, cfg, name, pattern)
        local c, kind, msg = tls_connect(srv.port, cfg, name)
        assert.is_nil(c)
        assert.equal("tls", kind)
        assert.matches(pattern, msg, 1, true)
        return msg
      end

      it("accepts the right certificate, verified, over " .. want, function()
        if lacking() then return pending(tlsver.no_tls13_reason()) end
        local info, seen = python_session(server("main"), pinned())
        assert.equal(want, info.version)
        assert.equal(want, seen.version)
        assert.is_true(info.peer_verified)
        assert.equal("CN=localhost", info.peer_subject)
      end)

      it("rejects a certificate from an unknown CA", function()
        if lacking() then return pending(tlsver.no_tls13_reason()) end
        local srv = server("untrusted", { cert = pki.untrusted_cert, key = pki.untrusted_key })
        expect_failure(srv, pinned(), "localhost", "certificate not trusted (unknown CA)")
      end)

      it("rejects a certificate for another host (CVE-2025-27809)", function()
        if lacking() then return pending(tlsver.no_tls13_reason()) end
        local srv = server("wrong", { cert = pki.wrong_host_cert, key = pki.wrong_host_key })
        local msg = expect_failure(srv, pinned(), "mail.example.org",
          "host name mismatch: expected mail.example.org, certificate is for wrong.example.org")
        assert.not_matches("not trusted", msg)
      end)

      it("rejects an expired certificate", function()
        if lacking() then return pending(tlsver.no_tls13_reason()) end
        local srv = server("expired", { cert = pki.expired_cert, key = pki.expired_key })
        expect_failure(srv, pinned(), "localhost", "certificate expired")
      end)

      it("matches IP literals against iPAddress SANs only", function()
        if lacking() then return pending(tlsver.no_tls13_reason()) end
        local info = python_session(server("main"), pinned(), "127.0.0.1")
        assert.equal(want, info.version)
        assert.is_true(info.peer_verified)
        expect_failure(server("main"), pinned(), "127.0.0.2",
          "host name mismatch: expected 127.0.0.2, certificate is for localhost, 127.0.0.1, ::1")
        local srv = server("ipdns", { cert = pki.ipdns_cert, key = pki.ipdns_key })
        expect_failure(srv, pinned(), "127.0.0.1", "host name mismatch")
      end)

      it("takes a wildcard for one label only", function()
        if lacking() then return pending(tlsver.no_tls13_reason()) end
        local srv = server("wild", { cert = pki.wild_cert, key = pki.wild_key })
        local c = assert(tls_connect(srv.port, pinned { server_name = "mail.example.test" }))
        assert.equal(want, c:tls_info().version)
        c:close()
        expect_failure(srv, pinned { server_name = "a.b.example.test" }, nil,
                       "host name mismatch: expected a.b.example.test")
      end)

      it("presents a client certificate the server requires", function()
        if lacking() then return pending(tlsver.no_tls13_reason()) end
        local srv = server("client-auth", { ca = pki.ca_cert })
        local info, seen = python_session(srv, pinned { cert_file = pki.client_cert, key_file = pki.client_key })
        assert.equal(want, info.version)
        assert.equal("client", seen.client)
      end)

      it("accepts anything with verify = none and says it was not verified", function()
        if lacking() then return pending(tlsver.no_tls13_reason()) end
        local srv = server("untrusted", { cert = pki.untrusted_cert, key = pki.untrusted_key })
        local info = python_session(srv, pinned { verify = "none" })
        assert.equal(want, info.version)
        assert.is_false(info.peer_verified)
      end)
    end)
  end
end)
