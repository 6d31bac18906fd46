-- An OpenResty cosocket (ngx.socket.tcp()) as a transport (DESIGN.md), or
-- any object with the same methods (connect, send, receiveany or receive,
-- sslhandshake, settimeouts or settimeout, close, setkeepalive), so other
-- event loops can plug in. All waits are the socket's own, so an nginx
-- worker keeps serving while a slow server is talked to (SPEC 5). The C
-- reply parser and DATA encoder judge and shape every byte; this file only
-- moves them. STARTTLS (RFC 3207) and implicit TLS (RFC 8314) use the
-- socket's sslhandshake. Any failure closes the socket (DESIGN D).
local core = require "smtp.core"

local type, tostring, setmetatable, pcall, concat, floor =
  type, tostring, setmetatable, pcall, table.concat, math.floor
local now = core.now

local M = {}

-- Pool name -> the state its connections were left in (per worker).
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
    pcall(self._sock.close, self._sock)
  end
  return nil, kind, msg
end

-- A cosocket error string to a kind: "timeout" is the only one it names.
local function kind_of(err)
  if err == "timeout" then return "timeout" end
  return "io"
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
  if not n then
    return self:_fail(kind_of(err), "write failed: " .. tostring(err))
  end
  return true
end

--- send(data | {data, ...}) -> true | nil, kind, msg
function Cosocket:send(data)
  if self._closed then return self:_closed_failure() end
  return self:_write(data)
end

-- Some bytes from the socket: receiveany where the socket has it
-- (lua-nginx-module 0.10.14+), else one line with its CRLF put back (the
-- socket drops it; the parser still judges the framing).
function Cosocket:_receive_some()
  local sock = self._sock
  if not self:_arm() then return self:_fail("timeout", "read timed out") end
  local data, err
  if sock.receiveany then
    data, err = sock:receiveany(READ_MAX)
  else
    data, err = sock:receive("*l")
    if data then data = data .. "\r\n" end
  end
  if not data then
    if err == "closed" then return self:_fail("io", "connection closed by the server") end
    return self:_fail(kind_of(err), "read failed: " .. tostring(err))
  end
  return data
end

--- read_reply(parser) -> reply | nil, kind, msg. The parser is the only
-- judge of framing and limits (SPEC 7).
function Cosocket:read_reply(parser)
  if self._closed then return self:_closed_failure() end
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

