--- SASL for SMTP AUTH (RFC 4954): which mechanism to use, and one session
-- object per exchange. libgsasl (through smtp.core) does PLAIN, LOGIN,
-- CRAM-MD5, DIGEST-MD5 and SCRAM-SHA-1/-256; XOAUTH2, OAUTHBEARER (RFC 7628)
-- and EXTERNAL (RFC 4422 appendix A) are done here. Sessions work on raw
-- bytes: base64 and the 334/235 dialogue belong to the client.
-- @module smtp.sasl
local core = require "smtp.core"
local Error = require "smtp.error"

local type, pairs, ipairs, tostring, tonumber, error, setmetatable =
  type, pairs, ipairs, tostring, tonumber, error, setmetatable
local concat, char, floor = table.concat, string.char, math.floor

local sasl = {}

--- Mechanisms tried when the caller names none, strongest first.
-- SCRAM authenticates both sides and the server stores no password
-- equivalent; its -PLUS forms (RFC 5802 6) also bind the exchange to the
-- TLS session; they are skipped without TLS. A man in the middle holding
-- a certificate we trusted can strip -PLUS from the EHLO: plain SCRAM then
-- says so with gs2 flag y, which a PLUS-capable server refuses, but he can
-- as well offer only PLAIN. So -PLUS protects fully only when insisted on
-- (`require_channel_binding = true` or `mechanisms = {"...-PLUS"}`).
-- CRAM-MD5 keeps the password off the wire. DIGEST-MD5 is
-- historic (RFC 6331) and servers disagree on how to hash a non-ASCII
-- password (Dovecot takes its UTF-8 bytes, libgsasl ISO-8859-1 per RFC
-- 2831), so it runs only when named in `mechanisms`.
sasl.default_order = {
  "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN",
}

-- Preferred when a bearer token is given: OAUTHBEARER is the standard
-- (RFC 7628), XOAUTH2 its older Google form.
local oauth_order = { "OAUTHBEARER", "XOAUTH2" }

-- Mechanisms implemented in this file rather than by libgsasl.
local lua_mechs = { XOAUTH2 = true, OAUTHBEARER = true, EXTERNAL = true }

-- Mechanisms that may run without a verified TLS peer: they carry no
-- password and no token. Every other one either sends the secret in
-- clear (PLAIN, LOGIN, SECURID, bearer tokens) or hands whoever answers
-- material for an offline dictionary attack (CRAM-MD5, DIGEST-MD5, SCRAM,
-- NTLM): a man in the middle who strips STARTTLS gets it (review M1, L13).
local no_secret = { EXTERNAL = true, ANONYMOUS = true, GSSAPI = true, ["GS2-KRB5"] = true }
local sends_in_clear = { PLAIN = true, LOGIN = true, SECURID = true, XOAUTH2 = true, OAUTHBEARER = true }

-- Mechanisms bound to the TLS channel (RFC 5056): they need its binding
-- data, so only run under TLS.
local channel_bound = { ["SCRAM-SHA-1-PLUS"] = true, ["SCRAM-SHA-256-PLUS"] = true }
local scram_plain = { ["SCRAM-SHA-1"] = true, ["SCRAM-SHA-256"] = true }

-- libgsasl's property for each channel binding type (its value is base64).
local cb_property = { ["tls-exporter"] = "cb_tls_exporter", ["tls-unique"] = "cb_tls_unique" }

-- Mechanisms that need a user and a password.
local password_mechs = {
  PLAIN = true, LOGIN = true, ["CRAM-MD5"] = true, ["DIGEST-MD5"] = true,
  ["SCRAM-SHA-1"] = true, ["SCRAM-SHA-256"] = true,
  ["SCRAM-SHA-1-PLUS"] = true, ["SCRAM-SHA-256-PLUS"] = true,
}

-- RFC 4954 section 4: the client speaks first (initial response) only in
-- client-first mechanisms; LOGIN, CRAM-MD5 and DIGEST-MD5 wait for the
-- server's challenge.
local client_first = {
  PLAIN = true, EXTERNAL = true, XOAUTH2 = true, OAUTHBEARER = true,
  ["SCRAM-SHA-1"] = true, ["SCRAM-SHA-256"] = true,
  ["SCRAM-SHA-1-PLUS"] = true, ["SCRAM-SHA-256-PLUS"] = true,
  GSSAPI = true, ["GS2-KRB5"] = true, ANONYMOUS = true,
}

