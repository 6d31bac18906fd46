/* libFuzzer target for the MIME encoders (csrc/codec.c): base64 (RFC 2045
 * 6.8), quoted-printable (RFC 2045 6.7) and RFC 2047 encoded-words. Each
 * must decode back to its input, keep its line-length and alphabet rules,
 * stay within the output bound it promises (buffers are sized exactly, so
 * ASan sees an overrun), and give the same bytes whatever the chunking. */
#include "../csrc/codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    return p;
}

/* ---- base64 ---------------------------------------------------------- */

static size_t b64_chunked(int line_len, const unsigned char *in, size_t size,
                          const size_t *cuts, size_t ncuts, char *out)
{
    struct smtp_b64 e;
    size_t from = 0, o = 0, i, n, room;
    char *buf;
    smtp_b64_init(&e, line_len);
    for (i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : size;
        room = smtp_b64_max_out(&e, to - from);
        buf = xmalloc(room);
        n = smtp_b64_encode(&e, in + from, to - from, buf);
        CHECK(n <= room);
        memcpy(out + o, buf, n);
        free(buf);
        o += n;
        from = to;
    }
    buf = xmalloc(SMTP_B64_FINISH_MAX);
    n = smtp_b64_finish(&e, buf);
    CHECK(n <= SMTP_B64_FINISH_MAX);
    memcpy(out + o, buf, n);
    free(buf);
    return o + n;
}

static void fuzz_b64(int param, const unsigned char *in, size_t size, size_t cut)
{
    int line_len = param % 3 == 0 ? 0 : param % 3 == 1 ? 76 : param;
    struct smtp_b64 probe;
    size_t cap, n1, n2, n3, i, col = 0, eff, bad;
    size_t *cuts = xmalloc((size + 1) * sizeof *cuts);
    char *w1, *w2, *w3;
    unsigned char *back;
    long got;

    smtp_b64_init(&probe, line_len);
    eff = (size_t)probe.line_len;
    cap = smtp_b64_max_out(&probe, size) + SMTP_B64_FINISH_MAX;
    w1 = xmalloc(cap);
    w2 = xmalloc(cap);
    w3 = xmalloc(cap + smtp_b64_max_out(&probe, 1) * size);   /* a bound per call */
    n1 = b64_chunked(line_len, in, size, NULL, 0, w1);
    n2 = b64_chunked(line_len, in, size, &cut, 1, w2);
    for (i = 0; i < size; i++)
        cuts[i] = i;
    n3 = b64_chunked(line_len, in, size, cuts, size, w3);
    CHECK(n1 == n2 && memcmp(w1, w2, n1) == 0);
    CHECK(n1 == n3 && memcmp(w1, w3, n1) == 0);

    /* Alphabet, CRLF-separated lines of at most line_len, no final CRLF. */
    for (i = 0; i < n1; i++) {
        char c = w1[i];
        if (c == '\r') {
            CHECK(eff > 0 && i + 1 < n1 && w1[i + 1] == '\n' && col == eff);
            CHECK(i + 2 < n1);
            col = 0;
            i++;
            continue;
        }
        CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '+' || c == '/' || c == '=');
        col++;
        CHECK(eff == 0 || col <= eff);
    }
    CHECK(n1 % 2 == 0 || eff > 0);
    back = xmalloc((n1 / 4 + 1) * 3);
    got = smtp_b64_decode(w1, n1, back, &bad);
    CHECK(got >= 0 && (size_t)got == size && memcmp(back, in, size) == 0);

    free(back);
    free(w1);
    free(w2);
    free(w3);
    free(cuts);
}

/* Decoding arbitrary text: in bounds, and decode(encode(decode(x))) is
 * decode(x). */
