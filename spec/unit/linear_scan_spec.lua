-- Review H1: every Lua scan of server text is linear. A pattern that
-- backtracks (a lazy '.-' before a class anchored at '$') turns one 64 KiB
-- reply line into seconds of CPU inside one C call, where no deadline can
-- fire. Costs are compared as a ratio of CPU time between a 4 KiB and a
-- 64 KiB input (16x the bytes: about 16x the time when linear, 256x when
-- quadratic), never against a fixed time.
local extensions = require "smtp.extensions"
local pipeline = require "smtp.pipeline"

local cost = require "helpers.cost"

local function ratio(fn, make)
  return cost.ratio(fn, make, 4096, 65536, 0.05, 2000)
end

-- Linear is 16; leave room for cache effects and a busy machine, far
-- below the 256 of a quadratic scan.
local LIMIT = 64

describe("linear scans of server text (review H1)", function()
  it("trims an EHLO keyword line padded with spaces in linear time", function()
    local function parse(line) return extensions.parse({ "mx", line }) end
    local r = ratio(parse, function(n) return "SIZE 1000" .. (" "):rep(n) .. "x" end)
    assert.is_true(r < LIMIT, ("64 KiB / 4 KiB cost ratio %.1f"):format(r))
    local r2 = ratio(parse, function(n) return "X-PAD" .. (" "):rep(n) end)
    assert.is_true(r2 < LIMIT, ("64 KiB / 4 KiB cost ratio %.1f"):format(r2))
    assert.equal("1000" .. (" "):rep(10) .. "x", extensions._trim("  1000" .. (" "):rep(10) .. "x \t "))
    assert.equal("", extensions._trim(" \t "))
    assert.equal("bar baz", extensions.parse({ "mx", "X-FOO   bar baz   " })["X-FOO"])
  end)

  it("finds a queue id in a long final reply in linear time", function()
    local function scan(line) return pipeline.final_reply({ code = 250, lines = { line } }) end
    local hex = ratio(scan, function(n) return "Queued " .. ("a"):rep(n) .. "!" end)
    assert.is_true(hex < LIMIT, ("hex run: cost ratio %.1f"):format(hex))
    local many = ratio(scan, function(n) return ("Queued "):rep(math.floor(n / 7) + 1) end)
    assert.is_true(many < LIMIT, ("repeated 'Queued ': cost ratio %.1f"):format(many))
  end)

  it("still names the queue ids of real servers", function()
    local function qid(text) return pipeline.final_reply({ code = 250, lines = { text } }).queue_id end
    assert.equal("4AbCdEf123", qid("2.0.0 Ok: queued as 4AbCdEf123"))
    assert.equal("1rSTUv-000Abc-2x", qid("OK id=1rSTUv-000Abc-2x"))
    assert.equal("ABC123", qid("ABC123 Message accepted for delivery"))
    assert.equal("9f3c2a1b", qid("Queued mail for delivery 9f3c2a1b"))
    assert.equal("x12-20020a05.123", qid("2.0.0 OK  1700000000 x12-20020a05.123 - gsmtp"))
    assert.is_nil(qid("Queued mail for delivery"))
    assert.is_nil(qid("2.0.0 Ok"))
  end)

  it("looks for the queue id only near the start of the reply", function()
    local function qid(lines) return pipeline.final_reply({ code = 250, lines = lines }).queue_id end
    assert.is_nil(qid({ ("x"):rep(600) .. " queued as LATE1" }))
    assert.equal("EARLY1", qid({ "queued as EARLY1", ("x"):rep(600) }))
  end)
end)
