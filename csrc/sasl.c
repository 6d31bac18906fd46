/* libgsasl 2.x sessions for SMTP AUTH (RFC 4954 over RFC 4422): PLAIN,
 * LOGIN, CRAM-MD5, DIGEST-MD5, SCRAM-SHA-1/-256 (RFC 5802/7677, the server
 * signature is checked by libgsasl), plus server sessions for tests. It
 * never calls the application back: properties are set before stepping.
 * Every buffer that may hold a password is wiped before it is freed. */
#include "sasl.h"
#include "err.h"

#include <gsasl.h>
#include <mbedtls/md.h>
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

/* ---- SCRAM with gs2 flag y (RFC 5802 5.1, 6, 7) ------------------------ */
struct smtp_scram_y {
    Gsasl_hash hash;
    mbedtls_md_type_t md;
    char *gs2;          /* "y,," or "y,a=<authzid>," */
    char *bare;         /* client-first-message-bare */
    char *nonce;        /* the client nonce (base64) */
    unsigned char server_sig[GSASL_HASH_MAX_SIZE];
};

static void scram_y_free(struct smtp_scram_y *y)
{
    if (y == NULL)
        return;
    free(y->gs2);
    free(y->bare);
    free(y->nonce);
    smtp_sasl_wipe(y, sizeof *y);
    free(y);
}

int smtp_sasl_cb_supported(struct smtp_sasl *s)
{
    const char *mech = s->gs != NULL ? gsasl_mechanism_name(s->gs) : NULL;
    struct smtp_scram_y *y;
    if (mech == NULL || s->role != SMTP_SASL_CLIENT || s->steps != 0 || s->y != NULL)
        return fail(s, SMTP_EUSAGE, "gs2 flag y needs a new SCRAM client session");
    y = calloc(1, sizeof *y);
    if (y == NULL)
        return fail(s, SMTP_ENOMEM, "out of memory");
    if (strcmp(mech, "SCRAM-SHA-1") == 0) {
        y->hash = GSASL_HASH_SHA1;
        y->md = MBEDTLS_MD_SHA1;
    } else if (strcmp(mech, "SCRAM-SHA-256") == 0) {
        y->hash = GSASL_HASH_SHA256;
        y->md = MBEDTLS_MD_SHA256;
    } else {
        free(y);
        return fail(s, SMTP_EUSAGE, "gs2 flag y is for SCRAM-SHA-1 and SCRAM-SHA-256 only");
    }
    s->y = y;
    return SMTP_OK;
}

