--- smtp.Error: the structured error every failure of the library raises.
-- The only place that builds error objects (DESIGN E, SPEC 6).
-- @module smtp.Error
local setmetatable, getmetatable, type, tostring = setmetatable, getmetatable, type, tostring
local concat = table.concat
local printable = require("smtp.trace").printable

local Error = {}
Error.__index = Error

--- The kinds an error can have.
-- `protocol` (malformed or unexpected reply), `authentication`, `transient`
-- (4xx), `permanent` (5xx), `timeout`, `tls`, `io` (connect/read/write
-- failure, peer closed) and `usage` (bad argument).
Error.kinds = {
  protocol = true, authentication = true, transient = true, permanent = true,
  timeout = true, tls = true, io = true, usage = true,
}

-- Kinds after which the connection is out of sync and is closed.
local fatal_kinds = { protocol = true, timeout = true, tls = true, io = true }

-- RFC 3463 (and its registry additions) subject.detail descriptions.
local meanings = {
  ["0.0"] = "Other undefined status",
  ["1.0"] = "Other address status",
  ["1.1"] = "Bad destination mailbox address",
  ["1.2"] = "Bad destination system address",
  ["1.3"] = "Bad destination mailbox address syntax",
  ["1.4"] = "Destination mailbox address ambiguous",
  ["1.5"] = "Destination address valid",
  ["1.6"] = "Destination mailbox has moved, no forwarding address",
  ["1.7"] = "Bad sender's mailbox address syntax",
  ["1.8"] = "Bad sender's system address",
  ["1.10"] = "Recipient address has null MX",
  ["2.0"] = "Other or undefined mailbox status",
  ["2.1"] = "Mailbox disabled, not accepting messages",
  ["2.2"] = "Mailbox full",
  ["2.3"] = "Message length exceeds administrative limit",
  ["2.4"] = "Mailing list expansion problem",
  ["3.0"] = "Other or undefined mail system status",
  ["3.1"] = "Mail system full",
  ["3.2"] = "System not accepting network messages",
  ["3.3"] = "System not capable of selected features",
  ["3.4"] = "Message too big for system",
  ["3.5"] = "System incorrectly configured",
  ["4.0"] = "Other or undefined network or routing status",
  ["4.1"] = "No answer from host",
  ["4.2"] = "Bad connection",
  ["4.3"] = "Directory server failure",
  ["4.4"] = "Unable to route",
  ["4.5"] = "Mail system congestion",
  ["4.6"] = "Routing loop detected",
  ["4.7"] = "Delivery time expired",
  ["5.0"] = "Other or undefined protocol status",
  ["5.1"] = "Invalid command",
  ["5.2"] = "Syntax error",
  ["5.3"] = "Too many recipients",
  ["5.4"] = "Invalid command arguments",
  ["5.5"] = "Wrong protocol version",
  ["5.6"] = "Authentication Exchange line is too long",
  ["6.0"] = "Other or undefined media error",
  ["6.1"] = "Media not supported",
  ["6.2"] = "Conversion required and prohibited",
  ["6.3"] = "Conversion required but not supported",
  ["6.4"] = "Conversion with loss performed",
  ["6.5"] = "Conversion failed",
  ["6.6"] = "Message content not currently available",
  ["6.7"] = "Non-ASCII addresses not permitted for that sender/recipient",
  ["6.8"] = "UTF-8 string reply is required, but not permitted by the SMTP client",
  ["6.9"] = "UTF-8 header message cannot be transferred to one or more recipients",
  ["7.0"] = "Other or undefined security status",
  ["7.1"] = "Delivery not authorized, message refused",
  ["7.2"] = "Mailing list expansion prohibited",
  ["7.3"] = "Security conversion required but not possible",
  ["7.4"] = "Security features not supported",
  ["7.5"] = "Cryptographic failure",
  ["7.6"] = "Cryptographic algorithm not supported",
  ["7.7"] = "Message integrity failure",
  ["7.8"] = "Authentication credentials invalid",
  ["7.9"] = "Authentication mechanism is too weak",
  ["7.10"] = "Encryption needed",
  ["7.11"] = "Encryption required for requested authentication mechanism",
  ["7.12"] = "A password transition is needed",
  ["7.13"] = "User account disabled",
  ["7.14"] = "Trust relationship required",
  ["7.15"] = "Priority level is too low",
  ["7.16"] = "Message is too big for the specified priority",
  ["7.17"] = "Mailbox owner has changed",
  ["7.18"] = "Domain owner has changed",
  ["7.19"] = "RRVS test cannot be completed",
  ["7.20"] = "No passing DKIM signature found",
  ["7.21"] = "No acceptable DKIM signature found",
  ["7.22"] = "No valid author-matched DKIM signature found",
  ["7.23"] = "SPF validation failed",
  ["7.24"] = "SPF validation error",
  ["7.25"] = "Reverse DNS validation failed",
  ["7.26"] = "Multiple authentication checks failed",
  ["7.27"] = "Sender address has null MX",
  ["7.28"] = "Mail flood detected",
  ["7.29"] = "ARC validation failure",
  ["7.30"] = "REQUIRETLS support required",
}

