-- A private Dovecot LMTP server (RFC 2033) for the LMTP specs: listens on
-- a UNIX socket and on a loopback TCP port and delivers to one Maildir per
-- user; unknown users are refused. Started and stopped by PID.
--
--   local lmtp = require "helpers.lmtp"
--   local h = lmtp.start { users = { "alice", "bob" } }
--   h.socket, h.host, h.port, h:messages(user) -> { raw, ... }, h:stop()
local P = require "helpers.proc"

local M = {}

local CONF = [[
# Private Dovecot LMTP for lua-smtp's tests (spec/helpers/lmtp.lua).
protocols = lmtp
base_dir = @DIR@/run
state_dir = @DIR@/state
instance_name = lua-smtp-lmtp-@N@
log_path = @DIR@/dovecot.log
info_log_path = @DIR@/dovecot.log
ssl = no
mail_location = maildir:~/Maildir
lmtp_save_to_detail_mailbox = no
recipient_delimiter =
passdb {
  driver = passwd-file
  args = @DIR@/users
}
userdb {
  driver = passwd-file
  args = @DIR@/users
}
service lmtp {
  unix_listener @DIR@/lmtp {
    mode = 0666
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = @PORT@
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
]]

local Server = {}
Server.__index = Server

function M.start(opts)
  opts = opts or {}
  local dir = P.tempdir("lmtp")
  local users = opts.users or { "alice", "bob" }
  local lines = {}
  for _, u in ipairs(users) do
    -- user:password:uid:gid:gecos:home:shell — mail is stored as nobody.
    lines[#lines + 1] = ("%s::65534:65534::%s/home/%s::\n"):format(u, dir, u)
    P.run(("mkdir -p %s && chown 65534:65534 %s"):format(P.q(dir .. "/home/" .. u), P.q(dir .. "/home/" .. u)))
  end
  P.write_file(dir .. "/users", table.concat(lines), "0644")
  local port = P.free_port()
  local conf = CONF:gsub("@(%u+)@", { DIR = dir, PORT = tostring(port),
    N = (dir:match("(%d+)$") or "0") .. "-" .. P.lua_pid() })
  P.write_file(dir .. "/dovecot.conf", conf, "0644")
  local h = setmetatable({ dir = dir, host = "127.0.0.1", port = port, socket = dir .. "/lmtp",
    users = users }, Server)
  h.pid = P.spawn("/usr/sbin/dovecot -F -c " .. P.q(dir .. "/dovecot.conf"), dir .. "/stdout")
  h.watchdog = P.watchdog("kill " .. h.pid, h.pid)
  local up = P.wait_for(10, function()
    return (P.unix_listening(h.socket) and P.listening(port)) or not P.alive(h.pid)
  end)
  if not (up and P.alive(h.pid)) then
    local log = (P.read_file(dir .. "/dovecot.log") or "") .. (P.read_file(dir .. "/stdout") or "")
    h:stop()
    error("dovecot lmtp did not start:\n" .. log, 2)
  end
  return h
end

-- Delivered messages of one user, oldest first (Maildir new/ and cur/).
function Server:messages(user)
  local out = {}
  local list = P.run(("ls -tr %s/home/%s/Maildir/new %s/home/%s/Maildir/cur 2>/dev/null | grep -v ':$' || true")
    :format(P.q(self.dir), user, P.q(self.dir), user))
  for name in list:gmatch("[^\n]+") do
    local raw = P.read_file(("%s/home/%s/Maildir/new/%s"):format(self.dir, user, name))
      or P.read_file(("%s/home/%s/Maildir/cur/%s"):format(self.dir, user, name))
    if raw then out[#out + 1] = raw end
  end
  return out
end

function Server:log()
  return P.read_file(self.dir .. "/dovecot.log") or ""
end

function Server:stop()
  if self.pid then
    P.terminate(self.pid, 3)
    self.pid = nil
  end
end

return M
