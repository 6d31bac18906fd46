-- TLS session resumption (issue 16), counted on the server side: every
-- smtp.tls_config object keeps a session cache, so the second and later
-- connections made with the same object to the same host, port and peer
-- name resume (TLS 1.2: session ticket or session ID; TLS 1.3: a ticket
-- from the previous connection). The peer (spec/helpers/tls_cb_peer.py,
-- OpenSSL through pyOpenSSL) logs per connection the version it
-- negotiated and whether OpenSSL reused the session (SSL_session_reused);
-- client:tls_info().resumed must agree. STARTTLS and implicit TLS; TLS
-- 1.2 under every build, TLS 1.3 under the mbedTLS 3.6 build (pending
-- under the system mbedTLS 2.28).
local smtp = require "smtp"
local certs = require "helpers.certs"
local cb_peer = require "helpers.cb_peer"
local tlsver = require "helpers.tlsver"

describe("TLS session resumption #tls #interop", function()
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

  -- One SMTP session: connect, TLS (STARTTLS through authenticate, or
  -- implicit), EHLO, QUIT. Returns tls_info() taken while connected.
  local function session(s, mode, cfg, peer_name)
    local client
    if mode == "implicit" then
      client = smtp.connect { host = "127.0.0.1", port = s.port, timeout = 10,
                              tls_mode = "implicit", tls = cfg, tls_peer = peer_name or "localhost" }
      client:authenticate {}
    else
      client = smtp.connect { host = "127.0.0.1", port = s.port, timeout = 10 }
      client:authenticate { tls = cfg, tls_peer = peer_name or "localhost" }
    end
    local info = client:tls_info()
    client:quit()
    return info
  end

  -- Like session(), but returns ok, err instead of raising.
  local function try_session(s, mode, cfg, peer_name)
    local ok, res = pcall(session, s, mode, cfg, peer_name)
    return ok, res
  end

  local function resumed_flags(infos)
    local out = {}
    for i, info in ipairs(infos) do out[i] = info.resumed end
    return out
  end

  local function wait_ended(s, n)
    local ok, log = s:wait_ended(n)
    assert(ok, "the peer did not see " .. n .. " connections end:\n" .. tostring(log))
  end

  -- version: "1.3" = the client's default under the 3.6 build (no limit);
  -- "1.2" = max_version = "1.2" (or a peer that stops at 1.2).
  local variants = {
    { name = "TLS 1.3", want = "TLSv1.3", needs13 = true, client = {}, server = {} },
    { name = "TLS 1.2 (max_version = 1.2, tickets)", want = "TLSv1.2",
      client = { max_version = "1.2" }, server = {} },
    { name = "TLS 1.2 (max_version = 1.2, session IDs only)", want = "TLSv1.2",
      client = { max_version = "1.2" }, server = { no_tickets = true } },
    { name = "TLS 1.2 (server stops at 1.2, client allows all)", want = "TLSv1.2",
      client = {}, server = { max_version = "1.2" } },
  }

  for _, mode in ipairs { "starttls", "implicit" } do
    for _, v in ipairs(variants) do
      describe(mode .. ", " .. v.name, function()
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

        -- One peer for the tests of this block, its log emptied for each.
        local shared
        local function server_opts(extra)
          local o = { tls = mode }
          for k, x in pairs(v.server) do o[k] = x end
          for k, x in pairs(extra or {}) do o[k] = x end
          return o
        end
        local function server(fresh)
          if shared and not fresh then
            shared:clear()
            return shared
          end
          local s = peer(server_opts())
          if not fresh then shared = s end
          return s
        end
        teardown(function() if shared then shared:stop() end end)

        it("resumes the 2nd and 3rd connection made with one tls_config", function()
          if skip() then return end
          local s = server()
          local cfg = config()
          local infos = {}
          for i = 1, 3 do infos[i] = session(s, mode, cfg) end
          wait_ended(s, 3)
          assert.same({ v.want, v.want, v.want }, s:column("tls", "version"))
          assert.same({ "0", "1", "1" }, s:column("tls", "reused"))
          assert.same({ false, true, true }, resumed_flags(infos))
          for i = 1, 3 do assert.equal(v.want, infos[i].version) end
        end)

        it("resumes nothing with session_cache = false", function()
          if skip() then return end
          local s = server()
          local cfg = config { session_cache = false }
          local infos = {}
          for i = 1, 3 do infos[i] = session(s, mode, cfg) end
          wait_ended(s, 3)
          assert.same({ "0", "0", "0" }, s:column("tls", "reused"))
          assert.same({ false, false, false }, resumed_flags(infos))
        end)

        it("does not share sessions between two tls_config objects", function()
          if skip() then return end
          local s = server()
          local a, b = config(), config()
          local infos = { session(s, mode, a), session(s, mode, b), session(s, mode, b), session(s, mode, a) }
          wait_ended(s, 4)
          -- b's first connection is full although a has a session for the
          -- same server; each then resumes its own.
          assert.same({ "0", "0", "1", "1" }, s:column("tls", "reused"))
          assert.same({ false, false, true, true }, resumed_flags(infos))
        end)

        it("keeps a session per server: another port does not get it, the first still resumes", function()
          if skip() then return end
          local s1, s2 = server(), server(true)
          finally(function() s2:stop() end)
          local cfg = config()
          local infos = { session(s1, mode, cfg), session(s2, mode, cfg), session(s1, mode, cfg) }
          wait_ended(s1, 2)
          wait_ended(s2, 1)
          assert.same({ "0", "1" }, s1:column("tls", "reused"))
          assert.same({ "0" }, s2:column("tls", "reused"))
          assert.same({ false, false, true }, resumed_flags(infos))
        end)

        it("reports the verified peer on a resumed connection", function()
          if skip() then return end
          local s = server()
          local cfg = config()
          local first = session(s, mode, cfg)
          local second = session(s, mode, cfg)
          wait_ended(s, 2)
          assert.same({ "0", "1" }, s:column("tls", "reused"))
          assert.is_true(second.resumed)
          assert.is_true(first.peer_verified)
          assert.is_true(second.peer_verified)
          assert.equal("CN=localhost", first.peer_subject)
          assert.equal(first.peer_subject, second.peer_subject)
          assert.equal(first.cipher, second.cipher)
        end)

        it("keeps one session per peer name: another valid name gets a full handshake", function()
          if skip() then return end
          local s = server()
          local cfg = config()
          local infos = {}
          for i, name in ipairs { "localhost", "127.0.0.1", "localhost", "127.0.0.1" } do
            infos[i] = session(s, mode, cfg, name)
          end
          wait_ended(s, 4)
          assert.same({ "0", "0", "1", "1" }, s:column("tls", "reused"))
          assert.same({ false, false, true, true }, resumed_flags(infos))
          for i = 1, 4 do assert.is_true(infos[i].peer_verified) end
        end)

        it("tls given as a table (a new config each time) resumes nothing", function()
          if skip() then return end
          local s = server()
          local tls = { ca_file = pki.ca_cert }
          for k, x in pairs(v.client) do tls[k] = x end
          local infos = {}
          for i = 1, 3 do infos[i] = session(s, mode, tls) end
          wait_ended(s, 3)
          assert.same({ "0", "0", "0" }, s:column("tls", "reused"))
          assert.same({ false, false, false }, resumed_flags(infos))
        end)

        it("falls back to a full, verified handshake when the server forgot the session", function()
          if skip() then return end
          local cfg = config()
          local s1 = server(true)
          assert.is_false(session(s1, mode, cfg).resumed)
          wait_ended(s1, 1)
          -- A new server process on the same port: no session cache, new ticket keys.
          s1:stop()
          local s2 = peer(server_opts { port = s1.port })
          finally(function() s2:stop() end)
          local second = session(s2, mode, cfg)
          local third = session(s2, mode, cfg)
          wait_ended(s2, 2)
          assert.same({ "0", "1" }, s2:column("tls", "reused"))
          assert.is_false(second.resumed)
          assert.is_true(second.peer_verified)
          assert.equal("CN=localhost", second.peer_subject)
          assert.is_true(third.resumed)
        end)

        it("verifies afresh a server restarted with another certificate on the same port", function()
          if skip() then return end
          local cfg = config()
          local s1 = server(true)
          assert.is_false(session(s1, mode, cfg).resumed)
          wait_ended(s1, 1)
          s1:stop()
          local s2 = peer(server_opts { port = s1.port, cert = pki.wrong_host_cert, key = pki.wrong_host_key })
          finally(function() s2:stop() end)
          local ok, err = try_session(s2, mode, cfg)
          assert.is_false(ok)
          assert.equal("tls", err.kind)
          assert.truthy(err.message:find("host name mismatch", 1, true), err.message)
          wait_ended(s2, 1)
          assert.same({}, s2:events("tls"))
        end)

        if v.needs13 then
          it("reuses a TLS 1.3 ticket when the resumed connection brought no new one", function()
            if skip() then return end
            -- The peer sends tickets after its first handshake only (as
            -- Postfix issues none after a resumption).
            local s = peer(server_opts { tickets_first_only = true })
            finally(function() s:stop() end)
            local cfg = config()
            local infos = {}
            for i = 1, 3 do infos[i] = session(s, mode, cfg) end
            wait_ended(s, 3)
            assert.same({ "0", "1", "1" }, s:column("tls", "reused"))
            assert.same({ false, true, true }, resumed_flags(infos))
          end)
        end

        it("smtp.pool with tls given as a table resumes across its connections (and SCRAM-PLUS binds)", function()
          if skip() then return end
          local s = server()
          local tls = { ca_file = pki.ca_cert }
          for k, x in pairs(v.client) do tls[k] = x end
          local pool = smtp.pool {
            servers = { { host = "127.0.0.1", port = s.port } }, timeout = 10,
            tls_mode = mode == "implicit" and "implicit" or nil, tls = tls, tls_peer = "localhost",
            user = cb_peer.USER, password = cb_peer.PASSWORD,
            max_messages = 1,   -- QUIT after each message: every send is a new connection
          }
          finally(function() pool:close() end)
          for _ = 1, 3 do
            pool:send("From: a@example.org\r\nTo: b@example.org\r\nSubject: pool\r\n\r\nbody\r\n")
          end
          wait_ended(s, 3)
          assert.same({ "0", "1", "1" }, s:column("tls", "reused"))
          assert.same({ "ok", "ok", "ok" }, s:column("auth", "result"))
          assert.same({ "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256-PLUS" }, s:column("auth", "mech"))
        end)

        it("still checks the host name: a wrong peer name fails after a good session", function()
          if skip() then return end
          local s = server()
          local cfg = config()
          local first = session(s, mode, cfg)
          assert.is_false(first.resumed)
          local ok, err = try_session(s, mode, cfg, "wrong.example.org")
          assert.is_false(ok)
          assert.equal("tls", err.kind)
          assert.truthy(err.message:find("host name mismatch", 1, true), err.message)
          wait_ended(s, 2)
          -- The server saw no resumed handshake complete for the wrong name.
          local tls = s:events("tls")
          assert.equal(1, #tls, s:log())
          -- And the right name afterwards still resumes the good session.
          local again = session(s, mode, cfg)
          wait_ended(s, 3)
          assert.is_true(again.resumed)
          assert.same({ "0", "1" }, s:column("tls", "reused"))
        end)
      end)
    end
  end

  describe("options", function()
    it("session_cache must be a boolean", function()
      local ok, err = pcall(smtp.tls_config, { ca_file = pki.ca_cert, session_cache = "no" })
      assert.is_false(ok)
      assert.equal("usage", err.kind)
      assert.truthy(err.message:find("session_cache", 1, true), err.message)
    end)

    it("a plaintext connection has no tls_info (and so no resumed field)", function()
      local s = peer { tls = "none", mechs = {} }
      local client = smtp.connect { host = "127.0.0.1", port = s.port, timeout = 10 }
      client:authenticate {}
      assert.is_nil(client:tls_info())
      client:quit()
    end)
  end)
end)
