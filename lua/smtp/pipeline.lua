-- Pipelined mail transactions (RFC 2920, RFC 3030, RFC 2033) for
-- sendmail and sendmany: one reply wait per message in steady state.
--   DATA mode:  [RSET] MAIL RCPT... DATA  -> wait -> body "." + next group
--   BDAT mode:  [RSET] MAIL RCPT... BDAT n LAST + body  -> wait
-- It only sequences commands and judges replies; all I/O goes through the
-- Client's transport helpers.
local Error = require "smtp.error"

local ipairs, pcall, error = ipairs, pcall, error
local concat = table.concat

local pipeline = {}

local function ok2(reply) return reply.code >= 200 and reply.code < 300 end

-- Each pattern with a plain substring that must be present (lower case,
-- looked for in the lowered text): a cheap test before the pattern scan,
-- which runs for every message. Every pattern is linear: a lazy '.-'
-- before a greedy class retried at each position would let a hostile
-- reply cost minutes of CPU, beyond any deadline.
local queue_id_patterns = {
  { "queued as ([%w%.%-_]+)", "queued as" },        -- Postfix
  { "[Ii][Dd]=([%w%.%-_]+)", "id=" },               -- Exim
  { "^([%w]+) [Mm]essage accepted", "accepted" },   -- Sendmail
  { "OK%s+%d+%s+(%S+)%s+%-%s+gsmtp", "gsmtp" },     -- Google
}

-- A queue id is named near the start of a final reply; only this much
-- of it is scanned, so the cost does not grow with what a server sends.
local QUEUE_ID_SCAN = 512

local find, lower, byte, sub = string.find, string.lower, string.byte, string.sub

-- The run of hex digits and '-' that ends the text, found from the end.
local function trailing_hex(text)
  local i = #text
  while i > 0 do
    local b = byte(text, i)
    local hex = (b >= 48 and b <= 57) or (b >= 65 and b <= 70) or (b >= 97 and b <= 102) or b == 45
    if not hex then break end
    i = i - 1
  end
  return i < #text and sub(text, i + 1) or nil, i
end

