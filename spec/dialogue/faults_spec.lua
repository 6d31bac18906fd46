-- Fault-injection matrix (SPEC 6 and 7): at every step of a session the
-- scripted server closes, stalls, trickles a reply one byte at a time, or
-- sends garbage. Each cell must end with the right smtp.Error kind within
-- the deadline plus one second, the client closed, no file descriptor
-- left behind, and a new connection working afterwards.
local smtp = require "smtp"
local core = require "smtp.core"
local scripted = require "helpers.scripted"

local TIMEOUT = 1
local BIG_BODY = string.rep("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijk\r\n",
  100000) -- 8 MB: more than the socket buffers hold

local function open_fds()
  local p = io.popen("ls /proc/" .. (io.open("/proc/self/stat"):read("*a"):match("^(%d+)")) .. "/fd")
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

-- Each step: the transcript before the fault, and what the client does.
local GREET = "S: 220 mx ESMTP\n"
local EHLO_TLS_AUTH = GREET .. "C: EHLO c.example\nS: 250-mx\nS: 250-STARTTLS\nS: 250 AUTH LOGIN\n"
local EHLO_AUTH = GREET .. "C: EHLO c.example\nS: 250-mx\nS: 250 AUTH LOGIN\n"
local EHLO = GREET .. "C: EHLO c.example\nS: 250-mx\nS: 250 8BITMIME\n"
local MSG = "From: a@example.org\r\nTo: b@example.org, c@example.org\r\n\r\nhello\r\n"

local function send(c) return c:sendmail(MSG) end
local function send_big(c) return c:sendmail("From: a@example.org\r\nTo: b@example.org\r\n\r\n" .. BIG_BODY) end

local steps = {
  { name = "greeting", script = "", run = function() end },
  { name = "EHLO", script = GREET .. "C: EHLO c.example\n", run = function(c) c:helo() end },
  { name = "STARTTLS", script = EHLO_TLS_AUTH .. "C: STARTTLS\n",
    run = function(c) c:authenticate { tls = { verify = "none" } } end },
  { name = "AUTH step 1", script = EHLO_AUTH .. "C: AUTH LOGIN\n",
    run = function(c) c:authenticate { user = "u", password = "p", allow_plaintext = true } end },
  { name = "AUTH step 2", script = EHLO_AUTH .. "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: dQ==\n",
    run = function(c) c:authenticate { user = "u", password = "p", allow_plaintext = true } end },
  { name = "MAIL", script = EHLO .. "C: MAIL FROM:<a@example.org>\n", run = send },
  { name = "RCPT 1", script = EHLO .. "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\n",
    run = send },
  { name = "RCPT 2", script = EHLO .. "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\n" ..
    "S: 250 ok\nC: RCPT TO:<c@example.org>\n", run = send },
  { name = "DATA", script = EHLO .. "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\n" ..
    "S: 250 ok\nC: RCPT TO:<c@example.org>\nS: 250 ok\nC: DATA\n", run = send },
  { name = "body", body = true, script = EHLO .. "C: MAIL FROM:<a@example.org>\nS: 250 ok\n" ..
    "C: RCPT TO:<b@example.org>\nS: 250 ok\nC: DATA\nS: 354 go\n", run = send_big },
  { name = "final dot", after_dot = true, script = EHLO .. "C: MAIL FROM:<a@example.org>\nS: 250 ok\n" ..
    "C: RCPT TO:<b@example.org>\nS: 250 ok\nC: RCPT TO:<c@example.org>\nS: 250 ok\nC: DATA\nS: 354 go\nBODY\n",
    run = send },
  { name = "QUIT", quit = true, script = GREET .. "C: QUIT\n", run = function(c) c:quit() end },
}

local faults = {
  close = { script = "CLOSE\n", kind = "io" },
  stall = { script = "STALL\n", kind = "timeout" },
  trickle = { script = "TRICKLE 0.4 250 this reply arrives one byte at a time\n", kind = "timeout" },
  garbage = { script = "R: \\x00\\xff\\xfe garbage \\x01\\r\\n\n", kind = "protocol" },
}

-- While the body is being written the client is not reading: a server
-- that stops reading makes the write time out, whatever else it does.
-- Garbage sent right after the 354 may already be buffered when the body
-- starts: that is an unsolicited reply (protocol) rather than a timeout.
local function expected_kinds(step, fault)
  if step.body and fault == "garbage" then return { timeout = true, protocol = true } end
  if step.body and fault ~= "close" then return { timeout = true } end
  return { [faults[fault].kind] = true }
end

describe("fault matrix", function()
  local baseline

  setup(function() baseline = open_fds() end)

  for _, step in ipairs(steps) do
    for _, fname in ipairs({ "close", "stall", "trickle", "garbage" }) do
      it(("%s at %s"):format(fname, step.name), function()
        local fault = faults[fname]
        local script = step.script .. fault.script
        if step.body and fname == "garbage" then
          script = step.script .. "R: \\x00garbage\\r\\n\nSTALL\n"
        end
        local server = scripted.start(script)
        local client
        local t0 = core.now()
        local ok, err = pcall(function()
          client = smtp.connect { host = "127.0.0.1", port = server.port, timeout = TIMEOUT,
            local_name = "c.example" }
          step.run(client)
        end)
        local elapsed = core.now() - t0
        if client then client:close() end
        server:stop()
        if step.quit then
          -- QUIT never raises: the client is closed, within the deadline.
          assert.is_true(ok, tostring(err))
        else
          assert.is_false(ok, "no error raised")
          assert.is_true(smtp.Error.is(err), tostring(err))
          assert.is_true(expected_kinds(step, fname)[err.kind] == true, "kind " .. tostring(err.kind))
          if step.after_dot then assert.equal("unknown", err.outcome) end
        end
        assert.is_true(elapsed < TIMEOUT + 1, ("took %.2f s"):format(elapsed))
        if client then assert.is_true(client:closed()) end
        collectgarbage()
        assert.equal(baseline, open_fds())
        -- A new connection afterwards works.
        local fresh = scripted.start("S: 220 ok\nC: NOOP\nS: 250 ok\nC: QUIT\nS: 221 bye\n")
        local c2 = smtp.connect { host = "127.0.0.1", port = fresh.port, timeout = 5 }
        assert.equal(250, c2:noop().code)
        c2:quit()
        assert.is_true((fresh:result()))
      end)
    end
  end
end)
