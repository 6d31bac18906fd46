/* Binding of tls.c: smtp.core.tls_config(opts) and the immutable
 * 'smtp.core.TlsConfig' userdata (SPEC 3), plus the helpers lconn.c uses
 * for conn:starttls() and conn:tls_info(). Option checking lives here;
 * the TLS work is in tls.c. */
#include "ltls.h"
#include "lsmtp.h"
#include "err.h"
#include "codec.h"

#include <string.h>

struct ltls_config {
    struct smtp_tls_config *cfg;    /* NULL once closed: the zero state */
    unsigned given;                 /* bit i: option_names[i] was given */
};

static struct ltls_config *check_config(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, SMTP_TLS_CONFIG_MT);
}

static const char *const option_names[] = {
    "verify", "ca_file", "ca_path", "ca_pem", "cert_file", "key_file",
    "cert_pem", "key_pem", "key_password", "min_version", "max_version", "server_name",
    "session_cache", "ciphersuites", "groups", "pin_sha256", NULL
};

/* Reads opts[name] as a string (with its length) or NULL when absent;
 * *bad is set when the value has another type. */
static const char *opt_string(lua_State *L, const char *name, size_t *len, int *bad)
{
    const char *s = NULL;
    lua_getfield(L, 1, name);
    if (lua_type(L, -1) == LUA_TSTRING)
        s = lua_tolstring(L, -1, len);   /* the opts table keeps it alive */
    else if (!lua_isnil(L, -1))
        *bad = 1;
    lua_pop(L, 1);
    return s;
}

static int usage(lua_State *L, const char *fmt, const char *what)
{
    lua_pushnil(L);
    lua_pushliteral(L, "usage");
    lua_pushfstring(L, fmt, what);
    return 3;
}

/* opts[name] as a minor TLS version ("1.3" -> 3) into *minor, left as is
 * when absent. Whether this mbedTLS build has that version is tls.c's
 * business (kind "tls"); here only the spelling is checked. Returns 1
 * with a usage failure pushed. */
static int read_version(lua_State *L, const char *name, int *minor)
{
    const char *v;
    lua_getfield(L, 1, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    v = lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1) : NULL;
    if (v == NULL || strlen(v) != 3 || v[0] != '1' || v[1] != '.' || v[2] < '0' || v[2] > '3') {
        const char *got = luaL_tolstring(L, -1, NULL);
        lua_pushnil(L);
        lua_pushliteral(L, "usage");
        lua_pushfstring(L, "TLS option '%s' must be \"1.0\", \"1.1\", \"1.2\" or \"1.3\", got %s",
                        name, got);
        return 1;
    }
    *minor = v[2] - '0';
    lua_pop(L, 1);
    return 0;
}

/* opts[name] as a list of names ({"TLS_AES_128_GCM_SHA256", ...}) into
 * *list / *n, left empty when absent. The array lives in a userdata left
 * on the stack; the strings are the table's own. Returns 1 with a usage
 * failure pushed. */
