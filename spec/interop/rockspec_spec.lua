-- luarocks builds and installs the rock into a private tree for the Lua of
-- this run, and the installed module loads in a fresh interpreter of that
-- Lua (no checkout paths involved). LuaJIT uses the 5.1 rock tree.
local P = require "helpers.proc"
local V = require "helpers.luaver"

local ABI = _VERSION:match("%d+%.%d+")

describe("luarocks make #interop", function()
  it("installs a rock that a clean " .. V.interpreter .. " can require", function()
    if not P.try("command -v luarocks") then
      pending("luarocks is not installed")
      return
    end
    local dir = P.tempdir("rockspec")
    P.run("mkdir -p " .. P.q(dir) .. "/src && cp -r csrc lua rockspec bin vendor " .. P.q(dir) .. "/src/")
    local ok, out = P.try(("cd %s/src && luarocks --lua-version=%s make --tree=%s/tree rockspec/lua-smtp-scm-1.rockspec")
      :format(P.q(dir), ABI, P.q(dir)))
    assert.is_true(ok, out)
    local lok, lout = P.try(("cd / && LUA_PATH='%s/tree/share/lua/%s/?.lua;%s/tree/share/lua/%s/?/init.lua' " ..
      "LUA_CPATH='%s/tree/lib/lua/%s/?.so' %s -e 'local s = require \"smtp\"; " ..
      "assert(require(\"smtp.core\").reply_parser); io.write(s.VERSION)'")
      :format(dir, ABI, dir, ABI, dir, ABI, V.interpreter))
    P.run("rm -rf " .. P.q(dir))
    assert.is_true(lok, lout)
    assert.truthy(lout:match("^%d+%.%d+%.%d+$"), lout)
  end)
end)
