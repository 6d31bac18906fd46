/* What tls.c, tls_verify.c and tls_cache.c share (issue 27 split tls.c
 * along its seams): the session and config structures, and the calls
 * between the three. Not part of the module's interface (tls.h is). */
#ifndef SMTP_TLS_INTERNAL_H
#define SMTP_TLS_INTERNAL_H

#include "tls.h"

#include <stddef.h>
#include <stdint.h>

#include "mbedtls_compat.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

struct smtp_membio;
struct smtp_tls_names;

/* Largest TLS record payload (RFC 8446 5.1, RFC 5246 6.2.1): the size of
 * the gathering buffer. A session may allow less (smtp_tls.rec). */
#define TLS_RECORD_MAX 16384
/* The first server bytes kept to read the ServerHello's extensions; a
 * ServerHello that does not fit counts as one without EMS. */
#define TLS_HELLO_MAX 4096

/* Sessions kept per config for resumption: one per peer (name and
 * address), the least recently stored one making room. */
#define TLS_CACHE_SLOTS 8
#define TLS_CACHE_KEY 320

struct tls_cached {
    int used;
    uint64_t stamp;
    char key[TLS_CACHE_KEY];
    int ems;                /* its full handshake used extended master secret */
    int has_pin;            /* pin holds the key its full handshake checked */
    unsigned char pin[SMTP_TLS_PIN_LEN];
    mbedtls_ssl_session session;
};

struct smtp_tls_config {
    int refs;
    int verify;
    char *server_name;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    mbedtls_ssl_config conf;
    int *suites;            /* conf keeps a pointer to this list */
    struct smtp_tls_names *names;   /* ... and to these (user's suites, groups) */
    int session_cache;
    uint64_t cache_clock;
    struct tls_cached cache[TLS_CACHE_SLOTS];
    unsigned char *pins;    /* n_pins * SMTP_TLS_PIN_LEN bytes, NULL for none */
    size_t n_pins;
};

struct smtp_tls {
    mbedtls_ssl_context ssl;
    struct smtp_tls_config *cfg;
    int fd;
    int bio_errno;          /* errno of the last failed send/recv */
    struct smtp_membio *mem; /* ciphertext in memory, not on fd (membio.h) */
    int more;               /* more records follow in this write: MSG_MORE */
    size_t rec;             /* plaintext bytes per full record */
    int established;
    int resumed;            /* abbreviated handshake */
    int ticket_stored;      /* a TLS 1.3 ticket arrived on this connection */
    int has_offered;        /* 'offered' holds the session we offered */
    int offered_ems;        /* ... and that session's EMS flag */
    int offered_has_pin;    /* ... and the leaf key pin it was checked with */
    unsigned char offered_pin[SMTP_TLS_PIN_LEN];
    int has_peer_pin;       /* peer_pin holds the leaf's key pin */
    unsigned char peer_pin[SMTP_TLS_PIN_LEN];
    mbedtls_ssl_session offered;
    /* RFC 7627 extended master secret: mbedTLS negotiates it but keeps
     * the result only in its handshake state, freed when the handshake
     * ends (private in 2.28 and 3.6 alike), so the ServerHello is read
     * here from the first bytes the server sends. */
    int ems;                /* this connection's master secret is EMS */
    int hello_state;        /* -1 reading, 0 no EMS extension, 1 EMS */
    size_t hello_used;
    unsigned char hello[TLS_HELLO_MAX];
    char cache_key[TLS_CACHE_KEY];  /* "" when not caching */
    int verified;
    char name[256];         /* peer name being verified, "" for none */
    unsigned char ip[16];   /* the name as an address when it is a literal */
    size_t iplen;           /* 4 or 16; 0 for a DNS name */
    uint32_t vflags;        /* verification flags seen in the callback */
    char cert_names[256];   /* the leaf's names, for mismatch messages */
    unsigned char wbuf[TLS_RECORD_MAX];
};

/* tls_verify.c: host names and addresses against the leaf certificate
 * (RFC 6125 6.4, RFC 7817 3). */

/* An IP literal, optionally in brackets, as bytes: its length (4 or 16),
 * or 0 for a DNS name. */
size_t smtp_tls_parse_ip(const char *name, unsigned char ip[16]);

/* mbedTLS's verification callback: adds a name mismatch to the flags and
 * keeps them in the session for the error message. */
int smtp_tls_verify_cb(void *ud, mbedtls_x509_crt *crt, int depth, uint32_t *flags);

/* tls_pin.c: the leaf's key pin (full handshake: from its certificate;
 * resumed: the one the cached session was checked with) into
 * s->peer_pin, and the config's pins checked against it. SMTP_OK or
 * SMTP_ETLS with err naming both hashes. */
int smtp_tls_pin_check(struct smtp_tls *s, char *err, size_t errlen);
/* pin as base64 with padding into out. */
void smtp_tls_pin_base64(const unsigned char pin[SMTP_TLS_PIN_LEN], char out[SMTP_TLS_PIN_B64]);

/* tls_cache.c: the sessions a config keeps for resumption. */
void smtp_tls_cache_drop(struct tls_cached *c);
void smtp_tls_cache_key(struct smtp_tls *s, char *key, size_t cap);
void smtp_tls_cache_offer(struct smtp_tls *s);
void smtp_tls_cache_store(struct smtp_tls *s);
void smtp_tls_cache_return_offered(struct smtp_tls *s);
int smtp_tls_is_13(const struct smtp_tls *s);

#endif
