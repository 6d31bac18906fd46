-- OpenResty (or nginx with the lua module): mail notifications from a
-- request handler. With transport = ngx.socket.tcp() every network wait is
-- a cosocket wait, so the worker keeps serving other requests meanwhile;
-- STARTTLS is lua-smtp's own TLS over the cosocket's bytes: the same
-- certificate, host name and IP address checks as the C socket, trust
-- from the tls_config (SMTP_CAFILE, else the system's CA store).
-- Run from the checkout:  nginx -p examples/openresty/ -c nginx.conf -e stderr
--   curl --data 'Disk almost full' http://127.0.0.1:8080/notify          (waits for the server's reply)
--   curl --data 'Disk almost full' 'http://127.0.0.1:8080/notify?async=1' (queued in a timer: 202 at once)
-- luacheck: globals ngx
local smtp = require "smtp"

local HOST = os.getenv("SMTP_HOST") or "127.0.0.1" -- names need nginx's 'resolver'
local PORT = tonumber(os.getenv("SMTP_PORT") or "587")
local TIMEOUT = 10 -- seconds, for every wait
-- The name in the server's certificate when it is not SMTP_HOST (an
-- address in SMTP_HOST is checked against the certificate's IP SANs).
local TLS_NAME = os.getenv("SMTP_TLS_NAME")
-- One TLS config per worker (module level): later requests resume its
-- TLS session instead of a full handshake.
local TLS = smtp.tls_config { server_name = TLS_NAME, ca_file = os.getenv("SMTP_CAFILE") }

-- Connects a cosocket, hands it to the library, sends one message.
-- Returns the sendmail report, or nil and an smtp.Error / message.
-- 'site' is read from the request beforehand: ngx.var is not available
-- in a timer.
local function notify(text, site)
  local sock = ngx.socket.tcp()
  sock:settimeout(TIMEOUT * 1000)
  local ok, err = sock:connect(HOST, PORT)
  if not ok then return nil, "connect to " .. HOST .. ":" .. PORT .. " failed: " .. tostring(err) end
  local client
  local sent, result = pcall(function()
    client = smtp.connect { host = HOST, port = PORT, transport = sock, timeout = TIMEOUT }
    client:authenticate {
      tls = TLS, -- STARTTLS, required; the certificate checked

      user = os.getenv("SMTP_USER"), password = os.getenv("SMTP_PASSWORD"),
    }
    return client:sendmail(table.concat({
      "From: " .. os.getenv("SMTP_FROM"),
      "To: " .. os.getenv("SMTP_TO"),
      "Subject: Notification from " .. site,
      "",
      text,
      "",
    }, "\r\n"))
  end)
  if client then client:quit() else sock:close() end
  if not sent then return nil, result end
  return result
end

ngx.req.read_body()
local text = ngx.req.get_body_data() or "(empty notification)"
local site = ngx.var.host

if ngx.var.arg_async == "1" then
  -- Sent after the response: a timer runs in its own light thread, where
  -- cosockets work too. Failures go to the error log.
  local ok, err = ngx.timer.at(0, function(premature)
    if premature then return end
    local report, failure = notify(text, site)
    if not report then ngx.log(ngx.ERR, "notification failed: ", tostring(failure)) end
  end)
  if not ok then
    ngx.status = 500
    ngx.say("cannot queue the notification: ", err)
    return
  end
  ngx.status = 202
  ngx.say("queued")
  return
end

local report, err = notify(text, site)
if not report then
  -- smtp.Error kinds tell a caller's mistake from a server that is down.
  local retry = smtp.Error.is(err) and err.retryable
  ngx.status = retry and 503 or 502
  ngx.say("not sent: ", tostring(err))
  return
end
ngx.say(("sent: %d %s (queue id %s)"):format(report.reply.code, report.reply.text, tostring(report.reply.queue_id)))
