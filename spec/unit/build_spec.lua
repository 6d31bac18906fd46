-- The rockspec builds what the Makefile builds: the same C sources, and
-- every Lua module under lua/.
local V = require "helpers.luaver"
local function rockspec()
  local env = {}
  local chunk = assert(V.loadfile("rockspec/lua-smtp-scm-1.rockspec", env))
  chunk()
  return env
end

local function list(cmd)
  local out = {}
  local p = assert(io.popen(cmd))
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  table.sort(out)
  return out
end

describe("rockspec/lua-smtp-scm-1.rockspec", function()
  it("lists exactly the C sources in csrc/", function()
    local sources = rockspec().build.modules["smtp.core"].sources
    local sorted = {}
    for i, s in ipairs(sources) do sorted[i] = s end
    table.sort(sorted)
    assert.same(list("ls csrc/*.c"), sorted)
  end)

  it("installs every Lua module under lua/", function()
    local files = {}
    for name, src in pairs(rockspec().build.modules) do
      if type(src) == "string" then
        files[#files + 1] = src
        assert.equal(src, "lua/" .. name:gsub("%.", "/") .. ".lua")
      end
    end
    table.sort(files)
    assert.same(list("find lua -name '*.lua'"), files)
  end)
end)
