-- Hostile replies over a real socket (issue 8, SPEC 7): bytes no honest
-- server sends must end in a clear smtp.Error (or be carried as opaque
-- text), never a crash, a hang past the deadline, or a wrong byte on the
-- wire. The parser's own unit cases are in spec/unit/reply_parser_spec.lua;
-- these go through the client, the connection and the deadline.
local smtp = require "smtp"
local core = require "smtp.core"
local scripted = require "helpers.scripted"

local GREET_EHLO = "S: 220 mx ESMTP\nC: EHLO client.example\n"
local EHLO_PLAIN = GREET_EHLO .. "S: 250-mx\nS: 250 ENHANCEDSTATUSCODES\n"
local EHLO_PIPE = GREET_EHLO .. "S: 250-mx\nS: 250 PIPELINING\n"
local RAW = "From: a@example.org\r\nTo: b@example.org\r\n\r\nbody\r\n"
local RAW2 = "From: a@example.org\r\nTo: b@example.org, c@example.org\r\n\r\nbody\r\n"

-- Runs fn(client) against a transcript. Returns the error fn raised (nil
-- when none), whether the client was closed afterwards, the time taken,
-- the server's verdict and the bytes it received.
local function dialogue(transcript, fn, timeout)
  local server = scripted.start(transcript)
  local client
  local t0 = core.now()
  local ok, err = pcall(function()
    client = smtp.connect { host = "127.0.0.1", port = server.port, timeout = timeout or 5,
      local_name = "client.example" }
    return fn(client)
  end)
  local elapsed = core.now() - t0
  local closed = client and client:closed()
  if client then client:close() end
  local sok, serr, received = server:result()
  return (not ok) and err or nil, closed, elapsed, sok, serr, received[1] or ""
end

local function expect_error(err, kind)
  assert.is_true(smtp.Error.is(err), "expected an smtp.Error, got " .. tostring(err))
  assert.equal(kind, err.kind, tostring(err))
  -- An error must always render, whatever bytes the server sent.
  assert.equal("string", type(tostring(err)))
end