/* RFC 5802 5.1 saslname: ',' and '=' escaped. */
static char *scram_escape(const char *in)
{
    char *out = malloc(strlen(in) * 3 + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (; *in != '\0'; in++) {
        if (*in == ',' || *in == '=') {
            memcpy(o, *in == ',' ? "=2C" : "=3D", 3);
            o += 3;
        } else {
            *o++ = *in;
        }
    }
    *o = '\0';
    return out;
}

/* malloc'd concatenation of up to 6 strings (NULL ends the list early). */
static char *concat6(const char *a, const char *b, const char *c,
                     const char *d, const char *e, const char *f)
{
    const char *parts[6];
    size_t len = 0, i;
    char *out, *o;
    parts[0] = a; parts[1] = b; parts[2] = c; parts[3] = d; parts[4] = e; parts[5] = f;
    for (i = 0; i < 6 && parts[i] != NULL; i++)
        len += strlen(parts[i]);
    out = o = malloc(len + 1);
    if (out == NULL)
        return NULL;
    for (i = 0; i < 6 && parts[i] != NULL; i++) {
        size_t n = strlen(parts[i]);
        memcpy(o, parts[i], n);
        o += n;
    }
    *o = '\0';
    return out;
}

static int scram_y_first(struct smtp_scram_y *y, Gsasl_session *gs, char **out)
{
    const char *authid = gsasl_property_fast(gs, GSASL_AUTHID);
    const char *authzid = gsasl_property_fast(gs, GSASL_AUTHZID);
    char raw[18], *prepped = NULL, *user = NULL, *authz = NULL;
    int rc;
    if (authid == NULL || *authid == '\0')
        return GSASL_NO_AUTHID;
    rc = gsasl_saslprep(authid, GSASL_ALLOW_UNASSIGNED, &prepped, NULL);
    if (rc != GSASL_OK)
        return rc;
    rc = gsasl_nonce(raw, sizeof raw);
    if (rc == GSASL_OK)
        rc = gsasl_base64_to(raw, sizeof raw, &y->nonce, NULL);
    user = rc == GSASL_OK ? scram_escape(prepped) : NULL;
    if (authzid != NULL && *authzid != '\0')
        authz = scram_escape(authzid);
    if (rc == GSASL_OK && (user == NULL || (authzid != NULL && *authzid != '\0' && authz == NULL)))
        rc = GSASL_MALLOC_ERROR;
    if (rc == GSASL_OK) {
        y->gs2 = concat6("y,", authz != NULL ? "a=" : "", authz != NULL ? authz : "", ",", NULL, NULL);
        y->bare = concat6("n=", user, ",r=", y->nonce, NULL, NULL);
        *out = y->gs2 && y->bare ? concat6(y->gs2, y->bare, NULL, NULL, NULL, NULL) : NULL;
        if (*out == NULL)
            rc = GSASL_MALLOC_ERROR;
    }
    gsasl_free(prepped);
    free(user);
    free(authz);
    return rc == GSASL_OK ? GSASL_NEEDS_MORE : rc;
}

/* The value of attribute 'name' at the start of in[0..len) ("r=...,"),
 * as a malloc'd string, and where the next attribute starts. */
static char *scram_attr(const char *in, size_t len, size_t *pos, char name)
{
    size_t start = *pos, end;
    char *v;
    if (start + 2 > len || in[start] != name || in[start + 1] != '=')
        return NULL;
    for (end = start + 2; end < len && in[end] != ','; end++)
        ;
    v = malloc(end - start - 1);
    if (v == NULL)
        return NULL;
    memcpy(v, in + start + 2, end - start - 2);
    v[end - start - 2] = '\0';
    *pos = end < len ? end + 1 : end;
    return v;
}

static int hmac(mbedtls_md_type_t md, const unsigned char *key, size_t klen,
                const char *msg, unsigned char *out)
{
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);
    if (info == NULL || mbedtls_md_hmac(info, key, klen, (const unsigned char *)msg,
                                        strlen(msg), out) != 0)
        return GSASL_CRYPTO_ERROR;
    return GSASL_OK;
}

