-- smtp.retry: the one retry policy shared by smtp.pool and smtp.outbox
-- (issue 25 item 7).
local retry = require "smtp.retry"
local Error = require "smtp.error"

local policy = { base = 2, factor = 3, max_delay = 100, jitter = 0.5 }

local function err(kind, extra)
  local o = { kind = kind, message = "x" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return Error.new(o)
end

describe("smtp.retry.delay", function()
  it("grows by factor from base and stops at max_delay", function()
    assert.equal(2, retry.delay(policy, 1, 0.5))
    assert.equal(6, retry.delay(policy, 2, 0.5))
    assert.equal(54, retry.delay(policy, 4, 0.5))
    assert.equal(100, retry.delay(policy, 5, 0.5))
    assert.equal(100, retry.delay(policy, 500, 0.5))
  end)

  it("spreads by +-jitter around the delay, never below zero", function()
    assert.equal(3, retry.delay(policy, 2, 0))
    assert.equal(9, retry.delay(policy, 2, 1))
    assert.equal(0, retry.delay({ base = 1, factor = 1, max_delay = 1, jitter = 1 }, 1, 0))
    for _ = 1, 50 do
      local d = retry.delay(policy, 3)
      assert.is_true(d >= 9 and d <= 27)
    end
  end)

  it("is what the pool and the outbox use", function()
    assert.equal(retry.delay, require("smtp.outbox").delay)
    local pool = require("smtp.pool").new { servers = { { host = "127.0.0.1" } },
      retry = { base = 2, factor = 3, max_delay = 100, jitter = 0 } }
    assert.equal(54, pool:_backoff(4))
  end)
end)

describe("smtp.retry classification", function()
  it("retryable: 4xx, network, timeout and TLS failures only", function()
    for _, k in ipairs { "transient", "io", "timeout", "tls" } do
      assert.is_true(retry.retryable(err(k)), k)
    end
    for _, k in ipairs { "permanent", "usage", "protocol", "authentication" } do
      assert.is_false(retry.retryable(err(k)), k)
    end
    assert.is_false(retry.retryable("a string"))
    assert.is_false(retry.retryable(nil))
  end)

  it("server_trouble: a 421 or a network, timeout or TLS failure", function()
    assert.is_true(retry.server_trouble(err("transient", { code = 421 })))
    assert.is_false(retry.server_trouble(err("transient", { code = 450 })))
    assert.is_true(retry.server_trouble(err("io")))
    assert.is_true(retry.server_trouble(err("tls")))
    assert.is_false(retry.server_trouble(err("permanent", { code = 550 })))
  end)

  it("final: 5xx and usage, nothing else", function()
    assert.is_true(retry.final(err("permanent")))
    assert.is_true(retry.final(err("usage")))
    assert.is_false(retry.final(err("transient")))
    assert.is_false(retry.final(err("protocol")))
    assert.is_false(retry.final("boom"))
  end)

  it("unknown: the error says the server may hold the message", function()
    assert.is_true(retry.unknown(err("io", { outcome = "unknown" })))
    assert.is_false(retry.unknown(err("io", { outcome = "not_sent" })))
    assert.is_false(retry.unknown(err("io")))
    assert.is_false(retry.unknown({ outcome = "unknown" }))
  end)
end)
