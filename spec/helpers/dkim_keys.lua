-- DKIM test keys made with the openssl command at test time, once per
-- process: RSA 2048 (the main key), RSA 1024, RSA 512 (too small), an EC
-- P-256 key (not RSA), and the public halves as the base64 p= of a DNS
-- record. verify(msg) runs dkimpy on a message (spec/helpers/dkim_verify.py).
--
--   local keys = require "helpers.dkim_keys"
--   local k = keys.make()    -- k.rsa2048 = {file=, pem=, pub=}, ...
--   local ok, line = keys.verify(k.rsa2048, "sel", "example.org", message)
--   local lines = keys.verify_all(k.rsa2048, "sel", "example.org", {m1, m2})
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

-- Runs dkimpy on each message of the list (bytes) with key k published at
-- selector._domainkey.domain. Returns the list of output lines ("pass" or
-- "fail: <reason>"), one per message.
function M.verify_all(k, selector, domain, messages)
  local dir = P.tempdir("dkim-verify")
  local files = {}
  for i, m in ipairs(messages) do
    files[i] = dir .. "/m" .. i .. ".eml"
    P.write_file(files[i], m)
    files[i] = P.q(files[i])
  end
  local _, out = P.try("/usr/bin/python3 spec/helpers/dkim_verify.py "
    .. P.q(selector .. "._domainkey." .. domain) .. " " .. P.q(k.pub) .. " " .. table.concat(files, " "))
  P.try("rm -rf " .. P.q(dir))
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  assert(#lines == #messages, "dkim_verify.py: " .. out)
  return lines
end

-- One message: true or false, and dkimpy's line.
function M.verify(k, selector, domain, message)
  local r = M.verify_all(k, selector, domain, { message })[1]
  return r == "pass", r
end

return M
