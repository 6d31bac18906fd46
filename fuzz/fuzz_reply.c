/* libFuzzer target for the reply parser (csrc/reply.c, RFC 5321 4.2 and
 * SPEC section 7). Besides "no crash" it checks that every reply has a
 * code 200-599 whose second digit is 0-5, holds no NUL, stays within the
 * line, line-count and total-size limits, is a verbatim prefix of the
 * input, and that feeding the input whole, split at a fuzzer-chosen point,
 * or one byte at a time yields the same replies. The one allowed
 * difference: a feed while a complete reply waits may be refused for
 * holding too much after it (a bound on the caller, not on the input);
 * the run that hit it must then have seen a prefix of the other's
 * replies. */
#include "../csrc/reply.h"
#include "../csrc/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REPLIES 4096

/* Everything one run observed, for comparing runs. */
struct outcome {
    size_t nreplies;
    int codes[MAX_REPLIES];
    char enhanced[MAX_REPLIES][16];
    size_t nlines[MAX_REPLIES];
    char *raw;          /* the raw bytes of all replies, concatenated */
    size_t rawlen;
    int final;          /* SMTP_EAGAIN or SMTP_EPROTO at the end */
    int held_too_much;  /* refused for bytes held after a complete reply */
    size_t buffered;
};

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* class "." subject "." detail (RFC 3463): the class is one digit,
 * subject and detail 1-3 digits. */
static int well_formed_enhanced(const char *e)
{
    int part;
    for (part = 0; part < 3; part++) {
        int digits = 0;
        while (is_digit(*e) && digits < (part == 0 ? 1 : 3)) {
            e++;
            digits++;
        }
        if (digits == 0 || *e != (part < 2 ? '.' : '\0'))
            return 0;
        if (part < 2)
            e++;
    }
    return 1;
}

/* The per-reply properties; appends the reply to o. */
static void record(struct outcome *o, const struct smtp_reply *r,
                   size_t max_line, size_t max_lines, size_t max_total)
{
    const char *pos = r->raw, *text;
    size_t textlen, lines = 0, i;
    CHECK(r->code >= 200 && r->code <= 599 && r->code / 10 % 10 <= 5);
    CHECK(r->nlines >= 1 && r->nlines <= max_lines);
    CHECK(r->rawlen <= max_total && r->rawlen <= SMTP_REPLY_MAX_TOTAL);
    CHECK(memchr(r->raw, '\0', r->rawlen) == NULL);
    CHECK(r->rawlen >= 4 && r->raw[r->rawlen - 1] == '\n');
    /* Each line: the same three digits, within max_line without its end. */
    while (pos < r->raw + r->rawlen) {
        const char *eol = memchr(pos, '\n', (size_t)(r->raw + r->rawlen - pos));
        size_t n;
        CHECK(eol != NULL);
        n = (size_t)(eol - pos);
        if (n > 0 && pos[n - 1] == '\r')
            n--;
        CHECK(n <= max_line && n <= SMTP_REPLY_MAX_LINE);
        CHECK(n >= 3 && is_digit(pos[0]) && is_digit(pos[1]) && is_digit(pos[2]));
        CHECK((pos[0] - '0') * 100 + (pos[1] - '0') * 10 + (pos[2] - '0') == r->code);
        /* Only the last line may end the reply. */
        if (eol + 1 < r->raw + r->rawlen)
            CHECK(n > 3 && pos[3] == '-');
        else
            CHECK(n == 3 || pos[3] == ' ');
        pos = eol + 1;
        lines++;
    }
    CHECK(lines == r->nlines);
    /* The enhanced code, when present, is class.subject.detail. */
    CHECK(memchr(r->enhanced, '\0', sizeof r->enhanced) != NULL);
    i = strlen(r->enhanced);
    if (i > 0) {
        CHECK(r->enhanced[0] == r->raw[0] && well_formed_enhanced(r->enhanced));
        CHECK(r->rawlen > 4 + i && memcmp(r->raw + 4, r->enhanced, i) == 0);
    }
    /* smtp_reply_line walks the same lines and stays inside them. */
    pos = r->raw;
    lines = 0;
    while (smtp_reply_line(r, &pos, &text, &textlen)) {
        CHECK(text >= r->raw && text + textlen <= r->raw + r->rawlen);
        CHECK(memchr(text, '\n', textlen) == NULL);
        CHECK(++lines <= r->nlines);
    }
    CHECK(lines == r->nlines && pos == r->raw + r->rawlen);

    CHECK(o->nreplies < MAX_REPLIES);
    o->codes[o->nreplies] = r->code;
    strcpy(o->enhanced[o->nreplies], r->enhanced);
    o->nlines[o->nreplies] = r->nlines;
    o->nreplies++;
    memcpy(o->raw + o->rawlen, r->raw, r->rawlen);
    o->rawlen += r->rawlen;
}

/* Returns every reply available now; the final status goes to o->final. */
static void drain(struct smtp_reply_parser *p, struct outcome *o)
{
    struct smtp_reply r;
    int rc;
    for (;;) {
        /* Poison, so that a field the parser leaves unset shows up. */
        memset(&r, 'Z', sizeof r);
        if ((rc = smtp_reply_next(p, &r)) != SMTP_OK)
            break;
        record(o, &r, p->max_line, p->max_lines, p->max_total);
    }
    CHECK(rc == SMTP_EAGAIN || rc == SMTP_EPROTO);
    o->final = rc;
}

