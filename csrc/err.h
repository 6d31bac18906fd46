/* The C error space shared by every Lua-free module in csrc/.
 * Functions return SMTP_OK (0) or one of the negative codes below; the
 * bindings turn a code into the Lua 'kind' string with smtp_err_kind(). */
#ifndef SMTP_ERR_H
#define SMTP_ERR_H

enum smtp_err {
    SMTP_OK = 0,
    SMTP_EIO = -1,       /* connect/read/write failure */
    SMTP_ETIMEOUT = -2,  /* a deadline ran out */
    SMTP_ECLOSED = -3,   /* the peer closed the connection */
    SMTP_ETLS = -4,      /* handshake, certificate or record failure */
    SMTP_EPROTO = -5,    /* malformed or hostile protocol data */
    SMTP_ESASL = -6,     /* SASL mechanism failure */
    SMTP_ENOMEM = -7,
    SMTP_EUSAGE = -8,    /* invalid argument */
    SMTP_EAGAIN = -9,    /* internal: would block, caller waits and retries */
    /* A connection in no-wait mode (an event loop drives it, SPEC 5.1)
     * that must wait for its socket: the operation kept its state and is
     * called again once the fd is readable / writable. */
    SMTP_EWANTREAD = -10,
    SMTP_EWANTWRITE = -11
};

static inline int smtp_is_want(int code)
{
    return code == SMTP_EWANTREAD || code == SMTP_EWANTWRITE;
}

/* Lua-visible kind for a code; SPEC section 6 lists the kinds. A peer that
 * closes is an 'io' failure for the user. */
static inline const char *smtp_err_kind(int code)
{
    switch (code) {
    case SMTP_ETIMEOUT: return "timeout";
    case SMTP_ETLS: return "tls";
    case SMTP_EPROTO: return "protocol";
    case SMTP_ESASL: return "authentication";
    case SMTP_EUSAGE: return "usage";
    case SMTP_EWANTREAD: return "want";
    case SMTP_EWANTWRITE: return "want";
    default: return "io";
    }
}

static inline const char *smtp_strerror(int code)
{
    switch (code) {
    case SMTP_OK: return "success";
    case SMTP_EIO: return "input/output error";
    case SMTP_ETIMEOUT: return "timed out";
    case SMTP_ECLOSED: return "connection closed by peer";
    case SMTP_ETLS: return "TLS failure";
    case SMTP_EPROTO: return "protocol error";
    case SMTP_ESASL: return "SASL failure";
    case SMTP_ENOMEM: return "out of memory";
    case SMTP_EUSAGE: return "invalid argument";
    case SMTP_EAGAIN: return "operation would block";
    case SMTP_EWANTREAD: return "r";
    case SMTP_EWANTWRITE: return "w";
    default: return "unknown error";
    }
}

#endif
