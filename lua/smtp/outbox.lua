--- smtp.outbox: a durable spool of messages on disk (issue 15).
--
--   local outbox = smtp.outbox(dir, { retry = {...}, on_unknown = fn })
--   local id = outbox:put(msg, opts)      -- durable when it returns
--   local stats = outbox:run(sender, { max_seconds=, max_messages=, idle_exit= })
--
-- Layout: dir/tmp, dir/queue, dir/sent, dir/failed, dir/hold. One file per
-- message: a header of "key value" lines (values %XX-escaped, so a value
-- never holds a space or a line end) ended by an empty line, then the
-- message bytes exactly as they go to sendmail. A file is written whole in
-- tmp/, fsynced, renamed into place and its directory fsynced: a file in
-- queue/ is always complete. A file that does not parse strictly goes to
-- failed/ (entry() reports why); nothing in a file can make run() crash.
--
-- Workers: run() takes an exclusive non-blocking flock on queue/<id>
-- (another worker holds it: skip). A state change writes a new file and
-- locks it *before* renaming it over queue/<id>, and smtp.core.fs_lock
-- checks that the path still names the inode it locked: so at every
-- moment at most one process holds the lock on what queue/<id> names, and
-- several workers may drain one outbox without sending a message twice.
--
-- Crash safety (kill -9 at any moment). Just before the write that
-- carries the end of data (the sendmail `progress` callback once sent ==
-- total; DATA's "." and BDAT LAST both go out in that last write) the
-- file is rewritten with state=inflight and fsynced. Then:
--  * killed before the marker: the message was not complete on the wire
--    (the server discards it); the file still says queued and the next
--    worker sends it again.
--  * killed after the marker, before the reply was recorded: the server
--    may or may not have it. A worker that finds state=inflight with the
--    lock free (its owner died: flock dies with the process) never resends
--    blindly: it calls on_unknown(entry) -> "resend" (send again),
--    "delivered" (move to sent/) or "hold" (move to hold/, the default
--    without a hook, for an operator). The same happens when a live
--    worker gets an error whose outcome is "unknown".
--  * killed after the reply, while moving the file to sent/ (or failed/):
--    the new copy is complete before the queue copy is removed; a queue
--    file whose id is already in sent/, failed/ or hold/ is a stale copy
--    and is removed, not sent.
-- Trust (issue 23): the spool is only as safe as its directory. open()
-- refuses a directory (or subdirectory) that is a symlink, is not the
-- caller's, or that group or others may write, and a parent that another
-- user could rename it out of, unless `shared = true` says the sharing is
-- intended. run() takes only regular files of ours from queue/ (lstat
-- first, then O_NOFOLLOW | O_NONBLOCK and fstat, read through the locked
-- descriptor, never beyond the file's size); anything else there (a FIFO,
-- a device or a symlink to one, a directory, another user's file) is
-- moved to bad/ unopened, so one odd entry cannot hang, exhaust or stop
-- the queue. Each message carries a random token: a queue copy is stale
-- only when sent/, failed/ or hold/ holds a regular file of ours that
-- parses with the same id and token; any other file there holds the
-- queue copy instead (never a deletion). put() publishes without
-- replacing (renameat2 RENAME_NOREPLACE, or link + unlink), and the
-- random part of an id comes from the entropy source.
-- Files left in tmp/ by a killed writer are copies of something still in
-- queue/ (or of a put() that never returned an id): never needed again;
-- run() removes those of rewrites (see _sweep_tmp), and any regular file
-- there older than an hour, whoever wrote it (issue 25).
-- The sender must pass opts.progress to sendmail (a plain client and
-- smtp.pool do); a sender that ignores it loses the "unknown" detection.
-- A sender that retries inside one send (smtp.pool) leaves the marker set
-- after its first try's end of data: a crash during a later try is then
-- reported as unknown too (asked, never resent blindly).
-- @module smtp.outbox
local core = require "smtp.core"
local Error = require "smtp.error"
local envelope = require "smtp.envelope"
local loops = require "smtp.loop"
local retry_policy = require "smtp.retry"

local type, pairs, ipairs, tostring, tonumber, pcall, error = type, pairs, ipairs, tostring, tonumber, pcall, error
local setmetatable = setmetatable
local concat, sort = table.concat, table.sort
local format, byte, char = string.format, string.byte, string.char
local floor, min, max = math.floor, math.min, math.max

local M = {}

local Outbox = {}
Outbox.__index = Outbox

local MAGIC = "lua-smtp-outbox 1"
local SUBDIRS = { "tmp", "queue", "sent", "failed", "hold", "bad" }
local FINAL = { "sent", "failed", "hold" }
local LISTABLE = { queue = true, sent = true, failed = true, hold = true }
local FILE_STATES = { queued = true, inflight = true, sent = true, failed = true, hold = true }
-- The sendmail options a file can carry (dkim is applied by put()).
local STORED_OPTS = {
  ["dsn.notify"] = true, ["dsn.ret"] = true, ["dsn.envid"] = true, ["dsn.orcpt"] = true,
  requiretls = true, chunking = true, all_or_nothing = true,
}
local PUT_OPTS = { from = true, to = true, dsn = true, requiretls = true, chunking = true,
  all_or_nothing = true, dkim = true }
local DECISIONS = { resend = true, delivered = true, hold = true }
local DEFAULT_RETRY = { limit = 5, base = 60, factor = 2, max_delay = 3600, jitter = 0.2 }
local MAX_SECONDS = 1e9
local POLL = 1

local function usage(msg)
  error(Error.new { kind = "usage", message = msg }, 0)
end

-- A C helper's nil, kind, message as a raised smtp.Error.
local function must(ok, kind, msg)
  if ok == nil then
    error(Error.new { kind = (kind == "usage") and "usage" or "io", message = tostring(msg or kind) }, 0)
  end
  return ok
end

-- A spool file's bytes, read safely (core.fs_read_file: regular files
-- only, no symlink followed, never blocking, bounded); nil when absent
-- or not a file we may trust.
local MAX_FILE = 2 ^ 40
local function read_file(path, any_owner)
  local data = core.fs_read_file(path, MAX_FILE, any_owner)
  return data
end

-- Whether the name exists, whatever it is (never opened).
local function exists(path)
  return core.fs_lstat(path) ~= nil
end

-- Escaping ---------------------------------------------------------------

-- Every byte outside '!'..'~', and '%' itself, as %XX.
local function escape(s)
  return (s:gsub("[^!-$&-~]", function(c) return format("%%%02X", byte(c)) end))
end

-- Strict: raw bytes only from '!'..'~', every '%' followed by two hex digits.
local function unescape(v)
  if v:find("[^!-~]") then return nil end
  if v:gsub("%%%x%x", ""):find("%", 1, true) then return nil end
  return (v:gsub("%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

local function num(x)
  return format("%.3f", x)
end

local function parse_num(v)
  if #v > 24 or not v:match("^%d+%.?%d*$") then return nil end
  return tonumber(v)
end

local function parse_int(v)
  if #v > 15 or not v:match("^%d+$") then return nil end
  return tonumber(v)
end

local function valid_id(id)
  return type(id) == "string" and #id <= 80 and id:match("^[%w][%w%-]*$") ~= nil
end

-- File format ------------------------------------------------------------

local function serialise(e, body)
  local lines = { MAGIC, "id " .. e.id, "state " .. e.state, "tries " .. e.tries,
    "next_try " .. num(e.next_try), "created " .. num(e.created), "from " .. escape(e.from) }
  if e.token then lines[#lines + 1] = "token " .. e.token end
  for _, r in ipairs(e.to) do lines[#lines + 1] = "to " .. escape(r) end
  for _, r in ipairs(e.accepted) do lines[#lines + 1] = "accepted " .. escape(r) end
  for _, r in ipairs(e.rejected) do
    lines[#lines + 1] = "rejected " .. escape(r.recipient) .. " " .. escape(r.reason)
  end
  if e.reason then lines[#lines + 1] = "reason " .. escape(e.reason) end
  local keys = {}
  for k in pairs(e.opts) do keys[#keys + 1] = k end
  sort(keys)
  for _, k in ipairs(keys) do lines[#lines + 1] = "opt." .. k .. " " .. escape(e.opts[k]) end
  lines[#lines + 1] = "size " .. #body
  return concat(lines, "\n") .. "\n\n" .. body
end

local SINGLE = { id = true, state = true, tries = true, next_try = true, created = true,
  from = true, reason = true, size = true, token = true }
-- Keys a file may lack: reason, and token (files written before it).
local OPTIONAL = { reason = true, token = true }

-- Parses one file; returns the entry and the message bytes, or nil and
-- why the file is malformed.
local function parse(name, data)
  local hend = data:find("\n\n", 1, true)
  if not hend then return nil, "no end of header" end
  local body = data:sub(hend + 2)
  local e = { to = {}, accepted = {}, rejected = {}, opts = {} }
  local seen, lineno = {}, 0
  for line in (data:sub(1, hend - 1) .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    if lineno == 1 then
      if line ~= MAGIC then return nil, "not an outbox file (first line)" end
    else
      local key, value = line:match("^([%w_%.]+) (.*)$")
      if not key then return nil, "line " .. lineno .. " is not 'key value'" end
      if SINGLE[key] then
        if seen[key] then return nil, "'" .. key .. "' given twice" end
        seen[key] = true
      end
      local bad = "bad value for '" .. key .. "' on line " .. lineno
      if key == "id" then
        if value ~= name or not valid_id(value) then return nil, "id does not match the file name" end
        e.id = value
      elseif key == "state" then
        if not FILE_STATES[value] then return nil, bad end
        e.state = value
      elseif key == "tries" or key == "size" then
        e[key] = parse_int(value)
        if not e[key] then return nil, bad end
      elseif key == "next_try" or key == "created" then
        e[key] = parse_num(value)
        if not e[key] then return nil, bad end
      elseif key == "token" then
        if not value:match("^%x+$") or #value > 64 then return nil, bad end
        e.token = value
      elseif key == "from" or key == "reason" then
        e[key] = unescape(value)
        if not e[key] then return nil, bad end
      elseif key == "to" or key == "accepted" then
        local v = unescape(value)
        if not v or v == "" then return nil, bad end
        e[key][#e[key] + 1] = v
      elseif key == "rejected" then
        local r, why = value:match("^(%S+) (%S*)$")
        r, why = r and unescape(r), why and unescape(why)
        if not r or not why or r == "" then return nil, bad end
        e.rejected[#e.rejected + 1] = { recipient = r, reason = why }
      elseif key:sub(1, 4) == "opt." and STORED_OPTS[key:sub(5)] then
        local k = key:sub(5)
        if e.opts[k] then return nil, "'" .. key .. "' given twice" end
        e.opts[k] = unescape(value)
        if not e.opts[k] then return nil, bad end
      else
        return nil, "unknown key '" .. key .. "' on line " .. lineno
      end
    end
  end
  for k in pairs(SINGLE) do
    if not OPTIONAL[k] and e[k] == nil then return nil, "'" .. k .. "' missing" end
  end
  if #e.to == 0 then return nil, "no recipient" end
  if #body ~= e.size then
    return nil, ("message is %d bytes, header says %d"):format(#body, e.size)
  end
  return e, body
end

-- The Message-ID of the stored bytes, for on_unknown hooks (an operator
-- looks it up in the relay's log).
local function message_id(body)
  local head = body:sub(1, 65536)
  local stop = head:find("\r?\n\r?\n")
  if stop then head = head:sub(1, stop) end
  local at = ("\n" .. head:lower()):find("\nmessage%-id:")
  if not at then return nil end
  return head:sub(at + #"message-id:"):match("^[ \t]*([^\r\n]*)")
end

local function copy(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v end
  return out
end

-- The entry as callers see it.
local function public(e, dir_state, body)
  local rejected = {}
  for i, r in ipairs(e.rejected) do rejected[i] = { recipient = r.recipient, reason = r.reason } end
  local options = {}
  for k, v in pairs(e.opts) do options[k] = v end
  return {
    id = e.id, state = dir_state, inflight = e.state == "inflight" or nil,
    tries = e.tries, next_try = e.next_try, created = e.created, reason = e.reason,
    accepted = copy(e.accepted), rejected = rejected,
    envelope = { from = e.from, to = copy(e.to) }, options = options,
    size = e.size, message_id = body and message_id(body) or nil,
  }
end

-- Backoff ----------------------------------------------------------------

--- Seconds to wait after the `tries`-th failed attempt (smtp.retry.delay).
M.delay = retry_policy.delay

local function check_number(v, what, low, high, integer)
  if type(v) ~= "number" or v ~= v or v < low or v > high or (integer and v % 1 ~= 0) then
    usage(("smtp.outbox: %s must be a%s number from %s to %s"):format(what,
      integer and "n integer" or "", tostring(low), tostring(high)))
  end
  return v
end

local function check_retry(r)
  if r == nil then r = {} end
  if type(r) ~= "table" then usage("smtp.outbox: 'retry' must be a table") end
  local out = {}
  for k, v in pairs(r) do
    if DEFAULT_RETRY[k] == nil then usage("smtp.outbox: unknown retry option '" .. tostring(k) .. "'") end
    out[k] = v
  end
  for k, v in pairs(DEFAULT_RETRY) do if out[k] == nil then out[k] = v end end
  check_number(out.limit, "retry.limit", 1, 1e6, true)
  check_number(out.base, "retry.base", 0, MAX_SECONDS)
  check_number(out.factor, "retry.factor", 1, 1e3)
  check_number(out.max_delay, "retry.max_delay", 0, MAX_SECONDS)
  check_number(out.jitter, "retry.jitter", 0, 1)
  return out
end

-- Opening ----------------------------------------------------------------

-- Permission bits (octal 020, 002, 01000), tested without 5.3's operators.
local GROUP_WRITE, OTHER_WRITE, STICKY = 16, 2, 512
local function has_bit(mode, bit) return floor(mode / bit) % 2 == 1 end

-- Directory trust (review N3). A spool directory must be a real
-- directory (not a symlink), the caller's, and writable by nobody else;
-- `shared` accepts group/other write and another owner on purpose.
local function check_dir(path, shared)
  local st = core.fs_lstat(path)
  if not st then usage("smtp.outbox: cannot look at " .. path) end
  if st.type ~= "directory" then
    usage("smtp.outbox: " .. path .. " is a " .. (st.type == "link" and "symbolic link" or st.type)
      .. ", not a directory of its own")
  end
  if shared then return end
  if not st.mine then
    usage("smtp.outbox: " .. path .. " belongs to another user (uid " .. st.uid
      .. "); give shared = true if the sharing is intended")
  end
  if has_bit(st.mode, GROUP_WRITE) or has_bit(st.mode, OTHER_WRITE) then
    usage(("smtp.outbox: %s is writable by group or others (mode %o); chmod go-w it, or give shared = true")
      :format(path, st.mode))
  end
end

-- The parent must not let another user rename the spool away and put
-- their own in its place: owned by the caller or root, and writable by
-- others only with the sticky bit (as /tmp).
local function check_parent(dir, shared)
  if shared then return end
  local parent = dir:match("^(.*)/[^/]+$")
  if parent == nil then parent = "." elseif parent == "" then parent = "/" end
  local st = core.fs_lstat(parent)
  if not st then return end -- fs_mkdir reports a missing parent
  if st.type == "link" then
    local target = core.fs_lstat(parent .. "/.")
    if target then st = target end
  end
  local others_write = has_bit(st.mode, GROUP_WRITE) or has_bit(st.mode, OTHER_WRITE)
  local sticky = has_bit(st.mode, STICKY)
  if (not st.mine and st.uid ~= 0) or (others_write and not sticky) then
    usage(("smtp.outbox: the parent directory %s lets another user replace %s (owner uid %d, mode %o); "
      .. "give shared = true if the sharing is intended"):format(parent, dir, st.uid, st.mode))
  end
end

--- Opens (creating when needed) the outbox in `dir`.
-- @tparam string dir its parent directory must exist
-- @tparam[opt] table opts `retry = {limit=5, base=60, factor=2,
-- max_delay=3600, jitter=0.2}`, `on_unknown = function(entry) return
-- "resend" | "delivered" | "hold" end`, `clock` (wall-clock seconds;
-- default core.wall_time, for tests)
function M.open(dir, opts)
  if type(dir) ~= "string" or dir == "" or dir:find("%z") then
    usage("smtp.outbox: 'dir' must be a directory path")
  end
  opts = opts or {}
  if type(opts) ~= "table" then usage("smtp.outbox: options must be a table") end
  for k in pairs(opts) do
    if k ~= "retry" and k ~= "on_unknown" and k ~= "clock" and k ~= "shared" then
      usage("smtp.outbox: unknown option '" .. tostring(k) .. "'")
    end
  end
  if opts.on_unknown ~= nil and type(opts.on_unknown) ~= "function" then
    usage("smtp.outbox: 'on_unknown' must be a function")
  end
  if opts.clock ~= nil and type(opts.clock) ~= "function" then usage("smtp.outbox: 'clock' must be a function") end
  if opts.shared ~= nil and type(opts.shared) ~= "boolean" then usage("smtp.outbox: 'shared' must be a boolean") end
  dir = dir:gsub("(.)/+$", "%1")
  local shared = opts.shared == true
  check_parent(dir, shared)
  must(core.fs_mkdir(dir))
  check_dir(dir, shared)
  for _, sub in ipairs(SUBDIRS) do
    must(core.fs_mkdir(dir .. "/" .. sub))
    check_dir(dir .. "/" .. sub, shared)
  end
  return setmetatable({
    dir = dir, retry = check_retry(opts.retry), on_unknown = opts.on_unknown,
    clock = opts.clock or core.wall_time, seq = 0, shared = shared,
  }, Outbox)
end

function Outbox:__tostring()
  return "smtp.outbox(" .. self.dir .. ")"
end

function Outbox:_path(sub, id)
  return self.dir .. "/" .. sub .. "/" .. id
end

function Outbox:_tmpname(id)
  self.seq = self.seq + 1
  return self:_path("tmp", ("%s.%d.%d"):format(id, core.getpid(), self.seq))
end

function Outbox:_new_id()
  self.seq = self.seq + 1
  -- Sortable by creation time (milliseconds); pid, counter and 32 bits
  -- from the entropy source keep writers apart (math.random is unseeded
  -- under 5.1/LuaJIT and containers repeat pids). Publishing never
  -- replaces a file, so even a repeat cannot lose a message.
  return ("%013.0f-%d-%d-%s"):format(floor(core.wall_time() * 1000), core.getpid(), self.seq,
    must(core.random_hex(4)))
end

-- put ---------------------------------------------------------------------

local function store_opts(opts)
  local out = {}
  local dsn = opts.dsn
  if dsn ~= nil then
    if type(dsn) ~= "table" then usage("outbox:put: 'dsn' must be a table") end
    for k, v in pairs(dsn) do
      if k == "notify" then
        if type(v) == "table" then
          for _, n in ipairs(v) do
            if type(n) ~= "string" then usage("outbox:put: dsn.notify must be a string or a list of strings") end
          end
          v = concat(v, ",")
        end
        if type(v) ~= "string" then usage("outbox:put: dsn.notify must be a string or a list of strings") end
        out["dsn.notify"] = v
      elseif k == "ret" or k == "envid" then
        if type(v) ~= "string" then usage("outbox:put: dsn." .. k .. " must be a string") end
        out["dsn." .. k] = v
      elseif k == "orcpt" then
        if type(v) ~= "boolean" then usage("outbox:put: dsn.orcpt must be a boolean") end
        out["dsn.orcpt"] = v and "1" or "0"
      else
        usage("outbox:put: unknown dsn option '" .. tostring(k) .. "'")
      end
    end
  end
  for _, k in ipairs({ "requiretls", "chunking", "all_or_nothing" }) do
    local v = opts[k]
    if v ~= nil then
      if type(v) ~= "boolean" then usage("outbox:put: '" .. k .. "' must be a boolean") end
      out[k] = v and "1" or "0"
    end
  end
  return out
end

-- Stored options back to sendmail options.
local function send_opts(stored)
  local o, dsn = {}, nil
  for k, v in pairs(stored) do
    local d = k:match("^dsn%.(.*)$")
    if d then
      dsn = dsn or {}
      if d == "orcpt" then dsn.orcpt = v == "1" else dsn[d] = v end
    else
      o[k] = v == "1"
    end
  end
  o.dsn = dsn
  return o
end

--- Queues a message durably: when put returns, the message survives a
-- crash. The envelope is resolved now (as sendmail would), Bcc is
-- removed and DKIM signing (opts.dkim) is applied to the stored bytes.
-- @param msg an smtp.message, or a raw message (string, file, source)
-- @tparam[opt] table opts `from`, `to`, `dsn`, `requiretls`, `chunking`,
-- `all_or_nothing`, `dkim`
-- @treturn string the id
function Outbox:put(msg, opts)
  opts = opts or {}
  if type(opts) ~= "table" then usage("outbox:put: options must be a table") end
  for k in pairs(opts) do
    if not PUT_OPTS[k] then usage("outbox:put: option '" .. tostring(k) .. "' cannot be stored") end
  end
  local stored = store_opts(opts)
  local env = envelope.prepare(msg, opts)
  local parts = {}
  while true do
    local chunk, err = env.source()
    if chunk == nil then
      if err ~= nil then
        error(Error.new { kind = "io", message = "message source failed: " .. tostring(err) }, 0)
      end
      break
    end
    parts[#parts + 1] = chunk
  end
  local body = concat(parts)
  local now = self.clock()
  local e = { state = "queued", tries = 0, next_try = now, created = now, token = must(core.random_hex(8)),
    from = env.from, to = copy(env.recipients), accepted = {}, rejected = {}, opts = stored }
  for _ = 1, 8 do
    e.id = self:_new_id()
    local tmp = self:_path("tmp", e.id)
    must(core.fs_write_file(tmp, serialise(e, body)))
    local ok, kind, m = core.fs_publish(tmp, self:_path("queue", e.id))
    if ok then
      must(core.fs_sync_dir(self.dir .. "/queue"))
      return e.id
    end
    os.remove(tmp)
    if kind ~= "exists" then must(ok, kind, m) end
    -- Another writer drew the same id: draw again, never replace.
  end
  error(Error.new { kind = "io", message = "outbox:put: no free id after 8 draws" }, 0)
end

-- list / entry -------------------------------------------------------------

--- Ids in one state: "queue" (default), "sent", "failed" or "hold".
function Outbox:list(state)
  state = state or "queue"
  if not LISTABLE[state] then usage("outbox:list: state must be \"queue\", \"sent\", \"failed\" or \"hold\"") end
  local names = must(core.fs_list(self.dir .. "/" .. state))
  sort(names)
  return names
end

--- One message's record, or nil when the id is unknown:
-- `{id=, state=, inflight=, tries=, next_try=, created=, reason=,
-- accepted={...}, rejected={{recipient=, reason=}}, envelope={from=,
-- to={...}}, options=, size=, message_id=}`. state is the directory
-- ("queue", "sent", "failed", "hold"); a malformed file gives only id,
-- state and reason.
function Outbox:entry(id)
  if not valid_id(id) then return nil end
  for _, state in ipairs({ "queue", "sent", "failed", "hold" }) do
    local data = read_file(self:_path(state, id), self.shared)
    if data then
      local e, body = parse(id, data)
      if not e then return { id = id, state = state, reason = "malformed outbox file: " .. body } end
      return public(e, state, body)
    end
  end
  return nil
end

-- run -----------------------------------------------------------------------

-- Writes e over queue/<id>, the new file locked before it is visible;
-- the holder's lock moves to it.
function Outbox:_rewrite(e, body, holder)
  local tmp = self:_tmpname(e.id)
  must(core.fs_write_file(tmp, serialise(e, body)))
  local lock, kind, msg = core.fs_lock(tmp)
  if not lock then
    os.remove(tmp)
    must(nil, kind, msg)
  end
  local ok
  ok, kind, msg = core.fs_rename(tmp, self:_path("queue", e.id))
  if not ok then
    lock:unlock()
    os.remove(tmp)
    must(nil, kind, msg)
  end
  holder.lock:unlock()
  holder.lock = lock
  must(core.fs_sync_dir(self.dir .. "/queue"))
end

-- Moves the entry to sent/, failed/ or hold/ with its final record. The
-- copy there is complete before the queue copy goes.
function Outbox:_finish(e, body, dest, reason)
  e.state, e.reason = dest, reason
  local tmp = self:_tmpname(e.id)
  must(core.fs_write_file(tmp, serialise(e, body)))
  local ok, kind, msg = core.fs_rename(tmp, self:_path(dest, e.id))
  if not ok then
    os.remove(tmp)
    must(nil, kind, msg)
  end
  must(core.fs_sync_dir(self.dir .. "/" .. dest))
  -- No fsync of queue/ after this: a removal lost in a crash brings back
  -- a stale copy, which _handle recognises by the final one and removes.
  os.remove(self:_path("queue", e.id))
end

-- A malformed file goes to failed/ as it is; entry() re-parses it to say why.
function Outbox:_reject_file(name)
  must(core.fs_rename(self:_path("queue", name), self:_path("failed", name)))
  must(core.fs_sync_dir(self.dir .. "/failed"))
  must(core.fs_sync_dir(self.dir .. "/queue"))
end

-- What to do with a message whose delivery is unknown.
function Outbox:_decide(e, body)
  if not self.on_unknown then return "hold", "no on_unknown hook" end
  local ok, d = pcall(self.on_unknown, public(e, "queue", body))
  if ok and DECISIONS[d] then return d, "on_unknown: " .. d end
  if not ok then return "hold", "on_unknown failed: " .. tostring(d) end
  return "hold", "on_unknown returned " .. tostring(d)
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- Recipients still to be tried.
local function remaining(e)
  local done = set_of(e.accepted)
  for _, r in ipairs(e.rejected) do done[r.recipient] = true end
  local left = {}
  for _, r in ipairs(e.to) do
    if not done[r] then left[#left + 1] = r end
  end
  return left
end

local function add_accepted(e, list)
  local have = set_of(e.accepted)
  for _, r in ipairs(list or {}) do
    if not have[r] then
      e.accepted[#e.accepted + 1] = r
      have[r] = true
    end
  end
end

-- Per-recipient refusals: permanent ones are recorded (never retried),
-- transient ones stay for the next try. Returns the first transient
-- reason, if any.
local function add_refusals(e, rejected)
  local transient
  for _, r in ipairs(rejected or {}) do
    local err = r.error
    local why = tostring(err)
    if retry_policy.final(err) then
      e.rejected[#e.rejected + 1] = { recipient = r.recipient, reason = why }
    else
      transient = transient or why
    end
  end
  return transient
end

-- Recipients an error's report shows as delivered. A plain client's
-- report on a refused DATA lists the recipients RCPT accepted, who did not
-- get the message; only an LMTP report cut short (report.unknown) and
-- smtp.pool's merged report (err.tries: deliveries of its earlier tries)
-- list deliveries.
local function confirmed(err)
  if not Error.is(err) or type(err.report) ~= "table" then return nil end
  if err.report.unknown ~= nil or err.tries ~= nil then return err.report.accepted end
  return nil
end

local DEFAULT_UNKNOWN = "outcome unknown: the end of data was sent but the reply was not recorded"

function Outbox:_defer(e, body, holder, stats, reason)
  e.reason = reason
  if e.tries >= self.retry.limit then
    self:_finish(e, body, "failed", ("gave up after %d tries: %s"):format(e.tries, reason))
    stats.failed = stats.failed + 1
    return "done"
  end
  e.state = "queued"
  e.next_try = self.clock() + M.delay(self.retry, e.tries)
  self:_rewrite(e, body, holder)
  stats.deferred = stats.deferred + 1
  return "done"
end

-- Applies an unknown outcome's decision.
function Outbox:_unknown(e, body, stats, why)
  stats.unknown = stats.unknown + 1
  local decision, note = self:_decide(e, body)
  if decision == "delivered" then
    add_accepted(e, remaining(e))
    self:_finish(e, body, "sent", why .. "; " .. note)
    stats.delivered = stats.delivered + 1
    return "done"
  elseif decision == "hold" then
    self:_finish(e, body, "hold", why .. "; " .. note)
    return "done"
  end
  return "resend", note
end

-- One attempt: sends to the remaining recipients and records the result.
function Outbox:_attempt(e, body, holder, sender, stats)
  local left = remaining(e)
  if #left == 0 then
    self:_finish(e, body, "sent")
    stats.delivered = stats.delivered + 1
    return "done"
  end
  local opts = send_opts(e.opts)
  opts.from, opts.to = e.from, left
  local marked, mark_failed = false, nil
  opts.progress = function(sent, total)
    if not marked and total and sent >= total then
      local ok, err = pcall(function()
        e.state = "inflight"
        self:_rewrite(e, body, holder)
      end)
      if not ok then
        -- Without the marker the terminator must not go out: failing here
        -- makes sendmail drop the connection before it.
        mark_failed = tostring(err)
        error(mark_failed, 0)
      end
      marked = true
    end
  end
  local ok, res = pcall(sender.send, sender, body, opts)
  e.tries = e.tries + 1
  local ev = self._ev
  if ev then
    -- What the events of this attempt say about it (see _process).
    local rep = ok and res or (Error.is(res) and res.report)
    ev.tries = e.tries
    ev.server = type(rep) == "table" and (rep.server or (rep.servers and rep.servers[#rep.servers])) or nil
    ev.code = ok and type(res) == "table" and res.reply and res.reply.code or (not ok and Error.is(res) and res.code)
      or nil
  end
  if mark_failed then
    return self:_defer(e, body, holder, stats, "could not record the in-flight marker: " .. mark_failed)
  end
  if ok then
    -- No error raised means accepted; a sender without a report cannot
    -- have the message sent again.
    if type(res) ~= "table" then res = { accepted = left } end
    add_accepted(e, res.accepted)
    local transient = add_refusals(e, res.rejected)
    if #remaining(e) == 0 then
      if #e.accepted == 0 then
        self:_finish(e, body, "failed", "every recipient was refused")
        stats.failed = stats.failed + 1
      else
        self:_finish(e, body, "sent", #e.rejected > 0 and "some recipients were refused" or nil)
        stats.delivered = stats.delivered + 1
      end
      return "done"
    end
    return self:_defer(e, body, holder, stats, transient or "recipients left")
  end
  local err = res
  local is_err = Error.is(err)
  local why = is_err and tostring(err) or ("sender failed: " .. tostring(err))
  local outcome = is_err and err.outcome or nil
  add_accepted(e, confirmed(err))
  if retry_policy.unknown(err) or (marked and outcome == nil) then
    local r, note = self:_unknown(e, body, stats, DEFAULT_UNKNOWN .. " (" .. why .. ")")
    if r == "done" then return r end
    return self:_defer(e, body, holder, stats, why .. "; " .. note)
  end
  if is_err and err.recipient ~= nil and type(err.report) == "table" and not opts.all_or_nothing then
    -- Every recipient was refused: each refusal decides for its recipient.
    local transient = add_refusals(e, err.report.rejected)
    if #remaining(e) > 0 then return self:_defer(e, body, holder, stats, transient or why) end
    if #e.accepted > 0 then
      self:_finish(e, body, "sent", "some recipients were refused")
      stats.delivered = stats.delivered + 1
    else
      self:_finish(e, body, "failed", why)
      stats.failed = stats.failed + 1
    end
    return "done"
  end
  if retry_policy.final(err) then
    self:_finish(e, body, "failed", why)
    stats.failed = stats.failed + 1
    return "done"
  end
  return self:_defer(e, body, holder, stats, why)
end

-- No writer keeps a tmp/ file this long (put() and a rewrite write one
-- and rename it at once): an older one was left by a killed process.
local TMP_MAX_AGE = 3600

-- Files a killed worker left in tmp/. A rewrite's file (<id>.<pid>.<n>)
-- is written by the holder of queue/<id>'s lock and renamed before the
-- lock goes: one whose queue file is gone is garbage now, the others are
-- once this worker holds that lock (see _handle). put()'s own file (<id>)
-- cannot be told from a put() still running and is left alone for an
-- hour.
function Outbox:_sweep_tmp()
  local later = {}
  local old = core.wall_time() - TMP_MAX_AGE
  for _, name in ipairs(must(core.fs_list(self.dir .. "/tmp"))) do
    local id = name:match("^(.-)%.%d+%.%d+$")
    -- lstat: a symlink is never followed, only regular files go; the
    -- file's own mtime, not the outbox clock (a test's clock may be fake).
    local st = core.fs_lstat(self:_path("tmp", name))
    if st and st.type == "file" and st.mtime < old then
      os.remove(self:_path("tmp", name))
    elseif id then
      if exists(self:_path("queue", id)) then
        later[id] = later[id] or {}
        later[id][#later[id] + 1] = name
      else
        os.remove(self:_path("tmp", name))
      end
    end
  end
  return later
end

-- Handles queue/<name> while holding its lock. Returns "done" (one
-- message handled), "skip", or "later", next_try.
function Outbox:_handle(name, holder, sender, stats)
  local qpath = self:_path("queue", name)
  local garbage = self._tmp_leftovers and self._tmp_leftovers[name]
  if garbage then
    -- Listed before this lock was taken: their writer has since renamed
    -- them or died.
    for _, t in ipairs(garbage) do os.remove(self:_path("tmp", t)) end
    self._tmp_leftovers[name] = nil
  end
  local data, kind, why = holder.lock:read(holder.size)
  if not data then
    if kind == "bad" then return self:_set_aside(name, why, stats) end
    must(nil, kind, why)
  end
  local e, body = parse(name, data)
  for _, d in ipairs(FINAL) do
    if exists(self:_path(d, name)) then
      local final = e and e.token and read_file(self:_path(d, name), self.shared)
      local f = final and parse(name, final)
      if f and f.token == e.token then
        -- A worker died between writing the final copy and removing this one.
        os.remove(qpath)
        must(core.fs_sync_dir(self.dir .. "/queue"))
        return "skip"
      end
      -- Not a copy this outbox wrote of this message (review N2): keep it.
      return self:_hold_unverified(name, d, stats)
    end
  end
  if e and self._ev then self._ev.tries = e.tries end
  if not e then
    self:_reject_file(name)
    stats.failed = stats.failed + 1
    return "done"
  end
  if e.state == "inflight" then
    -- Its lock was free: the worker that wrote the marker is dead.
    local r, note = self:_unknown(e, body, stats,
      DEFAULT_UNKNOWN .. " (the worker stopped after the end of data)")
    if r == "done" then return r end
    e.state, e.reason = "queued", note
    self:_rewrite(e, body, holder)
  elseif e.next_try > self.clock() then
    return "later", e.next_try
  end
  return self:_attempt(e, body, holder, sender, stats)
end

-- queue/<name> is no spool file we may open (review N1): moved to bad/
-- unopened (a rename touches only the name), so the next run does not
-- meet it again; where even that is refused, it is skipped for this run.
function Outbox:_set_aside(name, why, stats)
  stats.bad = (stats.bad or 0) + 1
  local ok = core.fs_publish(self:_path("queue", name), self:_path("bad", name))
  if ok then
    core.fs_sync_dir(self.dir .. "/bad")
    core.fs_sync_dir(self.dir .. "/queue")
  end
  stats.bad_entries = stats.bad_entries or {}
  stats.bad_entries[#stats.bad_entries + 1] = { name = name, reason = why, moved = ok == true }
  return "skip"
end

-- sent/<id> (or failed/, hold/) exists but is not a copy of this message
-- that this outbox wrote: the queue copy goes to hold/ for an operator,
-- never away; when hold/<id> is taken too, it stays queued, unsent.
function Outbox:_hold_unverified(name, where, stats)
  stats.unverified = (stats.unverified or 0) + 1
  if where ~= "hold" then
    local ok = core.fs_publish(self:_path("queue", name), self:_path("hold", name))
    if ok then
      core.fs_sync_dir(self.dir .. "/hold")
      core.fs_sync_dir(self.dir .. "/queue")
    end
  end
  return "skip"
end

-- Outcome counters of run()'s stats and the event each one is.
-- An unknown outcome comes first: on_unknown's decision may move another.
local EVENTS = { { "unknown", "unknown" }, { "delivered", "sent" }, { "failed", "failed" },
  { "deferred", "deferred" } }

function Outbox:_process(name, sender, stats)
  local lock, why, msg = core.fs_lock(self:_path("queue", name), self.shared)
  if not lock then
    if why == "busy" or why == "gone" then return "skip" end
    if why == "bad" then return self:_set_aside(name, msg, stats) end
    must(nil, why, msg)
  end
  local holder = { lock = lock, size = why }
  local hook, before, t0 = self._on_event, nil, nil
  if hook then
    -- One event per counter the handling moved (issue 25): the counters
    -- say what happened, _attempt notes where (self._ev).
    before = { delivered = stats.delivered, failed = stats.failed, deferred = stats.deferred,
      unknown = stats.unknown }
    self._ev, t0 = {}, core.now()
  end
  local ok, r, nt = pcall(self._handle, self, name, holder, sender, stats)
  holder.lock:unlock()
  if hook then
    local ev = self._ev
    self._ev = nil
    for _, pair in ipairs(EVENTS) do
      local counter = pair[1]
      if stats[counter] ~= before[counter] then
        pcall(hook, { type = pair[2], id = name, server = ev.server, tries = ev.tries, code = ev.code,
          ms = floor((core.now() - t0) * 1000 + 0.5) })
      end
    end
  end
  if not ok then error(r, 0) end
  return r, nt
end

local function check_run_opts(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then usage("outbox:run: options must be a table") end
  for k in pairs(opts) do
    if k ~= "max_seconds" and k ~= "max_messages" and k ~= "idle_exit" and k ~= "poll" and k ~= "loop"
        and k ~= "on_event" then
      usage("outbox:run: unknown option '" .. tostring(k) .. "'")
    end
  end
  if opts.max_seconds ~= nil then check_number(opts.max_seconds, "max_seconds", 0, MAX_SECONDS) end
  if opts.max_messages ~= nil then check_number(opts.max_messages, "max_messages", 1, 1e15, true) end
  if opts.poll ~= nil then check_number(opts.poll, "poll", 0.001, 3600) end
  if opts.idle_exit ~= nil and type(opts.idle_exit) ~= "boolean" then
    usage("outbox:run: 'idle_exit' must be a boolean")
  end
  if opts.loop ~= nil then loops.check(opts.loop, "outbox:run") end
  if opts.on_event ~= nil and type(opts.on_event) ~= "function" then
    usage("outbox:run: 'on_event' must be a function(ev)")
  end
  return opts
end

--- Sends the due messages of queue/ through `sender` (any object with
-- `sender:send(msg, opts) -> report`, raising smtp.Error on failure, that
-- passes opts.progress to sendmail: smtp.pool, or a wrapped client).
-- @tparam[opt] table opts `max_seconds`, `max_messages`, `idle_exit`
-- (default true: return once nothing is due and unlocked), `poll`
-- (seconds between scans while waiting; default 1), `on_event =
-- function(ev)` (one `{type=, id=, server=, tries=, ms=, code=}` per
-- message sent, failed, deferred or found unknown), `loop` (SPEC 5.1:
-- the waits between scans go through `loop.sleep`; give the sender, e.g.
-- an `smtp.pool`, the same loop for its network waits)
-- @treturn table `{delivered=, failed=, deferred=, unknown=}`: messages
-- moved to sent/, to failed/, attempts put off for a later try, and
-- outcomes found unknown (a dead worker's in-flight marker, or an error
-- with outcome "unknown"; each also counts where on_unknown sent it)
function Outbox:run(sender, opts)
  local st = type(sender)
  if (st ~= "table" and st ~= "userdata") or sender.send == nil then
    usage("outbox:run: 'sender' must be an object with a send(msg, opts) method")
  end
  opts = check_run_opts(opts)
  self._on_event = opts.on_event
  local stats = { delivered = 0, failed = 0, deferred = 0, unknown = 0 }
  local stop_at = opts.max_seconds and core.now() + opts.max_seconds
  local budget = opts.max_messages
  local idle_exit = opts.idle_exit ~= false
  local not_before = {}
  local handled = 0
  self._tmp_leftovers = self:_sweep_tmp()
  while true do
    local did, soonest = 0, nil
    for _, name in ipairs(self:list("queue")) do
      if (stop_at and core.now() >= stop_at) or (budget and handled >= budget) then return stats end
      local nt = not_before[name]
      if not (nt and nt > self.clock()) then
        local r
        r, nt = self:_process(name, sender, stats)
        if r == "done" then
          did, handled = did + 1, handled + 1
          nt = nil
        end
        not_before[name] = nt
      end
      if nt then soonest = soonest and min(soonest, nt) or nt end
    end
    if did == 0 then
      if idle_exit then return stats end
      local wait = opts.poll or POLL
      if soonest then wait = min(wait, max(soonest - self.clock(), 0.001)) end
      if stop_at then
        local left = stop_at - core.now()
        if left <= 0 then return stats end
        wait = min(wait, left)
      end
      if opts.loop then opts.loop.sleep(wait) else must(core.sleep(wait)) end
    end
  end
end

M.Outbox = Outbox
M._parse, M._serialise = parse, serialise -- for the unit tests
M._escape, M._unescape = escape, unescape

return M
