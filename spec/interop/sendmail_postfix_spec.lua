-- smtp.sender.sendmail through Postfix's own sendmail program (issue 25
-- item 5): a private Postfix instance with pickup(8) running; the
-- program is /usr/sbin/sendmail with `-C <config dir>`, so postdrop
-- drops into that instance's maildrop/ and virtual(8) delivers into its
-- Maildir, where the message is read back. Needs root (the instance
-- does, and postdrop accepts another configuration directory only from
-- root).
local smtp = require "smtp"
local servers = require "helpers.servers"
local P = require "helpers.proc"

local SENDMAIL = "/usr/sbin/sendmail"

describe("smtp.sender.sendmail through Postfix #interop", function()
  local pf

  setup(function()
    pf = servers.postfix { pickup = true }
  end)

  teardown(function()
    if pf then pf:stop() end
  end)

  it("delivers a message with the given envelope, CRLF turned to LF and a lone dot kept", function()
    local s = smtp.sender.sendmail { path = SENDMAIL, args = { "-C", pf.config_dir }, timeout = 20 }
    local msg = "From: sender@example.org\r\nTo: alice@example.test\r\nBcc: carol@example.test\r\n"
      .. "Subject: via sendmail\r\nMessage-ID: <sendmail-1@example.org>\r\n\r\n"
      .. "first line\r\n.\r\nafter a lone dot\r\n"
    local r = s:send(msg, { from = "bounce@example.org", to = { "alice@example.test", "bob@example.test" } })
    assert.same({ "alice@example.test", "bob@example.test" }, r.accepted)
    assert.same({}, r.rejected)
    assert.equal("sendmail:" .. SENDMAIL, r.server)
    assert.equal(1, r.tries)
    local got = assert(pf:wait_messages(2, 20))
    local boxes = {}
    for _, m in ipairs(got) do
      boxes[m.mailbox] = m
      assert.equal("bounce@example.org", m.mail_from)
      assert.matches("Message%-ID: <sendmail%-1@example.org>", m.body)
      -- -i: the lone dot is text, the lines after it arrive too.
      assert.matches("\n\nfirst line\n%.\nafter a lone dot\n$", m.body)
      assert.is_nil(m.body:find("\r", 1, true))
      assert.is_nil(m.body:find("Bcc", 1, true))
    end
    assert.truthy(boxes.alice and boxes.bob)
    assert.is_nil(boxes.carol) -- the envelope given wins over the header
  end)

  it("drains an outbox like a pool would", function()
    local ob = smtp.outbox(P.tempdir("outbox") .. "/box")
    local id = ob:put("From: a@example.org\r\nTo: carol@example.test\r\nMessage-ID: <ob-1@example.org>\r\n\r\nq\r\n")
    local s = smtp.sender.sendmail { path = SENDMAIL, args = { "-C", pf.config_dir }, timeout = 20 }
    assert.same({ delivered = 1, failed = 0, deferred = 0, unknown = 0 }, ob:run(s))
    assert.same({ id }, ob:list("sent"))
    local got = assert(pf:wait_messages(1, 20, "carol"))
    assert.matches("<ob%-1@example.org>", got[1].body)
  end)

  it("an instance Postfix's sendmail cannot use gives its EX_TEMPFAIL as kind transient", function()
    local dir = P.tempdir("nopostfix")
    P.write_file(dir .. "/main.cf", "queue_directory = " .. dir .. "/missing\n", "0644")
    local s = smtp.sender.sendmail { path = SENDMAIL, args = { "-C", dir }, timeout = 20 }
    local ok, err = pcall(s.send, s, "From: a@example.org\r\nTo: alice@example.test\r\n\r\nhi\r\n", {})
    assert.is_false(ok)
    assert.equal("transient", err.kind)
    assert.equal(75, err.status)
    assert.equal("not_sent", err.outcome)
    assert.matches("EX_TEMPFAIL", tostring(err))
    assert.equal(1, err.tries)
    assert.equal("alice@example.test", err.report.rejected[1].recipient)
  end)
end)
