--- RFC 5322 address lists and RFC 5321 paths: parsing header values into
-- mailboxes (display names, quoted strings, comments, groups), formatting
-- them back, and the CR/LF/NUL guard used before any command is written.
-- @module smtp.address
local Error = require "smtp.error"

local type, tostring, error = type, tostring, error
local byte, sub, find, concat = string.byte, string.sub, string.find, table.concat

local address = {}

local function usage(msg)
  error(Error.new { kind = "usage", message = msg }, 0)
end

--- Raises kind `usage` unless value is a string free of CR, LF and NUL
-- (command and header injection); returns value.
-- @tparam string value
-- @tparam[opt] string what names the argument in the message
function address.check_arg(value, what)
  if type(value) ~= "string" then
    usage((what or "argument") .. " must be a string, got " .. type(value))
  end
  if find(value, "[\r\n%z]") then
    usage((what or "argument") .. " contains CR, LF or NUL")
  end
  return value
end

--- Whether an address needs SMTPUTF8 (RFC 6531): non-ASCII in the local
-- part or the domain.
function address.needs_smtputf8(s)
  return type(s) == "string" and find(s, "[\128-\255]") ~= nil
end

-- Tokens of an address list: quoted strings, comments (nested), angle
-- addresses, the specials ':' ';' ',' '@' and runs of other text.
local function tokenize(s)
  local tokens, i, n = {}, 1, #s
  while i <= n do
    local c = sub(s, i, i)
    if c == '"' then
      local out, j = {}, i + 1
      while true do
        if j > n then usage("unterminated quoted string in address: " .. s) end
        local d = sub(s, j, j)
        if d == "\\" then
          out[#out + 1] = sub(s, j + 1, j + 1)
          j = j + 2
        elseif d == '"' then
          break
        else
          out[#out + 1] = d
          j = j + 1
        end
      end
      tokens[#tokens + 1] = { t = "quoted", v = concat(out) }
      i = j + 1
    elseif c == "(" then
      local depth, j = 1, i + 1
      while depth > 0 do
        if j > n then usage("unterminated comment in address: " .. s) end
        local d = sub(s, j, j)
        if d == "\\" then j = j + 1
        elseif d == "(" then depth = depth + 1
        elseif d == ")" then depth = depth - 1 end
        j = j + 1
      end
      tokens[#tokens + 1] = { t = "comment", v = sub(s, i + 1, j - 2) }
      i = j
    elseif c == "<" then
      local j = find(s, ">", i + 1, true)
      if not j then usage("unterminated '<' in address: " .. s) end
      tokens[#tokens + 1] = { t = "angle", v = sub(s, i + 1, j - 1) }
      i = j + 1
    elseif c == ":" or c == ";" or c == "," then
      tokens[#tokens + 1] = { t = c }
      i = i + 1
    elseif find(c, "%s") then
      i = i + 1
    else
      local j = i
      while j <= n and not find(sub(s, j, j), '[%s"(<:;,]') do j = j + 1 end
      tokens[#tokens + 1] = { t = "atom", v = sub(s, i, j - 1) }
      i = j
    end
  end
  return tokens
end

-- A bare addr-spec is local@domain; the local part may have been quoted.
local function check_addr_spec(a, original)
  if a == "" then usage("empty address in: " .. original) end
  local at = a:match("^.*()@")
  if not at or at == 1 or at == #a then usage("malformed address (no local@domain): " .. original) end
  if find(a, "[%s<>]") and not find(a, '^".*"@') then usage("malformed address: " .. original) end
  return a
end

-- One mailbox from its tokens: display-name <addr> or addr-spec.
local function mailbox(tokens, original)
  local words, angle = {}, nil
  local spec_parts = {}
  for _, tk in ipairs(tokens) do
    if tk.t == "angle" then
      if angle then usage("two angle addresses in one mailbox: " .. original) end
      angle = tk.v
    elseif tk.t == "atom" then
      words[#words + 1] = tk.v
      spec_parts[#spec_parts + 1] = tk.v
    elseif tk.t == "quoted" then
      words[#words + 1] = tk.v
      -- A quoted local part keeps its quotes in the address.
      spec_parts[#spec_parts + 1] = '"' .. tk.v:gsub('(["\\])', "\\%1") .. '"'
    end
  end
  if angle then
    local addr = angle:gsub("^%s+", ""):gsub("%s+$", "")
    -- An obsolete source route (<@a,@b:x@y>) is dropped (RFC 5322 4.4).
    addr = addr:gsub("^@[^:]*:", "")
    local name = #words > 0 and concat(words, " ") or nil
    return { name = name, address = check_addr_spec(addr, original) }
  end
  if #spec_parts == 0 then usage("missing address in: " .. original) end
  return { address = check_addr_spec(concat(spec_parts), original) }
end

--- Parses an address list (a To/Cc/Bcc/From value) into mailboxes
-- `{name = "Display Name" | nil, address = "local@domain"}`. Groups are
-- flattened (`team: a@x, b@y;`), empty groups (`undisclosed-recipients:;`)
-- give nothing, comments are dropped.
-- @tparam string s
-- @treturn {table,...}
function address.parse_list(s)
  address.check_arg(s, "address list")
  local tokens = tokenize(s)
  local out, current, in_group = {}, {}, false
  local function flush()
    local has = false
    for _, tk in ipairs(current) do
      if tk.t ~= "comment" then has = true end
    end
    if has then out[#out + 1] = mailbox(current, s) end
    current = {}
  end
  for _, tk in ipairs(tokens) do
    if tk.t == "," then
      flush()
    elseif tk.t == ":" then
      if in_group then usage("nested group in: " .. s) end
      -- A group's display name is not a mailbox.
      current, in_group = {}, true
    elseif tk.t == ";" then
      if not in_group then usage("';' outside a group in: " .. s) end
      flush()
      in_group = false
    else
      current[#current + 1] = tk
    end
  end
  if in_group then usage("unterminated group in: " .. s) end
  flush()
  return out
end

--- Parses one mailbox: `"Name <a@b>"`, `"a@b"`, or `{name=, address=}`.
function address.parse(v)
  if type(v) == "table" then
    address.check_arg(v.address, "address")
    if v.name ~= nil then address.check_arg(v.name, "display name") end
    return { name = v.name, address = check_addr_spec(v.address, v.address) }
  end
  local list = address.parse_list(v)
  if #list ~= 1 then usage("expected one address, got " .. #list .. ": " .. tostring(v)) end
  return list[1]
end

local b64
local function base64(s)
  if not b64 then
    local core = require "smtp.core"
    b64 = core.b64_encode or core.sasl_b64encode
  end
  return b64(s)
end

-- RFC 2047 B-encoded words for a UTF-8 phrase, each at most 75 octets,
-- never splitting a UTF-8 character.
local function encoded_words(text)
  local words, i, n = {}, 1, #text
  local max_raw = 45 -- 45 octets -> 60 base64 chars + 12 = 72
  while i <= n do
    local j = math.min(i + max_raw - 1, n)
    -- Back up to the end of a whole character.
    while j < n and j > i and byte(text, j + 1) >= 0x80 and byte(text, j + 1) < 0xC0 do j = j - 1 end
    words[#words + 1] = "=?UTF-8?B?" .. base64(sub(text, i, j)) .. "?="
    i = j + 1
  end
  return concat(words, " ")
end

--- Formats a mailbox for a header: the display name quoted when it has
-- specials, RFC 2047-encoded when it has non-ASCII; a bare address when
-- there is no name.
function address.format(a)
  if type(a) ~= "table" then a = address.parse(a) end
  address.check_arg(a.address, "address")
  local name = a.name
  if name == nil or name == "" then return a.address end
  address.check_arg(name, "display name")
  if find(name, "[\128-\255]") then
    name = encoded_words(name)
  elseif find(name, '[%(%)<>%[%]:;@\\,%."]') or find(name, "^%s") or find(name, "%s$") then
    name = '"' .. name:gsub('(["\\])', "\\%1") .. '"'
  end
  return name .. " <" .. a.address .. ">"
end

address._encoded_words = encoded_words

return address
