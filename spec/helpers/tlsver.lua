-- Which TLS versions the smtp.core under test can speak: the default
-- build (vendored mbedTLS 3.6) reaches TLS 1.3, the `make MBEDTLS=system`
-- build (Debian's mbedTLS 2.28, build/system) stops at TLS 1.2. Asked of the module itself, through
-- the same tls_config check users get, not guessed from SMTP_BUILD.
local core = require "smtp.core"

local M = {}

-- true, or false and the module's refusal ("... has no TLS 1.3").
function M.has_tls13()
  local cfg, _, msg = core.tls_config { verify = "none", min_version = "1.3" }
  if cfg then return true end
  return false, msg
end

-- tls_info().version of a session with no version limits: the highest
-- the build has (every peer in the suite speaks TLS 1.3).
function M.best()
  return M.has_tls13() and "TLSv1.3" or "TLSv1.2"
end

-- The pending() message of a TLS 1.3 test under a build without it.
function M.no_tls13_reason()
  local _, msg = M.has_tls13()
  return "this build has no TLS 1.3 (system mbedTLS 2.28; the default `make` has it): "
    .. tostring(msg)
end

return M
