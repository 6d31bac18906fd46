-- Event loops against real servers (issue 24): STARTTLS + AUTH and
-- implicit TLS to the suite's Postfix + Dovecot, SCRAM-SHA-256-PLUS against
-- the pyOpenSSL peer, through cqueues and luv: the same checks and
-- results as the blocking client, the message read back from the Maildir.
local smtp = require "smtp"
local servers = require "helpers.servers"
local certs = require "helpers.certs"
local cb_peer = require "helpers.cb_peer"
local tlsver = require "helpers.tlsver"

local has_cqueues, cqueues = pcall(require, "cqueues")
-- Through helpers.luv, which keeps luv's first module table (and with it
-- libuv's loop) alive across busted's per-file insulation.
local uv = require("helpers.luv").load()
local has_luv = uv ~= nil
-- Lua 5.1 (not LuaJIT) cannot yield across pcall (loop_spec checks the refusal).
if not require("smtp.loop").can_yield then has_cqueues, has_luv = false, false end

-- Runs fn() in a coroutine on the loop and returns its results (or
-- raises its error); bounded to 30 s.
local loops = {}
if has_cqueues then
  loops[#loops + 1] = { name = "cqueues", make = function() return smtp.loop.cqueues() end,
    run = function(fn)
      local cq = cqueues.new()
      local res
      cq:wrap(function() res = { pcall(fn) } end)
      local deadline = smtp.now() + 30
      while not cq:empty() and smtp.now() < deadline do assert(cq:step(0.1)) end
      assert(res, "the cqueues task did not finish in 30 s")
      return res
    end }
end
if has_luv then
  loops[#loops + 1] = { name = "luv", make = function() return smtp.loop.luv(uv) end,
    run = function(fn)
      local res
      coroutine.wrap(function() res = { pcall(fn) } end)()
      local guard = uv.new_timer()
      uv.update_time()
      guard:start(30000, 0, function() uv.stop() end)
      guard:unref()
      uv.run()
      guard:close()
      uv.run("nowait")
      assert(res, "the luv task did not finish in 30 s")
      return res
    end }
end

local function on_loop(l, fn)
  local res = l.run(fn)
  if not res[1] then error(res[2], 0) end
  return (table.unpack or unpack)(res, 2) -- luacheck: ignore 113
end

describe("event loops with Postfix + Dovecot #interop #tls", function()
  if #loops == 0 then
    pending("neither lua-cqueues nor lua-luv is usable here (not installed, or Lua 5.1 without LuaJIT)")
    return
  end
  local stack, alice

  setup(function()
    stack = servers.mail_stack()
    alice = stack.users[1]
  end)

  teardown(function()
    if stack then stack:stop() end
  end)

  local function find_delivery(subject)
    for _ = 1, 100 do
      for _, m in ipairs(stack:messages("bob")) do
        if m.data:find("Subject: " .. subject, 1, true) then return m end
      end
      os.execute("sleep 0.1")
    end
  end

  local function message(subject)
    return ("From: alice@%s\r\nTo: bob@%s\r\nSubject: %s\r\n\r\nLine one.\r\n.Leading dot survives.\r\n")
      :format(stack.domain, stack.domain, subject)
  end

  for _, l in ipairs(loops) do
    it(l.name .. ": STARTTLS + AUTH SCRAM-SHA-256, verified, delivered byte for byte", function()
      local subject = "loop starttls " .. l.name
      local raw = message(subject)
      local report, info = on_loop(l, function()
        local c = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10, loop = l.make() }
        c:authenticate { tls = { ca_file = stack.certs.ca_cert }, tls_required = true,
          mechanisms = { "SCRAM-SHA-256" }, user = alice.user, password = alice.password }
        local r = c:sendmail(raw)
        local i = c:tls_info()
        c:quit()
        return r, i
      end)
      assert.equal(250, report.reply.code)
      assert.is_true(info.peer_verified)
      assert.equal(tlsver.best(), info.version)
      local m = find_delivery(subject)
      assert.is_table(m, "message not delivered")
      assert.equal(raw, m.data)
    end)

    it(l.name .. ": implicit TLS with AUTH PLAIN through smtp.send", function()
      local subject = "loop implicit " .. l.name
      local report = on_loop(l, function()
        return smtp.send { host = "localhost", port = stack.ports.smtps, tls_mode = "implicit",
          tls = { ca_file = stack.certs.ca_cert }, timeout = 10, loop = l.make(),
          user = alice.user, password = alice.password, mechanisms = { "PLAIN" }, raw = message(subject) }
      end)
      assert.equal(250, report.reply.code)
      assert.is_table(find_delivery(subject), "message not delivered")
    end)

    it(l.name .. ": a certificate for another name is refused (kind tls), as without a loop", function()
      local ok, err = pcall(on_loop, l, function()
        local c = smtp.connect { host = "127.0.0.1", port = stack.ports.starttls, timeout = 10, loop = l.make() }
        c:authenticate { tls = { ca_file = stack.certs.ca_cert }, tls_peer = "wrong.example",
          tls_required = true, user = alice.user, password = alice.password }
      end)
      assert.is_false(ok)
      assert.equal("tls", err.kind, tostring(err))
    end)
  end
end)

describe("event loops with SCRAM-SHA-256-PLUS (pyOpenSSL peer) #interop #tls #sasl", function()
  if #loops == 0 then
    pending("neither lua-cqueues nor lua-luv is usable here (not installed, or Lua 5.1 without LuaJIT)")
    return
  end
  local pki, peer

  setup(function()
    assert(cb_peer.usable())
    pki = certs.make()
    peer = cb_peer.start(pki, { tls = "starttls" })
  end)

  teardown(function()
    if peer then peer:stop() end
  end)

  for _, l in ipairs(loops) do
    it(l.name .. ": binds the exchange to the TLS channel and authenticates", function()
      peer:clear()
      local authenticated = on_loop(l, function()
        local c = smtp.connect { host = "127.0.0.1", port = peer.port, timeout = 10, loop = l.make() }
        c:authenticate { tls = smtp.tls_config { ca_file = pki.ca_cert }, tls_peer = "localhost",
          mechanisms = { "SCRAM-SHA-256-PLUS" }, user = cb_peer.USER, password = cb_peer.PASSWORD }
        local a = c:authenticated()
        c:quit()
        return a
      end)
      assert.is_true(authenticated)
      local ok, log = peer:wait_ended(1)
      assert(ok, tostring(log))
      local auth = peer:events("auth")
      local last = auth[#auth]
      assert.equal("SCRAM-SHA-256-PLUS", last.mech)
      assert.equal("ok", last.result)
      assert.matches("^p=tls%-", last.gs2)
    end)
  end
end)
