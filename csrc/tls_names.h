/* IANA names of TLS cipher suites and key exchange groups (issue 26):
 * the lists behind smtp.tls_config's `ciphersuites` and `groups` options,
 * checked against what this mbedTLS build has, and the group a TLS 1.3
 * ServerHello names. Works with mbedTLS 2.28 and 3.6. No Lua here. */
#ifndef SMTP_TLS_NAMES_H
#define SMTP_TLS_NAMES_H

#include <stddef.h>

#include "mbedtls_compat.h"
#include <mbedtls/ssl.h>

/* The id lists a config owns: mbedTLS keeps pointers into them. */
struct smtp_tls_names;

/* Sets conf's cipher suites (IANA names, e.g. "TLS_AES_128_GCM_SHA256",
 * "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256") and groups ("x25519",
 * "secp256r1", ...) in the order given; a list of 0 names leaves mbedTLS's
 * or tls.c's choice. Groups not given get lua-smtp's default order.
 * Returns SMTP_OK with *out set (free it with smtp_tls_names_free once
 * conf is gone), SMTP_EUSAGE naming an unknown or unavailable name, or
 * SMTP_ENOMEM; err says why. */
int smtp_tls_names_apply(mbedtls_ssl_config *conf,
                         const char *const *suites, size_t nsuites,
                         const char *const *groups, size_t ngroups,
                         struct smtp_tls_names **out, char *err, size_t errlen);

void smtp_tls_names_free(struct smtp_tls_names *names);

/* The IANA name of the group in the key_share extension of the TLS 1.3
 * ServerHello (or HelloRetryRequest) at the start of these server bytes
 * (records as received); NULL without one (TLS 1.2, psk_ke resumption). */
const char *smtp_tls_hello_group(const unsigned char *b, size_t n);

#endif
