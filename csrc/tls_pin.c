/* Public key pinning for tls.c (tls_config's pin_sha256, as curl's
 * --pinnedpubkey and HPKP's pin-sha256, RFC 7469 2.4): the SHA-256 of the
 * leaf certificate's SubjectPublicKeyInfo DER, compared with the pins. */
#include "tls_internal.h"
#include "err.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/md.h>

void smtp_tls_pin_base64(const unsigned char pin[SMTP_TLS_PIN_LEN], char out[SMTP_TLS_PIN_B64])
{
    size_t n = 0;
    if (mbedtls_base64_encode((unsigned char *)out, SMTP_TLS_PIN_B64, &n, pin, SMTP_TLS_PIN_LEN) != 0)
        n = 0;
    out[n] = '\0';
}

/* The certificate keeps the SPKI exactly as signed (pk_raw in 2.28 and
 * 3.6 alike), so no re-encoding can make it differ from what openssl
 * hashes. */
static int leaf_pin(const mbedtls_x509_crt *crt, unsigned char pin[SMTP_TLS_PIN_LEN])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (md == NULL || crt->pk_raw.p == NULL || crt->pk_raw.len == 0)
        return -1;
    return mbedtls_md(md, crt->pk_raw.p, crt->pk_raw.len, pin) == 0 ? 0 : -1;
}

/* The leaf's pin for this connection. A resumed session shows no
 * certificate of its own: its pin is the one stored with the cached
 * session, which only a handshake that passed this config's checks puts
 * there, and only the server that passed them can resume it. */
static int find_peer_pin(struct smtp_tls *s)
{
    const mbedtls_x509_crt *crt;
    if (s->resumed) {
        if (!s->has_offered || !s->offered_has_pin)
            return -1;
        memcpy(s->peer_pin, s->offered_pin, SMTP_TLS_PIN_LEN);
        return 0;
    }
    crt = mbedtls_ssl_get_peer_cert(&s->ssl);
    return crt != NULL ? leaf_pin(crt, s->peer_pin) : -1;
}

int smtp_tls_pin_check(struct smtp_tls *s, char *err, size_t errlen)
{
    const struct smtp_tls_config *cfg = s->cfg;
    char got[SMTP_TLS_PIN_B64], want[SMTP_TLS_PIN_B64];
    size_t i, used;

    s->has_peer_pin = find_peer_pin(s) == 0;
    if (cfg->n_pins == 0)
        return SMTP_OK;
    if (!s->has_peer_pin) {
        /* Fail closed: nothing to compare is not a match. */
        snprintf(err, errlen, "public key pinning failed: the server's certificate key is not known "
                 "for this %s handshake", s->resumed ? "resumed" : "full");
        return SMTP_ETLS;
    }
    for (i = 0; i < cfg->n_pins; i++)
        if (memcmp(cfg->pins + i * SMTP_TLS_PIN_LEN, s->peer_pin, SMTP_TLS_PIN_LEN) == 0)
            return SMTP_OK;
    smtp_tls_pin_base64(s->peer_pin, got);
    used = (size_t)snprintf(err, errlen, "public key pin mismatch: the server's key is sha256//%s, "
                            "expected sha256//", got);
    /* Every expected pin that fits; a user with many sees the first few. */
    for (i = 0; i < cfg->n_pins && used < errlen; i++) {
        smtp_tls_pin_base64(cfg->pins + i * SMTP_TLS_PIN_LEN, want);
        used += (size_t)snprintf(err + used, errlen - used, "%s%s", i ? " or sha256//" : "", want);
    }
    return SMTP_ETLS;
}
