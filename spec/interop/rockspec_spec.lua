-- luarocks builds and installs the rock into a private tree, and the
-- installed module loads in a fresh lua5.4 (no checkout paths involved).
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  return ok, out
end

describe("luarocks make #interop", function()
  it("installs a rock that a clean lua5.4 can require", function()
    local ok0 = run("command -v luarocks")
    if not ok0 then
      pending("luarocks is not installed")
      return
    end
    local dir = os.tmpname()
    os.remove(dir)
    assert(run("mkdir -p " .. dir .. "/src && cp -r csrc lua rockspec bin " .. dir .. "/src/"))
    local ok, out = run(("cd %s/src && luarocks --lua-version=5.4 make --tree=%s/tree rockspec/lua-smtp-scm-1.rockspec")
      :format(dir, dir))
    assert.is_true(ok, out)
    local lok, lout = run(("cd / && LUA_PATH='%s/tree/share/lua/5.4/?.lua;%s/tree/share/lua/5.4/?/init.lua' " ..
      "LUA_CPATH='%s/tree/lib/lua/5.4/?.so' lua5.4 -e 'local s = require \"smtp\"; " ..
      "assert(require(\"smtp.core\").reply_parser); io.write(s.VERSION)'"):format(dir, dir, dir))
    run("rm -rf " .. dir)
    assert.is_true(lok, lout)
    assert.truthy(lout:match("^%d+%.%d+%.%d+$"), lout)
  end)
end)