static int read_names(lua_State *L, const char *name, const char *const **list, size_t *n)
{
    const char **a;
    size_t len, i;
    lua_getfield(L, 1, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    len = lua_type(L, -1) == LUA_TTABLE ? (size_t)lua_rawlen(L, -1) : 0;
    if (len == 0) {
        usage(L, "TLS option '%s' must be a non-empty list of IANA names", name);
        return 1;
    }
    a = lua_newuserdatauv(L, len * sizeof *a, 0);
    lua_insert(L, -2);      /* the array stays below the list */
    for (i = 0; i < len; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            usage(L, "TLS option '%s' must be a list of IANA names (strings)", name);
            return 1;
        }
        a[i] = lua_tostring(L, -1);     /* the opts table keeps it alive */
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    *list = a;
    *n = len;
    return 0;
}

/* One pin, base64 of 32 bytes with padding and curl's optional "sha256//"
 * prefix, into out. Returns 0, or -1 for anything else. */
static int parse_pin(const char *p, size_t len, unsigned char *out)
{
    unsigned char buf[(SMTP_TLS_PIN_B64 / 4 + 1) * 3];
    size_t bad;
    if (len >= 8 && memcmp(p, "sha256//", 8) == 0) {
        p += 8;
        len -= 8;
    }
    /* The length first: the decoder skips white space, a pin has none. */
    if (len != SMTP_TLS_PIN_B64 - 1 || memchr(p, ' ', len) != NULL || memchr(p, '\n', len) != NULL
        || memchr(p, '\r', len) != NULL || memchr(p, '\t', len) != NULL
        || smtp_b64_decode(p, len, buf, &bad) != SMTP_TLS_PIN_LEN)
        return -1;
    memcpy(out, buf, SMTP_TLS_PIN_LEN);
    return 0;
}

/* Splits s at ';' (curl's "sha256//A;sha256//B") into pins at out (NULL:
 * only counts). Returns the count, or -1 with the bad piece in *badp. */
static long split_pins(const char *s, size_t len, unsigned char *out, const char **badp, size_t *badlen)
{
    long n = 0;
    const char *end = s + len;
    for (;;) {
        const char *semi = memchr(s, ';', (size_t)(end - s));
        const char *stop = semi != NULL ? semi : end;
        unsigned char pin[SMTP_TLS_PIN_LEN];
        if (parse_pin(s, (size_t)(stop - s), pin) != 0) {
            *badp = s;
            *badlen = (size_t)(stop - s);
            return -1;
        }
        if (out != NULL)
            memcpy(out + (size_t)n * SMTP_TLS_PIN_LEN, pin, SMTP_TLS_PIN_LEN);
        n++;
        if (semi == NULL)
            return n;
        s = semi + 1;
    }
}

/* opts.pin_sha256: a pin string (or several joined by ';') or a non-empty
 * list of them, into o->pins (a userdata left on the stack). Returns 1
 * with a usage failure pushed. */
static int read_pins(lua_State *L, struct smtp_tls_options *o)
{
    static const char what[] = "TLS option 'pin_sha256' must be a list of base64 SHA-256 hashes "
                               "of a SubjectPublicKeyInfo (44 characters, optional \"sha256//\" prefix)";
    unsigned char *pins;
    size_t len, i, count = 0, badlen = 0;
    const char *bad = NULL;
    lua_getfield(L, 1, "pin_sha256");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
        lua_createtable(L, 1, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);      /* one string is a list of one */
    }
    len = lua_type(L, -1) == LUA_TTABLE ? (size_t)lua_rawlen(L, -1) : 0;
    for (i = 1; i <= len; i++) {
        long n = -1;
        lua_rawgeti(L, -1, (lua_Integer)i);
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t sl;
            const char *str = lua_tolstring(L, -1, &sl);
            n = split_pins(str, sl, NULL, &bad, &badlen);
        }
        lua_pop(L, 1);
        if (n < 0)
            break;
        count += (size_t)n;
    }
    if (len == 0 || i <= len) {
        if (bad != NULL) {
            lua_pushlstring(L, bad, badlen > 80 ? 80 : badlen);
            lua_pushfstring(L, "%s; got '%s'", what, lua_tostring(L, -1));
        } else {
            lua_pushstring(L, what);
        }
        lua_pushnil(L);
        lua_pushliteral(L, "usage");
        lua_pushvalue(L, -3);
        return 1;
    }
    pins = lua_newuserdatauv(L, count * SMTP_TLS_PIN_LEN, 0);
    lua_insert(L, -2);      /* the array stays below the list */
    for (i = 1, count = 0; i <= len; i++) {
        size_t sl;
        const char *str;
        lua_rawgeti(L, -1, (lua_Integer)i);
        str = lua_tolstring(L, -1, &sl);
        count += (size_t)split_pins(str, sl, pins + count * SMTP_TLS_PIN_LEN, &bad, &badlen);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    o->pins = pins;
    o->n_pins = count;
    return 0;
}

/* Fills o from the table at index 1; returns 0 or pushes a usage failure
 * and returns its count. */
