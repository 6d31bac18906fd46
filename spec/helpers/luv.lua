-- luv for the specs (issue 24). load() gives the module, loaded once per
-- Lua state and never let go, or nil when it is not installed; installed()
-- says whether require "luv" would find it, without loading it, for specs
-- that run luv only in child processes.
--
-- Never let go: luv 1.44 (Debian 12) keeps its one uv_loop_t in the table
-- the first require "luv" returns and frees it when that table is
-- collected, yet a later require (busted clears package.loaded after each
-- spec file) gets a table on that same loop, freed or not (luv.c
-- luaopen_luv creates a loop only while its context has none;
-- luvit/luv#819). A table dropped by one spec file thus crashed the luv
-- specs of a later one. The registry outlives busted's insulation.
local M = {}

local KEY = "lua-smtp spec helpers.luv"

function M.installed()
  return package.searchpath("luv", package.cpath) ~= nil
end

function M.load()
  local reg = debug.getregistry()
  if reg[KEY] == nil then
    local ok, uv = pcall(require, "luv")
    -- Only the first table luv hands out carries _loop, the loop's owner:
    -- without it, someone loaded luv before and may have dropped it.
    if ok and uv._loop == nil then
      error("helpers.luv: luv was loaded before in this process (load it only through helpers.luv; "
        .. "its loop dies with the first module table, luvit/luv#819)", 2)
    end
    reg[KEY] = ok and uv or false
  end
  return reg[KEY] or nil
end

return M
