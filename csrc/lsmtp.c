/* luaopen_smtp_core: the one entry point of the C module. It only wires the
 * bindings together; each l*.c file owns its userdata type. */
#include "lsmtp.h"
#include "err.h"
#include "deadline.h"
#include "lpoolkey.h"
#include "lfsutil.h"
#include "lresolve.h"
#include "lspawn.h"
#include "lidn.h"

int smtp_push_failure(lua_State *L, int code, const char *message)
{
    lua_pushnil(L);
    lua_pushstring(L, smtp_err_kind(code));
    lua_pushstring(L, message != NULL ? message : smtp_strerror(code));
    return 3;
}

void smtp_new_class(lua_State *L, const char *name, const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}

/* Monotonic seconds, the clock every deadline given to smtp.core uses. */
static int lsmtp_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)smtp_now_ms() / 1000.0);
    return 1;
}

typedef void (*smtp_opener)(lua_State *L);

static const smtp_opener openers[] = {
    lconn_open,
    lreply_open,
    ldotstuff_open,
    lcodec_open,
    ltls_open,
    lsasl_open,
    ldkim_open,
    lpoolkey_open,
    lfsutil_open,
    lresolve_open,
    lspawn_open,
    lidn_open,
    NULL
};

SMTP_EXPORT int luaopen_smtp_core(lua_State *L)
{
    const smtp_opener *open;
    lua_newtable(L);
    for (open = openers; *open != NULL; open++)
        (*open)(L);
    lua_pushcfunction(L, lsmtp_now);
    lua_setfield(L, -2, "now");
    lua_pushliteral(L, "lua-smtp core");
    lua_setfield(L, -2, "_NAME");
    return 1;
}