/* Feeds the pieces [0,cut1) [cut1,cut2) ... draining after each, or with
 * 'lazy' only after the last one (a caller that does not call next()). */
static void run(const char *in, size_t size, const size_t *cuts, size_t ncuts,
                size_t max_line, size_t max_lines, size_t max_total, int lazy,
                struct outcome *o)
{
    struct smtp_reply_parser p;
    size_t from = 0, i;
    char *raw = o->raw;
    smtp_reply_init(&p, max_line, max_lines, max_total);
    memset(o, 0, sizeof *o);
    o->raw = raw;
    for (i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : size;
        int was_failed = p.failed, complete = p.complete;
        int rc = smtp_reply_feed(&p, in + from, to - from);
        CHECK(rc == SMTP_OK || rc == SMTP_EPROTO);
        if (rc == SMTP_EPROTO)
            CHECK(p.failed && strncmp(p.error, "malformed reply: ", 17) == 0);
        if (rc == SMTP_EPROTO && !was_failed && strstr(p.error, "after a complete reply") != NULL) {
            CHECK(complete);
            o->held_too_much = 1;
        }
        if (!lazy || i == ncuts || rc != SMTP_OK)
            drain(&p, o);
        from = to;
    }
    o->buffered = smtp_reply_buffered(&p);
    /* Every byte is either returned in a reply or still buffered. */
    CHECK(o->final == SMTP_EPROTO || o->rawlen + o->buffered == size);
    smtp_reply_free(&p);
}

static void same(const struct outcome *a, const struct outcome *b)
{
    size_t i;
    if (a->held_too_much || b->held_too_much) {
        /* The run that stopped early saw a prefix of the other's. */
        const struct outcome *s = a->held_too_much ? a : b, *l = s == a ? b : a;
        if (a->held_too_much && b->held_too_much && b->nreplies < a->nreplies) {
            s = b;
            l = a;
        }
        CHECK(s->nreplies <= l->nreplies && s->rawlen <= l->rawlen);
        CHECK(memcmp(s->codes, l->codes, s->nreplies * sizeof s->codes[0]) == 0);
        CHECK(memcmp(s->raw, l->raw, s->rawlen) == 0);
        return;
    }
    CHECK(a->nreplies == b->nreplies);
    CHECK(memcmp(a->codes, b->codes, a->nreplies * sizeof a->codes[0]) == 0);
    for (i = 0; i < a->nreplies; i++)
        CHECK(strcmp(a->enhanced[i], b->enhanced[i]) == 0);
    CHECK(memcmp(a->nlines, b->nlines, a->nreplies * sizeof a->nlines[0]) == 0);
    CHECK(a->rawlen == b->rawlen && memcmp(a->raw, b->raw, a->rawlen) == 0);
    CHECK(a->final == b->final);
    if (a->final == SMTP_EAGAIN)
        CHECK(a->buffered == b->buffered);
}

static struct outcome whole, split, bytewise, lazy;

/* Input: one byte picking the limits, two bytes picking the split point,
 * then the bytes the "server" sends. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t max_line = 0, max_lines = 0, max_total = 0, cut, i;
    size_t *cuts;
    const char *in;
    if (size < 3)
        return 0;
    /* Small limits reach the limit paths with short inputs; 0 means the
     * defaults (64 KiB, 1000 lines, 256 KiB). */
    if (data[0] & 1) {
        max_line = 4 + (data[0] >> 4);
        max_lines = 1 + ((data[0] >> 1) & 7);
        max_total = 8 + (size_t)(data[0] >> 2) * 2;
    }
    cut = (size_t)data[1] << 8 | data[2];
    in = (const char *)data + 3;
    size -= 3;
    cut = size ? cut % (size + 1) : 0;

    whole.raw = malloc(size + 1);
    split.raw = malloc(size + 1);
    bytewise.raw = malloc(size + 1);
    cuts = malloc((size + 1) * sizeof *cuts);
    CHECK(whole.raw && split.raw && bytewise.raw && cuts);

    lazy.raw = malloc(size + 1);
    CHECK(lazy.raw != NULL);
    run(in, size, NULL, 0, max_line, max_lines, max_total, 0, &whole);
    CHECK(memcmp(whole.raw, in, whole.rawlen) == 0);
    CHECK(!whole.held_too_much);
    run(in, size, &cut, 1, max_line, max_lines, max_total, 0, &split);
    same(&whole, &split);
    for (i = 0; i < size; i++)
        cuts[i] = i;
    run(in, size, cuts, size, max_line, max_lines, max_total, 0, &bytewise);
    same(&whole, &bytewise);
    /* Never calling next() between feeds: bounded, same replies or fewer. */
    run(in, size, cuts, size, max_line, max_lines, max_total, 1, &lazy);
    same(&whole, &lazy);
    free(lazy.raw);

    free(whole.raw);
    free(split.raw);
    free(bytewise.raw);
    free(cuts);
    return 0;
}
