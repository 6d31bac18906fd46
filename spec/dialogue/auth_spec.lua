-- AUTH and STARTTLS dialogues against scripted servers: exact client
-- bytes for the OAuth mechanisms and LOGIN, the RFC 7628 error path,
-- hostile challenges, SCRAM's server signature, STARTTLS refusal and
-- response injection. No secret may reach an error or a trace.
local smtp = require "smtp"
local core = require "smtp.core"
local scripted = require "helpers.scripted"

local b64 = core.sasl_b64encode

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
  if client then client:close() end
  local sok, serr, received = server:result()
  return (not ok) and err or nil, sok, serr, received[1] or "", table.concat(trace, "\n"), client
end

local EHLO = function(mechs)
  return "S: 220 mx ESMTP\nC: EHLO c.example\nS: 250-mx\nS: 250 AUTH " .. mechs .. "\n"
end

describe("client:authenticate() dialogues", function()
  it("sends PLAIN with an initial response and masks it in the trace", function()
    local initial = b64("\0alice\0s3cret")
    local err, sok, serr, _, trace, client = dialogue(EHLO("PLAIN") .. "C: AUTH PLAIN " .. initial ..
      "\nS: 235 2.7.0 ok\n", function(c)
        c:authenticate { user = "alice", password = "s3cret", allow_plaintext = true }
      end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.is_true(client:authenticated())
    assert.truthy(trace:find("C: AUTH PLAIN ***", 1, true))
    assert.is_nil(trace:find(initial, 1, true))
    assert.is_nil(trace:find("s3cret", 1, true))
  end)

  it("runs LOGIN step by step with masked continuation lines", function()
    local err, sok, serr, _, trace = dialogue(EHLO("LOGIN") .. table.concat({
      "C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6", "C: " .. b64("alice"), "S: 334 UGFzc3dvcmQ6",
      "C: " .. b64("s3cret"), "S: 235 2.7.0 ok", "" }, "\n"), function(c)
        c:authenticate { user = "alice", password = "s3cret", allow_plaintext = true }
      end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.is_nil(trace:find(b64("s3cret"), 1, true))
    assert.truthy(trace:find("C: ***", 1, true))
  end)

  it("sends XOAUTH2 bytes exactly and reports the RFC 7628 JSON error", function()
    local initial = b64("user=alice@example.org\1auth=Bearer ya29.token\1\1")
    local json = '{"status":"401","schemes":"Bearer","scope":"https://mail.example.org/"}'
    local err, sok, serr, received, trace = dialogue(EHLO("XOAUTH2 PLAIN") .. table.concat({
      "C: AUTH XOAUTH2 " .. initial, "S: 334 " .. b64(json), "C: ", "S: 535 5.7.8 Username and Password not accepted",
      "" }, "\n"), function(c)
        c:authenticate { user = "alice@example.org", token = "ya29.token", allow_plaintext = true }
      end)
    assert.is_true(sok, serr)
    assert.equal("authentication", err.kind)
    assert.equal(535, err.code)
    assert.equal("5.7.8", err.enhanced)
    assert.truthy(err.message:find("status=401", 1, true), err.message)
    assert.is_nil(tostring(err):find("ya29", 1, true))
    assert.is_nil(trace:find("ya29", 1, true))
    assert.is_nil(trace:find(initial, 1, true))
    assert.truthy(received:find("AUTH XOAUTH2 " .. initial .. "\r\n\r\n", 1, true))
  end)

  it("sends OAUTHBEARER per RFC 7628 and answers its error with \\1", function()
    local json = '{"status":"invalid_token","scope":"mail"}'
    local transcript = function(port)
      local initial = b64("n,a=alice@example.org,\1host=127.0.0.1\1port=" .. port .. "\1auth=Bearer tok\1\1")
      return EHLO("OAUTHBEARER") .. table.concat({
        "C: AUTH OAUTHBEARER " .. initial, "S: 334 " .. b64(json), "C: " .. b64("\1"),
        "S: 535 5.7.8 invalid token", "" }, "\n")
    end
    local err, sok, serr, _, trace = dialogue(transcript, function(c)
      c:authenticate { user = "alice@example.org", token = "tok", allow_plaintext = true }
    end)
    assert.is_true(sok, serr)
    assert.equal("authentication", err.kind)
    assert.equal(535, err.code)
    assert.truthy(err.message:find("status=invalid_token", 1, true), err.message)
    assert.equal("mail", err.detail.scope)
    assert.is_nil(trace:find("tok\1", 1, true))
  end)

  it("cancels with * on a malformed base64 challenge", function()
    local err, sok, serr, received = dialogue(EHLO("CRAM-MD5") .. table.concat({
      "C: AUTH CRAM-MD5", "S: 334 !!!not-base64!!!", "C: *", "S: 501 5.7.0 cancelled", "" }, "\n"),
      function(c) c:authenticate { user = "alice", password = "s3cret", allow_plaintext = true } end)
    assert.is_true(sok, serr)
    assert.equal("authentication", err.kind)
    assert.truthy(err.message:find("base64", 1, true), err.message)
    assert.is_nil(received:find("s3cret", 1, true))
  end)

  it("treats a 1 MiB challenge as a protocol error and closes", function()
    local closed
    local err, sok, serr = dialogue(EHLO("CRAM-MD5") .. "C: AUTH CRAM-MD5\nR: 334 " .. string.rep("QUFB", 262144) ..
      "\\r\\n\n", function(c)
        local ok, e = pcall(c.authenticate, c, { user = "alice", password = "s3cret", allow_plaintext = true })
        closed = c:closed()
        assert(not ok)
        error(e, 0)
      end)
    -- The client stops reading at its 256 KiB limit and closes: the
    -- server may still be writing the rest and be reset (seen under ASan).
    assert.is_true(sok or (serr or ""):find("socket error", 1, true) ~= nil, serr)
    assert.equal("protocol", err.kind)
    assert.is_true(closed)
  end)

  it("refuses a second AUTH after success (RFC 4954)", function()
    local err, sok, serr, received = dialogue(EHLO("PLAIN") .. "C: AUTH PLAIN " .. b64("\0a\0b") ..
      "\nS: 235 ok\n", function(c)
        c:authenticate { user = "a", password = "b", allow_plaintext = true }
        c:auth("PLAIN", "a", nil, "b")
      end)
    assert.is_true(sok, serr)
    assert.equal("usage", err.kind)
    assert.equal(1, select(2, received:gsub("AUTH", "")))
  end)

  local function scram_run(mode)
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    os.execute(("/usr/bin/python3 spec/helpers/scram_server.py %s/port %s/log alice s3cret %s >%s/out 2>&1 &")
      :format(dir, dir, mode, dir))
    local port
    for _ = 1, 200 do
      local f = io.open(dir .. "/port")
      if f then port = tonumber(f:read("*a")); f:close(); if port then break end end
      os.execute("sleep 0.02")
    end
    assert(port, "scram server did not start")
    local client = smtp.connect { host = "127.0.0.1", port = port, timeout = 5, local_name = "c.example" }
    local ok, err = pcall(client.authenticate, client, { user = "alice", password = "s3cret",
      mechanisms = { "SCRAM-SHA-256" }, allow_plaintext = true })
    local authenticated = client:authenticated()
    client:quit()
    os.execute("sleep 0.1")
    local f = io.open(dir .. "/log", "rb")
    local log = f and f:read("*a") or ""
    if f then f:close() end
    os.execute("rm -rf " .. dir)
    return ok, err, authenticated, log
  end

  it("verifies SCRAM's server signature: a correct one authenticates", function()
    local ok, err, authenticated = scram_run("good")
    assert.is_true(ok, tostring(err))
    assert.is_true(authenticated)
  end)

  it("verifies SCRAM's server signature: a wrong one is kind authentication", function()
    local ok, err, authenticated, log = scram_run("wrong-signature")
    assert.is_false(ok)
    assert.equal("authentication", err.kind)
    assert.truthy(err.message:find("signature", 1, true), err.message)
    assert.is_false(authenticated)
    assert.truthy(log:find("\n%*\r\n"), log)
    assert.is_nil(log:find("MAIL", 1, true))
  end)

  it("refuses a 235 that arrives before SCRAM has checked the server", function()
    local ok, err, authenticated = scram_run("early-235")
    assert.is_false(ok)
    assert.equal("authentication", err.kind)
    assert.is_false(authenticated)
  end)
end)

describe("STARTTLS dialogues", function()
  local STARTTLS_EHLO = "S: 220 mx ESMTP\nC: EHLO c.example\nS: 250-mx\nS: 250 STARTTLS\n"

  it("raises kind tls on 454 when TLS is required, sending nothing more", function()
    local err, sok, serr, received = dialogue(STARTTLS_EHLO .. "C: STARTTLS\nS: 454 4.7.0 TLS not available\n",
      function(c) c:authenticate { tls = { verify = "none" }, tls_required = true, user = "a", password = "b" } end)
    assert.is_true(sok, serr)
    assert.equal("tls", err.kind)
    assert.equal(454, err.code)
    assert.equal("EHLO c.example\r\nSTARTTLS\r\n", received)
  end)

  it("continues in plaintext on 454 when TLS is not required", function()
    local err, sok, serr = dialogue(STARTTLS_EHLO .. "C: STARTTLS\nS: 454 4.7.0 TLS not available\n" ..
      "C: MAIL FROM:<a@example.org>\nS: 250 ok\n", function(c)
        c:authenticate { tls = { verify = "none" }, tls_required = false }
        c:mail("a@example.org")
      end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
  end)

  it("detects STARTTLS response injection and sends nothing more", function()
    local closed
    local err, sok, serr, received = dialogue(STARTTLS_EHLO .. "C: STARTTLS\nR: 220 go\\r\\n250 injected\\r\\n\n",
      function(c)
        local ok, e = pcall(c.authenticate, c, { tls = { verify = "none" }, tls_required = true })
        closed = c:closed()
        assert(not ok)
        error(e, 0)
      end)
    assert.is_true(sok, serr)
    assert.equal("tls", err.kind)
    assert.truthy(err.message:find("injection", 1, true))
    assert.is_true(closed)
    assert.equal("EHLO c.example\r\nSTARTTLS\r\n", received)
  end)

end)
