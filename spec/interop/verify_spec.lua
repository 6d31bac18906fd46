-- The connection test (issue 25 item 9) against the private Postfix +
-- Dovecot SASL stack: smtp.verify, pool:verify and smtp-send --verify
-- connect, EHLO, STARTTLS, AUTH and QUIT, and report what they found, or
-- fail as a send would (wrong password: kind authentication / exit 2;
-- TLS required on the port without STARTTLS: kind tls / exit 3).
local smtp = require "smtp"
local servers = require "helpers.servers"
local P = require "helpers.proc"
local V = require "helpers.luaver"

local BUILD = os.getenv("SMTP_BUILD") or "build"
local ROOT = P.run("pwd"):gsub("\n$", "")
if BUILD:sub(1, 1) ~= "/" then BUILD = ROOT .. "/" .. BUILD end
local CMD = ("env LUA_PATH=%s LUA_CPATH=%s %s %s"):format(
  P.q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"), P.q(BUILD .. "/?.so;;"), V.interpreter,
  P.q(ROOT .. "/bin/smtp-send"))

describe("connection test against Postfix + Dovecot #tls", function()
  local stack, alice, dir

  setup(function()
    stack = servers.mail_stack()
    alice = stack.users[1]
    dir = P.tempdir("verify")
  end)
  teardown(function() if stack then stack:stop() end end)

  local function opts(extra)
    local o = { host = "localhost", port = stack.ports.starttls, timeout = 10, local_name = "client.example",
      tls = { ca_file = stack.certs.ca_cert }, user = alice.user, password = alice.password }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  -- smtp-send with 'args' (already quoted), stdin from /dev/null:
  -- exit code, stdout, stderr.
  local runs = 0
  local function run(args)
    runs = runs + 1
    local base = dir .. "/run" .. runs
    local _, code = V.execute(("timeout 60 %s %s < /dev/null > %s.out 2> %s.err"):format(CMD, args, base, base))
    return code, P.read_file(base .. ".out") or "", P.read_file(base .. ".err") or ""
  end

  describe("smtp.verify", function()
    it("returns the greeting, extensions, SIZE, TLS and the mechanism after STARTTLS + AUTH", function()
      local before = #stack:messages()
      local r = smtp.verify(opts())
      assert.equal("localhost", r.server)
      assert.equal(stack.ports.starttls, r.port)
      assert.truthy(r.greeting:find("ESMTP", 1, true), r.greeting)
      assert.is_true(r.authenticated)
      assert.is_string(r.mechanism)
      local offered = false
      for _, m in ipairs(r.extensions.AUTH) do if m:upper() == r.mechanism then offered = true end end
      assert.is_true(offered, r.mechanism)
      assert.is_true(r.extensions.PIPELINING)
      assert.is_number(r.size)
      assert.equal(r.extensions.SIZE, r.size)
      assert.is_table(r.ehlo)
      assert.truthy(r.tls.version:find("TLS", 1, true), r.tls.version)
      assert.is_true(r.tls.peer_verified)
      assert.is_number(r.ms)
      assert.is_true(r.ms >= 0 and r.ms < 10000)
      assert.equal(before, #stack:messages()) -- nothing was sent
    end)

    it("reports an unauthenticated plaintext session when no credentials or TLS are given", function()
      local r = smtp.verify { host = "localhost", port = stack.ports.plain, timeout = 10 }
      assert.is_false(r.authenticated)
      assert.is_nil(r.mechanism)
      assert.is_nil(r.tls)
      assert.is_table(r.extensions.AUTH)
    end)

    it("raises kind authentication for a wrong password, without showing it", function()
      local ok, err = pcall(smtp.verify, opts { password = "not-the-password" })
      assert.is_false(ok)
      assert.equal("authentication", err.kind)
      assert.equal(535, err.code)
      assert.is_nil(tostring(err):find("not-the-password", 1, true))
    end)

    it("raises kind tls when TLS is required and the server offers no STARTTLS", function()
      local ok, err = pcall(smtp.verify, opts { port = stack.ports.plain })
      assert.is_false(ok)
      assert.equal("tls", err.kind)
      assert.truthy(err.message:find("STARTTLS", 1, true), err.message)
    end)

    it("raises kind usage without options", function()
      local ok, err = pcall(smtp.verify)
      assert.is_false(ok)
      assert.equal("usage", err.kind)
    end)
  end)

  describe("pool:verify", function()
    it("returns one ok result per server", function()
      local pool = smtp.pool(opts { servers = { { port = stack.ports.starttls },
        { port = stack.ports.smtps, tls_mode = "implicit" } } })
      local results = pool:verify()
      pool:close()
      assert.equal(2, #results)
      assert.equal("localhost:" .. stack.ports.starttls, results[1].label)
      assert.equal("localhost:" .. stack.ports.smtps, results[2].label)
      for _, r in ipairs(results) do
        assert.is_true(r.ok)
        assert.is_true(r.authenticated)
        assert.is_table(r.tls)
      end
    end)

    it("raises the failing server's error, with every server's result in err.results", function()
      local pool = smtp.pool(opts { servers = { { port = stack.ports.starttls }, { port = stack.ports.plain } } })
      local ok, err = pcall(pool.verify, pool)
      pool:close()
      assert.is_false(ok)
      assert.equal("tls", err.kind)
      assert.equal("localhost:" .. stack.ports.plain, err.label)
      assert.equal(2, #err.results)
      assert.is_true(err.results[1].ok)
      assert.is_true(err.results[1].authenticated)
      assert.is_false(err.results[2].ok)
      assert.equal(err, err.results[2].error)
    end)
  end)

  describe("smtp-send --verify", function()
    local function args(port, pwfile, extra)
      return ("--verify --server localhost:%d --starttls --cafile %s --user %s --password-file %s --timeout 10 %s")
        :format(port, P.q(stack.certs.ca_cert), alice.user, P.q(pwfile), extra or "")
    end

    it("exits 0 and prints what it found, without --from or --to", function()
      local pw = dir .. "/alice.pw"
      P.write_file(pw, alice.password .. "\n", "0600")
      local code, out, err = run(args(stack.ports.starttls, pw))
      assert.equal(0, code, err)
      assert.truthy(out:find("server localhost:" .. stack.ports.starttls .. ": ok", 1, true), out)
      assert.truthy(out:find("\n  tls: TLS", 1, true), out)
      assert.truthy(out:find("(verified)", 1, true), out)
      assert.truthy(out:find("\n  auth: [%w%-]+\n"), out)
      assert.truthy(out:find("\n  size: %d+\n"), out)
      assert.truthy(out:find("PIPELINING", 1, true), out)
      assert.equal("", err)
    end)

    it("exits 2 for a wrong password and 3 for --tls-required on the port without STARTTLS", function()
      local wrong = dir .. "/wrong.pw"
      P.write_file(wrong, "not-the-password\n", "0600")
      local code, out, err = run(args(stack.ports.starttls, wrong))
      assert.equal(2, code, err)
      assert.equal("", out)
      assert.truthy(err:find("authentication 535", 1, true), err)
      assert.is_nil(err:find("not-the-password", 1, true))
      code, out, err = run(("--verify --server localhost:%d --tls-required --cafile %s --timeout 10")
        :format(stack.ports.plain, P.q(stack.certs.ca_cert)))
      assert.equal(3, code, err)
      assert.equal("", out)
      assert.truthy(err:find("server localhost:" .. stack.ports.plain .. ": tls", 1, true), err)
    end)
  end)
end)
