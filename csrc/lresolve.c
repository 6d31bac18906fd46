/* 'smtp.core.Resolve': a name lookup an event loop can wait for (SPEC
 * 5.1), for loops that bring no resolver of their own. resolve.c runs
 * getaddrinfo in a helper thread; this hands Lua its fd and the answer.
 *
 *   core.resolve_start(host, port) -> r | nil, kind, msg
 *   r:fileno() -> fd to wait readable on (-1: already answered)
 *   r:result() -> {"192.0.2.1", "2001:db8::1", ...}
 *               | nil, "want", "r" | nil, kind, msg
 *   r:close()  (also __gc / __close): abandons a lookup still running */
#include "lsmtp.h"
#include "lresolve.h"
#include "resolve.h"
#include "err.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define SMTP_RESOLVE_MT "smtp.core.Resolve"

struct lresolve {
    struct smtp_resolve *r;     /* NULL once closed */
};

static struct lresolve *check_resolve(lua_State *L)
{
    return luaL_checkudata(L, 1, SMTP_RESOLVE_MT);
}

static int lresolve_start(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    const char *port = luaL_checkstring(L, 2);
    struct lresolve *u = lua_newuserdatauv(L, sizeof *u, 0);
    char err[256] = "";
    int rc;
    u->r = NULL;
    luaL_setmetatable(L, SMTP_RESOLVE_MT);
    rc = smtp_resolve_start(&u->r, host, port, err, sizeof err);
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, err[0] ? err : NULL);
    return 1;
}

static int lresolve_fileno(lua_State *L)
{
    struct lresolve *u = check_resolve(L);
    lua_pushinteger(L, u->r != NULL ? smtp_resolve_fd(u->r) : -1);
    return 1;
}

static int lresolve_result(lua_State *L)
{
    struct lresolve *u = check_resolve(L);
    struct addrinfo *res, *ai;
    char err[256] = "";
    int rc, n = 0;
    if (u->r == NULL)
        return luaL_error(L, "resolver is closed");
    rc = smtp_resolve_result(u->r, &res, err, sizeof err);
    if (rc == SMTP_EWANTREAD) {
        lua_pushnil(L);
        lua_pushliteral(L, "want");
        lua_pushliteral(L, "r");
        return 3;
    }
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, err[0] ? err : NULL);
    lua_newtable(L);
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        char host[NI_MAXHOST];
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, NULL, 0,
                        NI_NUMERICHOST) != 0)
            continue;
        lua_pushstring(L, host);
        lua_rawseti(L, -2, ++n);
    }
    freeaddrinfo(res);
    return 1;
}

static int lresolve_close(lua_State *L)
{
    struct lresolve *u = check_resolve(L);
    smtp_resolve_free(u->r);
    u->r = NULL;
    return 0;
}

static const luaL_Reg lresolve_methods[] = {
    {"fileno", lresolve_fileno},
    {"result", lresolve_result},
    {"close", lresolve_close},
    {"__gc", lresolve_close},
    {"__close", lresolve_close},
    {NULL, NULL}
};

void lresolve_open(lua_State *L)
{
    smtp_new_class(L, SMTP_RESOLVE_MT, lresolve_methods);
    lua_pushcfunction(L, lresolve_start);
    lua_setfield(L, -2, "resolve_start");
}
