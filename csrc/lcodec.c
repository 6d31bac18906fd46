/* Binding of codec.c: streaming encoders (the 'smtp.core.Encoder'
 * userdata from b64_encoder() and qp_encoder()), one-shot b64_encode,
 * b64_decode and qp_encode, RFC 2047 encode_word, and text_stats, which
 * tells the message builder which transfer encoding a body needs. */
#include "codec.h"
#include "err.h"
#include "lsmtp.h"

#include <string.h>

enum { LCODEC_CLOSED, LCODEC_B64, LCODEC_QP };

struct lcodec {
    int kind; /* zero state: closed */
    union {
        struct smtp_b64 b64;
        struct smtp_qp qp;
    } u;
};

static struct lcodec *lcodec_check(lua_State *L)
{
    struct lcodec *c = luaL_checkudata(L, 1, SMTP_CODEC_MT);
    luaL_argcheck(L, c->kind != LCODEC_CLOSED, 1, "encoder is closed");
    return c;
}

static int lcodec_line_len(lua_State *L, int idx, int dflt)
{
    lua_Integer n = luaL_optinteger(L, idx, dflt);
    luaL_argcheck(L, n == 0 || (n >= 4 && n <= 996 && n % 4 == 0), idx,
                  "line length must be 0 or a multiple of 4 up to 996");
    return (int)n;
}

/* b64_encoder([line_len = 76]) */
static int lcodec_b64_encoder(lua_State *L)
{
    int ll = lcodec_line_len(L, 1, 76);
    struct lcodec *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->kind = LCODEC_CLOSED;
    luaL_setmetatable(L, SMTP_CODEC_MT);
    smtp_b64_init(&c->u.b64, ll);
    c->kind = LCODEC_B64;
    return 1;
}

static int lcodec_qp_encoder(lua_State *L)
{
    struct lcodec *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->kind = LCODEC_CLOSED;
    luaL_setmetatable(L, SMTP_CODEC_MT);
    smtp_qp_init(&c->u.qp);
    c->kind = LCODEC_QP;
    return 1;
}

/* Encodes into a Lua buffer; with 'last' the tail is flushed too. */
static void lcodec_run(lua_State *L, struct lcodec *c, const char *in, size_t len, int last)
{
    luaL_Buffer b;
    char *out;
    size_t n, room;
    const unsigned char *u = (const unsigned char *)in;
    if (c->kind == LCODEC_B64)
        room = smtp_b64_max_out(&c->u.b64, len) + SMTP_B64_FINISH_MAX;
    else
        room = SMTP_QP_MAX_OUT(len) + SMTP_QP_FINISH_MAX;
    luaL_buffinit(L, &b);
    out = luaL_prepbuffsize(&b, room);
    if (c->kind == LCODEC_B64) {
        n = smtp_b64_encode(&c->u.b64, u, len, out);
        if (last)
            n += smtp_b64_finish(&c->u.b64, out + n);
    } else {
        n = smtp_qp_encode(&c->u.qp, u, len, out);
        if (last)
            n += smtp_qp_finish(&c->u.qp, out + n);
    }
    luaL_addsize(&b, n);
    luaL_pushresult(&b);
}

/* encoder:encode(chunk [, last]) -> encoded text (possibly "") */
static int lcodec_encode(lua_State *L)
{
    struct lcodec *c = lcodec_check(L);
    size_t len;
    const char *in = luaL_checklstring(L, 2, &len);
    lcodec_run(L, c, in, len, lua_toboolean(L, 3));
    return 1;
}

/* encoder:finish() -> the tail; the encoder can start a new stream. */
static int lcodec_finish(lua_State *L)
{
    struct lcodec *c = lcodec_check(L);
    lcodec_run(L, c, "", 0, 1);
    return 1;
}

/* __gc and __close: nothing is held outside the userdata. */
static int lcodec_close(lua_State *L)
{
    struct lcodec *c = luaL_checkudata(L, 1, SMTP_CODEC_MT);
    c->kind = LCODEC_CLOSED;
    return 0;
}

static int lcodec_tostring(lua_State *L)
{
    struct lcodec *c = luaL_checkudata(L, 1, SMTP_CODEC_MT);
    lua_pushfstring(L, "%s (%s)", SMTP_CODEC_MT,
                    c->kind == LCODEC_B64 ? "base64" : c->kind == LCODEC_QP ? "quoted-printable" : "closed");
    return 1;
}

