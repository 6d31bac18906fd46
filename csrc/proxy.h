/* Proxy tunnels for the SMTP connection: once the TCP connection to the
 * proxy is up (net.c), ask it for a stream to the SMTP host. SOCKS5 (RFC
 * 1928) with username/password (RFC 1929), the host sent as a name so the
 * proxy resolves it; HTTP CONNECT (RFC 9110 9.3.6) with Basic proxy
 * authentication (RFC 7617). Nothing past the proxy's answer is read. */
#ifndef SMTP_PROXY_H
#define SMTP_PROXY_H

#include <stddef.h>
#include <stdint.h>

enum smtp_proxy_type {
    SMTP_PROXY_SOCKS5 = 1,
    SMTP_PROXY_HTTP = 2
};

struct smtp_proxy {
    int type;               /* enum smtp_proxy_type */
    const char *host;       /* the proxy's address and port */
    const char *port;
    const char *user;       /* NULL: no authentication */
    const char *password;   /* NULL counts as "" when user is set */
};

/* Runs the handshake on the connected, non-blocking socket fd so that it
 * then carries bytes to host:port (host a name or an IP literal, port
 * decimal). Every wait is bounded by deadline. Returns SMTP_OK, or
 * SMTP_EIO with the proxy's reason (SOCKS reply code, HTTP status line),
 * SMTP_ETIMEOUT, SMTP_EUSAGE for arguments the protocol cannot carry.
 * err never contains the credentials; the caller closes fd on failure. */
int smtp_proxy_handshake(int fd, const struct smtp_proxy *proxy,
                         const char *host, const char *port,
                         int64_t deadline, char *err, size_t errlen);

/* smtp_net_connect() to the proxy (binding local_address, may be NULL),
 * then smtp_proxy_handshake() for host:port. On success *fd is the tunnel;
 * on failure no socket is left open. */
int smtp_proxy_connect(int *fd, const struct smtp_proxy *proxy,
                       const char *host, const char *port,
                       const char *local_address, int64_t deadline,
                       char *err, size_t errlen);

/* "SOCKS5" or "HTTP" for messages. */
const char *smtp_proxy_name(int type);

#endif
