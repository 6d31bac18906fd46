-- `make bench-profile`: where lua-smtp spends its time in the S1 loop
-- (issue 6). Starts smtp-sink on loopback, then
--   1. perf record of `sendmany` over N x 1 KB messages, run by a Lua 5.4
--      interpreter linked from Debian's liblua5.4.a (it keeps the VM's
--      symbols; /usr/bin/lua5.4 is stripped), top symbols self and total;
--   2. calls into string patterns, string.sub, pcall, ... per message, by
--      calling line (a debug.sethook "call" hook on a shorter run).
-- Run from the repository root: lua5.4 bench/profile.lua <build dir>.
local BUILD = arg[1] or os.getenv("SMTP_BUILD") or "build"
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = BUILD .. "/?.so;" .. package.cpath

local P = require "helpers.proc"
local N = tonumber(os.getenv("BENCH_PROFILE_N") or "") or 10000
local q = P.q
local work = P.tempdir("bench-profile")
local root = P.run("pwd"):gsub("\n$", "")
local LUAENV = ("env LUA_PATH=%s LUA_CPATH=%s "):format(
  q(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"), q(root .. "/" .. BUILD .. "/?.so;;"))

local msg = work .. "/msg1k.eml"
do
  local f = assert(io.open(msg, "wb"))
  f:write("From: bench@example.test\r\nTo: sink@example.test\r\nSubject: bench\r\n",
    "Message-ID: <bench@example.test>\r\n\r\n",
    ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"):rep(16))
  f:close()
end

local port, pid
for _ = 1, 3 do
  port = P.free_port()
  pid = P.spawn(("/usr/sbin/smtp-sink -u postfix 127.0.0.1:%d 256"):format(port), work .. "/sink.log")
  P.watchdog("kill " .. pid, pid)
  if P.wait_for(10, function() return P.listening(port) or not P.alive(pid) end) and P.alive(pid) then break end
  P.terminate(pid, 2)
  pid = nil
end
assert(pid, "smtp-sink did not start")

local interp = BUILD .. "/bench-lua5.4"
local built = P.try(("cc -O2 -g $(pkg-config --cflags lua5.4) bench/tools/lua_perf.c -o %s -Wl,-E "
  .. "$(pkg-config --variable=libdir lua5.4 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)/liblua5.4.a -lm -ldl")
  :format(q(interp)))
if not built then interp = "lua5.4" end

local client = ("%s bench/peers/luasmtp.lua many 127.0.0.1 %d %%d %s"):format(interp, port, q(msg))
print(("== 1. perf: %s, sendmany of %d x 1 KB to smtp-sink"):format(interp, N))
local data = work .. "/perf.data"
local ok, o = P.try(LUAENV .. ("perf record -q -F 2000 --call-graph dwarf,16384 -o %s %s")
  :format(q(data), client:format(N)))
print(o)
if ok then
  print("-- self time, top symbols")
  print((select(2, P.try(("perf report -i %s --no-children --stdio --sort dso,sym -g none 2>/dev/null"
    .. " | grep '%%' | head -30"):format(q(data))))))
  print("-- total time (children included), top entries")
  print((select(2, P.try(("perf report -i %s --children --stdio --sort sym -g none 2>/dev/null"
    .. " | grep '%%' | head -60"):format(q(data))))))
else
  print("perf record failed (perf_event_paranoid, container?)")
end

print("== 2. calls per message by calling line (debug hook, 1000 messages)")
local hook = work .. "/callcount.lua"
do
  local f = assert(io.open(hook, "wb"))
  f:write([[
local names = { [string.find] = "string.find", [string.match] = "string.match",
  [string.gmatch] = "string.gmatch", [string.gsub] = "string.gsub", [string.sub] = "string.sub",
  [string.lower] = "string.lower", [string.format] = "string.format", [table.concat] = "table.concat",
  [pcall] = "pcall", [setmetatable] = "setmetatable" }
local counts, n = {}, tonumber((select(4, ...)))
debug.sethook(function()
  local f = debug.getinfo(2, "f")
  local name = f and names[f.func]
  if name then
    local c = debug.getinfo(3, "Sl")
    local k = name .. " at " .. (c and (c.short_src .. ":" .. c.currentline) or "?")
    counts[k] = (counts[k] or 0) + 1
  end
end, "c")
local main = assert(loadfile("bench/peers/luasmtp.lua"))
main(...)
debug.sethook()
local list = {}
for k, v in pairs(counts) do list[#list + 1] = { k, v } end
table.sort(list, function(a, b) return a[2] > b[2] end)
for i = 1, math.min(30, #list) do print(("%8.2f / message  %s"):format(list[i][2] / n, list[i][1])) end
]])
  f:close()
end
print((select(2, P.try(LUAENV .. ("lua5.4 %s many 127.0.0.1 %d 1000 %s"):format(q(hook), port, q(msg))))))

print("== 3. per-message costs of the envelope step, microseconds (1 KB message, no socket)")
print((select(2, P.try(LUAENV .. "lua5.4 -e " .. q(([[
local envelope, core = require "smtp.envelope", require "smtp.core"
local f = assert(io.open(%q, "rb")); local msg = f:read("a"); f:close()
local opts, N = { from = "bench@example.test", to = { "sink@example.test" } }, 20000
local function time(what, fn)
  local t = os.clock()
  for _ = 1, N do fn() end
  print(("%%8.2f  %%s"):format((os.clock() - t) / N * 1e6, what))
end
time("envelope.prepare(msg, {from=, to=})", function() envelope.prepare(msg, opts) end)
time("msg:find('[\\128-\\255]') (8-bit scan)", function() msg:find("[\128-\255]") end)
time("msg:find('%%z') (NUL scan)", function() msg:find("%%z") end)
time("msg:find('\\0', 1, true)", function() msg:find("\0", 1, true) end)
time("core.text_stats(msg) (one C pass)", function() core.text_stats(msg) end)
]]):format(msg))))))
P.terminate(pid, 5)
