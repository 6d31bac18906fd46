--- lua-smtp: an SMTP client (RFC 5321) with a C core.
-- Public surface only: connect, send, message, tls_config,
-- auth_mechanisms, debug, the port numbers, VERSION and Error.
-- Modelled on Ocamlnet's Netsmtp (see SPEC.md).
-- @module smtp
local core = require "smtp.core"
local Error = require "smtp.error"
local Client = require "smtp.client"
local extensions = require "smtp.extensions"
local trace = require "smtp.trace"
local socket_transport = require "smtp.transport.socket"
local loop_transport = require "smtp.transport.loop"
local loops = require "smtp.loop"
local url = require "smtp.url"
local idna = require "smtp.idna"

local type, tostring, tonumber, pairs, ipairs, error, pcall = type, tostring, tonumber, pairs, ipairs, error, pcall

local smtp = {}

--- Library version.
smtp.VERSION = "0.1.0"
--- 25, the SMTP port (Netsmtp.tcp_port).
smtp.tcp_port = 25
--- 587, message submission (RFC 6409).
smtp.submission_port = 587
--- 465, submission over implicit TLS (RFC 8314).
smtp.smtps_port = 465

--- The error class; `smtp.Error.is(v)` tells whether v is one.
smtp.Error = Error

--- Event-loop adapters (SPEC 5.1): `smtp.loop.cqueues()`,
-- `smtp.loop.luv([uv])`, `smtp.loop.copas()`; see `smtp.loop`.
smtp.loop = loops

--- Monotonic seconds (a float): the clock of every deadline a loop's
-- `wait` receives.
smtp.now = core.now

local function usage(msg)
  error(Error.new { kind = "usage", message = msg }, 0)
end

local connect_transport

local phases = {
  connect = true, greeting = true, mail = true, rcpt = true,
  data_init = true, data_block = true, data_end = true,
  command = true, auth = true, starttls = true,
}

local proxy_types = { socks5 = true, http = true }

