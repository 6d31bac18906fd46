/* mbedTLS client sessions over net.c sockets or memory buffers (membio.h):
 * config building (trust anchors found at run time, client certificate,
 * RNG seeded once), the handshake and records bounded by the caller's
 * deadline, and certificate errors a user understands. Name checks are in
 * tls_verify.c, the session cache in tls_cache.c. TLS 1.2 with 2.28; 1.2
 * and 1.3 with 3.6. */
#include "tls_internal.h"
#include "tls_names.h"
#include "net.h"
#include "membio.h"
#include "err.h"
#include "deadline.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mbedtls_compat.h"

#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* ---- protocol versions: 2.28 and 3.x number them differently ---------- */

/* Can this build speak TLS 1.minor? 3.x dropped 1.0 and 1.1; 2.28 has
 * no production TLS 1.3. */
static int tls_has_version(int minor)
{
    if (minor < 0)
        return 1;   /* not given: the highest the build has */
    switch (minor) {
#if MBEDTLS_VERSION_NUMBER < 0x03000000
#if defined(MBEDTLS_SSL_PROTO_TLS1)
    case 0:
        return 1;
#endif
#if defined(MBEDTLS_SSL_PROTO_TLS1_1)
    case 1:
        return 1;
#endif
#endif
    case 2:
        return 1;
#if defined(SMTP_HAVE_TLS1_3)
    case 3:
        return 1;
#endif
    default:
        return 0;
    }
}

/* Limits the handshake to TLS 1.min .. 1.max (max < 0: the highest this
 * build has); both must pass tls_has_version first. */
static void tls_set_versions(mbedtls_ssl_config *conf, int min, int max)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
    mbedtls_ssl_conf_min_tls_version(conf, min == 3 ? MBEDTLS_SSL_VERSION_TLS1_3
                                                    : MBEDTLS_SSL_VERSION_TLS1_2);
    if (max >= 0)
        mbedtls_ssl_conf_max_tls_version(conf, max == 3 ? MBEDTLS_SSL_VERSION_TLS1_3
                                                        : MBEDTLS_SSL_VERSION_TLS1_2);
#else
    /* 2.x (and 3.0/3.1) count from SSL 3.0: TLS 1.x is minor x + 1. */
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, min + 1);
    if (max >= 0)
        mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, max + 1);
#endif
}
/* ---------------------------------------------------------------------- */

static void tls_strerror(int ret, char *buf, size_t len)
{
#if defined(MBEDTLS_ERROR_C)
    mbedtls_strerror(ret, buf, len);
#else
    snprintf(buf, len, "mbedTLS error -0x%04x", (unsigned)-ret);
#endif
}

/* ---- configuration ---------------------------------------------------- */

static void config_free(struct smtp_tls_config *cfg)
{
    int i;
    for (i = 0; i < TLS_CACHE_SLOTS; i++)
        smtp_tls_cache_drop(&cfg->cache[i]);
    mbedtls_ssl_config_free(&cfg->conf);
    mbedtls_pk_free(&cfg->key);
    mbedtls_x509_crt_free(&cfg->cert);
    mbedtls_x509_crt_free(&cfg->ca);
    mbedtls_ctr_drbg_free(&cfg->drbg);
    mbedtls_entropy_free(&cfg->entropy);
    free(cfg->server_name);
    free(cfg->suites);
    free(cfg->pins);
    smtp_tls_names_free(cfg->names);
    free(cfg);
}

void smtp_tls_config_ref(struct smtp_tls_config *cfg)
{
    cfg->refs++;
}

void smtp_tls_config_unref(struct smtp_tls_config *cfg)
{
    if (cfg != NULL && --cfg->refs == 0)
        config_free(cfg);
}

int smtp_tls_config_verify(const struct smtp_tls_config *cfg)
{
    return cfg->verify;
}

const char *smtp_tls_config_server_name(const struct smtp_tls_config *cfg)
{
    return cfg->server_name;
}

/* mbedTLS wants PEM text NUL-terminated with the NUL counted; DER as is. */
static unsigned char *blob_copy(const char *data, size_t len, size_t *outlen)
{
    unsigned char *b = malloc(len + 1);
    if (b == NULL)
        return NULL;
    memcpy(b, data, len);
    b[len] = '\0';
    *outlen = (len > 0 && memchr(data, '\0', len) == NULL
               && strstr((const char *)b, "-----BEGIN") != NULL) ? len + 1 : len;
    return b;
}

/* Files tried when no CA is given: the OpenSSL variables first, then the
 * bundles of the common distributions and BSDs. */
static const char *const default_ca_files[] = {
    "/etc/ssl/certs/ca-certificates.crt",   /* Debian, Ubuntu, Arch, Alpine */
    "/etc/pki/tls/certs/ca-bundle.crt",     /* Fedora, RHEL */
    "/etc/ssl/ca-bundle.pem",               /* openSUSE */
    "/etc/ssl/cert.pem",                    /* macOS, BSDs */
    NULL
};

static int load_default_ca(struct smtp_tls_config *cfg)
{
    const char *env_file = getenv("SSL_CERT_FILE"), *env_dir = getenv("SSL_CERT_DIR");
    const char *const *f;
    if (env_file != NULL && access(env_file, R_OK) == 0
        && mbedtls_x509_crt_parse_file(&cfg->ca, env_file) >= 0 && cfg->ca.version != 0)
        return 0;
    if (env_dir != NULL && mbedtls_x509_crt_parse_path(&cfg->ca, env_dir) >= 0
        && cfg->ca.version != 0)
        return 0;
    for (f = default_ca_files; *f != NULL; f++) {
        /* A bundle may hold a few certificates mbedTLS cannot parse: a
         * positive return counts them and the others are still loaded. */
        if (access(*f, R_OK) == 0 && mbedtls_x509_crt_parse_file(&cfg->ca, *f) >= 0
            && cfg->ca.version != 0)
            return 0;
    }
    if (mbedtls_x509_crt_parse_path(&cfg->ca, "/etc/ssl/certs") >= 0 && cfg->ca.version != 0)
        return 0;
    return -1;
}

