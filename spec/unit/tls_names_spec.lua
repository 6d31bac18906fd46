-- smtp.tls_config{ciphersuites = {...}, groups = {...}} (issue 26): IANA
-- names, the user's order replacing ours, checked in real handshakes with
-- `openssl s_server` (OpenSSL picks in the client's order unless told
-- -serverpref) and a server limited to one suite or group; names that are
-- unknown or missing from this build, and wrong types, are kind usage.
-- TLS 1.3 cases need the default (mbedTLS 3.6) build; the TLS 1.2 ones run
-- under the system 2.28 build too, whose groups go through
-- mbedtls_ssl_conf_curves instead of mbedtls_ssl_conf_groups.
local core = require "smtp.core"
local smtp = require "smtp"
local peer = require "helpers.tls_peer"
local tlsver = require "helpers.tlsver"

describe("smtp.tls_config ciphersuites and groups #tls", function()
  local pki
  local has13 = tlsver.has_tls13()

  setup(function()
    assert(peer.usable(), "openssl and /usr/bin/python3 are needed")
    pki = peer.make_pki()
  end)

  local function config(opts)
    opts.ca_file = pki.ca_cert
    opts.session_cache = false
    return assert(core.tls_config(opts))
  end

  -- A handshake with an s_server started with these arguments: the
  -- tls_info table, or nil, kind, message.
  local function handshake(args, opts)
    local s = peer.openssl_server(pki, { args = args, naccept = 1 })
    local c = assert(core.connect("127.0.0.1", tostring(s.port), core.now() + 5))
    c:set_deadline(core.now() + 5)
    local ok, kind, msg = c:starttls(config(opts), "localhost")
    local info = ok and c:tls_info()
    c:close()
    s.stop()
    if not ok then return nil, kind, msg end
    return info
  end

  describe("refuses with kind usage", function()
    local cases = {
      { { ciphersuites = { "TLS_NO_SUCH_SUITE" } }, "unknown cipher suite 'TLS_NO_SUCH_SUITE'" },
      { { ciphersuites = { "tls_aes_128_gcm_sha256" } }, "unknown cipher suite 'tls_aes_128_gcm_sha256'" },
      { { groups = { "x25519", "curve9" } }, "unknown group 'curve9'" },
      { { groups = "x25519" }, "TLS option 'groups' must be a non-empty list of IANA names" },
      { { groups = {} }, "TLS option 'groups' must be a non-empty list of IANA names" },
      { { ciphersuites = { "TLS_AES_128_GCM_SHA256", 13 } }, "TLS option 'ciphersuites' must be a list of IANA names (strings)" },
      { { ciphersuites = true }, "TLS option 'ciphersuites' must be a non-empty list of IANA names" },
    }
    for _, case in ipairs(cases) do
      it(case[2], function()
        case[1].verify = "none"
        local cfg, kind, msg = core.tls_config(case[1])
        assert.is_nil(cfg)
        assert.equal("usage", kind)
        assert.matches(case[2], msg, 1, true)
      end)
    end

    it("a suite or group this build lacks, naming the build", function()
      -- Our 3.6 configuration has no static-RSA key exchange and no X448;
      -- Debian's 2.28 has no TLS 1.3 suites.
      local missing = has13 and { ciphersuites = { "TLS_RSA_WITH_AES_128_CBC_SHA" } }
        or { ciphersuites = { "TLS_AES_128_GCM_SHA256" } }
      missing.verify = "none"
      local cfg, kind, msg = core.tls_config(missing)
      assert.is_nil(cfg)
      assert.equal("usage", kind)
      assert.matches("or not in this mbedTLS %d+%.%d+%.%d+ build", msg)
      if has13 then
        local _, kind2, msg2 = core.tls_config { verify = "none", groups = { "x448" } }
        assert.equal("usage", kind2)
        assert.matches("group 'x448' is not in this mbedTLS 3%.6%.%d+ build", msg2)
      end
    end)

    it("through smtp.tls_config as an smtp.Error", function()
      local ok, err = pcall(smtp.tls_config, { verify = "none", groups = { "nope" } })
      assert.is_false(ok)
      assert.is_true(smtp.Error.is(err))
      assert.equal("usage", err.kind)
    end)
  end)

  describe("TLS 1.3", function()
    it("offers x25519 first by default and the user's first group when given", function()
      if not has13 then return pending(tlsver.no_tls13_reason()) end
      local info = assert(handshake("-groups x25519:secp256r1:secp384r1", {}))
      assert.equal("TLSv1.3", info.version)
      assert.equal("x25519", info.group)
      info = assert(handshake("-groups x25519:secp256r1:secp384r1", { groups = { "secp384r1", "x25519" } }))
      assert.equal("secp384r1", info.group)
      info = assert(handshake("-groups x25519:secp256r1:secp384r1", { groups = { "secp256r1" } }))
      assert.equal("secp256r1", info.group)
    end)

    it("offers only the groups given: a server with none of them refuses", function()
      if not has13 then return pending(tlsver.no_tls13_reason()) end
      local info, kind, msg = handshake("-groups x25519", { groups = { "secp256r1", "secp384r1" } })
      assert.is_nil(info)
      assert.equal("tls", kind)
      assert.matches("^TLS handshake failed", msg)
    end)

    it("takes the cipher suites in the user's order", function()
      if not has13 then return pending(tlsver.no_tls13_reason()) end
      local both = "-ciphersuites TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
      local info = assert(handshake(both, { ciphersuites = { "TLS_AES_128_GCM_SHA256" } }))
      assert.equal("TLS1-3-AES-128-GCM-SHA256", info.cipher)
      info = assert(handshake(both, { ciphersuites = { "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384" } }))
      assert.equal("TLS1-3-CHACHA20-POLY1305-SHA256", info.cipher)
      info = assert(handshake(both, { ciphersuites = { "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256" } }))
      assert.equal("TLS1-3-AES-256-GCM-SHA384", info.cipher)
      local _, kind = handshake("-ciphersuites TLS_AES_256_GCM_SHA384", { ciphersuites = { "TLS_AES_128_GCM_SHA256" } })
      assert.equal("tls", kind)
    end)
  end)

  describe("TLS 1.2", function()
    local ecdsa = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"

    it("takes the cipher suites in the user's order", function()
      local info = assert(handshake("-no_tls1_3 -cipher " .. ecdsa, { max_version = "1.2",
        ciphersuites = { "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" } }))
      assert.equal("TLSv1.2", info.version)
      assert.equal("TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256", info.cipher)
      info = assert(handshake("-no_tls1_3 -cipher " .. ecdsa, { max_version = "1.2",
        ciphersuites = { "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" } }))
      assert.equal("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", info.cipher)
      assert.is_nil(info.group)     -- no key_share in a TLS 1.2 ServerHello
    end)

    -- Under TLS 1.2 the list also names the curves a client accepts in
    -- ECDSA certificates: the test certificate's secp256r1 stays in.
    it("offers only the groups given", function()
      local info, kind = handshake("-no_tls1_3 -groups secp384r1", { groups = { "x25519", "secp256r1" } })
      assert.is_nil(info)
      assert.equal("tls", kind)
      info = assert(handshake("-no_tls1_3 -groups secp384r1", { groups = { "x25519", "secp256r1", "secp384r1" } }))
      assert.equal("TLSv1.2", info.version)
    end)
  end)
end)
