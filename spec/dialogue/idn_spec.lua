-- Internationalised domains (issue 25 item 3) against a scripted server
-- that offers neither SMTPUTF8 nor 8BITMIME: the envelope goes with
-- A-label domains (libidn2), a non-ASCII local part is refused before
-- MAIL, and a server with SMTPUTF8 gets the U-labels. The transcript
-- asserts every line; the bytes the server stored are read back.
local smtp = require "smtp"
local scripted = require "helpers.scripted"

local RAW = "From: sender@example.org\r\nTo: user@example.org\r\nSubject: idn\r\n\r\nbody\r\n"

-- No SMTPUTF8, no 8BITMIME: a plain 7-bit server.
local EHLO_7BIT = [[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250 ENHANCEDSTATUSCODES
]]

local EHLO_7BIT_PIPE = [[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250-PIPELINING
S: 250 ENHANCEDSTATUSCODES
]]

local function dialogue(transcript, fn, copts)
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

local function expect_usage(err)
  assert.is_true(smtp.Error.is(err), "expected an smtp.Error, got " .. tostring(err))
  assert.equal("usage", err.kind)
end

describe("internationalised domains without SMTPUTF8", function()
  it("sends the envelope with A-label domains, one command at a time", function()
    local err, sok, serr, received = dialogue(EHLO_7BIT .. [[
C: MAIL FROM:<sender@xn--bcher-kva.example>
S: 250 ok
C: RCPT TO:<user@xn--bcher-kva.example>
S: 250 ok
C: RCPT TO:<info@xn--fa-hia.de>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 queued
]], function(c)
      local report = c:sendmail(RAW, { from = "sender@bücher.example",
        to = { "user@Bücher.EXAMPLE", "info@faß.de" } })
      -- The report names the recipients as the caller gave them.
      assert.same({ "user@Bücher.EXAMPLE", "info@faß.de" }, report.accepted)
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    -- What the server stored: ASCII only, the message unchanged.
    assert.is_nil(received:find("[\128-\255]"))
    assert.truthy(received:find("\r\n" .. RAW .. ".\r\n", 1, true))
  end)

  it("sends the A-label envelope in one pipelined write", function()
    local err, sok, serr = dialogue(EHLO_7BIT_PIPE .. [[
C: MAIL FROM:<sender@xn--mil-qla.xn--bcher-kva.example>
C: RCPT TO:<user@xn--r8jz45g.xn--zckzah>
C: DATA
S: 250 ok
S: 250 ok
S: 354 go
BODY
S: 250 queued
]], function(c)
      c:sendmail(RAW, { from = "sender@mäil.bücher.example", to = { "user@例え.テスト" } })
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)

  it("refuses a non-ASCII local part (kind usage) before MAIL is sent", function()
    local err, sok, serr, received = dialogue(EHLO_7BIT, function(c)
      c:sendmail(RAW, { from = "sender@example.org", to = { "jürgen@bücher.example" } })
    end)
    expect_usage(err)
    assert.equal("not_sent", err.outcome)
    assert.truthy(err.message:find("jürgen@bücher.example", 1, true), err.message)
    assert.truthy(err.message:find("SMTPUTF8", 1, true), err.message)
    assert.is_true(sok, serr)
    assert.is_nil(received:find("MAIL", 1, true))
  end)

  it("refuses a non-ASCII local part of the sender too, also when pipelining", function()
    local err, _, _, received = dialogue(EHLO_7BIT_PIPE, function(c)
      c:sendmail(RAW, { from = "josé@bücher.example", to = { "user@bücher.example" } })
    end)
    expect_usage(err)
    assert.truthy(err.message:find("josé@bücher.example", 1, true), err.message)
    assert.is_nil(received:find("MAIL", 1, true))
  end)

  it("refuses a domain libidn2 rejects (kind usage), naming the domain and the reason", function()
    local err, _, _, received = dialogue(EHLO_7BIT, function(c)
      c:sendmail(RAW, { from = "sender@example.org", to = { "user@-bücher.example" } })
    end)
    expect_usage(err)
    assert.truthy(err.message:find("-bücher.example", 1, true), err.message)
    assert.truthy(err.message:find("hyphen", 1, true), err.message)
    assert.is_nil(received:find("MAIL", 1, true))
  end)

  it("converts the domains of the low-level mail() and rcpt() commands", function()
    local err, sok, serr = dialogue(EHLO_7BIT .. [[
C: MAIL FROM:<sender@xn--bcher-kva.example>
S: 250 ok
C: RCPT TO:<user@xn--bcher-kva.example>
S: 250 ok
C: QUIT
S: 221 bye
]], function(c)
      c:mail("sender@bücher.example")
      c:rcpt({ address = "user@bücher.example" })
      c:quit()
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)

  it("keeps an smtp.message with a U-label in its header kind permanent (its header needs SMTPUTF8)", function()
    local msg = smtp.message { from = "sender@example.org", to = "user@bücher.example", subject = "s", text = "b" }
    local err, _, _, received = dialogue(EHLO_7BIT, function(c) c:sendmail(msg) end)
    assert.is_true(smtp.Error.is(err), tostring(err))
    assert.equal("permanent", err.kind)
    assert.is_nil(received:find("MAIL", 1, true))
  end)
end)

describe("internationalised domains with SMTPUTF8", function()
  it("keeps the U-labels and asks for SMTPUTF8", function()
    local err, sok, serr, received = dialogue([[
S: 220 mx.example.org ESMTP
C: EHLO client.example
S: 250-mx.example.org
S: 250 SMTPUTF8
C: MAIL FROM:<sender@bücher.example> SMTPUTF8
S: 250 ok
C: RCPT TO:<jürgen@bücher.example>
S: 250 ok
C: DATA
S: 354 go
BODY
S: 250 queued
]], function(c)
      c:sendmail(RAW, { from = "sender@bücher.example", to = { "jürgen@bücher.example" } })
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.is_nil(received:find("xn--", 1, true))
  end)
end)

describe("the EHLO name", function()
  it("goes as A-labels, with or without SMTPUTF8", function()
    local err, sok, serr = dialogue([[
S: 220 mx.example.org ESMTP
C: EHLO xn--mil-qla.xn--bcher-kva.example
S: 250-mx.example.org
S: 250 SMTPUTF8
C: QUIT
S: 221 bye
]], function(c)
      c:helo()
      c:quit()
    end, { local_name = "mäil.bücher.example" })
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)

  it("that libidn2 refuses is kind usage before EHLO is sent", function()
    local err, _, _, received = dialogue([[
S: 220 mx.example.org ESMTP
STALL
]], function(c) c:helo() end, { local_name = "a.\240\159\146\169.example" })
    expect_usage(err)
    assert.truthy(err.message:find("EHLO name", 1, true), err.message)
    assert.equal("", received)
  end)
end)
