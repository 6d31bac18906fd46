-- An OpenResty cosocket (ngx.socket.tcp()) as a transport (DESIGN.md), or
-- any object with the same methods (connect, send, receiveany or receive,
-- sslhandshake, settimeouts or settimeout, close, setkeepalive), so other
-- event loops can plug in. All waits are the socket's own, so an nginx
-- worker keeps serving while a slow server is talked to (SPEC 5). The C
-- reply parser and DATA encoder judge and shape every byte; this file only
-- moves them. Any failure closes the socket (DESIGN D).
--
-- STARTTLS (RFC 3207) and implicit TLS (RFC 8314) are lua-smtp's own TLS
-- by default (issue 27, SPEC 5): once TLS starts, the connection's bytes
-- go through a C connection in memory mode (smtp.core.memory_conn), the
-- same code as on the C socket with all its checks, and this file only
-- carries its ciphertext over the socket. With tls_engine = "host" the
-- socket's own sslhandshake runs instead: trust then comes from nginx's
-- lua_ssl_trusted_certificate and the name check needs a DNS name, and
-- what that engine cannot honour is refused rather than ignored (review
-- 2026-12, H2, M5, L9).
local core = require "smtp.core"
local Error = require "smtp.error"

local type, tostring, setmetatable, pcall, error, ipairs, concat, floor =
  type, tostring, setmetatable, pcall, error, ipairs, table.concat, math.floor
local now = core.now

local M = {}

-- Pool name -> {state=, tls=}: what its connections were left in (per
-- worker). A connection is pooled only in the state its name promises
-- (Cosocket:pool_accepts), so every connection of a pool has the same
-- TLS and authentication facts and sharing them by name is exact.
local pool_states = {}

local Cosocket = {}
Cosocket.__index = Cosocket

-- Bytes asked for per receive: a whole reply usually arrives in one.
local READ_MAX = 16384

local function in_nginx()
  local ngx = rawget(_G, "ngx")
  return type(ngx) == "table" and type(ngx.socket) == "table" and ngx.config ~= nil
end

--- Wraps a cosocket-like object. `opts.send_tables`: whether `send`
-- accepts an array of strings (true for ngx cosockets, which write it in
-- one call; otherwise the adapter concatenates).
function M.wrap(sock, opts)
  opts = opts or {}
  local send_tables = opts.send_tables
  if send_tables == nil then send_tables = in_nginx() end
  return setmetatable({
    _engine = opts.tls_engine or "lua-smtp",
    _sock = sock,
    _deadline = nil,
    _closed = false,
    _tables = send_tables,
    _tls = nil,
    _pool = nil,
  }, Cosocket)
end

-- Failures -----------------------------------------------------------------

-- Closes without TLS close_notify or keepalive: the stream may be out of
-- step or the peer hostile.
function Cosocket:_fail(kind, msg)
  if not self._closed then
    self._closed = true
    if self._mc then self._mc:abort() end
    pcall(self._sock.close, self._sock)
  end
  return nil, kind, msg
end

-- A cosocket error string to a kind: "timeout" is the only one it names.
local function kind_of(err)
  if err == "timeout" then return "timeout" end
  return "io"
end

-- A failed read of the socket, closed, as the failure triple.
function Cosocket:_read_failure(err)
  if err == "closed" then return self:_fail("io", "connection closed by the server") end
  return self:_fail(kind_of(err), "read failed: " .. tostring(err))
end

function Cosocket._closed_failure()
  return nil, "io", "connection is closed"
end

-- Arms the socket's timeouts with what is left of the deadline. Returns
-- false (after closing) when nothing is left.
function Cosocket:_arm()
  local ms
  if self._deadline then
    ms = floor((self._deadline - now()) * 1000)
    if ms <= 0 then return false end
  else
    ms = 3600000
  end
  local sock = self._sock
  if sock.settimeouts then
    sock:settimeouts(ms, ms, ms)
  else
    sock:settimeout(ms)
  end
  return true
end

-- Transport interface ----------------------------------------------------------

--- Absolute deadline in seconds of smtp.core.now() (monotonic); nil for
-- none. Each wait gets what is left of it.
function Cosocket:set_deadline(abs)
  self._deadline = abs
end

