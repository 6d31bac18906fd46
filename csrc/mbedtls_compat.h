/* The few mbedTLS calls whose signatures differ between 2.28 (Debian 12's
 * system library, the default build) and 3.x (3.6 LTS with `make
 * MBEDTLS=3.6`), bridged once so that tls.c and dkim.c read the same
 * under both. Only what those files use is here. */
#ifndef SMTP_MBEDTLS_COMPAT_H
#define SMTP_MBEDTLS_COMPAT_H

/* version.h exists in both and pulls in the build configuration; the
 * explicit include below says which header that is. */
#include <mbedtls/version.h>
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#include <mbedtls/build_info.h>
#else
#include <mbedtls/config.h>
#endif

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/pk.h>

#if MBEDTLS_VERSION_NUMBER >= 0x03000000

/* 3.x: TLS 1.3 always runs on PSA crypto (and X.509/PK do where the
 * library is configured so), which must be initialised before the first
 * handshake or key. psa_crypto_init() may be called again: later calls
 * return at once. */
#if defined(MBEDTLS_PSA_CRYPTO_C)
#include <psa/crypto.h>
#define smtp_mbedtls_psa_init() (psa_crypto_init() == PSA_SUCCESS ? 0 : -1)
/* Frees what psa_crypto_init() allocated (key slots, PSA's own RNG):
 * process-wide state, safe to free when it was never initialised. */
#define smtp_mbedtls_psa_free() mbedtls_psa_crypto_free()
#else
#define smtp_mbedtls_psa_init() 0
#define smtp_mbedtls_psa_free() ((void)0)
#endif

/* 3.x parses and checks private keys with an RNG (RSA blinding); 2.28
 * takes none. */
#define smtp_pk_parse_key(pk, buf, len, pw, pwlen, drbg) \
    mbedtls_pk_parse_key((pk), (buf), (len), (pw), (pwlen), mbedtls_ctr_drbg_random, (drbg))
#define smtp_pk_parse_keyfile(pk, path, pw, drbg) \
    mbedtls_pk_parse_keyfile((pk), (path), (pw), mbedtls_ctr_drbg_random, (drbg))
#define smtp_pk_check_pair(pub, prv, drbg) \
    mbedtls_pk_check_pair((pub), (prv), mbedtls_ctr_drbg_random, (drbg))
/* 3.x also wants the room left in the signature buffer. */
#define smtp_pk_sign(pk, md, hash, hlen, sig, room, siglen, drbg) \
    mbedtls_pk_sign((pk), (md), (hash), (hlen), (sig), (room), (siglen), \
                    mbedtls_ctr_drbg_random, (drbg))

/* The handshake state and the Finished messages' verify_data have no
 * accessor; 3.x marks the fields private (renamed with MBEDTLS_PRIVATE). */
#define smtp_ssl_state(ssl) ((ssl)->MBEDTLS_PRIVATE(state))
#define smtp_ssl_own_verify_data(ssl) ((ssl)->MBEDTLS_PRIVATE(own_verify_data))
#define smtp_ssl_peer_verify_data(ssl) ((ssl)->MBEDTLS_PRIVATE(peer_verify_data))
#define smtp_ssl_verify_data_len(ssl) ((ssl)->MBEDTLS_PRIVATE(verify_data_len))

/* TLS 1.3 needs PSA (above) and its ephemeral key exchange. */
#if defined(MBEDTLS_SSL_PROTO_TLS1_3) && defined(MBEDTLS_PSA_CRYPTO_C) \
    && MBEDTLS_VERSION_NUMBER >= 0x03020000
#define SMTP_HAVE_TLS1_3 1
#endif

#else /* mbedTLS 2.x */

#define smtp_ssl_state(ssl) ((ssl)->state)
#define smtp_ssl_own_verify_data(ssl) ((ssl)->own_verify_data)
#define smtp_ssl_peer_verify_data(ssl) ((ssl)->peer_verify_data)
#define smtp_ssl_verify_data_len(ssl) ((ssl)->verify_data_len)

#define smtp_mbedtls_psa_init() 0
#define smtp_mbedtls_psa_free() ((void)0)
#define smtp_pk_parse_key(pk, buf, len, pw, pwlen, drbg) \
    ((void)(drbg), mbedtls_pk_parse_key((pk), (buf), (len), (pw), (pwlen)))
#define smtp_pk_parse_keyfile(pk, path, pw, drbg) \
    ((void)(drbg), mbedtls_pk_parse_keyfile((pk), (path), (pw)))
#define smtp_pk_check_pair(pub, prv, drbg) \
    ((void)(drbg), mbedtls_pk_check_pair((pub), (prv)))
#define smtp_pk_sign(pk, md, hash, hlen, sig, room, siglen, drbg) \
    ((void)(room), mbedtls_pk_sign((pk), (md), (hash), (hlen), (sig), (siglen), \
                                   mbedtls_ctr_drbg_random, (drbg)))

#endif

#endif
