--- The SMTP client: dialogue, state and pipelining (RFC 5321, RFC 2920
-- PIPELINING, RFC 3030 CHUNKING, RFC 1870 SIZE, RFC 6152 8BITMIME,
-- RFC 6531 SMTPUTF8, RFC 3461 DSN, RFC 8689 REQUIRETLS, RFC 4954 AUTH).
-- It talks only to a transport (DESIGN.md): bytes out, whole replies in,
-- TLS start, deadline, close. Every failure is raised as an smtp.Error.
-- @classmod smtp.Client
local core = require "smtp.core"
local Error = require "smtp.error"
local extensions = require "smtp.extensions"
local address = require "smtp.address"
local idna = require "smtp.idna"
local trace = require "smtp.trace"
local envelope = require "smtp.envelope"
local pipeline = require "smtp.pipeline"

local type, tostring, ipairs, pairs, setmetatable, error, pcall =
  type, tostring, ipairs, pairs, setmetatable, error, pcall
local concat, sort = table.concat, table.sort
local now = core.now

local Client = {}
Client.__index = Client

-- RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF.
local MAX_COMMAND = 512
-- Body bytes gathered before a write: few syscalls, bounded memory.
local WRITE_BATCH = 65536
local BDAT_CHUNK = 1048576

local default_timeout = 60

--- Creates a client over a connected transport (used by smtp.connect).
-- @local
function Client.new(transport, opts)
  local self = setmetatable({
    _t = transport,
    _parser = core.reply_parser(),
    _timeout = opts.timeout or default_timeout,
    _timeouts = opts.timeouts or {},
    _hook = trace.hook_of(opts.debug),
    _host = opts.host,
    _port = opts.port,
    _local_name = opts.local_name,
    _protocol = opts.protocol or "smtp",
    _closed = false,
    _ext = nil,
    _helo_lines = nil,
    _tls = false,
    _tls_verified = false,
    _authenticated = false,
    -- smtp.connect{tls=} without implicit TLS asks for STARTTLS before
    -- the first transaction (review L3); tls_required as in authenticate.
    _conn_tls = opts.tls_mode ~= "implicit" and opts.tls or nil,
    _conn_tls_required = opts.tls_required,
    -- user and password of smtp.connect{url=}: authenticate's default.
    _url_creds = opts._url_creds,
  }, Client)
  return self
end

-- Tracing ---------------------------------------------------------------

-- A failing trace hook must not break the dialogue half-way through a
-- pipelined exchange: its errors are dropped.
function Client:_trace(direction, line)
  local hook = self._hook or trace.global()
  if hook then pcall(hook, direction, line) end
end

local function reply_lines_for_trace(reply)
  local out = {}
  local n = #reply.lines
  for i, text in ipairs(reply.lines) do
    local sep = i < n and "-" or " "
    local enh = reply.enhanced and (reply.enhanced .. " ") or ""
    out[i] = reply.code .. sep .. enh .. text
  end
  return out
end

-- Failures --------------------------------------------------------------

local function raise(fields)
  error(Error.new(fields), 0)
end

--- Closes the transport without a QUIT: the stream is out of sync or the
-- caller is done.
-- @local
function Client:_abort()
  if not self._closed then
    self._closed = true
    pcall(self._t.close, self._t)
  end
end

-- A transport failure (kind from the C layer) closes the client.
function Client:_transport_failure(kind, message, command, extra)
  self:_abort()
  local fields = { kind = kind or "io", message = message, command = command }
  if extra then for k, v in pairs(extra) do fields[k] = v end end
  raise(fields)
end

function Client:_check_open()
  if self._closed then
    raise { kind = "io", message = "connection is closed" }
  end
end

-- Raises for a reply outside the expected class. 4xx/5xx leave the client
-- usable (except 421, after which the server closes); anything else is a
-- protocol error and closes it.
function Client:_expect(reply, command, ok_low, ok_high, extra)
  local code = reply.code
  if code >= ok_low and code <= ok_high then return reply end
  local err = Error.from_reply(reply, command, extra)
  if err.kind == "protocol" or code == 421 then self:_abort() end
  error(err, 0)
end

-- I/O -------------------------------------------------------------------

function Client:_timeout_for(phase)
  return self._timeouts[phase] or self._timeout
end

function Client:_set_deadline(phase)
  self._t:set_deadline(now() + self:_timeout_for(phase))
end

local function check_command(line)
  if line:find("[\r\n%z]") then
    raise { kind = "usage", message = "command contains CR, LF or NUL", command = trace.mask_command(line) }
  end
  if #line + 2 > MAX_COMMAND then
    raise { kind = "usage", message = "command longer than 512 octets", command = trace.mask_command(line) }
  end
end

-- Sends one or more command lines in a single write. 'shown' replaces
-- the lines in the trace when they carry credentials.
-- Bytes already parsed but not asked for are an unsolicited reply (a
-- second greeting, a reply ahead of its command): the dialogue is out of
-- step, so nothing more may be sent.
function Client:_check_in_step(command)
  if self._parser:buffered() > 0 then
    self:_abort()
    raise { kind = "protocol", command = command,
      message = "unsolicited reply from the server before the command was sent" }
  end
end

