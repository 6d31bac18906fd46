/* smtp.core.idna_to_ascii: internationalised domain names to A-labels
 * with libidn2 (IDNA2008, UTS 46 non-transitional), for lua/smtp/idna.lua. */
#ifndef SMTP_LIDN_H
#define SMTP_LIDN_H

#include "compat.h"

void lidn_open(lua_State *L);

#endif
