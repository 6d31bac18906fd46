-- Test PKI made with the openssl command at test time (RFC 5280 X.509):
-- a CA, server/wrong-host/expired/not-yet-valid leaf certificates, a client
-- certificate with plain and encrypted keys, and an unrelated second CA.
-- EC P-256 keys throughout (fast to generate, accepted by mbedTLS 2.28).
--
--   local certs = require "helpers.certs"
--   local c = certs.make([dir])  -- cached: one PKI per process and dir
--
-- c fields (absolute PEM file paths unless noted):
--   dir                          directory holding everything
--   ca_cert, ca_key              the test CA ("lua-smtp test CA")
--   server_cert, server_key      CN=localhost, SAN DNS:localhost,
--                                IP:127.0.0.1, IP:::1 (signed by ca)
--   server_chain                 server_cert followed by ca_cert
--   wrong_host_cert, wrong_host_key   SAN DNS:wrong.example.org (by ca)
--   expired_cert, expired_key    localhost SANs, valid 2020-01-01..2020-02-01
--   future_cert, future_key      localhost SANs, valid from 2099-01-01
--   untrusted_cert, untrusted_key     localhost SANs, signed by other_ca
--   client_cert, client_key      CN=client, clientAuth (signed by ca)
--   client_key_encrypted         same key, traditional PEM encryption
--                                (Proc-Type/DEK-Info, AES-256-CBC)
--   client_key_encrypted_pkcs8   same key, PKCS#8 PBES2 des-ede3-cbc with
--                                hmacWithSHA1 (what mbedTLS 2.28 can read)
--   client_key_password          the password of both encrypted keys
--   other_ca_cert, other_ca_key  a second, unrelated CA
--   pem(name)                    function: contents of c[name]
local P = require "helpers.proc"

local M = {}

M.PASSWORD = "test-key-password"

local CNF = [[
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[wrong_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example.org
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca]
default_ca = testca
[testca]
dir = .
database = ca.db
new_certs_dir = .
serial = ca.srl
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
]]

local function ossl(dir, args)
  return P.run("cd " .. P.q(dir) .. " && openssl " .. args)
end

local function newkey(dir, name)
  ossl(dir, "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "
    .. name .. ".key")
end

local function ca(dir, name, cn)
  newkey(dir, name)
  ossl(dir, ("req -config test.cnf -new -x509 -key %s.key -out %s.crt"
    .. " -days 3650 -subj %s -extensions ca_ext -set_serial 1")
    :format(name, name, P.q("/CN=" .. cn)))
end

local function csr(dir, name, cn)
  newkey(dir, name)
  ossl(dir, ("req -config test.cnf -new -key %s.key -out %s.csr -subj %s")
    :format(name, name, P.q("/CN=" .. cn)))
end

local serial = 100
local function sign(dir, name, issuer, ext)
  serial = serial + 1
  ossl(dir, ("x509 -req -in %s.csr -CA %s.crt -CAkey %s.key -out %s.crt"
    .. " -days 825 -sha256 -set_serial %d -extfile test.cnf -extensions %s")
    :format(name, issuer, issuer, name, serial, ext))
end

-- `openssl x509 -req` in OpenSSL 3.0 cannot set a start date; `openssl ca`
-- can (-startdate/-enddate).
local function sign_dated(dir, name, from, to)
  ossl(dir, ("ca -batch -config test.cnf -notext -cert ca.crt -keyfile ca.key"
    .. " -in %s.csr -out %s.crt -startdate %s -enddate %s -extfile test.cnf"
    .. " -extensions server_ext"):format(name, name, from, to))
end

local function generate(dir)
  P.write_file(dir .. "/test.cnf", CNF)
  P.write_file(dir .. "/ca.db", "")
  P.write_file(dir .. "/ca.srl", "1000\n")
  ca(dir, "ca", "lua-smtp test CA")
  ca(dir, "other_ca", "lua-smtp unrelated CA")
  csr(dir, "server", "localhost")
  sign(dir, "server", "ca", "server_ext")
  csr(dir, "wrong_host", "wrong.example.org")
  sign(dir, "wrong_host", "ca", "wrong_ext")
  csr(dir, "untrusted", "localhost")
  sign(dir, "untrusted", "other_ca", "server_ext")
  csr(dir, "client", "client")
  sign(dir, "client", "ca", "client_ext")
  csr(dir, "expired", "localhost")
  sign_dated(dir, "expired", "20200101000000Z", "20200201000000Z")
  csr(dir, "future", "localhost")
  sign_dated(dir, "future", "20990101000000Z", "20990201000000Z")
  local pw = P.q("pass:" .. M.PASSWORD)
  ossl(dir, "ec -in client.key -aes256 -out client_enc.key -passout " .. pw)
  ossl(dir, "pkcs8 -topk8 -in client.key -out client_enc_pkcs8.key"
    .. " -v2 des3 -v2prf hmacWithSHA1 -passout " .. pw)
  P.write_file(dir .. "/server_chain.crt",
    P.read_file(dir .. "/server.crt") .. P.read_file(dir .. "/ca.crt"))
  -- Readable by the postfix and dovecot users (test keys, not secrets).
  P.run("chmod 0644 " .. P.q(dir) .. "/*.key " .. P.q(dir) .. "/*.crt")
  P.write_file(dir .. "/done", "")
end

local function paths(dir)
  local c = {
    dir = dir,
    client_key_password = M.PASSWORD,
    client_key_encrypted = dir .. "/client_enc.key",
    client_key_encrypted_pkcs8 = dir .. "/client_enc_pkcs8.key",
    server_chain = dir .. "/server_chain.crt",
  }
  for _, n in ipairs({ "ca", "other_ca", "server", "wrong_host", "expired",
                       "future", "untrusted", "client" }) do
    c[n .. "_cert"] = dir .. "/" .. n .. ".crt"
    c[n .. "_key"] = dir .. "/" .. n .. ".key"
  end
  function c.pem(name)
    return assert(P.read_file(assert(c[name], name)), c[name])
  end
  return c
end

local cache = {}

-- Makes (or reuses) the PKI in `dir` (default: <scratch>/certs, shared by
-- every spec file of this busted process). Raises if openssl fails.
function M.make(dir)
  dir = dir or (P.basedir() .. "/certs")
  if cache[dir] then return cache[dir] end
  if not P.exists(dir .. "/done") then
    P.run("mkdir -p -m 0755 " .. P.q(dir))
    generate(dir)
  end
  cache[dir] = paths(dir)
  return cache[dir]
end

return M
