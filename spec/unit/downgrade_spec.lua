-- smtp.downgrade: re-encoding 8-bit and long-line parts (RFC 6152 3,
-- RFC 5321 4.5.3.1.6), read back with Python's email package.
local smtp = require "smtp"
local downgrade = require "smtp.downgrade"
local check = require "helpers.downgrade_check"
local core = require "smtp.core"

local function crlf(s) return (s:gsub("\r?\n", "\r\n")) end

local HEAD = crlf [[
From: a@example.org
To: b@example.org
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=
MIME-Version: 1.0
]]

-- Nested multipart: 8-bit text, a 7-bit part, a message/rfc822 with an
-- 8-bit body, binary-ish data labelled 8bit, lines that look like
-- boundaries but are not.
local NESTED = HEAD .. crlf([[
Content-Type: multipart/mixed; boundary="outer"

This is a preamble.
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Köln, trailing space@SP@
--outerX is not a boundary, nor is --inner-x
-- a signature dash line
--inner
Content-Type: text/html; charset=utf-8

<p>Grüße = ünïcödé</p>
--inner--
inner epilogue
--outer
Content-Type: text/plain; charset=us-ascii
X-Kept:   odd   spacing	and tab

plain ascii stays as it is
--outer
Content-Type: message/rfc822

From: c@example.org
Subject: inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Innere Nachricht: äöü
--outer
Content-Type: application/octet-stream
Content-Transfer-Encoding: 8bit

]]):gsub("@SP@", " ") .. "\255\254\0011\200\201\202 binary\r\n--outer--\r\n"

local function rewrite(m, eightbit)
  return downgrade.rewrite(m, { eightbit = eightbit ~= false })
end

local function raises_usage(fn, pattern)
  local ok, err = pcall(fn)
  assert.is_false(ok)
  assert.is_true(smtp.Error.is(err), tostring(err))
  assert.equal("usage", err.kind)
  if pattern then assert.truthy(err.message:find(pattern), err.message) end
end