/* b64_encode(bytes [, line_len = 0]) */
static int lcodec_b64_encode(lua_State *L)
{
    struct lcodec c;
    size_t len;
    const char *in = luaL_checklstring(L, 1, &len);
    c.kind = LCODEC_B64;
    smtp_b64_init(&c.u.b64, lcodec_line_len(L, 2, 0));
    lcodec_run(L, &c, in, len, 1);
    return 1;
}

/* b64_decode(text) -> bytes | nil, "usage", message */
static int lcodec_b64_decode(lua_State *L)
{
    size_t len, bad = 0;
    const char *in = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    unsigned char *out;
    long n;
    luaL_buffinit(L, &b);
    out = (unsigned char *)luaL_prepbuffsize(&b, (len / 4 + 1) * 3);
    n = smtp_b64_decode(in, len, out, &bad);
    if (n < 0) {
        lua_pushnil(L);
        lua_pushstring(L, smtp_err_kind(SMTP_EUSAGE));
        lua_pushfstring(L, "malformed base64 at offset %d", (int)bad);
        return 3;
    }
    luaL_addsize(&b, (size_t)n);
    luaL_pushresult(&b);
    return 1;
}

/* qp_encode(text) */
static int lcodec_qp_encode(lua_State *L)
{
    struct lcodec c;
    size_t len;
    const char *in = luaL_checklstring(L, 1, &len);
    c.kind = LCODEC_QP;
    smtp_qp_init(&c.u.qp);
    lcodec_run(L, &c, in, len, 1);
    return 1;
}

/* A charset name goes inside "=?...?": a token, no '?', no '*' (RFC 2231
 * language tags are not produced here). */
static int lcodec_charset_ok(const char *cs, size_t len)
{
    size_t i;
    if (len == 0 || len > 40)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)cs[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || strchr("!#$%&'+^_`{}~-", c) != NULL) || c == 0)
            return 0;
    }
    return 1;
}

/* encode_word(text, charset = "UTF-8", mode = "B", first_room = 75)
 * -> {word, ...}: encoded-words of at most 75 octets, the first at most
 * first_room (or 75 when not even one character fits in first_room). */
static int lcodec_encode_word(lua_State *L)
{
    size_t len, cslen, pos = 0, outlen;
    const unsigned char *text = (const unsigned char *)luaL_checklstring(L, 1, &len);
    const char *cs = luaL_optlstring(L, 2, "UTF-8", &cslen);
    const char *mode = luaL_optstring(L, 3, "B");
    lua_Integer first = luaL_optinteger(L, 4, SMTP_EW_MAX);
    char word[SMTP_EW_MAX + 1];
    size_t room;
    int n = 0;
    luaL_argcheck(L, lcodec_charset_ok(cs, cslen), 2, "invalid charset name");
    luaL_argcheck(L, (mode[0] == 'B' || mode[0] == 'Q') && mode[1] == '\0', 3, "mode must be \"B\" or \"Q\"");
    room = first < 0 ? 0 : first > SMTP_EW_MAX ? SMTP_EW_MAX : (size_t)first;
    lua_newtable(L);
    while (pos < len) {
        size_t next = smtp_ew_next(text, len, pos, cs, mode[0], room, word, &outlen);
        if (next == pos) {
            /* Nothing fits in the first line's room: the caller folds
             * before the word, which then has the full length. */
            if (room == SMTP_EW_MAX)
                return luaL_error(L, "encode_word: character does not fit in an encoded-word");
            room = SMTP_EW_MAX;
            continue;
        }
        lua_pushlstring(L, word, outlen);
        lua_rawseti(L, -2, ++n);
        pos = next;
        room = SMTP_EW_MAX;
    }
    return 1;
}

/* text_stats(s) -> {eightbit=, nul=, ctl=, bare_cr=, bare_lf=, max_line=}
 * counts of bytes >= 128, NUL bytes, other control bytes (not TAB, CR,
 * LF), CRs not followed by LF, LFs not preceded by CR, and the longest
 * line in octets without its line end. */
