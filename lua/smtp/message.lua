--- smtp.message(spec): builds an RFC 5322 message with MIME (RFC 2045,
-- 2046: single part, multipart/alternative, /mixed, RFC 2387 /related),
-- RFC 2047 encoded-words for names and subjects, RFC 2231 filenames, and
-- headers folded at 78 columns (never over 998). The result is a chunk
-- source: attachments given by path are read and base64-encoded in C as
-- the message streams, never loaded whole. Bcc is never written.
-- @module smtp.message
local core = require "smtp.core"
local Error = require "smtp.error"
local address = require "smtp.address"
local dkim = require "smtp.dkim"

local type, ipairs, pairs, tostring, error, setmetatable, getmetatable, pcall =
  type, ipairs, pairs, tostring, error, setmetatable, getmetatable, pcall
local find, sub, format, gsub, lower, byte =
  string.find, string.sub, string.format, string.gsub, string.lower, string.byte
local concat = table.concat
local open = io.open

local Message = {}
Message.__index = Message
Message.__name = "smtp.Message"

local function usage(msg)
  error(Error.new { kind = "usage", message = msg }, 0)
end

local check_arg = address.check_arg

-- Folding target (RFC 5322 2.1.1 SHOULD) and hard limit (MUST).
local FOLD_AT = 78
local LINE_MAX = 998
-- File reads: a multiple of 3 so base64 never carries bytes over, and
-- a multiple of 16 KiB for the file system.
local READ_SIZE = 49152
-- Output chunks are gathered up to about this size.
local CHUNK_TARGET = 65536

-- Random bytes for boundaries, Message-IDs and Content-IDs: the kernel's
-- generator, falling back on Lua's (seeded per process) if unreadable.
local function random_hex(nbytes)
  local f = open("/dev/urandom", "rb")
  local raw = f and f:read(nbytes)
  if f then f:close() end
  if not raw or #raw ~= nbytes then
    local t = {}
    for i = 1, nbytes do t[i] = string.char(math.random(0, 255)) end
    raw = concat(t)
  end
  return (gsub(raw, ".", function(c) return format("%02x", byte(c)) end))
end

-- Header folding ---------------------------------------------------------

