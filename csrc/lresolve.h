/* The 'smtp.core.Resolve' binding (lresolve.c). */
#ifndef SMTP_LRESOLVE_H
#define SMTP_LRESOLVE_H

#include "compat.h"

void lresolve_open(lua_State *L);

#endif