static int lcodec_text_stats(lua_State *L)
{
    size_t len, i, line = 0, max_line = 0;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    lua_Integer eight = 0, nul = 0, ctl = 0, bare_cr = 0, bare_lf = 0;
    for (i = 0; i < len; i++) {
        unsigned c = s[i];
        if (c >= 32 && c < 127) {
            line++;
            continue;
        }
        if (c == '\n') {
            if (i == 0 || s[i - 1] != '\r')
                bare_lf++;
            if (line > max_line)
                max_line = line;
            line = 0;
            continue;
        }
        if (c == '\r') {
            if (i + 1 >= len || s[i + 1] != '\n') {
                bare_cr++;
                line++;
            }
            continue;
        }
        line++;
        if (c >= 128)
            eight++;
        else if (c == 0)
            nul++;
        else if (c != '\t')
            ctl++;
    }
    if (line > max_line)
        max_line = line;
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, eight);
    lua_setfield(L, -2, "eightbit");
    lua_pushinteger(L, nul);
    lua_setfield(L, -2, "nul");
    lua_pushinteger(L, ctl);
    lua_setfield(L, -2, "ctl");
    lua_pushinteger(L, bare_cr);
    lua_setfield(L, -2, "bare_cr");
    lua_pushinteger(L, bare_lf);
    lua_setfield(L, -2, "bare_lf");
    lua_pushinteger(L, (lua_Integer)max_line);
    lua_setfield(L, -2, "max_line");
    return 1;
}

/* byte_flags(s [, col = 0]) -> has_8bit, has_nul, max_line, tail: what
 * sendmail must declare for a raw message (BODY=8BITMIME, BINARYMIME),
 * and its longest line in octets without CRLF (RFC 5321 4.5.3.1.6 caps
 * it at 998). 'col' is the length of a line left open by the previous
 * chunk; 'tail' is the open line at the end of this one, to carry on.
 * The OR loop vectorises; memchr finds the line ends. */
static int lcodec_byte_flags(lua_State *L)
{
    size_t len, i, start = 0, max_line = 0, line;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    lua_Integer col = luaL_optinteger(L, 2, 0);
    size_t carry = col > 0 ? (size_t)col : 0;
    unsigned acc = 0;
    /* One pass: a compare per byte is cheaper than a memchr call per
     * short line. 'start' is where the current line began. */
    for (i = 0; i < len; i++) {
        acc |= s[i];
        if (s[i] == '\n') {
            /* The CR of a CRLF is not part of the line. */
            line = carry + (i - start) - (i > start && s[i - 1] == '\r');
            if (line > max_line)
                max_line = line;
            carry = 0;
            start = i + 1;
        }
    }
    line = carry + (len - start);
    /* A CR ending the chunk ends its line (the DATA encoder sends a bare
     * CR as CRLF); an LF opening the next chunk then ends an empty one. */
    if (len > start && s[len - 1] == '\r') {
        line--;
        if (line > max_line)
            max_line = line;
        line = 0;
    }
    if (line > max_line)
        max_line = line;
    lua_pushboolean(L, (acc & 0x80) != 0);
    lua_pushboolean(L, len > 0 && memchr(s, 0, len) != NULL);
    lua_pushinteger(L, (lua_Integer)max_line);
    lua_pushinteger(L, (lua_Integer)line);
    return 4;
}

static const luaL_Reg lcodec_methods[] = {
    {"encode", lcodec_encode},
    {"finish", lcodec_finish},
    {"close", lcodec_close},
    {"__gc", lcodec_close},
    {"__close", lcodec_close},
    {"__tostring", lcodec_tostring},
    {NULL, NULL}
};

static const luaL_Reg lcodec_functions[] = {
    {"b64_encoder", lcodec_b64_encoder},
    {"qp_encoder", lcodec_qp_encoder},
    {"b64_encode", lcodec_b64_encode},
    {"b64_decode", lcodec_b64_decode},
    {"qp_encode", lcodec_qp_encode},
    {"encode_word", lcodec_encode_word},
    {"text_stats", lcodec_text_stats},
    {"byte_flags", lcodec_byte_flags},
    {NULL, NULL}
};

void lcodec_open(lua_State *L)
{
    smtp_new_class(L, SMTP_CODEC_MT, lcodec_methods);
    luaL_setfuncs(L, lcodec_functions, 0);
}