--- connect(host, port [, pool]) -> true | nil, kind, msg. `pool` names
-- the cosocket keepalive pool this connection belongs to.
function Cosocket:connect(host, port, pool)
  if not self:_arm() then return self:_fail("timeout", "connect timed out") end
  local ok, err
  if pool then
    ok, err = self._sock:connect(host, port, { pool = pool })
  else
    ok, err = self._sock:connect(host, port)
  end
  if not ok then
    return self:_fail(kind_of(err), "connect to " .. tostring(host) .. ":" .. tostring(port) .. ": " .. tostring(err))
  end
  self._closed = false
  self._pool = pool
  return true
end

--- Times the socket was taken from the keepalive pool (0 for a fresh
-- connection), or nil when the socket cannot tell or is not connected.
function Cosocket:reused_times()
  local sock = self._sock
  if not sock.getreusedtimes then return nil end
  local n = sock:getreusedtimes()
  return n
end

-- Writes 'data' (a string or an array of strings) in one call.
function Cosocket:_write(data)
  if type(data) == "table" and not self._tables then data = concat(data) end
  if not self:_arm() then return self:_fail("timeout", "write timed out") end
  local n, err = self._sock:send(data)
  local after_handshake = self._handshake_only
  self._handshake_only = nil
  if not n then
    if after_handshake and err == "closed" then
      -- lua-nginx-module 0.10.23 can report a handshake whose certificate
      -- check failed as done when it completes at once, having closed the
      -- socket: the first write then finds it closed. Nothing was sent.
      return self:_fail("tls", "TLS handshake failed: the connection was closed by the certificate check")
    end
    return self:_fail(kind_of(err), "write failed: " .. tostring(err))
  end
  return true
end

--- send(data | {data, ...}) -> true | nil, kind, msg
function Cosocket:send(data)
  if self._closed then return self:_closed_failure() end
  if self._mc then
    local ok, kind, msg = self._mc:send(data)
    if not ok and kind ~= "want" then return self:_fail(kind, msg) end
    if not ok then return self:_drive(self._mc.flush) end
    return self:_push()
  end
  return self:_write(data)
end

-- Some bytes from the socket: receiveany where the socket has it
-- (lua-nginx-module 0.10.14+), else one line with its CRLF put back (the
-- socket drops it; the parser still judges the framing).
function Cosocket:_receive_some()
  local sock = self._sock
  if not self:_arm() then return self:_fail("timeout", "read timed out") end
  local data, err
  self._read = true
  if sock.receiveany then
    data, err = sock:receiveany(READ_MAX)
  else
    data, err = sock:receive("*l")
    if data then data = data .. "\r\n" end
  end
  if not data then
    return self:_read_failure(err)
  end
  return data
end

--- read_reply(parser) -> reply | nil, kind, msg. The parser is the only
-- judge of framing and limits (SPEC 7).
function Cosocket:read_reply(parser)
  if self._closed then return self:_closed_failure() end
  if self._mc then return self:_drive(self._mc.read_reply, parser) end
  while true do
    local reply, kind, msg = parser:next()
    if reply then return reply end
    if reply == nil then return self:_fail(kind or "protocol", msg) end
    local data, rkind, rmsg = self:_receive_some()
    if not data then return nil, rkind, rmsg end
    local ok, fkind, fmsg = parser:feed(data)
    if not ok then return self:_fail(fkind or "protocol", fmsg) end
  end
end

--- receive_some([max]) -> bytes | nil, kind, msg: what arrived, as the
-- C connection's receive_some (decrypted under our TLS).
function Cosocket:receive_some(max)
  if self._closed then return self:_closed_failure() end
  if self._mc then return self:_drive(self._mc.receive_some, max) end
  return self:_receive_some()
end

