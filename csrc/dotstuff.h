/* Streaming DATA encoder (RFC 5321 4.5.2 transparency, 4.1.1.4 end of
 * data). Every bare CR and bare LF becomes CRLF, a '.' opening a line is
 * doubled, and the terminator is always preceded by CRLF, whatever the
 * chunk boundaries: the wire never carries a bare CR or LF (SMTP
 * smuggling). With 'stuff' off it only normalises line ends, for BDAT. */
#ifndef SMTP_DOTSTUFF_H
#define SMTP_DOTSTUFF_H

#include <stddef.h>
#include <stdint.h>

struct smtp_dotstuffer {
    int stuff;          /* double leading dots (DATA) or not (BDAT) */
    int binary;         /* BDAT with BODY=BINARYMIME: bytes pass untouched */
    int at_line_start;  /* the next byte opens a line */
    int after_cr;       /* the last input byte was CR: a following LF is its pair */
    int finished;
    int nul;            /* a NUL was seen (not in binary mode): see below */
    uint64_t nul_at;    /* offset of the first NUL in the message */
    uint64_t bytes_in, bytes_out;
};

/* Output never exceeds twice the input. */
#define SMTP_DOT_MAX_OUT(n) (2 * (n))
/* Largest possible smtp_dot_finish() output: CRLF "." CRLF. */
#define SMTP_DOT_FINISH_MAX 5

void smtp_dot_init(struct smtp_dotstuffer *d, int stuff);
/* BINARYMIME (RFC 3030): no line-end conversion, no stuffing, no tail. */
void smtp_dot_init_binary(struct smtp_dotstuffer *d);
/* Encodes len bytes into out (room for SMTP_DOT_MAX_OUT(len)); returns
 * the number of bytes written. Outside binary mode a NUL byte sets 'nul'
 * (sticky) and 'nul_at': DATA and BDAT without BINARYMIME carry text
 * only (RFC 5321 4.5.2, RFC 3030), so the caller must then send neither
 * this output nor the terminator, and drop the connection. The output
 * itself is still produced as if the NUL were an ordinary byte. */
size_t smtp_dot_encode(struct smtp_dotstuffer *d, const char *in, size_t len, char *out);
/* Ends the body: CRLF if the last line is open, then "." CRLF when
 * stuffing. Returns bytes written to out (room for SMTP_DOT_FINISH_MAX). */
size_t smtp_dot_finish(struct smtp_dotstuffer *d, char *out);

/* The message for a body refused for a NUL byte, into buf. */
void smtp_dot_nul_message(const struct smtp_dotstuffer *d, char *buf, size_t len);

#endif
