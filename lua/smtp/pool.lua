--- smtp.pool: many messages over several servers (issue 15). Keeps
-- idle connections per server, spreads messages by smooth weighted
-- round-robin, puts a failing server in cool-down and fails over, retries
-- transient failures with exponential backoff (only to the recipients
-- not yet accepted), and holds each server to a message rate. A connection
-- idle only briefly is reused without an RSET round trip (issue 23); if it
-- turns out dead before anything of the message could be accepted, the
-- message goes on a fresh connection at no cost in tries or cool-down.
-- It drives the ordinary client (smtp.connect, authenticate, sendmail);
-- the wire behaviour of one transaction is theirs.
-- @classmod smtp.Pool
local core = require "smtp.core"
local Error = require "smtp.error"
local envelope = require "smtp.envelope"
local loops = require "smtp.loop"
local url = require "smtp.url"
local retry_policy = require "smtp.retry"

local type, pairs, ipairs, pcall, error, tostring, setmetatable, rawget, next =
  type, pairs, ipairs, pcall, error, tostring, setmetatable, rawget, next
local floor, huge = math.floor, math.huge
local remove = table.remove

local Pool = {}
Pool.__index = Pool

-- Options of the pool itself; every other key goes to smtp.connect and
-- client:authenticate for each server.
local POOL_KEYS = {
  servers = true, max_messages = true, idle_timeout = true, check_idle_after = true,
  cooldown = true, retry = true, rate = true, sleep = true, _now = true, on_event = true,
}

-- Bounds on loops that wait for a server or probe idle connections.
local MAX_WAITS = 64
local MAX_IDLE = 16
local MAX_TRIES = 1000

local function usage(msg)
  error(Error.new { kind = "usage", message = "smtp.pool: " .. msg }, 0)
end

local function copy(t)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  return o
end

local function number_opt(v, name, default, min, integer)
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v < min or v >= 1e9 or (integer and v % 1 ~= 0) then
    usage("'" .. name .. "' must be a" .. (integer and "n integer" or " number") .. " >= " .. min .. " (below 1e9)")
  end
  return v
end

-- The default wait: the C core's when it has one, LuaSocket's when it is
-- installed (both block without spinning), else the shell's sleep (a
-- fork per wait; only retry and rate waits use it).
local function default_sleep()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.sleep) == "function" then return ngx.sleep end
  if type(core.sleep) == "function" then return core.sleep end
  local ok, socket = pcall(require, "socket")
  if ok and type(socket) == "table" and type(socket.sleep) == "function" then return socket.sleep end
  return function(s)
    if s > 0 then os.execute(("sleep %.3f"):format(s)) end
  end
end

local function check_retry(r)
  if r == nil then r = {} end
  if type(r) ~= "table" then usage("'retry' must be a table") end
  local out = {
    limit = number_opt(r.limit, "retry.limit", 5, 1, true),
    base = number_opt(r.base, "retry.base", 1, 0),
    factor = number_opt(r.factor, "retry.factor", 2, 1),
    max_delay = number_opt(r.max_delay, "retry.max_delay", 300, 0),
    jitter = number_opt(r.jitter, "retry.jitter", 0.2, 0),
    on_unknown = r.on_unknown,
  }
  if out.limit > MAX_TRIES then usage("'retry.limit' must be at most " .. MAX_TRIES) end
  if out.jitter > 1 then usage("'retry.jitter' must be a fraction from 0 to 1") end
  if out.on_unknown ~= nil and type(out.on_unknown) ~= "function" then
    usage("'retry.on_unknown' must be a function")
  end
  return out
end

local function check_rate(r)
  if r == nil then return nil end
  if type(r) ~= "table" then usage("'rate' must be a table {messages=, per=}") end
  return {
    messages = number_opt(r.messages, "rate.messages", nil, 1, true) or usage("'rate.messages' is required"),
    per = number_opt(r.per, "rate.per", 1, 0.001),
  }
end

