-- smtp.sender (issue 25 item 5): memory and maildir senders, and the
-- sendmail sender's argument list, exit status mapping, timeout and
-- in-flight marker, with small shell scripts standing in for the program
-- (spec/interop/sendmail_postfix_spec.lua runs Postfix's own sendmail).
local smtp = require "smtp"
local core = require "smtp.core"
local P = require "helpers.proc"

local RAW = "From: a@example.org\r\nTo: b@example.org\r\nBcc: c@example.org\r\nSubject: t\r\n\r\nline\n.\r\nend"

-- A stand-in sendmail: records its arguments and stdin, then runs `tail`.
local function program(tail)
  local dir = P.tempdir("sendmail")
  local path = dir .. "/sendmail"
  P.write_file(path, "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > "
    .. P.q(dir .. "/args") .. "\ncat > " .. P.q(dir .. "/stdin") .. "\n" .. (tail or "exit 0") .. "\n", "0755")
  return path, dir
end

local function lines(s)
  local out = {}
  for l in s:gmatch("([^\n]*)\n") do out[#out + 1] = l end
  return out
end

describe("smtp.sender.memory", function()
  it("keeps from, to and the bytes as sent, and reports like pool:send", function()
    local m = smtp.sender.memory()
    local r = m:send(RAW, {})
    assert.same({ accepted = { "b@example.org", "c@example.org" }, rejected = {}, server = "memory",
      servers = { "memory" }, tries = 1 }, r)
    assert.same({ { from = "a@example.org", to = { "b@example.org", "c@example.org" },
      data = "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nline\r\n.\r\nend\r\n" } }, m.messages)
    m:send(smtp.message { from = "x@example.org", to = "y@example.org", text = "hi" }, { to = "z@example.org" })
    assert.same({ "z@example.org" }, m.messages[2].to)
    assert.matches("\r\n\r\nhi", m.messages[2].data)
    m:clear()
    assert.same({}, m.messages)
  end)

  it("drains an outbox, and a bad message is a usage error", function()
    local ob = smtp.outbox(P.tempdir("outbox") .. "/box")
    ob:put(RAW, { to = "q@example.org" })
    local m = smtp.sender.memory()
    assert.same({ delivered = 1, failed = 0, deferred = 0, unknown = 0 }, ob:run(m))
    assert.same({ "q@example.org" }, m.messages[1].to)
    local ok, err = pcall(m.send, m, "Subject: none\r\n\r\nx", {})
    assert.is_false(ok)
    assert.equal("usage", err.kind)
  end)
end)

describe("smtp.sender.maildir", function()
  it("writes one file per message into new/, LF line ends, envelope on top", function()
    local dir = P.tempdir("maildir") .. "/Mail"
    local md = smtp.sender.maildir(dir)
    for _, sub in ipairs({ "tmp", "new", "cur" }) do
      local st = core.fs_lstat(dir .. "/" .. sub)
      assert.equal("directory", st.type)
      assert.equal(448, st.mode) -- 0700
    end
    local r1 = md:send(RAW, {})
    local r2 = md:send(RAW, { from = "", to = "d@example.org" })
    assert.same({ "b@example.org", "c@example.org" }, r1.accepted)
    assert.equal("maildir:" .. dir, r1.server)
    local names = core.fs_list(dir .. "/new")
    assert.equal(2, #names)
    assert.same({}, core.fs_list(dir .. "/tmp"))
    assert.not_equal(r1.file, r2.file)
    assert.matches("^%d+%.M%d+P%d+Q%d+R%x+%.[^/]+$", r1.file:match("[^/]+$"))
    assert.equal("Return-Path: <a@example.org>\nDelivered-To: b@example.org\nDelivered-To: c@example.org\n"
      .. "From: a@example.org\nTo: b@example.org\nSubject: t\n\nline\n.\nend\n", P.read_file(r1.file))
    assert.matches("^Return%-Path: <>\nDelivered%-To: d@example.org\n", P.read_file(r2.file))
    assert.equal(384, core.fs_lstat(r1.file).mode) -- 0600
  end)
end)

describe("smtp.sender.sendmail", function()
  it("runs the program without a shell: -i -f <from> -- <recipients>, message on stdin with LF", function()
    local path, dir = program()
    local s = smtp.sender.sendmail { path = path, args = { "-oem", "x y" } }
    -- Addresses a shell would act on stay single arguments.
    local hostile = { "-oQ/tmp@example.org", "\"$(touch /tmp/pwned);x\"@example.org", "b@example.org" }
    local r = s:send(RAW, { from = "-X@example.org", to = hostile })
    assert.same(hostile, r.accepted)
    assert.equal("sendmail:" .. path, r.server)
    assert.same({ "-oem", "x y", "-i", "-f", "-X@example.org", "--", hostile[1], hostile[2], hostile[3] },
      lines(P.read_file(dir .. "/args")))
    assert.equal("From: a@example.org\nTo: b@example.org\nSubject: t\n\nline\n.\nend\n", P.read_file(dir .. "/stdin"))
    s:send(RAW, { from = "" })
    assert.same({ "-oem", "x y", "-i", "-f", "<>", "--", "b@example.org", "c@example.org" },
      lines(P.read_file(dir .. "/args")))
  end)

  it("maps sysexits statuses to error kinds, with the program's words", function()
    local cases = { [75] = "transient", [67] = "permanent", [65] = "permanent", [68] = "permanent",
      [64] = "usage", [69] = "transient", [76] = "protocol", [1] = "transient" }
    for status, kind in pairs(cases) do
      local path = program("echo 'no such user here' >&2; exit " .. status)
      local s = smtp.sender.sendmail { path = path }
      local ok, err = pcall(s.send, s, RAW, {})
      assert.is_false(ok)
      assert.equal(kind, err.kind, "status " .. status)
      assert.equal(status, err.status)
      assert.equal("not_sent", err.outcome)
      assert.equal(1, err.tries)
      assert.same({}, err.report.accepted)
      assert.equal(2, #err.report.rejected)
      assert.equal(err, err.report.rejected[1].error)
      assert.matches("exited with status " .. status .. ".*no such user here", tostring(err))
    end
  end)

  it("a program still running at the timeout is killed: kind timeout, outcome unknown", function()
    local path = program("sleep 30")
    local s = smtp.sender.sendmail { path = path, timeout = 0.3 }
    local t = core.now()
    local ok, err = pcall(s.send, s, RAW, {})
    assert.is_false(ok)
    assert.is_true(core.now() - t < 5)
    assert.equal("timeout", err.kind)
    assert.equal("unknown", err.outcome)
  end)

  it("the timeout kills the program's helpers too (its process group)", function()
    local pidfile = P.tempdir("sendmail") .. "/helper.pid"
    local path = program("sleep 30 & echo $! > " .. P.q(pidfile) .. "; wait")
    local s = smtp.sender.sendmail { path = path, timeout = 0.5 }
    local ok, err = pcall(s.send, s, RAW, {})
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    local helper = tonumber((P.read_file(pidfile) or ""):match("%d+"))
    assert.is_number(helper)
    assert.is_true(P.wait_for(5, function() return not P.alive(helper) end, 0.05) == true)
  end)

  it("a program killed by a signal after reading the message: kind io, outcome unknown", function()
    local path = program("kill -9 $$")
    local s = smtp.sender.sendmail { path = path }
    local ok, err = pcall(s.send, s, RAW, {})
    assert.is_false(ok)
    assert.equal("io", err.kind)
    assert.equal(9, err.signal)
    assert.equal("unknown", err.outcome)
  end)

  it("a program that stops reading early fails the send (not_sent), no SIGPIPE", function()
    local dir = P.tempdir("sendmail")
    local path = dir .. "/sendmail"
    P.write_file(path, "#!/bin/sh\nexit 0\n", "0755")
    local s = smtp.sender.sendmail { path = path, timeout = 5 }
    local ok, err = pcall(s.send, s, "From: a@example.org\r\nTo: b@example.org\r\n\r\n" .. ("x"):rep(4e6), {})
    assert.is_false(ok)
    assert.equal("io", err.kind)
    assert.equal("not_sent", err.outcome)
  end)

  it("a missing program is kind io, unsent; bad options are kind usage", function()
    local s = smtp.sender.sendmail { path = "/nonexistent/sendmail" }
    local ok, err = pcall(s.send, s, RAW, {})
    assert.is_false(ok)
    assert.equal("io", err.kind)
    assert.equal("not_sent", err.outcome)
    for _, bad in ipairs({ { path = "sendmail" }, { args = "-t" }, { args = { 1 } }, { timeout = 0 },
        { colour = 1 }, "x" }) do
      local ok2, e2 = pcall(smtp.sender.sendmail, bad)
      assert.is_false(ok2)
      assert.equal("usage", e2.kind)
    end
  end)

  it("marks the end of data with opts.progress before closing stdin; a failing marker kills the program", function()
    local ran = P.tempdir("x") .. "/ran"
    local path = program("touch " .. P.q(ran))
    local s = smtp.sender.sendmail { path = path }
    local seen
    s:send(RAW, { progress = function(sent, total) seen = { sent, total, P.read_file(ran) } end })
    local lf = #"From: a@example.org\nTo: b@example.org\nSubject: t\n\nline\n.\nend\n"
    assert.same({ lf, lf }, seen) -- called before the program saw the end of its input
    assert.equal("", P.read_file(ran))
    os.remove(ran)
    local ok, err = pcall(s.send, s, RAW, { progress = function() error("disk full", 0) end })
    assert.is_false(ok)
    assert.equal("disk full", err)
    -- Killed before it saw the end of its input: it never got to its tail.
    assert.is_nil(P.read_file(ran))
  end)
end)
