-- `make bench` (issue 6): lua-smtp side by side with smtp-source, Python
-- smtplib, LuaSocket and curl on loopback, in interleaved rounds, medians.
--   S1 N x 1 KB over one connection    S2 N connections, one message each
--   S3 one 100 MiB text message, one 50 MiB attachment (base64), peak RSS,
--      raw loopback TCP and the sink's own ceiling in the same run
--   S4 S1 and S3 over implicit TLS (stunnel4 in front of smtp-sink)
--   S5 reply waits and writes per message, counted with strace
--   S6 S1 through smtp.pool over 3 relays (smtp-sinks), next to one connection
--   S7 TLS handshakes (issue 16): N messages, a fresh STARTTLS connection
--      each, to a private Postfix smtpd; lua-smtp with one shared
--      tls_config (resumption) and with session_cache = false, under the
--      default build (vendored mbedTLS 3.6) and the system 2.28 one; curl,
--      one process per message
--   S8 S4's big message over implicit TLS (issue 26): the default build,
--      the system 2.28 one and curl
--   S11 lua-smtp inside nginx (issue 27): TLS bulk and full handshakes over
--      a cosocket, lua-smtp's own TLS vs nginx's sslhandshake (tls_engine
--      = "host"), one HTTP request per run (bench/peers/nginx/); skipped
--      without nginx's lua module. Needs the LuaJIT build (make build-luajit).
--   S10 full TLS handshakes (issue 26): a fresh connection each, implicit
--      TLS + greeting + EHLO + QUIT to stunnel4 -> smtp-sink, certificate
--      chain and name checked: lua-smtp (session_cache = false, and a
--      shared tls_config that resumes) under both builds, Python ssl and
--      LuaSocket + LuaSec in-process (OpenSSL 3.0); S10 with an RSA-2048
--      server certificate, S10b with ECDSA P-256. Times are each client's
--      own (bench/peers/handshake_peer.*): no interpreter start-up.
--   S9 event loops (issue 24): BENCH_S9_SESSIONS (100) sessions of
--      BENCH_S9_PER (10) messages each to a server that answers every
--      command 20 ms late (bench/peers/slow_smtp.py): one session after
--      another (blocking) against all at once in one thread (cqueues, luv);
--      BENCH_S9_ROUNDS (1: its blocking row takes about 45 s)
-- BENCH_BEFORE: another checkout of lua-smtp with its own build/ (e.g. a
-- git worktree of the previous commit): S1, S3 and S4 get a row for it,
-- so "before" and "after" come from the same run.
-- Run from the repository root: lua5.4 bench/run.lua <build dir>.
-- Environment: BENCH_ROUNDS (7), BENCH_S1 (2000), BENCH_S2 (500),
-- BENCH_S3_MB (100), BENCH_ATT_MB (50), BENCH_S5 (500), BENCH_S7 (200),
-- BENCH_S7_ROUNDS (3: S7 runs in the first rounds only, its rows are slow),
-- BENCH_S10 (300 handshakes a run), BENCH_BUILD_SYSTEM (the system
-- mbedTLS 2.28 build dir, build/system; its rows are skipped without its
-- smtp/core.so), BENCH_MAX_SECONDS
-- (540: no new round starts after that), BENCH_OUT (bench/RESULTS.md),
-- BENCH_ONLY (scenario ids to run, e.g. "S1,S3,S5"; default all: a partial
-- run is for development and leaves the other rows empty), BENCH_MERGE
-- (1: a BENCH_ONLY run replaces only its own sections and round lines in
-- BENCH_OUT, default bench/RESULTS.md, and leaves the rest as it was).
local BUILD = arg[1] or os.getenv("SMTP_BUILD") or "build"
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = BUILD .. "/?.so;" .. package.cpath

local P = require "helpers.proc"
local servers = require "helpers.servers"
local core = require "smtp.core"

local function env_num(name, default)
  return tonumber(os.getenv(name) or "") or default
end

local ROUNDS = env_num("BENCH_ROUNDS", 7)
local N1 = env_num("BENCH_S1", 2000)
local N2 = env_num("BENCH_S2", 500)
local S3_MB = env_num("BENCH_S3_MB", 100)
local ATT_MB = env_num("BENCH_ATT_MB", 50)
local N5 = env_num("BENCH_S5", 500)
local N7 = env_num("BENCH_S7", 200)
local S9_SESSIONS = env_num("BENCH_S9_SESSIONS", 100)
local S9_PER = env_num("BENCH_S9_PER", 10)
local S9_ROUNDS = env_num("BENCH_S9_ROUNDS", 1)
local S7_ROUNDS = env_num("BENCH_S7_ROUNDS", 3)
local MAX_SECONDS = env_num("BENCH_MAX_SECONDS", 540)
local ONLY = os.getenv("BENCH_ONLY")
-- A partial run never overwrites the committed results by default.
local MERGE = os.getenv("BENCH_MERGE") == "1" and (ONLY or "") ~= ""
local OUT = os.getenv("BENCH_OUT") or (((ONLY or "") == "" or MERGE) and "bench/RESULTS.md" or nil)
local function selected(id)
  if not ONLY or ONLY == "" then return true end
  for want in ONLY:gmatch("[^,%s]+") do
    if want == id then return true end
  end
  return false
end
local PY = "/usr/bin/python3"
local FROM, TO = "bench@example.test", "sink@example.test"

