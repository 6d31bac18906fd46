--- DKIM signing (RFC 6376, rsa-sha256). Two passes over a message: the
-- first streams it through the C canonicaliser (smtp.core.dkim_body),
-- which keeps the header block and hashes the body without holding it;
-- the second sends the DKIM-Signature field and then the message again.
-- Sources that cannot be read twice (a chunk function, a pipe) are spooled
-- to an io.tmpfile() during the first pass.
-- @module smtp.dkim
local core = require "smtp.core"
local Error = require "smtp.error"
local address = require "smtp.address"
local idna = require "smtp.idna"

local type, ipairs, pairs, tostring, error, setmetatable, pcall =
  type, ipairs, pairs, tostring, error, setmetatable, pcall
local find, sub, gsub, lower, format = string.find, string.sub, string.gsub, string.lower, string.format
local concat = table.concat

local dkim = {}

local FOLD_AT = 78
local READ_SIZE = 65536

-- math.type is Lua 5.3+; this module also loads in 5.1 and LuaJIT.
local function is_count(v)
  return type(v) == "number" and v >= 0 and v == math.floor(v) and v < 2 ^ 53
end

local function usage(msg)
  error(Error.new { kind = "usage", message = msg }, 0)
end

local function io_failure(msg)
  error(Error.new { kind = "io", message = msg, outcome = "not_sent", retryable = false }, 0)
end

-- The h= list when none is given (RFC 6376 5.4.1's recommended fields
-- that a composed message carries); only those present are signed.
dkim.DEFAULT_HEADERS = {
  "from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc", "mime-version",
  "content-type", "content-transfer-encoding", "content-id", "content-description",
  "in-reply-to", "references", "list-id", "list-unsubscribe", "list-unsubscribe-post",
}

local FIELDS = {
  domain = true, selector = true, key_pem = true, key_file = true, headers = true,
  canonicalization = true, identity = true, expiration = true, timestamp = true, oversign = true,
}

-- Option tables already checked, so sendmany does not parse the key once
-- per message; weak so a dropped table frees its key.
local checked = setmetatable({}, { __mode = "k" })
-- Tables options() returned: already checked (a message's own dkim,
-- re-applied after an 8-bit downgrade).
local results = setmetatable({}, { __mode = "k" })

-- A domain name of ASCII labels (an internationalised one as A-labels).
local function check_name(v, what, underscore)
  address.check_arg(v, "dkim." .. what)
  local chars = underscore and "^[%w_%-]+$" or "^[%w%-]+$"
  if v == "" or #v > 253 then usage("dkim." .. what .. " is not a domain name: " .. v) end
  for l in (v .. "."):gmatch("([^.]*)%.") do
    if #l > 63 or not find(l, chars) or find(l, "^%-") or find(l, "%-$") then
      usage("dkim." .. what .. " is not a domain name: " .. v)
    end
  end
end

local function read_key(o)
  if (o.key_pem == nil) == (o.key_file == nil) then usage("dkim needs exactly one of 'key_pem' and 'key_file'") end
  local pem = o.key_pem
  if pem ~= nil then
    if type(pem) ~= "string" then usage("dkim.key_pem must be a string, got " .. type(pem)) end
  else
    address.check_arg(o.key_file, "dkim.key_file")
    local f, err = io.open(o.key_file, "rb")
    if not f then usage("dkim.key_file: cannot open " .. o.key_file .. ": " .. tostring(err)) end
    pem = f:read("*a")
    f:close()
    if not pem then usage("dkim.key_file: cannot read " .. o.key_file) end
  end
  local key, _, msg = core.dkim_key(pem)
  if not key then
    usage((o.key_file and "dkim.key_file " .. o.key_file or "dkim.key_pem") .. ": " .. tostring(msg))
  end
  return key
end

