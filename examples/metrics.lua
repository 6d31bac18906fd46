-- Metrics: count what smtp.pool does through its on_event hook and print
-- the counts in the Prometheus text format (a real service would serve
-- this text on /metrics, or send each event to statsd instead).
--   SMTP_SERVERS=relay1.example.org:25,relay2.example.org:25 \
--   SMTP_FROM=app@example.org SMTP_TO=ops@example.org lua5.4 examples/metrics.lua
-- Optional: SMTP_COUNT (messages to send, 3).
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

-- events[type][server] = count; seconds[server] = {sum=, count=}.
local events, seconds = {}, {}
local function on_event(ev)
  local server = ev.server or "none"
  events[ev.type] = events[ev.type] or {}
  events[ev.type][server] = (events[ev.type][server] or 0) + 1
  if ev.type == "sent" then
    local s = seconds[server] or { sum = 0, count = 0 }
    s.sum, s.count = s.sum + ev.ms / 1000, s.count + 1
    seconds[server] = s
  end
end

local pool = smtp.pool { servers = servers, timeout = 30, on_event = on_event, retry = { limit = 2, base = 1 } }
local from, to = env("SMTP_FROM"), env("SMTP_TO")
for i = 1, tonumber(env("SMTP_COUNT", "3")) do
  local ok, err = pcall(pool.send, pool, smtp.message {
    from = from, to = to, subject = ("Metrics %d"):format(i), text = "Counted by examples/metrics.lua.\n",
  })
  if not ok then io.stderr:write("not sent: ", tostring(err), "\n") end
end
pool:close()

-- Label values escaped as the text format asks (backslash, quote, newline).
local function label(v)
  return (tostring(v):gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

print("# HELP smtp_events_total Messages sent, deferred, failed, unknown; relays down and up.")
print("# TYPE smtp_events_total counter")
for _, kind in ipairs(sorted_keys(events)) do
  for _, server in ipairs(sorted_keys(events[kind])) do
    print(('smtp_events_total{type="%s",server="%s"} %d'):format(label(kind), label(server), events[kind][server]))
  end
end
print("# HELP smtp_send_seconds Time from pool:send to the message being accepted.")
print("# TYPE smtp_send_seconds summary")
for _, server in ipairs(sorted_keys(seconds)) do
  print(('smtp_send_seconds_sum{server="%s"} %.3f'):format(label(server), seconds[server].sum))
  print(('smtp_send_seconds_count{server="%s"} %d'):format(label(server), seconds[server].count))
end
