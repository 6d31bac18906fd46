/* Memory buffers standing in for a socket (membio.h). */
#include "membio.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

/* Room for len more bytes at the end, moving unread bytes to the front
 * first so that a queue read as fast as it is filled does not grow. */
static int reserve(struct smtp_bytes *b, size_t len)
{
    size_t unread = b->len - b->off, cap;
    unsigned char *nd;
    if (b->off > 0 && (unread == 0 || b->off >= b->cap / 2)) {
        memmove(b->data, b->data + b->off, unread);
        b->len = unread;
        b->off = 0;
    }
    if (b->cap - b->len >= len)
        return SMTP_OK;
    if (len > (size_t)-1 / 2 - b->len)
        return SMTP_ENOMEM;
    cap = b->cap ? b->cap + b->cap / 2 : 4096;
    if (cap < b->len + len)
        cap = b->len + len;
    nd = realloc(b->data, cap);
    if (nd == NULL)
        return SMTP_ENOMEM;
    b->data = nd;
    b->cap = cap;
    return SMTP_OK;
}

int smtp_membio_write(struct smtp_membio *m, const void *buf, size_t len, size_t *took)
{
    size_t queued = m->out.len - m->out.off, n = len;
    *took = 0;
    if (queued >= SMTP_MEMBIO_OUT_MAX)
        return len > 0 ? SMTP_EWANTWRITE : SMTP_OK;
    if (n > SMTP_MEMBIO_OUT_MAX - queued)
        n = SMTP_MEMBIO_OUT_MAX - queued;
    if (n > 0) {
        if (reserve(&m->out, n) != SMTP_OK)
            return SMTP_ENOMEM;
        memcpy(m->out.data + m->out.len, buf, n);
        m->out.len += n;
    }
    *took = n;
    return n == len ? SMTP_OK : SMTP_EWANTWRITE;
}

int smtp_membio_read(struct smtp_membio *m, void *buf, size_t cap, size_t *got)
{
    size_t unread = m->in.len - m->in.off;
    *got = 0;
    if (unread == 0)
        return m->eof ? SMTP_ECLOSED : SMTP_EWANTREAD;
    if (cap > unread)
        cap = unread;
    memcpy(buf, m->in.data + m->in.off, cap);
    m->in.off += cap;
    *got = cap;
    return SMTP_OK;
}

int smtp_membio_feed(struct smtp_membio *m, const void *buf, size_t len)
{
    if (len == 0)
        return SMTP_OK;
    if (reserve(&m->in, len) != SMTP_OK)
        return SMTP_ENOMEM;
    memcpy(m->in.data + m->in.len, buf, len);
    m->in.len += len;
    return SMTP_OK;
}

size_t smtp_membio_unread(const struct smtp_membio *m)
{
    return m->in.len - m->in.off;
}

void smtp_membio_free(struct smtp_membio *m)
{
    free(m->in.data);
    free(m->out.data);
    memset(m, 0, sizeof *m);
}
