-- Sending from a cqueues application (lua-http servers, ...) without
-- freezing it: smtp.loop.cqueues() hands every wait of the SMTP session to
-- the controller, so other coroutines (here a 50 ms ticker) keep running.
-- Submission with STARTTLS and AUTH when SMTP_USER is set.
--   SMTP_HOST=mail.example.org SMTP_PORT=587 SMTP_USER=alice SMTP_PASSWORD=... \
--   SMTP_FROM=alice@example.org SMTP_TO=bob@example.org lua5.4 examples/loop_cqueues.lua
-- Optional: SMTP_CAFILE, SMTP_SUBJECT, SMTP_DEBUG=1.
local cqueues = require "cqueues"
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

local user = os.getenv("SMTP_USER")
local cq = cqueues.new()
local done, ticks, status = false, 0, 1

cq:wrap(function()
  local ok, res = pcall(smtp.send, {
    loop = smtp.loop.cqueues(),
    host = env("SMTP_HOST"), port = tonumber(env("SMTP_PORT", "587")), timeout = 30,
    tls = user and { ca_file = os.getenv("SMTP_CAFILE") } or nil,
    user = user, password = os.getenv("SMTP_PASSWORD"),
    debug = os.getenv("SMTP_DEBUG") == "1",
    raw = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nSent from a cqueues controller.\r\n")
      :format(env("SMTP_FROM"), env("SMTP_TO"), env("SMTP_SUBJECT", "Hello from cqueues")),
  })
  if ok then
    print(("sent: %d %s"):format(res.reply.code, res.reply.text or ""))
    status = 0
  else
    io.stderr:write("not sent: ", tostring(res), "\n")
  end
  done = true
end)

cq:wrap(function()
  while not done do
    cqueues.sleep(0.05)
    ticks = ticks + 1
  end
end)

assert(cq:loop())
print(("the controller ticked %d times meanwhile"):format(ticks))
os.exit(status)