describe("smtp.downgrade", function()
  it("re-encodes nested 8-bit parts; Python decodes the same bytes", function()
    local out, changed = rewrite(NESTED)
    assert.is_true(changed)
    assert.is_false(core.byte_flags(out))
    local same, why, ctes = check.compare(NESTED, out)
    assert.is_true(same, why)
    -- The html is more 8-bit than not: base64.
    assert.same({ "quoted-printable", "base64", "7bit", "quoted-printable", "base64" }, ctes)
  end)

  it("keeps headers, boundaries, preamble and 7-bit parts byte for byte", function()
    local out = rewrite(NESTED)
    assert.equal(HEAD, out:sub(1, #HEAD))
    for _, kept in ipairs({ "This is a preamble.\r\n--outer\r\n",
      "--outerX is not a boundary, nor is --inner-x\r\n-- a signature dash line\r\n",
      "\r\n--inner--\r\ninner epilogue\r\n--outer\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        .. "X-Kept:   odd   spacing\tand tab\r\n\r\nplain ascii stays as it is\r\n--outer\r\n",
      "From: c@example.org\r\nSubject: inner\r\n", "\r\n--outer--\r\n" }) do
      assert.truthy(out:find(kept, 1, true), kept)
    end
    -- The 8bit label of a multipart's own header never stays.
    assert.is_nil(out:find("Content-Transfer-Encoding: 8bit", 1, true))
  end)

  it("chooses quoted-printable for mostly-ASCII text, base64 otherwise", function()
    local body = ("Привет мир, это текст. "):rep(10)
    local m = HEAD .. "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
      .. body .. "\r\n"
    local out = rewrite(m)
    local same, why, ctes = check.compare(m, out)
    assert.is_true(same, why)
    assert.same({ "base64" }, ctes)
    m = HEAD .. "Content-Type: text/plain; charset=utf-8\r\n\r\nfast nur ASCII, ein ä\r\n"
    out = rewrite(m)
    same, why, ctes = check.compare(m, out)
    assert.is_true(same, why)
    assert.same({ "quoted-printable" }, ctes)
    -- A single part ends with a line end; quoted-printable's is soft.
    m = HEAD .. "Content-Type: text/plain; charset=utf-8\r\n\r\nno final line end: ä"
    out = rewrite(m)
    assert.equal("=\r\n", out:sub(-3))
    assert.is_true((check.compare(m, out)))
  end)

  it("reads LF line ends as the DATA encoder sends them (CRLF)", function()
    local lf = NESTED:gsub("\r\n", "\n")
    local out = rewrite(lf)
    local same, why = check.compare(NESTED, out)
    assert.is_true(same, why)
  end)

  it("re-encodes only the part with a line over 998 octets when 8-bit may stay", function()
    local long = ("x"):rep(1500)
    local m = HEAD .. crlf [[
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

ünchanged 8-bit
--b
Content-Type: text/plain

]] .. long .. "\r\nshort\r\n--b--\r\n"
    local out, changed = rewrite(m, false)
    assert.is_true(changed)
    assert.truthy(out:find("\r\n\r\nünchanged 8-bit\r\n--b\r\n", 1, true))
    local same, why, ctes = check.compare(m, out)
    assert.is_true(same, why)
    assert.same({ "8bit", "quoted-printable" }, ctes)
    for line in out:gmatch("[^\n]*") do assert.is_true(#line <= 999) end
  end)

  it("returns a clean message as it is", function()
    local m = HEAD .. "Content-Type: text/plain\r\n\r\nclean\r\n"
    local out, changed = rewrite(m)
    assert.equal(m, out)
    assert.is_false(changed)
  end)

  it("streams a chunk function or a file to the same bytes as a string", function()
    local want = rewrite(NESTED)
    local pos = 1
    local f = downgrade.rewrite(function()
      if pos > #NESTED then return nil end
      local c = NESTED:sub(pos, pos + 6)
      pos = pos + 7
      return c
    end, { eightbit = true })
    assert.equal(want, f:read("*a"))
    local tmp = io.tmpfile()
    tmp:write("ignored prefix", NESTED)
    tmp:seek("set", #"ignored prefix")
    f = downgrade.rewrite(tmp, { eightbit = true })
    assert.equal(want, f:read("*a"))
  end)

  it("refuses what it cannot re-encode without breaking it (kind usage)", function()
    raises_usage(function()
      rewrite("DKIM-Signature: v=1; d=example.org\r\n" .. NESTED)
    end, "DKIM%-Signature")
    raises_usage(function()
      rewrite("From: a@example.org\r\nTo: b@example.org\r\n\r\nGrüße, no MIME\r\n")
    end, "non%-MIME")
    raises_usage(function()
      rewrite("From: a@example.org\r\nTo: b@example.org\r\n\r\n" .. ("x"):rep(999) .. "\r\n", false)
    end, "998")
    raises_usage(function()
      rewrite(HEAD .. "Subject2: Grüße\r\nContent-Type: text/plain\r\n\r\nä\r\n")
    end, "SMTPUTF8")
    raises_usage(function()
      rewrite(HEAD .. "Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nä\r\n")
    end, "binary")
    raises_usage(function()
      rewrite(HEAD .. "Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nä\r\n--x--\r\n")
    end, "boundary")
    raises_usage(function()
      rewrite(HEAD .. "Content-Type: multipart/mixed; boundary=x\r\n\r\npreämble\r\n--x\r\n\r\nä\r\n--x--\r\n")
    end, "preamble")
    -- A DKIM-Signature on a message that needs no change is no problem.
    local clean = "DKIM-Signature: v=1\r\n" .. HEAD .. "\r\nclean\r\n"
    assert.equal(clean, (rewrite(clean)))
  end)
end)

describe("envelope.prepare with a 7-bit server", function()
  local envelope = require "smtp.envelope"
  local keys = require "helpers.dkim_keys"
  local SEVEN = function() return {} end

  local function drain(src)
    local out = {}
    for chunk in src do out[#out + 1] = chunk end
    return table.concat(out)
  end

  it("signs an smtp.message's own dkim over the re-encoded bytes", function()
    local k = keys.make()
    local m = smtp.message {
      from = "a@example.org", to = "b@example.org", subject = "x", text = "Grüße\n",
      transfer_encoding = "8bit",
      dkim = { domain = "example.org", selector = "sel", key_file = k.rsa2048.file },
    }
    local env = envelope.prepare(m, {}, SEVEN)
    local sent = drain(env.source)
    assert.is_nil(sent:find("[\128-\255]"))
    -- A signed stream's size is not known in advance: SIZE is left out.
    assert.is_true(env.size == nil or env.size == #sent)
    assert.equal("pass", keys.verify_all(k.rsa2048, "sel", "example.org", { sent })[1])
  end)

  it("asks for the server only when a string has 8-bit bytes", function()
    local asked = 0
    local function server() asked = asked + 1; return {} end
    envelope.prepare("From: a@example.org\r\nTo: b@example.org\r\n\r\nclean\r\n", {}, server)
    assert.equal(0, asked)
    envelope.prepare(HEAD .. "Content-Type: text/plain\r\n\r\nä\r\n", {}, server)
    assert.equal(1, asked)
    -- downgrade = false: neither asked nor re-encoded.
    local env = envelope.prepare(HEAD .. "Content-Type: text/plain\r\n\r\nä\r\n", { downgrade = false }, server)
    assert.equal(1, asked)
    assert.is_true(env.eightbit)
  end)
end)
