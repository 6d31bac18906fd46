/* A connection's bytes in memory instead of a socket (issue 27): the
 * C core writes what would go to the server into 'out' and reads what
 * came from it out of 'in'; the Lua transport moves both through a
 * host's own socket (an OpenResty cosocket, HAProxy's core.tcp()). C
 * never calls Lua: an empty 'in' is SMTP_EWANTREAD and a full 'out'
 * SMTP_EWANTWRITE, as a non-blocking socket would say. */
#ifndef SMTP_MEMBIO_H
#define SMTP_MEMBIO_H

#include <stddef.h>

/* 'out' takes up to this much before writes want the host to drain it:
 * a large message is then encoded in steps instead of all at once. */
#define SMTP_MEMBIO_OUT_MAX (256u * 1024u)

struct smtp_bytes {
    unsigned char *data;
    size_t off, len, cap;   /* unread bytes are data[off .. len) */
};

struct smtp_membio {
    struct smtp_bytes in, out;
    int eof;                /* the host's socket reached end of stream */
    char peer[300];         /* "host:port": names the peer of TLS sessions */
};

/* Takes up to len bytes into 'out'; *took says how many. SMTP_OK when
 * all fit, SMTP_EWANTWRITE when 'out' is full, SMTP_ENOMEM. */
int smtp_membio_write(struct smtp_membio *m, const void *buf, size_t len, size_t *took);

/* Gives 1..cap bytes of 'in' (SMTP_OK), SMTP_EWANTREAD when empty, or
 * SMTP_ECLOSED when empty after end of stream. */
int smtp_membio_read(struct smtp_membio *m, void *buf, size_t cap, size_t *got);

/* Appends bytes from the host to 'in'. SMTP_OK or SMTP_ENOMEM. */
int smtp_membio_feed(struct smtp_membio *m, const void *buf, size_t len);

/* Bytes of 'in' not read yet. */
size_t smtp_membio_unread(const struct smtp_membio *m);

void smtp_membio_free(struct smtp_membio *m);

#endif