local function usage(message)
  error(Error.new { kind = "usage", message = message }, 0)
end

local function raise(kind, message, fields)
  local f = { kind = kind, message = message }
  if fields then for k, v in pairs(fields) do f[k] = v end end
  error(Error.new(f), 0)
end

--- Whether a mechanism can be run at all (here or by libgsasl).
-- @tparam string name upper-case mechanism name
-- @treturn boolean
function sasl.supports(name)
  name = tostring(name):upper()
  return lua_mechs[name] == true or core.sasl_supports(name)
end

--- Every mechanism this library can run: libgsasl's client list plus the
-- ones implemented in Lua.
-- @treturn {string,...}
function sasl.mechanisms()
  local list = core.sasl_mechanisms()
  for _, m in ipairs { "XOAUTH2", "OAUTHBEARER" } do list[#list + 1] = m end
  return list
end

--- Picks the mechanism for an AUTH exchange.
-- @tparam {string,...} server_mechs names from the EHLO AUTH line
-- @tparam table opts `mechanisms` (caller's order, any case), `user`,
-- `password`, `token`, `allow_plaintext`, `require_channel_binding` (only
-- SCRAM-*-PLUS: with no binding data, kind usage; with none offered, nil)
-- @tparam boolean secure whether the connection is under TLS with a
-- verified peer certificate
-- @tparam[opt] string insecure_why how the connection falls short (for
-- the message), default "an unencrypted connection"
-- @tparam[opt] boolean channel_binding whether the connection can give
-- TLS channel binding data (SCRAM-*-PLUS); without it those are skipped,
-- and naming only them is kind `usage`
-- @return a mechanism name; `false` when authentication is to be skipped
-- (`mechanisms = {}`, or no credentials given at all and no `mechanisms`);
-- `nil` when nothing usable is offered. Raises kind `usage` when the only
-- match would give a password or token (or what cracks it) to an
-- unauthenticated peer and `allow_plaintext` is not true.
function sasl.choose(server_mechs, opts, secure, insecure_why, channel_binding)
  opts = opts or {}
  local offered = {}
  for _, m in ipairs(server_mechs or {}) do offered[tostring(m):upper()] = true end

  local wanted = {}
  if opts.mechanisms ~= nil then
    if type(opts.mechanisms) ~= "table" then
      usage("mechanisms must be a list of names")
    end
    if #opts.mechanisms == 0 then return false end
    for i, m in ipairs(opts.mechanisms) do
      if type(m) ~= "string" then usage("mechanisms[" .. i .. "] is not a string") end
      wanted[#wanted + 1] = m:upper()
    end
  else
    if opts.token == nil and opts.password == nil and opts.user == nil then
      return false
    end
    if opts.token ~= nil then
      for _, m in ipairs(oauth_order) do wanted[#wanted + 1] = m end
    end
    if opts.password ~= nil then
      for _, m in ipairs(sasl.default_order) do wanted[#wanted + 1] = m end
    end
  end

  if opts.require_channel_binding ~= nil and type(opts.require_channel_binding) ~= "boolean" then
    usage("require_channel_binding must be a boolean")
  end
  if opts.require_channel_binding then
    local bound = {}
    for _, m in ipairs(wanted) do
      if channel_bound[m] then bound[#bound + 1] = m end
    end
    if #bound == 0 then
      usage("require_channel_binding: no SCRAM-*-PLUS mechanism among those to try")
    end
    if not channel_binding then
      usage("require_channel_binding: this connection gives no TLS channel binding (no TLS, a transport " ..
        "without it, or TLS 1.2 without extended master secret)")
    end
    wanted = bound
  end

  local refused, unbound
  for _, m in ipairs(wanted) do
    -- EXTERNAL authenticates as whoever the TLS certificate says: only
    -- when asked for by name (it is never in the default lists).
    if channel_bound[m] and not channel_binding then
      if offered[m] then unbound = unbound or m end
    elseif offered[m] and sasl.supports(m) then
      if not no_secret[m] and not secure and opts.allow_plaintext ~= true then
        refused = refused or m
      else
        return m
      end
    end
  end
  if refused then
    local secret = (refused == "XOAUTH2" or refused == "OAUTHBEARER") and "token" or "password"
    usage("SASL mechanism " .. refused ..
      (sends_in_clear[refused] and (" would send the " .. secret .. " in clear")
        or (" would expose material to crack the " .. secret)) ..
      " over " .. (insecure_why or "an unencrypted connection") ..
      "; use STARTTLS or implicit TLS with a verified certificate (give 'tls') or set allow_plaintext = true")
  end
  if unbound and opts.mechanisms ~= nil then
    usage("SASL mechanism " .. unbound .. " needs TLS channel binding: use STARTTLS or implicit TLS (give 'tls')")
  end
  return nil
end

-- ---- a tiny JSON reader for RFC 7628 error challenges ----------------------
-- Enough for {"status":"invalid_token","scope":"...","schemes":"bearer"}:
-- objects, arrays, strings with escapes, numbers, literals; bounded size and
-- depth so that a hostile challenge costs nothing.
local MAX_JSON, MAX_DEPTH = 8192, 8

local function utf8_of(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 64), 0x80 + cp % 64) end
  return char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end

local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f",
                  n = "\n", r = "\r", t = "\t" }

local function json_decode(s)
  if #s > MAX_JSON then return nil end
  local pos = 1
  local value

  local function skip_ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end

  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local c = s:sub(pos, pos)
      if c == "" then return nil end
      if c == '"' then pos = pos + 1; return concat(out) end
      if c == "\\" then
        local e = s:sub(pos + 1, pos + 1)
        if escapes[e] then
          out[#out + 1] = escapes[e]; pos = pos + 2
        elseif e == "u" then
          local hex = s:match("^%x%x%x%x", pos + 2)
          if not hex then return nil end
          out[#out + 1] = utf8_of(tonumber(hex, 16)); pos = pos + 6
        else
          return nil
        end
      else
        local run = s:match('^[^"\\]+', pos)
        out[#out + 1] = run; pos = pos + #run
      end
    end
  end

  function value(depth)
    if depth > MAX_DEPTH then return nil end
    skip_ws()
    local c = s:sub(pos, pos)
    if c == '"' then return str() end
    if c == "{" or c == "[" then
      local obj, close, n = {}, c == "{" and "}" or "]", 0
      pos = pos + 1
      skip_ws()
      if s:sub(pos, pos) == close then pos = pos + 1; return obj end
      while true do
        local k
        if close == "}" then
          skip_ws()
          if s:sub(pos, pos) ~= '"' then return nil end
          k = str()
          if k == nil then return nil end
          skip_ws()
          if s:sub(pos, pos) ~= ":" then return nil end
          pos = pos + 1
        else
          n = n + 1; k = n
        end
        local v = value(depth + 1)
        if v == nil then return nil end
        obj[k] = v
        skip_ws()
        local sep = s:sub(pos, pos)
        pos = pos + 1
        if sep == close then return obj end
        if sep ~= "," then return nil end
      end
    end
    local lit = s:match("^[%w%.%+%-]+", pos)
    if not lit then return nil end
    pos = pos + #lit
    if lit == "true" then return true end
    if lit == "false" then return false end
    if lit == "null" then return "null" end
    return tonumber(lit) or nil
  end

  local v = value(1)
  skip_ws()
  if v == nil or pos <= #s or type(v) ~= "table" then return nil end
  return v
end

-- What the caller may show of a server's RFC 7628 error: its JSON fields
-- (status, scope, schemes, openid-configuration) and one readable line.
local function error_detail_of(challenge)
  local t = json_decode(challenge)
  local d = {}
  if t then
    for _, k in ipairs { "status", "scope", "schemes", "openid-configuration" } do
      local v = t[k]
      if type(v) == "string" or type(v) == "number" then d[k] = tostring(v) end
    end
  end
  local parts = {}
  for _, k in ipairs { "status", "scope", "schemes" } do
    if d[k] then parts[#parts + 1] = k .. "=" .. d[k] end
  end
  if #parts == 0 then
    -- Not JSON: keep a short printable excerpt.
    parts[1] = "server said: " .. (challenge:sub(1, 120):gsub("[%c\128-\255]", "?"))
  end
  d.text = concat(parts, " ")
  return d
end

-- ---- sessions ---------------------------------------------------------------
local Session = {}
Session.__index = Session

local function check_field(v, what, mech)
  if v == nil then return end
  if type(v) ~= "string" then usage(mech .. ": " .. what .. " must be a string") end
  if v:find("[%z\1]") then
    usage(mech .. ": " .. what .. " must not contain NUL or \\1 bytes")
  end
end

-- sasl_params (Netsmtp's list of {name, value, critical}): names are
-- matched case-insensitively with '-' read as '_'.
local function collect_params(mech, params, known)
  local out = {}
  for i, p in ipairs(params or {}) do
    if type(p) ~= "table" or type(p[1]) ~= "string" then
      usage("sasl_params[" .. i .. "] must be {name, value, critical}")
    end
    local name = p[1]:lower():gsub("-", "_")
    if known(name) then
      out[name] = tostring(p[2])
    elseif p[3] then
      usage("SASL parameter '" .. p[1] .. "' is not supported by " .. mech ..
        " and is marked critical")
    end
  end
  return out
end

local function gs2_name(s)
  -- RFC 5801 section 4: ',' and '=' are escaped in a saslname.
  return (s:gsub("=", "=3D"):gsub(",", "=2C"))
end

--- Starts a client session for one AUTH exchange.
-- @tparam string mech mechanism name (any case)
-- @tparam table opts `user`, `authz`, `password`, `token`, `sasl_params`
-- @tparam table info `hostname` (server name, for DIGEST-MD5's digest-uri and
-- OAUTHBEARER's host=), `service` (default "smtp"), `port` (OAUTHBEARER),
-- `channel_binding` ({type = "tls-exporter"|"tls-unique", data = bytes},
-- needed by SCRAM-*-PLUS; with plain SCRAM it only makes the client send
-- gs2 flag y, RFC 5802 6, and is given to no other mechanism)
-- @return a session; raises kind `usage` when a credential is missing or a
-- critical parameter is unknown
function sasl.session(mech, opts, info)
  if type(mech) ~= "string" then usage("mechanism must be a string") end
  mech = mech:upper()
  opts, info = opts or {}, info or {}
  local self = setmetatable({
    mechanism = mech, done = false, error_detail = nil,
    _steps = 0,
  }, Session)
  check_field(opts.user, "user", mech)
  check_field(opts.authz, "authz", mech)
  check_field(opts.token, "token", mech)

  if mech == "XOAUTH2" or mech == "OAUTHBEARER" then
    if opts.token == nil then usage(mech .. " needs a token") end
    if mech == "XOAUTH2" and opts.user == nil then usage("XOAUTH2 needs a user") end
    local params = collect_params(mech, opts.sasl_params, function(n)
      return mech == "OAUTHBEARER" and (n == "host" or n == "port")
    end)
    self._host = params.host or info.hostname
    self._port = params.port or (info.port and tostring(info.port))
    check_field(self._host, "host", mech)
    check_field(self._port, "port", mech)
    self._user, self._authz, self._token = opts.user, opts.authz, opts.token
    return self
  end
  if mech == "EXTERNAL" then
    collect_params(mech, opts.sasl_params, function() return false end)
    self._authz = opts.authz or ""
    return self
  end

  if not core.sasl_supports(mech) then
    usage("SASL mechanism " .. mech .. " is not supported")
  end
  if password_mechs[mech] then
    if type(opts.user) ~= "string" then usage(mech .. " needs a user") end
    if type(opts.password) ~= "string" then usage(mech .. " needs a password") end
  end
  local props = collect_params(mech, opts.sasl_params, core.sasl_property_known)
  if mech == "DIGEST-MD5" and not (props.hostname or info.hostname) then
    -- RFC 2831 2.1.2: the digest-uri names the server host.
    usage("DIGEST-MD5 needs the server host name (info.hostname)")
  end
  props.authid = opts.user
  props.authzid = opts.authz
  props.password = opts.password
  props.service = props.service or info.service or "smtp"
  props.hostname = props.hostname or info.hostname
  if channel_bound[mech] then
    local cb = info.channel_binding
    local prop = type(cb) == "table" and cb_property[cb.type]
    if not prop or type(cb.data) ~= "string" or cb.data == "" then
      usage(mech .. " needs TLS channel binding data: use STARTTLS or implicit TLS (give 'tls')")
    end
    props[prop] = core.sasl_b64encode(cb.data)
  end
  -- Plain SCRAM on a connection that could bind: the server did not offer
  -- -PLUS, and flag y tells a server that does that someone removed it.
  local cb = info.channel_binding
  local could_bind = scram_plain[mech] and type(cb) == "table" and cb_property[cb.type] ~= nil
    and type(cb.data) == "string" and cb.data ~= ""
  local s, kind, msg = core.sasl_client(mech, props, could_bind)
  if not s then raise(kind, msg) end
  self._core = s
  return self
end

--- Whether the client may send an initial response with AUTH (RFC 4954).
-- If it may, call `step(nil)` first and put the bytes (base64, "=" when
-- empty) on the AUTH line; if that line would pass 512 octets, send AUTH
-- alone and give the same bytes as the reply to the server's empty 334.
function Session:initial_response_allowed()
  return client_first[self.mechanism] == true
end

-- The Lua mechanisms: the first step gives the initial response; a
-- challenge after it can only be the RFC 7628 error (section 3.2.2),
-- answered with the dummy response so that the server sends its 535.
local function step_oauth(self, challenge)
  self._steps = self._steps + 1
  if self._steps == 1 then
    self.done = true
    if self.mechanism == "XOAUTH2" then
      return "user=" .. self._user .. "\1auth=Bearer " .. self._token .. "\1\1", true
    end
    local authz = self._authz or self._user
    local parts = { "n,", authz and ("a=" .. gs2_name(authz)) or "", "," }
    if self._host then parts[#parts + 1] = "\1host=" .. self._host end
    if self._port then parts[#parts + 1] = "\1port=" .. self._port end
    parts[#parts + 1] = "\1auth=Bearer " .. self._token .. "\1\1"
    return concat(parts), true
  end
  if self._steps == 2 then
    self.error_detail = error_detail_of(challenge or "")
    return self.mechanism == "OAUTHBEARER" and "\1" or "", true
  end
  raise("authentication", self.mechanism .. ": the server continued after " ..
    "its error challenge", { cause = "protocol" })
end

--- One step of the exchange.
-- @tparam[opt] string challenge the server's decoded 334 text; nil before
-- the first server message
-- @return response bytes to send (nil only when the mechanism waits for
-- the server to speak first), and whether the mechanism has finished its
-- own checks. A 235 before `done` must be treated as a failure (the server
-- skipped e.g. SCRAM's signature). Raises kind `authentication` on failure
-- (field `cause` holds "protocol" for malformed server data) and `usage`
-- for missing credentials.
function Session:step(challenge)
  if challenge ~= nil and type(challenge) ~= "string" then
    usage("challenge must be a string or nil")
  end
  local mech = self.mechanism
  if self._closed then usage("SASL session is closed") end
  if challenge == nil and self._steps == 0 and not client_first[mech] then
    return nil, false
  end
  if mech == "XOAUTH2" or mech == "OAUTHBEARER" then
    return step_oauth(self, challenge)
  end
  if mech == "EXTERNAL" then
    self._steps = self._steps + 1
    if self._steps > 1 then
      raise("authentication", "EXTERNAL: unexpected challenge from the server",
        { cause = "protocol" })
    end
    self.done = true
    return self._authz, true
  end
  self._steps = self._steps + 1
  local response, done, msg = self._core:step(challenge)
  if response == nil then
    local kind = done
    if kind == "usage" then raise("usage", msg) end
    raise("authentication", msg, { cause = kind })
  end
  self.done = done
  return response, done
end

--- Frees the session and wipes the C copies of the credentials.
function Session:close()
  self._closed = true
  if self._core then self._core:finish() end
  self._token, self._user, self._authz = nil, nil, nil
end
Session.__close = Session.close

function Session:__tostring()
  return "smtp.sasl session (" .. self.mechanism .. ")"
end

--- Masks an AUTH command or continuation line for traces and errors:
-- "AUTH PLAIN <payload>" becomes "AUTH PLAIN ***", any other line of the
-- exchange "***" (the cancel line "*" stays visible).
-- @tparam string line
-- @treturn string
function sasl.mask(line)
  line = tostring(line)
  local body, eol = line:match("^(.-)(\r?\n?)$")
  local mech, rest = body:match("^[Aa][Uu][Tt][Hh][ \t]+([%w%-_]+)[ \t]*(.*)$")
  if mech then
    mech = mech:upper()
    -- Only a name we know is shown: a misused line must not reveal its
    -- second word.
    if not (sasl.supports(mech) or client_first[mech] or password_mechs[mech]) then
      return "AUTH ***" .. eol
    end
    return "AUTH " .. mech .. (rest ~= "" and " ***" or "") .. eol
  end
  if body == "*" then return line end
  return "***" .. eol
end

sasl._json_decode = json_decode -- for the unit tests

return sasl
