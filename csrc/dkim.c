/* DKIM body canonicalisation (RFC 6376 3.4.3, 3.4.4) over a stream, and
 * RSA-SHA256 signing. The stream is first read as the DATA encoder writes
 * it (bare CR, bare LF -> CRLF), then split into the header block, kept
 * as text for the Lua side, and the body, canonicalised and hashed
 * without being held: only the line ends not yet known to be trailing are
 * counted, never stored. */
#include "dkim.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbedtls_compat.h"

#include <mbedtls/entropy.h>
#include <mbedtls/platform_util.h>

/* ---- body ------------------------------------------------------------ */

int smtp_dkim_body_init(struct smtp_dkim_body *b, int relaxed, int with_header)
{
    memset(b, 0, sizeof *b);
    b->relaxed = relaxed;
    b->in_header = with_header;
    mbedtls_md_init(&b->md);
    if (mbedtls_md_setup(&b->md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 0) != 0)
        return SMTP_ENOMEM;
    b->md_ready = 1;
    if (mbedtls_md_starts(&b->md) != 0)
        return SMTP_ENOMEM;
    return SMTP_OK;
}

void smtp_dkim_body_free(struct smtp_dkim_body *b)
{
    if (b->md_ready)
        mbedtls_md_free(&b->md);
    b->md_ready = 0;
    free(b->header);
    b->header = NULL;
    b->header_len = b->header_cap = 0;
}

/* Canonical bytes go through a staging buffer: one hash update per 8 KiB
 * rather than one per 76-byte base64 line. */
static void out_flush(struct smtp_dkim_body *b)
{
    if (b->out_len > 0)
        mbedtls_md_update(&b->md, b->out, b->out_len);
    b->body_len += b->out_len;
    b->out_len = 0;
}

static void out_add(struct smtp_dkim_body *b, const char *p, size_t n)
{
    while (n > 0) {
        size_t room = sizeof b->out - b->out_len;
        size_t k = n < room ? n : room;
        memcpy(b->out + b->out_len, p, k);
        b->out_len += k;
        p += k;
        n -= k;
        if (b->out_len == sizeof b->out)
            out_flush(b);
    }
}

/* Line ends held back until a byte shows they were not trailing. */
static void out_eols(struct smtp_dkim_body *b)
{
    for (; b->pending_eols > 0; b->pending_eols--)
        out_add(b, "\r\n", 2);
}

static int header_add(struct smtp_dkim_body *b, const char *p, size_t n)
{
    if (b->header_len + n > SMTP_DKIM_MAX_HEADER)
        return SMTP_EUSAGE;
    if (b->header_len + n > b->header_cap) {
        size_t cap = b->header_cap ? b->header_cap : 1024;
        char *grown;
        while (cap < b->header_len + n)
            cap *= 2;
        grown = realloc(b->header, cap);
        if (grown == NULL)
            return SMTP_ENOMEM;
        b->header = grown;
        b->header_cap = cap;
    }
    memcpy(b->header + b->header_len, p, n);
    b->header_len += n;
    return SMTP_OK;
}

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* A run of bytes without CR or LF, inside one line. */
static int on_bytes(struct smtp_dkim_body *b, const char *p, size_t n)
{
    size_t i = 0;
    b->line_open = 1;
    if (b->in_header)
        return header_add(b, p, n);
    if (!b->relaxed) {
        out_eols(b);
        out_add(b, p, n);
        b->content = 1;
        return SMTP_OK;
    }
    /* Relaxed: a WSP run becomes one SP when more text follows on the
     * line, and nothing when the line ends. */
    while (i < n) {
        size_t j = i;
        if (is_wsp(p[i])) {
            while (i < n && is_wsp(p[i]))
                i++;
            b->pending_wsp = 1;
            continue;
        }
        while (j < n && !is_wsp(p[j]))
            j++;
        out_eols(b);
        if (b->pending_wsp)
            out_add(b, " ", 1);
        b->pending_wsp = 0;
        out_add(b, p + i, j - i);
        b->content = 1;
        i = j;
    }
    return SMTP_OK;
}

static int on_eol(struct smtp_dkim_body *b)
{
    int rc = SMTP_OK;
    if (b->in_header) {
        if (!b->line_open)
            b->in_header = 0; /* the empty line: the body follows */
        else
            rc = header_add(b, "\r\n", 2);
    } else {
        b->pending_wsp = 0;
        b->pending_eols++;
    }
    b->line_open = 0;
    return rc;
}

int smtp_dkim_body_update(struct smtp_dkim_body *b, const char *in, size_t len)
{
    size_t i = 0;
    int rc = SMTP_OK;
    while (i < len && rc == SMTP_OK) {
        char c = in[i];
        if (c == '\n') {
            if (!b->after_cr)
                rc = on_eol(b);
            b->after_cr = 0;
            i++;
        } else if (c == '\r') {
            rc = on_eol(b);
            b->after_cr = 1;
            i++;
        } else {
            size_t j = i;
            while (j < len && in[j] != '\r' && in[j] != '\n')
                j++;
            b->after_cr = 0;
            rc = on_bytes(b, in + i, j - i);
            i = j;
        }
    }
    return rc;
}

