-- smtp.loop.cqueues(): waits through cqueues.poll on a pollable table,
-- sleeps with cqueues.sleep, resolves with cqueues.dns (A, then AAAA).
-- Call from a coroutine that a cqueues controller runs (cq:wrap(fn)).
local cqueues = require "cqueues"
local dns = require "cqueues.dns"
local core = require "smtp.core"

local now = core.now
local TYPE_A, TYPE_AAAA = 1, 28

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
