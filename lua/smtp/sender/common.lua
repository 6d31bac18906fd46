--- What the senders of smtp.sender share (issue 25): the envelope and
-- bytes of a message as smtp.pool would send them, line ends, and the
-- report and error shapes of pool:send, so that outbox:run and code
-- written against a pool treat every sender alike.
-- @module smtp.sender.common
local Error = require "smtp.error"
local envelope = require "smtp.envelope"

local type, ipairs, error, tostring = type, ipairs, error, tostring
local concat = table.concat

local M = {}

function M.usage(who, msg)
  error(Error.new { kind = "usage", outcome = "not_sent", message = who .. ": " .. msg }, 0)
end

--- The envelope of `msg` (an smtp.message, raw string, file or chunk
-- function) with opts.from / opts.to winning, as the pool computes it:
-- returns from, recipients, and a function giving the message bytes
-- (Bcc removed, DKIM applied when opts.dkim) chunk by chunk.
function M.prepare(who, msg, opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then M.usage(who, "send options must be a table") end
  local env = envelope.prepare(msg, opts)
  local source = env.source
  local function next_chunk()
    local chunk, err = source()
    if chunk == nil and err ~= nil then
      error(Error.new { kind = "usage", outcome = "not_sent",
        message = "message source failed: " .. tostring(err) }, 0)
    end
    return chunk
  end
  return env.from, env.recipients, next_chunk, opts
end

--- A line-end converter to LF for a stream of chunks: feed(chunk) gives
-- the converted bytes so far (a CR ending a chunk waits for the next),
-- feed(nil) the rest. Bare CR and CRLF both become LF, as on the wire
-- (csrc/dotstuff.h) every line end becomes CRLF.
function M.to_lf()
  local carry = ""
  return function(chunk)
    if chunk == nil then
      local rest = carry == "\r" and "\n" or ""
      carry = ""
      return rest
    end
    chunk = carry .. chunk
    carry = ""
    if chunk:sub(-1) == "\r" then
      carry = "\r"
      chunk = chunk:sub(1, -2)
    end
    return (chunk:gsub("\r\n?", "\n"))
  end
end

--- The whole message with LF line ends (ending in one).
function M.read_lf(next_chunk)
  local conv, parts = M.to_lf(), {}
  for chunk in next_chunk do parts[#parts + 1] = conv(chunk) end
  parts[#parts + 1] = conv(nil)
  local data = concat(parts)
  if data ~= "" and data:sub(-1) ~= "\n" then data = data .. "\n" end
  return data
end

--- Tells opts.progress (the outbox's in-flight marker) that the end of
-- data is about to go: it may raise to stop the send.
function M.progress(opts, size)
  if type(opts.progress) == "function" then opts.progress(size, size) end
end

--- pool:send's report for a message every recipient of which was taken.
function M.report(label, recipients)
  local accepted = {}
  for i, r in ipairs(recipients) do accepted[i] = r end
  return { accepted = accepted, rejected = {}, server = label, servers = { label }, tries = 1 }
end

--- pool:send's final failure: the error with `tries` and a `report` in
-- which every recipient is rejected with it.
function M.fail(fields, label, recipients)
  local err = Error.new(fields)
  local rejected = {}
  for i, r in ipairs(recipients or {}) do rejected[i] = { recipient = r, error = err } end
  err.tries = 1
  err.report = { accepted = {}, rejected = rejected, server = nil, servers = { label }, tries = 1 }
  error(err, 0)
end

return M
