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

/* Waits until fd is readable (POLLIN) or writable (POLLOUT). */
int smtp_net_wait(int fd, short events, int64_t deadline);

#endif
