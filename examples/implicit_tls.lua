-- Submission over implicit TLS (RFC 8314, "SMTPS", port 465): TLS from the
-- first byte, so nothing is ever sent in clear. The strongest SASL
-- mechanism the server offers is chosen (SCRAM first, PLAIN only over TLS).
--   SMTP_HOST=mail.example.org SMTP_USER=alice SMTP_PASSWORD=... \
--   SMTP_FROM=alice@example.org SMTP_TO=bob@example.org lua5.4 examples/implicit_tls.lua
-- Optional: SMTP_PORT (465), SMTP_CAFILE, SMTP_SUBJECT, SMTP_DEBUG=1.
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

-- smtp.send does connect, authenticate, sendmail and quit in one call,
-- and closes the connection whatever happens.
local report = smtp.send {
  host = env("SMTP_HOST"),
  port = tonumber(env("SMTP_PORT", "465")),
  tls_mode = "implicit",
  tls = { ca_file = os.getenv("SMTP_CAFILE") },
  user = env("SMTP_USER"),
  password = env("SMTP_PASSWORD"),
  timeout = 30,
  debug = os.getenv("SMTP_DEBUG") == "1",
  raw = table.concat({
    "From: " .. env("SMTP_FROM"),
    "To: " .. env("SMTP_TO"),
    "Subject: " .. env("SMTP_SUBJECT", "Hello over implicit TLS"),
    "",
    "Sent over TLS from the first byte (port 465).",
    "",
  }, "\r\n"),
}
print(("sent to %d recipient(s): %d %s"):format(#report.accepted, report.reply.code, report.reply.text))