static int load_ca(struct smtp_tls_config *cfg, const struct smtp_tls_options *o,
                   char *err, size_t errlen)
{
    char why[128];
    int ret;
    if (o->ca_file == NULL && o->ca_path == NULL && o->ca_pem == NULL) {
        if (o->verify != SMTP_TLS_VERIFY_PEER)
            return SMTP_OK;
        if (load_default_ca(cfg) != 0) {
            snprintf(err, errlen, "no system CA certificates found (tried SSL_CERT_FILE, "
                     "/etc/ssl/certs/ca-certificates.crt and others); give ca_file or ca_path");
            return SMTP_ETLS;
        }
        return SMTP_OK;
    }
    if (o->ca_file != NULL) {
        ret = mbedtls_x509_crt_parse_file(&cfg->ca, o->ca_file);
        if (ret < 0) {
            tls_strerror(ret, why, sizeof why);
            snprintf(err, errlen, "cannot load ca_file %s: %s", o->ca_file, why);
            return SMTP_ETLS;
        }
    }
    if (o->ca_path != NULL) {
        ret = mbedtls_x509_crt_parse_path(&cfg->ca, o->ca_path);
        if (ret < 0) {
            tls_strerror(ret, why, sizeof why);
            snprintf(err, errlen, "cannot load ca_path %s: %s", o->ca_path, why);
            return SMTP_ETLS;
        }
    }
    if (o->ca_pem != NULL) {
        size_t n;
        unsigned char *b = blob_copy(o->ca_pem, o->ca_pem_len, &n);
        if (b == NULL)
            return SMTP_ENOMEM;
        ret = mbedtls_x509_crt_parse(&cfg->ca, b, n);
        free(b);
        if (ret < 0) {
            tls_strerror(ret, why, sizeof why);
            snprintf(err, errlen, "cannot parse ca_pem: %s", why);
            return SMTP_ETLS;
        }
    }
    if (cfg->ca.version == 0) {
        snprintf(err, errlen, "no usable CA certificate in ca_file/ca_path/ca_pem");
        return SMTP_ETLS;
    }
    return SMTP_OK;
}

/* Parses the client key (file or PEM/DER blob) with password 'pw' (NULL
 * for none). Returns mbedTLS's code; SMTP_ENOMEM stays negative too. */
static int parse_client_key(struct smtp_tls_config *cfg, const struct smtp_tls_options *o,
                            const char *pw, mbedtls_pk_context *pk, int *nomem)
{
    int ret;
    *nomem = 0;
    if (o->key_file != NULL)
        return smtp_pk_parse_keyfile(pk, o->key_file, pw, &cfg->drbg);
    {
        size_t n;
        unsigned char *b = blob_copy(o->key_pem, o->key_pem_len, &n);
        if (b == NULL) {
            *nomem = 1;
            return -1;
        }
        ret = smtp_pk_parse_key(pk, b, n, (const unsigned char *)pw, pw ? strlen(pw) : 0, &cfg->drbg);
        mbedtls_platform_zeroize(b, n);
        free(b);
    }
    return ret;
}

static int load_client_cert(struct smtp_tls_config *cfg, const struct smtp_tls_options *o,
                            char *err, size_t errlen)
{
    int nomem;
    const char *pw = o->key_password;
    char why[128];
    int ret;
    if (o->cert_file != NULL) {
        ret = mbedtls_x509_crt_parse_file(&cfg->cert, o->cert_file);
    } else {
        size_t n;
        unsigned char *b = blob_copy(o->cert_pem, o->cert_pem_len, &n);
        if (b == NULL)
            return SMTP_ENOMEM;
        ret = mbedtls_x509_crt_parse(&cfg->cert, b, n);
        free(b);
    }
    if (ret != 0) {
        tls_strerror(ret, why, sizeof why);
        snprintf(err, errlen, "cannot load client certificate%s%s: %s",
                 o->cert_file ? " " : "", o->cert_file ? o->cert_file : "", why);
        return SMTP_ETLS;
    }
    ret = parse_client_key(cfg, o, pw, &cfg->key, &nomem);
    if (nomem)
        return SMTP_ENOMEM;
    if (ret != 0 && ret != MBEDTLS_ERR_PK_PASSWORD_MISMATCH && pw != NULL) {
        /* A wrong password decrypts to random bytes whose padding passes
         * the check about once in 256 tries; the ASN.1 parse then fails
         * instead. A key that asks for a password is encrypted: the one
         * given was wrong. */
        mbedtls_pk_context probe;
        mbedtls_pk_init(&probe);
        if (parse_client_key(cfg, o, NULL, &probe, &nomem) == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
            ret = MBEDTLS_ERR_PK_PASSWORD_MISMATCH;
        mbedtls_pk_free(&probe);
        if (nomem)
            return SMTP_ENOMEM;
    }
    if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
        snprintf(err, errlen, "the client key is encrypted: key_password is required");
        return SMTP_ETLS;
    }
    if (ret == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
        snprintf(err, errlen, "wrong key_password for the client key");
        return SMTP_ETLS;
    }
    if (ret != 0) {
        tls_strerror(ret, why, sizeof why);
        snprintf(err, errlen, "cannot load client key%s%s: %s",
                 o->key_file ? " " : "", o->key_file ? o->key_file : "", why);
        return SMTP_ETLS;
    }
    if (smtp_pk_check_pair(&cfg->cert.pk, &cfg->key, &cfg->drbg) != 0) {
        snprintf(err, errlen, "the client certificate and key do not match");
        return SMTP_ETLS;
    }
    ret = mbedtls_ssl_conf_own_cert(&cfg->conf, &cfg->cert, &cfg->key);
    if (ret != 0) {
        tls_strerror(ret, why, sizeof why);
        snprintf(err, errlen, "cannot use the client certificate: %s", why);
        return SMTP_ETLS;
    }
    return SMTP_OK;
}

