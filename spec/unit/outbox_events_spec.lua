-- outbox:run's on_event hook (issue 25 item 10): one event per message
-- sent, failed, deferred or found unknown, with the sender's server,
-- the message's tries and the reply code.
local smtp = require "smtp"
local Error = require "smtp.error"
local P = require "helpers.proc"

local function raw(to)
  return "From: a@example.org\r\nTo: " .. to .. "\r\nSubject: t\r\n\r\nbody\r\n"
end

-- A sender whose answer depends on the recipient, as a pool reports it.
local sender = {
  send = function(_, _, opts)
    local to = opts.to[1]
    local function fail(fields)
      local err = Error.new(fields)
      err.tries, err.report = 1, { accepted = {}, rejected = {}, servers = { "relay:25" } }
      error(err, 0)
    end
    if to == "ok@example.org" then
      if opts.progress then opts.progress(10, 10) end
      return { accepted = opts.to, rejected = {}, server = "relay:25", tries = 1, reply = { code = 250 } }
    elseif to == "no@example.org" then
      fail { kind = "permanent", code = 550, message = "no such user", outcome = "not_sent" }
    elseif to == "later@example.org" then
      fail { kind = "transient", code = 451, message = "later", outcome = "not_sent" }
    end
    fail { kind = "io", message = "lost", outcome = "unknown" }
  end,
}

local function by_type(events)
  local out = {}
  for _, ev in ipairs(events) do
    assert.is_nil(out[ev.type])
    assert.is_number(ev.ms)
    assert.is_true(ev.ms >= 0)
    ev.ms = nil
    out[ev.type] = ev
  end
  return out
end

describe("outbox:run on_event", function()
  it("reports sent, failed, deferred and unknown with server, tries and code", function()
    local ob = smtp.outbox(P.tempdir("outbox") .. "/box")
    local ids = {}
    for _, to in ipairs({ "ok", "no", "later", "lost" }) do
      ids[to] = ob:put(raw(to .. "@example.org"))
    end
    local events = {}
    local stats = ob:run(sender, { on_event = function(ev) events[#events + 1] = ev end })
    assert.same({ delivered = 1, failed = 1, deferred = 1, unknown = 1 }, stats)
    assert.same({
      sent = { type = "sent", id = ids.ok, server = "relay:25", tries = 1, code = 250 },
      failed = { type = "failed", id = ids.no, server = "relay:25", tries = 1, code = 550 },
      deferred = { type = "deferred", id = ids.later, server = "relay:25", tries = 1, code = 451 },
      unknown = { type = "unknown", id = ids.lost, server = "relay:25", tries = 1 },
    }, by_type(events))
  end)

  it("an unknown outcome that on_unknown calls delivered is reported as both", function()
    local ob = smtp.outbox(P.tempdir("outbox") .. "/box", { on_unknown = function() return "delivered" end })
    ob:put(raw("lost@example.org"))
    local events = {}
    ob:run(sender, { on_event = function(ev) events[#events + 1] = ev.type end })
    assert.same({ "unknown", "sent" }, events)
  end)

  it("a hook that raises does not stop the run; a hook that is no function is kind usage", function()
    local ob = smtp.outbox(P.tempdir("outbox") .. "/box")
    ob:put(raw("ok@example.org"))
    ob:put(raw("ok@example.org"))
    local stats = ob:run(sender, { on_event = function() error("statsd is down") end })
    assert.equal(2, stats.delivered)
    local ok, err = pcall(ob.run, ob, sender, { on_event = {} })
    assert.is_false(ok)
    assert.equal("usage", err.kind)
  end)
end)
