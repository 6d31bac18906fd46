/* smtp.core.pool_key: a keyed hash for the cosocket keepalive pool names
 * (lua/smtp/transport/cosocket.lua), so credentials never appear in them. */
#ifndef SMTP_LPOOLKEY_H
#define SMTP_LPOOLKEY_H

#include "compat.h"

void lpoolkey_open(lua_State *L);

#endif
