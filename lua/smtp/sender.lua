--- smtp.sender: senders with smtp.pool's `send(msg, opts)` and report
-- that deliver without an SMTP server (issue 25): usable by outbox:run
-- and by code written against a pool.
-- @module smtp.sender
local M = {}

--- A sender through the local sendmail program:
-- `{path="/usr/sbin/sendmail", args={...}, timeout=60}` (lua/smtp/sender/sendmail.lua).
M.sendmail = require "smtp.sender.sendmail"

--- A sender that writes each message as a Maildir file in `dir`
-- (lua/smtp/sender/maildir.lua).
M.maildir = require "smtp.sender.maildir"

--- A sender that keeps each message in its `.messages` list as
-- `{from=, to={...}, data=}` (lua/smtp/sender/memory.lua).
M.memory = require "smtp.sender.memory"

return M
