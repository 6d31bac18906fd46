/* libgsasl 2.x sessions for SMTP AUTH (RFC 4954 over RFC 4422): PLAIN,
 * LOGIN, CRAM-MD5, DIGEST-MD5, SCRAM-SHA-1/-256 (RFC 5802/7677, the server
 * signature is checked by libgsasl), plus server sessions for tests. It
 * never calls the application back: properties are set before stepping.
 * Every buffer that may hold a password is wiped before it is freed. */
#include "sasl.h"
#include "err.h"

#include <gsasl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void smtp_sasl_wipe(void *p, size_t n)
{
    /* A volatile pointer stops the compiler from dropping the stores as
     * dead (the buffer is freed right after). */
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

void smtp_sasl_free_output(char *out, size_t len)
{
    if (out == NULL)
        return;
    smtp_sasl_wipe(out, len);
    gsasl_free(out);
}

/* ---- the process-wide context ------------------------------------------
 * Created on first use and destroyed when the last session ends, so a
 * process that stops using SASL holds nothing. A spinlock from compiler
 * builtins guards it: several Lua states may live in several threads, and
 * this avoids a libpthread dependency. The critical section is short. */
static Gsasl *sasl_ctx;
static unsigned sasl_refs;
static volatile int sasl_lock;

static void ctx_lock(void)
{
    while (__sync_lock_test_and_set(&sasl_lock, 1))
        ;
}

static void ctx_unlock(void)
{
    __sync_lock_release(&sasl_lock);
}

static int sasl_callback(Gsasl *ctx, Gsasl_session *gs, Gsasl_property prop);

static int ctx_acquire(Gsasl **out)
{
    int rc = GSASL_OK;
    ctx_lock();
    if (sasl_ctx == NULL) {
        rc = gsasl_init(&sasl_ctx);
        if (rc != GSASL_OK)
            sasl_ctx = NULL;
        else
            gsasl_callback_set(sasl_ctx, sasl_callback);
    }
    if (rc == GSASL_OK) {
        sasl_refs++;
        *out = sasl_ctx;
    }
    ctx_unlock();
    return rc;
}

static void ctx_release(void)
{
    ctx_lock();
    if (sasl_refs > 0 && --sasl_refs == 0) {
        gsasl_done(sasl_ctx);
        sasl_ctx = NULL;
    }
    ctx_unlock();
}

/* libgsasl asks here for a property nobody set. Clients get nothing: the
 * mechanism then fails with its own "no password"-style code, which is the
 * clear error we want. A test server gets its expected password, because
 * PLAIN's and LOGIN's server side clear the property before asking. Pure
 * C: never reaches Lua (DESIGN: no Lua from library callbacks). */
static int sasl_callback(Gsasl *ctx, Gsasl_session *gs, Gsasl_property prop)
{
    struct smtp_sasl *s = gsasl_session_hook_get(gs);
    (void)ctx;
    if (s != NULL && s->role == SMTP_SASL_SERVER && prop == GSASL_PASSWORD
        && s->expected != NULL) {
        gsasl_property_set_raw(gs, GSASL_PASSWORD, s->expected, s->expected_len);
        return GSASL_OK;
    }
    return GSASL_NO_CALLBACK;
}

/* ---- properties --------------------------------------------------------- */
struct sasl_prop {
    const char *name;
    Gsasl_property prop;
    int secret; /* wiped before the session is freed */
};

static const struct sasl_prop sasl_props[] = {
    {"anonymous_token", GSASL_ANONYMOUS_TOKEN, 0},
    {"authid", GSASL_AUTHID, 0},
    {"authzid", GSASL_AUTHZID, 0},
    {"cb_tls_exporter", GSASL_CB_TLS_EXPORTER, 0},
    {"cb_tls_unique", GSASL_CB_TLS_UNIQUE, 0},
    {"digest_md5_hashed_password", GSASL_DIGEST_MD5_HASHED_PASSWORD, 1},
    {"gssapi_display_name", GSASL_GSSAPI_DISPLAY_NAME, 0},
    {"hostname", GSASL_HOSTNAME, 0},
    {"passcode", GSASL_PASSCODE, 1},
    {"password", GSASL_PASSWORD, 1},
    {"pin", GSASL_PIN, 1},
    {"qop", GSASL_QOP, 0},
    {"qops", GSASL_QOPS, 0},
    {"realm", GSASL_REALM, 0},
    {"scram_iter", GSASL_SCRAM_ITER, 0},
    {"scram_salt", GSASL_SCRAM_SALT, 0},
    {"scram_salted_password", GSASL_SCRAM_SALTED_PASSWORD, 1},
    {"scram_serverkey", GSASL_SCRAM_SERVERKEY, 1},
    {"scram_storedkey", GSASL_SCRAM_STOREDKEY, 1},
    {"service", GSASL_SERVICE, 0},
    {"suggested_pin", GSASL_SUGGESTED_PIN, 1},
    {NULL, GSASL_AUTHID, 0}
};

static const struct sasl_prop *prop_find(const char *name)
{
    const struct sasl_prop *p;
    for (p = sasl_props; p->name != NULL; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

int smtp_sasl_property_known(const char *name)
{
    return prop_find(name) != NULL;
}

static int fail(struct smtp_sasl *s, int code, const char *msg)
{
    s->msg = msg;
    return code;
}

int smtp_sasl_set(struct smtp_sasl *s, const char *name,
                  const char *value, size_t len)
{
    const struct sasl_prop *p = prop_find(name);
    if (s->gs == NULL)
        return fail(s, SMTP_EUSAGE, "SASL session is closed");
    if (p == NULL)
        return fail(s, SMTP_EUSAGE, "unknown SASL property");
    if (memchr(value, '\0', len) != NULL)
        return fail(s, SMTP_EUSAGE, "SASL property value contains a NUL byte");
    if (s->role == SMTP_SASL_SERVER && p->prop == GSASL_PASSWORD) {
        char *copy = malloc(len + 1);
        if (copy == NULL)
            return fail(s, SMTP_ENOMEM, "out of memory");
        memcpy(copy, value, len);
        copy[len] = '\0';
        if (s->expected != NULL) {
            smtp_sasl_wipe(s->expected, s->expected_len);
            free(s->expected);
        }
        s->expected = copy;
        s->expected_len = len;
        return SMTP_OK;
    }
    /* libgsasl copies the bytes; the caller's buffer (a Lua string) is not
     * ours to wipe. */
    gsasl_property_set_raw(s->gs, p->prop, value, len);
    return SMTP_OK;
}

/* libgsasl frees its property strings without clearing them, and derives
 * secrets into properties (SCRAM's salted password); clear them in place
 * through the live pointers before gsasl_finish. */
static void wipe_session_secrets(Gsasl_session *gs)
{
    const struct sasl_prop *p;
    for (p = sasl_props; p->name != NULL; p++) {
        const char *v;
        if (!p->secret)
            continue;
        v = gsasl_property_fast(gs, p->prop);
        if (v != NULL)
            smtp_sasl_wipe((char *)(uintptr_t)v, strlen(v));
    }
}

/* ---- sessions ----------------------------------------------------------- */
int smtp_sasl_start(struct smtp_sasl *s, int role, const char *mech)
{
    Gsasl *ctx;
    Gsasl_session *gs = NULL;
    int rc;
    memset(s, 0, sizeof *s);
    if (role != SMTP_SASL_CLIENT && role != SMTP_SASL_SERVER)
        return fail(s, SMTP_EUSAGE, "invalid SASL role");
    if (!gsasl_mechanism_name_p(mech))
        return fail(s, SMTP_EUSAGE, "invalid SASL mechanism name");
    rc = ctx_acquire(&ctx);
    if (rc != GSASL_OK)
        return fail(s, rc == GSASL_MALLOC_ERROR ? SMTP_ENOMEM : SMTP_ESASL,
                    gsasl_strerror(rc));
    if (role == SMTP_SASL_CLIENT)
        rc = gsasl_client_start(ctx, mech, &gs);
    else
        rc = gsasl_server_start(ctx, mech, &gs);
    if (rc != GSASL_OK) {
        ctx_release();
        if (rc == GSASL_UNKNOWN_MECHANISM)
            return fail(s, SMTP_EUSAGE, "SASL mechanism not supported by libgsasl");
        return fail(s, rc == GSASL_MALLOC_ERROR ? SMTP_ENOMEM : SMTP_ESASL,
                    gsasl_strerror(rc));
    }
    s->gs = gs;
    s->role = role;
    s->scram = strncmp(mech, "SCRAM-", 6) == 0;
    gsasl_session_hook_set(gs, s);
    return SMTP_OK;
}

/* Which failures are the peer's malformed data rather than a refusal. */
static int map_gsasl(int rc)
{
    switch (rc) {
    case GSASL_MECHANISM_PARSE_ERROR:
    case GSASL_BASE64_ERROR:
    case GSASL_MECHANISM_CALLED_TOO_MANY_TIMES:
        return SMTP_EPROTO;
    case GSASL_MALLOC_ERROR:
        return SMTP_ENOMEM;
    default:
        return SMTP_ESASL;
    }
}

static int step_failure(struct smtp_sasl *s, int code, const char *what)
{
    const char *mech = gsasl_mechanism_name(s->gs);
    s->failed = 1;
    snprintf(s->msgbuf, sizeof s->msgbuf, "%s: %s",
             mech != NULL ? mech : "SASL", what);
    s->msg = s->msgbuf;
    return code;
}

/* RFC 5802 section 7: server-first is "r=...,s=...,i=<count>[,ext]".
 * Checks only the bound; libgsasl does the real parsing. */
static int scram_iter_ok(const char *in, size_t len)
{
    size_t i = 0;
    while (i + 2 <= len) {
        if ((i == 0 || in[i - 1] == ',') && in[i] == 'i' && in[i + 1] == '=') {
            unsigned long n = 0;
            size_t j;
            for (j = i + 2; j < len && in[j] >= '0' && in[j] <= '9'; j++) {
                n = n * 10 + (unsigned long)(in[j] - '0');
                if (n > SMTP_SASL_MAX_SCRAM_ITER)
                    return 0;
            }
        }
        i++;
    }
    return 1;
}

int smtp_sasl_step(struct smtp_sasl *s, const char *in, size_t inlen,
                   char **out, size_t *outlen, int *done)
{
    char *o = NULL;
    size_t olen = 0;
    int rc;
    *out = NULL;
    *outlen = 0;
    *done = 0;
    if (s->gs == NULL)
        return fail(s, SMTP_EUSAGE, "SASL session is closed");
    if (s->failed)
        return fail(s, SMTP_ESASL, "the SASL exchange already failed");
    if (s->done)
        return step_failure(s, SMTP_EPROTO,
                            "the peer continued a finished exchange");
    if (inlen > SMTP_SASL_MAX_CHALLENGE)
        return step_failure(s, SMTP_EPROTO, "challenge too long");
    /* RFC 5802 5.1: a server-final of "e=..." is the server refusing; say
     * so rather than "could not parse". */
    if (s->scram && s->role == SMTP_SASL_CLIENT && s->steps == 2
        && inlen >= 2 && in[0] == 'e' && in[1] == '=') {
        char what[96];
        int n = (int)(inlen - 2 < 48 ? inlen - 2 : 48);
        snprintf(what, sizeof what, "server reported error '%.*s'", n, in + 2);
        return step_failure(s, SMTP_ESASL, what);
    }
    if (s->scram && s->role == SMTP_SASL_CLIENT && s->steps == 1
        && !scram_iter_ok(in, inlen))
        return step_failure(s, SMTP_EPROTO,
                            "server-first asks for too many iterations");
    rc = gsasl_step(s->gs, inlen > 0 ? in : NULL, inlen, &o, &olen);
    s->steps++;
    s->gsasl_rc = rc;
    if (rc == GSASL_OK || rc == GSASL_NEEDS_MORE) {
        *out = o;
        *outlen = olen;
        *done = rc == GSASL_OK;
        s->done = *done;
        return SMTP_OK;
    }
    smtp_sasl_free_output(o, olen);
    if (s->scram && s->role == SMTP_SASL_CLIENT
        && rc == GSASL_AUTHENTICATION_ERROR) {
        /* libgsasl returns the same code for both checks; the step tells
         * which one failed (RFC 5802 section 5: nonce, then verifier). */
        if (s->steps == 3)
            return step_failure(s, SMTP_ESASL, "server signature mismatch "
                                "(the server does not know the password)");
        if (s->steps == 2)
            return step_failure(s, SMTP_ESASL,
                                "server nonce does not extend the client nonce");
    }
    return step_failure(s, map_gsasl(rc), gsasl_strerror(rc));
}

void smtp_sasl_finish(struct smtp_sasl *s)
{
    if (s->gs != NULL) {
        wipe_session_secrets(s->gs);
        gsasl_session_hook_set(s->gs, NULL);
        gsasl_finish(s->gs);
        s->gs = NULL;
        ctx_release();
    }
    if (s->expected != NULL) {
        smtp_sasl_wipe(s->expected, s->expected_len);
        free(s->expected);
        s->expected = NULL;
        s->expected_len = 0;
    }
    s->role = SMTP_SASL_CLOSED;
}

/* ---- mechanism lists and base64 ------------------------------------------ */
char *smtp_sasl_mechlist(void)
{
    Gsasl *ctx;
    char *list = NULL;
    if (ctx_acquire(&ctx) != GSASL_OK)
        return NULL;
    if (gsasl_client_mechlist(ctx, &list) != GSASL_OK)
        list = NULL;
    ctx_release();
    return list;
}

int smtp_sasl_supports(const char *mech)
{
    Gsasl *ctx;
    int ok;
    if (!gsasl_mechanism_name_p(mech) || ctx_acquire(&ctx) != GSASL_OK)
        return 0;
    ok = gsasl_client_support_p(ctx, mech);
    ctx_release();
    return ok;
}

int smtp_sasl_b64encode(const char *in, size_t len, char **out, size_t *outlen)
{
    int rc;
    *out = NULL;
    *outlen = 0;
    if (len == 0)
        return SMTP_OK;
    rc = gsasl_base64_to(in, len, out, outlen);
    if (rc != GSASL_OK) {
        *out = NULL;
        *outlen = 0;
        return SMTP_ENOMEM;
    }
    return SMTP_OK;
}

int smtp_sasl_b64decode(const char *in, size_t len, char **out, size_t *outlen,
                        const char **msg)
{
    int rc;
    *out = NULL;
    *outlen = 0;
    *msg = NULL;
    if (len == 0)
        return SMTP_OK;
    /* libgsasl stops at a NUL; a challenge holding one is malformed. */
    if (memchr(in, '\0', len) != NULL) {
        *msg = "malformed base64: NUL byte";
        return SMTP_EPROTO;
    }
    rc = gsasl_base64_from(in, len, out, outlen);
    if (rc != GSASL_OK) {
        *out = NULL;
        *outlen = 0;
        *msg = rc == GSASL_MALLOC_ERROR ? "out of memory"
                                        : "malformed base64 in SASL data";
        return rc == GSASL_MALLOC_ERROR ? SMTP_ENOMEM : SMTP_EPROTO;
    }
    return SMTP_OK;
}
