--- smtp.retry: the one retry policy of smtp.pool and smtp.outbox
-- (issue 25): the backoff with jitter and the rules that sort a failure
-- into "try again", "final" or "unknown".
--
-- The two callers differ in scope, not in rules: a pool retries within
-- one send, at once, only what can succeed soon (`retryable`); an outbox
-- retries across runs, for hours, everything that is not `final`
-- (a protocol error or a refused AUTH may be fixed by then).
-- @module smtp.retry
local Error = require "smtp.error"

local random = math.random

local M = {}

-- Kinds that may succeed on the next try within a send.
local RETRY_KINDS = { transient = true, io = true, timeout = true, tls = true }
-- Kinds that say the server (not the message) is in trouble.
local SERVER_KINDS = { io = true, timeout = true, tls = true }
-- Kinds that no later try can change.
local FINAL_KINDS = { permanent = true, usage = true }

--- Seconds to wait after the `tries`-th failed attempt: base *
-- factor^(tries-1), capped at max_delay, then spread by +-jitter (a
-- fraction). `rand` (0..1) defaults to math.random().
-- @tparam table policy `{base=, factor=, max_delay=, jitter=}`
-- @tparam number tries
-- @tparam[opt] number rand
-- @treturn number seconds, never negative
function M.delay(policy, tries, rand)
  local d = policy.base * policy.factor ^ (tries - 1)
  if d > policy.max_delay then d = policy.max_delay end
  d = d * (1 + policy.jitter * (2 * (rand or random()) - 1))
  return d > 0 and d or 0
end

--- Whether the failure may succeed on another try soon (4xx, network,
-- timeout, TLS).
function M.retryable(err)
  return Error.is(err) and RETRY_KINDS[err.kind] == true
end

--- Whether the failure is the server's trouble (a 421, network, timeout,
-- TLS): that server should cool down.
function M.server_trouble(err)
  return Error.is(err) and (err.code == 421 or SERVER_KINDS[err.kind] == true)
end

--- Whether no later try can change the outcome (5xx, bad usage).
function M.final(err)
  return Error.is(err) and FINAL_KINDS[err.kind] == true
end

--- Whether the server may hold the message although the send failed:
-- sending it again could duplicate it.
function M.unknown(err)
  return Error.is(err) and err.outcome == "unknown"
end

return M
