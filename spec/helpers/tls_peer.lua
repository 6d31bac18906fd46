-- Test peers for TLS specs: makes a throw-away PKI with the openssl command
-- (CA, server, wrong-host, wildcard, expired, client certificates) and
-- starts independent TLS servers on loopback -- Python's ssl module and
-- `openssl s_server` -- stopped by PID. Every wait is bounded.
local M = {}

local PYTHON = "/usr/bin/python3"

local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  if not ok then
    error(("command failed (%s %s): %s"):format(tostring(how), tostring(code), cmd), 2)
  end
end

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end
M.read_file = read_file

local function sleep(s)
  os.execute("sleep " .. s)
end
M.sleep = sleep

local function available(cmd)
  return os.execute("command -v " .. cmd .. " >/dev/null 2>&1")
end

-- True when both independent peers can run here.
function M.usable()
  return available("openssl") and available(PYTHON)
end

local EC = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

-- Signs a new leaf for `name` with the CA in dir; `ext` is the extension
-- text (subjectAltName etc.), `days` may be negative for an expired one.
local function leaf(dir, ca, name, subject, ext, days)
  local base = dir .. "/" .. name
  local f = assert(io.open(base .. ".ext", "w"))
  f:write(ext, "\n")
  f:close()
  sh(("openssl req -new %s -keyout %s -out %s -subj %s 2>/dev/null")
     :format(EC, q(base .. ".key"), q(base .. ".csr"), q(subject)))
  sh(("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days %d -extfile %s -out %s 2>/dev/null")
     :format(q(base .. ".csr"), q(dir .. "/" .. ca .. ".crt"), q(dir .. "/" .. ca .. ".key"),
             days or 2, q(base .. ".ext"), q(base .. ".crt")))
end

local function ca(dir, name, cn)
  sh(("openssl req -x509 %s -keyout %s -out %s -days 2 -subj %s "
      .. "-addext 'basicConstraints=critical,CA:TRUE' "
      .. "-addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null")
     :format(EC, q(dir .. "/" .. name .. ".key"), q(dir .. "/" .. name .. ".crt"), q("/CN=" .. cn)))
end

