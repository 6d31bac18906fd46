/* Name resolution bounded by a deadline, for both ways of waiting: a
 * lookup runs in a helper thread and signals a file descriptor, which the
 * caller polls (blocking mode) or gives to an event loop (SPEC 5.1).
 * Numeric addresses are answered at once, without a thread. No Lua here. */
#ifndef SMTP_RESOLVE_H
#define SMTP_RESOLVE_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_resolve;

/* Starts looking up host:port (TCP). On SMTP_OK *out is the lookup. */
int smtp_resolve_start(struct smtp_resolve **out, const char *host, const char *port,
                       char *err, size_t errlen);

/* Readable once the answer is in; -1 for a numeric host (answered). */
int smtp_resolve_fd(const struct smtp_resolve *r);

/* SMTP_OK with *res (the caller frees it with freeaddrinfo), or
 * SMTP_EWANTREAD while the lookup runs, or SMTP_EIO with err set. */
int smtp_resolve_result(struct smtp_resolve *r, struct addrinfo **res,
                        char *err, size_t errlen);

/* Releases the lookup; one still running is abandoned, not waited for. */
void smtp_resolve_free(struct smtp_resolve *r);

/* Start, poll until the deadline, result: SMTP_ETIMEOUT once it passes. */
int smtp_resolve(const char *host, const char *port, int64_t deadline,
                 struct addrinfo **res, char *err, size_t errlen);

#endif