static int read_options(lua_State *L, struct smtp_tls_options *o)
{
    static const char *const strings[] = {
        "ca_file", "ca_path", "ca_pem", "cert_file", "key_file", "cert_pem",
        "key_pem", "key_password", "server_name", NULL
    };
    const char **slots[9];
    size_t *lens[9], dummy;
    const char *const *name;
    int i;

    memset(o, 0, sizeof *o);
    o->min_version = 2;
    o->max_version = -1;
    /* Unknown keys are refused: a typo like 'verfy' must not silently
     * leave verification at a default the user did not mean. */
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        int known = 0;
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            for (name = option_names; *name != NULL; name++)
                if (strcmp(*name, lua_tostring(L, -1)) == 0)
                    known = 1;
        }
        if (!known)
            return usage(L, "unknown TLS option '%s'", luaL_tolstring(L, -1, NULL));
    }

    slots[0] = &o->ca_file;      lens[0] = &dummy;
    slots[1] = &o->ca_path;      lens[1] = &dummy;
    slots[2] = &o->ca_pem;       lens[2] = &o->ca_pem_len;
    slots[3] = &o->cert_file;    lens[3] = &dummy;
    slots[4] = &o->key_file;     lens[4] = &dummy;
    slots[5] = &o->cert_pem;     lens[5] = &o->cert_pem_len;
    slots[6] = &o->key_pem;      lens[6] = &o->key_pem_len;
    slots[7] = &o->key_password; lens[7] = &dummy;
    slots[8] = &o->server_name;  lens[8] = &dummy;
    for (i = 0; strings[i] != NULL; i++) {
        int bad = 0;
        size_t len = 0;
        const char *s = opt_string(L, strings[i], &len, &bad);
        if (bad)
            return usage(L, "TLS option '%s' must be a string", strings[i]);
        /* Paths, passwords and names end at NUL in C: refuse one inside. */
        if (s != NULL && lens[i] == &dummy && strlen(s) != len)
            return usage(L, "TLS option '%s' contains a NUL byte", strings[i]);
        *slots[i] = s;
        *lens[i] = len;
    }

    lua_getfield(L, 1, "verify");
    if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1)))
        o->verify = SMTP_TLS_VERIFY_PEER;
    else if (lua_type(L, -1) == LUA_TBOOLEAN)
        o->verify = SMTP_TLS_VERIFY_NONE;
    else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "peer") == 0)
        o->verify = SMTP_TLS_VERIFY_PEER;
    else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "none") == 0)
        o->verify = SMTP_TLS_VERIFY_NONE;
    else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "pin") == 0)
        o->verify = SMTP_TLS_VERIFY_PIN;
    else
        return usage(L, "TLS option 'verify' must be \"peer\", \"pin\" or \"none\", got %s",
                     luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);

    lua_getfield(L, 1, "session_cache");
    if (lua_isnil(L, -1))
        o->session_cache = 1;
    else if (lua_type(L, -1) == LUA_TBOOLEAN)
        o->session_cache = lua_toboolean(L, -1);
    else
        return usage(L, "TLS option 'session_cache' must be a boolean, got %s",
                     luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);

    if (read_version(L, "min_version", &o->min_version) || read_version(L, "max_version", &o->max_version)
        || read_names(L, "ciphersuites", &o->ciphersuites, &o->n_ciphersuites)
        || read_names(L, "groups", &o->groups, &o->n_groups) || read_pins(L, o))
        return 3;
    /* The pin rules (README "Key pinning"): a pin is checked in addition
     * to the CA and name, or with verify "pin" instead of them; verify
     * "none" and pins contradict each other. */
    if (o->verify == SMTP_TLS_VERIFY_PIN && o->n_pins == 0)
        return usage(L, "%s", "TLS option verify = \"pin\" needs 'pin_sha256'");
    if (o->verify == SMTP_TLS_VERIFY_NONE && o->n_pins > 0)
        return usage(L, "%s", "TLS option 'pin_sha256' cannot be checked with verify = \"none\" "
                     "(use verify = \"pin\" to trust the pinned key alone)");
    if (o->verify == SMTP_TLS_VERIFY_PIN && (o->ca_file != NULL || o->ca_path != NULL || o->ca_pem != NULL))
        return usage(L, "%s", "TLS option verify = \"pin\" checks no CA: drop ca_file/ca_path/ca_pem, "
                     "or keep them with verify = true to check both CA and pin");
    if (o->max_version >= 0 && o->min_version > o->max_version) {
        lua_pushnil(L);
        lua_pushliteral(L, "usage");
        lua_pushfstring(L, "TLS option 'min_version' (1.%d) is above 'max_version' (1.%d)",
                        o->min_version, o->max_version);
        return 3;
    }
    return 0;
}

/* Which of option_names the table at index 1 holds: a transport that
 * cannot honour some of them (the cosocket one) must be able to refuse a
 * config object as it refuses a table. */
static unsigned options_given(lua_State *L)
{
    unsigned given = 0;
    int i;
    for (i = 0; option_names[i] != NULL; i++) {
        lua_getfield(L, 1, option_names[i]);
        if (!lua_isnil(L, -1))
            given |= 1u << i;
        lua_pop(L, 1);
    }
    return given;
}

/* tls_config([opts]) -> TlsConfig | nil, kind, message */
static int ltls_config(lua_State *L)
{
    struct smtp_tls_options o;
    struct ltls_config *u;
    char err[512];
    int n, rc;
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    n = read_options(L, &o);
    if (n != 0)
        return n;
    u = lua_newuserdatauv(L, sizeof *u, 0);
    u->cfg = NULL;
    u->given = options_given(L);
    luaL_setmetatable(L, SMTP_TLS_CONFIG_MT);
    err[0] = '\0';
    rc = smtp_tls_config_new(&u->cfg, &o, err, sizeof err);
    if (rc != SMTP_OK)
        return smtp_push_failure(L, rc, err[0] ? err : NULL);
    return 1;
}

static struct smtp_tls_config *check_open_config(lua_State *L, int idx)
{
    struct ltls_config *u = check_config(L, idx);
    if (u->cfg == NULL)
        luaL_argerror(L, idx, "TLS config is closed");
    return u->cfg;
}

