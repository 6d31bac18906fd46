-- DKIM signing (RFC 6376): every signed message here is verified by an
-- independent verifier, dkimpy (Debian python3-dkim, spec/helpers/
-- dkim_verify.py), with its DNS lookup answered by the test's public key.
-- Keys are made by openssl at test time (spec/helpers/dkim_keys.lua).
local core = require "smtp.core"
local dkim = require "smtp.dkim"
local Message = require "smtp.message"
local Error = require "smtp.error"
local keys = require "helpers.dkim_keys"
local P = require "helpers.proc"

local CANONS = { "relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed" }
local SEL, DOM = "s2026", "example.org"

-- The bytes the DATA encoder puts on the wire for a message (bare CR and
-- LF as CRLF, the last line closed), without dot-stuffing: what a
-- receiving server stores and a verifier reads.
local function wire(s)
  local d = core.dotstuffer(false)
  return d:encode(s) .. d:finish()
end

local function drain(src)
  local out = {}
  for _ = 1, 1e6 do
    local chunk, err = src()
    if chunk == nil then
      assert(err == nil, err)
      break
    end
    out[#out + 1] = chunk
  end
  return table.concat(out)
end

local function usage_error(f, pattern)
  local ok, err = pcall(f)
  assert.is_false(ok, "expected a usage error")
  assert.is_true(Error.is(err), "not an smtp.Error: " .. tostring(err))
  assert.equal("usage", err.kind, tostring(err))
  if pattern then assert.truthy(err.message:find(pattern), err.message) end
  return err
end

describe("DKIM signing", function()
  local k
  setup(function() k = keys.make() end)

  local function opts(extra)
    local o = { domain = DOM, selector = SEL, key_pem = k.rsa2048.pem }
    for key, v in pairs(extra or {}) do o[key] = v end
    return o
  end

  local function expect_pass(messages, key)
    local lines = keys.verify_all(key or k.rsa2048, SEL, DOM, messages)
    for i, line in ipairs(lines) do assert.equal("pass", line, "message " .. i) end
  end

  local function rich(spec_extra)
    local spec = {
      from = { name = "Zoë Ünïcode", address = "zoe@" .. DOM }, to = { "bob@example.net", "Carol <c@example.net>" },
      cc = "dave@example.net", subject = "Ünïcode   subject  with\tspaces, long enough to be folded over two lines",
      reply_to = "replies@" .. DOM, headers = { { "In-Reply-To", "<abc@example.net>" }, { "X-Extra", "  padded  " } },
      text = "Plain text  with trailing space   \nand\ttabs\t\n\n.leading dot\nFrom here\n\n\n",
      html = "<p>HTML \t body</p>\n",
      attachments = {
        { data = ("\0\1\2binary\255"):rep(3000), filename = "report.pdf" },
        { data = "PNG-ish bytes", filename = "logo.png", inline = true, content_id = "logo@example.org" },
      },
    }
    for key, v in pairs(spec_extra or {}) do spec[key] = v end
    return spec
  end

  describe("smtp.message{dkim=}", function()
    it("signs a multipart message with attachments that verifies in every canonicalization", function()
      local msgs = {}
      for i, c in ipairs(CANONS) do
        msgs[i] = tostring(Message.new(rich { dkim = opts { canonicalization = c } }))
        assert.truthy(msgs[i]:find("^DKIM%-Signature: v=1; a=rsa%-sha256; c=" .. c:gsub("%p", "%%%0") .. ";"))
      end
      expect_pass(msgs)
    end)

    it("signs only the listed headers that are present, From first, each line within 78 columns", function()
      local s = tostring(Message.new(rich { dkim = opts() }))
      local field = s:match("^(DKIM%-Signature:.-\r\n)%S")
      for line in field:gmatch("[^\n]*\n") do assert.is_true(#line - 2 <= 78, line) end
      local h = field:gsub("\r\n ", ""):match("h=([^;]+);")
      assert.equal("from:reply-to:subject:date:message-id:to:cc:mime-version:content-type:in-reply-to", h)
      assert.truthy(field:find(" t=%d+;"))
    end)

    it("tostring, source() and requirements().size agree", function()
      local m = Message.new(rich { dkim = opts() })
      local s = tostring(m)
      assert.equal(s, drain(m:source()))
      assert.equal(#s, m:requirements().size)
      assert.equal(s:match("\r\n\r\n(.*)$"), drain(m:unsigned_source()):match("\r\n\r\n(.*)$"))
    end)

    it("streams an attachment given by path and signs it", function()
      local dir = P.tempdir("dkim-path")
      local f = assert(io.open(dir .. "/big.bin", "wb"))
      for i = 1, 64 do f:write(("%08d"):format(i):rep(4096)) end
      f:close()
      local m = Message.new { from = "a@" .. DOM, to = "b@example.net", subject = "file",
        attachments = { { path = dir .. "/big.bin" } }, dkim = opts() }
      expect_pass({ tostring(m) })
    end)

    it("writes i=, t= and x=, and over-signs From when asked", function()
      local m = Message.new(rich { dkim = opts { identity = "news@mail." .. DOM, timestamp = 1700000000,
        expiration = 86400 * 3650 * 5, oversign = true } })
      local s = tostring(m)
      local field = s:match("^(DKIM%-Signature:.-\r\n)%S"):gsub("\r\n ", "")
      assert.truthy(field:find("i=news@mail.example.org;", 1, true), field)
      assert.truthy(field:find("t=1700000000;", 1, true))
      assert.truthy(field:find("x=" .. (1700000000 + 86400 * 3650 * 5) .. ";", 1, true))
      assert.truthy(field:find("h=from:", 1, true) and field:find(":from;", 1, true), field)
      expect_pass({ s })
    end)

    it("signs with a 1024-bit key", function()
      local s = tostring(Message.new(rich { dkim = opts { key_pem = k.rsa1024.pem } }))
      expect_pass({ s }, k.rsa1024)
    end)

    it("reads the key from key_file", function()
      local s = tostring(Message.new(rich { dkim = { domain = DOM, selector = SEL, key_file = k.rsa2048.file } }))
      expect_pass({ s })
    end)
  end)

  describe("a message altered after signing fails verification", function()
    local signed, oversigned
    setup(function()
      signed = tostring(Message.new(rich { dkim = opts() }))
      oversigned = tostring(Message.new(rich { dkim = opts { oversign = true } }))
    end)

    it("(the unaltered messages pass)", function() expect_pass({ signed, oversigned }) end)

    local function body_at(s) return select(2, s:find("\r\n\r\n", 1, true)) + 1 end
    local alterations = {
      { "a body byte", function(s) local i = body_at(s) + 10; return s:sub(1, i - 1) .. "X" .. s:sub(i + 1) end },
      { "a line added to the body", function(s) return s .. "P.S. added\r\n" end },
      { "the signed Subject", function(s) return (s:gsub("\r\nSubject: ", "\r\nSubject: Re: ", 1)) end },
      { "the signed To", function(s) return (s:gsub("\r\nTo: ", "\r\nTo: eve@example.com, ", 1)) end },
      { "a second From over an over-signed From", function(s)
        return (s:gsub("\r\nDate: ", "\r\nFrom: eve@example.com\r\nDate: ", 1)) end, true },
    }
    it("altering a body byte, a line, Subject, To, or adding a From over an over-signed one", function()
      local altered = {}
      for i, a in ipairs(alterations) do
        altered[i] = a[2](a[3] and oversigned or signed)
        assert.are_not.equal(signed, altered[i])
      end
      for i, line in ipairs(keys.verify_all(k.rsa2048, SEL, DOM, altered)) do
        assert.truthy(line:find("^fail"), alterations[i][1] .. ": " .. line)
      end
    end)

    it("but an unsigned header added on the way does not break it", function()
      expect_pass({ "Received: from somewhere by there; Sun, 1 Jan 2026 00:00:00 +0000\r\n" .. signed })
    end)
  end)

  describe("body canonicalization of raw messages (sendmail opts.dkim)", function()
    local HEAD = "From: Ann <ann@example.org>\r\nTo: bob@example.net\r\nSubject:  Spaced   out \t \r\n"
      .. " folded\r\nDate: Mon, 1 Jan 2026 00:00:00 +0000\r\n"
    local BODIES = {
      { "CRLF lines", "one\r\ntwo\r\n" },
      { "bare LF lines", "one\ntwo\n" },
      { "bare CR lines", "one\rtwo\r" },
      { "mixed line ends", "a\r\n\nb\r\r\nc\n\rd" },
      { "no final line end", "last line open" },
      { "trailing white space", "x  \t\r\ny\t\r\n \r\n" },
      { "white space runs", "  lead\t\t mid   dle  \r\n\t\r\n" },
      { "trailing empty lines", "text\r\n\r\n\r\n\n\n\r\r" },
      { "only empty lines", "\r\n\r\n\n" },
      { "only white space lines", "   \r\n\t\r\n " },
      { "an empty body", "" },
      { "leading dots and From", ".\r\n..x\r\nFrom me\r\n" },
      { "8-bit bytes", "caf\195\169 \226\130\172\r\n" },
    }
    local HEADS = {
      { "CRLF headers", HEAD },
      { "LF headers", (HEAD:gsub("\r\n", "\n")) },
    }

    it("every body and header style verifies in every canonicalization", function()
      local msgs = {}
      for _, c in ipairs(CANONS) do
        for _, h in ipairs(HEADS) do
          for _, b in ipairs(BODIES) do
            local raw = h[2] .. (h[2]:find("\r\n$") and "\r\n" or "\n") .. b[2]
            msgs[#msgs + 1] = wire(dkim.signed(raw, opts { canonicalization = c }))
          end
        end
      end
      expect_pass(msgs)
    end)

    it("a message that is only a header block verifies", function()
      expect_pass({ wire(dkim.signed(HEAD, opts())), wire(dkim.signed(HEAD, opts { canonicalization = "simple" })) })
    end)

    it("a body fed in 1-byte and odd-sized chunks gives the same signature", function()
      for _, c in ipairs(CANONS) do
        local o = dkim.options(opts { canonicalization = c, timestamp = 1234567890 })
        for _, b in ipairs(BODIES) do
          local raw = HEAD .. "\r\n" .. b[2] .. "\r\n \t\r\n" .. b[2]
          local whole = dkim.header(o, coroutine.wrap(function() coroutine.yield(raw) end))
          for _, size in ipairs({ 1, 2, 3, 7 }) do
            local pos = 1
            local function src()
              if pos > #raw then return nil end
              local piece = raw:sub(pos, pos + size - 1)
              pos = pos + size
              return piece
            end
            assert.equal(whole, dkim.header(o, src), c .. " / " .. b[1] .. " / " .. size)
          end
        end
      end
    end)

    it("the C canonicaliser hashes what RFC 6376 3.4.3 and 3.4.4 describe", function()
      local function bh(relaxed, s)
        local hasher = core.dkim_body(relaxed, false)
        assert.is_true(hasher:update(s))
        local h, _, n = hasher:finish()
        return h, n
      end
      local empty_sha = core.b64_decode("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
      local crlf_sha = core.b64_decode("frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=")
      assert.same({ empty_sha, 0 }, { bh(true, "") })
      assert.same({ empty_sha, 0 }, { bh(true, " \r\n\t\r\n\r\n") })
      assert.same({ crlf_sha, 2 }, { bh(false, "") })
      assert.same({ crlf_sha, 2 }, { bh(false, "\r\n\r\n") })
      -- Relaxed: " C \r\nD \t E\r\n\r\n\r\n" -> " C\r\nD E\r\n" (RFC 6376 3.4.5).
      assert.equal(select(2, bh(true, " C \r\nD \t E\r\n\r\n\r\n")), #" C\r\nD E\r\n")
      assert.equal(bh(false, " C\r\nD E\r\n"), bh(true, " C \r\nD \t E\r\n\r\n\r\n"))
      assert.equal(bh(false, "a\r\nb\r\n"), bh(false, "a\nb"))
    end)

    it("a raw file handle is read twice by seeking back", function()
      local dir = P.tempdir("dkim-raw")
      local path = dir .. "/m.eml"
      P.write_file(path, "X-Skip: before\r\n" .. HEAD .. "\r\nfile body\r\n")
      local f = assert(io.open(path, "rb"))
      f:seek("set", #"X-Skip: before\r\n") -- a file is sent from where it stands
      local src = dkim.signed(f, opts())
      local s = drain(src)
      f:close()
      assert.truthy(s:find("^DKIM%-Signature:"))
      assert.is_nil(s:find("X-Skip", 1, true))
      assert.truthy(s:find("\r\n\r\nfile body\r\n$"))
      expect_pass({ wire(s) })
    end)

    it("a chunk function is spooled to a temporary file", function()
      local raw = HEAD .. "\r\n" .. ("spooled line\r\n"):rep(10000)
      local pos, calls = 1, 0
      local function src()
        calls = calls + 1
        if pos > #raw then return nil end
        local piece = raw:sub(pos, pos + 999)
        pos = pos + 1000
        return piece
      end
      local signed = dkim.signed(src, opts())
      local before = calls
      local s = drain(signed)
      assert.equal(before, calls) -- the second pass never calls the source
      assert.equal(raw, s:match("^DKIM%-Signature:.-\r\n(%S.*)$"))
      expect_pass({ wire(s) })
    end)

    it("a failing chunk function raises kind io before anything is sent", function()
      local n = 0
      local ok, err = pcall(dkim.signed, function()
        n = n + 1
        if n == 1 then return HEAD .. "\r\nbody" end
        return nil, "disk on fire"
      end, opts())
      assert.is_false(ok)
      assert.equal("io", err.kind)
      assert.truthy(err.message:find("disk on fire", 1, true))
    end)

    it("opts.dkim replaces a message object's own signature", function()
      local m = Message.new(rich { dkim = opts { selector = "other" } })
      local view = dkim.signed(m, opts())
      local s = drain(view:source())
      local _, count = s:gsub("DKIM%-Signature:", "")
      assert.equal(1, count)
      assert.truthy(s:find("s=" .. SEL .. ";", 1, true))
      assert.equal(#s, view:requirements().size)
      assert.same(m:recipients(), view:recipients())
      expect_pass({ s })
    end)
  end)

  describe("refuses with kind usage", function()
    local cases = {
      { "a missing domain", { domain = false }, "domain" },
      { "a missing selector", { selector = false }, "selector" },
      { "no key", { key_pem = false }, "key_pem" },
      { "key_pem and key_file", { key_file = "/etc/hostname" }, "exactly one" },
      { "a key that is not a key", { key_pem = "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n" },
        "not a readable" },
      { "an unreadable key_file", { key_pem = false, key_file = "/nonexistent/dkim.key" }, "cannot open" },
      { "a bad domain", { domain = "exa mple.org" }, "domain" },
      { "CR/LF in the selector", { selector = "s1\r\nX: y" }, "CR, LF" },
      { "headers without from", { headers = { "subject", "to" } }, "from" },
      { "bcc in headers", { headers = { "from", "bcc" } }, "bcc" },
      { "a bad canonicalization", { canonicalization = "loose/relaxed" }, "canonicalization" },
      { "an identity outside the domain", { identity = "a@example.com" }, "identity" },
      { "a bad expiration", { expiration = -5 }, "expiration" },
      { "an unknown field", { algorithm = "rsa-sha1" }, "unknown field" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local o = opts()
        for key, v in pairs(c[2]) do
          if v == false then o[key] = nil else o[key] = v end
        end
        usage_error(function() Message.new { from = "a@" .. DOM, to = "b@x.org", dkim = o } end, c[3])
        usage_error(function() dkim.signed("From: a@" .. DOM .. "\r\n\r\nx\r\n", o) end, c[3])
      end)
    end

    it("a dkim table changed after its first use is checked again", function()
      local o = opts()
      local first = dkim.options(o)
      assert.equal(first, dkim.options(o))
      o.selector = "other"
      assert.equal("other", dkim.options(o).selector)
      o.domain = "bad domain"
      usage_error(function() dkim.options(o) end, "domain")
    end)

    it("an EC key (rsa-sha256 needs RSA) and a 512-bit RSA key, never quoting the key", function()
      for _, key in ipairs({ k.ec, k.rsa512 }) do
        local err = usage_error(function() dkim.options(opts { key_pem = key.pem }) end)
        assert.truthy(err.message:find("RSA", 1, true), err.message)
        local body = key.pem:match("\n(%S+)\n")
        assert.is_nil(err.message:find(body:sub(1, 16), 1, true))
        assert.is_nil(err.message:find("BEGIN", 1, true))
      end
    end)

    it("a raw message without From, or with NUL bytes", function()
      usage_error(function() dkim.signed("To: b@x.org\r\n\r\nx\r\n", opts()) end, "no From")
      usage_error(function() dkim.signed("From: a@example.org\r\n\r\nx\0y\r\n", opts()) end, "NUL")
    end)
  end)
end)
