-- Sending from a libuv application (luvit, Neovim's vim.uv) without
-- blocking its loop: smtp.loop.luv() waits with uv poll handles and
-- timers, from a coroutine. In Neovim, pass vim.uv (or vim.loop) and skip
-- uv.run(): Neovim runs the loop.
--   SMTP_HOST=mail.example.org SMTP_PORT=587 SMTP_USER=alice SMTP_PASSWORD=... \
--   SMTP_FROM=alice@example.org SMTP_TO=bob@example.org lua5.4 examples/loop_luv.lua
-- Optional: SMTP_CAFILE, SMTP_SUBJECT, SMTP_DEBUG=1.
local uv = require "luv"
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
local status = 1

coroutine.wrap(function()
  local ok, res = pcall(smtp.send, {
    loop = smtp.loop.luv(uv),
    host = env("SMTP_HOST"), port = tonumber(env("SMTP_PORT", "587")), timeout = 30,
    tls = user and { ca_file = os.getenv("SMTP_CAFILE") } or nil,
    user = user, password = os.getenv("SMTP_PASSWORD"),
    debug = os.getenv("SMTP_DEBUG") == "1",
    raw = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nSent from a libuv loop.\r\n")
      :format(env("SMTP_FROM"), env("SMTP_TO"), env("SMTP_SUBJECT", "Hello from luv")),
  })
  if ok then
    print(("sent: %d %s"):format(res.reply.code, res.reply.text or ""))
    status = 0
  else
    io.stderr:write("not sent: ", tostring(res), "\n")
  end
end)()

uv.run()
os.exit(status)
