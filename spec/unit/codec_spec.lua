-- MIME encoders (csrc/codec.c via smtp.core): base64 against RFC 4648
-- vectors and random chunk splits, quoted-printable rules (RFC 2045 6.7),
-- RFC 2047 encoded-words, and the text statistics the builder uses.
local core = require "smtp.core"
local V = require "helpers.luaver"

-- A reference QP decoder, written apart from the encoder: soft breaks
-- vanish, =XX is a byte, hard breaks stay CRLF.
local function qp_decode(s)
  s = s:gsub("=\r\n", "")
  return (s:gsub("=(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function lines_of(s)
  local out = {}
  for line in (s .. "\r\n"):gmatch("(.-)\r\n") do out[#out + 1] = line end
  return out
end

-- Deterministic pseudo-random bytes (a fixed seed keeps failures replayable).
local function random_bytes(n, seed)
  math.randomseed(seed)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

local function random_splits(s, seed)
  math.randomseed(seed)
  local chunks, i = {}, 1
  while i <= #s do
    local n = math.random(0, 9) == 0 and 0 or math.random(1, 200)
    chunks[#chunks + 1] = s:sub(i, i + n - 1)
    i = i + n
  end
  return chunks
end

local function stream(enc, chunks)
  local out = {}
  for _, c in ipairs(chunks) do out[#out + 1] = enc:encode(c) end
  out[#out + 1] = enc:finish()
  return table.concat(out)
end

describe("smtp.core base64", function()
  local vectors = { -- RFC 4648 section 10
    { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    { "\0\255\254", "AP/+" }, { "\251\255", "+/8=" },
  }
  for _, v in ipairs(vectors) do
    it(("encodes %q as %q and back"):format(v[1], v[2]), function()
      assert.equal(v[2], core.b64_encode(v[1]))
      assert.equal(v[1], core.b64_decode(v[2]))
    end)
  end

  it("wraps MIME output at 76 columns with CRLF and no trailing CRLF", function()
    local data = random_bytes(57 * 3, 1)
    local out = core.b64_encode(data, 76)
    local lines = lines_of(out)
    assert.equal(3, #lines)
    for _, l in ipairs(lines) do assert.equal(76, #l) end
    assert.is_nil(out:find("\r\n$"))
    assert.equal(data, core.b64_decode(out))
  end)

  for seed = 1, 12 do
    it("gives the same output whatever the chunk boundaries (seed " .. seed .. ")", function()
      local data = random_bytes(seed * 311 + seed % 3, seed)
      local whole = core.b64_encode(data, 76)
      local streamed = stream(core.b64_encoder(), random_splits(data, seed + 100))
      assert.equal(whole, streamed)
      assert.equal(data, core.b64_decode(streamed))
      local lines = lines_of(streamed)
      for i, l in ipairs(lines) do
        if i < #lines then assert.equal(76, #l) else assert.is_true(#l <= 76 and #l > 0) end
        assert.is_nil(l:find("[^%w+/=]"))
      end
    end)
  end

  it("feeds one byte at a time across line ends", function()
    local data = random_bytes(200, 7)
    local enc = core.b64_encoder()
    local out = {}
    for i = 1, #data do out[#out + 1] = enc:encode(data:sub(i, i)) end
    out[#out + 1] = enc:finish()
    assert.equal(core.b64_encode(data, 76), table.concat(out))
  end)

  it("encodes and finishes in one call with 'last', then starts afresh", function()
    local enc = core.b64_encoder(8)
    assert.equal("Zm9vYmFy\r\nYg==", enc:encode("foobarb", true))
    assert.equal("Zm9v", enc:encode("foo", true))
  end)

  it("handles a megabyte in 48 KiB chunks", function()
    local data = random_bytes(1048576, 3)
    local chunks = {}
    for i = 1, #data, 49152 do chunks[#chunks + 1] = data:sub(i, i + 49151) end
    local out = stream(core.b64_encoder(), chunks)
    assert.equal(core.b64_encode(data, 76), out)
    assert.equal(data, core.b64_decode(out))
  end)

  local bad = { "Zg=", "Zg", "Z===", "Zm9v!", "Zg==Zg==", "=Zg=", "Zm9vY", "Zm\0v" }
  for _, b in ipairs(bad) do
    it(("refuses %q with nil, usage"):format(b), function()
      local v, kind, msg = core.b64_decode(b)
      assert.is_nil(v)
      assert.equal("usage", kind)
      assert.matches("offset", msg)
    end)
  end

  it("decodes across white space", function()
    assert.equal("foobar", core.b64_decode(" Zm9v\r\n\tYmFy \n"))
  end)

  it("rejects line lengths that are not multiples of 4", function()
    assert.has_error(function() core.b64_encoder(75) end)
    assert.has_error(function() core.b64_encode("x", 3) end)
  end)

  it("is a closable userdata", function()
    local enc = core.b64_encoder()
    assert.matches("smtp.core.Encoder %(base64%)", tostring(enc))
    enc:close()
    enc:close()
    assert.matches("closed", tostring(enc))
    assert.has_error(function() enc:encode("x") end)
    if V.lua54 then
      -- `<close>` is 5.4 syntax: compiled only where it exists.
      local run = assert(V.load([[
        local core = ...
        local e <close> = core.qp_encoder()
        return e:encode("a", true), e
      ]], "=close"))
      local out, e = run(core)
      assert.equal("a", out)
      assert.matches("closed", tostring(e))
    end
  end)
end)

describe("smtp.core quoted-printable", function()
  local rows = {
    { "plain ASCII", "hello world", "hello world" },
    { "'=' is encoded", "a=b", "a=3Db" },
    { "trailing space before CRLF", "a \r\nb", "a=20\r\nb" },
    { "trailing tab before LF", "a\t\nb", "a=09\r\nb" },
    { "two trailing spaces", "a  \n", "a =20\r\n" },
    { "trailing space at the end", "a ", "a=20" },
    { "inner white space kept", "a \t b", "a \t b" },
    { "a lone LF becomes CRLF", "a\nb\n", "a\r\nb\r\n" },
    { "a lone CR is data", "a\rb", "a=0Db" },
    { "CR CR LF", "a\r\r\nb", "a=0D\r\nb" },
    { "space then lone CR", "a \rb", "a =0Db" },
    { "a CR at the end", "a\r", "a=0D" },
    { "control and 8-bit bytes", "\0\1\127\255é", "=00=01=7F=FF=C3=A9" },
    { "empty lines kept", "\n\n", "\r\n\r\n" },
    { "a leading dot stays", ".\nFrom me", ".\r\nFrom me" },
  }
  for _, r in ipairs(rows) do
    it("encodes " .. r[1], function()
      assert.equal(r[3], core.qp_encode(r[2]))
    end)
  end

  -- Properties every encoded line must have (RFC 2045 6.7 rules 3 and 5).
  local function check_lines(out)
    for _, l in ipairs(lines_of(out)) do
      assert.is_true(#l <= 76, "line longer than 76: " .. #l)
      assert.is_nil(l:find("[ \t]$"), "trailing white space")
      assert.is_nil(l:find("[^\32-\126\t]"), "raw byte outside printable ASCII")
      local body = l:gsub("=$", "")
      assert.is_nil(body:gsub("=%x%x", ""):find("="), "bare '='")
    end
  end

  local inputs = {
    { "a 2,000-character line", ("abcdefghij"):rep(200) },
    { "a 2,000-character line of '='", ("="):rep(2000) },
    { "a 2,000-character line of spaces", (" "):rep(2000) .. "\n" },
    { "lines of 75, 76 and 77", ("x"):rep(75) .. "\n" .. ("y"):rep(76) .. "\n" .. ("z"):rep(77) .. "\n" },
    { "UTF-8 text", ("Grüße aus Köln — ∑ 😀 "):rep(30) },
    { "random bytes", random_bytes(5000, 42) },
  }
  for _, case in ipairs(inputs) do
    it("keeps lines within 76 and decodes back: " .. case[1], function()
      local out = core.qp_encode(case[2])
      check_lines(out)
      local normal = case[2]:gsub("\r\n", "\n"):gsub("\n", "\r\n")
      assert.equal(normal, qp_decode(out))
    end)
  end

  for seed = 1, 10 do
    it("gives the same output whatever the chunk boundaries (seed " .. seed .. ")", function()
      math.randomseed(seed)
      local alphabet = { "a", "b", " ", "\t", "\r", "\n", "\r\n", "=", "é", "\0", ".", "From " }
      local parts = {}
      for i = 1, 1500 do parts[i] = alphabet[math.random(#alphabet)] end
      local text = table.concat(parts)
      local whole = core.qp_encode(text)
      assert.equal(whole, stream(core.qp_encoder(), random_splits(text, seed)))
      check_lines(whole)
      -- Lone CRs are data (=0D); only CRLF and LF are line ends.
      local normal = text:gsub("\r\n", "\n"):gsub("\n", "\r\n")
      assert.equal(normal, qp_decode(whole))
    end)
  end
end)

describe("smtp.core encode_word", function()
  local function decode_words(words)
    local out = {}
    for _, w in ipairs(words) do
      local cs, mode, data = w:match("^=%?([^?]+)%?([BQ])%?([^?]*)%?=$")
      assert.truthy(cs, "not an encoded-word: " .. w)
      if mode == "B" then
        out[#out + 1] = core.b64_decode(data)
      else
        assert.is_nil(data:find("[^%w!*+/%-=_]"), "Q word with a character unsafe in a phrase")
        out[#out + 1] = qp_decode((data:gsub("_", " ")))
      end
    end
    return out
  end

  local texts = {
    "Grüße aus Köln",
    ("ä€😀"):rep(40),
    ("Ünïcödé subject that is long enough to need several encoded words "):rep(3),
    "日本語のテキストはとても長いので、複数のエンコードされた単語に分割する必要があります。",
    "a?b=c_d \"quoted\" (paren) <angle>",
  }
  for _, mode in ipairs({ "B", "Q" }) do
    for i, text in ipairs(texts) do
      for _, first in ipairs({ 75, 66, 30 }) do
        it(("%s words of text %d (first room %d) are <= 75 and hold whole characters"):format(mode, i, first), function()
          local words = core.encode_word(text, "UTF-8", mode, first)
          assert.is_true(#words >= 1)
          assert.is_true(#words[1] <= first)
          for _, w in ipairs(words) do assert.is_true(#w <= 75, w) end
          local raw = decode_words(words)
          for _, r in ipairs(raw) do assert.truthy(V.utf8_valid(r), "a word splits a UTF-8 character") end
          assert.equal(text, table.concat(raw))
        end)
      end
    end
  end

  it("starts on a fresh line when nothing fits in the first line's room", function()
    local words = core.encode_word("ü", "UTF-8", "B", 5)
    assert.same({ "=?UTF-8?B?w7w=?=" }, words)
  end)

  it("gives no word for an empty text", function()
    assert.same({}, core.encode_word("", "UTF-8", "B"))
  end)

  it("splits bytes freely in a single-byte charset", function()
    local words = core.encode_word(("\233"):rep(60), "ISO-8859-1", "Q")
    for _, w in ipairs(words) do assert.is_true(#w <= 75) end
    assert.equal(("\233"):rep(60), table.concat(decode_words(words)))
  end)

  it("refuses a charset that could break out of the word", function()
    for _, cs in ipairs({ "utf-8?Q?x", "", "a b", "utf\r\n8", ("x"):rep(41) }) do
      assert.has_error(function() core.encode_word("x", cs, "B") end)
    end
    assert.has_error(function() core.encode_word("x", "UTF-8", "X") end)
  end)
end)

describe("smtp.core text_stats", function()
  local rows = {
    { "", { eightbit = 0, nul = 0, ctl = 0, bare_cr = 0, bare_lf = 0, max_line = 0 } },
    { "ab\r\ncde", { eightbit = 0, nul = 0, ctl = 0, bare_cr = 0, bare_lf = 0, max_line = 3 } },
    { "a\nb\rc\0\1é\t", { eightbit = 2, nul = 1, ctl = 1, bare_cr = 1, bare_lf = 1, max_line = 8 } },
    { ("x"):rep(2000) .. "\n", { eightbit = 0, nul = 0, ctl = 0, bare_cr = 0, bare_lf = 1, max_line = 2000 } },
  }
  for i, r in ipairs(rows) do
    it("counts row " .. i, function() assert.same(r[2], core.text_stats(r[1])) end)
  end
end)
