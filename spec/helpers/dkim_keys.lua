-- DKIM test keys made with the openssl command at test time, once per
-- process: RSA 2048 (the main key), RSA 1024, RSA 512 (too small), an EC
-- P-256 key (not RSA), and the public halves as the base64 p= of a DNS
-- record. verify(msg) runs dkimpy on a message (spec/helpers/dkim_verify.py).
--
--   local keys = require "helpers.dkim_keys"
--   local k = keys.make()    -- k.rsa2048 = {file=, pem=, pub=}, ...
--   local ok, out = keys.verify(k.rsa2048, "sel", "example.org", message)
local P = require "helpers.proc"

local M = {}

local made

local function ossl(dir, args)
  return P.run("cd " .. P.q(dir) .. " && openssl " .. args)
end

local function key(dir, name, gen)
  ossl(dir, gen .. " -out " .. name .. ".key")
  local pub = ossl(dir, "pkey -in " .. name .. ".key -pubout -outform DER | base64 -w0")
  return { file = dir .. "/" .. name .. ".key", pem = P.read_file(dir .. "/" .. name .. ".key"),
    pub = (pub:gsub("%s", "")) }
end

function M.make()
  if made then return made end
  local dir = P.tempdir("dkim-keys")
  made = {
    dir = dir,
    rsa2048 = key(dir, "rsa2048", "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048"),
    rsa1024 = key(dir, "rsa1024", "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024"),
    ec = key(dir, "ec", "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"),
  }
  -- OpenSSL 3 refuses genrsa below 512; 512 is what "too small" needs.
  made.rsa512 = key(dir, "rsa512", "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:512")
  return made
end

-- Runs dkimpy on 'message' (bytes) with key k published at
-- selector._domainkey.domain. Returns true or false, and its output line.
function M.verify(k, selector, domain, message)
  local file = (made and made.dir or P.basedir()) .. "/verify.eml"
  P.write_file(file, message)
  local ok, out = P.try("/usr/bin/python3 spec/helpers/dkim_verify.py " .. P.q(file) .. " "
    .. P.q(selector .. "._domainkey." .. domain) .. " " .. P.q(k.pub))
  os.remove(file)
  return ok, (out:gsub("%s+$", ""))
end

return M
