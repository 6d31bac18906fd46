-- The rockspec builds what the Makefile builds: the same C sources (ours
-- and the vendored mbedTLS's, `make print-srcs`), and every Lua module
-- under lua/.
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
  it("lists exactly the C sources the Makefile compiles", function()
    local sources = rockspec().build.modules["smtp.core"].sources
    local sorted = {}
    for i, s in ipairs(sources) do sorted[i] = s end
    table.sort(sorted)
    -- Not make's variables of an outer `make test`: a plain make.
    local made = list("env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s --no-print-directory print-srcs"
      .. " | tr ' ' '\\n' | sed '/^$/d'")
    assert.truthy(#made > 100, "make print-srcs listed " .. #made .. " files")
    assert.same(made, sorted)
  end)

  it("compiles every C source in csrc/", function()
    local sources = {}
    for _, s in ipairs(rockspec().build.modules["smtp.core"].sources) do sources[s] = true end
    for _, f in ipairs(list("ls csrc/*.c")) do
      assert.truthy(sources[f], f .. " is not in the rockspec")
    end
  end)

  it("gives the vendored mbedTLS our configuration, as the Makefile does", function()
    local core = rockspec().build.modules["smtp.core"]
    local defines = table.concat(core.defines, " ")
    assert.matches('MBEDTLS_CONFIG_FILE="smtp_mbedtls_config.h"', defines, 1, true)
    local mk = assert(io.open("mk/mbedtls.mk")):read("*a")
    assert.matches([[MBEDTLS_DEFINE = -DMBEDTLS_CONFIG_FILE='"smtp_mbedtls_config.h"']], mk, 1, true)
    local dirs = {}
    for _, d in ipairs(core.incdirs) do dirs[d] = true end
    local incdirs, n = mk:match("MBEDTLS_INCDIRS = (.-)\n%S"), 0
    for d in incdirs:gmatch("[%w_/%.%-%$%(%)]+") do
      d = d:gsub("%$%(MBEDTLS_DIR%)", "vendor/mbedtls")
      assert.truthy(dirs[d], d .. " is not among the rockspec's incdirs")
      n = n + 1
    end
    assert.truthy(n >= 3, "MBEDTLS_INCDIRS not found in mk/mbedtls.mk")
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
