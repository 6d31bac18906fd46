/* Lua version differences, in one place: the bindings are written against
 * the Lua 5.4 API and this header supplies it on 5.3, 5.2, 5.1 and LuaJIT
 * 2.1 (which has a few 5.2 functions of its own: luaL_setfuncs,
 * luaL_testudata, luaL_setmetatable, luaL_newlib). Nothing else in csrc/
 * tests LUA_VERSION_NUM. */
#ifndef SMTP_COMPAT_H
#define SMTP_COMPAT_H

#include <stddef.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>

#ifndef LUA_OK
#define LUA_OK 0
#endif

#if LUA_VERSION_NUM < 502

/* LuaJIT 2.1's lauxlib.h defines luaL_newlibtable together with the 5.2
 * functions it provides; plain Lua 5.1 has none of them. */
#if !defined(luaL_newlibtable)
#define SMTP_COMPAT_AUX52 1
#define luaL_newlibtable(L, l) lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#define luaL_newlib(L, l) (luaL_newlibtable((L), (l)), luaL_setfuncs((L), (l), 0))
void smtp_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
#define luaL_setfuncs smtp_compat_setfuncs
void *smtp_compat_testudata(lua_State *L, int i, const char *tname);
#define luaL_testudata smtp_compat_testudata
void smtp_compat_setmetatable(lua_State *L, const char *tname);
#define luaL_setmetatable smtp_compat_setmetatable
#endif

#define lua_rawlen(L, i) lua_objlen((L), (i))
#define lua_absindex(L, i) (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
const char *smtp_compat_tolstring(lua_State *L, int idx, size_t *len);
#define luaL_tolstring smtp_compat_tolstring

/* The 5.1 luaL_Buffer cannot hand out more than LUAL_BUFFERSIZE bytes at
 * once, so luaL_prepbuffsize is impossible on it. This replacement keeps
 * its bytes in a fixed array first, then in a userdata box left on the
 * stack (as 5.2+ does), and pushes one string at the end. Only the
 * functions declared here may be used on it. */
struct smtp_compat_buffer {
    char *ptr;
    size_t n, cap;
    lua_State *L;
    int boxed;
    char init[LUAL_BUFFERSIZE];
};
#define luaL_Buffer struct smtp_compat_buffer
void smtp_compat_buffinit(lua_State *L, luaL_Buffer *b);
char *smtp_compat_prepbuffsize(luaL_Buffer *b, size_t sz);
void smtp_compat_addlstring(luaL_Buffer *b, const char *s, size_t len);
void smtp_compat_addvalue(luaL_Buffer *b);
void smtp_compat_pushresult(luaL_Buffer *b);
#define luaL_buffinit smtp_compat_buffinit
#define luaL_prepbuffsize smtp_compat_prepbuffsize
#undef luaL_prepbuffer
#define luaL_prepbuffer(b) smtp_compat_prepbuffsize((b), LUAL_BUFFERSIZE)
#undef luaL_addsize
#define luaL_addsize(b, s) ((b)->n += (s))
#undef luaL_addchar
#define luaL_addchar(b, c) \
    ((void)((b)->n < (b)->cap || smtp_compat_prepbuffsize((b), 1)), (b)->ptr[(b)->n++] = (char)(c))
#define luaL_addlstring smtp_compat_addlstring
#define luaL_addstring(b, s) smtp_compat_addlstring((b), (s), strlen(s))
#define luaL_addvalue smtp_compat_addvalue
#define luaL_pushresult smtp_compat_pushresult

#endif /* LUA_VERSION_NUM < 502 */

#if LUA_VERSION_NUM < 504
/* Before 5.4 a userdata has one user value, a table we index by 'n'. */
void *smtp_compat_newuserdatauv(lua_State *L, size_t size, int nuv);
int smtp_compat_getiuservalue(lua_State *L, int idx, int n);
int smtp_compat_setiuservalue(lua_State *L, int idx, int n);
#define lua_newuserdatauv smtp_compat_newuserdatauv
#define lua_getiuservalue smtp_compat_getiuservalue
#define lua_setiuservalue smtp_compat_setiuservalue
#endif

/* The stdio stream of an open Lua file handle (io.open) at idx; NULL
 * when the value is not a file handle or the file is closed. 5.2+ keep a
 * luaL_Stream, 5.1 and LuaJIT a struct whose first field is the FILE *. */
#include <stdio.h>
FILE *smtp_compat_tofile(lua_State *L, int idx);

#endif
