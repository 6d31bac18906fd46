-- Proxies on loopback for the proxy specs: Dante (SOCKS5, RFC 1928/1929)
-- and tinyproxy (HTTP CONNECT with Basic auth), each with a private config
-- and stopped by PID; plus two misbehaving TCP peers made with Python: a
-- proxy that accepts and never answers, and a blackhole whose connects hang.
--
--   local proxies = require "helpers.proxies"
--
-- proxies.dante{ auth=?, block_ports=?, hosts=? } -> h
--   danted on 127.0.0.1:h.port, tunnelling only to 127.0.0.0/8. auth:
--   {user=, password=} -> RFC 1929 required (checked against a private
--   /etc/passwd + /etc/shadow). block_ports: destination ports refused
--   by rule (SOCKS reply 2). hosts: {name = "127.0.0.1", ...} resolvable
--   by the proxy only (a private /etc/hosts). auth and hosts run danted
--   in its own mount namespace (unshare -m) so no system file changes;
--   proxies.namespaces() tells whether that works here.
--   h.host, h.port, h.pid, h:log(), h:stop()
-- proxies.tinyproxy{ auth=?, connect_ports=? } -> h
--   tinyproxy on 127.0.0.1:h.port. auth {user=, password=} -> BasicAuth;
--   connect_ports: the only ports CONNECT may reach (others get 403).
-- proxies.stalled() -> h: accepts TCP connections, never says a word.
-- proxies.blackhole(host, port) -> h: listens on host:port with a full
--   accept queue, so further connects hang as if the address were dead.
-- proxies.fake(type, header_pad) -> h: a scripted proxy, see below.
-- proxies.in_namespace(files, cmd) -> shell command running cmd with each
--   {target = source} file bind-mounted in a private mount namespace.
local P = require "helpers.proc"

local M = {}

M.STARTUP_TIMEOUT = 10

local running = {}
local Proxy = {}
Proxy.__index = Proxy

function Proxy:log()
  return P.read_file(self.logfile) or ""
end

-- Idempotent; stops the proxy, the children it forked, then its watchdog.
function Proxy:stop()
  if self.stopped then return end
  self.stopped = true
  running[self] = nil
  local kids = self.pid and P.children(self.pid) or {}
  if self.pid then P.terminate(self.pid, 5) end
  for _, pid in ipairs(kids) do P.terminate(pid, 2) end
  if self.watchdog then P.terminate(self.watchdog, 1) end
end

function M.stop_all()
  local list = {}
  for h in pairs(running) do list[#list + 1] = h end
  for _, h in ipairs(list) do pcall(h.stop, h) end
end

Proxy.sentinel = setmetatable({}, { __gc = function() M.stop_all() end })

local function track(h)
  running[h] = true
  return setmetatable(h, Proxy)
end

local namespaces_ok
-- True when this machine lets us bind-mount files in a private mount
-- namespace (root with CAP_SYS_ADMIN, unshare from util-linux).
function M.namespaces()
  if namespaces_ok == nil then
    local dir = P.tempdir("ns-probe")
    P.write_file(dir .. "/hosts", "127.0.0.1 probe.lua-smtp.test\n")
    namespaces_ok = P.try(M.in_namespace({ ["/etc/hosts"] = dir .. "/hosts" },
      "getent hosts probe.lua-smtp.test"))
  end
  return namespaces_ok
end

function M.in_namespace(files, cmd)
  local mounts = {}
  for target, source in pairs(files) do
    mounts[#mounts + 1] = ("mount --bind %s %s"):format(P.q(source), P.q(target))
  end
  mounts[#mounts + 1] = "exec " .. cmd
  return "unshare -m --propagation private /bin/sh -c " .. P.q(table.concat(mounts, " && "))
end

-- Starts cmd (exec'd, so its PID is the server's), waits until it listens
-- on port; retries with a new port when another process took it first.
local function start(kind, make)
  local last
  for _ = 1, 3 do
    local dir = P.tempdir(kind)
    local h = { kind = kind, dir = dir, host = "127.0.0.1", port = P.free_port(),
                logfile = dir .. "/log" }
    local cmd = make(h)
    h.pid = P.spawn(cmd, h.logfile)
    h.watchdog = P.watchdog("kill " .. h.pid, h.pid)
    track(h)
    local up = P.wait_for(M.STARTUP_TIMEOUT, function()
      return P.listening(h.port) or not P.alive(h.pid)
    end)
    if up and P.alive(h.pid) then return h end
    last = h:log()
    h:stop()
  end
  error(kind .. " did not start:\n" .. tostring(last), 3)
end

------------------------------------------------------------------ Dante

local DANTE_CONF = [[
# Private Dante for lua-smtp's proxy specs (spec/helpers/proxies.lua).
logoutput: @DIR@/dante.log
errorlog: @DIR@/dante.log
internal: 127.0.0.1 port = @PORT@
external: 127.0.0.1
clientmethod: none
socksmethod: @METHOD@
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: error connect }
@BLOCKS@
socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 log: error connect }
socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 log: error connect }
]]

