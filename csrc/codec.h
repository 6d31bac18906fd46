/* MIME content transfer encodings and header words, Lua-free: base64
 * (RFC 2045 6.8, RFC 4648), quoted-printable (RFC 2045 6.7) and RFC 2047
 * encoded-words (B and Q forms). The encoders stream: state lives in a
 * struct, so chunk boundaries never change the output. */
#ifndef SMTP_CODEC_H
#define SMTP_CODEC_H

#include <stddef.h>

/* ---- base64 ---------------------------------------------------------- */

struct smtp_b64 {
    unsigned char left[2]; /* input bytes not yet forming a triple */
    int nleft;             /* 0..2 */
    int col;               /* characters on the current output line */
    int line_len;          /* characters per line, a multiple of 4; 0 = one line */
};

/* line_len: 76 for MIME bodies, 0 for no line breaks. A value that is not
 * a positive multiple of 4 is rounded down to one (min 4). */
void smtp_b64_init(struct smtp_b64 *e, int line_len);
/* Room that smtp_b64_encode may need for len input bytes. */
size_t smtp_b64_max_out(const struct smtp_b64 *e, size_t len);
/* Encodes len bytes into out; returns bytes written. Lines are separated
 * by CRLF; the output never ends with CRLF (the MIME boundary delimiter
 * brings its own). */
size_t smtp_b64_encode(struct smtp_b64 *e, const unsigned char *in, size_t len, char *out);
/* Flushes the last 1-2 bytes with padding; out needs SMTP_B64_FINISH_MAX.
 * The encoder is ready for a new stream afterwards. */
#define SMTP_B64_FINISH_MAX 6
size_t smtp_b64_finish(struct smtp_b64 *e, char *out);

/* Decodes base64 ignoring CR, LF, space and tab. out needs room for
 * (len / 4 + 1) * 3 bytes. Returns the decoded length, or -1 on a byte
 * outside the alphabet, bad padding or a truncated final group; *bad is
 * then the offset of the offending input byte. */
long smtp_b64_decode(const char *in, size_t len, unsigned char *out, size_t *bad);

/* ---- quoted-printable ---------------------------------------------------- */

struct smtp_qp {
    int col;         /* characters on the current output line */
    int pending_ws;  /* a space or tab held back: it may precede a line break */
    int after_cr;    /* the last input byte was a CR */
};

void smtp_qp_init(struct smtp_qp *e);
/* Output never exceeds this for len input bytes (held-back bytes included). */
#define SMTP_QP_MAX_OUT(len) (4 * (len) + 16)
/* Encodes text: CRLF and lone LF become hard CRLF breaks, a lone CR is
 * =0D, '=' and control/8-bit bytes are =XX, space or tab before a break
 * is encoded, and soft breaks keep every line within 76 characters. */
size_t smtp_qp_encode(struct smtp_qp *e, const unsigned char *in, size_t len, char *out);
#define SMTP_QP_FINISH_MAX 16
size_t smtp_qp_finish(struct smtp_qp *e, char *out);

/* ---- RFC 2047 encoded-words ------------------------------------------------ */

/* Longest encoded-word (RFC 2047 2). */
#define SMTP_EW_MAX 75

/* Builds the next encoded-word "=?charset?X?...?=" from text[pos..len)
 * into out (room SMTP_EW_MAX + 1), taking as many characters as fit in
 * 'room' (at most SMTP_EW_MAX) octets. With a UTF-8 charset a multi-byte
 * character is never split across words. mode is 'B' or 'Q'. Returns the
 * new position; returns pos unchanged when not even one character fits
 * (*outlen is then 0). */
size_t smtp_ew_next(const unsigned char *text, size_t len, size_t pos,
                    const char *charset, int mode, size_t room,
                    char *out, size_t *outlen);

#endif
