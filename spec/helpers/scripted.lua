-- Runs spec/helpers/scripted_server.py for one dialogue: start(transcript)
-- returns a handle with .port; handle:result() waits (bounded) for the
-- server to finish and returns ok, error_text, received_bytes_per_conn.
-- The server process is ours: stop() kills it by PID if it is still there.
local M = {}

local PY = "/usr/bin/python3"
local SCRIPT = "spec/helpers/scripted_server.py"
local counter = 0

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function sleep(s)
  os.execute("sleep " .. s)
end

local Handle = {}
Handle.__index = Handle

-- 'transcript' is the script text, or a function(port) returning it for
-- scripts that must name the server's port.
function M.start(transcript, connections)
  counter = counter + 1
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local tfile = dir .. "/transcript.txt"
  local function write_transcript(text)
    local f = assert(io.open(tfile .. ".tmp", "wb"))
    f:write(text)
    f:close()
    assert(os.rename(tfile .. ".tmp", tfile))
  end
  if type(transcript) == "string" then write_transcript(transcript) end
  local h = setmetatable({ dir = dir, portfile = dir .. "/port", resultfile = dir .. "/result" }, Handle)
  local cmd = ("%s %s %s %s %s %d > %s/log 2>&1 & echo $! > %s/pid"):format(
    PY, SCRIPT, tfile, h.portfile, h.resultfile, connections or 1, dir, dir)
  assert(os.execute(cmd))
  h.pid = tonumber(read_file(dir .. "/pid"))
  for _ = 1, 200 do
    local port = read_file(h.portfile)
    if port and tonumber(port) then h.port = tonumber(port); break end
    sleep(0.02)
  end
  assert(h.port, "scripted server did not start: " .. tostring(read_file(dir .. "/log")))
  if type(transcript) == "function" then write_transcript(transcript(h.port)) end
  return h
end

-- Waits up to 'limit' seconds for the script to end.
function Handle:result(limit)
  local waited = 0
  limit = limit or 10
  while waited < limit do
    local r = read_file(self.resultfile)
    if r then
      local received = {}
      for i = 1, 16 do
        local data = read_file(self.resultfile .. "." .. i)
        if not data then break end
        received[i] = data
      end
      self:stop()
      local ok = r:sub(1, 2) == "ok"
      return ok, ok and nil or r:gsub("\n$", ""), received
    end
    sleep(0.05)
    waited = waited + 0.05
  end
  self:stop()
  return false, "scripted server did not finish in " .. limit .. " s", {}
end

function Handle:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
  end
  os.execute("rm -rf " .. self.dir)
end

return M