local function fill(template, vars)
  return (template:gsub("@(%w+)@", function(k) return assert(vars[k], k) end))
end

function M.dante(opts)
  opts = opts or {}
  return start("dante", function(h)
    local blocks = {}
    for _, port in ipairs(opts.block_ports or {}) do
      blocks[#blocks + 1] = ("socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 port = %d log: error connect }")
        :format(port)
    end
    local conf = h.dir .. "/danted.conf"
    P.write_file(conf, fill(DANTE_CONF, {
      DIR = h.dir, PORT = tostring(h.port), BLOCKS = table.concat(blocks, "\n"),
      METHOD = opts.auth and "username" or "none" }))
    h.logfile = h.dir .. "/dante.log"
    local cmd = ("/usr/sbin/danted -f %s -N 1"):format(P.q(conf))
    local files = {}
    if opts.hosts then
      local lines = { "127.0.0.1 localhost\n" }
      for name, addr in pairs(opts.hosts) do lines[#lines + 1] = addr .. " " .. name .. "\n" end
      P.write_file(h.dir .. "/hosts", table.concat(lines), "0644")
      files["/etc/hosts"] = h.dir .. "/hosts"
    end
    if opts.auth then
      local u, pw = opts.auth.user, opts.auth.password
      assert(u:match("^[%w_-]+$") and not pw:find("[\n:]"), "unusable test credentials")
      local hash = P.run("printf '%s\\n' " .. P.q(pw) .. " | openssl passwd -6 -stdin"):gsub("%s+$", "")
      P.write_file(h.dir .. "/passwd", (P.read_file("/etc/passwd") or "")
        .. u .. ":x:64999:65534:lua-smtp proxy test:/nonexistent:/usr/sbin/nologin\n", "0644")
      P.write_file(h.dir .. "/shadow", u .. ":" .. hash .. ":19000:0:99999:7:::\n", "0600")
      files["/etc/passwd"] = h.dir .. "/passwd"
      files["/etc/shadow"] = h.dir .. "/shadow"
    end
    if next(files) then cmd = M.in_namespace(files, cmd) end
    return cmd
  end)
end

--------------------------------------------------------------- tinyproxy

local TINYPROXY_CONF = [[
# Private tinyproxy for lua-smtp's proxy specs (spec/helpers/proxies.lua).
User nobody
Group nogroup
Port @PORT@
Listen 127.0.0.1
Timeout 30
LogFile "@DIR@/tinyproxy.log"
LogLevel Info
MaxClients 20
Allow 127.0.0.1
DisableViaHeader Yes
@EXTRA@
]]

function M.tinyproxy(opts)
  opts = opts or {}
  return start("tinyproxy", function(h)
    local extra = {}
    if opts.auth then
      assert(not (opts.auth.user .. opts.auth.password):find("[%s\"]"), "unusable test credentials")
      extra[#extra + 1] = ("BasicAuth %s %s"):format(opts.auth.user, opts.auth.password)
    end
    for _, port in ipairs(opts.connect_ports or {}) do
      extra[#extra + 1] = "ConnectPort " .. port
    end
    local conf = h.dir .. "/tinyproxy.conf"
    P.write_file(conf, fill(TINYPROXY_CONF, { DIR = h.dir, PORT = tostring(h.port),
      EXTRA = table.concat(extra, "\n") }))
    -- tinyproxy drops to 'nobody' before it opens its log.
    P.write_file(h.dir .. "/tinyproxy.log", "", "0666")
    h.logfile = h.dir .. "/tinyproxy.log"
    return ("/usr/bin/tinyproxy -d -c %s"):format(P.q(conf))
  end)
end

---------------------------------------------------- misbehaving peers

-- MODE stall: accept nothing and say nothing (the kernel still completes
-- the TCP handshake, so the client's connect succeeds and then waits).
-- MODE blackhole: a full accept queue; later SYNs are dropped and
-- connects hang. Exits when the Lua process that started it is gone.
local PEER_PY = [[
import os, socket, sys, time
mode, host, port, watch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.bind((host, port))
s.listen(0 if mode == "blackhole" else 8)
fill = []
if mode == "blackhole":
    for _ in range(4):
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex((host, s.getsockname()[1]))
        fill.append(c)
        time.sleep(0.05)
if mode.startswith("fake"):
    s.settimeout(0.5)
print("ready", s.getsockname()[1], flush=True)
while os.path.exists("/proc/%d" % watch):
    if not mode.startswith("fake"):
        time.sleep(0.5)
        continue
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.settimeout(10)
    f = c.makefile("rb")
    req = b""
    if mode == "fake_socks":
        head = f.read(2); methods = f.read(head[1]); req += head + methods
        if 2 in methods:
            c.sendall(b"\x05\x02")
            a = f.read(2); u = f.read(a[1]); pl = f.read(1); pw = f.read(pl[0])
            req += a + u + pl + pw
            c.sendall(b"\x01\x00")
        else:
            c.sendall(b"\x05\x00")
        r = f.read(4); req += r
        n = {1: 4, 4: 16}.get(r[3])
        if n is None:
            ln = f.read(1); req += ln; n = ln[0]
        req += f.read(n + 2)
        reply = b"\x05\x00\x00\x03\x09localhost\x00\x19"
    else:
        while not req.endswith(b"\r\n\r\n"):
            b = f.read(1)
            if not b:
                break
            req += b
        reply = b"HTTP/1.1 200 Connection established\r\nX-Test: " + b"y" * int(sys.argv[5]) + b"\r\n\r\n"
    with open(sys.argv[6] + ".tmp", "wb") as out:
        out.write(req)
    os.rename(sys.argv[6] + ".tmp", sys.argv[6])
    # The proxy's answer and the SMTP greeting leave in one segment.
    c.sendall(reply + b"220 fake.test ESMTP\r\n")
    for line in f:
        if line.upper().startswith(b"QUIT"):
            c.sendall(b"221 bye\r\n")
            break
        c.sendall(b"250 fake.test\r\n")
    c.close()
]]

local function peer(mode, host, port, pad)
  local dir = P.tempdir(mode)
  local h = { kind = mode, dir = dir, host = host, logfile = dir .. "/log",
              request_file = dir .. "/request" }
  P.write_file(dir .. "/peer.py", PEER_PY)
  h.pid = P.spawn(("/usr/bin/python3 -u %s %s %s %d %d %d %s"):format(P.q(dir .. "/peer.py"), mode,
    P.q(host), port or 0, P.lua_pid(), pad or 0, P.q(h.request_file)), h.logfile)
  track(h)
  local ready = P.wait_for(M.STARTUP_TIMEOUT, function()
    return h:log():match("ready (%d+)") or not P.alive(h.pid)
  end)
  if type(ready) ~= "string" then
    local log = h:log()
    h:stop()
    error(mode .. " peer did not start:\n" .. log, 3)
  end
  h.port = tonumber(ready)
  return h
end

function M.stalled()
  return peer("stall", "127.0.0.1")
end

function M.blackhole(host, port)
  return peer("blackhole", host, port)
end

-- A fake proxy of 'type' ("socks5" or "http") that accepts any
-- credentials, answers success and sends the SMTP greeting in the same
-- segment as its answer; then 250 to every line, 221 to QUIT. The HTTP
-- answer carries a header of header_pad bytes. h:request() -> the bytes
-- of the client's proxy request (SOCKS: greeting, auth, request).
function M.fake(type, header_pad)
  local h = peer(type == "http" and "fake_http" or "fake_socks", "127.0.0.1", 0, header_pad)
  function h.request() return P.read_file(h.request_file) end
  return h
end

return M
