--- Connection URLs (issue 25 item 2): `smtp://`, `smtps://` and `lmtp://`
-- turned into the options of smtp.connect, as curl and lettre read them.
--
--   smtp://[user[:password]@]host[:port][/ehlo-name][?tls=...]
--     STARTTLS required (port 25); ?tls=opportunistic: STARTTLS when
--     offered, else plaintext; ?tls=none: no TLS; ?tls=required: the
--     default, written out.
--   smtps://[user[:password]@]host[:port][/ehlo-name]
--     TLS from the first byte (port 465).
--   lmtp://host[:port]   LMTP over TCP (port 24), no TLS unless ?tls=
--   lmtp:///path/to/socket, lmtp://%2Fpath%2Fto%2Fsocket   over a UNIX socket
--
-- User, password, host and path are percent-decoded. Every refusal is
-- kind 'usage' and its message never quotes the user name or password.
-- @module smtp.url
local Error = require "smtp.error"

local type, pairs, tonumber, error, char = type, pairs, tonumber, error, string.char

local url = {}

local DEFAULT_PORT = { smtp = 25, smtps = 465, lmtp = 24 }
local TLS_LEVELS = { required = true, opportunistic = true, none = true }
-- A URL longer than this is not a mistake worth parsing.
local MAX_LENGTH = 4096

local function usage(where, msg)
  error(Error.new { kind = "usage", message = where .. "url: " .. msg }, 0)
end

-- %XX escapes; a '%' not followed by two hex digits is refused, and so is
-- a decoded control byte (CR/LF/NUL would end a command line early).
local function decode(where, s, what)
  if s:find("%%[^%x]") or s:find("%%%x[^%x]") or s:find("%%%x?$") then
    usage(where, "bad percent escape in the " .. what)
  end
  local out = s:gsub("%%(%x%x)", function(h) return char(tonumber(h, 16)) end)
  if out:find("[%z\1-\31\127]") then
    usage(where, "the " .. what .. " contains a control character (CR, LF, NUL, ...)")
  end
  return out
end

local function parse_port(where, s, scheme)
  if s == "" then return DEFAULT_PORT[scheme] end
  local port = s:find("^%d+$") and tonumber(s)
  if not port or port < 1 or port > 65535 then
    usage(where, "the port must be a number from 1 to 65535")
  end
  return port
end

-- host[:port] or [IPv6]:port; the host is returned without brackets, as
-- smtp.connect and the resolver take it.
local function parse_host_port(where, hostport, scheme)
  local host, rest
  if hostport:sub(1, 1) == "[" then
    host, rest = hostport:match("^%[([%x:%.]+)%](.*)$")
    if not host or not host:find(":", 1, true) then usage(where, "malformed IPv6 literal (write [::1])") end
  else
    host, rest = hostport:match("^([^:]*)(.*)$")
    if rest:find(":", 2, true) then usage(where, "write an IPv6 address in brackets, e.g. smtp://[::1]:25") end
    host = decode(where, host, "host")
  end
  if host == "" then usage(where, "the host is missing") end
  if host:find("[%s/\\]") and host:sub(1, 1) ~= "/" then usage(where, "the host contains a space or a slash") end
  if rest ~= "" and rest:sub(1, 1) ~= ":" then usage(where, "unexpected text after the host") end
  return host, parse_port(where, rest:sub(2), scheme)
end

local function parse_query(where, query, scheme)
  local seen = {}
  if query == nil then return seen end
  for pair in (query .. "&"):gmatch("([^&]*)&") do
    if pair ~= "" then
      local key, value = pair:match("^([^=]*)=(.*)$")
      key = key or pair
      if key ~= "tls" then
        -- Name the key only when it is a plain word (nothing secret).
        usage(where, key:find("^[%w_%-]+$") and #key <= 32
          and ("unknown query key '" .. key .. "' (only 'tls' is known)")
          or "unknown query key (only 'tls' is known)")
      end
      if seen.tls then usage(where, "'tls' given twice") end
      if not (value and TLS_LEVELS[value]) then
        usage(where, "tls must be required, opportunistic or none")
      end
      if scheme == "smtps" and value ~= "required" then
        usage(where, "smtps:// is TLS from the first byte: tls=" .. value .. " contradicts it (use smtp://)")
      end
      seen.tls = value
    end
  end
  return seen
end

