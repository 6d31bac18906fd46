-- Process and file plumbing for the test servers (spec/helpers/servers.lua,
-- spec/helpers/certs.lua): shell quoting, commands, a monotonic-enough
-- clock, bounded sleeps, PID checks and a per-process scratch directory
-- that a watchdog removes when this Lua process exits. Pure Lua + /bin/sh.
local M = {}

function M.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Output and exit code of a shell command. The shell appends "\n<code>\n"
-- (popen's close() gives no status on 5.1/LuaJIT); the last one is ours.
local function capture(cmd)
  local f = assert(io.popen("(" .. cmd .. ") 2>&1; printf '\\n%s\\n' \"$?\"", "r"))
  local all = f:read("*a")
  f:close()
  local out, code = all:match("^(.*)\n(%d+)\n$")
  if not out then return all, -1 end
  return out, tonumber(code)
end

-- Runs a shell command; raises with its output when it fails.
function M.run(cmd)
  local out, code = capture(cmd)
  if code ~= 0 then
    error(("command failed (exit %d): %s\n%s"):format(code, cmd, out), 2)
  end
  return out
end

-- Runs a shell command, returns ok, output (never raises).
function M.try(cmd)
  local out, code = capture(cmd)
  return code == 0, out
end

-- Seconds since boot with 10 ms resolution (os.clock is CPU time).
function M.now()
  local f = io.open("/proc/uptime", "r")
  if not f then return os.time() end
  local t = tonumber(f:read("*n"))
  f:close()
  return t
end

function M.sleep(s)
  os.execute("sleep " .. string.format("%.3f", s))
end

-- Calls check() until it returns a truthy value or `timeout` seconds pass.
-- Returns check's value, or nil and "timeout".
function M.wait_for(timeout, check, interval)
  local deadline = M.now() + timeout
  interval = interval or 0.05
  while true do
    local v = check()
    if v then return v end
    if M.now() >= deadline then return nil, "timeout" end
    M.sleep(interval)
  end
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function M.write_file(path, data, mode)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
  if mode then M.run("chmod " .. mode .. " " .. M.q(path)) end
end

function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- True when a process listens on the Unix socket `path` (io.open cannot
-- open sockets).
function M.unix_listening(path)
  local s = M.read_file("/proc/net/unix") or ""
  for line in s:gmatch("[^\n]+") do
    if line:sub(-#path - 1) == " " .. path then return true end
  end
  return false
end

-- True while the process exists and is not a zombie (PID 1 in a container
-- may never reap the servers we orphan).
function M.alive(pid)
  local stat = M.read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- Process group of a live process, or nil.
function M.pgid(pid)
  local stat = M.read_file("/proc/" .. pid .. "/stat")
  if not stat then return nil end
  local rest = stat:match("^%d+ %b() (.*)$")
  if not rest then return nil end
  local _, _, pgrp = rest:match("^(%S+) (%S+) (%S+)")
  return tonumber(pgrp)
end

-- PIDs of the live children of `pid` (from /proc; procps may be absent).
function M.children(pid)
  local kids = {}
  local f = assert(io.popen("ls /proc", "r"))
  for name in f:lines() do
    if name:match("^%d+$") then
      local stat = M.read_file("/proc/" .. name .. "/stat")
      local ppid = stat and tonumber(stat:match("^%d+ %b() %a (%d+)"))
      if ppid == pid then kids[#kids + 1] = tonumber(name) end
    end
  end
  f:close()
  return kids
end

function M.kill(pid, sig)
  os.execute(("kill -%s %d 2>/dev/null"):format(sig or "TERM", pid))
end

-- SIGTERM, wait up to `grace` seconds, then SIGKILL; bounded.
function M.terminate(pid, grace)
  if not M.alive(pid) then return true end
  M.kill(pid, "TERM")
  if M.wait_for(grace or 5, function() return not M.alive(pid) end, 0.02) then
    return true
  end
  M.kill(pid, "KILL")
  return M.wait_for(2, function() return not M.alive(pid) end, 0.02) ~= nil
end

-- Starts `cmd` in the background with output to `log`; returns its PID.
-- `exec` makes the PID that of the program itself, not of a shell.
function M.spawn(cmd, log)
  local f = assert(io.popen(("exec %s </dev/null >>%s 2>&1 & echo $!")
    :format(cmd, M.q(log or "/dev/null")), "r"))
  local pid = tonumber(f:read("*l"))
  f:close()
  assert(pid, "spawn failed: " .. cmd)
  return pid
end

local lua_pid
-- PID of this Lua process: the parent of a shell started by io.popen.
function M.lua_pid()
  if not lua_pid then
    local f = assert(io.popen("echo $PPID", "r"))
    lua_pid = tonumber(f:read("*l"))
    f:close()
  end
  return lua_pid
end

-- Starts a watchdog that runs `action` (a shell command) once this Lua
-- process has exited, unless `pid` (the thing it guards) exits first.
-- Returns the watchdog's PID. Guards against servers outliving a crashed
-- or killed test run.
function M.watchdog(action, pid)
  local guard = pid and ("&& kill -0 " .. pid .. " 2>/dev/null") or ""
  local script = ("while kill -0 %d 2>/dev/null %s; do sleep 0.5; done; %s")
    :format(M.lua_pid(), guard, action)
  return M.spawn("/bin/sh -c " .. M.q(script))
end

local base
-- Per-process scratch directory (mode 0755 so the postfix, dovecot and
-- nobody users can traverse it), removed by a watchdog after this process
-- exits. Survives busted's module insulation: the path depends only on
-- the PID.
function M.basedir()
  if base then return base end
  local tmp = os.getenv("TMPDIR") or "/tmp"
  local dir = ("%s/lua-smtp-test.%d"):format(tmp, M.lua_pid())
  local made = M.try("mkdir -m 0755 " .. M.q(dir))
  if made and not os.getenv("SMTP_KEEP_TMP") then
    M.watchdog("rm -rf " .. M.q(dir))
  end
  M.run("chmod 0755 " .. M.q(dir))
  base = dir
  return dir
end

local seq = 0
-- A fresh directory under basedir(): basedir/<prefix>.<n>.
function M.tempdir(prefix)
  local dir
  for _ = 1, 1000 do
    seq = seq + 1
    dir = ("%s/%s.%d"):format(M.basedir(), prefix or "d", seq)
    if M.try("mkdir -m 0755 " .. M.q(dir)) then return dir end
  end
  error("cannot create a temporary directory under " .. M.basedir())
end

-- Local TCP ports in use (any state, IPv4 and IPv6), from /proc/net.
local function used_ports()
  local used = {}
  for _, f in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local s = M.read_file(f) or ""
    for port in s:gmatch("\n%s*%d+: %x+:(%x+) ") do
      used[tonumber(port, 16)] = true
    end
  end
  return used
end

-- True when something listens on TCP `port` (IPv4 or IPv6).
function M.listening(port)
  local hex = (":%04X "):format(port)
  for _, f in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local s = M.read_file(f) or ""
    for line in s:gmatch("[^\n]+") do
      local la, st = line:match("^%s*%d+: (%x+:%x+) %x+:%x+ (%x%x)")
      if la and st == "0A" and (la .. " "):find(hex, 1, true) then
        return true
      end
    end
  end
  return false
end

-- A random number in 0..65535 from /dev/urandom: math.random is seeded by
-- specs (fixed seeds) and not at all on 5.1/LuaJIT, so suites running in
-- parallel under several Luas would probe the same ports in step.
local function random16()
  local f = io.open("/dev/urandom", "rb")
  local b = f and f:read(2)
  if f then f:close() end
  if not b or #b < 2 then return math.random(0, 65535) end
  return b:byte(1) * 256 + b:byte(2)
end

local handed_out = {}
-- A TCP port in 20000..32767 (below Linux's ephemeral range) that nothing
-- uses now and that this process has not handed out before. Bounded probe.
function M.free_port()
  local used = used_ports()
  for _ = 1, 500 do
    local p = 20000 + random16() % 12768
    if not used[p] and not handed_out[p] then
      handed_out[p] = true
      return p
    end
  end
  error("no free TCP port found in 500 tries")
end

return M
