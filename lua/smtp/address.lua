-- RFC 5322 / 5321 addresses and the CR/LF/NUL guard used before any
-- command is written (minimal first version; see message work for full
-- parsing).
local Error = require "smtp.error"

local address = {}

local function usage(msg)
  error(Error.new { kind = "usage", message = msg }, 0)
end

function address.check_arg(value, what)
  if type(value) ~= "string" then
    usage((what or "argument") .. " must be a string")
  end
  if value:find("[\r\n%z]") then
    usage((what or "argument") .. " contains CR, LF or NUL")
  end
  return value
end

function address.parse(v)
  if type(v) == "table" then
    address.check_arg(v.address, "address")
    return { name = v.name, address = v.address }
  end
  address.check_arg(v, "address")
  local name, addr = v:match("^%s*(.-)%s*<([^<>]*)>%s*$")
  if not addr then addr = v:match("^%s*(%S+@%S+)%s*$") end
  if not addr then usage("malformed address: " .. v) end
  if name == "" then name = nil end
  if name then name = name:gsub('^"(.*)"$', "%1") end
  return { name = name, address = addr }
end

function address.parse_list(s)
  address.check_arg(s, "address list")
  local out = {}
  for item in s:gmatch("[^,]+") do
    if item:find("%S") then out[#out + 1] = address.parse(item) end
  end
  return out
end

function address.format(a)
  if a.name then return string.format('"%s" <%s>', a.name, a.address) end
  return a.address
end

function address.needs_smtputf8(s)
  return s:find("[\128-\255]") ~= nil
end

return address
