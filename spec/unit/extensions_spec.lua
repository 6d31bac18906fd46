-- EHLO lines -> capability table, and smtp.auth_mechanisms.
local extensions = require "smtp.extensions"
local smtp = require "smtp"

describe("smtp.extensions", function()
  it("parses keywords, SIZE and AUTH", function()
    local ext = extensions.parse({ "mx.example.org hello", "PIPELINING", "SIZE 52428800", "8BITMIME",
      "AUTH PLAIN LOGIN", "STARTTLS", "DSN", "ENHANCEDSTATUSCODES", "smtputf8", "X-FOO bar baz" })
    assert.same({ PIPELINING = true, SIZE = 52428800, ["8BITMIME"] = true, AUTH = { "PLAIN", "LOGIN" },
      STARTTLS = true, DSN = true, ENHANCEDSTATUSCODES = true, SMTPUTF8 = true, ["X-FOO"] = "bar baz" }, ext)
  end)

  it("treats SIZE without a number as no announced limit", function()
    assert.equal(0, extensions.parse({ "mx", "SIZE" }).SIZE)
  end)

  it("merges the old AUTH= form", function()
    assert.same({ "LOGIN", "PLAIN", "CRAM-MD5" },
      extensions.parse({ "mx", "AUTH=LOGIN PLAIN", "AUTH login cram-md5" }).AUTH)
  end)

  it("ignores the greeting line", function()
    assert.same({}, extensions.parse({ "PIPELINING.example.org" }))
  end)
end)

describe("smtp.auth_mechanisms", function()
  it("returns the AUTH mechanisms of a helo response", function()
    assert.same({ "SCRAM-SHA-256", "PLAIN" },
      smtp.auth_mechanisms({ "mx", "PIPELINING", "AUTH SCRAM-SHA-256 PLAIN" }))
    assert.same({}, smtp.auth_mechanisms({ "mx" }))
  end)

  it("raises usage for a non-table", function()
    local ok, err = pcall(smtp.auth_mechanisms, "AUTH PLAIN")
    assert.is_false(ok)
    assert.equal("usage", err.kind)
  end)
end)
