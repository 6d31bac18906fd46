-- Compares a message with its re-encoded form through Python's email
-- package (spec/helpers/compare_parts.py): same tree, same header fields
-- but Content-Transfer-Encoding, each leaf decoding to the same bytes.
--   local same, why, ctes = check.compare(original, sent)
local P = require "helpers.proc"
local json = require "dkjson"

local M = {}

function M.compare(original, sent)
  local dir = P.tempdir("downgrade")
  P.write_file(dir .. "/a.eml", original)
  P.write_file(dir .. "/b.eml", sent)
  local out = P.run("/usr/bin/python3 spec/helpers/compare_parts.py " .. P.q(dir .. "/a.eml")
    .. " " .. P.q(dir .. "/b.eml"))
  local v = assert(json.decode(out))
  return v.same, v.why, v.cte
end

-- The message a DATA body carries: dot-stuffing undone, CRLF.CRLF removed.
function M.data_of(received)
  local s = received:match("\r\nDATA\r\n(.*)\r\n%.\r\n") or received:match("^DATA\r\n(.*)\r\n%.\r\n")
  assert(s, "no DATA body in what the server received")
  return ((s .. "\r\n"):gsub("\r\n%.%.", "\r\n."):gsub("^%.%.", "."))
end

return M
