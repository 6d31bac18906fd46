/* Shared between ltls.c and lconn.c: starting TLS on a connection's socket
 * with a 'smtp.core.TlsConfig', and the table behind conn:tls_info(). */
#ifndef SMTP_LTLS_H
#define SMTP_LTLS_H

#include <stddef.h>
#include <stdint.h>

#include "compat.h"
#include "tls.h"

/* Checks the config at cfg_idx and the optional peer name at name_idx
 * (raising on wrong types), stores the config in user value 1 of the
 * userdata at conn_idx so that it outlives the session, then runs
 * smtp_tls_start on fd (or on mem, not NULL: membio.h). Returns its
 * code; err says why on failure. */
int ltls_start(lua_State *L, int conn_idx, int cfg_idx, int name_idx, int fd,
               struct smtp_membio *mem, int64_t deadline, struct smtp_tls **out, char *err, size_t errlen);

/* Pushes {version=, cipher=, peer_subject=, peer_verified=}. */
void ltls_push_info(lua_State *L, const struct smtp_tls *s);

#endif
