/* pool_key(s) -> 64 hex digits of HMAC-SHA-256(K, s), K being 32 random
 * bytes drawn once per process. Pool names and remembered pool states
 * carry this digest instead of user names and passwords; K never leaves
 * this file, so a digest cannot be tested against guessed passwords. */
#include "lpoolkey.h"
#include "lsmtp.h"
#include "err.h"

#include <mbedtls/entropy.h>
#include <mbedtls/md.h>

#define KEY_LEN 32

static unsigned char pool_key[KEY_LEN];
static int key_ready;
/* Several Lua states may run in several threads: a spinlock from compiler
 * builtins (as sasl.c does) rather than a libpthread dependency. */
static volatile int key_lock;

static int key_init(void)
{
    int ok;
    while (__sync_lock_test_and_set(&key_lock, 1))
        ;
    if (!key_ready) {
        mbedtls_entropy_context entropy;
        mbedtls_entropy_init(&entropy);
        /* The entropy pool (getrandom or /dev/urandom) directly: 32 bytes
         * once need no DRBG. */
        if (mbedtls_entropy_func(&entropy, pool_key, KEY_LEN) == 0)
            key_ready = 1;
        mbedtls_entropy_free(&entropy);
    }
    ok = key_ready;
    __sync_lock_release(&key_lock);
    return ok;
}

static int lpool_key(lua_State *L)
{
    static const char hex[] = "0123456789abcdef";
    size_t len, i;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char mac[32];
    char out[64];
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (!key_init())
        return smtp_push_failure(L, SMTP_EIO, "no random key for pool names: the entropy source failed");
    if (md == NULL || mbedtls_md_hmac(md, pool_key, KEY_LEN, (const unsigned char *)s, len, mac) != 0)
        return smtp_push_failure(L, SMTP_EIO, "HMAC-SHA-256 is not available");
    for (i = 0; i < sizeof mac; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    lua_pushlstring(L, out, sizeof out);
    return 1;
}

/* random_hex(n) -> 2n hex digits from the entropy source (getrandom or
 * /dev/urandom through mbedTLS), 1 <= n <= 32: unpredictable and distinct
 * across processes, unlike math.random (unseeded on 5.1/LuaJIT). */
static int lrandom_hex(lua_State *L)
{
    static const char hex[] = "0123456789abcdef";
    lua_Integer n = luaL_checkinteger(L, 1);
    unsigned char raw[32];
    char out[64];
    mbedtls_entropy_context entropy;
    int rc;
    size_t i;
    luaL_argcheck(L, n >= 1 && n <= 32, 1, "must be 1 to 32");
    mbedtls_entropy_init(&entropy);
    rc = mbedtls_entropy_func(&entropy, raw, (size_t)n);
    mbedtls_entropy_free(&entropy);
    if (rc != 0)
        return smtp_push_failure(L, SMTP_EIO, "the entropy source failed");
    for (i = 0; i < (size_t)n; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    lua_pushlstring(L, out, 2 * (size_t)n);
    return 1;
}

void lpoolkey_open(lua_State *L)
{
    lua_pushcfunction(L, lrandom_hex);
    lua_setfield(L, -2, "random_hex");
    lua_pushcfunction(L, lpool_key);
    lua_setfield(L, -2, "pool_key");
}
