-- Sending reliably: messages go into a durable outbox (on disk, safe
-- against a crash), then a worker drains it through smtp.pool, which
-- fails over between relays, retries transient failures with backoff and
-- never sends twice to a recipient already accepted.
--   SMTP_SERVERS=relay1.example.org:25,relay2.example.org:25 SMTP_OUTBOX=/var/spool/myapp \
--   SMTP_FROM=app@example.org SMTP_TO=ops@example.org lua5.4 examples/reliable_delivery.lua
-- Optional: SMTP_COUNT (messages to queue, 3), SMTP_CAFILE (STARTTLS with
-- this CA, required), SMTP_RETRY_BASE (first backoff in seconds, 60),
-- SMTP_COOLDOWN (seconds a failed relay is skipped, 30), SMTP_MAX_SECONDS
-- (how long this worker may run, 60).
local smtp = require "smtp"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then
      io.stderr:write(arg[0], ": set ", name, "\n")
      os.exit(1)
    end
    return default
  end
  return v
end

local servers = {}
for host, port in env("SMTP_SERVERS"):gmatch("([^,%s]+):(%d+)") do
  servers[#servers + 1] = { host = host, port = tonumber(port) }
end
if #servers == 0 then
  io.stderr:write(arg[0], ": SMTP_SERVERS must be host:port[,host:port...]\n")
  os.exit(1)
end

local retry_base = tonumber(env("SMTP_RETRY_BASE", "60"))
local outbox = smtp.outbox(env("SMTP_OUTBOX"), { retry = { limit = 5, base = retry_base } })

-- Producer side: put() returns once the message is on disk.
local from, to = env("SMTP_FROM"), env("SMTP_TO")
for i = 1, tonumber(env("SMTP_COUNT", "3")) do
  local msg = smtp.message {
    from = from, to = to, subject = ("Report %d"):format(i),
    text = ("This is report %d, delivered through the outbox.\n"):format(i),
  }
  print("queued " .. outbox:put(msg))
end

-- Worker side (often another process, or a timer under nginx).
local cafile = os.getenv("SMTP_CAFILE")
local pool = smtp.pool {
  servers = servers, timeout = 30, cooldown = tonumber(env("SMTP_COOLDOWN", "30")),
  tls = cafile and { ca_file = cafile } or nil,
  -- One pass over the relays per attempt; the outbox spaces the attempts.
  retry = { limit = #servers },
}
-- Slices of run(): it waits for messages whose next try is not due yet,
-- and this worker stops once the outbox is empty or its time is up.
local stats = { delivered = 0, deferred = 0, failed = 0, unknown = 0 }
local stop_at = os.time() + tonumber(env("SMTP_MAX_SECONDS", "60"))
repeat
  local slice = outbox:run(pool, { idle_exit = false, poll = 0.1, max_seconds = 0.5 })
  for k, n in pairs(slice) do stats[k] = stats[k] + n end
until #outbox:list("queue") == 0 or os.time() >= stop_at
pool:close()

for _, id in ipairs(outbox:list("failed")) do
  print(("failed %s: %s"):format(id, tostring(outbox:entry(id).reason)))
end
print(("%d delivered, %d deferred, %d failed, %d unknown; %d waiting in the outbox"):format(
  stats.delivered, stats.deferred, stats.failed, stats.unknown, #outbox:list("queue")))
os.exit((stats.failed == 0 and #outbox:list("queue") == 0) and 0 or 1)
