-- OAuth token refresh (issue 25 item 1) against scripted servers: a token
-- function is asked again with stale = true after the RFC 7628 error
-- challenge + 535 or a bare 535, AUTH is retried once on the same
-- connection, or on a new one in smtp.send when the server closed it
-- (EOF or 421). No token may reach an error, a trace or tostring.
local smtp = require "smtp"
local core = require "smtp.core"
local scripted = require "helpers.scripted"

local b64 = core.sasl_b64encode

-- A token function that records its calls: first "old-tok", then "new-tok".
local function tokens(list)
  local calls = {}
  local fn = function(user, stale)
    calls[#calls + 1] = { user = user, stale = stale }
    return list[#calls]
  end
  return fn, calls
end

local function xoauth2(user, tok) return b64("user=" .. user .. "\1auth=Bearer " .. tok .. "\1\1") end

local function ehlo(mechs)
  return "S: 220 mx ESMTP\nC: EHLO c.example\nS: 250-mx\nS: 250 AUTH " .. mechs .. "\n"
end
local EHLO = ehlo("XOAUTH2 PLAIN")
local JSON = b64('{"status":"401","schemes":"Bearer"}')

-- Runs fn(client) against the transcript; returns err, server ok, server
-- error, received bytes, the trace text, the client.
local function dialogue(transcript, fn, connections)
  local server = scripted.start(transcript, connections)
  local trace = {}
  local opts = { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "c.example",
    debug = function(dir, line) trace[#trace + 1] = dir .. ": " .. line end }
  local client
  local ok, err = pcall(function()
    client = smtp.connect(opts)
    return fn(client)
  end)
  if client then client:close() end
  local sok, serr, received = server:result()
  return (not ok) and err or nil, sok, serr, received, table.concat(trace, "\n"), client
end

local function assert_no_token(...)
  for _, text in ipairs({ ... }) do
    assert.is_nil(tostring(text):find("old-tok", 1, true), text)
    assert.is_nil(tostring(text):find("new-tok", 1, true), text)
  end
end

describe("token function (OAuth refresh)", function()
  it("asks again with stale = true after the XOAUTH2 error challenge and retries on the same connection", function()
    local fn, calls = tokens { "old-tok", "new-tok" }
    local err, sok, serr, _, trace, client = dialogue(EHLO .. table.concat({
      "C: AUTH XOAUTH2 " .. xoauth2("alice", "old-tok"), "S: 334 " .. JSON, "C: ",
      "S: 535 5.7.8 Username and Password not accepted",
      "C: AUTH XOAUTH2 " .. xoauth2("alice", "new-tok"), "S: 235 2.7.0 ok", "" }, "\n"), function(c)
        c:authenticate { user = "alice", token = fn, allow_plaintext = true }
      end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.is_true(client:authenticated())
    assert.same({ { user = "alice", stale = false }, { user = "alice", stale = true } }, calls)
    assert_no_token(trace)
  end)

  it("does the same for OAUTHBEARER (error challenge answered with \\1, then 535)", function()
    local fn, calls = tokens { "old-tok", "new-tok" }
    local transcript = function(port)
      local function initial(tok)
        return b64("n,a=alice,\1host=127.0.0.1\1port=" .. port .. "\1auth=Bearer " .. tok .. "\1\1")
      end
      return ehlo("OAUTHBEARER XOAUTH2") .. table.concat({
        "C: AUTH OAUTHBEARER " .. initial("old-tok"), "S: 334 " .. JSON, "C: " .. b64("\1"),
        "S: 535 5.7.8 invalid token", "C: AUTH OAUTHBEARER " .. initial("new-tok"), "S: 235 2.7.0 ok", "" }, "\n")
    end
    local err, sok, serr, _, trace, client = dialogue(transcript, function(c)
      c:authenticate { user = "alice", token = fn, allow_plaintext = true }
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.is_true(client:authenticated())
    assert.equal(2, #calls)
    assert.is_true(calls[2].stale)
    assert_no_token(trace)
  end)

  it("retries after a bare 535 and raises the usual authentication error when the new token fails too", function()
    local fn, calls = tokens { "old-tok", "new-tok", "third-tok" }
    local err, sok, serr, _, trace = dialogue(EHLO .. table.concat({
      "C: AUTH XOAUTH2 " .. xoauth2("alice", "old-tok"), "S: 535 5.7.8 bad token",
      "C: AUTH XOAUTH2 " .. xoauth2("alice", "new-tok"), "S: 535 5.7.8 still bad",
      "C: QUIT", "S: 221 bye", "" }, "\n"), function(c)
        local ok, e = pcall(c.authenticate, c, { user = "alice", token = fn, allow_plaintext = true })
        c:quit()
        error(ok and "authenticated" or e, 0)
      end)
    assert.is_true(sok, serr)
    assert.equal("authentication", err.kind)
    assert.equal(535, err.code)
    assert.equal(2, #calls) -- at most twice per AUTH
    assert_no_token(trace, err, err.message)
  end)

  it("ignores the token function for a password mechanism", function()
    local fn, calls = tokens { "old-tok" }
    local err, sok, serr = dialogue(EHLO .. table.concat({
      "C: AUTH PLAIN " .. b64("\0alice\0pw"), "S: 235 ok", "" }, "\n"), function(c)
        c:authenticate { user = "alice", password = "pw", token = fn, mechanisms = { "PLAIN" },
          allow_plaintext = true }
      end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.equal(0, #calls)
  end)

  it("makes a token function that raises kind authentication, and nil or a number kind usage, before AUTH",
    function()
      local cases = {
        { fn = function() error("token endpoint down") end, kind = "authentication", text = "token endpoint down" },
        { fn = function() return nil end, kind = "usage", text = "got nil" },
        { fn = function() return 42 end, kind = "usage", text = "got number" },
      }
      for _, case in ipairs(cases) do
        local err, sok, serr, received = dialogue(EHLO .. "C: QUIT\nS: 221 bye\n", function(c)
          local ok, e = pcall(c.authenticate, c, { user = "alice", token = case.fn, allow_plaintext = true })
          c:quit()
          error(ok and "authenticated" or e, 0)
        end)
        assert.is_true(sok, serr)
        assert.equal(case.kind, err.kind)
        assert.truthy(err.message:find(case.text, 1, true), err.message)
        assert.is_nil(received[1]:find("AUTH", 1, true))
      end
    end)

  it("raises in client:authenticate when the server closed after the 535 (the caller owns the connection)",
    function()
      local fn, calls = tokens { "old-tok", "new-tok" }
      local err, sok, serr, _, trace, client = dialogue(EHLO .. table.concat({
        "C: AUTH XOAUTH2 " .. xoauth2("alice", "old-tok"), "S: 535 5.7.8 bad token", "CLOSE", "" }, "\n"),
        function(c) c:authenticate { user = "alice", token = fn, allow_plaintext = true } end)
      assert.is_true(sok, serr)
      assert.is_true(err.kind == "authentication" or err.kind == "io", tostring(err))
      assert.is_true(client:closed())
      assert.equal(2, #calls)
      assert_no_token(trace, err)
    end)

  describe("in smtp.send, when the server closed the connection", function()
    local SEND = table.concat({
      "C: MAIL FROM:<alice@example.org>", "S: 250 ok", "C: RCPT TO:<bob@example.org>", "S: 250 ok",
      "C: DATA", "S: 354 go", "BODY", "S: 250 queued", "C: QUIT", "S: 221 bye", "" }, "\n")

    local function send(transcript)
      local server = scripted.start(transcript, 2)
      local fn, calls = tokens { "old-tok", "new-tok", "third-tok" }
      local trace = {}
      local ok, res = pcall(smtp.send, { host = "127.0.0.1", port = server.port, timeout = 5,
        local_name = "c.example", user = "alice", token = fn, allow_plaintext = true,
        debug = function(dir, line) trace[#trace + 1] = dir .. ": " .. line end,
        from = "alice@example.org", to = { "bob@example.org" }, raw = "Subject: t\r\n\r\nhi\r\n" })
      local sok, serr = server:result()
      return ok, res, sok, serr, calls, table.concat(trace, "\n")
    end

    it("retries AUTH with the fresh token on a new connection after EOF", function()
      local ok, res, sok, serr, calls, trace = send(EHLO .. table.concat({
        "C: AUTH XOAUTH2 " .. xoauth2("alice", "old-tok"), "S: 334 " .. JSON, "C: ",
        "S: 535 5.7.8 expired", "CLOSE", "NEXT", "" }, "\n") .. EHLO ..
        "C: AUTH XOAUTH2 " .. xoauth2("alice", "new-tok") .. "\nS: 235 ok\n" .. SEND)
      assert.is_true(ok, tostring(res))
      assert.is_true(sok, serr)
      assert.same({ "bob@example.org" }, res.accepted)
      assert.same({ false, true }, { calls[1].stale, calls[2].stale })
      assert_no_token(trace)
    end)

    it("retries on a new connection when the retry on the old one gets 421", function()
      local ok, res, sok, serr, calls = send(EHLO .. table.concat({
        "C: AUTH XOAUTH2 " .. xoauth2("alice", "old-tok"), "S: 535 5.7.8 expired",
        "C: AUTH XOAUTH2 " .. xoauth2("alice", "new-tok"), "S: 421 4.7.0 too many failures, closing",
        "CLOSE", "NEXT", "" }, "\n") .. EHLO ..
        "C: AUTH XOAUTH2 " .. xoauth2("alice", "new-tok") .. "\nS: 235 ok\n" .. SEND)
      assert.is_true(ok, tostring(res))
      assert.is_true(sok, serr)
      assert.equal(2, #calls)
    end)

    it("does the same in smtp.pool", function()
      local server = scripted.start(EHLO .. table.concat({
        "C: AUTH XOAUTH2 " .. xoauth2("alice", "old-tok"), "S: 535 5.7.8 expired", "CLOSE", "NEXT", "" }, "\n") ..
        EHLO .. "C: AUTH XOAUTH2 " .. xoauth2("alice", "new-tok") .. "\nS: 235 ok\n" .. SEND, 2)
      local fn, calls = tokens { "old-tok", "new-tok" }
      local pool = smtp.pool { servers = { { host = "127.0.0.1", port = server.port } }, timeout = 5,
        local_name = "c.example", user = "alice", token = fn, allow_plaintext = true, retry = { limit = 1 } }
      local ok, res = pcall(pool.send, pool, "Subject: t\r\n\r\nhi\r\n",
        { from = "alice@example.org", to = { "bob@example.org" } })
      pool:close()
      local sok, serr = server:result()
      assert.is_true(ok, tostring(res))
      assert.is_true(sok, serr)
      assert.equal(1, res.tries)
      assert.equal(2, #calls)
    end)

    it("raises kind authentication, without a third call, when the new connection refuses the fresh token",
      function()
        local ok, err, sok, serr, calls, trace = send(EHLO .. table.concat({
          "C: AUTH XOAUTH2 " .. xoauth2("alice", "old-tok"), "S: 535 5.7.8 expired", "CLOSE", "NEXT", "" }, "\n") ..
          EHLO .. "C: AUTH XOAUTH2 " .. xoauth2("alice", "new-tok") .. "\nS: 535 5.7.8 still bad\n")
        assert.is_false(ok)
        assert.is_true(sok, serr)
        assert.equal("authentication", err.kind)
        assert.equal(535, err.code)
        assert.equal(2, #calls)
        assert_no_token(trace, err)
      end)
  end)
end)
