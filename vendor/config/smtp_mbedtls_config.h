/* lua-smtp's configuration of the vendored mbedTLS 3.6 (issue 26): a TLS
 * client and nothing else. Every option below is on because the module
 * uses it; the reason is beside it. Options that only speed things up were
 * chosen by measuring full handshakes (README, "TLS build"); the rest of
 * mbedTLS (server side, DTLS, CRLs, CSR/certificate writing, LMS, PSA key
 * storage, ...) is left out. Read by the library and by csrc/ through
 * MBEDTLS_CONFIG_FILE (mk/mbedtls.mk, the rockspec). */
#ifndef SMTP_MBEDTLS_CONFIG_H
#define SMTP_MBEDTLS_CONFIG_H

/* ---- platform ---------------------------------------------------------- */
#define MBEDTLS_HAVE_ASM            /* bignum multiply in assembly */
#define MBEDTLS_HAVE_TIME           /* certificate validity, ticket lifetimes */
#define MBEDTLS_HAVE_TIME_DATE
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_FS_IO               /* ca_file, ca_path, cert_file, key_file */
#define MBEDTLS_ERROR_C             /* mbedtls_strerror in our messages */

/* ---- randomness -------------------------------------------------------- */
#define MBEDTLS_ENTROPY_C           /* getrandom(2) */
#define MBEDTLS_CTR_DRBG_C          /* one DRBG per tls_config / DKIM key */
#define MBEDTLS_HMAC_DRBG_C         /* deterministic ECDSA (client certificates) */

/* ---- ciphers ----------------------------------------------------------- */
#define MBEDTLS_CIPHER_C
#define MBEDTLS_AES_C
#define MBEDTLS_AESNI_C             /* AES rounds and GHASH in AES-NI/PCLMULQDQ */
#define MBEDTLS_GCM_C               /* AES-GCM: TLS 1.3 and 1.2 */
#define MBEDTLS_CHACHA20_C          /* ChaCha20-Poly1305: TLS 1.3 and 1.2 */
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C
/* CBC: encrypted private keys (PEM AES-256-CBC, PKCS#8 des-ede3-cbc) and
 * the TLS 1.2 ECDHE-*-CBC suites servers without AEAD still offer. */
#define MBEDTLS_CIPHER_MODE_CBC
#define MBEDTLS_CIPHER_PADDING_PKCS7
#define MBEDTLS_DES_C

/* ---- hashes ------------------------------------------------------------ */
#define MBEDTLS_MD_C
#define MBEDTLS_MD5_C               /* the key derivation of encrypted PEM keys */
#define MBEDTLS_SHA1_C              /* SCRAM-SHA-1, PBKDF2-HMAC-SHA1 keys, CBC-SHA suites */
#define MBEDTLS_SHA224_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA384_C            /* TLS_AES_256_GCM_SHA384, ECDSA-SHA384 chains */
#define MBEDTLS_SHA512_C
#define MBEDTLS_HKDF_C              /* TLS 1.3 key schedule */

/* ---- public keys ------------------------------------------------------- */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15           /* RSA certificates and DKIM rsa-sha256 */
#define MBEDTLS_PKCS1_V21           /* RSA-PSS: TLS 1.3 CertificateVerify */
#define MBEDTLS_ECP_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECDSA_DETERMINISTIC
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED   /* x25519 */
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED    /* secp256r1: groups and ECDSA */
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_DP_SECP521R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM      /* fast reduction modulo the NIST primes */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C        /* ECDSA signatures */
#define MBEDTLS_OID_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PKCS5_C             /* PKCS#8 PBES2 encrypted keys */
#define MBEDTLS_PKCS12_C            /* PKCS#8 PKCS#12-PBE encrypted keys */

/* ---- X.509 ------------------------------------------------------------- */
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
#define MBEDTLS_X509_RSASSA_PSS_SUPPORT

/* ---- PSA crypto (TLS 1.3 runs on it) ----------------------------------- */
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_PSA_KEY_STORE_DYNAMIC

/* ---- speed, by measurement (handshake profile in README) ----------------
 * On: Everest's X25519 (HACL*, 64-bit, constant time). TLS 1.3 computes
 * the shared secret through PSA, which uses it: -0.4 ms of client CPU per
 * full handshake (1.35 -> 0.95 ms against an RSA-2048 server), and x25519
 * leads our group order (tls_names.c), ahead of secp256r1 (1.27 ms).
 * Off: the p256-m driver (with MBEDTLS_USE_PSA_CRYPTO, which it needs to
 * reach X.509 and PK): it is built for size, and its ECDSA verification
 * made a handshake with a P-256 certificate chain twice as slow (3.6 ->
 * 7.5 ms); MBEDTLS_USE_PSA_CRYPTO alone changed nothing but the size.
 * Left at the defaults: MBEDTLS_ECP_WINDOW_SIZE (6 gave nothing: a
 * verification's variable point uses a window of 4 anyway) and
 * MBEDTLS_ECP_FIXED_POINT_OPTIM (on). MBEDTLS_GCM_LARGE_TABLE is unused
 * where AES-NI's carry-less multiply does GHASH, so it stays off. */
#define MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED

/* ---- TLS client -------------------------------------------------------- */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE   /* middleboxes (RFC 8446 D.4) */
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED  /* resumption */
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED    /* TLS 1.2 */
#define MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_SESSION_TICKETS         /* session_cache */
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET  /* RFC 7627; tls-unique needs it */
#define MBEDTLS_SSL_ENCRYPT_THEN_MAC        /* RFC 7366 for CBC suites */
#define MBEDTLS_SSL_RENEGOTIATION           /* keeps the Finished data: tls-unique */
#define MBEDTLS_SSL_KEYING_MATERIAL_EXPORT  /* tls-exporter (RFC 9266) */
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE   /* tls_info().peer_subject */
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES      /* tell the server why we hang up */

#endif
