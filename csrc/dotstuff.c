/* DATA encoder: whole CRLF lines that need no change are found with
 * memchr and copied in blocks; only lines with a bare CR or LF or a
 * leading '.' go through the byte-by-byte path. */
#include "dotstuff.h"

#include <stdio.h>
#include <string.h>

void smtp_dot_init(struct smtp_dotstuffer *d, int stuff)
{
    memset(d, 0, sizeof *d);
    d->stuff = stuff;
    d->at_line_start = 1;
}

void smtp_dot_init_binary(struct smtp_dotstuffer *d)
{
    smtp_dot_init(d, 0);
    d->binary = 1;
}

/* Length of the prefix of in[0..len) free of CR and LF. */
static size_t plain_run(const char *in, size_t len)
{
    size_t i = 0;
    while (i < len && in[i] != '\r' && in[i] != '\n')
        i++;
    return i;
}

/* Length of the run of whole lines at in[0..len) that go out unchanged:
 * each ends in CRLF, holds no other CR or LF, and does not open with a
 * '.' to double. '*stop' is where the byte-by-byte path must take over
 * until: the end of the first line that is not clean (after its LF), or
 * len. Each line is scanned a bounded number of times (no quadratic
 * rescans on hostile input). Called only when the last byte was not CR. */
static size_t clean_lines(const struct smtp_dotstuffer *d, const char *in, size_t len,
                          size_t *stop)
{
    size_t i = 0;
    *stop = len;
    while (i < len) {
        const char *nl = memchr(in + i, '\n', len - i);
        size_t n, end;
        if (nl == NULL)
            break; /* an open last line: the slow path takes the rest */
        n = (size_t)(nl - (in + i)); /* bytes before the LF */
        end = i + n + 1;
        if ((d->stuff && in[i] == '.' && (i > 0 || d->at_line_start))
            || n == 0 || in[i + n - 1] != '\r'
            || (n > 1 && memchr(in + i, '\r', n - 1) != NULL)) {
            *stop = end;
            break;
        }
        i = end;
    }
    return i;
}

/* The general case, one CR, LF or run of other bytes at a time. */
static size_t encode_slow(struct smtp_dotstuffer *d, const char *in, size_t len, char *out)
{
    size_t i = 0, o = 0;
    while (i < len) {
        char c = in[i];
        if (c == '\n') {
            if (!d->after_cr) {
                out[o++] = '\r';
                out[o++] = '\n';
            }
            d->after_cr = 0;
            d->at_line_start = 1;
            i++;
        } else if (c == '\r') {
            /* Emit the pair now; an LF that follows is swallowed above. */
            out[o++] = '\r';
            out[o++] = '\n';
            d->after_cr = 1;
            d->at_line_start = 1;
            i++;
        } else {
            size_t run;
            d->after_cr = 0;
            if (d->at_line_start && c == '.' && d->stuff)
                out[o++] = '.';
            d->at_line_start = 0;
            run = plain_run(in + i, len - i);
            memcpy(out + o, in + i, run);
            o += run;
            i += run;
        }
    }
    return o;
}

size_t smtp_dot_encode(struct smtp_dotstuffer *d, const char *in, size_t len, char *out)
{
    size_t i = 0, o = 0;
    if (!d->binary && !d->nul) {
        const char *z = memchr(in, '\0', len);
        if (z != NULL) {
            d->nul = 1;
            d->nul_at = d->bytes_in + (uint64_t)(z - in);
        }
    }
    d->bytes_in += len;
    if (d->binary) {
        memcpy(out, in, len);
        d->bytes_out += len;
        return len;
    }
    while (i < len) {
        /* Clean CRLF lines, the common case, are copied in one block. */
        size_t k = 0, stop = 1;
        if (!d->after_cr) {
            k = clean_lines(d, in + i, len - i, &stop);
            if (k > 0) {
                memcpy(out + o, in + i, k);
                o += k;
                d->at_line_start = 1;
            }
        }
        o += encode_slow(d, in + i + k, stop - k, out + o);
        i += stop;
    }
    d->bytes_out += o;
    return o;
}

size_t smtp_dot_finish(struct smtp_dotstuffer *d, char *out)
{
    size_t o = 0;
    if (d->finished)
        return 0;
    d->finished = 1;
    if (d->binary)
        return 0;
    if (!d->at_line_start) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    if (d->stuff) {
        out[o++] = '.';
        out[o++] = '\r';
        out[o++] = '\n';
    }
    d->at_line_start = 1;
    d->bytes_out += o;
    return o;
}

void smtp_dot_nul_message(const struct smtp_dotstuffer *d, char *buf, size_t len)
{
    snprintf(buf, len, "message contains a NUL byte: at offset %llu; only BODY=BINARYMIME "
             "(RFC 3030) may carry one, DATA and BDAT without it carry text",
             (unsigned long long)d->nul_at);
}
