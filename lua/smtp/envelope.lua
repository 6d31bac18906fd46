-- What sendmail needs to know about a message before sending it: the
-- envelope (RFC 5321 3.3: sender from opts, Sender or From; recipients
-- from opts, else Resent-To/Cc/Bcc when present, else To/Cc/Bcc), its size
-- when known, whether it needs 8BITMIME or SMTPUTF8, and a chunk source
-- with Bcc and Resent-Bcc removed (RFC 5322 3.6.3, 3.6.6).
-- Raw messages are read only as far as the end of their header block.
local Error = require "smtp.error"
local address = require "smtp.address"
local dkim = require "smtp.dkim"
local downgrade = require "smtp.downgrade"

local core = require "smtp.core"

local type, ipairs, tostring = type, ipairs, tostring
local concat = table.concat
local byte, find, gsub, lower = string.byte, string.find, string.gsub, string.lower
local match, sub = string.match, string.sub
local byte_flags = core.byte_flags

local envelope = {}

-- A header block larger than this is not a message header.
local MAX_HEADER = 1048576
local READ_CHUNK = 65536

local function usage(msg)
  error(Error.new { kind = "usage", message = msg }, 0)
end

--- xtext (RFC 3461 4): '+', '=' and bytes outside 33..126 as +HH.
function envelope.xtext(s)
  address.check_arg(s, "DSN value")
  return (s:gsub("[^\33-\42\44-\60\62-\126]", function(c)
    return ("+%02X"):format(c:byte())
  end))
end

-- Line ends are read as the DATA encoder (csrc/dotstuff.c) writes them:
-- CRLF, a bare CR and a bare LF each end one line, so the header block
-- seen here is the one the receiving MTA sees (review M2). A scanner
-- walks from line end to line end, carrying across chunks whether the
-- last byte ended a line and whether it was a CR (an LF right after it
-- belongs to the same line end). It returns where the empty line that
-- ends the header block starts. One find per line end: linear.
local function new_scanner()
  return { line_start = true, after_cr = false }
end

local function scan(st, text)
  local pos, len = 1, #text
  while true do
    local i = find(text, "[\r\n]", pos)
    if not i then
      if pos <= len then st.line_start, st.after_cr = false, false end
      return nil
    end
    if i > pos then st.line_start, st.after_cr = false, false end
    local c = byte(text, i)
    if c == 10 and st.after_cr then
      st.after_cr = false
    elseif st.line_start then
      return i
    else
      st.line_start, st.after_cr = true, c == 13
    end
    pos = i + 1
  end
end

-- The empty line's own line end, at 'at'.
local function separator(text, at)
  if byte(text, at) == 13 and byte(text, at + 1) == 10 then return "\r\n" end
  return sub(text, at, at)
end

-- Splits a raw message at its header/body boundary: the header block
-- (with its last line end), the empty line's own line end, and the
-- offset of the body; nil when 'text' holds no boundary.
local function header_end(text)
  local at = scan(new_scanner(), text)
  if not at then return nil end
  local sep = separator(text, at)
  return sub(text, 1, at - 1), sep, at + #sep
end

