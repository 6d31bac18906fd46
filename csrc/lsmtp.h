/* Shared by the Lua bindings (files named l*.c): metatable names, the
 * registration hook of each userdata type, and the failure convention. */
#ifndef SMTP_LSMTP_H
#define SMTP_LSMTP_H

#include "compat.h"

#define SMTP_CONN_MT "smtp.core.Conn"
#define SMTP_REPLY_PARSER_MT "smtp.core.ReplyParser"
#define SMTP_DOTSTUFFER_MT "smtp.core.DotStuffer"
#define SMTP_TLS_CONFIG_MT "smtp.core.TlsConfig"
#define SMTP_TLS_LIBRARY_KEY "smtp.core.mbedtls"
#define SMTP_SASL_MT "smtp.core.Sasl"
#define SMTP_CODEC_MT "smtp.core.Encoder"
#define SMTP_DKIM_BODY_MT "smtp.core.DkimBody"
#define SMTP_DKIM_KEY_MT "smtp.core.DkimKey"

/* Each binding file exports one opener. It receives the module table at
 * the top of the stack, adds its functions to it, and leaves the stack as
 * it found it. */
void lconn_open(lua_State *L);
void lreply_open(lua_State *L);
void ldotstuff_open(lua_State *L);
void lcodec_open(lua_State *L);
void ltls_open(lua_State *L);
void lsasl_open(lua_State *L);
void ldkim_open(lua_State *L);

/* The module's only exported symbol; everything else is hidden by
 * -fvisibility=hidden. */
#if defined(__GNUC__)
#define SMTP_EXPORT __attribute__((visibility("default")))
#else
#define SMTP_EXPORT
#endif
SMTP_EXPORT int luaopen_smtp_core(lua_State *L);

/* Runtime failures are returned, not raised: nil, kind, message. The Lua
 * layer turns them into smtp.Error objects (DESIGN E). */
int smtp_push_failure(lua_State *L, int code, const char *message);

/* Registers a metatable with __index = itself plus the given methods. */
void smtp_new_class(lua_State *L, const char *name, const luaL_Reg *methods);

#endif