describe("hostile replies", function()
  describe("odd bytes carried as text", function()
    -- RFC 5321 replies are text: a NUL is a protocol error, not text.
    it("refuses NUL bytes in a refusal as a protocol error, without sending them anywhere", function()
      local err, closed, _, sok, serr, received = dialogue(EHLO_PLAIN ..
        "C: MAIL FROM:<a@example.org>\nS: 550 5.7.1 no\\0pe\\0\n", function(c)
          c:mail("a@example.org")
        end)
      expect_error(err, "protocol")
      assert.truthy(err.message:find("NUL", 1, true), err.message)
      assert.is_true(closed)
      assert.is_true(sok, serr)
      assert.is_nil(received:find("\0", 1, true))
    end)

    it("keeps non-UTF-8 bytes of a refusal and renders the error", function()
      local err, _, _, sok, serr = dialogue(EHLO_PLAIN ..
        "C: MAIL FROM:<a@example.org>\nS: 451 4.3.0 \\xff\\xfe\\xc3 r\\xe9essayez\nC: QUIT\nS: 221 bye\n", function(c)
          local ok, e = pcall(c.mail, c, "a@example.org")
          c:quit()
          assert.is_false(ok)
          error(e, 0)
        end)
      expect_error(err, "transient")
      assert.equal(451, err.code)
      assert.truthy(err.message:find("\255\254\195 r\233essayez", 1, true))
      assert.is_true(sok, serr)
    end)

    it("refuses an EHLO keyword with NUL and 8-bit bytes as a protocol error", function()
      local err, closed, _, sok, serr, received = dialogue(GREET_EHLO ..
        "S: 250-mx\nS: 250-X\\0EVIL\\xff\nS: 250 8BITMIME\n", function(c)
          c:helo()
        end)
      expect_error(err, "protocol")
      assert.is_true(closed)
      assert.is_true(sok, serr)
      assert.equal("EHLO client.example\r\n", received)
    end)
  end)

  describe("oversized and endless replies", function()
    it("rejects a 1 MiB reply line to RCPT and closes", function()
      local err, closed = dialogue(EHLO_PLAIN ..
        "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nBIGLINE 1048576\n", function(c)
          c:sendmail(RAW)
        end)
      expect_error(err, "protocol")
      assert.truthy(err.message:find("too long", 1, true))
      assert.is_true(closed)
    end)

    it("rejects a line that never ends long before the deadline", function()
      local err, closed, elapsed = dialogue("R: 220 " .. string.rep("x", 70000) .. "\nSTALL\n",
        function() end, 5)
      expect_error(err, "protocol")
      assert.truthy(err.message:find("too long", 1, true))
      assert.is_nil(closed) -- connect itself failed: no client
      assert.is_true(elapsed < 4, ("took %.2f s"):format(elapsed))
    end)

    it("rejects endless continuation lines to EHLO long before the deadline", function()
      local err, closed, elapsed, _, _, received = dialogue(GREET_EHLO .. "ENDLESS 250-x\n", function(c)
        c:helo()
      end, 5)
      expect_error(err, "protocol")
      assert.truthy(err.message:find("too many lines", 1, true))
      assert.is_true(closed)
      assert.is_true(elapsed < 4, ("took %.2f s"):format(elapsed))
      assert.equal("EHLO client.example\r\n", received)
    end)

    it("rejects endless continuation lines to DATA and sends no body", function()
      local err, closed, _, _, _, received = dialogue(EHLO_PLAIN ..
        "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\nC: DATA\n" ..
        "ENDLESS 354-go on\n", function(c) c:sendmail(RAW) end)
      expect_error(err, "protocol")
      assert.is_true(closed)
      assert.is_nil(received:find("body", 1, true))
    end)
  end)

  describe("malformed codes", function()
    local cases = {
      { "a four-digit greeting", "S: 2500 mx\n", "connect" },
      { "a two-digit greeting", "S: 25\n", "connect" },
      { "a greeting code 220 with a bad separator", "S: 220+mx\n", "connect" },
      { "mismatched codes in the EHLO reply", GREET_EHLO .. "S: 250-mx\nS: 550 PIPELINING\n", "helo" },
      { "a four-digit code to RCPT", EHLO_PLAIN .. "C: MAIL FROM:<a@example.org>\nS: 250 ok\n" ..
        "C: RCPT TO:<b@example.org>\nS: 2500 ok\n", "send" },
      { "a two-digit code to MAIL", EHLO_PLAIN .. "C: MAIL FROM:<a@example.org>\nS: 25 ok\n", "send" },
      { "mismatched codes in the reply after the dot", EHLO_PLAIN .. "C: MAIL FROM:<a@example.org>\n" ..
        "S: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\nC: DATA\nS: 354 go\nBODY\nS: 250-queued\nS: 550 no\n",
        "send", "unknown" },
      { "a 1xx code to MAIL", EHLO_PLAIN .. "C: MAIL FROM:<a@example.org>\nS: 150 ok\n", "send" },
    }
    for _, case in ipairs(cases) do
      it("rejects " .. case[1] .. " and closes", function()
        local err, closed = dialogue(case[2], function(c)
          if case[3] == "helo" then c:helo() elseif case[3] == "send" then c:sendmail(RAW) end
        end)
        expect_error(err, "protocol")
        assert.truthy(err.message:find("malformed reply", 1, true), err.message)
        if case[3] ~= "connect" then assert.is_true(closed) end
        if case[4] then assert.equal(case[4], err.outcome) end
      end)
    end
  end)

  describe("replies out of turn", function()
    it("refuses 250 instead of 354 to a pipelined DATA and sends no body", function()
      local err, closed, _, _, _, received = dialogue(EHLO_PIPE ..
        "C: MAIL FROM:<a@example.org>\nC: RCPT TO:<b@example.org>\nC: DATA\n" ..
        "R: 250 ok\\r\\n250 ok\\r\\n250 ok\\r\\n\n", function(c) c:sendmail(RAW) end)
      expect_error(err, "protocol")
      assert.equal(250, err.code)
      assert.is_true(closed)
      assert.equal("not_sent", err.outcome)
      assert.is_nil(received:find("body", 1, true))
      assert.is_nil(received:find("\r\n.\r\n", 1, true))
    end)

    it("refuses a second greeting in place of the EHLO reply", function()
      local err, closed = dialogue(GREET_EHLO .. "S: 220 mx again\n", function(c) c:helo() end)
      expect_error(err, "protocol")
      assert.is_true(closed)
    end)

    it("refuses a reply left over after a transaction before the next one starts", function()
      local err, closed, _, _, _, received = dialogue(EHLO_PLAIN ..
        "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\nC: DATA\n" ..
        "S: 354 go\nBODY\nR: 250 queued\\r\\n250 surprise\\r\\n\n", function(c)
          c:sendmail(RAW)
          c:sendmail(RAW)
        end)
      expect_error(err, "protocol")
      assert.truthy(err.message:find("unsolicited", 1, true))
      assert.is_true(closed)
      -- Exactly one transaction went out: nothing followed the stray reply.
      local _, dots = received:gsub("\r\n%.\r\n", "")
      assert.equal(1, dots)
      assert.is_nil(received:find("MAIL FROM.*MAIL FROM"))
    end)
  end)

  describe("pipelined replies", function()
    local REPLIES = "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go\r\n"
    local ENVELOPE = "C: MAIL FROM:<a@example.org>\nC: RCPT TO:<b@example.org>\nC: RCPT TO:<c@example.org>\n" ..
      "C: DATA\n"
    local function esc(s) return (s:gsub("\\", "\\\\"):gsub("\r", "\\r"):gsub("\n", "\\n")) end

    -- One session per way of cutting the replies into two packets (and
    -- one with all of them in a single packet), all against one server.
    it("maps every reply to its command whether they come in one packet or split at any byte", function()
      local sessions = {}
      for cut = 0, #REPLIES - 1 do
        local packets = cut == 0 and ("R: " .. esc(REPLIES) .. "\n")
          or ("R: " .. esc(REPLIES:sub(1, cut)) .. "\nSLEEP 0.02\nR: " .. esc(REPLIES:sub(cut + 1)) .. "\n")
        sessions[#sessions + 1] = EHLO_PIPE .. ENVELOPE .. packets ..
          "BODY\nS: 250 2.0.0 queued as Q" .. cut .. "\nC: QUIT\nS: 221 bye\n"
      end
      local server = scripted.start(table.concat(sessions, "NEXT\n"), #sessions)
      for cut = 0, #REPLIES - 1 do
        local c = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 5,
          local_name = "client.example" }
        local ok, res = pcall(c.sendmail, c, RAW2)
        c:quit()
        assert.is_true(ok, ("cut at %d: %s"):format(cut, tostring(res)))
        assert.same({ "b@example.org" }, res.accepted, "cut at " .. cut)
        assert.equal(1, #res.rejected)
        assert.equal("c@example.org", res.rejected[1].recipient)
        assert.equal(550, res.rejected[1].error.code)
        assert.equal("Q" .. cut, res.reply.queue_id)
      end
      local sok, serr = server:result()
      assert.is_true(sok, serr)
    end)
  end)
end)
