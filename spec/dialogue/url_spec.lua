-- Connection URLs against a scripted server that offers no STARTTLS:
-- smtp:// requires STARTTLS and sends nothing more without it,
-- ?tls=opportunistic goes on in plaintext, ?tls=none never asks; the
-- URL's credentials feed AUTH and stay out of the trace, errors and
-- tostring(client); explicit options win over the URL.
local smtp = require "smtp"
local core = require "smtp.core"
local scripted = require "helpers.scripted"

local SECRET = "pa ss:w/rd"
local SECRET_URL = "pa%20ss%3Aw%2Frd"
local RAW = "From: a@example.org\r\nTo: b@example.org\r\nSubject: url\r\n\r\nbody\r\n"

local NO_TLS = "S: 220 mx ESMTP\nC: EHLO c.example\nS: 250-mx\nS: 250 AUTH PLAIN\n"

local function run(transcript, fn)
  local server = scripted.start(transcript)
  local lines = {}
  local hook = function(dir, line) lines[#lines + 1] = dir .. ": " .. line end
  local ok, err = pcall(fn, server.port, hook)
  local sok, serr, received = server:result()
  return ok, err, sok, serr, received[1] or "", table.concat(lines, "\n")
end

describe("connection URLs against a server without STARTTLS", function()
  it("smtp:// requires STARTTLS: smtp.send stops after EHLO with kind tls, before AUTH", function()
    local ok, err, sok, serr, received, trace = run(NO_TLS, function(port, hook)
      return smtp.send { url = ("smtp://alice:%s@127.0.0.1:%d/c.example"):format(SECRET_URL, port),
        timeout = 5, debug = hook, from = "a@example.org", to = "b@example.org", raw = RAW }
    end)
    assert.is_false(ok)
    assert.equal("tls", err.kind, tostring(err))
    assert.truthy(err.message:find("does not offer STARTTLS", 1, true), err.message)
    assert.is_true(sok, serr)
    assert.equal("EHLO c.example\r\n", received)
    assert.is_nil(tostring(err):find(SECRET, 1, true))
    assert.is_nil(trace:find(SECRET, 1, true))
  end)

  it("smtp://...?tls=opportunistic goes on in plaintext and the URL's credentials feed AUTH", function()
    local plain = core.sasl_b64encode("\0alice\0" .. SECRET)
    local ok, err, sok, serr, _, trace = run(NO_TLS .. "C: AUTH PLAIN " .. plain .. "\nS: 235 ok\n" ..
      "C: MAIL FROM:<a@example.org>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\n" ..
      "C: DATA\nS: 354 go\nBODY\nS: 250 queued\nC: QUIT\nS: 221 bye\n", function(port, hook)
      return smtp.send { url = ("smtp://alice:%s@127.0.0.1:%d/c.example?tls=opportunistic"):format(SECRET_URL, port),
        allow_plaintext = true, timeout = 5, debug = hook, from = "a@example.org", to = "b@example.org", raw = RAW }
    end)
    assert.is_true(ok, tostring(err))
    assert.is_true(sok, serr)
    assert.truthy(trace:find("STARTTLS not offered", 1, true), trace)
    assert.truthy(trace:find("C: AUTH PLAIN ***", 1, true), trace)
    assert.is_nil(trace:find(SECRET, 1, true))
    assert.is_nil(trace:find(plain, 1, true))
  end)

  it("smtp.connect keeps the URL's credentials for authenticate() and out of tostring", function()
    local plain = core.sasl_b64encode("\0alice\0" .. SECRET)
    local shown
    local ok, err, sok, serr = run(NO_TLS .. "C: AUTH PLAIN " .. plain .. "\nS: 235 ok\nC: QUIT\nS: 221 bye\n",
      function(port)
        local c = smtp.connect { url = ("smtp://alice:%s@127.0.0.1:%d/c.example?tls=none"):format(SECRET_URL, port),
          timeout = 5 }
        shown = tostring(c)
        c:authenticate { allow_plaintext = true }
        assert.is_true(c:authenticated())
        c:quit()
      end)
    assert.is_true(ok, tostring(err))
    assert.is_true(sok, serr)
    assert.truthy(shown:find("127.0.0.1", 1, true), shown)
    assert.is_nil(shown:find("alice", 1, true), shown)
    assert.is_nil(shown:find(SECRET, 1, true), shown)
  end)

  it("lets an explicit port, local_name and tls_required win over the URL", function()
    local ok, err, sok, serr = run(NO_TLS .. "C: QUIT\nS: 221 bye\n", function(port)
      -- Port 1 and STARTTLS required by the URL; both overridden.
      local c = smtp.connect { url = "smtp://127.0.0.1:1/ignored.example", port = port,
        local_name = "c.example", tls_required = false, timeout = 5 }
      c:authenticate {}
      c:quit()
    end)
    assert.is_true(ok, tostring(err))
    assert.is_true(sok, serr)
  end)
end)
