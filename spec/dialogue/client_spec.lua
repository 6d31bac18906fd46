-- The Client against a scripted server: exact transcripts both ways.
-- Server lines are scripted; every byte the client sends is asserted.
local smtp = require "smtp"
local scripted = require "helpers.scripted"
local V = require "helpers.luaver"

local EHLO_PIPE = [[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250-PIPELINING
S: 250-SIZE 1000000
S: 250-8BITMIME
S: 250 ENHANCEDSTATUSCODES
]]

local EHLO_PLAIN = [[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250 ENHANCEDSTATUSCODES
]]

local RAW = "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n"

-- Runs fn(client) against a transcript; returns the client's error (or
-- nil), the server's verdict and the bytes it received.
local function dialogue(transcript, fn, copts)
  transcript = transcript:gsub("@SIZE@", tostring(#RAW))
  local server = scripted.start(transcript)
  local opts = { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "client.example" }
  for k, v in pairs(copts or {}) do opts[k] = v end
  local client
  local ok, err = pcall(function()
    client = smtp.connect(opts)
    return fn(client)
  end)
  if client then client:close() end
  local sok, serr, received = server:result()
  return (not ok) and err or nil, sok, serr, received[1] or ""
end

local function expect_error(err, kind, code, enhanced)
  assert.is_true(smtp.Error.is(err), "expected an smtp.Error, got " .. tostring(err))
  assert.equal(kind, err.kind)
  assert.equal(code, err.code)
  assert.equal(enhanced, err.enhanced)
end

describe("smtp.connect greeting", function()
  it("reads a 220 greeting and quits cleanly", function()
    local err, sok, serr, received = dialogue([[
S: 220 mx.example.org ESMTP ready
C: QUIT
S: 221 2.0.0 bye
]], function(c) c:quit() end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.equal("QUIT\r\n", received)
  end)

  it("raises transient 421 for a 421 greeting and closes", function()
    local err, sok, _, received = dialogue([[
S: 421 4.3.2 try later
]], function() end)
    expect_error(err, "transient", 421, "4.3.2")
    assert.equal("try later", err.message)
    assert.is_true(err.retryable)
    assert.is_true(sok)
    -- 421: the server is closing; nothing more is sent, not even QUIT.
    assert.equal("", received)
  end)

  it("raises permanent 554 for a 554 greeting", function()
    local err = dialogue([[
S: 554 5.7.1 no service for you
C: QUIT
]], function() end)
    expect_error(err, "permanent", 554, "5.7.1")
    assert.is_false(err.retryable)
  end)

  it("raises protocol for a greeting that is not a reply", function()
    local err = dialogue([[
R: HTTP/1.1 400 Bad Request\r\n
]], function() end)
    expect_error(err, "protocol", nil, nil)
  end)

  it("raises io when the server closes before greeting", function()
    local err = dialogue("CLOSE\n", function() end)
    expect_error(err, "io", nil, nil)
  end)

  it("refuses a connection to a closed port with kind io", function()
    local ok, err = pcall(smtp.connect, { host = "127.0.0.1", port = 1, timeout = 2 })
    assert.is_false(ok)
    expect_error(err, "io", nil, nil)
  end)

  it("raises usage for bad options, before connecting", function()
    for _, opts in ipairs({
      {}, { host = 42 }, { host = "x", port = 0 }, { host = "x", port = "abc" },
      { host = "x", timeout = -1 }, { host = "x", tls_mode = "sometimes" },
      { host = "x\r\n" }, { host = "x", timeouts = { nope = 1 } },
    }) do
      local ok, err = pcall(smtp.connect, opts)
      assert.is_false(ok)
      expect_error(err, "usage", nil, nil)
    end
  end)
end)

describe("client:helo()", function()
  it("parses a multiline EHLO response into extensions", function()
    local ext, lines
    local err, sok, serr = dialogue([[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org greets you
S: 250-PIPELINING
S: 250-SIZE 52428800
S: 250-AUTH PLAIN LOGIN
S: 250-AUTH=PLAIN LOGIN CRAM-MD5
S: 250-8BITMIME
S: 250 DSN
C: QUIT
S: 221 bye
]], function(c)
      lines = c:helo()
      ext = c:extensions()
      c:quit()
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.same({ "mx.example.org greets you", "PIPELINING", "SIZE 52428800", "AUTH PLAIN LOGIN",
      "AUTH=PLAIN LOGIN CRAM-MD5", "8BITMIME", "DSN" }, lines)
    assert.is_true(ext.PIPELINING)
    assert.equal(52428800, ext.SIZE)
    assert.same({ "PLAIN", "LOGIN", "CRAM-MD5" }, ext.AUTH)
    assert.same({ "PLAIN", "LOGIN", "CRAM-MD5" }, smtp.auth_mechanisms(lines))
  end)

  it("falls back to HELO when EHLO gets 500", function()
    local ext, resp
    local err, sok, serr = dialogue([[
S: 220 old.example.org SMTP
C: EHLO client.example
S: 500 5.5.1 command unrecognized
C: HELO client.example
S: 250 old.example.org
C: QUIT
S: 221 bye
]], function(c)
      c:helo()
      ext = c:extensions()
      resp = c:helo_response()
      c:quit()
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.same({}, ext)
    assert.same({ "old.example.org" }, resp)
  end)

  it("raises permanent when HELO is refused too", function()
    local err = dialogue([[
S: 220 old.example.org SMTP
C: EHLO client.example
S: 502 not implemented
C: HELO client.example
S: 550 go away
]], function(c) c:helo() end)
    expect_error(err, "permanent", 550, nil)
    assert.equal("HELO client.example", err.command)
  end)

  it("refuses CR/LF in the EHLO name before writing anything", function()
    local err, _, _, received = dialogue([[
S: 220 mx ESMTP
]], function(c) c:helo("evil\r\nMAIL FROM:<x>") end)
    expect_error(err, "usage", nil, nil)
    assert.equal("", received)
  end)
end)

describe("client:sendmail()", function()
  it("pipelines MAIL, every RCPT and DATA, and reports per recipient", function()
    local report
    local err, sok, serr, received = dialogue(EHLO_PIPE .. [[
C: MAIL FROM:<a@example.org> SIZE=@SIZE@
C: RCPT TO:<ok1@example.org>
C: RCPT TO:<busy@example.org>
C: RCPT TO:<gone@example.org>
C: RCPT TO:<ok2@example.org>
C: DATA
S: 250 2.1.0 ok
S: 250 2.1.5 ok
S: 450 4.2.1 mailbox busy
S: 550 5.1.1 user unknown
S: 251 2.1.5 will forward
S: 354 go ahead
BODY
S: 250 2.0.0 Ok: queued as 4AbCdEf123
C: QUIT
S: 221 bye
]], function(c)
      report = c:sendmail(RAW, { from = "a@example.org",
        to = { "ok1@example.org", "busy@example.org", "gone@example.org", "ok2@example.org" } })
      c:quit()
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.same({ "ok1@example.org", "ok2@example.org" }, report.accepted)
    assert.equal(2, #report.rejected)
    assert.equal("busy@example.org", report.rejected[1].recipient)
    expect_error(report.rejected[1].error, "transient", 450, "4.2.1")
    assert.equal("busy@example.org", report.rejected[1].error.recipient)
    expect_error(report.rejected[2].error, "permanent", 550, "5.1.1")
    assert.equal("Bad destination mailbox address", report.rejected[2].error.meaning)
    assert.equal(250, report.reply.code)
    assert.equal("2.0.0", report.reply.enhanced)
    assert.equal("4AbCdEf123", report.reply.queue_id)
    assert.equal(table.concat({
      "EHLO client.example\r\n",
      "MAIL FROM:<a@example.org> SIZE=" .. #RAW .. "\r\n",
      "RCPT TO:<ok1@example.org>\r\n", "RCPT TO:<busy@example.org>\r\n",
      "RCPT TO:<gone@example.org>\r\n", "RCPT TO:<ok2@example.org>\r\n",
      "DATA\r\n", RAW, ".\r\n", "QUIT\r\n" }), received)
  end)

  it("waits for each reply without PIPELINING", function()
    local err, sok, serr = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 ok
C: QUIT
S: 221 bye
]], function(c)
      c:sendmail(RAW)
      c:quit()
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)

  it("takes the envelope from the headers and never transmits Bcc", function()
    local msg = "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>, carol@example.org\r\n" ..
      "Cc: \"Dave, D.\" <dave@example.org>\r\nBcc: secret@example.org,\r\n  hidden@example.org\r\n" ..
      "Subject: hi\r\n\r\nhello\r\n"
    local err, sok, serr, received = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<alice@example.org>
S: 250 ok
C: RCPT TO:<bob@example.org>
S: 250 ok
C: RCPT TO:<carol@example.org>
S: 250 ok
C: RCPT TO:<dave@example.org>
S: 250 ok
C: RCPT TO:<secret@example.org>
S: 250 ok
C: RCPT TO:<hidden@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 ok
]], function(c) c:sendmail(msg) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.is_nil(received:find("secret", 1, true) and received:find("Bcc", 1, true))
    assert.truthy(received:find("Subject: hi\r\n\r\nhello\r\n.\r\n", 1, true))
    assert.is_nil(received:find("Bcc:", 1, true))
  end)

  it("prefers Sender over From for the envelope sender", function()
    local err, sok, serr = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<sender@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 ok
]], function(c)
      c:sendmail("From: a@example.org\r\nSender: sender@example.org\r\nTo: b@example.org\r\n\r\nx\r\n")
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)

  it("dot-stuffs and normalises line ends on the wire", function()
    local body = "From: a@example.org\nTo: b@example.org\n\n.leading dot\nbare lf\rbare cr\r\n.\n..\nno final newline"
    local err, sok, serr, received = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 ok
]], function(c) c:sendmail(body) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    local data = received:match("DATA\r\n(.*)$")
    assert.equal("From: a@example.org\r\nTo: b@example.org\r\n\r\n..leading dot\r\nbare lf\r\nbare cr\r\n" ..
      "..\r\n...\r\nno final newline\r\n.\r\n", data)
  end)

  it("streams a file handle and a source function", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("From: a@example.org\nTo: b@example.org\n\n", string.rep("line of text\n", 20000))
    f:close()
    local parts = { "From: a@example.org\r\nTo: b", "@example.org\r\n", "\r\nbo", "dy\r\n" }
    local i = 0
    local err, sok, serr, received = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 ok
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 ok
]], function(c)
      local fh = assert(io.open(path, "rb"))
      c:sendmail(fh)
      fh:close()
      c:sendmail(function() i = i + 1; return parts[i] end)
    end)
    os.remove(path)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.truthy(received:find(string.rep("line of text\r\n", 20000) .. ".\r\n", 1, true))
    assert.truthy(received:find("\r\n\r\nbody\r\n.\r\n", 1, true))
  end)

  it("raises the first rejection after RSET when every recipient is refused", function()
    local err, sok, serr, received = dialogue(EHLO_PIPE .. [[
C: MAIL FROM:<a@example.org> SIZE=@SIZE@
C: RCPT TO:<x@example.org>
C: RCPT TO:<y@example.org>
C: DATA
S: 250 ok
S: 550 5.1.1 <x@example.org>: user unknown
S: 450 4.2.2 mailbox full
S: 554 5.5.1 no valid recipients
C: RSET
S: 250 ok
]], function(c) c:sendmail(RAW, { to = { "x@example.org", "y@example.org" } }) end)
    expect_error(err, "permanent", 550, "5.1.1")
    assert.equal("x@example.org", err.recipient)
    assert.equal("RCPT TO:<x@example.org>", err.command)
    assert.equal("not_sent", err.outcome)
    assert.equal(2, #err.report.rejected)
    assert.is_true(sok, serr)
    assert.equal("smtp: permanent 550 5.1.1 at RCPT TO:<x@example.org>: <x@example.org>: user unknown",
      tostring(err))
    assert.is_nil(received:find("body", 1, true))
  end)

  it("sends an empty message when DATA got 354 with no recipients (RFC 2920)", function()
    local err, sok, serr, received = dialogue(EHLO_PIPE .. [[
C: MAIL FROM:<a@example.org> SIZE=@SIZE@
C: RCPT TO:<x@example.org>
C: DATA
S: 250 ok
S: 550 5.1.1 unknown
S: 354 go anyway
C: .
S: 554 5.5.1 no valid recipients
C: RSET
S: 250 ok
]], function(c) c:sendmail(RAW, { to = { "x@example.org" } }) end)
    expect_error(err, "permanent", 550, "5.1.1")
    assert.is_true(sok, serr)
    assert.is_nil(received:find("Subject", 1, true))
  end)

  it("all_or_nothing: refuses the whole transaction if one recipient fails", function()
    local err, sok, serr, received = dialogue(EHLO_PIPE .. [[
C: MAIL FROM:<a@example.org> SIZE=@SIZE@
C: RCPT TO:<ok@example.org>
C: RCPT TO:<bad@example.org>
S: 250 ok
S: 250 ok
S: 550 5.1.1 unknown
C: RSET
S: 250 ok
C: QUIT
S: 221 bye
]], function(c)
      local ok, e = pcall(c.sendmail, c, RAW, { to = { "ok@example.org", "bad@example.org" }, all_or_nothing = true })
      assert.is_false(ok)
      c:quit()
      error(e, 0)
    end)
    expect_error(err, "permanent", 550, "5.1.1")
    assert.equal("bad@example.org", err.recipient)
    assert.is_true(sok, serr)
    assert.is_nil(received:find("DATA", 1, true))
  end)

  it("raises transient for a 452 after the data and keeps the client usable", function()
    local again
    local err, sok, serr = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 452 4.3.1 insufficient storage
C: NOOP
S: 250 ok
]], function(c)
      local _, e = pcall(c.sendmail, c, RAW)
      again = c:noop()
      error(e, 0)
    end)
    expect_error(err, "transient", 452, "4.3.1")
    assert.equal("not_sent", err.outcome)
    assert.is_true(err.retryable)
    assert.equal(250, again.code)
    assert.is_true(sok, serr)
  end)

  it("raises permanent for a 554 after the data", function()
    local err = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 554 5.6.0 content rejected
]], function(c) c:sendmail(RAW) end)
    expect_error(err, "permanent", 554, "5.6.0")
    assert.equal("Other or undefined media error", err.meaning)
  end)

  it("raises protocol and closes for 250 instead of 354 to DATA", function()
    local closed
    local err = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 250 what
]], function(c)
      local ok, e = pcall(c.sendmail, c, RAW)
      closed = c:closed()
      assert(not ok)
      error(e, 0)
    end)
    expect_error(err, "protocol", 250, nil)
    assert.is_true(closed)
  end)

  it("marks the outcome unknown when the connection drops after the final dot", function()
    local err = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
CLOSE
]], function(c) c:sendmail(RAW) end)
    expect_error(err, "io", nil, nil)
    assert.equal("unknown", err.outcome)
    assert.is_false(err.retryable)
  end)

  it("never sends the terminator when the source fails mid-body", function()
    local n = 0
    local closed
    local err, _, _, received = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
STALL
]], function(c)
      -- downgrade = false: for a server without 8BITMIME a source is
      -- otherwise read whole before MAIL (README "8-bit downgrade").
      local _, e = pcall(c.sendmail, c, function()
        n = n + 1
        if n == 1 then return "From: a@example.org\r\nTo: b@example.org\r\n\r\n" end
        if n == 2 then return string.rep("x", 100000) .. "\r\n" end
        return nil, "disk read error"
      end, { downgrade = false })
      closed = c:closed()
      error(e, 0)
    end)
    expect_error(err, "io", nil, nil)
    assert.truthy(err.message:find("disk read error", 1, true))
    assert.is_true(closed)
    assert.is_nil(received:find("\r\n.\r\n", 1, true))
  end)

  it("raises usage before MAIL when a non-ASCII local part needs SMTPUTF8 but it is not offered", function()
    local err, sok, _, received = dialogue(EHLO_PIPE, function(c)
      c:sendmail(RAW, { from = "a@example.org", to = { "jürgen@example.org" } })
    end)
    -- Issue 25 item 3: no ASCII form exists for the local part.
    expect_error(err, "usage", nil, nil)
    assert.truthy(err.message:find("SMTPUTF8", 1, true))
    assert.is_true(sok)
    assert.is_nil(received:find("MAIL", 1, true))
  end)

  it("asks for SMTPUTF8 and BODY=8BITMIME when offered and needed", function()
    local msg = "From: a@example.org\r\nTo: b@example.org\r\n\r\nGrüße\r\n"
    local err, sok, serr = dialogue([[
S: 220 mx ESMTP
C: EHLO client.example
S: 250-mx
S: 250-SMTPUTF8
S: 250 8BITMIME
C: MAIL FROM:<a@example.org> SMTPUTF8 BODY=8BITMIME
S: 250 ok
C: RCPT TO:<jürgen@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 ok
]], function(c) c:sendmail(msg, { to = { "jürgen@example.org" } }) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)

  it("refuses 8-bit data when the server lacks 8BITMIME", function()
    local err = dialogue(EHLO_PLAIN, function(c)
      c:sendmail("From: a@example.org\r\nTo: b@example.org\r\n\r\nGrüße\r\n", { downgrade = false })
    end)
    expect_error(err, "permanent", nil, nil)
    assert.truthy(err.message:find("8BITMIME", 1, true))
  end)

  it("refuses a message larger than the announced SIZE", function()
    local err = dialogue(EHLO_PIPE, function(c)
      -- Lines within RFC 5321's 998 octets: a longer one is refused first.
      c:sendmail(RAW .. string.rep(string.rep("x", 99) .. "\r\n", 10000))
    end)
    expect_error(err, "permanent", nil, nil)
    assert.truthy(err.message:find("exceeds", 1, true))
  end)

  it("adds DSN parameters when the server offers DSN", function()
    local err, sok, serr = dialogue([[
S: 220 mx ESMTP
C: EHLO client.example
S: 250-mx
S: 250 DSN
C: MAIL FROM:<a@example.org> RET=HDRS ENVID=id+2B1
S: 250 ok
C: RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 ok
]], function(c)
      c:sendmail(RAW, { dsn = { ret = "hdrs", envid = "id+1", notify = { "success", "failure" } } })
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)

  it("uses BDAT with CHUNKING and PIPELINING", function()
    local report
    local err, sok, serr, received = dialogue([[
S: 220 mx ESMTP
C: EHLO client.example
S: 250-mx
S: 250-PIPELINING
S: 250 CHUNKING
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
S: 250 ok
S: 250 ok
BDAT
S: 250 2.0.0 queued as ABC123
]], function(c) report = c:sendmail("From: a@example.org\nTo: b@example.org\n\n.x\n") end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.equal("ABC123", report.reply.queue_id)
    assert.truthy(received:find("BDAT 46 LAST\r\nFrom: a@example.org\r\nTo: b@example.org\r\n\r\n.x\r\n", 1, true))
  end)

  it("refuses CR/LF/NUL in envelope addresses before writing anything", function()
    for _, bad in ipairs({ "b@example.org>\r\nRCPT TO:<evil@x", "b@example.org\n", "b\0@example.org" }) do
      local err, _, _, received = dialogue(EHLO_PLAIN, function(c)
        c:helo()
        c:sendmail(RAW, { to = { bad } })
      end)
      expect_error(err, "usage", nil, nil)
      assert.equal("EHLO client.example\r\n", received)
    end
  end)
end)

describe("low-level commands", function()
  it("mail, rcpt, data, rset, noop, vrfy, expn, help and command", function()
    local results = {}
    local err, sok, serr = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<> BODY=7BIT
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 done
C: RSET
S: 250 reset
C: NOOP
S: 250 noop
C: VRFY bob
S: 252 2.5.2 cannot verify
C: EXPN staff
S: 550 5.7.1 access denied
C: HELP MAIL
S: 214-MAIL FROM:<sender>
S: 214 end
C: XFOO bar
S: 502 5.5.1 not implemented
C: QUIT
S: 221 bye
]], function(c)
      c:helo()
      c:mail("", { BODY = "7BIT" })
      c:rcpt("b@example.org")
      results.data = c:data("Subject: x\n\nhi\n")
      c:rset()
      c:noop()
      results.vrfy = c:vrfy("bob")
      results.expn = c:expn("staff")
      results.help = c:help("MAIL")
      results.code, results.lines = c:command("XFOO bar")
      c:quit()
      results.closed = c:closed()
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.equal(250, results.data.code)
    assert.same({ "cannot verify" }, results.vrfy)
    assert.is_nil(results.expn)
    assert.same({ "MAIL FROM:<sender>", "end" }, results.help)
    assert.equal(502, results.code)
    assert.same({ "not implemented" }, results.lines)
    assert.is_true(results.closed)
  end)

  it("bdat sends a raw chunk and its LAST", function()
    local replies = {}
    local err, sok, serr, received = dialogue([[
S: 220 mx ESMTP
C: EHLO client.example
S: 250-mx
S: 250 CHUNKING
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
BDAT
S: 250 2.0.0 chunk ok
BDAT
S: 250 2.0.0 queued as BDAT42
]], function(c)
      c:helo()
      c:mail("a@example.org")
      c:rcpt("b@example.org")
      replies[1] = c:bdat("From: a@example.org\r\n", false)
      replies[2] = c:bdat("\r\nbody\r\n", true)
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.equal("BDAT42", replies[2].queue_id)
    assert.truthy(received:find("BDAT 21\r\nFrom: a@example.org\r\nBDAT 8 LAST\r\n\r\nbody\r\n", 1, true))
  end)

  it("closes the connection at the end of a <close> scope and when collected", function()
    if V.lua54 then
      -- `<close>` is 5.4 syntax: compiled only where it exists.
      local server = scripted.start("S: 220 mx\nC: NOOP\nS: 250 ok\n")
      local chunk = assert(V.load([[
        local smtp, port = ...
        local c <close> = smtp.connect { host = "127.0.0.1", port = port, timeout = 5 }
        c:noop()
        return c
      ]], "=close"))
      local c = chunk(smtp, server.port)
      assert.is_true(c:closed())
      local ok = server:result()
      assert.is_true(ok)
    end
    local s2 = scripted.start("S: 220 mx\n")
    do
      smtp.connect { host = "127.0.0.1", port = s2.port, timeout = 5 }
    end
    collectgarbage()
    collectgarbage()
    local ok2, serr2, received = s2:result(5)
    assert.is_true(ok2, serr2)
    assert.equal("", received[1])
  end)

  it("rcpt raises with the recipient set", function()
    local err = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 551 5.1.6 user moved
]], function(c)
      c:mail("a@example.org")
      c:rcpt("b@example.org")
    end)
    expect_error(err, "permanent", 551, "5.1.6")
    assert.equal("b@example.org", err.recipient)
  end)

  it("a closed client raises io on use", function()
    local err = dialogue([[
S: 220 mx
C: QUIT
S: 221 bye
]], function(c)
      c:quit()
      c:quit()
      c:close()
      c:noop()
    end)
    expect_error(err, "io", nil, nil)
  end)

  it("refuses command lines over 512 octets", function()
    local err, _, _, received = dialogue("S: 220 mx\n", function(c)
      c:command("NOOP " .. string.rep("a", 600))
    end)
    expect_error(err, "usage", nil, nil)
    assert.equal("", received)
  end)
