/* Minimal lua5.4 with symbols (links Debian's liblua5.4.a) for perf. */
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
#include <stdio.h>
int main(int argc, char **argv) {
    lua_State *L = luaL_newstate();
    int i;
    luaL_openlibs(L);
    lua_createtable(L, argc, 0);
    for (i = 0; i < argc; i++) { lua_pushstring(L, argv[i]); lua_rawseti(L, -2, i - 1); }
    lua_setglobal(L, "arg");
    if (luaL_loadfile(L, argv[1]) != LUA_OK) { fprintf(stderr, "%s\n", lua_tostring(L, -1)); return 1; }
    for (i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
    if (lua_pcall(L, argc - 2, 0, 0) != LUA_OK) { fprintf(stderr, "%s\n", lua_tostring(L, -1)); return 1; }
    lua_close(L);
    return 0;
}