-- Header fields as {name=, value=, first=, last=}: lines first..last of
-- 'fields.lines' (the block's lines without their line ends) are the
-- field's, 'value' is its unfolded text after the colon. A field name
-- may be followed by WSP before the colon (obsolete syntax, RFC 5322
-- 4.5: "Bcc : x" is a Bcc field). A line that is neither a field start
-- nor a continuation is kept as a field named "".
local function parse_fields(block)
  local fields, lines, f = {}, {}, nil
  local canon = gsub(block, "\r\n?", "\n")
  local pos, len = 1, #canon
  while pos <= len do
    local e = find(canon, "\n", pos, true) or len + 1
    local line = sub(canon, pos, e - 1)
    pos = e + 1
    lines[#lines + 1] = line
    local first = byte(line, 1)
    if f and (first == 32 or first == 9) then
      f.last = #lines
      -- Joined once per field below: appending line by line would copy a
      -- long folded field once per line.
      f.more = f.more or { f.value }
      f.more[#f.more + 1] = line
    else
      local name, value = match(line, "^([^:%s]+)[ \t]*:(.*)$")
      f = { name = name and lower(name) or "", value = value or line, first = #lines, last = #lines }
      fields[#fields + 1] = f
    end
  end
  for _, g in ipairs(fields) do
    if g.more then g.value, g.more = concat(g.more), nil end
  end
  fields.lines = lines
  return fields
end

local function addresses_of(fields, name)
  local out = {}
  for _, f in ipairs(fields) do
    if f.name == name then
      for _, a in ipairs(address.parse_list(f.value)) do
        out[#out + 1] = a.address
      end
    end
  end
  return out
end

local function dedupe(list)
  local seen, out = {}, {}
  for _, a in ipairs(list) do
    local key = a:lower()
    if not seen[key] then seen[key] = true; out[#out + 1] = a end
  end
  return out
end

local function bare(addr, what)
  if type(addr) == "table" then addr = addr.address end
  if type(addr) ~= "string" then usage(what .. " must be an address string") end
  address.check_arg(addr, what)
  local parsed = addr:find("<", 1, true) and address.parse(addr).address or addr
  return parsed
end

-- opts.to as a list of bare addresses: one address (a string or an
-- address table) or a list of them.
local function given_recipients(to)
  local list = {}
  if type(to) ~= "table" or to.address ~= nil then to = { to } end
  for i, r in ipairs(to) do list[i] = bare(r, "recipient") end
  return list
end

--- The envelope opts names when it gives both `from` and `to`: the
-- sender and the recipients, bare and checked, as `prepare` would have
-- them, without looking at a message (smtp.pool fixes the envelope of a
-- send before its first try).
-- @return from, recipients
function envelope.given(opts)
  local from = opts.from == "" and "" or bare(opts.from, "from")
  local recipients = given_recipients(opts.to)
  if #recipients == 0 then
    usage("no recipients: pass opts.to or give the message To, Cc or Bcc headers")
  end
  return from, recipients
end

-- Reads a stream until its header block is complete: returns the header
-- block, the empty line, the bytes after it, and whether the stream ended.
-- Each chunk is scanned once and kept in a list (no re-scan, no growing
-- concatenation: a source of tiny chunks stays linear).
local function read_header(next_chunk)
  local st, parts, total, at = new_scanner(), {}, 0
  local function pull()
    local chunk, err = next_chunk()
    if chunk == nil and err then
      usage("message source failed while reading headers: " .. tostring(err))
    end
    return chunk
  end
  while true do
    local chunk = pull()
    if chunk == nil then return concat(parts), "", "", true end
    parts[#parts + 1] = chunk
    local i = scan(st, chunk)
    if i then at = total + i; break end
    total = total + #chunk
    if total > MAX_HEADER then usage("message header block larger than 1 MiB") end
  end
  local buffered, ended = concat(parts), false
  -- A CR that ends what was read may be the first half of a CRLF.
  while at == #buffered and byte(buffered, at) == 13 do
    local chunk = pull()
    if chunk == nil then ended = true; break end
    buffered = buffered .. chunk
  end
  local sep = separator(buffered, at)
  return sub(buffered, 1, at - 1), sep, sub(buffered, at + #sep), ended
end

local function file_size(f)
  local ok, cur = pcall(f.seek, f)
  if not ok or not cur then return nil end
  local size = f:seek("end")
  f:seek("set", cur)
  return size and (size - cur) or nil
end

-- Fields never transmitted (RFC 5322 3.6.3, 3.6.6).
local HIDDEN = { bcc = true, ["resent-bcc"] = true }

-- The header block without its hidden fields, in CRLF lines: the wire
-- form, so that no line end of a removed field can join what is left
-- (a bare CR kept before a removed field's LF would become one CRLF).
local function without_hidden(fields)
  local out, lines = {}, fields.lines
  for _, f in ipairs(fields) do
    if not HIDDEN[f.name] then
      for i = f.first, f.last do out[#out + 1] = lines[i] end
    end
  end
  if #out == 0 then return "" end
  return concat(out, "\r\n") .. "\r\n"
end

local function raw_envelope(msg, opts, flags)
  local head, sep, rest, ended, size, next_chunk
  if type(msg) == "string" then
    size = #msg
    head, sep, rest = header_end(msg)
    -- The body is copied out (rest) only when the header must change.
    if not head then head, sep, rest = msg, "", #msg + 1 end
    ended = true
  elseif io.type(msg) == "file" then
    size = file_size(msg)
    next_chunk = function() return msg:read(READ_CHUNK) end
    head, sep, rest, ended = read_header(next_chunk)
  elseif type(msg) == "function" then
    next_chunk = msg
    head, sep, rest, ended = read_header(next_chunk)
  else
    usage("message must be an smtp.message, a string, a file or a function")
  end
  -- Header fields are parsed when the envelope needs them, or when the
  -- block may hold a hidden field (every such name contains "bcc").
  local fields = {}
  if opts.from == nil or opts.to == nil or find(lower(head), "bcc", 1, true) then
    fields = parse_fields(head)
  end
  local has_hidden, resent = false, false
  for _, f in ipairs(fields) do
    if HIDDEN[f.name] then has_hidden = true end
    if f.name == "resent-to" or f.name == "resent-cc" or f.name == "resent-bcc" then resent = true end
  end
  local env = {}
  if opts.from ~= nil then
    env.from = opts.from == "" and "" or bare(opts.from, "from")
  else
    env.from = addresses_of(fields, "sender")[1] or addresses_of(fields, "from")[1]
  end
  if opts.to ~= nil then
    env.recipients = given_recipients(opts.to)
  else
    -- A resent message goes to its Resent- recipients only, as sendmail -t
    -- does (the original To/Cc/Bcc already had it; RFC 5322 3.6.6).
    local all = {}
    local names = resent and { "resent-to", "resent-cc", "resent-bcc" } or { "to", "cc", "bcc" }
    for _, name in ipairs(names) do
      for _, a in ipairs(addresses_of(fields, name)) do all[#all + 1] = a end
    end
    env.recipients = dedupe(all)
  end
  local header_out = has_hidden and without_hidden(fields) or head
  if size and has_hidden then size = size - (#head - #header_out) end
  if flags then
    env.eightbit, env.binary = flags[1], flags[2]
  elseif type(msg) == "string" then
    -- NUL cannot travel as text: only BDAT with BINARYMIME carries it.
    env.eightbit, env.binary = byte_flags(msg)
  elseif byte_flags(head) or byte_flags(rest) then
    env.eightbit = true
  end
  -- The source: header (Bcc removed), separator, the body read so far,
  -- then the rest of the stream. 'parts' is the same body for a transport
  -- that sends it in one C call (Conn:send_body); valid only while
  -- env.source is still this function.
  local queue
  if type(msg) == "string" then
    queue = has_hidden and { header_out .. sep, sub(msg, rest) } or { msg }
  else
    queue = rest == "" and { header_out .. sep } or { header_out .. sep, rest }
  end
  local qi = 0
  env.source = function()
    qi = qi + 1
    if queue[qi] then return queue[qi] end
    if ended then return nil end
    local chunk, err = next_chunk()
    if chunk == nil then ended = true end
    return chunk, err
  end
  if type(msg) == "string" then
    env.parts = queue
  elseif io.type(msg) == "file" then
    local parts = { queue[1], queue[2] }
    if not ended then parts[#parts + 1] = { file = msg } end
    env.parts = parts
  end
  env.parts_source = env.parts and env.source
  env.size = size
  return env
end

-- A server that takes 8-bit text: 8BITMIME, or SMTPUTF8 (which implies it).
local function seven_bit(ext)
  return not ext["8BITMIME"] and not ext.SMTPUTF8
end

-- The message re-encoded for the server (README "8-bit downgrade"),
-- before any DKIM signing so that the signature covers what is sent:
-- 8-bit parts when the server is 7-bit, parts with lines over 998
-- octets always. Returns the message to send, the byte flags of a string
-- left as it was (not scanned twice), and for a re-encoded message
-- object the object (its envelope still comes from it). Streams are
-- scanned only for a 7-bit server; a string's one C pass finds both.
local function for_server(msg, opts, server)
  if opts.downgrade == false or not server then return msg end
  if type(msg) == "table" and type(msg.source) == "function" then
    local req = msg.requirements and msg:requirements(true) or {}
    if not (req.eightbit and msg.unsigned_source) or req.smtputf8 or not seven_bit(server()) then
      return msg
    end
    return (downgrade.rewrite(msg:unsigned_source(), { eightbit = true })), nil, msg
  end
  if type(msg) == "string" then
    local e8, nul, long = byte_flags(msg)
    local flags = { e8, nul }
    -- NUL bytes go as BINARYMIME or not at all.
    if nul then return msg, flags end
    local eight = e8 and seven_bit(server())
    if not eight and long <= 998 then return msg, flags end
    local out, changed = downgrade.rewrite(msg, { eightbit = eight })
    return out, not changed and flags or nil
  end
  if (io.type(msg) == "file" or type(msg) == "function") and seven_bit(server()) then
    return (downgrade.rewrite(msg, { eightbit = true }))
  end
  return msg
end

--- Prepares a message for sendmail.
-- @param msg as for sendmail
-- @tparam table opts sendmail's options
-- @tparam[opt] function server gives the server's extensions (after
-- EHLO) when a downgrade may be needed; without it nothing is re-encoded
-- @return `{from=, recipients={...}, source=fn, size=n|nil,
-- eightbit=bool|nil, binary=bool|nil, smtputf8=bool}`
function envelope.prepare(msg, opts, server)
  local env
  local flags, object
  msg, flags, object = for_server(msg, opts, server)
  local sign = opts.dkim
  if object then sign = sign or object._dkim end
  -- opts.dkim signs (or re-signs) the message in a first pass over it.
  if sign ~= nil then msg, flags = dkim.signed(msg, sign), nil end
  if object then
    env = raw_envelope(msg, {
      from = opts.from ~= nil and opts.from or object:envelope_from(),
      to = opts.to ~= nil and opts.to or object:recipients() })
  elseif type(msg) == "table" and type(msg.source) == "function" then
    env = {}
    env.from = opts.from ~= nil and (opts.from == "" and "" or bare(opts.from, "from"))
      or msg:envelope_from()
    if opts.to ~= nil then
      env.recipients = given_recipients(opts.to)
    else
      env.recipients = msg:recipients()
    end
    local req = msg.requirements and msg:requirements() or {}
    env.eightbit = req.eightbit
    env.binary = req.binary
    env.smtputf8 = req.smtputf8
    -- Its header holds those addresses too: no A-label form for it.
    env.header_smtputf8 = req.smtputf8
    env.size = req.size
    env.source = msg:source()
    if msg._wire_parts then
      env.parts = msg:_wire_parts()
      env.parts_source = env.source
    end
  else
    env = raw_envelope(msg, opts, flags)
  end
  if env.from == nil then
    usage("no envelope sender: pass opts.from or give the message a From header")
  end
  if #env.recipients == 0 then
    usage("no recipients: pass opts.to or give the message To, Cc or Bcc headers")
  end
  local utf8 = env.smtputf8 or address.needs_smtputf8(env.from)
  for _, r in ipairs(env.recipients) do
    address.check_arg(r, "recipient")
    if address.needs_smtputf8(r) then utf8 = true end
  end
  env.smtputf8 = utf8 and true or false
  return env
end

return envelope
