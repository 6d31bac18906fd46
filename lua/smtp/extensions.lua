-- EHLO response lines -> capability table (RFC 5321 4.1.1.1, service
-- extensions registry); auth_mechanisms as in Netsmtp. Knows nothing of
-- sockets: it reads the lines the client already has.
local upper, tonumber, find, byte, sub = string.upper, tonumber, string.find, string.byte, string.sub

local extensions = {}

local function words(s)
  local out = {}
  for w in s:gmatch("%S+") do out[#out + 1] = w end
  return out
end

--- AUTH mechanisms named in an EHLO response (both the RFC 4954 form
-- "AUTH PLAIN LOGIN" and the old "AUTH=PLAIN LOGIN" form), uppercase,
-- each once, in the server's order.
function extensions.auth_mechanisms(lines)
  local out, seen = {}, {}
  for i = 1, #lines do
    local params = lines[i]:match("^[Aa][Uu][Tt][Hh][ =](.*)$")
    if params then
      for _, m in ipairs(words(params)) do
        m = upper(m)
        if not seen[m] then seen[m] = true; out[#out + 1] = m end
      end
    end
  end
  return out
end

-- Whitespace trim in linear time: a "^%s*(.-)%s*$" pattern retries its
-- tail at every position of a long space run, so a hostile EHLO line of
-- 64 KiB would cost seconds of CPU outside every deadline.
local function trim(s)
  local first = find(s, "%S")
  if not first then return "" end
  local last = #s
  while true do
    local b = byte(s, last)
    -- space, \t, \n, \v, \f, \r
    if b ~= 32 and (b < 9 or b > 13) then break end
    last = last - 1
  end
  return sub(s, first, last)
end
extensions._trim = trim -- for the unit tests

--- Parses EHLO lines (the first is the server's greeting) into
-- `{PIPELINING = true, SIZE = 52428800, AUTH = {...}, KEYWORD = "params"}`.
function extensions.parse(lines)
  local ext = {}
  for i = 2, #lines do
    local keyword, params = lines[i]:match("^%s*([%w][%w%-]*)[ =]?(.*)$")
    if keyword then
      keyword = upper(keyword)
      params = trim(params)
      if keyword == "AUTH" then
        ext.AUTH = ext.AUTH or {}
      elseif keyword == "SIZE" then
        ext.SIZE = tonumber(params:match("^(%d+)")) or 0
      elseif ext[keyword] == nil then
        ext[keyword] = params ~= "" and params or true
      end
    end
  end
  if ext.AUTH then
    local mechs = extensions.auth_mechanisms(lines)
    ext.AUTH = mechs
  end
  return ext
end

return extensions
