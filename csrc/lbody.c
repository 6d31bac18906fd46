/* Conn:send_body: a whole message body from Lua strings and files to the
 * socket in one C call (bodyout.c), for the client's fast path. The Lua
 * chunk-source route (Conn:send_data) stays for function sources and for
 * transports without this method (the cosocket one). */
#include "lconn.h"
#include "lsmtp.h"
#include "bodyout.h"
#include "err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Writes of this size keep syscalls and BDAT replies few while the
 * buffer (about twice as much) stays well inside the RSS budget. */
#define DEFAULT_LIMIT 1048576
#define MIN_LIMIT 4096
#define MAX_LIMIT (16 * 1048576)
#define ONE_WRITE_MAX (64 * 1048576)
#define BLOCK_MAX 1e9           /* seconds; more is a caller's mistake */

/* The write callback's context: each write gets a fresh deadline of
 * 'block_ms' (the client's data_block timeout), as the Lua route gives
 * each chunk, so a big body is not bound by a single timeout. */
struct body_ctx {
    struct lconn *c;
    int64_t block_ms;   /* 0: keep the connection's deadline */
};

static int body_write(void *ctx, struct iovec *iov, int n)
{
    struct body_ctx *bc = ctx;
    if (bc->block_ms > 0)
        lconn_deadline_in(bc->c, bc->block_ms);
    return lconn_write(bc->c, iov, n);
}

/* Pushes parts[i][name] (raw, no metamethod may run). */
static int item_field(lua_State *L, int item, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, item);
    return lua_type(L, -1);
}

/* Checks one part before any byte is sent; returns whether it is a table
 * (file or base64 data) and adds the length of a string part to *strings. */
static int check_part(lua_State *L, int i, size_t *strings)
{
    int item = lua_gettop(L), t = lua_type(L, item), fields = 0;
    if (t == LUA_TSTRING) {
        *strings += lua_rawlen(L, item);
        return 0;
    }
    if (t != LUA_TTABLE)
        return luaL_error(L, "send_body: part %d is a %s, not a string or a table", i,
                          lua_typename(L, t));
    if (item_field(L, item, "file") != LUA_TNIL) {
        if (smtp_compat_tofile(L, -1) == NULL)
            return luaL_error(L, "send_body: part %d: 'file' is not an open file", i);
        fields++;
    }
    lua_pop(L, 1);
    if (item_field(L, item, "data") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "send_body: part %d: 'data' must be a string", i);
        fields++;
    }
    lua_pop(L, 1);
    if (item_field(L, item, "path") != LUA_TNIL) {
        size_t len;
        const char *p = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (p == NULL || strlen(p) != len)
            return luaL_error(L, "send_body: part %d: 'path' must be a string without NUL", i);
        fields++;
    }
    lua_pop(L, 1);
    if (fields != 1)
        return luaL_error(L, "send_body: part %d needs exactly one of file, data, path", i);
    return 1;
}

/* A failing message source: the connection is dropped, since a truncated
 * body must never be terminated (SPEC 7). The extra "source" result lets
 * the client tell it from a transport failure. */
static int source_failure(lua_State *L, struct lconn *c, const char *what, int err)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
    lconn_fail(L, c, SMTP_EIO, msg);
    lua_pushstring(L, "source");
    return 4;
}

/* A body with a NUL outside binary mode: refused like a failing source,
 * so the client drops the connection and reports "not sent". */
static int nul_failure(lua_State *L, struct lconn *c, const struct smtp_body *b)
{
    char msg[192];
    smtp_dot_nul_message(&b->d, msg, sizeof msg);
    lconn_fail(L, c, SMTP_EUSAGE, msg);
    lua_pushstring(L, "source");
    return 4;
}

/* Streams one table part; returns an smtp_err code, or 1 after pushing a
 * source failure (4 values). */
static int send_table_part(lua_State *L, struct lconn *c, struct smtp_body *b, int item, int *pushed)
{
    int rc;
    if (item_field(L, item, "file") != LUA_TNIL) {
        FILE *f = smtp_compat_tofile(L, -1);
        lua_pop(L, 1);
        if (f == NULL) {
            *pushed = source_failure(L, c, "message file", EBADF);
            return SMTP_OK;
        }
        errno = 0;
        rc = smtp_body_add_file(b, f, 0);
        if (rc != SMTP_OK && !b->d.nul && b->read_errno != 0)
            *pushed = source_failure(L, c, "message source failed: reading the message file",
                                     b->read_errno);
        return rc;
    }
    lua_pop(L, 1);
    if (item_field(L, item, "data") == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        rc = smtp_body_add_b64(b, (const unsigned char *)s, len);
        lua_pop(L, 1);
        return rc;
    }
    lua_pop(L, 1);
    item_field(L, item, "path");
    {
        const char *path = lua_tostring(L, -1);
        FILE *f = fopen(path, "rb");
        char what[300];
        lua_pop(L, 1);
        snprintf(what, sizeof what, "message source failed: attachment %.200s", path);
        if (f == NULL) {
            *pushed = source_failure(L, c, what, errno);
            return SMTP_OK;
        }
        errno = 0;
        rc = smtp_body_add_file(b, f, 1);
        fclose(f);
        if (rc != SMTP_OK && !b->d.nul && b->read_errno != 0)
            *pushed = source_failure(L, c, what, b->read_errno);
        return rc;
    }
}

