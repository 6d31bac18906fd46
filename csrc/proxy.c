/* SOCKS5 (RFC 1928, RFC 1929 username/password) and HTTP CONNECT (RFC 9110
 * 9.3.6, Basic proxy credentials per RFC 7617) over an already connected
 * socket. Reads exactly the proxy's answer and nothing more, so the SMTP
 * greeting that may follow in the same segment stays in the socket. */
#include "proxy.h"
#include "net.h"
#include "err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HOST_MAX 255            /* SOCKS5 carries a name in one length byte */
#define CRED_MAX 255            /* RFC 1929 field size, used for HTTP too */
#define HTTP_HEAD_MAX 16384     /* bound on the proxy's response headers */

const char *smtp_proxy_name(int type)
{
    return type == SMTP_PROXY_HTTP ? "HTTP" : "SOCKS5";
}

/* Credentials must not outlive their use in our buffers. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

/* Turns a net.c failure during 'what' into the proxy's error. */
static int net_fail(int rc, int type, const char *what, char *err, size_t errlen)
{
    const char *name = smtp_proxy_name(type);
    if (rc == SMTP_ETIMEOUT) {
        snprintf(err, errlen, "%s proxy: timed out %s", name, what);
        return SMTP_ETIMEOUT;
    }
    if (rc == SMTP_ECLOSED)
        snprintf(err, errlen, "%s proxy closed the connection %s", name, what);
    else
        snprintf(err, errlen, "%s proxy: I/O error %s", name, what);
    return rc == SMTP_ENOMEM ? rc : SMTP_EIO;
}

static int send_all(int fd, const void *buf, size_t len, int64_t deadline,
                    int type, const char *what, char *err, size_t errlen)
{
    struct iovec iov;
    char nerr[128];
    int rc;
    iov.iov_base = (void *)(size_t)buf;
    iov.iov_len = len;
    rc = smtp_net_sendv(fd, &iov, 1, deadline, nerr, sizeof nerr);
    return rc == SMTP_OK ? rc : net_fail(rc, type, what, err, errlen);
}

/* Reads exactly len bytes: never more, the rest belongs to SMTP. */
static int recv_exact(int fd, void *buf, size_t len, int64_t deadline,
                      int type, const char *what, char *err, size_t errlen)
{
    size_t have = 0;
    char nerr[128];
    while (have < len) {
        size_t got;
        int rc = smtp_net_recv(fd, (char *)buf + have, len - have, &got,
                               deadline, nerr, sizeof nerr);
        if (rc != SMTP_OK)
            return net_fail(rc, type, what, err, errlen);
        have += got;
    }
    return SMTP_OK;
}

/* 1 to 5 digits, 1..65535: the port is copied into the CONNECT request
 * and the error messages, so its length must be bounded here. */