function Client:_send_lines(lines, phase, shown)
  self:_check_open()
  self:_check_in_step(shown and shown[1] or lines[1])
  local wire = {}
  for i, line in ipairs(lines) do
    wire[i] = line .. "\r\n"
    self:_trace("C", shown and shown[i] or line)
  end
  self:_set_deadline(phase)
  local ok, kind, msg = self._t:send(#wire == 1 and wire[1] or wire)
  if not ok then
    self:_transport_failure(kind, msg, shown and shown[1] or lines[1])
  end
end

function Client:_trace_lines(lines)
  if self._hook or trace.global() then
    for _, l in ipairs(lines) do self:_trace("C", l) end
  end
end

-- Writes pre-formatted command bytes (already traced).
function Client:_send_raw(data, phase, command)
  self:_check_open()
  self:_check_in_step(command)
  self:_set_deadline(phase)
  local ok, kind, msg = self._t:send(data)
  if not ok then self:_transport_failure(kind, msg, command, { outcome = "not_sent" }) end
end

-- Reads one whole reply within the phase's deadline. A 421 at any step
-- ends the session (RFC 5321 3.8): the server closes, so nothing more is
-- sent (no RSET, no further RCPT or DATA) and the reply is raised as a
-- transient error with the client closed. The server refused whatever
-- the reply answers, so nothing of a transaction was accepted.
function Client:_read(phase, command, extra)
  self:_check_open()
  self:_set_deadline(phase)
  local reply, kind, msg = self._t:read_reply(self._parser)
  if not reply then
    self:_transport_failure(kind, msg, command, extra)
  end
  if self._hook or trace.global() then
    for _, l in ipairs(reply_lines_for_trace(reply)) do self:_trace("S", l) end
  end
  if reply.code == 421 then
    self:_abort()
    local fields = { recipient = extra and extra.recipient }
    if extra and extra.outcome then fields.outcome = "not_sent" end
    error(Error.from_reply(reply, command, fields), 0)
  end
  return reply
end

-- Sends a command and reads its reply, uninterpreted.
function Client:_command(line, phase, shown)
  check_command(line)
  self:_send_lines({ line }, phase or "command", shown and { shown } or nil)
  return self:_read(phase or "command", shown or line)
end

-- Greeting and EHLO -----------------------------------------------------

--- Reads the 220 greeting (called by smtp.connect).
-- @local
function Client:_greet()
  local reply = self:_read("greeting", nil)
  if reply.code == 220 then
    self._greeting = reply
    return reply
  end
  -- 554 (RFC 5321 3.1) or 421: no session; QUIT politely, then close.
  local err = Error.from_reply(reply, nil)
  if err.kind ~= "protocol" then
    pcall(self._send_lines, self, { "QUIT" }, "command")
  end
  self:_abort()
  error(err, 0)
end

local cached_fqdn

local function read_first_line(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local line = f:read("*l")
  f:close()
  return line and line:match("^%s*(%S+)%s*$")
end

-- The machine's FQDN without forking: /etc/mailname (Debian's mail name),
-- then /etc/hostname when it is dotted; else the connection's own address
-- as a literal (RFC 5321 4.1.4).
local function machine_fqdn()
  if cached_fqdn == nil then
    local name = read_first_line("/etc/mailname")
    if not (name and name:find("%.")) then
      name = read_first_line("/etc/hostname")
    end
    cached_fqdn = name and name:find("%.") and name:match("^[%w%.%-\128-\255]+$") and name or false
  end
  return cached_fqdn or nil
end

function Client:_default_local_name()
  local name = machine_fqdn()
  -- An internationalised machine name goes as A-labels; one libidn2
  -- refuses is no name at all, so the address literal stands in.
  local ok, alabel = pcall(idna.to_ascii, name)
  if name and ok then return alabel end
  local t = self._t
  return t.local_literal and t:local_literal() or "[127.0.0.1]"
end

--- Sends EHLO (LHLO for LMTP), falling back to HELO on 500/502, and
-- returns the response lines. The capability table is replaced.
-- @tparam[opt] string host the client's name (default `local_name`, else
-- the machine's FQDN, else an address literal)
-- @treturn {string,...} response lines
function Client:helo(host)
  return self:_helo(host, false)
end

-- EHLO; 'tls_needed' forbids the HELO fallback, which would leave a
-- session without STARTTLS (and would let a man in the middle strip TLS
-- by refusing EHLO): the refusal is then kind 'tls'.
function Client:_helo(host, tls_needed)
  host = host or self._local_name or self:_default_local_name()
  address.check_arg(host, "host")
  -- RFC 5321 4.1.1.1: the EHLO domain is ASCII, with SMTPUTF8 too (EHLO
  -- comes before anyone knows it is offered).
  host = idna.to_ascii(host, "EHLO name")
  local verb = self._protocol == "lmtp" and "LHLO" or "EHLO"
  local line = verb .. " " .. host
  local reply = self:_command(line)
  if tls_needed and reply.code >= 400 and reply.code < 600 then
    self:_abort()
    raise { kind = "tls", code = reply.code, enhanced = reply.enhanced, lines = reply.lines, command = line,
      message = "TLS required but the server refused " .. verb .. " (no HELO fallback without STARTTLS): " ..
        concat(reply.lines, " ") }
  end
  if (reply.code == 500 or reply.code == 502) and verb == "EHLO" then
    line = "HELO " .. host
    reply = self:_command(line)
    self:_expect(reply, line, 250, 259)
    self._ext = {}
  else
    self:_expect(reply, line, 250, 259)
    self._ext = extensions.parse(reply.lines)
  end
  self._helo_lines = reply.lines
  return reply.lines
end

--- The lines of the last EHLO/HELO response (nil before `helo`).
function Client:helo_response()
  return self._helo_lines
end

--- The server's capabilities from the last EHLO:
-- `{PIPELINING=true, SIZE=52428800, AUTH={...}, ...}` (empty after HELO).
function Client:extensions()
  return self._ext or {}
end

-- Makes sure EHLO has been sent (sendmail may be called right away),
-- and STARTTLS when smtp.connect was given 'tls' (review L3: a transaction
-- never goes out in clear when the caller asked for TLS).
function Client:_ensure_helo()
  if self._conn_tls ~= nil and not self._tls and not self._tls_declined then
    self:_establish({})
  elseif not self._helo_lines then
    self:helo()
  end
end

-- Envelope commands -----------------------------------------------------

local function format_params(params)
  if params == nil then return "" end
  if type(params) == "string" then
    address.check_arg(params, "parameters")
    return params ~= "" and (" " .. params) or ""
  end
  if type(params) ~= "table" then
    raise { kind = "usage", message = "parameters must be a string or a table" }
  end
  local out = {}
  for i, p in ipairs(params) do
    out[i] = address.check_arg(p, "parameter")
  end
  local keys = {}
  for k in pairs(params) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  sort(keys)
  for _, k in ipairs(keys) do
    local v = params[k]
    address.check_arg(k, "parameter name")
    if v == true then
      out[#out + 1] = k
    elseif v ~= false and v ~= nil then
      out[#out + 1] = k .. "=" .. address.check_arg(tostring(v), "parameter " .. k)
    end
  end
  for _, p in ipairs(out) do
    if p:find("[%s<>]") then
      raise { kind = "usage", message = "malformed parameter: " .. p }
    end
  end
  return #out > 0 and (" " .. concat(out, " ")) or ""
end

-- An envelope address: no CR/LF/NUL (command injection), no angle
-- brackets, and something that fits in a path.
local function path_of(addr, what)
  if type(addr) == "table" then addr = addr.address end
  address.check_arg(addr, what)
  if addr:find("[<>]") then
    raise { kind = "usage", message = what .. " contains '<' or '>': " .. addr }
  end
  return "<" .. addr .. ">"
end

local function mail_line(from, params)
  return "MAIL FROM:" .. path_of(from, "sender") .. format_params(params)
end

local function rcpt_line(to, params)
  return "RCPT TO:" .. path_of(to, "recipient") .. format_params(params)
end

-- For smtp.pipeline, which builds the same lines.
Client._mail_line, Client._rcpt_line, Client._check_command = mail_line, rcpt_line, check_command

-- MAIL and RCPT send the path they are given, except that a domain in
-- U-labels goes as A-labels to a server without SMTPUTF8.
function Client:_server_path(addr)
  if type(addr) == "table" then addr = addr.address end
  if type(addr) ~= "string" or self:extensions().SMTPUTF8 then return addr end
  return idna.ascii_address(addr, "address") or addr
end

--- MAIL FROM:<from> [params]. Raises on 4xx/5xx.
-- @tparam string from envelope sender ("" for the null sender)
-- @tparam[opt] table|string params e.g. `{SIZE=1000, BODY="8BITMIME"}`
function Client:mail(from, params)
  self:_ensure_helo()
  local line = mail_line(self:_server_path(from), params)
  check_command(line)
  return self:_expect(self:_command(line, "mail"), line, 250, 259)
end

--- RCPT TO:<to> [params]. Raises on 4xx/5xx (with `recipient` set).
function Client:rcpt(to, params)
  local line = rcpt_line(self:_server_path(to), params)
  check_command(line)
  local addr = type(to) == "table" and to.address or to
  return self:_expect(self:_command(line, "rcpt"), line, 250, 259, { recipient = addr })
end

-- Body ------------------------------------------------------------------

-- Normalises a message source: a string, a file handle or a function
-- returning chunks then nil (LTN12 style: nil, err signals failure).
local function chunk_source(src)
  if type(src) == "string" then
    local done = false
    return function()
      if done then return nil end
      done = true
      return src
    end
  elseif io.type(src) == "file" then
    return function()
      local chunk, err = src:read(WRITE_BATCH)
      if chunk == nil and err then return nil, err end
      return chunk
    end
  elseif type(src) == "function" then
    return src
  end
  raise { kind = "usage", message = "message source must be a string, a file or a function" }
end

-- Pulls the next chunk; a failing source (error or nil, err) is reported
-- as a second result so the caller can close without a terminator.
local function pull(source)
  local ok, chunk, err = pcall(source)
  if not ok then return nil, tostring(chunk) end
  if chunk == nil and err ~= nil then return nil, tostring(err) end
  if chunk ~= nil and type(chunk) ~= "string" then
    return nil, "message source returned a " .. type(chunk)
  end
  return chunk
end

-- Streams a body through the C encoder. Small chunks are batched; the
-- last batch and the terminator share one write (no Nagle/delayed-ACK
-- stall). With bdat, each write is one "BDAT n" chunk, the last "LAST".
-- 'prefix' (pipelined commands, already traced) goes out with the first
-- write and 'trailer' with the last. Returns the number of BDAT commands.
function Client:_send_body(source, bdat, progress, total, prefix, trailer, binary)
  self:_check_in_step(bdat and "BDAT" or "DATA")
  local t = self._t
  local stuffer = core.dotstuffer(not bdat, binary)
  local batch, batch_len, sent, commands = {}, 0, 0, 0
  local limit = bdat and BDAT_CHUNK or WRITE_BATCH
  local function flush(final)
    local data = #batch == 1 and batch[1] or concat(batch)
    batch, batch_len = {}, 0
    -- Progress is reported just before the bytes go out, so a failing
    -- callback can still drop the message before its terminator.
    if progress then
      local ok, err = pcall(progress, sent + #data, total)
      if not ok then
        self:_abort()
        raise { kind = "usage", message = "progress callback failed: " .. tostring(err), outcome = "not_sent" }
      end
    end
    self:_set_deadline("data_block")
    local n, kind, msg, where = t:send_data(stuffer, data, final, bdat, prefix, final and trailer or nil)
    prefix = nil
    if not n and where == "source" then
      -- The message itself cannot go as text (a NUL byte outside
      -- BINARYMIME, review L14): C sent nothing of it and closed.
      self:_abort()
      raise { kind = kind or "usage", message = msg, outcome = "not_sent", retryable = false,
        command = bdat and "BDAT" or "DATA" }
    end
    -- A failed write, the last one included, did not hand the terminator
    -- (or BDAT LAST) over whole: the server cannot have the message.
    if not n then
      self:_transport_failure(kind, msg, bdat and "BDAT" or "DATA", { outcome = "not_sent" })
    end
    sent = sent + #data
    if bdat then commands = commands + 1 end
  end
  while true do
    local chunk, err = pull(source)
    if err then
      -- SPEC 7: never terminate a truncated message; drop the connection.
      self:_abort()
      raise { kind = "io", message = "message source failed: " .. err, outcome = "not_sent", retryable = false }
    end
    if chunk == nil then break end
    if #chunk > 0 then
      batch[#batch + 1] = chunk
      batch_len = batch_len + #chunk
      if batch_len >= limit then flush(false) end
    end
  end
  if self._hook or trace.global() then
    self:_trace("C", ("<%d bytes of message data>"):format(sent + batch_len))
  end
  flush(true)
  return commands
end

-- The body of a prepared message (smtp.envelope): in one C call when the
-- transport has send_body (the C connection; the cosocket transport has
-- not) and nothing needs to see the chunks (no progress callback), else
-- chunk by chunk through the Lua source. Returns the number of BDAT
-- commands.
function Client:_send_env_body(env, bdat, opts, prefix, trailer)
  local t = self._t
  if env.parts and env.parts_source == env.source and not opts.progress and t.send_body then
    return self:_send_parts(env.parts, bdat, prefix, trailer, env.binary)
  end
  return self:_send_body(env.source, bdat, opts.progress, env.size, prefix, trailer, env.binary)
end

function Client:_send_parts(parts, bdat, prefix, trailer, binary)
  local command = bdat and "BDAT" or "DATA"
  self:_check_in_step(command)
  self:_set_deadline("data_block")
  local n, chunks, msg, where = self._t:send_body(parts, binary and "binary" or (bdat and "bdat" or "data"),
    prefix, trailer, self:_timeout_for("data_block"))
  if not n then
    if where == "source" then
      -- SPEC 7: the truncated message was not terminated; C closed the
      -- socket. Kind io for an unreadable file, usage for a NUL byte.
      self:_abort()
      raise { kind = chunks or "io", message = msg, outcome = "not_sent", retryable = false }
    end
    -- Even a failed last write ("final") did not complete the terminator.
    self:_transport_failure(chunks, msg, command, { outcome = "not_sent" })
  end
  if self._hook or trace.global() then
    self:_trace("C", ("<%d bytes of message data>"):format(n))
  end
  return chunks
end

local final_reply = pipeline.final_reply

--- DATA, then the message from `source` (string, file or chunk function),
-- dot-stuffed and terminated in C. Returns the final reply
-- `{code=, enhanced=, text=, lines=, queue_id=}`; raises on 4xx/5xx.
function Client:data(source, opts)
  local src = chunk_source(source)
  local reply = self:_command("DATA", "data_init")
  self:_expect(reply, "DATA", 354, 354, { outcome = "not_sent" })
  self:_send_body(src, false, opts and opts.progress, opts and opts.total)
  reply = self:_read("data_end", "DATA", { outcome = "unknown" })
  return final_reply(self:_expect(reply, "DATA", 250, 259, { outcome = "not_sent" }))
end

--- BDAT (RFC 3030): sends `chunk` as one chunk, `last` marks the end.
-- The bytes are sent as they are (no line-end conversion).
function Client:bdat(chunk, last)
  if type(chunk) ~= "string" then
    raise { kind = "usage", message = "BDAT chunk must be a string" }
  end
  local line = "BDAT " .. #chunk .. (last and " LAST" or "")
  self:_check_open()
  self:_trace("C", line)
  self:_set_deadline("data_block")
  local ok, kind, msg = self._t:send({ line .. "\r\n", chunk })
  if not ok then self:_transport_failure(kind, msg, line) end
  local reply = self:_read(last and "data_end" or "data_block", line, last and { outcome = "unknown" } or nil)
  return final_reply(self:_expect(reply, line, 250, 259))
end

-- Simple commands -------------------------------------------------------

--- RSET: aborts the current transaction.
function Client:rset()
  return self:_expect(self:_command("RSET"), "RSET", 250, 259)
end

--- Alias of `rset`.
function Client:reset()
  return self:rset()
end

--- NOOP.
function Client:noop()
  return self:_expect(self:_command("NOOP"), "NOOP", 250, 259)
end

--- VRFY: returns the response lines (250, 251 or 252).
function Client:vrfy(addr)
  local line = "VRFY " .. address.check_arg(addr, "address")
  return self:_expect(self:_command(line), line, 250, 259).lines
end

--- EXPN: the list's members as response lines, or nil when the server
-- refuses (5xx or 252).
function Client:expn(list)
  local line = "EXPN " .. address.check_arg(list, "list")
  local reply = self:_command(line)
  if reply.code >= 500 or reply.code == 252 then return nil end
  return self:_expect(reply, line, 250, 259).lines
end

--- HELP [topic]: response lines (211/214).
function Client:help(topic)
  local line = "HELP"
  if topic then line = line .. " " .. address.check_arg(topic, "topic") end
  return self:_expect(self:_command(line), line, 211, 214).lines
end

--- Raw escape hatch: sends `line` and returns the reply code and lines
-- without interpreting them (4xx/5xx do not raise).
-- AUTH lines, and every line sent while the server's 334 keeps a SASL
-- exchange open, are masked in traces and errors (review L5).
function Client:command(line)
  address.check_arg(line, "command")
  local shown
  if self._raw_sasl_open then
    shown = line == "*" and "*" or "***"
  elseif line:find("^[Aa][Uu][Tt][Hh][ \t]") then
    shown = trace.mask_command(line)
  end
  self._raw_sasl_open = false
  local reply = self:_command(line, nil, shown)
  self._raw_sasl_open = reply.code == 334
  return reply.code, reply.lines, reply.enhanced
end

--- QUIT, then close. Never raises for a server that is already gone.
function Client:quit()
  if self._closed then return end
  pcall(function()
    local reply = self:_command("QUIT")
    return reply
  end)
  self:_abort()
end

--- Puts the connection into the transport's keepalive pool (OpenResty
-- cosockets) for a later `smtp.connect` with the same host, port, TLS and
-- credentials options. RSET first; pooled only if the server answers 250
-- and the connection is in the state its pool name promises (an AUTH
-- made with other credentials is never pooled); otherwise QUIT. The
-- client is closed afterwards either way.
-- @tparam[opt] number idle_ms how long it may idle in the pool (ms)
-- @tparam[opt] number pool_size connections kept in the pool
-- @treturn boolean true when pooled
function Client:set_keepalive(idle_ms, pool_size)
  if self._closed then return false end
  local t = self._t
  local poolable = t.setkeepalive and t.pool_credentials and t:pool_credentials() ~= nil
  if poolable and self._authenticated and self._auth_creds ~= t:pool_credentials() then poolable = false end
  -- Nor in another TLS or authentication state than the pool name
  -- promises: a later request must get what its options ask for (L8).
  if poolable and t.pool_accepts and not t:pool_accepts(self._tls, self._authenticated) then poolable = false end
  local ok, reply = false, nil
  if poolable then ok, reply = pcall(self._command, self, "RSET") end
  if not ok or reply.code ~= 250 or self._closed or self._parser:buffered() > 0 then
    self:quit()
    return false
  end
  self._closed = true
  return t:setkeepalive(idle_ms, pool_size, {
    tls = self._tls, authenticated = self._authenticated, auth_creds = self._auth_creds,
    ext = self._ext, helo_lines = self._helo_lines,
  }) == true
end

-- Takes over a connection from the keepalive pool in its saved state,
-- if it still answers RSET (used by smtp.connect).
function Client:_resume(state)
  local ok, reply = pcall(self._command, self, "RSET")
  if not ok or reply.code ~= 250 or self._closed then
    self:_abort()
    return false
  end
  self._resumed = true
  self._tls, self._authenticated, self._auth_creds = state.tls, state.authenticated, state.auth_creds
  self._ext, self._helo_lines = state.ext, state.helo_lines
  -- As _start_tls judges it, from the TLS facts the transport restored.
  local info = self._tls and self._t.tls_info and self._t:tls_info()
  self._tls_verified = type(info) == "table" and info.peer_verified == true
  return true
end

--- Closes the connection without QUIT. Closing twice is harmless.
function Client:close()
  self:_abort()
end

Client.__gc = Client.close
Client.__close = Client.close

-- Whether anything arrived that no command asked for (smtp.pool, before
-- reusing an idle session): false when nothing did, "data" or "eof" when
-- something did, nil when the transport cannot tell without a round trip.
function Client:_input_pending()
  if self._closed then return "eof" end
  if self._parser:buffered() > 0 then return "data" end
  local t = self._t
  if not t.input_pending then return nil end
  return t:input_pending()
end

--- Whether the connection is closed.
function Client:closed()
  return self._closed
end

function Client:__tostring()
  return ("smtp.Client (%s%s)"):format(tostring(self._host),
    self._closed and ", closed" or "")
end

-- TLS -------------------------------------------------------------------

-- A tls option is a config object or a table of its options.
local function tls_config_of(tls)
  if type(tls) == "table" then
    if not core.tls_config then
      raise { kind = "tls", message = "this build has no TLS support" }
    end
    local cfg, kind, msg = core.tls_config(require("smtp.idna").tls_options(tls))
    if not cfg then raise { kind = kind or "tls", message = msg } end
    return cfg
  end
  if type(tls) ~= "userdata" then
    raise { kind = "usage", message = "tls must be an smtp.tls_config object or a table of its options" }
  end
  return tls
end

-- Runs the handshake on the transport (after STARTTLS's 220, or at once
-- for implicit TLS). Capabilities learnt before are forgotten.
function Client:_start_tls(tls, peer, phase)
  local cfg = tls_config_of(tls or {})
  self:_check_open()
  self:_set_deadline(phase)
  local ok, kind, msg = self._t:starttls(cfg, peer)
  if not ok then
    self:_transport_failure(kind or "tls", msg, "STARTTLS")
  end
  self._tls = true
  -- Only a checked certificate makes an authenticated peer: credentials
  -- and REQUIRETLS are held back over verify = "none" (review L2).
  local info = self._t.tls_info and self._t:tls_info()
  self._tls_verified = type(info) == "table" and info.peer_verified == true
  self._ext, self._helo_lines = nil, nil
  self:_trace("C", "<TLS established>")
end

--- STARTTLS (RFC 3207), then the TLS handshake with certificate and host
-- name checks. EHLO must be sent again afterwards (`authenticate` does).
-- @param tls an `smtp.tls_config` or a table of its options
-- @tparam[opt] string peer_name name to verify and send as SNI (default:
-- the connect host)
function Client:starttls(tls, peer_name)
  if self._tls then raise { kind = "usage", message = "TLS is already active" } end
  local cfg = tls_config_of(tls or {})
  local reply = self:_command("STARTTLS", "starttls")
  if reply.code ~= 220 then
    local err = Error.from_reply(reply, "STARTTLS")
    if err.kind == "protocol" then
      -- Not a refusal but a reply STARTTLS cannot have (RFC 3207 4): the
      -- session is out of step and TLS was not started.
      self:_abort()
      err.kind = "tls"
      err.message = "STARTTLS answered with " .. reply.code .. " instead of 220: " .. concat(reply.lines, " ")
    end
    error(err, 0)
  end
  -- Bytes after the 220 were sent in plaintext before the handshake: a
  -- response injection attack (CVE-2011-0411 family).
  if self._parser:buffered() > 0 then
    self:_abort()
    raise { kind = "tls", command = "STARTTLS",
      message = "STARTTLS response injection: the server sent data after its 220 reply" }
  end
  self:_start_tls(cfg, peer_name or self._host, "starttls")
  return true
end

--- `{version=, cipher=, peer_subject=, peer_verified=, resumed=}` when
-- TLS is active, else nil (`resumed`: the handshake reused a session of
-- the same tls_config; `peer_pin_sha256`: the leaf key's pin, README "Key
-- pinning").
function Client:tls_info()
  if self._closed or not self._tls or not self._t.tls_info then return nil end
  return self._t:tls_info()
end

-- Authentication ----------------------------------------------------------

local sasl_module
local function sasl()
  if sasl_module == nil then sasl_module = require "smtp.sasl" end
  return sasl_module
end

local oauth_module
local function oauth()
  if oauth_module == nil then oauth_module = require "smtp.oauth" end
  return oauth_module
end

local function b64encode(s)
  return (core.b64_encode or core.sasl_b64encode)(s)
end

local function b64decode(s)
  local out, _, msg = (core.b64_decode or core.sasl_b64decode)(s)
  if out == nil then
    raise { kind = "authentication", message = "malformed base64 in the server's challenge: " .. tostring(msg) }
  end
  return out
end

--- Whether AUTH succeeded on this connection.
function Client:authenticated()
  return self._authenticated
end

-- What smtp.verify reports of this connection: the greeting, the EHLO
-- keywords, TLS and the mechanism AUTH succeeded with.
function Client:_summary()
  local ext = {}
  for k, v in pairs(self:extensions()) do ext[k] = v end
  local greeting = self._greeting and concat(self._greeting.lines, " ") or nil
  return { greeting = greeting, extensions = ext, ehlo = self._helo_lines, size = ext.SIZE,
    tls = self:tls_info(), authenticated = self._authenticated, mechanism = self._mechanism }
end

-- Reads the server's answer to an AUTH step; a refusal is kind
-- 'authentication' with the server's code and enhanced code.
function Client:_auth_fail(reply, shown, session)
  local detail = session and session.error_detail
  local err = Error.from_reply(reply, shown)
  if err.kind ~= "protocol" then
    err.kind = "authentication"
    err.retryable = reply.code < 500
    if detail and detail.text then
      err.message = err.message .. " (" .. detail.text .. ")"
      err.detail = detail
    end
  else
    self:_abort()
  end
  error(err, 0)
end

--- AUTH with one SASL mechanism (RFC 4954). Raises kind 'authentication'
-- when the server refuses or the mechanism fails.
-- @tparam string mechanism e.g. "SCRAM-SHA-256"
-- @tparam[opt] string user authentication identity
-- @tparam[opt] string authz authorization identity
-- @tparam[opt] string password
-- @tparam[opt] table params `sasl_params`: list of `{name, value, critical}`
-- @tparam[opt] string token OAuth 2 bearer token (XOAUTH2, OAUTHBEARER)
function Client:auth(mechanism, user, authz, password, params, token)
  if self._authenticated then
    raise { kind = "usage", message = "already authenticated (RFC 4954 forbids a second AUTH)" }
  end
  address.check_arg(mechanism, "mechanism")
  mechanism = mechanism:upper()
  local S = sasl()
  local binding
  -- SCRAM-*-PLUS binds to it. Plain SCRAM sends gs2 flag y when it exists
  -- and the server offered no -PLUS form (RFC 5802 6): one that does
  -- support it then knows the offer was stripped. Plain SCRAM named while
  -- -PLUS is offered is the caller's choice, flag n.
  local plus_offered = false
  for _, m in ipairs(self:extensions().AUTH or {}) do
    if tostring(m):upper() == mechanism .. "-PLUS" then plus_offered = true end
  end
  if mechanism:find("^SCRAM%-") and not plus_offered and self._tls and self._t.tls_channel_binding then
    local cb_type, data, msg = self._t:tls_channel_binding()
    if cb_type then
      binding = { type = cb_type, data = data }
    elseif mechanism:find("%-PLUS$") then
      raise { kind = data, message = msg }
    end
  end
  local session = S.session(mechanism, {
    user = user, authz = authz, password = password, token = token, sasl_params = params,
  }, { hostname = self._host, port = self._port, service = "smtp", channel_binding = binding })
  local ok, result = pcall(function()
    local line = "AUTH " .. mechanism
    local done = false
    if session:initial_response_allowed() then
      local initial
      initial, done = session:step(nil)
      initial = initial or ""
      local encoded = initial == "" and "=" or b64encode(initial)
      if #line + 1 + #encoded + 2 <= MAX_COMMAND then
        line = line .. " " .. encoded
      else
        session.deferred_initial = encoded
      end
    end
    local shown = trace.mask_command(line)
    check_command(line)
    self:_send_lines({ line }, "auth", { shown })
    while true do
      local reply = self:_read("auth", shown)
      if reply.code == 235 then
        if not done then
          raise { kind = "authentication", command = shown,
            message = "server reported success before the " .. mechanism .. " exchange completed" }
        end
        return reply
      elseif reply.code == 334 then
        local response
        if session.deferred_initial then
          response, session.deferred_initial = session.deferred_initial, nil
        else
          local step_ok, out, finished = pcall(function()
            return session:step(b64decode(concat(reply.lines, "")))
          end)
          if not step_ok then
            -- Cancel the exchange (RFC 4954 4) and report the mechanism's error.
            self:_send_lines({ "*" }, "auth", { "*" })
            self:_read("auth", shown)
            error(out, 0)
          end
          done = finished and true or false
          response = out and out ~= "" and b64encode(out) or ""
        end
        self:_send_lines({ response }, "auth", { "***" })
      else
        self:_auth_fail(reply, shown, session)
      end
    end
  end)
  session:close()
  if not ok then
    local kind = Error.is(result) and result.kind
    if (kind == "transient" and result.code ~= 421) or kind == "permanent" then result.kind = "authentication" end
    error(result, 0)
  end
  self._authenticated = true
  self._mechanism = mechanism
  return result
end

-- Whether TLS must be had: an explicit tls_required wins; otherwise TLS
-- asked for (a 'tls' option) is TLS required (review M1: opportunistic
-- STARTTLS lets a man in the middle strip it and harvest credentials).
local function tls_policy(self, opts)
  local tls = opts.tls
  if tls == nil then tls = self._conn_tls end
  if tls == false then tls = nil end -- "no TLS", as before
  local required = opts.tls_required
  if required == nil then required = self._conn_tls_required end
  if required == nil then required = tls ~= nil end
  return tls, required
end

-- EHLO, then STARTTLS and EHLO again when TLS is asked for (SPEC 1.2
-- steps 1 and 2). Raises kind 'tls' before anything else is sent when
-- TLS is required and cannot be had.
function Client:_establish(opts)
  local tls, required = tls_policy(self, opts)
  if required and tls == nil and not self._tls then
    self:_abort()
    raise { kind = "tls", message = "tls_required is set but no tls configuration was given" }
  end
  local needs_starttls = tls ~= nil and not self._tls
  self:_helo(opts.host, needs_starttls and required)
  if not needs_starttls then return end
  if not self:extensions().STARTTLS then
    if required then
      self:_abort()
      raise { kind = "tls", message = "TLS required but the server does not offer STARTTLS" }
    end
    self._tls_declined = true
    self:_trace("C", "<STARTTLS not offered; continuing without TLS (tls_required = false)>")
    return
  end
  self._auth_before_tls = self:extensions().AUTH
  local ok, err = pcall(self.starttls, self, tls, opts.tls_peer or self._host)
  if ok then
    self:_helo(opts.host, required)
    return
  end
  local refused = Error.is(err) and (err.kind == "transient" or err.kind == "permanent")
  if required and Error.is(err) and err.code then
    -- RFC 3207 4: any answer but 220 means no TLS; required, it ends here.
    self:_abort()
    raise { kind = "tls", code = err.code, enhanced = err.enhanced, command = "STARTTLS",
      lines = err.lines, message = "TLS required but the server refused STARTTLS: " .. tostring(err.message) }
  elseif refused and not self._closed then
    self._tls_declined = true
    self:_trace("C", "<STARTTLS refused; continuing without TLS (tls_required = false)>")
  else
    error(err, 0)
  end
end

--- EHLO, STARTTLS and EHLO again when `tls` is given and offered, then
-- SASL authentication (SPEC 1.2, Netsmtp.authenticate). Giving `tls`
-- makes TLS required unless `tls_required = false`; credentials given
-- to a server that offers no AUTH raise kind 'authentication'; no
-- password or token mechanism runs without a verified TLS peer unless
-- `allow_plaintext = true` (README "Security"). `token` may be a
-- function `token(user, stale)`: asked before XOAUTH2/OAUTHBEARER and,
-- if the server refuses that token, once more with `stale = true` for a
-- retry on this connection (README "OAuth token refresh"; when the
-- server closed it, the 421 or kind `io` error is raised). Without
-- `user`, `password` and `token`, those of smtp.connect's `url` are used.
-- @tparam[opt] table opts `host`, `tls`, `tls_required`, `tls_peer`,
-- `mechanisms`, `sasl_params`, `user`, `authz`, `password`, `token`,
-- `allow_plaintext`
function Client:authenticate(opts)
  opts = opts or {}
  if type(opts) ~= "table" then raise { kind = "usage", message = "authenticate expects a table of options" } end
  local url_creds = self._url_creds
  if url_creds and opts.user == nil and opts.password == nil and opts.token == nil then
    local o = { user = url_creds.user, password = url_creds.password }
    for k, v in pairs(opts) do o[k] = v end
    opts = o
  end
  -- A pooled connection (set_keepalive) was pooled by these very options.
  local t = self._t
  local creds = t.credentials_key and t:credentials_key(opts)
  if self._resumed and creds == t:pool_credentials() then return self end
  self:_establish(opts)
  local explicit = type(opts.mechanisms) == "table"
  if explicit and #opts.mechanisms == 0 then return self end
  local wants_external = false
  for _, m in ipairs(explicit and opts.mechanisms or {}) do
    if type(m) == "string" and m:upper() == "EXTERNAL" then wants_external = true end
  end
  local has_creds = opts.user ~= nil or opts.token ~= nil or opts.password ~= nil
  if not (has_creds or wants_external) then return self end
  if self._authenticated then return self end
  local mechs = self:extensions().AUTH
  if not mechs or #mechs == 0 then
    -- Netsmtp skips AUTH silently here; mail would then go out
    -- unauthenticated, or a downgrade would go unnoticed.
    raise { kind = "authentication", message = self._auth_before_tls
      and "credentials given but the server offered AUTH only before STARTTLS, not after"
      or "credentials given but the server does not offer AUTH" }
  end
  local mech = sasl().choose(mechs, opts, self._tls and self._tls_verified,
    self._tls and "TLS without a verified certificate (verify = \"none\")" or nil,
    -- Binding data exists, not just the method: none under TLS 1.2
    -- without extended master secret (README "TLS").
    self._tls and self._t.tls_channel_binding ~= nil and self._t:tls_channel_binding() ~= nil)
  if mech == false then return self end
  if not mech then
    raise { kind = "authentication",
      message = "no usable SASL mechanism: the server offers " .. concat(mechs, " ") }
  end
  self._auth_creds = creds
  local src = opts._token_source
  if src == nil and type(opts.token) == "function" then src = oauth().source(opts.token) end
  if src and oauth().is_oauth(mech) then
    self:_auth_refreshing(mech, opts, src)
  else
    -- A token function means nothing to a password mechanism.
    local token = type(opts.token) ~= "function" and opts.token or nil
    self:auth(mech, opts.user, opts.authz, opts.password, opts.sasl_params, token)
  end
  return self
end

-- AUTH with a token function (smtp.oauth): when the server refuses the
-- token, the function is asked for a fresh one and AUTH runs once more.
-- If the server has closed the connection by then (421 or EOF), the
-- source is marked for a new connection, which smtp.send and the pool
-- make; here the error is raised (the caller owns this connection).
function Client:_auth_refreshing(mech, opts, src)
  local ok, err = pcall(self.auth, self, mech, opts.user, opts.authz, opts.password, opts.sasl_params,
    src:get(opts.user))
  if ok then return end
  if not src:should_refresh(err) then error(err, 0) end
  local fresh = src:refresh(opts.user)
  if self._closed or self:_input_pending() == "eof" then
    self:_abort()
    src.reconnect = true
    error(err, 0)
  end
  ok, err = pcall(self.auth, self, mech, opts.user, opts.authz, opts.password, opts.sasl_params, fresh)
  if ok then return end
  if Error.is(err) and (err.code == 421 or err.kind == "io") then
    self:_abort()
    src.reconnect = true
  end
  error(err, 0)
end

-- Sendmail --------------------------------------------------------------

-- The envelope for a server without SMTPUTF8 (RFC 6531 3.2): domains in
-- A-labels. A non-ASCII local part has no ASCII form (kind usage); nor
-- has an smtp.message whose header carries a non-ASCII address.
local function ascii_envelope(env)
  if env.header_smtputf8 then
    raise { kind = "permanent", outcome = "not_sent",
      message = "message needs SMTPUTF8 (non-ASCII addresses in its header) but the server does not offer it" }
  end
  local function ascii(addr, what)
    local a = idna.ascii_address(addr, what)
    if not a then
      raise { kind = "usage", outcome = "not_sent", message = what .. " " .. addr ..
        " has a non-ASCII local part, which needs SMTPUTF8, but the server does not offer it" }
    end
    return a
  end
  local recipients = {}
  for i, r in ipairs(env.recipients) do recipients[i] = ascii(r, "recipient") end
  return ascii(env.from, "sender"), recipients
end

-- MAIL parameters the message needs, checked against the server's
-- capabilities before anything is sent (SPEC 1.3).
function Client:_mail_params(env, opts)
  local ext = self:extensions()
  local params = {}
  local from, recipients = env.from, env.recipients
  local utf8 = env.smtputf8 and ext.SMTPUTF8
  if utf8 then
    params[#params + 1] = "SMTPUTF8"
  elseif env.smtputf8 then
    from, recipients = ascii_envelope(env)
  end
  if env.eightbit == true and not ext["8BITMIME"] and not utf8 then
    raise { kind = "permanent", outcome = "not_sent",
      message = "message has 8-bit data but the server does not offer 8BITMIME" }
  end
  if env.binary then
    -- RFC 3030 3: binary content goes only as BDAT with BODY=BINARYMIME.
    if not (ext.BINARYMIME and ext.CHUNKING and ext.PIPELINING) or opts.chunking == false then
      raise { kind = "permanent", outcome = "not_sent",
        message = "message has binary data (NUL bytes) but the server does not offer BINARYMIME with CHUNKING" }
    end
    params[#params + 1] = "BODY=BINARYMIME"
  elseif ext["8BITMIME"] and env.eightbit ~= false then
    params[#params + 1] = "BODY=8BITMIME"
  end
  if ext.SIZE and env.size then
    if ext.SIZE > 0 and env.size > ext.SIZE then
      raise { kind = "permanent", outcome = "not_sent",
        message = ("message size %d exceeds the server's limit of %d"):format(env.size, ext.SIZE) }
    end
    params[#params + 1] = "SIZE=" .. env.size
  end
  local dsn = opts.dsn
  if dsn and ext.DSN then
    if dsn.ret then params[#params + 1] = "RET=" .. address.check_arg(dsn.ret, "dsn.ret"):upper() end
    if dsn.envid then params[#params + 1] = "ENVID=" .. envelope.xtext(dsn.envid) end
  end
  if opts.requiretls then
    -- RFC 8689 4.1: only over TLS with a validated certificate.
    if not ext.REQUIRETLS or not (self._tls and self._tls_verified) then
      raise { kind = "permanent", outcome = "not_sent",
        message = "REQUIRETLS requested but the server does not offer it over TLS with a verified certificate" }
    end
    params[#params + 1] = "REQUIRETLS"
  end
  return params, from, recipients
end

function Client:_rcpt_params(rcpt, opts)
  local dsn = opts.dsn
  if not (dsn and self:extensions().DSN) then return nil end
  local params = {}
  if dsn.notify then
    local n = dsn.notify
    if type(n) == "table" then n = concat(n, ",") end
    params[#params + 1] = "NOTIFY=" .. address.check_arg(n, "dsn.notify"):upper()
  end
  if dsn.orcpt ~= false then
    params[#params + 1] = "ORCPT=rfc822;" .. envelope.xtext(rcpt)
  end
  return params
end

-- Sends the envelope (and DATA when 'with_data') and reads the replies in
-- order. Returns the MAIL reply, the per-recipient replies and the DATA
-- reply (nil when DATA was not sent).
function Client:_envelope(env, opts, with_data)
  local mparams, from, recipients = self:_mail_params(env, opts)
  local lines = { mail_line(from, mparams) }
  for i, r in ipairs(recipients) do
    lines[i + 1] = rcpt_line(r, self:_rcpt_params(r, opts))
  end
  if with_data then lines[#lines + 1] = "DATA" end
  for _, l in ipairs(lines) do check_command(l) end
  local ext = self:extensions()
  local mail_reply, rcpt_replies, data_reply
  rcpt_replies = {}
  if ext.PIPELINING then
    -- RFC 2920: MAIL, every RCPT and DATA in one write, replies in order.
    self:_send_lines(lines, "mail")
    mail_reply = self:_read("mail", lines[1], { outcome = "not_sent" })
    for i = 1, #env.recipients do
      rcpt_replies[i] = self:_read("rcpt", lines[i + 1], { outcome = "not_sent" })
    end
    if with_data then data_reply = self:_read("data_init", "DATA", { outcome = "not_sent" }) end
  else
    self:_send_lines({ lines[1] }, "mail")
    mail_reply = self:_read("mail", lines[1], { outcome = "not_sent" })
    if mail_reply.code >= 200 and mail_reply.code < 300 then
      for i = 1, #env.recipients do
        self:_send_lines({ lines[i + 1] }, "rcpt")
        rcpt_replies[i] = self:_read("rcpt", lines[i + 1], { outcome = "not_sent" })
      end
    end
  end
  return lines, mail_reply, rcpt_replies, data_reply
end

-- After a failed transaction: a 354 already given must be answered with
-- an empty message (RFC 2920 3.1), then RSET. Failures here are ignored
-- only if they are server refusals; a broken connection still raises.
-- When the server is gone after its refusal (a 451 to MAIL, then a
-- close), the refusal is what the caller learns, not the failed RSET.
function Client:_abandon(data_reply)
  local ok = pcall(function()
    if data_reply and data_reply.code == 354 then
      self:_send_lines({ "." }, "data_end")
      self:_read("data_end", ".")
    end
    if not self._closed then
      local reply = self:_command("RSET")
      if reply.code >= 300 then self:_abort() end
    end
  end)
  if not ok then self:_abort() end
end

--- Sends a message to its recipients (SPEC 1.3).
-- @param msg an `smtp.message` object, or a raw RFC 5322 message: a
-- string, a file handle or a chunk function
-- @tparam[opt] table opts `from`, `to` (list), `all_or_nothing`,
-- `chunking` (false disables BDAT), `dsn = {notify=, ret=, envid=, orcpt=}`,
-- `requiretls`, `progress = function(sent, total)`, `dkim` (signing
-- options, README "DKIM signing"; they win over the message's own),
-- `downgrade` (false: no re-encoding of 8-bit or long-line parts,
-- README "8-bit downgrade")
-- @treturn table `{accepted = {addr,...}, rejected = {{recipient=, error=},...},
-- reply = {code=, enhanced=, text=, queue_id=}}`
function Client:sendmail(msg, opts)
  opts = opts or {}
  if type(opts) ~= "table" then raise { kind = "usage", message = "sendmail options must be a table" } end
  self:_check_open()
  local env = envelope.prepare(msg, opts, self:_server_fn())
  self:_ensure_helo()
  return self:_send_envelope(env, opts)
end

-- The server's extensions for envelope.prepare, which asks only when a
-- message may need re-encoding (EHLO is sent then, not before).
function Client:_server_fn()
  return function()
    self:_ensure_helo()
    return self:extensions()
  end
end

-- One prepared message (see smtp.envelope), sendmail's semantics.
function Client:_send_envelope(env, opts)
  local ext = self:extensions()
  if ext.PIPELINING and not opts.all_or_nothing then
    local result = pipeline.run(self, 1, function() return env end, opts)[1]
    if Error.is(result) then error(result, 0) end
    return result
  end

  -- Lockstep (no PIPELINING), or all_or_nothing: the recipients' fate is
  -- known before DATA, so a refused one can still cancel the whole message.
  local lines, mail_reply, rcpt_replies = self:_envelope(env, opts, false)
  local report, failure = pipeline.judge(self, env, lines, mail_reply, rcpt_replies, opts.all_or_nothing)
  if failure then
    self:_abandon(nil)
    failure.report = report
    error(failure, 0)
  end
  if env.binary then
    -- BINARYMIME needs BDAT; every chunk is answered, the last decides.
    -- Every chunk, LAST included, is out before the first reply is read:
    -- from here a lost connection leaves the message's fate unknown (M4).
    local chunks = self:_send_env_body(env, true, opts)
    local refused
    for _ = 1, chunks - 1 do
      local r = self:_read("data_block", "BDAT", { outcome = "unknown" })
      if not refused and (r.code < 200 or r.code >= 300) then refused = r end
    end
    if refused then
      self:_read("data_end", "BDAT", { outcome = "unknown" })
      self:_expect(refused, "BDAT", 250, 259, { outcome = "not_sent" })
    end
    local result = pipeline.finish(self, report, "BDAT")
    if Error.is(result) then error(result, 0) end
    return result
  end
  self:_send_lines({ "DATA" }, "data_init")
  local data_reply = self:_read("data_init", "DATA", { outcome = "not_sent" })
  if data_reply.code ~= 354 then
    if data_reply.code >= 400 and data_reply.code < 600 then self:_abandon(nil) end
    self:_expect(data_reply, "DATA", 354, 354, { outcome = "not_sent" })
  end
  self:_send_env_body(env, false, opts)
  local result = pipeline.finish(self, report, "DATA")
  if Error.is(result) then error(result, 0) end
  return result
end

--- Sends several messages over this connection, pipelining consecutive
-- transactions (one reply wait per message with PIPELINING). Returns one
-- result per message, in order: its report, or the smtp.Error that
-- stopped it; a failed message does not disturb the others. A broken
-- connection fills every unsettled slot with its error.
-- @tparam {msg,...} messages as for `sendmail`
-- @tparam[opt] table opts as for `sendmail` (`from`/`to` apply to all)
-- @treturn {table|smtp.Error,...}
function Client:sendmany(messages, opts)
  opts = opts or {}
  if type(messages) ~= "table" then raise { kind = "usage", message = "sendmany expects a list of messages" } end
  if type(opts) ~= "table" then raise { kind = "usage", message = "sendmany options must be a table" } end
  self:_check_open()
  self:_ensure_helo()
  local server = self:_server_fn()
  local function prepare(i) return envelope.prepare(messages[i], opts, server) end
  if self:extensions().PIPELINING and not opts.all_or_nothing then
    return pipeline.run(self, #messages, prepare, opts)
  end
  local results = {}
  for i = 1, #messages do
    if self._closed then
      results[i] = Error.new { kind = "io", message = "connection is closed", outcome = "not_sent" }
    else
      local ok, r = pcall(function() return self:_send_envelope(prepare(i), opts) end)
      results[i] = r
      if not ok and not Error.is(r) then error(r, 0) end
    end
  end
  return results
end

return Client
