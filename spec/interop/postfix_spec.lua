-- A real Postfix with Dovecot SASL, started on loopback by the test:
-- STARTTLS and implicit TLS with verification on, every SASL mechanism,
-- failures, and the delivered message read back from the Maildir.
local smtp = require "smtp"
local servers = require "helpers.servers"
local tlsver = require "helpers.tlsver"

local MECHANISMS = { "PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256" }

describe("Postfix + Dovecot #interop #tls", function()
  local stack, alice, carol

  setup(function()
    stack = servers.mail_stack()
    alice, carol = stack.users[1], stack.users[3]
  end)

  teardown(function()
    if stack then stack:stop() end
  end)

  local function tls() return { ca_file = stack.certs.ca_cert } end

  -- Dovecot delays every login from an address after a failed one (its
  -- auth penalty); failures therefore come from their own loopback
  -- addresses so the other tests are not slowed down.
  local failing_ip = 20
  local function failure_source()
    failing_ip = failing_ip + 1
    return "127.0.0." .. failing_ip
  end

  local function message(subject)
    return ("From: %s@%s\r\nTo: bob@%s\r\nSubject: %s\r\nMessage-ID: <%s@lua-smtp.test>\r\n\r\n" ..
      "Line one.\r\n.Leading dot survives.\r\n"):format(alice.user, stack.domain, stack.domain, subject,
      subject:gsub("%W", ""))
  end

  local function find_delivery(subject)
    for _ = 1, 100 do
      for _, m in ipairs(stack:messages("bob")) do
        if m.data:find("Subject: " .. subject, 1, true) then return m end
      end
      os.execute("sleep 0.1")
    end
    return nil
  end

  for _, mech in ipairs(MECHANISMS) do
    it("authenticates with " .. mech .. " after STARTTLS and delivers byte for byte", function()
      local client = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10 }
      client:authenticate { tls = tls(), tls_required = true, mechanisms = { mech },
        user = alice.user, password = alice.password }
      assert.is_true(client:authenticated())
      local info = client:tls_info()
      assert.is_true(info.peer_verified)
      -- TLSv1.3 with the mbedTLS 3.6 build, TLSv1.2 with the system 2.28.
      assert.equal(tlsver.best(), info.version)
      local subject = "mech " .. mech
      local report = client:sendmail(message(subject))
      client:quit()
      assert.equal(250, report.reply.code)
      assert.is_string(report.reply.queue_id)
      local got = assert(find_delivery(subject), "not delivered")
      assert.equal(message(subject), got.data)
      -- Postfix's Received header records the TLS session from its side.
      assert.truthy(got.added:find("using " .. tlsver.best() .. " with cipher", 1, true), got.added)
    end)

    it("reports a wrong password with " .. mech .. " as kind authentication", function()
      local client = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10,
        local_address = failure_source() }
      local ok, err = pcall(client.authenticate, client, { tls = tls(), mechanisms = { mech },
        user = alice.user, password = "wrong-password" })
      assert.is_false(ok)
      assert.equal("authentication", err.kind)
      assert.equal(535, err.code)
      assert.equal("5.7.8", err.enhanced)
      assert.is_nil(tostring(err):find("wrong-password", 1, true))
      assert.is_false(client:closed())
      client:quit()
    end)
  end

  it("reports an unknown user as kind authentication", function()
    local client = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10,
      local_address = failure_source() }
    local ok, err = pcall(client.authenticate, client, { tls = tls(), user = "mallory", password = "x" })
    assert.is_false(ok)
    assert.equal("authentication", err.kind)
    assert.equal(535, err.code)
    client:close()
  end)

  for _, mech in ipairs({ "PLAIN", "SCRAM-SHA-256", "CRAM-MD5" }) do
    it("accepts a non-ASCII UTF-8 password with " .. mech, function()
      local client = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10 }
      client:authenticate { tls = tls(), mechanisms = { mech }, user = carol.user, password = carol.password }
      assert.is_true(client:authenticated())
      client:quit()
    end)
  end

  it("chooses SCRAM-SHA-256 by default", function()
    local seen = {}
    local client = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10,
      debug = function(dir, line) seen[#seen + 1] = dir .. ": " .. line end }
    client:authenticate { tls = tls(), user = alice.user, password = alice.password }
    client:quit()
    local trace = table.concat(seen, "\n")
    assert.truthy(trace:find("C: AUTH SCRAM-SHA-256 ***", 1, true), trace)
    assert.is_nil(trace:find(alice.password, 1, true))
  end)

  it("sends over implicit TLS (SMTPS) with verification on", function()
    local client = smtp.connect { host = "localhost", port = stack.ports.smtps, tls_mode = "implicit",
      tls = tls(), timeout = 10 }
    assert.is_true(client:tls_info().peer_verified)
    assert.equal(tlsver.best(), client:tls_info().version)
    client:authenticate { user = alice.user, password = alice.password }
    local report = client:sendmail(message("implicit tls"))
    client:quit()
    assert.equal(250, report.reply.code)
    local got = assert(find_delivery("implicit tls"))
    assert.equal(message("implicit tls"), got.data)
    assert.truthy(got.added:find("using " .. tlsver.best() .. " with cipher", 1, true), got.added)
  end)

  it("keeps to TLS 1.2 with max_version = 1.2, on both sides", function()
    local client = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10 }
    client:authenticate { tls = { ca_file = stack.certs.ca_cert, max_version = "1.2" }, tls_required = true,
      user = alice.user, password = alice.password }
    assert.equal("TLSv1.2", client:tls_info().version)
    local report = client:sendmail(message("max 1.2"))
    client:quit()
    assert.equal(250, report.reply.code)
    local got = assert(find_delivery("max 1.2"))
    assert.truthy(got.added:find("using TLSv1.2 with cipher", 1, true), got.added)
  end)

  it("smtp.send does it all in one call and closes", function()
    local report = smtp.send { host = "localhost", port = stack.ports.starttls, tls = tls(), tls_required = true,
      user = alice.user, password = alice.password, raw = message("smtp.send"), timeout = 10 }
    assert.equal(250, report.reply.code)
    assert.truthy(find_delivery("smtp.send"))
  end)

  it("reports rejected recipients per recipient", function()
    local client = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10 }
    client:authenticate { tls = tls(), user = alice.user, password = alice.password }
    local report = client:sendmail(message("partial"), {
      to = { "bob@" .. stack.domain, "nobody@" .. stack.domain } })
    client:quit()
    assert.same({ "bob@" .. stack.domain }, report.accepted)
    assert.equal("nobody@" .. stack.domain, report.rejected[1].recipient)
    assert.equal("permanent", report.rejected[1].error.kind)
    assert.equal(550, report.rejected[1].error.code)
    assert.equal("5.1.1", report.rejected[1].error.enhanced)
  end)

  it("refuses PLAIN over an unencrypted connection unless allowed", function()
    local client = smtp.connect { host = "localhost", port = stack.ports.plain, timeout = 10 }
    local ok, err = pcall(client.authenticate, client, { mechanisms = { "PLAIN" },
      user = alice.user, password = alice.password })
    assert.is_false(ok)
    assert.equal("usage", err.kind)
    assert.truthy(err.message:find("allow_plaintext", 1, true))
    client:authenticate { mechanisms = { "PLAIN" }, user = alice.user, password = alice.password,
      allow_plaintext = true }
    assert.is_true(client:authenticated())
    local again, err2 = pcall(client.auth, client, "PLAIN", alice.user, nil, alice.password)
    assert.is_false(again)
    assert.equal("usage", err2.kind)
    client:quit()
  end)

  it("tls_required fails before AUTH or MAIL when STARTTLS is not offered", function()
    local seen = {}
    local client = smtp.connect { host = "localhost", port = stack.ports.plain, timeout = 10,
      debug = function(dir, line) seen[#seen + 1] = dir .. ": " .. line end }
    local ok, err = pcall(client.authenticate, client, { tls = tls(), tls_required = true,
      user = alice.user, password = alice.password, allow_plaintext = true })
    assert.is_false(ok)
    assert.equal("tls", err.kind)
    assert.is_true(client:closed())
    local sent = {}
    for _, l in ipairs(seen) do if l:sub(1, 2) == "C:" then sent[#sent + 1] = l end end
    assert.same({ "C: EHLO [127.0.0.1]" }, sent)
  end)

  it("mechanisms = {} skips authentication", function()
    local client = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10 }
    client:authenticate { tls = tls(), mechanisms = {}, user = alice.user, password = alice.password }
    assert.is_false(client:authenticated())
    assert.is_truthy(client:tls_info())
    client:quit()
  end)
end)