--- send_data(stuffer, chunk [, final [, bdat [, prefix [, trailer]]]])
-- -> bytes encoded | nil, kind, msg. The chunk goes through the C
-- encoder; with 'final' its tail (the terminator for DATA) follows; with
-- 'bdat' the bytes are framed as "BDAT n[ LAST]" (RFC 3030). 'prefix'
-- and 'trailer' are pipelined command bytes sent in the same write.
function Cosocket:send_data(stuffer, chunk, final, bdat, prefix, trailer)
  if self._closed then return self:_closed_failure() end
  local body = stuffer:encode(chunk or "")
  local tail = final and stuffer:finish() or ""
  local n = #body + #tail
  local parts = {}
  if prefix and prefix ~= "" then parts[#parts + 1] = prefix end
  if bdat then parts[#parts + 1] = "BDAT " .. n .. (final and " LAST" or "") .. "\r\n" end
  parts[#parts + 1] = body
  if tail ~= "" then parts[#parts + 1] = tail end
  if trailer and trailer ~= "" then parts[#parts + 1] = trailer end
  local ok, kind, msg = self:_write(parts)
  if not ok then return nil, kind, msg end
  return n
end

-- TLS config objects (smtp.tls_config) say whether to verify and may
-- override the peer name; plain tables are read the same way.
local function tls_settings(cfg, peer)
  local verify, name = true, nil
  if type(cfg) == "userdata" or type(cfg) == "table" then
    local ok, mode = pcall(function() return cfg:verify_mode() end)
    if not ok then mode = cfg.verify end
    verify = mode ~= "none"
    local ok2, sn = pcall(function() return cfg:server_name() end)
    if ok2 and type(sn) == "string" then name = sn elseif type(cfg) == "table" then name = cfg.server_name end
  end
  return verify, name or peer
end

-- An address literal is no server name: no SNI for it (RFC 6066 3).
local function sni_name(name)
  if type(name) ~= "string" or name:find("^[%d.]+$") or name:find(":", 1, true) then return nil end
  return name
end

--- starttls(config, peer_name) -> true | nil, kind, msg: the socket's own
-- handshake (certificate check per nginx's lua_ssl_trusted_certificate;
-- the host name is checked whenever 'verify' is "peer").
function Cosocket:starttls(cfg, peer)
  if self._closed then return self:_closed_failure() end
  if self._tls then error("TLS is already active on this connection", 2) end
  local sock = self._sock
  if not sock.sslhandshake then
    return self:_fail("tls", "this transport has no sslhandshake")
  end
  local verify, name = tls_settings(cfg, peer)
  if not self:_arm() then return self:_fail("timeout", "TLS handshake timed out") end
  local ok, err = sock:sslhandshake(false, sni_name(name), verify)
  if not ok then
    if err == "timeout" then return self:_fail("timeout", "TLS handshake timed out") end
    return self:_fail("tls", "TLS handshake failed: " .. tostring(err))
  end
  self._tls = { peer_verified = verify and true or false }
  return true
end

--- `{peer_verified=}` once TLS is up (the cosocket API names neither the
-- version nor the cipher), else nil.
function Cosocket:tls_info()
  if not self._tls then return nil end
  return { version = nil, cipher = nil, peer_subject = nil, peer_verified = self._tls.peer_verified }
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

--- Closes the socket. Closing twice is harmless.
function Cosocket:close()
  if self._closed then return end
  self._closed = true
  pcall(self._sock.close, self._sock)
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
  pool_states[self._pool] = state
  return true
end

--- The opaque key of the credentials and TLS wishes in 'opts' (for
-- authenticate on a pooled connection).
function Cosocket.credentials_key(_, opts)
  return M.credentials_key(opts)
end

--- The credentials key this connection's pool was named with.
function Cosocket:pool_credentials()
  return self._creds
end

-- Pooling -------------------------------------------------------------------
-- A pooled connection keeps the state it had (TLS, EHLO capabilities,
-- authentication); the pool name carries what decides that state, so a
-- connection authenticated as one user is never handed to another.
-- States are remembered per worker, by pool name.

local secret

local function digest(s)
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and ngx.hmac_sha1 and ngx.encode_base64 then
    if not secret then
      local f = io.open("/dev/urandom", "rb")
      secret = (f and f:read(16) or "") .. tostring(now()) .. tostring({})
      if f then f:close() end
    end
    return ngx.encode_base64(ngx.hmac_sha1(secret, s))
  end
  -- In-process only (the pool lives in this process's memory).
  return s
end

local function field(v)
  if v == nil then return "-" end
  v = tostring(v)
  return #v .. ":" .. v
end

--- The credentials and TLS wishes of an options table, as one opaque
-- string (compared, never shown).
function M.credentials_key(opts)
  return digest(concat({ field(opts.user), field(opts.authz), field(opts.password),
    field(opts.token), field(opts.tls ~= nil), field(opts.tls_required) }, "|"))
end

--- The pool name for connect options.
function M.pool_name(opts, host, port, mode)
  return concat({ "smtp", host, tostring(port), mode, field(opts.local_name),
    M.credentials_key(opts) }, "|")
end

--- The state a pooled connection was left in (nil when unknown).
function M.pool_state(name)
  return pool_states[name]
end

-- Connecting -------------------------------------------------------------------

--- Connects (when the socket is not connected yet) and wraps `sock`.
-- Returns the adapter and whether the connection came from the keepalive
-- pool, or nil, kind, msg.
function M.connect(sock, host, port, deadline, opts, pool)
  local t = M.wrap(sock, opts)
  t._creds = M.credentials_key(opts)
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
