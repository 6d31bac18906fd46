/* MIME encoders: base64 (RFC 2045 6.8), quoted-printable (RFC 2045 6.7)
 * and RFC 2047 encoded-words. These are the hot loops of large messages,
 * so they run on lookup tables with the state kept in locals; chunk
 * boundaries never change the output. No Lua here (fuzzable from C). */
#include "codec.h"

#include <string.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char hex_digits[] = "0123456789ABCDEF";

/* ---- base64 ---------------------------------------------------------- */

void smtp_b64_init(struct smtp_b64 *e, int line_len)
{
    memset(e, 0, sizeof *e);
    if (line_len > 0) {
        line_len -= line_len % 4;
        e->line_len = line_len < 4 ? 4 : line_len;
    }
}

size_t smtp_b64_max_out(const struct smtp_b64 *e, size_t len)
{
    size_t chars = ((len + 2) / 3 + 1) * 4;
    size_t breaks = e->line_len > 0 ? chars / (size_t)e->line_len + 1 : 0;
    return chars + 2 * breaks;
}

/* One quad, preceded by a line break when the line is full. The break is
 * written lazily so that the output never ends with CRLF. */
#define B64_QUAD(o, col, ll, a, b, c) do {                         \
        unsigned v_ = ((unsigned)(a) << 16) | ((unsigned)(b) << 8)  \
                      | (unsigned)(c);                              \
        if ((ll) > 0 && (col) >= (ll)) {                            \
            *(o)++ = '\r'; *(o)++ = '\n'; (col) = 0;                \
        }                                                           \
        (o)[0] = b64_alphabet[(v_ >> 18) & 63];                     \
        (o)[1] = b64_alphabet[(v_ >> 12) & 63];                     \
        (o)[2] = b64_alphabet[(v_ >> 6) & 63];                      \
        (o)[3] = b64_alphabet[v_ & 63];                             \
        (o) += 4; (col) += 4;                                       \
    } while (0)

size_t smtp_b64_encode(struct smtp_b64 *e, const unsigned char *in, size_t len, char *out)
{
    const unsigned char *p = in, *end = in + len;
    char *o = out;
    int col = e->col, ll = e->line_len;

    if (e->nleft > 0) {
        if ((size_t)e->nleft + len < 3) {
            while (p < end)
                e->left[e->nleft++] = *p++;
            return 0;
        }
        if (e->nleft == 1) {
            B64_QUAD(o, col, ll, e->left[0], p[0], p[1]);
            p += 2;
        } else {
            B64_QUAD(o, col, ll, e->left[0], e->left[1], p[0]);
            p += 1;
        }
        e->nleft = 0;
    }
    /* Whole runs of quads up to the end of the line, without per-quad
     * line checks. */
    while (end - p >= 3) {
        size_t quads = (size_t)(end - p) / 3, k;
        if (ll > 0) {
            size_t room;
            if (col >= ll) {
                *o++ = '\r';
                *o++ = '\n';
                col = 0;
            }
            room = (size_t)(ll - col) / 4;
            if (quads > room)
                quads = room;
        }
        for (k = 0; k < quads; k++) {
            unsigned v = ((unsigned)p[0] << 16) | ((unsigned)p[1] << 8) | p[2];
            o[0] = b64_alphabet[v >> 18];
            o[1] = b64_alphabet[(v >> 12) & 63];
            o[2] = b64_alphabet[(v >> 6) & 63];
            o[3] = b64_alphabet[v & 63];
            o += 4;
            p += 3;
        }
        col += (int)(4 * quads);
    }
    while (p < end)
        e->left[e->nleft++] = *p++;
    e->col = col;
    return (size_t)(o - out);
}

size_t smtp_b64_finish(struct smtp_b64 *e, char *out)
{
    char *o = out;
    int col = e->col, ll = e->line_len;
    if (e->nleft > 0) {
        unsigned b = e->nleft == 2 ? e->left[1] : 0;
        B64_QUAD(o, col, ll, e->left[0], b, 0);
        o[-1] = '=';
        if (e->nleft == 1)
            o[-2] = '=';
    }
    e->nleft = 0;
    e->col = 0;
    return (size_t)(o - out);
}

/* -1: not base64, -2: ignorable white space, -3: padding. */
static signed char b64_value[256];
static int b64_value_ready;

