-- Public key pinning (issue 25 item 6): tls_config's pin_sha256 against
-- the suite's own certificates, served by the pyOpenSSL SMTP peer
-- (spec/helpers/tls_cb_peer.py), which logs every command and whether a
-- session was resumed. The expected pins are computed here with the
-- openssl command, independently of the code under test.
local smtp = require "smtp"
local P = require "helpers.proc"
local certs = require "helpers.certs"
local cb_peer = require "helpers.cb_peer"
local host_socket = require "helpers.host_socket"

local has_socket = pcall(require, "socket")

-- base64 of SHA-256 of the certificate's SubjectPublicKeyInfo DER.
local function pin_of(cert)
  return (P.run("openssl x509 -in " .. P.q(cert) .. " -pubkey -noout | openssl pkey -pubin -outform der"
    .. " | openssl dgst -sha256 -binary | base64"):gsub("%s+$", ""))
end

local function raises(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "no error")
  assert.is_true(smtp.Error.is(err), tostring(err))
  return err
end

describe("TLS public key pinning #interop #tls", function()
  local pki, pin, other_pin
  local peers = {}

  setup(function()
    assert(cb_peer.usable())
    pki = certs.make()
    pin = pin_of(pki.server_cert)
    other_pin = pin_of(pki.untrusted_cert)
    assert.equal(44, #pin)
    assert.are_not.equal(pin, other_pin)
  end)

  teardown(function()
    for _, s in ipairs(peers) do s:stop() end
  end)

  local function peer(opts)
    local s = cb_peer.start(pki, opts)
    peers[#peers + 1] = s
    return s
  end

  local shared
  local function server()
    if shared then
      shared:clear()
      return shared
    end
    shared = peer { tls = "starttls" }
    return shared
  end

  -- STARTTLS, EHLO, then AUTH when credentials are given, then QUIT;
  -- returns tls_info() taken while connected.
  local function session(s, tls, extra)
    local client = smtp.connect { host = "127.0.0.1", port = s.port, timeout = 10 }
    local opts = { tls = tls, tls_peer = "localhost", tls_required = true }
    for k, v in pairs(extra or {}) do opts[k] = v end
    local ok, err = pcall(client.authenticate, client, opts)
    if not ok then
      assert.is_true(client:closed())
      error(err, 0)
    end
    local info = client:tls_info()
    client:quit()
    return info
  end

  -- The verbs the peer saw on the i-th connection of its log (the peer
  -- numbers connections on from before a clear()).
  local function verbs(s, i)
    local conn = assert(s:events("conn")[i], "no connection " .. i)
    local out = {}
    for _, e in ipairs(s:events("cmd")) do
      if e.n == conn.n then out[#out + 1] = e.verb end
    end
    return out
  end

  it("passes with the right pin and the CA, and tls_info names the peer's pin", function()
    local s = server()
    local info = session(s, { ca_file = pki.ca_cert, pin_sha256 = { pin } })
    assert.is_true(info.peer_verified)
    assert.equal(pin, info.peer_pin_sha256)
    assert(s:wait_ended(1))
    assert.same({ "EHLO", "STARTTLS", "EHLO", "QUIT" }, verbs(s, 1))
  end)

  it("accepts curl's sha256// prefix, a ';'-joined string and several pins (one matching)", function()
    local s = server()
    for _, pins in ipairs {
      "sha256//" .. pin,
      "sha256//" .. other_pin .. ";sha256//" .. pin,
      { other_pin, "sha256//" .. pin },
    } do
      local info = session(s, { ca_file = pki.ca_cert, pin_sha256 = pins })
      assert.equal(pin, info.peer_pin_sha256)
    end
  end)

  it("fails a wrong pin with kind tls naming both hashes, and sends nothing over TLS", function()
    local s = server()
    local err = raises(function()
      session(s, { ca_file = pki.ca_cert, pin_sha256 = { other_pin } }, { user = cb_peer.USER, password = cb_peer.PASSWORD })
    end)
    assert.equal("tls", err.kind, tostring(err))
    assert.truthy(err.message:find("sha256//" .. pin, 1, true), err.message)
    assert.truthy(err.message:find("sha256//" .. other_pin, 1, true), err.message)
    assert(s:wait_ended(1))
    -- Neither the EHLO after STARTTLS nor AUTH reached the server.
    assert.same({ "EHLO", "STARTTLS" }, verbs(s, 1))
  end)

  it("checks the pin in addition to the CA: a right pin does not excuse an unknown CA", function()
    local s = server()
    local err = raises(function()
      session(s, { ca_file = pki.other_ca_cert, pin_sha256 = { pin } })
    end)
    assert.equal("tls", err.kind)
    assert.truthy(err.message:find("not trusted", 1, true), err.message)
  end)

  it("verify = \"pin\": the right pin passes without any CA and without a matching name", function()
    local s = server()
    local info = session(s, { verify = "pin", pin_sha256 = { pin } }, { tls_peer = "not-the-name.example" })
    assert.is_true(info.peer_verified)
    assert.equal(pin, info.peer_pin_sha256)
    assert.equal("pin", smtp.tls_config({ verify = "pin", pin_sha256 = pin }):verify_mode())
  end)

  it("verify = \"pin\": a wrong pin fails with kind tls before the EHLO over TLS", function()
    local s = server()
    local err = raises(function() session(s, { verify = "pin", pin_sha256 = "sha256//" .. other_pin }) end)
    assert.equal("tls", err.kind)
    assert.truthy(err.message:find(pin, 1, true), err.message)
    assert.truthy(err.message:find(other_pin, 1, true), err.message)
    assert(s:wait_ended(1))
    assert.same({ "EHLO", "STARTTLS" }, verbs(s, 1))
  end)

  it("refuses invalid pins and contradictory settings with kind usage", function()
    local bad = {
      { pin_sha256 = "abc" },
      { pin_sha256 = {} },
      { pin_sha256 = { 42 } },
      { pin_sha256 = pin:sub(1, 43) .. "!" },
      { pin_sha256 = "sha1//" .. pin },
      { pin_sha256 = pin .. ";" },
      { pin_sha256 = "sha256//" .. ("A"):rep(42) .. "==" },   -- 31 bytes
      { pin_sha256 = true },
      { verify = "pin" },
      { verify = "none", pin_sha256 = pin },
      { verify = "pin", pin_sha256 = pin, ca_file = "/nonexistent" },
    }
    for i, opts in ipairs(bad) do
      local err = raises(function() smtp.tls_config(opts) end)
      assert.equal("usage", err.kind, i .. ": " .. tostring(err))
      assert.falsy(err.message:find("unknown TLS option", 1, true), err.message)
      assert.truthy(err.message:find("pin", 1, true), i .. ": " .. err.message)
    end
    -- The same shapes, well formed, are accepted.
    assert.equal("peer", smtp.tls_config({ pin_sha256 = "sha256//" .. pin }):verify_mode())
  end)

  -- The build's highest version (1.3 with the vendored 3.6: a ticket) and
  -- TLS 1.2 (session ticket or ID), with the pin alone and with the CA.
  for _, variant in ipairs {
    { "", { verify = "pin" } },
    { ", TLS 1.2", { verify = "pin", max_version = "1.2" } },
    { ", CA and pin", { ca_file = true } },
  } do
    it("a resumed connection carries the checked pin (peer-side count of reused sessions)" .. variant[1], function()
      local s = server()
      local o = { pin_sha256 = { pin } }
      for k, v in pairs(variant[2]) do o[k] = v end
      if o.ca_file then o.ca_file = pki.ca_cert end
      local cfg = smtp.tls_config(o)
      local infos = {}
      for i = 1, 3 do infos[i] = session(s, cfg) end
      assert(s:wait_ended(3))
      assert.same({ "0", "1", "1" }, s:column("tls", "reused"))
      for i = 1, 3 do
        assert.equal(i > 1, infos[i].resumed)
        assert.is_true(infos[i].peer_verified)
        assert.equal(pin, infos[i].peer_pin_sha256)
      end
    end)
  end

  it("a session cached for the pinned key does not let another key through on the same address", function()
    local first = peer { tls = "starttls" }
    local cfg = smtp.tls_config { verify = "pin", pin_sha256 = { pin } }
    session(first, cfg)
    local port = first.port
    first:stop()
    -- Same address and name, another key (as a server taken over would be).
    local second = peer { tls = "starttls", port = port, cert = pki.untrusted_cert, key = pki.untrusted_key }
    local err = raises(function() session(second, cfg) end)
    assert.equal("tls", err.kind)
    assert.truthy(err.message:find(other_pin, 1, true), err.message)
    assert(second:wait_ended(1))
    assert.same({ "EHLO", "STARTTLS" }, verbs(second, 1))
  end)

  describe("over a host socket (lua-smtp's TLS on memory buffers)", function()
    if not has_socket then
      pending("LuaSocket is not installed")
      return
    end

    it("checks the pin there too", function()
      local s = server()
      local function over_host(pins)
        local c = smtp.connect { host = "127.0.0.1", port = s.port, timeout = 10, transport = host_socket.receiveany() }
        local ok, err = pcall(c.authenticate, c, { tls = { verify = "pin", pin_sha256 = pins }, tls_peer = "localhost",
          tls_required = true })
        local info = ok and c:tls_info()
        if ok then c:quit() else c:close() end
        return ok, err, info
      end
      local ok, err, info = over_host { pin }
      assert.is_true(ok, tostring(err))
      assert.equal(pin, info.peer_pin_sha256)
      ok, err = over_host { other_pin }
      assert.is_false(ok)
      assert.equal("tls", err.kind, tostring(err))
      assert.truthy(err.message:find(other_pin, 1, true), err.message)
    end)

  end)

  it("is refused with kind usage under tls_engine = \"host\" (nginx shows no certificate to compare)", function()
    -- A host socket that only records: nothing may reach it.
    local used = {}
    local fake = {
      send = function(_, d) used[#used + 1] = "send " .. tostring(d); return #tostring(d) end,
      receiveany = function() return "220 mx.example.org ESMTP\r\n" end,
      settimeouts = function() end,
      close = function() return 1 end,
      sslhandshake = function() used[#used + 1] = "sslhandshake"; return true end,
    }
    for _, tls in ipairs { { pin_sha256 = pin }, smtp.tls_config { verify = "pin", pin_sha256 = pin } } do
      local err = raises(function()
        smtp.connect { host = "mx.example.org", tls_mode = "implicit", transport = fake, tls_engine = "host",
          timeout = 5, tls = tls }
      end)
      assert.equal("usage", err.kind, tostring(err))
      assert.truthy(err.message:find("'pin_sha256'", 1, true), err.message)
    end
    assert.same({}, used)
  end)
end)
