-- smtp.core.idna_to_ascii (libidn2, UTS 46 non-transitional) and
-- smtp.idna on top of it (issue 25 item 3); DKIM d= and the connect host
-- in A-labels. Expected A-labels are RFC 3492 Punycode worked by hand or
-- by Python's codec, not by the code under test.
local core = require "smtp.core"
local idna = require "smtp.idna"
local smtp = require "smtp"
local Error = require "smtp.error"

local function usage_error(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected a usage error")
  assert.is_true(Error.is(err), "not an smtp.Error: " .. tostring(err))
  assert.equal("usage", err.kind, tostring(err))
  return err
end

describe("core.idna_to_ascii", function()
  it("turns U-labels into A-labels", function()
    assert.equal("xn--bcher-kva.example", core.idna_to_ascii("bücher.example"))
    assert.equal("xn--mil-qla.xn--bcher-kva.example", core.idna_to_ascii("mäil.bücher.example"))
    assert.equal("xn--r8jz45g.xn--zckzah", core.idna_to_ascii("例え.テスト"))
  end)

  it("maps as UTS 46 does: case folded, NFC, ideographic full stop", function()
    assert.equal("xn--bcher-kva.example", core.idna_to_ascii("BÜCHER.Example"))
    -- u + U+0308 COMBINING DIAERESIS composes to ü.
    assert.equal("xn--bcher-kva.example", core.idna_to_ascii("bu\204\136cher.example"))
    -- U+3002 IDEOGRAPHIC FULL STOP separates labels.
    assert.equal("xn--bcher-kva.example", core.idna_to_ascii("bücher\227\128\130example"))
  end)

  it("is non-transitional: ß stays ß (IDNA2008), not ss (IDNA2003)", function()
    assert.equal("xn--fa-hia.de", core.idna_to_ascii("faß.de"))
  end)

  it("leaves valid A-labels and ASCII names alone", function()
    assert.equal("xn--bcher-kva.example", core.idna_to_ascii("xn--bcher-kva.example"))
    assert.equal("mx.example.org", core.idna_to_ascii("mx.example.org"))
  end)

  it("refuses invalid names with nil, usage and libidn2's reason", function()
    local cases = {
      { "-bücher.example", "hyphen" },
      { "a.\240\159\146\169.example", "disallowed" }, -- U+1F4A9, a symbol
      { "xn--zz.example", "punycode" },
      { "b\255cher.example", "" },                    -- not UTF-8
      { "", "empty" },
      { "b\0ücher.example", "NUL" },
      { ("ü"):rep(600), "1024" },
    }
    for _, c in ipairs(cases) do
      local a, kind, why = core.idna_to_ascii(c[1])
      assert.is_nil(a, c[1])
      assert.equal("usage", kind)
      assert.is_string(why)
      assert.truthy(why:lower():find(c[2]:lower(), 1, true), why)
    end
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() core.idna_to_ascii({}) end)
  end)
end)

describe("smtp.idna", function()
  it("to_ascii converts and returns ASCII names unchanged", function()
    assert.equal("xn--bcher-kva.example", idna.to_ascii("bücher.example"))
    assert.equal("Example.ORG", idna.to_ascii("Example.ORG"))
  end)

  it("to_ascii does not call libidn2 for an ASCII name", function()
    local real = core.idna_to_ascii
    local calls = 0
    core.idna_to_ascii = function(...) calls = calls + 1; return real(...) end
    local ok, err = pcall(function()
      idna.to_ascii("mx.example.org")
      idna.ascii_address("user@example.org")
      idna.to_ascii("bücher.example")
    end)
    core.idna_to_ascii = real
    assert.is_true(ok, tostring(err))
    assert.equal(1, calls)
  end)

  it("to_ascii raises usage naming the domain and the reason", function()
    local err = usage_error(idna.to_ascii, "-bücher.example", "recipient")
    assert.truthy(err.message:find("recipient '-bücher.example'", 1, true), err.message)
    assert.truthy(err.message:find("hyphen", 1, true), err.message)
  end)

  it("ascii_address converts the domain of an ASCII local part only", function()
    assert.equal("user@xn--bcher-kva.example", idna.ascii_address("user@bücher.example"))
    assert.equal('"a@b"@xn--bcher-kva.example', idna.ascii_address('"a@b"@bücher.example'))
    assert.equal("user@example.org", idna.ascii_address("user@example.org"))
    assert.equal("", idna.ascii_address(""))
    assert.is_nil(idna.ascii_address("jürgen@bücher.example"))
    assert.is_nil(idna.ascii_address("jürgen@example.org"))
  end)
end)

describe("DKIM d= in A-labels", function()
  local dkim = require "smtp.dkim"
  local keys = require "helpers.dkim_keys"

  it("signs an internationalised domain as its A-label, and dkimpy verifies it there", function()
    local k = keys.make()
    local m = smtp.message { from = "zoe@example.org", to = "bob@example.net", subject = "idn", text = "hi\n",
      dkim = { domain = "Bücher.example", selector = "s1", key_pem = k.rsa2048.pem,
        identity = "zoe@mail.bücher.example" } }
    local s = tostring(m)
    assert.truthy(s:find("d=xn--bcher-kva.example;", 1, true), s)
    assert.truthy(s:find("i=zoe@mail.xn--bcher-kva.example;", 1, true), s)
    assert.is_nil(s:find("[\128-\255]"))
    local d = core.dotstuffer(false)
    local ok, line = keys.verify(k.rsa2048, "s1", "xn--bcher-kva.example", d:encode(s) .. d:finish())
    assert.is_true(ok, line)
  end)

  it("refuses a signing domain libidn2 refuses (kind usage)", function()
    local k = keys.make()
    local err = usage_error(dkim.options, { domain = "-bücher.example", selector = "s1", key_pem = k.rsa2048.pem })
    assert.truthy(err.message:find("dkim.domain", 1, true), err.message)
  end)
end)

describe("smtp.connect host", function()
  it("that libidn2 refuses is kind usage before any connection", function()
    local err = usage_error(smtp.connect, { host = "-bücher.example", port = 1, timeout = 1 })
    assert.truthy(err.message:find("-bücher.example", 1, true), err.message)
  end)

  it("nor is a proxy host libidn2 refuses (it is looked up in DNS too)", function()
    local err = usage_error(smtp.connect, { host = "mx.example.org", port = 25, timeout = 1,
      proxy = { type = "socks5", host = "-proxy-ü.example", port = 1080 } })
    assert.truthy(err.message:find("proxy.host", 1, true), err.message)
  end)
end)
