-- examples/metrics.lua runs as a user would run it (this run's
-- interpreter, settings from the environment) against aiosmtpd and a
-- relay that is down, and prints Prometheus text with the pool's events
-- (issue 25 item 10).
local servers = require "helpers.servers"
local scripted = require "helpers.scripted"
local P = require "helpers.proc"
local V = require "helpers.luaver"

local BUILD = os.getenv("SMTP_BUILD") or "build"
local ROOT = P.run("pwd"):gsub("\n$", "")
if BUILD:sub(1, 1) ~= "/" then BUILD = ROOT .. "/" .. BUILD end

describe("examples/metrics.lua #interop", function()
  it("counts sent messages per relay and the relay that is down", function()
    local sink = servers.aiosmtpd()
    local gone = scripted.start("S: 220 x\n")
    local dead = gone.port
    gone:stop()
    local out = P.tempdir("metrics") .. "/out"
    local cmd = ("cd %s && timeout 60 env LUA_PATH=%s LUA_CPATH=%s SMTP_SERVERS=%s SMTP_FROM=a@example.org"
      .. " SMTP_TO=b@example.org SMTP_COUNT=4 %s examples/metrics.lua > %s 2>&1"):format(P.q(ROOT),
      P.q(ROOT .. "/lua/?.lua;;"), P.q(BUILD .. "/?.so;;"),
      P.q(("127.0.0.1:%d,127.0.0.1:%d"):format(dead, sink.port)), V.interpreter, P.q(out))
    local _, code = V.execute(cmd)
    local text = P.read_file(out) or ""
    sink:stop()
    assert.equal(0, code, text)
    assert.truthy(text:find('smtp_events_total{type="sent",server="127.0.0.1:' .. sink.port .. '"} 4\n', 1, true), text)
    assert.truthy(text:find('smtp_events_total{type="relay_down",server="127.0.0.1:' .. dead .. '"} 1\n', 1, true), text)
    assert.truthy(text:find('smtp_send_seconds_count{server="127.0.0.1:' .. sink.port .. '"} 4\n', 1, true), text)
    assert.equal(4, #sink:messages())
  end)
end)
