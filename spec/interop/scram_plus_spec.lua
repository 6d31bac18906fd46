-- SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS (RFC 5802, RFC 7677) with TLS
-- channel binding (issue 16): tls-unique (RFC 5929) under TLS 1.2,
-- tls-exporter (RFC 9266) under TLS 1.3. The peer
-- (spec/helpers/tls_cb_peer.py) is OpenSSL through pyOpenSSL with a SCRAM
-- server of its own that computes the binding data from its side of the
-- TLS connection and logs the mechanism, the client's gs2 flag, the
-- binding type and the result. --corrupt-cb makes it bind to other data
-- (as a man in the middle terminating TLS would see): the exchange must
-- then fail, which proves the binding is checked at all. --hide-plus
-- leaves -PLUS out of the EHLO as a man in the middle would (review N5),
-- --no-ems turns off extended master secret (review N6). TLS 1.3 cases
-- are pending under the system mbedTLS 2.28 build.
local smtp = require "smtp"
local certs = require "helpers.certs"
local cb_peer = require "helpers.cb_peer"
local tlsver = require "helpers.tlsver"

local ALL = { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1" }
local MESSAGE = "From: a@example.org\r\nTo: b@example.org\r\nSubject: cb\r\n\r\nbound\r\n"

describe("SCRAM-PLUS channel binding #tls #interop #sasl", function()
  local pki
  local has13 = tlsver.has_tls13()
  local peers = {}

  setup(function()
    assert(cb_peer.usable())
    pki = certs.make()
  end)

  teardown(function()
    for _, s in ipairs(peers) do s:stop() end
  end)

  local function peer(opts)
    local s = cb_peer.start(pki, opts)
    peers[#peers + 1] = s
    return s
  end

  -- Connects (implicit TLS or plaintext + STARTTLS through authenticate),
  -- authenticates with `auth` (user, password, mechanisms, ...). Returns
  -- ok, err, client (open on success, closed otherwise), tls_info.
  local function login(s, mode, cfg, auth)
    local client
    local ok, err = pcall(function()
      local opts = { user = cb_peer.USER, password = cb_peer.PASSWORD }
      for k, x in pairs(auth or {}) do opts[k] = x end
      if mode == "implicit" then
        client = smtp.connect { host = "127.0.0.1", port = s.port, timeout = 10,
                                tls_mode = "implicit", tls = cfg, tls_peer = "localhost" }
      else
        client = smtp.connect { host = "127.0.0.1", port = s.port, timeout = 10 }
        if cfg then opts.tls, opts.tls_peer = cfg, "localhost" end
      end
      client:authenticate(opts)
    end)
    local info = client and client:tls_info()
    if not ok and client then client:close() end
    return ok, err, client, info
  end

  -- The peer's last "auth" event without its connection number.
  local function last_auth(s)
    local a = s:events("auth")
    local e = a[#a] or {}
    e.n = nil
    return e
  end

  local function wait_ended(s, n)
    local ok, log = s:wait_ended(n)
    assert(ok, "the peer did not see " .. n .. " connections end:\n" .. tostring(log))
  end

  local variants = {
    { name = "TLS 1.2", want = "TLSv1.2", cb = "tls-unique", client = { max_version = "1.2" } },
    { name = "TLS 1.3", want = "TLSv1.3", cb = "tls-exporter", client = {}, needs13 = true },
  }

  for _, mode in ipairs { "starttls", "implicit" } do
    for _, v in ipairs(variants) do
      describe(mode .. ", " .. v.name .. ", " .. v.cb, function()
        local function skip()
          if v.needs13 and not has13 then
            pending(tlsver.no_tls13_reason())
            return true
          end
          return false
        end

        local function config(extra)
          local o = { ca_file = pki.ca_cert }
          for k, x in pairs(v.client) do o[k] = x end
          for k, x in pairs(extra or {}) do o[k] = x end
          return smtp.tls_config(o)
        end

        local shared
        local function server()
          if not shared then shared = peer { tls = mode } end
          shared:clear()
          return shared
        end
        local function own_server(opts)
          opts.tls = mode
          local s = peer(opts)
          finally(function() s:stop() end)
          return s
        end
        teardown(function() if shared then shared:stop() end end)

        for _, mech in ipairs { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS" } do
          it(mech .. " binds to " .. v.cb .. " and authenticates, then mail goes through", function()
            if skip() then return end
            local s = server()
            local ok, err, client, info = login(s, mode, config(), { mechanisms = { mech } })
            assert.is_true(ok, tostring(err) .. "\n" .. s:log())
            assert.equal(v.want, info.version)
            assert.is_true(client:authenticated())
            client:sendmail(MESSAGE)
            client:quit()
            wait_ended(s, 1)
            local a = last_auth(s)
            assert.same({ mech = mech, gs2 = "p=" .. v.cb, cb = v.cb, result = "ok", reason = "-" }, a)
            assert.same({ v.want }, s:column("tls", "version"))
          end)
        end

        it("a wrong password is kind authentication with the server's 535", function()
          if skip() then return end
          local s = server()
          local ok, err = login(s, mode, config(), { password = "wrong", mechanisms = { "SCRAM-SHA-256-PLUS" } })
          assert.is_false(ok)
          assert.equal("authentication", err.kind)
          assert.equal(535, err.code)
          wait_ended(s, 1)
          local a = last_auth(s)
          -- The binding itself was right; the proof was not.
          assert.equal("p=" .. v.cb, a.gs2)
          assert.equal("fail", a.result)
          assert.equal("bad-proof", a.reason)
        end)

        it("chooses SCRAM-SHA-256-PLUS by default when offered", function()
          if skip() then return end
          local s = server()
          local ok, err, client = login(s, mode, config())
          assert.is_true(ok, tostring(err))
          client:quit()
          wait_ended(s, 1)
          local a = last_auth(s)
          assert.equal("SCRAM-SHA-256-PLUS", a.mech)
          assert.equal(v.cb, a.cb)
          assert.equal("ok", a.result)
        end)

        it("chooses SCRAM-SHA-1-PLUS by default over SCRAM-SHA-256 without binding", function()
          if skip() then return end
          local s = own_server { mechs = { "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1" } }
          local ok, err, client = login(s, mode, config())
          assert.is_true(ok, tostring(err))
          client:quit()
          wait_ended(s, 1)
          local a = last_auth(s)
          assert.equal("SCRAM-SHA-1-PLUS", a.mech)
          assert.equal("p=" .. v.cb, a.gs2)
          assert.equal("ok", a.result)
        end)

        it("chooses SCRAM-SHA-256 with gs2 flag y where no -PLUS is offered (RFC 5802 6)", function()
          if skip() then return end
          local s = own_server { mechs = { "SCRAM-SHA-1", "SCRAM-SHA-256" } }
          local ok, err, client = login(s, mode, config())
          assert.is_true(ok, tostring(err))
          client:quit()
          wait_ended(s, 1)
          assert.same({ mech = "SCRAM-SHA-256", gs2 = "y", cb = "none", result = "ok", reason = "-" },
                      last_auth(s))
        end)

        -- N5: the peer supports -PLUS but leaves it out of its EHLO, as a
        -- man in the middle who strips it would show the client; its SCRAM
        -- server is the one behind him, which refuses flag y as a downgrade.
        it("-PLUS stripped from the EHLO: flag y, and the PLUS-capable server refuses the downgrade", function()
          if skip() then return end
          local s = own_server { hide_plus = true }
          local ok, err = login(s, mode, config())
          assert.is_false(ok)
          assert.equal("authentication", err.kind)
          assert.equal(535, err.code)
          wait_ended(s, 1)
          assert.same({ mech = "SCRAM-SHA-256", gs2 = "y", cb = "none", result = "fail", reason = "downgrade" },
                      last_auth(s))
        end)

        it("require_channel_binding: -PLUS stripped sends no AUTH at all; -PLUS offered binds", function()
          if skip() then return end
          local s = own_server { hide_plus = true }
          local ok, err = login(s, mode, config(), { require_channel_binding = true })
          assert.is_false(ok)
          assert.equal("authentication", err.kind)
          assert.truthy(err.message:find("no usable SASL mechanism", 1, true), err.message)
          wait_ended(s, 1)
          assert.same({}, s:events("auth"))
          local s2 = server()
          local ok2, err2, client = login(s2, mode, config(), { require_channel_binding = true })
          assert.is_true(ok2, tostring(err2))
          client:quit()
          wait_ended(s2, 1)
          assert.equal("SCRAM-SHA-256-PLUS", last_auth(s2).mech)
          assert.equal("ok", last_auth(s2).result)
        end)

        it("a non-PLUS SCRAM named explicitly sends gs2 flag n (y would be a downgrade here)", function()
          if skip() then return end
          local s = server()
          local ok, err, client = login(s, mode, config(), { mechanisms = { "SCRAM-SHA-256" } })
          assert.is_true(ok, tostring(err) .. "\n" .. s:log())
          client:quit()
          wait_ended(s, 1)
          assert.same({ mech = "SCRAM-SHA-256", gs2 = "n", cb = "none", result = "ok", reason = "-" },
                      last_auth(s))
        end)

        it("fails when the server binds to other data (the binding is checked)", function()
          if skip() then return end
          local s = own_server { corrupt_cb = true }
          local ok, err = login(s, mode, config(), { mechanisms = { "SCRAM-SHA-256-PLUS" } })
          assert.is_false(ok)
          assert.equal("authentication", err.kind)
          assert.equal(535, err.code)
          wait_ended(s, 1)
          local a = last_auth(s)
          assert.equal("p=" .. v.cb, a.gs2)
          assert.equal("fail", a.result)
          assert.equal("cb-mismatch", a.reason)
        end)

        it("authenticates with -PLUS on a resumed session too", function()
          if skip() then return end
          local s = server()
          local cfg = config()
          local infos = {}
          for i = 1, 2 do
            local ok, err, client, info = login(s, mode, cfg, { mechanisms = { "SCRAM-SHA-256-PLUS" } })
            assert.is_true(ok, "connection " .. i .. ": " .. tostring(err) .. "\n" .. s:log())
            infos[i] = info
            client:quit()
          end
          wait_ended(s, 2)
          assert.same({ "0", "1" }, s:column("tls", "reused"))
          assert.is_false(infos[1].resumed)
          assert.is_true(infos[2].resumed)
          -- Under TLS 1.2 tls-unique is now the server's Finished, not the client's.
          assert.same({ "ok", "ok" }, s:column("auth", "result"))
          assert.same({ v.cb, v.cb }, s:column("auth", "cb"))
        end)

        it("binds over TLS with verify = none when allow_plaintext = true", function()
          if skip() then return end
          local s = server()
          local ok, err, client, info = login(s, mode, config { verify = "none" },
            { mechanisms = { "SCRAM-SHA-256-PLUS" }, allow_plaintext = true })
          assert.is_true(ok, tostring(err))
          assert.is_false(info.peer_verified)
          client:quit()
          wait_ended(s, 1)
          assert.equal("ok", last_auth(s).result)
          assert.equal(v.cb, last_auth(s).cb)
        end)
      end)
    end
  end

  -- N6: tls-unique only with extended master secret (RFC 7627): without
  -- it a server can give two connections the same Finished.
  for _, mode in ipairs { "starttls", "implicit" } do
    describe(mode .. ", TLS 1.2 without extended master secret", function()
      local s
      local function cfg()
        return smtp.tls_config { ca_file = pki.ca_cert, max_version = "1.2" }
      end
      before_each(function()
        if not s then s = peer { tls = mode, max_version = "1.2", no_ems = true } end
        s:clear()
      end)
      teardown(function() if s then s:stop() end end)

      it("the default order skips -PLUS and plain SCRAM sends flag n (no binding to offer)", function()
        local ok, err, client = login(s, mode, cfg())
        assert.is_true(ok, tostring(err) .. "\n" .. s:log())
        client:quit()
        wait_ended(s, 1)
        assert.same({ "0" }, s:column("tls", "ems"))
        assert.same({ mech = "SCRAM-SHA-256", gs2 = "n", cb = "none", result = "ok", reason = "-" },
                    last_auth(s))
      end)

      it("-PLUS named is kind usage and sends no AUTH, on a resumed session too", function()
        local c = cfg()
        for i = 1, 2 do
          local ok, err = login(s, mode, c, { mechanisms = { "SCRAM-SHA-256-PLUS" } })
          assert.is_false(ok)
          assert.equal("usage", err.kind, tostring(err))
          wait_ended(s, i)
        end
        assert.same({ "0", "1" }, s:column("tls", "reused"))
        assert.same({}, s:events("auth"))
      end)

      it("with extended master secret the same client binds to tls-unique, resumed or not", function()
        local s2 = peer { tls = mode, max_version = "1.2" }
        finally(function() s2:stop() end)
        local c = cfg()
        for i = 1, 2 do
          local ok, err, client = login(s2, mode, c, { mechanisms = { "SCRAM-SHA-256-PLUS" } })
          assert.is_true(ok, tostring(err) .. "\n" .. s2:log())
          client:quit()
          wait_ended(s2, i)
        end
        assert.same({ "1", "1" }, s2:column("tls", "ems"))
        assert.same({ "0", "1" }, s2:column("tls", "reused"))
        assert.same({ "tls-unique", "tls-unique" }, s2:column("auth", "cb"))
        assert.same({ "ok", "ok" }, s2:column("auth", "result"))
      end)
    end)
  end

  describe("without TLS", function()
    local s
    before_each(function()
      if not s then s = peer { tls = "none", mechs = ALL } end
      s:clear()
    end)
    teardown(function() if s then s:stop() end end)

    for _, mech in ipairs { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS" } do
      it(mech .. " named is kind usage and sends no AUTH, even with allow_plaintext", function()
        local ok, err = login(s, "starttls", nil, { mechanisms = { mech }, allow_plaintext = true })
        assert.is_false(ok)
        assert.equal("usage", err.kind)
        wait_ended(s, 1)
        assert.same({}, s:events("auth"))
        for _, c in ipairs(s:events("cmd")) do assert.not_equal("AUTH", c.verb) end
      end)
    end

    it("the default order skips -PLUS and binds nothing (allow_plaintext)", function()
      local ok, err, client = login(s, "starttls", nil, { allow_plaintext = true })
      assert.is_true(ok, tostring(err) .. "\n" .. s:log())
      client:quit()
      wait_ended(s, 1)
      assert.same({ mech = "SCRAM-SHA-256", gs2 = "n", cb = "none", result = "ok", reason = "-" },
                  last_auth(s))
    end)
  end)
end)
