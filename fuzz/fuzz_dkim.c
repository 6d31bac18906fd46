/* libFuzzer target for the DKIM body canonicaliser (csrc/dkim.c, RFC 6376
 * 3.4.3 and 3.4.4). Differential: a plain whole-buffer implementation,
 * written from the RFC text in the most direct way, must give the same
 * header block, canonical length and SHA-256 as the streaming one fed in
 * the chunks the input chooses. The first byte picks relaxed or simple
 * and whether a header block is captured, the next four the cuts. */
#include "../csrc/dkim.h"
#include "../csrc/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/md.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

/* Lines of the input as the DATA encoder sends them: every CRLF, bare CR
 * and bare LF ends a line; an unterminated last line is closed. Returns
 * the number of lines; starts[i], lens[i] describe line i. */
static size_t split_lines(const char *in, size_t n, size_t *starts, size_t *lens)
{
    size_t i = 0, k = 0, s = 0;
    while (i < n) {
        if (in[i] == '\r' || in[i] == '\n') {
            starts[k] = s;
            lens[k++] = i - s;
            i += (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n') ? 2 : 1;
            s = i;
        } else {
            i++;
        }
    }
    if (s < n) {
        starts[k] = s;
        lens[k++] = n - s;
    }
    return k;
}

static int wsp(char c) { return c == ' ' || c == '\t'; }

/* Reference: header block, canonical body (both into out buffers). */
static void reference(const char *in, size_t n, int relaxed, int with_header,
                      char *hdr, size_t *hdr_len, char *body, size_t *body_len)
{
    size_t *starts = malloc((n + 1) * sizeof *starts), *lens = malloc((n + 1) * sizeof *lens);
    size_t nl, i = 0, h = 0, b = 0, last;
    CHECK(starts && lens);
    nl = split_lines(in, n, starts, lens);
    if (with_header) {
        for (; i < nl && lens[i] > 0; i++) {
            memcpy(hdr + h, in + starts[i], lens[i]);
            h += lens[i];
            memcpy(hdr + h, "\r\n", 2);
            h += 2;
        }
        if (i < nl)
            i++; /* the empty line */
    }
    /* Each body line canonicalised, then trailing empty lines dropped. */
    last = b;
    for (; i < nl; i++) {
        const char *p = in + starts[i];
        size_t len = lens[i], j, e = len, ls = b;
        if (relaxed) {
            int pend = 0;
            while (e > 0 && wsp(p[e - 1]))
                e--;
            for (j = 0; j < e; j++) {
                if (wsp(p[j])) {
                    pend = 1;
                    continue;
                }
                if (pend)
                    body[b++] = ' ';
                pend = 0;
                body[b++] = p[j];
            }
        } else {
            memcpy(body + b, p, len);
            b += len;
        }
        body[b++] = '\r';
        body[b++] = '\n';
        if (b - ls > 2)
            last = b; /* ends after a non-empty line */
    }
    b = last;
    if (b == 0 && !relaxed) {
        memcpy(body, "\r\n", 2);
        b = 2;
    }
    *hdr_len = h;
    *body_len = b;
    free(starts);
    free(lens);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_dkim_body st;
    unsigned char got[32], want[32];
    size_t cuts[4], from = 0, i, hl, bl;
    char *hdr, *body;
    const char *in;
    int relaxed, with_header;
    if (size < 5 || size > 65536)
        return 0;
    relaxed = data[0] & 1;
    with_header = (data[0] >> 1) & 1;
    in = (const char *)data + 5;
    size -= 5;
    for (i = 0; i < 4; i++)
        cuts[i] = size ? data[1 + i] * size / 255 : 0;
    for (i = 1; i < 4; i++)
        if (cuts[i] < cuts[i - 1])
            cuts[i] = cuts[i - 1];

    CHECK(smtp_dkim_body_init(&st, relaxed, with_header) == SMTP_OK);
    for (i = 0; i <= 4; i++) {
        size_t to = i < 4 ? cuts[i] : size;
        /* A header block over the bound is refused, never truncated. */
        if (smtp_dkim_body_update(&st, in + from, to - from) != SMTP_OK) {
            smtp_dkim_body_free(&st);
            return 0;
        }
        from = to;
    }
    CHECK(smtp_dkim_body_finish(&st, got) == SMTP_OK);

    hdr = malloc(2 * size + 2);
    body = malloc(2 * size + 4);
    CHECK(hdr && body);
    reference(in, size, relaxed, with_header, hdr, &hl, body, &bl);
    CHECK(hl == st.header_len);
    CHECK(hl == 0 || memcmp(hdr, st.header, hl) == 0);
    CHECK(bl == st.body_len);
    CHECK(mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (unsigned char *)body, bl, want) == 0);
    CHECK(memcmp(got, want, 32) == 0);
    free(hdr);
    free(body);
    smtp_dkim_body_free(&st);
    return 0;
}