/* AEAD suites first, fastest first, then whatever else the library offers
 * in its own order. On mbedTLS 2.28 ChaCha20-Poly1305 encrypts 16 KiB
 * records at about 360 MB/s against 210 MB/s for AES-GCM even with AES-NI
 * and PCLMUL (measured on x86-64, issue 6), so it leads; a server that
 * keeps its own order still picks. */
static int suite_rank(const char *name)
{
    if (name == NULL)
        return 2;
    if (strstr(name, "-CHACHA20-POLY1305-") != NULL)
        return 0;
    return strstr(name, "-GCM-") != NULL ? 1 : 2;
}

static int *gcm_first_suites(void)
{
    const int *all = mbedtls_ssl_list_ciphersuites();
    size_t n = 0, k = 0, i;
    int *list, pass;
    while (all[n] != 0)
        n++;
    list = malloc((n + 1) * sizeof *list);
    if (list == NULL)
        return NULL;
    for (pass = 0; pass < 3; pass++) {
        for (i = 0; i < n; i++) {
            if (suite_rank(mbedtls_ssl_get_ciphersuite_name(all[i])) == pass)
                list[k++] = all[i];
        }
    }
    list[k] = 0;
    return list;
}

int smtp_tls_config_new(struct smtp_tls_config **out, const struct smtp_tls_options *o,
                        char *err, size_t errlen)
{
    static const char pers[] = "lua-smtp tls config";
    struct smtp_tls_config *cfg;
    char why[128];
    int ret, rc;

    *out = NULL;
    if ((o->cert_file != NULL || o->cert_pem != NULL) != (o->key_file != NULL || o->key_pem != NULL)) {
        snprintf(err, errlen, "a client certificate needs both cert_file/cert_pem and key_file/key_pem");
        return SMTP_EUSAGE;
    }
    cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL)
        return SMTP_ENOMEM;
    cfg->refs = 1;
    cfg->verify = o->verify;
    cfg->session_cache = o->session_cache;
    mbedtls_entropy_init(&cfg->entropy);
    mbedtls_ctr_drbg_init(&cfg->drbg);
    mbedtls_x509_crt_init(&cfg->ca);
    mbedtls_x509_crt_init(&cfg->cert);
    mbedtls_pk_init(&cfg->key);
    mbedtls_ssl_config_init(&cfg->conf);
    if (o->n_pins > 0) {
        cfg->pins = malloc(o->n_pins * SMTP_TLS_PIN_LEN);
        if (cfg->pins == NULL) {
            rc = SMTP_ENOMEM;
            goto fail;
        }
        memcpy(cfg->pins, o->pins, o->n_pins * SMTP_TLS_PIN_LEN);
        cfg->n_pins = o->n_pins;
    }

    if (smtp_mbedtls_psa_init() != 0) {
        snprintf(err, errlen, "cannot initialise PSA crypto");
        rc = SMTP_ETLS;
        goto fail;
    }
    ret = mbedtls_ctr_drbg_seed(&cfg->drbg, mbedtls_entropy_func, &cfg->entropy,
                                (const unsigned char *)pers, sizeof pers - 1);
    if (ret == 0)
        ret = mbedtls_ssl_config_defaults(&cfg->conf, MBEDTLS_SSL_IS_CLIENT,
                                          MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) {
        tls_strerror(ret, why, sizeof why);
        snprintf(err, errlen, "cannot set up TLS: %s", why);
        rc = SMTP_ETLS;
        goto fail;
    }
    mbedtls_ssl_conf_rng(&cfg->conf, mbedtls_ctr_drbg_random, &cfg->drbg);
    if (!tls_has_version(o->min_version) || !tls_has_version(o->max_version)) {
        int min_bad = !tls_has_version(o->min_version);
        int v = min_bad ? o->min_version : o->max_version;
        snprintf(err, errlen, "%s 1.%d is not supported by this mbedTLS build (mbedTLS %s has "
                 "no TLS 1.%d)", min_bad ? "min_version" : "max_version", v,
                 MBEDTLS_VERSION_STRING, v);
        rc = SMTP_ETLS;
        goto fail;
    }
    tls_set_versions(&cfg->conf, o->min_version, o->max_version);
    /* REQUIRED, never OPTIONAL: a bad chain or name aborts the handshake.
     * Under "pin" the key is the identity (tls_pin.c, after the
     * handshake), as with SSH: no chain, no name. */
    mbedtls_ssl_conf_authmode(&cfg->conf, o->verify == SMTP_TLS_VERIFY_PEER
                              ? MBEDTLS_SSL_VERIFY_REQUIRED : MBEDTLS_SSL_VERIFY_NONE);
    cfg->suites = gcm_first_suites();
    if (cfg->suites == NULL) {
        rc = SMTP_ENOMEM;
        goto fail;
    }
    mbedtls_ssl_conf_ciphersuites(&cfg->conf, cfg->suites);
    rc = smtp_tls_names_apply(&cfg->conf, o->ciphersuites, o->n_ciphersuites, o->groups,
                              o->n_groups, &cfg->names, err, errlen);
    if (rc != SMTP_OK)
        goto fail;