static void b64_build_table(void)
{
    int i;
    for (i = 0; i < 256; i++)
        b64_value[i] = -1;
    for (i = 0; i < 64; i++)
        b64_value[(unsigned char)b64_alphabet[i]] = (signed char)i;
    b64_value['\r'] = b64_value['\n'] = b64_value[' '] = b64_value['\t'] = -2;
    b64_value['='] = -3;
    b64_value_ready = 1;
}

long smtp_b64_decode(const char *in, size_t len, unsigned char *out, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)in;
    unsigned char *o = out;
    unsigned acc = 0;
    int n = 0, pad = 0;
    size_t i;

    if (!b64_value_ready)
        b64_build_table();
    for (i = 0; i < len; i++) {
        int v = b64_value[p[i]];
        if (v >= 0) {
            if (pad)
                goto fail; /* data after padding */
            acc = (acc << 6) | (unsigned)v;
            if (++n == 4) {
                o[0] = (unsigned char)(acc >> 16);
                o[1] = (unsigned char)(acc >> 8);
                o[2] = (unsigned char)acc;
                o += 3;
                n = 0;
                acc = 0;
            }
        } else if (v == -3) {
            /* '=' may only stand in the last one or two places of a group. */
            if (n + pad < 2 || n + pad >= 4)
                goto fail;
            pad++;
            if (n + pad == 4) {
                acc <<= 6 * pad;
                *o++ = (unsigned char)(acc >> 16);
                if (pad == 1)
                    *o++ = (unsigned char)(acc >> 8);
                n = 0;
                acc = 0;
                pad = 4; /* group closed: only white space may follow */
            }
        } else if (v == -1) {
            goto fail;
        }
    }
    if (n != 0 || (pad != 0 && pad != 4)) {
        i = len;
        goto fail;
    }
    return (long)(o - out);
fail:
    if (bad != NULL)
        *bad = i;
    return -1;
}

/* ---- quoted-printable ---------------------------------------------------- */

enum { QP_LIT, QP_ENC, QP_WS, QP_CR, QP_LF };

/* Literal: '!'..'~' except '='; everything else is encoded (RFC 2045 6.7
 * rules 1 and 2), white space and line ends are handled apart. */
static const unsigned char qp_class[256] = {
    /* 0x00 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 1, 1, 3, 1, 1,
    /* 0x10 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x20 */ 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x30 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
    /* 0x40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x50 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x60 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x70 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    /* 0x80 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x90 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0xa0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0xb0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0xc0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0xd0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0xe0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0xf0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* Encoded text on a line stays within 75 characters so that the soft
 * break '=' still fits in 76 (RFC 2045 6.7 rule 5). */
#define QP_TEXT_MAX 75

#define QP_ROOM(o, col, n) do {                                   \
        if ((col) + (n) > QP_TEXT_MAX) {                          \
            *(o)++ = '='; *(o)++ = '\r'; *(o)++ = '\n'; (col) = 0; \
        }                                                         \
    } while (0)
#define QP_LITERAL(o, col, c) do {                                \
        QP_ROOM(o, col, 1); *(o)++ = (char)(c); (col)++;          \
    } while (0)
#define QP_ENCODED(o, col, c) do {                                \
        QP_ROOM(o, col, 3);                                       \
        (o)[0] = '='; (o)[1] = hex_digits[((c) >> 4) & 15];       \
        (o)[2] = hex_digits[(c) & 15]; (o) += 3; (col) += 3;      \
    } while (0)

void smtp_qp_init(struct smtp_qp *e)
{
    memset(e, 0, sizeof *e);
}

size_t smtp_qp_encode(struct smtp_qp *e, const unsigned char *in, size_t len, char *out)
{
    const unsigned char *p = in, *end = in + len;
    char *o = out;
    int col = e->col, ws = e->pending_ws, cr = e->after_cr;

    for (; p < end; p++) {
        unsigned c = *p;
        int cls = qp_class[c];
        if (cls == QP_LIT && !ws && !cr) {
            QP_LITERAL(o, col, c);
            continue;
        }
        if (cls == QP_LF) {
            /* CRLF or a lone LF: a hard break; white space before it
             * would be stripped in transit, so it is encoded (rule 3). */
            if (ws)
                QP_ENCODED(o, col, (unsigned)ws);
            *o++ = '\r';
            *o++ = '\n';
            col = 0;
            ws = 0;
            cr = 0;
            continue;
        }
        if (cr) {
            /* The CR held back was not followed by LF: it is data. */
            if (ws)
                QP_LITERAL(o, col, (unsigned)ws);
            ws = 0;
            QP_ENCODED(o, col, 13u);
            cr = 0;
        }
        switch (cls) {
        case QP_CR:
            cr = 1;
            break;
        case QP_WS:
            if (ws)
                QP_LITERAL(o, col, (unsigned)ws);
            ws = (int)c;
            break;
        default:
            if (ws)
                QP_LITERAL(o, col, (unsigned)ws);
            ws = 0;
            if (cls == QP_LIT)
                QP_LITERAL(o, col, c);
            else
                QP_ENCODED(o, col, c);
            break;
        }
    }
    e->col = col;
    e->pending_ws = ws;
    e->after_cr = cr;
    return (size_t)(o - out);
}

