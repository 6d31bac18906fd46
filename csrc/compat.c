/* Implementations behind compat.h (most of them for Lua older than 5.4). */
#include <string.h>
#include "compat.h"

#include <lualib.h>

FILE *smtp_compat_tofile(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 502
    luaL_Stream *p = luaL_testudata(L, idx, LUA_FILEHANDLE);
    return (p != NULL && p->closef != NULL) ? p->f : NULL;
#else
    FILE **p = luaL_testudata(L, idx, LUA_FILEHANDLE);
    return p != NULL ? *p : NULL;
#endif
}

#if LUA_VERSION_NUM < 502
#if defined(SMTP_COMPAT_AUX52)
void smtp_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name != NULL; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

void *smtp_compat_testudata(lua_State *L, int i, const char *tname)
{
    void *p = lua_touserdata(L, i);
    if (p == NULL || !lua_getmetatable(L, i))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}

void smtp_compat_setmetatable(lua_State *L, const char *tname)
{
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}
#endif

/* luaL_tolstring of 5.2: __tostring when there is one, else a readable
 * rendering of the value. The result stays on the stack. */
const char *smtp_compat_tolstring(lua_State *L, int idx, size_t *len)
{
    idx = lua_absindex(L, idx);
    if (luaL_callmeta(L, idx, "__tostring")) {
        if (!lua_isstring(L, -1))
            luaL_error(L, "'__tostring' must return a string");
    } else {
        switch (lua_type(L, idx)) {
        case LUA_TNUMBER:
        case LUA_TSTRING:
            lua_pushvalue(L, idx);
            break;
        case LUA_TBOOLEAN:
            lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
            break;
        case LUA_TNIL:
            lua_pushliteral(L, "nil");
            break;
        default:
            lua_pushfstring(L, "%s: %p", luaL_typename(L, idx), lua_topointer(L, idx));
            break;
        }
    }
    return lua_tolstring(L, -1, len);
}

void smtp_compat_buffinit(lua_State *L, luaL_Buffer *b)
{
    b->L = L;
    b->ptr = b->init;
    b->n = 0;
    b->cap = sizeof b->init;
    b->boxed = 0;
}

/* Grows into a fresh userdata box on the stack top (replacing the old
 * box), so the garbage collector owns every byte even if an error
 * unwinds the C frame. */
char *smtp_compat_prepbuffsize(luaL_Buffer *b, size_t sz)
{
    if (b->cap - b->n < sz) {
        size_t cap = b->cap * 2;
        char *nb;
        if (cap - b->n < sz)
            cap = b->n + sz;
        if (cap < b->n)
            luaL_error(b->L, "buffer too large");
        nb = lua_newuserdata(b->L, cap);
        memcpy(nb, b->ptr, b->n);
        if (b->boxed)
            lua_replace(b->L, -2);
        b->boxed = 1;
        b->ptr = nb;
        b->cap = cap;
    }
    return b->ptr + b->n;
}

void smtp_compat_addlstring(luaL_Buffer *b, const char *s, size_t len)
{
    if (len > 0) {
        memcpy(smtp_compat_prepbuffsize(b, len), s, len);
        b->n += len;
    }
}

/* Adds the string on the stack top and pops it (it sits above the box).
 * Its bytes stay valid while it is on the stack. */
void smtp_compat_addvalue(luaL_Buffer *b)
{
    size_t len;
    const char *s = lua_tolstring(b->L, -1, &len);
    if (s == NULL)
        luaL_error(b->L, "attempt to add a non-string value to a buffer");
    if (b->cap - b->n < len) {
        if (b->boxed)
            lua_insert(b->L, -2); /* the box must be on top to be replaced */
        memcpy(smtp_compat_prepbuffsize(b, len), s, len);
        lua_remove(b->L, -2);
    } else {
        memcpy(b->ptr + b->n, s, len);
        lua_pop(b->L, 1);
    }
    b->n += len;
}

void smtp_compat_pushresult(luaL_Buffer *b)
{
    lua_pushlstring(b->L, b->ptr, b->n);
    if (b->boxed)
        lua_remove(b->L, -2);
}
#endif

#if LUA_VERSION_NUM < 504
void *smtp_compat_newuserdatauv(lua_State *L, size_t size, int nuv)
{
    void *p = lua_newuserdata(L, size);
    if (nuv > 0) {
        lua_createtable(L, nuv, 0);
#if LUA_VERSION_NUM < 502
        lua_setfenv(L, -2);
#else
        lua_setuservalue(L, -2);
#endif
    }
    return p;
}

static void push_uservalue_table(lua_State *L, int idx)
{
#if LUA_VERSION_NUM < 502
    lua_getfenv(L, idx);
#else
    lua_getuservalue(L, idx);
#endif
}

int smtp_compat_getiuservalue(lua_State *L, int idx, int n)
{
    idx = lua_absindex(L, idx);
    push_uservalue_table(L, idx);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return LUA_TNONE;
    }
    lua_rawgeti(L, -1, n);
    lua_remove(L, -2);
    return lua_type(L, -1);
}

int smtp_compat_setiuservalue(lua_State *L, int idx, int n)
{
    idx = lua_absindex(L, idx);
    push_uservalue_table(L, idx);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 2);
        return 0;
    }
    lua_insert(L, -2);
    lua_rawseti(L, -2, n);
    lua_pop(L, 1);
    return 1;
}
#endif

/* ISO C forbids an empty translation unit. */
typedef int smtp_compat_unused;
