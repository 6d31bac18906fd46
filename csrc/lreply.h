/* Shared between lreply.c and lconn.c: the parser userdata and the
 * conversion of a parsed reply into its Lua table. */
#ifndef SMTP_LREPLY_H
#define SMTP_LREPLY_H

#include "compat.h"
#include "reply.h"

struct smtp_reply_parser *lreply_check(lua_State *L, int idx);
/* Pushes {code=, enhanced=, lines={...}} for r. */
void lreply_push(lua_State *L, const struct smtp_reply *r);

#endif