int smtp_dkim_body_finish(struct smtp_dkim_body *b, unsigned char hash[32])
{
    int rc = SMTP_OK;
    /* The DATA encoder closes an open last line. */
    if (b->line_open)
        rc = on_eol(b);
    if (rc != SMTP_OK)
        return rc;
    b->in_header = 0;
    /* Trailing empty lines count as one line end after content; an empty
     * body is empty (relaxed) or one CRLF (simple). */
    if (b->content || !b->relaxed)
        out_add(b, "\r\n", 2);
    b->pending_eols = 0;
    out_flush(b);
    if (mbedtls_md_finish(&b->md, hash) != 0)
        return SMTP_ENOMEM;
    return SMTP_OK;
}

/* ---- key ------------------------------------------------------------- */

struct smtp_dkim_key {
    mbedtls_pk_context pk;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

static void key_clear(struct smtp_dkim_key *k)
{
    mbedtls_pk_free(&k->pk);
    mbedtls_ctr_drbg_free(&k->drbg);
    mbedtls_entropy_free(&k->entropy);
}

int smtp_dkim_key_new(struct smtp_dkim_key **out, const unsigned char *pem, size_t len,
                      char *err, size_t errlen)
{
    static const char pers[] = "lua-smtp dkim";
    struct smtp_dkim_key *k;
    unsigned char *copy;
    size_t bits;
    int ret;
    *out = NULL;
    k = calloc(1, sizeof *k);
    if (k == NULL)
        return SMTP_ENOMEM;
    mbedtls_pk_init(&k->pk);
    mbedtls_entropy_init(&k->entropy);
    mbedtls_ctr_drbg_init(&k->drbg);
    if (smtp_mbedtls_psa_init() != 0) {
        snprintf(err, errlen, "cannot initialise PSA crypto");
        goto fail;
    }
    if (mbedtls_ctr_drbg_seed(&k->drbg, mbedtls_entropy_func, &k->entropy,
                              (const unsigned char *)pers, sizeof pers - 1) != 0) {
        snprintf(err, errlen, "cannot seed the random generator");
        goto fail;
    }
    /* mbedTLS wants PEM text NUL-terminated, the NUL counted in len. */
    copy = malloc(len + 1);
    if (copy == NULL) {
        key_clear(k);
        free(k);
        return SMTP_ENOMEM;
    }
    memcpy(copy, pem, len);
    copy[len] = '\0';
    ret = smtp_pk_parse_key(&k->pk, copy, memchr(copy, '\0', len) ? len : len + 1, NULL, 0,
                            &k->drbg);
    mbedtls_platform_zeroize(copy, len + 1);
    free(copy);
    if (ret != 0) {
        snprintf(err, errlen, "the DKIM key is not a readable unencrypted private key (mbedTLS -0x%04x)",
                 (unsigned)-ret);
        goto fail;
    }
    if (!mbedtls_pk_can_do(&k->pk, MBEDTLS_PK_RSA)) {
        snprintf(err, errlen, "the DKIM key is not an RSA key (rsa-sha256 needs one)");
        goto fail;
    }
    /* RFC 8301 3.2: signers use at least 1024 bits. */
    bits = mbedtls_pk_get_bitlen(&k->pk);
    if (bits < 1024 || bits > 8192) {
        snprintf(err, errlen, "the DKIM key has %u bits; RSA keys of 1024 to 8192 bits are accepted",
                 (unsigned)bits);
        goto fail;
    }
    *out = k;
    return SMTP_OK;
fail:
    key_clear(k);
    free(k);
    return SMTP_EUSAGE;
}

size_t smtp_dkim_key_size(const struct smtp_dkim_key *k)
{
    return mbedtls_pk_get_len(&k->pk);
}

int smtp_dkim_key_sign(struct smtp_dkim_key *k, const unsigned char *data, size_t len,
                       unsigned char *sig, size_t *siglen, char *err, size_t errlen)
{
    unsigned char hash[32];
    int ret = mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), data, len, hash);
    if (ret == 0)
        ret = smtp_pk_sign(&k->pk, MBEDTLS_MD_SHA256, hash, sizeof hash, sig, smtp_dkim_key_size(k),
                           siglen, &k->drbg);
    if (ret != 0) {
        snprintf(err, errlen, "RSA signing failed (mbedTLS -0x%04x)", (unsigned)-ret);
        return SMTP_EUSAGE;
    }
    return SMTP_OK;
}

void smtp_dkim_key_free(struct smtp_dkim_key *k)
{
    if (k == NULL)
        return;
    key_clear(k);
    free(k);
}
