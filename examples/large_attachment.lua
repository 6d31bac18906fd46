-- A large attachment streamed from disk: smtp.message reads the file in
-- chunks while sending (base64 in C), so memory stays small whatever the
-- file's size; a progress callback reports the bytes sent.
--   SMTP_HOST=mail.example.org SMTP_USER=alice SMTP_PASSWORD=... SMTP_FROM=alice@example.org \
--   SMTP_TO=bob@example.org SMTP_ATTACHMENT=/path/to/video.mp4 lua5.4 examples/large_attachment.lua
-- Optional: SMTP_PORT (587), SMTP_CAFILE, SMTP_SUBJECT, SMTP_DEBUG=1.
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

if type(smtp.message) ~= "function" then
  io.stderr:write(arg[0], ": skipped: this version of lua-smtp has no smtp.message\n")
  os.exit(77) -- the conventional "skipped" status
end

local path = env("SMTP_ATTACHMENT")
local msg = smtp.message {
  from = env("SMTP_FROM"),
  to = { env("SMTP_TO") },
  subject = env("SMTP_SUBJECT", "A large file"),
  text = "The file is attached.\n",
  attachments = { { path = path, filename = path:match("([^/]+)$") } },
}

local client <close> = smtp.connect {
  host = env("SMTP_HOST"), port = tonumber(env("SMTP_PORT", "587")), timeout = 60,
  debug = os.getenv("SMTP_DEBUG") == "1",
}
client:authenticate {
  tls = { ca_file = os.getenv("SMTP_CAFILE") }, tls_required = true,
  user = os.getenv("SMTP_USER"), password = os.getenv("SMTP_PASSWORD"),
}
local last = -1
local report = client:sendmail(msg, {
  -- total is nil when the size is not known in advance.
  progress = function(sent, total)
    local pct = total and math.floor(sent * 100 / total) or nil
    if pct and pct ~= last then
      last = pct
      io.stderr:write(("\r%3d%% of %.1f MB"):format(pct, total / 1e6))
    elseif not total then
      io.stderr:write(("\r%.1f MB sent"):format(sent / 1e6))
    end
  end,
})
io.stderr:write("\n")
client:quit()
print(("sent: %d %s"):format(report.reply.code, report.reply.text))
