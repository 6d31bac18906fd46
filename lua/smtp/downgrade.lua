-- Re-encodes a MIME message so that it can travel without 8BITMIME
-- (RFC 6152 3) and without lines over 998 octets (RFC 5321 4.5.3.1.6):
-- each leaf part whose body has 8-bit bytes (with `eightbit`) or a long
-- line gets quoted-printable (mostly-ASCII text) or base64 (anything
-- else) and a new Content-Transfer-Encoding field; every other byte,
-- headers included, is kept. Two passes over the message: the first
-- decides per part and refuses what cannot be re-encoded (kind usage)
-- before anything is sent, the second writes. Both stream; a chunk
-- function's input and a stream's output go through temporary files.
local Error = require "smtp.error"
local core = require "smtp.core"

local type, setmetatable, tostring, error, ipairs, select, pcall =
  type, setmetatable, tostring, error, ipairs, select, pcall
local byte, find, sub, gsub, lower, match = string.byte, string.find, string.sub, string.gsub,
  string.lower, string.match
local concat = table.concat
local byte_flags, text_stats = core.byte_flags, core.text_stats

local downgrade = {}

local LINE_MAX = 998
local READ_CHUNK = 65536

local function usage(msg)
  error(Error.new { kind = "usage", outcome = "not_sent", message = "downgrade: " .. msg }, 0)
end

local function io_failure(msg)
  error(Error.new { kind = "io", outcome = "not_sent", retryable = false, message = msg }, 0)
end

-- Reader --------------------------------------------------------------------

-- Lines and runs of body lines from a chunk function.
local Reader = {}
Reader.__index = Reader

local function reader(src)
  return setmetatable({ src = src, buf = "", pos = 1 }, Reader)
end

function Reader:fill()
  if self.eof then return false end
  local chunk, err = self.src()
  if chunk == nil then
    if err then io_failure("message source failed: " .. tostring(err)) end
    self.eof = true
    return false
  end
  if self.pos > #self.buf then
    self.buf = chunk
  else
    self.buf = sub(self.buf, self.pos) .. chunk
  end
  self.pos = 1
  return true
end

