-- mod_smtp_notify: a Prosody 0.12 module that sends e-mail through
-- lua-smtp without blocking the XMPP server. Every network wait of the
-- SMTP session goes through Prosody's own loop (SPEC 5.1 plain-table
-- form): net.server's watchfd for the socket, util.timer for deadlines
-- and sleeps, and util.async so the sending code reads straight through.
--
-- In prosody.cfg.lua (global section), with lua-smtp's lua/ and build/ on
-- LUA_PATH / LUA_CPATH and this folder in plugin_paths:
--   modules_enabled = { ..., "smtp_notify" }
--   smtp_notify = { host = "mail.example.org", port = 587, user = "...",
--     password = "...", tls = { ca_file = "..." }, from = "xmpp@example.org",
--     to = "admin@example.org" }
-- It mails `to` when the server has started and when an account is
-- registered; other modules can fire module:fire_event("smtp-notify",
-- { subject = ..., text = ... }). Settings may also come from the
-- environment (SMTP_HOST, SMTP_PORT, SMTP_FROM, SMTP_TO, SMTP_USER,
-- SMTP_PASSWORD, SMTP_CAFILE), which the suite uses.
-- luacheck: globals module prosody
local smtp = require "smtp"
local async = require "util.async"
local server = require "net.server"
local timer = require "util.timer"

local getenv = os.getenv
local cfg = module:get_option("smtp_notify", {})
local function setting(key, env) return cfg[key] or getenv(env) end

-- Prosody's loop as lua-smtp sees it. Called only inside an async runner.
local loop = {}

function loop.wait(fd, events, deadline)
  local wait, done = async.waiter(1, true)
  local result, watch, task
  local function finish(r)
    if result ~= nil then return end
    result = r
    done()
  end
  local function ready() finish(true) end
  watch = server.watchfd(fd, events:find("r", 1, true) and ready or nil,
    events:find("w", 1, true) and ready or nil)
  if deadline then
    task = timer.add_task(math.max(0, deadline - smtp.now()), function() finish(false) end)
  end
  wait()
  watch:close() -- stops watching; the fd stays lua-smtp's
  if task then timer.stop(task) end
  if result then return true end
  return nil, "timeout"
end

function loop.sleep(seconds)
  local wait, done = async.waiter()
  timer.add_task(seconds, function() done() end)
  wait()
end

local function tls_option()
  local ca = setting("tls_ca_file", "SMTP_CAFILE")
  if cfg.tls then return cfg.tls end
  if ca then return { ca_file = ca } end
  return nil
end

-- One notification; errors are logged, never raised into Prosody.
local runner = async.runner(function(note)
  local t0 = smtp.now()
  local from, to = setting("from", "SMTP_FROM"), setting("to", "SMTP_TO")
  local ok, res = pcall(smtp.send, {
    host = setting("host", "SMTP_HOST") or "localhost",
    port = tonumber(setting("port", "SMTP_PORT") or 25),
    user = setting("user", "SMTP_USER"), password = setting("password", "SMTP_PASSWORD"),
    tls = tls_option(), timeout = tonumber(cfg.timeout or 30), loop = loop, local_name = cfg.local_name,
    raw = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n%s\r\n"):format(from, to, note.subject, note.text),
  })
  if ok then
    module:log("info", "smtp_notify: sent %q in %.2f s: %d %s", note.subject, smtp.now() - t0,
      res.reply.code, tostring(res.reply.queue_id))
  else
    module:log("error", "smtp_notify: %q not sent: %s", note.subject, tostring(res))
  end
end)

local function notify(subject, text)
  runner:run({ subject = subject, text = text })
end

module:hook_global("server-started", function()
  notify("Prosody started", "Prosody " .. tostring(prosody.version) .. " is up.")
end)

module:hook_global("user-registered", function(event)
  notify("New account", ("%s@%s registered."):format(tostring(event.username), tostring(event.host)))
end)

module:hook("smtp-notify", function(event)
  notify(event.subject or "Notification", event.text or "")
end)
