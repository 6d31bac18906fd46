-- Terminal escape injection (security review L12): server text is printed
-- with its control bytes escaped by trace.printable, both by the stderr
-- trace hook (debug = true) and by tostring(err) (see error_spec); the
-- raw text stays available to programs.
local trace = require "smtp.trace"
local P = require "helpers.proc"
local V = require "helpers.luaver"

-- Any byte a terminal would act on: C0 but TAB, and DEL.
local CONTROL = "[%z\1-\8\10-\31\127]"

describe("trace.printable", function()
  it("shows ESC, BEL, NUL, CR, LF and DEL as \\xHH", function()
    assert.equal("a\\x1b[2J\\x07b\\x00c\\x0dd\\x0ae\\x7f", trace.printable("a\27[2J\7b\0c\rd\ne\127"))
  end)

  it("escapes every C0 control but TAB", function()
    for b = 0, 31 do
      local out = trace.printable("<" .. string.char(b) .. ">")
      if b == 9 then
        assert.equal("<\t>", out)
      else
        assert.equal(("<\\x%02x>"):format(b), out)
      end
    end
  end)

  it("escapes C1 controls in their UTF-8 form (U+009B is CSI on some terminals)", function()
    assert.equal("\\xc2\\x9b2J \\xc2\\x80", trace.printable("\194\1552J \194\128"))
  end)

  it("leaves text without controls as it is, UTF-8 and backslashes included", function()
    for _, s in ipairs({ "", "250 2.0.0 Ok: queued as 4F2C1", "Grüße aus Köln ½ \194\160nbsp", "C:\\path\\x1b", "a\tb" }) do
      assert.equal(s, trace.printable(s))
    end
  end)

  it("takes non-strings through tostring", function()
    assert.equal("42", trace.printable(42))
  end)
end)

describe("the stderr trace hook (debug = true)", function()
  it("writes a hostile reply line with its control bytes escaped", function()
    local dir = P.tempdir("escape")
    local root = P.run("pwd"):gsub("\n$", "")
    local script = dir .. "/hook.lua"
    -- The hostile line is built inside the child, so no control byte goes
    -- through the shell.
    P.write_file(script, [[
local hook = require("smtp.trace").hook_of(true)
hook("S", "250-mx \27]0;owned\7 \27[2J\27[31mred\194\155 \0 end\r")
hook("C", "MAIL FROM:<a@example.org>")
]])
    local err_file = dir .. "/stderr"
    local ok, code = V.execute(("env LUA_PATH=%s %s %s 2> %s"):format(
      P.q(root .. "/lua/?.lua;;"), V.interpreter, P.q(script), P.q(err_file)))
    assert.is_true(ok, "exit " .. tostring(code) .. ": " .. tostring(P.read_file(err_file)))
    local err = assert(P.read_file(err_file))
    assert.equal("S: 250-mx \\x1b]0;owned\\x07 \\x1b[2J\\x1b[31mred\\xc2\\x9b \\x00 end\\x0d\n" ..
      "C: MAIL FROM:<a@example.org>\n", err)
    -- One line per trace entry, and nothing a terminal would obey.
    assert.is_nil(err:gsub("\n", ""):find(CONTROL))
  end)
end)
