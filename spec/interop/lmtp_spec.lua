-- LMTP (RFC 2033) against a real Dovecot LMTP server started by the test,
-- over its UNIX socket and its TCP port: one reply per recipient after the
-- data, reported per recipient, and the Maildirs read back.
local smtp = require "smtp"
local lmtp = require "helpers.lmtp"

describe("Dovecot LMTP #interop", function()
  local server

  setup(function() server = lmtp.start { users = { "alice", "bob" } } end)
  teardown(function() if server then server:stop() end end)

  local function message(subject)
    return ("From: sender@example.org\r\nTo: alice@example.test, bob@example.test\r\nSubject: %s\r\n\r\n" ..
      "Hello over LMTP.\r\n"):format(subject)
  end

  local function delivered(user, subject)
    for _ = 1, 50 do
      for _, raw in ipairs(server:messages(user)) do
        if raw:find("Subject: " .. subject, 1, true) then return raw end
      end
      os.execute("sleep 0.1")
    end
  end

  for _, via in ipairs({ "unix socket", "tcp" }) do
    it("delivers to two of three recipients over the " .. via .. " and reports each", function()
      local client
      if via == "tcp" then
        client = smtp.connect { protocol = "lmtp", host = server.host, port = server.port, timeout = 10 }
      else
        client = smtp.lmtp_connect { host = server.socket, timeout = 10 }
      end
      local subject = "lmtp via " .. via
      local report = client:sendmail(message(subject), { from = "sender@example.org",
        to = { "alice", "nobody", "bob" } })
      client:quit()
      assert.same({ "alice", "bob" }, report.accepted)
      assert.equal(1, #report.rejected)
      assert.equal("nobody", report.rejected[1].recipient)
      assert.equal("permanent", report.rejected[1].error.kind)
      assert.equal(550, report.rejected[1].error.code)
      assert.equal(250, report.reply.code)
      for _, user in ipairs({ "alice", "bob" }) do
        local raw = assert(delivered(user, subject), "no delivery for " .. user)
        assert.truthy(raw:find("Hello over LMTP.", 1, true))
      end
    end)
  end

  it("sends LHLO, not EHLO", function()
    local seen = {}
    local client = smtp.lmtp_connect { host = server.socket, timeout = 10,
      debug = function(dir, line) seen[#seen + 1] = dir .. ": " .. line end }
    client:helo("client.example")
    client:quit()
    assert.equal("C: LHLO client.example", seen[2])
  end)

  it("raises the first rejection when no recipient exists", function()
    local client = smtp.lmtp_connect { host = server.socket, timeout = 10 }
    local ok, err = pcall(client.sendmail, client, message("nobody"), { from = "s@example.org", to = { "nobody" } })
    client:quit()
    assert.is_false(ok)
    assert.equal("permanent", err.kind)
    assert.equal(550, err.code)
  end)
end)