--- Parses a connection URL into the options of `smtp.connect` (and of
-- `client:authenticate` for the credentials): `host`, `port`,
-- `tls_mode`, `tls` (an empty table: the default `smtp.tls_config`,
-- verified against the system CAs), `tls_required`, `protocol`, `user`,
-- `password`, `local_name`. Raises kind 'usage' for a malformed URL.
-- @tparam string s the URL
-- @tparam[opt] string where prefix of error messages, e.g. "smtp.connect: "
-- @treturn table
function url.parse(s, where)
  where = where or ""
  if type(s) ~= "string" or s == "" then usage(where, "must be a non-empty string") end
  if #s > MAX_LENGTH then usage(where, "longer than " .. MAX_LENGTH .. " bytes") end
  -- Raw controls and spaces first: nothing below should see them.
  if s:find("[%z\1-\32\127]") then usage(where, "contains a space or a control character (CR, LF, NUL, ...)") end
  local scheme, rest = s:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then usage(where, "must start with smtp://, smtps:// or lmtp://") end
  scheme = scheme:lower()
  if not DEFAULT_PORT[scheme] then
    usage(where, #scheme <= 16 and ("unknown scheme '" .. scheme .. "' (smtp, smtps or lmtp)")
      or "unknown scheme (smtp, smtps or lmtp)")
  end
  if rest:find("#", 1, true) then usage(where, "a fragment (#...) has no meaning here; percent-encode '#' as %23") end
  local authority, path, query = rest:match("^([^/?]*)([^?]*)%??(.*)$")
  if not rest:find("?", 1, true) then query = nil end
  -- An '@' past the host means a user name or password with an unencoded
  -- '/' or '?': refused rather than sending a piece of it as EHLO name.
  if path:find("@", 1, true) or (query and query:find("@", 1, true)) then
    usage(where, "'@' after the host: percent-encode '/', '?', '#' and '@' in the user name and password")
  end
  local o = {}
  local userinfo, hostport = authority:match("^(.*)@([^@]*)$")
  if userinfo then
    local user, password = userinfo:match("^([^:]*):(.*)$")
    user = decode(where, user or userinfo, "user name")
    if user == "" then usage(where, "empty user name before '@'") end
    o.user = user
    if password then
      password = decode(where, password, "password")
      if password == "" then usage(where, "empty password after ':'") end
      o.password = password
    end
  else
    hostport = authority
  end
  if scheme == "lmtp" and hostport == "" then
    -- lmtp:///path/to/socket
    if path == "" or path == "/" then usage(where, "lmtp:// needs a host or a socket path (lmtp:///path)") end
    o.host = decode(where, path, "socket path")
    path = ""
  else
    o.host, o.port = parse_host_port(where, hostport, scheme)
    if o.host:sub(1, 1) == "/" then
      if scheme ~= "lmtp" then usage(where, "a socket path needs lmtp://") end
      if hostport:find("^[^:]*:") then usage(where, "a socket path takes no port") end
      o.port = nil
    end
  end
  if path ~= "" and path ~= "/" then
    -- curl's meaning: the path is the name to send in EHLO.
    local name = decode(where, path:sub(2), "EHLO name in the path")
    if name:find("[%s/]") then usage(where, "the path must be a single EHLO name") end
    if scheme == "lmtp" then usage(where, "lmtp:// takes no path after the host") end
    o.local_name = name
  end
  local tls = parse_query(where, query, scheme).tls
  if scheme == "smtps" then
    o.tls_mode, o.tls, o.tls_required = "implicit", {}, true
  else
    if scheme == "lmtp" then o.protocol = "lmtp" end
    tls = tls or (scheme == "smtp" and "required" or "none")
    if tls ~= "none" then o.tls, o.tls_required = {}, tls == "required" end
  end
  return o
end

--- The options with `opts.url` expanded (opts itself when it has none):
-- every option given explicitly wins over the URL's. Credentials come
-- from one place: an explicit `user`, `password` or `token` drops both of
-- the URL's. The URL's own credentials are also kept as `_url_creds`, the
-- default of `client:authenticate`.
-- @tparam table opts
-- @tparam[opt] string where prefix of error messages
-- @treturn table
function url.apply(opts, where)
  if type(opts) ~= "table" or opts.url == nil then return opts end
  local o = url.parse(opts.url, where)
  if opts.user ~= nil or opts.password ~= nil or opts.token ~= nil then
    o.user, o.password = nil, nil
  elseif o.user ~= nil then
    o._url_creds = { user = o.user, password = o.password }
  end
  if opts.tls == false or (opts.tls_mode ~= nil and opts.tls_mode ~= (o.tls_mode or "none")) then
    -- An explicit "no TLS" or another TLS mode takes the URL's TLS along.
    o.tls, o.tls_required = nil, nil
  end
  for k, v in pairs(opts) do
    if k ~= "url" then o[k] = v end
  end
  return o
end

return url
