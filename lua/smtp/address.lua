--- RFC 5322 3.4 address lists and RFC 5321 4.1.2 paths: parsing header
-- values into mailboxes (display names, quoted strings, comments, groups,
-- RFC 2047 names), formatting them back (RFC 2047 for non-ASCII names),
-- RFC 6531/6532 internationalised addresses, and the CR/LF/NUL guard used
-- before any command or header is written.
-- @module smtp.address
local Error = require "smtp.error"

local type, tostring, error, ipairs = type, tostring, error, ipairs
local sub, find, concat = string.sub, string.find, table.concat

local address = {}

local function usage(msg)
  error(Error.new { kind = "usage", message = msg }, 0)
end

local core
local function get_core()
  if not core then core = require "smtp.core" end
  return core
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
-- addresses, the specials ':' ';' ',' and runs of other text. Each token
-- records whether white space or a comment came before it ('gap'), since
-- an addr-spec may not contain any.
local function tokenize(s)
  local tokens, i, n, gap = {}, 1, #s, false
  local function push(t, v)
    tokens[#tokens + 1] = { t = t, v = v, gap = gap }
    gap = false
  end
  while i <= n do
    local c = sub(s, i, i)
    if c == '"' then
      local out, j = {}, i + 1
      while true do
        if j > n then usage("unterminated quoted string in address: " .. s) end
        local d = sub(s, j, j)
        if d == "\\" then
          if j == n then usage("unterminated quoted string in address: " .. s) end
          out[#out + 1] = sub(s, j + 1, j + 1)
          j = j + 2
        elseif d == '"' then
          break
        else
          out[#out + 1] = d
          j = j + 1
        end
      end
      push("quoted", concat(out))
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
      gap = true
      i = j
    elseif c == "<" then
      local j = find(s, ">", i + 1, true)
      if not j then usage("unterminated '<' in address: " .. s) end
      push("angle", sub(s, i + 1, j - 1))
      i = j + 1
    elseif c == ":" or c == ";" or c == "," then
      push(c)
      i = i + 1
    elseif c == ">" or c == ")" then
      usage("unexpected '" .. c .. "' in address: " .. s)
    elseif find(c, "^[ \t]") then
      gap = true
      i = i + 1
    else
      local j = i
      while j <= n and not find(sub(s, j, j), '^[ \t"(<>):;,]') do
        -- A domain literal ([IPv6:...]) may hold ':'.
        if sub(s, j, j) == "[" then
          j = find(s, "]", j + 1, true)
          if not j then usage("unterminated '[' in address: " .. s) end
        end
        j = j + 1
      end
      push("atom", sub(s, i, j - 1))
      i = j
    end
  end
  return tokens
end

-- atext (RFC 5322 3.2.3) plus UTF-8 (RFC 6532 3.2) and '.' for dot-atoms.
local DOT_ATOM = "^[%w!#$%%&'*+/=?^_`{|}~%-%.\128-\255]+$"

-- Validates local@domain; the local part may be a quoted string (kept
-- with its quotes), the domain a dot-atom or an address literal.
local function check_addr_spec(a, original)
  if a == "" then usage("empty address in: " .. original) end
  local lp, domain = a:match('^(".*")@([^@]*)$')
  if not lp then lp, domain = a:match("^([^@\"]*)@([^@]*)$") end
  if not lp or lp == "" or domain == "" then
    usage("malformed address (expected local@domain): " .. original)
  end
  if sub(lp, 1, 1) ~= '"' and not find(lp, DOT_ATOM) then
    usage("malformed local part in address: " .. original)
  end
  if not (find(domain, DOT_ATOM) or find(domain, "^%[[^%[%]\\%s]+%]$")) then
    usage("malformed domain in address: " .. original)
  end
  return a
end

local function quote(s)
  return '"' .. s:gsub('(["\\])', "\\%1") .. '"'
end

-- Decodes RFC 2047 encoded-words in a display name (RFC 2047 6.2:
-- white space between adjacent words is dropped). Words in charsets
-- other than UTF-8 and ASCII are left as they are.
local function decode_words(s)
  if not find(s, "=?", 1, true) then return s end
  local c = get_core()
  local function decode(cs, mode, data)
    local lcs = cs:lower():gsub("%*.*$", "")
    if lcs ~= "utf-8" and lcs ~= "us-ascii" then return nil end
    if mode == "B" or mode == "b" then
      return c.b64_decode(data)
    end
    return (data:gsub("_", " "):gsub("=(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
  end
  local out, pos, last_was_word = {}, 1, false
  while true do
    local a, b, cs, mode, data = find(s, "=%?([^?%s]+)%?([BbQq])%?([^?%s]*)%?=", pos)
    if not a then break end
    local between = sub(s, pos, a - 1)
    local text = decode(cs, mode, data)
    if text then
      if not (last_was_word and find(between, "^[ \t]*$")) then out[#out + 1] = between end
      out[#out + 1] = text
      last_was_word = true
    else
      out[#out + 1] = sub(s, pos, b)
      last_was_word = false
    end
    pos = b + 1
  end
  out[#out + 1] = sub(s, pos)
  return concat(out)
end

-- One mailbox from its tokens: display-name <addr> or addr-spec.
local function mailbox(tokens, original)
  local words, angle, prev_word = {}, nil, false
  for _, tk in ipairs(tokens) do
    if tk.t == "angle" then
      if angle then usage("two angle addresses in one mailbox: " .. original) end
      angle = tk.v
    elseif angle then
      usage("text after '<address>' in: " .. original)
    elseif tk.t == "atom" then
      local decoded = decode_words(tk.v)
      local whole_word = decoded ~= tk.v and find(tk.v, "^=%?.*%?=$") ~= nil
      -- White space between two encoded-words is not part of the text.
      if whole_word and prev_word then
        words[#words] = words[#words] .. decoded
      else
        words[#words + 1] = decoded
      end
      prev_word = whole_word
    else
      words[#words + 1] = tk.v
      prev_word = false
    end
  end
  if angle then
    local addr = angle:gsub("^[ \t]+", ""):gsub("[ \t]+$", "")
    -- An obsolete source route (<@a,@b:x@y>) is dropped (RFC 5322 4.4).
    addr = addr:gsub("^@[^:]*:", "")
    local name = #words > 0 and concat(words, " ") or nil
    return { name = name, address = check_addr_spec(addr, original) }
  end
  -- An addr-spec: adjacent atoms and quoted strings, nothing between.
  local parts = {}
  for i, tk in ipairs(tokens) do
    if i > 1 and tk.gap then usage("malformed address (white space inside it): " .. original) end
    parts[#parts + 1] = tk.t == "quoted" and quote(tk.v) or tk.v
  end
  return { address = check_addr_spec(concat(parts), original) }
end

--- Parses an address list (a To/Cc/Bcc/From value) into mailboxes
-- `{name = "Display Name" | nil, address = "local@domain"}`. Groups are
-- flattened (`team: a@x, b@y;`), empty groups (`undisclosed-recipients:;`)
-- give nothing, comments are dropped, RFC 2047 names are decoded.
-- Raises kind `usage` on malformed input or CR, LF, NUL.
-- @tparam string s
-- @treturn {table,...}
function address.parse_list(s)
  address.check_arg(s, "address list")
  local tokens = tokenize(s)
  local out, current, in_group = {}, {}, false
  local function flush()
    if #current > 0 then out[#out + 1] = mailbox(current, s) end
    current = {}
  end
  for _, tk in ipairs(tokens) do
    if tk.t == "," then
      flush()
    elseif tk.t == ":" then
      if in_group then usage("nested group in: " .. s) end
      for _, g in ipairs(current) do
        if g.t == "angle" then usage("malformed group name in: " .. s) end
      end
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
-- @treturn table `{name=, address=}`
function address.parse(v)
  if type(v) == "table" then
    address.check_arg(v.address, "address")
    if v.name ~= nil then address.check_arg(v.name, "display name") end
    local name = v.name
    if name == "" then name = nil end
    return { name = name, address = check_addr_spec(v.address, v.address) }
  end
  if type(v) ~= "string" then usage("address must be a string or a table, got " .. type(v)) end
  local list = address.parse_list(v)
  if #list ~= 1 then usage("expected one address, got " .. #list .. ": " .. tostring(v)) end
  return list[1]
end

--- RFC 2047 encoded-words for a phrase (display name): the shorter of the
-- B and Q forms, words of at most 75 octets separated by spaces, never
-- splitting a UTF-8 character.
-- @tparam string text
-- @tparam[opt="UTF-8"] string charset
-- @treturn {string,...} the words
function address.encode_phrase(text, charset)
  local c = get_core()
  local b = c.encode_word(text, charset or "UTF-8", "B")
  local q = c.encode_word(text, charset or "UTF-8", "Q")
  return #concat(q) <= #concat(b) and q or b
end

-- A display name that is one or more atoms separated by single spaces
-- needs no quotes.
local PHRASE = "^[%w!#$%%&'*+/=?^_`{|}~%-]+$"
local function plain_phrase(name)
  if find(name, "=?", 1, true) then return false end -- would look encoded
  for word in (name .. " "):gmatch("(.-) ") do
    if not find(word, PHRASE) then return false end
  end
  return true
end

--- The words of a formatted mailbox, for header folding: each atom or
-- encoded-word of the display name, a quoted name as one word, then
-- `<address>` (or the bare address when there is no name). Joined with
-- single spaces they give `address.format(a)`.
-- @treturn {string,...}
function address.format_parts(a, charset)
  a = address.parse(a)
  local name = a.name
  if name == nil then return { a.address } end
  local parts
  if find(name, "[^\32-\126]") then
    parts = address.encode_phrase(name, charset)
  elseif plain_phrase(name) then
    parts = {}
    for word in name:gmatch("[^ ]+") do parts[#parts + 1] = word end
  else
    parts = { quote(name) }
  end
  parts[#parts + 1] = "<" .. a.address .. ">"
  return parts
end

--- Formats a mailbox for a header: the display name as atoms, quoted when
-- it has specials, RFC 2047-encoded when it has non-ASCII or control
-- characters; a bare address when there is no name.
-- @param a `{name=, address=}` or a string for `address.parse`
-- @tparam[opt="UTF-8"] string charset of non-ASCII names
-- @treturn string
function address.format(a, charset)
  return concat(address.format_parts(a, charset), " ")
end

return address
