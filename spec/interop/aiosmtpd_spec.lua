-- A real SMTP server (Python aiosmtpd, started on loopback by the test)
-- receives several messages over one connection; what it stored must be
-- what was sent, byte for byte.
local smtp = require "smtp"
local servers = require "helpers.servers"

describe("aiosmtpd #interop", function()
  local server

  setup(function()
    server = servers.aiosmtpd { pipelining = true }
  end)

  teardown(function()
    if server then server:stop() end
  end)

  it("stores several messages from one connection byte for byte", function()
    local before = #server:messages()
    local messages = {
      "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: one\r\n\r\nHello Bob.\r\n",
      "From: alice@example.org\r\nTo: carol@example.org, dave@example.org\r\nCc: erin@example.org\r\n" ..
        "Subject: two\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast line\r\n",
      "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: three\r\n\r\n" ..
        string.rep("A long body line that repeats. ", 20) .. "\r\n" .. string.rep("x", 998) .. "\r\n",
    }
    local client = smtp.connect { host = server.host, port = server.port, timeout = 10 }
    local reports = {}
    for i, m in ipairs(messages) do reports[i] = client:sendmail(m) end
    client:quit()
    local got = assert(server:wait_messages(before + 3))
    for i, m in ipairs(messages) do
      local stored = got[before + i]
      assert.equal(250, reports[i].reply.code)
      assert.equal(m, stored.data)
      assert.equal("alice@example.org", stored.mail_from)
    end
    assert.same({ "carol@example.org", "dave@example.org", "erin@example.org" }, got[before + 2].rcpt_tos)
    assert.same({ "carol@example.org", "dave@example.org", "erin@example.org" }, reports[2].accepted)
  end)

  it("never transmits Bcc and normalises bare line ends", function()
    local before = #server:messages()
    local client = smtp.connect { host = server.host, port = server.port, timeout = 10 }
    client:sendmail("From: a@example.org\nTo: b@example.org\nBcc: secret@example.org\nSubject: x\n\nbare\nlf\rcr\n")
    client:quit()
    local got = assert(server:wait_messages(before + 1))[before + 1]
    assert.equal("From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n\r\nbare\r\nlf\r\ncr\r\n", got.data)
    assert.same({ "b@example.org", "secret@example.org" }, got.rcpt_tos)
  end)

  it("sends SMTPUTF8 and 8BITMIME messages as offered", function()
    local before = #server:messages()
    local client = smtp.connect { host = server.host, port = server.port, timeout = 10 }
    local m = "From: a@example.org\r\nTo: jürgen@example.org\r\nSubject: Grüße\r\n\r\nGrüße aus Köln\r\n"
    client:sendmail(m)
    client:quit()
    local got = assert(server:wait_messages(before + 1))[before + 1]
    assert.equal(m, got.data)
    assert.same({ "jürgen@example.org" }, got.rcpt_tos)
    local opts = table.concat(got.mail_options, " ")
    assert.truthy(opts:find("SMTPUTF8", 1, true), opts)
    assert.truthy(opts:find("BODY=8BITMIME", 1, true), opts)
  end)

  it("sends a message streamed from a file with sendmany", function()
    local before = #server:messages()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    local body = string.rep("0123456789 streamed line\r\n", 40000)
    f:write("From: a@example.org\r\nTo: b@example.org\r\nSubject: file\r\n\r\n", body)
    f:close()
    local client = smtp.connect { host = server.host, port = server.port, timeout = 10 }
    local fh = assert(io.open(path, "rb"))
    local results = client:sendmany({ fh, "From: a@example.org\r\nTo: b@example.org\r\n\r\nsmall\r\n" })
    fh:close()
    client:quit()
    os.remove(path)
    assert.equal(250, results[1].reply.code)
    assert.equal(250, results[2].reply.code)
    local got = assert(server:wait_messages(before + 2))
    assert.equal("From: a@example.org\r\nTo: b@example.org\r\nSubject: file\r\n\r\n" .. body, got[before + 1].data)
    assert.equal("From: a@example.org\r\nTo: b@example.org\r\n\r\nsmall\r\n", got[before + 2].data)
  end)

  it("connects over IPv6 (::1, also written [::1]) and names itself with an IPv6 literal", function()
    local v6 = servers.aiosmtpd { host = "::1" }
    local ok, err = pcall(function()
      for _, host in ipairs({ "::1", "[::1]" }) do
        local seen
        local client = smtp.connect { host = host, port = v6.port, timeout = 10,
          debug = function(_, line) if line:find("^EHLO") then seen = line end end }
        client:sendmail("From: a@example.org\r\nTo: b@example.org\r\n\r\nover IPv6\r\n")
        client:quit()
        assert.truthy(seen == "EHLO [IPv6:::1]" or not seen:find("^EHLO %["), seen)
      end
      assert.equal(2, #assert(v6:wait_messages(2)))
    end)
    v6:stop()
    assert(ok, err)
  end)

  it("reports a refused AUTH as kind authentication at once and can retry on the same connection", function()
    local auth = servers.aiosmtpd { auth = { { user = "u", password = "right-Pass-1" } } }
    local ok, err = pcall(function()
      local client = smtp.connect { host = auth.host, port = auth.port, timeout = 10 }
      local t0 = require("socket").gettime()
      local failed, e = pcall(client.authenticate, client,
        { user = "u", password = "wrong", tls = false, allow_plaintext = true, mechanisms = { "PLAIN" } })
      assert.is_false(failed)
      assert.equal("authentication", e.kind, tostring(e))
      assert.equal(535, e.code)
      assert.is_true(require("socket").gettime() - t0 < 2)
      client:authenticate { user = "u", password = "right-Pass-1", tls = false, allow_plaintext = true,
        mechanisms = { "LOGIN" } }
      assert.is_true(client:authenticated())
      client:sendmail("From: u@example.org\r\nTo: b@example.org\r\n\r\nafter a refusal\r\n")
      client:quit()
      local got = assert(auth:wait_messages(1))
      assert.equal("u", got[1].auth)
    end)
    auth:stop()
    assert(ok, err)
  end)
end)
