-- 8-bit and long-line downgrade end to end: a scripted server offering
-- neither 8BITMIME nor SMTPUTF8 keeps the DATA bytes, which Python's
-- email package reads back and compares part by part with the original.
local smtp = require "smtp"
local scripted = require "helpers.scripted"
local check = require "helpers.downgrade_check"
local keys = require "helpers.dkim_keys"
local downgrade = require "smtp.downgrade"

local function crlf(s) return (s:gsub("\r?\n", "\r\n")) end

-- No 8BITMIME, no SMTPUTF8; SIZE so that the announced size is checked.
local EHLO_7BIT = [[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250 SIZE 50000000
]]

local NO_SIZE = EHLO_7BIT:gsub("250 SIZE 50000000", "250 HELP")

local EHLO_8BIT = [[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250 8BITMIME
]]

local TAIL = [[
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 ok
]]

local MSG = crlf [[
From: a@example.org
To: b@example.org
Subject: downgrade
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=_b1"

--=_b1
Content-Type: multipart/alternative; boundary="=_b2"

--=_b2
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Köln.
.a line that starts with a dot
--=_b2
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 8bit

<p>Grüße aus Köln.</p>
--=_b2--
--=_b1
Content-Type: text/plain; charset=us-ascii

plain
--=_b1
Content-Type: application/octet-stream
Content-Transfer-Encoding: 8bit

]] .. "\200\201\202\255 bytes\r\n--=_b1--\r\n"

local function dialogue(transcript, fn)
  local server = scripted.start(transcript)
  local client
  local ok, err = pcall(function()
    client = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "client.example" }
    return fn(client)
  end)
  if client then client:close() end
  local sok, serr, received = server:result()
  return (not ok) and err or nil, sok, serr, received[1] or ""
end

local function expect_usage_before_mail(err, received, pattern)
  assert.is_true(smtp.Error.is(err), tostring(err))
  assert.equal("usage", err.kind)
  assert.truthy(err.message:find(pattern), err.message)
  assert.is_nil(received:find("MAIL", 1, true))
end

describe("8-bit downgrade (RFC 6152 3)", function()
  it("re-encodes a raw 8-bit MIME message for a 7-bit server, announcing its exact SIZE", function()
    local want = downgrade.rewrite(MSG, { eightbit = true })
    local err, sok, serr, received = dialogue(EHLO_7BIT .. "C: MAIL FROM:<a@example.org> SIZE=" .. #want
      .. "\n" .. TAIL, function(c) return c:sendmail(MSG) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    local sent = check.data_of(received)
    assert.equal(want, sent)
    assert.is_nil(sent:find("[\128-\255]"))
    local same, why, ctes = check.compare(MSG, sent)
    assert.is_true(same, why)
    assert.same({ "quoted-printable", "quoted-printable", "7bit", "base64" }, ctes)
  end)

  it("streams a file the same way (exact SIZE from the re-encoded spool)", function()
    local f = io.tmpfile()
    f:write(MSG)
    f:seek("set", 0)
    local want = downgrade.rewrite(MSG, { eightbit = true })
    local err, sok, serr, received = dialogue(EHLO_7BIT .. "C: MAIL FROM:<a@example.org> SIZE=" .. #want
      .. "\n" .. TAIL, function(c) return c:sendmail(f) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.is_true((check.compare(MSG, check.data_of(received))))
  end)

  it("signs with DKIM after re-encoding: dkimpy verifies the stored bytes", function()
    local k = keys.make()
    local opts = { dkim = { domain = "example.org", selector = "sel", key_file = k.rsa2048.file } }
    local err, sok, serr, received = dialogue(NO_SIZE .. "C: MAIL FROM:<a@example.org>\n" .. TAIL,
      function(c) return c:sendmail(MSG, opts) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    local sent = check.data_of(received)
    assert.truthy(sent:find("^DKIM%-Signature:"))
    assert.truthy(sent:find("Content-Transfer-Encoding: quoted-printable", 1, true))
    assert.equal("pass", keys.verify_all(k.rsa2048, "sel", "example.org", { sent })[1])
    assert.is_true((check.compare(MSG, sent)))
  end)

  it("rebuilds an smtp.message with 8bit parts, keeping its envelope", function()
    local m = smtp.message {
      from = "a@example.org", to = "b@example.org", bcc = "c@example.org", subject = "Grüße",
      text = "Grüße aus Köln\n", transfer_encoding = "8bit",
    }
    local tail = TAIL:gsub("(S: 250 ok\n)(C: DATA)", "%1C: RCPT TO:<c@example.org>\nS: 250 ok\n%2")
    local err, sok, serr, received = dialogue(NO_SIZE .. "C: MAIL FROM:<a@example.org>\n" .. tail,
      function(c) return c:sendmail(m) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    local sent = check.data_of(received)
    assert.is_nil(sent:find("[\128-\255]"))
    assert.is_nil(sent:find("Bcc", 1, true))
    local same, why, ctes = check.compare(tostring(m), sent)
    assert.is_true(same, why)
    assert.same({ "quoted-printable" }, ctes)
  end)

  it("refuses before MAIL what cannot be re-encoded (kind usage)", function()
    local cases = {
      { "DKIM-Signature: v=1; d=example.org; s=x\r\n" .. MSG, "DKIM%-Signature" },
      { "From: a@example.org\r\nTo: b@example.org\r\n\r\nGrüße ohne MIME\r\n", "non%-MIME" },
      { MSG:gsub("Subject: downgrade", "Subject: Grüße"), "SMTPUTF8" },
    }
    for _, case in ipairs(cases) do
      local err, _, _, received = dialogue(EHLO_7BIT, function(c) return c:sendmail(case[1]) end)
      expect_usage_before_mail(err, received, case[2])
    end
  end)

  it("downgrade = false keeps the refusal of 8-bit data (smtp.send too)", function()
    local err, _, _, received = dialogue(EHLO_7BIT, function(c) return c:sendmail(MSG, { downgrade = false }) end)
    assert.equal("permanent", err.kind)
    assert.truthy(err.message:find("8BITMIME", 1, true))
    assert.is_nil(received:find("MAIL", 1, true))
    local server = scripted.start(EHLO_7BIT .. "C: QUIT\nS: 221 bye\n")
    local ok, e = pcall(smtp.send, { host = "127.0.0.1", port = server.port, timeout = 5,
      local_name = "client.example", raw = MSG, downgrade = false })
    server:result()
    assert.is_false(ok)
    assert.equal("permanent", e.kind)
  end)
end)

describe("lines over 998 octets (RFC 5321 4.5.3.1.6)", function()
  it("re-encodes the MIME part that has one, even for an 8BITMIME server", function()
    local m = MSG:gsub("\r\nplain\r\n", "\r\n" .. ("long "):rep(300) .. "\r\n")
    local err, sok, serr, received = dialogue(EHLO_8BIT .. "C: MAIL FROM:<a@example.org> BODY=8BITMIME\n" .. TAIL,
      function(c) return c:sendmail(m) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    local sent = check.data_of(received)
    local same, why, ctes = check.compare(m, sent)
    assert.is_true(same, why)
    -- 8-bit parts stay as they were: the server takes them.
    assert.same({ "8bit", "8bit", "quoted-printable", "8bit" }, ctes)
  end)

  it("refuses a non-MIME message with one before MAIL", function()
    local m = "From: a@example.org\r\nTo: b@example.org\r\n\r\n" .. ("x"):rep(999) .. "\r\n"
    local err, _, _, received = dialogue(EHLO_8BIT, function(c) return c:sendmail(m) end)
    expect_usage_before_mail(err, received, "998")
  end)
end)
