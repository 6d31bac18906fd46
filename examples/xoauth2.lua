-- Gmail / Outlook style authentication with an OAuth 2.0 access token
-- (XOAUTH2; OAUTHBEARER, RFC 7628, is the standard form). Getting the
-- token is the application's job (an OAuth client flow); it is sent only
-- after STARTTLS, and never appears in errors or traces.
--   Gmail:   SMTP_HOST=smtp.gmail.com       SMTP_PORT=587
--   Outlook: SMTP_HOST=smtp.office365.com   SMTP_PORT=587
--   SMTP_USER=you@gmail.com SMTP_TOKEN=ya29... SMTP_FROM=... SMTP_TO=... lua5.4 examples/xoauth2.lua
-- Optional: SMTP_CAFILE, SMTP_SUBJECT, SMTP_EHLO, SMTP_DEBUG=1,
-- SMTP_TLS=none (no STARTTLS: only for a local test server).
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

local plaintext = os.getenv("SMTP_TLS") == "none"
local client <close> = smtp.connect {
  host = env("SMTP_HOST"),
  port = tonumber(env("SMTP_PORT", "587")),
  timeout = 30,
  local_name = os.getenv("SMTP_EHLO"),
  debug = os.getenv("SMTP_DEBUG") == "1",
}
local ok, err = pcall(client.authenticate, client, {
  tls = not plaintext and { ca_file = os.getenv("SMTP_CAFILE") } or nil,
  tls_required = not plaintext,
  mechanisms = { "XOAUTH2" },
  user = env("SMTP_USER"),
  token = env("SMTP_TOKEN"),
  allow_plaintext = plaintext, -- a bearer token is a password: TLS only
})
if not ok then
  -- An expired or revoked token: the server's RFC 7628 JSON status is in
  -- the message (e.g. status=401); refresh the token and try again.
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
local report = client:sendmail(table.concat({
  "From: " .. env("SMTP_FROM"),
  "To: " .. env("SMTP_TO"),
  "Subject: " .. env("SMTP_SUBJECT", "Hello with an OAuth 2.0 token"),
  "",
  "Authenticated with XOAUTH2.",
  "",
}, "\r\n"))
client:quit()
print(("sent: %d %s"):format(report.reply.code, report.reply.text))
