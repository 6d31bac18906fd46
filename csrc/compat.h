/* Lua version differences, in one place: the bindings are written against
 * the Lua 5.4 API and this header supplies it on 5.3, 5.2, 5.1 and LuaJIT. */
#ifndef SMTP_COMPAT_H
#define SMTP_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502
#define lua_rawlen(L, i) lua_objlen((L), (i))
#define luaL_newlib(L, l) (lua_newtable(L), luaL_setfuncs((L), (l), 0))
void smtp_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
#define luaL_setfuncs smtp_compat_setfuncs
void *smtp_compat_testudata(lua_State *L, int i, const char *tname);
#define luaL_testudata smtp_compat_testudata
#define lua_absindex(L, i) (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#endif

#if LUA_VERSION_NUM < 504
/* Before 5.4 a userdata has one user value, a table we index by 'n'. */
void *smtp_compat_newuserdatauv(lua_State *L, size_t size, int nuv);
int smtp_compat_getiuservalue(lua_State *L, int idx, int n);
int smtp_compat_setiuservalue(lua_State *L, int idx, int n);
#define lua_newuserdatauv smtp_compat_newuserdatauv
#define lua_getiuservalue smtp_compat_getiuservalue
#define lua_setiuservalue smtp_compat_setiuservalue
#endif

#endif