local function queue_id_of(lines)
  local text = sub(concat(lines, " ", 1, math.min(#lines, 4)), 1, QUEUE_ID_SCAN)
  local low = lower(text)
  for i, p in ipairs(queue_id_patterns) do
    local id = find(low, p[2], 1, true) and text:match(p[1])
    -- "queued as" names an id outright; other patterns need a plausible one.
    if id and (i == 1 or #id >= 4) then return id end
  end
  -- "Queued mail for delivery <id>": the last word, after "queued".
  local id, before = trailing_hex(text)
  if id and #id >= 4 then
    local q = find(low, "queued", 1, true)
    if q and q + 6 <= before then return id end
  end
  return nil
end
pipeline._queue_id_of = queue_id_of -- for the unit tests

--- The report form of a final reply, with the queue id when named.
function pipeline.final_reply(reply)
  local text = concat(reply.lines, " ")
  return {
    code = reply.code, enhanced = reply.enhanced, text = text,
    lines = reply.lines, queue_id = queue_id_of(reply.lines),
  }
end

--- Judges the envelope replies of one message. Returns the report and the
-- error that stops the transaction (nil when the data may be sent). A
-- reply of the wrong class (not 2xx/4xx/5xx) is a protocol error: raised.
function pipeline.judge(c, env, lines, mail_reply, rcpt_replies, all_or_nothing)
  local report = { accepted = {}, rejected = {} }
  if not ok2(mail_reply) then
    local err = Error.from_reply(mail_reply, lines[1], { outcome = "not_sent" })
    if err.kind == "protocol" then c:_abort(); error(err, 0) end
    return report, err
  end
  for i, r in ipairs(env.recipients) do
    local rr = rcpt_replies[i]
    if ok2(rr) then
      report.accepted[#report.accepted + 1] = r
    else
      local err = Error.from_reply(rr, lines[i + 1], { recipient = r, outcome = "not_sent" })
      if err.kind == "protocol" then c:_abort(); error(err, 0) end
      report.rejected[#report.rejected + 1] = { recipient = r, error = err }
    end
  end
  local failure
  if #report.accepted == 0 then
    failure = report.rejected[1].error
  elseif all_or_nothing and #report.rejected > 0 then
    failure = report.rejected[1].error
  end
  return report, failure
end

--- Reads the reply (or, for LMTP, one reply per accepted recipient) that
-- ends a message's data, and completes its report. Returns the report or
-- the error for the message; a protocol-class reply is raised.
function pipeline.finish(c, report, command)
  local extra = { outcome = "unknown" }
  if c._protocol ~= "lmtp" then
    local final = c:_read("data_end", command, extra)
    if not ok2(final) then
      local err = Error.from_reply(final, command, { outcome = "not_sent" })
      if err.kind == "protocol" then c:_abort(); error(err, 0) end
      err.report = report
      return err
    end
    report.reply = pipeline.final_reply(final)
    return report
  end
  -- RFC 2033 4.2: one reply per accepted recipient, in RCPT order.
  local delivered, first_err = {}, nil
  local accepted = report.accepted
  for k, r in ipairs(accepted) do
    local read_ok, final = pcall(c._read, c, "data_end", command, extra)
    if not read_ok and not Error.is(final) then error(final, 0) end
    local broken = not read_ok and final.code ~= 421
    if read_ok and ok2(final) then
      delivered[#delivered + 1] = r
      report.reply = report.reply or pipeline.final_reply(final)
    elseif not broken then
      -- A refusal, 421 included (the server closed after it).
      local err = read_ok and Error.from_reply(final, command, { recipient = r, outcome = "not_sent" }) or final
      if err.kind == "protocol" then c:_abort(); error(err, 0) end
      err.recipient = r
      report.rejected[#report.rejected + 1] = { recipient = r, error = err }
      first_err = first_err or err
    end
    if broken or (not read_ok and k < #accepted) then
      -- The connection broke part-way (review L6): the deliveries already
      -- confirmed stay in the report and the recipients with no reply are
      -- 'unknown', so a retry can leave out who has the message.
      local unknown = {}
      for j = broken and k or k + 1, #accepted do unknown[#unknown + 1] = accepted[j] end
      report.accepted, report.unknown = delivered, unknown
      local err = broken and final or Error.new { kind = "io", command = command,
        message = "connection closed by the server after its 421" }
      err.outcome, err.retryable, err.report = "unknown", false, report
      return err
    end
  end
  report.accepted = delivered
  if #delivered == 0 then
    first_err.report = report
    return first_err
  end
  return report
end

-- Command lines of one transaction; usage/permanent errors found before
-- anything is sent are returned, not raised.
local function transaction_lines(c, env, opts)
  return pcall(function()
    local mparams, from, recipients = c:_mail_params(env, opts)
    local lines = { c._mail_line(from, mparams) }
    for i, r in ipairs(recipients) do
      lines[i + 1] = c._rcpt_line(r, c:_rcpt_params(r, opts))
    end
    for _, l in ipairs(lines) do c._check_command(l) end
    return lines
  end)
end

local function wire(lines)
  return concat(lines, "\r\n") .. "\r\n"
end

-- Whether a failed read comes after the server refused MAIL and closed
-- the connection: the refusal then stands for the message.
local function gone_after_refusal(c, mail_reply, err)
  return not ok2(mail_reply) and Error.is(err) and c._closed and err.code == nil
end

-- Reads the replies of a group: [RSET], MAIL, each RCPT. When the server
-- refused MAIL and then closed, returns the MAIL reply, nil and the error
-- of the lost read.
local function read_envelope(c, lines, had_rset, nrcpt)
  if had_rset then
    local r = c:_read("command", "RSET")
    if not ok2(r) then
      c:_abort()
      error(Error.from_reply(r, "RSET", { outcome = "not_sent" }), 0)
    end
  end
  local mail_reply = c:_read("mail", lines[1], { outcome = "not_sent" })
  local rcpt_replies = {}
  local ok, lost = pcall(function()
    for i = 1, nrcpt do
      rcpt_replies[i] = c:_read("rcpt", lines[i + 1], { outcome = "not_sent" })
    end
  end)
  if not ok then
    if not gone_after_refusal(c, mail_reply, lost) then error(lost, 0) end
    return mail_reply, nil, lost
  end
  return mail_reply, rcpt_replies
end

-- The message's own error when its MAIL was refused and the server then
-- closed: the refusal (e.g. 451), which says more than the lost reads
-- after it.
local function refusal_error(mail_reply, lines)
  return Error.from_reply(mail_reply, lines[1], { outcome = "not_sent" })
end

--- Runs the transactions for `count` messages over a PIPELINING server.
-- `prepare(i)` gives message i's envelope (smtp.envelope), called only
-- when its turn comes so a long list is never held prepared in memory;
-- an smtp.Error it raises becomes that message's result. Returns one
-- result per message (a report, or the smtp.Error of that message). A
-- connection-level failure (io, timeout, protocol) ends the run: it is
-- returned for every message not yet settled, with outcome "unknown"
-- where the data had gone out.
function pipeline.run(c, count, prepare, opts)
  local results = {}
  local ext = c:extensions()
  local bdat = ext.CHUNKING and opts.chunking ~= false
  local need_rset = false
  local data_sent_for = {}

  local ok, fatal = pcall(function()
    local pending -- DATA mode: {i=, env=, report=} whose body goes next
    local function send_pending_body(trailer)
      local p = pending
      pending = nil
      c:_send_env_body(p.env, false, opts, nil, trailer)
      -- Only a completed write of the terminator can have delivered it.
      data_sent_for[p.i] = true
      results[p.i] = pipeline.finish(c, p.report, "DATA")
    end

    for i = 1, count do
      local prepared, env = pcall(prepare, i)
      if not prepared and not Error.is(env) then error(env, 0) end
      local built, lines
      if prepared then
        built, lines = transaction_lines(c, env, opts)
      else
        built, lines = false, env
      end
      if not built then
        if not Error.is(lines) then error(lines, 0) end
        results[i] = lines
      else
        local group = {}
        local had_rset = need_rset
        if had_rset then group[1] = "RSET" end
        for _, l in ipairs(lines) do group[#group + 1] = l end
        need_rset = false
        if bdat or env.binary then
          c:_trace_lines(group)
          local chunks = c:_send_env_body(env, true, opts, wire(group), nil)
          -- Only a completed write of BDAT ... LAST can have delivered it.
          data_sent_for[i] = true
          local mail_reply, rcpt_replies, lost = read_envelope(c, lines, had_rset, #env.recipients)
          if lost then
            results[i] = refusal_error(mail_reply, lines)
            error(lost, 0)
          end
          local report, failure = pipeline.judge(c, env, lines, mail_reply, rcpt_replies, false)
          -- Every BDAT is answered; a refused chunk stops the message.
          local refused
          for _ = 1, chunks - 1 do
            local r = c:_read("data_block", "BDAT", { outcome = "not_sent" })
            if not refused and not ok2(r) then refused = r end
          end
          if failure or refused then
            local last = c:_read("data_end", "BDAT", { outcome = "not_sent" })
            local err = failure or Error.from_reply(refused, "BDAT", { outcome = "not_sent" })
            if err.kind == "protocol" then c:_abort(); error(err, 0) end
            if failure and ok2(last) then
              -- The server took data for a transaction it had refused.
              c:_abort()
              error(Error.from_reply(last, "BDAT"), 0)
            end
            err.report = report
            results[i] = err
            need_rset = ok2(mail_reply)
          else
            results[i] = pipeline.finish(c, report, "BDAT")
          end
        else
          group[#group + 1] = "DATA"
          c:_trace_lines(group)
          if pending then
            send_pending_body(wire(group))
          else
            c:_send_raw(wire(group), "mail", lines[1])
          end
          local mail_reply, rcpt_replies, lost = read_envelope(c, lines, had_rset, #env.recipients)
          local data_reply
          if not lost then
            local read_ok, r = pcall(c._read, c, "data_init", "DATA", { outcome = "not_sent" })
            if read_ok then
              data_reply = r
            elseif gone_after_refusal(c, mail_reply, r) then
              lost = r
            else
              error(r, 0)
            end
          end
          if lost then
            results[i] = refusal_error(mail_reply, lines)
            error(lost, 0)
          end
          local report, failure = pipeline.judge(c, env, lines, mail_reply, rcpt_replies, false)
          if failure then
            if data_reply.code == 354 then
              -- RFC 2920 3.1: DATA was accepted anyway; send an empty message.
              c:_trace_lines({ "." })
              c:_send_raw(".\r\n", "data_end", ".")
              c:_read("data_end", ".")
            end
            failure.report = report
            results[i] = failure
            need_rset = ok2(mail_reply)
          elseif data_reply.code ~= 354 then
            local err = Error.from_reply(data_reply, "DATA", { outcome = "not_sent" })
            if err.kind == "protocol" then c:_abort(); error(err, 0) end
            err.report = report
            results[i] = err
            need_rset = true
          else
            pending = { i = i, env = env, report = report }
          end
        end
      end
    end
    if pending then send_pending_body(nil) end
    if need_rset and not c._closed then
      local r = c:_command("RSET")
      if not ok2(r) then c:_abort() end
    end
  end)
  if not ok then
    if not Error.is(fatal) then error(fatal, 0) end
    for i = 1, count do
      if results[i] == nil then
        local e = fatal
        -- A 421 answers, in order, the command of the message it stops:
        -- nothing unsettled was accepted.
        local refused = fatal.code == 421
        if data_sent_for[i] and fatal.outcome ~= "unknown" and not refused then
          e = Error.new { kind = fatal.kind, message = fatal.message, command = fatal.command,
            code = fatal.code, enhanced = fatal.enhanced, lines = fatal.lines, outcome = "unknown" }
        elseif not data_sent_for[i] and fatal.outcome == "unknown" then
          e = Error.new { kind = fatal.kind, message = fatal.message, command = fatal.command,
            code = fatal.code, enhanced = fatal.enhanced, lines = fatal.lines, outcome = "not_sent" }
        end
        results[i] = e
      end
    end
  end
  return results
end

return pipeline