#if defined(MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED)
    /* 3.6 drops TLS 1.3 tickets unless asked to hand them over. */
    if (o->session_cache)
        mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
            &cfg->conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
#endif
#if defined(MBEDTLS_SSL_SESSION_TICKETS)
    /* Without a cache a ticket is only work for the server. */
    mbedtls_ssl_conf_session_tickets(&cfg->conf, o->session_cache
                                     ? MBEDTLS_SSL_SESSION_TICKETS_ENABLED
                                     : MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
#endif

    rc = load_ca(cfg, o, err, errlen);
    if (rc != SMTP_OK)
        goto fail;
    if (cfg->ca.version != 0)
        mbedtls_ssl_conf_ca_chain(&cfg->conf, &cfg->ca, NULL);
    if (o->cert_file != NULL || o->cert_pem != NULL) {
        rc = load_client_cert(cfg, o, err, errlen);
        if (rc != SMTP_OK)
            goto fail;
    }
    if (o->server_name != NULL) {
        cfg->server_name = strdup(o->server_name);
        if (cfg->server_name == NULL) {
            rc = SMTP_ENOMEM;
            goto fail;
        }
    }
    *out = cfg;
    return SMTP_OK;
fail:
    if (rc == SMTP_ENOMEM)
        snprintf(err, errlen, "out of memory");
    config_free(cfg);
    return rc;
}

static int library_users;

void smtp_tls_library_ref(void)
{
    library_users++;
}

void smtp_tls_library_unref(void)
{
    if (library_users > 0 && --library_users == 0)
        smtp_mbedtls_psa_free();
}

/* ---- socket callbacks (pure C, non-blocking) ---------------------------- */

/* Ciphertext into the connection's memory buffer, for the host's socket
 * to carry (membio.h); a full buffer is WANT_WRITE like a full socket. */
static int mem_send(struct smtp_tls *s, const unsigned char *buf, size_t len)
{
    size_t took;
    int rc = smtp_membio_write(s->mem, buf, len, &took);
    if (took > 0)
        return (int)took;
    if (rc == SMTP_EWANTWRITE)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    s->bio_errno = ENOMEM;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct smtp_tls *s = ctx;
    if (len > INT_MAX)
        len = INT_MAX;
    if (s->mem != NULL)
        return mem_send(s, buf, len);
    for (;;) {
        ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL | (s->more ? MSG_MORE : 0));
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MBEDTLS_ERR_SSL_WANT_WRITE;
        s->bio_errno = errno;
        return (errno == EPIPE || errno == ECONNRESET)
               ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_SEND_FAILED;
    }
}

/* Whether the ServerHello at the start of these server bytes carries the
 * extended_master_secret extension (RFC 7627 5.1, type 23): 1 or 0, or
 * -1 while it is incomplete. Handshake messages may span records. */
static int hello_ems(const unsigned char *b, size_t n, int full)
{
    unsigned char hs[TLS_HELLO_MAX];
    size_t have = 0, off = 0, mlen, p, end;
    while (off + 5 <= n) {
        size_t len = ((size_t)b[off + 3] << 8) | b[off + 4];
        size_t avail = n - off - 5 < len ? n - off - 5 : len;
        if (b[off] != 22) {     /* the handshake messages stop here */
            full = 1;
            break;
        }
        memcpy(hs + have, b + off + 5, avail);   /* have + avail <= n <= cap */
        have += avail;
        if (avail < len)
            break;
        off += 5 + len;
    }
    if (have < 4)
        return full ? 0 : -1;
    if (hs[0] != 2)             /* not a ServerHello */
        return 0;
    mlen = ((size_t)hs[1] << 16) | ((size_t)hs[2] << 8) | hs[3];
    if (4 + mlen > have)
        return full ? 0 : -1;
    /* version (2), random (32), session id, suite (2), compression (1) */
    p = 4 + 34;
    end = 4 + mlen;
    if (p >= end)
        return 0;
    p += 1 + hs[p];
    p += 3;
    if (p + 2 > end)
        return 0;               /* no extensions at all */
    end = p + 2 + (((size_t)hs[p] << 8) | hs[p + 1]) < end
          ? p + 2 + (((size_t)hs[p] << 8) | hs[p + 1]) : end;
    p += 2;
    while (p + 4 <= end) {
        unsigned type = ((unsigned)hs[p] << 8) | hs[p + 1];
        size_t elen = ((size_t)hs[p + 2] << 8) | hs[p + 3];
        if (type == MBEDTLS_TLS_EXT_EXTENDED_MASTER_SECRET)
            return 1;
        p += 4 + elen;
    }
    return 0;
}

