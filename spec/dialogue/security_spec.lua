-- Hostile-server behaviours and the security review's Lua-layer findings
-- (issue 14): STARTTLS stripping (M1), verify = "none" (L2), smtp.connect's
-- tls (L3), outcome precision (M4, L6), 421 anywhere, a refusal followed
-- by a close, reply classes at STARTTLS, credentials without AUTH, long
-- initial responses, masking in client:command (L5) and bounded timeouts
-- (L11). Scripted servers play exact transcripts; the TLS cases use a
-- Python peer with real STARTTLS (spec/helpers/starttls_peer.py).
local smtp = require "smtp"
local scripted = require "helpers.scripted"
local P = require "helpers.proc"
local certs = require "helpers.certs"

local RAW = "From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n"

-- Runs fn(client) against a transcript; returns the error fn raised (or
-- nil), whether the client ended closed, the server's verdict, the bytes
-- it received and the client's trace.
local function dialogue(transcript, fn, copts)
  local server = scripted.start(transcript)
  local trace = {}
  local opts = { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "c.example",
    debug = function(dir, line) trace[#trace + 1] = dir .. ": " .. line end }
  for k, v in pairs(copts or {}) do opts[k] = v end
  local client
  local ok, err = pcall(function()
    client = smtp.connect(opts)
    return fn(client)
  end)
  local closed = client and client:closed()
  if client then client:close() end
  local sok, serr, received = server:result()
  return (not ok) and err or nil, closed, sok, serr, received[1] or "", table.concat(trace, "\n")
end

local function expect_error(err, kind, code)
  assert.is_true(smtp.Error.is(err), "expected an smtp.Error, got " .. tostring(err))
  assert.equal(kind, err.kind, tostring(err))
  if code then assert.equal(code, err.code, tostring(err)) end
end

local GREET = "S: 220 mx ESMTP\nC: EHLO c.example\n"

describe("STARTTLS stripping (review M1)", function()
  local STRIPPED = GREET .. "S: 250-mx\nS: 250 AUTH CRAM-MD5 PLAIN\n"

  it("makes tls = {...} mean TLS required: no AUTH, no MAIL to a server without STARTTLS", function()
    local err, closed, sok, serr, received = dialogue(STRIPPED, function(c)
      c:authenticate { tls = { verify = "peer" }, user = "alice", password = "s3cret!" }
      c:sendmail(RAW)
    end)
    expect_error(err, "tls")
    assert.is_true(closed)
    assert.is_true(sok, serr)
    assert.equal("EHLO c.example\r\n", received)
  end)

  it("does the same for smtp.send", function()
    local server = scripted.start(STRIPPED)
    local ok, err = pcall(smtp.send, { host = "127.0.0.1", port = server.port, timeout = 5,
      local_name = "c.example", tls = { verify = "none" }, user = "alice", password = "s3cret!", raw = RAW })
    local sok, serr, received = server:result()
    assert.is_false(ok)
    expect_error(err, "tls")
    assert.is_true(sok, serr)
    assert.equal("EHLO c.example\r\n", received[1])
  end)

  it("runs no password mechanism over plaintext without allow_plaintext", function()
    for _, mech in ipairs { "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-256", "SCRAM-SHA-1", "LOGIN", "PLAIN" } do
      local err, _, sok, serr, received = dialogue(GREET .. "S: 250-mx\nS: 250 AUTH " .. mech .. "\n",
        function(c) c:authenticate { user = "alice", password = "s3cret!", mechanisms = { mech } } end)
      expect_error(err, "usage")
      assert.truthy(err.message:find("allow_plaintext", 1, true), err.message)
      assert.is_true(sok, serr)
      assert.equal("EHLO c.example\r\n", received, mech)
    end
  end)

  it("runs no token mechanism over plaintext without allow_plaintext", function()
    local err, _, sok, serr, received = dialogue(GREET .. "S: 250-mx\nS: 250 AUTH XOAUTH2 OAUTHBEARER\n",
      function(c) c:authenticate { user = "alice", token = "tok" } end)
    expect_error(err, "usage")
    assert.is_true(sok, serr)
    assert.equal("EHLO c.example\r\n", received)
  end)

  it("runs CRAM-MD5 over plaintext when allow_plaintext = true", function()
    local err, _, sok, serr = dialogue(GREET .. "S: 250-mx\nS: 250 AUTH CRAM-MD5\n" ..
      "C: AUTH CRAM-MD5\nS: 334 PDEyMzRAbXg+\nC: YWxpY2UgMmYzMjE0NjJjYzg0NjkwOGE4YjczMjg1MzNiYzBjZmY=\n" ..
      "S: 235 ok\n", function(c)
        c:authenticate { user = "alice", password = "s3cret!", allow_plaintext = true }
      end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)

  it("continues in clear without STARTTLS only when tls_required = false is said", function()
    local err, _, sok, serr, _, trace = dialogue(GREET .. "S: 250-mx\nS: 250 8BITMIME\n" ..
      "C: MAIL FROM:<a@example.org> BODY=8BITMIME\nS: 250 ok\n", function(c)
        c:authenticate { tls = { verify = "none" }, tls_required = false }
        c:mail("a@example.org", { BODY = "8BITMIME" })
      end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.truthy(trace:find("STARTTLS not offered", 1, true), trace)
  end)

  it("keeps SECURID and NTLM, asked for by name, off plaintext (review L13)", function()
    local sasl = require "smtp.sasl"
    for _, m in ipairs { "SECURID", "NTLM" } do
      local ok, err = pcall(sasl.choose, { m }, { user = "a", password = "b", mechanisms = { m } }, false)
      if sasl.supports(m) then
        assert.is_false(ok, m)
        expect_error(err, "usage")
      end
    end
  end)

  it("leaves DIGEST-MD5 out of the default order (RFC 6331)", function()
    local sasl = require "smtp.sasl"
    for _, m in ipairs(sasl.default_order) do assert.not_equal("DIGEST-MD5", m) end
    assert.equal("CRAM-MD5", sasl.choose({ "DIGEST-MD5", "CRAM-MD5" }, { user = "a", password = "b" }, true))
    assert.is_nil(sasl.choose({ "DIGEST-MD5" }, { user = "a", password = "b" }, true))
    assert.equal("DIGEST-MD5", sasl.choose({ "DIGEST-MD5" },
      { user = "a", password = "b", mechanisms = { "DIGEST-MD5" } }, true))
  end)
end)

describe("TLS required: EHLO and STARTTLS refusals", function()
  it("does not fall back to HELO when TLS is required", function()
    local err, closed, sok, serr, received = dialogue(GREET .. "S: 502 5.5.1 no EHLO here\n", function(c)
      c:authenticate { tls = { verify = "none" }, user = "a", password = "b" }
    end)
    expect_error(err, "tls", 502)
    assert.is_true(closed)
    assert.is_true(sok, serr)
    assert.equal("EHLO c.example\r\n", received)
  end)

  it("still falls back to HELO when TLS is not asked for", function()
    local err, _, sok, serr = dialogue(GREET .. "S: 502 5.5.1 no\nC: HELO c.example\nS: 250 mx\n",
      function(c) c:authenticate {} end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)

  for _, reply in ipairs { "250 ok", "454 4.7.0 not now", "554 5.7.0 never", "334 what" } do
    it("treats '" .. reply .. "' to STARTTLS as kind tls, sending nothing more", function()
      local err, closed, sok, serr, received = dialogue(GREET .. "S: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: " ..
        reply .. "\n", function(c)
          c:authenticate { tls = { verify = "none" }, user = "a", password = "b" }
        end)
      expect_error(err, "tls", tonumber(reply:sub(1, 3)))
      assert.is_true(closed)
      assert.is_true(sok, serr)
      assert.equal("EHLO c.example\r\nSTARTTLS\r\n", received)
    end)
  end
end)

describe("smtp.connect's tls (review L3)", function()
  it("does STARTTLS before a sendmail without authenticate, and refuses when it is not offered", function()
    local err, closed, sok, serr, received = dialogue(GREET .. "S: 250-mx\nS: 250 PIPELINING\n",
      function(c) c:sendmail(RAW) end, { tls = { verify = "none" } })
    expect_error(err, "tls")
    assert.is_true(closed)
    assert.is_true(sok, serr)
    assert.equal("EHLO c.example\r\n", received)
  end)

  it("sends in clear after connect{tls_required = false} when STARTTLS is not offered", function()
    local err, _, sok, serr = dialogue(GREET .. "S: 250 mx\nC: MAIL FROM:<a@example.org>\nS: 250 ok\n" ..
      "C: RCPT TO:<b@example.org>\nS: 250 ok\nC: DATA\nS: 354 go\nBODY\nS: 250 ok\n",
      function(c) c:sendmail(RAW) end, { tls = { verify = "none" }, tls_required = false })
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)

  it("refuses a tls option of the wrong type and a non-boolean tls_required", function()
    local ok, err = pcall(smtp.connect, { host = "127.0.0.1", port = 1, tls = "yes" })
    assert.is_false(ok)
    expect_error(err, "usage")
    ok, err = pcall(smtp.connect, { host = "127.0.0.1", port = 1, tls_required = "yes" })
    assert.is_false(ok)
    expect_error(err, "usage")
  end)
end)

describe("credentials without AUTH", function()
  it("raises kind authentication and sends neither AUTH nor MAIL", function()
    local server = scripted.start(GREET .. "S: 250-mx\nS: 250 PIPELINING\n")
    local ok, err = pcall(smtp.send, { host = "127.0.0.1", port = server.port, timeout = 5,
      local_name = "c.example", user = "alice", password = "pw", allow_plaintext = true, raw = RAW })
    local sok, serr, received = server:result()
    assert.is_false(ok)
    expect_error(err, "authentication")
    assert.is_true(sok, serr)
    assert.equal("EHLO c.example\r\n", received[1])
  end)

  it("skips AUTH when no credentials are given", function()
    local err, _, sok, serr = dialogue(GREET .. "S: 250 mx\n", function(c) c:authenticate {} end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)
end)

describe("a long initial SASL response (RFC 4954 4)", function()
  it("goes after the 334 when the AUTH line would pass 512 octets", function()
    local token = ("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9"):rep(70) -- a 2.5 KB JWT
    local initial = require("smtp.core").sasl_b64encode("user=alice\1auth=Bearer " .. token .. "\1\1")
    local err, _, sok, serr, received = dialogue(GREET .. "S: 250-mx\nS: 250 AUTH XOAUTH2\n" ..
      "C: AUTH XOAUTH2\nS: 334 \nC: " .. initial .. "\nS: 235 ok\n", function(c)
        c:authenticate { user = "alice", token = token, allow_plaintext = true }
      end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    for line in received:gmatch("[^\n]*\n") do
      if line:find("^AUTH") then assert.is_true(#line <= 512, #line) end
    end
  end)
end)

describe("421 ends the session", function()
  local LOCKSTEP = GREET .. "S: 250-mx\nS: 250 8BITMIME\n"

  it("at RCPT without PIPELINING: no further RCPT, no RSET, no DATA; transient and closed", function()
    local err, closed, sok, serr, received = dialogue(LOCKSTEP ..
      "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nS: 421 4.3.2 shutting down\n",
      function(c) c:sendmail(RAW, { to = { "b@example.org", "c@example.org", "d@example.org" } }) end)
    expect_error(err, "transient", 421)
    assert.equal("not_sent", err.outcome)
    assert.is_true(closed)
    assert.is_true(sok, serr)
    assert.equal("EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n", received)
  end)

  it("at MAIL: no RSET; transient and closed", function()
    local err, closed, sok, serr, received = dialogue(LOCKSTEP ..
      "C: MAIL FROM:<a@example.org>\nS: 421 4.3.2 bye\n", function(c) c:sendmail(RAW) end)
    expect_error(err, "transient", 421)
    assert.is_true(closed)
    assert.is_true(sok, serr)
    assert.equal("EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n", received)
  end)

  it("at a pipelined RCPT: no body, no RSET; transient, not_sent", function()
    local err, closed, sok, serr, received = dialogue(GREET .. "S: 250-mx\nS: 250 PIPELINING\n" ..
      "C: MAIL FROM:<a@example.org>\nC: RCPT TO:<b@example.org>\nC: RCPT TO:<c@example.org>\nC: DATA\n" ..
      "S: 250 ok\nS: 421 4.3.2 bye\n",
      function(c) c:sendmail(RAW, { to = { "b@example.org", "c@example.org" } }) end)
    expect_error(err, "transient", 421)
    assert.equal("not_sent", err.outcome)
    assert.is_true(closed)
    assert.is_true(sok, serr)
    assert.equal("EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n" ..
      "RCPT TO:<c@example.org>\r\nDATA\r\n", received)
  end)

  it("after the final dot: not_sent (the server refused it), not unknown", function()
    local err, closed = dialogue(GREET .. "S: 250-mx\nS: 250 PIPELINING\n" ..
      "C: MAIL FROM:<a@example.org>\nC: RCPT TO:<b@example.org>\nC: DATA\n" ..
      "S: 250 ok\nS: 250 ok\nS: 354 go\nBODY\nS: 421 4.3.2 bye\n", function(c) c:sendmail(RAW) end)
    expect_error(err, "transient", 421)
    assert.equal("not_sent", err.outcome)
    assert.is_true(err.retryable)
    assert.is_true(closed)
  end)

  it("during AUTH: transient, closed", function()
    local err, closed = dialogue(GREET .. "S: 250-mx\nS: 250 AUTH PLAIN\nC: AUTH PLAIN AGEAYg==\n" ..
      "S: 421 4.3.2 bye\n", function(c) c:authenticate { user = "a", password = "b", allow_plaintext = true } end)
    expect_error(err, "transient", 421)
    assert.is_true(closed)
  end)
end)

describe("a refusal followed by a close", function()
  it("reports a 451 to MAIL, not the io error of the RSET after it (lockstep)", function()
    local err, closed = dialogue(GREET .. "S: 250 mx\nC: MAIL FROM:<a@example.org>\nS: 451 4.3.0 later\nCLOSE\n",
      function(c) c:sendmail(RAW) end)
    expect_error(err, "transient", 451)
    assert.equal("not_sent", err.outcome)
    assert.is_true(closed)
  end)

  it("reports a 451 to MAIL, not the io error of the pipelined reads after it", function()
    local err, closed = dialogue(GREET .. "S: 250-mx\nS: 250 PIPELINING\n" ..
      "C: MAIL FROM:<a@example.org>\nC: RCPT TO:<b@example.org>\nC: DATA\nS: 451 4.3.0 later\nCLOSE\n",
      function(c) c:sendmail(RAW) end)
    expect_error(err, "transient", 451)
    assert.equal("not_sent", err.outcome)
    assert.is_true(closed)
  end)

  it("reports a 550 to MAIL the same way with CHUNKING", function()
    local err = dialogue(GREET .. "S: 250-mx\nS: 250-PIPELINING\nS: 250 CHUNKING\n" ..
      "C: MAIL FROM:<a@example.org>\nC: RCPT TO:<b@example.org>\nBDAT\nS: 550 5.7.1 no\nCLOSE\n",
      function(c) c:sendmail(RAW) end)
    expect_error(err, "permanent", 550)
  end)
end)

describe("outcome precision (review M4, L6)", function()
  it("BINARYMIME in lockstep: a drop after BDAT LAST is unknown, not retryable", function()
    local body = ("x\0"):rep(1310000) -- 2.5 MiB: a chunk, then an empty LAST, through the Lua path
    local raw = "From: a@example.org\r\nTo: b@example.org\r\n\r\n" .. body
    local err = dialogue(GREET .. "S: 250-mx\nS: 250-PIPELINING\nS: 250-CHUNKING\nS: 250 BINARYMIME\n" ..
      "C: MAIL FROM:<a@example.org> BODY=BINARYMIME\nC: RCPT TO:<b@example.org>\n" ..
      "S: 250 ok\nS: 250 ok\nBDAT\nBDAT\nCLOSE\n", function(c)
        c:sendmail(raw, { all_or_nothing = true, progress = function() end })
      end)
    expect_error(err, "io")
    assert.equal("unknown", err.outcome)
    assert.is_false(err.retryable)
  end)

  -- The server stops reading (DEAF, not STALL, which drains): 16 MiB is
  -- more than the loopback buffers hold, so a block write times out.
  it("a write that times out in the middle of the body is not_sent", function()
    local raw = "From: a@example.org\r\nTo: b@example.org\r\n\r\n" .. (("y"):rep(510) .. "\r\n"):rep(32 * 1024)
    local err, closed = dialogue(GREET .. "S: 250-mx\nS: 250 PIPELINING\n" ..
      "C: MAIL FROM:<a@example.org>\nC: RCPT TO:<b@example.org>\nC: DATA\n" ..
      "S: 250 ok\nS: 250 ok\nS: 354 go\nDEAF 3\n", function(c) c:sendmail(raw) end,
      { timeouts = { data_block = 1 } })
    expect_error(err, "timeout")
    assert.equal("not_sent", err.outcome)
    assert.is_true(err.retryable)
    assert.is_true(closed)
  end)

  it("a final reply that never comes after the terminator is unknown", function()
    local err = dialogue(GREET .. "S: 250-mx\nS: 250 PIPELINING\n" ..
      "C: MAIL FROM:<a@example.org>\nC: RCPT TO:<b@example.org>\nC: DATA\n" ..
      "S: 250 ok\nS: 250 ok\nS: 354 go\nBODY\nCLOSE\n", function(c) c:sendmail(RAW) end)
    expect_error(err, "io")
    assert.equal("unknown", err.outcome)
  end)

  it("LMTP: a drop part-way through the replies keeps the confirmed deliveries", function()
    local err = dialogue("S: 220 lmtp\nC: LHLO c.example\nS: 250-lmtp\nS: 250 PIPELINING\n" ..
      "C: MAIL FROM:<a@example.org>\nC: RCPT TO:<alice@example.org>\nC: RCPT TO:<bob@example.org>\n" ..
      "C: RCPT TO:<carol@example.org>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 250 ok\nS: 250 ok\nS: 354 go\n" ..
      "BODY\nS: 250 2.0.0 alice ok\nCLOSE\n", function(c)
        c:sendmail(RAW, { to = { "alice@example.org", "bob@example.org", "carol@example.org" } })
      end, { protocol = "lmtp" })
    expect_error(err, "io")
    assert.equal("unknown", err.outcome)
    assert.is_false(err.retryable)
    assert.is_table(err.report)
    assert.same({ "alice@example.org" }, err.report.accepted)
    assert.same({ "bob@example.org", "carol@example.org" }, err.report.unknown)
  end)
end)

describe("a NUL byte in a file or function source (review L14)", function()
  local body = "From: a@example.org\r\nTo: b@example.org\r\n\r\nline one\r\nnul \0 here\r\n"
  local sources = {
    ["function"] = function()
      local done = false
      return function() if done then return nil end done = true return body end
    end,
    file = function()
      local f = io.tmpfile()
      f:write(body)
      f:seek("set")
      return f
    end,
  }
  for name, make in pairs(sources) do
    it("is kind usage, not_sent, and the message is never terminated (" .. name .. ")", function()
      local err, closed, _, _, received = dialogue(GREET .. "S: 250-mx\nS: 250 PIPELINING\n" ..
        "C: MAIL FROM:<a@example.org>\nC: RCPT TO:<b@example.org>\nC: DATA\n" ..
        "S: 250 ok\nS: 250 ok\nS: 354 go\n", function(c) c:sendmail(make()) end)
      expect_error(err, "usage")
      assert.truthy(err.message:find("NUL", 1, true), err.message)
      assert.equal("not_sent", err.outcome)
      assert.is_false(err.retryable)
      assert.is_true(closed)
      assert.is_nil(received:find("\r\n.\r\n", 1, true))
      assert.is_nil(received:find("\0", 1, true))
    end)
  end
end)

describe("masking in client:command (review L5)", function()
  it("masks AUTH lines and the lines of an open 334 exchange in traces and errors", function()
    -- The server hangs up at the last line: the error then names the
    -- command, which must be masked too.
    local err, _, _, _, received, trace = dialogue(GREET .. "S: 250 mx\nC: AUTH PLAIN AGFsaWNlAHMzY3JldCE=\n" ..
      "S: 535 no\nC: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: YWxpY2U=\nS: 334 UGFzc3dvcmQ6\nC: czNjcmV0IQ==\n" ..
      "CLOSE\n", function(c)
        c:helo()
        assert.equal(535, (c:command("AUTH PLAIN AGFsaWNlAHMzY3JldCE=")))
        assert.equal(334, (c:command("AUTH LOGIN")))
        assert.equal(334, (c:command("YWxpY2U=")))
        c:command("czNjcmV0IQ==")
      end)
    expect_error(err, "io")
    assert.truthy(received:find("czNjcmV0IQ==\r\n", 1, true), received)
    for _, secret in ipairs { "AGFsaWNlAHMzY3JldCE=", "YWxpY2U=", "czNjcmV0IQ==" } do
      assert.is_nil(trace:find(secret, 1, true), trace)
      assert.is_nil(tostring(err):find(secret, 1, true), tostring(err))
    end
    assert.truthy(trace:find("C: AUTH PLAIN ***", 1, true), trace)
    assert.truthy(trace:find("C: AUTH LOGIN", 1, true), trace)
  end)
end)

describe("timeouts are bounded (review L11)", function()
  for _, bad in ipairs { 0 / 0, math.huge, -math.huge, 1e300, 0, -1 } do
    it("refuses timeout = " .. tostring(bad) .. " with kind usage", function()
      local ok, err = pcall(smtp.connect, { host = "127.0.0.1", port = 1, timeout = bad })
      assert.is_false(ok)
      expect_error(err, "usage")
      ok, err = pcall(smtp.connect, { host = "127.0.0.1", port = 1, timeouts = { greeting = bad } })
      assert.is_false(ok)
      expect_error(err, "usage")
    end)
  end
end)

describe("verify = \"none\" is not an authenticated peer (review L2)", function()
  local pki, peer, dir, port

  setup(function()
    pki = certs.make()
    dir = P.tempdir("starttls-peer")
    local pid = P.spawn(("/usr/bin/python3 spec/helpers/starttls_peer.py normal %s %s %s %s"):format(
      P.q(pki.server_cert), P.q(pki.server_key), P.q(dir .. "/log"), P.q(dir .. "/port")), dir .. "/stderr")
    P.watchdog("kill -9 " .. pid .. " 2>/dev/null", pid)
    peer = pid
    port = P.wait_for(10, function() return tonumber((P.read_file(dir .. "/port") or ""):match("^(%d+)")) end)
    assert(port, "starttls peer did not start: " .. tostring(P.read_file(dir .. "/stderr")))
  end)

  teardown(function()
    if peer then P.terminate(peer, 1) end
  end)

  local function session(copts, fn)
    local before = #(P.read_file(dir .. "/log") or "")
    local c = smtp.connect { host = "127.0.0.1", port = port, timeout = 5, local_name = "c.example" }
    local ok, err = pcall(fn, c, copts)
    c:close()
    P.sleep(0.1)
    return ok, err, (P.read_file(dir .. "/log") or ""):sub(before + 1)
  end

  it("holds PLAIN back over TLS with verify = none", function()
    local ok, err, log = session(nil, function(c)
      c:authenticate { tls = { verify = "none" }, user = "alice", password = "s3cret!" }
    end)
    assert.is_false(ok)
    expect_error(err, "usage")
    assert.truthy(err.message:find("verified", 1, true), err.message)
    assert.truthy(log:find("tls EHLO", 1, true), log)
    assert.is_nil(log:find("AUTH", 1, true), log)
  end)

  it("authenticates over verify = none with allow_plaintext, and over a verified peer", function()
    local ok, err, log = session(nil, function(c)
      c:authenticate { tls = { verify = "none" }, user = "alice", password = "s3cret!", allow_plaintext = true }
    end)
    assert.is_true(ok, tostring(err))
    assert.truthy(log:find("tls AUTH PLAIN", 1, true), log)
    ok, err, log = session(nil, function(c)
      c:authenticate { tls = { ca_file = pki.ca_cert }, user = "alice", password = "s3cret!" }
      assert.is_true(c:tls_info().peer_verified)
    end)
    assert.is_true(ok, tostring(err))
    assert.truthy(log:find("tls AUTH PLAIN", 1, true), log)
  end)

  it("refuses REQUIRETLS over verify = none, sends it over a verified peer", function()
    local ok, err, log = session(nil, function(c)
      c:authenticate { tls = { verify = "none" } }
      c:sendmail(RAW, { requiretls = true })
    end)
    assert.is_false(ok)
    expect_error(err, "permanent")
    assert.is_nil(log:find("MAIL", 1, true), log)
    ok, err, log = session(nil, function(c)
      c:authenticate { tls = { ca_file = pki.ca_cert } }
      c:sendmail(RAW, { requiretls = true })
    end)
    assert.is_true(ok, tostring(err))
    assert.truthy(log:find("tls MAIL FROM:<a@example.org> REQUIRETLS", 1, true), log)
  end)
end)

describe("AUTH offered only before STARTTLS", function()
  it("raises kind authentication after TLS and sends no AUTH", function()
    local pki = certs.make()
    local dir = P.tempdir("starttls-peer")
    local pid = P.spawn(("/usr/bin/python3 spec/helpers/starttls_peer.py auth-before-only %s %s %s %s"):format(
      P.q(pki.server_cert), P.q(pki.server_key), P.q(dir .. "/log"), P.q(dir .. "/port")), dir .. "/stderr")
    P.watchdog("kill -9 " .. pid .. " 2>/dev/null", pid)
    local port = P.wait_for(10, function() return tonumber((P.read_file(dir .. "/port") or ""):match("^(%d+)")) end)
    assert(port, "starttls peer did not start")
    local ok, err = pcall(smtp.send, { host = "127.0.0.1", port = port, timeout = 5, local_name = "c.example",
      tls = { ca_file = pki.ca_cert }, user = "alice", password = "s3cret!", raw = RAW })
    P.sleep(0.1)
    local log = P.read_file(dir .. "/log") or ""
    P.terminate(pid, 1)
    assert.is_false(ok)
    expect_error(err, "authentication")
    assert.truthy(err.message:find("before STARTTLS", 1, true), err.message)
    assert.truthy(log:find("tls EHLO", 1, true), log)
    assert.is_nil(log:find("AUTH", 1, true), log)
    assert.is_nil(log:find("MAIL", 1, true), log)
  end)
end)
