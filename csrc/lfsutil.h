/* smtp.core file-system and process helpers (fs_list, fs_lock,
 * fs_write_file, fs_sync_dir, fs_rename, fs_mkdir, getpid, sleep,
 * wall_time) for the durable outbox, lua/smtp/outbox.lua: what plain Lua
 * lacks (flock, fsync, readdir, nanosleep). */
#ifndef SMTP_LFSUTIL_H
#define SMTP_LFSUTIL_H

#include "compat.h"

void lfsutil_open(lua_State *L);

#endif
