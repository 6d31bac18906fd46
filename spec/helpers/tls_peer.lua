-- Test peers for the TLS specs: independent TLS servers on loopback --
-- Python's ssl module and `openssl s_server` -- started on demand and
-- stopped by PID (a watchdog kills them if the test process dies). The
-- PKI is helpers.certs' plus a wildcard and a CN-only certificate made
-- here with the same CA. Every wait is bounded.
local P = require "helpers.proc"
local certs = require "helpers.certs"

local M = {}

local PYTHON = "/usr/bin/python3"

function M.usable()
  return P.try("command -v openssl && test -x " .. PYTHON)
end

local EXT = [[
[wild_ext]
basicConstraints = critical, CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:*.example.test
[cnonly_ext]
basicConstraints = critical, CA:FALSE
extendedKeyUsage = serverAuth
[ip_dns_ext]
basicConstraints = critical, CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:127.0.0.1
]]

local function leaf(dir, c, name, cn, ext)
  local function ossl(args) return P.run("cd " .. P.q(dir) .. " && openssl " .. args) end
  ossl(("req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key"
        .. " -out %s.csr -subj %s"):format(name, name, P.q("/CN=" .. cn)))
  ossl(("x509 -req -in %s.csr -CA %s -CAkey %s -out %s.crt -days 30 -sha256 -set_serial %d"
        .. " -extfile ext.cnf -extensions %s")
       :format(name, P.q(c.ca_cert), P.q(c.ca_key), name, math.random(1000, 1e9), ext))
end

-- helpers.certs' table plus wild_cert/key (SAN DNS:*.example.test),
-- cnonly_cert/key (CN=cn-only.example.test, no SAN) and ipdns_cert/key
-- (the text 127.0.0.1 as a DNS SAN, which must not match the address).
function M.make_pki()
  local c = certs.make()
  local dir = P.tempdir("tls-pki")
  P.write_file(dir .. "/ext.cnf", EXT)
  leaf(dir, c, "wild", "wildcard", "wild_ext")
  leaf(dir, c, "cnonly", "cn-only.example.test", "cnonly_ext")
  leaf(dir, c, "ipdns", "ip-as-dns", "ip_dns_ext")
  local t = { tmp = dir }
  for k, v in pairs(c) do t[k] = v end
  for _, n in ipairs { "wild", "cnonly", "ipdns" } do
    t[n .. "_cert"] = dir .. "/" .. n .. ".crt"
    t[n .. "_key"] = dir .. "/" .. n .. ".key"
  end
  return t
end

local SERVER_PY = [=[
import hashlib, socket, ssl, sys, threading, time
mode, family, cert, key, ca, logpath, portpath = sys.argv[1:8]
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
with open(portpath + ".tmp", "w") as f:
    f.write("%d\n" % srv.getsockname()[1])
import os
os.rename(portpath + ".tmp", portpath)

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
                if line.strip() == b"BYE":
                    s.sendall(b"bye\r\n")
                    s.unwrap()   # sends close_notify
                    log.write("sent-close-notify\n")
                    return
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
                try:
                    data = raw.recv(4096)
                except ConnectionResetError:
                    break   # the client closed with our bytes unread: RST
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

local function start(cmd, log)
  local pid = P.spawn(cmd, log)
  P.watchdog("kill -9 " .. pid .. " 2>/dev/null", pid)
  return pid
end

-- Starts the Python peer; opts = {mode=, cert=, key=, ca= (a client
-- certificate is then required), family = "4" | "6"}. Returns {port=,
-- pid=, read_log=, stop=}.
function M.python_server(pki, opts)
  local dir = P.tempdir("tls-py")
  local script = dir .. "/server.py"
  P.write_file(script, SERVER_PY)
  local log, portfile = dir .. "/events.log", dir .. "/port"
  local pid = start(("%s %s %s %s %s %s %s %s %s"):format(PYTHON, P.q(script),
    P.q(opts.mode or "tls"), P.q(opts.family or "4"), P.q(opts.cert or pki.server_cert),
    P.q(opts.key or pki.server_key), P.q(opts.ca or "-"), P.q(log), P.q(portfile)),
    dir .. "/stderr.log")
  local port = P.wait_for(10, function()
    return tonumber((P.read_file(portfile) or ""):match("^(%d+)"))
  end)
  if not port then
    P.terminate(pid, 1)
    error("python TLS server did not start: " .. (P.read_file(dir .. "/stderr.log") or ""))
  end
  return {
    port = port, pid = pid,
    read_log = function() return P.read_file(log) or "" end,
    stop = function() P.terminate(pid, 2) end,
  }
end

-- Starts `openssl s_server -rev` (answers each line reversed) on a free
-- loopback port; opts.args are further s_server options (e.g.
-- "-no_tls1_3"). Returns {port=, pid=, stop=}.
function M.openssl_server(pki, opts)
  opts = opts or {}
  for _ = 1, 3 do
    local dir = P.tempdir("tls-ossl")
    local port = P.free_port()
    local pid = start(("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s -rev -naccept %d %s")
      :format(port, P.q(opts.cert or pki.server_cert), P.q(opts.key or pki.server_key),
              opts.naccept or 5, opts.args or ""), dir .. "/out.log")
    if P.wait_for(10, function()
      return (P.read_file(dir .. "/out.log") or ""):find("ACCEPT", 1, true) or not P.alive(pid)
    end) and P.alive(pid) then
      return { port = port, pid = pid, stop = function() P.terminate(pid, 2) end }
    end
    P.terminate(pid, 1)
  end
  error("openssl s_server did not start")
end

M.sleep = P.sleep
M.now = P.now

return M