-- One server's connection options: the pool's, overridden by its entry.
local function server_of(base, entry, i)
  if type(entry) ~= "table" then usage("servers[" .. i .. "] must be a table") end
  local o = copy(base)
  for k, v in pairs(entry) do o[k] = v end
  o.weight = nil
  -- The pool's options and the entry's both count as explicit there.
  o = url.apply(o, "smtp.pool: servers[" .. i .. "]: ")
  if type(o.host) ~= "string" or o.host == "" then usage("servers[" .. i .. "].host is required") end
  if o.transport ~= nil and type(o.transport) ~= "function" then
    -- One socket cannot carry the pool's many connections.
    usage("'transport' must be a function returning a new cosocket for each connection")
  end
  if type(o.tls) == "table" and o.transport == nil and core.tls_config then
    -- One config for all of this server's connections, so that their TLS
    -- sessions resume (abbreviated handshakes) instead of starting over.
    local cfg, kind, msg = core.tls_config(o.tls)
    if not cfg then error(Error.new { kind = kind or "tls", message = "smtp.pool: " .. msg }, 0) end
    o.tls = cfg
  end
  local weight = number_opt(entry.weight, "servers[" .. i .. "].weight", 1, 0.001)
  local port = o.port or (o.tls_mode == "implicit" and 465 or 25)
  local host = o.host
  if host:find(":", 1, true) and not host:find("^%[") then host = "[" .. host .. "]" end
  return {
    opts = o, weight = weight, current = 0, label = host .. ":" .. tostring(port),
    idle = {}, sent = {}, down_until = -huge,
  }
end

