-- Regression (found by fuzz/fuzz_reply.c): a truncated or malformed
-- enhanced status code (RFC 2034) must leave no enhanced field and keep
-- the text whole; the parser once left its enhanced buffer unterminated.
local core = require "smtp.core"

local function one(input)
  local p = core.reply_parser()
  assert(p:feed(input))
  return assert(p:next())
end

describe("smtp.core ReplyParser enhanced codes", function()
  local rows = {
    { "250 2.1\r\n", "2.1" },
    { "250 2.1.\r\n", "2.1." },
    { "250 2.\r\n", "2." },
    { "250 2x ok\r\n", "2x ok" },
    { "250 2.1.x ok\r\n", "2.1.x ok" },
    { "250 2.1234.5 ok\r\n", "2.1234.5 ok" },
    { "250 2\r\n", "2" },
    -- RFC 3463: the class is a single digit.
    { "250 200.1.1 ok\r\n", "200.1.1 ok" },
    { "250 20.1.1 ok\r\n", "20.1.1 ok" },
    { "550 555.1.1 no\r\n", "555.1.1 no" },
  }
  for _, row in ipairs(rows) do
    it("has none for " .. ("%q"):format(row[1]), function()
      local r = one(row[1])
      assert.is_nil(r.enhanced)
      assert.same({ row[2] }, r.lines)
    end)
  end

  it("keeps a one-digit class with three-digit subject and detail", function()
    local r = one("250 2.100.999 ok\r\n")
    assert.equal("2.100.999", r.enhanced)
    assert.same({ "ok" }, r.lines)
  end)
end)
