/* SMTP reply parser: framing and validation of multiline replies.
 * Accepts CRLF or a bare LF as line end (servers in the wild send both);
 * enforces the three-digit code, '-'/' ' separator, one code per reply
 * and the line/line-count limits before memory can grow past them. */
#include "reply.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void smtp_reply_init(struct smtp_reply_parser *p, size_t max_line, size_t max_lines,
                     size_t max_total)
{
    memset(p, 0, sizeof *p);
    p->max_line = max_line ? max_line : SMTP_REPLY_MAX_LINE;
    p->max_lines = max_lines ? max_lines : SMTP_REPLY_MAX_LINES;
    p->max_total = max_total ? max_total : SMTP_REPLY_MAX_TOTAL;
}

void smtp_reply_free(struct smtp_reply_parser *p)
{
    free(p->buf);
    p->buf = NULL;
    p->start = p->len = p->cap = p->scan = 0;
}

static int fail(struct smtp_reply_parser *p, const char *why)
{
    p->failed = 1;
    snprintf(p->error, sizeof p->error, "malformed reply: %s", why);
    return SMTP_EPROTO;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Validates one complete line of n bytes, without its '\n'. */
static int check_line(struct smtp_reply_parser *p, const char *line, size_t n)
{
    int code;
    size_t raw = n + 1; /* with its '\n' */
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (n > p->max_line)
        return fail(p, "line too long");
    /* total <= max_total always holds, so the subtraction is safe. */
    if (raw > p->max_total - p->total)
        return fail(p, "reply too long");
    p->total += raw;
    /* SMTP replies are text (RFC 5321 2.3.8, 4.2): a NUL would cut the
     * line short for any C string consumer further on. */
    if (memchr(line, '\0', n) != NULL)
        return fail(p, "NUL byte in a reply line");
    if (n < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
        return fail(p, "reply code is not three digits");
    /* RFC 5321 4.2: first digit 2-5 here (no 1yz in SMTP), second 0-5. */
    if (line[0] < '2' || line[0] > '5' || line[1] > '5')
        return fail(p, "reply code out of range");
    if (n > 3 && line[3] != ' ' && line[3] != '-')
        return fail(p, "reply code is not three digits");
    code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (p->nlines > 0 && code != p->code)
        return fail(p, "continuation line with a different code");
    p->code = code;
    if (++p->nlines > p->max_lines)
        return fail(p, "too many lines");
    if (n == 3 || line[3] == ' ')
        p->complete = 1;
    return SMTP_OK;
}

/* Validates the complete lines after p->scan, stopping at a reply's end. */
static int scan(struct smtp_reply_parser *p)
{
    while (!p->complete) {
        const char *from = p->buf + p->scan;
        size_t avail = p->len - p->scan;
        const char *eol = memchr(from, '\n', avail);
        int rc;
        if (eol == NULL) {
            /* +1 leaves room for the CR of a CRLF split across feeds. */
            if (avail > p->max_line + 1)
                return fail(p, "line too long");
            /* The line's '\n' is still to come: one byte more. */
            if (avail >= p->max_total - p->total)
                return fail(p, "reply too long");
            return SMTP_OK;
        }
        rc = check_line(p, from, (size_t)(eol - from));
        if (rc != SMTP_OK)
            return rc;
        p->scan = (size_t)(eol - p->buf) + 1;
    }
    return SMTP_OK;
}

int smtp_reply_feed(struct smtp_reply_parser *p, const char *data, size_t len)
{
    if (p->failed)
        return SMTP_EPROTO;
    if (len == 0)
        return SMTP_OK;
    /* scan() stops at a complete reply; until next() takes it, what
     * follows is held unvalidated, so it gets the reply's own bound. */
    if (p->complete && (p->len - p->scan >= p->max_total
                        || len > p->max_total - (p->len - p->scan))) {
        p->failed = 1;
        snprintf(p->error, sizeof p->error,
                 "malformed reply: more than %lu bytes after a complete reply",
                 (unsigned long)p->max_total);
        return SMTP_EPROTO;
    }
    if (p->start > 0 && (p->start == p->len || p->len + len > p->cap)) {
        memmove(p->buf, p->buf + p->start, p->len - p->start);
        p->len -= p->start;
        p->scan -= p->start;
        p->start = 0;
    }
    if (p->len + len > p->cap) {
        size_t cap = p->cap ? p->cap : 1024;
        char *nb;
        while (cap < p->len + len)
            cap *= 2;
        nb = realloc(p->buf, cap);
        if (nb == NULL)
            return SMTP_ENOMEM;
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, len);
    p->len += len;
    return scan(p);
}

/* Copies the enhanced code of the first line into r when its class agrees
 * with the reply code (RFC 2034 section 4). Builds it in a scratch buffer
 * so that a code cut short leaves r->enhanced empty, never unterminated. */
static void find_enhanced(struct smtp_reply *r)
{
    const char *s = r->raw + 4, *end = r->raw + r->rawlen;
    char e[sizeof r->enhanced];
    size_t i = 0;
    int part;
    r->enhanced[0] = '\0';
    if (r->rawlen < 5 || r->raw[3] == '\r' || r->raw[3] == '\n')
        return;
    if (*s != r->raw[0] || (*s != '2' && *s != '4' && *s != '5'))
        return;
    for (part = 0; part < 3; part++) {
        size_t digits = 0;
        if (part > 0) {
            if (s >= end || *s != '.')
                return;
            e[i++] = *s++;
        }
        /* RFC 3463: the class is one digit, subject and detail 1-3. */
        while (s < end && is_digit(*s) && digits < (part == 0 ? 1u : 3u)) {
            e[i++] = *s++;
            digits++;
        }
        if (digits == 0 || (s < end && is_digit(*s)))
            return;
    }
    if (s < end && *s != ' ' && *s != '\r' && *s != '\n')
        return;
    e[i] = '\0';
    memcpy(r->enhanced, e, i + 1);
}

int smtp_reply_next(struct smtp_reply_parser *p, struct smtp_reply *r)
{
    if (p->failed)
        return SMTP_EPROTO;
    if (!p->complete)
        return SMTP_EAGAIN;
    r->code = p->code;
    r->nlines = p->nlines;
    r->raw = p->buf + p->start;
    r->rawlen = p->scan - p->start;
    find_enhanced(r);
    p->start = p->scan;
    p->complete = 0;
    p->nlines = 0;
    p->total = 0;
    p->code = 0;
    /* The buffer may already hold the next pipelined reply; a fault in it
     * is sticky and reported by the next call, not this one. */
    (void)scan(p);
    return SMTP_OK;
}

size_t smtp_reply_buffered(const struct smtp_reply_parser *p)
{
    return p->len - p->start;
}

int smtp_reply_line(const struct smtp_reply *r, const char **pos,
                    const char **text, size_t *textlen)
{
    const char *end = r->raw + r->rawlen, *eol;
    size_t n, skip = 3, elen = strlen(r->enhanced);
    if (*pos >= end)
        return 0;
    eol = memchr(*pos, '\n', (size_t)(end - *pos));
    n = (size_t)(eol - *pos);
    if (n > 0 && (*pos)[n - 1] == '\r')
        n--;
    if (n > 3)
        skip = 4;
    if (elen > 0 && n >= skip + elen && memcmp(*pos + skip, r->enhanced, elen) == 0
        && (n == skip + elen || (*pos)[skip + elen] == ' ')) {
        skip += elen;
        if (n > skip)
            skip++;
    }
    *text = *pos + skip;
    *textlen = n - skip;
    *pos = eol + 1;
    return 1;
}
