/* Body writer: one buffer filled by the DATA encoder and written when it
 * holds 'limit' bytes, so a body of any size costs a few large writes and
 * no per-chunk allocation. */
#include "bodyout.h"
#include "err.h"

#include <errno.h>
#include <string.h>

void smtp_body_init(struct smtp_body *b, int mode, char *buf, size_t cap, size_t limit,
                    char *scratch, size_t scratch_cap, smtp_body_write_fn write, void *ctx)
{
    memset(b, 0, sizeof *b);
    if (mode == 2)
        smtp_dot_init_binary(&b->d);
    else
        smtp_dot_init(&b->d, mode == 0);
    b->bdat = mode != 0;
    b->buf = buf;
    b->cap = cap;
    b->limit = limit;
    b->scratch = scratch;
    b->scratch_cap = scratch_cap;
    b->write = write;
    b->ctx = ctx;
}

void smtp_body_prefix(struct smtp_body *b, const char *prefix, size_t len)
{
    b->prefix = prefix;
    b->prefix_len = len;
}

/* One write: [prefix] [BDAT n [LAST]] encoded bytes [trailer]. */
static int flush(struct smtp_body *b, int last, const char *trailer, size_t tlen)
{
    struct iovec iov[4];
    char head[48];
    int n = 0, rc;
    if (b->prefix_len > 0) {
        iov[n].iov_base = (void *)(size_t)b->prefix;
        iov[n++].iov_len = b->prefix_len;
    }
    if (b->bdat) {
        int hl = snprintf(head, sizeof head, "BDAT %lu%s\r\n", (unsigned long)b->len,
                          last ? " LAST" : "");
        iov[n].iov_base = head;
        iov[n++].iov_len = (size_t)hl;
        b->chunks++;
    }
    if (b->len > 0) {
        iov[n].iov_base = b->buf;
        iov[n++].iov_len = b->len;
    }
    if (tlen > 0) {
        iov[n].iov_base = (void *)(size_t)trailer;
        iov[n++].iov_len = tlen;
    }
    rc = n > 0 ? b->write(b->ctx, iov, n) : SMTP_OK;
    b->len = 0;
    b->prefix = NULL;
    b->prefix_len = 0;
    return rc;
}

int smtp_body_add(struct smtp_body *b, const char *in, size_t len)
{
    while (len > 0) {
        size_t take;
        int rc;
        /* Flush only when more input comes, so the last bytes always go
         * with the terminator (and BDAT never needs an empty LAST chunk). */
        if (b->len >= b->limit) {
            rc = flush(b, 0, NULL, 0);
            if (rc != SMTP_OK)
                return rc;
        }
        /* Output is at most twice the input: this always fits in cap. */
        take = b->limit - b->len;
        if (take > len)
            take = len;
        b->len += smtp_dot_encode(&b->d, in, take, b->buf + b->len);
        /* Checked before any later flush: the block holding the NUL
         * never leaves, nor does the terminator. */
        if (b->d.nul)
            return SMTP_EUSAGE;
        in += take;
        len -= take;
    }
    return SMTP_OK;
}

/* Largest multiple of 3 whose base64 fits, with the input, in 'room'. */
static size_t b64_block(const struct smtp_b64 *e, size_t room, int with_input)
{
    size_t n = (room / 3) / 3 * 3;
    while (n > 3 && (with_input ? n : 0) + smtp_b64_max_out(e, n) > room)
        n = n / 2 / 3 * 3;
    return n;
}

int smtp_body_add_b64(struct smtp_body *b, const unsigned char *in, size_t len)
{
    struct smtp_b64 e;
    char tail[SMTP_B64_FINISH_MAX];
    size_t step, n;
    int rc;
    smtp_b64_init(&e, 76);
    step = b64_block(&e, b->scratch_cap, 0);
    while (len > 0) {
        size_t take = len < step ? len : step;
        n = smtp_b64_encode(&e, in, take, b->scratch);
        rc = smtp_body_add(b, b->scratch, n);
        if (rc != SMTP_OK)
            return rc;
        in += take;
        len -= take;
    }
    n = smtp_b64_finish(&e, tail);
    return smtp_body_add(b, tail, n);
}

int smtp_body_add_file(struct smtp_body *b, FILE *f, int b64)
{
    struct smtp_b64 e;
    size_t block = b->scratch_cap, got, n;
    char *out = NULL;
    int rc;
    if (b64) {
        smtp_b64_init(&e, 76);
        block = b64_block(&e, b->scratch_cap, 1);
        out = b->scratch + block;
    }
    for (;;) {
        errno = 0;
        got = fread(b->scratch, 1, block, f);
        if (got > 0) {
            if (b64) {
                n = smtp_b64_encode(&e, (const unsigned char *)b->scratch, got, out);
                rc = smtp_body_add(b, out, n);
            } else {
                rc = smtp_body_add(b, b->scratch, got);
            }
            if (rc != SMTP_OK)
                return rc;
        }
        if (got < block) {
            if (ferror(f)) {
                b->read_errno = errno != 0 ? errno : EIO;
                return SMTP_EIO;
            }
            break;
        }
    }
    if (b64) {
        char tail[SMTP_B64_FINISH_MAX];
        n = smtp_b64_finish(&e, tail);
        return smtp_body_add(b, tail, n);
    }
    return SMTP_OK;
}

int smtp_body_finish(struct smtp_body *b, const char *trailer, size_t trailer_len)
{
    if (b->d.nul)
        return SMTP_EUSAGE;
    /* buf keeps SMTP_DOT_FINISH_MAX spare bytes beyond 2 * limit. */
    b->len += smtp_dot_finish(&b->d, b->buf + b->len);
    return flush(b, 1, trailer, trailer_len);
}
