-- The client's TLS step against real TLS servers (aiosmtpd with
-- certificates made for the run): every verification failure is kind
-- 'tls', the connection is closed, and nothing more reaches the server.
local smtp = require "smtp"
local servers = require "helpers.servers"
local certs = require "helpers.certs"
local tlsver = require "helpers.tlsver"

describe("STARTTLS verification #interop #tls", function()
  local pki
  local started = {}

  setup(function() pki = certs.make() end)
  teardown(function() for _, s in ipairs(started) do s:stop() end end)

  local function server_with(cert, key)
    local s = servers.aiosmtpd { tls = { cert = cert, key = key } }
    started[#started + 1] = s
    return s
  end

  local function attempt(server, tls, host, extra)
    local client = smtp.connect { host = host or "localhost", port = server.port, timeout = 10 }
    local opts = { tls = tls, tls_required = true }
    for k, v in pairs(extra or {}) do opts[k] = v end
    local ok, err = pcall(function()
      client:authenticate(opts)
      client:sendmail("From: a@example.org\r\nTo: b@example.org\r\n\r\nx\r\n")
    end)
    return ok, err, client
  end

  it("verifies a good certificate and sends", function()
    local s = server_with(pki.server_cert, pki.server_key)
    local ok, err, client = attempt(s, { ca_file = pki.ca_cert })
    assert.is_true(ok, tostring(err))
    client:quit()
    local m = assert(s:wait_messages(1))[1]
    assert.truthy(m.tls)
  end)

  local bad = {
    { "an untrusted CA", "untrusted_cert", "untrusted_key", "not trusted" },
    { "a wrong host name", "wrong_host_cert", "wrong_host_key", "host name mismatch" },
    { "an expired certificate", "expired_cert", "expired_key", "expired" },
  }
  for _, case in ipairs(bad) do
    it("refuses " .. case[1] .. " with kind tls and sends nothing after", function()
      local s = server_with(pki[case[2]], pki[case[3]])
      local ok, err, client = attempt(s, { ca_file = pki.ca_cert })
      assert.is_false(ok)
      assert.equal("tls", err.kind)
      assert.truthy(err.message:find(case[4], 1, true), err.message)
      assert.is_true(client:closed())
      assert.same({}, s:messages())
    end)
  end

  it("names both hosts in a host name mismatch", function()
    local s = server_with(pki.wrong_host_cert, pki.wrong_host_key)
    local _, err = attempt(s, { ca_file = pki.ca_cert })
    assert.truthy(err.message:find("localhost", 1, true), err.message)
    assert.truthy(err.message:find("wrong.example.org", 1, true), err.message)
  end)

  it("verifies an IP literal host against the certificate's IP SANs", function()
    local s = server_with(pki.server_cert, pki.server_key)
    local ok, err, client = attempt(s, { ca_file = pki.ca_cert }, "127.0.0.1")
    assert.is_true(ok, tostring(err))
    assert.is_true(client:tls_info().peer_verified)
    client:quit()
  end)

  it("accepts any certificate with verify = none (opportunistic)", function()
    local s = server_with(pki.untrusted_cert, pki.untrusted_key)
    local ok, err, client = attempt(s, { verify = "none" })
    assert.is_true(ok, tostring(err))
    assert.is_false(client:tls_info().peer_verified)
    client:quit()
  end)

  it("shares one tls_config between connections", function()
    local s = server_with(pki.server_cert, pki.server_key)
    local cfg = smtp.tls_config { ca_file = pki.ca_cert }
    for _ = 1, 3 do
      local ok, err, client = attempt(s, cfg)
      assert.is_true(ok, tostring(err))
      client:quit()
    end
    assert.equal(3, #assert(s:wait_messages(3)))
  end)

  it("raises usage for bad tls_config options", function()
    local ok, err = pcall(smtp.tls_config, { verify = "sometimes" })
    assert.is_false(ok)
    assert.is_true(smtp.Error.is(err))
    assert.truthy(err.kind == "usage" or err.kind == "tls")
  end)

  -- Both sides name the version: tls_info() and aiosmtpd's own record.
  describe("protocol versions", function()
    local function sent_over(s, tls, extra)
      local ok, err, client = attempt(s, tls, nil, extra)
      assert.is_true(ok, tostring(err))
      local version = client:tls_info().version
      client:quit()
      return version, assert(s:wait_messages(1))[1].tls   -- "TLSv1.3 TLS_AES_256_GCM_SHA384"
    end

    it("negotiates the build's highest version (" .. tlsver.best() .. " here) by default", function()
      local s = server_with(pki.server_cert, pki.server_key)
      local mine, theirs = sent_over(s, { ca_file = pki.ca_cert })
      assert.equal(tlsver.best(), mine)
      assert.equal(tlsver.best() .. " ", theirs:sub(1, #tlsver.best() + 1))
    end)

    it("keeps to TLS 1.2 with max_version = 1.2", function()
      local s = server_with(pki.server_cert, pki.server_key)
      local mine, theirs = sent_over(s, { ca_file = pki.ca_cert, max_version = "1.2" })
      assert.equal("TLSv1.2", mine)
      assert.matches("^TLSv1%.2 ", theirs)
    end)

    it("insists on TLS 1.3 with min_version = 1.3, over STARTTLS and implicit TLS", function()
      if not tlsver.has_tls13() then return pending(tlsver.no_tls13_reason()) end
      local s = server_with(pki.server_cert, pki.server_key)
      local mine, theirs = sent_over(s, { ca_file = pki.ca_cert, min_version = "1.3" })
      assert.equal("TLSv1.3", mine)
      assert.matches("^TLSv1%.3 ", theirs)
      local implicit = servers.aiosmtpd { implicit_tls = true, tls = { cert = pki.server_cert, key = pki.server_key } }
      started[#started + 1] = implicit
      local client = smtp.connect { host = "localhost", port = implicit.port, timeout = 10, tls_mode = "implicit",
        tls = { ca_file = pki.ca_cert, min_version = "1.3" } }
      assert.equal("TLSv1.3", client:tls_info().version)
      assert.is_true(client:tls_info().peer_verified)
      client:sendmail("From: a@example.org\r\nTo: b@example.org\r\n\r\nimplicit\r\n")
      client:quit()
      assert.matches("^TLSv1%.3 ", assert(implicit:wait_messages(1))[1].tls)
    end)
  end)
end)
