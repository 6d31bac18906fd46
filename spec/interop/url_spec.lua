-- Connection URLs against real servers: smtps:// and smtp:// (STARTTLS
-- required) with the URL's credentials to Postfix + Dovecot, read back
-- from the Maildir; smtp:// refused and ?tls=opportunistic accepted on
-- Postfix's port without STARTTLS; a pool of URL servers; lmtp:///socket
-- and lmtp://host:port to Dovecot LMTP; smtp-send --url.
local smtp = require "smtp"
local servers = require "helpers.servers"
local lmtp = require "helpers.lmtp"
local P = require "helpers.proc"
local V = require "helpers.luaver"

-- Percent-encoded as a URL carries it.
local function pct(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

describe("connection URLs #interop #tls", function()
  local stack, alice, carol, ca

  setup(function()
    stack = servers.mail_stack()
    alice, carol = stack.users[1], stack.users[3]
    ca = smtp.tls_config { ca_file = stack.certs.ca_cert }
  end)
  teardown(function() if stack then stack:stop() end end)

  local function message(subject)
    return ("From: %s@%s\r\nTo: bob@%s\r\nSubject: %s\r\n\r\nSent by URL.\r\n"):format(alice.user, stack.domain,
      stack.domain, subject)
  end

  local function delivered(subject)
    for _ = 1, 100 do
      for _, m in ipairs(stack:messages("bob")) do
        if m.data:find("Subject: " .. subject, 1, true) then return m end
      end
      P.sleep(0.1)
    end
  end

  local function send(url, subject, extra)
    local opts = { url = url, tls = ca, timeout = 10, from = alice.user .. "@" .. stack.domain,
      to = "bob@" .. stack.domain, raw = message(subject) }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return smtp.send(opts)
  end

  it("smtps://user:pass@127.0.0.1:port authenticates (UTF-8 password, percent-encoded) and delivers", function()
    local lines = {}
    local report = send(("smtps://%s:%s@127.0.0.1:%d"):format(carol.user, pct(carol.password), stack.ports.smtps),
      "url smtps", { debug = function(d, l) lines[#lines + 1] = d .. ": " .. l end })
    assert.equal(250, report.reply.code)
    local got = assert(delivered("url smtps"), "not delivered")
    assert.equal(message("url smtps"), got.data)
    local trace = table.concat(lines, "\n")
    assert.truthy(trace:find("C: AUTH ", 1, true), trace)
    assert.is_nil(trace:find(carol.password, 1, true))
    assert.is_nil(trace:find(pct(carol.password), 1, true))
  end)

  it("smtp://user:pass@host:port does STARTTLS (required) before AUTH and delivers", function()
    local lines = {}
    send(("smtp://%s:%s@127.0.0.1:%d"):format(alice.user, pct(alice.password), stack.ports.starttls),
      "url starttls", { debug = function(d, l) lines[#lines + 1] = d .. ": " .. l end })
    assert(delivered("url starttls"), "not delivered")
    local trace = table.concat(lines, "\n")
    assert.truthy(trace:find("C: STARTTLS\n.-<TLS established>.-C: AUTH "), trace)
  end)

  it("smtp:// to a port without STARTTLS is kind tls before AUTH; ?tls=opportunistic sends", function()
    local url = ("smtp://%s:%s@127.0.0.1:%d"):format(alice.user, pct(alice.password), stack.ports.plain)
    local ok, err = pcall(send, url, "url refused")
    assert.is_false(ok)
    assert.equal("tls", err.kind, tostring(err))
    assert.is_nil(tostring(err):find(alice.password, 1, true))
    send(url .. "?tls=opportunistic", "url opportunistic", { allow_plaintext = true })
    assert(delivered("url opportunistic"), "not delivered")
  end)

  it("smtp.verify{url=} connects, authenticates with the URL's credentials and reports the URL's host", function()
    local r = smtp.verify { url = ("smtps://%s:%s@127.0.0.1:%d"):format(alice.user, pct(alice.password),
      stack.ports.smtps), tls = ca, timeout = 10 }
    assert.equal("127.0.0.1", r.server)
    assert.equal(stack.ports.smtps, r.port)
    assert.is_true(r.authenticated)
    assert.is_true(r.tls.peer_verified)
  end)

  it("a bad password from the URL is kind authentication and not in the error", function()
    local ok, err = pcall(send, ("smtps://%s:Wrong-Pw-9@127.0.0.1:%d"):format(alice.user, stack.ports.smtps),
      "url wrong", { local_address = "127.0.0.31" })
    assert.is_false(ok)
    assert.equal("authentication", err.kind, tostring(err))
    assert.is_nil(tostring(err):find("Wrong-Pw-9", 1, true))
  end)

  it("smtp.pool sends through URL servers (a dead one first), the pool's tls winning", function()
    local dead = P.free_port()
    local pool = smtp.pool { tls = { ca_file = stack.certs.ca_cert }, timeout = 10, cooldown = 60,
      retry = { limit = 2, base = 0 }, servers = {
        { url = ("smtps://%s:%s@127.0.0.1:%d"):format(alice.user, pct(alice.password), dead), weight = 100 },
        { url = ("smtps://%s:%s@127.0.0.1:%d"):format(alice.user, pct(alice.password), stack.ports.smtps) },
      } }
    local report = pool:send(message("url pool"))
    pool:close()
    assert.equal(2, report.tries)
    assert.equal("127.0.0.1:" .. stack.ports.smtps, report.server)
    assert(delivered("url pool"), "not delivered")
  end)

  describe("smtp-send --url", function()
    local BUILD = os.getenv("SMTP_BUILD") or "build"
    local ROOT = P.run("pwd"):gsub("\n$", "")
    if BUILD:sub(1, 1) ~= "/" then BUILD = ROOT .. "/" .. BUILD end
    local dir = P.tempdir("url-send")

    local function smtp_send(args)
      local cmd = ("cd %s && env LUA_PATH=%s LUA_CPATH=%s timeout 60 %s bin/smtp-send %s --body-file %s " ..
        "> %s/out 2> %s/err"):format(P.q(ROOT), P.q(ROOT .. "/lua/?.lua;;"), P.q(BUILD .. "/?.so;;"),
        V.interpreter, args, P.q(dir .. "/body"), dir, dir)
      local _, code = V.execute(cmd)
      return code, P.read_file(dir .. "/out") or "", P.read_file(dir .. "/err") or ""
    end

    setup(function()
      P.write_file(dir .. "/body", "Body by smtp-send --url.\n")
      P.write_file(dir .. "/pw", alice.password .. "\n")
    end)

    it("sends with STARTTLS required, the user from the URL", function()
      local code, out, err = smtp_send(("--url %s --cafile %s --password-file %s --from %s --to %s --subject %s")
        :format(P.q(("smtp://%s@127.0.0.1:%d"):format(alice.user, stack.ports.starttls)),
          P.q(stack.certs.ca_cert), P.q(dir .. "/pw"), alice.user .. "@" .. stack.domain,
          "bob@" .. stack.domain, P.q("url smtp-send")))
      assert.equal(0, code, out .. err)
      local got = assert(delivered("url smtp-send"), "not delivered")
      assert.truthy(got.added:find("using TLS", 1, true), got.added)
    end)

    it("takes the password from an smtps:// URL, warns that argv is public, and never echoes it", function()
      local code, out, err = smtp_send(("--url %s --cafile %s --from %s --to %s --subject %s")
        :format(P.q(("smtps://%s:%s@127.0.0.1:%d"):format(alice.user, pct(alice.password), stack.ports.smtps)),
          P.q(stack.certs.ca_cert), alice.user .. "@" .. stack.domain, "bob@" .. stack.domain,
          P.q("url smtp-send pw")))
      assert.equal(0, code, out .. err)
      assert.truthy(err:find("warning", 1, true), err)
      assert.is_nil((out .. err):find(alice.password, 1, true), err)
      assert(delivered("url smtp-send pw"), "not delivered")
    end)

    it("exits 3 when smtp:// meets no STARTTLS, 2 for a wrong password in the URL (with a warning), 1 for a bad URL", function()
      local code, out, err = smtp_send(("--url %s --from a@example.test --to bob@example.test")
        :format(P.q("smtp://127.0.0.1:" .. stack.ports.plain)))
      assert.equal(3, code, out .. err)
      assert.truthy(err:find("STARTTLS", 1, true), err)
      code, out, err = smtp_send(("--url %s --cafile %s --from a@example.test --to bob@example.test")
        :format(P.q(("smtps://%s:Hidden-Pw-7@127.0.0.1:%d"):format(alice.user, stack.ports.smtps)),
          P.q(stack.certs.ca_cert)))
      -- A password in the URL is taken (curl's meaning) with a warning
      -- and never echoed; the wrong one here fails AUTH with exit 2.
      assert.equal(2, code, out .. err)
      assert.truthy(err:find("--password-file", 1, true), err)
      assert.is_nil((out .. err):find("Hidden-Pw-7", 1, true), err)
      code, out, err = smtp_send("--url http://x --from a@example.test --to bob@example.test")
      assert.equal(1, code, out .. err)
      assert.truthy(err:find("unknown scheme", 1, true), err)
      code, out, err = smtp_send("--url smtp://x --server x --from a@example.test --to bob@example.test")
      assert.equal(1, code, out .. err)
      assert.truthy(err:find("exclude each other", 1, true), err)
    end)
  end)
end)

describe("lmtp:// URLs to Dovecot LMTP #interop", function()
  local server
  setup(function() server = lmtp.start { users = { "alice" } } end)
  teardown(function() if server then server:stop() end end)

  for _, form in ipairs({ "socket", "tcp" }) do
    it("delivers over lmtp:// to the " .. form, function()
      local url = form == "socket" and ("lmtp://" .. server.socket) or ("lmtp://127.0.0.1:" .. server.port)
      local subject = "lmtp url " .. form
      local report = smtp.send { url = url, timeout = 10, from = "s@example.org", to = "alice",
        raw = "From: s@example.org\r\nSubject: " .. subject .. "\r\n\r\nhi\r\n" }
      assert.same({ "alice" }, report.accepted)
      assert(P.wait_for(5, function()
        for _, raw in ipairs(server:messages("alice")) do
          if raw:find(subject, 1, true) then return true end
        end
      end), "not delivered")
    end)
  end
end)
