-- EHLO response lines -> capability table (RFC 5321 4.1.1.1, service
-- extensions registry); auth_mechanisms as in Netsmtp. Knows nothing of
-- sockets: it reads the lines the client already has.
local upper, tonumber = string.upper, tonumber

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

--- Parses EHLO lines (the first is the server's greeting) into
-- `{PIPELINING = true, SIZE = 52428800, AUTH = {...}, KEYWORD = "params"}`.
function extensions.parse(lines)
  local ext = {}
  for i = 2, #lines do
    local keyword, params = lines[i]:match("^%s*([%w][%w%-]*)[ =]?(.*)$")
    if keyword then
      keyword = upper(keyword)
      params = params:match("^%s*(.-)%s*$")
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
