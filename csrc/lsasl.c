/* Binding of the libgsasl sessions: smtp.core.sasl_client(mech, props), the
 * test-only smtp.core.sasl_server(mech, props), the 'smtp.core.Sasl'
 * userdata (step, finish, done) and sasl_mechanisms, sasl_supports,
 * sasl_property_known, sasl_b64encode, sasl_b64decode. Bytes in and
 * out; the RFC 4954 framing is the Lua layer's. */
#include "lsmtp.h"
#include "sasl.h"
#include "err.h"

#include <string.h>

static struct smtp_sasl *lsasl_check(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, SMTP_SASL_MT);
}

/* Copies every name = value of the table at 'idx' into the session. Keys
 * must be strings, values strings or numbers. On failure it pushes one
 * message string and returns the code; on success the stack is unchanged. */
static int lsasl_set_props(lua_State *L, struct smtp_sasl *s, int idx)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *name, *value;
        size_t len;
        int rc;
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            lua_pushliteral(L, "SASL property names must be strings");
            return SMTP_EUSAGE;
        }
        name = lua_tostring(L, -2);
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
            lua_pushfstring(L, "SASL property '%s' must be a string", name);
            lua_replace(L, -3);
            lua_pop(L, 1);
            return SMTP_EUSAGE;
        }
        /* Convert a copy: lua_next must see the original value type. */
        lua_pushvalue(L, -1);
        value = lua_tolstring(L, -1, &len);
        rc = smtp_sasl_set(s, name, value, len);
        lua_pop(L, 2);
        if (rc != SMTP_OK) {
            if (!smtp_sasl_property_known(name))
                lua_pushfstring(L, "unknown SASL property '%s'", name);
            else
                lua_pushfstring(L, "SASL property '%s': %s", name, s->msg);
            lua_replace(L, -2);
            return rc;
        }
    }
    return SMTP_OK;
}

/* Shared by sasl_client and sasl_server: the userdata gets its metatable
 * before libgsasl allocates anything, so a failure leaves a closed object
 * for the collector. */
static int lsasl_new(lua_State *L, int role)
{
    const char *mech = luaL_checkstring(L, 1);
    struct smtp_sasl *s;
    int rc, cb_supported = lua_toboolean(L, 3);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, SMTP_SASL_MT);
    rc = smtp_sasl_start(s, role, mech);
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, s->msg);
    if (!lua_isnoneornil(L, 2)) {
        rc = lsasl_set_props(L, s, 2);
        if (rc != SMTP_OK) {
            smtp_sasl_finish(s);
            return smtp_push_failure(L, rc, lua_tostring(L, -1));
        }
    }
    if (role == SMTP_SASL_CLIENT && cb_supported) {
        rc = smtp_sasl_cb_supported(s);
        if (rc != SMTP_OK) {
            const char *msg = s->msg;
            smtp_sasl_finish(s);
            return smtp_push_failure(L, rc, msg);
        }
    }
    return 1;
}

/* sasl_client(mechanism, props[, cb_supported]) -> session | nil, kind,
 * message. cb_supported: the connection could bind but the mechanism is
 * a plain SCRAM one, so the client sends gs2 flag y (RFC 5802 6). */
static int lsasl_client(lua_State *L)
{
    return lsasl_new(L, SMTP_SASL_CLIENT);
}

/* sasl_server(mechanism, props): a real libgsasl SERVER session, for the
 * unit tests and the fuzzers only (props.password is what it expects). */
static int lsasl_server(lua_State *L)
{
    return lsasl_new(L, SMTP_SASL_SERVER);
}

/* session:step([bytes]) -> response, done | nil, kind, message */
static int lsasl_step(lua_State *L)
{
    struct smtp_sasl *s = lsasl_check(L, 1);
    size_t inlen = 0, outlen;
    const char *in = luaL_optlstring(L, 2, NULL, &inlen);
    char *out;
    int done, rc;
    rc = smtp_sasl_step(s, in, inlen, &out, &outlen, &done);
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, s->msg);
    /* The response may hold the password (PLAIN, LOGIN): wipe our copy
     * once Lua has its own. */
    lua_pushlstring(L, out != NULL ? out : "", outlen);
    smtp_sasl_free_output(out, outlen);
    lua_pushboolean(L, done);
    return 2;
}

