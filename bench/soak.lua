-- Soak (issue 8): many sequential connections to bench/soak_server.py,
-- which fails in a rotating way (accept+close, 421 greeting, garbage,
-- 5xx to MAIL, 4xx to RCPT, a stall past a short MAIL deadline, close
-- during DATA, good delivery, garbage instead of a TLS handshake, good
-- delivery over STARTTLS). Every connection's outcome is checked against
-- its mode; open fds and RSS (after a full collection) are taken after
-- the first 100 connections and at the end, and must not grow.
--
-- usage: lua5.4 bench/soak.lua [connections] [seconds]   (make soak)
-- Stops after 'connections' (default 10000) or 'seconds' (default 900),
-- whichever comes first. Exit status 0 only when nothing grew and every
-- outcome matched.
local smtp = require "smtp"
local core = require "smtp.core"

local N = tonumber(arg[1]) or 10000
local T = tonumber(arg[2]) or 900
local WARMUP = 100
-- RSS may move by a few pages (allocator arenas, the Lua GC's pace); a
-- leak of even 100 bytes per connection would be 1 MiB over 10,000.
local RSS_TOLERANCE_KB = 512
local STALL_DEADLINE = 0.05

-- Must match MODES in bench/soak_server.py, in order: the error kind(s)
-- each mode must end in (nil: success).
local MODES = {
  { "accept_close", "io" },
  { "greet_421", "transient" },
  { "garbage_greeting", "protocol" },
  { "mail_5xx", "permanent" },
  { "rcpt_4xx", "transient" },
  { "stall_mail", "timeout" },
  { "data_close", "io" },
  { "good", nil },
  -- Garbage that beats the ClientHello is plaintext after the 220
  -- (SPEC 7: protocol or tls).
  { "tls_garbage", "tls", "protocol" },
  { "tls_good", nil },
}

local function sh(cmd) assert(os.execute(cmd), cmd) end
local slurp = require("helpers.proc").read_file

local PID = slurp("/proc/self/stat"):match("^(%d+)")

local function open_fds()
  -- The pipe of this popen is open in both counts alike.
  local p = io.popen("ls /proc/" .. PID .. "/fd")
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

local function rss_kb()
  collectgarbage("collect")
  collectgarbage("collect")
  return tonumber(slurp("/proc/self/status"):match("VmRSS:%s*(%d+)"))
end

-- Server: a throwaway EC certificate, the script started in the
-- background, stopped by its PID.
local dir = os.tmpname()
os.remove(dir)
sh("mkdir -p " .. dir)
sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 " ..
  "-subj /CN=localhost -keyout %s/key.pem -out %s/cert.pem 2>/dev/null"):format(dir, dir))
sh(("/usr/bin/python3 bench/soak_server.py %s/port %s/cert.pem %s/key.pem %d >%s/log 2>&1 & echo $! >%s/pid")
  :format(dir, dir, dir, T + 60, dir, dir))
local server_pid = tonumber(slurp(dir .. "/pid"))
local port
for _ = 1, 250 do
  port = tonumber(slurp(dir .. "/port") or "")
  if port then break end
  sh("sleep 0.02")
end

local function stop_server()
  if server_pid then os.execute("kill " .. server_pid .. " 2>/dev/null") end
  server_pid = nil
  os.execute("rm -rf " .. dir)
end

if not port then
  io.stderr:write("soak: server did not start: ", slurp(dir .. "/log") or "", "\n")
  stop_server()
  os.exit(1)
end

local tls = smtp.tls_config { verify = "none" }
local MSG = "From: a@example.org\r\nTo: b@example.org\r\nSubject: soak\r\n\r\n" ..
  string.rep("soak body line\r\n", 64)

-- One connection in 'mode'; returns the error kind (nil on success).
local function one(mode)
  local client
  local ok, err = pcall(function()
    client = smtp.connect { host = "127.0.0.1", port = port, timeout = 2, local_name = "soak.example",
      timeouts = mode == "stall_mail" and { mail = STALL_DEADLINE } or nil }
    if mode:find("^tls_") then client:authenticate { tls = tls } end
    client:sendmail(MSG)
    client:quit()
  end)
  if client then client:close() end
  if ok then return nil end
  if not smtp.Error.is(err) then return "not an smtp.Error", tostring(err) end
  return err.kind, tostring(err)
end

local counts, mismatches, nmismatch = {}, {}, 0
local fds0, rss0, fds1, rss1, done
local t0 = core.now()
local ok, err = pcall(function()
  for i = 1, N do
    if core.now() - t0 > T then break end
    local m = MODES[(i - 1) % #MODES + 1]
    local kind, why = one(m[1])
    local key = m[1] .. " -> " .. tostring(kind or "ok")
    counts[key] = (counts[key] or 0) + 1
    if kind ~= m[2] and (kind == nil or kind ~= m[3]) then
      nmismatch = nmismatch + 1
    end
    if kind ~= m[2] and (kind == nil or kind ~= m[3]) and #mismatches < 20 then
      mismatches[#mismatches + 1] = ("#%d %s: got %s, want %s (%s)"):format(i, m[1], tostring(kind),
        tostring(m[2]), tostring(why))
    end
    done = i
    if i == WARMUP then fds0, rss0 = open_fds(), rss_kb() end
  end
  fds1, rss1 = open_fds(), rss_kb()
end)
local elapsed = core.now() - t0
stop_server()
if not ok then
  io.stderr:write("soak: ", tostring(err), "\n")
  os.exit(1)
end

print(("soak: %d connections in %.1f s (%.0f/s), %d modes"):format(done or 0, elapsed, (done or 0) / elapsed, #MODES))
local keys = {}
for k in pairs(counts) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do print(("  %-28s %6d"):format(k, counts[k])) end
local failed = false
if not fds0 then
  print("soak: fewer than " .. WARMUP .. " connections, nothing to compare")
  os.exit(1)
end
print(("soak: open fds after %d: %d, at the end: %d"):format(WARMUP, fds0, fds1))
print(("soak: VmRSS after %d: %d KiB, at the end: %d KiB (%+d KiB, tolerance %d KiB)")
  :format(WARMUP, rss0, rss1, rss1 - rss0, RSS_TOLERANCE_KB))
print(("soak: Lua heap at the end: %.0f KiB"):format(collectgarbage("count")))
if fds1 ~= fds0 then print("soak: FAIL: file descriptors grew"); failed = true end
if rss1 - rss0 > RSS_TOLERANCE_KB then print("soak: FAIL: RSS grew"); failed = true end
if nmismatch > 0 then
  print(("soak: FAIL: %d outcomes do not match their mode, the first ones:"):format(nmismatch))
  for _, m in ipairs(mismatches) do print("  " .. m) end
  failed = true
end
if failed then os.exit(1) end
print("soak: ok")