static void fuzz_b64_decode(const unsigned char *in, size_t size)
{
    unsigned char *out = xmalloc((size / 4 + 1) * 3), *again;
    size_t bad = (size_t)-1, n;
    long got = smtp_b64_decode((const char *)in, size, out, &bad);
    struct smtp_b64 e;
    char *enc;
    if (got < 0) {
        CHECK(bad <= size);
        free(out);
        return;
    }
    CHECK((size_t)got <= (size / 4 + 1) * 3);
    smtp_b64_init(&e, 0);
    enc = xmalloc(smtp_b64_max_out(&e, (size_t)got) + SMTP_B64_FINISH_MAX);
    n = smtp_b64_encode(&e, out, (size_t)got, enc);
    n += smtp_b64_finish(&e, enc + n);
    again = xmalloc((n / 4 + 1) * 3);
    CHECK(smtp_b64_decode(enc, n, again, NULL) == got);
    CHECK(memcmp(again, out, (size_t)got) == 0);
    free(again);
    free(enc);
    free(out);
}

/* ---- quoted-printable ---------------------------------------------------- */

static size_t qp_chunked(const unsigned char *in, size_t size,
                         const size_t *cuts, size_t ncuts, char *out)
{
    struct smtp_qp e;
    size_t from = 0, o = 0, i, n;
    char *buf;
    smtp_qp_init(&e);
    for (i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : size;
        buf = xmalloc(SMTP_QP_MAX_OUT(to - from));
        n = smtp_qp_encode(&e, in + from, to - from, buf);
        CHECK(n <= SMTP_QP_MAX_OUT(to - from));
        memcpy(out + o, buf, n);
        free(buf);
        o += n;
        from = to;
    }
    buf = xmalloc(SMTP_QP_FINISH_MAX);
    n = smtp_qp_finish(&e, buf);
    CHECK(n <= SMTP_QP_FINISH_MAX);
    memcpy(out + o, buf, n);
    free(buf);
    return o + n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Checks RFC 2045 6.7 on w and decodes it into out; returns the length. */
static size_t qp_check_decode(const char *w, size_t n, unsigned char *out)
{
    size_t i, o = 0, col = 0;
    for (i = 0; i < n; i++) {
        char c = w[i];
        if (c == '\r') {
            CHECK(i + 1 < n && w[i + 1] == '\n');
            /* White space never ends a line (rule 3). */
            CHECK(i == 0 || (w[i - 1] != ' ' && w[i - 1] != '\t'));
            out[o++] = '\r';
            out[o++] = '\n';
            col = 0;
            i++;
            continue;
        }
        CHECK(c != '\n');
        if (c == '=') {
            CHECK(i + 2 < n);
            if (w[i + 1] == '\r') {
                CHECK(w[i + 2] == '\n' && col + 1 <= 76);
                col = 0;
                i += 2;
                continue;
            }
            CHECK(hexval(w[i + 1]) >= 0 && hexval(w[i + 2]) >= 0);
            out[o++] = (unsigned char)(hexval(w[i + 1]) * 16 + hexval(w[i + 2]));
            col += 3;
            i += 2;
        } else {
            CHECK((c >= 33 && c <= 126) || c == ' ' || c == '\t');
            out[o++] = (unsigned char)c;
            col++;
        }
        CHECK(col <= 76);
    }
    CHECK(n == 0 || (w[n - 1] != ' ' && w[n - 1] != '\t'));
    return o;
}

static void fuzz_qp(const unsigned char *in, size_t size, size_t cut)
{
    size_t cap = SMTP_QP_MAX_OUT(size) + SMTP_QP_FINISH_MAX, n1, n2, n3, i, nd, nn = 0;
    size_t *cuts = xmalloc((size + 1) * sizeof *cuts);
    char *w1 = xmalloc(cap), *w2 = xmalloc(cap), *w3 = xmalloc(cap + SMTP_QP_MAX_OUT(1) * size);
    unsigned char *dec = xmalloc(cap), *norm = xmalloc(2 * size + 1);

    n1 = qp_chunked(in, size, NULL, 0, w1);
    n2 = qp_chunked(in, size, &cut, 1, w2);
    for (i = 0; i < size; i++)
        cuts[i] = i;
    n3 = qp_chunked(in, size, cuts, size, w3);
    CHECK(n1 == n2 && memcmp(w1, w2, n1) == 0);
    CHECK(n1 == n3 && memcmp(w1, w3, n1) == 0);

    /* Text: a lone LF is a line end (CRLF); a lone CR is data. */
    for (i = 0; i < size; i++) {
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
            norm[nn++] = '\r';
        norm[nn++] = in[i];
    }
    nd = qp_check_decode(w1, n1, dec);
    CHECK(nd == nn && memcmp(dec, norm, nn) == 0);

    free(w1);
    free(w2);
    free(w3);
    free(dec);
    free(norm);
    free(cuts);
}

/* ---- RFC 2047 encoded-words ------------------------------------------------ */

static const char *const charsets[] = { "UTF-8", "utf-8", "ISO-8859-1", "x", "UTF-8*en" };

static int ew_q_literal(unsigned c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

/* Whether a word may end at byte i: not inside a well-formed UTF-8
 * sequence (the same lenient reading as the encoder's). */
static int utf8_boundary(const unsigned char *t, size_t len, size_t i)
{
    size_t j = 0;
    while (j < i) {
        unsigned c = t[j];
        size_t n = c < 0xC2 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 1, k;
        if (j + n > len)
            n = 1;
        for (k = 1; k < n; k++)
            if ((t[j + k] & 0xC0) != 0x80)
                n = 1;
        j += n;
    }
    return j == i;
}

static void fuzz_ew(int param, const unsigned char *in, size_t size)
{
    const char *cs = charsets[(param >> 1) % (sizeof charsets / sizeof charsets[0])];
    int mode = param & 1 ? 'Q' : 'B';
    size_t room = (size_t)(param >> 3) % 81, cslen = strlen(cs);
    size_t pos = 0, o = 0, outlen;
    int utf8 = strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf-8") == 0;
    unsigned char *back = xmalloc(size);
    char *word = xmalloc(SMTP_EW_MAX + 1);

    while (pos < size) {
        size_t next = smtp_ew_next(in, size, pos, cs, mode, room, word, &outlen);
        size_t plen, i;
        const char *payload;
        CHECK(next >= pos && next <= size);
        if (next == pos) {
            CHECK(outlen == 0);
            /* Room for the frame plus one character of 12 octets (a
             * 4-byte character in Q) must always make progress. */
            CHECK(room < cslen + 7 + 12);
            break;
        }
        CHECK(outlen <= SMTP_EW_MAX && outlen <= room);
        CHECK(outlen > cslen + 6 && word[0] == '=' && word[1] == '?');
        CHECK(memcmp(word + 2, cs, cslen) == 0 && word[2 + cslen] == '?');
        CHECK(word[3 + cslen] == mode && word[4 + cslen] == '?');
        CHECK(word[outlen - 2] == '?' && word[outlen - 1] == '=');
        if (utf8)
            CHECK(utf8_boundary(in, size, next));
        payload = word + cslen + 5;
        plen = outlen - cslen - 7;
        if (mode == 'B') {
            long got = smtp_b64_decode(payload, plen, back + o, NULL);
            CHECK(got >= 0 && (size_t)got == next - pos);
            o += (size_t)got;
        } else {
            for (i = 0; i < plen; i++) {
                unsigned c = (unsigned char)payload[i];
                if (c == '_') {
                    back[o++] = ' ';
                } else if (c == '=') {
                    CHECK(i + 2 < plen && hexval(payload[i + 1]) >= 0
                          && hexval(payload[i + 2]) >= 0);
                    back[o++] = (unsigned char)(hexval(payload[i + 1]) * 16
                                                + hexval(payload[i + 2]));
                    i += 2;
                } else {
                    CHECK(ew_q_literal(c));
                    back[o++] = (unsigned char)c;
                }
            }
            CHECK(o == next);
        }
        pos = next;
    }
    CHECK(o == pos && memcmp(back, in, o) == 0);
    free(back);
    free(word);
}

/* Input: which encoder (byte 0, low 2 bits), a parameter (byte 1), a
 * split point (bytes 2-3), then the data. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int which, param;
    size_t cut;
    if (size < 4)
        return 0;
    which = data[0] & 3;
    param = data[1];
    cut = (size_t)data[2] << 8 | data[3];
    data += 4;
    size -= 4;
    cut %= size + 1;
    switch (which) {
    case 0:
        fuzz_b64(param, data, size, cut);
        break;
    case 1:
        fuzz_b64_decode(data, size);
        break;
    case 2:
        fuzz_qp(data, size, cut);
        break;
    default:
        fuzz_ew(param, data, size);
        break;
    }
    return 0;
}