static int scram_y_final(struct smtp_scram_y *y, Gsasl_session *gs,
                         const char *in, size_t inlen, char **out)
{
    const char *password = gsasl_property_fast(gs, GSASL_PASSWORD);
    size_t pos = 0, hlen = gsasl_hash_length(y->hash), saltlen = 0, i;
    char *snonce = NULL, *salt64 = NULL, *iter = NULL, *salt = NULL, *end = NULL;
    char *cbind = NULL, *without = NULL, *first = NULL, *msg = NULL, *proof64 = NULL;
    char salted[GSASL_HASH_MAX_SIZE], ck[GSASL_HASH_MAX_SIZE], sk[GSASL_HASH_MAX_SIZE],
         stk[GSASL_HASH_MAX_SIZE];
    unsigned char sig[GSASL_HASH_MAX_SIZE];
    unsigned long iters;
    int rc = GSASL_MECHANISM_PARSE_ERROR;

    if (password == NULL)
        return GSASL_NO_PASSWORD;
    if (memchr(in, '\0', inlen) != NULL)
        return GSASL_MECHANISM_PARSE_ERROR;
    /* server-first: r=..,s=..,i=..[,ext]; a leading m= is a mandatory
     * extension we do not know, so it fails the parse. */
    snonce = scram_attr(in, inlen, &pos, 'r');
    salt64 = snonce ? scram_attr(in, inlen, &pos, 's') : NULL;
    iter = salt64 ? scram_attr(in, inlen, &pos, 'i') : NULL;
    if (iter == NULL || *iter == '\0' || strlen(iter) > 9 || *snonce == '\0' || *salt64 == '\0')
        goto done;
    iters = strtoul(iter, &end, 10);
    if (*end != '\0' || iters == 0 || iters > SMTP_SASL_MAX_SCRAM_ITER)
        goto done;
    if (strlen(snonce) <= strlen(y->nonce) || strncmp(snonce, y->nonce, strlen(y->nonce)) != 0) {
        rc = GSASL_AUTHENTICATION_ERROR;
        goto done;
    }
    if (gsasl_base64_from(salt64, strlen(salt64), &salt, &saltlen) != GSASL_OK)
        goto done;
    rc = gsasl_scram_secrets_from_password(y->hash, password, (unsigned)iters, salt, saltlen,
                                           salted, ck, sk, stk);
    if (rc != GSASL_OK)
        goto done;
    rc = GSASL_MALLOC_ERROR;
    if (gsasl_base64_to(y->gs2, strlen(y->gs2), &cbind, NULL) != GSASL_OK)
        goto done;
    without = concat6("c=", cbind, ",r=", snonce, NULL, NULL);
    first = malloc(inlen + 1);
    if (without == NULL || first == NULL)
        goto done;
    memcpy(first, in, inlen);
    first[inlen] = '\0';
    /* AuthMessage := client-first-bare "," server-first "," client-final-without-proof */
    msg = concat6(y->bare, ",", first, ",", without, NULL);
    if (msg == NULL)
        goto done;
    rc = hmac(y->md, (unsigned char *)stk, hlen, msg, sig);
    if (rc != GSASL_OK)
        goto done;
    for (i = 0; i < hlen; i++)
        sig[i] ^= (unsigned char)ck[i];          /* ClientProof */
    rc = gsasl_base64_to((char *)sig, hlen, &proof64, NULL);
    if (rc != GSASL_OK)
        goto done;
    rc = hmac(y->md, (unsigned char *)sk, hlen, msg, y->server_sig);
    if (rc != GSASL_OK)
        goto done;
    *out = concat6(without, ",p=", proof64, NULL, NULL, NULL);
    rc = *out != NULL ? GSASL_NEEDS_MORE : GSASL_MALLOC_ERROR;
done:
    smtp_sasl_wipe(salted, sizeof salted);
    smtp_sasl_wipe(ck, sizeof ck);
    smtp_sasl_wipe(sk, sizeof sk);
    smtp_sasl_wipe(stk, sizeof stk);
    smtp_sasl_wipe(sig, sizeof sig);
    free(snonce);
    free(salt64);
    free(iter);
    gsasl_free(salt);
    gsasl_free(cbind);
    free(without);
    free(first);
    free(msg);
    gsasl_free(proof64);
    return rc;
}

static int scram_y_verify(struct smtp_scram_y *y, const char *in, size_t inlen)
{
    size_t pos = 0, hlen = gsasl_hash_length(y->hash), len = 0, i;
    char *v64, *v = NULL;
    unsigned diff = 0;
    int rc = GSASL_MECHANISM_PARSE_ERROR;
    if (memchr(in, '\0', inlen) != NULL)
        return rc;
    v64 = scram_attr(in, inlen, &pos, 'v');
    if (v64 != NULL && gsasl_base64_from(v64, strlen(v64), &v, &len) == GSASL_OK) {
        if (len != hlen) {
            rc = GSASL_AUTHENTICATION_ERROR;
        } else {
            for (i = 0; i < hlen; i++)
                diff |= (unsigned)((unsigned char)v[i] ^ y->server_sig[i]);
            rc = diff == 0 ? GSASL_OK : GSASL_AUTHENTICATION_ERROR;
        }
    }
    free(v64);
    gsasl_free(v);
    return rc;
}

/* One step of the flag-y exchange, with gsasl_step's return codes. */
static int scram_y_step(struct smtp_sasl *s, const char *in, size_t inlen, char **out, size_t *outlen)
{
    int rc;
    *out = NULL;
    switch (s->steps) {
    case 0:
        rc = scram_y_first(s->y, s->gs, out);
        break;
    case 1:
        rc = scram_y_final(s->y, s->gs, in != NULL ? in : "", inlen, out);
        break;
    case 2:
        return scram_y_verify(s->y, in != NULL ? in : "", inlen);
    default:
        return GSASL_MECHANISM_CALLED_TOO_MANY_TIMES;
    }
    *outlen = *out != NULL ? strlen(*out) : 0;
    return rc;
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
    if (s->y != NULL)
        rc = scram_y_step(s, in, inlen, &o, &olen);
    else
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
    scram_y_free(s->y);
    s->y = NULL;
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
