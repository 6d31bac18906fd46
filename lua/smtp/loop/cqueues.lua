-- smtp.loop.cqueues(): waits through cqueues.poll on a pollable table,
-- sleeps with cqueues.sleep, resolves with cqueues.dns (A, then AAAA)
-- after /etc/hosts, as the C library's "files dns" order does: a name the
-- hosts file knows never becomes a DNS query. Call from a coroutine that
-- a cqueues controller runs (cq:wrap(fn)).
local cqueues = require "cqueues"
local dns = require "cqueues.dns"
local core = require "smtp.core"

local now = core.now
local TYPE_A, TYPE_AAAA = 1, 28
local HOSTS = "/etc/hosts"

-- The addresses /etc/hosts gives `host` (case-insensitive), or nil.
local function from_hosts(host)
  local f = io.open(HOSTS, "r")
  if not f then return nil end
  local list, want = {}, host:lower()
  for line in f:lines() do
    local addr, names = line:gsub("#.*", ""):match("^%s*(%S+)%s+(.-)%s*$")
    if addr then
      for name in names:gmatch("%S+") do
        if name:lower() == want then
          list[#list + 1] = addr
          break
        end
      end
    end
  end
  f:close()
  return list[1] and list or nil
end

local M = {}

function M.new()
  local loop = {}

  function loop.wait(fd, events, deadline)
    local timeout
    if deadline then
      timeout = deadline - now()
      if timeout <= 0 then return nil, "timeout" end
    end
    -- cqueues polls anything with pollfd and events fields.
    local want = { pollfd = fd, events = events }
    local ready = cqueues.poll(want, timeout)
    -- The core may close this fd before the next wait; cqueues must not
    -- keep it registered (a reused number would hit a stale entry).
    cqueues.cancel(fd)
    if ready == want then return true end
    return nil, "timeout"
  end

  function loop.sleep(seconds)
    cqueues.sleep(seconds)
  end

  function loop.resolve(host, _, deadline)
    local known = from_hosts(host)
    if known then return known end
    local list, last = {}, nil
    for _, qtype in ipairs({ "A", "AAAA" }) do
      local timeout = deadline and deadline - now()
      if timeout and timeout <= 0 then return nil, "timed out" end
      local packet, err = dns.query(host, qtype, "IN", timeout)
      if packet then
        for rr in packet:grep({ section = "answer" }) do
          local t = rr:type()
          if (t == TYPE_A or t == TYPE_AAAA) and rr.addr then list[#list + 1] = rr:addr() end
        end
      else
        last = err
      end
    end
    if list[1] == nil then return nil, last and tostring(last) or "no address" end
    return list
  end

  return loop
end

return M
