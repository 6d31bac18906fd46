/* Binding of the DATA encoder: smtp.core.dotstuffer([stuff]) and the
 * 'smtp.core.DotStuffer' userdata (encode, finish, counts). */
#include "ldotstuff.h"
#include "lsmtp.h"
#include "err.h"

#include <stdlib.h>

struct smtp_dotstuffer *ldotstuff_check(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, SMTP_DOTSTUFFER_MT);
}

/* dotstuffer([stuff = true [, binary = false]]): stuff=false only
 * normalises line ends (BDAT); binary=true passes bytes untouched
 * (BDAT with BODY=BINARYMIME). */
static int ldotstuff_new(lua_State *L)
{
    int stuff = lua_isnoneornil(L, 1) ? 1 : lua_toboolean(L, 1);
    int binary = lua_toboolean(L, 2);
    struct smtp_dotstuffer *d = lua_newuserdatauv(L, sizeof *d, 0);
    if (binary)
        smtp_dot_init_binary(d);
    else
        smtp_dot_init(d, stuff);
    luaL_setmetatable(L, SMTP_DOTSTUFFER_MT);
    return 1;
}

/* nil, "usage", "message contains a NUL byte: ..." */
static int nul_failure(lua_State *L, const struct smtp_dotstuffer *d)
{
    char msg[192];
    smtp_dot_nul_message(d, msg, sizeof msg);
    return smtp_push_failure(L, SMTP_EUSAGE, msg);
}

/* encode(chunk) -> bytes | nil, "usage", msg once a NUL was seen outside
 * binary mode (then for every later call too). */
static int ldotstuff_encode(lua_State *L)
{
    struct smtp_dotstuffer *d = ldotstuff_check(L, 1);
    size_t len, n;
    const char *in = luaL_checklstring(L, 2, &len);
    luaL_Buffer b;
    char *out;
    luaL_argcheck(L, !d->finished, 1, "encoder already finished");
    if (d->nul)
        return nul_failure(L, d);
    luaL_buffinit(L, &b);
    out = luaL_prepbuffsize(&b, SMTP_DOT_MAX_OUT(len));
    n = smtp_dot_encode(d, in, len, out);
    if (d->nul)
        return nul_failure(L, d); /* the buffer is dropped unused */
    luaL_addsize(&b, n);
    luaL_pushresult(&b);
    return 1;
}

/* finish() -> tail | nil, "usage", msg: no terminator for a body that
 * held a NUL. */
static int ldotstuff_finish(lua_State *L)
{
    struct smtp_dotstuffer *d = ldotstuff_check(L, 1);
    char out[SMTP_DOT_FINISH_MAX];
    size_t n;
    if (d->nul)
        return nul_failure(L, d);
    n = smtp_dot_finish(d, out);
    lua_pushlstring(L, out, n);
    return 1;
}

/* Bytes taken and bytes produced so far, for progress reports. */
static int ldotstuff_counts(lua_State *L)
{
    struct smtp_dotstuffer *d = ldotstuff_check(L, 1);
    lua_pushnumber(L, (lua_Number)d->bytes_in);
    lua_pushnumber(L, (lua_Number)d->bytes_out);
    return 2;
}

static const luaL_Reg ldotstuff_methods[] = {
    {"encode", ldotstuff_encode},
    {"finish", ldotstuff_finish},
    {"counts", ldotstuff_counts},
    {NULL, NULL}
};

void ldotstuff_open(lua_State *L)
{
    smtp_new_class(L, SMTP_DOTSTUFFER_MT, ldotstuff_methods);
    lua_pushcfunction(L, ldotstuff_new);
    lua_setfield(L, -2, "dotstuffer");
}
