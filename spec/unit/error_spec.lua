-- smtp.Error: kinds, fields, tostring, is, meaning, retryable.
local smtp = require "smtp"
local Error = smtp.Error

describe("smtp.Error", function()
  it("rejects an unknown kind", function()
    assert.has_error(function() Error.new { kind = "oops" } end)
  end)

  it("formats one readable line", function()
    local e = Error.new { kind = "permanent", code = 550, enhanced = "5.1.1",
      command = "RCPT TO:<x@example.org>", message = "user unknown", recipient = "x@example.org" }
    assert.equal("smtp: permanent 550 5.1.1 at RCPT TO:<x@example.org>: user unknown", tostring(e))
    assert.equal("Bad destination mailbox address", e.meaning)
    assert.is_false(e.retryable)
  end)

  it("keeps CR/LF out of tostring", function()
    local e = Error.new { kind = "protocol", message = "a\r\nb" }
    assert.equal("smtp: protocol: a b", tostring(e))
  end)

  it("prints server control bytes escaped (terminal escape injection) but keeps them raw in the fields", function()
    local e = Error.from_reply({ code = 550, enhanced = "5.7.1", lines = { "no \27[2J\7 way", "bye\127" } }, "DATA")
    local text = tostring(e)
    assert.equal("smtp: permanent 550 5.7.1 at DATA: no \\x1b[2J\\x07 way bye\\x7f", text)
    assert.is_nil(text:find("[%z\1-\8\10-\31\127]"))
    assert.equal("no \27[2J\7 way bye\127", e.message)
    assert.same({ "no \27[2J\7 way", "bye\127" }, e.lines)
  end)

  it("builds reply errors by class", function()
    local t = Error.from_reply({ code = 451, enhanced = "4.3.0", lines = { "try", "later" } }, "DATA")
    assert.equal("transient", t.kind)
    assert.equal("try later", t.message)
    assert.same({ "try", "later" }, t.lines)
    assert.is_true(t.retryable)
    assert.equal("Other or undefined mail system status", t.meaning)
    local p = Error.from_reply({ code = 250, lines = { "ok" } }, "DATA")
    assert.equal("protocol", p.kind)
  end)

  it("marks timeouts and io failures retryable unless the outcome is unknown", function()
    assert.is_true(Error.new { kind = "timeout" }.retryable)
    assert.is_true(Error.new { kind = "io", outcome = "not_sent" }.retryable)
    assert.is_false(Error.new { kind = "io", outcome = "unknown" }.retryable)
    assert.is_false(Error.new { kind = "usage" }.retryable)
    assert.is_true(Error.temporary(Error.new { kind = "transient", code = 421 }))
  end)

  it("recognises its objects by metatable only", function()
    assert.is_true(Error.is(Error.new { kind = "io" }))
    assert.is_false(Error.is({ kind = "io", message = "x" }))
    assert.is_false(Error.is("smtp: io"))
    assert.is_false(Error.is(nil))
  end)

  it("knows the RFC 3463 meanings", function()
    assert.equal("Mailbox full", Error.meaning_of("4.2.2"))
    assert.equal("Authentication credentials invalid", Error.meaning_of("5.7.8"))
    assert.is_nil(Error.meaning_of("5.99.99"))
    assert.is_nil(Error.meaning_of(nil))
  end)
end)