end)

describe("deadlines and hostile replies", function()
  it("times out on a server that never greets, within timeout + 1 s", function()
    local t0 = os.time()
    local clock0 = require("smtp.core").now()
    local err = dialogue("STALL\n", function() end, { timeout = 1 })
    local elapsed = require("smtp.core").now() - clock0
    expect_error(err, "timeout", nil, nil)
    assert.is_true(elapsed < 2.5, "took " .. elapsed .. " s")
    assert.is_true(elapsed >= 0.9)
    assert.is_true(os.time() - t0 < 5)
  end)

  it("a per-phase timeout applies to its phase only", function()
    local core = require "smtp.core"
    local t0
    local err = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
STALL
]], function(c)
      c:helo()
      t0 = core.now()
      c:mail("a@example.org")
    end, { timeout = 10, timeouts = { mail = 1 } })
    expect_error(err, "timeout", nil, nil)
    assert.is_true(core.now() - t0 < 2)
  end)

  it("a server trickling one byte per 0.3 s still hits the deadline", function()
    local core = require "smtp.core"
    local t0 = core.now()
    local err = dialogue("TRICKLE 0.3 220 this greeting takes far too long to arrive\n", function() end,
      { timeout = 1.5 })
    expect_error(err, "timeout", nil, nil)
    assert.is_true(core.now() - t0 < 2.6)
  end)

  it("rejects a reply line of 1 MiB", function()
    local err = dialogue("BIGLINE 1048576\n", function() end)
    expect_error(err, "protocol", nil, nil)
    assert.truthy(err.message:find("too long", 1, true))
  end)

  it("rejects 5,000 continuation lines", function()
    local err = dialogue("S: 220 mx\nC: EHLO client.example\nMANYLINES 5000\n", function(c) c:helo() end)
    expect_error(err, "protocol", nil, nil)
    assert.truthy(err.message:find("too many lines", 1, true))
  end)

  for _, case in ipairs({
    { "mismatched codes", "S: 250-one\nS: 251 two\n" },
    { "a four-digit code", "S: 2500 hi\n" },
    { "a two-digit code", "S: 25\n" },
    { "a bad separator", "S: 250_x\n" },
  }) do
    it("rejects " .. case[1] .. " and closes", function()
      local closed
      local err = dialogue("S: 220 mx\nC: NOOP\n" .. case[2], function(c)
        local ok, e = pcall(c.noop, c)
        closed = c:closed()
        assert(not ok)
        error(e, 0)
      end)
      expect_error(err, "protocol", nil, nil)
      assert.is_true(closed)
    end)
  end

  for _, step in ipairs({ "EHLO", "MAIL", "RCPT", "DATA", "BODY" }) do
    it("raises io when the server disconnects after " .. step, function()
      local lines = {
        EHLO = "S: 220 mx\nC: EHLO client.example\nCLOSE\n",
        MAIL = EHLO_PLAIN .. "C: MAIL FROM:<a@example.org>\nCLOSE\n",
        RCPT = EHLO_PLAIN .. "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nCLOSE\n",
        DATA = EHLO_PLAIN .. "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\n" ..
          "C: DATA\nCLOSE\n",
        BODY = EHLO_PLAIN .. "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\n" ..
          "C: DATA\nS: 354 go\nBODY\nCLOSE\n",
      }
      local closed
      local err = dialogue(lines[step], function(c)
        local ok, e = pcall(c.sendmail, c, RAW)
        closed = c:closed()
        assert(not ok)
        error(e, 0)
      end)
      expect_error(err, "io", nil, nil)
      assert.is_true(closed)
      local outcomes = { EHLO = nil, MAIL = "not_sent", RCPT = "not_sent", DATA = "not_sent", BODY = "unknown" }
      assert.equal(outcomes[step], err.outcome)
    end)
  end
