--- smtp.sender.memory(): keeps each message in `.messages` instead of
-- sending it, for an application's own tests (as Nodemailer's JSON
-- transport and lettre's stub transport). Same send(msg, opts) and
-- report as smtp.pool.
-- @classmod smtp.sender.Memory
local common = require "smtp.sender.common"

local setmetatable = setmetatable

local Memory = {}
Memory.__index = Memory

local LABEL = "memory"

--- Records the message as `{from=, to={...}, data=}`: data is the
-- message as it would go out (Bcc removed, every line end CRLF, before
-- dot-stuffing). Returns pool:send's report.
function Memory:send(msg, opts)
  local from, to, next_chunk
  from, to, next_chunk, opts = common.prepare("smtp.sender.memory", msg, opts)
  local data = common.read_lf(next_chunk):gsub("\n", "\r\n")
  common.progress(opts, #data)
  local copy = {}
  for i, r in ipairs(to) do copy[i] = r end
  self.messages[#self.messages + 1] = { from = from, to = copy, data = data }
  return common.report(LABEL, to)
end

--- Forgets the messages kept so far.
function Memory:clear()
  self.messages = {}
end

--- Nothing to close; there for code written against a pool.
function Memory.close(_) end

return function()
  return setmetatable({ messages = {} }, Memory)
end
