-- The sans-IO reply parser (csrc/reply.c) through its binding: framing,
-- enhanced codes, and every malformed form of SPEC section 7.
local core = require "smtp.core"

-- Feeds 'input' split at the given cut points and collects the replies.
local function parse_split(input, cuts)
  local p = core.reply_parser()
  local replies, last = {}, 1
  local pieces = {}
  for _, c in ipairs(cuts) do pieces[#pieces + 1] = input:sub(last, c - 1); last = c end
  pieces[#pieces + 1] = input:sub(last)
  for _, piece in ipairs(pieces) do
    local ok, kind, msg = p:feed(piece)
    if not ok then return nil, kind, msg end
    while true do
      local r, k, m = p:next()
      if r == nil then return nil, k, m end
      if r == false then break end
      replies[#replies + 1] = r
    end
  end
  return replies, p:buffered()
end

local function parse(input)
  return parse_split(input, {})
end

describe("smtp.core ReplyParser", function()
  describe(":feed() and :next()", function()
    local rows = {
      { "single line", "250 OK\r\n", { { code = 250, lines = { "OK" } } } },
      { "bare code", "250\r\n", { { code = 250, lines = { "" } } } },
      { "bare LF line end", "220 hi\n", { { code = 220, lines = { "hi" } } } },
      { "multiline", "250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n",
        { { code = 250, lines = { "mx", "PIPELINING", "SIZE 10" } } } },
      { "enhanced code stripped from every line", "550-5.1.1 no\r\n550 5.1.1 such user\r\n",
        { { code = 550, enhanced = "5.1.1", lines = { "no", "such user" } } } },
      { "enhanced of another class is text", "550 4.1.1 odd\r\n",
        { { code = 550, lines = { "4.1.1 odd" } } } },
      { "three-digit enhanced parts", "250 2.100.999 ok\r\n",
        { { code = 250, enhanced = "2.100.999", lines = { "ok" } } } },
      { "not enhanced when followed by text", "250 2.1.0x ok\r\n",
        { { code = 250, lines = { "2.1.0x ok" } } } },
      { "two pipelined replies", "250 a\r\n354 b\r\n",
        { { code = 250, lines = { "a" } }, { code = 354, lines = { "b" } } } },
      { "8-bit bytes kept in text", "250 a\1b\255\r\n", { { code = 250, lines = { "a\1b\255" } } } },
    }
    for _, row in ipairs(rows) do
      it("parses " .. row[1], function()
        local replies = assert(parse(row[2]))
        assert.same(row[3], replies)
      end)
      it("parses " .. row[1] .. " fed byte by byte", function()
        local cuts = {}
        for i = 2, #row[2] do cuts[#cuts + 1] = i end
        assert.same(row[3], (parse_split(row[2], cuts)))
      end)
    end

    it("gives the same replies for 500 random splits", function()
      local input = "250-mx.example.org\r\n250-PIPELINING\r\n250-2.0.0 x\r\n250 8BITMIME\r\n" ..
        "550 5.1.1 <x@y>: unknown\r\n354 go\r\n221 2.0.0 bye\r\n"
      local expected = parse(input)
      math.randomseed(42)
      for _ = 1, 500 do
        local cuts, n = {}, math.random(0, 8)
        for _ = 1, n do cuts[#cuts + 1] = math.random(2, #input) end
        table.sort(cuts)
        assert.same(expected, (parse_split(input, cuts)))
      end
    end)

    it("says 'need more' for an incomplete reply and counts buffered bytes", function()
      local p = core.reply_parser()
      assert.is_true(p:feed("250-a\r\n250 b"))
      assert.is_false(p:next())
      assert.equal(12, p:buffered())
      assert.is_true(p:feed("\r\n"))
      assert.equal(250, p:next().code)
      assert.equal(0, p:buffered())
    end)

    it("reports bytes after a complete reply as buffered (STARTTLS injection check)", function()
      local p = core.reply_parser()
      p:feed("220 go ahead\r\n250 injected\r\n")
      assert.equal(220, p:next().code)
      assert.equal(#"250 injected\r\n", p:buffered())
    end)
  end)

  describe("limits and malformed replies (SPEC 7)", function()
    local bad = {
      { "a code of four digits", "2500 hi\r\n" },
      { "a code of two digits", "25\r\n" },
      { "a code of two digits and text", "25 hi\r\n" },
      { "letters for a code", "abc hi\r\n" },
      { "a code outside 2xx-5xx", "199 hi\r\n" },
      { "a 6xx code", "600 hi\r\n" },
      { "a separator other than - or space", "250_hi\r\n" },
      { "a continuation line with a different code", "250-a\r\n251 b\r\n" },
      { "an empty line", "\r\n" },
      { "a second code digit over 5 (RFC 5321 4.2)", "260 hi\r\n" },
      { "a NUL byte in the text", "250 a\0b\r\n" },
    }
    for _, row in ipairs(bad) do
      it("rejects " .. row[1], function()
        local r, kind, msg = parse(row[2])
        assert.is_nil(r)
        assert.equal("protocol", kind)
        assert.truthy(msg:find("malformed reply", 1, true))
      end)
    end

    it("rejects a line over 64 KiB before buffering all of it", function()
      local p = core.reply_parser()
      local chunk = string.rep("x", 4096)
      local ok, kind
      p:feed("250 ")
      for _ = 1, 256 do
        ok, kind = p:feed(chunk)
        if not ok then break end
      end
      assert.is_nil(ok)
      assert.equal("protocol", kind)
      assert.is_true(p:buffered() < 70 * 1024)
    end)

    it("accepts a line of exactly 64 KiB", function()
      local line = "250 " .. string.rep("x", 65536 - 4) .. "\r\n"
      local replies = assert(parse(line))
      assert.equal(65532, #replies[1].lines[1])
    end)

    it("rejects reply 1,001 lines long and accepts 1,000", function()
      assert.is_nil((parse(string.rep("250-x\r\n", 1000) .. "250 end\r\n")))
      assert.equal(1000, #assert(parse(string.rep("250-x\r\n", 999) .. "250 end\r\n"))[1].lines)
    end)

    it("keeps an error sticky", function()
      local p = core.reply_parser()
      assert.is_nil(p:feed("xyz\r\n"))
      local r, kind = p:next()
      assert.is_nil(r)
      assert.equal("protocol", kind)
      assert.is_nil((p:feed("250 ok\r\n")))
    end)

    it("reports a fault in a pipelined reply on the next call, not with the good one", function()
      local p = core.reply_parser()
      p:feed("250 ok\r\n25x bad\r\n")
      assert.equal(250, p:next().code)
      local r, kind = p:next()
      assert.is_nil(r)
      assert.equal("protocol", kind)
    end)

    it("honours custom limits", function()
      local p = core.reply_parser(10, 2)
      assert.is_nil((p:feed("250 0123456789\r\n")))
      p = core.reply_parser(100, 2)
      assert.is_true(p:feed("250-a\r\n250-b\r\n"))
      assert.is_false(p:next())
      assert.is_nil((p:feed("250 c\r\n")))
    end)
  end)
end)
