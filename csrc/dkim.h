/* DKIM (RFC 6376) pieces that must be fast or touch key material: a
 * streaming canonicaliser that turns a whole message, fed in chunks of any
 * size, into its header block and the SHA-256 of its canonical body, and
 * RSA-SHA256 (PKCS#1 v1.5) signing with a PEM key. Line ends are read the
 * way the DATA encoder (dotstuff.c) writes them, so the hash is of the
 * bytes that go on the wire: every bare CR and bare LF counts as CRLF and
 * an unterminated last line gets one. */
#ifndef SMTP_DKIM_H
#define SMTP_DKIM_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/md.h>

/* Bound on the header block kept for the Lua side (as in envelope.lua). */
#define SMTP_DKIM_MAX_HEADER (1024 * 1024)

struct smtp_dkim_body {
    int relaxed;          /* body canonicalisation: relaxed, else simple */
    int in_header;        /* still copying the header block */
    int after_cr;         /* last byte was CR: an LF next is its pair */
    int line_open;        /* bytes seen since the last line end */
    int pending_wsp;      /* relaxed: WSP seen, not yet written */
    int content;          /* some canonical body byte was hashed */
    uint64_t pending_eols; /* line ends held back (trailing ones are dropped) */
    uint64_t body_len;    /* canonical body length hashed so far */
    char *header;         /* header block, CRLF line ends, no empty line */
    size_t header_len, header_cap;
    mbedtls_md_context_t md;
    int md_ready;
    size_t out_len;       /* canonical bytes staged for the hash */
    unsigned char out[8192];
};

/* with_header: the stream opens with a header block to capture; else it
 * is a body only. Returns SMTP_OK or SMTP_ENOMEM. */
int smtp_dkim_body_init(struct smtp_dkim_body *b, int relaxed, int with_header);
/* SMTP_OK, or SMTP_EUSAGE when the header block passes the bound. */
int smtp_dkim_body_update(struct smtp_dkim_body *b, const char *in, size_t len);
/* Ends the stream; writes the 32-byte body hash. */
int smtp_dkim_body_finish(struct smtp_dkim_body *b, unsigned char hash[32]);
void smtp_dkim_body_free(struct smtp_dkim_body *b);

struct smtp_dkim_key;

/* Parses a PEM (or DER) RSA private key of 1024 to 8192 bits. On failure
 * returns SMTP_EUSAGE with a message in err that never quotes the key. */
int smtp_dkim_key_new(struct smtp_dkim_key **out, const unsigned char *pem, size_t len,
                      char *err, size_t errlen);
/* Key size in bytes, which is the signature length. */
size_t smtp_dkim_key_size(const struct smtp_dkim_key *k);
/* RSA-SHA256 PKCS#1 v1.5 signature of data into sig (room for
 * smtp_dkim_key_size bytes). */
int smtp_dkim_key_sign(struct smtp_dkim_key *k, const unsigned char *data, size_t len,
                       unsigned char *sig, size_t *siglen, char *err, size_t errlen);
void smtp_dkim_key_free(struct smtp_dkim_key *k);

#endif
