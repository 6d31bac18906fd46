--- smtp.sender.maildir(dir): writes each message as a file of a Maildir
-- instead of sending it, for development (any mail reader opens it).
-- Same send(msg, opts) and report as smtp.pool.
--
-- One file per message (not per recipient), written whole in tmp/,
-- fsynced and moved to new/ without replacing anything, as the Maildir
-- convention asks; directories are created 0700, files 0600. The file
-- has LF line ends (what mail readers expect on disk) and starts with
-- the envelope as local delivery records it: Return-Path, then one
-- Delivered-To per recipient.
-- @classmod smtp.sender.Maildir
local core = require "smtp.core"
local Error = require "smtp.error"
local common = require "smtp.sender.common"

local setmetatable, type, ipairs, tostring, error = setmetatable, type, ipairs, tostring, error
local floor, format = math.floor, string.format
local concat = table.concat

local Maildir = {}
Maildir.__index = Maildir

local WHO = "smtp.sender.maildir"

local function must(ok, kind, msg)
  if ok == nil then
    error(Error.new { kind = kind == "usage" and "usage" or "io", outcome = "not_sent",
      message = WHO .. ": " .. tostring(msg or kind) }, 0)
  end
  return ok
end

-- The host part of a file name: '/' and ':' are escaped as the Maildir
-- convention says (\057, \072).
local function host_name()
  local f = io.open("/proc/sys/kernel/hostname") or io.open("/etc/hostname")
  local name = f and f:read("*l")
  if f then f:close() end
  if type(name) ~= "string" or name == "" then name = "localhost" end
  return (name:gsub("[/:%c\\]", function(c) return format("\\%03o", c:byte()) end))
end

-- A name no other delivery uses: seconds, microseconds, pid, a counter
-- and random bits (time.MusecPpidQseqRrand.host).
function Maildir:_unique()
  self.seq = self.seq + 1
  local t = core.wall_time()
  local sec = floor(t)
  return format("%d.M%dP%dQ%dR%s.%s", sec, floor((t - sec) * 1e6), core.getpid(), self.seq,
    must(core.random_hex(8)), self.host)
end

--- Writes the message to new/ and returns pool:send's report, with
-- `file` (the path of the new file).
function Maildir:send(msg, opts)
  local from, to, next_chunk
  from, to, next_chunk, opts = common.prepare(WHO, msg, opts)
  local head = { "Return-Path: <" .. from .. ">\n" }
  for _, r in ipairs(to) do head[#head + 1] = "Delivered-To: " .. r .. "\n" end
  local data = concat(head) .. common.read_lf(next_chunk)
  common.progress(opts, #data)
  for _ = 1, 8 do
    local name = self:_unique()
    local tmp = self.dir .. "/tmp/" .. name
    must(core.fs_write_file(tmp, data))
    local dest = self.dir .. "/new/" .. name
    local ok, kind, m = core.fs_publish(tmp, dest)
    if ok then
      must(core.fs_sync_dir(self.dir .. "/new"))
      local report = common.report("maildir:" .. self.dir, to)
      report.file = dest
      return report
    end
    os.remove(tmp)
    if kind ~= "exists" then must(nil, kind, m) end
  end
  must(nil, "io", "no free file name after 8 draws")
end

--- Nothing to close; there for code written against a pool.
function Maildir.close(_) end

return function(dir)
  if type(dir) ~= "string" or dir == "" or dir:find("%z") then
    common.usage(WHO, "'dir' must be a directory path")
  end
  dir = dir:gsub("(.)/+$", "%1")
  must(core.fs_mkdir(dir))
  for _, sub in ipairs({ "tmp", "new", "cur" }) do must(core.fs_mkdir(dir .. "/" .. sub)) end
  return setmetatable({ dir = dir, seq = 0, host = host_name() }, Maildir)
end
