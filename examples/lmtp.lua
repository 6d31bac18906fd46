-- Final delivery over LMTP (RFC 2033), e.g. into Dovecot or Cyrus: LHLO
-- instead of EHLO, and one reply per recipient after the data, so each
-- mailbox's fate is reported separately.
--   LMTP_SOCKET=/var/run/dovecot/lmtp SMTP_FROM=sender@example.org \
--   SMTP_TO=alice,bob lua5.4 examples/lmtp.lua
-- Or over TCP: SMTP_HOST=127.0.0.1 SMTP_PORT=24 instead of LMTP_SOCKET.
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

local recipients = {}
for r in env("SMTP_TO"):gmatch("[^,%s]+") do recipients[#recipients + 1] = r end
local from = env("SMTP_FROM")

local socket = os.getenv("LMTP_SOCKET")
local client <close> = smtp.lmtp_connect {
  host = socket or env("SMTP_HOST"),             -- a path starting with "/" is a UNIX socket
  port = not socket and tonumber(env("SMTP_PORT", "24")) or nil,
  timeout = 30,
  debug = os.getenv("SMTP_DEBUG") == "1",
}
local report = client:sendmail(table.concat({
  "From: " .. from,
  "To: undisclosed-recipients:;",
  "Subject: " .. env("SMTP_SUBJECT", "Delivered over LMTP"),
  "",
  "One reply per recipient.",
  "",
}, "\r\n"), { from = from, to = recipients })
client:quit()

for _, r in ipairs(report.accepted) do print("delivered: " .. r) end
for _, r in ipairs(report.rejected) do print("refused:   " .. r.recipient .. ": " .. tostring(r.error)) end
os.exit(#report.rejected == 0 and 0 or 1)