static void hello_feed(struct smtp_tls *s, const unsigned char *buf, size_t n)
{
    size_t room = sizeof s->hello - s->hello_used;
    if (n > room)
        n = room;
    memcpy(s->hello + s->hello_used, buf, n);
    s->hello_used += n;
    s->hello_state = hello_ems(s->hello, s->hello_used, s->hello_used == sizeof s->hello);
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct smtp_tls *s = ctx;
    if (len > INT_MAX)
        len = INT_MAX;
    if (s->mem != NULL) {
        size_t got;
        int rc = smtp_membio_read(s->mem, buf, len, &got);
        if (rc == SMTP_EWANTREAD)
            return MBEDTLS_ERR_SSL_WANT_READ;
        if (got > 0 && s->hello_state < 0)
            hello_feed(s, buf, got);
        return (int)got;    /* 0: the host's socket ended */
    }
    for (;;) {
        ssize_t n = recv(s->fd, buf, len, 0);
        if (n > 0 && s->hello_state < 0)
            hello_feed(s, buf, (size_t)n);
        if (n >= 0)
            return (int)n;   /* 0: end of stream, mbedTLS reports CONN_EOF */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MBEDTLS_ERR_SSL_WANT_READ;
        s->bio_errno = errno;
        return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
    }
}

static int is_want(int ret)
{
    return ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE;
}

static int wait_io(struct smtp_tls *s, int ret, int64_t deadline)
{
    /* mbedTLS also says WANT_READ after a record that carried no data for
     * the caller (a TLS 1.3 ticket): bytes it holds, or that a memory
     * connection holds, are read by calling again, not by waiting. */
    if (ret == MBEDTLS_ERR_SSL_WANT_READ
        && (mbedtls_ssl_check_pending(&s->ssl) || (s->mem != NULL && smtp_membio_unread(s->mem) > 0)))
        return SMTP_OK;
    /* Only the host can wait for a memory connection's bytes. */
    if (s->mem != NULL)
        return ret == MBEDTLS_ERR_SSL_WANT_WRITE ? SMTP_EWANTWRITE : SMTP_EWANTREAD;
    return smtp_net_wait(s->fd, ret == MBEDTLS_ERR_SSL_WANT_WRITE ? POLLOUT : POLLIN, deadline);
}

/* ---- session ------------------------------------------------------------ */

static void append(char *buf, size_t cap, const char *text)
{
    size_t used = strlen(buf);
    if (used > 0 && used + 2 < cap) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    snprintf(buf + used, cap - used, "%s", text);
}

/* Turns verification flags into the sentence a user reads. */
static void describe_flags(struct smtp_tls *s, uint32_t flags, char *err, size_t errlen)
{
    char part[640];
    uint32_t known = MBEDTLS_X509_BADCERT_NOT_TRUSTED | MBEDTLS_X509_BADCERT_EXPIRED
        | MBEDTLS_X509_BADCERT_FUTURE | MBEDTLS_X509_BADCERT_CN_MISMATCH
        | MBEDTLS_X509_BADCERT_REVOKED | MBEDTLS_X509_BADCERT_MISSING
        | MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE
        | MBEDTLS_X509_BADCERT_NS_CERT_TYPE | MBEDTLS_X509_BADCERT_BAD_MD
        | MBEDTLS_X509_BADCERT_BAD_PK | MBEDTLS_X509_BADCERT_BAD_KEY;
    err[0] = '\0';
    if (flags & MBEDTLS_X509_BADCERT_MISSING)
        append(err, errlen, "the server sent no certificate");
    if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
        append(err, errlen, "certificate not trusted (unknown CA)");
    if (flags & MBEDTLS_X509_BADCERT_EXPIRED)
        append(err, errlen, "certificate expired");
    if (flags & MBEDTLS_X509_BADCERT_FUTURE)
        append(err, errlen, "certificate not yet valid");
    if (flags & MBEDTLS_X509_BADCERT_REVOKED)
        append(err, errlen, "certificate revoked");
    if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
        snprintf(part, sizeof part, "host name mismatch: expected %s, certificate is for %s",
                 s->name, s->cert_names[0] ? s->cert_names : "another name");
        append(err, errlen, part);
    }
    if (flags & (MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE
                 | MBEDTLS_X509_BADCERT_NS_CERT_TYPE))
        append(err, errlen, "certificate not meant for a TLS server (key usage)");
    if (flags & (MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK
                 | MBEDTLS_X509_BADCERT_BAD_KEY))
        append(err, errlen, "certificate uses a weak or unsupported key or signature");
    if ((flags & ~known) != 0 || err[0] == '\0') {
        snprintf(part, sizeof part, "certificate rejected (mbedTLS flags 0x%lx)",
                 (unsigned long)flags);
        append(err, errlen, part);
    }
}

static int handshake_error(struct smtp_tls *s, int ret, char *err, size_t errlen)
{
    char why[160];
    uint32_t flags = 0;
    if (s->cfg->verify == SMTP_TLS_VERIFY_PEER) {
        flags = mbedtls_ssl_get_verify_result(&s->ssl);
        if (flags == (uint32_t)-1)  /* no certificate checked yet */
            flags = 0;
        flags |= s->vflags;
    }
    if (flags != 0 || ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        describe_flags(s, flags, err, errlen);
        return SMTP_ETLS;
    }
    if (s->bio_errno != 0)
        snprintf(why, sizeof why, "%s", strerror(s->bio_errno));
    else if (ret == MBEDTLS_ERR_SSL_CONN_EOF)
        snprintf(why, sizeof why, "connection closed by peer");
    else
        tls_strerror(ret, why, sizeof why);
    snprintf(err, errlen, "TLS handshake failed: %s", why);
    return SMTP_ETLS;
}


void smtp_tls_free(struct smtp_tls *s, int notify)
{
    if (s == NULL)
        return;
    if (notify && s->established) {
        /* close_notify (RFC 8446 6.1) is a courtesy: one short try, and
         * none that waits when an event loop owns the waiting. */
        int64_t deadline = notify == SMTP_TLS_NOTIFY_NOWAIT ? SMTP_NOWAIT : smtp_now_ms() + 1000;
        int ret, tries = 0;
        while (is_want(ret = mbedtls_ssl_close_notify(&s->ssl)) && tries++ < 8
               && wait_io(s, ret, deadline) == SMTP_OK)
            ;
    }
    smtp_tls_cache_return_offered(s);
    mbedtls_ssl_free(&s->ssl);
    smtp_tls_config_unref(s->cfg);
    free(s);
}

