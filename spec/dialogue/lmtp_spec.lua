-- LMTP's per-recipient replies after the data (RFC 2033 4.2), exactly.
local smtp = require "smtp"
local scripted = require "helpers.scripted"

describe("LMTP dialogue", function()
  it("reads one reply per accepted recipient and reports each", function()
    local server = scripted.start([[
S: 220 lmtp.example ready
C: LHLO c.example
S: 250-lmtp.example
S: 250-PIPELINING
S: 250 ENHANCEDSTATUSCODES
C: MAIL FROM:<s@example.org>
C: RCPT TO:<a@example.org>
C: RCPT TO:<b@example.org>
C: RCPT TO:<c@example.org>
C: DATA
R: 250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n354 go\r\n
BODY
R: 250 2.0.0 <a@example.org> saved\r\n452 4.2.2 <c@example.org> over quota\r\n
C: QUIT
S: 221 bye
]])
    local client = smtp.lmtp_connect { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "c.example" }
    local report = client:sendmail("From: s@example.org\r\n\r\nbody\r\n",
      { to = { "a@example.org", "b@example.org", "c@example.org" } })
    client:quit()
    local ok, serr = server:result()
    assert.is_true(ok, serr)
    assert.same({ "a@example.org" }, report.accepted)
    assert.equal(2, #report.rejected)
    assert.equal("b@example.org", report.rejected[1].recipient)
    assert.equal(550, report.rejected[1].error.code)
    assert.equal("c@example.org", report.rejected[2].recipient)
    assert.equal("transient", report.rejected[2].error.kind)
    assert.equal("4.2.2", report.rejected[2].error.enhanced)
    assert.equal(250, report.reply.code)
  end)
end)
