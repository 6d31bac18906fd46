-- Nodemailer's smtp-server with AUTH XOAUTH2 for the OAuth refresh specs
-- (spec/helpers/node/oauth_server.js, installed by
-- tools/install-node-deps.sh). One child process, tracked by PID, stopped
-- by PID, with a watchdog in case this Lua process dies first.
--
--   local oauth_server = require "helpers.oauth_server"
--   local why = oauth_server.missing()   -- nil, or why it cannot run
--   local h = oauth_server.start{ valid = "token", certs = c }
--   h.host, h.port
--   h:auths() -> { {method=, user=, token=, ok=<bool>}, ... } in order
--   h:messages() -> { {meta=<JSON text>, data=<bytes>}, ... } in order
--   h:stop()
local P = require "helpers.proc"

local M = {}

local NODE_DIR = "spec/helpers/node"

--- nil when node and smtp-server are installed, else the reason.
function M.missing()
  if not P.try("command -v node") then return "node is not installed" end
  if not P.exists(NODE_DIR .. "/node_modules/smtp-server/package.json") then
    return "smtp-server is not installed (run tools/install-node-deps.sh)"
  end
  return nil
end

local Server = {}
Server.__index = Server

function Server:auths()
  local out = {}
  for line in (P.read_file(self.dir .. "/auth.log") or ""):gmatch("[^\n]+") do
    out[#out + 1] = {
      method = line:match('"method":"([^"]*)"'), user = line:match('"user":"([^"]*)"'),
      token = line:match('"token":"([^"]*)"'), ok = line:find('"ok":true', 1, true) ~= nil,
    }
  end
  return out
end

function Server:messages()
  local out = {}
  for i = 1, 100 do
    local meta = P.read_file(self.dir .. "/" .. i .. ".json")
    if not meta then break end
    out[i] = { meta = meta, data = P.read_file(self.dir .. "/" .. i .. ".eml") }
  end
  return out
end

function Server:log()
  return P.read_file(self.dir .. "/log") or ""
end

function Server:stop()
  if self.pid then P.terminate(self.pid, 3) end
  if self.watchdog then P.terminate(self.watchdog, 1) end
  self.pid, self.watchdog = nil, nil
end

--- Starts the server on a free port; raises when it does not listen
-- within 10 s (three ports are tried, in case one is taken meanwhile).
function M.start(opts)
  local c = opts.certs
  for _ = 1, 3 do
    local h = setmetatable({ host = "127.0.0.1", port = P.free_port(), dir = P.tempdir("oauth") }, Server)
    local cmd = ("node %s/oauth_server.js %d %s %s %s %s"):format(NODE_DIR, h.port, P.q(c.server_cert),
      P.q(c.server_key), P.q(h.dir), P.q(opts.valid))
    h.pid = P.spawn(cmd, h.dir .. "/log")
    h.watchdog = P.watchdog("kill " .. h.pid, h.pid)
    local up = P.wait_for(10, function() return P.listening(h.port) or not P.alive(h.pid) end)
    if up and P.alive(h.pid) then return h end
    local log = h:log()
    h:stop()
    if not log:find("EADDRINUSE", 1, true) then error("smtp-server did not start: " .. log) end
  end
  error("smtp-server: no free port after three tries")
end

return M
