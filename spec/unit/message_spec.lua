-- smtp.message (lua/smtp/message.lua): MIME structure, transfer
-- encodings, generated headers, folding, injection refusals, envelope
-- helpers and the streaming source. No sockets, no outside parsers (the
-- #parseback spec has those).
local Message = require "smtp.message"
local core = require "smtp.core"

local FROM = "Alice <alice@example.org>"

local function build(spec)
  spec.from = spec.from or FROM
  return Message.new(spec)
end

-- Header block of a message or part, unfolded: { {name, value}, ... }.
local function headers_of(text)
  local head = text:match("^(.-\r\n)\r\n") or text
  local out = {}
  for line in head:gmatch("(.-)\r\n") do
    if line:find("^[ \t]") then
      out[#out][2] = out[#out][2] .. line
    else
      local n, v = line:match("^([^:]+):%s?(.*)$")
      out[#out + 1] = { n, v }
    end
  end
  return out
end

local function header(text, name)
  for _, h in ipairs(headers_of(text)) do
    if h[1]:lower() == name:lower() then return h[2] end
  end
end

local function body_of(text)
  return text:match("^.-\r\n\r\n(.*)$")
end

local function lines(text)
  local out = {}
  for l in text:gmatch("([^\n]*)\n") do out[#out + 1] = l:gsub("\r$", "") end
  return out
end

local function usage_error(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected a usage error")
  assert.equal("usage", type(err) == "table" and err.kind or tostring(err))
  return err
end

local function qp_decode(s)
  s = s:gsub("=\r\n", "")
  return (s:gsub("=(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

describe("smtp.message", function()
  describe("structure", function()
    it("makes a single text/plain part from text alone", function()
      local m = tostring(build { to = "b@x.org", subject = "Hi", text = "Hello\n" })
      assert.equal("text/plain; charset=UTF-8", header(m, "Content-Type"))
      assert.equal("7bit", header(m, "Content-Transfer-Encoding"))
      assert.equal("1.0", header(m, "MIME-Version"))
      assert.equal("Hello\r\n", body_of(m))
    end)

    it("makes multipart/alternative from text and html, text first", function()
      local m = tostring(build { to = "b@x.org", text = "plain", html = "<b>rich</b>" })
      local ct = header(m, "Content-Type")
      assert.matches('^multipart/alternative; *boundary="=_%x+"$', ct)
      local b = ct:match('boundary="(.-)"')
      local body = body_of(m)
      local p1 = body:find("text/plain", 1, true)
      local p2 = body:find("text/html", 1, true)
      assert.truthy(p1 and p2 and p1 < p2)
      assert.truthy(body:find("^%-%-" .. b:gsub("%p", "%%%0") .. "\r\n"))
      assert.truthy(body:find("\r\n%-%-" .. b:gsub("%p", "%%%0") .. "%-%-\r\n$"))
    end)

    it("wraps attachments in multipart/mixed", function()
      local m = tostring(build { to = "b@x.org", text = "see attached",
        attachments = { { data = "PDF", filename = "a.pdf" } } })
      assert.matches("^multipart/mixed", header(m, "Content-Type"))
      assert.truthy(m:find('Content-Type: application/pdf; name="a.pdf"', 1, true))
      assert.truthy(m:find('Content-Disposition: attachment; filename="a.pdf"', 1, true))
    end)

    it("puts inline parts in multipart/related with the root's type", function()
      local m = tostring(build { to = "b@x.org", text = "t", html = '<img src="cid:logo@x">',
        attachments = { { data = "PNG", filename = "logo.png", inline = true, content_id = "logo@x" },
          { data = "PDF", filename = "doc.pdf" } } })
      assert.matches("^multipart/mixed", header(m, "Content-Type"))
      assert.truthy(m:find('Content-Type: multipart/related; type="multipart/alternative";', 1, true))
      assert.truthy(m:find("Content-ID: <logo@x>\r\n", 1, true))
      assert.truthy(m:find("Content-Disposition: inline; filename=\"logo.png\"", 1, true))
      -- related comes before the PDF, alternative inside related
      assert.truthy(m:find("multipart/related", 1, true) < m:find("application/pdf", 1, true))
      assert.truthy(m:find("multipart/related", 1, true) < m:find("multipart/alternative;\r\n", 1, true))
    end)

    it("gives inline parts a Content-ID when none is given", function()
      local m = tostring(build { to = "b@x.org", html = "<p>x</p>",
        attachments = { { data = "PNG", filename = "i.png", inline = true } } })
      assert.truthy(m:find('type="text/html"', 1, true))
      assert.matches("Content%-ID: <%x+@example%.org>\r\n", m)
    end)

    it("makes an empty text part when there is no body at all", function()
      local m = tostring(build { to = "b@x.org", subject = "empty" })
      assert.equal("text/plain; charset=UTF-8", header(m, "Content-Type"))
    end)

    it("keeps attachments alone in multipart/mixed when there is no text", function()
      local m = tostring(build { to = "b@x.org", attachments = { { data = "x", filename = "x.bin", inline = true } } })
      assert.matches("^multipart/mixed", header(m, "Content-Type"))
      assert.truthy(m:find("application/octet-stream", 1, true))
    end)

    it("guesses content types from extensions and honours content_type", function()
      local m = tostring(build { to = "b@x.org", attachments = {
        { data = "x", filename = "photo.JPG" }, { data = "x", filename = "x.csv", content_type = "text/csv; charset=utf-8" } } })
      assert.truthy(m:find("Content-Type: image/jpeg;", 1, true))
      assert.truthy(m:find('Content-Type: text/csv; charset=utf-8; name="x.csv"', 1, true))
    end)
  end)

  describe("transfer encodings", function()
    local function part_for(text, extra)
      local spec = { to = "b@x.org", text = text }
      for k, v in pairs(extra or {}) do spec[k] = v end
      local m = tostring(build(spec))
      return header(m, "Content-Transfer-Encoding"), body_of(m), build(spec):requirements()
    end

    it("uses 7bit for short-lined ASCII and normalises LF to CRLF", function()
      local cte, body = part_for("a\nb\r\nc\n")
      assert.equal("7bit", cte)
      assert.equal("a\r\nb\r\nc\r\n", body)
    end)

    it("uses quoted-printable for mostly ASCII UTF-8 text", function()
      local text = "Grüße, Jürgen! This is a note in mostly English text.\n"
      local cte, body, req = part_for(text)
      assert.equal("quoted-printable", cte)
      assert.equal("Grüße, Jürgen! This is a note in mostly English text.\r\n", qp_decode(body))
      assert.is_false(req.eightbit)
    end)

    it("uses base64 for text that is mostly non-ASCII", function()
      local text = ("日本語のテキスト\n"):rep(3)
      local cte, body = part_for(text)
      assert.equal("base64", cte)
      assert.equal(text:gsub("\n", "\r\n"), core.b64_decode(body))
    end)

    it("uses quoted-printable for lines over 998 octets", function()
      local text = ("0123456789"):rep(200) .. "\n"
      local cte, body = part_for(text)
      assert.equal("quoted-printable", cte)
      for _, l in ipairs(lines(body)) do assert.is_true(#l <= 76) end
      assert.equal(text:gsub("\n", "\r\n"), qp_decode(body))
    end)

    it("encodes NUL, bare CR and control bytes", function()
      local cte, body = part_for("a\0b\rc\1\n")
      assert.equal("quoted-printable", cte)
      assert.equal("a=00b=0Dc=01\r\n", body)
    end)

    it("ends a quoted-printable single part with a soft break to keep the text exact", function()
      local _, body = part_for("Hello wörld")
      assert.equal("Hello w=C3=B6rld=\r\n", body)
    end)

    it("sends 8bit only when asked, and says so in requirements()", function()
      local cte, body, req = part_for("Grüße\n", { transfer_encoding = "8bit" })
      assert.equal("8bit", cte)
      assert.equal("Grüße\r\n", body)
      assert.is_true(req.eightbit)
      local cte2 = part_for(("x"):rep(1200) .. "ü", { transfer_encoding = "8bit" })
      assert.equal("quoted-printable", cte2)
    end)

    it("base64-encodes attachments in 76-column lines", function()
      math.randomseed(5)
      local t = {}
      for i = 1, 10000 do t[i] = string.char(math.random(0, 255)) end
      local data = table.concat(t)
      local m = tostring(build { to = "b@x.org", text = "x", attachments = { { data = data, filename = "r.bin" } } })
      local enc = m:match("filename=\"r.bin\"\r\n\r\n(.-)\r\n%-%-")
      for i, l in ipairs(lines(enc .. "\r\n")) do
        assert.is_true(#l == 76 or i == #lines(enc .. "\r\n"))
      end
      assert.equal(data, core.b64_decode(enc))
    end)
  end)

  describe("headers", function()
    it("generates Date, Message-ID and MIME-Version", function()
      local m = tostring(build { to = "b@x.org", text = "x" })
      assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d %+0000$", header(m, "Date"))
      assert.matches("^<%x+%.%d+@example%.org>$", header(m, "Message-ID"))
      assert.equal("1.0", header(m, "MIME-Version"))
    end)

    it("takes date as a string or a time, and message_id with or without brackets", function()
      local m = tostring(build { to = "b@x.org", date = 0, message_id = "abc@x" })
      assert.equal("Thu, 01 Jan 1970 00:00:00 +0000", header(m, "Date"))
      assert.equal("<abc@x>", header(m, "Message-ID"))
      local m2 = build { to = "b@x.org", date = "Mon, 1 Jan 2024 10:00:00 +0100", message_id = "<q@x>" }
      assert.equal("Mon, 1 Jan 2024 10:00:00 +0100", header(tostring(m2), "Date"))
      assert.equal("<q@x>", m2:message_id())
    end)

    it("writes From, Sender, Reply-To, To, Cc and never Bcc", function()
      local m = tostring(build { from = { "a@x.org", "Bee <b@x.org>" }, sender = "s@x.org",
        reply_to = "r@x.org", to = { { name = "Tom", address = "t@x.org" } }, cc = "c@x.org, d@x.org",
        bcc = "hidden@x.org" })
      assert.equal("a@x.org, Bee <b@x.org>", header(m, "From"))
      assert.equal("s@x.org", header(m, "Sender"))
      assert.equal("r@x.org", header(m, "Reply-To"))
      assert.equal("Tom <t@x.org>", header(m, "To"))
      assert.equal("c@x.org, d@x.org", header(m, "Cc"))
      assert.is_nil(header(m, "Bcc"))
      assert.is_nil(m:find("hidden", 1, true))
    end)

    it("keeps an empty group as given", function()
      local m = tostring(build { to = "undisclosed-recipients:;", bcc = "x@y.org" })
      assert.equal("undisclosed-recipients:;", header(m, "To"))
    end)

    it("keeps user headers in order, after the standard ones", function()
      local m = tostring(build { to = "b@x.org", headers = { { "X-First", "1" }, { "List-Id", "<l.x.org>" },
        { name = "X-Last", value = "ü" } } })
      local names = {}
      for _, h in ipairs(headers_of(m)) do names[#names + 1] = h[1] end
      local s = table.concat(names, ",")
      assert.truthy(s:find("Message-ID,X-First,List-Id,X-Last,MIME-Version", 1, true), s)
      assert.equal("=?UTF-8?B?w7w=?=", header(m, "X-Last"))
    end)

    local subjects = {
      { "ASCII", ("word "):rep(60) .. "end" },
      { "non-ASCII", ("Grüße aus Köln "):rep(12) },
      { "one 1,200-octet word", ("x"):rep(1200) },
      { "an encoded-word look-alike", "=?UTF-8?B?SGk=?= is not decoded" },
      { "emoji", ("😀"):rep(50) },
    }
    for _, s in ipairs(subjects) do
      it("folds a Subject with " .. s[1] .. " at 78 and never over 998", function()
        local m = tostring(build { to = "b@x.org", subject = s[2] })
        local head = m:match("^(.-\r\n)\r\n")
        for _, l in ipairs(lines(head)) do assert.is_true(#l <= 78, "line of " .. #l) end
        local subj = header(m, "Subject")
        if s[1] == "ASCII" then
          assert.equal(s[2], subj)
        else
          -- Every piece is an encoded-word of at most 75 octets.
          for w in subj:gmatch("%S+") do
            assert.is_true(#w <= 75)
            assert.matches("^=%?UTF%-8%?[BQ]%?.*%?=$", w)
          end
        end
      end)
    end

    it("folds long address lists between addresses", function()
      local to = {}
      for i = 1, 30 do to[i] = ("Person Number %d <person%d@example.org>"):format(i, i) end
      local m = tostring(build { to = to })
      local head = m:match("^(.-\r\n)\r\n")
      for _, l in ipairs(lines(head)) do assert.is_true(#l <= 78, l) end
      assert.equal(30, #build({ to = to }):recipients())
    end)

    it("encodes non-ASCII display names and long filenames", function()
      local m = tostring(build { from = "Jürgen <j@x.org>", to = "b@x.org", attachments = {
        { data = "x", filename = ("Ünïcödé Dätei "):rep(8) .. ".txt" } } })
      assert.equal("=?UTF-8?Q?J=C3=BCrgen?= <j@x.org>", header(m, "From"))
      assert.truthy(m:find("filename*0*=UTF-8''%C3%9Cn", 1, true))
      assert.truthy(m:find("filename*1*=", 1, true))
      assert.truthy(m:find('name="=?UTF-8?B?', 1, true))
      for _, l in ipairs(lines(m)) do assert.is_true(#l <= 78, l) end
      local huge = tostring(build { to = "b@x.org", attachments = { { data = "x", filename = ("ü"):rep(400) } } })
      for _, l in ipairs(lines(huge)) do assert.is_true(#l <= 78, l) end
    end)
  end)

  describe("refuses injection and bad input with kind usage", function()
    local cases = {
      { "CR/LF in the subject", { subject = "hi\r\nBcc: x@y.org" } },
      { "LF in the subject", { subject = "hi\nX: y" } },
      { "NUL in the subject", { subject = "hi\0" } },
      { "CR/LF in a display name", { to = { { name = "A\r\nBcc: x@y.org", address = "a@x.org" } } } },
      { "LF in an address string", { to = "a@x.org\nBcc: x@y.org" } },
      { "CR/LF in a filename", { attachments = { { data = "x", filename = "a\r\n.txt" } } } },
      { "CR/LF in a content type", { attachments = { { data = "x", content_type = "text/plain\r\nX: y" } } } },
      { "a content type that is not type/subtype", { attachments = { { data = "x", content_type = "bogus" } } } },
      { "a multipart content type", { attachments = { { data = "x", content_type = "multipart/mixed" } } } },
      { "CR/LF in a content id", { attachments = { { data = "x", inline = true, content_id = "a\r\nb" } } } },
      { "CR/LF in a header value", { headers = { { "X-A", "1\r\nBcc: x@y.org" } } } },
      { "CR/LF in a header name", { headers = { { "X-A\r\nBcc", "1" } } } },
      { "a colon in a header name", { headers = { { "X-A: b", "1" } } } },
      { "a header the spec sets itself", { headers = { { "Content-Type", "text/html" } } } },
      { "a Bcc header", { headers = { { "bcc", "x@y.org" } } } },
      { "CR/LF in the date", { date = "Mon\r\n" } },
      { "CR/LF in the message id", { message_id = "a@b\r\nX: y" } },
      { "a malformed message id", { message_id = "a b@c" } },
      { "a malformed address", { to = "not an address" } },
      { "a missing from", { from = false } },
      { "several from without sender", { from = { "a@x.org", "b@x.org" } } },
      { "an unknown field", { atachments = {} } },
      { "an incomplete dkim table", { dkim = {} } },
      { "a bad charset", { charset = "utf-8?Q?" } },
      { "a bad transfer_encoding", { transfer_encoding = "binary" } },
      { "an attachment with data and path", { attachments = { { data = "x", path = "/etc/hostname" } } } },
      { "an attachment with neither", { attachments = { { filename = "x" } } } },
      { "an unknown attachment field", { attachments = { { data = "x", name = "x" } } } },
      { "a missing attachment file", { attachments = { { path = "/nonexistent/file.pdf" } } } },
      { "a non-string text", { text = 42 } },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local spec = { to = "b@x.org" }
        for k, v in pairs(c[2]) do spec[k] = v end
        if spec.from == false then spec.from = nil; return usage_error(function() Message.new(spec) end) end
        usage_error(function() build(spec) end)
      end)
    end

    it("refuses a spec that is not a table", function()
      usage_error(function() Message.new("x") end)
    end)
  end)

  describe("envelope", function()
    it("takes the envelope sender from Sender, else From", function()
      assert.equal("a@x.org", build({ from = "A <a@x.org>", to = "b@x.org" }):envelope_from())
      assert.equal("s@x.org", build({ from = "a@x.org", sender = "S <s@x.org>", to = "b@x.org" }):envelope_from())
    end)

    it("lists To, Cc and Bcc recipients in order without duplicates", function()
      local m = build { to = "a@x.org, B <b@x.org>", cc = { "c@x.org", "A@X.ORG" }, bcc = { { address = "d@x.org" }, "b@x.org" } }
      assert.same({ "a@x.org", "b@x.org", "c@x.org", "d@x.org" }, m:recipients())
    end)

    it("asks for SMTPUTF8 when an address is internationalised", function()
      assert.is_false(build({ to = "b@x.org" }):requirements().smtputf8)
      local req = build({ to = "jürgen@bücher.example" }):requirements()
      assert.is_true(req.smtputf8)
      assert.is_true(req.eightbit)
      assert.is_true(build({ to = "b@x.org", bcc = "ü@x.org" }):requirements().smtputf8)
    end)

    it("reports the exact size", function()
      local m = build { to = "b@x.org", text = "ü\n", html = "<p>x</p>",
        attachments = { { data = ("z"):rep(1000), filename = "z" }, { path = "spec/unit/message_spec.lua" } } }
      assert.equal(#tostring(m), m:requirements().size)
    end)

    it("identifies message objects", function()
      assert.is_true(Message.is(build { to = "b@x.org" }))
      assert.is_false(Message.is({}))
      assert.is_false(Message.is("x"))
    end)
  end)

  describe("source()", function()
    local tmp
    before_each(function() tmp = os.tmpname() end)
    after_each(function() os.remove(tmp) end)

    local function write(path, data)
      local f = assert(io.open(path, "wb"))
      f:write(data)
      f:close()
    end

    it("streams a path attachment in bounded chunks and matches tostring()", function()
      math.randomseed(9)
      local t = {}
      for i = 1, 300000 do t[i] = string.char(math.random(0, 255)) end
      local data = table.concat(t)
      write(tmp, data)
      local m = build { to = "b@x.org", text = "x", attachments = { { path = tmp, filename = "r.bin" } } }
      local src, chunks, n = m:source(), {}, 0
      while true do
        local c, err = src()
        assert.is_nil(err)
        if not c then break end
        assert.is_true(#c <= 200000, "chunk of " .. #c)
        chunks[#chunks + 1] = c
        n = n + 1
        assert.is_true(n < 1000)
      end
      local whole = table.concat(chunks)
      assert.is_true(#chunks > 3)
      assert.equal(tostring(m), whole)
      local enc = whole:match("filename=\"r.bin\"\r\n\r\n(.-)\r\n%-%-")
      assert.equal(data, core.b64_decode(enc))
      assert.is_nil(src())
    end)

    it("names the file after the path when no filename is given", function()
      write(tmp, "abc")
      local m = tostring(build { to = "b@x.org", attachments = { { path = tmp } } })
      assert.truthy(m:find('filename="' .. tmp:match("[^/]+$") .. '"', 1, true))
    end)

    it("fails with nil, message when the file disappears before streaming", function()
      write(tmp, "abc")
      local m = build { to = "b@x.org", attachments = { { path = tmp } } }
      os.remove(tmp)
      local src = m:source()
      local c, err = src()
      assert.is_nil(c)
      assert.matches("cannot open attachment", err)
      assert.is_nil((src()))
      local ok, e = pcall(tostring, m)
      assert.is_false(ok)
      assert.equal("io", e.kind)
    end)

    it("gives the same bytes on every call", function()
      local m = build { to = "b@x.org", text = "x", attachments = { { data = ("q"):rep(200000), filename = "q" } } }
      assert.equal(tostring(m), tostring(m))
    end)

    it("never writes a boundary that occurs in a literal body", function()
      for _ = 1, 20 do
        local text = "--=_ and =_ lines\n--=_abc\n"
        local m = tostring(build { to = "b@x.org", text = text, html = text })
        local b = header(m, "Content-Type"):match('boundary="(.-)"')
        assert.is_nil(text:find(b, 1, true))
        local count = select(2, m:gsub("%-%-" .. b:gsub("%p", "%%%0"), ""))
        assert.equal(3, count)
      end
    end)
  end)
end)