-- The next line with its LF (the last one may lack it); nil at the end.
-- A long line is gathered in pieces, not by growing one string.
function Reader:line()
  local parts
  while true do
    local buf, pos = self.buf, self.pos
    local i = find(buf, "\n", pos, true)
    if i then
      self.pos = i + 1
      local l = sub(buf, pos, i)
      if not parts then return l end
      parts[#parts + 1] = l
      return concat(parts)
    end
    if pos <= #buf then
      parts = parts or {}
      parts[#parts + 1] = sub(buf, pos)
    end
    self.buf, self.pos = "", 1
    if not self:fill() then return parts and concat(parts) or nil end
  end
end

-- Whole lines, none of them a boundary candidate (every boundary line
-- opens with '-'): up to an LF followed by '-', or to the last LF read.
-- nil when the next line must be read with line().
function Reader:run()
  local buf, pos = self.buf, self.pos
  if pos > #buf then
    if not self:fill() then return nil end
    buf, pos = self.buf, self.pos
  end
  if byte(buf, pos) == 45 then return nil end
  local i = find(buf, "\n-", pos, true) or find(buf, "\n[^\n]*$", pos)
  if not i then return nil end
  self.pos = i + 1
  return sub(buf, pos, i)
end

-- Header blocks ------------------------------------------------------------

-- The header lines (with line ends) up to the empty line, and that line.
local function read_header(r)
  local lines = {}
  while true do
    local l = r:line()
    if l == nil then return lines, "" end
    if l == "\r\n" or l == "\n" then return lines, l end
    lines[#lines + 1] = l
  end
end

local function strip_eol(l)
  if sub(l, -2) == "\r\n" then return sub(l, 1, -3), "\r\n" end
  if sub(l, -1) == "\n" then return sub(l, 1, -2), "\n" end
  return l, ""
end

-- Fields as {name=, value=, first=, last=} (value unfolded, lines first..last).
local function parse_fields(lines)
  local fields, f = {}, nil
  for i, l in ipairs(lines) do
    local text = strip_eol(l)
    local c = byte(text, 1)
    if f and (c == 32 or c == 9) then
      f.last, f.value = i, f.value .. text
    else
      local name, value = match(text, "^([^:%s]+)[ \t]*:(.*)$")
      f = { name = name and lower(name) or "", value = value or "", first = i, last = i }
      fields[#fields + 1] = f
    end
  end
  return fields
end

local function field(fields, name)
  for _, f in ipairs(fields) do
    if f.name == name then return f.value end
  end
end

-- Content-Type's type/subtype (lower case) and boundary parameter.
local function content_type(value)
  if not value then return nil end
  local mtype = match(lower(value), "^%s*([%w!#$&^_.+-]+/[%w!#$&^_.+-]+)")
  local at, e = find(lower(value), "[;%s]boundary%s*=%s*")
  local boundary
  if at then
    boundary = match(value, '^"([^"]*)"', e + 1) or match(value, "^([^%s;]+)", e + 1)
  end
  return mtype, boundary
end

-- The header as it was, or with its Content-Transfer-Encoding replaced
-- (added when absent) in the line-end style of its first line.
local function header_text(lines, fields, sep, cte)
  if not cte then return concat(lines) .. sep end
  local eol = lines[1] and select(2, strip_eol(lines[1])) or "\r\n"
  if eol == "" then eol = "\r\n" end
  local new = "Content-Transfer-Encoding: " .. cte .. eol
  local out, done = {}, false
  for _, f in ipairs(fields) do
    if f.name == "content-transfer-encoding" then
      if not done then out[#out + 1] = new end
      done = true
    else
      for i = f.first, f.last do out[#out + 1] = lines[i] end
    end
  end
  if not done then out[#out + 1] = new end
  out[#out + 1] = sep
  return concat(out)
end

-- The walk ------------------------------------------------------------------

-- 'w' holds the pass: w.out (nil in the first pass), w.plan (one entry
-- per leaf: false, "quoted-printable", "base64" or "7bit"), w.leaf (the
-- leaf count so far), w.eightbit (8-bit bytes must go too), w.changed.

-- Whether l delimits one of the open multiparts: its level and whether
-- it is a close delimiter.
local function boundary_of(l, bounds)
  if byte(l, 1) ~= 45 or byte(l, 2) ~= 45 then return nil end
  local text = gsub(strip_eol(l), "[ \t]+$", "")
  for k = #bounds, 1, -1 do
    local b = bounds[k]
    if text == "--" .. b then return k, false end
    if text == "--" .. b .. "--" then return k, true end
  end
end

-- Reads body lines up to a boundary of 'bounds' (or the end), handing
-- sink(piece) the body, where the line end before the boundary is not
-- body (RFC 2046 5.1.1). Returns the boundary line, its level and
-- whether it closes, and the held line end (nil at the end of input,
-- where it was body and went to sink).
local function body(r, bounds, sink)
  local held
  while true do
    local piece = r:run()
    local level, closing
    if not piece then
      piece = r:line()
      if piece == nil then
        if held then sink(held) end
        return nil
      end
      level, closing = boundary_of(piece, bounds)
      if level then return piece, level, closing, held end
    end
    if held then sink(held) end
    local text, eol = strip_eol(piece)
    if text ~= "" then sink(text) end
    held = eol ~= "" and eol or nil
  end
end

-- A preamble or epilogue: copied, and it cannot be re-encoded.
local function passage(w, r, bounds)
  local col = 0
  local function sink(s)
    local e8, _, long, tail = byte_flags(s, col)
    col = tail
    if (w.eightbit and e8) or long > LINE_MAX then
      usage("8-bit bytes or a line over 998 octets in a multipart preamble or epilogue")
    end
    if w.out then w.out(s) end
  end
  local line, level, closing, held = body(r, bounds, sink)
  if held and w.out then w.out(held) end
  return line, level, closing
end

-- A leaf's decision (first pass): what its body needs.
local function analyse(w, r, bounds, mtype, cte, is_mime)
  local col, e8, long, escaped, total = 0, false, false, 0, 0
  local text = mtype and sub(mtype, 1, 5) == "text/"
  local line, level, closing = body(r, bounds, function(s)
    local h8, _, maxl, tail = byte_flags(s, col)
    col = tail
    if h8 then e8 = true end
    if maxl > LINE_MAX then long = true end
    if text and h8 then
      local st = text_stats(s)
      escaped = escaped + st.eightbit + st.ctl
    end
    total = total + #s
  end)
  local need = long or (w.eightbit and e8)
  local decision = false
  if need then
    if not is_mime then
      usage("a non-MIME message with 8-bit bytes or a line over 998 octets cannot be re-encoded")
    elseif cte ~= nil and cte ~= "7bit" and cte ~= "8bit" then
      usage(("a part with Content-Transfer-Encoding %s cannot be re-encoded"):format(cte))
    elseif mtype and find(mtype, "^message/") then
      usage(mtype .. " must stay 7bit or 8bit (RFC 2046 5.2) and cannot be re-encoded")
    end
    decision = (text and escaped * 3 <= total) and "quoted-printable" or "base64"
  elseif w.eightbit and cte == "8bit" then
    decision = "7bit" -- a clean part's label is corrected, its body kept
  end
  if decision then w.changed = true end
  w.plan[#w.plan + 1] = decision
  return line, level, closing
end

-- A leaf written (second pass) as the plan says.
local function emit_leaf(w, r, bounds, decision)
  local out = w.out
  if decision ~= "quoted-printable" and decision ~= "base64" then
    local line, level, closing, held = body(r, bounds, out)
    if held then out(held) end
    return line, level, closing
  end
  -- The last two bytes written tell whether the body ended its line.
  local last = ""
  local function put(s)
    if s ~= "" then
      out(s)
      last = #s >= 2 and sub(s, -2) or sub(last .. s, -2)
    end
  end
  local enc, sink
  if decision == "base64" then
    -- Line ends as the DATA encoder would have sent them: CRLF.
    enc = core.b64_encoder(76)
    sink = function(s)
      if find(s, "\n", 1, true) then s = gsub(s, "\r?\n", "\r\n") end
      put(enc:encode(s))
    end
  else
    enc = core.qp_encoder()
    sink = function(s) put(enc:encode(s)) end
  end
  local line, level, closing = body(r, bounds, sink)
  put(enc:finish())
  if line then
    out("\r\n") -- the delimiter's line end
  elseif last ~= "\r\n" and last ~= "" then
    -- The message ends with a line end; quoted-printable adds it as a
    -- soft break, so the decoded text stays exact.
    out(decision == "quoted-printable" and "=\r\n" or "\r\n")
  end
  return line, level, closing
end

local entity

-- A multipart's parts, after its header; returns as entity does.
local function multipart(w, r, bounds, mtype, boundary)
  if not boundary or boundary == "" then usage(mtype .. " without a boundary parameter") end
  bounds[#bounds + 1] = boundary
  local me = #bounds
  local default = mtype == "multipart/digest" and "message/rfc822" or "text/plain"
  local line, level, closing = passage(w, r, bounds)
  while true do
    if line == nil or level < me then
      bounds[me] = nil
      return line, level, closing
    end
    if w.out then w.out(line) end
    if closing then
      bounds[me] = nil
      line, level, closing = passage(w, r, bounds)
      return line, level, closing
    end
    line, level, closing = entity(w, r, bounds, default, false)
  end
end

-- One entity (header and body) read from r: returns the boundary line
-- that ended it, its level and whether it closes, or nil at the end.
function entity(w, r, bounds, default_type, top)
  local lines, sep = read_header(r)
  local fields = parse_fields(lines)
  for _, l in ipairs(lines) do
    local e8, _, long = byte_flags(l)
    if w.eightbit and e8 then usage("a header field with 8-bit bytes needs SMTPUTF8, not 8BITMIME") end
    if long > LINE_MAX then usage("a header line over 998 octets cannot be re-encoded") end
  end
  local ctype = field(fields, "content-type")
  local mtype, boundary = content_type(ctype)
  mtype = mtype or default_type
  local cte = field(fields, "content-transfer-encoding")
  cte = cte and lower(match(cte, "^%s*(.-)%s*$"))
  if top then
    w.signed = field(fields, "dkim-signature") ~= nil
    w.mime = ctype ~= nil or field(fields, "mime-version") ~= nil
  end
  local container = find(mtype, "^multipart/") or mtype == "message/rfc822"
  if container then
    if cte ~= nil and cte ~= "7bit" and cte ~= "8bit" and cte ~= "binary" then
      usage(("%s with Content-Transfer-Encoding %s (RFC 2046 5)"):format(mtype, cte))
    end
    -- Once its parts are 7bit, so is the container.
    local relabel = w.eightbit and (cte == "8bit" or cte == "binary") and "7bit" or nil
    if relabel then w.changed = true end
    if w.out then w.out(header_text(lines, fields, sep, relabel)) end
    if mtype == "message/rfc822" then return entity(w, r, bounds, "text/plain", false) end
    return multipart(w, r, bounds, mtype, boundary)
  end
  if not w.out then
    if sep == "" then w.plan[#w.plan + 1] = false; return nil end
    return analyse(w, r, bounds, mtype, cte, w.mime)
  end
  w.leaf = w.leaf + 1
  local decision = w.plan[w.leaf]
  w.out(header_text(lines, fields, sep, decision or nil))
  return emit_leaf(w, r, bounds, decision)
end

-- Sources -------------------------------------------------------------------

local function string_source(s)
  local done = false
  return function()
    if done then return nil end
    done = true
    return s
  end
end

local function file_source(f)
  return function() return f:read(READ_CHUNK) end
end

local function tmpfile(what)
  local f, err = io.tmpfile()
  if not f then io_failure("cannot create a spool file for " .. what .. ": " .. tostring(err)) end
  return f
end

local function writer(f)
  return function(s)
    if s ~= "" then
      local ok, err = f:write(s)
      if not ok then io_failure("cannot write the downgrade spool file: " .. tostring(err)) end
    end
  end
end

--- Re-encodes a raw message for a 7-bit, 998-octet-line transport.
-- Parts with a line over 998 octets are re-encoded; with `eightbit`,
-- parts with 8-bit bytes too. A message that cannot be re-encoded
-- without breaking it (a DKIM-Signature present, a non-MIME body, 8-bit
-- header fields, a part whose encoding is not 7bit/8bit) raises kind
-- `usage`.
-- @param msg a string, a file (read from its position) or a chunk function
-- @tparam[opt] table opts `eightbit` (re-encode 8-bit parts too)
-- @return the message to send (a string for a string, else a file at
-- its start; `msg` itself when a string needs no change), and whether
-- it changed
function downgrade.rewrite(msg, opts)
  local eightbit = opts and opts.eightbit and true or false
  local src, replay
  if type(msg) == "string" then
    src = string_source(msg)
    replay = function() return string_source(msg) end
  elseif io.type(msg) == "file" then
    local ok, pos = pcall(msg.seek, msg)
    if ok and pos then
      src = file_source(msg)
      replay = function()
        if not msg:seek("set", pos) then io_failure("cannot seek back in the message file") end
        return file_source(msg)
      end
    else
      msg = file_source(msg)
    end
  elseif type(msg) ~= "function" then
    usage("message must be a string, a file or a function")
  end
  local spool
  if not src then
    -- A chunk function is read once: its bytes are kept for the second pass.
    spool = tmpfile("the message")
    local put, fn = writer(spool), msg
    src = function()
      local chunk, err = fn()
      if chunk then put(chunk) end
      return chunk, err
    end
    replay = function()
      spool:seek("set", 0)
      return file_source(spool)
    end
  end
  local w = { plan = {}, leaf = 0, eightbit = eightbit }
  entity(w, reader(src), {}, "text/plain", true)
  if not w.changed then
    if type(msg) == "string" then return msg, false end
    if spool then spool:seek("set", 0); return spool, false end
    replay()
    return msg, false
  end
  if w.signed then
    usage("the message carries a DKIM-Signature that re-encoding would break; "
      .. "sign after sending options are applied (opts.dkim) or send to a server with 8BITMIME")
  end
  local out, result
  if type(msg) == "string" then
    result = {}
    out = function(s) result[#result + 1] = s end
  else
    result = tmpfile("the re-encoded message")
    out = writer(result)
  end
  w.out, w.leaf = out, 0
  entity(w, reader(replay()), {}, "text/plain", true)
  if spool then spool:close() end
  if type(msg) == "string" then return concat(result), true end
  result:seek("set", 0)
  return result, true
end

return downgrade
