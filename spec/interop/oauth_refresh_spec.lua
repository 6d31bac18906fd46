-- OAuth token refresh (issue 25 item 1) against Nodemailer's smtp-server
-- (spec/helpers/node/oauth_server.js): STARTTLS with the suite's
-- certificate, AUTH XOAUTH2 accepting one token. The token function first
-- gives an expired token, which the server refuses with the RFC 7628
-- error challenge and 535; asked again with stale = true it gives the
-- valid one, and the message must arrive. Without node or smtp-server the
-- cases are pending, never silently passed.
local smtp = require "smtp"
local certs = require "helpers.certs"
local oauth_server = require "helpers.oauth_server"

local USER = "alice@example.test"
local VALID, EXPIRED = "ya29.valid-token", "ya29.expired-token"

-- A token function as an application writes one: a cached token, and a
-- new one fetched when the library says the cached one is stale.
local function token_fn(first, fresh)
  local calls = {}
  return function(user, stale)
    calls[#calls + 1] = { user = user, stale = stale }
    return stale and fresh or first
  end, calls
end

describe("OAuth token refresh against smtp-server", function()
  local why = oauth_server.missing()
  local c, server

  setup(function()
    if why then return end
    c = certs.make()
    server = oauth_server.start { valid = VALID, certs = c }
  end)

  teardown(function()
    if server then server:stop() end
  end)

  local function opts(extra)
    local o = { host = server.host, port = server.port, timeout = 10, local_name = "client.example",
      tls = { ca_file = c.ca_cert }, user = USER }
    for k, v in pairs(extra) do o[k] = v end
    return o
  end

  it("smtp.send: the expired token is refused, the fresh one delivers the message", function()
    if why then pending(why) return end
    local before_auths, before_msgs = #server:auths(), #server:messages()
    local fn, calls = token_fn(EXPIRED, VALID)
    local report = smtp.send(opts { token = fn, from = USER, to = { "bob@example.test" },
      raw = "From: " .. USER .. "\r\nSubject: refreshed\r\n\r\nhello after refresh\r\n" })
    assert.same({ "bob@example.test" }, report.accepted)
    assert.same({ { user = USER, stale = false }, { user = USER, stale = true } }, calls)
    local auths = server:auths()
    assert.equal(before_auths + 2, #auths)
    assert.same({ method = "XOAUTH2", user = USER, token = EXPIRED, ok = false }, auths[before_auths + 1])
    assert.same({ method = "XOAUTH2", user = USER, token = VALID, ok = true }, auths[before_auths + 2])
    local msgs = server:messages()
    assert.equal(before_msgs + 1, #msgs)
    local m = msgs[#msgs]
    assert.truthy(m.data:find("hello after refresh", 1, true))
    assert.truthy(m.meta:find('"user":"' .. USER .. '"', 1, true), m.meta)
  end)

  it("smtp.pool: the same refresh on the pool's connection", function()
    if why then pending(why) return end
    local before_msgs = #server:messages()
    local fn, calls = token_fn(EXPIRED, VALID)
    local pool = smtp.pool(opts { servers = { { host = server.host, port = server.port } }, token = fn })
    local ok, res = pcall(function()
      local r1 = pool:send("Subject: one\r\n\r\nfirst\r\n", { from = USER, to = { "bob@example.test" } })
      local r2 = pool:send("Subject: two\r\n\r\nsecond\r\n", { from = USER, to = { "bob@example.test" } })
      return { r1, r2 }
    end)
    pool:close()
    assert.is_true(ok, tostring(res))
    -- One connection, one refresh: the second message reused it.
    assert.equal(2, #calls)
    assert.equal(before_msgs + 2, #server:messages())
  end)

  it("client:authenticate: XOAUTH2 is the mechanism and the client is authenticated", function()
    if why then pending(why) return end
    local fn, calls = token_fn(EXPIRED, VALID)
    local client = smtp.connect { host = server.host, port = server.port, timeout = 10 }
    local ok, err = pcall(client.authenticate, client, { tls = { ca_file = c.ca_cert }, user = USER, token = fn })
    local authed = client:authenticated()
    client:quit()
    assert.is_true(ok, tostring(err))
    assert.is_true(authed)
    assert.equal(2, #calls)
  end)

  it("raises kind authentication when the fresh token is refused too, without showing either token", function()
    if why then pending(why) return end
    local fn, calls = token_fn(EXPIRED, "ya29.also-bad")
    local traced = {}
    local ok, err = pcall(smtp.send, opts { token = fn, from = USER, to = { "bob@example.test" },
      raw = "Subject: x\r\n\r\nx\r\n", debug = function(_, line) traced[#traced + 1] = line end })
    assert.is_false(ok)
    assert.equal("authentication", err.kind)
    assert.equal(535, err.code)
    assert.equal(2, #calls)
    local text = tostring(err) .. table.concat(traced, "\n")
    assert.is_nil(text:find("ya29", 1, true), text)
  end)

  it("smtp.verify reports XOAUTH2, TLS and SIZE after the refresh", function()
    if why then pending(why) return end
    local fn = token_fn(EXPIRED, VALID)
    local r = smtp.verify(opts { token = fn })
    assert.is_true(r.authenticated)
    assert.equal("XOAUTH2", r.mechanism)
    assert.equal(10485760, r.size)
    assert.is_table(r.tls)
    assert.is_true(r.tls.peer_verified)
  end)
end)
