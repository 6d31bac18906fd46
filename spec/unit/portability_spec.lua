-- Issue 7: the Lua layer runs unchanged on 5.1, 5.3, 5.4 and LuaJIT. Under
-- whichever Lua this suite runs, every module under lua/ and bin/smtp-send
-- compile (no `//`, bit operators, `goto` or `<close>` in shared files)
-- and use no string escapes 5.1 misreads (\x, \z, \u{});
-- the library globals they use are checked by luacheck (std "min",
-- .luacheckrc). A module no spec requires is still covered here.
local V = require "helpers.luaver"

local function files()
  local out = {}
  local p = assert(io.popen("find lua -name '*.lua' | sort"))
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  out[#out + 1] = "bin/smtp-send"
  return out
end

describe("the Lua layer under " .. V.interpreter, function()
  it("finds the modules to check", function()
    assert.is_true(#files() > 10)
  end)

  for _, path in ipairs(files()) do
    it("compiles " .. path, function()
      local f = assert(io.open(path, "rb"))
      -- A #! line is skipped by the interpreter, not by load().
      local text = f:read("*a"):gsub("^#![^\n]*", "")
      f:close()
      local chunk, err = V.load(text, "@" .. path)
      assert.is_function(chunk, err)
      -- 5.1 reads "\xc3" as "xc3" without a word: decimal escapes only.
      for line in text:gmatch("[^\n]+") do
        local code = line:gsub("^%s*%-%-.*", "")
        assert.is_nil(code:find("\\[xz]") or code:find("\\u{", 1, true), path .. ": " .. line)
      end
    end)
  end

  -- 5.3/5.4 print a float as "1.0e+06" or "1048576.0": sizes computed with
  -- `/` must be floored to integers before they reach "SIZE=".
  for _, n in ipairs({ 1, 57, 58, 1048576, 5 * 1048576 + 1 }) do
    it(("announces the exact integer size of a message with a %d-byte attachment"):format(n), function()
      local Message = require "smtp.message"
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:write(("\0\255"):rep(math.ceil(n / 2)):sub(1, n))
      f:close()
      local m = Message.new { from = "a@example.org", to = "b@example.org", text = "x",
        attachments = { { path = path, filename = "a.bin" } } }
      local size = m:requirements().size
      local whole = tostring(m)
      os.remove(path)
      assert.equal(#whole, size)
      -- Equal numbers can still print differently (1048576 == 1048576.0).
      assert.equal(tostring(#whole), tostring(size))
    end)
  end
end)