size_t smtp_qp_finish(struct smtp_qp *e, char *out)
{
    char *o = out;
    int col = e->col;
    if (e->after_cr) {
        if (e->pending_ws)
            QP_LITERAL(o, col, (unsigned)e->pending_ws);
        QP_ENCODED(o, col, 13u);
    } else if (e->pending_ws) {
        /* The end of the body is the end of a line. */
        QP_ENCODED(o, col, (unsigned)e->pending_ws);
    }
    smtp_qp_init(e);
    return (size_t)(o - out);
}

/* ---- RFC 2047 encoded-words ------------------------------------------------ */

/* Characters a Q-encoded word may carry as themselves anywhere, phrases
 * included (RFC 2047 5 rule 3); space becomes '_'. */
static int ew_q_literal(unsigned c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static int ew_is_utf8(const char *cs)
{
    static const char u[] = "utf-8";
    size_t i;
    for (i = 0; i < sizeof u - 1; i++) {
        char c = cs[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != u[i])
            return 0;
    }
    return cs[i] == '\0';
}

/* Length of the character at text[i]: a whole well-formed UTF-8 sequence,
 * else one byte. */
static size_t utf8_char_len(const unsigned char *t, size_t len, size_t i)
{
    unsigned c = t[i];
    size_t n, k;
    if (c < 0xC2)
        return 1;
    n = c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 1;
    if (i + n > len)
        return 1;
    for (k = 1; k < n; k++)
        if ((t[i + k] & 0xC0) != 0x80)
            return 1;
    return n;
}

size_t smtp_ew_next(const unsigned char *text, size_t len, size_t pos,
                    const char *charset, int mode, size_t room,
                    char *out, size_t *outlen)
{
    size_t cslen = strlen(charset), overhead = cslen + 7, avail, i, n = 0, cost = 0;
    int utf8 = ew_is_utf8(charset);
    char *o = out;

    *outlen = 0;
    if (room > SMTP_EW_MAX)
        room = SMTP_EW_MAX;
    if (room <= overhead || pos >= len)
        return pos;
    avail = room - overhead;
    for (i = pos; i < len;) {
        size_t clen = utf8 ? utf8_char_len(text, len, i) : 1, k, c;
        if (mode == 'B') {
            c = ((n + clen + 2) / 3) * 4;
            if (c > avail)
                break;
        } else {
            c = cost;
            for (k = 0; k < clen; k++)
                c += (text[i + k] == ' ' || ew_q_literal(text[i + k])) ? 1 : 3;
            if (c > avail)
                break;
            cost = c;
        }
        n += clen;
        i += clen;
    }
    if (n == 0)
        return pos;
    *o++ = '=';
    *o++ = '?';
    memcpy(o, charset, cslen);
    o += cslen;
    *o++ = '?';
    *o++ = mode == 'B' ? 'B' : 'Q';
    *o++ = '?';
    if (mode == 'B') {
        struct smtp_b64 b;
        smtp_b64_init(&b, 0);
        o += smtp_b64_encode(&b, text + pos, n, o);
        o += smtp_b64_finish(&b, o);
    } else {
        for (i = pos; i < pos + n; i++) {
            unsigned c = text[i];
            if (c == ' ') {
                *o++ = '_';
            } else if (ew_q_literal(c)) {
                *o++ = (char)c;
            } else {
                o[0] = '=';
                o[1] = hex_digits[c >> 4];
                o[2] = hex_digits[c & 15];
                o += 3;
            }
        }
    }
    *o++ = '?';
    *o++ = '=';
    *outlen = (size_t)(o - out);
    return pos + n;
}