-- Makes the PKI in a fresh temporary directory and returns a table of
-- paths: dir, ca, server_crt/key (localhost, 127.0.0.1, ::1), wrong_crt/key,
-- wild_crt/key (*.example.test), expired_crt/key, other_ca, rogue_crt/key
-- (localhost signed by other_ca), client_crt/key, client_key_enc (password
-- "s3cret"), client_key_pkcs8 (PKCS#8 with 3DES, password "s3cret").
function M.make_pki()
  local p = assert(io.popen("mktemp -d /tmp/lua-smtp-tls.XXXXXX"))
  local dir = p:read("l")
  p:close()
  local server_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
  ca(dir, "ca", "lua-smtp test CA")
  ca(dir, "other_ca", "someone else's CA")
  leaf(dir, "ca", "server", "/CN=localhost",
       server_ext .. "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1")
  leaf(dir, "ca", "wrong", "/CN=wrong.example.org",
       server_ext .. "subjectAltName=DNS:wrong.example.org")
  leaf(dir, "ca", "wild", "/CN=wildcard",
       server_ext .. "subjectAltName=DNS:*.example.test")
  leaf(dir, "ca", "cnonly", "/CN=cn-only.example.test", server_ext)
  leaf(dir, "ca", "expired", "/CN=localhost",
       server_ext .. "subjectAltName=DNS:localhost,IP:127.0.0.1", -1)
  leaf(dir, "other_ca", "rogue", "/CN=localhost",
       server_ext .. "subjectAltName=DNS:localhost,IP:127.0.0.1")
  leaf(dir, "ca", "client", "/CN=smtp client",
       "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth")
  -- Traditional PEM encryption (DEK-Info AES-256-CBC) and PKCS#8 with
  -- 3DES: both forms mbedTLS 2.28 can decrypt.
  sh(("openssl ec -in %s -aes256 -passout pass:s3cret -out %s 2>/dev/null")
     :format(q(dir .. "/client.key"), q(dir .. "/client_enc.key")))
  sh(("openssl pkcs8 -topk8 -v2 des3 -in %s -passout pass:s3cret -out %s 2>/dev/null")
     :format(q(dir .. "/client.key"), q(dir .. "/client_p8.key")))
  local t = { dir = dir, ca = dir .. "/ca.crt", other_ca = dir .. "/other_ca.crt",
              client_key_enc = dir .. "/client_enc.key",
              client_key_pkcs8 = dir .. "/client_p8.key" }
  for _, n in ipairs { "server", "wrong", "wild", "cnonly", "expired", "rogue", "client" } do
    t[n .. "_crt"] = dir .. "/" .. n .. ".crt"
    t[n .. "_key"] = dir .. "/" .. n .. ".key"
  end
  return t
end

function M.remove_pki(pki)
  if pki and pki.dir and pki.dir:match("^/tmp/lua%-smtp%-tls%.") then
    os.execute("rm -rf " .. q(pki.dir))
  end
end

-- The Python peer. Modes:
--   tls      implicit TLS; after the handshake sends
--            "hello <version> <cipher> client=<CN or ->\r\n", then serves
--            lines: "DIGEST n" reads n bytes and answers "n sha256 maxrec
--            reads"; anything else is echoed.
--   starttls "220 ready", waits for STARTTLS, "220 go", then as tls.
--   inject   "220 ready", waits for STARTTLS, then "220 go\r\n250
--            injected\r\n" in one write; logs whatever arrives afterwards.
--   silent   accepts TCP and never says a word.
-- Events go to the log file: "clean-close" when the client sent
-- close_notify, "unclean-close", "after-inject <n>" etc.
local SERVER_PY = [=[
import hashlib, socket, ssl, sys, threading, time
mode, family, cert, key, ca, logpath = sys.argv[1:7]
log = open(logpath, "a", buffering=1)
fam = socket.AF_INET6 if family == "6" else socket.AF_INET
srv = socket.socket(fam, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::1" if family == "6" else "127.0.0.1", 0))
srv.listen(16)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
if ca != "-":
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca)
print(srv.getsockname()[1], flush=True)

def readline(s):
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            raise EOFError
        buf += b
    return buf

def serve_tls(raw):
    try:
        s = ctx.wrap_socket(raw, server_side=True)
    except Exception as e:
        log.write("handshake-failed %s\n" % e)
        return
    peer = s.getpeercert()
    cn = "-"
    if peer:
        for rdn in peer.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v.replace(" ", "_")
    log.write("handshake %s %s client=%s\n" % (s.version(), s.cipher()[0], cn))
    s.sendall(("hello %s %s client=%s\r\n" % (s.version(), s.cipher()[0], cn)).encode())
    buf = b""
    try:
        while True:
            data = s.recv(65536)
            if not data:
                log.write("clean-close\n")
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.startswith(b"DIGEST "):
                    n = int(line.split()[1])
                    h = hashlib.sha256()
                    got, maxrec, reads = 0, 0, 0
                    h.update(buf[:n]); got = min(len(buf), n); buf = buf[got:]
                    while got < n:
                        data = s.recv(65536)
                        if not data:
                            raise EOFError
                        reads += 1
                        maxrec = max(maxrec, len(data))
                        take = data[:n - got]
                        h.update(take); got += len(take); buf += data[len(take):]
                    s.sendall(("%d %s %d %d\r\n" % (n, h.hexdigest(), maxrec, reads)).encode())
                else:
                    s.sendall(line + b"\n")
    except ssl.SSLEOFError:
        log.write("unclean-close\n")
    except (EOFError, ConnectionError, OSError) as e:
        log.write("error %s\n" % e)

def handle(raw):
    raw.settimeout(20)
    try:
        if mode == "silent":
            while raw.recv(4096):
                pass
            return
        if mode == "tls":
            return serve_tls(raw)
        raw.sendall(b"220 ready\r\n")
        line = readline(raw)
        if line.strip().upper() != b"STARTTLS":
            raw.sendall(b"500 expected STARTTLS\r\n")
            return
        if mode == "inject":
            raw.sendall(b"220 go\r\n250 injected\r\n")
            total = 0
            while True:
                data = raw.recv(4096)
                if not data:
                    break
                total += len(data)
            log.write("after-inject %d\n" % total)
            return
        raw.sendall(b"220 go\r\n")
        serve_tls(raw)
    except Exception as e:
        log.write("error %s\n" % e)
    finally:
        try:
            raw.close()
        except OSError:
            pass

deadline = time.time() + 120
srv.settimeout(1)
while time.time() < deadline:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        continue
    threading.Thread(target=handle, args=(c,), daemon=True).start()
]=]

-- Starts a background command; returns its PID. stdout goes to out.
local function spawn(cmd, out, err)
  local p = assert(io.popen(("%s >%s 2>%s </dev/null & echo $!"):format(cmd, q(out), q(err))))
  local pid = tonumber(p:read("l"))
  p:close()
  assert(pid, "could not start: " .. cmd)
  return pid
end

local function stop_pid(pid)
  if pid then
    os.execute(("kill %d 2>/dev/null; sleep 0.05; kill -9 %d 2>/dev/null"):format(pid, pid))
  end
end

local seq = 0

-- Starts the Python peer; opts = {mode=, cert=, key=, ca= (client cert
-- required), family = "4" | "6"}. Returns {port=, pid=, log=, stop=}.
function M.python_server(pki, opts)
  seq = seq + 1
  local script = pki.dir .. "/server.py"
  if not read_file(script) then
    local f = assert(io.open(script, "w"))
    f:write(SERVER_PY)
    f:close()
  end
  local base = ("%s/py%d"):format(pki.dir, seq)
  local log = base .. ".log"
  local pid = spawn(("exec %s %s %s %s %s %s %s %s"):format(PYTHON, q(script), q(opts.mode or "tls"),
                    q(opts.family or "4"), q(opts.cert or pki.server_crt), q(opts.key or pki.server_key),
                    q(opts.ca or "-"), q(log)), base .. ".port", base .. ".err")
  local port
  for _ = 1, 100 do   -- at most ~5 s
    port = tonumber((read_file(base .. ".port") or ""):match("^(%d+)"))
    if port then break end
    sleep(0.05)
  end
  if not port then
    stop_pid(pid)
    error("python TLS server did not start: " .. (read_file(base .. ".err") or ""))
  end
  return {
    port = port, pid = pid, log = log,
    read_log = function() return read_file(log) or "" end,
    stop = function() stop_pid(pid) end,
  }
end

-- A loopback port that was free a moment ago (for s_server's -accept).
local function free_port()
  local p = assert(io.popen(PYTHON .. [[ -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"]]))
  local port = tonumber(p:read("l"))
  p:close()
  return assert(port)
end

-- Starts `openssl s_server -rev` (echoes each line reversed) with the
-- server certificate. Returns {port=, pid=, stop=}.
function M.openssl_server(pki, opts)
  opts = opts or {}
  seq = seq + 1
  local base = ("%s/ossl%d"):format(pki.dir, seq)
  for _ = 1, 3 do
    local port = free_port()
    local pid = spawn(("exec openssl s_server -accept 127.0.0.1:%d -cert %s -key %s -rev -naccept %d")
                      :format(port, q(opts.cert or pki.server_crt), q(opts.key or pki.server_key),
                              opts.naccept or 5), base .. ".out", base .. ".err")
    for _ = 1, 100 do
      if (read_file(base .. ".out") or ""):find("ACCEPT", 1, true) then
        return { port = port, pid = pid, stop = function() stop_pid(pid) end }
      end
      if not os.execute(("kill -0 %d 2>/dev/null"):format(pid)) then break end
      sleep(0.05)
    end
    stop_pid(pid)
  end
  error("openssl s_server did not start: " .. (read_file(base .. ".err") or ""))
end

return M
