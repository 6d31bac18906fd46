--- Internationalised domain names (IDNA2008, UTS 46 non-transitional)
-- as A-labels, by libidn2 through `smtp.core.idna_to_ascii`: for DNS
-- (the connect host, DKIM `d=`), the EHLO name, and envelope addresses
-- sent to a server without SMTPUTF8 (RFC 6531 3.2 leaves no other way).
-- Pure-ASCII names never reach C: the per-message path stays a `find`.
-- @module smtp.idna
local Error = require "smtp.error"

local type, error, pairs = type, error, pairs
local find, match = string.find, string.match

local idna = {}

local core
local function get_core()
  if not core then core = require "smtp.core" end
  return core
end

local function has_8bit(s)
  return find(s, "[\128-\255]") ~= nil
end

--- The A-label form of a domain name ("bücher.example" gives
-- "xn--bcher-kva.example"); an ASCII name is returned as it is.
-- Raises kind `usage` naming the domain and libidn2's reason when the
-- name is not a valid IDNA2008 name.
-- @tparam string domain
-- @tparam[opt] string what names the argument in the message
-- @treturn string
function idna.to_ascii(domain, what)
  if type(domain) ~= "string" or not has_8bit(domain) then return domain end
  local alabel, _, why = get_core().idna_to_ascii(domain)
  if not alabel then
    error(Error.new { kind = "usage",
      message = (what or "domain") .. " '" .. domain .. "' is not a valid internationalised domain name: " .. why }, 0)
  end
  return alabel
end

-- Splits an address at its last '@' (a quoted local part may hold one):
-- local part, domain; nil when there is no '@'.
local function split(addr)
  return match(addr, "^(.*)@([^@]*)$")
end

--- An envelope address for a server without SMTPUTF8: the domain as
-- A-labels. Returns nil when the local part is not ASCII (no ASCII form
-- of it exists); an address needing nothing is returned unchanged.
-- @tparam string addr
-- @tparam[opt] string what names the address in a usage error
-- @treturn string|nil
function idna.ascii_address(addr, what)
  if not has_8bit(addr) then return addr end
  local lp, domain = split(addr)
  if not lp or has_8bit(lp) then return nil end
  return lp .. "@" .. idna.to_ascii(domain, what)
end

--- TLS options with `server_name` as A-labels (certificates and SNI
-- carry A-labels); the table itself when nothing needs converting.
-- @tparam table opts options of `smtp.tls_config`
-- @treturn table
function idna.tls_options(opts)
  local name = opts.server_name
  if type(name) ~= "string" or not has_8bit(name) then return opts end
  local copy = {}
  for k, v in pairs(opts) do copy[k] = v end
  copy.server_name = idna.to_ascii(name, "tls server_name")
  return copy
end

return idna
