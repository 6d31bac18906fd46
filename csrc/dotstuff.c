/* DATA encoder: copies runs of ordinary bytes with memcpy and handles only
 * CR, LF and line-initial '.' byte by byte, so the common case is a scan. */
#include "dotstuff.h"

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

size_t smtp_dot_encode(struct smtp_dotstuffer *d, const char *in, size_t len, char *out)
{
    size_t i = 0, o = 0;
    d->bytes_in += len;
    if (d->binary) {
        memcpy(out, in, len);
        d->bytes_out += len;
        return len;
    }
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
