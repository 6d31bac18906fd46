/* What lbody.c (Conn:send_body) needs of the connection in lconn.c. */
#ifndef SMTP_LCONN_H
#define SMTP_LCONN_H

#include "compat.h"

#include <stdint.h>
#include <sys/uio.h>

struct lconn;

struct lconn *lconn_check_open(lua_State *L, int idx);
/* Writes all of iov (TLS when active); an smtp_body_write_fn. */
int lconn_write(void *conn, struct iovec *iov, int n);
/* The connection's reusable scratch buffer, at least 'need' bytes. */
char *lconn_buffer(struct lconn *c, size_t need);
/* Sets the deadline to 'ms' milliseconds from now. */
void lconn_deadline_in(struct lconn *c, int64_t ms);
/* Closes and pushes nil, kind, message (msg NULL: the last I/O error). */
int lconn_fail(lua_State *L, struct lconn *c, int rc, const char *msg);

/* Conn:send_body, in lbody.c. */
int lbody_send_body(lua_State *L);

#endif
