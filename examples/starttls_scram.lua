-- Message submission (RFC 6409, port 587) with STARTTLS (RFC 3207) and
-- SCRAM-SHA-256 (RFC 7677): the password never crosses the wire, and the
-- server proves it knows it too. Certificate and host name are verified.
--   SMTP_HOST=mail.example.org SMTP_USER=alice SMTP_PASSWORD=... \
--   SMTP_FROM=alice@example.org SMTP_TO=bob@example.org lua5.4 examples/starttls_scram.lua
-- Optional: SMTP_PORT (587), SMTP_CAFILE (default: system CAs),
-- SMTP_SUBJECT, SMTP_EHLO, SMTP_DEBUG=1 (protocol trace, secrets masked).
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

local from, to = env("SMTP_FROM"), env("SMTP_TO")
local message = table.concat({
  "From: " .. from,
  "To: " .. to,
  "Subject: " .. env("SMTP_SUBJECT", "Hello over STARTTLS + SCRAM"),
  "Date: " .. os.date("!%a, %d %b %Y %H:%M:%S +0000"),
  "",
  "This message was submitted with STARTTLS and SCRAM-SHA-256.",
  "",
}, "\r\n")

local ok, err = pcall(function()
  local client <close> = smtp.connect {
    host = env("SMTP_HOST"),
    port = tonumber(env("SMTP_PORT", "587")),
    timeout = 30,
    local_name = os.getenv("SMTP_EHLO"),
    debug = os.getenv("SMTP_DEBUG") == "1",
  }
  client:authenticate {
    tls = { ca_file = os.getenv("SMTP_CAFILE") }, -- nil: the system CA bundle
    tls_required = true,                             -- never fall back to plaintext
    mechanisms = { "SCRAM-SHA-256" },
    user = env("SMTP_USER"),
    password = env("SMTP_PASSWORD"),
  }
  local report = client:sendmail(message)
  client:quit()
  print(("sent: %d %s (queue id %s)"):format(report.reply.code, report.reply.text,
    tostring(report.reply.queue_id)))
end)

if not ok then
  -- Every failure is an smtp.Error with a kind: decide what to do by kind,
  -- not by parsing text.
  if smtp.Error.is(err) then
    io.stderr:write(tostring(err), "\n")
    if err.kind == "authentication" then
      io.stderr:write("check SMTP_USER and SMTP_PASSWORD\n")
    elseif err.retryable then
      io.stderr:write("temporary failure: try again later\n")
    end
    os.exit(err.retryable and 75 or 1) -- 75: EX_TEMPFAIL
  end
  error(err, 0)
end