end)

describe("sendmail progress", function()
  it("reports bytes sent against the total as the body goes out", function()
    local body = "From: a@example.org\r\nTo: b@example.org\r\n\r\n" .. string.rep(string.rep("x", 98) .. "\r\n", 2000)
    local calls = {}
    local err, sok, serr = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 ok
]], function(c)
      c:sendmail(body, { progress = function(sent, total) calls[#calls + 1] = { sent, total } end })
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.is_true(#calls >= 1)
    assert.same({ #body, #body }, calls[#calls])
    for i = 2, #calls do assert.is_true(calls[i][1] >= calls[i - 1][1]) end
  end)

  it("drops the message when the progress callback fails", function()
    local closed
    local err, _, _, received = dialogue(EHLO_PLAIN .. [[
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
STALL
]], function(c)
      local ok, e = pcall(c.sendmail, c, RAW, { progress = function() error("boom") end })
      closed = c:closed()
      assert(not ok)
      error(e, 0)
    end)
    expect_error(err, "usage", nil, nil)
    assert.equal("not_sent", err.outcome)
    assert.is_true(closed)
    assert.is_nil(received:find("\r\n.\r\n", 1, true))
  end)
end)

describe("unsolicited replies", function()
  it("refuses a second greeting before EHLO is sent", function()
    local err, _, _, received = dialogue("R: 220 one\\r\\n220 two\\r\\n\n", function(c) c:helo() end)
    expect_error(err, "protocol", nil, nil)
    assert.truthy(err.message:find("unsolicited", 1, true))
    assert.equal("", received)
  end)

  it("refuses a reply that arrives ahead of its command", function()
    local err, _, _, received = dialogue(EHLO_PLAIN:gsub("S: 250 ENHANCEDSTATUSCODES\n",
      "R: 250 ENHANCEDSTATUSCODES\\r\\n250 2.1.0 sender ok\\r\\n\n"), function(c)
        c:helo()
        c:mail("a@example.org")
      end)
    expect_error(err, "protocol", nil, nil)
    assert.equal("EHLO client.example\r\n", received)
  end)

  it("accepts pipelined replies split across packets at every byte", function()
    local replies = "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"
    local lines = {}
    for i = 1, #replies do
      lines[#lines + 1] = "R: " .. replies:sub(i, i):gsub("\r", "\\r"):gsub("\n", "\\n")
      lines[#lines + 1] = "SLEEP 0.002"
    end
    local err, sok, serr = dialogue(EHLO_PIPE .. "C: MAIL FROM:<a@example.org> SIZE=@SIZE@\nC: RCPT TO:<b@example.org>\n" ..
      "C: DATA\n" .. table.concat(lines, "\n") .. "\nBODY\nS: 250 ok\n", function(c) c:sendmail(RAW) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)
end)

describe("smtp.debug", function()
  it("traces both directions through a function hook", function()
    local seen = {}
    local err = dialogue([[
S: 220 mx ready
C: NOOP
S: 250 2.0.0 fine
]], function(c) c:noop() end, { debug = function(dir, line) seen[#seen + 1] = dir .. " " .. line end })
    assert.is_nil(err)
    assert.same({ "S 220 mx ready", "C NOOP", "S 250 2.0.0 fine" }, seen)
  end)
end)