--- The RFC 3463 description of an enhanced status code ("5.1.1").
-- @tparam string enhanced
-- @treturn string|nil
function Error.meaning_of(enhanced)
  if type(enhanced) ~= "string" then return nil end
  local detail = enhanced:match("^%d%.(%d+%.%d+)$")
  return detail and meanings[detail] or nil
end

--- Builds an error object (it is raised by the caller with `error(e, 0)`).
-- @tparam table fields `kind` (required), `message`, `code`, `enhanced`,
-- `lines`, `command`, `recipient`, `outcome`, `retryable`, `cause`;
-- `meaning` (the RFC 3463 text of `enhanced`) is filled in, and AUTH
-- failures may carry `detail` (the RFC 7628 error of OAuth mechanisms).
-- @treturn smtp.Error
function Error.new(fields)
  local kind = fields.kind
  if not Error.kinds[kind] then
    error("smtp.Error: unknown kind " .. tostring(kind), 2)
  end
  local e = {}
  for k, v in pairs(fields) do e[k] = v end
  if e.message == nil then
    e.message = e.lines and concat(e.lines, " ") or kind
  end
  if e.meaning == nil then e.meaning = Error.meaning_of(e.enhanced) end
  if e.retryable == nil then
    e.retryable = kind == "transient" or
      ((kind == "timeout" or kind == "io") and e.outcome ~= "unknown")
  end
  return setmetatable(e, Error)
end

--- Builds the error for a 4xx/5xx (or unexpected) server reply.
-- @tparam table reply `{code=, enhanced=, lines=}` from the parser
-- @tparam[opt] string command the command as sent (already masked)
-- @tparam[opt] table extra more fields (recipient, outcome, ...)
function Error.from_reply(reply, command, extra)
  local code = reply.code
  local kind
  if code >= 500 then kind = "permanent"
  elseif code >= 400 then kind = "transient"
  else kind = "protocol" end
  local fields = {
    kind = kind, code = code, enhanced = reply.enhanced,
    lines = reply.lines, message = concat(reply.lines, " "),
    command = command,
  }
  if kind == "protocol" then
    fields.message = "unexpected reply " .. code .. ": " .. fields.message
  end
  if extra then for k, v in pairs(extra) do fields[k] = v end end
  return Error.new(fields)
end

--- Whether v is an smtp.Error (by metatable, not by shape).
function Error.is(v)
  return type(v) == "table" and getmetatable(v) == Error
end

--- Whether the connection is closed after this error (protocol, timeout,
-- tls, io); a 4xx/5xx leaves it usable.
function Error.is_fatal(e)
  return fatal_kinds[e.kind] == true
end

--- True for errors worth retrying later (4xx, timeouts, connection
-- failures before the data was sent).
function Error.temporary(e)
  return Error.is(e) and e.retryable == true
end

--- One printable line: CR/LF runs become a space, and other control
-- bytes from the server's text are shown escaped (`\x1b`), so printing an
-- error cannot drive the terminal. The fields keep the raw text.
function Error:__tostring()
  local parts = { "smtp: ", self.kind }
  if self.code then parts[#parts + 1] = " " .. self.code end
  if self.enhanced then parts[#parts + 1] = " " .. self.enhanced end
  if self.command then parts[#parts + 1] = " at " .. self.command end
  parts[#parts + 1] = ": " .. tostring(self.message)
  return printable((concat(parts):gsub("[\r\n]+", " ")))
end

return Error