-- Joins words with single spaces into "Name: w1 w2...", breaking before a
-- word (CRLF + the space) when the line would pass 78 columns. Returns
-- nil when a word is too long for any line (over 998 with its indent).
local function fold(name, words)
  local out, line = {}, name .. ":"
  local first = true
  for _, w in ipairs(words) do
    if not first and w ~= "" and #line + 1 + #w > FOLD_AT then
      out[#out + 1] = line
      line = " " .. w
    else
      line = line .. " " .. w
    end
    first = false
    if #line > LINE_MAX then return nil end
  end
  out[#out + 1] = line
  return concat(out, "\r\n") .. "\r\n"
end

local function split_spaces(s)
  local words = {}
  for w in (s .. " "):gmatch("(.-) ") do words[#words + 1] = w end
  return words
end

-- Unstructured text (Subject, user headers): as it is when it is plain
-- printable ASCII, else RFC 2047 encoded-words (the shorter of B and Q).
local function unstructured(name, value, charset)
  -- Parsers strip white space at either end of a plain value; encoded
  -- words keep it.
  local plain = not find(value, "[^\32-\126\t]") and not find(value, "=%?[^?]*%?[BbQq]%?")
    and not find(value, "^[ \t]") and not find(value, "[ \t]$")
  if plain then
    local h = fold(name, split_spaces(value))
    if h then return h end
  end
  if value == "" then return name .. ":\r\n" end
  local room = FOLD_AT - #name - 2
  local b = core.encode_word(value, charset, "B", room)
  local q = core.encode_word(value, charset, "Q", room)
  return fold(name, #concat(q) <= #concat(b) and q or b)
end

-- Addresses ---------------------------------------------------------------

-- A spec field holding addresses: a string (an address list), a
-- {name=, address=} table, or an array of either.
local function address_list(v, what)
  if v == nil then return {}, nil end
  if type(v) == "string" then
    check_arg(v, what)
    local ok, list = pcall(address.parse_list, v)
    if not ok then usage(what .. ": " .. (list.message or tostring(list))) end
    return list, v
  end
  if type(v) ~= "table" then usage(what .. " must be a string or a table, got " .. type(v)) end
  if v.address ~= nil then return { address.parse(v) }, nil end
  local out = {}
  for i, item in ipairs(v) do
    if type(item) == "string" then
      local list = address_list(item, what .. "[" .. i .. "]")
      for _, a in ipairs(list) do out[#out + 1] = a end
    elseif type(item) == "table" then
      out[#out + 1] = address.parse(item)
    else
      usage(what .. "[" .. i .. "] must be a string or a table")
    end
  end
  return out, nil
end

-- An address header; a list that parsed to nothing (an empty group such
-- as "undisclosed-recipients:;") is written as given.
local function address_header(name, list, raw, charset)
  local words = {}
  for i, a in ipairs(list) do
    local parts = address.format_parts(a, charset)
    if i < #list then parts[#parts] = parts[#parts] .. "," end
    for _, p in ipairs(parts) do words[#words + 1] = p end
  end
  if #words == 0 then
    if not raw or raw:find("^%s*$") then return nil end
    if find(raw, "[\128-\255]") then usage(name .. ": non-ASCII group name") end
    words = split_spaces(raw)
  end
  local h = fold(name, words)
  if not h then usage(name .. ": an address is too long for a header line") end
  return h
end

-- Dates and identifiers ---------------------------------------------------

local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

-- RFC 5322 3.3 date-time in UTC; names from tables, not the C locale.
local function rfc5322_date(t)
  local d = os.date("!*t", t)
  return format("%s, %02d %s %04d %02d:%02d:%02d +0000", DAYS[d.wday], d.day, MONTHS[d.month],
    d.year, d.hour, d.min, d.sec)
end

-- Right-hand side of generated identifiers: the From domain when it is a
-- plain ASCII name.
local function id_domain(from)
  local d = from and from.address:match("@([%w%-%.]+)$")
  return d or "lua-smtp.invalid"
end

local function msg_id(v, what)
  check_arg(v, what)
  local inner = v:match("^<(.*)>$") or v
  if inner == "" or find(inner, "[%s<>\128-\255%c]") then usage(what .. " is malformed: " .. v) end
  return "<" .. inner .. ">"
end

-- Content types -------------------------------------------------------------

local TYPES = {
  txt = "text/plain", text = "text/plain", html = "text/html", htm = "text/html", css = "text/css",
  csv = "text/csv", ics = "text/calendar", md = "text/markdown", xml = "application/xml",
  json = "application/json", pdf = "application/pdf", zip = "application/zip",
  gz = "application/gzip", tar = "application/x-tar", ["7z"] = "application/x-7z-compressed",
  doc = "application/msword", xls = "application/vnd.ms-excel",
  docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  pptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  odt = "application/vnd.oasis.opendocument.text", rtf = "application/rtf",
  png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif",
  svg = "image/svg+xml", webp = "image/webp", ico = "image/vnd.microsoft.icon",
  mp3 = "audio/mpeg", wav = "audio/wav", ogg = "audio/ogg", mp4 = "video/mp4",
}

local TOKEN = "[%w!#$%%&'*+%-%.^_`{|}~]+"

local function content_type_of(att, filename, what)
  local ct = att.content_type
  if ct == nil then
    local ext = filename and filename:match("%.([%w]+)$")
    return TYPES[ext and lower(ext)] or "application/octet-stream"
  end
  check_arg(ct, what .. ".content_type")
  if not find(ct, "^" .. TOKEN .. "/" .. TOKEN .. "%s*;?[\32-\126]*$") then
    usage(what .. ".content_type is not type/subtype: " .. ct)
  end
  -- Attachments travel as base64, which RFC 2046 5.1 and 5.2 forbid for
  -- these types.
  if find(lower(ct), "^multipart/") or find(lower(ct), "^message/") then
    usage(what .. ".content_type may not be " .. ct .. " (attachments are base64-encoded)")
  end
  return ct
end

local function quoted(s)
  return '"' .. gsub(s, '(["\\])', "\\%1") .. '"'
end

-- RFC 2231 attribute-chars: token characters except '*', "'" and '%'.
local function pct_encode(s)
  return (gsub(s, "[^%w!#$&+%-%.^_`{|}~]", function(c) return format("%%%02X", byte(c)) end))
end

-- Filename parameters: name= for Content-Type (RFC 2047 words inside a
-- quoted string for old clients) and filename= for Content-Disposition
-- (RFC 2231, split into continuations that never cut a %XX).
local function filename_params(filename, charset)
  if not find(filename, "[^\32-\126]") and #filename <= 60 then
    local q = quoted(filename)
    return { "name=" .. q }, { "filename=" .. q }
  end
  -- The words go as separate fold points: folding inside a quoted
  -- string is white space that unfolding gives back.
  -- ' name="' and the closing quote fit in 78 columns around a word.
  local words = core.encode_word(filename, charset, "B", 70)
  words[1] = 'name="' .. words[1]
  words[#words] = words[#words] .. '"'
  local name = { words }
  local enc = pct_encode(filename)
  local disp = {}
  local single = "filename*=" .. charset .. "''" .. enc
  if #single + 2 <= FOLD_AT then
    disp[1] = single
    return name, disp
  end
  -- Continuations (RFC 2231 3) sized so each folded line, with its
  -- leading space and ';', stays within 78 columns.
  local i, k = 1, 0
  while i <= #enc do
    local key = "filename*" .. k .. "*=" .. (k == 0 and charset .. "''" or "")
    local j = math.min(i + (FOLD_AT - 2 - #key) - 1, #enc)
    -- Back off so a %XX triplet stays whole.
    if sub(enc, j, j) == "%" then j = j - 1 elseif j < #enc and sub(enc, j - 1, j - 1) == "%" then j = j - 2 end
    disp[#disp + 1] = key .. sub(enc, i, j)
    i, k = j + 1, k + 1
  end
  return name, disp
end

-- Parts -------------------------------------------------------------------

-- Structured header "value; p1; p2" folded between words; a parameter
-- given as a list of words may be folded between them too.
local function param_header(name, value, params)
  local words = { value }
  for _, p in ipairs(params) do
    words[#words] = words[#words] .. ";"
    if type(p) == "table" then
      for _, w in ipairs(p) do words[#words + 1] = w end
    else
      words[#words + 1] = p
    end
  end
  local h = fold(name, words)
  if not h then usage(name .. " header too long") end
  return h
end

local function base64_len(n)
  if n == 0 then return 0 end
  local chars = math.floor((n + 2) / 3) * 4 -- no `//`: 5.1 and LuaJIT lack it
  return chars + 2 * math.floor((chars - 1) / 76)
end

-- A text body (text or html): the transfer encoding and the encoded bytes
-- (RFC 2045 6: 7bit when it is short-lined ASCII, else quoted-printable,
-- or base64 when most bytes would need escaping; 8bit only when asked).
local function text_body(text, allow_8bit)
  local st = core.text_stats(text)
  local clean = st.nul == 0 and st.bare_cr == 0 and st.ctl == 0 and st.max_line <= LINE_MAX
  if clean and (st.eightbit == 0 or allow_8bit) then
    local body = st.bare_lf > 0 and gsub(text, "\r?\n", "\r\n") or text
    return st.eightbit == 0 and "7bit" or "8bit", body
  end
  local escaped = st.eightbit + st.nul + st.ctl
  if escaped * 3 > #text then
    local body = st.bare_lf > 0 and gsub(text, "\r?\n", "\r\n") or text
    return "base64", core.b64_encode(body, 76)
  end
  return "quoted-printable", core.qp_encode(text)
end

-- Builds the leaf for the text or html body.
local function text_part(text, subtype, ctx, what)
  if type(text) ~= "string" then usage(what .. " must be a string, got " .. type(text)) end
  local cte, body = text_body(text, ctx.allow_8bit)
  if cte == "8bit" then ctx.eightbit = true end
  return {
    headers = {
      param_header("Content-Type", "text/" .. subtype, { "charset=" .. ctx.charset }),
      "Content-Transfer-Encoding: " .. cte .. "\r\n",
    },
    body = body, cte = cte, size = #body,
  }
end

local function attachment_part(att, i, ctx)
  local what = "attachments[" .. i .. "]"
  if type(att) ~= "table" then usage(what .. " must be a table") end
  for k in pairs(att) do
    if not ({ data = true, path = true, filename = true, content_type = true, inline = true,
      content_id = true })[k] then
      usage(what .. ": unknown field '" .. tostring(k) .. "'")
    end
  end
  local data, path = att.data, att.path
  if (data == nil) == (path == nil) then usage(what .. " needs exactly one of 'data' and 'path'") end
  local size
  if data ~= nil then
    if type(data) ~= "string" then usage(what .. ".data must be a string") end
    size = #data
  else
    check_arg(path, what .. ".path")
    local f, err = open(path, "rb")
    if not f then usage(what .. ": cannot open " .. path .. ": " .. tostring(err)) end
    size = f:seek("end")
    f:close()
    if not size then usage(what .. ": cannot read " .. path) end
  end
  local filename = att.filename
  if filename == nil and path then filename = path:match("([^/\\]+)$") end
  if filename ~= nil then check_arg(filename, what .. ".filename") end
  if filename == "" then filename = nil end
  local ct = content_type_of(att, filename, what)
  local inline = att.inline and true or false
  local ct_params, disp_params = {}, {}
  if filename then ct_params, disp_params = filename_params(filename, ctx.charset) end
  local headers = {
    param_header("Content-Type", ct, ct_params),
    "Content-Transfer-Encoding: base64\r\n",
    param_header("Content-Disposition", inline and "inline" or "attachment", disp_params),
  }
  local cid
  if att.content_id ~= nil or inline then
    cid = att.content_id ~= nil and msg_id(att.content_id, what .. ".content_id")
      or "<" .. random_hex(12) .. "@" .. ctx.domain .. ">"
    headers[#headers + 1] = "Content-ID: " .. cid .. "\r\n"
  end
  return {
    headers = headers, data = data, path = path, cte = "base64", inline = inline,
    content_id = cid, size = base64_len(size),
  }
end

-- A multipart whose boundary occurs in no 7bit/8bit body beneath it.
-- "=_" cannot appear in base64 or quoted-printable output (RFC 2045),
-- so only literal bodies need checking.
local function multipart(subtype, parts, extra_params)
  local function literal_bodies(p, out)
    if p.parts then
      for _, c in ipairs(p.parts) do literal_bodies(c, out) end
    elseif p.cte == "7bit" or p.cte == "8bit" then
      out[#out + 1] = p.body
    end
    return out
  end
  local bodies = literal_bodies({ parts = parts }, {})
  local boundary
  repeat
    boundary = "=_" .. random_hex(18)
    local clash = false
    for _, b in ipairs(bodies) do
      if find(b, boundary, 1, true) then clash = true end
    end
  until not clash
  local params = {}
  for _, p in ipairs(extra_params or {}) do params[#params + 1] = p end
  params[#params + 1] = "boundary=" .. quoted(boundary)
  return {
    headers = { param_header("Content-Type", "multipart/" .. subtype, params) },
    parts = parts, boundary = boundary,
  }
end

-- The plan: the message as a list of strings and encoded data items,
-- streamed in order by source().
local function flatten(part, plan, top_headers)
  local function add(s) plan[#plan + 1] = s end
  if top_headers then add(top_headers) end
  for _, h in ipairs(part.headers) do add(h) end
  add("\r\n")
  if part.parts then
    for i, child in ipairs(part.parts) do
      add((i == 1 and "--" or "\r\n--") .. part.boundary .. "\r\n")
      flatten(child, plan)
    end
    add("\r\n--" .. part.boundary .. "--")
  elseif part.body then
    add(part.body)
  else
    plan[#plan + 1] = { data = part.data, path = part.path, size = part.size }
  end
end

local SPEC_FIELDS = {
  from = true, to = true, cc = true, bcc = true, reply_to = true, sender = true, subject = true,
  date = true, message_id = true, headers = true, text = true, html = true, attachments = true,
  charset = true, transfer_encoding = true, dkim = true,
}

-- Header names the spec sets through its own fields.
local RESERVED = {
  from = "from", to = "to", cc = "cc", bcc = "bcc", ["reply-to"] = "reply_to",
  sender = "sender", subject = "subject", date = "date", ["message-id"] = "message_id",
  ["mime-version"] = "(generated)", ["content-type"] = "(generated)",
  ["content-transfer-encoding"] = "(generated)",
}

--- Builds a message (SPEC section 2).
-- @tparam table spec `from`, `to`, `cc`, `bcc`, `reply_to`, `sender`,
-- `subject`, `date` (string or os.time number), `message_id`, `headers`
-- (list of `{name, value}`), `text`, `html`, `attachments` (list of
-- `{data= | path=, filename=, content_type=, inline=, content_id=}`),
-- `charset` (default "UTF-8"), `transfer_encoding` ("8bit" lets text
-- bodies go unencoded; the server must then offer 8BITMIME), `dkim`
-- (signing options, see smtp.dkim.options: the key is read here).
-- @return a message object
function Message.new(spec)
  if type(spec) ~= "table" then usage("smtp.message expects a table") end
  for k in pairs(spec) do
    if not SPEC_FIELDS[k] then
      usage("smtp.message: unknown field '" .. tostring(k) .. "'")
    end
  end
  local charset = spec.charset or "UTF-8"
  check_arg(charset, "charset")
  if not find(charset, "^[%w!#$%%&'+%-^_`{}~]+$") or #charset > 40 then
    usage("charset is not a valid charset name: " .. charset)
  end
  local te = spec.transfer_encoding
  if te ~= nil and te ~= "8bit" and te ~= "7bit" then
    usage("transfer_encoding must be \"7bit\" or \"8bit\"")
  end

  local self = setmetatable({}, Message)
  if spec.dkim ~= nil then self._dkim = dkim.options(spec.dkim) end
  local from, from_raw = address_list(spec.from, "from")
  local to, to_raw = address_list(spec.to, "to")
  local cc, cc_raw = address_list(spec.cc, "cc")
  local bcc = address_list(spec.bcc, "bcc")
  local reply_to, reply_raw = address_list(spec.reply_to, "reply_to")
  local sender = spec.sender ~= nil and address.parse(spec.sender) or nil
  if #from == 0 then usage("smtp.message: 'from' is required") end
  if #from > 1 and not sender then
    usage("smtp.message: several 'from' addresses need a 'sender' (RFC 5322 3.6.2)")
  end
  self._from, self._sender, self._to, self._cc, self._bcc = from, sender, to, cc, bcc

  local utf8 = false
  for _, list in ipairs({ from, to, cc, bcc, reply_to, { sender } }) do
    for _, a in ipairs(list) do
      if address.needs_smtputf8(a.address) then utf8 = true end
    end
  end

  local ctx = { charset = charset, allow_8bit = te == "8bit", eightbit = utf8, domain = id_domain(from[1]) }

  -- Header block (RFC 5322 3.6 order, user headers after ours).
  local h = {}
  local date = spec.date
  if date == nil then
    date = rfc5322_date(os.time())
  elseif type(date) == "number" then
    date = rfc5322_date(date)
  else
    check_arg(date, "date")
  end
  h[#h + 1] = fold("Date", split_spaces(date)) or usage("date is too long")
  h[#h + 1] = address_header("From", from, from_raw, charset)
  if sender then h[#h + 1] = address_header("Sender", { sender }, nil, charset) end
  if #reply_to > 0 or reply_raw then h[#h + 1] = address_header("Reply-To", reply_to, reply_raw, charset) end
  if #to > 0 or to_raw then h[#h + 1] = address_header("To", to, to_raw, charset) end
  if #cc > 0 or cc_raw then h[#h + 1] = address_header("Cc", cc, cc_raw, charset) end
  if spec.subject ~= nil then
    check_arg(spec.subject, "subject")
    h[#h + 1] = unstructured("Subject", spec.subject, charset)
  end
  local mid = spec.message_id ~= nil and msg_id(spec.message_id, "message_id")
    or "<" .. random_hex(16) .. "." .. os.time() .. "@" .. ctx.domain .. ">"
  self._message_id = mid
  h[#h + 1] = fold("Message-ID", { mid }) or usage("message_id is too long")
  if spec.headers ~= nil then
    if type(spec.headers) ~= "table" then usage("headers must be a list of {name, value}") end
    for i, hv in ipairs(spec.headers) do
      local what = "headers[" .. i .. "]"
      if type(hv) ~= "table" then usage(what .. " must be a {name, value} table") end
      local name, value = hv[1] or hv.name, hv[2] or hv.value
      check_arg(name, what .. " name")
      check_arg(value, what .. " value")
      if not find(name, "^[\33-\57\59-\126]+$") then usage(what .. ": invalid header name " .. name) end
      local r = RESERVED[lower(name)]
      if r then usage(what .. ": set " .. name .. " with the spec field " .. r) end
      h[#h + 1] = unstructured(name, value, charset)
    end
  end
  h[#h + 1] = "MIME-Version: 1.0\r\n"

  -- Body structure (RFC 2046 5.1.3, 5.1.4, 5.1.7; RFC 2387).
  local main
  if spec.text ~= nil then main = text_part(spec.text, "plain", ctx, "text") end
  if spec.html ~= nil then
    local html = text_part(spec.html, "html", ctx, "html")
    main = main and multipart("alternative", { main, html }) or html
  end
  local inline, attached = {}, {}
  if spec.attachments ~= nil then
    if type(spec.attachments) ~= "table" then usage("attachments must be a list") end
    for i, att in ipairs(spec.attachments) do
      local p = attachment_part(att, i, ctx)
      if p.inline and main then inline[#inline + 1] = p else attached[#attached + 1] = p end
    end
  end
  if #inline > 0 then
    local root_type = main.parts and "multipart/alternative" or (spec.html and "text/html" or "text/plain")
    local parts = { main }
    for _, p in ipairs(inline) do parts[#parts + 1] = p end
    main = multipart("related", parts, { "type=" .. quoted(root_type) })
  end
  if #attached > 0 then
    local parts = { main }
    if not main then parts = {} end
    for _, p in ipairs(attached) do parts[#parts + 1] = p end
    main = multipart("mixed", parts)
  end
  if not main then main = text_part("", "plain", ctx, "text") end

  -- A single part's last line is closed so the message ends with CRLF;
  -- a quoted-printable body does it with a soft break, keeping the text
  -- exact.
  local plan = {}
  flatten(main, plan, concat(h))
  if main.parts then
    plan[#plan + 1] = "\r\n"
  elseif main.body and main.body ~= "" and sub(main.body, -2) ~= "\r\n" then
    plan[#plan + 1] = main.cte == "quoted-printable" and "=\r\n" or "\r\n"
  elseif not main.body then
    plan[#plan + 1] = "\r\n"
  end
  self._plan = plan
  local size = 0
  for _, item in ipairs(plan) do size = size + (type(item) == "string" and #item or item.size) end
  self._size = size
  self._smtputf8 = utf8
  self._eightbit = ctx.eightbit
  return self
end

--- Whether v is a message object.
function Message.is(v)
  return getmetatable(v) == Message
end

-- The DKIM-Signature field of the spec's dkim options, computed by one
-- pass over the message the first time it is needed, so that tostring()
-- and sendmail send the same bytes; nil and a message if that pass failed.
function Message:_signature()
  if not self._dkim_field then
    -- A failure (an attachment file gone) is not kept: a later try may work.
    local field, err = dkim.header(self._dkim, self:unsigned_source())
    if not field then return nil, err end
    self._dkim_field = field
  end
  return self._dkim_field
end

--- A chunk source for sendmail: each call returns the next piece of the
-- message, then nil; on a failure (an attachment file that cannot be
-- read) it returns nil and a message. Each call of source() starts over.
-- With `dkim` in the spec the DKIM-Signature field comes first.
-- @treturn function
function Message:source()
  if not self._dkim then return self:unsigned_source() end
  local field, err = self:_signature()
  if not field then return function() return nil, err end end
  local rest, sent = self:unsigned_source(), false
  return function()
    if not sent then sent = true; return field end
    return rest()
  end
end

--- The message without the DKIM-Signature of the spec's `dkim`.
-- @treturn function a chunk source, as source()
function Message:unsigned_source()
  local plan, i = self._plan, 0
  local item, offset, file, enc -- the data item being streamed
  local function next_piece()
    while true do
      if item then
        if item.data then
          if offset > #item.data then
            item = nil
            return enc:finish()
          end
          local piece = sub(item.data, offset, offset + READ_SIZE - 1)
          offset = offset + READ_SIZE
          return enc:encode(piece)
        end
        local chunk, err = file:read(READ_SIZE)
        if chunk == nil then
          file:close()
          file, item = nil, nil
          if err then return nil, "reading attachment failed: " .. tostring(err) end
          return enc:finish()
        end
        return enc:encode(chunk)
      end
      i = i + 1
      local it = plan[i]
      if it == nil then return nil end
      if type(it) == "string" then return it end
      item, offset = it, 1
      enc = enc or core.b64_encoder(76)
      if it.path then
        local err
        file, err = open(it.path, "rb")
        if not file then
          item = nil
          return nil, "cannot open attachment: " .. tostring(err)
        end
      end
    end
  end
  local failed
  return function()
    if failed then return nil, failed end
    local pieces, n = {}, 0
    while n < CHUNK_TARGET do
      local p, err = next_piece()
      if p == nil then
        if err then
          failed = err
          if file then file:close(); file = nil end
          return nil, err
        end
        break
      end
      if p ~= "" then
        pieces[#pieces + 1] = p
        n = n + #p
      end
    end
    if #pieces == 0 then return nil end
    return #pieces == 1 and pieces[1] or concat(pieces)
  end
end

--- The same bytes as source() as a list for the C transport's fast path
-- (Conn:send_body): strings as they are, {data=} and {path=} items to be
-- base64-encoded in 76-column lines. Must stay in step with source().
-- @local
function Message:_wire_parts()
  if not self._dkim then return self._plan end
  -- The wire starts with the spec's DKIM-Signature; without it (a failed
  -- first pass) the Lua route reports the source's error.
  local field = self:_signature()
  if not field then return nil end
  local parts = { field }
  for i = 1, #self._plan do parts[i + 1] = self._plan[i] end
  return parts
end

--- The envelope sender (RFC 5321 3.3): Sender if set, else the first From.
-- @treturn string a bare address
function Message:envelope_from()
  return (self._sender or self._from[1]).address
end

--- Every address of To, Cc and Bcc, in order, without duplicates
-- (compared without case).
-- @treturn {string,...}
function Message:recipients()
  local out, seen = {}, {}
  for _, list in ipairs({ self._to, self._cc, self._bcc }) do
    for _, a in ipairs(list) do
      local key = lower(a.address)
      if not seen[key] then
        seen[key] = true
        out[#out + 1] = a.address
      end
    end
  end
  return out
end

--- What sending needs from the server: `smtputf8` (an address has
-- non-ASCII), `eightbit` (8-bit bytes on the wire), and `size` (octets,
-- before dot-stuffing; with `unsigned`, without the spec's DKIM-Signature).
-- @tparam[opt] boolean unsigned
-- @treturn table
function Message:requirements(unsigned)
  local size = self._size
  if self._dkim and not unsigned then
    local field = self:_signature()
    size = field and size + #field or nil
  end
  return { smtputf8 = self._smtputf8, eightbit = self._eightbit, size = size }
end

--- The Message-ID header value, `<...>`.
function Message:message_id()
  return self._message_id
end

--- The whole message as one string (through source()).
function Message:__tostring()
  local out, src = {}, self:source()
  while true do
    local chunk, err = src()
    if chunk == nil then
      if err then error(Error.new { kind = "io", message = err }, 0) end
      break
    end
    out[#out + 1] = chunk
  end
  return concat(out)
end

return Message
