-- Real SMTP servers on loopback for the interop specs (RFC 5321, RFC 3207
-- STARTTLS, RFC 8314 implicit TLS, RFC 4954 AUTH): aiosmtpd, Postfix's
-- smtp-sink, and a private Postfix + Dovecot SASL stack delivering to a
-- Maildir. Every server runs as a child we track by PID; bounded waits.
--
--   local servers = require "helpers.servers"
--
-- servers.aiosmtpd{ host=?, port=?, tls=?, require_tls=?, implicit_tls=?,
--                   auth=?, auth_require_tls=?, pipelining=? } -> h
--   host "127.0.0.1" (or "::1"); port: default a free one; tls: true (the
--   certs.make() server certificate) or {cert=, key=} -> STARTTLS offered
--   (or TLS from the first byte with implicit_tls=true); require_tls: 530
--   until STARTTLS; auth: {{user=, password=}, ...} or {user=password}
--   -> AUTH PLAIN LOGIN, allowed before TLS unless auth_require_tls;
--   pipelining: also advertise PIPELINING (aiosmtpd handles pipelined
--   commands but does not announce it). SMTPUTF8, 8BITMIME and SIZE are
--   advertised as aiosmtpd does by default.
--   h.host, h.port, h.pid, h.dir, h.logfile
--   h:messages() -> { {mail_from=, rcpt_tos={...}, data=<bytes after
--     dot-unstuffing, line ends as received>, mail_options={...},
--     rcpt_options={...}, tls=<"TLSv1.3 CIPHER"|nil>, auth=<login|nil>}, ...}
--     stored before the server answers 250 to the final dot
--   h:wait_messages(n, timeout=10) -> list with >= n entries, or nil, err
--   h:log() -> server stderr; h:stop() (idempotent)
--
-- servers.smtp_sink{ port=?, options=? } -> h
--   smtp-sink on 127.0.0.1 (PIPELINING, 8BITMIME, ... advertised; options:
--   extra flags, e.g. {"-p"} to hide PIPELINING). Runs with -u postfix:
--   smtp-sink refuses to run as root without -u.
--   h.host, h.port, h.pid; h:count() -> messages accepted ("." answered)
--   so far; h:wait_count(n, timeout=10) -> count or nil, err; h:stop()
--
-- servers.dovecot{ users=? } -> h: Dovecot auth service only, passwd-file
--   with {PLAIN} passwords; PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1
--   SCRAM-SHA-256 (plaintext mechanisms allowed without TLS; no failure
--   delay or auth penalty). users default servers.USERS (carol's password
--   is UTF-8).
--   h.auth_socket, h.users, h.pid, h:log(), h:stop()
--
-- servers.postfix{ dovecot=?, certs=?, tls=?, recipients=?, main=? } -> h
--   Private Postfix (own config, queue and Maildir under a temp dir):
--   h.ports.plain    no STARTTLS; AUTH offered (if dovecot) without TLS
--   h.ports.starttls STARTTLS; AUTH only after it (smtpd_tls_auth_only)
--   h.ports.smtps    implicit TLS (smtpd_tls_wrappermode); AUTH
--   PIPELINING, CHUNKING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES on.
--   Recipients: <user>@example.test for each dovecot user (default
--   alice, bob, carol), others at example.test get 550 5.1.1, other
--   domains 554 5.7.1 (no relaying, even after AUTH). main: extra main.cf
--   settings {name = value}. tls = {cert=, key=} replaces the server
--   certificate (default certs.server_cert, e.g. c.expired_cert).
--   pickup = true also runs pickup(8), so that Postfix's own sendmail
--   (`/usr/sbin/sendmail -C h.config_dir`) delivers into the instance. Needs
--   root (the master runs as root, daemons as the postfix user).
--   h:messages([mailbox]) -> deliveries in order, each {mailbox=, file=,
--     raw=<Maildir file>, added=<headers Postfix prepended: Return-Path,
--     X-Original-To, Delivered-To, its Received>, body=<raw minus added,
--     LF line ends as stored>, data=<body with LF -> CRLF: the DATA
--     bytes after dot-unstuffing>, mail_from=, rcpt_to=}. Postfix
--     inserts an empty line before a body that has no header section.
--   h:wait_messages(n, timeout=10, [mailbox]); h:log() -> maillog text;
--   h:stop() (terminates the master's process group)
--
-- servers.mail_stack{ users=?, recipients=?, main=?, tls=? } -> s: certs +
--   dovecot + postfix: s.certs, s.dovecot, s.postfix, s.host, s.ports,
--   s.users, s.domain, s:messages(...), s:wait_messages(...), s:stop()
--
-- servers.stop_all(): stops everything this Lua process started. Also run
-- when this module is garbage-collected / the Lua state closes (busted
-- exits with os.exit(code, true)), and every server has a watchdog that
-- stops it if this Lua process dies.
local P = require "helpers.proc"
local certs = require "helpers.certs"

local M = {}

M.DOMAIN = "example.test"
M.USERS = {
  { user = "alice", password = "alice-Secret-1" },
  { user = "bob", password = "bob-Secret-2" },
  { user = "carol", password = "p\195\164ssw\195\182rd-\226\130\172" }, -- "pässwörd-€" (5.1 has no \x)
}
M.STARTUP_TIMEOUT = 10

local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
if HERE:sub(1, 1) ~= "/" then HERE = P.run("pwd"):gsub("\n$", "") .. "/" .. HERE end

-- Everything running, so stop_all() and the __gc safety net find it.
local running = {}

local Server = {}
Server.__index = Server

local function track(h)
  running[h] = true
  return setmetatable(h, Server)
end

function Server:log()
  return P.read_file(self.logfile) or ""
end

-- Sends SIGTERM to a server (first phase of stopping; no wait).
local function signal_stop(h)
  if h.stopped then return false end
  h.stopped = true
  running[h] = nil
  if h.stop_hook then h:stop_hook() end
  if h.pid then P.kill(h.pid, "TERM") end
  return true
end

-- Waits (bounded) for a signalled server to exit, then SIGKILLs
-- stragglers and its watchdog.
local function finish_stop(h)
  if h.pid then P.terminate(h.pid, 5) end
  for _, pid in ipairs(h.children or {}) do P.terminate(pid, 2) end
  if h.watchdog then P.terminate(h.watchdog, 1) end
end

-- Stops several servers in parallel (Dovecot takes about a second).
local function stop_many(list)
  local signalled = {}
  for _, h in ipairs(list) do
    if signal_stop(h) then signalled[#signalled + 1] = h end
  end
  for _, h in ipairs(signalled) do pcall(finish_stop, h) end
end

-- Idempotent. Terminates the server and its watchdog; files stay (they
-- are removed with the scratch directory when this Lua process exits).
function Server:stop()
  stop_many({ self })
end

function M.stop_all()
  local list = {}
  for h in pairs(running) do list[#list + 1] = h end
  stop_many(list)
end

-- Safety net: runs when the module is collected or the state closes.
local sentinel = setmetatable({}, { __gc = function() M.stop_all() end })
Server.sentinel = sentinel

local function fail_start(h, what)
  local log = h:log()
  h:stop()
  error(("%s did not start within %ds\n%s"):format(what,
    M.STARTUP_TIMEOUT, log), 3)
end

local function user_list(auth)
  local list = {}
  if auth[1] then
    for _, u in ipairs(auth) do list[#list + 1] = { u.user, u.password } end
  else
    for k, v in pairs(auth) do list[#list + 1] = { k, v } end
  end
  return list
end

local function need_root(what)
  if P.run("id -u"):match("^(%d+)") ~= "0" then
    error(what .. " needs root (tests run as root in CI)", 3)
  end
end

local function tls_files(tls)
  if tls == true then
    local c = certs.make()
    return c.server_cert, c.server_key
  end
  return assert(tls.cert, "tls.cert"), assert(tls.key, "tls.key")
end

---------------------------------------------------------------- aiosmtpd

local function parse_meta(s)
  local m = { rcpt_tos = {}, mail_options = {}, rcpt_options = {} }
  for line in s:gmatch("[^\n]+") do
    local k, v = line:match("^(%S+) ?(.*)$")
    if k == "mail_from" then m.mail_from = v
    elseif k == "rcpt_to" then table.insert(m.rcpt_tos, v)
    elseif k == "mail_option" then table.insert(m.mail_options, v)
    elseif k == "rcpt_option" then table.insert(m.rcpt_options, v)
    elseif k == "tls" then m.tls = v
    elseif k == "auth" then m.auth = v
    elseif k == "peer" then m.peer = v
    end
  end
  return m
end

local function aiosmtpd_messages(self)
  local list = {}
  for n = 1, math.huge do
    local base = self.outdir .. "/" .. n
    if not P.exists(base .. ".done") then break end
    local m = parse_meta(P.read_file(base .. ".meta"))
    m.data = P.read_file(base .. ".eml")
    list[n] = m
  end
  return list
end

local function wait_messages(self, n, timeout, ...)
  local args = { ... }
  local list
  local ok, err = P.wait_for(timeout or 10, function()
    list = self:messages((table.unpack or unpack)(args))
    return #list >= n
  end)
  if not ok then
    return nil, ("%s: %d message(s) after %ss, wanted %d (%s)")
      :format(self.kind, #list, timeout or 10, n, err)
  end
  return list
end

function M.aiosmtpd(opts)
  opts = opts or {}
  local dir = P.tempdir("aiosmtpd")
  local h = { kind = "aiosmtpd", dir = dir, outdir = dir .. "/out",
              host = opts.host or "127.0.0.1", logfile = dir .. "/log",
              messages = aiosmtpd_messages, wait_messages = wait_messages }
  P.run("mkdir " .. P.q(h.outdir))
  local args = { P.q(HERE .. "/aiosmtpd_server.py"), P.q(h.outdir),
                 "--host", P.q(h.host), "--port", tostring(opts.port or 0),
                 "--watch-pid", tostring(P.lua_pid()) }
  local function add(...) for _, a in ipairs({ ... }) do args[#args + 1] = a end end
  if opts.tls or opts.implicit_tls then
    local cert, key = tls_files(opts.tls or true)
    add("--cert", P.q(cert), "--key", P.q(key))
    if opts.implicit_tls then add("--implicit-tls") end
    if opts.require_tls then add("--require-tls") end
  end
  if opts.auth then
    local lines = {}
    for _, u in ipairs(user_list(opts.auth)) do
      assert(not (u[1] .. u[2]):find("[\t\n]"), "tab or newline in credentials")
      lines[#lines + 1] = u[1] .. "\t" .. u[2] .. "\n"
    end
    P.write_file(dir .. "/users", table.concat(lines))
    add("--auth-file", P.q(dir .. "/users"))
    if opts.auth_require_tls then add("--auth-require-tls") end
  end
  if opts.pipelining then add("--pipelining") end
  local pid = P.spawn("/usr/bin/python3 -u " .. table.concat(args, " "), h.logfile)
  h.pid = pid
  track(h)
  local ready = P.wait_for(M.STARTUP_TIMEOUT, function()
    return P.read_file(h.outdir .. "/ready") or not P.alive(pid)
  end)
  if type(ready) ~= "string" then fail_start(h, "aiosmtpd") end
  local port, spid = ready:match("^(%d+) (%d+)")
  h.port, h.pid = tonumber(port), tonumber(spid)
  return h
end

--------------------------------------------------------------- smtp-sink

function M.smtp_sink(opts)
  opts = opts or {}
  local last
  for _ = 1, 3 do -- a free port can be taken before smtp-sink binds it
    local dir = P.tempdir("smtp-sink")
    local h = { kind = "smtp-sink", dir = dir, host = "127.0.0.1",
                port = opts.port or P.free_port(), logfile = dir .. "/log" }
    local flags = { "-c", "-u", "postfix" }
    for _, o in ipairs(opts.options or {}) do flags[#flags + 1] = P.q(o) end
    h.pid = P.spawn(("/usr/sbin/smtp-sink %s 127.0.0.1:%d 128")
      :format(table.concat(flags, " "), h.port), h.logfile)
    h.watchdog = P.watchdog("kill " .. h.pid, h.pid)
    track(h)
    local up = P.wait_for(M.STARTUP_TIMEOUT, function()
      return P.listening(h.port) or not P.alive(h.pid)
    end)
    if up and P.alive(h.pid) then
      function h:count()
        -- -c prints "sess=N quit=N mesg=N\r" after each "." and session.
        local n = 0
        for m in self:log():gmatch("mesg=(%d+)") do n = tonumber(m) end
        return n
      end
      function h:wait_count(n, timeout)
        local ok = P.wait_for(timeout or 10, function() return self:count() >= n end)
        if not ok then return nil, ("smtp-sink: %d of %d messages"):format(self:count(), n) end
        return self:count()
      end
      return h
    end
    last = h:log()
    h:stop()
    if opts.port then break end
  end
  error("smtp-sink did not start:\n" .. tostring(last), 2)
end

----------------------------------------------------------------- dovecot

local DOVECOT_CONF = [[
# Private Dovecot: the auth service only, for Postfix's SASL (smtpd_sasl_type
# = dovecot). Generated by spec/helpers/servers.lua.
protocols =
base_dir = @DIR@/run
state_dir = @DIR@/state
instance_name = lua-smtp-test-@N@
log_path = @DIR@/dovecot.log
info_log_path = @DIR@/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 digest-md5 scram-sha-1 scram-sha-256
auth_failure_delay = 0
auth_verbose = yes
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u @DIR@/passwd
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
service auth {
  unix_listener @DIR@/auth-client {
    mode = 0666
  }
}
# Tests fail logins on purpose: an unreachable penalty socket disables the
# per-IP auth penalty (delays growing to 15 s for 127.0.0.1).
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
]]

local function fill(template, vars)
  return (template:gsub("@(%w+)@", function(k) return assert(vars[k], k) end))
end

function M.dovecot(opts)
  opts = opts or {}
  need_root("servers.dovecot")
  local dir = P.tempdir("dovecot")
  local users = opts.users or M.USERS
  local lines = {}
  for _, u in ipairs(users) do
    assert(not (u.user .. u.password):find("[:\n]"), "':' or newline in a dovecot user")
    lines[#lines + 1] = ("%s:{PLAIN}%s::::::\n"):format(u.user, u.password)
  end
  P.write_file(dir .. "/passwd", table.concat(lines), "0644")
  P.write_file(dir .. "/dovecot.conf", fill(DOVECOT_CONF,
    { DIR = dir, N = dir:match("(%d+)$") .. "-" .. P.lua_pid() }), "0644")
  local h = { kind = "dovecot", dir = dir, users = users,
              auth_socket = dir .. "/auth-client", logfile = dir .. "/dovecot.log",
              stdout = dir .. "/stdout" }
  h.pid = P.spawn("/usr/sbin/dovecot -F -c " .. P.q(dir .. "/dovecot.conf"), h.stdout)
  h.watchdog = P.watchdog("kill " .. h.pid, h.pid)
  track(h)
  local up = P.wait_for(M.STARTUP_TIMEOUT, function()
    return P.unix_listening(h.auth_socket) or not P.alive(h.pid)
  end)
  if not (up and P.alive(h.pid)) then
    h.logfile = h.stdout
    fail_start(h, "dovecot")
  end
  return h
end

----------------------------------------------------------------- postfix

local MAIN_CF = [[
# Private Postfix for the lua-smtp interop tests (spec/helpers/servers.lua).
compatibility_level = 3.6
queue_directory = @DIR@/queue
data_directory = @DIR@/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = /dev/stdout
myhostname = mail.example.test
mydomain = example.test
myorigin = $myhostname
mydestination =
mynetworks = 192.0.2.1/32
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# Remote clients: no header rewriting, no added Date/Message-ID, so the
# delivered body is what the client sent.
local_header_rewrite_clients =
relay_domains =
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:no external delivery in tests
alias_maps =
alias_database =
virtual_mailbox_domains = example.test
virtual_mailbox_base = @DIR@/mail
virtual_mailbox_maps = texthash:@DIR@/conf/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_sasl_auth_enable = @SASL@
smtpd_sasl_type = dovecot
smtpd_sasl_path = @SASLPATH@
smtpd_sasl_authenticated_header = yes
smtpd_tls_chain_files = @KEY@, @CERT@
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtputf8_enable = yes
# Tests make many errors on purpose: no penalty delays.
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_junk_command_limit = 100000
biff = no
]]

local MASTER_CF = [[
127.0.0.1:@PLAIN@ inet n - n - - smtpd
  -o smtpd_tls_security_level=none
127.0.0.1:@STARTTLS@ inet n - n - - smtpd
  -o smtpd_tls_security_level=may
  -o smtpd_tls_auth_only=yes
127.0.0.1:@SMTPS@ inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
]]

-- Local submission (Postfix's own sendmail -> postdrop -> maildrop/):
-- only instances that ask for it (opts.pickup) run the pickup daemon.
local PICKUP_CF = "pickup    unix  n       -       n       60      1       pickup\n"

-- The queue layout `postfix check` would create (postfix-files), made
-- directly: `postfix check` takes seconds.
local QUEUE_DIRS = {
  { "active", "postfix", "0700" }, { "bounce", "postfix", "0700" },
  { "corrupt", "postfix", "0700" }, { "defer", "postfix", "0700" },
  { "deferred", "postfix", "0700" }, { "flush", "postfix", "0700" },
  { "hold", "postfix", "0700" }, { "incoming", "postfix", "0700" },
  { "private", "postfix", "0700" }, { "saved", "postfix", "0700" },
  { "trace", "postfix", "0700" }, { "maildrop", "postfix:postdrop", "0730" },
  { "public", "postfix:postdrop", "0710" }, { "pid", "root", "0755" },
}

local POSTFIX_ADDED = { ["return-path"] = true, ["x-original-to"] = true,
                        ["delivered-to"] = true }

-- Splits the headers Postfix prepended (virtual(8): Return-Path,
-- X-Original-To, Delivered-To; smtpd: one Received) from the message.
local function split_added(raw)
  local pos, received = 1, false
  while true do
    local name, stop = raw:match("^([%w%-]+):[^\n]*\n()", pos)
    if not name then break end
    while raw:find("^[ \t][^\n]*\n", stop) do
      stop = raw:match("^[ \t][^\n]*\n()", stop)
    end
    local lname = name:lower()
    if POSTFIX_ADDED[lname] then
      pos = stop
    elseif lname == "received" and not received
        and raw:sub(pos, stop - 1):find("(Postfix)", 1, true) then
      received, pos = true, stop
    else
      break
    end
  end
  return raw:sub(1, pos - 1), raw:sub(pos)
end

local function postfix_messages(self, mailbox)
  local base = self.dir .. "/mail/" .. M.DOMAIN
  local pattern = P.q(base) .. "/" .. (mailbox and P.q(mailbox) or "*") .. "/new/*"
  local out = P.run("for f in " .. pattern .. "; do [ -f \"$f\" ] && echo \"$f\"; done; true")
  local files = {}
  for f in out:gmatch("[^\n]+") do
    local name = f:match("([^/]+)$")
    local sec, usec = name:match("^(%d+)%.[^.]-M(%d+)")
    files[#files + 1] = { path = f, sec = tonumber(sec) or 0, usec = tonumber(usec) or 0,
                          mailbox = f:match("/([^/]+)/new/[^/]+$") }
  end
  table.sort(files, function(a, b)
    if a.sec ~= b.sec then return a.sec < b.sec end
    if a.usec ~= b.usec then return a.usec < b.usec end
    return a.path < b.path
  end)
  local list = {}
  for i, f in ipairs(files) do
    local raw = P.read_file(f.path) or ""
    local added, body = split_added(raw)
    list[i] = { mailbox = f.mailbox, file = f.path, raw = raw, added = added,
                body = body, data = body:gsub("\n", "\r\n"),
                mail_from = added:match("^Return%-Path: <([^>\n]*)>")
                  or added:match("\nReturn%-Path: <([^>\n]*)>"),
                rcpt_to = added:match("Delivered%-To: ([^\n]*)") }
  end
  return list
end

local function postfix_stop_hook(self)
  -- The master passes SIGTERM to its process group; note its children
  -- first so that stragglers can still be terminated by PID.
  self.children = P.children(self.pid)
end

function M.postfix(opts)
  opts = opts or {}
  need_root("servers.postfix")
  local c = opts.certs or certs.make()
  local recipients = opts.recipients
  if not recipients then
    recipients = {}
    for _, u in ipairs((opts.dovecot and opts.dovecot.users) or M.USERS) do
      recipients[#recipients + 1] = u.user .. "@" .. M.DOMAIN
    end
  end
  local last
  for _ = 1, 3 do -- free ports can be taken before the master binds them
    local dir = P.tempdir("postfix")
    local h = { kind = "postfix", dir = dir, host = "127.0.0.1",
                logfile = dir .. "/maillog", config_dir = dir .. "/conf",
                ports = { plain = P.free_port(), starttls = P.free_port(),
                          smtps = P.free_port() },
                messages = postfix_messages, wait_messages = wait_messages,
                stop_hook = postfix_stop_hook, recipients = recipients }
    h.queue_dir = dir .. "/queue"
    P.run(("mkdir -m 0755 %s/conf %s/queue && mkdir -m 0700 %s/data %s/mail"
      .. " && chown postfix %s/data && chown nobody:nogroup %s/mail")
      :format(P.q(dir), P.q(dir), P.q(dir), P.q(dir), P.q(dir), P.q(dir)))
    local cmds = {}
    for _, d in ipairs(QUEUE_DIRS) do
      local p = P.q(h.queue_dir .. "/" .. d[1])
      cmds[#cmds + 1] = ("mkdir -m %s %s && chown %s %s"):format(d[3], p, d[2], p)
    end
    P.run(table.concat(cmds, " && "))
    local vmap = {}
    for _, r in ipairs(recipients) do
      local user = assert(r:match("^([^@]+)@" .. M.DOMAIN:gsub("%p", "%%%0") .. "$"),
        "recipients must be at " .. M.DOMAIN)
      vmap[#vmap + 1] = ("%s %s/%s/\n"):format(r, M.DOMAIN, user)
    end
    P.write_file(h.config_dir .. "/vmailbox", table.concat(vmap), "0644")
    local cert, key = c.server_cert, c.server_key
    if opts.tls then cert, key = tls_files(opts.tls) end
    local main = fill(MAIN_CF, {
      DIR = dir, KEY = key, CERT = cert,
      SASL = opts.dovecot and "yes" or "no",
      SASLPATH = opts.dovecot and opts.dovecot.auth_socket or "smtpd",
    })
    for k, v in pairs(opts.main or {}) do main = main .. k .. " = " .. v .. "\n" end
    P.write_file(h.config_dir .. "/main.cf", main, "0644")
    P.write_file(h.config_dir .. "/master.cf", fill(MASTER_CF, {
      PLAIN = h.ports.plain, STARTTLS = h.ports.starttls, SMTPS = h.ports.smtps,
    }) .. (opts.pickup and PICKUP_CF or ""), "0644")
    -- Postfix re-reads a configuration file until it is over a second old
    -- (dict_load_file: 300 ms naps), which would add ~2 s to each start.
    P.run("touch -d 2000-01-01 " .. P.q(h.config_dir) .. "/*")
    -- -s keeps stdout, where maillog_file = /dev/stdout sends the log;
    -- without -d the master is a process group leader, so SIGTERM reaches
    -- every Postfix process.
    h.pid = P.spawn("/usr/lib/postfix/sbin/master -s -c " .. P.q(h.config_dir), h.logfile)
    h.watchdog = P.watchdog("kill " .. h.pid, h.pid)
    track(h)
    local up = P.wait_for(M.STARTUP_TIMEOUT, function()
      if not P.alive(h.pid) then return "dead" end
      return P.listening(h.ports.plain) and P.listening(h.ports.starttls)
        and P.listening(h.ports.smtps)
    end, 0.02)
    if up == true then
      function h:log() return P.read_file(self.logfile) or "" end
      return h
    end
    last = h:log()
    h:stop()
  end
  error("postfix did not start (the master logs early fatal errors only"
    .. " to syslog):\n" .. tostring(last), 2)
end

-------------------------------------------------------------- mail_stack

local Stack = {}
Stack.__index = Stack
function Stack:messages(...) return self.postfix:messages(...) end
function Stack:wait_messages(...) return self.postfix:wait_messages(...) end
function Stack:stop()
  stop_many({ self.postfix, self.dovecot })
end

function M.mail_stack(opts)
  opts = opts or {}
  local s = setmetatable({ certs = certs.make(), users = opts.users or M.USERS,
                           domain = M.DOMAIN }, Stack)
  s.dovecot = M.dovecot({ users = s.users })
  local ok, err = pcall(function()
    s.postfix = M.postfix({ dovecot = s.dovecot, certs = s.certs,
                            recipients = opts.recipients, main = opts.main,
                            tls = opts.tls })
  end)
  if not ok then
    s.dovecot:stop()
    error(err, 2)
  end
  s.host, s.ports = s.postfix.host, s.postfix.ports
  return s
end

return M
