/* libFuzzer target for the DATA encoder (csrc/dotstuff.c, RFC 5321 4.5.2
 * and 4.1.1.4). Checks that the wire bytes never carry a bare CR or LF,
 * that no line but the terminator starts with a single '.', that DATA ends
 * with CRLF "." CRLF, that un-stuffing gives back the input with its line
 * ends made CRLF, that a NUL is flagged at its offset, and that chunk
 * boundaries change nothing. */
#include "../csrc/dotstuff.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

/* Encodes in[0..size) in the chunks [0,cut1) [cut1,cut2) ... plus the
 * finish; returns the output length. Each chunk is encoded into a buffer
 * of exactly SMTP_DOT_MAX_OUT(chunk) bytes so ASan sees any overrun. */
static size_t encode(int stuff, const char *in, size_t size,
                     const size_t *cuts, size_t ncuts, char *out)
{
    struct smtp_dotstuffer d;
    size_t from = 0, o = 0, i, n;
    char fin[SMTP_DOT_FINISH_MAX];
    smtp_dot_init(&d, stuff);
    for (i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : size;
        size_t len = to - from;
        char *chunk = malloc(len ? SMTP_DOT_MAX_OUT(len) : 1);
        CHECK(chunk != NULL);
        n = smtp_dot_encode(&d, in + from, len, chunk);
        CHECK(n <= SMTP_DOT_MAX_OUT(len));
        memcpy(out + o, chunk, n);
        free(chunk);
        o += n;
        from = to;
    }
    n = smtp_dot_finish(&d, fin);
    CHECK(n <= SMTP_DOT_FINISH_MAX);
    memcpy(out + o, fin, n);
    o += n;
    /* A second finish adds nothing. */
    CHECK(smtp_dot_finish(&d, fin) == 0);
    CHECK(d.bytes_in == size && d.bytes_out == o);
    /* A NUL is flagged, at its first offset, whatever the chunking: the
     * callers refuse such a body outside BINARYMIME. */
    {
        const char *z = memchr(in, '\0', size);
        CHECK(d.nul == (z != NULL));
        if (z != NULL)
            CHECK(d.nul_at == (uint64_t)(z - in));
    }
    return o;
}

/* The input with CRLF, bare CR and bare LF each made CRLF, and a CRLF
 * closing an open last line: what the receiver must reconstruct. */
static size_t normalise(const char *in, size_t size, char *out)
{
    size_t i, o = 0;
    for (i = 0; i < size; i++) {
        if (in[i] == '\r') {
            out[o++] = '\r';
            out[o++] = '\n';
            if (i + 1 < size && in[i + 1] == '\n')
                i++;
        } else if (in[i] == '\n') {
            out[o++] = '\r';
            out[o++] = '\n';
        } else {
            out[o++] = in[i];
        }
    }
    if (o > 0 && out[o - 1] != '\n') {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    return o;
}

/* Wire properties, then un-stuffs wire into plain; returns its length. */
static size_t check_wire(int stuff, const char *w, size_t n, char *plain)
{
    size_t i, p = 0, body = n;
    for (i = 0; i < n; i++) {
        if (w[i] == '\r')
            CHECK(i + 1 < n && w[i + 1] == '\n');
        if (w[i] == '\n')
            CHECK(i > 0 && w[i - 1] == '\r');
    }
    if (stuff) {
        /* ".\r\n" alone for an empty body, else CRLF "." CRLF. */
        CHECK(n >= 3 && memcmp(w + n - 3, ".\r\n", 3) == 0);
        CHECK(n == 3 || (n >= 5 && memcmp(w + n - 5, "\r\n.\r\n", 5) == 0));
        body = n - 3;
    } else {
        CHECK(n == 0 || (n >= 2 && memcmp(w + n - 2, "\r\n", 2) == 0));
    }
    /* Line by line: a line opening with '.' opens with "..". */
    i = 0;
    while (i < body) {
        const char *eol = memchr(w + i, '\n', body - i);
        size_t len;
        CHECK(eol != NULL);
        len = (size_t)(eol - (w + i)) + 1;
        if (stuff && w[i] == '.') {
            CHECK(len >= 2 && w[i + 1] == '.');
            i++;
            len--;
        }
        memcpy(plain + p, w + i, len);
        p += len;
        i += len;
    }
    return p;
}

/* Input: one byte of mode (bit 0: stuff), two bytes of split point, then
 * the message body. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int stuff;
    size_t cut, i, n1, n2, n3, np, nn;
    size_t *cuts;
    char *w1, *w2, *w3, *plain, *norm;
    const char *in;
    if (size < 3)
        return 0;
    stuff = data[0] & 1;
    cut = (size_t)data[1] << 8 | data[2];
    in = (const char *)data + 3;
    size -= 3;
    cut = cut % (size + 1);

    w1 = malloc(SMTP_DOT_MAX_OUT(size) + SMTP_DOT_FINISH_MAX);
    w2 = malloc(SMTP_DOT_MAX_OUT(size) + SMTP_DOT_FINISH_MAX);
    w3 = malloc(SMTP_DOT_MAX_OUT(size) + SMTP_DOT_FINISH_MAX);
    plain = malloc(SMTP_DOT_MAX_OUT(size) + SMTP_DOT_FINISH_MAX);
    norm = malloc(SMTP_DOT_MAX_OUT(size) + 2);
    cuts = malloc((size + 1) * sizeof *cuts);
    CHECK(w1 && w2 && w3 && plain && norm && cuts);

    n1 = encode(stuff, in, size, NULL, 0, w1);
    n2 = encode(stuff, in, size, &cut, 1, w2);
    for (i = 0; i < size; i++)
        cuts[i] = i;
    n3 = encode(stuff, in, size, cuts, size, w3);
    CHECK(n1 == n2 && memcmp(w1, w2, n1) == 0);
    CHECK(n1 == n3 && memcmp(w1, w3, n1) == 0);

    np = check_wire(stuff, w1, n1, plain);
    nn = normalise(in, size, norm);
    CHECK(np == nn && memcmp(plain, norm, np) == 0);

    free(w1);
    free(w2);
    free(w3);
    free(plain);
    free(norm);
    free(cuts);
    return 0;
}
