/* SASL sessions over libgsasl 2.x (RFC 4422): one library context per
 * process, a session per AUTH exchange, raw bytes in and out (base64 is the
 * caller's, RFC 4954 framing too). Properties are set before stepping; no
 * callback ever reaches the application. Lua-free so it can be fuzzed. */
#ifndef SMTP_SASL_H
#define SMTP_SASL_H

#include <stddef.h>

/* Challenges longer than this are refused before libgsasl sees them; an
 * SMTP reply line is capped at 64 KiB anyway (SPEC 7). */
#define SMTP_SASL_MAX_CHALLENGE 65536

/* A SCRAM server picks the PBKDF2 iteration count; a hostile one could ask
 * for billions and stall the client. 1e6 is above any sane setting (RFC
 * 7677 asks for at least 4096; Dovecot uses 4096). */
#define SMTP_SASL_MAX_SCRAM_ITER 1000000UL

enum smtp_sasl_role {
    SMTP_SASL_CLOSED = 0,
    SMTP_SASL_CLIENT = 1,
    SMTP_SASL_SERVER = 2 /* tests and fuzzers only: a real libgsasl server */
};

struct Gsasl_session;

/* Zero state is "closed": a zeroed struct may be finished safely. */
struct smtp_sasl {
    struct Gsasl_session *gs;
    int role;
    int done;         /* the mechanism reported GSASL_OK */
    int failed;       /* a step failed; the session is unusable */
    int scram;        /* SCRAM-*: lets a final-step failure be named */
    unsigned steps;   /* gsasl_step calls so far */
    int gsasl_rc;     /* last libgsasl return code */
    const char *msg;  /* describes the last failure (static or msgbuf) */
    char msgbuf[160];
    /* Server role: the expected password, handed to libgsasl only when it
     * asks (PLAIN's server clears the property before asking). Ours, wiped. */
    char *expected;
    size_t expected_len;
    /* SCRAM (not -PLUS) with gs2 flag y, run in sasl.c: libgsasl 2.2
     * cannot send y (see smtp_sasl_cb_supported). NULL otherwise. */
    struct smtp_scram_y *y;
};

/* Starts a session for 'mech'. SMTP_OK, SMTP_EUSAGE (unknown or
 * unsupported mechanism; s->msg says so) or SMTP_ENOMEM. On failure the
 * session stays closed. */
int smtp_sasl_start(struct smtp_sasl *s, int role, const char *mech);

/* Sets the property 'name' ("authid", "password", "realm", ...; see
 * smtp_sasl_property_known) to len bytes. SMTP_EUSAGE for an unknown name
 * or a value holding NUL (libgsasl properties are C strings). */
int smtp_sasl_set(struct smtp_sasl *s, const char *name,
                  const char *value, size_t len);
int smtp_sasl_property_known(const char *name);

/* RFC 5802 6: the client supports channel binding but the server did not
 * offer SCRAM-*-PLUS, so a SCRAM-SHA-1/-256 client sends gs2 flag 'y' and
 * a PLUS-capable server that sees it knows the -PLUS offer was stripped.
 * Call after smtp_sasl_start, before the first step, on a client SCRAM
 * session. libgsasl 2.2 sends 'y' only with a binding property set and
 * then names the binding type too, which its own validator refuses, so
 * this exchange is run here (libgsasl still gives SASLprep, the nonce
 * and the PBKDF2 secrets). SMTP_OK, SMTP_EUSAGE, SMTP_ENOMEM. */
int smtp_sasl_cb_supported(struct smtp_sasl *s);

/* One step: 'in' is the peer's decoded message (NULL/0 for none). On
 * SMTP_OK *out (malloc'd, may be NULL when *outlen is 0) is the reply to
 * send and *done tells whether the mechanism finished. Failures:
 * SMTP_ESASL (authentication failed, credentials missing or rejected,
 * server signature mismatch) or SMTP_EPROTO (malformed peer data, too
 * long, step after the end); s->msg describes it. Free *out with
 * smtp_sasl_free_output, which wipes it first (it may hold a password). */
int smtp_sasl_step(struct smtp_sasl *s, const char *in, size_t inlen,
                   char **out, size_t *outlen, int *done);
void smtp_sasl_free_output(char *out, size_t len);

/* Wipes secrets held by libgsasl and by us, frees the session, releases the
 * context. Idempotent. */
void smtp_sasl_finish(struct smtp_sasl *s);

/* Space-separated client mechanisms libgsasl supports (malloc'd; free with
 * smtp_sasl_free_output) or NULL; and whether one name is supported. */
char *smtp_sasl_mechlist(void);
int smtp_sasl_supports(const char *mech);

/* Base64 (RFC 4648, padded) through libgsasl. SMTP_OK, SMTP_EPROTO for
 * malformed input, SMTP_ENOMEM. Output malloc'd, free with
 * smtp_sasl_free_output. *msg receives a static description on failure. */
int smtp_sasl_b64encode(const char *in, size_t len, char **out, size_t *outlen);
int smtp_sasl_b64decode(const char *in, size_t len, char **out, size_t *outlen,
                        const char **msg);

/* Overwrites n bytes in a way the compiler may not elide. */
void smtp_sasl_wipe(void *p, size_t n);

#endif
