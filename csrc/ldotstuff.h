/* Shared between ldotstuff.c and lconn.c (send_data encodes in place). */
#ifndef SMTP_LDOTSTUFF_H
#define SMTP_LDOTSTUFF_H

#include "compat.h"
#include "dotstuff.h"

struct smtp_dotstuffer *ldotstuff_check(lua_State *L, int idx);

#endif
