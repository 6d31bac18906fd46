-- RFC 5322 address lists: display names, quoting, comments, groups, and
-- the CR/LF/NUL guard.
local address = require "smtp.address"
local V = require "helpers.luaver"

local function addrs(list)
  local out = {}
  for i, a in ipairs(list) do out[i] = a.address end
  return out
end

describe("smtp.address", function()
  describe("parse_list()", function()
    local rows = {
      { "a bare address", "a@example.org", { { address = "a@example.org" } } },
      { "a display name", "Alice <a@example.org>", { { name = "Alice", address = "a@example.org" } } },
      { "a quoted name with a comma", '"Doe, John" <j@example.org>, b@example.org',
        { { name = "Doe, John", address = "j@example.org" }, { address = "b@example.org" } } },
      { "escapes in a quoted name", '"say \\"hi\\"" <h@example.org>', { { name = 'say "hi"', address = "h@example.org" } } },
      { "comments", "a@example.org (Alice (the first)), Bob <b@example.org> (work)",
        { { address = "a@example.org" }, { name = "Bob", address = "b@example.org" } } },
      { "a group", "team: a@example.org, Bob <b@example.org>;, c@example.org",
        { { address = "a@example.org" }, { name = "Bob", address = "b@example.org" }, { address = "c@example.org" } } },
      { "an empty group", "undisclosed-recipients:;", {} },
      { "a quoted local part", '"john smith"@example.org', { { address = '"john smith"@example.org' } } },
      { "UTF-8 addresses", "Jürgen <jürgen@bücher.example>", { { name = "Jürgen", address = "jürgen@bücher.example" } } },
      { "empty items", "a@example.org,, ,b@example.org", { { address = "a@example.org" }, { address = "b@example.org" } } },
      { "a source route", "<@relay.example:a@example.org>", { { address = "a@example.org" } } },
      { "a domain literal", "a@[IPv6:2001:db8::1], b@[192.0.2.1]",
        { { address = "a@[IPv6:2001:db8::1]" }, { address = "b@[192.0.2.1]" } } },
      { "an unquoted multi-word name", "Alice B. Smith <a@example.org>",
        { { name = "Alice B. Smith", address = "a@example.org" } } },
      { "RFC 2047 names", "=?UTF-8?B?SsO8cmdlbg==?= =?utf-8?Q?_M=C3=BCller?= <j@x.org>",
        { { name = "Jürgen Müller", address = "j@x.org" } } },
      { "an encoded word in another charset, kept", "=?koi8-r?B?8NLJ?= <k@x.org>",
        { { name = "=?koi8-r?B?8NLJ?=", address = "k@x.org" } } },
      { "a comment inside the name", "Bob (the builder) Smith <b@x.org>",
        { { name = "Bob Smith", address = "b@x.org" } } },
      { "tabs as white space", "Alice\t<a@x.org>,\tb@x.org",
        { { name = "Alice", address = "a@x.org" }, { address = "b@x.org" } } },
      { "two groups", "g1: a@x.org;, g2: b@x.org, c@x.org;",
        { { address = "a@x.org" }, { address = "b@x.org" }, { address = "c@x.org" } } },
    }
    for _, row in ipairs(rows) do
      it("parses " .. row[1], function()
        assert.same(row[3], address.parse_list(row[2]))
      end)
    end

    for _, bad in ipairs({ "a@example.org\r\nBcc: x@y", "a\0@example.org", "<a@example.org", '"open <a@x>',
      "(open a@x", "no-at-sign", "@example.org", "a@", "Alice <>", "x: a@example.org", "a; b",
      "john smith@example.org", "a@b@example.org", "a@exa mple.org", "<a@x.org> trailing", "a@x.org>", "a(b@x.org",
      "g: <a@x.org>: b@x.org;", "a,b@x.org", "<a@[1.2.3.4>", '"unterminated\\', "x@y.org (ok), Bob <b@x.org\n>",
      "a@ex(ample).org" }) do
      it("refuses " .. ("%q"):format(bad) .. " with kind usage", function()
        local ok, err = pcall(address.parse_list, bad)
        assert.is_false(ok)
        assert.equal("usage", err.kind)
      end)
    end
  end)

  describe("parse()", function()
    it("takes strings and tables, one address only", function()
      assert.same({ name = "A", address = "a@x.org" }, address.parse("A <a@x.org>"))
      assert.same({ name = "A", address = "a@x.org" }, address.parse({ name = "A", address = "a@x.org" }))
      assert.has_error(function() address.parse("a@x.org, b@x.org") end)
      assert.has_error(function() address.parse({ address = "a@x.org\n" }) end)
    end)
  end)

  describe("format()", function()
    it("quotes names with specials and encodes non-ASCII ones", function()
      assert.equal("a@x.org", address.format({ address = "a@x.org" }))
      assert.equal("Alice <a@x.org>", address.format({ name = "Alice", address = "a@x.org" }))
      assert.equal('"Doe, John" <j@x.org>', address.format({ name = "Doe, John", address = "j@x.org" }))
      assert.equal('"a \\"b\\"" <j@x.org>', address.format({ name = 'a "b"', address = "j@x.org" }))
      assert.equal("=?UTF-8?Q?J=C3=BCrgen?= <j@x.org>", address.format({ name = "Jürgen", address = "j@x.org" }))
      assert.equal("=?UTF-8?B?5pel5pys6Kqe?= <j@x.org>", address.format({ name = "日本語", address = "j@x.org" }))
      assert.equal("Alice B Smith <a@x.org>", address.format("Alice B Smith <a@x.org>"))
      assert.equal('"Alice B. Smith" <a@x.org>', address.format("Alice B. Smith <a@x.org>"))
      assert.equal('"=?x?" <a@x.org>', address.format({ name = "=?x?", address = "a@x.org" }))
      assert.equal("=?UTF-8?Q?tab=09here?= <a@x.org>", address.format({ name = "tab\there", address = "a@x.org" }))
      assert.equal("a@x.org", address.format({ name = "", address = "a@x.org" }))
    end)

    it("round-trips through parse_list", function()
      for _, a in ipairs({ { name = "Doe, John", address = "j@x.org" }, { name = 'q "x" \\', address = "q@x.org" },
        { name = "Jürgen Müller", address = "j@x.org" }, { name = ("Ünïcödé "):rep(12), address = "u@x.org" },
        { name = "日本語のテキスト", address = "jp@x.org" }, { name = "  spaced  out ", address = "s@x.org" } }) do
        assert.same({ a }, address.parse_list(address.format(a)))
      end
    end)

    it("never splits a UTF-8 character across encoded words", function()
      local name = string.rep("ä€", 40)
      local words = table.concat(address.encode_phrase(name), " ")
      local core = require "smtp.core"
      local joined = {}
      for w in words:gmatch("=%?UTF%-8%?B%?(.-)%?=") do
        assert.is_true(#("=?UTF-8?B?" .. w .. "?=") <= 75)
        local raw = core.b64_decode(w)
        assert.truthy(V.utf8_valid(raw), "word is not whole UTF-8")
        joined[#joined + 1] = raw
      end
      assert.equal(name, table.concat(joined))
    end)
  end)

  it("flags internationalised addresses for SMTPUTF8", function()
    assert.is_true(address.needs_smtputf8("jürgen@example.org"))
    assert.is_true(address.needs_smtputf8("a@bücher.example"))
    assert.is_false(address.needs_smtputf8("a@example.org"))
  end)

  it("check_arg refuses CR, LF and NUL", function()
    for _, v in ipairs({ "a\r", "a\n", "a\0", 42 }) do
      local ok, err = pcall(address.check_arg, v, "thing")
      assert.is_false(ok)
      assert.equal("usage", err.kind)
    end
    assert.equal("fine", address.check_arg("fine"))
  end)

  it("lists addresses in order", function()
    assert.same({ "a@x.org", "b@x.org" }, addrs(address.parse_list("A <a@x.org>, b@x.org")))
  end)
end)