static int check_port(const char *port, unsigned *out)
{
    size_t i;
    unsigned v = 0;
    for (i = 0; port[i] != '\0'; i++) {
        if (i >= 5 || port[i] < '0' || port[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(port[i] - '0');
    }
    if (i == 0 || v < 1 || v > 65535)
        return -1;
    *out = v;
    return 0;
}

/* Host names and literals only: no spaces or controls that could split an
 * HTTP request line. */
static int check_host(const char *host)
{
    size_t n = strlen(host), i;
    if (n == 0 || n > HOST_MAX)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (ch <= 0x20 || ch == 0x7f)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- SOCKS5 */

static const char *socks5_reason(int rep)
{
    /* RFC 1928 section 6 */
    switch (rep) {
    case 1: return "general failure";
    case 2: return "connection not allowed by ruleset";
    case 3: return "network unreachable";
    case 4: return "host unreachable";
    case 5: return "connection refused by destination host";
    case 6: return "TTL expired";
    case 7: return "command not supported";
    case 8: return "address type not supported";
    default: return "unknown reply code";
    }
}

/* RFC 1929: version 1, ulen, user, plen, password; reply version, status. */
static int socks5_auth(int fd, const struct smtp_proxy *p, int64_t deadline,
                       char *err, size_t errlen)
{
    unsigned char b[3 + 2 * CRED_MAX], r[2];
    const char *pw = p->password != NULL ? p->password : "";
    size_t ul = strlen(p->user), pl = strlen(pw), n = 0;
    int rc;
    b[n++] = 1;
    b[n++] = (unsigned char)ul;
    memcpy(b + n, p->user, ul);
    n += ul;
    b[n++] = (unsigned char)pl;
    memcpy(b + n, pw, pl);
    n += pl;
    rc = send_all(fd, b, n, deadline, SMTP_PROXY_SOCKS5,
                  "sending the credentials", err, errlen);
    wipe(b, sizeof b);
    if (rc != SMTP_OK)
        return rc;
    rc = recv_exact(fd, r, 2, deadline, SMTP_PROXY_SOCKS5,
                    "waiting for the authentication reply", err, errlen);
    if (rc != SMTP_OK)
        return rc;
    if (r[1] != 0) {
        snprintf(err, errlen, "SOCKS5 proxy: authentication failed (status %u)",
                 (unsigned)r[1]);
        return SMTP_EIO;
    }
    return SMTP_OK;
}

/* Request: VER CMD=CONNECT RSV ATYP DST.ADDR DST.PORT (RFC 1928 section
 * 4). Names go as ATYP 3 so the proxy resolves them (remote DNS). */
static size_t socks5_request(unsigned char *b, const char *host, unsigned port)
{
    struct in_addr v4;
    struct in6_addr v6;
    size_t n = 0, hl;
    b[n++] = 5;
    b[n++] = 1;
    b[n++] = 0;
    if (inet_pton(AF_INET, host, &v4) == 1) {
        b[n++] = 1;
        memcpy(b + n, &v4, 4);
        n += 4;
    } else if (inet_pton(AF_INET6, host, &v6) == 1) {
        b[n++] = 4;
        memcpy(b + n, &v6, 16);
        n += 16;
    } else {
        hl = strlen(host);
        b[n++] = 3;
        b[n++] = (unsigned char)hl;
        memcpy(b + n, host, hl);
        n += hl;
    }
    b[n++] = (unsigned char)(port >> 8);
    b[n++] = (unsigned char)(port & 0xff);
    return n;
}

static int socks5(int fd, const struct smtp_proxy *p, const char *host,
                  const char *port, unsigned portnum, int64_t deadline,
                  char *err, size_t errlen)
{
    unsigned char b[8 + HOST_MAX];
    size_t n;
    int rc;

    /* Offer "no authentication", and username/password when we have a
     * user: the proxy picks. */
    b[0] = 5;
    b[1] = p->user != NULL ? 2 : 1;
    b[2] = 0;
    b[3] = 2;
    rc = send_all(fd, b, p->user != NULL ? 4 : 3, deadline, SMTP_PROXY_SOCKS5,
                  "sending the greeting", err, errlen);
    if (rc == SMTP_OK)
        rc = recv_exact(fd, b, 2, deadline, SMTP_PROXY_SOCKS5,
                        "waiting for the method choice", err, errlen);
    if (rc != SMTP_OK)
        return rc;
    if (b[0] != 5) {
        snprintf(err, errlen, "SOCKS5 proxy: not a SOCKS5 server (version byte %u)",
                 (unsigned)b[0]);
        return SMTP_EIO;
    }
    if (b[1] == 0xff) {
        snprintf(err, errlen, "SOCKS5 proxy: no acceptable authentication method%s",
                 p->user != NULL ? "" : " (the proxy requires credentials)");
        return SMTP_EIO;
    }
    if (b[1] == 2 && p->user != NULL)
        rc = socks5_auth(fd, p, deadline, err, errlen);
    else if (b[1] != 0) {
        snprintf(err, errlen, "SOCKS5 proxy: chose an authentication method we did not offer (%u)",
                 (unsigned)b[1]);
        return SMTP_EIO;
    }
    if (rc != SMTP_OK)
        return rc;

    n = socks5_request(b, host, portnum);
    rc = send_all(fd, b, n, deadline, SMTP_PROXY_SOCKS5,
                  "sending the connect request", err, errlen);
    if (rc == SMTP_OK)
        rc = recv_exact(fd, b, 4, deadline, SMTP_PROXY_SOCKS5,
                        "waiting for the connect reply", err, errlen);
    if (rc != SMTP_OK)
        return rc;
    if (b[0] != 5) {
        snprintf(err, errlen, "SOCKS5 proxy: malformed connect reply (version byte %u)",
                 (unsigned)b[0]);
        return SMTP_EIO;
    }
    if (b[1] != 0) {
        snprintf(err, errlen, "SOCKS5 proxy: %s (%u) for %s port %s",
                 socks5_reason(b[1]), (unsigned)b[1], host, port);
        return SMTP_EIO;
    }
    /* Skip BND.ADDR and BND.PORT, whose length depends on ATYP. */
    switch (b[3]) {
    case 1: n = 4 + 2; break;
    case 4: n = 16 + 2; break;
    case 3:
        rc = recv_exact(fd, b, 1, deadline, SMTP_PROXY_SOCKS5,
                        "reading the bound address", err, errlen);
        if (rc != SMTP_OK)
            return rc;
        n = (size_t)b[0] + 2;
        break;
    default:
        snprintf(err, errlen, "SOCKS5 proxy: malformed connect reply (address type %u)",
                 (unsigned)b[3]);
        return SMTP_EIO;
    }
    return recv_exact(fd, b, n, deadline, SMTP_PROXY_SOCKS5,
                      "reading the bound address", err, errlen);
}

/* -------------------------------------------------------- HTTP CONNECT */

static size_t base64(char *out, const unsigned char *in, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, n = 0;
    for (i = 0; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[n++] = tab[v >> 18];
        out[n++] = tab[(v >> 12) & 63];
        out[n++] = tab[(v >> 6) & 63];
        out[n++] = tab[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
        out[n++] = tab[v >> 18];
        out[n++] = tab[(v >> 12) & 63];
        out[n++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[n++] = '=';
    }
    out[n] = '\0';
    return n;
}

/* Reads the response head up to and including its empty line. Peeks
 * first and then consumes only the bytes that belong to the head, so
 * whatever the server behind the tunnel already sent is left unread. */
static int http_read_head(int fd, char *buf, size_t cap, size_t *len,
                          int64_t deadline, char *err, size_t errlen)
{
    size_t have = 0, line = 0;
    for (;;) {
        ssize_t n;
        size_t i, take;
        int found = 0, rc;
        if (have == cap) {
            snprintf(err, errlen, "HTTP proxy: response headers longer than %u bytes",
                     (unsigned)cap);
            return SMTP_EIO;
        }
        n = recv(fd, buf + have, cap - have, MSG_PEEK);
        if (n == 0)
            return net_fail(SMTP_ECLOSED, SMTP_PROXY_HTTP,
                            "before the end of its response", err, errlen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return net_fail(errno == ECONNRESET ? SMTP_ECLOSED : SMTP_EIO,
                                SMTP_PROXY_HTTP, "reading its response", err, errlen);
            rc = smtp_net_wait(fd, POLLIN, deadline);
            if (rc != SMTP_OK)
                return net_fail(rc, SMTP_PROXY_HTTP, "waiting for the CONNECT response",
                                err, errlen);
            continue;
        }
        for (i = 0; i < (size_t)n; i++) {
            char ch = buf[have + i];
            if (ch == '\n') {
                if (line == 0) {
                    found = 1;
                    break;
                }
                line = 0;
            } else if (ch != '\r') {
                line++;
            }
        }
        take = found ? i + 1 : (size_t)n;
        rc = recv_exact(fd, buf + have, take, deadline, SMTP_PROXY_HTTP,
                        "reading its response", err, errlen);
        if (rc != SMTP_OK)
            return rc;
        have += take;
        if (found) {
            *len = have;
            return SMTP_OK;
        }
    }
}

/* Appends n bytes at *len if they fit; -1 (and nothing written) if not. */
static int append(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (n > cap - *len)
        return -1;
    memcpy(buf + *len, s, n);
    *len += n;
    return 0;
}

static int http_connect(int fd, const struct smtp_proxy *p, const char *host,
                        const char *port, int64_t deadline, char *err, size_t errlen)
{
    /* Request: two host:port copies plus base64 of user:password. */
    char req[256 + 2 * (HOST_MAX + 8) + 4 * (2 * CRED_MAX + 2) / 3 + 8];
    char head[HTTP_HEAD_MAX];
    char status[160];
    int v6 = strchr(host, ':') != NULL, n, rc, over;
    size_t len = 0, i, sl, rl;

    n = snprintf(req, sizeof req, "CONNECT %s%s%s:%s HTTP/1.1\r\nHost: %s%s%s:%s\r\n",
                 v6 ? "[" : "", host, v6 ? "]" : "", port,
                 v6 ? "[" : "", host, v6 ? "]" : "", port);
    /* check_host and check_port bound this; a truncated request must
     * never be sent (nor what lies beyond it). */
    over = n < 0 || (size_t)n >= sizeof req;
    rl = over ? 0 : (size_t)n;
    if (!over && p->user != NULL) {
        unsigned char cred[2 * CRED_MAX + 2];
        char b64[4 * (2 * CRED_MAX + 2) / 3 + 8];
        const char *pw = p->password != NULL ? p->password : "";
        size_t ul = strlen(p->user), pl = strlen(pw), bl;
        memcpy(cred, p->user, ul);
        cred[ul] = ':';
        memcpy(cred + ul + 1, pw, pl);
        bl = base64(b64, cred, ul + 1 + pl);
        wipe(cred, sizeof cred);
        over = append(req, sizeof req, &rl, "Proxy-Authorization: Basic ", 27) < 0
               || append(req, sizeof req, &rl, b64, bl) < 0
               || append(req, sizeof req, &rl, "\r\n", 2) < 0;
        wipe(b64, sizeof b64);
    }
    if (!over)
        over = append(req, sizeof req, &rl, "\r\n", 2) < 0;
    if (over) {
        wipe(req, sizeof req);
        snprintf(err, errlen, "HTTP proxy: CONNECT request too long");
        return SMTP_EUSAGE;
    }
    rc = send_all(fd, req, rl, deadline, SMTP_PROXY_HTTP,
                  "sending the CONNECT request", err, errlen);
    wipe(req, sizeof req);
    if (rc != SMTP_OK)
        return rc;

    rc = http_read_head(fd, head, sizeof head, &len, deadline, err, errlen);
    if (rc != SMTP_OK)
        return rc;
    /* The status line, printable characters only, for the message. */
    for (i = 0, sl = 0; i < len && head[i] != '\r' && head[i] != '\n'; i++)
        if (sl + 1 < sizeof status && head[i] >= 0x20 && head[i] < 0x7f)
            status[sl++] = head[i];
    status[sl] = '\0';
    /* "HTTP/1.x 200 reason" (RFC 9112 section 4) */
    if (sl < 12 || memcmp(status, "HTTP/", 5) != 0 || strchr(status, ' ') == NULL) {
        snprintf(err, errlen, "HTTP proxy: malformed status line \"%s\"", status);
        return SMTP_EIO;
    }
    {
        const char *code = strchr(status, ' ') + 1;
        if (code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9'
            || code[2] < '0' || code[2] > '9' || (code[3] != ' ' && code[3] != '\0')) {
            snprintf(err, errlen, "HTTP proxy: malformed status line \"%s\"", status);
            return SMTP_EIO;
        }
        if (code[0] == '2')
            return SMTP_OK;
    }
    snprintf(err, errlen, "HTTP proxy refused CONNECT to %s%s%s:%s: %s",
             v6 ? "[" : "", host, v6 ? "]" : "", port, status);
    return SMTP_EIO;
}

/* Everything checkable without the network: done before connecting to
 * the proxy, so a bad argument costs no connection. */
static int check_args(const struct smtp_proxy *proxy, const char *host, const char *port,
                      unsigned *portnum, char *err, size_t errlen)
{
    const char *name = smtp_proxy_name(proxy->type);
    if (proxy->type != SMTP_PROXY_SOCKS5 && proxy->type != SMTP_PROXY_HTTP) {
        snprintf(err, errlen, "unknown proxy type %d", proxy->type);
        return SMTP_EUSAGE;
    }
    if (check_host(host) < 0) {
        snprintf(err, errlen, "%s proxy: the host must be 1 to %d bytes without spaces or controls",
                 name, HOST_MAX);
        return SMTP_EUSAGE;
    }
    if (check_port(port, portnum) < 0) {
        /* The port is not echoed: it may be of any length. */
        snprintf(err, errlen, "%s proxy: bad port (1 to 5 digits, 1 to 65535)", name);
        return SMTP_EUSAGE;
    }
    if (proxy->user != NULL) {
        size_t ul = strlen(proxy->user);
        size_t pl = proxy->password != NULL ? strlen(proxy->password) : 0;
        if (ul == 0 || ul > CRED_MAX || pl > CRED_MAX) {
            snprintf(err, errlen, "%s proxy: user and password must be at most %d bytes, user not empty",
                     name, CRED_MAX);
            return SMTP_EUSAGE;
        }
        /* RFC 7617 section 2: the user-id cannot contain a colon. */
        if (proxy->type == SMTP_PROXY_HTTP && strchr(proxy->user, ':') != NULL) {
            snprintf(err, errlen, "HTTP proxy: the user name cannot contain ':'");
            return SMTP_EUSAGE;
        }
    }
    return SMTP_OK;
}

int smtp_proxy_handshake(int fd, const struct smtp_proxy *proxy,
                         const char *host, const char *port,
                         int64_t deadline, char *err, size_t errlen)
{
    unsigned portnum;
    int rc = check_args(proxy, host, port, &portnum, err, errlen);
    if (rc != SMTP_OK)
        return rc;
    if (proxy->type == SMTP_PROXY_SOCKS5)
        return socks5(fd, proxy, host, port, portnum, deadline, err, errlen);
    return http_connect(fd, proxy, host, port, deadline, err, errlen);
}

int smtp_proxy_connect(int *fd, const struct smtp_proxy *proxy,
                       const char *host, const char *port,
                       const char *local_address, int64_t deadline,
                       char *err, size_t errlen)
{
    char nerr[256];
    unsigned portnum;
    int rc;
    *fd = -1;
    rc = check_args(proxy, host, port, &portnum, err, errlen);
    if (rc != SMTP_OK)
        return rc;
    rc = smtp_net_connect(fd, proxy->host, proxy->port, local_address, deadline,
                          nerr, sizeof nerr);
    if (rc != SMTP_OK) {
        snprintf(err, errlen, "%s proxy: %s", smtp_proxy_name(proxy->type), nerr);
        return rc;
    }
    rc = smtp_proxy_handshake(*fd, proxy, host, port, deadline, err, errlen);
    if (rc != SMTP_OK) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}