/* Copies the peer name into s: an IP literal is kept as bytes, a DNS name
 * loses a trailing dot (not sent in SNI, RFC 6066 3). */
static int set_peer(struct smtp_tls *s, const char *name, char *err, size_t errlen)
{
    size_t len = strlen(name);
    if (len == 0 || len >= sizeof s->name) {
        snprintf(err, errlen, "invalid TLS peer name (empty or too long)");
        return SMTP_EUSAGE;
    }
    s->iplen = smtp_tls_parse_ip(name, s->ip);
    if (s->iplen == 0 && name[len - 1] == '.')
        len--;
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    if (s->iplen == 0 && len == 0) {
        snprintf(err, errlen, "invalid TLS peer name '.'");
        return SMTP_EUSAGE;
    }
    return SMTP_OK;
}

/* Steps the handshake until it is over, waiting on the deadline; with
 * SMTP_NOWAIT it returns SMTP_EWANTREAD / SMTP_EWANTWRITE instead and the
 * next call goes on where this one stopped. */
static int run_handshake(struct smtp_tls *s, int64_t deadline, char *err, size_t errlen)
{
    int ret, rc;
    /* mbedtls_ssl_handshake() is this loop; stepping it ourselves shows
     * whether the server sent a certificate (full handshake) or went
     * straight to Finished (resumed): mbedTLS has no accessor for that. */
    while (smtp_ssl_state(&s->ssl) != MBEDTLS_SSL_HANDSHAKE_OVER) {
        int state;
        ret = mbedtls_ssl_handshake_step(&s->ssl);
        state = smtp_ssl_state(&s->ssl);
        if (state == MBEDTLS_SSL_SERVER_CERTIFICATE || state == MBEDTLS_SSL_CERTIFICATE_REQUEST)
            s->resumed = 0;
        if (ret == 0)
            continue;
        if (!is_want(ret))
            return handshake_error(s, ret, err, errlen);
        rc = wait_io(s, ret, deadline);
        if (smtp_is_want(rc))
            return rc;
        if (rc != SMTP_OK) {
            snprintf(err, errlen, "TLS handshake %s", rc == SMTP_ETIMEOUT ? "timed out" : "failed: poll error");
            return rc;
        }
    }
    /* The pin is checked once the server has proved its key and before
     * anything goes over the channel; a failure leaves the session
     * unestablished, so it is neither cached nor given back. */
    rc = smtp_tls_pin_check(s, err, errlen);
    if (rc != SMTP_OK)
        return rc;
    s->established = 1;
    /* A resumed session's master secret is the one its full handshake
     * made: EMS only if that one used it and the server says so again
     * (RFC 7627 5.3). */
    s->ems = s->hello_state == 1 && (!s->resumed || (s->has_offered && s->offered_ems));
    /* Writes are gathered into full records of this size. mbedTLS 3.6
     * counts TLS 1.3's inner content type byte in its 16 KiB, so a 1.3
     * record carries 16383 bytes: gathering 16384 would add a 1-byte
     * record to each. */
    ret = mbedtls_ssl_get_max_out_record_payload(&s->ssl);
    s->rec = ret > 0 && ret < TLS_RECORD_MAX ? (size_t)ret : TLS_RECORD_MAX;
    s->verified = s->cfg->verify == SMTP_TLS_VERIFY_PEER || s->cfg->verify == SMTP_TLS_VERIFY_PIN;
    /* A TLS 1.3 session is only worth keeping once a ticket arrives. */
    if (!smtp_tls_is_13(s))
        smtp_tls_cache_store(s);
    return SMTP_OK;
}

int smtp_tls_start(struct smtp_tls **out, struct smtp_tls_config *cfg, int fd,
                   struct smtp_membio *mem, const char *peer_name, int64_t deadline, char *err, size_t errlen)
{
    struct smtp_tls *s;
    const char *name = cfg->server_name != NULL ? cfg->server_name : peer_name;
    char why[128];
    unsigned char peek;
    ssize_t n;
    int ret, rc;

