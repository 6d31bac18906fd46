-- The bytes a message takes on the wire, stated independently of the C
-- encoder so specs can compare against it: CRLF and bare CR become LF,
-- with 'stuff' (DATA) dots opening a line are doubled and ".\r\n" ends
-- it, the last line is closed, then LF -> CRLF.
local M = {}

function M.reference(s, stuff)
  local t = s:gsub("\r\n", "\n"):gsub("\r", "\n")
  if stuff then t = t:gsub("^%.", ".."):gsub("\n%.", "\n..") end
  if #t > 0 and t:sub(-1) ~= "\n" then t = t .. "\n" end
  t = t:gsub("\n", "\r\n")
  return stuff and (t .. ".\r\n") or t
end

return M