local function name_list(v, what)
  if type(v) ~= "table" then usage(what .. " must be a list of header names") end
  local out = {}
  for i, n in ipairs(v) do
    address.check_arg(n, what .. "[" .. i .. "]")
    if not find(n, "^[\33-\57\59-\126]+$") then usage(what .. "[" .. i .. "] is not a header name: " .. n) end
    n = lower(n)
    if n == "bcc" then usage(what .. ": bcc is never sent, so it cannot be signed") end
    if n == "dkim-signature" then usage(what .. ": dkim-signature cannot be signed") end
    out[#out + 1] = n
  end
  return out
end

local CANON = { relaxed = "relaxed", simple = "simple" }

--- Checks a `dkim` option table and parses its key.
-- @tparam table o `domain`, `selector`, `key_pem` | `key_file`, `headers`,
-- `canonicalization` ("relaxed/relaxed" default, "simple/simple", ...),
-- `identity` (i=), `expiration` (seconds of validity: x=), `timestamp`
-- (true default: t= now; false: none; a number: that time), `oversign`
-- (true: From; or a list of names signed once more than present)
-- @return the checked options (internal)
function dkim.options(o)
  if type(o) ~= "table" then usage("dkim must be a table") end
  if results[o] then return o end
  -- A table changed since it was checked is checked again.
  local done = checked[o]
  if done then
    local same = true
    for f in pairs(FIELDS) do
      if done.given[f] ~= o[f] then same = false end
    end
    if same then return done.options end
  end
  for k in pairs(o) do
    if not FIELDS[k] then usage("dkim: unknown field '" .. tostring(k) .. "'") end
  end
  if o.domain == nil then usage("dkim: 'domain' is required") end
  if o.selector == nil then usage("dkim: 'selector' is required") end
  -- d= is looked up in DNS: always A-labels (RFC 6376 3.5).
  local domain = idna.to_ascii(o.domain, "dkim.domain")
  check_name(domain, "domain", false)
  check_name(o.selector, "selector", true)
  local c = o.canonicalization or "relaxed/relaxed"
  if type(c) ~= "string" then usage("dkim.canonicalization must be a string") end
  local hc, bc = c:match("^(%a+)/(%a+)$")
  if not hc then hc, bc = c, "simple" end -- RFC 6376 3.5 c=: body defaults to simple
  if not CANON[hc] or not CANON[bc] then
    usage("dkim.canonicalization must be relaxed or simple for header/body, got " .. c)
  end
  local r = { domain = domain, selector = o.selector, hc = hc, bc = bc }
  r.headers = o.headers ~= nil and name_list(o.headers, "dkim.headers") or dkim.DEFAULT_HEADERS
  local has_from = false
  for _, n in ipairs(r.headers) do if n == "from" then has_from = true end end
  if not has_from then usage("dkim.headers must include 'from' (RFC 6376 5.4)") end
  if o.oversign == true then
    r.oversign = { "from" }
  elseif o.oversign ~= nil and o.oversign ~= false then
    r.oversign = name_list(o.oversign, "dkim.oversign")
  end
  if o.identity ~= nil then
    address.check_arg(o.identity, "dkim.identity")
    local identity = idna.ascii_address(o.identity, "dkim.identity") or o.identity
    local local_part, dom = identity:match("^([\33-\58\60-\126]*)@([%w%-%.]+)$")
    if not local_part then usage("dkim.identity is not local@domain: " .. o.identity) end
    local ld, lid = lower(domain), lower(dom)
    -- RFC 6376 3.5 i=: the domain of d= or one of its subdomains.
    if lid ~= ld and sub(lid, -#ld - 1) ~= "." .. ld then
      usage("dkim.identity must be in the domain " .. o.domain .. " or a subdomain of it")
    end
    r.identity = identity
  end
  local ts = o.timestamp
  if ts ~= nil and type(ts) ~= "boolean" and not is_count(ts) then
    usage("dkim.timestamp must be a boolean or a non-negative integer")
  end
  r.timestamp = ts == nil and true or ts
  if o.expiration ~= nil then
    if not is_count(o.expiration) or o.expiration == 0 then
      usage("dkim.expiration must be a positive integer (seconds)")
    end
    r.expiration = o.expiration
  end
  r.key = read_key(o)
  local given = {}
  for f in pairs(FIELDS) do given[f] = o[f] end
  checked[o] = { options = r, given = given }
  results[r] = true
  return r
end

-- Header fields of a CRLF header block: {name = lowercase, raw = text}.
local function fields_of(block)
  local fields = {}
  for line in block:gmatch("[^\n]*\n") do
    if find(line, "^[ \t]") and #fields > 0 then
      fields[#fields].raw = fields[#fields].raw .. line
    else
      local name = line:match("^([^:]*):")
      fields[#fields + 1] = { name = name and lower((gsub(name, "[ \t]+$", ""))), raw = line }
    end
  end
  return fields
end

-- RFC 6376 3.4.2: lowercase name, unfolded value, WSP runs to one SP,
-- none around the colon or at the end.
local function relaxed_header(raw)
  local name, value = raw:match("^([^:]*):(.*)$")
  value = gsub(gsub(value, "\r\n", ""), "[ \t]+", " ")
  value = gsub(gsub(value, "^ ", ""), " $", "")
  return lower((gsub(name, "[ \t]+$", ""))) .. ":" .. value
end

local function canon_header(raw, hc)
  if hc == "simple" then return raw end
  return relaxed_header(raw) .. "\r\n"
end

-- b64 without line breaks.
local function b64(s)
  return core.b64_encode(s, 0)
end

-- Folds tokens into "DKIM-Signature: ..." lines of at most 78 columns. A
-- token is {text, glue}: glue is the separator when it stays on the line
-- ("" inside h=, " " between tags); a fold is CRLF SP either way.
local function fold(tokens)
  local lines, line = {}, "DKIM-Signature:"
  for _, t in ipairs(tokens) do
    local text, glue = t[1], t[2]
    if #line + #glue + #text > FOLD_AT and line ~= "DKIM-Signature:" then
      lines[#lines + 1] = line
      line = " " .. text
    else
      line = line .. glue .. text
    end
  end
  lines[#lines + 1] = line
  return concat(lines, "\r\n")
end

--- The DKIM-Signature field (with its CRLF) for a message whose header
-- block (CRLF lines, as core.dkim_body returns it) and body hash are given.
-- @param o checked options (dkim.options)
function dkim.signature(o, header_block, bh, now)
  local fields = fields_of(header_block)
  -- h=: each listed name once per instance present (signed bottom up,
  -- RFC 6376 5.4.2), then the over-signed names once more.
  local count = {}
  for _, f in ipairs(fields) do
    if f.name then count[f.name] = (count[f.name] or 0) + 1 end
  end
  if not count.from then usage("dkim: the message has no From header to sign") end
  local h, seen = {}, {}
  for _, n in ipairs(o.headers) do
    if not seen[n] then
      seen[n] = true
      for _ = 1, count[n] or 0 do h[#h + 1] = n end
    end
  end
  for _, n in ipairs(o.oversign or {}) do h[#h + 1] = n end
  -- The header hash input, each name taking the last unused instance.
  local used, input = {}, {}
  for _, n in ipairs(h) do
    local k = 0
    for i = #fields, 1, -1 do
      if fields[i].name == n and not used[i] then k = i; break end
    end
    if k > 0 then
      used[k] = true
      input[#input + 1] = canon_header(fields[k].raw, o.hc)
    end
  end
  local tokens = {
    { "v=1;", " " }, { "a=rsa-sha256;", " " }, { "c=" .. o.hc .. "/" .. o.bc .. ";", " " },
    { "d=" .. o.domain .. ";", " " }, { "s=" .. o.selector .. ";", " " },
  }
  if o.identity then
    -- dkim-quoted-printable (RFC 6376 2.11): '=' and ';' are escaped.
    local i = gsub(o.identity, "[=;]", function(c) return format("=%02X", c:byte()) end)
    tokens[#tokens + 1] = { "i=" .. i .. ";", " " }
  end
  now = now or os.time()
  local t = o.timestamp == true and now or o.timestamp
  if t then tokens[#tokens + 1] = { "t=" .. format("%d", t) .. ";", " " } end
  if o.expiration then tokens[#tokens + 1] = { "x=" .. format("%d", (t or now) + o.expiration) .. ";", " " } end
  for i, n in ipairs(h) do
    tokens[#tokens + 1] = { (i == 1 and "h=" or "") .. n .. (i == #h and ";" or ":"), i == 1 and " " or "" }
  end
  tokens[#tokens + 1] = { "bh=" .. b64(bh) .. ";", " " }
  tokens[#tokens + 1] = { "b=", " " }
  local unsigned = fold(tokens)
  local signed_part = o.hc == "simple" and unsigned or relaxed_header(unsigned)
  input[#input + 1] = signed_part
  local sig, _, msg = o.key:sign(concat(input))
  if not sig then usage("dkim: " .. tostring(msg)) end
  -- The signature fills the rest of the line, then whole lines.
  local s, out = b64(sig), { unsigned }
  local last = unsigned:match("[^\n]*$")
  local room = math.max(FOLD_AT - #last, 0)
  out[1] = unsigned .. sub(s, 1, room)
  local pos = room + 1
  while pos <= #s do
    out[#out + 1] = " " .. sub(s, pos, pos + FOLD_AT - 2)
    pos = pos + FOLD_AT - 1
  end
  return concat(out, "\r\n") .. "\r\n"
end

--- Pass 1: reads a chunk source to its end and returns the DKIM-Signature
-- field, or nil and the source's error message.
-- @param o checked options
-- @tparam function src chunk source (nil ends it; nil, err fails)
-- @tparam[opt] function tee called with every chunk (spooling)
function dkim.header(o, src, tee)
  local hasher = core.dkim_body(o.bc == "relaxed", true)
  for _ = 1, math.huge do
    local ok, chunk, err = pcall(src)
    if not ok then hasher:close(); return nil, tostring(chunk) end
    if chunk == nil then
      if err then hasher:close(); return nil, tostring(err) end
      break
    end
    if type(chunk) ~= "string" then hasher:close(); return nil, "message source returned a " .. type(chunk) end
    local done, kind, msg = hasher:update(chunk)
    if not done then
      hasher:close()
      if kind == "usage" then usage("dkim: " .. msg) end
      return nil, msg
    end
    if tee then tee(chunk) end
  end
  local bh, block = hasher:finish()
  return dkim.signature(o, block, bh)
end

-- A source giving 'first', then the chunks of 'rest'.
local function prepend(first, rest)
  local sent = false
  return function()
    if not sent then sent = true; return first end
    return rest()
  end
end

local function failing(err)
  return function() return nil, err end
end

--- Signs a message object: its source, with the signature first.
-- @param msg an smtp.message (or any object with source())
-- @param o checked options
-- @return a chunk source and the signature's length (nil after a failure)
function dkim.message_source(msg, o)
  local unsigned = msg.unsigned_source or msg.source
  local field, err = dkim.header(o, unsigned(msg))
  if not field then return failing(err), nil end
  return prepend(field, unsigned(msg)), #field
end

-- A raw file: replayed by seeking back when it can seek, else spooled.
local function replay_file(f, o)
  local ok, pos = pcall(f.seek, f)
  if not ok or not pos then return nil end
  local field, err = dkim.header(o, function() return f:read(READ_SIZE) end)
  if not field then io_failure("message source failed: " .. err) end
  if not f:seek("set", pos) then io_failure("cannot seek back in the message file") end
  return prepend(field, function() return f:read(READ_SIZE) end)
end

local function spool(src, o)
  local tmp, terr = io.tmpfile()
  if not tmp then io_failure("cannot create a spool file for DKIM: " .. tostring(terr)) end
  local werr
  local field, err = dkim.header(o, src, function(chunk)
    if not werr then
      local ok, e = tmp:write(chunk)
      if not ok then werr = e end
    end
  end)
  if not field or werr then
    tmp:close()
    io_failure(werr and "cannot write the DKIM spool file: " .. tostring(werr) or "message source failed: " .. err)
  end
  tmp:seek("set", 0)
  return prepend(field, function()
    if io.type(tmp) ~= "file" then return nil end
    local chunk = tmp:read(READ_SIZE)
    if chunk == nil then tmp:close() end
    return chunk
  end)
end

--- What sendmail sends for `opts.dkim`: the message signed with these
-- options (replacing a message object's own `dkim`). A message object
-- gives a view of it; a raw string a new string; a file or function a
-- chunk function.
function dkim.signed(msg, opts_dkim)
  local o = dkim.options(opts_dkim)
  if type(msg) == "table" and type(msg.source) == "function" then
    -- No fast-path part list: the message's own would lack this signature.
    local view = setmetatable({ _wire_parts = false }, { __index = msg })
    local src, len = dkim.message_source(msg, o)
    local used = false
    function view.source()
      -- Signed once (pass 1 already ran); a second send signs again.
      if used then src, len = dkim.message_source(msg, o) end
      used = true
      return src
    end
    function view.requirements()
      local req = {}
      for k, v in pairs(msg.requirements and msg:requirements(true) or {}) do req[k] = v end
      req.size = len and req.size and req.size + len or nil
      return req
    end
    return view
  end
  if type(msg) == "string" then
    if find(msg, "%z") then usage("dkim: cannot sign a message with NUL bytes (sent as BINARYMIME)") end
    local field, err = dkim.header(o, prepend(msg, function() return nil end))
    if not field then io_failure(err) end
    return field .. msg
  end
  if io.type(msg) == "file" then
    return replay_file(msg, o) or spool(function() return msg:read(READ_SIZE) end, o)
  end
  if type(msg) == "function" then return spool(msg, o) end
  usage("message must be an smtp.message, a string, a file or a function")
end

return dkim