    *out = NULL;
    if (name != NULL && name[0] == '\0')
        name = NULL;
    /* Without a name the chain could be checked but not whose it is. */
    if (cfg->verify == SMTP_TLS_VERIFY_PEER && name == NULL) {
        snprintf(err, errlen, "cannot verify the server certificate: no server name known "
                 "(give a peer name or server_name, or verify = \"none\")");
        return SMTP_ETLS;
    }
    /* Bytes that arrived in plaintext before our ClientHello would be read
     * as if they came over TLS (STARTTLS response injection, CVE-2011-0411). */
    n = mem != NULL ? (ssize_t)smtp_membio_unread(mem) : recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
        snprintf(err, errlen, "plaintext data received before the TLS handshake "
                 "(STARTTLS response injection?)");
        return SMTP_EPROTO;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return SMTP_ENOMEM;
    s->fd = fd;
    s->mem = mem;
    s->cfg = cfg;
    s->hello_state = -1;
    smtp_tls_config_ref(cfg);
    mbedtls_ssl_init(&s->ssl);
    if (name != NULL) {
        rc = set_peer(s, name, err, errlen);
        if (rc != SMTP_OK)
            goto fail;
    }
    ret = mbedtls_ssl_setup(&s->ssl, &cfg->conf);
    /* A DNS name goes into SNI and mbedTLS's own name check; for an IP
     * literal (no SNI, RFC 6066 3) we opt out explicitly with NULL, which
     * 2.28.10+/3.6.3+ require, and smtp_tls_verify_cb checks the address. Calling
     * it every time also closes CVE-2025-27809 on older versions. */
    if (ret == 0)
        ret = mbedtls_ssl_set_hostname(&s->ssl, (s->name[0] && s->iplen == 0) ? s->name : NULL);
    if (ret != 0) {
        tls_strerror(ret, why, sizeof why);
        snprintf(err, errlen, "cannot set up the TLS session: %s", why);
        rc = ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? SMTP_ENOMEM : SMTP_ETLS;
        goto fail;
    }
    if (cfg->verify == SMTP_TLS_VERIFY_PEER)
        mbedtls_ssl_set_verify(&s->ssl, smtp_tls_verify_cb, s);
    mbedtls_ssl_set_bio(&s->ssl, s, bio_send, bio_recv, NULL);
    if (cfg->session_cache) {
        smtp_tls_cache_key(s, s->cache_key, sizeof s->cache_key);
        smtp_tls_cache_offer(s);
    }
    s->resumed = 1;
    rc = run_handshake(s, deadline, err, errlen);
    if (rc == SMTP_OK || smtp_is_want(rc)) {
        *out = s;   /* want: smtp_tls_handshake continues it */
        return rc;
    }
fail:
    smtp_tls_free(s, 0);
    return rc;
}

int smtp_tls_handshake(struct smtp_tls *s, int64_t deadline, char *err, size_t errlen)
{
    return s->established ? SMTP_OK : run_handshake(s, deadline, err, errlen);
}

/* A record-layer failure after the handshake: closed, reset or garbage. */
static int record_error(struct smtp_tls *s, int ret, const char *op, char *err, size_t errlen)
{
    char why[128];
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == MBEDTLS_ERR_SSL_CONN_EOF) {
        snprintf(err, errlen, "connection closed by peer");
        return SMTP_ECLOSED;
    }
    if (ret == MBEDTLS_ERR_NET_CONN_RESET) {
        snprintf(err, errlen, "%s: %s", op, strerror(s->bio_errno ? s->bio_errno : ECONNRESET));
        return SMTP_ECLOSED;
    }
    if (s->bio_errno != 0) {
        snprintf(err, errlen, "%s: %s", op, strerror(s->bio_errno));
        return SMTP_EIO;
    }
    tls_strerror(ret, why, sizeof why);
    snprintf(err, errlen, "TLS %s failed: %s", op, why);
    return SMTP_ETLS;
}

/* more_after: bytes follow this buffer in the same smtp_tls_sendv. Every
 * record but the last of a write goes with MSG_MORE, so the kernel packs
 * records into full segments instead of one small skb per 16 KiB record;
 * the last one, without it, pushes them all out. */
static int write_all(struct smtp_tls *s, const unsigned char *p, size_t len, int more_after,
                     int64_t deadline, char *err, size_t errlen)
{
    while (len > 0) {
        /* After WANT_*, mbedTLS wants the same arguments again. */
        int ret;
        s->more = more_after || len > s->rec;
        ret = mbedtls_ssl_write(&s->ssl, p, len);
        s->more = 0;
        if (ret > 0) {
            p += ret;
            len -= (size_t)ret;
        } else if (is_want(ret)) {
            int rc = wait_io(s, ret, deadline);
            if (rc != SMTP_OK) {
                snprintf(err, errlen, "send: %s", smtp_strerror(rc));
                return rc;
            }
        } else {
            return record_error(s, ret, "send", err, errlen);
        }
    }
    return SMTP_OK;
}

int smtp_tls_sendv(struct smtp_tls *s, struct iovec *iov, int iovcnt,
                   int64_t deadline, char *err, size_t errlen)
{
    size_t staged = 0, left = 0;
    int rc, i;
    for (i = 0; i < iovcnt; i++)
        left += iov[i].iov_len;
    while (iovcnt > 0) {
        const unsigned char *base = iov->iov_base;
        size_t take;
        if (iov->iov_len == 0) {
            iov++;
            iovcnt--;
            continue;
        }
        if (staged == 0 && iov->iov_len >= s->rec) {
            /* Big buffers go straight in, whole records at a time. */
            take = iov->iov_len - iov->iov_len % s->rec;
            rc = write_all(s, base, take, left > take, deadline, err, errlen);
            if (rc != SMTP_OK)
                return rc;
        } else {
            take = s->rec - staged;
            if (take > iov->iov_len)
                take = iov->iov_len;
            memcpy(s->wbuf + staged, base, take);
            staged += take;
            if (staged == s->rec) {
                rc = write_all(s, s->wbuf, staged, left > take, deadline, err, errlen);
                if (rc != SMTP_OK)
                    return rc;
                staged = 0;
            }
        }
        iov->iov_base = (char *)iov->iov_base + take;
        iov->iov_len -= take;
        left -= take;
    }
    return staged > 0 ? write_all(s, s->wbuf, staged, 0, deadline, err, errlen) : SMTP_OK;
}

