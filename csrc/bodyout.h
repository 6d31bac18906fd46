/* Message body straight to the wire (issue 6): strings, base64 data and
 * files are encoded with the DATA encoder (dotstuff.c) into one reusable
 * buffer and leave in large writes; with BDAT each write is one
 * "BDAT n" chunk (RFC 3030) and the last one "BDAT n LAST". Pipelined
 * command lines ride along: 'prefix' with the first write, 'trailer' with
 * the last. Lua-free: the binding (lbody.c) supplies the write callback. */
#ifndef SMTP_BODYOUT_H
#define SMTP_BODYOUT_H

#include "dotstuff.h"
#include "codec.h"

#include <stdio.h>
#include <stdint.h>
#include <sys/uio.h>

/* Writes every byte of iov[0..n) or returns an smtp_err code. */
typedef int (*smtp_body_write_fn)(void *ctx, struct iovec *iov, int n);

struct smtp_body {
    struct smtp_dotstuffer d;
    int bdat;
    char *buf;              /* encoded bytes not yet written */
    size_t len, cap;
    size_t limit;           /* write once this many encoded bytes wait */
    char *scratch;          /* file blocks and base64 output */
    size_t scratch_cap;
    const char *prefix;     /* sent with the first write, then NULL */
    size_t prefix_len;
    smtp_body_write_fn write;
    void *ctx;
    uint64_t bytes_in;      /* message bytes taken (before encoding) */
    uint64_t chunks;        /* BDAT commands written */
    int read_errno;         /* errno of a failed file read */
};

/* Room the caller allocates: buf for a given limit, scratch for files and
 * base64 (SMTP_BODY_SCRATCH bytes). */
#define SMTP_BODY_BUF_CAP(limit) (2 * (limit) + 64)
#define SMTP_BODY_BLOCK 262144
#define SMTP_BODY_SCRATCH (2 * SMTP_BODY_BLOCK)

/* mode: 0 DATA (dot-stuffed, "." terminator), 1 BDAT (line ends
 * normalised), 2 BDAT BINARYMIME (bytes untouched). */
void smtp_body_init(struct smtp_body *b, int mode, char *buf, size_t cap, size_t limit,
                    char *scratch, size_t scratch_cap, smtp_body_write_fn write, void *ctx);
void smtp_body_prefix(struct smtp_body *b, const char *prefix, size_t len);
/* SMTP_EUSAGE, with d.nul set, for a NUL outside binary mode: nothing
 * encoded since the last write goes out; the caller must drop the
 * connection without finishing (smtp_dot_nul_message() says why). */
int smtp_body_add(struct smtp_body *b, const char *in, size_t len);
/* Base64 (76-column lines, RFC 2045 6.8) of a string or of a whole file. */
int smtp_body_add_b64(struct smtp_body *b, const unsigned char *in, size_t len);
/* Reads f to its end. SMTP_EIO with read_errno set when the read fails:
 * the caller must drop the connection (never terminate a truncated
 * message, SPEC 7). */
int smtp_body_add_file(struct smtp_body *b, FILE *f, int b64);
/* The encoder's tail and the last write (BDAT ... LAST), with trailer;
 * SMTP_EUSAGE and no write once a NUL was seen. */
int smtp_body_finish(struct smtp_body *b, const char *trailer, size_t trailer_len);

#endif
