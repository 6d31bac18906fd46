/* Binding of dkim.c: the 'smtp.core.DkimBody' canonicaliser from
 * dkim_body(relaxed, with_header) and the 'smtp.core.DkimKey' private key
 * from dkim_key(pem). lua/smtp/dkim.lua does the rest of RFC 6376. */
#include "dkim.h"
#include "err.h"
#include "lsmtp.h"

#include <string.h>

struct ldkim_body {
    int open; /* zero state: closed */
    struct smtp_dkim_body b;
};

struct ldkim_key {
    struct smtp_dkim_key *k; /* NULL: closed */
};

static struct ldkim_body *ldkim_body_check(lua_State *L)
{
    struct ldkim_body *d = luaL_checkudata(L, 1, SMTP_DKIM_BODY_MT);
    luaL_argcheck(L, d->open, 1, "DKIM body hasher is closed");
    return d;
}

static int ldkim_body_close(lua_State *L)
{
    struct ldkim_body *d = luaL_checkudata(L, 1, SMTP_DKIM_BODY_MT);
    if (d->open) {
        d->open = 0;
        smtp_dkim_body_free(&d->b);
    }
    return 0;
}

/* dkim_body(relaxed, with_header) */
static int ldkim_body_new(lua_State *L)
{
    int relaxed = lua_toboolean(L, 1), with_header = lua_toboolean(L, 2);
    struct ldkim_body *d = lua_newuserdatauv(L, sizeof *d, 0);
    int rc;
    d->open = 0;
    luaL_setmetatable(L, SMTP_DKIM_BODY_MT);
    rc = smtp_dkim_body_init(&d->b, relaxed, with_header);
    d->open = 1;
    if (rc != SMTP_OK) {
        ldkim_body_close(L);
        return smtp_push_failure(L, rc, NULL);
    }
    return 1;
}

/* body:update(chunk) -> true | nil, kind, message */
static int ldkim_body_update(lua_State *L)
{
    struct ldkim_body *d = ldkim_body_check(L);
    size_t len;
    const char *in = luaL_checklstring(L, 2, &len);
    int rc = smtp_dkim_body_update(&d->b, in, len);
    if (rc == SMTP_EUSAGE)
        return smtp_push_failure(L, rc, "message header block larger than 1 MiB");
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, NULL);
    lua_pushboolean(L, 1);
    return 1;
}

/* body:finish() -> 32-byte body hash, header block (CRLF lines); closes. */
static int ldkim_body_finish(lua_State *L)
{
    struct ldkim_body *d = ldkim_body_check(L);
    unsigned char hash[32];
    int rc = smtp_dkim_body_finish(&d->b, hash);
    if (rc != SMTP_OK) {
        ldkim_body_close(L);
        return smtp_push_failure(L, rc, NULL);
    }
    lua_pushlstring(L, (const char *)hash, sizeof hash);
    lua_pushlstring(L, d->b.header != NULL ? d->b.header : "", d->b.header_len);
    lua_pushinteger(L, (lua_Integer)d->b.body_len);
    ldkim_body_close(L);
    return 3;
}

static int ldkim_body_tostring(lua_State *L)
{
    struct ldkim_body *d = luaL_checkudata(L, 1, SMTP_DKIM_BODY_MT);
    lua_pushfstring(L, "%s (%s)", SMTP_DKIM_BODY_MT, d->open ? "open" : "closed");
    return 1;
}

static int ldkim_key_close(lua_State *L)
{
    struct ldkim_key *k = luaL_checkudata(L, 1, SMTP_DKIM_KEY_MT);
    struct smtp_dkim_key *key = k->k;
    k->k = NULL;
    smtp_dkim_key_free(key);
    return 0;
}

/* dkim_key(pem) -> key | nil, "usage", message (never the key bytes) */
static int ldkim_key_new(lua_State *L)
{
    size_t len;
    const char *pem = luaL_checklstring(L, 1, &len);
    struct ldkim_key *k = lua_newuserdatauv(L, sizeof *k, 0);
    char err[160];
    int rc;
    k->k = NULL;
    luaL_setmetatable(L, SMTP_DKIM_KEY_MT);
    err[0] = '\0';
    rc = smtp_dkim_key_new(&k->k, (const unsigned char *)pem, len, err, sizeof err);
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, err[0] ? err : NULL);
    return 1;
}

static struct smtp_dkim_key *ldkim_key_check(lua_State *L)
{
    struct ldkim_key *k = luaL_checkudata(L, 1, SMTP_DKIM_KEY_MT);
    luaL_argcheck(L, k->k != NULL, 1, "DKIM key is closed");
    return k->k;
}

/* key:sign(data) -> RSA-SHA256 signature bytes | nil, kind, message */
static int ldkim_key_sign(lua_State *L)
{
    struct smtp_dkim_key *k = ldkim_key_check(L);
    size_t len, siglen = 0;
    const char *data = luaL_checklstring(L, 2, &len);
    luaL_Buffer b;
    unsigned char *sig;
    char err[160];
    int rc;
    luaL_buffinit(L, &b);
    sig = (unsigned char *)luaL_prepbuffsize(&b, smtp_dkim_key_size(k));
    rc = smtp_dkim_key_sign(k, (const unsigned char *)data, len, sig, &siglen, err, sizeof err);
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, err);
    luaL_addsize(&b, siglen);
    luaL_pushresult(&b);
    return 1;
}

/* key:bits() */
static int ldkim_key_bits(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)smtp_dkim_key_size(ldkim_key_check(L)) * 8);
    return 1;
}

static int ldkim_key_tostring(lua_State *L)
{
    struct ldkim_key *k = luaL_checkudata(L, 1, SMTP_DKIM_KEY_MT);
    lua_pushfstring(L, "%s (%s)", SMTP_DKIM_KEY_MT, k->k ? "RSA" : "closed");
    return 1;
}

static const luaL_Reg ldkim_body_methods[] = {
    {"update", ldkim_body_update},
    {"finish", ldkim_body_finish},
    {"close", ldkim_body_close},
    {"__gc", ldkim_body_close},
    {"__close", ldkim_body_close},
    {"__tostring", ldkim_body_tostring},
    {NULL, NULL}
};

static const luaL_Reg ldkim_key_methods[] = {
    {"sign", ldkim_key_sign},
    {"bits", ldkim_key_bits},
    {"close", ldkim_key_close},
    {"__gc", ldkim_key_close},
    {"__close", ldkim_key_close},
    {"__tostring", ldkim_key_tostring},
    {NULL, NULL}
};

static const luaL_Reg ldkim_functions[] = {
    {"dkim_body", ldkim_body_new},
    {"dkim_key", ldkim_key_new},
    {NULL, NULL}
};

void ldkim_open(lua_State *L)
{
    smtp_new_class(L, SMTP_DKIM_BODY_MT, ldkim_body_methods);
    smtp_new_class(L, SMTP_DKIM_KEY_MT, ldkim_key_methods);
    luaL_setfuncs(L, ldkim_functions, 0);
}
