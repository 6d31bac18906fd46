-- The streaming DATA encoder (csrc/dotstuff.c): CRLF normalisation,
-- dot-stuffing and the terminator, whatever the chunk boundaries.
local core = require "smtp.core"

local function encode(chunks, stuff)
  local d = core.dotstuffer(stuff)
  local out = {}
  for _, c in ipairs(chunks) do out[#out + 1] = d:encode(c) end
  out[#out + 1] = d:finish()
  return table.concat(out)
end

-- Every way of cutting 'input' in two and in three.
local function all_splits(input)
  local out = { { input } }
  for i = 1, #input + 1 do
    out[#out + 1] = { input:sub(1, i - 1), input:sub(i) }
    for j = i, #input + 1 do
      out[#out + 1] = { input:sub(1, i - 1), input:sub(i, j - 1), input:sub(j) }
    end
  end
  return out
end

describe("smtp.core DotStuffer", function()
  local rows = {
    { "an empty body", "", ".\r\n" },
    { "a plain line", "hello\r\n", "hello\r\n.\r\n" },
    { "a missing final newline", "hello", "hello\r\n.\r\n" },
    { "bare LF", "a\nb\n", "a\r\nb\r\n.\r\n" },
    { "bare CR", "a\rb\r", "a\r\nb\r\n.\r\n" },
    { "CR CR LF", "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n" },
    { "LF CR", "a\n\rb", "a\r\n\r\nb\r\n.\r\n" },
    { "a leading dot", ".a", "..a\r\n.\r\n" },
    { "\\n.\\n", "x\n.\ny", "x\r\n..\r\ny\r\n.\r\n" },
    { "\\r.\\r", "x\r.\ry", "x\r\n..\r\ny\r\n.\r\n" },
    { "\\r\\n.\\r\\n", "x\r\n.\r\ny", "x\r\n..\r\ny\r\n.\r\n" },
    { "a lone dot line at the end", "x\r\n.", "x\r\n..\r\n.\r\n" },
    { "dots inside a line", "a.b..c\r\n", "a.b..c\r\n.\r\n" },
    { "two dots at a line start", "..\r\n", "...\r\n.\r\n" },
    { "an empty line", "\r\n", "\r\n.\r\n" },
    { "control and 8-bit bytes", "a\1\255\r\n", "a\1\255\r\n.\r\n" },
  }
  for _, row in ipairs(rows) do
    it("encodes " .. row[1] .. " for every split", function()
      for _, chunks in ipairs(all_splits(row[2])) do
        assert.equal(row[3], encode(chunks))
      end
    end)
  end

  it("never emits a bare CR or LF for random input", function()
    math.randomseed(7)
    local alphabet = { "\r", "\n", ".", "a", " " }
    for _ = 1, 300 do
      local t = {}
      for i = 1, math.random(0, 40) do t[i] = alphabet[math.random(#alphabet)] end
      local out = encode({ table.concat(t) })
      local stripped = out:gsub("\r\n", "")
      assert.is_nil(stripped:find("[\r\n]"))
      assert.equal("\r\n.\r\n", out:sub(-5) == "\r\n.\r\n" and out:sub(-5) or "\r\n" .. out:sub(-3))
    end
  end)

  -- An independent statement of the rules (spec/helpers/wire.lua).
  local reference = require("helpers.wire").reference

  it("matches the reference for random CRLF-heavy input cut at random places", function()
    math.randomseed(11)
    -- Mostly clean CRLF lines (the block-copy path) with the cases that
    -- must leave it: bare CR, bare LF, CR CR LF, leading dots.
    local pieces = { "text line\r\n", "x\r\n", "\r\n", ".dot\r\n", "..\r\n", "\r", "\n",
      "a", ".", "\r\r\n", "\n\r", "tail" }
    for _ = 1, 400 do
      local t = {}
      for i = 1, math.random(0, 60) do t[i] = pieces[math.random(#pieces)] end
      local input = table.concat(t)
      local chunks, at = {}, 1
      while at <= #input do
        local n = math.random(1, 12)
        chunks[#chunks + 1] = input:sub(at, at + n - 1)
        at = at + n
      end
      for _, stuff in ipairs({ true, false }) do
        assert.equal(reference(input, stuff), encode(chunks, stuff))
        assert.equal(reference(input, stuff), encode({ input }, stuff))
      end
    end
  end)

  it("only normalises line ends when stuffing is off (BDAT)", function()
    assert.equal(".a\r\nb\r\n", encode({ ".a\nb" }, false))
    assert.equal("", encode({ "" }, false))
  end)

  it("counts bytes in and out", function()
    local d = core.dotstuffer()
    d:encode(".x\n")
    d:finish()
    local bin, bout = d:counts()
    assert.equal(3, bin)
    assert.equal(#"..x\r\n.\r\n", bout)
  end)

  it("refuses a NUL byte (text only without BINARYMIME)", function()
    local d = core.dotstuffer()
    local out, kind = d:encode("a\0")
    assert.is_nil(out)
    assert.equal("usage", kind)
  end)

  it("refuses to encode after finish", function()
    local d = core.dotstuffer()
    d:finish()
    assert.has_error(function() d:encode("x") end)
    assert.equal("", d:finish())
  end)

  it("handles a 10 MB body in one chunk", function()
    local body = string.rep("line\n", 2 * 1024 * 1024)
    local out = encode({ body })
    assert.equal(#body + 2 * 1024 * 1024 + 3, #out)
  end)
end)