/* send_body(parts [, mode [, prefix [, trailer [, block_timeout [, limit]]]]])
 *   -> bytes, bdat_commands | nil, kind, msg, where
 * parts: a list of strings (sent as they are), {file = handle} (the rest
 * of an open file), {data = s} and {path = p} (base64 in 76-column lines,
 * a MIME attachment). mode: "data" (dot-stuffed and terminated, the
 * default), "bdat" (line ends normalised, "BDAT n" chunks, the last one
 * LAST), "binary" (BDAT, bytes untouched, BODY=BINARYMIME). prefix goes
 * out with the first write and trailer with the last, so a pipelined
 * transaction leaves in one segment. block_timeout (seconds) renews the
 * deadline before each write when files are read. bytes counts the message bytes before
 * encoding. Every part is checked before anything is sent. On failure
 * 'where' is "source" (a file could not be read, or, outside "binary"
 * mode, the message holds a NUL byte: kind "usage", message "message
 * contains a NUL byte: ..."; nothing more was sent, the terminator never
 * is, the connection is closed), "final" (the last write, which completes
 * the message, failed) or "body". */
int lbody_send_body(lua_State *L)
{
    static const char *const modes[] = {"data", "bdat", "binary", NULL};
    struct lconn *c = lconn_check_open(L, 1);
    int mode, n, i, tables = 0, pushed = 0, rc = SMTP_OK;
    size_t plen = 0, tlen = 0, strings = 0, limit, cap, scratch;
    const char *prefix, *trailer;
    lua_Integer lim;
    lua_Number block;
    struct body_ctx bc;
    struct smtp_body b;
    char *mem;
    luaL_checktype(L, 2, LUA_TTABLE);
    mode = luaL_checkoption(L, 3, "data", modes);
    prefix = luaL_optlstring(L, 4, NULL, &plen);
    trailer = luaL_optlstring(L, 5, NULL, &tlen);
    block = luaL_optnumber(L, 6, 0);
    lim = luaL_optinteger(L, 7, DEFAULT_LIMIT);
    luaL_argcheck(L, lim >= MIN_LIMIT && lim <= MAX_LIMIT, 7, "write size out of range");
    /* NaN or inf would make the cast below undefined (review L11). */
    if (!isfinite(block) || block >= BLOCK_MAX)
        return smtp_push_failure(L, SMTP_EUSAGE,
                                 "send_body: block timeout must be finite and under 1e9 s");
    n = (int)lua_rawlen(L, 2);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        tables += check_part(L, i, &strings);
        lua_pop(L, 1);
    }
    limit = (size_t)lim;
    scratch = 0;
    if (tables > 0)
        scratch = SMTP_BODY_SCRATCH;
    else if (strings <= ONE_WRITE_MAX)
        /* A body already in memory goes in one write, as the Lua route
         * sends one chunk: a stalled peer then fails that one write. */
        limit = strings < MIN_LIMIT ? MIN_LIMIT : strings;
    cap = SMTP_BODY_BUF_CAP(limit);
    mem = lconn_buffer(c, cap + scratch);
    if (mem == NULL)
        return smtp_push_failure(L, SMTP_ENOMEM, NULL);
    bc.c = c;
    /* Files are read block by block, as the Lua route reads its chunks:
     * each write gets its own deadline. Strings already in memory go out
     * under the one deadline the caller set, as one Lua chunk would. */
    bc.block_ms = (tables > 0 && block > 0) ? (int64_t)(block * 1000.0) : 0;
    smtp_body_init(&b, mode, mem, cap, limit, scratch > 0 ? mem + cap : NULL, scratch,
                   body_write, &bc);
    smtp_body_prefix(&b, prefix, plen);
    for (i = 1; i <= n && rc == SMTP_OK; i++) {
        int item;
        lua_rawgeti(L, 2, i);
        item = lua_gettop(L);
        if (lua_type(L, item) == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, item, &len);
            rc = smtp_body_add(&b, s, len);
        } else {
            rc = send_table_part(L, c, &b, item, &pushed);
            if (pushed)
                return pushed;
        }
        lua_settop(L, item - 1);
    }
    if (rc != SMTP_OK && b.d.nul)
        return nul_failure(L, c, &b);
    if (rc != SMTP_OK) {
        lconn_fail(L, c, rc, NULL);
        lua_pushstring(L, "body");
        return 4;
    }
    rc = smtp_body_finish(&b, trailer, tlen);
    if (rc != SMTP_OK) {
        lconn_fail(L, c, rc, NULL);
        lua_pushstring(L, "final");
        return 4;
    }
    lua_pushinteger(L, (lua_Integer)b.d.bytes_in);
    lua_pushinteger(L, (lua_Integer)b.chunks);
    return 2;
}
