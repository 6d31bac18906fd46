-- Loaded by busted before any spec: makes the checkout's library and
-- helpers reachable whatever LUA_PATH the caller set. SMTP_BUILD selects
-- another build directory (sanitizer builds, parallel work trees).
local build = os.getenv("SMTP_BUILD") or "build"
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath
