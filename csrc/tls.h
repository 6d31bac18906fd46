/* TLS for the SMTP client with mbedTLS: an immutable, reference-counted
 * configuration (trust anchors, client certificate, RNG) and a session that
 * runs over a connected non-blocking socket with the same deadlines as
 * net.c (STARTTLS, RFC 3207; implicit TLS, RFC 8314). Host name checks
 * follow RFC 6125 / RFC 7817. No Lua here. */
#ifndef SMTP_TLS_H
#define SMTP_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct smtp_tls_config;
struct smtp_tls;
struct smtp_membio;

enum smtp_tls_verify {
    SMTP_TLS_VERIFY_PEER = 0,   /* chain and host name must check out */
    SMTP_TLS_VERIFY_NONE = 1,   /* opportunistic: encrypt, trust anything */
    SMTP_TLS_VERIFY_PIN = 2     /* the leaf's key must match a pin: no CA, no name */
};

/* A key pin: SHA-256 of the leaf's SubjectPublicKeyInfo (RFC 7469 2.4). */
#define SMTP_TLS_PIN_LEN 32
/* Its base64 form with padding, and the NUL. */
#define SMTP_TLS_PIN_B64 45

/* Options for smtp_tls_config_new. Strings are NUL-terminated except the
 * PEM/DER blobs, which carry a length (a Lua string may hold NUL bytes).
 * NULL means "not given". min_version and max_version are minor TLS
 * versions ("1.2" -> 2, "1.3" -> 3, "1.0" -> 0); max_version -1 means the
 * highest this mbedTLS build has (1.2 with 2.28, 1.3 with 3.6). A version
 * the build lacks fails smtp_tls_config_new with SMTP_ETLS. */
struct smtp_tls_options {
    int verify;
    const char *ca_file, *ca_path;
    const char *ca_pem;
    size_t ca_pem_len;
    const char *cert_file, *key_file;
    const char *cert_pem, *key_pem;
    size_t cert_pem_len, key_pem_len;
    const char *key_password;
    int min_version, max_version;
    const char *server_name;
    int session_cache;          /* resume sessions across connections */
    /* IANA names in the user's order (tls_names.c); 0 names: ours. */
    const char *const *ciphersuites, *const *groups;
    size_t n_ciphersuites, n_groups;
    /* n_pins * SMTP_TLS_PIN_LEN bytes; with pins the leaf's key must
     * match one of them (verify PEER: as well as the chain and name). */
    const unsigned char *pins;
    size_t n_pins;
};

/* Builds a configuration (seeds its own entropy + CTR_DRBG once). Returns
 * SMTP_OK with *out holding one reference, or SMTP_ETLS / SMTP_EUSAGE /
 * SMTP_ENOMEM with err filled. */
int smtp_tls_config_new(struct smtp_tls_config **out,
                        const struct smtp_tls_options *opts,
                        char *err, size_t errlen);

/* Sessions hold a reference too, so the order in which Lua's collector
 * finalizes a config and a connection does not matter. */
void smtp_tls_config_ref(struct smtp_tls_config *cfg);
void smtp_tls_config_unref(struct smtp_tls_config *cfg);

int smtp_tls_config_verify(const struct smtp_tls_config *cfg);
/* NULL when no server_name was configured. */
const char *smtp_tls_config_server_name(const struct smtp_tls_config *cfg);

/* Session resumption: a config with session_cache keeps the last session
 * (TLS 1.2) or ticket (TLS 1.3) per peer name and address, and the next
 * handshake with the same config, name and address offers it. A session
 * is only ever stored after a handshake that passed this config's checks
 * for that name, so an abbreviated handshake vouches for the same peer.
 *
 * Runs the client handshake on fd before the deadline. peer_name may be
 * NULL; the config's server_name wins over it. With verify "peer" and no
 * name at all it refuses (SMTP_ETLS) before sending anything. Plaintext
 * bytes already waiting on the socket are an injection attempt
 * (SMTP_EPROTO). On success *out owns the session; on failure *out is
 * NULL and err says why. With the deadline SMTP_NOWAIT it may return
 * SMTP_EWANTREAD / SMTP_EWANTWRITE with *out set: smtp_tls_handshake
 * goes on. The fd stays owned by the caller. With mem (not NULL) the
 * ciphertext goes through those buffers instead of fd (-1): every wait
 * is then a want, and the bytes already in mem->in are the plaintext
 * that must not be there. */
