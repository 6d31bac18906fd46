/* Binding of the sans-IO reply parser: smtp.core.reply_parser() and the
 * 'smtp.core.ReplyParser' userdata (feed, next, buffered). */
#include "lreply.h"
#include "lsmtp.h"
#include "err.h"

struct smtp_reply_parser *lreply_check(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, SMTP_REPLY_PARSER_MT);
}

void lreply_push(lua_State *L, const struct smtp_reply *r)
{
    const char *pos = r->raw, *text;
    size_t len;
    int i = 1;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, r->code);
    lua_setfield(L, -2, "code");
    if (r->enhanced[0] != '\0') {
        lua_pushstring(L, r->enhanced);
        lua_setfield(L, -2, "enhanced");
    }
    lua_createtable(L, (int)r->nlines, 0);
    while (smtp_reply_line(r, &pos, &text, &len)) {
        lua_pushlstring(L, text, len);
        lua_rawseti(L, -2, i++);
    }
    lua_setfield(L, -2, "lines");
}

/* reply_parser([max_line [, max_lines [, max_total]]]); max_total bounds
 * the bytes of one reply, line ends included. */
static int lreply_new(lua_State *L)
{
    lua_Integer max_line = luaL_optinteger(L, 1, SMTP_REPLY_MAX_LINE);
    lua_Integer max_lines = luaL_optinteger(L, 2, SMTP_REPLY_MAX_LINES);
    lua_Integer max_total = luaL_optinteger(L, 3, SMTP_REPLY_MAX_TOTAL);
    struct smtp_reply_parser *p;
    luaL_argcheck(L, max_line > 0, 1, "must be positive");
    luaL_argcheck(L, max_lines > 0, 2, "must be positive");
    luaL_argcheck(L, max_total > 0, 3, "must be positive");
    p = lua_newuserdatauv(L, sizeof *p, 0);
    smtp_reply_init(p, (size_t)max_line, (size_t)max_lines, (size_t)max_total);
    luaL_setmetatable(L, SMTP_REPLY_PARSER_MT);
    return 1;
}

/* parser:feed(bytes) -> true | nil, kind, message */
static int lreply_feed(lua_State *L)
{
    struct smtp_reply_parser *p = lreply_check(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int rc = smtp_reply_feed(p, data, len);
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, rc == SMTP_EPROTO ? p->error : NULL);
    lua_pushboolean(L, 1);
    return 1;
}

/* parser:next() -> reply | false (need more) | nil, kind, message */
static int lreply_next(lua_State *L)
{
    struct smtp_reply_parser *p = lreply_check(L, 1);
    struct smtp_reply r;
    int rc = smtp_reply_next(p, &r);
    if (rc == SMTP_EAGAIN) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, p->error);
    lreply_push(L, &r);
    return 1;
}

static int lreply_buffered(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)smtp_reply_buffered(lreply_check(L, 1)));
    return 1;
}

static int lreply_gc(lua_State *L)
{
    smtp_reply_free(lreply_check(L, 1));
    return 0;
}

static const luaL_Reg lreply_methods[] = {
    {"feed", lreply_feed},
    {"next", lreply_next},
    {"buffered", lreply_buffered},
    {"__gc", lreply_gc},
    {NULL, NULL}
};

void lreply_open(lua_State *L)
{
    smtp_new_class(L, SMTP_REPLY_PARSER_MT, lreply_methods);
    lua_pushcfunction(L, lreply_new);
    lua_setfield(L, -2, "reply_parser");
}
