/* smtp.core spawn: runs a program without a shell, feeding its stdin
 * within a deadline (for the sendmail sender, lua/smtp/sender/sendmail.lua). */
#ifndef SMTP_LSPAWN_H
#define SMTP_LSPAWN_H

#include "compat.h"

void lspawn_open(lua_State *L);

#endif