/* session:finish(): wipes and frees; later steps fail with 'usage'. */
static int lsasl_finish(lua_State *L)
{
    smtp_sasl_finish(lsasl_check(L, 1));
    return 0;
}

/* session:done() -> whether the mechanism completed its own checks. */
static int lsasl_done(lua_State *L)
{
    struct smtp_sasl *s = lsasl_check(L, 1);
    lua_pushboolean(L, s->done);
    return 1;
}

static int lsasl_tostring(lua_State *L)
{
    struct smtp_sasl *s = lsasl_check(L, 1);
    if (s->gs == NULL)
        lua_pushliteral(L, SMTP_SASL_MT " (closed)");
    else
        lua_pushfstring(L, "%s (%s%s)", SMTP_SASL_MT,
                        s->role == SMTP_SASL_SERVER ? "server, " : "",
                        s->done ? "done" : s->failed ? "failed" : "open");
    return 1;
}

/* sasl_mechanisms() -> list of client mechanism names libgsasl supports */
static int lsasl_mechanisms(lua_State *L)
{
    char *list = smtp_sasl_mechlist();
    const char *p;
    int i = 1;
    lua_newtable(L);
    if (list == NULL)
        return 1;
    p = list;
    while (*p != '\0') {
        size_t n;
        while (*p == ' ')
            p++;
        n = strcspn(p, " ");
        if (n > 0) {
            lua_pushlstring(L, p, n);
            lua_rawseti(L, -2, i++);
        }
        p += n;
    }
    smtp_sasl_free_output(list, strlen(list));
    return 1;
}

/* sasl_property_known(name) -> whether sasl_client accepts that property */
static int lsasl_property_known(lua_State *L)
{
    lua_pushboolean(L, smtp_sasl_property_known(luaL_checkstring(L, 1)));
    return 1;
}

static int lsasl_supports(lua_State *L)
{
    lua_pushboolean(L, smtp_sasl_supports(luaL_checkstring(L, 1)));
    return 1;
}

/* sasl_b64encode(bytes) -> base64 (RFC 4648, padded; "" for "") */
static int lsasl_b64encode(lua_State *L)
{
    size_t len, outlen;
    const char *in = luaL_checklstring(L, 1, &len);
    char *out;
    int rc = smtp_sasl_b64encode(in, len, &out, &outlen);
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, NULL);
    lua_pushlstring(L, out != NULL ? out : "", outlen);
    smtp_sasl_free_output(out, outlen);
    return 1;
}

/* sasl_b64decode(text) -> bytes | nil, "protocol", message */
static int lsasl_b64decode(lua_State *L)
{
    size_t len, outlen;
    const char *in = luaL_checklstring(L, 1, &len);
    const char *msg;
    char *out;
    int rc = smtp_sasl_b64decode(in, len, &out, &outlen, &msg);
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, msg);
    lua_pushlstring(L, out != NULL ? out : "", outlen);
    smtp_sasl_free_output(out, outlen);
    return 1;
}

static int lsasl_gc(lua_State *L)
{
    struct smtp_sasl *s = luaL_testudata(L, 1, SMTP_SASL_MT);
    if (s != NULL)
        smtp_sasl_finish(s);
    return 0;
}

static const luaL_Reg lsasl_methods[] = {
    {"step", lsasl_step},
    {"finish", lsasl_finish},
    {"close", lsasl_finish},
    {"done", lsasl_done},
    {"__tostring", lsasl_tostring},
    {"__gc", lsasl_gc},
    {"__close", lsasl_gc},
    {NULL, NULL}
};

static const luaL_Reg lsasl_functions[] = {
    {"sasl_client", lsasl_client},
    {"sasl_server", lsasl_server},
    {"sasl_mechanisms", lsasl_mechanisms},
    {"sasl_supports", lsasl_supports},
    {"sasl_property_known", lsasl_property_known},
    {"sasl_b64encode", lsasl_b64encode},
    {"sasl_b64decode", lsasl_b64decode},
    {NULL, NULL}
};

void lsasl_open(lua_State *L)
{
    smtp_new_class(L, SMTP_SASL_MT, lsasl_methods);
    luaL_setfuncs(L, lsasl_functions, 0);
}