local q = P.q
local started = core.now()
local work = P.tempdir("bench")
OUT = OUT or (work .. "/RESULTS.md")
local root = P.run("pwd"):gsub("\n$", "")
-- The environment of a lua-smtp client: Lua modules from lua/, the C
-- core from the given build dir (BUILD: the vendored mbedTLS 3.6).
local function luaenv(build)
  return ("env LUA_PATH=%s LUA_CPATH=%s "):format(
    q(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"), q(root .. "/" .. build .. "/?.so;;"))
end
local LUAENV = luaenv(BUILD)
-- The system mbedTLS 2.28 build (issue 26), for the 2.28 rows of S7, S8, S10.
local BUILD_SYS = os.getenv("BENCH_BUILD_SYSTEM") or "build/system"
local LUAENV_SYS = P.exists(BUILD_SYS .. "/smtp/core.so") and luaenv(BUILD_SYS) or nil
if not LUAENV_SYS then
  io.stderr:write(("bench: no system mbedTLS 2.28 build in %s (make MBEDTLS=system): its rows are left out\n")
    :format(BUILD_SYS))
end
local N10 = env_num("BENCH_S10", 300)

local function log(fmt, ...)
  io.stderr:write(("[bench %5.1fs] "):format(core.now() - started), fmt:format(...), "\n")
end

---------------------------------------------------------------- inputs

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
  return path
end

local HEAD = ("From: %s\r\nTo: %s\r\nSubject: bench\r\nMessage-ID: <bench@example.test>\r\n\r\n")
  :format(FROM, TO)

-- 1 KB message: the header block plus 16 lines of 62 letters (1024 bytes).
local line64 = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"):sub(1, 62) .. "\r\n"
local MSG1K = write(work .. "/msg1k.eml", HEAD .. line64:rep(16))

-- Big text message: 78-byte CRLF lines (no leading dots, so the sink
-- ceiling can replay it as is), S3_MB MiB in total.
local function make_big(path, mib)
  local f = assert(io.open(path, "wb"))
  f:write(HEAD)
  local l = ("The quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOPQRSTU\r\n")
  assert(#l == 78)
  local block = l:rep(13443) -- ~1 MiB
  local left = mib * 1048576 - #HEAD
  while left >= #block do f:write(block); left = left - #block end
  local lines = left // 78
  f:write(l:rep(lines))
  f:close()
  return path
end
log("generating inputs in %s", work)
local BIG = make_big(work .. "/big.eml", S3_MB)
local ATT = work .. "/attachment.bin"
P.run(("head -c %d /dev/urandom > %s"):format(ATT_MB * 1048576, q(ATT)))

local function size_of(path)
  local f = assert(io.open(path, "rb"))
  local n = f:seek("end")
  f:close()
  return n
end
local BIG_SIZE, ATT_SIZE = size_of(BIG), size_of(ATT)

---------------------------------------------------------------- servers

local sink_port, sink_pid
for _ = 1, 3 do
  sink_port = P.free_port()
  -- No -c: the counter would cost the sink one write per message.
  sink_pid = P.spawn(("/usr/sbin/smtp-sink -u postfix 127.0.0.1:%d 256"):format(sink_port),
    work .. "/sink.log")
  P.watchdog("kill " .. sink_pid, sink_pid)
  if P.wait_for(10, function() return P.listening(sink_port) or not P.alive(sink_pid) end)
    and P.alive(sink_pid) then break end
  P.terminate(sink_pid, 2)
  sink_pid = nil
end
assert(sink_pid, "smtp-sink did not start: " .. (P.read_file(work .. "/sink.log") or ""))

-- S6's relay tier: two more smtp-sinks beside the first.
local function start_sink(tag)
  for _ = 1, 3 do
    local port = P.free_port()
    local pid = P.spawn(("/usr/sbin/smtp-sink -u postfix 127.0.0.1:%d 256"):format(port),
      work .. "/sink-" .. tag .. ".log")
    P.watchdog("kill " .. pid, pid)
    if P.wait_for(10, function() return P.listening(port) or not P.alive(pid) end)
      and P.alive(pid) then return port, pid end
    P.terminate(pid, 2)
  end
  error("smtp-sink " .. tag .. " did not start: " .. (P.read_file(work .. "/sink-" .. tag .. ".log") or ""))
end
local relay2_port, relay2_pid = start_sink("r2")
local relay3_port, relay3_pid = start_sink("r3")

-- S9's slow server: every reply 20 ms after its command, any number of
-- sessions at once.
local slow_port, slow_pid
do
  local portfile = work .. "/slow.port"
  slow_pid = P.spawn(("%s bench/peers/slow_smtp.py %s --delay 0.02 --max-seconds %d"):format(
    "/usr/bin/python3", q(portfile), MAX_SECONDS + 600), work .. "/slow.log")
  P.watchdog("kill " .. slow_pid, slow_pid)
  assert(P.wait_for(10, function() return tonumber(P.read_file(portfile) or "") end),
    "slow_smtp.py did not start: " .. (P.read_file(work .. "/slow.log") or ""))
  slow_port = tonumber(P.read_file(portfile))
end

-- The S3 server: bench/tools/fastsink.c (smtp-sink reads DATA line by
-- line and would measure itself; its ceiling stays in the S3 table).
-- The S1 ceiling: bench/tools/pingpong.c, one wait per message and no
-- other work, the most any client can do against a sink without CHUNKING.
local PINGPONG = BUILD .. "/bench-pingpong"
P.run(("cc -O2 -Wall -Wextra -std=c99 -o %s bench/tools/pingpong.c"):format(q(PINGPONG)))

local fast_port, fast_pid
do
  local exe = BUILD .. "/bench-fastsink"
  P.run(("cc -O2 -Wall -Wextra -std=c99 -o %s bench/tools/fastsink.c"):format(q(exe)))
  for _ = 1, 3 do
    fast_port = P.free_port()
    fast_pid = P.spawn(("%s %d"):format(q(exe), fast_port), work .. "/fastsink.log")
    P.watchdog("kill " .. fast_pid, fast_pid)
    if P.wait_for(10, function() return P.listening(fast_port) or not P.alive(fast_pid) end)
      and P.alive(fast_pid) then break end
    P.terminate(fast_pid, 2)
    fast_pid = nil
  end
  assert(fast_pid, "fastsink did not start: " .. (P.read_file(work .. "/fastsink.log") or ""))
end

-- S10's certificates: a CA and a localhost leaf it signed, one pair per
-- key type, so that every client checks a real chain and name.
local hs_pki = {}
for _, kt in ipairs({ { "rsa", "-newkey rsa:2048" }, { "ec", "-newkey ec -pkeyopt ec_paramgen_curve:P-256" } }) do
  local t, d = kt[1], work .. "/hs-" .. kt[1]
  P.run(("mkdir -p %s && cd %s && openssl req -x509 %s -nodes -days 2 -subj /CN=bench-ca-%s -keyout ca.key "
    .. "-out ca.crt -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null "
    .. "&& openssl req %s -nodes -subj /CN=localhost -keyout leaf.key -out leaf.csr 2>/dev/null "
    .. "&& printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >ext "
    .. "&& openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext "
    .. "-out leaf.crt 2>/dev/null"):format(q(d), q(d), kt[2], t, kt[2]))
  hs_pki[t] = { ca = d .. "/ca.crt", cert = d .. "/leaf.crt", key = d .. "/leaf.key" }
end

local tls_port, tls_fast_port, tunnel_pid, hs_rsa_port, hs_ec_port
local key, cert = work .. "/tls.key", work .. "/tls.crt"
do
  P.run(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
    .. "-subj /CN=localhost -keyout %s -out %s"):format(q(key), q(cert)))
  for _ = 1, 3 do
    tls_port, tls_fast_port = P.free_port(), P.free_port()
    hs_rsa_port, hs_ec_port = P.free_port(), P.free_port()
    local conf = write(work .. "/stunnel.conf", table.concat({
      "foreground = yes", "pid =", "debug = 3", "",
      "[smtps]", "accept = 127.0.0.1:" .. tls_port, "connect = 127.0.0.1:" .. sink_port,
      "cert = " .. cert, "key = " .. key, "",
      "[smtps-fast]", "accept = 127.0.0.1:" .. tls_fast_port, "connect = 127.0.0.1:" .. fast_port,
      "cert = " .. cert, "key = " .. key, "",
      "[hs-rsa]", "accept = 127.0.0.1:" .. hs_rsa_port, "connect = 127.0.0.1:" .. sink_port,
      "cert = " .. hs_pki.rsa.cert, "key = " .. hs_pki.rsa.key, "",
      "[hs-ec]", "accept = 127.0.0.1:" .. hs_ec_port, "connect = 127.0.0.1:" .. sink_port,
      "cert = " .. hs_pki.ec.cert, "key = " .. hs_pki.ec.key, "",
    }, "\n"))
    tunnel_pid = P.spawn("/usr/bin/stunnel4 " .. q(conf), work .. "/stunnel.log")
    P.watchdog("kill " .. tunnel_pid, tunnel_pid)
    if P.wait_for(10, function()
      return (P.listening(tls_port) and P.listening(tls_fast_port) and P.listening(hs_rsa_port)
        and P.listening(hs_ec_port)) or not P.alive(tunnel_pid)
    end)
      and P.alive(tunnel_pid) then break end
    P.terminate(tunnel_pid, 2)
    tunnel_pid = nil
  end
  assert(tunnel_pid, "stunnel4 did not start: " .. (P.read_file(work .. "/stunnel.log") or ""))
end
log("smtp-sink on %d (pid %d), fastsink on %d (pid %d), stunnel4 on %d and %d (pid %d)",
  sink_port, sink_pid, fast_port, fast_pid, tls_port, tls_fast_port, tunnel_pid)

-- S7's server: a private Postfix smtpd (spec/helpers/servers.lua) on its
-- STARTTLS port (smtpd_tls_security_level = may) with the certificate
-- above. Session tickets are on by default (smtpd_tls_session_cache_timeout
-- 3600 s, keys from tlsmgr); the session-ID cache is turned on too. Each
-- message goes on at once to smtp-sink (smtpd_proxy_filter): no queue
-- file, no cleanup/qmgr/delivery work beside the handshakes.
local S7_RCPT = "alice@" .. servers.DOMAIN
local s7_postfix, s7_skip
if selected("S7") then
  local ok, h = pcall(servers.postfix, {
    recipients = { S7_RCPT }, tls = { cert = cert, key = key },
    main = {
      smtpd_proxy_filter = "127.0.0.1:" .. sink_port,
      smtpd_tls_session_cache_database = "btree:${data_directory}/smtpd_scache",
      smtpd_tls_session_cache_timeout = "3600s",
      smtpd_tls_loglevel = "0",
    } })
  if ok then
    s7_postfix = h
    log("S7: Postfix smtpd (STARTTLS) on %d (master pid %d)", h.ports.starttls, h.pid)
  else
    s7_skip = "skipped: Postfix smtpd did not start: " .. tostring(h):sub(1, 300)
    log("S7 %s", s7_skip)
  end
end

---------------------------------------------------------------- clients

-- curl -K configs: one process, one connection reused for every group.
local function curl_config(name, url, count, file)
  local group = table.concat({
    ('url = "%s"'):format(url), ('mail-from = "%s"'):format(FROM),
    ('mail-rcpt = "%s"'):format(TO), ('upload-file = "%s"'):format(file),
    "silent", "show-error", "insecure", "",
  }, "\n")
  local parts = {}
  for i = 1, count do parts[i] = group end
  return write(work .. "/" .. name, table.concat(parts, "next\n"))
end
local plain_url = ("smtp://127.0.0.1:%d/bench.example.test"):format(sink_port)
local tls_url = ("smtps://127.0.0.1:%d/bench.example.test"):format(tls_port)
local CURL_S1 = curl_config("curl-s1.conf", plain_url, N1, MSG1K)
local CURL_S1_TLS = curl_config("curl-s1-tls.conf", tls_url, N1, MSG1K)
local fast_url = ("smtp://127.0.0.1:%d/bench.example.test"):format(fast_port)
local tls_fast_url = ("smtps://127.0.0.1:%d/bench.example.test"):format(tls_fast_port)
local CURL_S3 = curl_config("curl-s3.conf", fast_url, 1, BIG)
local CURL_S3_TLS = curl_config("curl-s3-tls.conf", tls_fast_url, 1, BIG)

local function lua_smtp(mode, port, count, file, tls, extra_env)
  return LUAENV .. (extra_env or "") .. ("lua5.4 bench/peers/luasmtp.lua %s 127.0.0.1 %d %d %s %s")
    :format(mode, port, count, q(file), tls and "tls" or "")
end
-- The same client from BENCH_BEFORE's checkout (its lua/, build/ and peer).
local BEFORE = os.getenv("BENCH_BEFORE")
if BEFORE == "" then BEFORE = nil end
local function lua_smtp_before(mode, port, count, file, tls)
  return ("env LUA_PATH=%s LUA_CPATH=%s lua5.4 %s %s 127.0.0.1 %d %d %s %s"):format(
    q(BEFORE .. "/lua/?.lua;" .. BEFORE .. "/lua/?/init.lua;;"), q(BEFORE .. "/build/?.so;;"),
    q(BEFORE .. "/bench/peers/luasmtp.lua"), mode, port, count, q(file), tls and "tls" or "")
end
-- S9: the event-loop client (bench/peers/loop_sessions.lua).
local function lua_sessions(mode)
  return LUAENV .. ("lua5.4 bench/peers/loop_sessions.lua %s 127.0.0.1 %d %d %d %s")
    :format(mode, slow_port, S9_SESSIONS, S9_PER, q(MSG1K))
end
local s9_clients = {
  { name = "lua-smtp, one session after another (blocking)", ref = true, cmd = lua_sessions("seq") },
}
for _, l in ipairs({ "cqueues", "luv" }) do
  if os.execute(("lua5.4 -e 'require \"%s\"' 2>/dev/null"):format(l)) == true then
    s9_clients[#s9_clients + 1] = { name = ("lua-smtp, all sessions at once, smtp.loop.%s()"):format(l),
      cmd = lua_sessions(l) }
  end
end
local function smtplib(mode, port, count, file, tls)
  return ("%s bench/peers/smtplib_peer.py %s 127.0.0.1 %d %d %s %s")
    :format(PY, mode, port, count, q(file), tls and "tls" or "")
end
local function smtp_source(flags, port)
  return ("/usr/sbin/smtp-source -s 1 -f %s -t %s -M bench.example.test %s 127.0.0.1:%d")
    :format(FROM, TO, flags, port or sink_port)
end
local curl_attach = ("curl -sS %s --mail-from %s --mail-rcpt %s -H %s -H %s -H %s -F %s")
  :format(q(fast_url), FROM, TO, q("From: " .. FROM), q("To: " .. TO), q("Subject: attachment"),
    q("=@" .. ATT .. ";type=application/octet-stream;encoder=base64"))

-- S7: N7 fresh STARTTLS connections, one message each, to Postfix.
local s7_port = s7_postfix and s7_postfix.ports.starttls or 0
local function lua_s7(env, cache)
  return env .. ("BENCH_RCPT=%s %slua5.4 bench/peers/luasmtp.lua starttls 127.0.0.1 %d %d %s")
    :format(S7_RCPT, cache and "" or "BENCH_SESSION_CACHE=false ", s7_port, N7, q(MSG1K))
end
-- curl: one process per message (its start-up is in the figure: one curl
-- process with N7 URLs would reuse its connection, not make N7 handshakes).
local s7_url = ("smtp://127.0.0.1:%d/bench.example.test"):format(s7_port)
local curl_one = ("curl -sS --ssl-reqd --insecure --mail-from %s --mail-rcpt %s -T %s %s")
  :format(FROM, S7_RCPT, q(MSG1K), q(s7_url))
local curl_s7 = ("sh -c %s"):format(q(("i=0; while [ $i -lt %d ]; do %s || exit 1; i=$((i+1)); done; echo ok %d 0")
  :format(N7, curl_one, N7)))
local s7_clients = {
  { name = "lua-smtp, one shared tls_config (resumption), mbedTLS 3.6", ref = true, cmd = lua_s7(LUAENV, true) },
  { name = "lua-smtp, session_cache = false (full handshakes), mbedTLS 3.6", cmd = lua_s7(LUAENV, false) },
}
if LUAENV_SYS then
  s7_clients[#s7_clients + 1] = { name = "lua-smtp, one shared tls_config (resumption), mbedTLS 2.28",
    cmd = lua_s7(LUAENV_SYS, true) }
  s7_clients[#s7_clients + 1] = { name = "lua-smtp, session_cache = false (full handshakes), mbedTLS 2.28",
    cmd = lua_s7(LUAENV_SYS, false) }
end
s7_clients[#s7_clients + 1] = { name = ("curl --ssl-reqd, %d processes (process start-up included)"):format(N7),
  cmd = curl_s7, curl = true }

-- S8: TLS bulk, both builds and curl, to the same stunnel -> fastsink.
local function lua_file_tls(env)
  return env .. ("lua5.4 bench/peers/luasmtp.lua file 127.0.0.1 %d 1 %s tls"):format(tls_fast_port, q(BIG))
end
local s8_clients = {
  { name = "lua-smtp sendmail(file) (TLS), mbedTLS 3.6", ref = true, cmd = lua_file_tls(LUAENV) },
}
if LUAENV_SYS then
  s8_clients[#s8_clients + 1] = { name = "lua-smtp sendmail(file) (TLS), mbedTLS 2.28", cmd = lua_file_tls(LUAENV_SYS) }
end
s8_clients[#s8_clients + 1] = { name = "curl smtps://", cmd = "curl -K " .. q(CURL_S3_TLS) }

-- S10: full handshakes per connection, timed inside each client.
-- S11: lua-smtp in nginx (one worker), through ngx.socket.tcp(), with
-- lua-smtp's TLS and with nginx's (tls_engine = "host"). Each run is one
-- HTTP request that does the whole work; its wall time is the measure.
local NGINX, NGINX_LUA = "/usr/sbin/nginx", "/usr/lib/nginx/modules/ngx_http_lua_module.so"
local nginx_port, nginx_pid, s11_skip
local LUAJIT_BUILD = os.getenv("BENCH_BUILD_LUAJIT") or "build/luajit"
if (selected("S11") or selected("S11b")) then
  if not (P.exists(NGINX) and P.exists(NGINX_LUA)) then
    s11_skip = "skipped: nginx with the lua module is not installed"
  elseif not P.exists(LUAJIT_BUILD .. "/smtp/core.so") then
    s11_skip = "skipped: no LuaJIT build at " .. LUAJIT_BUILD .. " (make build-luajit)"
  else
    local prefix = work .. "/nginx"
    P.run("mkdir -p " .. q(prefix .. "/tmp"))
    nginx_port = P.free_port()
    local conf = P.read_file("bench/peers/nginx/nginx.conf.tmpl"):gsub("@(%u+)@", {
      PREFIX = prefix, ROOT = root, BUILD = LUAJIT_BUILD, PORT = tostring(nginx_port) })
    P.write_file(prefix .. "/nginx.conf", conf)
    nginx_pid = P.spawn(("%s -p %s -c %s -e %s"):format(NGINX, q(prefix), q(prefix .. "/nginx.conf"),
      q(prefix .. "/stderr.log")), prefix .. "/out.log")
    P.watchdog("kill " .. nginx_pid, nginx_pid)
    if not (P.wait_for(10, function() return P.listening(nginx_port) or not P.alive(nginx_pid) end)
        and P.alive(nginx_pid)) then
      s11_skip = "skipped: nginx did not start: " .. tostring(P.read_file(prefix .. "/stderr.log")):sub(1, 300)
      nginx_pid = nil
    end
  end
end

local function s11_group(id, mode)
  local function req(engine)
    local url = ("http://127.0.0.1:%d/bench?engine=%s&mode=%s&port=%d&n=%d&file=%s"):format(nginx_port or 0,
      engine, mode, mode == "bulk" and tls_fast_port or tls_port, N10, BIG)
    -- The handler answers "ok <n>" or "error <why>": only "ok" counts.
    return ("curl -sS -m 600 %s | tee /dev/stderr | grep -q '^ok '"):format(q(url))
  end
  local bulk = mode == "bulk"
  return { id = id, skip = s11_skip,
    title = bulk and ("%s: one %d MiB message over implicit TLS from an nginx request handler "
      .. "(cosocket; stunnel4 -> fastsink)"):format(id, S3_MB)
      or ("%s: %d full TLS handshakes (implicit TLS + EHLO + QUIT) from an nginx request handler "
      .. "(cosocket; stunnel4 -> smtp-sink)"):format(id, N10),
    unit = bulk and "MB/s" or "conn/s", work = bulk and BIG_SIZE or N10, tls = true,
    clients = {
      { name = "nginx, lua-smtp's TLS (mbedTLS 3.6, memory mode)", ref = true, cmd = req("lua-smtp") },
      { name = "nginx, tls_engine = \"host\" (nginx's OpenSSL)", cmd = req("host") },
    } }
end

local function s10_group(id, keyname, port)
  local t = keyname:find("RSA") and "rsa" or "ec"
  local function hs_lua(env, mode)
    return env .. ("lua5.4 bench/peers/handshake_peer.lua %s 127.0.0.1 %d %d %s localhost")
      :format(mode, port, N10, q(hs_pki[t].ca))
  end
  local clients = {
    { name = "lua-smtp, session_cache = false (full), mbedTLS 3.6", ref = true, raw = true,
      cmd = hs_lua(LUAENV, "smtp") },
    { name = "lua-smtp, shared tls_config (resumed), mbedTLS 3.6", raw = true, cmd = hs_lua(LUAENV, "smtp-resume") },
  }
  if LUAENV_SYS then
    clients[#clients + 1] = { name = "lua-smtp, session_cache = false (full), mbedTLS 2.28", raw = true,
      cmd = hs_lua(LUAENV_SYS, "smtp") }
    clients[#clients + 1] = { name = "lua-smtp, shared tls_config (resumed), mbedTLS 2.28", raw = true,
      cmd = hs_lua(LUAENV_SYS, "smtp-resume") }
  end
  clients[#clients + 1] = { name = "Python ssl (OpenSSL)", raw = true, python = true,
    cmd = ("%s bench/peers/handshake_peer.py 127.0.0.1 %d %d %s localhost"):format(PY, port, N10, q(hs_pki[t].ca)) }
  if os.execute("lua5.4 -e 'require \"ssl\"' 2>/dev/null") == true then
    clients[#clients + 1] = { name = "LuaSocket + LuaSec (OpenSSL)", raw = true, cmd = hs_lua(LUAENV, "luasec") }
  end
  return { id = id, title = ("%s: %d full TLS handshakes, a fresh connection each (implicit TLS + EHLO, "
    .. "stunnel4 -> smtp-sink, %s server certificate, chain and name checked)"):format(id, N10, keyname),
    unit = "conn/s", work = N10, tls = true, clients = clients }
end

local has_pool = os.execute(LUAENV .. "lua5.4 -e 'assert(require(\"smtp\").pool)' 2>/dev/null") == true
local RELAYS = ("%d,%d,%d"):format(sink_port, relay2_port, relay3_port)
local function lua_pool(ports)
  return LUAENV .. ("lua5.4 bench/peers/luasmtp.lua pool 127.0.0.1 %s %d %s"):format(ports, N1, q(MSG1K))
end

local has_message = os.execute(LUAENV .. "lua5.4 -e 'require \"smtp.message\"' 2>/dev/null") == true

-- Scenario groups: each client has a name, a command, the unit of its
-- figure and the amount of work (messages or bytes). `ref` marks the
-- lua-smtp row that the group's ratios are taken against.
local groups = {
  { id = "S1", title = ("S1: %d x 1 KB messages, one connection (smtp-sink)"):format(N1), unit = "msg/s",
    work = N1, clients = {
      { name = "lua-smtp sendmany", ref = true, cmd = lua_smtp("many", sink_port, N1, MSG1K) },
      { name = "lua-smtp sendmail loop", cmd = lua_smtp("loop", sink_port, N1, MSG1K) },
      { name = "smtp-source -d", cmd = smtp_source(("-d -m %d -l 1024"):format(N1)) },
      { name = "Python smtplib", cmd = smtplib("loop", sink_port, N1, MSG1K) },
      { name = "LuaSocket loop (5.4)", cmd = LUAENV .. ("lua5.4 bench/peers/luasocket_peer.lua loop 127.0.0.1 %d %d %s")
        :format(sink_port, N1, q(MSG1K)) },
      { name = "curl -K (one process)", cmd = "curl -K " .. q(CURL_S1) },
      { name = "ceiling: C, pre-encoded, 1 wait/message", cmd = ("%s 127.0.0.1 %d %d %s")
        :format(q(PINGPONG), sink_port, N1, q(MSG1K)) },
    } },
  { id = "S2", title = ("S2: %d messages, a new connection each"):format(N2), unit = "msg/s", work = N2,
    clients = {
      { name = "lua-smtp connect+sendmail+quit", ref = true, cmd = lua_smtp("conn", sink_port, N2, MSG1K) },
      { name = "smtp-source", cmd = smtp_source(("-m %d -l 1024"):format(N2)) },
      { name = "Python smtplib", cmd = smtplib("conn", sink_port, N2, MSG1K) },
    } },
  { id = "S3", title = ("S3: one %d MiB text message (fastsink; smtp-sink for reference)"):format(S3_MB),
    unit = "MB/s", work = BIG_SIZE, rss = true,
    clients = {
      { name = "lua-smtp sendmail(file)", ref = true, cmd = lua_smtp("file", fast_port, 1, BIG) },
      { name = "lua-smtp sendmail(file), chunking=false", cmd = lua_smtp("file", fast_port, 1, BIG, false,
        "BENCH_CHUNKING=false ") },
      -- The raw reference times its transfer only; so does this row (the
      -- client's own clock, connect to QUIT's reply), for a like-for-like ratio.
      { name = "lua-smtp sendmail(file), self-timed", raw = true, cmd = lua_smtp("file", fast_port, 1, BIG) },
      { name = "raw loopback TCP (python)", raw = true,
        cmd = ("%s bench/peers/rawtcp.py tcp %d"):format(PY, BIG_SIZE) },
      { name = "fastsink ceiling (pre-encoded, sendfile)", raw = true,
        cmd = ("%s bench/peers/rawtcp.py replay 127.0.0.1 %d %s"):format(PY, fast_port, q(BIG)) },
      { name = "smtp-source -F", cmd = smtp_source("-m 1 -F " .. q(BIG), fast_port) },
      { name = "curl", cmd = "curl -K " .. q(CURL_S3) },
      { name = "Python smtplib", cmd = smtplib("file", fast_port, 1, BIG) },
      { name = "lua-smtp sendmail(file) -> smtp-sink", cmd = lua_smtp("file", sink_port, 1, BIG) },
      { name = "smtp-sink ceiling (pre-encoded, sendfile)", raw = true,
        cmd = ("%s bench/peers/rawtcp.py replay 127.0.0.1 %d %s"):format(PY, sink_port, q(BIG)) },
    } },
  { id = "S3b", title = ("S3: one %d MiB binary attachment (base64, fastsink)"):format(ATT_MB), unit = "MB/s",
    work = ATT_SIZE, rss = true, skip = not has_message and "skipped: smtp.message not available" or nil,
    clients = {
      { name = "lua-smtp smtp.message(path)", ref = true, cmd = lua_smtp("attach", fast_port, 1, ATT) },
      { name = "lua-smtp smtp.message(path), chunking=false", cmd = lua_smtp("attach", fast_port, 1, ATT, false,
        "BENCH_CHUNKING=false ") },
      { name = "curl -F encoder=base64", cmd = curl_attach },
    } },
  { id = "S4", title = ("S4: S1 over implicit TLS (stunnel4 -> smtp-sink)"), unit = "msg/s", work = N1,
    clients = {
      { name = "lua-smtp sendmany (TLS)", ref = true, cmd = lua_smtp("many", tls_port, N1, MSG1K, true) },
      { name = "lua-smtp sendmail loop (TLS)", cmd = lua_smtp("loop", tls_port, N1, MSG1K, true) },
      { name = "curl -K smtps://", cmd = "curl -K " .. q(CURL_S1_TLS) },
    } },
  { id = "S4b", title = ("S4: S3 text message over implicit TLS (stunnel4 -> fastsink)"), unit = "MB/s",
    work = BIG_SIZE, rss = true,
    clients = {
      { name = "lua-smtp sendmail(file) (TLS)", ref = true, cmd = lua_smtp("file", tls_fast_port, 1, BIG, true) },
      { name = "lua-smtp sendmail(file), chunking=false (TLS)",
        cmd = lua_smtp("file", tls_fast_port, 1, BIG, true, "BENCH_CHUNKING=false ") },
      { name = "curl smtps://", cmd = "curl -K " .. q(CURL_S3_TLS) },
    } },
  { id = "S6", title = ("S6: %d x 1 KB messages, smtp.pool over 3 relays (smtp-sinks) vs one connection"):format(N1),
    unit = "msg/s", work = N1, skip = not has_pool and "skipped: smtp.pool not available" or nil,
    clients = {
      { name = "lua-smtp sendmail loop, one connection", ref = true, cmd = lua_smtp("loop", sink_port, N1, MSG1K) },
      { name = "lua-smtp pool:send, 3 relays", cmd = lua_pool(RELAYS) },
      { name = "lua-smtp pool:send, 1 relay", cmd = lua_pool(tostring(sink_port)) },
    } },
  { id = "S7",
    title = ("S7: TLS handshakes: %d messages, a fresh STARTTLS connection per message (Postfix smtpd)"):format(N7),
    unit = "msg/s", work = N7, tls = true, skip = s7_skip, clients = s7_clients, rounds = S7_ROUNDS },
  { id = "S8", title = ("S8: TLS bulk: one %d MiB text message over implicit TLS (stunnel4 -> fastsink), "
      .. "mbedTLS 3.6 (default), 2.28 (system), curl"):format(S3_MB),
    unit = "MB/s", work = BIG_SIZE, rss = true, tls = true, clients = s8_clients },
  s10_group("S10", "RSA-2048", hs_rsa_port),
  s10_group("S10b", "ECDSA P-256", hs_ec_port),
  s11_group("S11", "bulk"),
  s11_group("S11b", "handshakes"),
  { id = "S9", title = ("S9: %d sessions x %d messages, every reply 20 ms late (event loops, one thread)")
    :format(S9_SESSIONS, S9_PER), unit = "msg/s", work = S9_SESSIONS * S9_PER, rounds = S9_ROUNDS,
    clients = s9_clients },
}

-- BENCH_BEFORE rows: the same lua-smtp client from another checkout.
if BEFORE then
  local extra = {
    S1 = { name = "lua-smtp sendmany, BENCH_BEFORE", cmd = lua_smtp_before("many", sink_port, N1, MSG1K) },
    S3 = { name = "lua-smtp sendmail(file), BENCH_BEFORE", cmd = lua_smtp_before("file", fast_port, 1, BIG) },
    S4 = { name = "lua-smtp sendmany (TLS), BENCH_BEFORE", cmd = lua_smtp_before("many", tls_port, N1, MSG1K, true) },
  }
  for _, g in ipairs(groups) do
    if extra[g.id] then table.insert(g.clients, 2, extra[g.id]) end
  end
end

-- CPU time (user + system, seconds) a process has used so far.
local function cpu_of(pid)
  local stat = P.read_file("/proc/" .. pid .. "/stat") or ""
  local rest = stat:match("^%d+ %b() (.*)$")
  if not rest then return 0 end
  local f = {}
  for w in rest:gmatch("%S+") do f[#f + 1] = w end
  -- Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the name.
  return ((tonumber(f[12]) or 0) + (tonumber(f[13]) or 0)) / 100
end
local server_pids = { sink_pid, fast_pid, tunnel_pid, relay2_pid, relay3_pid, slow_pid }
-- S7's Postfix: the master with the children it has reaped (cutime,
-- cstime) and those alive now; a child that exits during a run moves from
-- the second sum to the first, so differences stay right.
local function postfix_cpu(pid)
  local rest = (P.read_file("/proc/" .. pid .. "/stat") or ""):match("^%d+ %b() (.*)$")
  if not rest then return 0 end
  local f = {}
  for w in rest:gmatch("%S+") do f[#f + 1] = w end
  local t = ((tonumber(f[12]) or 0) + (tonumber(f[13]) or 0) + (tonumber(f[14]) or 0) + (tonumber(f[15]) or 0)) / 100
  for _, kid in ipairs(P.children(pid)) do t = t + cpu_of(kid) end
  return t
end
local function server_cpu()
  local t = 0
  for _, pid in ipairs(server_pids) do t = t + cpu_of(pid) end
  if s7_postfix then t = t + postfix_cpu(s7_postfix.pid) end
  return t
end

-- Runs one client: wall time around the process (interpreter start-up
-- included), peak RSS and CPU from /usr/bin/time, the servers' CPU from
-- /proc, the client's own "ok n secs".
local function run_client(cmd, limit)
  local out, err, rss = work .. "/out", work .. "/err", work .. "/rss"
  local full = ("timeout -k 5 %d /usr/bin/time -f '%%M %%U %%S' -o %s %s >%s 2>%s")
    :format(limit, rss, cmd, out, err)
  local s0 = server_cpu()
  local t0 = core.now()
  local ok = os.execute(full)
  local wall = core.now() - t0
  local scpu = server_cpu() - s0
  local stdout = P.read_file(out) or ""
  local inner = stdout:match("ok %d+ ([%d%.]+)")
  local m, u, sy = (P.read_file(rss) or ""):match("(%d+) ([%d%.]+) ([%d%.]+)%s*$")
  local r = { wall = wall, inner = tonumber(inner), rss = tonumber(m),
    cpu = u and (tonumber(u) + tonumber(sy)) or nil, server_cpu = scpu,
    tls = stdout:match(" tls=(%S+)"), cipher = stdout:match(" cipher=(%S+)"),
    resumed = tonumber(stdout:match(" resumed=(%d+)")), standin = stdout:find(" standin=1") ~= nil }
  if ok ~= true then
    r.failed = ((P.read_file(err) or "") .. stdout):sub(1, 400)
  end
  return r
end

---------------------------------------------------------------- rounds

local results = {} -- results[group.id][client.name] = list of runs
for _, g in ipairs(groups) do
  if not selected(g.id) then g.skip = "not run (BENCH_ONLY=" .. ONLY .. ")" end
  results[g.id] = {}
  for _, c in ipairs(g.clients) do results[g.id][c.name] = {} end
end

-- S7: one message first, outside the timing, so that no row pays for
-- Postfix's first smtpd, tlsmgr and proxy connection.
if s7_postfix and selected("S7") then P.try(curl_one .. " >/dev/null 2>&1") end

local rounds_done = 0
for round = 1, ROUNDS do
  if core.now() - started > MAX_SECONDS then
    log("time budget of %ds spent: stopping after %d rounds", MAX_SECONDS, rounds_done)
    break
  end
  for _, g in ipairs(groups) do
    if not g.skip and round <= (g.rounds or ROUNDS) then
      -- Rotate the order each round so no client always runs first.
      local n = #g.clients
      for k = 0, n - 1 do
        local c = g.clients[(k + round - 1) % n + 1]
        local r = run_client(c.cmd, g.rss and 300 or 120)
        -- Raw references time themselves (no interpreter start-up).
        r.t = (c.raw and r.inner) or r.wall
        table.insert(results[g.id][c.name], r)
        if r.failed then log("%s %s FAILED: %s", g.id, c.name, r.failed) end
      end
    end
  end
  rounds_done = round
  log("round %d of %d done", round, ROUNDS)
end

---------------------------------------------------------------- S5

-- Counts, for one client run under strace, the reads that returned data
-- from the SMTP socket ("reply waits") and the writes to it.
local function strace_counts(cmd, port, n)
  local tr = work .. "/strace.out"
  local full = ("timeout -k 5 120 strace -qq -o %s -s 0 -e signal=none "
    .. "-e trace=connect,read,recvfrom,recvmsg,readv,write,writev,sendto,sendmsg,sendfile %s >/dev/null 2>%s")
    :format(tr, cmd, work .. "/err")
  if os.execute(full) ~= true then
    return { failed = (P.read_file(work .. "/err") or ""):sub(1, 300) }
  end
  local fds, reads, writes, wbytes = {}, 0, 0, 0
  for line in io.lines(tr) do
    local fd = line:match("^connect%((%d+), {sa_family=AF_INET, sin_port=htons%((%d+)%)")
    if fd then
      local p = tonumber(line:match("htons%((%d+)%)"))
      if p == port then fds[fd] = true end
    else
      local call, f, rest = line:match("^(%a+)%((%d+),(.*)$")
      if call and fds[f] then
        local ret = tonumber(rest:match("=%s*(%-?%d+)[^=]*$"))
        if ret and ret > 0 then
          if call:find("^read") or call:find("^recv") then reads = reads + 1
          else writes = writes + 1; wbytes = wbytes + ret end
        end
      end
    end
  end
  return { reads = reads, writes = writes, per_read = reads / n, per_write = writes / n }
end

local s5 = {}
local postfix
if selected("S5") then
  log("S5: reply waits with strace (%d messages)", N5)
  local sink = "smtp-sink (PIPELINING)"
  local rows = {
    { name = "lua-smtp sendmail loop", server = sink, cmd = lua_smtp("loop", sink_port, N5, MSG1K) },
    { name = "lua-smtp sendmany", server = sink, cmd = lua_smtp("many", sink_port, N5, MSG1K) },
    { name = "smtp-source -d", server = sink, cmd = smtp_source(("-d -m %d -l 1024"):format(N5)) },
    { name = "Python smtplib", server = sink, cmd = smtplib("loop", sink_port, N5, MSG1K) },
    { name = "LuaSocket loop", server = sink,
      cmd = LUAENV .. ("lua5.4 bench/peers/luasocket_peer.lua loop 127.0.0.1 %d %d %s")
        :format(sink_port, N5, q(MSG1K)) },
    { name = "curl -K", server = sink, cmd = "curl -K " .. q(curl_config("curl-s5.conf", plain_url, N5, MSG1K)) },
  }
  for _, r in ipairs(rows) do r.port = sink_port end
  -- CHUNKING needs a server that offers it: a private Postfix smtpd.
  local ok, h = pcall(servers.postfix, { recipients = { "alice@" .. servers.DOMAIN } })
  if ok then
    postfix = h
    local rcpt = "alice@" .. servers.DOMAIN
    local function pf(mode, extra)
      return lua_smtp(mode, h.ports.plain, N5, MSG1K, false, ("BENCH_RCPT=%s "):format(rcpt) .. (extra or ""))
    end
    rows[#rows + 1] = { name = "lua-smtp sendmail loop", server = "Postfix smtpd (PIPELINING, CHUNKING)",
      cmd = pf("loop"), port = h.ports.plain }
    rows[#rows + 1] = { name = "lua-smtp sendmany", server = "Postfix smtpd (PIPELINING, CHUNKING)",
      cmd = pf("many"), port = h.ports.plain }
    rows[#rows + 1] = { name = "lua-smtp sendmany, chunking=false", server = "Postfix smtpd (PIPELINING, CHUNKING)",
      cmd = pf("many", "BENCH_CHUNKING=false "), port = h.ports.plain }
  else
    log("S5: Postfix smtpd did not start, CHUNKING rows skipped: %s", tostring(h))
  end
  for _, r in ipairs(rows) do
    local c = strace_counts(r.cmd, r.port, N5)
    for k, v in pairs(c) do r[k] = v end
    s5[#s5 + 1] = r
    if r.failed then log("S5 %s FAILED: %s", r.name, r.failed) end
  end
end

-- What each client negotiates with stunnel4 (the server picks from the
-- client's list; lua-smtp puts ChaCha20-Poly1305 first, see csrc/tls.c).
local negotiated = {}
if selected("S4") then
  local _, o = P.try(LUAENV .. ("lua5.4 -e %s"):format(q(([[
    local smtp = require "smtp"
    local c = smtp.connect { host = "127.0.0.1", port = %d, tls_mode = "implicit", tls = { verify = "none" } }
    local i = c:tls_info(); c:quit(); io.write(i.version, " ", i.cipher)]]):format(tls_port))))
  negotiated.lua = o and o:match("TLS%S+ %S+")
  _, o = P.try(("curl -sv --insecure -o /dev/null %s 2>&1"):format(q(tls_url)))
  negotiated.curl = o and o:match("SSL connection using (%S+ / %S+)")
end

-- What curl negotiates with S7's Postfix (its rows print nothing).
if selected("S7") and s7_postfix then
  local _, o = P.try(curl_one:gsub("^curl %-sS", "curl -sSv") .. " 2>&1")
  local v, c = (o or ""):match("SSL connection using (%S+) / (%S+)")
  for _, c7 in ipairs(s7_clients) do
    if c7.curl then c7.tls, c7.cipher = v, c end
  end
end

-- S4's cipher ceiling: a TLS client cannot send faster than its library
-- seals records. mbedTLS by bench/tools/aead_speed.c (the vendored 3.6
-- that lua-smtp links by default, with our configuration, and the system
-- 2.28), OpenSSL (curl, stunnel4) by `openssl speed`, 16 KiB records, one
-- core each.
local ciphers = {}
if selected("S4") then
  local vendored = "-DMBEDTLS_CONFIG_FILE='\"smtp_mbedtls_config.h\"' -Ivendor/config -Ivendor/mbedtls/include "
    .. "-Ivendor/mbedtls/3rdparty/everest/include build/mbedtls-lib/cc/libsmtp_mbedtls.a"
  for _, lib in ipairs({ { "mbedTLS 3.6 (lua-smtp, vendored)", vendored, "3.6" },
                         { "mbedTLS 2.28 (system)", "-lmbedcrypto", "2.28" } }) do
    local exe = BUILD .. "/bench-aead-speed-" .. lib[3]
    if P.try(("make -s mbedtls-lib >/dev/null && cc -O2 -Wall -Wextra -std=c99 -o %s bench/tools/aead_speed.c %s")
      :format(q(exe), lib[2])) then
      local _, o = P.try(q(exe) .. " 1")
      for name, rate in (o or ""):gmatch("(%S+) ([%d%.]+)\n") do
        ciphers[#ciphers + 1] = { lib = lib[1], name = name, rate = tonumber(rate) }
      end
    end
  end
  for _, evp in ipairs({ "aes-128-gcm", "aes-256-gcm", "chacha20-poly1305" }) do
    local _, o = P.try(("openssl speed -evp %s -bytes 16384 -seconds 1 2>/dev/null | tail -1"):format(evp))
    local k = (o or ""):match("([%d%.]+)k%s*$")
    if k then
      ciphers[#ciphers + 1] = { lib = "OpenSSL (curl, stunnel4)", name = evp:upper(), rate = tonumber(k) * 1000 / 1e6 }
    end
  end
end

---------------------------------------------------------------- report

local function median(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- Figures of one client: median rate, min and max rate, median RSS (MiB).
local function figures(g, runs)
  local rates, rss, cpu, scpu, fails = {}, {}, {}, {}, 0
  for _, r in ipairs(runs) do
    if r.failed then fails = fails + 1
    else
      local amount = g.unit == "MB/s" and g.work / 1e6 or g.work
      rates[#rates + 1] = amount / r.t
      if r.rss then rss[#rss + 1] = r.rss / 1024 end
      if r.cpu then cpu[#cpu + 1] = r.cpu end
      scpu[#scpu + 1] = r.server_cpu
    end
  end
  table.sort(rates)
  -- TLS facts the client printed (issue 16): version and cipher of its
  -- last run, resumed connections per run (median), stand-in runs.
  local tls, cipher, resumed, standin = nil, nil, {}, 0
  for _, r in ipairs(runs) do
    if not r.failed then
      tls, cipher = r.tls or tls, r.cipher or cipher
      if r.resumed then resumed[#resumed + 1] = r.resumed end
      if r.standin then standin = standin + 1 end
    end
  end
  return { median = median(rates), min = rates[1], max = rates[#rates], rss = median(rss), fails = fails,
    n = #rates, cpu = median(cpu), server_cpu = median(scpu), tls = tls, cipher = cipher,
    resumed = median(resumed), resumed_min = #resumed > 0 and math.min(table.unpack(resumed)) or nil,
    resumed_max = #resumed > 0 and math.max(table.unpack(resumed)) or nil, standin = standin }
end

local fig = {}
local lines = {}
local function out(s) lines[#lines + 1] = s end

local function fmt_rate(v, unit)
  if not v then return "-" end
  if unit == "MB/s" then return ("%.1f"):format(v) end
  return ("%.0f"):format(v)
end

-- S7's and S8's ratios, under their tables (issue 16).
local function rate_ratio(f, a, b)
  local x, y = f[a] and f[a].median, f[b] and f[b].median
  return x and y and ("%.2f"):format(x / y) or "n/a"
end
for _, g in ipairs(groups) do
  if g.id == "S7" then
    g.after = function(f)
      local curl = s7_clients[#s7_clients].name
      out("")
      out("One message per connection: messages/s = handshakes/s. Ratios of the medians:")
      out("")
      for _, b in ipairs({ "2.28", "3.6" }) do
        local res = "lua-smtp, one shared tls_config (resumption), mbedTLS " .. b
        local full = "lua-smtp, session_cache = false (full handshakes), mbedTLS " .. b
        if f[res] then
          out(("- mbedTLS %s (%s): resumed / full %s; lua-smtp / curl: %s resumed, %s full")
            :format(b, f[full] and f[full].tls or "?", rate_ratio(f, res, full), rate_ratio(f, res, curl),
              rate_ratio(f, full, curl)))
        end
      end
      local r36 = "lua-smtp, one shared tls_config (resumption), mbedTLS 3.6"
      if f[r36] then
        out(("- mbedTLS 3.6 / 2.28: %s resumed, %s full"):format(
          rate_ratio(f, r36, "lua-smtp, one shared tls_config (resumption), mbedTLS 2.28"),
          rate_ratio(f, "lua-smtp, session_cache = false (full handshakes), mbedTLS 3.6",
            "lua-smtp, session_cache = false (full handshakes), mbedTLS 2.28")))
      end
      out(("- The first connection of a run has nothing to resume: %d of %d is the most. Postfix sends TLS 1.3")
        :format(N7 - 1, N7))
      out("  tickets after a full handshake only (none on a resumed one): lua-smtp then keeps the ticket it used.")
      out("- curl starts one process per message (its start-up is in its figure); verify is off on both sides")
      out("  (lua-smtp verify = \"none\", curl --insecure). Server CPU: Postfix (master, smtpd, tlsmgr) + smtp-sink.")
      for _, c in ipairs(g.clients) do
        if f[c.name] and f[c.name].standin > 0 then
          out("- Rows marked stand-in ran before this build knew `session_cache`: a fresh tls_config per")
          out("  connection (nothing to resume from) stood in for session_cache = false.")
          break
        end
      end
    end
  elseif g.id == "S8" then
    g.after = function(f)
      out("")
      out(("- lua-smtp (mbedTLS 3.6) / curl: %s; mbedTLS 3.6 / 2.28: %s (medians, MB/s)"):format(
        rate_ratio(f, g.clients[1].name, "curl smtps://"),
        rate_ratio(f, g.clients[1].name, "lua-smtp sendmail(file) (TLS), mbedTLS 2.28")))
    end
  elseif g.id == "S10" or g.id == "S10b" then
    g.after = function(f)
      out("")
      out("Milliseconds per connection (connect + TLS + greeting + EHLO + QUIT), medians; time ratios:")
      out("")
      for _, c in ipairs(g.clients) do
        if f[c.name] and f[c.name].median then
          out(("- %s: %.2f ms"):format(c.name, 1000 / f[c.name].median))
        end
      end
      local py = "Python ssl (OpenSSL)"
      for _, b in ipairs({ "3.6", "2.28" }) do
        local full = "lua-smtp, session_cache = false (full), mbedTLS " .. b
        if f[full] and f[py] then
          out(("- full handshake, lua-smtp mbedTLS %s / Python ssl: %s (below 1: lua-smtp is faster)")
            :format(b, rate_ratio(f, py, full)))
        end
      end
    end
  end
end

for _, g in ipairs(groups) do
  fig[g.id] = {}
  out("")
  out("### " .. g.title)
  out("")
  if g.skip then
    out(g.skip)
  else
    -- TLS groups (S7, S8) also name the negotiated version and cipher;
    -- S7 counts the connections that resumed a session.
    local s7 = g.id == "S7"
    out(("| client | %s (median) | min - max | ratio peer / lua-smtp | client CPU s | server CPU s |%s%s%s runs |")
      :format(g.unit, g.rss and " peak RSS MiB |" or "", g.tls and " TLS |" or "",
        s7 and (" resumed / %d (median, min - max) |"):format(N7) or ""))
    out("|---|---:|---:|---:|---:|---:|" .. (g.rss and "---:|" or "") .. (g.tls and "---|" or "")
      .. (s7 and "---:|" or "") .. "---:|")
    local ref
    for _, c in ipairs(g.clients) do
      local f = figures(g, results[g.id][c.name])
      f.tls, f.cipher = f.tls or c.tls, f.cipher or c.cipher
      fig[g.id][c.name] = f
      if c.ref then ref = f.median end
    end
    for _, c in ipairs(g.clients) do
      local f = fig[g.id][c.name]
      local ratio = (f.median and ref) and ("%.2f"):format(f.median / ref) or "-"
      if c.ref then ratio = "1 (reference)" end
      local resumed = "-"
      if f.resumed then
        resumed = ("%g (%d - %d)%s"):format(f.resumed, f.resumed_min, f.resumed_max,
          f.standin > 0 and " [stand-in: a fresh tls_config per connection]" or "")
      elseif c.curl then
        resumed = "0 (a new process each)"
      end
      out(("| %s | %s | %s - %s | %s | %s | %s |%s%s%s %d%s |"):format(c.name, fmt_rate(f.median, g.unit),
        fmt_rate(f.min, g.unit), fmt_rate(f.max, g.unit), ratio,
        f.cpu and ("%.2f"):format(f.cpu) or "-", f.server_cpu and ("%.2f"):format(f.server_cpu) or "-",
        g.rss and (" %s |"):format(f.rss and ("%.1f"):format(f.rss) or "-") or "",
        g.tls and (" %s |"):format(f.tls and (f.tls .. " " .. (f.cipher or "")) or "?") or "",
        s7 and (" %s |"):format(resumed) or "",
        f.n, f.fails > 0 and (" (%d failed)"):format(f.fails) or ""))
    end
    if g.after then g.after(fig[g.id]) end
  end
end

if #ciphers > 0 then
  out("")
  out("### S4: cipher ceiling, one core sealing 16 KiB records (MB/s)")
  out("")
  out("| library | AEAD | MB/s |")
  out("|---|---|---:|")
  for _, c in ipairs(ciphers) do out(("| %s | %s | %.1f |"):format(c.lib, c.name, c.rate)) end
end

out("")
out(("### S5: socket reads that returned data (reply waits) and writes per message, %d messages, strace"):format(N5))
out("")
out("| client | server | reads / message | writes / message |")
out("|---|---|---:|---:|")
for _, r in ipairs(s5) do
  if r.failed then
    out(("| %s | %s | failed | failed |"):format(r.name, r.server))
  else
    out(("| %s | %s | %.2f | %.2f |"):format(r.name, r.server, r.per_read, r.per_write))
  end
end

-- The issue's targets, judged on this run's medians.
local function m(id, name) return fig[id] and fig[id][name] and fig[id][name].median end
local function ratio(id, a, b)
  local x, y = m(id, a), m(id, b)
  return x and y and x / y or nil
end
local function s5row(name, server)
  for _, r in ipairs(s5) do
    if r.name == name and r.server:find(server, 1, true) and not r.failed then return r.per_read end
  end
end
local targets = {}
-- ok == "context": a figure that explains a target, judged by none.
local function target(what, value, shown, ok)
  local verdict = value == nil and "not measured" or (ok and "holds" or "MISSED")
  if value ~= nil and ok == "context" then verdict = "context" end
  targets[#targets + 1] = { what = what, shown = value and shown or "n/a", verdict = verdict }
end
local v
v = ratio("S1", "lua-smtp sendmany", "smtp-source -d")
target("S1 sendmany >= 2x smtp-source", v, v and ("%.2fx"):format(v), v and v >= 2)
v = ratio("S1", "lua-smtp sendmany", "Python smtplib")
target("S1 sendmany >= 5x Python smtplib", v, v and ("%.2fx"):format(v), v and v >= 5)
v = ratio("S1", "ceiling: C, pre-encoded, 1 wait/message", "Python smtplib")
target("(S1 ceiling / Python smtplib: the most any client reaches on smtp-sink)", v, v and ("%.2fx"):format(v),
  "context")
v = ratio("S1", "lua-smtp sendmany", "ceiling: C, pre-encoded, 1 wait/message")
target("(S1 sendmany: % of that ceiling)", v, v and ("%.0f%%"):format(v * 100), "context")
v = ratio("S2", "lua-smtp connect+sendmail+quit", "smtp-source")
target("S2 >= 1x smtp-source", v, v and ("%.2fx"):format(v), v and v >= 1)
v = ratio("S3", "lua-smtp sendmail(file)", "raw loopback TCP (python)")
target("S3 text >= 60% of raw loopback TCP", v, v and ("%.0f%%"):format(v * 100), v and v >= 0.6)
v = ratio("S3", "lua-smtp sendmail(file), self-timed", "raw loopback TCP (python)")
target("(S3 text, both self-timed: % of raw loopback TCP)", v, v and ("%.0f%%"):format(v * 100), v and v >= 0.6)
v = ratio("S3", "lua-smtp sendmail(file), chunking=false", "raw loopback TCP (python)")
target("(S3 text, DATA instead of BDAT: % of raw TCP)", v, v and ("%.0f%%"):format(v * 100), "context")
v = ratio("S3", "lua-smtp sendmail(file) -> smtp-sink", "smtp-sink ceiling (pre-encoded, sendfile)")
target("(S3 text to smtp-sink: % of that sink's own ceiling)", v, v and ("%.0f%%"):format(v * 100), "context")
v = ratio("S3b", "lua-smtp smtp.message(path)", "curl -F encoder=base64")
target("S3 attachment >= 3x curl", v, v and ("%.2fx"):format(v), v and v >= 3)
do
  local worst
  for _, id in ipairs({ "S3", "S3b", "S4b" }) do
    for name, f in pairs(fig[id] or {}) do
      if name:find("^lua%-smtp") and f.rss then worst = math.max(worst or 0, f.rss) end
    end
  end
  target("S3 lua-smtp peak RSS <= 16 MiB", worst, worst and ("%.1f MiB (largest)"):format(worst), worst and worst <= 16)
end
v = ratio("S4", "lua-smtp sendmany (TLS)", "curl -K smtps://")
target("S4 S1 over TLS >= curl", v, v and ("%.2fx"):format(v), v and v >= 1)
v = ratio("S4b", "lua-smtp sendmail(file) (TLS)", "curl smtps://")
target("S4 S3 over TLS >= curl", v, v and ("%.2fx"):format(v), v and v >= 1)
v = ratio("S6", "lua-smtp pool:send, 3 relays", "lua-smtp sendmail loop, one connection")
target("(S6 pool over 3 relays / one connection: the pool's bookkeeping cost)", v, v and ("%.2fx"):format(v),
  "context")
v = s5row("lua-smtp sendmail loop", "smtp-sink")
target("S5 sendmail with PIPELINING: 2 waits/message", v, v and ("%.2f"):format(v), v and v <= 2.05)
v = s5row("lua-smtp sendmany", "CHUNKING")
target("S5 sendmany + CHUNKING: <= 1 wait/message", v, v and ("%.2f"):format(v), v and v <= 1.05)

out("")
out("### Targets of issue 6 (this run)")
out("")
out("| target | measured | verdict |")
out("|---|---|---|")
for _, t in ipairs(targets) do out(("| %s | %s | %s |"):format(t.what, t.shown, t.verdict)) end

out("")
out("### Every round (rate per run, in round order; F = failed)")
out("")
for _, g in ipairs(groups) do
  if not g.skip then
    for _, c in ipairs(g.clients) do
      local cells = {}
      for i, r in ipairs(results[g.id][c.name]) do
        local amount = g.unit == "MB/s" and g.work / 1e6 or g.work
        cells[i] = r.failed and "F" or fmt_rate(amount / r.t, g.unit)
      end
      out(("- %s, %s: %s %s"):format(g.id, c.name, table.concat(cells, " "), g.unit))
    end
  end
end

local table_text = table.concat(lines, "\n")
print(table_text)

---------------------------------------------------------------- RESULTS.md

local function first_line(cmd)
  local ok, o = P.try(cmd)
  return ok and (o:match("[^\n]+") or "") or "?"
end
local versions = {
  { "lua-smtp", first_line("git log -1 --format='%h %s' 2>/dev/null | cut -c1-80") },
  { "Lua", first_line("lua5.4 -v") },
  { "Postfix (smtp-sink, smtp-source)", first_line("postconf -d -h mail_version 2>/dev/null") },
  { "Python", first_line(PY .. " --version") },
  { "LuaSocket", first_line(LUAENV .. "lua5.4 -e 'print(require\"socket\"._VERSION)'") },
  { "curl", first_line("curl --version") },
  { "stunnel", first_line("stunnel4 -version 2>&1 | grep -m1 stunnel") },
  { "OpenSSL", first_line("openssl version") },
  { "mbedTLS (lua-smtp, default build)", first_line("head -n 1 vendor/mbedtls/VERSION")
    .. " vendored, vendor/config/smtp_mbedtls_config.h" },
  { "mbedTLS (lua-smtp, 2.28 rows)", LUAENV_SYS and (BUILD_SYS .. ", Debian "
    .. first_line("dpkg-query -W -f '${Version}' libmbedtls-dev 2>/dev/null")) or "no system build" },
  { "kernel", first_line("uname -srm") },
  { "CPU", first_line("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2") .. ", "
      .. first_line("nproc") .. " cores" },
}
local md = {
  "# lua-smtp benchmark results (issue 6)",
  "",
  "Written by `make bench` (bench/run.lua); do not edit by hand.",
  "",
  "- Command: `make bench` (" .. ("BENCH_ROUNDS=%d BENCH_S1=%d BENCH_S2=%d BENCH_S3_MB=%d BENCH_ATT_MB=%d BENCH_S5=%d"
    .. " BENCH_S7=%d BENCH_S7_ROUNDS=%d BENCH_S10=%d"):format(ROUNDS, N1, N2, S3_MB, ATT_MB, N5, N7, S7_ROUNDS, N10)
    .. ((ONLY or "") ~= "" and (" BENCH_ONLY=" .. ONLY) or "") .. ")",
  "- Date: " .. os.date("!%Y-%m-%d %H:%M UTC"),
  ("- Rounds: %d of %d, interleaved (every client once per round, order rotated; S7 in the first %d only);")
    :format(rounds_done, ROUNDS, S7_ROUNDS),
  "  figures are medians.",
  "- Everything on loopback: smtp-sink (Postfix) as the server for S1, S2, S4 and S5; bench/tools/fastsink.c",
  "  (a discarding server reading 1 MiB at a time, PIPELINING + CHUNKING) for S3, since smtp-sink parses DATA",
  "  line by line and caps far below loopback TCP (its ceiling is in the S3 table); stunnel4 (implicit TLS) in front",
  ("  of either for S4: curl negotiated %s, lua-smtp (mbedTLS 3.6) %s;")
    :format(negotiated.curl or "(not probed)", negotiated.lua or "(not probed)"),
  "  S5's CHUNKING rows use a private Postfix smtpd (spec/helpers/servers.lua). S7 (issue 16): another private",
  "  Postfix smtpd, STARTTLS (smtpd_tls_security_level = may, session tickets and session-ID cache on), the bench",
  "  certificate (EC P-256, self-signed), every message passed on to smtp-sink at once (smtpd_proxy_filter).",
  "  S8 runs S4's big message under lua-smtp's two builds (vendored mbedTLS 3.6, system 2.28) and curl. S10, S10b",
  "  (issue 26): stunnel4 -> smtp-sink with a CA-signed localhost certificate (RSA-2048, ECDSA P-256); every",
  "  client checks chain and name; times are the clients' own (no interpreter start-up).",
  "- Times are wall clock around each client process, interpreter start-up included (Python's is about 20 ms),",
  "  except the rows marked self-timed or ceiling, which time their own transfer. MB = 10^6 bytes of message file.",
  "- client CPU: user + system of the client process (/usr/bin/time); server CPU: smtp-sink + fastsink + stunnel4",
  "  during the run (/proc, 10 ms ticks). Medians over the rounds.",
  "- smtp-source -l 1024 adds its own short header block to the 1024-byte payload; the other clients send",
  ("  the same %d-byte message (a %d-byte header block + 16 lines of 64 bytes)."):format(size_of(MSG1K), #HEAD),
  "",
  "Versions:",
  "",
}
for _, kv in ipairs(versions) do md[#md + 1] = ("- %s: %s"):format(kv[1], kv[2]) end
md[#md + 1] = table_text
md[#md + 1] = ""

-- BENCH_MERGE: this run's sections (by heading) and round lines replace
-- theirs in OUT, or go in before the cipher ceiling / S5 sections; each
-- gets a line saying where it comes from, since OUT's header describes
-- the run that wrote it. Sections are "### " headings up to the next one.
local function blocks_of(text)
  local head, list = {}, {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:find("^### ") then list[#list + 1] = { line }
    elseif #list > 0 then table.insert(list[#list], line)
    else head[#head + 1] = line end
  end
  return head, list
end
local function merge_into(path)
  local old = P.read_file(path)
  if not old then error("BENCH_MERGE: no " .. path .. " to merge into (run the whole bench once)") end
  local head, olds = blocks_of(old:gsub("\n$", ""))
  local _, news = blocks_of(table_text)
  local note = ("(From a partial run merged in: BENCH_ONLY=%s, %s, %d rounds, lua-smtp %s; the header above"
    .. " describes the last full run.)"):format(ONLY, os.date("!%Y-%m-%d %H:%M UTC"), rounds_done,
    first_line("git log -1 --format=%h 2>/dev/null"))
  local ids = {}
  for _, g in ipairs(groups) do
    local title = "### " .. g.title
    local new
    for _, b in ipairs(news) do if b[1] == title then new = b end end
    if selected(g.id) and new then
      -- Keep the empty line that ends a section, put the note before it.
      if new[#new] == "" then table.remove(new) end
      new[#new + 1] = ""
      new[#new + 1] = note
      new[#new + 1] = ""
      -- The same heading, else (its figures in the title changed) the same
      -- "### Sn:" prefix where no other scenario's title shares it.
      local at
      for i, b in ipairs(olds) do if b[1] == title then at = i end end
      local prefix, shared = "### " .. g.id .. ":", 0
      for _, o in ipairs(groups) do
        if ("### " .. o.title):sub(1, #prefix) == prefix then shared = shared + 1 end
      end
      if not at and shared == 1 then
        for i, b in ipairs(olds) do
          if not at and b[1]:sub(1, #prefix) == prefix then at = i end
        end
      end
      if at then olds[at] = new
      else
        for i, b in ipairs(olds) do
          if b[1]:find("^### S4: cipher") or b[1]:find("^### S5:") or b[1]:find("^### Targets") then at = i; break end
        end
        table.insert(olds, at or #olds + 1, new)
      end
      ids[g.id] = true
    end
  end
  -- Round lines: the old ones of these scenarios out, the new ones at the end.
  local rounds_new = {}
  for _, b in ipairs(news) do
    if b[1]:find("^### Every round") then
      for _, line in ipairs(b) do
        local id = line:match("^%- (S%w+), ")
        if id and ids[id] then rounds_new[#rounds_new + 1] = line end
      end
    end
  end
  for _, b in ipairs(olds) do
    if b[1]:find("^### Every round") then
      local kept = {}
      for _, line in ipairs(b) do
        local id = line:match("^%- (S%w+), ")
        if not (id and ids[id]) then kept[#kept + 1] = line end
      end
      while kept[#kept] == "" do table.remove(kept) end
      for _, line in ipairs(rounds_new) do kept[#kept + 1] = line end
      kept[#kept + 1] = ""
      for i = 1, #b do b[i] = nil end
      for i, line in ipairs(kept) do b[i] = line end
    end
  end
  local all = { table.concat(head, "\n") }
  for _, b in ipairs(olds) do all[#all + 1] = table.concat(b, "\n") end
  write(path, table.concat(all, "\n") .. "\n")
end

if MERGE then
  merge_into(OUT)
  log("merged %s into %s", ONLY, OUT)
else
  write(OUT, table.concat(md, "\n") .. "\n")
  log("wrote %s", OUT)
end

---------------------------------------------------------------- cleanup

if postfix then pcall(postfix.stop, postfix) end
if s7_postfix then pcall(s7_postfix.stop, s7_postfix) end
P.terminate(tunnel_pid, 5)
if nginx_pid then P.terminate(nginx_pid, 5) end
P.terminate(fast_pid, 5)
P.terminate(sink_pid, 5)
log("done in %.0fs", core.now() - started)
