-- What sendmail needs to know about a message before sending it: the
-- envelope (RFC 5321 3.3: sender from opts, Sender or From; recipients
-- from opts or To/Cc/Bcc), its size when known, whether it needs 8BITMIME
-- or SMTPUTF8, and a chunk source with Bcc removed (RFC 5322 3.6.3).
-- Raw messages are read only as far as the end of their header block.
local Error = require "smtp.error"
local address = require "smtp.address"
local dkim = require "smtp.dkim"

local core = require "smtp.core"

local type, ipairs, tostring = type, ipairs, tostring
local concat = table.concat
local find, match, sub = string.find, string.match, string.sub
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

-- Splits a raw message at its header/body boundary: the header block
-- (with its last line end), the empty line's own line end, and the
-- offset of the body; nil when 'text' holds no boundary yet. The empty
-- line is the first LF followed by LF or CRLF (plain searches: a pattern
-- scan of the whole message costs more than sending it).
local function header_end(text)
  local lead = match(text, "^\r?\n")
  if lead then return "", lead, #lead + 1 end
  local crlf = find(text, "\n\r\n", 1, true)
  local lf = find(text, "\n\n", 1, true)
  local at, sep
  if lf and (not crlf or lf < crlf) then
    at, sep = lf, "\n"
  elseif crlf then
    at, sep = crlf, "\r\n"
  else
    return nil
  end
  return sub(text, 1, at), sep, at + 1 + #sep
end

-- Header fields as {name=, value=, raw=}, continuation lines unfolded in
-- value and kept in raw.
local function parse_fields(block)
  local fields = {}
  for line in block:gmatch("[^\n]*\n?") do
    if line == "" then break end
    if line:find("^[ \t]") and #fields > 0 then
      local f = fields[#fields]
      f.raw = f.raw .. line
      f.value = f.value .. line:gsub("\r?\n$", "")
    else
      local name, value = line:match("^([^:%s]+):(.*)$")
      if not name then
        name, value = "", line
      end
      fields[#fields + 1] = { name = name:lower(), value = value:gsub("\r?\n$", ""), raw = line }
    end
  end
  return fields
end

local function addresses_of(fields, name)
  local out = {}
  for _, f in ipairs(fields) do
    if f.name == name then
      for _, a in ipairs(address.parse_list((f.value:gsub("\r?\n", "")))) do
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

-- Reads a stream until its header block is complete: returns the header
-- block, the empty line, the bytes after it, and whether the stream ended.
local function read_header(next_chunk)
  local buffered = ""
  while true do
    local chunk, err = next_chunk()
    if chunk == nil and err then
      usage("message source failed while reading headers: " .. tostring(err))
    end
    if chunk ~= nil then buffered = buffered .. chunk end
    local head, sep, body_at = header_end(buffered)
    if head then return head, sep, buffered:sub(body_at), chunk == nil end
    if chunk == nil then return buffered, "", "", true end
    if #buffered > MAX_HEADER then usage("message header block larger than 1 MiB") end
  end
end

local function file_size(f)
  local ok, cur = pcall(f.seek, f)
  if not ok or not cur then return nil end
  local size = f:seek("end")
  f:seek("set", cur)
  return size and (size - cur) or nil
end

-- Header block with every Bcc field removed.
local function without_bcc(fields)
  local out = {}
  for _, f in ipairs(fields) do
    if f.name ~= "bcc" then out[#out + 1] = f.raw end
  end
  return concat(out)
end

local function raw_envelope(msg, opts)
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
  -- Header fields are parsed only when needed: for the envelope, or to
  -- remove a Bcc field (a cheap scan tells whether there is one).
  local lhead = string.lower(head)
  local has_bcc = find(lhead, "^bcc%s*:") ~= nil
    or (find(lhead, "\nbcc", 1, true) ~= nil and find(lhead, "\nbcc%s*:") ~= nil)
  local fields = (has_bcc or opts.from == nil or opts.to == nil) and parse_fields(head) or {}
  local env = {}
  if opts.from ~= nil then
    env.from = opts.from == "" and "" or bare(opts.from, "from")
  else
    env.from = addresses_of(fields, "sender")[1] or addresses_of(fields, "from")[1]
  end
  if opts.to ~= nil then
    env.recipients = {}
    local to = type(opts.to) == "table" and opts.to.address == nil and opts.to or { opts.to }
    for i, r in ipairs(to) do env.recipients[i] = bare(r, "recipient") end
  else
    local all = {}
    for _, name in ipairs({ "to", "cc", "bcc" }) do
      for _, a in ipairs(addresses_of(fields, name)) do all[#all + 1] = a end
    end
    env.recipients = dedupe(all)
  end
  local header_out = has_bcc and without_bcc(fields) or head
  if size and has_bcc then size = size - (#head - #header_out) end
  if type(msg) == "string" then
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
    queue = has_bcc and { header_out .. sep, sub(msg, rest) } or { msg }
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

--- Prepares a message for sendmail.
-- @return `{from=, recipients={...}, source=fn, size=n|nil,
-- eightbit=bool|nil, binary=bool|nil, smtputf8=bool}`
function envelope.prepare(msg, opts)
  local env
  -- opts.dkim signs (or re-signs) the message in a first pass over it.
  if opts.dkim ~= nil then msg = dkim.signed(msg, opts.dkim) end
  if type(msg) == "table" and type(msg.source) == "function" then
    env = {}
    env.from = opts.from ~= nil and (opts.from == "" and "" or bare(opts.from, "from"))
      or msg:envelope_from()
    if opts.to ~= nil then
      env.recipients = {}
      local to = type(opts.to) == "table" and opts.to.address == nil and opts.to or { opts.to }
      for i, r in ipairs(to) do env.recipients[i] = bare(r, "recipient") end
    else
      env.recipients = msg:recipients()
    end
    local req = msg.requirements and msg:requirements() or {}
    env.eightbit = req.eightbit
    env.binary = req.binary
    env.smtputf8 = req.smtputf8
    env.size = req.size
    env.source = msg:source()
    if msg._wire_parts then
      env.parts = msg:_wire_parts()
      env.parts_source = env.source
    end
  else
    env = raw_envelope(msg, opts)
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
