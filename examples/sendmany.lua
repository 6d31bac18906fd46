-- Many messages over one connection (one TLS handshake, one login):
-- client:sendmany pipelines consecutive transactions (RFC 2920) and gives
-- one result per message; a refused message does not stop the others.
--   SMTP_HOST=mail.example.org SMTP_FROM=news@example.org \
--   SMTP_TO=a@example.org,b@example.org,c@example.org lua5.4 examples/sendmany.lua
-- Optional: SMTP_PORT (587), SMTP_USER + SMTP_PASSWORD, SMTP_CAFILE,
-- SMTP_SUBJECT, SMTP_DEBUG=1. One message is sent to each SMTP_TO address.
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

local from = env("SMTP_FROM")
local subject = env("SMTP_SUBJECT", "Newsletter")
local messages = {}
for to in env("SMTP_TO"):gmatch("[^,%s]+") do
  messages[#messages + 1] = table.concat({
    "From: " .. from, "To: " .. to, "Subject: " .. subject .. " for " .. to, "",
    "Hello " .. to .. ", this is message " .. (#messages + 1) .. ".", "",
  }, "\r\n")
end

local client <close> = smtp.connect {
  host = env("SMTP_HOST"), port = tonumber(env("SMTP_PORT", "587")), timeout = 30,
  debug = os.getenv("SMTP_DEBUG") == "1",
}
client:authenticate {
  tls = { ca_file = os.getenv("SMTP_CAFILE") }, tls_required = true,
  user = os.getenv("SMTP_USER"), password = os.getenv("SMTP_PASSWORD"),
}
local results = client:sendmany(messages)
client:quit()

local failed = 0
for i, r in ipairs(results) do
  if smtp.Error.is(r) then
    failed = failed + 1
    print(("message %d: failed: %s"):format(i, tostring(r)))
  else
    print(("message %d: %d %s"):format(i, r.reply.code, r.reply.text))
  end
end
print(("%d sent, %d failed, over one connection"):format(#results - failed, failed))
os.exit(failed == 0 and 0 or 1)
