-- Starts spec/helpers/tls_cb_peer.py (an SMTP server on pyOpenSSL with a
-- SCRAM(-PLUS) server of its own) on a loopback port for the session
-- resumption and channel binding specs (issue 16), and reads back what it
-- logged. Stopped by PID; a watchdog kills it if the test process dies;
-- it also exits by itself after `time_limit` seconds. Every wait bounded.
--
--   local cb_peer = require "helpers.cb_peer"
--   local s = cb_peer.start(pki, { tls = "starttls", max_version = "1.3",
--     mechs = { "SCRAM-SHA-256-PLUS" }, no_tickets = false, corrupt_cb = false,
--     no_ems = false, hide_plus = false,
--     cert = pki.server_cert, key = pki.server_key, port = nil })
--   (tls: "starttls" | "implicit" | "none"; port: a fixed port, to restart
--   a peer where an old one listened; see tls_cb_peer.py for the rest)
--   s.port; s:events("tls") --> { {n="1", version="TLSv1.3", reused="0", ...}, ... }
--   s:wait_ended(3); s:clear(); s:stop()
local P = require "helpers.proc"

local M = {}

M.PYTHON = "/usr/bin/python3"
local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
if HERE:sub(1, 1) ~= "/" then HERE = P.run("pwd"):gsub("\n$", "") .. "/" .. HERE end
M.SCRIPT = HERE .. "/tls_cb_peer.py"
M.USER, M.PASSWORD = "u", "p"

-- true, or false and why the peer cannot run here.
function M.usable()
  local ok = P.try(M.PYTHON .. " -c 'import OpenSSL.SSL'")
  if ok then return true end
  return false, M.PYTHON .. " has no pyOpenSSL (Debian: python3-openssl; `make deps`)"
end

local Peer = {}
Peer.__index = Peer

function Peer:stop()
  P.terminate(self.pid, 2)
end

-- Empties the log (the peer appends, so later lines start at offset 0):
-- a peer shared by several tests, each reading only its own events.
-- Call only when no connection is in progress.
function Peer:clear()
  P.write_file(self.logfile, "")
end

function Peer:log()
  return P.read_file(self.logfile) or ""
end

-- Log lines starting with `kind` ("conn", "tls", "auth", "cmd", "end"),
-- each as a table of its key=value fields; a "cmd" line's verb is `verb`.
function Peer:events(kind)
  local out = {}
  for line in self:log():gmatch("[^\n]+") do
    local k, rest = line:match("^(%S+) ?(.*)$")
    if k == kind then
      local t = {}
      for word in rest:gmatch("%S+") do
        local key, value = word:match("^([^=]+)=(.*)$")
        if key then t[key] = value else t.verb = word end
      end
      out[#out + 1] = t
    end
  end
  return out
end

-- Waits (at most 10 s) until `n` connections have ended on the server
-- side; returns true, or false and the log.
function Peer:wait_ended(n)
  local ok = P.wait_for(10, function() return #self:events("end") >= n end)
  if ok then return true end
  return false, self:log()
end

-- The values of `field` in the events of `kind`, in order.
function Peer:column(kind, field)
  local out = {}
  for i, e in ipairs(self:events(kind)) do out[i] = e[field] end
  return out
end

function M.start(pki, opts)
  opts = opts or {}
  local dir = P.tempdir("cb-peer")
  local logfile, portfile = dir .. "/events.log", dir .. "/port"
  local mechs = opts.mechs or { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1" }
  local args = {
    M.PYTHON, M.SCRIPT, "--cert", opts.cert or pki.server_cert, "--key", opts.key or pki.server_key,
    "--log", logfile, "--port-file", portfile, "--tls", opts.tls or "starttls",
    "--max-version", opts.max_version or "1.3", "--mechs", table.concat(mechs, " "),
    "--user", opts.user or M.USER, "--password", opts.password or M.PASSWORD,
    "--time-limit", tostring(opts.time_limit or 60),
  }
  if opts.port then
    args[#args + 1] = "--port"
    args[#args + 1] = tostring(opts.port)
  end
  if opts.tickets_first_only then args[#args + 1] = "--tickets-first-only" end
  if opts.no_tickets then args[#args + 1] = "--no-tickets" end
  if opts.corrupt_cb then args[#args + 1] = "--corrupt-cb" end
  if opts.no_ems then args[#args + 1] = "--no-ems" end
  if opts.hide_plus then args[#args + 1] = "--hide-plus" end
  for i, a in ipairs(args) do args[i] = P.q(a) end
  local pid = P.spawn(table.concat(args, " "), dir .. "/stderr.log")
  P.watchdog("kill -9 " .. pid .. " 2>/dev/null", pid)
  local port = P.wait_for(15, function()
    return tonumber((P.read_file(portfile) or ""):match("^(%d+)\n"))
  end)
  if not port then
    P.terminate(pid, 1)
    error("tls_cb_peer.py did not start: " .. (P.read_file(dir .. "/stderr.log") or ""))
  end
  return setmetatable({ port = port, pid = pid, dir = dir, logfile = logfile }, Peer)
end

return M