int smtp_tls_start(struct smtp_tls **out, struct smtp_tls_config *cfg, int fd,
                   struct smtp_membio *mem, const char *peer_name, int64_t deadline,
                   char *err, size_t errlen);

/* Goes on with a handshake that smtp_tls_start (or an earlier call)
 * left wanting I/O under the deadline SMTP_NOWAIT. SMTP_OK once it is
 * over; on failure the caller frees the session. */
int smtp_tls_handshake(struct smtp_tls *s, int64_t deadline, char *err, size_t errlen);

/* No-wait writing: encrypts and sends what the socket takes now. *sent
 * bytes were taken; on SMTP_EWANTWRITE / SMTP_EWANTREAD the next call
 * must pass the same remaining bytes (buf + *sent), as mbedTLS needs. */
int smtp_tls_write_some(struct smtp_tls *s, const void *buf, size_t len, size_t *sent,
                        char *err, size_t errlen);

/* Encrypts and sends every byte of the iovecs (small ones are gathered
 * into full records). The iovec array is modified. */
int smtp_tls_sendv(struct smtp_tls *s, struct iovec *iov, int iovcnt,
                   int64_t deadline, char *err, size_t errlen);

/* Receives between 1 and cap plaintext bytes; SMTP_ECLOSED at the end. */
int smtp_tls_recv(struct smtp_tls *s, void *buf, size_t cap, size_t *got,
                  int64_t deadline, char *err, size_t errlen);

/* Frees the session. With 'notify' it first sends close_notify, waiting
 * at most a second (best effort), or not at all with
 * SMTP_TLS_NOTIFY_NOWAIT. Does not close the fd. */
#define SMTP_TLS_NOTIFY_NOWAIT 2
void smtp_tls_free(struct smtp_tls *s, int notify);

struct smtp_tls_info {
    const char *version;        /* "TLSv1.2", "TLSv1.3" */
    const char *cipher;         /* "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
                                   "TLS1-3-AES-256-GCM-SHA384" */
    char peer_subject[512];     /* "CN=localhost", "" without a certificate */
    int peer_verified;          /* chain and name (verify "pin": the key) accepted */
    int resumed;                /* abbreviated handshake (cached session) */
    const char *group;          /* "x25519" (TLS 1.3 key share), NULL if unknown */
    char peer_pin[SMTP_TLS_PIN_B64]; /* the leaf's pin in base64, "" if unknown */
};

void smtp_tls_get_info(const struct smtp_tls *s, struct smtp_tls_info *info);

/* Channel binding data for SCRAM-*-PLUS (RFC 5056): "tls-exporter" (RFC
 * 9266, 32 bytes) under TLS 1.3, "tls-unique" (RFC 5929, the first
 * Finished message's verify_data) under TLS 1.2. Returns SMTP_OK with
 * *type and out[0..*len) filled, or SMTP_ETLS when this build cannot
 * export either (err says why). cap must be at least 32. */
/* Plaintext bytes already decrypted and not read yet. */
size_t smtp_tls_unread(struct smtp_tls *s);

int smtp_tls_channel_binding(struct smtp_tls *s, const char **type,
                             unsigned char *out, size_t cap, size_t *len,
                             char *err, size_t errlen);

/* mbedTLS 3.x keeps PSA crypto's state in process globals that nothing
 * frees on its own. Each user (a Lua state) takes a reference before its
 * first config and drops it once all its configs, sessions and DKIM keys
 * are gone; the last one out frees that state, so none is left behind
 * when the module is unloaded. No-ops with mbedTLS 2.28. */
void smtp_tls_library_ref(void);
void smtp_tls_library_unref(void);

#endif
