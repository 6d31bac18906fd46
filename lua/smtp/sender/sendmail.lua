--- smtp.sender.sendmail{path=, args=, timeout=}: hands each message to
-- the local sendmail program (Postfix's, Exim's, msmtp's ...) with
-- `-i -f <from> -- <recipient>...`. Same send(msg, opts) and report as
-- smtp.pool.
--
-- The program runs without a shell (smtp.core.spawn: execve with an
-- argument list), so no address is ever parsed as a command; `--` ends
-- the options before the recipients. The message goes to its stdin with
-- LF line ends (a local program's convention; -i: a lone "." is text).
-- Its exit status (sysexits.h) decides the error kind.
-- @classmod smtp.sender.Sendmail
local core = require "smtp.core"
local common = require "smtp.sender.common"
local printable = require("smtp.trace").printable

local setmetatable, type, ipairs, pairs, tostring = setmetatable, type, ipairs, pairs, tostring

local Sendmail = {}
Sendmail.__index = Sendmail

local WHO = "smtp.sender.sendmail"
local KEYS = { path = true, args = true, timeout = true }

-- sysexits.h: what each status says about trying again.
local EXITS = {
  [64] = { "usage", "EX_USAGE" },
  [65] = { "permanent", "EX_DATAERR" },
  [66] = { "permanent", "EX_NOINPUT" },
  [67] = { "permanent", "EX_NOUSER" },
  [68] = { "permanent", "EX_NOHOST" },
  [69] = { "transient", "EX_UNAVAILABLE" },
  [70] = { "transient", "EX_SOFTWARE" },
  [71] = { "transient", "EX_OSERR" },
  [72] = { "transient", "EX_OSFILE" },
  [73] = { "transient", "EX_CANTCREAT" },
  [74] = { "transient", "EX_IOERR" },
  [75] = { "transient", "EX_TEMPFAIL" },
  [76] = { "protocol", "EX_PROTOCOL" },
  [77] = { "permanent", "EX_NOPERM" },
  [78] = { "transient", "EX_CONFIG" },
}

-- What the program printed, on one line, bounded.
local function said(output)
  output = output:gsub("%s+$", ""):gsub("[\r\n]+", " ")
  if output == "" then return "" end
  return ": " .. printable(output:sub(1, 300))
end

--- Pipes the message to the program and waits for it. Returns pool:send's
-- report; a failure raises an smtp.Error with `tries` and `report`:
-- kind from the exit status (75 EX_TEMPFAIL and other local trouble:
-- transient; 65, 66, 67, 68, 77: permanent; 64: usage), `status` the
-- exit status; killed by a signal: io; still running at `timeout`:
-- timeout (both with outcome "unknown" when the whole message was
-- written: the program may have queued it).
function Sendmail:send(msg, opts)
  local from, to, next_chunk
  from, to, next_chunk, opts = common.prepare(WHO, msg, opts)
  local argv = { self.path }
  for _, a in ipairs(self.args) do argv[#argv + 1] = a end
  argv[#argv + 1] = "-i"
  argv[#argv + 1] = "-f"
  argv[#argv + 1] = from == "" and "<>" or from
  argv[#argv + 1] = "--"
  for _, r in ipairs(to) do argv[#argv + 1] = r end
  local label = self.label
  local proc, kind, m = core.spawn(argv, self.timeout)
  if not proc then
    common.fail({ kind = kind == "usage" and "usage" or "io", outcome = "not_sent",
      message = WHO .. ": " .. tostring(m) }, label, to)
  end
  local conv, size, last = common.to_lf(), 0, "\n"
  local function put(s)
    if s == "" then return end
    local ok, k, why = proc:write(s)
    if not ok then
      local out = proc:finish().output
      common.fail({ kind = k == "timeout" and "timeout" or "io", outcome = "not_sent",
        message = WHO .. ": " .. tostring(why) .. said(out) }, label, to)
    end
    size, last = size + #s, s
  end
  local ok, err = pcall(function()
    for chunk in next_chunk do put(conv(chunk)) end
    put(conv(nil))
    if last:sub(-1) ~= "\n" then put("\n") end
    -- Closing stdin is the end of data: the outbox marks it in flight first.
    common.progress(opts, size)
  end)
  if not ok then
    proc:kill()
    error(err, 0)
  end
  local r = proc:finish()
  if r.exit == 0 then return common.report(label, to) end
  if r.timeout then
    common.fail({ kind = "timeout", outcome = "unknown",
      message = WHO .. ": " .. self.path .. " still running after " .. self.timeout .. " s" .. said(r.output) },
      label, to)
  elseif r.lost then
    common.fail({ kind = "io", outcome = "unknown",
      message = WHO .. ": the exit status of " .. self.path .. " was taken by another waiter (SIGCHLD ignored?)" },
      label, to)
  elseif r.signal then
    common.fail({ kind = "io", outcome = "unknown", signal = r.signal,
      message = WHO .. ": " .. self.path .. " killed by signal " .. r.signal .. said(r.output) }, label, to)
  end
  local known = EXITS[r.exit]
  common.fail({ kind = known and known[1] or "transient", outcome = "not_sent", status = r.exit,
    message = WHO .. ": " .. self.path .. " exited with status " .. tostring(r.exit)
      .. (known and " (" .. known[2] .. ")" or "") .. said(r.output) }, label, to)
end

--- Nothing to close; there for code written against a pool.
function Sendmail.close(_) end

return function(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then common.usage(WHO, "expects a table of options") end
  for k in pairs(opts) do
    if not KEYS[k] then common.usage(WHO, "unknown option '" .. tostring(k) .. "'") end
  end
  local path = opts.path or "/usr/sbin/sendmail"
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" or path:find("%z") then
    common.usage(WHO, "'path' must be an absolute path")
  end
  local args = {}
  if opts.args ~= nil then
    if type(opts.args) ~= "table" then common.usage(WHO, "'args' must be a list of strings") end
    for i, a in ipairs(opts.args) do
      if type(a) ~= "string" or a:find("%z") then common.usage(WHO, "'args' must be a list of strings") end
      args[i] = a
    end
  end
  local timeout = opts.timeout or 60
  if type(timeout) ~= "number" or timeout ~= timeout or timeout <= 0 or timeout >= 1e6 then
    common.usage(WHO, "'timeout' must be a number of seconds above 0 (below 1e6)")
  end
  return setmetatable({ path = path, args = args, timeout = timeout, label = "sendmail:" .. path }, Sendmail)
end