--- send_data(stuffer, chunk [, final [, bdat [, prefix [, trailer]]]])
-- -> bytes encoded | nil, kind, msg. The chunk goes through the C
-- encoder; with 'final' its tail (the terminator for DATA) follows; with
-- 'bdat' the bytes are framed as "BDAT n[ LAST]" (RFC 3030). 'prefix'
-- and 'trailer' are pipelined command bytes sent in the same write. A
-- message the encoder refuses fails with a fourth value "source".
function Cosocket:send_data(stuffer, chunk, final, bdat, prefix, trailer)
  if self._closed then return self:_closed_failure() end
  if self._mc then
    local n, ev, msg, where = self._mc:send_data(stuffer, chunk, final, bdat, prefix, trailer)
    if n == nil then
      self:_fail(ev, msg)
      return nil, ev, msg, where
    end
    local ok, kind, m
    if ev then ok, kind, m = self:_drive(self._mc.flush) else ok, kind, m = self:_push() end
    if not ok then return nil, kind, m end
    return n
  end
  local body, kind, msg = stuffer:encode(chunk or "")
  local tail = ""
  if body and final then tail, kind, msg = stuffer:finish() end
  if not body or not tail then
    -- The message cannot go as text (a NUL outside BINARYMIME, review
    -- L14): as the C transport, nothing of it is sent and the
    -- connection is closed so that no terminator can follow.
    self:_fail(kind or "usage", msg)
    return nil, kind or "usage", msg, "source"
  end
  local n = #body + #tail
  local parts = {}
  if prefix and prefix ~= "" then parts[#parts + 1] = prefix end
  if bdat then parts[#parts + 1] = "BDAT " .. n .. (final and " LAST" or "") .. "\r\n" end
  parts[#parts + 1] = body
  if tail ~= "" then parts[#parts + 1] = tail end
  if trailer and trailer ~= "" then parts[#parts + 1] = trailer end
  local ok, wkind, wmsg = self:_write(parts)
  if not ok then return nil, wkind, wmsg end
  return n
end

local function field(v)
  if v == nil then return "-" end
  v = tostring(v)
  return #v .. ":" .. v
end

-- Whether to verify and the name to check, for a TLS config object
-- (smtp.tls_config) or a table of its options.
local function tls_settings(cfg, peer)
  local verify, name = true, nil
  if type(cfg) == "table" then
    verify = not (cfg.verify == false or cfg.verify == "none")
    name = cfg.server_name
  elseif type(cfg) == "userdata" then
    local ok, mode = pcall(function() return cfg:verify_mode() end)
    verify = not (ok and mode == "none")
    local ok2, sn = pcall(function() return cfg:server_name() end)
    if ok2 then name = sn end
  end
  if type(name) ~= "string" then name = peer end
  return verify, name
end

-- The name as a DNS name, or nil for an address literal (no SNI for it,
-- RFC 6066 3) and for no name at all.
local function dns_name(name)
  if type(name) ~= "string" or name == "" or name:find("^[%d.]+$") or name:find("[:%[%]]") then return nil end
  return name
end

-- What a TLS session on this transport amounts to: verify mode and the
-- name checked (or only sent as SNI). Nothing else reaches nginx.
local function tls_key(verify, name)
  return (verify and "peer" or "none") .. field(dns_name(name))
end

-- Options of smtp.tls_config that nginx, not this adapter, decides
-- (lua_ssl_trusted_certificate, lua_ssl_protocols, ...). Refused in a
-- table and in a config object alike (review L9r): accepting either would
-- drop a CA pin or a version floor silently.
local UNSUPPORTED = { "ca_file", "ca_path", "ca_pem", "cert_file", "key_file", "cert_pem", "key_pem",
  "key_password", "min_version", "max_version", "ciphersuites", "groups",
  -- nginx's sslhandshake shows no certificate to compare a key pin with.
  "pin_sha256" }

local function refuse_tls_option(k)
  error(Error.new { kind = "usage", message = "TLS option '" .. k .. "' cannot be honoured by the cosocket"
    .. " transport (nginx's lua_ssl_* directives decide trust, versions and client certificates there);"
    .. " remove it or use the C transport" }, 0)
end

local function check_tls_options(tls, engine)
  -- Our engine honours every option, as on the C socket.
  if engine ~= "host" then return end
  local given
  if type(tls) == "table" then
    given = tls
  elseif type(tls) == "userdata" then
    -- A config object from smtp.tls_config lists the options it was made
    -- with; anything else that is not one cannot be checked, so is refused.
    local ok, names = pcall(function() return tls:given_options() end)
    if not ok or type(names) ~= "table" then
      error(Error.new { kind = "usage", message = "tls must be a table of options or an smtp.tls_config object" }, 0)
    end
    given = {}
    for _, k in ipairs(names) do given[k] = true end
  else
    return
  end
  for _, k in ipairs(UNSUPPORTED) do
    if given[k] ~= nil then refuse_tls_option(k) end
  end
end

-- lua-smtp's TLS over the socket (issue 27) ---------------------------------

-- The largest TLS record a server may send: 2^14 bytes of plaintext plus
-- 2048 of expansion (RFC 5246 6.2.3), and its 5-byte header.
local RECORD_MAX = 16384 + 2048 + 5

-- Ciphertext from the socket: whatever arrived (receiveany), else one TLS
-- record read by the length in its header (a socket that can only read
-- exact counts, as HAProxy's). A header that is not a TLS record's (a
-- content type outside 20-24, another major version, a length no record
-- has) goes to the TLS engine alone, which refuses it at once, rather
-- than waiting for bytes that will not come.
function Cosocket:_receive_tls()
  local sock = self._sock
  if sock.receiveany then return self:_receive_some() end
  if not self:_arm() then return self:_fail("timeout", "read timed out") end
  local head, err = sock:receive(5)
  if not head then
    return self:_read_failure(err)
  end
  local ctype, major = head:byte(1), head:byte(2)
  local len = head:byte(4) * 256 + head:byte(5)
  if ctype < 20 or ctype > 24 or major ~= 3 or len == 0 or len + 5 > RECORD_MAX then return head end
  if not self:_arm() then return self:_fail("timeout", "read timed out") end
  local body
  body, err = sock:receive(len)
  if not body then
    return self:_read_failure(err)
  end
  return head .. body
end

-- Writes what the memory connection has for the server; the second
-- value says whether there was anything.
function Cosocket:_push()
  local out = self._mc:take_output()
  if out == nil then return true, false end
  local ok, kind, msg = self:_write(out)
  if not ok then return nil, kind, msg end
  return true, true
end

-- Runs op(mc, ...) until it stops wanting I/O, carrying the bytes it
-- writes to the socket and the bytes it waits for from it.
function Cosocket:_drive(op, ...)
  local mc = self._mc
  for _ = 1, math.huge do
    local r, kind, ev, extra = op(mc, ...)
    if r == nil and kind ~= "want" then
      -- What it wrote last (an alert) stays unsent: C has closed, the
      -- stream may be hostile.
      self:_fail(kind, ev)
      return nil, kind, ev, extra
    end
    local ok, pushed, msg = self:_push()
    if not ok then return nil, pushed, msg end
    if r ~= nil then return r, kind, ev, extra end
    if ev == "r" then
      local data, k, m = self:_receive_tls()
      if not data then return nil, k, m end
      local fed, fk, fm = mc:feed(data)
      if not fed then return self:_fail(fk, fm) end
    elseif not pushed then
      -- Wanting to write with nothing to carry cannot end.
      return self:_fail("io", "TLS over the socket made no progress")
    end
  end
end

-- The handshake in a memory connection of our own: the same checks
-- (certificate, host name, IP SANs, resumption through the config,
-- channel binding) as on the C socket.
function Cosocket:_own_tls(cfg, peer)
  if not core.memory_conn then return self:_fail("tls", "this build of smtp.core has no memory connections") end
  self._mc = core.memory_conn(self._label or "")
  local ok, kind, msg = self:_drive(self._mc.starttls, cfg, peer)
  if not ok then
    if kind == "want" then kind = "tls" end
    return nil, kind, msg
  end
  local info = self._mc:tls_info() or {}
  self._tls = { peer_verified = info.peer_verified == true, own = true }
  return true
end

local STARTTLS_NEEDS_RECEIVEANY = "STARTTLS needs a transport with receiveany (lua-nginx-module 0.10.14+):"
  .. " through receive(\"*l\") bytes injected after the 220 reply cannot be detected; use implicit TLS"

--- starttls(config, peer_name) -> true | nil, kind, msg: the socket's own
-- handshake. Certificates are checked per nginx's
-- lua_ssl_trusted_certificate, and the DNS name (config's server_name,
-- else peer_name) whenever 'verify' is "peer"; with no DNS name to
-- check, verify "peer" is refused.
function Cosocket:starttls(cfg, peer)
  if self._closed then return self:_closed_failure() end
  if self._tls then error("TLS is already active on this connection", 2) end
  if self._engine ~= "host" then return self:_own_tls(cfg, peer) end
  local sock = self._sock
  if not sock.sslhandshake then
    return self:_fail("tls", "this transport has no sslhandshake")
  end
  -- Implicit TLS starts before any read, so nothing can be buffered yet.
  if self._read and not sock.receiveany then return self:_fail("tls", STARTTLS_NEEDS_RECEIVEANY) end
  local verify, name = tls_settings(cfg, peer)
  local sni = dns_name(name)
  if verify and not sni then
    local what = (type(name) == "string" and name ~= "") and "the IP address " .. name or "a server without a name"
    return self:_fail("tls", "cannot verify " .. what .. " over the cosocket transport (nginx checks host"
      .. " names only): give tls.server_name, the name in the server's certificate, or use the C transport")
  end
  if not self:_arm() then return self:_fail("timeout", "TLS handshake timed out") end
  local ok, err = sock:sslhandshake(false, sni, verify)
  if not ok then
    if err == "timeout" then return self:_fail("timeout", "TLS handshake timed out") end
    return self:_fail("tls", "TLS handshake failed: " .. tostring(err))
  end
  self._tls = { peer_verified = verify, key = tls_key(verify, sni) }
  self._handshake_only = verify
  return true
end

--- What TLS is up: with our engine, the C connection's full table;
-- with nginx's, `{peer_verified=}` only (the cosocket API names neither
-- the version nor the cipher); nil before TLS.
function Cosocket:tls_info()
  if not self._tls then return nil end
  if self._mc then return self._mc:tls_info() end
  return { version = nil, cipher = nil, peer_subject = nil, peer_verified = self._tls.peer_verified }
end

--- The channel binding SCRAM-*-PLUS uses (our engine only).
function Cosocket:tls_channel_binding()
  if not self._mc then return nil, "usage", "channel binding needs lua-smtp's TLS engine (tls_engine = \"host\")" end
  return self._mc:tls_channel_binding()
end

--- "[a.b.c.d]" when the socket can tell its own address (for EHLO).
function Cosocket:local_literal()
  local sock = self._sock
  if self._closed or not sock.getsockname then return nil end
  local ok, ip = pcall(sock.getsockname, sock)
  if not ok or type(ip) ~= "string" then return nil end
  if ip:find(":", 1, true) then return "[IPv6:" .. ip .. "]" end
  return "[" .. ip .. "]"
end

function Cosocket:is_closed()
  return self._closed
end

--- Closes the socket (after TLS close_notify, best effort, with our
-- engine). Closing twice is harmless.
function Cosocket:close()
  if self._closed then return end
  self._closed = true
  local mc = self._mc
  if mc then
    mc:close()
    local out = mc:take_output()
    if out and self:_arm() then pcall(self._sock.send, self._sock, out) end
  end
  pcall(self._sock.close, self._sock)
end

--- Whether the client's state ('tls' on, 'authenticated') is what this
-- connection's pool name promises, so it may be pooled: the same TLS
-- (verify mode and name) as the connect options asked for, or none when
-- they asked for none; authenticated when they carried credentials.
function Cosocket:pool_accepts(tls, authenticated)
  local promise = self._promise
  if not promise then return false end
  -- Our TLS state is in this request's C connection, which the socket's
  -- pool cannot carry to another request: such a connection ends (QUIT);
  -- the next one resumes its TLS session through the same tls_config.
  if self._mc then return false end
  local key = self._tls and self._tls.key or nil
  if (tls and true or false) ~= (key ~= nil) or key ~= promise.tls then return false end
  return authenticated or not promise.creds
end

--- Hands the connection to the socket's keepalive pool, remembering
-- 'state' (the client's TLS, EHLO and authentication state) for the
-- next connection taken from the same pool. The adapter is closed
-- afterwards whatever the outcome.
function Cosocket:setkeepalive(idle_ms, pool_size, state)
  if self._closed then return self:_closed_failure() end
  self._closed = true
  if not self._pool then
    pcall(self._sock.close, self._sock)
    return nil, "usage", "this connection was not opened through a named pool"
  end
  local sock = self._sock
  if not sock.setkeepalive then
    pcall(sock.close, sock)
    return nil, "usage", "this transport has no keepalive pool"
  end
  local ok, err = sock:setkeepalive(idle_ms, pool_size)
  if not ok then
    pcall(sock.close, sock)
    return nil, "io", "setkeepalive failed: " .. tostring(err)
  end
  pool_states[self._pool] = { state = state, tls = self._tls }
  return true
end

--- For a connection taken from the pool: the client state it was left
-- in (nil when unknown), with this adapter's TLS facts restored.
function Cosocket:resume_state()
  local saved = self._pool and pool_states[self._pool]
  if not saved then return nil end
  -- Re-checked: the saved TLS must be the one the pool name promises.
  local key = saved.tls and saved.tls.key or nil
  if not self._promise or key ~= self._promise.tls then return nil end
  self._tls = saved.tls and { peer_verified = saved.tls.peer_verified, key = key } or nil
  return saved.state
end

--- The opaque key of the credentials and TLS wishes in 'opts' (for
-- authenticate on a pooled connection).
function Cosocket:credentials_key(opts)
  return M.credentials_key(opts, self._engine)
end

--- The credentials key this connection's pool was named with.
function Cosocket:pool_credentials()
  return self._creds
end

-- Pooling -------------------------------------------------------------------
-- A pooled connection keeps the state it had (TLS, EHLO capabilities,
-- authentication); the pool name carries what decides that state, so a
-- connection authenticated as one user, or set up with other TLS
-- settings, is never handed to another. Credentials go into names only
-- through a keyed hash (HMAC-SHA-256 with a per-process random key kept
-- in C, smtp.core.pool_key): names are handed to the socket and kept in
-- pool_states, neither of which may learn a password.

local function digest(s)
  local d, _, msg = core.pool_key(s)
  if not d then error(Error.new { kind = "io", message = msg }, 0) end
  return d
end

--- The credentials and TLS wishes of an options table, as one opaque
-- string (compared, never shown). Raises kind usage for TLS options
-- this transport cannot honour.
function M.credentials_key(opts, engine)
  check_tls_options(opts.tls, engine or opts.tls_engine)
  local tls
  if opts.tls ~= nil then tls = tls_key(tls_settings(opts.tls, opts.tls_peer)) end
  return digest(concat({ field(opts.user), field(opts.authz), field(opts.password),
    field(opts.token), field(tls), field(opts.tls_required) }, "|"))
end

--- The pool name for connect options.
function M.pool_name(opts, host, port, mode)
  return concat({ "smtp", host, tostring(port), mode, field(opts.local_name),
    M.credentials_key(opts) }, "|")
end

--- Raises, before any byte is sent, for what smtp.connect's options ask
-- of this transport that it cannot do: TLS options it cannot honour
-- (usage) and STARTTLS without receiveany (tls).
function M.check(sock, opts, mode)
  check_tls_options(opts.tls, opts.tls_engine)
  if opts.tls_engine == "host" and mode ~= "implicit" and opts.tls ~= nil and not sock.receiveany then
    error(Error.new { kind = "tls", message = STARTTLS_NEEDS_RECEIVEANY }, 0)
  end
end

-- Connecting -------------------------------------------------------------------

--- Connects (when the socket is not connected yet) and wraps `sock`.
-- Returns the adapter and whether the connection came from the keepalive
-- pool, or nil, kind, msg.
function M.connect(sock, host, port, deadline, opts, pool)
  local t = M.wrap(sock, opts)
  t._label = tostring(host) .. ":" .. tostring(port)
  t._creds = M.credentials_key(opts)
  -- What a connection of this pool must be in to be pooled.
  t._promise = {
    tls = opts.tls ~= nil and tls_key(tls_settings(opts.tls, opts.tls_peer or host)) or nil,
    creds = opts.user ~= nil or opts.password ~= nil or opts.token ~= nil,
  }
  t:set_deadline(deadline)
  -- getreusedtimes() is nil on a socket that is not connected yet.
  local reused = t:reused_times()
  if reused == nil and sock.getreusedtimes then
    local ok, kind, msg = t:connect(host, port, pool)
    if not ok then return nil, kind, msg end
    reused = t:reused_times() or 0
  end
  return t, (reused or 0) > 0
end

M.Cosocket = Cosocket
return M