-- SPEC 1.1 'proxy'. Messages never quote the credentials.
local function check_proxy(proxy, host)
  if type(proxy) ~= "table" then usage("smtp.connect: 'proxy' must be a table") end
  if not proxy_types[proxy.type] then usage("smtp.connect: proxy.type must be \"socks5\" or \"http\"") end
  if type(proxy.host) ~= "string" or proxy.host == "" or proxy.host:find("[%c%s]") then
    usage("smtp.connect: proxy.host must be a host name or IP address")
  end
  local port = proxy.port
  if type(port) ~= "number" or port % 1 ~= 0 or port < 1 or port > 65535 then
    usage("smtp.connect: proxy.port must be an integer from 1 to 65535")
  end
  for _, k in pairs({ "user", "password" }) do
    local v = proxy[k]
    if v ~= nil and (type(v) ~= "string" or #v > 255 or v:find("%z")) then
      usage("smtp.connect: proxy." .. k .. " must be a string of at most 255 bytes without NUL")
    end
  end
  if proxy.user == "" or (proxy.password ~= nil and proxy.user == nil) then
    usage("smtp.connect: proxy.user must be non-empty when credentials are given")
  end
  if proxy.type == "http" and proxy.user and proxy.user:find(":", 1, true) then
    usage("smtp.connect: proxy.user cannot contain ':' with an HTTP proxy (RFC 7617)")
  end
  if host:sub(1, 1) == "/" or #host > 255 or host:find("[%c%s]") then
    usage("smtp.connect: with a proxy, 'host' must be a host name or IP address")
  end
end

-- NaN passes "v <= 0" and an infinite value would turn into no deadline
-- at all in C (review L11): a wait is bounded or refused.
local MAX_SECONDS = 1e9
local function valid_seconds(v)
  return type(v) == "number" and v > 0 and v < MAX_SECONDS
end

local function check_connect_opts(opts)
  if type(opts) ~= "table" then usage("smtp.connect expects a table of options") end
  if type(opts.host) ~= "string" or opts.host == "" then
    usage("smtp.connect: 'host' is required (a name, an IP address or a socket path)")
  end
  if opts.host:find("[\r\n%z]") then usage("smtp.connect: 'host' contains CR, LF or NUL") end
  local port = opts.port
  if port ~= nil then
    port = tonumber(port)
    if not port or port < 1 or port > 65535 or port % 1 ~= 0 then
      usage("smtp.connect: 'port' must be an integer from 1 to 65535")
    end
  end
  if opts.timeout ~= nil and not valid_seconds(opts.timeout) then
    usage("smtp.connect: 'timeout' must be a positive, finite number of seconds (below 1e9)")
  end
  if opts.timeouts ~= nil then
    if type(opts.timeouts) ~= "table" then usage("smtp.connect: 'timeouts' must be a table") end
    for k, v in pairs(opts.timeouts) do
      if not phases[k] then usage("smtp.connect: unknown timeout phase '" .. tostring(k) .. "'") end
      if not valid_seconds(v) then
        usage("smtp.connect: timeouts." .. k .. " must be a positive, finite number of seconds (below 1e9)")
      end
    end
  end
  local mode = opts.tls_mode or "none"
  if mode ~= "none" and mode ~= "implicit" then
    usage("smtp.connect: 'tls_mode' must be \"none\" or \"implicit\"")
  end
  local protocol = opts.protocol or "smtp"
  if protocol ~= "smtp" and protocol ~= "lmtp" then
    usage("smtp.connect: 'protocol' must be \"smtp\" or \"lmtp\"")
  end
  if opts.local_name ~= nil and (type(opts.local_name) ~= "string" or opts.local_name:find("[%s%z]")) then
    usage("smtp.connect: 'local_name' must be a name without spaces or control characters")
  end
  if opts.local_address ~= nil and (type(opts.local_address) ~= "string" or opts.local_address == "") then
    usage("smtp.connect: 'local_address' must be an IP address")
  end
  if opts.proxy ~= nil then check_proxy(opts.proxy, opts.host) end
  if opts.loop ~= nil then
    loops.check(opts.loop, "smtp.connect")
    if opts.transport ~= nil then
      usage("smtp.connect: 'loop' and 'transport' exclude each other (a transport brings its own waiting)")
    end
  end
  if opts.tls_engine ~= nil then
    if opts.tls_engine ~= "lua-smtp" and opts.tls_engine ~= "host" then
      usage("smtp.connect: 'tls_engine' must be \"lua-smtp\" (the default) or \"host\" (the transport's sslhandshake)")
    end
    if opts.transport == nil then
      usage("smtp.connect: 'tls_engine' applies to a caller's transport only")
    end
  end
  for _, k in ipairs({ "tls_required", "allow_plaintext" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then usage("smtp.connect: '" .. k .. "' must be a boolean") end
  end
  if opts.tls ~= nil and type(opts.tls) ~= "table" and type(opts.tls) ~= "userdata" then
    usage("smtp.connect: 'tls' must be an smtp.tls_config object or a table of its options")
  end
  return port, mode
end

--- Builds an RFC 5322 / MIME message (SPEC section 2, Netsendmail.compose):
-- `from`, `to`, `cc`, `bcc`, `reply_to`, `sender`, `subject`, `date`,
-- `message_id`, `headers`, `text`, `html`, `attachments`, `charset`.
-- The result streams with `msg:source()` and is accepted by `sendmail`.
-- @tparam table spec
-- @treturn smtp.Message
function smtp.message(spec)
  return require("smtp.message").new(spec)
end

--- A pool of connections over several servers, with retry, failover,
-- weighted spreading and rate limits (lua/smtp/pool.lua).
-- @tparam table opts see `smtp.Pool.new`
-- @treturn smtp.Pool
function smtp.pool(opts)
  return require("smtp.pool").new(opts)
end

--- A durable spool of messages in `dir` (lua/smtp/outbox.lua):
-- `put` queues, `run(sender)` delivers with retries; crash-safe.
-- @tparam string dir
-- @tparam[opt] table opts `retry`, `on_unknown`
function smtp.outbox(dir, opts)
  return require("smtp.outbox").open(dir, opts)
end

--- Senders with smtp.pool's `send(msg, opts)` and report that need no
-- SMTP server (lua/smtp/sender.lua): `smtp.sender.sendmail{path=,
-- args=, timeout=}`, `smtp.sender.maildir(dir)`, `smtp.sender.memory()`.
smtp.sender = require "smtp.sender"

--- A reusable TLS configuration (mbedTLS). See SPEC section 3.
-- `min_version`/`max_version` ("1.2", "1.3") bound the protocol; TLS 1.3
-- needs the mbedTLS 3.6 build, the default (kind `tls` under
-- MBEDTLS=system). The object keeps the last TLS session per server, so
-- the next connection made with it resumes (abbreviated handshake);
-- `session_cache = false` turns that off.
-- `ciphersuites` and `groups` are lists of IANA names in the order wanted
-- (e.g. {"TLS_AES_128_GCM_SHA256"}, {"x25519", "secp256r1"}); one this
-- build lacks is kind `usage`.
-- `pin_sha256` (a list of base64 SHA-256 hashes of SubjectPublicKeyInfo,
-- curl's `sha256//` prefix optional) pins the leaf's key, checked with the
-- CA and name, or instead of them with `verify = "pin"` (README "Key pinning").
-- @tparam table opts `verify`, `ca_file`, `ca_path`, `ca_pem`, `cert_file`,
-- `key_file`, `cert_pem`, `key_pem`, `key_password`, `min_version`,
-- `max_version`, `server_name`, `session_cache`, `ciphersuites`, `groups`,
-- `pin_sha256`
function smtp.tls_config(opts)
  if type(opts) ~= "table" then usage("smtp.tls_config expects a table of options") end
  if not core.tls_config then
    error(Error.new { kind = "tls", message = "this build has no TLS support" }, 0)
  end
  local cfg, kind, msg = core.tls_config(require("smtp.idna").tls_options(opts))
  if not cfg then error(Error.new { kind = kind or "tls", message = msg }, 0) end
  return cfg
end

-- A caller's transport (SPEC 1.1 'transport', SPEC 5): an OpenResty
-- cosocket or an object with its methods, connected here when it is not
-- yet. A connection taken from the keepalive pool (client:set_keepalive)
-- has no greeting; it resumes its saved state if it still answers RSET,
-- else it is dropped and another is tried.
function connect_transport(opts, port, mode, deadline)
  local sock = opts.transport
  local haproxy = require "smtp.transport.haproxy"
  -- HAProxy's core.tcp() differs from a cosocket in units and words.
  if haproxy.is_haproxy_socket(sock) then sock = haproxy.wrap(sock) end
  local ok_type = type(sock) == "table" or type(sock) == "userdata"
  if not ok_type or not (sock.send and sock.close and (sock.receiveany or sock.receive)) then
    usage("smtp.connect: 'transport' must be a cosocket-like object (send, receive, close, ...)")
  end
  if opts.proxy ~= nil or opts.local_address ~= nil then
    usage("smtp.connect: 'proxy' and 'local_address' do not apply to a caller's transport")
  end
  local cosocket = require "smtp.transport.cosocket"
  cosocket.check(sock, opts, mode)
  local pool = cosocket.pool_name(opts, opts.host, port, mode)
  for _ = 1, 4 do
    local t, reused, msg = cosocket.connect(sock, opts.host, port, deadline, opts, pool)
    if not t then error(Error.new { kind = reused or "io", message = msg, retryable = true }, 0) end
    local client = Client.new(t, opts)
    if not reused then
      if mode == "implicit" then
        client:_start_tls(opts.tls, opts.tls_peer or opts.host, "connect")
      end
      client:_greet()
      return client
    end
    local state = t:resume_state()
    if state and client:_resume(state) then return client end
    t:close()
  end
  error(Error.new { kind = "io", retryable = true,
    message = "no pooled connection answered and no fresh one could be opened" }, 0)
end

-- DNS, SNI and the certificate's names all want the A-label form of an
-- internationalised host: converted once here, every transport and
-- resolver (C, c-ares, event loops, a proxy's remote DNS) gets it.
local function with_ascii_host(opts)
  if opts.host:sub(1, 1) == "/" then return opts end
  local host = idna.to_ascii(opts.host, "smtp.connect: host")
  local peer = idna.to_ascii(opts.tls_peer, "smtp.connect: tls_peer")
  local proxy = opts.proxy
  local proxy_host = proxy and idna.to_ascii(proxy.host, "smtp.connect: proxy.host")
  if host == opts.host and peer == opts.tls_peer and (not proxy or proxy_host == proxy.host) then return opts end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.host, o.tls_peer = host, peer
  if proxy and proxy_host ~= proxy.host then
    o.proxy = {}
    for k, v in pairs(proxy) do o.proxy[k] = v end
    o.proxy.host = proxy_host
  end
  return o
end

--- Opens a connection and reads the greeting. See SPEC section 1.1.
-- `timeouts` may name the phases `connect`, `greeting`, `mail`, `rcpt`,
-- `data_init`, `data_block`, `data_end` (RFC 5321 4.5.3.2) and `command`,
-- `auth`, `starttls`; any phase not named uses `timeout` (default 60 s).
-- With `tls_mode = "none"`, a `tls` option asks for STARTTLS before the
-- first transaction (also when `sendmail` comes without `authenticate`),
-- required unless `tls_required = false`.
-- @tparam table opts `host` (required), `port`, `timeout`, `timeouts`,
-- `tls_mode`, `tls`, `tls_required`, `transport`, `proxy`, `local_address`,
-- `protocol`, `debug`, `local_name`, `loop` (SPEC 5.1: every wait goes
-- through the loop's `wait`; see `smtp.loop`), `url` ("smtp://",
-- "smtps://", "lmtp://"; explicit options win over it: smtp.url)
-- @treturn smtp.Client
function smtp.connect(opts)
  opts = url.apply(opts, "smtp.connect: ")
  local port, mode = check_connect_opts(opts)
  -- "[::1]" as written in URLs and address literals.
  local bare_host = opts.host:match("^%[(.*)%]$")
  if bare_host then
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.host = bare_host:gsub("^IPv6:", "")
    opts = o
  end
  opts = with_ascii_host(opts)
  port = port or (mode == "implicit" and smtp.smtps_port or smtp.tcp_port)
  local timeouts = opts.timeouts or {}
  local deadline = core.now() + (timeouts.connect or opts.timeout or 60)
  if opts.transport ~= nil then return connect_transport(opts, port, mode, deadline) end
  local conn, kind, msg
  if opts.loop ~= nil then
    conn, kind, msg = loop_transport.connect(opts.loop, opts.host, port, deadline, opts.local_address, opts.proxy)
  else
    conn, kind, msg = socket_transport.connect(opts.host, port, deadline, opts.local_address, opts.proxy)
  end
  if not conn then
    error(Error.new { kind = kind or "io", message = msg, retryable = true }, 0)
  end
  local client = Client.new(conn, opts)
  if mode == "implicit" then
    client:_start_tls(opts.tls, opts.tls_peer or opts.host, "connect")
  end
  client:_greet()
  return client
end

--- Opens an LMTP connection (RFC 2033): `smtp.connect` with
-- `protocol = "lmtp"`. `host` may be a UNIX socket path (starting with
-- "/"); after the data, sendmail reads one reply per accepted recipient
-- and reports each.
-- @tparam table opts as for `smtp.connect`
-- @treturn smtp.Client
function smtp.lmtp_connect(opts)
  if type(opts) ~= "table" then usage("smtp.lmtp_connect expects a table of options") end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.protocol = "lmtp"
  return smtp.connect(o)
end

--- AUTH mechanisms named in an EHLO response (Netsmtp.auth_mechanisms).
-- @tparam {string,...} lines e.g. `client:helo_response()`
-- @treturn {string,...}
function smtp.auth_mechanisms(lines)
  if type(lines) ~= "table" then usage("smtp.auth_mechanisms expects a list of lines") end
  return extensions.auth_mechanisms(lines)
end

--- Protocol trace for every connection: `true` writes to stderr, a
-- function receives `(direction, line)`, `false` turns it off.
-- Credentials are masked before any hook sees them.
function smtp.debug(on_or_fn)
  trace.set_global(on_or_fn)
end

--- One call: connect, authenticate, sendmail, quit (SPEC section 4).
-- The connection is closed in every case.
-- @tparam table opts every option of `smtp.connect` (`url`, `host`, `port`,
-- `tls_mode`, `tls`, `timeout`, ...) and of `client:authenticate`
-- (`tls_required`, `user`, `password`, `token`, `mechanisms`, ...), plus
-- `message` (an `smtp.message`) or `raw` (a string, file or chunk
-- function), and the sendmail options `from`, `to`, `dsn`,
-- `all_or_nothing`, `chunking`, `requiretls`, `progress`, `dkim`,
-- `downgrade`.
-- A `token` function refused by the server is retried as in
-- `client:authenticate`, on a new connection if the server closed it.
-- @treturn table the sendmail report
function smtp.send(opts)
  if type(opts) ~= "table" then usage("smtp.send expects a table of options") end
  local msg = opts.message
  if msg == nil then msg = opts.raw end
  if msg == nil then usage("smtp.send: give 'message' or 'raw'") end
  -- The URL's user and password must reach authenticate below.
  opts = url.apply(opts, "smtp.send: ")
  -- A refused token function's retry may need a second connection.
  local client = require("smtp.oauth").open(function() return smtp.connect(opts) end, opts)
  local ok, result = pcall(function()
    return client:sendmail(msg, { from = opts.from, to = opts.to, dsn = opts.dsn,
      all_or_nothing = opts.all_or_nothing, progress = opts.progress,
      chunking = opts.chunking, requiretls = opts.requiretls, dkim = opts.dkim,
      downgrade = opts.downgrade })
  end)
  if ok then client:quit() else client:close() end
  if not ok then error(result, 0) end
  return result
end

--- A connection test (Nodemailer's `transporter.verify()`): connect,
-- EHLO, STARTTLS and AUTH as `smtp.send` would, then QUIT; nothing is
-- sent. Raises the smtp.Error a send would raise.
-- @tparam table opts the connection and authentication options of
-- `smtp.send` (message options are ignored)
-- @treturn table `server` (host), `port`, `greeting` (the 220 text),
-- `extensions` (EHLO keywords as `client:extensions()`), `ehlo` (the
-- response lines), `size` (SIZE limit or nil), `tls` (`client:tls_info()`
-- or nil), `authenticated`, `mechanism` (or nil) and `ms` (elapsed)
function smtp.verify(opts)
  if type(opts) ~= "table" then usage("smtp.verify expects a table of options") end
  opts = url.apply(opts, "smtp.verify: ")
  local start = core.now()
  local client = require("smtp.oauth").open(function() return smtp.connect(opts) end, opts)
  local result = client:_summary()
  client:quit()
  result.server = opts.host
  result.port = tonumber(opts.port) or (opts.tls_mode == "implicit" and smtp.smtps_port or smtp.tcp_port)
  result.ms = math.floor((core.now() - start) * 1000 + 0.5)
  return result
end

return smtp
