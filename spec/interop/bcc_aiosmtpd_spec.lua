-- Review M2 against a real server (Python aiosmtpd on loopback): Bcc and
-- Resent-Bcc fields hidden behind bare CR line ends or "Bcc :" are not in
-- what the server stores, and their addresses are in its envelope.
local smtp = require "smtp"
local servers = require "helpers.servers"

describe("Bcc and Resent-Bcc with aiosmtpd #interop", function()
  local server

  setup(function()
    server = servers.aiosmtpd { pipelining = true }
  end)

  teardown(function()
    if server then server:stop() end
  end)

  it("stores no hidden field and delivers to the hidden addresses", function()
    local before = #server:messages()
    local client = smtp.connect { host = server.host, port = server.port, timeout = 10 }
    client:sendmail("From: a@example.org\r\nTo: b@example.org\r\nSubject: hello\rBcc: hidden@example.net\r\n" ..
      "Bcc : obs@example.net\r\rbody\r\n")
    client:sendmail("Resent-From: r@example.org\r\nResent-To: c@example.org\r\nResent-Bcc: rb@example.net\r" ..
      "From: a@example.org\r\nTo: b@example.org\r\n\r\nbody\r\n")
    client:quit()
    local got = assert(server:wait_messages(before + 2))
    assert.equal("From: a@example.org\r\nTo: b@example.org\r\nSubject: hello\r\n\r\nbody\r\n", got[before + 1].data)
    assert.same({ "b@example.org", "hidden@example.net", "obs@example.net" }, got[before + 1].rcpt_tos)
    assert.equal("Resent-From: r@example.org\r\nResent-To: c@example.org\r\nFrom: a@example.org\r\n" ..
      "To: b@example.org\r\n\r\nbody\r\n", got[before + 2].data)
    assert.same({ "c@example.org", "rb@example.net" }, got[before + 2].rcpt_tos)
  end)
end)
