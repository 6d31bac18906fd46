-- An HAProxy service that sends mail (issue 27): GET /notify?subject=...
-- sends one message over STARTTLS with AUTH through HAProxy's own socket
-- (core.tcp()), with lua-smtp's TLS checking the server's certificate,
-- and answers with the server's reply. HAProxy keeps serving other
-- traffic while the SMTP server is talked to: every wait is the socket's.
--
--   global
--     lua-prepend-path /path/to/lua-smtp/lua/?.lua
--     lua-prepend-path /path/to/lua-smtp/lua/?/init.lua
--     lua-prepend-path /path/to/lua-smtp/build/lua5.3/?.so cpath
--     setenv SMTP_HOST mail.example.org
--     ... (SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_CA_FILE, SMTP_FROM, SMTP_TO)
--     lua-load /path/to/lua-smtp/examples/haproxy/smtp_notify.lua
--   frontend web
--     http-request use-service lua.smtp_notify if { path /notify }
--
-- HAProxy 2.6 runs Lua 5.3: build the module with `make LUA=lua5.3`.
local smtp = require "smtp"
local core = core -- luacheck: ignore (HAProxy's global)

local env = os.getenv

-- One TLS config for the process: later connections resume its session.
local tls = smtp.tls_config { ca_file = env("SMTP_CA_FILE") }

local function send(subject)
  local client = smtp.connect {
    host = env("SMTP_HOST"), port = tonumber(env("SMTP_PORT") or "587"), timeout = 20,
    transport = core.tcp(), local_name = env("SMTP_HELO") or "haproxy.localdomain",
  }
  local ok, result = pcall(function()
    client:authenticate { tls = tls, tls_required = true, user = env("SMTP_USER"), password = env("SMTP_PASSWORD") }
    local message = smtp.message {
      from = env("SMTP_FROM"), to = env("SMTP_TO"), subject = subject,
      text = "Sent by HAProxy's Lua service.\n",
    }
    local report = client:sendmail(message)
    return { report = report, tls = client:tls_info() }
  end)
  if ok then client:quit() else client:close() end
  if not ok then error(result, 0) end
  return result
end

core.register_service("smtp_notify", "http", function(applet)
  local subject = (applet.qs or ""):match("subject=([^&]*)") or "HAProxy notification"
  subject = subject:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end):gsub("+", " ")
  local ok, result = pcall(send, subject)
  local body
  if ok then
    local t = result.tls or {}
    body = ("sent %d %s verified=%s resumed=%s\n"):format(result.report.reply.code, tostring(t.version),
      tostring(t.peer_verified), tostring(t.resumed))
    applet:set_status(200)
  else
    body = ("failed %s: %s\n"):format(type(result) == "table" and tostring(result.kind) or "error", tostring(result))
    applet:set_status(502)
  end
  applet:add_header("content-type", "text/plain")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end)
