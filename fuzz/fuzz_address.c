/* libFuzzer target for the address parser lua/smtp/address.lua (RFC 5322
 * 3.4, RFC 2047 names) run in an embedded Lua 5.4 state, with the whole C
 * module linked in as smtp.core. parse_list must return mailboxes or raise
 * an smtp.Error of kind "usage", never another error; every mailbox must
 * format to a header value without CR/LF/NUL that parses back to it.
 * A line hook feeds Lua line-to-line edges to libFuzzer as extra counters,
 * so the search is guided by the Lua code's coverage, not only the C. */
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int luaopen_smtp_core(lua_State *L);

/* Returns check(s): raises "PROPERTY: ..." on a violation. */
static const char checker[] =
    "package.path = (os.getenv('SMTP_LUA_DIR') or 'lua') .. '/?.lua;' .. package.path\n"
    "local address = require 'smtp.address'\n"
    "local function prop(cond, what, ...)\n"
    "  if not cond then error('PROPERTY: ' .. what:format(...), 0) end\n"
    "end\n"
    "-- Runs f(...); a usage Error counts as a clean refusal.\n"
    "local function try(f, ...)\n"
    "  local ok, r = pcall(f, ...)\n"
    "  if ok then return r end\n"
    "  prop(type(r) == 'table' and r.kind == 'usage', 'raised a non-usage error: %s',\n"
    "       type(r) == 'table' and tostring(r.kind) .. ': ' .. tostring(r.message) or tostring(r))\n"
    "  return nil\n"
    "end\n"
    "local function same(a, b)\n"
    "  return a.address == b.address and a.name == b.name\n"
    "end\n"
    "return function(s)\n"
    "  local list = try(address.parse_list, s)\n"
    "  if not list then return end\n"
    "  for _, m in ipairs(list) do\n"
    "    prop(type(m.address) == 'string' and not m.address:find('[\\r\\n%z]'),\n"
    "         'bad address %q from %q', tostring(m.address), s)\n"
    "    prop(m.name == nil or type(m.name) == 'string', 'bad name from %q', s)\n"
    "    -- Names decoded from encoded-words may hold CR/LF: format refuses them.\n"
    "    local f = try(address.format, m)\n"
    "    if f then\n"
    "      prop(not f:find('[\\r\\n%z]'), 'format gave CR/LF/NUL: %q', f)\n"
    "      local back = try(address.parse, f)\n"
    "      prop(back ~= nil, 'format(%q) = %q does not parse', s, f)\n"
    "      -- One round may canonicalise quoting; after it, stable.\n"
    "      local f2 = try(address.format, back)\n"
    "      prop(f2 ~= nil, 'second format of %q failed', f)\n"
    "      local back2 = try(address.parse, f2)\n"
    "      prop(back2 ~= nil and same(back, back2), 'not stable: %q -> %q -> %q', s, f, f2)\n"
    "      -- An empty name (from an empty encoded-word) formats as none.\n"
    "      local name = m.name ~= '' and m.name or nil\n"
    "      prop(back.name == name, 'name changed: %q -> %q (%q vs %q)', s, f,\n"
    "           tostring(m.name), tostring(back.name))\n"
    "    end\n"
    "  end\n"
    "end\n";

static lua_State *L;

/* libFuzzer reads this section as extra coverage counters (Linux). */
#define NCOUNTERS 8192
__attribute__((section("__libfuzzer_extra_counters"), used))
static uint8_t lua_counters[NCOUNTERS];
static uintptr_t prev_loc;

static void line_hook(lua_State *l, lua_Debug *ar)
{
    uintptr_t loc;
    if (!lua_getinfo(l, "S", ar))
        return;
    /* Chunk sources are interned strings: their address names the file. */
    loc = ((uintptr_t)ar->source >> 4) * 31u + (uintptr_t)ar->currentline;
    loc = (loc * 2654435761u) & (NCOUNTERS - 1);
    lua_counters[(loc ^ (prev_loc >> 1)) & (NCOUNTERS - 1)]++;
    prev_loc = loc;
}

static void setup(void)
{
    L = luaL_newstate();
    if (L == NULL)
        abort();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_smtp_core);
    lua_setfield(L, -2, "smtp.core");
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, checker, sizeof checker - 1, "=fuzz_address") != LUA_OK
        || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_address setup: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_address.check");
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (L == NULL)
        setup();
    prev_loc = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_address.check");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "property failed: %s\n", lua_tostring(L, -1));
        abort();
    }
    return 0;
}
