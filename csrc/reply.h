/* Sans-IO SMTP reply parser (RFC 5321 4.2, enhanced codes RFC 2034/3463).
 * Bytes go in with smtp_reply_feed(); whole replies come out of
 * smtp_reply_next(). It never touches a socket, so the C connection, the
 * cosocket transport and the fuzzer all drive the same code. */
#ifndef SMTP_REPLY_H
#define SMTP_REPLY_H

#include <stddef.h>

#define SMTP_REPLY_MAX_LINE 65536   /* SPEC 7: a longer line is hostile */
#define SMTP_REPLY_MAX_LINES 1000
/* All lines of one reply, codes and line ends included (review L4): the
 * two limits above alone would let one reply hold about 64 MB. The same
 * bound applies to bytes held after a complete reply that next() has not
 * taken yet. */
#define SMTP_REPLY_MAX_TOTAL 262144

struct smtp_reply_parser {
    char *buf;          /* unconsumed input; buf[start..len) is live */
    size_t start, len, cap;
    size_t scan;        /* offset of the first line not yet validated */
    size_t nlines;      /* validated lines of the reply being assembled */
    size_t total;       /* and their bytes, line ends included */
    int code;           /* its code, 0 before its first line */
    int complete;       /* a whole reply ends at 'scan' */
    size_t max_line, max_lines, max_total;
    int failed;         /* errors are sticky: the stream is out of sync */
    char error[128];
};

/* A view into the parser's buffer, valid until the next feed or next. */
struct smtp_reply {
    int code;
    char enhanced[16];  /* "5.1.1", or "" when the reply carries none */
    size_t nlines;
    const char *raw;    /* all lines, with their codes and line ends */
    size_t rawlen;
};

/* 0 for a limit means its default above. */
void smtp_reply_init(struct smtp_reply_parser *p, size_t max_line, size_t max_lines,
                     size_t max_total);
void smtp_reply_free(struct smtp_reply_parser *p);
/* Appends and validates; SMTP_OK, SMTP_ENOMEM or SMTP_EPROTO (message in
 * p->error, "malformed reply: ..."). Every error is sticky. Memory stays
 * within one reply's limits plus 'len': while a complete reply waits for
 * next(), a feed that would hold more than max_total bytes after it is
 * refused ("malformed reply: more than N bytes after a complete reply"). */
int smtp_reply_feed(struct smtp_reply_parser *p, const char *data, size_t len);
/* SMTP_OK with *r filled, SMTP_EAGAIN when more input is needed, or the
 * sticky error. The returned reply is consumed from the buffer. */
int smtp_reply_next(struct smtp_reply_parser *p, struct smtp_reply *r);
/* Bytes received but not yet returned as part of a reply. */
size_t smtp_reply_buffered(const struct smtp_reply_parser *p);

/* Walks the lines of a reply: *pos starts at r->raw. Each call yields the
 * text after the code, separator and (when present) enhanced code, and
 * returns 0 after the last line. */
int smtp_reply_line(const struct smtp_reply *r, const char **pos,
                    const char **text, size_t *textlen);

#endif