static const char *verify_name(int verify)
{
    return verify == SMTP_TLS_VERIFY_PEER ? "peer" : verify == SMTP_TLS_VERIFY_PIN ? "pin" : "none";
}

static int ltls_verify_mode(lua_State *L)
{
    struct smtp_tls_config *cfg = check_open_config(L, 1);
    lua_pushstring(L, verify_name(smtp_tls_config_verify(cfg)));
    return 1;
}

static int ltls_server_name(lua_State *L)
{
    const char *name = smtp_tls_config_server_name(check_open_config(L, 1));
    if (name == NULL)
        lua_pushnil(L);
    else
        lua_pushstring(L, name);
    return 1;
}

/* config:given_options() -> the names of the options it was made with,
 * e.g. {"ca_file", "verify"} (defaults are not listed). */
static int ltls_given_options(lua_State *L)
{
    struct ltls_config *u = check_config(L, 1);
    int i, n = 0;
    lua_newtable(L);
    for (i = 0; option_names[i] != NULL; i++) {
        if (u->given & (1u << i)) {
            lua_pushstring(L, option_names[i]);
            lua_rawseti(L, -2, ++n);
        }
    }
    return 1;
}

/* __gc and __close: drops the Lua reference; sessions still using the
 * config hold their own. */
static int ltls_close(lua_State *L)
{
    struct ltls_config *u = check_config(L, 1);
    struct smtp_tls_config *cfg = u->cfg;
    u->cfg = NULL;
    smtp_tls_config_unref(cfg);
    return 0;
}

static int ltls_tostring(lua_State *L)
{
    struct ltls_config *u = check_config(L, 1);
    if (u->cfg == NULL)
        lua_pushfstring(L, "%s (closed)", SMTP_TLS_CONFIG_MT);
    else
        lua_pushfstring(L, "%s (verify %s)", SMTP_TLS_CONFIG_MT, verify_name(smtp_tls_config_verify(u->cfg)));
    return 1;
}

int ltls_start(lua_State *L, int conn_idx, int cfg_idx, int name_idx, int fd,
               struct smtp_membio *mem, int64_t deadline, struct smtp_tls **out, char *err, size_t errlen)
{
    struct smtp_tls_config *cfg = check_open_config(L, cfg_idx);
    const char *name = luaL_optstring(L, name_idx, NULL);
    conn_idx = lua_absindex(L, conn_idx);
    lua_pushvalue(L, cfg_idx);
    lua_setiuservalue(L, conn_idx, 1);
    return smtp_tls_start(out, cfg, fd, mem, name, deadline, err, errlen);
}

void ltls_push_info(lua_State *L, const struct smtp_tls *s)
{
    struct smtp_tls_info info;
    smtp_tls_get_info(s, &info);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, info.version);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, info.cipher);
    lua_setfield(L, -2, "cipher");
    lua_pushstring(L, info.peer_subject);
    lua_setfield(L, -2, "peer_subject");
    lua_pushboolean(L, info.peer_verified);
    lua_setfield(L, -2, "peer_verified");
    lua_pushboolean(L, info.resumed);
    lua_setfield(L, -2, "resumed");
    if (info.peer_pin[0] != '\0') {
        lua_pushstring(L, info.peer_pin);
        lua_setfield(L, -2, "peer_pin_sha256");
    }
    if (info.group != NULL) {
        lua_pushstring(L, info.group);
        lua_setfield(L, -2, "group");
    }
}

static const luaL_Reg ltls_methods[] = {
    {"verify_mode", ltls_verify_mode},
    {"server_name", ltls_server_name},
    {"given_options", ltls_given_options},
    {"__gc", ltls_close},
    {"__close", ltls_close},
    {"__tostring", ltls_tostring},
    {NULL, NULL}
};

static int ltls_library_gc(lua_State *L)
{
    (void)L;
    smtp_tls_library_unref();
    return 0;
}

/* This Lua state's reference on mbedTLS's process-wide state: a registry
 * userdata whose __gc drops it when the state closes. Made before any
 * config, connection or DKIM key, it is finalized after all of them
 * (finalizers run newest first), and before Lua unloads the module. */
static void hold_library(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, SMTP_TLS_LIBRARY_KEY);
    if (lua_isnil(L, -1)) {
        lua_newuserdatauv(L, 1, 0);
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, ltls_library_gc);
        lua_setfield(L, -2, "__gc");
        lua_setmetatable(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, SMTP_TLS_LIBRARY_KEY);
        smtp_tls_library_ref();
    }
    lua_pop(L, 1);
}

void ltls_open(lua_State *L)
{
    hold_library(L);
    smtp_new_class(L, SMTP_TLS_CONFIG_MT, ltls_methods);
    lua_pushcfunction(L, ltls_config);
    lua_setfield(L, -2, "tls_config");
}
