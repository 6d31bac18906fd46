/* TCP for the SMTP client: resolve, try every address in turn, and move
 * bytes with poll() bounded by an absolute deadline (deadline.h). Sockets
 * are non-blocking; I/O is tried first and waits only on EAGAIN. */
#ifndef SMTP_NET_H
#define SMTP_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Connects to host:port (host may be a name or an IPv4/IPv6 literal), or
 * to a UNIX socket when host starts with '/'. Each resolved address gets a
 * share of the time left so that a dead first address cannot use it all
 * (RFC 8305 spirit). local_address may be NULL. On success *fd is a
 * non-blocking socket with TCP_NODELAY; on failure err says why. */
int smtp_net_connect(int *fd, const char *host, const char *port,
                     const char *local_address, int64_t deadline,
                     char *err, size_t errlen);

/* Sends every byte of the iovecs before the deadline, or fails. The
 * iovec array is modified. */
int smtp_net_sendv(int fd, struct iovec *iov, int iovcnt, int64_t deadline,
                   char *err, size_t errlen);

/* Receives between 1 and cap bytes into buf; SMTP_ECLOSED at end of stream. */
int smtp_net_recv(int fd, void *buf, size_t cap, size_t *got, int64_t deadline,
                  char *err, size_t errlen);

/* The socket's own address as an RFC 5321 4.1.3 address literal:
 * "[192.0.2.1]" or "[IPv6:2001:db8::1]". SMTP_EUSAGE for other families. */
int smtp_net_local_literal(int fd, char *buf, size_t len);

/* Waits until fd is readable (POLLIN) or writable (POLLOUT). With the
 * deadline SMTP_NOWAIT it never waits: SMTP_EWANTREAD / SMTP_EWANTWRITE. */
int smtp_net_wait(int fd, short events, int64_t deadline);

/* No-wait mode (an event loop waits, SPEC 5.1). Starts connecting to a
 * numeric address (or a UNIX socket path) and returns at once: SMTP_OK
 * when connected, SMTP_EWANTWRITE while in progress (*fd is set: wait
 * for it to be writable, then call smtp_net_connect_finish), or a
 * failure. The fd belongs to the caller whenever *fd >= 0. label names
 * the peer in messages ("192.0.2.1 port 25"). */
int smtp_net_connect_start(int *fd, const char *addr, const char *port,
                           const char *local_address, char *err, size_t errlen);
int smtp_net_connect_finish(int fd, const char *label, char *err, size_t errlen);

/* Sends what the socket takes now; *sent bytes went out. SMTP_OK once
 * all did, SMTP_EWANTWRITE when the socket is full. */
int smtp_net_send_some(int fd, const void *buf, size_t len, size_t *sent,
                       char *err, size_t errlen);

#endif