int smtp_tls_write_some(struct smtp_tls *s, const void *buf, size_t len, size_t *sent,
                        char *err, size_t errlen)
{
    const unsigned char *p = buf;
    *sent = 0;
    while (*sent < len) {
        size_t left = len - *sent;
        int ret;
        /* Records but the last go with MSG_MORE, as in write_all. */
        s->more = left > s->rec;
        ret = mbedtls_ssl_write(&s->ssl, p + *sent, left);
        s->more = 0;
        if (ret > 0)
            *sent += (size_t)ret;
        else if (is_want(ret))
            return ret == MBEDTLS_ERR_SSL_WANT_WRITE ? SMTP_EWANTWRITE : SMTP_EWANTREAD;
        else
            return record_error(s, ret, "send", err, errlen);
    }
    return SMTP_OK;
}

int smtp_tls_recv(struct smtp_tls *s, void *buf, size_t cap, size_t *got,
                  int64_t deadline, char *err, size_t errlen)
{
    *got = 0;
    if (cap > INT_MAX)
        cap = INT_MAX;
    for (;;) {
        int ret = mbedtls_ssl_read(&s->ssl, buf, cap);
        if (ret > 0) {
            *got = (size_t)ret;
            return SMTP_OK;
        }
        if (is_want(ret)) {
            int rc;
#if defined(TCP_QUICKACK)
            /* A TLS 1.3 server sends its tickets while our first command
             * is in flight; delaying their ACK (40 ms on Linux) stalls a
             * Nagle-ing server's reply behind them. The flag lasts until
             * the kernel's next delayed-ACK decision, so set it per wait;
             * on a non-TCP socket it fails harmlessly. */
            if (ret == MBEDTLS_ERR_SSL_WANT_READ && s->mem == NULL) {
                int one = 1;
                (void)setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
            }
#endif
            rc = wait_io(s, ret, deadline);
            if (rc != SMTP_OK) {
                if (!smtp_is_want(rc))
                    snprintf(err, errlen, "receive: %s", smtp_strerror(rc));
                return rc;
            }
            continue;
        }
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
        if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
            smtp_tls_cache_store(s);     /* TLS 1.3 tickets are not application data */
            s->ticket_stored = 1;
            continue;
        }
#endif
        return record_error(s, ret, "receive", err, errlen);
    }
}

void smtp_tls_get_info(const struct smtp_tls *s, struct smtp_tls_info *info)
{
    const mbedtls_x509_crt *peer;
    info->version = mbedtls_ssl_get_version(&s->ssl);
    info->cipher = mbedtls_ssl_get_ciphersuite(&s->ssl);
    info->peer_subject[0] = '\0';
    info->peer_verified = s->verified;
    info->resumed = s->resumed;
    info->group = smtp_tls_hello_group(s->hello, s->hello_used);
    info->peer_pin[0] = '\0';
    if (s->has_peer_pin)
        smtp_tls_pin_base64(s->peer_pin, info->peer_pin);
    peer = mbedtls_ssl_get_peer_cert(&s->ssl);
    if (peer != NULL && mbedtls_x509_dn_gets(info->peer_subject, sizeof info->peer_subject,
                                             &peer->subject) < 0)
        info->peer_subject[0] = '\0';
}

size_t smtp_tls_unread(struct smtp_tls *s)
{
    return mbedtls_ssl_get_bytes_avail(&s->ssl);
}

int smtp_tls_channel_binding(struct smtp_tls *s, const char **type,
                             unsigned char *out, size_t cap, size_t *len,
                             char *err, size_t errlen)
{
    *len = 0;
    *type = NULL;
    if (cap < 32) {
        snprintf(err, errlen, "channel binding buffer too small");
        return SMTP_EUSAGE;
    }
    if (!smtp_tls_is_13(s) && !s->ems) {
        /* RFC 7627 1, RFC 9266 3: without extended master secret a server
         * can give two connections the same Finished (triple handshake),
         * so tls-unique would not name one channel. */
        snprintf(err, errlen, "no tls-unique channel binding: this TLS 1.2 session did not negotiate "
                 "extended master secret (RFC 7627)");
        return SMTP_ETLS;
    }
    if (smtp_tls_is_13(s)) {
#if defined(MBEDTLS_SSL_KEYING_MATERIAL_EXPORT)
        static const char label[] = "EXPORTER-Channel-Binding";
        /* RFC 9266 2: 32 bytes, no context (RFC 8446 7.5's empty one). */
        int ret = mbedtls_ssl_export_keying_material(&s->ssl, out, 32, label, sizeof label - 1,
                                                     NULL, 0, 0);
        if (ret != 0) {
            char why[128];
            tls_strerror(ret, why, sizeof why);
            snprintf(err, errlen, "cannot export tls-exporter channel binding: %s", why);
            return SMTP_ETLS;
        }
        *type = "tls-exporter";
        *len = 32;
        return SMTP_OK;
#else
        snprintf(err, errlen, "this mbedTLS build cannot export keying material (tls-exporter)");
        return SMTP_ETLS;
#endif
    }
#if defined(MBEDTLS_SSL_RENEGOTIATION)
    {
        /* RFC 5929 3.1: the first Finished of the latest handshake, the
         * client's in a full handshake and the server's in a resumed one. */
        size_t n = smtp_ssl_verify_data_len(&s->ssl);
        const char *vd = s->resumed ? smtp_ssl_peer_verify_data(&s->ssl)
                                    : smtp_ssl_own_verify_data(&s->ssl);
        if (n == 0 || n > cap) {
            snprintf(err, errlen, "no tls-unique channel binding for this session");
            return SMTP_ETLS;
        }
        memcpy(out, vd, n);
        *type = "tls-unique";
        *len = n;
        return SMTP_OK;
    }
#else
    snprintf(err, errlen, "this mbedTLS build keeps no Finished data (tls-unique)");
    return SMTP_ETLS;
#endif
}