--- Creates a pool (see README "Sending reliably"). Options: `servers` (list of
-- `{host=, port=, weight=, ...}`, each may override any connection
-- option), `max_messages`, `idle_timeout`, `check_idle_after`, `cooldown`, `retry = {limit=,
-- base=, factor=, max_delay=, jitter=, on_unknown=}`, `rate = {messages=,
-- per=}`, `sleep`, `on_event = function(ev)` (README "Events for
-- metrics"), and every option of `smtp.connect` and
-- `client:authenticate` (applied to each server; a `url` of the pool or
-- of an entry gives what the merged options leave unset).
-- @tparam table opts
-- @treturn smtp.Pool
function Pool.new(opts)
  if type(opts) ~= "table" then usage("expects a table of options") end
  if type(opts.servers) ~= "table" or #opts.servers == 0 then
    usage("'servers' must be a non-empty list of {host=, port=, weight=}")
  end
  if opts.sleep ~= nil and type(opts.sleep) ~= "function" then usage("'sleep' must be a function(seconds)") end
  if opts.loop ~= nil then loops.check(opts.loop, "smtp.pool") end
  if opts._now ~= nil and type(opts._now) ~= "function" then usage("'_now' must be a function") end
  if opts.on_event ~= nil and type(opts.on_event) ~= "function" then usage("'on_event' must be a function(ev)") end
  local base = {}
  for k, v in pairs(opts) do
    if not POOL_KEYS[k] then base[k] = v end
  end
  local self = setmetatable({
    max_messages = number_opt(opts.max_messages, "max_messages", 100, 1, true),
    idle_timeout = number_opt(opts.idle_timeout, "idle_timeout", 30, 0),
    -- Relays drop idle clients after seconds to minutes: a connection
    -- idle less than this is used without an RSET first.
    check_idle_after = number_opt(opts.check_idle_after, "check_idle_after", 1, 0),
    cooldown = number_opt(opts.cooldown, "cooldown", 30, 0),
    retry = check_retry(opts.retry),
    rate = check_rate(opts.rate),
    -- With a loop, retry waits and cool-downs go through it too (SPEC 5.1).
    sleep = opts.sleep or (opts.loop and opts.loop.sleep) or default_sleep(),
    now = opts._now or core.now,
    on_event = opts.on_event,
    servers = {},
  }, Pool)
  for i, entry in ipairs(opts.servers) do self.servers[i] = server_of(base, entry, i) end
  return self
end

-- Rate limits --------------------------------------------------------------

-- Seconds until the server may take another message (0: now). The window
-- keeps at most rate.messages send times.
function Pool:_rate_wait(srv, t)
  local rate = self.rate
  if not rate then return 0 end
  local sent = srv.sent
  while sent[1] and sent[1] <= t - rate.per do remove(sent, 1) end
  if #sent < rate.messages then return 0 end
  return sent[1] + rate.per - t
end

function Pool:_note_sent(srv)
  if not self.rate then return end
  local sent = srv.sent
  sent[#sent + 1] = self.now()
  while #sent > self.rate.messages do remove(sent, 1) end
end

-- Choosing a server ------------------------------------------------------

-- Servers neither cooling down nor at their rate limit at time t.
function Pool:_ready(t)
  local out = {}
  for _, srv in ipairs(self.servers) do
    if srv.down_until <= t and self:_rate_wait(srv, t) <= 0 then out[#out + 1] = srv end
  end
  return out
end

-- Smooth weighted round-robin (as nginx's upstream): every candidate
-- gains its weight, the largest wins and pays the candidates' total, so
-- 3:1 weights give A A B A, A A B A, ... without bursts.
local function smooth_pick(candidates)
  local total, best = 0, nil
  for _, srv in ipairs(candidates) do
    srv.current = srv.current + srv.weight
    total = total + srv.weight
    if not best or srv.current > best.current then best = srv end
  end
  best.current = best.current - total
  return best
end

-- A server to try now; sleeps (bounded) while every one is cooling down
-- or at its rate limit, until the earliest is back.
function Pool:_choose()
  local servers = self.servers
  for _ = 1, MAX_WAITS do
    local t = self.now()
    -- smooth_pick over the ready servers, without a list per message.
    local total, best = 0, nil
    for i = 1, #servers do
      local srv = servers[i]
      if srv.down_until <= t and self:_rate_wait(srv, t) <= 0 then
        srv.current = srv.current + srv.weight
        total = total + srv.weight
        if not best or srv.current > best.current then best = srv end
      end
    end
    if best then
      best.current = best.current - total
      return best
    end
    local wait = huge
    for _, srv in ipairs(self.servers) do
      local w = srv.down_until - t
      local r = self:_rate_wait(srv, t)
      if r > w then w = r end
      if w < wait then wait = w end
    end
    self.sleep(wait > 0.001 and wait or 0.001)
  end
  -- A clock that does not move with the sleeps: take the best anyway.
  return smooth_pick(self.servers)
end

-- Connections ----------------------------------------------------------------

local function open(srv)
  -- A refused token function's retry may need a second connection,
  -- hence a function that makes one (with its own transport).
  local client = require("smtp.oauth").open(function()
    local o = copy(srv.opts)
    if o.transport then o.transport = o.transport() end
    return require("smtp").connect(o)
  end, srv.opts)
  return { client = client, count = 0 }
end

-- Whether the transaction's first write would carry the message: BDAT
-- LAST goes out with MAIL and RCPT (pipeline.run). A connection found
-- dead by that write leaves the message's fate unknown (the server may
-- have taken it and lost only its replies), so such a reuse is checked
-- with RSET first, whatever its age. (A BINARYMIME message goes by BDAT
-- only under these same conditions; otherwise sendmail refuses it unsent.)
local function message_in_first_write(client, opts)
  local ext = client:extensions()
  -- Without PIPELINING, or with all_or_nothing, MAIL is answered first.
  if not ext.PIPELINING or opts.all_or_nothing then return false end
  return ext.CHUNKING and opts.chunking ~= false
end

-- An idle connection that is young enough, else a new one. One idle for
-- check_idle_after seconds or more must answer RSET first; failed checks
-- are not tries, the connection is just dropped. A young one whose first
-- write would carry the message is used without RSET only when nothing
-- arrived while it idled: a server that dropped it has sent its FIN (or
-- a 421) by now, and the socket says so without a round trip. Returns
-- the entry and whether it is reused unchecked (then _try may replace it).
function Pool:_take(srv, opts)
  local idle = srv.idle
  for _ = 1, #idle do
    local entry = remove(idle)
    local age = self.now() - entry.since
    local c = entry.client
    if age <= self.idle_timeout and not c:closed() then
      -- A session whose last transaction failed is checked whatever its
      -- age: its state after the failure is the server's word, not ours.
      local check = true
      if age < self.check_idle_after and not entry.failed then
        if not message_in_first_write(c, opts) then return entry, true end
        local pending = c:_input_pending()
        if pending == false then return entry, true end
        -- Something came while it idled (a FIN, a 421): not worth an RSET.
        if pending ~= nil then check = false end
      end
      if check then
        local ok = pcall(c.reset, c)
        if ok and not c:closed() then return entry, false end
      end
    end
    c:close()
  end
  return open(srv), false
end

-- After a transaction: back to the idle list, or QUIT after max_messages.
-- A caller's cosocket goes to its own keepalive pool instead (OpenResty
-- forbids using one request's cosocket in another; smtp.connect takes it
-- back, checked with RSET, in whichever request asks next).
function Pool:_give_back(srv, entry)
  local c = entry.client
  if c:closed() then return end
  if srv.opts.transport then
    -- 0 ms would mean "for ever" to ngx; max_messages = 1 asks for QUIT.
    local ms = floor(self.idle_timeout * 1000)
    if ms > 0 and self.max_messages > 1 then c:set_keepalive(ms) else c:quit() end
    return
  end
  if entry.count >= self.max_messages or #srv.idle >= MAX_IDLE then
    c:quit()
    return
  end
  entry.since = self.now()
  srv.idle[#srv.idle + 1] = entry
end

-- Whether a failure on a connection reused unchecked shows only that the
-- connection had died while idle, with nothing of this message accepted:
-- the write of MAIL failed, or its reply was a lost connection or a 421
-- (a server closing on idle clients says so). The command is MAIL and
-- the outcome is not unknown only while no data can have gone out.
local function died_while_idle(err)
  if not Error.is(err) or err.outcome == "unknown" then return false end
  if type(err.command) ~= "string" or not err.command:find("^MAIL FROM:") then return false end
  return err.code == 421 or (err.code == nil and (err.kind == "io" or err.kind == "tls"))
end

function Pool:_send_on(srv, entry, msg, opts)
  entry.count = entry.count + 1
  local sent, result = pcall(entry.client.sendmail, entry.client, msg, opts)
  entry.failed = not sent
  self:_give_back(srv, entry)
  return sent, result
end

-- One try on one server: ok, report | false, error.
function Pool:_try(srv, msg, opts, rewind)
  local ok, entry, unchecked = pcall(self._take, self, srv, opts)
  if not ok then return false, entry end
  self:_note_sent(srv)
  local sent, result = self:_send_on(srv, entry, msg, opts)
  if not sent and unchecked and died_while_idle(result) then
    -- What RSET would have found, found by MAIL instead: once more on a
    -- fresh connection, within the same try. Its failures count.
    entry.client:close()
    rewind()
    ok, entry = pcall(open, srv)
    if not ok then return false, entry end
    sent, result = self:_send_on(srv, entry, msg, opts)
  end
  return sent, result
end

--- QUITs every idle connection.
function Pool:close()
  for _, srv in ipairs(self.servers) do
    local idle = srv.idle
    srv.idle = {}
    for _, entry in ipairs(idle) do entry.client:quit() end
  end
end
Pool.__close = Pool.close

-- Messages --------------------------------------------------------------

-- A message that can be sent again: strings and smtp.message objects are;
-- a file is rewound to where it stood; a chunk function is spooled to a
-- temporary file first (memory stays bounded).
local function no_rewind() end

local function replayable(msg)
  if type(msg) == "function" then
    local f = io.tmpfile()
    if not f then error(Error.new { kind = "io", message = "smtp.pool: cannot create a temporary file" }, 0) end
    for _ = 1, huge do
      local ok, chunk, err = pcall(msg)
      if not ok or (chunk == nil and err ~= nil) then
        f:close()
        error(Error.new { kind = "usage", outcome = "not_sent",
          message = "message source failed: " .. tostring(ok and err or chunk) }, 0)
      end
      if chunk == nil then break end
      f:write(chunk)
    end
    f:seek("set", 0)
    msg = f
  end
  if io.type(msg) == "file" then
    local start = msg:seek("cur")
    return msg, function() msg:seek("set", start) end
  end
  return msg, no_rewind
end

-- The envelope of the first try, as sendmail would compute it. The
-- message's header is read only when opts lack 'from' or 'to' (sendmail
-- reads it again on every try).
local function first_envelope(msg, opts)
  local from, to = opts.from, opts.to
  if from ~= nil and to ~= nil then return envelope.given(opts) end
  if type(msg) == "table" and type(msg.source) == "function" then
    if from == nil then from = msg:envelope_from() end
    if to == nil then to = msg:recipients() end
    msg = "\r\n"
  elseif from ~= nil and to ~= nil then
    msg = "\r\n"
  end
  local env = envelope.prepare(msg, { from = from, to = to })
  return env.from, env.recipients
end

function Pool:_backoff(try)
  return retry_policy.delay(self.retry, try)
end

-- Events for metrics (issue 25): one table per event, built only when
-- there is a hook; a hook that fails is ignored (counting must never
-- break sending).
function Pool:_emit(kind, server, tries, t0, code)
  pcall(self.on_event, { type = kind, server = server, tries = tries,
    ms = floor((self.now() - t0) * 1000 + 0.5), code = code })
end

local function reply_code(report)
  return report and report.reply and report.reply.code or nil
end

-- Whether err is one of its own report's recipient rejections (every
-- recipient refused): then each refusal is judged on its own.
local function is_rcpt_failure(err)
  local rep = err.report
  if not (rep and err.recipient and rep.rejected) then return false end
  for _, r in ipairs(rep.rejected) do
    if r.error == err then return true end
  end
  return false
end

local function list_without(list, drop)
  local out = {}
  for _, v in ipairs(list) do
    if not drop[v] then out[#out + 1] = v end
  end
  return out
end

-- The state of one pool:send across its tries.
local Send = {}
Send.__index = Send

function Send:deliver(report, srv)
  local done = {}
  for _, a in ipairs(report.accepted or {}) do
    self.merged.accepted[#self.merged.accepted + 1] = a
    done[a] = true
  end
  if next(done) then
    self.merged.server = srv.label
    self.merged.reply = report.reply or self.merged.reply
  end
  return done
end

-- Sorts a try's refusals: permanent ones are final, others stay to retry.
-- Returns the set of recipients settled (final).
function Send:judge_rejections(rejected)
  local final = {}
  for _, r in ipairs(rejected or {}) do
    self.last_error[r.recipient] = r.error
    if not retry_policy.retryable(r.error) then
      self.final[#self.final + 1] = r
      final[r.recipient] = true
    end
  end
  return final
end

-- The report of the whole send: recipients still pending are rejected
-- with the last error each had.
function Send:report(err)
  local m = self.merged
  local rejected = {}
  for _, r in ipairs(self.final) do rejected[#rejected + 1] = r end
  for _, a in ipairs(self.remaining) do
    rejected[#rejected + 1] = { recipient = a, error = self.last_error[a] or err }
  end
  return { accepted = m.accepted, rejected = rejected, reply = m.reply, server = m.server,
    servers = m.servers, tries = m.tries }
end

--- Sends one message like `client:sendmail(msg, opts)`, with retries
-- and failover. Returns sendmail's report plus `tries`, `server`
-- ("host:port" of the last accepting server) and `servers` (one
-- "host:port" per try; an IPv6 host in brackets). When some recipients
-- were accepted and the others could not be within the tries, the
-- report is returned with those in `rejected` (sendmail's rule). A final
-- failure raises the last smtp.Error with `tries` and `report` (what was
-- accepted so far); an unknown outcome is always raised.
function Pool:send(msg, opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then usage("send options must be a table") end
  local rewind
  msg, rewind = replayable(msg)
  local from, recipients = first_envelope(msg, opts)
  rewind()
  local st = setmetatable({
    merged = { accepted = {}, servers = {}, tries = 0 },
    remaining = recipients, final = {}, last_error = {},
  }, Send)
  local retry = self.retry
  local hook = self.on_event
  local t0 = hook and self.now()
  local last_err
  for try = 1, retry.limit do
    local srv = self:_choose()
    st.merged.tries = try
    st.merged.servers[try] = srv.label
    rewind()
    local topts = copy(opts)
    topts.from, topts.to = from, st.remaining
    local ok, res = self:_try(srv, msg, topts, rewind)
    local again
    if hook and ok and srv.reported_down then
      srv.reported_down = nil
      self:_emit("relay_up", srv.label, try, t0)
    end
    if ok and try == 1 and (res.rejected == nil or res.rejected[1] == nil) then
      -- Every recipient taken at the first try (the common case): the
      -- report the general path below would build, without its tables.
      if hook then self:_emit("sent", srv.label, 1, t0, reply_code(res)) end
      return { accepted = res.accepted or {}, rejected = {}, reply = res.reply, server = srv.label,
        servers = st.merged.servers, tries = 1 }
    elseif ok then
      local done = st:deliver(res, srv)
      local final = st:judge_rejections(res.rejected)
      for k in pairs(final) do done[k] = true end
      st.remaining = list_without(st.remaining, done)
      if #st.remaining == 0 then
        if hook then self:_emit("sent", st.merged.server or srv.label, try, t0, reply_code(st.merged)) end
        return st:report()
      end
      last_err = st.last_error[st.remaining[1]]
      again = true
    else
      if not Error.is(res) then error(res, 0) end
      last_err = res
      if retry_policy.server_trouble(res) then
        srv.down_until = self.now() + self.cooldown
        if hook and not srv.reported_down then
          srv.reported_down = true
          self:_emit("relay_down", srv.label, try, t0, res.code)
        end
      end
      local rep = res.report
      local settled = {}
      if rep and rep.unknown then
        -- LMTP cut short: the deliveries confirmed before stay delivered.
        settled = st:deliver(rep, srv)
      end
      local final = st:judge_rejections(rep and rep.rejected)
      for k in pairs(final) do settled[k] = true end
      st.remaining = list_without(st.remaining, settled)
      if retry_policy.unknown(res) then
        -- The server may hold the message: resending could duplicate it.
        again = retry.on_unknown ~= nil and retry.on_unknown(res, msg, opts) == true
        if not again then
          res.tries, res.report = try, st:report(res)
          if hook then self:_emit("unknown", srv.label, try, t0, res.code) end
          error(res, 0)
        end
      elseif is_rcpt_failure(res) then
        again = #st.remaining > 0 and not (opts.all_or_nothing and next(final))
      else
        again = retry_policy.retryable(res) and #st.remaining > 0
      end
    end
    if not again or try == retry.limit then break end
    if hook then self:_emit("deferred", srv.label, try, t0, last_err and last_err.code) end
    local delay = self:_backoff(try)
    if not ok and retry_policy.server_trouble(res) and #self:_ready(self.now()) > 0 then
      delay = 0 -- another server can take it at once
    end
    if delay > 0 then self.sleep(delay) end
  end
  local report = st:report(last_err)
  if #report.accepted > 0 and last_err.outcome ~= "unknown" then
    -- Delivered to some: sendmail's rule, the rest are in 'rejected'.
    if hook then self:_emit("sent", report.server, st.merged.tries, t0, reply_code(report)) end
    return report
  end
  last_err.tries, last_err.report = st.merged.tries, report
  if hook then
    self:_emit(retry_policy.unknown(last_err) and "unknown" or "failed", st.merged.servers[st.merged.tries],
      st.merged.tries, t0, last_err.code)
  end
  error(last_err, 0)
end

--- Tests every server as `smtp.verify` does (connect, EHLO, STARTTLS,
-- AUTH, QUIT; no message, no tries, no cool-down). Returns one result per
-- server, in `servers` order: `smtp.verify`'s table plus `label`
-- ("host:port") and `ok = true`. If any server fails, raises that first
-- failure's smtp.Error with `label` and `results` (every server's result;
-- a failed one is `{label=, ok=false, error=}`): bad configuration fails
-- loudly, and each server's state stays visible.
-- @treturn table list of per-server results
function Pool:verify()
  local smtp = require "smtp"
  local results, first_err = {}, nil
  for i, srv in ipairs(self.servers) do
    local o = copy(srv.opts)
    if o.transport then o.transport = o.transport() end
    local ok, res = pcall(smtp.verify, o)
    if ok then
      res.label, res.ok = srv.label, true
    else
      if not Error.is(res) then error(res, 0) end
      if not first_err then first_err, res.label = res, srv.label end
      res = { label = srv.label, ok = false, error = res }
    end
    results[i] = res
  end
  if first_err then
    first_err.results = results
    error(first_err, 0)
  end
  return results
end

return Pool
